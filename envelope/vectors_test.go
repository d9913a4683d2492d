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
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
	"unicode"
	"unicode/utf16"
	"unicode/utf8"

	"github.com/mqttsec/mqttsec/rsasign"
)

var update = flag.Bool("update", false, "rewrite testdata/vectors from the generator")

const vectorDir = "testdata/vectors"

// --- the files ---

// vectorKeyFile is testdata/vectors/keys.json (SPEC.md §11): every key
// the vectors use. Secrets and seeds are base64url, RSA keys PKCS#8 PEM;
// publicKeys and keyIds are by key name.
type vectorKeyFile struct {
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
	MaxClockSkewMs            int64    `json:"maxClockSkewMs"`
	MaxLifetimeMs             int64    `json:"maxLifetimeMs"`
	Clockless                 bool     `json:"clockless,omitempty"`
}

type vectorExpect struct {
	Kinds   []string `json:"kinds"`
	From    string   `json:"from,omitempty"`
	Topic   string   `json:"topic,omitempty"`
	Request string   `json:"request,omitempty"` // hex: the pending request a reply answers
}

// vector is one file of testdata/vectors.
type vector struct {
	Name        string          `json:"name"`
	Description string          `json:"description"`
	Rule        string          `json:"rule,omitempty"`
	Sender      string          `json:"sender"`
	Receiver    string          `json:"receiver"`
	Now         int64           `json:"now,omitempty"` // absent when clockless
	Clockless   bool            `json:"clockless,omitempty"`
	MaxSize     int             `json:"maxSize"`
	ReplayWidth int             `json:"replayWidth"`
	Trust       []string        `json:"trust"`
	Identities  []string        `json:"identities"`
	Policy      vectorPolicy    `json:"policy"`
	Expect      vectorExpect    `json:"expect"`
	Replayed    []string        `json:"replayed,omitempty"` // decimal counters
	Envelope    string          `json:"envelope"`           // hex
	Header      json.RawMessage `json:"header,omitempty"`
	Result      string          `json:"result"`
	Payload     *string         `json:"payload,omitempty"` // hex, for ok
	Digest      string          `json:"digest,omitempty"`  // hex, for an accepted request

	file string // the file's name
}

var resultClasses = map[string]error{
	"ok": nil, "too-large": ErrTooLarge, "malformed": ErrMalformed,
	"unsupported-version": ErrUnsupportedVersion, "policy": ErrPolicy, "context": ErrContext,
	"unknown-key": ErrUnknownKey, "authentication": ErrAuthentication, "replayed": ErrReplayed,
	"replay-store": ErrReplayStore, "expired": ErrExpired, "decryption": ErrDecryption,
}

func unhex(t testing.TB, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(s)
	if err != nil {
		t.Fatalf("bad hex %.20q: %v", s, err)
	}
	return b
}

// --- keys: built from keys.json alone, as a port would ---

// vectorKeySet is every key of keys.json, by name, for both sides.
type vectorKeySet struct {
	macs       map[string]*HMACKey
	hotps      map[string]*HOTPKey
	psks       map[string]*AEADKey
	signers    map[string]Signer
	verifiers  map[string]Verifier
	recipients map[string]Recipient
	identities map[string]Identity
	rsaSign    *rsa.PrivateKey // the private key of ps256
}

func readVectorKeyFile(t testing.TB) *vectorKeyFile {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(vectorDir, "keys.json"))
	if err != nil {
		t.Fatal(err)
	}
	var kf vectorKeyFile
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&kf); err != nil {
		t.Fatalf("keys.json: %v", err)
	}
	return &kf
}

func unb64(t testing.TB, s string) []byte {
	t.Helper()
	b, err := b64.DecodeString(s)
	if err != nil {
		t.Fatalf("bad base64url %.20q: %v", s, err)
	}
	return b
}

