package enroll

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/sha256"
	"errors"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/mqttsec/mqttsec/envelope"
)

// testKey derives the ES256 test key of label, as the envelope vectors
// derive theirs. TEST KEYS ONLY.
func testKey(t testing.TB, label string) *ecdsa.PrivateKey {
	t.Helper()
	s := sha256.Sum256([]byte("mqttsec test key: " + label))
	k, err := ecdsa.ParseRawPrivateKey(elliptic.P256(), s[:])
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func pubBytes(t testing.TB, k *ecdsa.PrivateKey) []byte {
	t.Helper()
	b, err := k.PublicKey.Bytes()
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// t0 is the start of a window of 30 s, 2026-01-01T00:00:00Z.
var t0 = time.Unix(1767225600, 0)

// clock is a settable clock.
type clock struct {
	mu  sync.Mutex
	now time.Time
}

func newClock(t time.Time) *clock { return &clock{now: t} }

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *clock) Set(t time.Time) {
	c.mu.Lock()
	c.now = t
	c.mu.Unlock()
}

func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	c.mu.Unlock()
}

// gateway is the keyring side a Registrar calls: what Add added, and the
// highest counters it reports.
type gateway struct {
	mu       sync.Mutex
	adds     []Enrollment
	keys     map[string][][]byte // id → pkD of each key added
	highest  map[string]uint64
	addErr   error
	ctrErr   error
	ctrCalls int
	// What the operator may do, and the keys revoked.
	mayApprove  bool
	mayReenroll bool
	revoked     map[[FingerprintSize]byte]bool
}

func (g *gateway) Known(id string) bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	return len(g.keys[id]) > 0
}

func (g *gateway) MayApprove(id string) bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	return id == operatorID && g.mayApprove
}

func (g *gateway) MayReenroll(op, id string) bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	return op == operatorID && g.mayReenroll
}

func (g *gateway) Revoked(fp [FingerprintSize]byte) bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.revoked[fp]
}

func (g *gateway) set(f func(g *gateway)) {
	g.mu.Lock()
	defer g.mu.Unlock()
	f(g)
}

func (g *gateway) Add(e Enrollment) error {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.addErr != nil {
		return g.addErr
	}
	g.adds = append(g.adds, e)
	b, err := e.Key.Bytes()
	if err != nil {
		return err
	}
	if g.keys == nil {
		g.keys = map[string][][]byte{}
	}
	if e.Replace {
		g.keys[e.ID] = nil
	}
	if !slices.ContainsFunc(g.keys[e.ID], func(k []byte) bool { return bytes.Equal(k, b) }) {
		g.keys[e.ID] = append(g.keys[e.ID], b)
	}
	return nil
}

func (g *gateway) HighestCounter(id string) (uint64, error) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.ctrCalls++
	if g.ctrErr != nil {
		return 0, g.ctrErr
	}
	return g.highest[id], nil
}

func (g *gateway) addCount() int {
	g.mu.Lock()
	defer g.mu.Unlock()
	return len(g.adds)
}

const (
	gatewayID  = "gateway"
	operatorID = "ops-console"
	template   = "door"
)

// world is a registrar, its gateway callbacks and clock, and a device, all
// with test keys; the device's clock is the same clock.
type world struct {
	t     testing.TB
	clock *clock
	gw    *gateway
	reg   *Registrar
	dev   *Device
}

func newWorld(t testing.TB) *world {
	t.Helper()
	c := newClock(t0)
	gw := &gateway{highest: map[string]uint64{}, mayApprove: true, mayReenroll: true}
	reg, err := NewRegistrar(gw.config(t, c, nil))
	if err != nil {
		t.Fatal(err)
	}
	return &world{t: t, clock: c, gw: gw, reg: reg, dev: newDevice(t, "door-7", "enroll device")}
}

