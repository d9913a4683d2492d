package envelope

import (
	"bytes"
	"cmp"
	"crypto/ecdh"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/hpke"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"testing"
	"testing/cryptotest"
	"time"

	"github.com/mqttsec/mqttsec/rsasign"
)

var update = flag.Bool("update", false, "rewrite testdata/vectors from the generator")

const vectorDir = "testdata/vectors"

// vectorKeys is testdata/vectors/keys.json: every key the vectors use, in
// the byte forms SPEC.md describes, with the key id each must derive to.
type vectorKeys struct {
	Comment          string            `json:"comment"`
	HMAC             string            `json:"hmac"`
	OtherHMAC        string            `json:"otherHmac"`
	HOTP             string            `json:"hotp"`
	HOTPDigits       int               `json:"hotpDigits"`
	PSK              string            `json:"psk"`
	Ed25519Seed      string            `json:"ed25519Seed"`
	OtherEd25519Seed string            `json:"otherEd25519Seed"`
	ES256Private     string            `json:"es256Private"`
	RSASignPrivate   string            `json:"rsaSignPrivate"`
	X25519Private    string            `json:"x25519Private"`
	XWingSeed        string            `json:"xwingSeed"`
	RSAOAEPPrivate   string            `json:"rsaOaepPrivate"`
	PublicKeys       map[string]string `json:"publicKeys"`
	KeyIDs           map[string]string `json:"keyIds"`
}

type vectorPolicy struct {
	Require                   []string `json:"require,omitempty"`
	RequirePairwiseEncryption bool     `json:"requirePairwiseEncryption,omitempty"`
	AllowLegacyRS256          bool     `json:"allowLegacyRS256,omitempty"`
	MaxClockSkewMs            int64    `json:"maxClockSkewMs"`
	MaxLifetimeMs             int64    `json:"maxLifetimeMs"`
}

type vectorExpect struct {
	Kinds     []string `json:"kinds"`
	From      string   `json:"from,omitempty"`
	Topic     string   `json:"topic,omitempty"`
	InReplyTo string   `json:"inReplyTo,omitempty"`
}

// vector is one file of testdata/vectors.
type vector struct {
	Name        string       `json:"name"`
	Description string       `json:"description"`
	Sender      string       `json:"sender"`
	Receiver    string       `json:"receiver"`
	Now         int64        `json:"now"`
	MaxSize     int          `json:"maxSize"`
	ReplayWidth int          `json:"replayWidth"`
	Trust       []string     `json:"trust"`
	Identities  []string     `json:"identities"`
	Policy      vectorPolicy `json:"policy"`
	Expect      vectorExpect `json:"expect"`
	Replayed    []string     `json:"replayed,omitempty"`
	Request     string       `json:"request,omitempty"`
	RequestHex  string       `json:"requestHex,omitempty"`
	Envelope    string       `json:"envelope,omitempty"`
	EnvelopeHex string       `json:"envelopeHex,omitempty"`
	Header      string       `json:"header,omitempty"`
	Result      string       `json:"result"`
	Payload     string       `json:"payload,omitempty"`
	Digest      string       `json:"digest,omitempty"`
}

// headerText is what a vector's header field holds: the header JSON of
// versions 1 and 2, and for version 3 the canonical JSON (SPEC.md §3.4) of
// the value its compact header carries; "" for a compact header that does
// not read, or names an algorithm by a code that names none.
func headerText(e *Envelope) string {
	if e.Version != Version3 {
		return string(e.Header)
	}
	h, err := decodeVersionHeader(Version3, e.Header)
	if err != nil {
		return ""
	}
	if again, err := appendCompactHeader(nil, h); err != nil || !bytes.Equal(again, e.Header) {
		return ""
	}
	j, err := encodeHeader(h)
	if err != nil {
		return ""
	}
	return string(j)
}

// envelopeBytes is the vector's envelope: the text of a version-1
// envelope, or the bytes of a binary one (written in hex).
func (v *vector) envelopeBytes(t testing.TB) []byte { return textOrHex(t, v.Envelope, v.EnvelopeHex) }

// requestBytes is the request a reply vector answers, as envelopeBytes.
func (v *vector) requestBytes(t testing.TB) []byte { return textOrHex(t, v.Request, v.RequestHex) }

func textOrHex(t testing.TB, text, hexText string) []byte {
	if hexText == "" {
		return []byte(text)
	}
	b, err := hex.DecodeString(hexText)
	if err != nil {
		t.Fatalf("bad hex: %v", err)
	}
	return b
}

// setBytes stores an envelope as text (version 1) or hex (version 2).
func setBytes(b []byte, text, hexText *string) {
	if len(b) > 0 && b[0] < ' ' {
		*hexText = hex.EncodeToString(b)
	} else {
		*text = string(b)
	}
}

var resultClasses = map[string]error{
	"ok": nil, "too-large": ErrTooLarge, "malformed": ErrMalformed,
	"unsupported-version": ErrUnsupportedVersion, "policy": ErrPolicy, "context": ErrContext,
	"unknown-key": ErrUnknownKey, "authentication": ErrAuthentication, "replayed": ErrReplayed,
	"expired": ErrExpired, "decryption": ErrDecryption,
}