// keySet builds the keys of kf, and checks that each has the public key
// and the key id kf gives it.
func (kf *vectorKeyFile) keySet(t testing.TB) *vectorKeySet {
	t.Helper()
	ks := &vectorKeySet{
		macs: map[string]*HMACKey{}, hotps: map[string]*HOTPKey{}, psks: map[string]*AEADKey{},
		signers: map[string]Signer{}, verifiers: map[string]Verifier{},
		recipients: map[string]Recipient{}, identities: map[string]Identity{},
	}
	ks.macs["hmac"] = must[*HMACKey](t)(NewHMACKey(unb64(t, kf.HMAC)))
	ks.macs["other-hmac"] = must[*HMACKey](t)(NewHMACKey(unb64(t, kf.OtherHMAC)))
	ks.hotps["hotp"] = must[*HOTPKey](t)(NewHOTPKey(unb64(t, kf.HOTP), kf.HOTPDigits))
	ks.hotps["hotp8"] = must[*HOTPKey](t)(NewHOTPKey(unb64(t, kf.HOTP), 8))
	ks.psks["psk"] = must[*AEADKey](t)(NewAEADKey(unb64(t, kf.PSK)))
	public := map[string][]byte{}
	for name, seed := range map[string]string{"ed25519": kf.Ed25519Seed, "other-ed25519": kf.OtherEd25519Seed} {
		priv := ed25519.NewKeyFromSeed(unb64(t, seed))
		public[name] = priv.Public().(ed25519.PublicKey)
		ks.signers[name] = must[Signer](t)(NewEd25519Signer(priv))
		ks.verifiers[name] = must[Verifier](t)(NewEd25519Verifier(public[name]))
	}
	es := must[*ecdsa.PrivateKey](t)(ecdsa.ParseRawPrivateKey(elliptic.P256(), unb64(t, kf.ES256Private)))
	public["es256"] = must[[]byte](t)(es.PublicKey.Bytes())
	ks.signers["es256"] = must[Signer](t)(NewECDSASigner(es))
	ks.verifiers["es256"] = must[Verifier](t)(NewECDSAVerifier(&es.PublicKey))
	ps := must[*rsa.PrivateKey](t)(rsasign.ParsePrivateKeyPEM([]byte(kf.RSASignPrivate)))
	public["ps256"] = rsaPublicBytes(&ps.PublicKey)
	ks.rsaSign = ps
	ks.signers["ps256"] = must[Signer](t)(NewRSASigner(ps))
	ks.verifiers["ps256"] = must[Verifier](t)(NewRSAVerifier(&ps.PublicKey))
	x := must[hpke.PrivateKey](t)(hpke.DHKEM(ecdh.X25519()).NewPrivateKey(unb64(t, kf.X25519Private)))
	xw := must[hpke.PrivateKey](t)(hpke.MLKEM768X25519().NewPrivateKey(unb64(t, kf.XWingSeed)))
	for name, priv := range map[string]hpke.PrivateKey{"x25519": x, "xwing": xw} {
		public[name] = priv.PublicKey().Bytes()
		ks.recipients[name] = must[Recipient](t)(NewHPKERecipient(priv.PublicKey()))
		ks.identities[name] = must[Identity](t)(NewHPKEIdentity(priv))
	}
	oaep := must[*rsa.PrivateKey](t)(rsasign.ParsePrivateKeyPEM([]byte(kf.RSAOAEPPrivate)))
	public["rsa-oaep"] = rsaPublicBytes(&oaep.PublicKey)
	ks.recipients["rsa-oaep"] = must[Recipient](t)(NewRSARecipient(&oaep.PublicKey))
	ks.identities["rsa-oaep"] = must[Identity](t)(NewRSAIdentity(oaep))

	// The public keys and key ids kf states are what the keys give.
	ids := ks.keyIDs()
	for name, id := range ids {
		if kf.KeyIDs[name] != id.String() {
			t.Errorf("keys.json: key id of %s is %q, the key gives %q", name, kf.KeyIDs[name], id)
		}
	}
	for name := range kf.KeyIDs {
		if _, ok := ids[name]; !ok {
			t.Errorf("keys.json: key id of %s, which is no key", name)
		}
	}
	for name, pub := range public {
		if kf.PublicKeys[name] != b64.EncodeToString(pub) {
			t.Errorf("keys.json: public key of %s differs from its private key's", name)
		}
	}
	if len(kf.PublicKeys) != len(public) {
		t.Errorf("keys.json: %d public keys, want %d", len(kf.PublicKeys), len(public))
	}
	return ks
}

