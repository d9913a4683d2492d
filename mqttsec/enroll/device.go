package enroll

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"fmt"
	"io"
	"sync"
	"time"

	"github.com/mqttsec/mqttsec/envelope"
)

// DeviceConfig configures a Device.
type DeviceConfig struct {
	// ID is the id the device proposes (SPEC.md §3.2). The gateway may
	// assign it another (Welcome.ID).
	ID string
	// Key is the device's ES256 key pair, skD, made once on its first
	// start and kept: nil makes a new one (Device.Key returns it, to be
	// stored).
	Key *ecdsa.PrivateKey
	// Window is N, how long each PoP is shown, in whole seconds from 1 to
	// MaxWindow (SPEC.md §14.2); zero means DefaultWindow.
	Window time.Duration
}

// Device is the device's side of an enrollment (SPEC.md §14): it shows
// codes, makes hellos and accepts the welcome that answers the latest
// one. Each Device draws its own PoP seed, which never leaves it: make one
// per boot. A Device is safe for concurrent use.
type Device struct {
	id     string
	key    *ecdsa.PrivateKey
	signer envelope.Signer
	pkD    []byte
	fp     [FingerprintSize]byte
	window time.Duration

	mu      sync.Mutex
	seed    [SeedSize]byte
	pending *pendingHello
	// The challenge accepted (SPEC.md §14.4): the gateway that sent it
	// and its nonceG, which the next hellos to that gateway carry.
	challengeGW string
	nonceG      [NonceSize]byte
	// The highest window a code or hello used: an earlier time uses it
	// again (a clock stepped back shows no earlier code).
	highest    uint64
	hasHighest bool
}

// windowAt returns the window of now, or the highest used if that is
// later. d.mu is held.
func (d *Device) windowAt(now time.Time) uint64 {
	w := Window(now, d.window)
	if d.hasHighest && w < d.highest {
		return d.highest
	}
	d.highest, d.hasHighest = w, true
	return w
}

// pendingHello is what the device remembers of the hello it waits to see
// answered.
type pendingHello struct {
	gateway      string
	t            [sha256.Size]byte
	nonce        [NonceSize]byte
	pop, popPrev PoP // the PoPs of the hello's two windows
}

// NewDevice returns a Device with a fresh PoP seed, and a fresh key if
// cfg.Key is nil. Its errors wrap ErrInvalidConfig.
func NewDevice(cfg DeviceConfig) (*Device, error) {
	if !envelope.ValidID(cfg.ID) {
		return nil, fmt.Errorf("%w: device id is not valid", ErrInvalidConfig)
	}
	switch {
	case cfg.Window == 0:
		cfg.Window = DefaultWindow
	case cfg.Window < time.Second || cfg.Window > MaxWindow || cfg.Window%time.Second != 0:
		return nil, fmt.Errorf("%w: window must be whole seconds, from 1 s to %v", ErrInvalidConfig, MaxWindow)
	}
	key := cfg.Key
	if key == nil {
		var err error
		if key, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader); err != nil {
			return nil, err
		}
	}
	signer, err := envelope.NewECDSASigner(key)
	if err != nil {
		return nil, fmt.Errorf("%w: device key is not an ECDSA P-256 key", ErrInvalidConfig)
	}
	pkD, err := key.PublicKey.Bytes()
	if err != nil {
		return nil, fmt.Errorf("%w: device key is not an ECDSA P-256 key", ErrInvalidConfig)
	}
	d := &Device{id: cfg.ID, key: key, signer: signer, pkD: pkD, fp: Fingerprint(pkD), window: cfg.Window}
	rand.Read(d.seed[:])
	return d, nil
}

// ID returns the id the device proposes.
func (d *Device) ID() string { return d.id }

// Key returns the device's key pair, skD, for it to keep and to sign its
// envelopes with once enrolled (envelope.NewECDSASigner).
func (d *Device) Key() *ecdsa.PrivateKey { return d.key }

// PublicKey returns pkD, the 65-byte uncompressed point.
func (d *Device) PublicKey() []byte { return bytes.Clone(d.pkD) }

// Fingerprint returns F of the device's public key.
func (d *Device) Fingerprint() [FingerprintSize]byte { return d.fp }

// WindowLength returns N.
func (d *Device) WindowLength() time.Duration { return d.window }

// Code returns the code to show at now, by the device's own clock (a
// monotonic one will do: see Window). It changes every N; an approval made
// from it matches the device's hellos while it is current, for between N
// and 2N. The window never goes back: at a time before one a code or hello
// was made at, the device uses the highest window it used, so that a clock
// stepped back shows no earlier code again.
func (d *Device) Code(now time.Time) Code {
	d.mu.Lock()
	defer d.mu.Unlock()
	return Code{ID: d.id, Fingerprint: d.fp, PoP: DerivePoP(d.seed[:], d.windowAt(now))}
}

// Hello returns a hello to gatewayID made at now (by the same clock as
// Code, and never going back either), with a fresh nonce, tagged under the
// PoPs of now's window and of the one before. It carries the nonceG of the
// challenge the device accepted from gatewayID (AcceptChallenge), or zeros
// if none. The device then waits for a welcome, or a challenge, to this
// hello only: a welcome to an earlier hello is refused as ErrContext.
// Publish a new hello now and then until AcceptWelcome accepts one, less
// often than a reply takes to come back, and at once after a challenge.
func (d *Device) Hello(now time.Time, gatewayID string) ([]byte, error) {
	var nonce [NonceSize]byte
	rand.Read(nonce[:])
	return d.hello(now, gatewayID, nonce)
}