// --- loading: builds keys from keys.json alone, as a port would ---

type loadedKeys struct {
	macs       map[string]*HMACKey
	hotps      map[string]*HOTPKey
	psks       map[string]*AEADKey
	verifiers  map[string]Verifier
	identities map[string]Identity
}

func unb64(t testing.TB, s string) []byte {
	t.Helper()
	b, err := b64.DecodeString(s)
	if err != nil {
		t.Fatalf("bad base64url %q: %v", s, err)
	}
	return b
}

func loadVectorKeys(t testing.TB) (*vectorKeys, *loadedKeys) {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(vectorDir, "keys.json"))
	if err != nil {
		t.Fatal(err)
	}
	var vk vectorKeys
	if err := json.Unmarshal(data, &vk); err != nil {
		t.Fatal(err)
	}
	m := must[*HMACKey](t)
	lk := &loadedKeys{
		macs:       map[string]*HMACKey{"hmac": m(NewHMACKey(unb64(t, vk.HMAC))), "other-hmac": m(NewHMACKey(unb64(t, vk.OtherHMAC)))},
		hotps:      map[string]*HOTPKey{"hotp": must[*HOTPKey](t)(NewHOTPKey(unb64(t, vk.HOTP), vk.HOTPDigits))},
		psks:       map[string]*AEADKey{"psk": must[*AEADKey](t)(NewAEADKey(unb64(t, vk.PSK)))},
		verifiers:  map[string]Verifier{},
		identities: map[string]Identity{},
	}
	mv := must[Verifier](t)
	edPub := ed25519.NewKeyFromSeed(unb64(t, vk.Ed25519Seed)).Public().(ed25519.PublicKey)
	lk.verifiers["ed25519"] = mv(NewEd25519Verifier(edPub))
	otherPub := ed25519.NewKeyFromSeed(unb64(t, vk.OtherEd25519Seed)).Public().(ed25519.PublicKey)
	lk.verifiers["other-ed25519"] = mv(NewEd25519Verifier(otherPub))
	es := must[*ecdsa.PrivateKey](t)(ecdsa.ParseRawPrivateKey(elliptic.P256(), unb64(t, vk.ES256Private)))
	lk.verifiers["es256"] = mv(NewECDSAVerifier(&es.PublicKey))
	rsaSign := must[*rsa.PrivateKey](t)(rsasign.ParsePrivateKeyPEM([]byte(vk.RSASignPrivate)))
	lk.verifiers["ps256"] = mv(NewRSAVerifier(&rsaSign.PublicKey))
	lk.verifiers["rs256"] = mv(NewLegacyRSAVerifier(&rsaSign.PublicKey))
	mi := must[Identity](t)
	x := must[hpke.PrivateKey](t)(hpke.DHKEM(ecdh.X25519()).NewPrivateKey(unb64(t, vk.X25519Private)))
	lk.identities["x25519"] = mi(NewHPKEIdentity(x))
	xw := must[hpke.PrivateKey](t)(hpke.MLKEM768X25519().NewPrivateKey(unb64(t, vk.XWingSeed)))
	lk.identities["xwing"] = mi(NewHPKEIdentity(xw))
	oaep := must[*rsa.PrivateKey](t)(rsasign.ParsePrivateKeyPEM([]byte(vk.RSAOAEPPrivate)))
	lk.identities["rsa-oaep"] = mi(NewRSAIdentity(oaep))
	return &vk, lk
}

func loadVectors(t testing.TB) []*vector {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(vectorDir, "[0-9]*.json"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no vectors in %s (%v); run go test -run TestVectors -update", vectorDir, err)
	}
	var out []*vector
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		var v vector
		dec := json.NewDecoder(bytes.NewReader(data))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&v); err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		out = append(out, &v)
	}
	return out
}

// opener builds the receiver a vector describes.
func (v *vector) opener(t testing.TB, lk *loadedKeys) *Opener {
	t.Helper()
	peer := &Peer{ID: v.Sender}
	for _, name := range v.Trust {
		switch {
		case lk.macs[name] != nil:
			peer.HMACKeys = append(peer.HMACKeys, lk.macs[name])
		case lk.hotps[name] != nil:
			peer.HOTPKeys = append(peer.HOTPKeys, lk.hotps[name])
		case lk.psks[name] != nil:
			peer.AEADKeys = append(peer.AEADKeys, lk.psks[name])
		case lk.verifiers[name] != nil:
			peer.Verifiers = append(peer.Verifiers, lk.verifiers[name])
		default:
			t.Fatalf("%s: unknown key %q", v.Name, name)
		}
	}
	for _, r := range v.Policy.Require {
		found := false
		for _, n := range protectionNames {
			if n.wire == r {
				peer.Policy.Require |= n.p
				found = true
			}
		}
		if !found {
			t.Fatalf("%s: unknown protection %q", v.Name, r)
		}
	}
	peer.Policy.RequirePairwiseEncryption = v.Policy.RequirePairwiseEncryption
	peer.Policy.AllowLegacyRSAPKCS1v15 = v.Policy.AllowLegacyRS256
	peer.Policy.MaxClockSkew = time.Duration(v.Policy.MaxClockSkewMs) * time.Millisecond
	peer.Policy.MaxLifetime = time.Duration(v.Policy.MaxLifetimeMs) * time.Millisecond
	var ids []Identity
	for _, name := range v.Identities {
		id := lk.identities[name]
		if id == nil {
			t.Fatalf("%s: unknown identity %q", v.Name, name)
		}
		ids = append(ids, id)
	}
	store := must[*MemoryStore](t)(NewMemoryStore(v.ReplayWidth))
	for _, c := range v.Replayed {
		n, err := strconv.ParseUint(c, 10, 64)
		if err != nil {
			t.Fatal(err)
		}
		if err := store.Admit(ctx, Seen{Sender: v.Sender, Counter: n, IssuedAt: time.UnixMilli(v.Now)}); err != nil {
			t.Fatal(err)
		}
	}
	now := time.UnixMilli(v.Now)
	return &Opener{
		ID:      v.Receiver,
		Keys:    must[*Keys](t)(NewKeys(ids, peer)),
		Replay:  store,
		Now:     func() time.Time { return now },
		MaxSize: v.MaxSize,
	}
}