// config is a registrar's configuration calling g, edited by edit.
func (g *gateway) config(t testing.TB, c *clock, edit func(*RegistrarConfig)) RegistrarConfig {
	cfg := RegistrarConfig{
		ID: gatewayID, Key: testKey(t, "enroll gateway"), Templates: []string{template, "camera"},
		MayApprove: g.MayApprove, Known: g.Known, MayReenroll: g.MayReenroll, Revoked: g.Revoked,
		Add: g.Add, HighestCounter: g.HighestCounter, Clock: c.Now,
	}
	if edit != nil {
		edit(&cfg)
	}
	return cfg
}

// counter is the approvals' envelope counter: each approval the tests
// make has a higher one.
var counter atomic.Uint64

// approveAs hands r an approval request from op with the next counter.
func approveAs(r *Registrar, op string, payload []byte, encrypted bool) error {
	return r.Approve(ApprovalRequest{Operator: op, Counter: counter.Add(1), Encrypted: encrypted, Payload: payload})
}

// errChallenged is what handle returns for a challenge.
var errChallenged = errors.New("challenged")

// handle hands r a hello and returns a welcome, or an error: the
// registrar's, or errChallenged (the reply dropped) if it answered with a
// challenge.
func handle(r *Registrar, b []byte) ([]byte, error) {
	reply, kind, err := r.HandleHello(b)
	switch {
	case err != nil && (reply != nil || kind != NoReply):
		panic("a refusal with a reply")
	case err == nil && kind == ReplyChallenge:
		if _, err := parseChallenge(reply); err != nil {
			panic(err)
		}
		return nil, errChallenged
	case err == nil && kind != ReplyWelcome:
		panic("no error and no reply")
	}
	return reply, err
}

// challengeFor has d, which has a hello pending, accept the challenge r
// would answer it with.
func challengeFor(t testing.TB, r *Registrar, d *Device) {
	t.Helper()
	n := nonceGOf(r, d.ID())
	if err := d.AcceptChallenge(challengeBytes(r.ID(), d.ID(), n[:])); err != nil {
		t.Fatal(err)
	}
}

// nonceGOf returns the nonceG of r's approval for id (zeros if none).
func nonceGOf(r *Registrar, id string) [NonceSize]byte {
	r.mu.Lock()
	defer r.mu.Unlock()
	if a := r.approvals[id]; a != nil {
		return a.nonceG
	}
	return [NonceSize]byte{}
}

func newDevice(t testing.TB, id, keyLabel string) *Device {
	t.Helper()
	d, err := NewDevice(DeviceConfig{ID: id, Key: testKey(t, keyLabel)})
	if err != nil {
		t.Fatal(err)
	}
	return d
}

// approve has the operator approve the device's current code.
func (w *world) approve(d *Device, edit func(*Approval)) error {
	w.t.Helper()
	a := FromCode(d.Code(w.clock.Now()), template)
	if edit != nil {
		edit(a)
	}
	p, err := a.MarshalBinary()
	if err != nil {
		w.t.Fatal(err)
	}
	return approveAs(w.reg, operatorID, p, true)
}

func (w *world) mustApprove(d *Device, edit func(*Approval)) {
	w.t.Helper()
	if err := w.approve(d, edit); err != nil {
		w.t.Fatalf("Approve: %v", err)
	}
}

// hello returns d's hello at the clock's time, d having first accepted
// the challenge the registrar would send it (built here, so that no hello
// is spent on it) if it holds an approval for d.
func (w *world) hello(d *Device) []byte {
	w.t.Helper()
	h, err := d.Hello(w.clock.Now(), gatewayID)
	if err != nil {
		w.t.Fatal(err)
	}
	if n := nonceGOf(w.reg, d.ID()); n != ([NonceSize]byte{}) {
		if err := d.AcceptChallenge(challengeBytes(gatewayID, d.ID(), n[:])); err != nil {
			w.t.Fatal(err)
		}
		if h, err = d.Hello(w.clock.Now(), gatewayID); err != nil {
			w.t.Fatal(err)
		}
	}
	return h
}

