package envelope

import (
	"bytes"
	"context"
	"crypto/ecdh"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/hpke"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/mqttsec/mqttsec/rsasign"
)

// testSecrets is the raw key material of the test world. Everything is
// derived from fixed labels so vectors can be rebuilt bit for bit; the RSA
// keys are fixed files under testdata/.
type testSecrets struct {
	HMAC, HOTP, PSK    []byte
	Ed25519Seed        []byte
	ES256Scalar        []byte
	X25519, XWingSeed  []byte
	RSASign, RSAOAEP   *rsa.PrivateKey
	OtherHMAC          []byte // a key the receiver does not trust
	OtherEd25519Seed   []byte
	OtherX25519Private []byte
}

func derive(label string) []byte {
	s := sha256.Sum256([]byte("mqttsec test key: " + label))
	return s[:]
}

func loadRSA(t testing.TB, name string) *rsa.PrivateKey {
	t.Helper()
	data, err := os.ReadFile("testdata/" + name)
	if err != nil {
		t.Fatal(err)
	}
	k, err := rsasign.ParsePrivateKeyPEM(data)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func newTestSecrets(t testing.TB) *testSecrets {
	return &testSecrets{
		HMAC:               derive("hmac"),
		HOTP:               derive("hotp")[:20],
		PSK:                derive("psk"),
		Ed25519Seed:        derive("ed25519"),
		ES256Scalar:        derive("es256"),
		X25519:             derive("x25519"),
		XWingSeed:          derive("xwing"),
		RSASign:            loadRSA(t, "rsa2048.pem"),
		RSAOAEP:            loadRSA(t, "rsa2048-oaep.pem"),
		OtherHMAC:          derive("other hmac"),
		OtherEd25519Seed:   derive("other ed25519"),
		OtherX25519Private: derive("other x25519"),
	}
}

// world is a sender ("client") and a receiver ("gateway") holding every kind
// of key, plus a third party ("eve") with its own keys.
type world struct {
	t       testing.TB
	sec     *testSecrets
	now     time.Time
	hmac    *HMACKey
	hotp    *HOTPKey
	psk     *AEADKey
	ed      Signer
	es      Signer
	ps      Signer
	x25519  Recipient
	xwing   Recipient
	rsaoaep Recipient
	ids     []Identity // the gateway's own decryption keys
	peer    *Peer      // the gateway's view of the client
	ctr     *MemoryCounter
	replay  *testStore
}

func must[T any](t testing.TB) func(T, error) T {
	return func(v T, err error) T {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
}

var testNow = time.Date(2026, 11, 22, 12, 0, 0, 0, time.UTC)

func newWorld(t testing.TB) *world {
	t.Helper()
	sec := newTestSecrets(t)
	w := &world{t: t, sec: sec, now: testNow}
	w.hmac = must[*HMACKey](t)(NewHMACKey(sec.HMAC))
	w.hotp = must[*HOTPKey](t)(NewHOTPKey(sec.HOTP, 6))
	w.psk = must[*AEADKey](t)(NewAEADKey(sec.PSK))
	edKey := ed25519.NewKeyFromSeed(sec.Ed25519Seed)
	w.ed = must[Signer](t)(NewEd25519Signer(edKey))
	esKey := must[*ecdsa.PrivateKey](t)(ecdsa.ParseRawPrivateKey(elliptic.P256(), sec.ES256Scalar))
	w.es = must[Signer](t)(NewECDSASigner(esKey))
	w.ps = must[Signer](t)(NewRSASigner(sec.RSASign))

	xPriv := must[hpke.PrivateKey](t)(hpke.DHKEM(ecdh.X25519()).NewPrivateKey(sec.X25519))
	xwPriv := must[hpke.PrivateKey](t)(hpke.MLKEM768X25519().NewPrivateKey(sec.XWingSeed))
	w.x25519 = must[Recipient](t)(NewHPKERecipient(xPriv.PublicKey()))
	w.xwing = must[Recipient](t)(NewHPKERecipient(xwPriv.PublicKey()))
	w.rsaoaep = must[Recipient](t)(NewRSARecipient(&sec.RSAOAEP.PublicKey))
	w.ids = []Identity{
		must[Identity](t)(NewHPKEIdentity(xPriv)),
		must[Identity](t)(NewHPKEIdentity(xwPriv)),
		must[Identity](t)(NewRSAIdentity(sec.RSAOAEP)),
	}
	w.peer = &Peer{
		ID:       "client",
		HMACKeys: []*HMACKey{w.hmac},
		HOTPKeys: []*HOTPKey{w.hotp},
		AEADKeys: []*AEADKey{w.psk},
		Verifiers: []Verifier{
			must[Verifier](t)(NewEd25519Verifier(edKey.Public().(ed25519.PublicKey))),
			must[Verifier](t)(NewECDSAVerifier(&esKey.PublicKey)),
			must[Verifier](t)(NewRSAVerifier(&sec.RSASign.PublicKey)),
		},
	}
	w.ctr = NewMemoryCounter(0)
	w.replay = newTestStore()
	return w
}

func (w *world) clock() time.Time { return w.now }

func (w *world) sealer() *Sealer {
	return &Sealer{ID: "client", Counter: w.ctr, Now: w.clock}
}

func (w *world) opener() *Opener {
	keys := must[*Keys](w.t)(NewKeys(w.ids, w.peer))
	return &Opener{ID: "gateway", Keys: keys, Replay: w.replay, Now: w.clock}
}

// gatewaySealer seals as the gateway, which answers the client's requests.
func (w *world) gatewaySealer() *Sealer {
	return &Sealer{ID: "gateway", Counter: NewMemoryCounter(0), Now: w.clock}
}

// clientOpener opens, as the client, what the gateway sends under the
// world's HMAC key.
func (w *world) clientOpener() *Opener {
	keys := must[*Keys](w.t)(NewKeys(nil, &Peer{ID: "gateway", HMACKeys: []*HMACKey{w.hmac}}))
	return &Opener{ID: "client", Keys: keys, Replay: newTestStore(), Now: w.clock}
}

// request returns the parameters of a request from the client to the
// gateway, without protections.
func (w *world) request(method string) *Params {
	return &Params{Kind: Request, To: []string{"gateway"}, Topic: method, ReplyTo: "mqttsec/client/reply"}
}

var expectRequest = &Expect{Kinds: Request}

func edFromSeed(seed []byte) ed25519.PrivateKey { return ed25519.NewKeyFromSeed(seed) }

// testStore is a ReplayStore for this package's tests: the set of
// (sender, counter) pairs admitted, without windows (those live, and are
// tested, in mqttsec/replay). err, when set, is what every call returns.
type testStore struct {
	mu     sync.Mutex
	seen   map[testSeen]bool
	err    error
	checks int
	admits int
}

type testSeen struct {
	sender  string
	counter uint64
}

func newTestStore() *testStore { return &testStore{seen: map[testSeen]bool{}} }

// Check and Admit answer a done context with its error first, as the
// stores of mqttsec/replay do.
func (s *testStore) Check(ctx context.Context, m Seen) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.checks++
	if s.err != nil {
		return s.err
	}
	if s.seen[testSeen{m.Sender, m.Counter}] {
		return ErrReplayed
	}
	return nil
}

func (s *testStore) Admit(ctx context.Context, m Seen) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.admits++
	if s.err != nil {
		return s.err
	}
	k := testSeen{m.Sender, m.Counter}
	if s.seen[k] {
		return ErrReplayed
	}
	s.seen[k] = true
	return nil
}