func (v *vector) expect(t testing.TB) *Expect {
	e := &Expect{From: v.Expect.From, Topic: v.Expect.Topic}
	for _, k := range v.Expect.Kinds {
		kind, ok := parseKind(k)
		if !ok {
			t.Fatalf("%s: unknown kind %q", v.Name, k)
		}
		e.Kinds |= kind
	}
	if v.Expect.InReplyTo != "" {
		e.InReplyTo = unb64(t, v.Expect.InReplyTo)
	}
	return e
}

// TestVectors runs every vector through Parse, Open and the replay rule.
func TestVectors(t *testing.T) {
	if *update {
		writeVectors(t)
	}
	vk, lk := loadVectorKeys(t)
	// The key ids in keys.json are what the derivation gives.
	derived := map[string]string{
		"hmac": lk.macs["hmac"].KeyID(), "other-hmac": lk.macs["other-hmac"].KeyID(),
		"hotp": lk.hotps["hotp"].KeyID(), "psk": lk.psks["psk"].KeyID(),
	}
	for n, v := range lk.verifiers {
		derived[n] = v.KeyID()
	}
	for n, i := range lk.identities {
		derived[n] = i.KeyID()
	}
	for n, id := range derived {
		if vk.KeyIDs[n] != id {
			t.Errorf("keys.json: key id of %s is %q, derivation gives %q", n, vk.KeyIDs[n], id)
		}
	}
	for _, v := range loadVectors(t) {
		t.Run(v.Name, func(t *testing.T) {
			want, ok := resultClasses[v.Result]
			if !ok {
				t.Fatalf("unknown result %q", v.Result)
			}
			data := v.envelopeBytes(t)
			// Parse then Marshal gives back the same bytes.
			if e, err := Parse(data); err == nil {
				if !bytes.Equal(e.Marshal(), data) {
					t.Fatal("Parse/Marshal changed the bytes")
				}
				if v.Header != "" && headerText(e) != v.Header {
					t.Fatal("decoded header differs from the vector's header field")
				}
			}
			if req := v.requestBytes(t); len(req) > 0 {
				d := signingInputOf(t, req).digest()
				if b64.EncodeToString(d[:]) != v.Expect.InReplyTo {
					t.Fatal("expect.inReplyTo is not the digest of request")
				}
			}
			o := v.opener(t, lk)
			m, err := o.Open(ctx, data, v.expect(t))
			if want == nil {
				if err != nil {
					t.Fatalf("Open: %v", err)
				}
				if b64.EncodeToString(m.Payload) != v.Payload {
					t.Fatalf("payload %q, want %q", b64.EncodeToString(m.Payload), v.Payload)
				}
				if v.Digest != "" && b64.EncodeToString(m.Digest[:]) != v.Digest {
					t.Fatal("digest differs")
				}
				if _, err := o.Open(ctx, data, v.expect(t)); !errors.Is(err, ErrReplayed) {
					t.Fatalf("second Open: %v, want ErrReplayed", err)
				}
				return
			}
			if !errors.Is(err, want) || m != nil {
				t.Fatalf("Open = %v, want %v", err, want)
			}
		})
	}
}

func signingInputOf(t testing.TB, data []byte) signingInput {
	e, err := Parse(data)
	if err != nil {
		t.Fatal(err)
	}
	return e.signingInput()
}

// TestVectorsFlipEveryBit: flipping any single bit of any valid vector makes
// Open fail.
func TestVectorsFlipEveryBit(t *testing.T) {
	_, lk := loadVectorKeys(t)
	for _, v := range loadVectors(t) {
		if v.Result != "ok" {
			continue
		}
		t.Run(v.Name, func(t *testing.T) {
			o := v.opener(t, lk)
			want := v.expect(t)
			data := v.envelopeBytes(t)
			flipped := make([]byte, len(data))
			for i := range data {
				for bit := range 8 {
					copy(flipped, data)
					flipped[i] ^= 1 << bit
					if m, err := o.Open(ctx, flipped, want); err == nil || m != nil {
						t.Fatalf("byte %d bit %d flipped: accepted", i, bit)
					} else if Class(err) == nil {
						t.Fatalf("byte %d bit %d flipped: error without a class: %v", i, bit, err)
					}
				}
			}
			// The genuine envelope still opens: no flipped copy touched the
			// replay state.
			if _, err := o.Open(ctx, data, want); err != nil {
				t.Fatalf("genuine envelope after flips: %v", err)
			}
		})
	}
}

