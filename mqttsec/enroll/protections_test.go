package enroll

import (
	"bytes"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

// TestChallenge: a hello without the approval's nonceG gets a challenge,
// not a welcome, and changes nothing; the device's next hello carries it.
func TestChallenge(t *testing.T) {
	w := newWorld(t)
	w.mustApprove(w.dev, nil)
	first, err := w.dev.Hello(w.clock.Now(), gatewayID)
	if err != nil {
		t.Fatal(err)
	}
	if g := helloParts(t, first).nonceG; !bytes.Equal(g, make([]byte, NonceSize)) {
		t.Fatal("a hello before any challenge carries a nonceG")
	}
	reply, kind, err := w.reg.HandleHello(first)
	if err != nil || kind != ReplyChallenge {
		t.Fatalf("%v, %v", kind, err)
	}
	n := nonceGOf(w.reg, "door-7")
	if !bytes.Equal(reply, challengeBytes(gatewayID, "door-7", n[:])) || w.gw.addCount() != 0 {
		t.Fatalf("challenge %x", reply)
	}
	if st := w.reg.Stats(); st.Challenged != 1 || st.Welcomes != 0 {
		t.Fatalf("stats %+v", st)
	}
	if err := w.dev.AcceptChallenge(reply); err != nil {
		t.Fatal(err)
	}
	hb, err := w.dev.Hello(w.clock.Now(), gatewayID)
	if err != nil {
		t.Fatal(err)
	}
	if g := helloParts(t, hb).nonceG; !bytes.Equal(g, n[:]) {
		t.Fatal("the hello after the challenge does not carry its nonceG")
	}
	// A hello to another gateway carries none.
	other, _ := w.dev.Hello(w.clock.Now(), "gateway-2")
	if g := helloParts(t, other).nonceG; !bytes.Equal(g, make([]byte, NonceSize)) {
		t.Fatal("a hello to another gateway carries the nonceG")
	}
	hb, _ = w.dev.Hello(w.clock.Now(), gatewayID)
	reply, kind, err = w.reg.HandleHello(hb)
	if err != nil || kind != ReplyWelcome {
		t.Fatalf("%v, %v", kind, err)
	}
	if _, err := w.dev.AcceptWelcome(reply); err != nil {
		t.Fatal(err)
	}
	// A challenge comes after the rate: a flood of old hellos is
	// throttled.
	for range DefaultBurst {
		w.reg.HandleHello(first)
	}
	_, err = handle(w.reg, first)
	wantClass(t, "beyond the rate", err, ErrThrottled)
}

// TestReplayAfterNewApproval: a hello recorded under approval 1 and
// replayed after approval 2 for the same id gets a challenge, never a
// welcome; nothing is added.
func TestReplayAfterNewApproval(t *testing.T) {
	w := newWorld(t)
	w.mustApprove(w.dev, nil)
	recorded := w.hello(w.dev) // carries approval 1's nonceG; never delivered
	n1 := nonceGOf(w.reg, "door-7")
	w.clock.Advance(time.Second)
	w.mustApprove(w.dev, nil) // approval 2, the same code still current
	n2 := nonceGOf(w.reg, "door-7")
	if n1 == n2 {
		t.Fatal("a new approval kept the nonceG")
	}
	for range 3 {
		reply, kind, err := w.reg.HandleHello(recorded)
		if err != nil || kind != ReplyChallenge || !bytes.Equal(reply, challengeBytes(gatewayID, "door-7", n2[:])) {
			t.Fatalf("replay: %v, %v", kind, err)
		}
	}
	if w.gw.addCount() != 0 {
		t.Fatal("the replay enrolled")
	}
	// The same after approval 1 completed.
	w2 := newWorld(t)
	w2.enroll(w2.dev, nil)
	h := w2.hello(w2.dev)
	w2.clock.Advance(time.Second)
	w2.mustApprove(w2.dev, nil)
	_, err := handle(w2.reg, h)
	if !errors.Is(err, errChallenged) || w2.gw.addCount() != 1 {
		t.Fatalf("%v, %d added", err, w2.gw.addCount())
	}
}

// TestAcceptChallenge: what the device refuses.
func TestAcceptChallenge(t *testing.T) {
	d := newDevice(t, "door-7", "enroll device")
	n := bytes.Repeat([]byte{7}, NonceSize)
	good := challengeBytes(gatewayID, "door-7", n)
	wantClass(t, "no hello pending", d.AcceptChallenge(good), ErrContext)
	if _, err := d.Hello(t0, gatewayID); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		b    []byte
		want error
	}{
		{"empty", nil, ErrMalformed},
		{"a hello's first byte", append([]byte{helloByte}, good[1:]...), ErrMalformed},
		{"cut", good[:len(good)-1], ErrMalformed},
		{"trailing", append(slices.Clone(good), 0), ErrMalformed},
		{"id not valid", challengeBytes(gatewayID, "door 7", n), ErrMalformed},
		{"too long", append(slices.Clone(good), make([]byte, MaxMessageSize)...), ErrMalformed},
		{"another gateway", challengeBytes("gateway-2", "door-7", n), ErrContext},
		{"another device", challengeBytes(gatewayID, "door-8", n), ErrContext},
		{"good", good, nil},
	} {
		wantClass(t, tc.name, d.AcceptChallenge(tc.b), tc.want)
	}
	h, _ := d.Hello(t0, gatewayID)
	if !bytes.Equal(helloParts(t, h).nonceG, n) {
		t.Fatal("not carried")
	}
}

