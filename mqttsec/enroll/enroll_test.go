package enroll

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"errors"
	"math"
	"math/rand/v2"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/mqttsec/mqttsec/envelope"
	"github.com/mqttsec/mqttsec/mqttsec/replay"
)

// TestExchange: the whole exchange in memory, then envelopes both ways
// with the keys it gave each side.
func TestExchange(t *testing.T) {
	w := newWorld(t)
	w.gw.highest["door-7"] = 0
	res := w.enroll(w.dev, nil)
	if res.ID != "door-7" || res.GatewayID != gatewayID || res.CounterFloor != 1 {
		t.Fatalf("welcome: %+v", res)
	}
	if got, _ := res.GatewayKey.Bytes(); !bytes.Equal(got, w.reg.PublicKey()) {
		t.Fatal("welcome's gateway key is not the registrar's")
	}
	if len(w.gw.adds) != 1 {
		t.Fatalf("Add called %d times", len(w.gw.adds))
	}
	e := w.gw.adds[0]
	if e.ID != "door-7" || e.RequestedID != "door-7" || e.Template != template || e.Operator != operatorID {
		t.Fatalf("Add got %+v", e)
	}
	if got, _ := e.Key.Bytes(); !bytes.Equal(got, w.dev.PublicKey()) {
		t.Fatal("Add got another key than the device's")
	}
	st := w.reg.Stats()
	if st.Approvals != 1 || st.Completed != 1 || st.Enrolled != 1 || st.Welcomes != 1 || st.Approved != 1 {
		t.Fatalf("stats %+v", st)
	}

	// The device signs a request with skD; the gateway opens it with the
	// key Add received.
	ctx := context.Background()
	ver, err := envelope.NewECDSAVerifier(e.Key)
	if err != nil {
		t.Fatal(err)
	}
	gwKeys, err := envelope.NewKeys(nil, &envelope.Peer{ID: e.ID, Verifiers: []envelope.Verifier{ver},
		Policy: envelope.Policy{Require: envelope.Signature}})
	if err != nil {
		t.Fatal(err)
	}
	gwStore, _ := replay.NewMemoryStore(0)
	gwOpener := &envelope.Opener{ID: gatewayID, Keys: gwKeys, Replay: gwStore, Now: w.clock.Now}
	devSigner, err := envelope.NewECDSASigner(w.dev.Key())
	if err != nil {
		t.Fatal(err)
	}
	devSealer := &envelope.Sealer{ID: res.ID, Counter: envelope.NewMemoryCounter(res.CounterFloor - 1), Now: w.clock.Now}
	req, err := devSealer.Seal(&envelope.Params{Kind: envelope.Request, To: []string{res.GatewayID}, Topic: "open-door",
		ReplyTo: "mqttsec/door-7/reply", Signer: devSigner}, []byte("door 3"))
	if err != nil {
		t.Fatal(err)
	}
	m, err := gwOpener.Open(ctx, req.Bytes, &envelope.Expect{Kinds: envelope.Request, From: res.ID})
	if err != nil {
		t.Fatalf("gateway opens the device's request: %v", err)
	}
	if m.Counter < res.CounterFloor || string(m.Payload) != "door 3" {
		t.Fatalf("opened %+v", m)
	}

	// The gateway answers signed with skG; the device opens it with pkG
	// from the welcome.
	gwSigner, _ := envelope.NewECDSASigner(testKey(t, "enroll gateway"))
	gwSealer := &envelope.Sealer{ID: gatewayID, Counter: envelope.NewMemoryCounter(0), Now: w.clock.Now}
	rep, err := gwSealer.Seal(&envelope.Params{Kind: envelope.Reply, InReplyTo: m, Signer: gwSigner}, []byte("opened"))
	if err != nil {
		t.Fatal(err)
	}
	gver, _ := envelope.NewECDSAVerifier(res.GatewayKey)
	devKeys, _ := envelope.NewKeys(nil, &envelope.Peer{ID: res.GatewayID, Verifiers: []envelope.Verifier{gver},
		Policy: envelope.Policy{Require: envelope.Signature}})
	devStore, _ := replay.NewMemoryStore(0)
	devOpener := &envelope.Opener{ID: res.ID, Keys: devKeys, Replay: devStore, Now: w.clock.Now}
	if _, err := devOpener.Open(ctx, rep.Bytes, &envelope.Expect{Kinds: envelope.Reply, From: gatewayID, Request: req}); err != nil {
		t.Fatalf("device opens the gateway's reply: %v", err)
	}
}