// enroll runs the whole exchange for d and returns the welcome accepted.
func (w *world) enroll(d *Device, edit func(*Approval)) *Welcome {
	w.t.Helper()
	w.mustApprove(d, edit)
	wb, err := handle(w.reg, w.hello(d))
	if err != nil {
		w.t.Fatalf("HandleHello: %v", err)
	}
	res, err := d.AcceptWelcome(wb)
	if err != nil {
		w.t.Fatalf("AcceptWelcome: %v", err)
	}
	return res
}

// wantClass fails unless err is of class want (nil: no error).
func wantClass(t testing.TB, what string, err error, want error) {
	t.Helper()
	switch {
	case want == nil && err != nil:
		t.Fatalf("%s: %v, want no error", what, err)
	case want != nil && !errors.Is(err, want):
		t.Fatalf("%s: %v, want %v", what, err, want)
	case want != nil && Class(err) != want:
		t.Fatalf("%s: Class = %v, want %v", what, Class(err), want)
	}
}

// forgeHello builds a hello from its parts, as the broker or a test would:
// tags under the two PoPs given (nil: 32 zero bytes), signed by key.
func forgeHello(t testing.TB, gw, id string, pkD, nonce, nonceG []byte, pop, popPrev *PoP, key *ecdsa.PrivateKey) []byte {
	t.Helper()
	b := helloBody(gw, id, pkD, nonce, nonceG)
	T := digest(helloLabel, b)
	for _, p := range []*PoP{pop, popPrev} {
		var tag [tagSize]byte
		if p != nil {
			tag = popTag(p, helloPoPLabel, T[:])
		}
		b = append(b, tag[:]...)
	}
	return append(b, signWith(t, key, helloSigLabel, T[:])...)
}

// forgeWelcome builds a welcome from its parts: tagged under pop (nil:
// zeros), signed by key.
func forgeWelcome(t testing.TB, gw, assigned string, T, nonce, pkG []byte, floor uint64, pop *PoP, key *ecdsa.PrivateKey) []byte {
	t.Helper()
	b := welcomeBody(gw, assigned, T, nonce, pkG, floor)
	T2 := digest(welcomeLabel, b)
	var tag [tagSize]byte
	if pop != nil {
		tag = popTag(pop, welcomePoPLabel, T2[:])
	}
	b = append(b, tag[:]...)
	return append(b, signWith(t, key, welcomeSigLabel, T2[:])...)
}

func signWith(t testing.TB, key *ecdsa.PrivateKey, label string, msg []byte) []byte {
	t.Helper()
	s, err := envelope.NewECDSASigner(key)
	if err != nil {
		t.Fatal(err)
	}
	sig, err := sign(s, label, msg)
	if err != nil {
		t.Fatal(err)
	}
	return sig
}

// helloParts reads a hello the test made (it must be well formed).
func helloParts(t testing.TB, b []byte) *hello {
	t.Helper()
	h, err := parseHello(b)
	if err != nil {
		t.Fatal(err)
	}
	return h
}

func welcomeParts(t testing.TB, b []byte) *welcome {
	t.Helper()
	w, err := parseWelcome(b)
	if err != nil {
		t.Fatal(err)
	}
	return w
}

func flip(b []byte, i int) []byte {
	c := slices.Clone(b)
	if i < 0 {
		i += len(c)
	}
	c[i] ^= 1
	return c
}

// devicePoPs returns the PoPs of d's hello at now: of its window and the
// one before.
func devicePoPs(d *Device, now time.Time) (PoP, PoP) {
	d.mu.Lock()
	defer d.mu.Unlock()
	w := Window(now, d.window)
	return DerivePoP(d.seed[:], w), DerivePoP(d.seed[:], w-1)
}

func containsAny(s string, needles ...string) bool {
	for _, n := range needles {
		if n != "" && bytes.Contains([]byte(s), []byte(n)) {
			return true
		}
	}
	return false
}