// keyIDs are the ids of every key of ks, by name.
func (ks *vectorKeySet) keyIDs() map[string]KeyID {
	ids := map[string]KeyID{}
	for n, k := range ks.macs {
		ids[n] = k.KeyID()
	}
	for n, k := range ks.hotps {
		ids[n] = k.KeyID()
	}
	for n, k := range ks.psks {
		ids[n] = k.KeyID()
	}
	for n, k := range ks.verifiers {
		ids[n] = k.KeyID()
	}
	for n, k := range ks.identities {
		ids[n] = k.KeyID()
	}
	return ids
}

// --- the receiver a vector describes ---

// vectorKeyring is a Keyring without NewKeys' checks, so that a vector
// may name a sender whose id the header rules refuse: with the rule
// switched off, the message would be accepted.
type vectorKeyring struct {
	peer       *Peer
	identities []Identity
}

func (k *vectorKeyring) Peer(id string) *Peer {
	if id == k.peer.ID {
		return k.peer
	}
	return nil
}

func (k *vectorKeyring) Identity(kid KeyID) Identity {
	for _, i := range k.identities {
		if i.KeyID() == kid {
			return i
		}
	}
	return nil
}

// windowStore is the replay window of SPEC.md §7.2 with width W, per
// sender: the highest counter accepted and a bitmap of the W below it.
type windowStore struct {
	mu      sync.Mutex
	width   uint64
	senders map[string]*senderWindow
}

type senderWindow struct {
	top  uint64
	bits []uint64 // bit i: top - i accepted
}

func newWindowStore(width int) *windowStore {
	if width <= 0 {
		width = 64
	}
	return &windowStore{width: uint64(width), senders: map[string]*senderWindow{}}
}

func (s *windowStore) fresh(m Seen) bool {
	w := s.senders[m.Sender]
	switch {
	case w == nil, m.Counter > w.top:
		return true
	case w.top-m.Counter >= s.width:
		return false
	}
	i := w.top - m.Counter
	return w.bits[i/64]&(1<<(i%64)) == 0
}

func (s *windowStore) Check(_ context.Context, m Seen) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.fresh(m) {
		return ErrReplayed
	}
	return nil
}

func (s *windowStore) Admit(_ context.Context, m Seen) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.fresh(m) {
		return ErrReplayed
	}
	w := s.senders[m.Sender]
	if w == nil {
		w = &senderWindow{top: m.Counter, bits: make([]uint64, s.width/64)}
		s.senders[m.Sender] = w
	}
	if m.Counter > w.top {
		shift := m.Counter - w.top
		old := w.bits
		w.bits = make([]uint64, len(old))
		for i := uint64(0); i < s.width; i++ {
			if old[i/64]&(1<<(i%64)) != 0 && i+shift < s.width {
				j := i + shift
				w.bits[j/64] |= 1 << (j % 64)
			}
		}
		w.top = m.Counter
	}
	i := w.top - m.Counter
	w.bits[i/64] |= 1 << (i % 64)
	return nil
}

var protectionByName = map[string]Protection{"enc": Encryption, "hmac": HMAC, "hotp": HOTPCode, "sig": Signature}

// opener builds the receiver v describes, with its replay window holding
// the counters of v.Replayed.
func (v *vector) opener(t testing.TB, ks *vectorKeySet) *Opener {
	t.Helper()
	peer := &Peer{ID: v.Sender}
	for _, name := range v.Trust {
		switch {
		case ks.macs[name] != nil:
			peer.HMACKeys = append(peer.HMACKeys, ks.macs[name])
		case ks.hotps[name] != nil:
			peer.HOTPKeys = append(peer.HOTPKeys, ks.hotps[name])
		case ks.psks[name] != nil:
			peer.AEADKeys = append(peer.AEADKeys, ks.psks[name])
		case ks.verifiers[name] != nil:
			peer.Verifiers = append(peer.Verifiers, ks.verifiers[name])
		default:
			t.Fatalf("%s: trust names no sender key: %q", v.Name, name)
		}
	}
	for _, r := range v.Policy.Require {
		p, ok := protectionByName[r]
		if !ok {
			t.Fatalf("%s: unknown protection %q", v.Name, r)
		}
		peer.Policy.Require |= p
	}
	peer.Policy.RequirePairwiseEncryption = v.Policy.RequirePairwiseEncryption
	peer.Policy.MaxClockSkew = time.Duration(v.Policy.MaxClockSkewMs) * time.Millisecond
	peer.Policy.MaxLifetime = time.Duration(v.Policy.MaxLifetimeMs) * time.Millisecond
	peer.Policy.Clockless = v.Policy.Clockless
	keys := &vectorKeyring{peer: peer}
	for _, name := range v.Identities {
		id := ks.identities[name]
		if id == nil {
			t.Fatalf("%s: unknown identity %q", v.Name, name)
		}
		keys.identities = append(keys.identities, id)
	}
	now := time.UnixMilli(v.Now)
	if v.ReplayWidth < 0 || v.ReplayWidth%64 != 0 {
		t.Fatalf("%s: replayWidth %d is not a multiple of 64 (SPEC.md §7.2)", v.Name, v.ReplayWidth)
	}
	store := newWindowStore(v.ReplayWidth)
	for _, text := range v.Replayed {
		c, err := strconv.ParseUint(text, 10, 64)
		if err != nil {
			t.Fatalf("%s: replayed: %v", v.Name, err)
		}
		if err := store.Admit(ctx, Seen{Sender: v.Sender, Counter: c, IssuedAt: now}); err != nil {
			t.Fatal(err)
		}
	}
	return &Opener{
		ID:        v.Receiver,
		Keys:      keys,
		Replay:    store,
		Now:       func() time.Time { return now },
		MaxSize:   v.MaxSize,
		Clockless: v.Clockless,
	}
}