// TestVectorsReproducible regenerates every vector with the same injected
// randomness and clock and compares with the files.
func TestVectorsReproducible(t *testing.T) {
	for name, data := range generateVectors(t) {
		got, err := os.ReadFile(filepath.Join(vectorDir, name))
		if err != nil {
			t.Fatalf("%s: %v (run go test -run TestVectors -update)", name, err)
		}
		if !bytes.Equal(got, data) {
			t.Errorf("%s differs from the generator's output (run go test -run TestVectors -update)", name)
		}
	}
}

// --- generation ---

type gen struct {
	t       *testing.T
	w       *world
	gw      *Sealer
	version int // of the envelopes sealed
}

func seedFor(name string) uint64 {
	s := sha256.Sum256([]byte(name))
	return binary.BigEndian.Uint64(s[:8])
}

type vectorSpec struct {
	name, desc string
	sender     string
	receiver   string
	trust      []string
	identities []string
	policy     vectorPolicy
	expect     *vectorExpect
	replayed   []uint64
	maxSize    int
	clock      time.Duration // receiver clock minus sender clock
	version    int           // envelope version sealed; 0 means Version1, the text form
	result     string
	build      func(g *gen, payload []byte) (env *Sealed, request *Sealed)
}

func (g *gen) request(mod func(*Params)) *Sealed {
	p := g.params()
	mod(p)
	s, err := g.w.sealer().Seal(p, g.payload())
	if err != nil {
		g.t.Fatal(err)
	}
	return s
}

// params starts a get-card request in the generator's version.
func (g *gen) params() *Params {
	p := g.w.request("get-card")
	p.Version = g.version
	return p
}

func (g *gen) payload() []byte { return []byte(`{"card":8165538}`) }

func (g *gen) reply(kind Kind, req *Sealed, mod func(*Params)) *Sealed {
	in := &Message{Kind: Request, From: "client", Topic: "get-card", CorrelationID: req.CorrelationID, Digest: req.Digest, Version: g.version}
	p := &Params{Kind: kind, InReplyTo: in}
	mod(p)
	s, err := g.gw.Seal(p, []byte(`{"name":"Dana"}`))
	if err != nil {
		g.t.Fatal(err)
	}
	return s
}

func simple(mod func(g *gen, p *Params)) func(*gen, []byte) (*Sealed, *Sealed) {
	return func(g *gen, _ []byte) (*Sealed, *Sealed) {
		return g.request(func(p *Params) { mod(g, p) }), nil
	}
}

func mutated(mod func(g *gen, p *Params), change func(g *gen, b []byte) []byte) func(*gen, []byte) (*Sealed, *Sealed) {
	return func(g *gen, _ []byte) (*Sealed, *Sealed) {
		s := g.request(func(p *Params) { mod(g, p) })
		s.Bytes = change(g, s.Bytes)
		return s, nil
	}
}

func edited(mod func(g *gen, p *Params), edit func(*wireHeader)) func(*gen, []byte) (*Sealed, *Sealed) {
	return func(g *gen, _ []byte) (*Sealed, *Sealed) {
		p := g.params()
		mod(g, p)
		if edit == nil {
			edit = func(*wireHeader) {} // seal unchecked, as an attacker would
		}
		s, err := g.w.sealer().seal(nil, p, g.payload(), edit)
		if err != nil {
			g.t.Fatal(err)
		}
		return s, nil
	}
}

var allSenderKeys = []string{"hmac", "hotp", "psk", "ed25519", "es256", "ps256"}