// TestAssignedID: the approval's assign is the id the key goes under and
// the welcome names; the hello still names the proposed id.
func TestAssignedID(t *testing.T) {
	w := newWorld(t)
	res := w.enroll(w.dev, func(a *Approval) { a.Assign = "lobby-door-7"; a.Template = "camera" })
	if res.ID != "lobby-door-7" || w.gw.adds[0].ID != "lobby-door-7" || w.gw.adds[0].RequestedID != "door-7" ||
		w.gw.adds[0].Template != "camera" {
		t.Fatalf("welcome %+v, add %+v", res, w.gw.adds[0])
	}
}

// TestPhotographedCode: security property 1. A code is current while the
// hello's window is the code's or the next; an approval made from a photo
// of an older code enrolls nothing.
func TestPhotographedCode(t *testing.T) {
	const n = 30 * time.Second
	for _, tc := range []struct {
		name      string
		shownAt   time.Duration // into the code's window
		helloWait time.Duration // from the photo to the hello
		want      error
	}{
		{"at once", 0, 0, nil},
		{"window start, N later", 0, n, nil},
		{"window start, 2N-1s later", 0, 2*n - time.Second, nil},
		{"window start, 2N later", 0, 2 * n, ErrPoP},
		{"window end, N later", n - time.Second, n, nil},
		{"window end, N+1s later", n - time.Second, n + time.Second, ErrPoP},
		{"an hour later", 0, time.Hour, ErrPoP},
	} {
		t.Run(tc.name, func(t *testing.T) {
			w := newWorld(t)
			w.clock.Set(t0.Add(tc.shownAt))
			photo := w.dev.Code(w.clock.Now())
			w.clock.Advance(tc.helloWait)
			p, _ := FromCode(photo, template).MarshalBinary()
			if err := approveAs(w.reg, operatorID, p, true); err != nil {
				t.Fatal(err)
			}
			wb, err := handle(w.reg, w.hello(w.dev))
			wantClass(t, "HandleHello", err, tc.want)
			if tc.want != nil {
				if wb != nil || w.gw.addCount() != 0 {
					t.Fatal("a refused hello enrolled something")
				}
				if st := w.reg.Stats(); st.ByID["door-7"].PoP != 1 || st.Completed != 0 {
					t.Fatalf("stats %+v", st)
				}
				return
			}
			if _, err := w.dev.AcceptWelcome(wb); err != nil {
				t.Fatal(err)
			}
		})
	}
}

// TestBrokerSubstitutesDeviceKey: property 2. The broker puts its key in
// the hello; it cannot make the tags (no PoP), so it keeps the device's.
func TestBrokerSubstitutesDeviceKey(t *testing.T) {
	w := newWorld(t)
	w.mustApprove(w.dev, nil)
	genuine := helloParts(t, w.hello(w.dev))
	broker := testKey(t, "enroll broker")
	for _, tc := range []struct {
		name string
		make func() []byte
		want error
	}{
		{"its key, signed by it, the device's tags", func() []byte {
			b := forgeHello(t, gatewayID, "door-7", pubBytes(t, broker), genuine.nonce, genuine.nonceG, nil, nil, broker)
			copy(b[len(genuine.body):], genuine.tagW)
			copy(b[len(genuine.body)+tagSize:], genuine.tagPrior)
			return b
		}, ErrFingerprint},
		{"its key, the device's tags and signature", func() []byte {
			b := slices.Concat(helloBody(gatewayID, "door-7", pubBytes(t, broker), genuine.nonce, genuine.nonceG), genuine.tagW, genuine.tagPrior, genuine.sig)
			return b
		}, ErrFingerprint},
		{"the device's key, signed by it (no PoP)", func() []byte {
			return forgeHello(t, gatewayID, "door-7", genuine.pkD, genuine.nonce, genuine.nonceG, nil, nil, broker)
		}, ErrPoP},
		{"the device's key and tags, signed by it", func() []byte {
			b := forgeHello(t, gatewayID, "door-7", genuine.pkD, genuine.nonce, genuine.nonceG, nil, nil, broker)
			copy(b[len(genuine.body):], genuine.tagW)
			copy(b[len(genuine.body)+tagSize:], genuine.tagPrior)
			return b
		}, ErrSignature},
	} {
		t.Run(tc.name, func(t *testing.T) {
			wb, err := handle(w.reg, tc.make())
			wantClass(t, "HandleHello", err, tc.want)
			if wb != nil || w.gw.addCount() != 0 {
				t.Fatal("enrolled")
			}
		})
	}
	// The genuine hello still enrolls the device, and only it.
	wb, err := handle(w.reg, w.hello(w.dev))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.dev.AcceptWelcome(wb); err != nil {
		t.Fatal(err)
	}
	if got, _ := w.gw.adds[0].Key.Bytes(); !bytes.Equal(got, w.dev.PublicKey()) || w.gw.addCount() != 1 {
		t.Fatal("not the device's key")
	}
}

