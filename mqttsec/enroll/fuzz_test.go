package enroll

import (
	"bytes"
	"errors"
	"slices"
	"strings"
	"testing"
)

// fuzzClasses are the classes each parser may answer with.
var (
	helloClasses   = []error{ErrMalformed, ErrContext, ErrNoApproval, ErrThrottled, ErrFingerprint, ErrPoP, ErrSignature}
	welcomeClasses = []error{ErrMalformed, ErrContext, ErrPoP, ErrSignature}
)

func oneOf(err error, classes []error) bool {
	for _, c := range classes {
		if Class(err) == c && errors.Is(err, c) {
			return true
		}
	}
	return false
}

// FuzzParseCode: ParseCode never panics, refuses with ErrMalformed only,
// and what it accepts it writes back as it read it.
func FuzzParseCode(f *testing.F) {
	w := newWorld(f)
	good := w.dev.Code(t0).Text()
	f.Add(good)
	f.Add("mqttsec-enroll:1:site:door:7:" + good[len("mqttsec-enroll:1:door-7:"):])
	f.Add("mqttsec-enroll:2:door-7:x:y")
	f.Add("mqttsec-enroll:1:::")
	f.Add("")
	i := strings.LastIndexByte(good, ':')
	f.Add(good[:i+5] + "\r\n" + good[i+7:]) // base64 would skip the CRLF
	f.Add(good[:i+5] + "\n" + good[i+6:])
	f.Add(good + "\r\n")
	f.Add(strings.Replace(good, "door-7:", "door-7:\n", 1)[:len(good)])
	f.Fuzz(func(t *testing.T, s string) {
		c, err := ParseCode(s)
		if err != nil {
			if !oneOf(err, []error{ErrMalformed}) || c != (Code{}) {
				t.Fatalf("%v, %+v", err, c)
			}
			return
		}
		if c.Text() != s {
			t.Fatalf("read %q, writes %q", s, c.Text())
		}
	})
}

// FuzzApproval: ParseApproval and Registrar.Approve never panic, refuse
// with their classes only, and an approval accepted is written back as it
// was read.
func FuzzApproval(f *testing.F) {
	w := newWorld(f)
	good, _ := FromCode(w.dev.Code(t0), template).MarshalBinary()
	f.Add(good)
	f.Add(append(good, 0))
	assigned, _ := (&Approval{ID: "a:b", Template: "camera", Assign: "c", TTL: MaxTTL}).MarshalBinary()
	f.Add(assigned)
	f.Add([]byte{1, 0})
	f.Fuzz(func(t *testing.T, p []byte) {
		a, err := ParseApproval(p)
		if err != nil {
			if !oneOf(err, []error{ErrBadRequest}) || a != nil {
				t.Fatalf("%v", err)
			}
		} else {
			b, err := a.MarshalBinary()
			if err != nil || !bytes.Equal(b, p) {
				t.Fatalf("read %x, writes %x (%v)", p, b, err)
			}
		}
		err = approveAs(w.reg, operatorID, p, true)
		switch {
		case a == nil || (a.Template != template && a.Template != "camera") || a.ID == gatewayID || a.AssignedID() == gatewayID:
			if Class(err) != ErrBadRequest {
				t.Fatalf("Approve: %v, want bad-request", err)
			}
		case a.AssignedID() == operatorID:
			if Class(err) != ErrForbidden {
				t.Fatalf("Approve: %v, want forbidden", err)
			}
		case err != nil && Class(err) != ErrFull:
			t.Fatalf("Approve: %v", err)
		}
	})
}