func vectorSpecs() []vectorSpec {
	withHMAC := func(g *gen, p *Params) { p.HMAC = g.w.hmac }
	withEd := func(g *gen, p *Params) { p.Signer = g.w.ed }
	withHMACEd := func(g *gen, p *Params) { p.HMAC = g.w.hmac; p.Signer = g.w.ed }
	rewrite := func(change func(*wireHeader)) func(*gen, []byte) []byte {
		return func(g *gen, b []byte) []byte { return rewriteHeader(change)(g.w, b) }
	}
	replyTo := func(kind Kind) func(*gen, []byte) (*Sealed, *Sealed) {
		return func(g *gen, _ []byte) (*Sealed, *Sealed) {
			req := g.request(func(p *Params) { p.HMAC = g.w.hmac })
			return g.reply(kind, req, func(p *Params) { p.HMAC = g.w.hmac }), req
		}
	}
	return []vectorSpec{
		// Valid messages, one per protection set.
		{name: "hmac", desc: "request with HMAC-SHA256", policy: vectorPolicy{Require: []string{"hmac"}}, build: simple(withHMAC)},
		{name: "hmac-hotp", desc: "request with HMAC-SHA256 and a HOTP code for the envelope counter", policy: vectorPolicy{Require: []string{"hmac", "hotp"}},
			build: simple(func(g *gen, p *Params) { p.HMAC, p.HOTP = g.w.hmac, g.w.hotp })},
		{name: "ed25519", desc: "request signed with Ed25519", policy: vectorPolicy{Require: []string{"sig"}}, build: simple(withEd)},
		{name: "es256", desc: "request signed with ECDSA P-256 SHA-256 (r||s)", policy: vectorPolicy{Require: []string{"sig"}},
			build: simple(func(g *gen, p *Params) { p.Signer = g.w.es })},
		{name: "ps256", desc: "request signed with RSA-PSS SHA-256, salt 32", policy: vectorPolicy{Require: []string{"sig"}},
			build: simple(func(g *gen, p *Params) { p.Signer = g.w.ps })},
		{name: "rs256-legacy", desc: "request signed with RSASSA-PKCS1-v1_5 SHA-256, accepted because the policy allows legacy RS256",
			trust: []string{"rs256"}, policy: vectorPolicy{Require: []string{"sig"}, AllowLegacyRS256: true},
			build: simple(func(g *gen, p *Params) { p.Signer = g.w.rs })},
		{name: "psk", desc: "request encrypted with a pre-shared AES-256-GCM key (which also authenticates the sender)",
			policy: vectorPolicy{Require: []string{"enc"}, RequirePairwiseEncryption: true}, build: simple(func(g *gen, p *Params) { p.PSK = g.w.psk })},
		{name: "hmac-psk", desc: "request with HMAC-SHA256, encrypted with a pre-shared key", policy: vectorPolicy{Require: []string{"enc", "hmac"}},
			build: simple(func(g *gen, p *Params) { p.HMAC, p.PSK = g.w.hmac, g.w.psk })},
		{name: "ed25519-hpke-x25519", desc: "request signed with Ed25519, content key wrapped with HPKE DHKEM(X25519)",
			policy: vectorPolicy{Require: []string{"enc", "sig"}}, build: simple(func(g *gen, p *Params) { p.Signer = g.w.ed; p.Recipients = []Recipient{g.w.x25519} })},
		{name: "ed25519-hpke-xwing", desc: "request signed with Ed25519, content key wrapped with HPKE MLKEM768-X25519",
			policy: vectorPolicy{Require: []string{"enc", "sig"}}, build: simple(func(g *gen, p *Params) { p.Signer = g.w.ed; p.Recipients = []Recipient{g.w.xwing} })},
		{name: "ps256-rsa-oaep", desc: "request signed with RSA-PSS, content key wrapped with RSA-OAEP-256",
			policy: vectorPolicy{Require: []string{"enc", "sig"}}, build: simple(func(g *gen, p *Params) { p.Signer = g.w.ps; p.Recipients = []Recipient{g.w.rsaoaep} })},
		{name: "hmac-hotp-es256-hpke-x25519", desc: "every protection at once", policy: vectorPolicy{Require: []string{"enc", "hmac", "hotp", "sig"}},
			build: simple(func(g *gen, p *Params) {
				p.HMAC, p.HOTP, p.Signer = g.w.hmac, g.w.hotp, g.w.es
				p.Recipients = []Recipient{g.w.x25519}
			})},
		{name: "event-multi-recipient", desc: "event to three recipients, signed with ES256, content key wrapped to each (this receiver holds only the RSA-OAEP key)",
			receiver: "gateway-3", identities: []string{"rsa-oaep"}, policy: vectorPolicy{Require: []string{"enc", "sig"}},
			expect: &vectorExpect{Kinds: []string{"evt"}, From: "client", Topic: "doors/3/opened"},
			build: func(g *gen, _ []byte) (*Sealed, *Sealed) {
				s, err := g.w.sealer().Seal(&Params{Kind: Event, To: []string{"gateway", "gateway-2", "gateway-3"}, Topic: "doors/3/opened",
					Signer: g.w.es, Recipients: []Recipient{g.w.x25519, g.w.xwing, g.w.rsaoaep}, Version: g.version}, []byte(`{"door":3}`))
				if err != nil {
					g.t.Fatal(err)
				}
				return s, nil
			}},
		{name: "event-broadcast", desc: "signed event with no recipient list: for any subscriber", receiver: "anyone",
			expect: &vectorExpect{Kinds: []string{"evt"}, From: "client"},
			build: func(g *gen, _ []byte) (*Sealed, *Sealed) {
				s, err := g.w.sealer().Seal(&Params{Kind: Event, Topic: "status", Signer: g.w.ed, Version: g.version}, []byte(`{"up":true}`))
				if err != nil {
					g.t.Fatal(err)
				}
				return s, nil
			}},
		{name: "reply", desc: "reply from the gateway with HMAC, bound to the request in the request field", sender: "gateway", receiver: "client",
			trust: []string{"hmac"}, expect: &vectorExpect{Kinds: []string{"rep", "err"}, From: "gateway"}, build: replyTo(Reply)},
		{name: "error-reply", desc: "error reply from the gateway with HMAC, bound to the request", sender: "gateway", receiver: "client",
			trust: []string{"hmac"}, expect: &vectorExpect{Kinds: []string{"rep", "err"}, From: "gateway"}, build: replyTo(ErrorReply)},

		// Refusals.
		{name: "tampered-header", desc: "header re-encoded with topic get-card changed to delete-card; HMAC and signature no longer verify",
			expect: &vectorExpect{Kinds: []string{"req"}, Topic: "delete-card"}, result: "authentication",
			build: mutated(withHMACEd, rewrite(func(h *wireHeader) { h.Topic = "delete-card" }))},
		{name: "tampered-payload", desc: "one payload character changed", result: "authentication",
			build: mutated(withHMACEd, func(g *gen, b []byte) []byte { return flipInMember(b, memberP, 2) })},
		{name: "tampered-ciphertext", desc: "pre-shared-key ciphertext changed; only the AEAD protects it", result: "decryption",
			build: mutated(func(g *gen, p *Params) { p.PSK = g.w.psk }, func(g *gen, b []byte) []byte { return flipInMember(b, memberP, 20) })},
		{name: "wrong-key", desc: "HMAC computed with another key under the receiver's key id", result: "authentication",
			build: simple(func(g *gen, p *Params) { p.HMAC = &HMACKey{id: g.w.hmac.id, secret: g.w.sec.OtherHMAC} })},
		{name: "wrong-hotp-code", desc: "HMAC valid but the HOTP code is for another counter", result: "authentication",
			build: edited(func(g *gen, p *Params) { p.HMAC, p.HOTP = g.w.hmac, g.w.hotp }, func(h *wireHeader) {
				h.HOTP.Code = fmt.Sprintf("%06d", (mustAtoi(h.HOTP.Code)+1)%1000000)
			})},
		{name: "unknown-key-id", desc: "signed by a key the receiver does not hold", result: "unknown-key",
			build: simple(func(g *gen, p *Params) {
				p.Signer = must[Signer](g.t)(NewEd25519Signer(edFromSeed(g.w.sec.OtherEd25519Seed)))
			})},
		{name: "unknown-sender", desc: "sender id the receiver has no peer for", sender: "client", result: "unknown-key",
			expect: &vectorExpect{Kinds: []string{"req"}},
			build: func(g *gen, _ []byte) (*Sealed, *Sealed) {
				s := &Sealer{ID: "mallory", Counter: NewMemoryCounter(1000), Now: g.w.clock}
				p := g.params()
				p.HMAC = g.w.hmac
				out, err := s.Seal(p, g.payload())
				if err != nil {
					g.t.Fatal(err)
				}
				return out, nil
			}},
		{name: "stripped-signature", desc: "policy requires a signature; the message carries only an HMAC", policy: vectorPolicy{Require: []string{"sig"}},
			result: "policy", build: simple(withHMAC)},
		{name: "stripped-signature-member", desc: "the sig member removed while the header still declares it", result: "authentication",
			build: mutated(withHMACEd, func(g *gen, b []byte) []byte { return dropMember(memberSig)(g.w, b) })},
		{name: "stripped-hmac", desc: "policy requires an HMAC; the message is only signed", policy: vectorPolicy{Require: []string{"hmac"}},
			result: "policy", build: simple(withEd)},
		{name: "stripped-encryption", desc: "policy requires encryption; the message is in clear", policy: vectorPolicy{Require: []string{"enc"}},
			result: "policy", build: simple(withHMAC)},
		{name: "hotp-alone", desc: "a HOTP code with no HMAC, signature or pre-shared key: nothing binds it to the content", result: "policy",
			build: edited(func(g *gen, p *Params) { p.HOTP = g.w.hotp }, nil)},
		{name: "wrapped-key-alone", desc: "encrypted to the receiver with HPKE but not authenticated: anyone can do that", result: "policy",
			build: edited(func(g *gen, p *Params) { p.Recipients = []Recipient{g.w.x25519} }, nil)},
		{name: "rs256-not-allowed", desc: "legacy RS256 signature without the policy's opt-in", trust: []string{"rs256"}, result: "policy",
			build: simple(func(g *gen, p *Params) { p.Signer = g.w.rs })},
		{name: "replayed", desc: "the receiver already accepted this counter", replayed: []uint64{1001}, result: "replayed", build: simple(withHMAC)},
		{name: "below-window", desc: "counter 64 or more below the highest accepted", replayed: []uint64{1001 + 64}, result: "replayed", build: simple(withHMAC)},
		{name: "expired", desc: "received after exp + skew", clock: DefaultTTL + DefaultMaxClockSkew, result: "expired", build: simple(withHMAC)},
		{name: "not-yet-valid", desc: "iat more than the skew in the receiver's future", clock: -DefaultMaxClockSkew - 2*time.Second, result: "expired", build: simple(withHMAC)},
		{name: "lifetime-too-long", desc: "exp - iat longer than the policy's maximum lifetime", result: "expired",
			build: simple(func(g *gen, p *Params) { p.HMAC = g.w.hmac; p.TTL = time.Hour })},
		{name: "too-large", desc: "longer than the receiver's maximum size (here 256 bytes)", maxSize: 256, result: "too-large", build: simple(withHMAC)},
		{name: "malformed-json", desc: "not the envelope template", result: "malformed",
			build: mutated(withHMAC, func(g *gen, b []byte) []byte { return b[:len(b)-1] })},
		{name: "non-canonical", desc: "a space after a colon: valid JSON, but not the one canonical form", result: "malformed",
			build: mutated(withHMAC, func(g *gen, b []byte) []byte { return bytes.Replace(b, []byte(`"v":1`), []byte(`"v": 1`), 1) })},
		{name: "wrong-version", desc: "version 2", result: "unsupported-version",
			build: mutated(withHMAC, func(g *gen, b []byte) []byte { return bytes.Replace(b, []byte(`"v":1`), []byte(`"v":2`), 1) })},
		{name: "reply-to-other-request", desc: "a genuine reply, opened for a different pending request", sender: "gateway", receiver: "client",
			trust: []string{"hmac"}, expect: &vectorExpect{Kinds: []string{"rep", "err"}, From: "gateway"}, result: "context",
			build: func(g *gen, b []byte) (*Sealed, *Sealed) {
				req := g.request(func(p *Params) { p.HMAC = g.w.hmac })
				other := g.request(func(p *Params) { p.HMAC = g.w.hmac })
				return g.reply(Reply, other, func(p *Params) { p.HMAC = g.w.hmac }), req
			}},
		{name: "reflected-request", desc: "the client's own request sent back to it as if it were the reply", sender: "client", receiver: "client",
			trust: []string{"hmac"}, expect: &vectorExpect{Kinds: []string{"rep", "err"}, From: "gateway"}, result: "context",
			build: func(g *gen, _ []byte) (*Sealed, *Sealed) {
				req := g.request(func(p *Params) { p.HMAC = g.w.hmac })
				return req, req
			}},
		{name: "method-substitution", desc: "a genuine get-card request re-published on the delete-card topic",
			expect: &vectorExpect{Kinds: []string{"req"}, Topic: "delete-card"}, result: "context", build: simple(withHMACEd)},
		{name: "re-addressed", desc: "a genuine request delivered to another gateway", receiver: "gateway-2", result: "context", build: simple(withHMACEd)},
		{name: "line-break", desc: "a line feed inside the payload member: base64url has no line breaks here", result: "malformed",
			build: mutated(withHMAC, func(g *gen, b []byte) []byte {
				i := bytes.Index(b, []byte(`"p":"`)) + 8
				return append(b[:i:i], append([]byte("\n"), b[i:]...)...)
			})},
		{name: "forged-replay", desc: "HMAC under another key, on a counter the receiver already accepted: the HMAC is checked before the replay window",
			replayed: []uint64{1001}, result: "authentication",
			build: simple(func(g *gen, p *Params) { p.HMAC = &HMACKey{id: g.w.hmac.id, secret: g.w.sec.OtherHMAC} })},
	}
}