// TestBrokerSubstitutesGatewayKey: property 2. The broker puts its key in
// the welcome; it cannot make the tag. The device refuses it and still
// waits for the genuine one.
func TestBrokerSubstitutesGatewayKey(t *testing.T) {
	w := newWorld(t)
	w.gw.highest["door-7"] = 10
	w.mustApprove(w.dev, nil)
	wb, err := handle(w.reg, w.hello(w.dev))
	if err != nil {
		t.Fatal(err)
	}
	g := welcomeParts(t, wb)
	broker := testKey(t, "enroll broker")
	brokerPub := pubBytes(t, broker)
	for _, tc := range []struct {
		name string
		b    []byte
		want error
	}{
		{"its key, signed by it, the gateway's tag", func() []byte {
			b := forgeWelcome(t, gatewayID, "door-7", g.t, g.nonce, brokerPub, g.floor, nil, broker)
			copy(b[len(g.body):], g.tag)
			return b
		}(), ErrPoP},
		{"its key, the gateway's tag and signature", slices.Concat(
			welcomeBody(gatewayID, "door-7", g.t, g.nonce, brokerPub, g.floor), g.tag, g.sigG), ErrPoP},
		{"another assigned id, the gateway's tag and signature", slices.Concat(
			welcomeBody(gatewayID, "admin", g.t, g.nonce, g.pkG, g.floor), g.tag, g.sigG), ErrPoP},
		{"a lower counter floor", slices.Concat(
			welcomeBody(gatewayID, "door-7", g.t, g.nonce, g.pkG, 1), g.tag, g.sigG), ErrPoP},
		{"the gateway's welcome, signature flipped", flip(wb, -1), ErrSignature},
		{"the gateway's tag, signed by the broker", func() []byte {
			b := forgeWelcome(t, gatewayID, "door-7", g.t, g.nonce, g.pkG, g.floor, nil, broker)
			copy(b[len(g.body):], g.tag)
			return b
		}(), ErrSignature},
	} {
		t.Run(tc.name, func(t *testing.T) {
			res, err := w.dev.AcceptWelcome(tc.b)
			wantClass(t, "AcceptWelcome", err, tc.want)
			if res != nil {
				t.Fatal("accepted")
			}
		})
	}
	if _, err := w.dev.AcceptWelcome(wb); err != nil {
		t.Fatalf("the genuine welcome after the forgeries: %v", err)
	}
}

// TestReplayedHello: property 2. A hello replayed after completion gets a
// welcome again and enrolls nothing new; after the approval expired it
// gets nothing.
func TestReplayedHello(t *testing.T) {
	w := newWorld(t)
	w.mustApprove(w.dev, nil)
	h := w.hello(w.dev)
	first, err := handle(w.reg, h)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.dev.AcceptWelcome(first); err != nil {
		t.Fatal(err)
	}
	for i := range 3 {
		w.clock.Advance(time.Second)
		again, err := handle(w.reg, h)
		if err != nil {
			t.Fatalf("replay %d: %v", i, err)
		}
		if !bytes.Equal(again[:len(again)-sigSize], first[:len(first)-sigSize]) {
			t.Fatal("a repeated hello got another welcome body")
		}
		// The device no longer waits.
		_, err = w.dev.AcceptWelcome(again)
		wantClass(t, "AcceptWelcome of the repeat", err, ErrContext)
	}
	// A hello the device makes anew (it lost its welcome) is answered
	// too, and enrolls nothing new either.
	wb, err := handle(w.reg, w.hello(w.dev))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.dev.AcceptWelcome(wb); err != nil {
		t.Fatal(err)
	}
	if n := w.gw.addCount(); n != 1 {
		t.Fatalf("Add called %d times", n)
	}
	if st := w.reg.Stats(); st.Enrolled != 1 || st.Welcomes != 5 {
		t.Fatalf("stats %+v", st)
	}
	w.clock.Advance(DefaultTTL)
	_, err = handle(w.reg, h)
	wantClass(t, "after expiry", err, ErrNoApproval)
	if n := w.gw.addCount(); n != 1 {
		t.Fatalf("Add called %d times", n)
	}
}

// TestReplayedWelcome: property 2. A device waiting on a new hello refuses
// a welcome to an older one, and any welcome once it accepted one.
func TestReplayedWelcome(t *testing.T) {
	w := newWorld(t)
	w.mustApprove(w.dev, nil)
	first, err := handle(w.reg, w.hello(w.dev))
	if err != nil {
		t.Fatal(err)
	}
	w.clock.Advance(time.Second)
	second, err := handle(w.reg, w.hello(w.dev)) // a retry: new nonce
	if err != nil {
		t.Fatal(err)
	}
	_, err = w.dev.AcceptWelcome(first)
	wantClass(t, "the welcome to the earlier hello", err, ErrContext)
	if _, err := w.dev.AcceptWelcome(second); err != nil {
		t.Fatal(err)
	}
	for _, b := range [][]byte{first, second} {
		_, err = w.dev.AcceptWelcome(b)
		wantClass(t, "a welcome after the device accepted one", err, ErrContext)
	}
	// A new Device (a reboot) waits for nothing, and then for its own
	// hello only.
	d2 := newDevice(t, "door-7", "enroll device")
	_, err = d2.AcceptWelcome(second)
	wantClass(t, "a welcome before any hello", err, ErrContext)
	w.hello(d2)
	_, err = d2.AcceptWelcome(second)
	wantClass(t, "an old welcome after the reboot's hello", err, ErrContext)
}