func (v *vector) expect(t testing.TB) *Expect {
	t.Helper()
	e := &Expect{From: v.Expect.From, Topic: v.Expect.Topic}
	for _, k := range v.Expect.Kinds {
		kind, ok := kindByName(k)
		if !ok {
			t.Fatalf("%s: unknown kind %q", v.Name, k)
		}
		e.Kinds |= kind
	}
	if v.Expect.Request != "" {
		e.Request = pendingRequest(t, unhex(t, v.Expect.Request))
	}
	return e
}

func kindByName(name string) (Kind, bool) {
	for _, n := range kindNames {
		if n.name == name {
			return n.k, true
		}
	}
	return 0, false
}

// pendingRequest is what the requester keeps of a request it sent: the
// Sealed that Seal returned for it, rebuilt from its bytes.
func pendingRequest(t testing.TB, b []byte) *Sealed {
	t.Helper()
	var h header
	f, err := parse(&h, b, 0)
	if err != nil {
		t.Fatalf("expect.request does not read: %v", err)
	}
	// Sent just now, as far as a clockless receiver's wait goes.
	s := &Sealed{Bytes: b, Digest: f.digest(), Counter: h.ctr, kind: h.kind, topic: h.topic,
		waitUntil: time.Now().Add(time.Duration(h.exp-h.iat) * time.Millisecond)}
	s.CorrelationID = bytes.Clone(h.corr)
	if len(h.to) > 0 {
		s.to = h.to[0]
	}
	return s
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
		v.file = filepath.Base(f)
		out = append(out, &v)
	}
	return out
}

// --- the tests ---

// TestVectors opens every vector as it describes and checks the result;
// an accepted one is then refused as replayed.
func TestVectors(t *testing.T) {
	if *update {
		writeVectors(t)
	}
	ks := readVectorKeyFile(t).keySet(t)
	for _, v := range loadVectors(t) {
		t.Run(v.Name, func(t *testing.T) {
			want, ok := resultClasses[v.Result]
			if !ok {
				t.Fatalf("unknown result %q", v.Result)
			}
			if (v.Result == "ok") != (v.Rule == "") {
				t.Fatalf("result %q with rule %q", v.Result, v.Rule)
			}
			data := unhex(t, v.Envelope)
			// The informative header is what the bytes say, where they read.
			if got := headerJSON(data); !jsonEqual(got, v.Header) {
				t.Fatalf("header field differs from the envelope's header:\n%s\n%s", v.Header, got)
			}
			o := v.opener(t, ks)
			m, err := o.Open(ctx, data, v.expect(t))
			if want != nil {
				if Class(err) != want || m != nil {
					t.Fatalf("Open = %v, want %v (%s)", err, want, v.Rule)
				}
				return
			}
			if err != nil {
				t.Fatalf("Open: %v", err)
			}
			if v.Payload == nil || hex.EncodeToString(m.Payload) != *v.Payload {
				t.Fatalf("payload %x, want %v", m.Payload, v.Payload)
			}
			var hh header
			fr, err := parse(&hh, data, o.MaxSize)
			if err != nil {
				t.Fatal(err)
			}
			d := fr.digest()
			switch {
			case m.Kind == Request && (m.Digest != d || hex.EncodeToString(d[:]) != v.Digest):
				t.Fatalf("digest %x (Message.Digest %x), want %s", d, m.Digest, v.Digest)
			case m.Kind != Request && v.Digest != "":
				t.Fatal("a digest on a vector that is no request")
			}
			if _, err := o.Open(ctx, data, v.expect(t)); !errors.Is(err, ErrReplayed) {
				t.Fatalf("second Open: %v, want ErrReplayed", err)
			}
		})
	}
}