// FuzzHello: HandleHello never panics, and refuses with the classes of
// SPEC.md §14.4 only. The registrar holds an approval for the genuine
// hello's device.
func FuzzHello(f *testing.F) {
	w := newWorld(f)
	// No throttling: the rate has its own tests, and the clock stays.
	r, err := NewRegistrar(RegistrarConfig{ID: gatewayID, Key: testKey(f, "enroll gateway"), Templates: []string{template},
		MayApprove: func(string) bool { return true }, Known: w.gw.Known, Add: w.gw.Add, HighestCounter: w.gw.HighestCounter,
		Clock: w.clock.Now, Burst: 1 << 30})
	if err != nil {
		f.Fatal(err)
	}
	w.reg = r
	// The device's seed and the approval's nonceG fixed, so that the
	// genuine hello passes in every fuzzing process.
	copy(w.dev.seed[:], "fuzz seed")
	w.mustApprove(w.dev, nil)
	setNonceG(f, r, "door-7", bytes.Repeat([]byte{0x5a}, NonceSize))
	genuine := w.hello(w.dev)
	f.Add(genuine)
	f.Add(flip(genuine, -1))
	f.Add(flip(genuine, len(genuine)-100))
	f.Add(flip(genuine, len(genuine)-2*tagSize-sigSize-1)) // nonceG
	f.Add(genuine[:100])
	f.Add(forgeHelloFast(genuine, "door-8"))
	f.Add([]byte{helloByte})
	f.Fuzz(func(t *testing.T, b []byte) {
		reply, kind, err := w.reg.HandleHello(b)
		if err != nil {
			if !oneOf(err, helloClasses) || reply != nil || kind != NoReply {
				t.Fatalf("%v", err)
			}
			return
		}
		if kind == ReplyChallenge {
			c, err := parseChallenge(reply)
			if err != nil || string(c.id) != string(helloParts(t, b).id) || !bytes.Equal(c.nonceG, bytes.Repeat([]byte{0x5a}, NonceSize)) {
				t.Fatalf("a challenge that does not read: %x, %v", reply, err)
			}
			return
		}
		wb := reply
		if kind != ReplyWelcome {
			t.Fatalf("kind %v", kind)
		}
		if _, err := parseWelcome(wb); err != nil {
			t.Fatalf("a welcome that does not read: %v", err)
		}
		if w.gw.addCount() != 1 {
			t.Fatalf("Add called %d times", w.gw.addCount())
		}
	})
}

// FuzzWelcome: AcceptWelcome never panics, and refuses with the classes of
// SPEC.md §14.5 only. The device waits on the hello the genuine welcome
// answers.
func FuzzWelcome(f *testing.F) {
	w := newWorld(f)
	w.mustApprove(w.dev, nil)
	nonce := [NonceSize]byte{1, 2, 3}
	if _, err := w.dev.hello(t0, gatewayID, nonce); err != nil {
		f.Fatal(err)
	}
	challengeFor(f, w.reg, w.dev)
	h, err := w.dev.hello(t0, gatewayID, nonce)
	if err != nil {
		f.Fatal(err)
	}
	genuine, err := handle(w.reg, h)
	if err != nil {
		f.Fatal(err)
	}
	f.Add(genuine)
	f.Add(flip(genuine, -1))
	f.Add(flip(genuine, len(genuine)-70))
	f.Add(genuine[:200])
	f.Add([]byte{welcomeByte})
	f.Fuzz(func(t *testing.T, b []byte) {
		res, err := w.dev.AcceptWelcome(b)
		if err != nil {
			if !oneOf(err, welcomeClasses) || res != nil {
				t.Fatalf("%v", err)
			}
			return
		}
		if res.GatewayID != gatewayID || res.CounterFloor == 0 {
			t.Fatalf("%+v", res)
		}
		// Wait on the same hello again for the next input.
		if _, err := w.dev.hello(t0, gatewayID, nonce); err != nil {
			t.Fatal(err)
		}
	})
}

// FuzzChallenge: AcceptChallenge never panics, refuses with ErrMalformed or
// ErrContext only, and a challenge it accepts is well formed, names the
// pending hello's gateway and device, and its nonceG goes into the next
// hello.
func FuzzChallenge(f *testing.F) {
	d := newDevice(f, "door-7", "enroll device")
	if _, err := d.Hello(t0, gatewayID); err != nil {
		f.Fatal(err)
	}
	n := bytes.Repeat([]byte{0xAB}, NonceSize)
	good := challengeBytes(gatewayID, "door-7", n)
	f.Add(good)
	f.Add(append(slices.Clone(good), 0))
	f.Add(good[:len(good)-1])
	f.Add(challengeBytes("gateway-2", "door-7", n))
	f.Add(challengeBytes(gatewayID, "door 7", n))
	f.Add([]byte{challengeByte})
	f.Fuzz(func(t *testing.T, b []byte) {
		err := d.AcceptChallenge(b)
		if err != nil {
			if !oneOf(err, []error{ErrMalformed, ErrContext}) {
				t.Fatalf("%v", err)
			}
			return
		}
		c, perr := parseChallenge(b)
		if perr != nil || string(c.gateway) != gatewayID || string(c.id) != "door-7" {
			t.Fatalf("accepted %x", b)
		}
		h, err := d.Hello(t0, gatewayID)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(helloParts(t, h).nonceG, c.nonceG) || !bytes.Equal(b, challengeBytes(gatewayID, "door-7", c.nonceG)) {
			t.Fatalf("the next hello does not carry %x", c.nonceG)
		}
	})
}