// TestGuessingThePoP: property 3. Hellos with the device's key and F but
// guessed tags enroll nothing, cost no state beyond the approval held,
// are counted per id, and beyond the rate are refused as throttled before
// any HMAC. 10^6 guesses; 10^5 with -race or -short.
func TestGuessingThePoP(t *testing.T) {
	n := 1_000_000
	if raceEnabled || testing.Short() {
		n = 100_000
	}
	w := newWorld(t)
	w.mustApprove(w.dev, func(a *Approval) { a.TTL = MaxTTL })
	genuine := w.hello(w.dev)
	guess := slices.Clone(genuine)
	tags := guess[len(guess)-sigSize-2*tagSize : len(guess)-sigSize]
	rng := rand.NewChaCha8([32]byte{'g', 'u', 'e', 's', 's'})
	start := time.Now()

	// With the clock still, the burst reaches the HMAC and no more.
	for range 1000 {
		rng.Read(tags)
		_, err := handle(w.reg, guess)
		if c := Class(err); c != ErrPoP && c != ErrThrottled {
			t.Fatalf("guess: %v", err)
		}
	}
	st := w.reg.Stats()
	if st.Refused.PoP != DefaultBurst || st.Refused.Throttled != 1000-DefaultBurst {
		t.Fatalf("with the clock still: %+v", st.Refused)
	}

	// n guesses 1 ms apart: the rate lets 5 a second through.
	for i := range n {
		w.clock.Advance(time.Millisecond)
		rng.Read(tags)
		wb, err := handle(w.reg, guess)
		if c := Class(err); wb != nil || (c != ErrPoP && c != ErrThrottled) {
			t.Fatalf("guess %d: %v", i, err)
		}
	}
	st = w.reg.Stats()
	hmacs := st.Refused.PoP - DefaultBurst // each guess that was not throttled cost one HMAC
	want := uint64(n) * DefaultRate / 1000
	if hmacs+1 < want || hmacs > want+1 || st.Refused.PoP+st.Refused.Throttled != uint64(n)+1000 {
		t.Fatalf("%d guesses: %d checked (want %d), refused %+v", n, hmacs, want, st.Refused)
	}
	if id := st.ByID["door-7"]; id.PoP != st.Refused.PoP || id.Throttled != st.Refused.Throttled {
		t.Fatalf("per id %+v, total %+v", id, st.Refused)
	}
	t.Logf("%d guesses: %d refused as throttled, %d HMACs (pop), in %v", n+1000, st.Refused.Throttled, st.Refused.PoP, time.Since(start))

	// Guesses for ids without an approval: one look-up each, no state.
	ids := n / 10
	for i := range ids {
		id := []byte("door-0000000")
		for j := len(id) - 1; j > 4; j-- {
			id[j] = '0' + byte(rng.Uint64()%10)
		}
		h := forgeHelloFast(genuine, string(id))
		if _, err := handle(w.reg, h); !errors.Is(err, ErrNoApproval) {
			t.Fatalf("guess %d for an unknown id: %v", i, err)
		}
	}

	st = w.reg.Stats()
	w.reg.mu.Lock()
	held := len(w.reg.approvals)
	w.reg.mu.Unlock()
	if held != 1 || st.Approvals != 1 || len(st.ByID) != 1 || st.Refused.NoApproval != uint64(ids) || w.gw.addCount() != 0 {
		t.Fatalf("state: %d approvals held, stats %+v, %d added", held, st, w.gw.addCount())
	}
	// The device, which has the PoP, still enrolls once a token is back.
	w.clock.Advance(time.Second)
	wb, err := handle(w.reg, genuine)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.dev.AcceptWelcome(wb); err != nil {
		t.Fatal(err)
	}
}

// forgeHelloFast is h with another id in it (tags and signature left as
// they are; they do not matter before check 3).
func forgeHelloFast(h []byte, id string) []byte {
	gl := int(h[1])
	il := int(h[2+gl])
	return slices.Concat(h[:2+gl], []byte{byte(len(id))}, []byte(id), h[3+gl+il:])
}