func jsonEqual(a, b []byte) bool {
	if len(a) == 0 || len(b) == 0 {
		return len(a) == len(b)
	}
	var x, y any
	if json.Unmarshal(a, &x) != nil || json.Unmarshal(b, &y) != nil {
		return false
	}
	ja, _ := json.Marshal(x)
	jb, _ := json.Marshal(y)
	return bytes.Equal(ja, jb)
}

// TestVectorsFlipEveryBit: every single-bit change of an accepted vector
// is refused, with an error class.
func TestVectorsFlipEveryBit(t *testing.T) {
	ks := readVectorKeyFile(t).keySet(t)
	for _, v := range loadVectors(t) {
		if v.Result != "ok" {
			continue
		}
		t.Run(v.Name, func(t *testing.T) {
			o := v.opener(t, ks)
			want := v.expect(t)
			data := unhex(t, v.Envelope)
			flipped := make([]byte, len(data))
			for i := range data {
				for bit := range 8 {
					copy(flipped, data)
					flipped[i] ^= 1 << bit
					m, err := o.Open(ctx, flipped, want)
					if err == nil || m != nil {
						t.Fatalf("byte %d bit %d flipped: accepted", i, bit)
					}
					if Class(err) == nil {
						t.Fatalf("byte %d bit %d flipped: error without a class: %v", i, bit, err)
					}
				}
			}
			// No flipped copy touched the replay window.
			if _, err := o.Open(ctx, data, want); err != nil {
				t.Fatalf("genuine envelope after the flips: %v", err)
			}
		})
	}
}

// TestVectorsReproducible regenerates every file with the same randomness
// and compares.
func TestVectorsReproducible(t *testing.T) {
	files := generateVectors(t)
	for name, data := range files {
		got, err := os.ReadFile(filepath.Join(vectorDir, name))
		if err != nil {
			t.Errorf("%s: %v (run go test -run TestVectors -update)", name, err)
			continue
		}
		if !bytes.Equal(got, data) {
			t.Errorf("%s differs from the generator's output (run go test -run TestVectors -update)", name)
		}
	}
	present, _ := filepath.Glob(filepath.Join(vectorDir, "*.json"))
	for _, f := range present {
		if _, ok := files[filepath.Base(f)]; !ok {
			t.Errorf("%s is not the generator's (run go test -run TestVectors -update)", f)
		}
	}
}

// specRules reads SPEC.md's table of rules (§9.2): the rows of the table
// whose header row begins with "id", as id → class. exempt are the rules
// that the paragraph before the table says have no vector.
func specRules(t testing.TB) (rules map[string]string, exempt []string) {
	t.Helper()
	data, err := os.ReadFile("SPEC.md")
	if err != nil {
		t.Fatal(err)
	}
	rules = map[string]string{}
	classCol := -1
	var before []string // the lines since the last table or heading
	for line := range strings.Lines(string(data)) {
		line = strings.TrimSpace(line)
		if !strings.HasPrefix(line, "|") {
			if classCol >= 0 {
				break // the end of the rule table
			}
			if strings.HasPrefix(line, "#") {
				before = nil
			}
			before = append(before, line)
			continue
		}
		cells := strings.Split(strings.Trim(line, "|"), "|")
		for i := range cells {
			cells[i] = strings.Trim(strings.TrimSpace(cells[i]), "`")
		}
		if classCol < 0 {
			if strings.EqualFold(cells[0], "id") {
				classCol = slices.IndexFunc(cells, func(c string) bool { return strings.EqualFold(c, "class") })
				if classCol < 0 {
					t.Fatal("SPEC.md: the rule table has no class column")
				}
				for _, id := range regexp.MustCompile("`([a-z0-9-]+)`").FindAllStringSubmatch(strings.Join(before, " "), -1) {
					exempt = append(exempt, id[1])
				}
			} else {
				before = nil
			}
			continue
		}
		if strings.HasPrefix(cells[0], "-") || strings.HasPrefix(cells[0], ":") {
			continue
		}
		if !regexp.MustCompile("^[a-z0-9][a-z0-9-]*$").MatchString(cells[0]) || len(cells) <= classCol {
			t.Fatalf("SPEC.md: a rule table row without an id or class: %s", line)
		}
		rules[cells[0]] = cells[classCol]
	}
	if len(rules) == 0 {
		t.Fatal("SPEC.md has no rule table (a table whose header row begins | id |)")
	}
	// Only the ids of the table count as exemptions; the paragraph may
	// name a class or a step in backticks too.
	exempt = slices.DeleteFunc(exempt, func(id string) bool { _, ok := rules[id]; return !ok })
	slices.Sort(exempt)
	return rules, slices.Compact(exempt)
}