func mustAtoi(s string) int {
	n, err := strconv.Atoi(s)
	if err != nil {
		panic(err)
	}
	return n
}

func generateVectors(t *testing.T) map[string][]byte {
	files := map[string][]byte{}
	for i, spec := range slices.Concat(vectorSpecs(), binaryVectorSpecs(), compactVectorSpecs()) {
		cryptotest.SetGlobalRandom(t, seedFor(spec.name))
		w := newWorld(t)
		w.ctr = NewMemoryCounter(1000)
		g := &gen{t: t, w: w, gw: &Sealer{ID: "gateway", Counter: NewMemoryCounter(5000), Now: w.clock}, version: cmp.Or(spec.version, Version1)}
		env, req := spec.build(g, nil)
		v := &vector{
			Name: spec.name, Description: spec.desc, Sender: spec.sender, Receiver: spec.receiver,
			Now: testNow.Add(time.Second + spec.clock).UnixMilli(), MaxSize: spec.maxSize, ReplayWidth: DefaultWindow,
			Trust: spec.trust, Identities: spec.identities, Policy: spec.policy, Result: spec.result,
		}
		setBytes(env.Bytes, &v.Envelope, &v.EnvelopeHex)
		if v.Sender == "" {
			v.Sender = "client"
		}
		if v.Receiver == "" {
			v.Receiver = "gateway"
		}
		if v.Trust == nil {
			v.Trust = allSenderKeys
		}
		if v.Identities == nil {
			v.Identities = []string{"x25519", "xwing", "rsa-oaep"}
		}
		if v.Result == "" {
			v.Result = "ok"
		}
		v.Policy.MaxClockSkewMs = DefaultMaxClockSkew.Milliseconds()
		v.Policy.MaxLifetimeMs = DefaultMaxLifetime.Milliseconds()
		if spec.expect != nil {
			v.Expect = *spec.expect
		} else {
			v.Expect = vectorExpect{Kinds: []string{"req"}, From: "client", Topic: "get-card"}
		}
		for _, c := range spec.replayed {
			v.Replayed = append(v.Replayed, strconv.FormatUint(c, 10))
		}
		if req != nil {
			setBytes(req.Bytes, &v.Request, &v.RequestHex)
			v.Expect.InReplyTo = b64.EncodeToString(req.Digest[:])
		}
		if e, err := Parse(env.Bytes); err == nil {
			v.Header = headerText(e)
		}
		if v.Result == "ok" {
			o := v.opener(t, mustLoadedFromWorld(t, w))
			m, err := o.Open(ctx, env.Bytes, v.expect(t))
			if err != nil {
				t.Fatalf("generated vector %s does not open: %v", spec.name, err)
			}
			v.Payload = b64.EncodeToString(m.Payload)
			if m.Kind == Request {
				v.Digest = b64.EncodeToString(m.Digest[:])
			}
		}
		data, err := json.MarshalIndent(v, "", "  ")
		if err != nil {
			t.Fatal(err)
		}
		files[fmt.Sprintf("%02d-%s.json", i+1, spec.name)] = append(data, '\n')
	}
	cryptotest.SetGlobalRandom(t, 0)
	keys := worldKeys(t, newWorld(t))
	data, err := json.MarshalIndent(keys, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	files["keys.json"] = append(data, '\n')
	return files
}

// mustLoadedFromWorld gives the generator the same named keys the loader
// builds from keys.json.
func mustLoadedFromWorld(t *testing.T, w *world) *loadedKeys {
	other := must[Verifier](t)(NewEd25519Verifier(edFromSeed(w.sec.OtherEd25519Seed).Public().(ed25519.PublicKey)))
	return &loadedKeys{
		macs:  map[string]*HMACKey{"hmac": w.hmac, "other-hmac": must[*HMACKey](t)(NewHMACKey(w.sec.OtherHMAC))},
		hotps: map[string]*HOTPKey{"hotp": w.hotp},
		psks:  map[string]*AEADKey{"psk": w.psk},
		verifiers: map[string]Verifier{
			"ed25519": w.peer.Verifiers[0], "es256": w.peer.Verifiers[1], "ps256": w.peer.Verifiers[2],
			"rs256": w.peer.Verifiers[3], "other-ed25519": other,
		},
		identities: map[string]Identity{"x25519": w.ids[0], "xwing": w.ids[1], "rsa-oaep": w.ids[2]},
	}
}

func pemPKCS8(t *testing.T, k *rsa.PrivateKey) string {
	der, err := x509.MarshalPKCS8PrivateKey(k)
	if err != nil {
		t.Fatal(err)
	}
	return string(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}))
}