// TestApprovalRefused: property 5. An approval that was not encrypted,
// from an operator who may not approve, that is malformed or that expired
// enrolls nothing.
func TestApprovalRefused(t *testing.T) {
	for _, tc := range []struct {
		name      string
		operator  string
		encrypted bool
		edit      func([]byte) []byte
		wait      time.Duration // from the approval to the hello
		approve   error         // Approve's class
		hello     error         // HandleHello's class
	}{
		{name: "encrypted", operator: operatorID, encrypted: true},
		{name: "not encrypted", operator: operatorID, approve: ErrForbidden, hello: ErrNoApproval},
		{name: "operator may not approve", operator: "door-9", encrypted: true, approve: ErrForbidden, hello: ErrNoApproval},
		{name: "operator id not valid", operator: "", encrypted: true, approve: ErrForbidden, hello: ErrNoApproval},
		{name: "malformed", operator: operatorID, encrypted: true, edit: func(b []byte) []byte { return b[:len(b)-1] },
			approve: ErrBadRequest, hello: ErrNoApproval},
		{name: "lasts 300 s by default: 299 s", operator: operatorID, encrypted: true, wait: 299 * time.Second},
		{name: "lasts 300 s by default: 300 s", operator: operatorID, encrypted: true, wait: 300 * time.Second, hello: ErrNoApproval},
		{name: "ttl 1 s: expired after 1 s", operator: operatorID, encrypted: true, wait: time.Second, hello: ErrNoApproval,
			edit: func(b []byte) []byte { b[len(b)-1] = 1; return b }},
		{name: "ttl 3600 s: 3599 s", operator: operatorID, encrypted: true, wait: 3599 * time.Second,
			edit: func(b []byte) []byte { b[len(b)-2], b[len(b)-1] = 3600>>8, 3600&0xff; return b }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			w := newWorld(t)
			p, _ := FromCode(w.dev.Code(w.clock.Now()), template).MarshalBinary()
			if tc.edit != nil {
				p = tc.edit(p)
			}
			wantClass(t, "Approve", approveAs(w.reg, tc.operator, p, tc.encrypted), tc.approve)
			h := w.hello(w.dev) // made at once: its tags are current
			w.clock.Advance(tc.wait)
			wb, err := handle(w.reg, h)
			wantClass(t, "HandleHello", err, tc.hello)
			if tc.hello != nil && (wb != nil || w.gw.addCount() != 0) {
				t.Fatal("enrolled")
			}
			if tc.hello == nil && w.gw.addCount() != 1 {
				t.Fatal("not enrolled")
			}
		})
	}
}

// TestReenrollment: property 6. A second approval for a known id with a new
// device key replaces the old key (Enrollment.Replace), and the counter
// floor is above every counter the gateway accepted from the id.
func TestReenrollment(t *testing.T) {
	for _, tc := range []struct {
		name    string
		id      string // the new device's proposed id
		assign  string
		highest uint64
	}{
		{"same id", "door-7", "", 41},
		{"same id, nothing accepted", "door-7", "", 0},
		{"new proposed id, assigned the known one", "door-7b", "door-7", 1 << 40},
		{"highest counter 2^64-2", "door-7", "", math.MaxUint64 - 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			w := newWorld(t)
			first := w.enroll(w.dev, nil)
			if first.CounterFloor != 1 {
				t.Fatalf("first floor %d", first.CounterFloor)
			}
			w.gw.highest["door-7"] = tc.highest
			d2 := newDevice(t, tc.id, "enroll device, new key")
			w.clock.Advance(time.Minute)
			res := w.enroll(d2, func(a *Approval) { a.Assign = tc.assign })
			if res.ID != "door-7" || res.CounterFloor != tc.highest+1 {
				t.Fatalf("welcome %+v, want id door-7, floor %d", res, tc.highest+1)
			}
			if w.gw.adds[0].Replace || !w.gw.adds[1].Replace {
				t.Fatalf("Replace: first %v, second %v", w.gw.adds[0].Replace, w.gw.adds[1].Replace)
			}
			keys := w.gw.keys["door-7"]
			if len(keys) != 1 || !bytes.Equal(keys[0], d2.PublicKey()) {
				t.Fatalf("keys of door-7: %d", len(keys))
			}
		})
	}
	// 2^64-1 accepted: no floor is left, nothing is enrolled.
	w := newWorld(t)
	w.gw.highest["door-7"] = math.MaxUint64
	w.mustApprove(w.dev, nil)
	_, err := handle(w.reg, w.hello(w.dev))
	wantClass(t, "exhausted counter", err, ErrInternal)
	if w.gw.addCount() != 0 {
		t.Fatal("enrolled")
	}
}