// TestVectorsCoverRules: every rule of SPEC.md's table has a vector that
// names it (but those the spec says no vector can show), and every
// refusal names a rule of the table, with the table's class.
func TestVectorsCoverRules(t *testing.T) {
	rules, exempt := specRules(t)
	t.Logf("%d rules in SPEC.md; without a vector by the spec: %v", len(rules), exempt)
	covered := map[string]int{}
	for _, v := range loadVectors(t) {
		if v.Rule == "" {
			continue
		}
		class, ok := rules[v.Rule]
		if !ok {
			t.Errorf("%s: rule %q is not in SPEC.md's table", v.file, v.Rule)
			continue
		}
		if class != v.Result {
			t.Errorf("%s: result %q, but SPEC.md gives rule %s the class %q", v.file, v.Result, v.Rule, class)
		}
		covered[v.Rule]++
	}
	var missing []string
	for id := range rules {
		if covered[id] == 0 && !slices.Contains(exempt, id) {
			missing = append(missing, id)
		}
	}
	slices.Sort(missing)
	if len(missing) > 0 {
		t.Errorf("rules without a vector: %s", strings.Join(missing, ", "))
	}
}

// --- the informative header ---

// headerJSON renders the header of envelope e for readers (SPEC.md §11):
// the fields of §3.1 by name, whatever their values, or nil when the
// frame or the header does not read (a field cut short, bytes after the
// last). It reads the fields by their encoding alone, so that it also
// shows a kind, a protection bit or an algorithm code that no rule admits.
// Texts are JSON strings, or {"hex": ...} when they are not UTF-8; byte
// strings (corr, re) are hex; key ids are their 16 base64url characters;
// a wrapped key's wk is shown by its length.
func headerJSON(e []byte) json.RawMessage {
	f, err := readFrame(e)
	if err != nil {
		return nil
	}
	r := headerFieldReader{b: f.header}
	var o orderedJSON
	kind := r.u8()
	o.add("kind", byteName(kind, func(b byte) string { return Kind(b).name() }))
	prot := r.u8()
	var names []string
	for _, n := range protectionNames {
		if Protection(prot)&n.p != 0 {
			names = append(names, n.name)
		}
	}
	if rest := prot &^ byte(allProtections); rest != 0 {
		names = append(names, hexByte(rest))
	}
	o.add("prot", append([]string{}, names...))
	o.add("from", jsonText(r.str8()))
	to := []any{}
	for range r.u8() {
		to = append(to, jsonText(r.str8()))
	}
	o.add("to", to)
	o.add("topic", jsonText(r.str16()))
	o.add("replyTo", jsonText(r.str16()))
	o.add("corr", hex.EncodeToString(r.str8()))
	o.add("re", hex.EncodeToString(r.str8()))
	o.add("ctr", r.u64())
	o.add("iat", r.u64())
	o.add("exp", r.u64())
	if prot&byte(HMAC) != 0 {
		o.add("mac", jsonObject("kid", r.kid()))
	}
	if prot&byte(HOTPCode) != 0 {
		kid := r.kid()
		o.add("hotp", jsonObject("kid", kid, "code", jsonText(r.str8())))
	}
	if prot&byte(Signature) != 0 {
		alg := byteName(r.u8(), func(b byte) string { return string(signatureCodes.algorithm(b)) })
		o.add("sig", jsonObject("alg", alg, "kid", r.kid()))
	}
	if prot&byte(Encryption) != 0 {
		n := r.u8()
		if n == 0 {
			o.add("enc", jsonObject("psk", r.kid()))
		} else {
			entries := []any{}
			for range n {
				if r.bad {
					break
				}
				alg := byteName(r.u8(), func(b byte) string { return string(wrapCodes.algorithm(b)) })
				kid := r.kid()
				entries = append(entries, jsonObject("alg", alg, "kid", kid, "wk", fmt.Sprintf("%d bytes", len(r.str16()))))
			}
			o.add("enc", jsonObject("wrapped", entries))
		}
	}
	if r.bad || len(r.b) > 0 {
		return nil
	}
	return o.bytes()
}