// hello is Hello with the nonce given.
func (d *Device) hello(now time.Time, gatewayID string, nonce [NonceSize]byte) ([]byte, error) {
	if !envelope.ValidID(gatewayID) {
		return nil, fmt.Errorf("%w: gateway id is not valid", ErrInvalidConfig)
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	w := d.windowAt(now)
	p := &pendingHello{
		gateway: gatewayID, nonce: nonce,
		pop: DerivePoP(d.seed[:], w), popPrev: DerivePoP(d.seed[:], w-1),
	}
	var nonceG [NonceSize]byte
	if d.challengeGW == gatewayID {
		nonceG = d.nonceG
	}
	b := helloBody(gatewayID, d.id, d.pkD, nonce[:], nonceG[:])
	p.t = digest(helloLabel, b)
	tag := popTag(&p.pop, helloPoPLabel, p.t[:])
	b = append(b, tag[:]...)
	tag = popTag(&p.popPrev, helloPoPLabel, p.t[:])
	b = append(b, tag[:]...)
	sig, err := sign(d.signer, helloSigLabel, p.t[:])
	if err != nil {
		return nil, err
	}
	d.forget()
	d.pending = p
	return append(b, sig...), nil
}

// forget drops the pending hello and clears its PoPs. d.mu is held.
func (d *Device) forget() {
	if d.pending != nil {
		clear(d.pending.pop[:])
		clear(d.pending.popPrev[:])
		d.pending = nil
	}
}

// AcceptChallenge takes a gateway's challenge to the pending hello (SPEC.md
// §14.4): the gateway holds an approval for the device, and its next hellos
// to that gateway must carry the challenge's nonceG. It refuses a
// challenge that is not well formed (ErrMalformed: not 0xE0, the wrong
// sizes, bytes after nonceG, an id that is not valid) and one that names
// another gateway or device than the pending hello, or comes when no hello
// is pending (ErrContext). A challenge has no MAC: a forged one only makes
// the next hello fail, and the gateway answers that one with its own
// challenge. An accepted challenge replaces any earlier one; the device
// still waits, and should send a new hello (Hello) at once.
func (d *Device) AcceptChallenge(b []byte) error {
	c, err := parseChallenge(b)
	if err != nil {
		return err
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	p := d.pending
	if p == nil || string(c.gateway) != p.gateway || string(c.id) != d.id {
		return errorf(ErrContext, "challenge answers no hello the device waits for")
	}
	d.challengeGW = p.gateway
	d.nonceG = [NonceSize]byte(c.nonceG)
	return nil
}

// Welcome is what a device learns from the welcome it accepted.
type Welcome struct {
	// GatewayID is the gateway's id.
	GatewayID string
	// GatewayKey is pkG, which verifies the gateway's envelopes
	// (envelope.NewECDSAVerifier).
	GatewayKey *ecdsa.PublicKey
	// ID is the id the device is known by from now on.
	ID string
	// CounterFloor is where the device's counter starts (SPEC.md §7.1):
	// its first envelope carries CounterFloor or more
	// (envelope.NewMemoryCounter(CounterFloor - 1)).
	CounterFloor uint64
}

// AcceptWelcome checks a welcome against the pending hello (SPEC.md §14.5)
// and returns what it tells. It refuses, in this order: a welcome that is not
// well formed (ErrMalformed), one that names another gateway, T or nonce
// than the latest hello's, or comes when no hello is pending (ErrContext),
// one whose tag is right under neither PoP of that hello (ErrPoP), and one
// whose signature does not verify under the key it carries (ErrSignature).
// A refused welcome changes nothing: the device still waits. An accepted one
// ends the wait, so the same welcome again is ErrContext.
func (d *Device) AcceptWelcome(b []byte) (*Welcome, error) {
	w, err := parseWelcome(b)
	if err != nil {
		return nil, err
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	p := d.pending
	if p == nil || string(w.gateway) != p.gateway || !bytes.Equal(w.t, p.t[:]) || !bytes.Equal(w.nonce, p.nonce[:]) {
		return nil, errorf(ErrContext, "welcome answers no hello the device waits for")
	}
	t2 := digest(welcomeLabel, w.body)
	want, wantPrev := popTag(&p.pop, welcomePoPLabel, t2[:]), popTag(&p.popPrev, welcomePoPLabel, t2[:])
	if !tagMatches(w.tag, want[:], wantPrev[:]) {
		return nil, errorf(ErrPoP, "welcome's tag is right under neither PoP of the hello")
	}
	pkG, ok := verify(w.pkG, welcomeSigLabel, t2[:], w.sigG)
	if !ok {
		return nil, errorf(ErrSignature, "welcome's signature does not verify")
	}
	d.forget()
	return &Welcome{GatewayID: string(w.gateway), GatewayKey: pkG, ID: string(w.assigned), CounterFloor: w.floor}, nil
}

// String describes the device by id and fingerprint; it never shows its
// key, seed or PoPs.
func (d *Device) String() string {
	return "enroll.Device(" + d.id + ", " + b64.EncodeToString(d.fp[:]) + ")"
}

// GoString is String, for %#v.
func (d *Device) GoString() string { return d.String() }

// Format writes String whatever the verb, so that no verb prints the
// device's fields.
func (d *Device) Format(f fmt.State, _ rune) { io.WriteString(f, d.String()) }