// TestRepeatedWelcomeFloor: a welcome repeated later carries the floor of
// the first, and HighestCounter is asked once per completion.
func TestRepeatedWelcomeFloor(t *testing.T) {
	w := newWorld(t)
	w.gw.highest["door-7"] = 10
	w.mustApprove(w.dev, nil)
	h := w.hello(w.dev)
	first, err := handle(w.reg, h)
	if err != nil {
		t.Fatal(err)
	}
	if f := welcomeParts(t, first).floor; f != 11 {
		t.Fatalf("floor %d", f)
	}
	w.gw.highest["door-7"] = 20
	again, _ := handle(w.reg, h)
	if f := welcomeParts(t, again).floor; f != 11 {
		t.Fatalf("floor %d", f)
	}
	w.gw.ctrErr = errors.New("the store is down") // not asked
	again, err = handle(w.reg, w.hello(w.dev))
	if err != nil || welcomeParts(t, again).floor != 11 {
		t.Fatalf("%v", err)
	}
	if w.gw.ctrCalls != 1 || w.gw.addCount() != 1 {
		t.Fatalf("HighestCounter called %d times, Add %d", w.gw.ctrCalls, w.gw.addCount())
	}
}

// TestHelloOrder: a hello with several faults is refused for the first
// check of SPEC.md §14.4 it fails.
func TestHelloOrder(t *testing.T) {
	w := newWorld(t)
	w.mustApprove(w.dev, nil)
	g := helloParts(t, w.hello(w.dev))
	pop, popPrev := devicePoPs(w.dev, w.clock.Now())
	other := testKey(t, "enroll other device")
	dev := testKey(t, "enroll device")
	for _, tc := range []struct {
		name string
		b    []byte
		want error
	}{
		{"malformed, another gateway", append(forgeHello(t, "gateway-2", "door-7", g.pkD, g.nonce, g.nonceG, &pop, &popPrev, dev), 0), ErrMalformed},
		{"another gateway, no approval", forgeHello(t, "gateway-2", "door-8", g.pkD, g.nonce, g.nonceG, &pop, &popPrev, dev), ErrContext},
		{"no approval, bad signature", forgeHello(t, gatewayID, "door-8", g.pkD, g.nonce, g.nonceG, &pop, &popPrev, other), ErrNoApproval},
		{"other key, no tag", forgeHello(t, gatewayID, "door-7", pubBytes(t, other), g.nonce, g.nonceG, nil, nil, other), ErrFingerprint},
		{"no tag, bad signature", forgeHello(t, gatewayID, "door-7", g.pkD, g.nonce, g.nonceG, nil, nil, other), ErrPoP},
		{"tag of the present window only", forgeHello(t, gatewayID, "door-7", g.pkD, g.nonce, g.nonceG, &pop, nil, dev), nil},
		{"tag of the window before only", forgeHello(t, gatewayID, "door-7", g.pkD, g.nonce, g.nonceG, nil, &pop, dev), nil},
		{"tags swapped", forgeHello(t, gatewayID, "door-7", g.pkD, g.nonce, g.nonceG, &popPrev, &pop, dev), nil},
		{"key not on the curve", func() []byte {
			pk := slices.Clone(g.pkD)
			pk[64] ^= 1
			return forgeHello(t, gatewayID, "door-7", pk, g.nonce, g.nonceG, &pop, &popPrev, dev)
		}(), ErrFingerprint},
		{"signature r = 0", func() []byte {
			b := forgeHello(t, gatewayID, "door-7", g.pkD, g.nonce, g.nonceG, &pop, &popPrev, dev)
			clear(b[len(b)-sigSize : len(b)-sigSize/2])
			return b
		}(), ErrSignature},
		{"empty", nil, ErrMalformed},
		{"the first byte alone", []byte{helloByte}, ErrMalformed},
		{"a welcome", forgeWelcome(t, gatewayID, "door-7", make([]byte, 32), g.nonce, g.pkD, 1, nil, dev), ErrMalformed},
		{"513 bytes", append(forgeHello(t, gatewayID, "door-7", g.pkD, g.nonce, g.nonceG, &pop, &popPrev, dev), make([]byte, 513-len(g.body)-128)...), ErrMalformed},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := handle(w.reg, tc.b)
			wantClass(t, "HandleHello", err, tc.want)
		})
	}
}