// jsonObject is a JSON object of the names and values in order.
func jsonObject(namesAndValues ...any) *orderedJSON {
	var o orderedJSON
	for i := 0; i < len(namesAndValues); i += 2 {
		o.add(namesAndValues[i].(string), namesAndValues[i+1])
	}
	return &o
}

// headerFieldReader reads header fields; a read past the end sets bad.
type headerFieldReader struct {
	b   []byte
	bad bool
}

func (r *headerFieldReader) take(n int) []byte {
	if r.bad || n > len(r.b) {
		r.bad = true
		return nil
	}
	v := r.b[:n]
	r.b = r.b[n:]
	return v
}

func (r *headerFieldReader) u8() byte {
	if v := r.take(1); v != nil {
		return v[0]
	}
	return 0
}

func (r *headerFieldReader) u64() uint64 {
	if v := r.take(8); v != nil {
		return binary.BigEndian.Uint64(v)
	}
	return 0
}

func (r *headerFieldReader) str8() []byte { return r.take(int(r.u8())) }

func (r *headerFieldReader) str16() []byte {
	if v := r.take(2); v != nil {
		return r.take(int(binary.BigEndian.Uint16(v)))
	}
	return nil
}

func (r *headerFieldReader) kid() string {
	v := r.take(keyIDSize)
	if v == nil {
		return ""
	}
	return KeyID(v).String()
}

// jsonText is s as a JSON string, or as {"hex": ...} when it is not UTF-8. The
// string escapes every character that does not print (controls, format
// characters, U+2028, noncharacters...) so that a reader sees it.
func jsonText(s []byte) any {
	if !utf8.Valid(s) {
		return jsonObject("hex", hex.EncodeToString(s))
	}
	b := []byte{'"'}
	for _, r := range string(s) {
		switch {
		case r == '"' || r == '\\':
			b = append(b, '\\', byte(r))
		case r < utf8.RuneSelf && r >= ' ' && r != 0x7f, r >= utf8.RuneSelf && unicode.IsPrint(r):
			b = utf8.AppendRune(b, r)
		case r > 0xffff:
			r1, r2 := utf16.EncodeRune(r)
			b = fmt.Appendf(b, "\\u%04x\\u%04x", r1, r2)
		default:
			b = fmt.Appendf(b, "\\u%04x", r)
		}
	}
	return json.RawMessage(append(b, '"'))
}

func hexByte(b byte) string { return fmt.Sprintf("0x%02x", b) }

// byteName is the name of a code, or the code in hex when it has none.
func byteName(b byte, name func(byte) string) string {
	if n := name(b); n != "" {
		return n
	}
	return hexByte(b)
}

// orderedJSON writes an object with its members in the order added, on one
// line, without HTML escapes.
type orderedJSON struct{ buf bytes.Buffer }

func (o *orderedJSON) add(name string, v any) {
	if o.buf.Len() == 0 {
		o.buf.WriteByte('{')
	} else {
		o.buf.WriteByte(',')
	}
	o.buf.Write(marshalPlain(name))
	o.buf.WriteByte(':')
	o.buf.Write(marshalPlain(v))
}

func (o *orderedJSON) bytes() json.RawMessage {
	if o.buf.Len() == 0 {
		return json.RawMessage("{}")
	}
	return append(bytes.Clone(o.buf.Bytes()), '}')
}

func (o *orderedJSON) MarshalJSON() ([]byte, error) { return o.bytes(), nil }

// marshalPlain is json.Marshal without escaping <, > and &.
func marshalPlain(v any) []byte {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		panic(err)
	}
	return bytes.TrimSuffix(b.Bytes(), []byte("\n"))
}