// TestRevoked: an approval naming a revoked key is forbidden; a key
// revoked between the approval and the hello completes nothing.
func TestRevoked(t *testing.T) {
	w := newWorld(t)
	w.gw.revoked = map[[FingerprintSize]byte]bool{w.dev.Fingerprint(): true}
	wantClass(t, "Approve", w.approve(w.dev, nil), ErrForbidden)
	w.gw.set(func(g *gateway) { g.revoked = nil })
	w.mustApprove(w.dev, nil)
	h := w.hello(w.dev)
	w.gw.set(func(g *gateway) { g.revoked = map[[FingerprintSize]byte]bool{w.dev.Fingerprint(): true} })
	_, err := handle(w.reg, h)
	wantClass(t, "HandleHello", err, ErrForbidden)
	if w.gw.addCount() != 0 || w.reg.Stats().Refused.Forbidden != 1 {
		t.Fatal("enrolled")
	}
	_, err = handle(w.reg, h)
	wantClass(t, "again: the approval was dropped", err, ErrNoApproval)
}

// TestReenrollPermission: assigning a known id needs MayReenroll; the
// operator's own id is forbidden, G's a bad request.
func TestReenrollPermission(t *testing.T) {
	w := newWorld(t)
	w.enroll(w.dev, nil)
	d2 := newDevice(t, "door-7", "enroll device, new key")
	w.gw.set(func(g *gateway) { g.mayReenroll = false })
	wantClass(t, "known id without MayReenroll", w.approve(d2, nil), ErrForbidden)
	wantClass(t, "assigned the known id", w.approve(newDevice(t, "door-8", "enroll other device"),
		func(a *Approval) { a.Assign = "door-7" }), ErrForbidden)
	wantClass(t, "a new id", w.approve(newDevice(t, "door-8", "enroll other device"), nil), nil)
	wantClass(t, "the operator's own id", w.approve(d2, func(a *Approval) { a.Assign = operatorID }), ErrForbidden)
	wantClass(t, "the operator's own id proposed", w.approve(newDevice(t, operatorID, "x"), nil), ErrForbidden)
	wantClass(t, "G's id", w.approve(d2, func(a *Approval) { a.Assign = gatewayID }), ErrBadRequest)
	w.gw.set(func(g *gateway) { g.mayReenroll = true })
	res := w.enroll(d2, nil)
	if !w.gw.adds[1].Replace || res.ID != "door-7" {
		t.Fatal("not a replacement")
	}
	// MayReenroll withdrawn between the approval and the hello.
	d3 := newDevice(t, "door-7", "enroll third device")
	w.clock.Advance(time.Minute)
	w.mustApprove(d3, nil)
	h := w.hello(d3)
	w.gw.set(func(g *gateway) { g.mayReenroll = false })
	_, err := handle(w.reg, h)
	wantClass(t, "MayReenroll withdrawn", err, ErrForbidden)
	if w.gw.addCount() != 2 {
		t.Fatal("enrolled")
	}
}