// TestRate: the rate per id is a token bucket of DefaultBurst refilled at
// DefaultRate a second, each id its own.
func TestRate(t *testing.T) {
	w := newWorld(t)
	w.mustApprove(w.dev, nil)
	d8 := newDevice(t, "door-8", "enroll other device")
	w.mustApprove(d8, nil)
	bad := flip(w.hello(w.dev), -1) // refused at the signature, after the rate
	try := func() error { _, err := handle(w.reg, bad); return Class(err) }
	for i := range DefaultBurst {
		if c := try(); c != ErrSignature {
			t.Fatalf("hello %d: %v", i, c)
		}
	}
	if c := try(); c != ErrThrottled {
		t.Fatalf("beyond the burst: %v", c)
	}
	// Another id has its own bucket.
	if _, err := handle(w.reg, w.hello(d8)); err != nil {
		t.Fatalf("another id: %v", err)
	}
	w.clock.Advance(199 * time.Millisecond)
	if c := try(); c != ErrThrottled {
		t.Fatalf("after 199 ms: %v", c)
	}
	w.clock.Advance(time.Millisecond)
	if c := try(); c != ErrSignature {
		t.Fatalf("after 200 ms: %v", c)
	}
	if c := try(); c != ErrThrottled {
		t.Fatalf("again: %v", c)
	}
	w.clock.Advance(-time.Hour) // a clock set back refills nothing
	if c := try(); c != ErrThrottled {
		t.Fatalf("clock set back: %v", c)
	}
	w.clock.Advance(time.Hour + time.Minute)
	for i := range DefaultBurst {
		if c := try(); c != ErrSignature {
			t.Fatalf("after a minute, hello %d: %v", i, c)
		}
	}
	if c := try(); c != ErrThrottled {
		t.Fatalf("the burst is the most: %v", c)
	}
	// A new approval for the id keeps its bucket and counts.
	w.mustApprove(w.dev, nil)
	if c := try(); c != ErrThrottled {
		t.Fatalf("after a new approval: %v", c)
	}
	if got := w.reg.Stats().ByID["door-7"]; got.Signature != 2*DefaultBurst+1 || got.Throttled != 6 {
		t.Fatalf("counts %+v", got)
	}
}

// TestMaxApprovals: at most MaxApprovals approvals are held; a new one for
// an id that has one replaces it; expired ones make room.
func TestMaxApprovals(t *testing.T) {
	w := newWorld(t)
	r, err := NewRegistrar(RegistrarConfig{ID: gatewayID, Key: testKey(t, "enroll gateway"), Templates: []string{template},
		MayApprove: func(string) bool { return true }, Known: w.gw.Known, Add: w.gw.Add, HighestCounter: w.gw.HighestCounter,
		Clock: w.clock.Now, MaxApprovals: 3})
	if err != nil {
		t.Fatal(err)
	}
	approve := func(id string, ttl time.Duration) error {
		p, _ := (&Approval{ID: id, Template: template, TTL: ttl}).MarshalBinary()
		return approveAs(r, operatorID, p, true)
	}
	for _, id := range []string{"a", "b", "c"} {
		if err := approve(id, time.Duration(len(id))*time.Minute); err != nil {
			t.Fatal(err)
		}
	}
	wantClass(t, "a fourth", approve("d", 0), ErrFull)
	wantClass(t, "replacing one", approve("b", 10*time.Second), nil)
	w.clock.Advance(10 * time.Second) // b expires
	wantClass(t, "a fourth after one expired", approve("d", 0), nil)
	wantClass(t, "a fifth", approve("e", 0), ErrFull)
	if st := r.Stats(); st.Approvals != 3 || st.ApprovalsRefused.Full != 2 || st.Approved != 5 {
		t.Fatalf("stats %+v", st)
	}
}

// TestInternalErrors: Add or HighestCounter failing refuses the hello with
// ErrInternal and leaves the approval pending; the next hello completes it.
func TestInternalErrors(t *testing.T) {
	for _, which := range []string{"add", "counter"} {
		t.Run(which, func(t *testing.T) {
			w := newWorld(t)
			cause := errors.New("disk full")
			if which == "add" {
				w.gw.addErr = cause
			} else {
				w.gw.ctrErr = cause
			}
			w.mustApprove(w.dev, nil)
			h := w.hello(w.dev)
			_, err := handle(w.reg, h)
			wantClass(t, "HandleHello", err, ErrInternal)
			if !errors.Is(err, cause) {
				t.Fatalf("%v does not wrap the cause", err)
			}
			if st := w.reg.Stats(); st.Completed != 0 || st.Internal != 1 || w.gw.addCount() != 0 {
				t.Fatalf("stats %+v", st)
			}
			w.gw.addErr, w.gw.ctrErr = nil, nil
			wb, err := handle(w.reg, h)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := w.dev.AcceptWelcome(wb); err != nil || w.gw.addCount() != 1 {
				t.Fatalf("%v, %d added", err, w.gw.addCount())
			}
		})
	}
}

// TestConcurrentHellos: the same hello handled at once by many goroutines
// adds the device once; every one gets a welcome.
func TestConcurrentHellos(t *testing.T) {
	w := newWorld(t)
	r, err := NewRegistrar(RegistrarConfig{ID: gatewayID, Key: testKey(t, "enroll gateway"), Templates: []string{template},
		MayApprove: func(string) bool { return true }, Known: w.gw.Known, Add: w.gw.Add, HighestCounter: w.gw.HighestCounter,
		Clock: w.clock.Now, Burst: 100})
	if err != nil {
		t.Fatal(err)
	}
	w.reg = r
	w.mustApprove(w.dev, nil)
	h := w.hello(w.dev)
	var wg sync.WaitGroup
	errs := make(chan error, 16)
	for range 16 {
		wg.Go(func() {
			if _, err := handle(r, h); err != nil {
				errs <- err
			}
		})
	}
	wg.Go(func() { r.Stats() })
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if n := w.gw.addCount(); n != 1 {
		t.Fatalf("Add called %d times", n)
	}
}