// admitAllStore is a ReplayStore that admits everything, so that one
// envelope can be opened again and again (benchmarks, allocation counts,
// fuzzing).
type admitAllStore struct{}

func (admitAllStore) Check(context.Context, Seen) error { return nil }
func (admitAllStore) Admit(context.Context, Seen) error { return nil }

// recordingStore admits everything and keeps what it was shown.
type recordingStore struct {
	mu                sync.Mutex
	checked, admitted []Seen
}

func (s *recordingStore) Check(_ context.Context, m Seen) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.checked = append(s.checked, m)
	return nil
}

func (s *recordingStore) Admit(_ context.Context, m Seen) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.admitted = append(s.admitted, m)
	return nil
}

// withHMAC and withEd25519 are the usual protections of a test request.
func withHMAC(w *world, p *Params)    { p.HMAC = w.hmac }
func withEd25519(w *world, p *Params) { p.Signer = w.ed }

// sealRequestWith seals a get-card request from the client with the
// protections params sets (nil: HMAC and Ed25519).
func sealRequestWith(t testing.TB, w *world, params func(*world, *Params), payload []byte) *Sealed {
	t.Helper()
	p := w.request("get-card")
	if params == nil {
		params = func(w *world, p *Params) { p.HMAC, p.Signer = w.hmac, w.ed }
	}
	params(w, p)
	s, err := w.sealer().Seal(p, payload)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// matchedClasses lists the error classes err wraps; Open's refusals must
// wrap exactly one.
func matchedClasses(err error) []error {
	var out []error
	for _, c := range classes {
		if errors.Is(err, c) {
			out = append(out, c)
		}
	}
	return out
}

// splitParts are the version byte and the four members of an envelope.
type splitParts struct {
	first                     byte
	header, payload, mac, sig []byte
}

// splitEnvelope cuts an envelope into its members with its own reading of
// the frame (not readFrame's): 0x01 || u32 len || H || u32 len || P ||
// u32 len || M || u32 len || S. The members are copies.
func splitEnvelope(t testing.TB, b []byte) *splitParts {
	t.Helper()
	if len(b) == 0 {
		t.Fatal("splitEnvelope: empty")
	}
	p := &splitParts{first: b[0]}
	rest := b[1:]
	for _, m := range []*[]byte{&p.header, &p.payload, &p.mac, &p.sig} {
		if len(rest) < 4 {
			t.Fatalf("splitEnvelope: a length cut short")
		}
		n := binary.BigEndian.Uint32(rest)
		if uint64(n) > uint64(len(rest)-4) {
			t.Fatalf("splitEnvelope: a member of %d bytes runs past the end", n)
		}
		*m = bytes.Clone(rest[4 : 4+n])
		rest = rest[4+n:]
	}
	if len(rest) != 0 {
		t.Fatalf("splitEnvelope: %d bytes after the signature", len(rest))
	}
	return p
}

// join writes the parts as an envelope.
func (p *splitParts) join() []byte {
	b := []byte{p.first}
	for _, m := range [][]byte{p.header, p.payload, p.mac, p.sig} {
		b = binary.BigEndian.AppendUint32(b, uint32(len(m)))
		b = append(b, m...)
	}
	return b
}

// signedLen is how far into the joined envelope the signing input runs:
// through the payload.
func (p *splitParts) signedLen() int { return 1 + 4 + len(p.header) + 4 + len(p.payload) }

// editEnvelope lets edit change the members of b as bytes, and joins them
// again.
func editEnvelope(t testing.TB, b []byte, edit func(p *splitParts)) []byte {
	t.Helper()
	p := splitEnvelope(t, b)
	edit(p)
	return p.join()
}

// rewriteEnvelope reads b's header into a header value, lets edit change it
// and the other members, and writes the envelope again, keeping the tags
// unless edit changed them: what a broker that knows the format, but holds
// no key, can do.
func rewriteEnvelope(t testing.TB, b []byte, edit func(h *header, p *splitParts)) []byte {
	t.Helper()
	p := splitEnvelope(t, b)
	var h header
	if err := readHeader(&h, p.header, string(p.header)); err != nil {
		t.Fatalf("rewriteEnvelope: %v", err)
	}
	edit(&h, p)
	p.header = appendHeader(nil, &h)
	return p.join()
}

// rewriteHeader is rewriteEnvelope changing the header only.
func rewriteHeader(change func(h *header)) func(w *world, b []byte) []byte {
	return func(w *world, b []byte) []byte {
		return rewriteEnvelope(w.t, b, func(h *header, _ *splitParts) { change(h) })
	}
}

// sealByHand writes the header h as it is (unchecked: it may break any rule
// Seal keeps), frames it with the payload and, when h.prot has HMAC, tags it
// under key. Only a holder of key can make such an envelope; tests use it to
// show that a check refuses a header its HMAC vouches for.
func sealByHand(key *HMACKey, h *header, payload []byte) []byte {
	fw := frameWriter{}
	fw.header(appendHeader(nil, h))
	fw.payloadLength(len(payload))
	fw.b = append(fw.b, payload...)
	var mac []byte
	if h.prot&HMAC != 0 {
		tag := key.tag(authBlockOf(digestOf(fw.b)))
		mac = tag[:]
	}
	fw.tags(mac, nil)
	return fw.b
}

// handRequest is a request header from the client to the gateway with an
// HMAC under the world's key, counter ctr, issued at the world's time and
// valid for DefaultTTL.
func (w *world) handRequest(method string, ctr uint64) *header {
	return &header{
		kind: Request, prot: HMAC, from: "client", to: []string{"gateway"},
		topic: method, replyTo: "mqttsec/client/reply", corr: []byte("hand-made-corr-id"),
		ctr: ctr, iat: uint64(w.now.UnixMilli()), exp: uint64(w.now.Add(DefaultTTL).UnixMilli()),
		macKid: w.hmac.id,
	}
}

// handReply is the header of the gateway's reply to the pending request
// req, with an HMAC under the world's key (which clientOpener trusts for
// the gateway), counter ctr, issued at the world's time.
func (w *world) handReply(req *Sealed, ctr uint64) *header {
	return &header{
		kind: Reply, prot: HMAC, from: "gateway", to: []string{"client"},
		topic: req.topic, corr: bytes.Clone(req.CorrelationID), re: bytes.Clone(req.Digest[:]),
		ctr: ctr, iat: uint64(w.now.UnixMilli()), exp: uint64(w.now.Add(DefaultTTL).UnixMilli()),
		macKid: w.hmac.id,
	}
}