func worldKeys(t *testing.T, w *world) *vectorKeys {
	s := w.sec
	enc := b64.EncodeToString
	es := must[*ecdsa.PrivateKey](t)(ecdsa.ParseRawPrivateKey(elliptic.P256(), s.ES256Scalar))
	esPub := must[[]byte](t)(es.PublicKey.Bytes())
	xPriv := must[hpke.PrivateKey](t)(hpke.DHKEM(ecdh.X25519()).NewPrivateKey(s.X25519))
	xwPriv := must[hpke.PrivateKey](t)(hpke.MLKEM768X25519().NewPrivateKey(s.XWingSeed))
	vk := &vectorKeys{
		Comment: "TEST KEYS ONLY. Every key the vectors use. Secrets and seeds are base64url; " +
			"RSA keys are PKCS#8 PEM. publicKeys holds the bytes each key id is derived from (SPEC.md §6).",
		HMAC: enc(s.HMAC), OtherHMAC: enc(s.OtherHMAC), HOTP: enc(s.HOTP), HOTPDigits: 6, PSK: enc(s.PSK),
		Ed25519Seed: enc(s.Ed25519Seed), OtherEd25519Seed: enc(s.OtherEd25519Seed), ES256Private: enc(s.ES256Scalar),
		RSASignPrivate: pemPKCS8(t, s.RSASign), X25519Private: enc(s.X25519), XWingSeed: enc(s.XWingSeed),
		RSAOAEPPrivate: pemPKCS8(t, s.RSAOAEP),
		PublicKeys: map[string]string{
			"ed25519":       enc(edFromSeed(s.Ed25519Seed).Public().(ed25519.PublicKey)),
			"other-ed25519": enc(edFromSeed(s.OtherEd25519Seed).Public().(ed25519.PublicKey)),
			"es256":         enc(esPub),
			"ps256":         enc(rsaPublicBytes(&s.RSASign.PublicKey)),
			"rs256":         enc(rsaPublicBytes(&s.RSASign.PublicKey)),
			"x25519":        enc(xPriv.PublicKey().Bytes()),
			"xwing":         enc(xwPriv.PublicKey().Bytes()),
			"rsa-oaep":      enc(rsaPublicBytes(&s.RSAOAEP.PublicKey)),
		},
		KeyIDs: map[string]string{},
	}
	lk := mustLoadedFromWorld(t, w)
	for n, k := range lk.macs {
		vk.KeyIDs[n] = k.KeyID()
	}
	vk.KeyIDs["hotp"] = w.hotp.KeyID()
	vk.KeyIDs["psk"] = w.psk.KeyID()
	for n, v := range lk.verifiers {
		vk.KeyIDs[n] = v.KeyID()
	}
	for n, i := range lk.identities {
		vk.KeyIDs[n] = i.KeyID()
	}
	return vk
}

func writeVectors(t *testing.T) {
	files := generateVectors(t)
	old, _ := filepath.Glob(filepath.Join(vectorDir, "*.json"))
	for _, f := range old {
		os.Remove(f)
	}
	for name, data := range files {
		if err := os.WriteFile(filepath.Join(vectorDir, name), data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	t.Logf("wrote %d files to %s", len(files), vectorDir)
}