// TestConfig: constructors refuse what they cannot work with.
func TestConfig(t *testing.T) {
	key := testKey(t, "enroll gateway")
	ok := func() RegistrarConfig {
		g := &gateway{}
		return RegistrarConfig{ID: gatewayID, Key: key, Templates: []string{template},
			MayApprove: func(string) bool { return true }, Known: g.Known, Add: g.Add, HighestCounter: g.HighestCounter}
	}
	if _, err := NewRegistrar(ok()); err != nil {
		t.Fatal(err)
	}
	for name, edit := range map[string]func(*RegistrarConfig){
		"id":          func(c *RegistrarConfig) { c.ID = "a b" },
		"no key":      func(c *RegistrarConfig) { c.Key = nil },
		"other curve": func(c *RegistrarConfig) { k := *key; k.Curve = nil; c.Key = &k },
		"no template": func(c *RegistrarConfig) { c.Templates = nil },
		"template":    func(c *RegistrarConfig) { c.Templates = []string{""} },
		"MayApprove":  func(c *RegistrarConfig) { c.MayApprove = nil },
		"Known":       func(c *RegistrarConfig) { c.Known = nil },
		"Add":         func(c *RegistrarConfig) { c.Add = nil },
		"Counter":     func(c *RegistrarConfig) { c.HighestCounter = nil },
		"max":         func(c *RegistrarConfig) { c.MaxApprovals = -1 },
		"rate":        func(c *RegistrarConfig) { c.Rate = math.Inf(1) },
		"rate NaN":    func(c *RegistrarConfig) { c.Rate = math.NaN() },
		"burst":       func(c *RegistrarConfig) { c.Burst = -1 },
	} {
		c := ok()
		edit(&c)
		if _, err := NewRegistrar(c); !errors.Is(err, ErrInvalidConfig) || Class(err) != nil {
			t.Errorf("%s: %v", name, err)
		}
	}
	for name, cfg := range map[string]DeviceConfig{
		"id":         {ID: ""},
		"window":     {ID: "d", Window: 1500 * time.Millisecond},
		"short":      {ID: "d", Window: time.Millisecond},
		"negative":   {ID: "d", Window: -time.Second},
		"too long":   {ID: "d", Window: MaxWindow + time.Second},
		"wrong type": {ID: "d", Key: &ecdsa.PrivateKey{}},
	} {
		if _, err := NewDevice(cfg); !errors.Is(err, ErrInvalidConfig) {
			t.Errorf("device %s: %v", name, err)
		}
	}
	d, err := NewDevice(DeviceConfig{ID: "d"}) // a fresh key and seed
	if err != nil || d.WindowLength() != DefaultWindow || d.Key() == nil {
		t.Fatal(d, err)
	}
	d2, _ := NewDevice(DeviceConfig{ID: "d", Key: d.Key()})
	if d.Code(t0).PoP == d2.Code(t0).PoP {
		t.Fatal("two Devices with one seed")
	}
	if _, err := d.Hello(t0, "not valid"); !errors.Is(err, ErrInvalidConfig) {
		t.Fatal(err)
	}
}

// TestWindow: w = floor(t / N), modulo 2^64.
func TestWindow(t *testing.T) {
	for _, tc := range []struct {
		t    int64
		n    time.Duration
		want uint64
	}{
		{0, 30 * time.Second, 0},
		{29, 30 * time.Second, 0},
		{30, 30 * time.Second, 1},
		{1767225645, 30 * time.Second, 58907521},
		{-1, 30 * time.Second, math.MaxUint64},
		{-30, 30 * time.Second, math.MaxUint64},
		{-31, 30 * time.Second, math.MaxUint64 - 1},
		{59, time.Minute + 500*time.Millisecond, 0},
		{7, 0, 7},
	} {
		if got := Window(time.Unix(tc.t, 999_999_999), tc.n); got != tc.want {
			t.Errorf("Window(%d, %v) = %d, want %d", tc.t, tc.n, got, tc.want)
		}
	}
	// At w = 0 the window before is 2^64-1: a device whose monotonic
	// clock starts at 0 enrolls in its first window as in any other.
	w := newWorld(t)
	d := newDevice(t, "door-7", "enroll device")
	w.clock.Set(time.Unix(3, 0))
	w.mustApprove(d, nil)
	wb, err := handle(w.reg, w.hello(d))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := d.AcceptWelcome(wb); err != nil {
		t.Fatal(err)
	}
}