// TestWithdrawnAtCompletion: MayApprove is checked again when a hello
// completes the approval.
func TestWithdrawnAtCompletion(t *testing.T) {
	w := newWorld(t)
	w.mustApprove(w.dev, nil)
	h := w.hello(w.dev)
	w.gw.set(func(g *gateway) { g.mayApprove = false })
	_, err := handle(w.reg, h)
	wantClass(t, "HandleHello", err, ErrForbidden)
	if w.gw.addCount() != 0 || w.reg.Stats().Completed != 0 {
		t.Fatal("enrolled")
	}
}

// TestApprovalOrder: a new approval for an id replaces the held one only
// if it comes from another operator or has a higher counter.
func TestApprovalOrder(t *testing.T) {
	w := newWorld(t)
	mayApprove := func(string) bool { return true }
	r, err := NewRegistrar(w.gw.config(t, w.clock, func(c *RegistrarConfig) { c.MayApprove = mayApprove }))
	if err != nil {
		t.Fatal(err)
	}
	w.reg = r
	p, _ := FromCode(w.dev.Code(w.clock.Now()), template).MarshalBinary()
	req := func(op string, ctr uint64) error {
		return r.Approve(ApprovalRequest{Operator: op, Counter: ctr, Encrypted: true, Payload: p})
	}
	wantClass(t, "first", req(operatorID, 10), nil)
	n := nonceGOf(r, "door-7")
	wantClass(t, "lower counter", req(operatorID, 9), ErrBadRequest)
	wantClass(t, "same counter", req(operatorID, 10), ErrBadRequest)
	if nonceGOf(r, "door-7") != n {
		t.Fatal("a stale approval replaced the held one")
	}
	wantClass(t, "higher counter", req(operatorID, 11), nil)
	wantClass(t, "another operator, lower counter", req("ops-2", 1), nil)
	wantClass(t, "back to the first, its counter above", req(operatorID, 2), nil)
	if st := r.Stats(); st.Approved != 4 || st.ApprovalsRefused.BadRequest != 2 {
		t.Fatalf("stats %+v", st)
	}
	// Expired, the order starts again.
	w.clock.Advance(DefaultTTL)
	wantClass(t, "after expiry", req(operatorID, 1), nil)
}

// TestRepeatsCallNothing: hellos for a completed approval call neither
// HighestCounter nor Add, and a slow Add for one approval does not hold up
// hellos for another.
func TestRepeatsCallNothing(t *testing.T) {
	w := newWorld(t)
	release, entered := make(chan struct{}), make(chan struct{}, 1)
	slow := func(e Enrollment) error {
		if e.ID == "door-7" {
			select {
			case entered <- struct{}{}:
			default:
			}
			<-release
		}
		return w.gw.Add(e)
	}
	r, err := NewRegistrar(w.gw.config(t, w.clock, func(c *RegistrarConfig) { c.Add = slow; c.Burst = 100 }))
	if err != nil {
		t.Fatal(err)
	}
	w.reg = r
	d8 := newDevice(t, "door-8", "enroll other device")
	w.mustApprove(w.dev, nil)
	w.mustApprove(d8, nil)
	h7, h8 := w.hello(w.dev), w.hello(d8)
	var wg sync.WaitGroup
	wg.Go(func() {
		if _, err := handle(r, h7); err != nil {
			t.Error(err)
		}
	})
	<-entered
	// door-7's Add is blocked: door-8 completes meanwhile.
	done := make(chan error)
	go func() { _, err := handle(r, h8); done <- err }()
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("a slow Add for one approval holds up another")
	}
	close(release)
	wg.Wait()
	calls := w.gw.ctrCalls
	for range 5 {
		if _, err := handle(r, h7); err != nil {
			t.Fatal(err)
		}
	}
	if w.gw.ctrCalls != calls || w.gw.addCount() != 2 {
		t.Fatalf("repeats called HighestCounter %d times, Add %d", w.gw.ctrCalls-calls, w.gw.addCount()-2)
	}
}

// TestCounterExhausted: 2^64-1 accepted leaves no floor, even for a
// re-enrollment.
func TestCounterExhausted(t *testing.T) {
	w := newWorld(t)
	w.enroll(w.dev, nil)
	w.gw.highest["door-7"] = math.MaxUint64
	d2 := newDevice(t, "door-7", "enroll device, new key")
	w.clock.Advance(time.Minute)
	w.mustApprove(d2, nil)
	_, err := handle(w.reg, w.hello(d2))
	wantClass(t, "HandleHello", err, ErrInternal)
	if w.gw.addCount() != 1 {
		t.Fatal("enrolled")
	}
}

// TestCodeRedacted: Code.String and every verb redact the PoP; Text holds
// it.
func TestCodeRedacted(t *testing.T) {
	d := newDevice(t, "door-7", "enroll device")
	c := d.Code(t0)
	p64 := b64.EncodeToString(c.PoP[:])
	if !strings.HasSuffix(c.Text(), ":"+p64) || strings.Contains(c.String(), p64) ||
		c.String() != strings.TrimSuffix(c.Text(), p64)+"PoP(redacted)" {
		t.Fatalf("Text %q, String %q", c.Text(), c.String())
	}
	type holder struct {
		Name string
		Code Code
		Ptr  *Code
	}
	var sb strings.Builder
	text := slog.New(slog.NewTextHandler(&sb, nil))
	for _, v := range []any{c, &c, holder{"x", c, &c}, &holder{"x", c, &c}, []Code{c}} {
		for _, verb := range []string{"%v", "%+v", "%#v", "%s", "%q", "%x"} {
			if s := fmt.Sprintf(verb, v); containsAny(s, string(encodings(c.PoP)[1]), string(encodings(c.PoP)[2])) {
				t.Errorf("%s of %T shows the PoP: %s", verb, v, s)
			}
		}
		text.Info("code", "v", v)
	}
	if containsAny(sb.String(), string(encodings(c.PoP)[1]), string(encodings(c.PoP)[2])) {
		t.Errorf("slog text shows the PoP: %s", sb.String())
	}
}

// TestParseCodeStrict: no CR, LF or space anywhere, exact lengths.
func TestParseCodeStrict(t *testing.T) {
	c := newDevice(t, "door-7", "enroll device").Code(t0)
	good := c.Text()
	i := strings.LastIndexByte(good, ':')
	for name, s := range map[string]string{
		"LF in the PoP":              good[:i+5] + "\n" + good[i+6:],
		"CRLF in the PoP, same size": good[:i+5] + "\r\n" + good[i+7:],
		"CR after":                   good + "\r",
		"LF in the fingerprint":      strings.Replace(good, "door-7:", "door-7:\n", 1)[:len(good)],
		"tab":                        good[:i] + "\t" + good[i:],
	} {
		if _, err := ParseCode(s); Class(err) != ErrMalformed {
			t.Errorf("%s: %v", name, err)
		}
	}
	if got, err := ParseCode(good); err != nil || got != c {
		t.Fatal(err)
	}
}

// TestDeviceWindowNeverBack: a clock stepped back shows the highest
// window's code again, never an earlier one.
func TestDeviceWindowNeverBack(t *testing.T) {
	d := newDevice(t, "door-7", "enroll device")
	later := d.Code(t0.Add(time.Hour))
	if got := d.Code(t0); got != later {
		t.Fatal("a clock stepped back shows an earlier code")
	}
	// The hello too uses the highest window.
	w := newWorld(t)
	w.dev = d
	w.clock.Set(t0.Add(time.Hour))
	w.mustApprove(d, nil)
	w.clock.Set(t0)
	if _, err := handle(w.reg, w.hello(d)); err != nil {
		t.Fatal(err)
	}
	// Forward again moves on.
	if d.Code(t0.Add(2*time.Hour)) == later {
		t.Fatal("the window does not move forward")
	}
}
