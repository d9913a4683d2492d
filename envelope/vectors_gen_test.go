package envelope

import (
	"bytes"
	"crypto"
	"crypto/ecdh"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/hmac"
	"crypto/hpke"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/asn1"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"math/big"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"testing/cryptotest"
	"time"

	"github.com/mqttsec/mqttsec/aesgcm"
	"github.com/mqttsec/mqttsec/rsasign"
)

// The generator of testdata/vectors. Every vector is a genuine message
// (its twin), which the generator first checks the package accepts, and
// then, for a refusal, one change to the message or to the receiver that
// breaks one rule. The randomness of each vector (correlation ids, content
// keys, nonces, ES256 and PS256 signatures, HPKE and OAEP encryption)
// comes from cryptotest.SetGlobalRandom seeded with the vector's name, so
// the files are reproducible (TestVectorsReproducible).

// --- keys ---

// vectorSecret derives the test secret of label, as the test world does.
func vectorSecret(label string) []byte {
	s := sha256.Sum256([]byte("mqttsec test key: " + label))
	return s[:]
}

func vectorRSA(t testing.TB, name string) *rsa.PrivateKey {
	t.Helper()
	data, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return must[*rsa.PrivateKey](t)(rsasign.ParsePrivateKeyPEM(data))
}

func pemPKCS8(t testing.TB, k *rsa.PrivateKey) string {
	der := must[[]byte](t)(x509.MarshalPKCS8PrivateKey(k))
	return string(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}))
}

// generateKeyFile is keys.json: the secrets derived from labels, the RSA
// keys of testdata/*.pem, and what each gives.
func generateKeyFile(t testing.TB) *vectorKeyFile {
	enc := b64.EncodeToString
	kf := &vectorKeyFile{
		Comment: "TEST KEYS ONLY. Every key the vectors use (SPEC.md §11). Secrets and seeds are base64url; " +
			"RSA keys are PKCS#8 PEM. hotp8 is the hotp secret set up for 8 digits. publicKeys holds the " +
			"pub bytes of SPEC.md §6 and keyIds the key id of each key, by name.",
		HMAC:             enc(vectorSecret("hmac")),
		OtherHMAC:        enc(vectorSecret("other hmac")),
		HOTP:             enc(vectorSecret("hotp")[:20]),
		HOTPDigits:       6,
		PSK:              enc(vectorSecret("psk")),
		Ed25519Seed:      enc(vectorSecret("ed25519")),
		OtherEd25519Seed: enc(vectorSecret("other ed25519")),
		ES256Private:     enc(vectorSecret("es256")),
		RSASignPrivate:   pemPKCS8(t, vectorRSA(t, "rsa2048.pem")),
		X25519Private:    enc(vectorSecret("x25519")),
		XWingSeed:        enc(vectorSecret("xwing")),
		RSAOAEPPrivate:   pemPKCS8(t, vectorRSA(t, "rsa2048-oaep.pem")),
		PublicKeys:       map[string]string{},
		KeyIDs:           map[string]string{},
	}
	for name, seed := range map[string]string{"ed25519": kf.Ed25519Seed, "other-ed25519": kf.OtherEd25519Seed} {
		kf.PublicKeys[name] = enc(ed25519.NewKeyFromSeed(unb64(t, seed)).Public().(ed25519.PublicKey))
	}
	es := must[*ecdsa.PrivateKey](t)(ecdsa.ParseRawPrivateKey(elliptic.P256(), unb64(t, kf.ES256Private)))
	kf.PublicKeys["es256"] = enc(must[[]byte](t)(es.PublicKey.Bytes()))
	kf.PublicKeys["ps256"] = enc(rsaPublicBytes(&vectorRSA(t, "rsa2048.pem").PublicKey))
	x := must[hpke.PrivateKey](t)(hpke.DHKEM(ecdh.X25519()).NewPrivateKey(unb64(t, kf.X25519Private)))
	kf.PublicKeys["x25519"] = enc(x.PublicKey().Bytes())
	xw := must[hpke.PrivateKey](t)(hpke.MLKEM768X25519().NewPrivateKey(unb64(t, kf.XWingSeed)))
	kf.PublicKeys["xwing"] = enc(xw.PublicKey().Bytes())
	kf.PublicKeys["rsa-oaep"] = enc(rsaPublicBytes(&vectorRSA(t, "rsa2048-oaep.pem").PublicKey))
	for name, id := range kf.keySetUnchecked(t).keyIDs() {
		kf.KeyIDs[name] = id.String()
	}
	return kf
}

// keySetUnchecked is keySet without comparing the ids and public keys kf
// states (which the generator is about to write).
func (kf *vectorKeyFile) keySetUnchecked(t testing.TB) *vectorKeySet {
	return kf.keySet(&quietTB{TB: t})
}

// quietTB drops Errorf: the checks that keySet makes of what the file
// states.
type quietTB struct{ testing.TB }

func (q *quietTB) Errorf(string, ...any) {}

// --- what a vector is made of ---

// vectorSpec is one vector: a genuine message and its receiver, and for a
// refusal what breaks it.
type vectorSpec struct {
	name, desc string
	rule       string // "" for an accepted message
	result     string // the class of rule
	// msg is the genuine message. It may build a request first, for a
	// reply (g.pending).
	msg func(g *vectorGen) *forgery
	// recv adjusts the receiver of the genuine message, which starts as
	// the message's recipient with the defaults (see baseVector).
	recv func(v *vector)
	// breakMsg and breakRecv make the refusal: a change to the message
	// and to the receiver.
	breakMsg  func(g *vectorGen, f *forgery)
	breakRecv func(v *vector)
	// search, if set, picks the genuine message among those the
	// randomness can give (a tag that ends with a zero byte, say).
	search func(m *forged) bool
}

type vectorGen struct {
	t       testing.TB
	ks      *vectorKeySet
	pending *forged // the request a reply answers
}

const (
	vectorClientCtr  = 1001
	vectorGatewayCtr = 5001
)

// The spec's defaults (SPEC.md §7.4), the vectors' clocks and lifetime.
const (
	vectorSkewMs     = 30000
	vectorLifetimeMs = 300000
	vectorTTL        = 60 * time.Second
)

var (
	vectorIssued     = time.Date(2026, 11, 22, 12, 0, 0, 0, time.UTC) // when the sender seals
	vectorNow        = vectorIssued.Add(time.Second)                  // the receiver's clock
	vectorTrust      = []string{"hmac", "hotp", "psk", "ed25519", "es256", "ps256"}
	vectorIdentities = []string{"x25519", "xwing", "rsa-oaep"}
	vectorPayload    = []byte(`{"card":8165538}`)
)

func (vectorBuilder) ms(t time.Time) uint64 { return uint64(t.UnixMilli()) }

func (vectorBuilder) randomBytes(n int) []byte {
	b := make([]byte, n)
	rand.Read(b)
	return b
}

// protect applies the named keys of keys.json: an HMAC, HOTP, signing,
// pre-shared or recipient key each.
func (g *vectorGen) protect(f *forgery, keys ...string) {
	for _, name := range keys {
		switch {
		case g.ks.macs[name] != nil:
			f.mac = g.ks.macs[name]
		case g.ks.hotps[name] != nil:
			f.hotp = g.ks.hotps[name]
		case g.ks.psks[name] != nil:
			f.psk = g.ks.psks[name]
		case g.ks.signers[name] != nil:
			f.signer = g.ks.signers[name]
		case g.ks.recipients[name] != nil:
			f.recipients = append(f.recipients, g.ks.recipients[name])
		default:
			g.t.Fatalf("no key %q", name)
		}
	}
}

// request is a get-card request from client to gateway.
func (g *vectorGen) request(keys ...string) *forgery {
	f := &forgery{payload: vectorPayload, h: header{
		kind: Request, from: "client", to: []string{"gateway"}, topic: "get-card",
		replyTo: "mqttsec/client/reply", corr: vb.randomBytes(correlationSize),
		ctr: vectorClientCtr, iat: vb.ms(vectorIssued), exp: vb.ms(vectorIssued.Add(vectorTTL)),
	}}
	g.protect(f, keys...)
	return f
}

// timeRequest is the time request of SPEC.md §10.3 from a device that has
// no clock: iat 0, exp its wait (10 s).
func (g *vectorGen) timeRequest(keys ...string) *forgery {
	f := g.request(keys...)
	f.h.topic, f.h.iat, f.h.exp, f.payload = TimeMethod, 0, 10000, nil
	return f
}

// event is an event from client.
func (g *vectorGen) event(topic string, to []string, keys ...string) *forgery {
	f := &forgery{payload: []byte(`{"door":3,"open":true}`), h: header{
		kind: Event, from: "client", to: to, topic: topic,
		ctr: vectorClientCtr, iat: vb.ms(vectorIssued), exp: vb.ms(vectorIssued.Add(vectorTTL)),
	}}
	g.protect(f, keys...)
	return f
}

// reply answers req, which becomes the pending request, as its recipient.
func (g *vectorGen) reply(kind Kind, req *forged, keys ...string) *forgery {
	g.pending = req
	payload := []byte(`{"name":"Dana"}`)
	switch {
	case req.h.topic == TimeMethod:
		payload = nil // SPEC.md §10.3: the answer is the reply's iat
	case kind == ErrorReply:
		payload = []byte(`{"error":"no such card"}`)
	}
	f := &forgery{payload: payload, h: header{
		kind: kind, from: req.h.to[0], to: []string{req.h.from}, topic: req.h.topic,
		corr: req.h.corr, re: req.digest[:],
		ctr: vectorGatewayCtr, iat: vb.ms(vectorIssued.Add(200 * time.Millisecond)), exp: vb.ms(vectorIssued.Add(200*time.Millisecond + vectorTTL)),
	}}
	g.protect(f, keys...)
	return f
}

func (g *vectorGen) build(f *forgery) *forged { return f.build(g.t) }

// baseVector is the receiver of the genuine message m: its recipient (or
// "anyone" for an event to any subscriber), holding the default keys for
// its sender, expecting its kind, sender and topic, and for a reply the
// pending request.
func baseVector(spec *vectorSpec, m *forged, pending *forged) *vector {
	h := &m.h
	v := &vector{
		Name: spec.name, Description: spec.desc, Rule: spec.rule,
		Sender: h.from, Receiver: "anyone",
		Now: vectorNow.UnixMilli(), ReplayWidth: 64,
		Trust: slices.Clone(vectorTrust), Identities: slices.Clone(vectorIdentities),
		Policy: vectorPolicy{MaxClockSkewMs: vectorSkewMs, MaxLifetimeMs: vectorLifetimeMs},
		Expect: vectorExpect{Kinds: []string{h.kind.String()}, From: h.from},
	}
	if len(h.to) > 0 {
		v.Receiver = h.to[0]
	}
	switch h.kind {
	case Reply, ErrorReply:
		v.Expect.Kinds = []string{"rep", "err"}
		v.Expect.Request = hex.EncodeToString(pending.bytes)
	default:
		v.Expect.Topic = h.topic
	}
	return v
}

// open opens v as TestVectors does, with the key set of the generator.
func (g *vectorGen) open(v *vector) (*Message, error) {
	o := v.opener(g.t, g.ks)
	return o.Open(ctx, unhex(g.t, v.Envelope), v.expect(g.t))
}

// generate makes the vector of spec.
func (spec *vectorSpec) generate(t testing.TB, ks *vectorKeySet) *vector {
	seed := sha256.Sum256([]byte(spec.name))
	reseed := func() { cryptotest.SetGlobalRandom(t.(*testing.T), binary.BigEndian.Uint64(seed[:8])) }

	// The genuine message, which the receiver accepts; drawn again with
	// other randomness until it has the bytes spec.search wants.
	var g *vectorGen
	var twin *forged
	for try := 0; ; try++ {
		if try > 0 {
			seed = sha256.Sum256(fmt.Appendf(nil, "%s/%d", spec.name, try))
		}
		reseed()
		g = &vectorGen{t: t, ks: ks}
		twin = g.build(spec.msg(g))
		if spec.search == nil || spec.search(twin) {
			break
		}
		if try == 10000 {
			t.Fatalf("%s: no message found that spec.search wants", spec.name)
		}
	}
	v := baseVector(spec, twin, g.pending)
	v.Envelope = hex.EncodeToString(twin.bytes)
	if spec.recv != nil {
		spec.recv(v)
	}
	m, err := g.open(v)
	if err != nil {
		t.Fatalf("%s: the genuine message is refused: %v", spec.name, err)
	}

	// The refusal: the same message (and randomness), broken.
	if spec.breakMsg != nil || spec.breakRecv != nil {
		reseed()
		g = &vectorGen{t: t, ks: ks}
		f := spec.msg(g)
		if spec.breakMsg != nil {
			spec.breakMsg(g, f)
		}
		v.Envelope = hex.EncodeToString(g.build(f).bytes)
		if g.pending != nil {
			v.Expect.Request = hex.EncodeToString(g.pending.bytes)
		}
		if spec.breakRecv != nil {
			spec.breakRecv(v)
		}
		if m, err = g.open(v); Class(err) != resultClasses[spec.result] || m != nil || err == nil {
			t.Fatalf("%s: Open = %v, want %s (%s)", spec.name, err, spec.result, spec.rule)
		}
		v.Result = spec.result
	} else {
		if spec.rule != "" {
			t.Fatalf("%s: a rule and nothing that breaks it", spec.name)
		}
		v.Result = "ok"
		payload := hex.EncodeToString(m.Payload)
		v.Payload = &payload
		if m.Kind == Request {
			v.Digest = hex.EncodeToString(m.Digest[:])
		}
	}
	v.Header = headerJSON(unhex(t, v.Envelope))
	return v
}

// vectorJSON writes v one member a line, each value on its line.
func vectorJSON(t testing.TB, v *vector) []byte {
	compact, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	dec := json.NewDecoder(bytes.NewReader(compact))
	dec.UseNumber()
	var out bytes.Buffer
	out.WriteString("{\n")
	if _, err := dec.Token(); err != nil { // {
		t.Fatal(err)
	}
	first := true
	for dec.More() {
		key, err := dec.Token()
		if err != nil {
			t.Fatal(err)
		}
		var value json.RawMessage
		if err := dec.Decode(&value); err != nil {
			t.Fatal(err)
		}
		if !first {
			out.WriteString(",\n")
		}
		first = false
		fmt.Fprintf(&out, "  %s: %s", marshalPlain(key), spaced(value))
	}
	out.WriteString("\n}\n")
	return out.Bytes()
}

// spaced is compact JSON with a space after each ':' and ',' outside
// strings.
func spaced(j []byte) []byte {
	var out []byte
	inString, escaped := false, false
	for _, c := range j {
		out = append(out, c)
		switch {
		case inString && escaped:
			escaped = false
		case inString && c == '\\':
			escaped = true
		case c == '"':
			inString = !inString
		case !inString && (c == ':' || c == ','):
			out = append(out, ' ')
		}
	}
	return out
}

// generateVectors makes every file of testdata/vectors.
func generateVectors(t *testing.T) map[string][]byte {
	kf := generateKeyFile(t)
	keysJSON, err := json.MarshalIndent(kf, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	files := map[string][]byte{"keys.json": append(keysJSON, '\n')}
	ks := kf.keySet(t)
	names := map[string]bool{}
	for i, spec := range vectorSpecs() {
		if names[spec.name] {
			t.Fatalf("two vectors named %s", spec.name)
		}
		names[spec.name] = true
		v := spec.generate(t, ks)
		files[fmt.Sprintf("%03d-%s.json", i+1, spec.name)] = vectorJSON(t, v)
	}
	cryptotest.SetGlobalRandom(t, 0)
	return files
}

func writeVectors(t *testing.T) {
	files := generateVectors(t)
	old, _ := filepath.Glob(filepath.Join(vectorDir, "*.json"))
	for _, f := range old {
		if err := os.Remove(f); err != nil {
			t.Fatal(err)
		}
	}
	for name, data := range files {
		if err := os.WriteFile(filepath.Join(vectorDir, name), data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	t.Logf("wrote %d files to %s", len(files), vectorDir)
}

// --- the vectors ---

// vectorBuilder holds, as methods, the small functions the vector specs
// are written with (so that their short names stay out of the package's
// name space).
type vectorBuilder struct{}

var vb vectorBuilder

// Helpers that build the parts of a spec.

func (vectorBuilder) req(keys ...string) func(*vectorGen) *forgery {
	return func(g *vectorGen) *forgery { return g.request(keys...) }
}

func (vectorBuilder) evt(topic string, to []string, keys ...string) func(*vectorGen) *forgery {
	return func(g *vectorGen) *forgery { return g.event(topic, to, keys...) }
}

// rep is a reply (or error) under keys to a request under reqKeys.
func (vectorBuilder) rep(kind Kind, reqKeys []string, keys ...string) func(*vectorGen) *forgery {
	return func(g *vectorGen) *forgery {
		return g.reply(kind, g.build(g.request(reqKeys...)), keys...)
	}
}

// timeReply is the reply of gateway to the time request of client.
func (vectorBuilder) timeReply(g *vectorGen) *forgery {
	return g.reply(Reply, g.build(g.timeRequest("hmac")), "hmac")
}

func (vectorBuilder) timeReq(keys ...string) func(*vectorGen) *forgery {
	return func(g *vectorGen) *forgery { return g.timeRequest(keys...) }
}

// hdr changes header values (after the keys filled theirs in).
func (vectorBuilder) hdr(edit func(h *header)) func(*vectorGen, *forgery) {
	return func(_ *vectorGen, f *forgery) {
		prev := f.editHeader
		f.editHeader = func(h *header) {
			if prev != nil {
				prev(h)
			}
			edit(h)
		}
	}
}

// rawField writes bytes for a field in place of its value.
func (vectorBuilder) rawField(field headerField, b []byte) func(*vectorGen, *forgery) {
	return func(_ *vectorGen, f *forgery) { f.raw[field] = b }
}

// headerBytes changes the header's bytes, under the tags.
func (vectorBuilder) headerBytes(edit func(b []byte) []byte) func(*vectorGen, *forgery) {
	return func(_ *vectorGen, f *forgery) { f.editH = func(_ *header, b []byte) []byte { return edit(b) } }
}

// headerCut ends the header n bytes into field, with the length byte at
// the field's start (if any) set to length, so that the field runs past
// the end of H.
func (vectorBuilder) headerCut(field headerField, n int, length int) func(*vectorGen, *forgery) {
	return func(g *vectorGen, f *forgery) {
		f.editH = func(h *header, b []byte) []byte {
			at := fieldOffset(g.t, h, field)
			if length >= 0 {
				b[at] = byte(length)
			}
			return b[:at+n]
		}
	}
}

// payloadBytes changes P under the tags.
func (vectorBuilder) payloadBytes(edit func(p []byte) []byte) func(*vectorGen, *forgery) {
	return func(_ *vectorGen, f *forgery) { f.editPayload = edit }
}

// afterTags changes the members after the tags were computed.
func (vectorBuilder) afterTags(edit func(p *envelopeParts)) func(*vectorGen, *forgery) {
	return func(_ *vectorGen, f *forgery) { f.editParts = edit }
}

// envelopeBytes changes the finished envelope.
func (vectorBuilder) envelopeBytes(edit func(b []byte) []byte) func(*vectorGen, *forgery) {
	return func(_ *vectorGen, f *forgery) { f.editBytes = edit }
}

// keys replaces the keys the forger applies (clearing all first).
func (vectorBuilder) keys(names ...string) func(*vectorGen, *forgery) {
	return func(g *vectorGen, f *forgery) {
		f.mac, f.hotp, f.signer, f.psk, f.recipients = nil, nil, nil, nil, nil
		f.h.prot = 0
		g.protect(f, names...)
	}
}

// both applies several changes in order.
func (vectorBuilder) both(changes ...func(*vectorGen, *forgery)) func(*vectorGen, *forgery) {
	return func(g *vectorGen, f *forgery) {
		for _, c := range changes {
			c(g, f)
		}
	}
}

func (vectorBuilder) recvs(changes ...func(v *vector)) func(v *vector) {
	return func(v *vector) {
		for _, c := range changes {
			c(v)
		}
	}
}

func (vectorBuilder) require(p ...string) func(v *vector) {
	return func(v *vector) { v.Policy.Require = p }
}

func (vectorBuilder) identities(names ...string) func(v *vector) {
	return func(v *vector) { v.Identities = names }
}

func (vectorBuilder) replayed(ctrs ...uint64) func(v *vector) {
	return func(v *vector) {
		for _, c := range ctrs {
			v.Replayed = append(v.Replayed, strconv.FormatUint(c, 10))
		}
	}
}

func (vectorBuilder) noExpectedTopic(v *vector) { v.Expect.Topic = "" }

// sender makes the receiver know the sender (and expect it) by another id.
func (vectorBuilder) sender(id string) func(v *vector) {
	return func(v *vector) { v.Sender, v.Expect.From = id, id }
}

func (vectorBuilder) receiver(id string) func(v *vector) { return func(v *vector) { v.Receiver = id } }

func (vectorBuilder) without(list []string, name string) []string {
	return slices.DeleteFunc(slices.Clone(list), func(s string) bool { return s == name })
}

// setU32 writes n at offset i of b.
func (vectorBuilder) setU32(b []byte, i int, n uint32) []byte {
	binary.BigEndian.PutUint32(b[i:], n)
	return b
}

// memberOffsets are the offsets of the four length fields of an envelope.
func (vectorBuilder) memberOffsets(b []byte) (h, p, m, s int) {
	h = 1
	p = h + 4 + int(binary.BigEndian.Uint32(b[h:]))
	m = p + 4 + int(binary.BigEndian.Uint32(b[p:]))
	s = m + 4 + int(binary.BigEndian.Uint32(b[m:]))
	return
}

func (vectorBuilder) repeat(s string, n int) string { return strings.Repeat(s, n) }

func (vectorBuilder) ids(prefix string, n int) []string {
	var out []string
	for i := range n {
		out = append(out, fmt.Sprintf("%s%02d", prefix, i))
	}
	return out
}

// foreignEntry is a wrapped-key entry for a key no receiver holds: a
// random key id and n random bytes.
func (vectorBuilder) foreignEntry(alg Algorithm, n int) wrappedKey {
	return wrappedKey{alg: alg, kid: KeyID(vb.randomBytes(keyIDSize)), wk: vb.randomBytes(n)}
}

// prepend puts entries before the header's wrapped keys.
func (vectorBuilder) prepend(entries ...func() wrappedKey) func(*vectorGen, *forgery) {
	return vb.hdr(func(h *header) {
		var pre []wrappedKey
		for _, e := range entries {
			pre = append(pre, e())
		}
		h.rcpt = append(pre, h.rcpt...)
	})
}

func (vectorBuilder) entry(alg Algorithm, n int) func() wrappedKey {
	return func() wrappedKey { return vb.foreignEntry(alg, n) }
}

func (vectorBuilder) flipByte(b []byte, i int) []byte {
	b = bytes.Clone(b)
	b[i] ^= 0x01
	return b
}

// vectorP256Order is the order n of P-256.
var vectorP256Order, _ = hex.DecodeString("ffffffff00000000ffffffffffffffffbce6faada7179e84f3b9cac2fc632551")

// vectorEd25519Order is the order L of the Ed25519 group, little-endian.
var vectorEd25519Order = func() []byte {
	be, _ := hex.DecodeString("1000000000000000000000000000000014def9dea2f79cd65812631a5cf5d3ed")
	slices.Reverse(be)
	return be
}()

// addLE returns a + b for little-endian 32-byte integers.
func (vectorBuilder) addLE(a, b []byte) []byte {
	out := make([]byte, 32)
	carry := 0
	for i := range 32 {
		s := int(a[i]) + int(b[i]) + carry
		out[i], carry = byte(s), s>>8
	}
	return out
}

// with is msg with changes made to it: still a genuine message.
func (vectorBuilder) with(msg func(*vectorGen) *forgery, changes ...func(*vectorGen, *forgery)) func(*vectorGen) *forgery {
	return func(g *vectorGen) *forgery {
		f := msg(g)
		vb.both(changes...)(g, f)
		return f
	}
}

// clockless is a receiver that has not learned the time: no now.
func (vectorBuilder) clockless(v *vector) { v.Clockless, v.Now = true, 0 }

// clocklessPeer marks the sender clockless in the receiver's policy.
func (vectorBuilder) clocklessPeer(v *vector) { v.Policy.Clockless = true }

func (vectorBuilder) swapTrust(old, new string) func(v *vector) {
	return func(v *vector) {
		v.Trust = slices.Clone(v.Trust)
		v.Trust[slices.Index(v.Trust, old)] = new
	}
}

func (vectorBuilder) untrust(name string) func(v *vector) {
	return func(v *vector) { v.Trust = vb.without(v.Trust, name) }
}

// authOf is the authenticated block of the members p.
func (vectorBuilder) authOf(p *envelopeParts) []byte {
	_, a := p.digest()
	return a
}

// derSignature is an r || s signature in the ASN.1 form (a common slip).
func (vectorBuilder) derSignature(rs []byte) []byte {
	der, err := asn1.Marshal(struct{ R, S *big.Int }{new(big.Int).SetBytes(rs[:32]), new(big.Int).SetBytes(rs[32:])})
	if err != nil {
		panic(err)
	}
	return der
}

// wkOf changes the wrapped key of the header's entry i.
func (vectorBuilder) wkOf(i int, change func(wk []byte) []byte) func(*vectorGen, *forgery) {
	return vb.hdr(func(h *header) { h.rcpt[i].wk = change(bytes.Clone(h.rcpt[i].wk)) })
}

const (
	vectorMax63 = 1<<63 - 1
	vectorMax64 = 1<<64 - 1
)

func vectorSpecs() []vectorSpec {
	L, S := uint64(vectorLifetimeMs), uint64(vectorSkewMs)
	flipP := func(i int) func(*envelopeParts) {
		return func(p *envelopeParts) { p.payload = vb.flipByte(p.payload, i) }
	}
	return slices.Concat(
		acceptedVectors(L, S),
		frameVectors(),
		headerVectors(),
		memberVectors(),
		[]vectorSpec{
			// Step 4: context.
			{name: "re-addressed", desc: "a request for gateway, delivered to gateway-2", rule: "ctx-recipient", result: "context",
				msg: vb.req("hmac"), breakRecv: vb.receiver("gateway-2")},
			{name: "event-not-for-me", desc: "an event to gateway and gateway-2, delivered to gateway-3", rule: "ctx-recipient", result: "context",
				msg: vb.evt("doors/3", []string{"gateway", "gateway-2"}, "ed25519"), breakRecv: vb.receiver("gateway-3")},
			{name: "unexpected-kind", desc: "a request where the receiver expects events", rule: "ctx-kind", result: "context",
				msg: vb.req("hmac"), breakRecv: func(v *vector) { v.Expect.Kinds = []string{"evt"} }},
			{name: "request-for-reply", desc: "a request where the receiver expects a reply or an error", rule: "ctx-kind", result: "context",
				msg: vb.req("hmac"), breakRecv: func(v *vector) { v.Expect.Kinds = []string{"rep", "err"} }},
			{name: "unexpected-sender", desc: "the receiver expects client-2 here; the request is from client", rule: "ctx-from", result: "context",
				msg: vb.req("hmac"), breakRecv: func(v *vector) { v.Expect.From = "client-2" }},
			{name: "method-substitution", desc: "a get-card request, re-published on the delete-card topic", rule: "ctx-topic", result: "context",
				msg: vb.req("hmac"), breakRecv: func(v *vector) { v.Expect.Topic = "delete-card" }},
			{name: "reply-to-other-request", desc: "a reply to another request that has the same corr, method and recipient as the pending one: only re differs", rule: "ctx-re", result: "context",
				msg: vb.rep(Reply, []string{"hmac"}, "hmac"), breakMsg: func(g *vectorGen, f *forgery) {
					other := g.request("hmac")
					other.h.corr, other.payload = g.pending.h.corr, []byte(`{"card":1}`)
					d := g.build(other).digest
					vb.hdr(func(h *header) { h.re = d[:] })(g, f)
				}},
			{name: "reply-none-pending", desc: "a genuine reply, to a receiver that waits for no request (or no longer)", rule: "ctx-re", result: "context",
				msg: vb.rep(Reply, []string{"hmac"}, "hmac"), breakRecv: func(v *vector) { v.Expect.Request = "" }},
			{name: "reply-other-corr", desc: "a reply with re the pending request's digest but another corr", rule: "ctx-corr", result: "context",
				msg: vb.rep(Reply, []string{"hmac"}, "hmac"), breakMsg: vb.hdr(func(h *header) { h.corr = bytes.Repeat([]byte{0x5a}, 16) })},
			{name: "reply-other-method", desc: "a reply to the pending get-card request that says delete-card", rule: "ctx-reply-topic", result: "context",
				msg: vb.rep(Reply, []string{"hmac"}, "hmac"), breakMsg: vb.hdr(func(h *header) { h.topic = "delete-card" })},
			{name: "reply-other-responder", desc: "a reply to the pending request (sent to gateway) from gateway-2, which the receiver knows and expects", rule: "ctx-reply-from", result: "context",
				msg: vb.rep(Reply, []string{"hmac"}, "hmac"), breakMsg: vb.hdr(func(h *header) { h.from = "gateway-2" }), breakRecv: vb.sender("gateway-2")},
			{name: "error-other-corr", desc: "an error reply with another corr", rule: "ctx-corr", result: "context",
				msg: vb.rep(ErrorReply, []string{"hmac"}, "hmac"), breakMsg: vb.hdr(func(h *header) { h.corr = h.corr[:15] })},

			// Step 5: sender and policy.
			{name: "unknown-sender", desc: "from mallory, whom the receiver does not know", rule: "key-sender", result: "unknown-key",
				msg: vb.req("hmac"), breakMsg: vb.hdr(func(h *header) { h.from = "mallory" }), breakRecv: func(v *vector) { v.Expect.From = "" }},
			{name: "unknown-sender-no-auth", desc: "from mallory, whom the receiver does not know, with a HOTP code only: the sender is checked before the policy", rule: "key-sender", result: "unknown-key",
				msg: vb.req("hmac", "hotp"), breakMsg: vb.both(vb.keys("hotp"), vb.hdr(func(h *header) { h.from = "mallory" })), breakRecv: func(v *vector) { v.Expect.From = "" }},
			{name: "unknown-sender-expired", desc: "from mallory, whom the receiver does not know, long expired: the sender is checked before freshness", rule: "key-sender", result: "unknown-key",
				msg: vb.req("hmac"), breakMsg: vb.hdr(func(h *header) { h.from, h.iat, h.exp = "mallory", 1, 2 }), breakRecv: func(v *vector) { v.Expect.From = "" }},
			{name: "hotp-alone", desc: "a HOTP code and nothing else: not sender authentication", rule: "pol-no-auth", result: "policy",
				msg: vb.req("hmac", "hotp"), breakMsg: vb.keys("hotp")},
			{name: "wrapped-key-alone", desc: "encrypted to the receiver's X25519 key, not authenticated: anyone can do that", rule: "pol-no-auth", result: "policy",
				msg: vb.req("hmac", "x25519"), breakMsg: vb.keys("x25519")},
			{name: "hotp-and-wrapped-key", desc: "a HOTP code and a wrapped content key: still no sender authentication", rule: "pol-no-auth", result: "policy",
				msg: vb.req("hmac", "hotp", "x25519"), breakMsg: vb.keys("hotp", "x25519")},
			{name: "stripped-signature", desc: "the policy requires a signature; the request carries an HMAC only", rule: "pol-require", result: "policy",
				msg: vb.req("hmac"), breakRecv: vb.require("sig")},
			{name: "stripped-hmac", desc: "the policy requires an HMAC and a signature; the request is signed only", rule: "pol-require", result: "policy",
				msg: vb.req("ed25519"), breakRecv: vb.require("hmac", "sig")},
			{name: "stripped-encryption", desc: "the policy requires encryption; the request is in clear", rule: "pol-require", result: "policy",
				msg: vb.req("hmac"), breakRecv: vb.require("enc")},
			{name: "stripped-hotp", desc: "the policy requires a HOTP code; the request has an HMAC only", rule: "pol-require", result: "policy",
				msg: vb.req("hmac"), breakRecv: vb.require("hmac", "hotp")},
			{name: "wrapped-not-pre-shared", desc: "the policy requires pre-shared encryption; the content key is wrapped", rule: "pol-pairwise-enc", result: "policy",
				msg: vb.req("hmac", "x25519"), recv: vb.require("enc"), breakRecv: func(v *vector) { v.Policy.RequirePairwiseEncryption = true }},
			{name: "clear-not-pre-shared", desc: "the policy requires pre-shared encryption (and nothing else); the request is in clear", rule: "pol-pairwise-enc", result: "policy",
				msg: vb.req("hmac"), breakRecv: func(v *vector) { v.Policy.RequirePairwiseEncryption = true }},

			// Step 6: freshness.
			{name: "lifetime-too-long", desc: "exp - iat is the max lifetime plus 1 ms", rule: "fresh-lifetime", result: "expired",
				msg: vb.req("hmac"), breakMsg: vb.hdr(func(h *header) { h.exp = h.iat + L + 1 })},
			{name: "not-yet-valid", desc: "iat is now + skew + 1 ms", rule: "fresh-early", result: "expired",
				msg: vb.req("hmac"), breakMsg: vb.hdr(func(h *header) { h.iat = vb.ms(vectorNow) + S + 1; h.exp = h.iat + 60000 })},
			{name: "expired", desc: "now is exp + skew exactly", rule: "fresh-late", result: "expired",
				msg: vb.req("hmac"), breakRecv: func(v *vector) { v.Now = int64(vb.ms(vectorIssued.Add(vectorTTL)) + S) }},
			{name: "expired-long-ago", desc: "iat 1 and exp 2 (ms): long past", rule: "fresh-late", result: "expired",
				msg: vb.req("hmac"), breakMsg: vb.hdr(func(h *header) { h.iat, h.exp = 1, 2 })},
			{name: "clockless-reply-lifetime", desc: "a receiver without a clock gets the reply to its pending time request, with exp - iat the max lifetime plus 1 ms", rule: "fresh-lifetime", result: "expired",
				msg: vb.timeReply, recv: vb.clockless, breakMsg: vb.hdr(func(h *header) { h.exp = h.iat + L + 1 })},
			{name: "clockless-request", desc: "a receiver without a clock gets a request: its freshness cannot be judged", rule: "fresh-clockless", result: "expired",
				msg: vb.req("hmac"), breakRecv: vb.clockless},
			{name: "clockless-event", desc: "a receiver without a clock gets an event", rule: "fresh-clockless", result: "expired",
				msg: vb.evt("status/client", nil, "ed25519"), breakRecv: vb.clockless},
			{name: "time-request-not-clockless", desc: "a time request (iat 0) from a peer whose policy is not clockless", rule: "fresh-late", result: "expired",
				msg: vb.timeReq("hmac"), recv: vb.clocklessPeer, breakRecv: func(v *vector) { v.Policy.Clockless = false }},
			{name: "clockless-peer-other-method", desc: "a get-card request with iat 0 from a clockless peer: only the time request is relaxed", rule: "fresh-late", result: "expired",
				msg: vb.timeReq("hmac"), recv: vb.clocklessPeer,
				breakMsg: vb.hdr(func(h *header) { h.topic = "get-card" }), breakRecv: func(v *vector) { v.Expect.Topic = "get-card" }},
			{name: "time-event-not-relaxed", desc: "an event on mqttsec.time with iat 0 from a clockless peer: only a request is the time request", rule: "fresh-late", result: "expired",
				msg: vb.evt(TimeMethod, []string{"gateway"}, "hmac"), recv: vb.clocklessPeer, breakMsg: vb.hdr(func(h *header) { h.iat, h.exp = 0, 10000 })},
			{name: "time-request-lifetime", desc: "a time request from a clockless peer waiting longer than the max lifetime", rule: "fresh-lifetime", result: "expired",
				msg: vb.timeReq("hmac"), recv: vb.clocklessPeer, breakMsg: vb.hdr(func(h *header) { h.exp = L + 1 })},

			// Step 7: keys.
			{name: "unknown-mac-key", desc: "an HMAC under a key (other-hmac) the receiver does not hold for client", rule: "key-mac", result: "unknown-key",
				msg: vb.req("hmac"), breakMsg: vb.keys("other-hmac")},
			{name: "mac-names-hotp-key", desc: "mac names client's HOTP key, and the tag is made with the HOTP secret: a key counts only for its own use", rule: "key-mac", result: "unknown-key",
				msg: vb.req("hmac"), breakMsg: func(g *vectorGen, f *forgery) {
					hk := g.ks.hotps["hotp"]
					f.mac = &HMACKey{id: hk.KeyID(), secret: hk.key.Secret()}
				}},
			{name: "psk-names-hmac-key", desc: "enc names client's HMAC key as the pre-shared key, and P is encrypted with the HMAC secret: a key counts only for its own use", rule: "key-psk", result: "unknown-key",
				msg: vb.req("psk"), breakMsg: func(g *vectorGen, f *forgery) {
					mk := g.ks.macs["hmac"]
					f.psk = &AEADKey{id: mk.KeyID(), key: must[*aesgcm.Key](g.t)(aesgcm.NewKey(mk.secret))}
				}},
			{name: "unknown-hotp-key", desc: "a HOTP code under a key the receiver does not hold for client", rule: "key-hotp", result: "unknown-key",
				msg: vb.req("hmac", "hotp"), breakRecv: vb.untrust("hotp")},
			{name: "unknown-signing-key", desc: "signed by a key (other-ed25519) the receiver does not hold for client", rule: "key-sig", result: "unknown-key",
				msg: vb.req("ed25519"), breakMsg: vb.keys("other-ed25519")},
			{name: "signing-key-other-algorithm", desc: "sig names ES256 with the id of client's Ed25519 key: (algorithm, key id) names no key", rule: "key-sig", result: "unknown-key",
				msg: vb.req("ed25519"), breakMsg: vb.hdr(func(h *header) { h.sigAlg = ES256 })},
			{name: "unknown-pre-shared-key", desc: "encrypted under a pre-shared key the receiver does not hold for client", rule: "key-psk", result: "unknown-key",
				msg: vb.req("psk"), breakRecv: vb.untrust("psk")},
			{name: "unknown-recipient-key", desc: "the content key is wrapped to an X-Wing key the receiver does not hold", rule: "key-rcpt", result: "unknown-key",
				msg: vb.req("ed25519", "xwing"), breakRecv: vb.identities("x25519", "rsa-oaep")},
			{name: "recipient-key-other-algorithm", desc: "a wrapped key that names HPKE-MLKEM768X25519 with the id of the receiver's X25519 key", rule: "key-rcpt", result: "unknown-key",
				msg: vb.req("ed25519", "x25519"), breakMsg: vb.hdr(func(h *header) {
					h.rcpt[0].alg = HPKEXWing
					h.rcpt[0].wk = vb.randomBytes(xwingWrappedSize)
				})},

			// Step 8: HMAC and HOTP.
			{name: "wrong-hmac-key", desc: "an HMAC computed with other-hmac under the id of hmac", rule: "auth-hmac", result: "authentication",
				msg: vb.req("hmac"), breakMsg: vb.both(vb.keys("other-hmac"), func(g *vectorGen, f *forgery) {
					id := g.ks.macs["hmac"].KeyID()
					vb.hdr(func(h *header) { h.macKid = id })(g, f)
				})},
			{name: "hmac-tampered-payload", desc: "one payload byte changed after the HMAC", rule: "auth-hmac", result: "authentication",
				msg: vb.req("hmac"), breakMsg: vb.afterTags(flipP(2))},
			{name: "hmac-tampered-header", desc: "one byte of corr changed after the HMAC", rule: "auth-hmac", result: "authentication",
				msg: vb.req("hmac"), breakMsg: vb.afterTags(func(p *envelopeParts) { p.header = vb.flipByte(p.header, bytes.Index(p.header, []byte("reply"))+5+1) })},
			{name: "forged-replayed-hmac", desc: "a forged HMAC on a counter already accepted: the HMAC is checked before the window", rule: "auth-hmac", result: "authentication",
				msg: vb.req("hmac"), breakMsg: vb.afterTags(func(p *envelopeParts) { p.mac = vb.flipByte(p.mac, 0) }), breakRecv: vb.replayed(vectorClientCtr)},
			{name: "hotp-6-digits-to-8-digit-key", desc: "the receiver's HOTP key is set up for 8 digits; the code has 6, right for 6 digits", rule: "auth-hotp-digits", result: "authentication",
				msg: vb.req("hmac", "hotp"), breakRecv: vb.swapTrust("hotp", "hotp8")},
			{name: "hotp-8-digits-to-6-digit-key", desc: "the receiver's HOTP key is set up for 6 digits; the code has 8, right for 8 digits", rule: "auth-hotp-digits", result: "authentication",
				msg: vb.req("hmac", "hotp8"), recv: vb.swapTrust("hotp", "hotp8"), breakRecv: vb.swapTrust("hotp8", "hotp")},
			{name: "wrong-hotp-code", desc: "the HOTP code of the next counter", rule: "auth-hotp", result: "authentication",
				msg: vb.req("hmac", "hotp"), breakMsg: func(g *vectorGen, f *forgery) {
					code := g.ks.hotps["hotp"].key.Code(vectorClientCtr + 1)
					vb.hdr(func(h *header) { h.hotpCode = code })(g, f)
				}},
			{name: "wrong-hotp8-code", desc: "an 8-digit HOTP code of the previous counter", rule: "auth-hotp", result: "authentication",
				msg: vb.req("hmac", "hotp8"), recv: vb.swapTrust("hotp", "hotp8"), breakMsg: func(g *vectorGen, f *forgery) {
					code := g.ks.hotps["hotp8"].key.Code(vectorClientCtr - 1)
					vb.hdr(func(h *header) { h.hotpCode = code })(g, f)
				}},

			// Step 9: the replay window.
			{name: "replayed", desc: "an HMAC request whose counter the receiver accepted before", rule: "replay-seen", result: "replayed",
				msg: vb.req("hmac"), breakRecv: vb.replayed(vectorClientCtr)},
			{name: "replayed-signed", desc: "a signed request whose counter the receiver accepted before", rule: "replay-seen", result: "replayed",
				msg: vb.req("ed25519"), breakRecv: vb.replayed(vectorClientCtr-1, vectorClientCtr, vectorClientCtr+1)},
			{name: "below-window", desc: "the counter is 64 (the width) below the highest accepted", rule: "replay-old", result: "replayed",
				msg: vb.req("hmac"), breakRecv: vb.replayed(vectorClientCtr + 64)},
			{name: "below-window-128", desc: "width 128: the counter is 128 below the highest accepted", rule: "replay-old", result: "replayed",
				msg: vb.req("hmac"), recv: func(v *vector) { v.ReplayWidth = 128 }, breakRecv: vb.replayed(vectorClientCtr + 128)},
			{name: "forged-replayed-signature", desc: "a signature-only request with its payload changed, on a counter already accepted: the window is looked at before the signature", rule: "replay-look", result: "replayed",
				msg: vb.req("ed25519"), breakMsg: vb.afterTags(flipP(2)), breakRecv: vb.replayed(vectorClientCtr)},
			{name: "forged-replayed-ciphertext", desc: "a pre-shared-key request with its ciphertext changed, on a counter already accepted: the window is looked at before decryption", rule: "replay-look", result: "replayed",
				msg: vb.req("psk"), breakMsg: vb.afterTags(flipP(20)), breakRecv: vb.replayed(vectorClientCtr)},

			// Step 10: the signature.
			{name: "ed25519-tampered-payload", desc: "signature-only (Ed25519) request, one payload byte changed", rule: "auth-sig", result: "authentication",
				msg: vb.req("ed25519"), breakMsg: vb.afterTags(flipP(2))},
			{name: "es256-tampered-payload", desc: "signature-only (ES256) request, one payload byte changed", rule: "auth-sig", result: "authentication",
				msg: vb.req("es256"), breakMsg: vb.afterTags(flipP(2))},
			{name: "ps256-tampered-payload", desc: "signature-only (PS256) request, one payload byte changed", rule: "auth-sig", result: "authentication",
				msg: vb.req("ps256"), breakMsg: vb.afterTags(flipP(2))},
			{name: "ed25519-other-key", desc: "signed by other-ed25519 under the id of ed25519", rule: "auth-sig", result: "authentication",
				msg: vb.req("ed25519"), breakMsg: vb.both(vb.keys("other-ed25519"), func(g *vectorGen, f *forgery) {
					id := g.ks.signers["ed25519"].KeyID()
					vb.hdr(func(h *header) { h.sigKid = id })(g, f)
				})},
			{name: "ed25519-s-not-reduced", desc: "a valid Ed25519 signature with L added to its S: S is not below the group order", rule: "auth-sig", result: "authentication",
				msg: vb.req("ed25519"), breakMsg: vb.afterTags(func(p *envelopeParts) {
					p.sig = append(bytes.Clone(p.sig[:32]), vb.addLE(p.sig[32:], vectorEd25519Order)...)
				})},
			{name: "es256-r-zero", desc: "an ES256 signature with r = 0", rule: "auth-sig", result: "authentication",
				msg: vb.req("es256"), breakMsg: vb.afterTags(func(p *envelopeParts) { p.sig = append(make([]byte, 32), p.sig[32:]...) })},
			{name: "es256-s-order", desc: "an ES256 signature with s = n, the group order", rule: "auth-sig", result: "authentication",
				msg: vb.req("es256"), breakMsg: vb.afterTags(func(p *envelopeParts) { p.sig = append(bytes.Clone(p.sig[:32]), vectorP256Order...) })},
			{name: "ps256-salt-0", desc: "a PS256 signature with salt length 0 instead of 32", rule: "auth-sig", result: "authentication",
				msg: vb.req("ps256"), breakMsg: func(g *vectorGen, f *forgery) {
					vb.afterTags(func(p *envelopeParts) {
						a := vb.authOf(p)
						d := sha256.Sum256(a[:])
						p.sig = must[[]byte](g.t)(rsa.SignPSS(rand.Reader, g.ks.rsaSign, crypto.SHA256, d[:], &rsa.PSSOptions{SaltLength: 0}))
					})(g, f)
				}},
			{name: "rs256-signature", desc: "an RSASSA-PKCS1-v1_5 SHA-256 signature (RS256, not in 1.0) by the PS256 key", rule: "auth-sig", result: "authentication",
				msg: vb.req("ps256"), breakMsg: func(g *vectorGen, f *forgery) {
					vb.afterTags(func(p *envelopeParts) {
						a := vb.authOf(p)
						d := sha256.Sum256(a[:])
						p.sig = must[[]byte](g.t)(rsa.SignPKCS1v15(nil, g.ks.rsaSign, crypto.SHA256, d[:]))
					})(g, f)
				}},
			{name: "ps256-not-modulus-size", desc: "a PS256 signature of 512 bytes for a 2048-bit key: 256 zero bytes, then the genuine signature (the same integer)", rule: "auth-sig", result: "authentication",
				msg: vb.req("ps256"), breakMsg: vb.afterTags(func(p *envelopeParts) { p.sig = append(make([]byte, 256), p.sig...) })},

			// Step 11: decryption.
			{name: "x25519-tampered-wrapped-key", desc: "the HPKE enc of an X25519 wrapped key changed (and signed so)", rule: "dec-unwrap", result: "decryption",
				msg: vb.req("ed25519", "x25519"), breakMsg: vb.wkOf(0, func(wk []byte) []byte { return vb.flipByte(wk, 0) })},
			{name: "xwing-tampered-wrapped-key", desc: "the HPKE ciphertext of an X-Wing wrapped key changed (and signed so)", rule: "dec-unwrap", result: "decryption",
				msg: vb.req("ed25519", "xwing"), breakMsg: vb.wkOf(0, func(wk []byte) []byte { return vb.flipByte(wk, 1130) })},
			{name: "rsa-tampered-wrapped-key", desc: "an RSA-OAEP wrapped key changed (and signed so)", rule: "dec-unwrap", result: "decryption",
				msg: vb.req("ps256", "rsa-oaep"), breakMsg: vb.wkOf(0, func(wk []byte) []byte { return vb.flipByte(wk, 100) })},
			{name: "rsa-wrapped-key-not-modulus-size", desc: "an RSA-OAEP wrapped key of 512 bytes for a 2048-bit key: 256 zero bytes, then the genuine wrapped key (the same integer)", rule: "dec-unwrap", result: "decryption",
				msg: vb.req("ps256", "rsa-oaep"), breakMsg: vb.wkOf(0, func(wk []byte) []byte { return append(make([]byte, len(wk)), wk...) })},
			{name: "psk-tampered-ciphertext", desc: "pre-shared-key request, one ciphertext byte changed: only the AEAD protects it", rule: "dec-tag", result: "decryption",
				msg: vb.req("psk"), breakMsg: vb.afterTags(flipP(20))},
			{name: "psk-tampered-nonce", desc: "pre-shared-key request, one nonce byte changed", rule: "dec-tag", result: "decryption",
				msg: vb.req("psk"), breakMsg: vb.afterTags(flipP(0))},
			{name: "hmac-psk-tampered-ciphertext", desc: "one ciphertext byte changed before the HMAC: the HMAC verifies, the AEAD does not", rule: "dec-tag", result: "decryption",
				msg: vb.req("hmac", "psk"), breakMsg: vb.payloadBytes(func(p []byte) []byte { return vb.flipByte(p, 20) })},
			{name: "x25519-tampered-ciphertext", desc: "HPKE-X25519 request, one ciphertext byte changed before signing", rule: "dec-tag", result: "decryption",
				msg: vb.req("ed25519", "x25519"), breakMsg: vb.payloadBytes(func(p []byte) []byte { return vb.flipByte(p, 20) })},
			{name: "xwing-tampered-ciphertext", desc: "X-Wing request, one ciphertext byte changed before signing", rule: "dec-tag", result: "decryption",
				msg: vb.req("ed25519", "xwing"), breakMsg: vb.payloadBytes(func(p []byte) []byte { return vb.flipByte(p, 20) })},
			{name: "rsa-oaep-tampered-ciphertext", desc: "RSA-OAEP request, one ciphertext byte changed before signing", rule: "dec-tag", result: "decryption",
				msg: vb.req("ps256", "rsa-oaep"), breakMsg: vb.payloadBytes(func(p []byte) []byte { return vb.flipByte(p, 20) })},
			{name: "psk-header-not-bound", desc: "pre-shared-key request whose header (corr) was changed after encryption: the AEAD's associated data", rule: "dec-tag", result: "decryption",
				msg: vb.req("psk"), breakMsg: vb.afterTags(func(p *envelopeParts) { p.header = vb.flipByte(p.header, bytes.Index(p.header, []byte("reply"))+5+1) })},
			{name: "wrapped-first-fails", desc: "the content key wrapped first to the receiver's X25519 key, one byte of that wk's HPKE ciphertext changed (and signed so), then correctly to its RSA-OAEP key, which it also holds: it uses the first entry it holds and does not try the next",
				rule: "dec-unwrap", result: "decryption",
				msg: vb.req("ed25519", "x25519", "rsa-oaep"), recv: vb.identities("x25519", "rsa-oaep"),
				breakMsg: vb.wkOf(0, func(wk []byte) []byte { return vb.flipByte(wk, 40) })},
			{name: "wrapped-16-byte-key", desc: "a signed request whose only wrapped key (RSA-OAEP-256, to the receiver's key, as long as the modulus) wraps a 16-byte content key, and whose P is AES-128-GCM under it (nonce || ct || tag, the spec's associated data): CK must be 32 bytes",
				rule: "dec-unwrap", result: "decryption",
				msg: vb.req("ed25519", "rsa-oaep"), breakMsg: func(_ *vectorGen, f *forgery) { f.cekSize = 16 }},
		},
	)
}

// acceptedVectors are the genuine messages: every protection suite, the
// kinds, the clockless cases, and the edges of the rules.
func acceptedVectors(L, S uint64) []vectorSpec {
	suite := func(name, desc string, keys []string, require ...string) vectorSpec {
		return vectorSpec{name: name, desc: desc, msg: vb.req(keys...), recv: vb.recvs(func(v *vector) { v.Policy.Require = require })}
	}
	foreign63 := func(g *vectorGen, f *forgery) {
		var es []func() wrappedKey
		for range 63 {
			es = append(es, vb.entry(HPKEX25519, x25519WrappedSize))
		}
		vb.prepend(es...)(g, f)
	}
	unicodeTopic := "température/salle-1/°C/\u0085\u00a0\ufeff\uffff\U0010ffff/😀/$SYS/a b"
	return []vectorSpec{
		{name: "hmac", desc: "request with an HMAC: the example of SPEC.md §5.1, byte for byte",
			msg: vb.with(vb.req("hmac"), func(_ *vectorGen, f *forgery) { f.h.corr = specExampleCorr }), recv: vb.require("hmac")},
		suite("hmac-hotp", "request with an HMAC and a 6-digit HOTP code for its counter", []string{"hmac", "hotp"}, "hmac", "hotp"),
		{name: "hmac-hotp8", desc: "request with an HMAC and an 8-digit HOTP code; the receiver's key is set up for 8 digits",
			msg: vb.req("hmac", "hotp8"), recv: vb.recvs(vb.require("hmac", "hotp"), vb.swapTrust("hotp", "hotp8"))},
		suite("ed25519", "request signed with Ed25519", []string{"ed25519"}, "sig"),
		suite("es256", "request signed with ES256 (r || s)", []string{"es256"}, "sig"),
		suite("ps256", "request signed with PS256 (RSA-PSS, SHA-256, salt 32)", []string{"ps256"}, "sig"),
		{name: "es256-high-s", desc: "an ES256 signature whose s is above n/2: FIPS 186-5 accepts every s from 1 to n-1 (no low-s rule)",
			msg: vb.with(vb.req("es256"), vb.afterTags(func(p *envelopeParts) {
				n := new(big.Int).SetBytes(vectorP256Order)
				sv := new(big.Int).SetBytes(p.sig[32:])
				if sv.Cmp(new(big.Int).Rsh(n, 1)) <= 0 {
					sv.Sub(n, sv)
				}
				p.sig = append(bytes.Clone(p.sig[:32]), sv.FillBytes(make([]byte, 32))...)
			}))},
		{name: "psk", desc: "request encrypted under a pre-shared AES-256-GCM key, which also authenticates the sender",
			msg: vb.req("psk"), recv: vb.recvs(vb.require("enc"), func(v *vector) { v.Policy.RequirePairwiseEncryption = true })},
		suite("hmac-psk", "request with an HMAC, encrypted under a pre-shared key", []string{"hmac", "psk"}, "enc", "hmac"),
		suite("ed25519-hpke-x25519", "request signed with Ed25519, its content key wrapped with HPKE-X25519", []string{"ed25519", "x25519"}, "enc", "sig"),
		suite("ed25519-hpke-xwing", "request signed with Ed25519, its content key wrapped with HPKE-MLKEM768X25519 (X-Wing)", []string{"ed25519", "xwing"}, "enc", "sig"),
		suite("ps256-rsa-oaep", "request signed with PS256, its content key wrapped with RSA-OAEP-256", []string{"ps256", "rsa-oaep"}, "enc", "sig"),
		suite("es256-rsa-oaep", "request signed with ES256, its content key wrapped with RSA-OAEP-256", []string{"es256", "rsa-oaep"}, "enc", "sig"),
		suite("hmac-hpke-x25519", "request with an HMAC, its content key wrapped with HPKE-X25519", []string{"hmac", "x25519"}, "enc", "hmac"),
		suite("everything", "HMAC, HOTP, ES256, and the content key wrapped to three keys of the receiver, which uses the first (X-Wing)",
			[]string{"hmac", "hotp", "es256", "xwing", "x25519", "rsa-oaep"}, "enc", "hmac", "hotp", "sig"),
		{name: "wrapped-first-held", desc: "content key wrapped to a key the receiver does not hold, then to its RSA-OAEP key, then to its X25519 key: it uses the first it holds",
			msg: vb.with(vb.req("ed25519", "rsa-oaep", "x25519"), vb.prepend(vb.entry(HPKEXWing, xwingWrappedSize))), recv: vb.identities("x25519", "rsa-oaep")},
		{name: "wrapped-64", desc: "64 wrapped keys (the most): 63 for keys the receiver does not hold, the last for its X25519 key",
			msg: vb.with(vb.req("ed25519", "x25519"), foreign63)},
		{name: "foreign-rsa-1024", desc: "a wrapped RSA-OAEP key of 1024 bytes (the most) for a key the receiver does not hold, then its X25519 key",
			msg: vb.with(vb.req("ed25519", "x25519"), vb.prepend(vb.entry(RSAOAEP256, 1024)))},
		{name: "event-broadcast", desc: "a signed event with no recipients: for any subscriber",
			msg: vb.evt("status/client", nil, "ed25519")},
		{name: "event-three-recipients", desc: "an event to three recipients, signed with ES256, its content key wrapped to one key of each; this receiver (gateway-3) holds only the RSA-OAEP key, the third",
			msg:  vb.evt("doors/3", []string{"gateway", "gateway-2", "gateway-3"}, "es256", "x25519", "xwing", "rsa-oaep"),
			recv: vb.recvs(vb.receiver("gateway-3"), vb.identities("rsa-oaep"))},
		{name: "event-64-recipients", desc: "an event to 64 recipients (the most)",
			msg: vb.with(vb.evt("doors/3", nil, "ed25519"), vb.hdr(func(h *header) { h.to = append([]string{"gateway"}, vb.ids("gw-", 63)...) })), recv: vb.receiver("gateway")},
		{name: "event-hmac", desc: "an event to one recipient with an HMAC (a pairwise key: one recipient)",
			msg: vb.evt("doors/3", []string{"gateway"}, "hmac")},
		{name: "topic-unicode", desc: "an event whose topic has non-ASCII UTF-8: é, °, a C1 control (U+0085, not excluded), U+00A0, U+FEFF, U+FFFF, U+10FFFF, an emoji, $ and a space",
			msg: vb.evt(unicodeTopic, nil, "ed25519")},
		{name: "reply", desc: "a reply with an HMAC, bound to the pending request in expect.request",
			msg: vb.rep(Reply, []string{"hmac"}, "hmac")},
		{name: "error-reply", desc: "an error reply with an HMAC, bound to the pending request",
			msg: vb.rep(ErrorReply, []string{"hmac"}, "hmac")},
		{name: "reply-signed-encrypted", desc: "a reply signed with Ed25519, its content key wrapped to the requester's X25519 key",
			msg: vb.rep(Reply, []string{"ed25519"}, "ed25519", "x25519")},
		{name: "clockless-reply", desc: "a receiver without a clock accepts the reply to its pending time request, far from any clock: only the reply's lifetime is checked. Its iat is the time it learns",
			msg: vb.timeReply, recv: vb.clockless},
		{name: "time-request", desc: "the time request of a clockless peer (iat 0, exp 10000, empty payload), accepted by a receiver whose policy marks the peer clockless",
			msg: vb.timeReq("hmac"), recv: vb.clocklessPeer},
		{name: "time-request-exp-max", desc: "a time request of a clockless peer with exp = 2^63-1, the largest exp (only its lifetime is judged)",
			msg: vb.with(vb.timeReq("hmac"), vb.hdr(func(h *header) { h.iat, h.exp = vectorMax63-10000, vectorMax63 })), recv: vb.clocklessPeer},
		{name: "ctr-max", desc: "counter 2^64-1, the largest, with its HOTP code", msg: vb.with(vb.req("hmac", "hotp"), func(_ *vectorGen, f *forgery) { f.h.ctr = vectorMax64 })},
		{name: "id-128", desc: "a sender id of 128 bytes (the longest) with every character ids allow",
			msg: vb.with(vb.req("hmac"), vb.hdr(func(h *header) { h.from = vectorID128 })), recv: vb.sender(vectorID128)},
		{name: "topic-1024", desc: "a method of 1024 bytes (the longest)",
			msg: vb.with(vb.req("hmac"), vb.hdr(func(h *header) { h.topic = vb.repeat("m", 1024) }))},
		{name: "corr-64", desc: "a correlation id of 64 bytes (the longest)", msg: vb.with(vb.req("hmac"), vb.hdr(func(h *header) { h.corr = bytes.Repeat([]byte{0xc0}, 64) }))},
		{name: "corr-1", desc: "a correlation id of 1 byte (the shortest)", msg: vb.with(vb.req("hmac"), vb.hdr(func(h *header) { h.corr = []byte{0} }))},
		{name: "lifetime-max", desc: "exp - iat is the max lifetime exactly", msg: vb.with(vb.req("hmac"), vb.hdr(func(h *header) { h.exp = h.iat + L }))},
		{name: "early-at-skew", desc: "iat is now + skew exactly",
			msg: vb.with(vb.req("hmac"), vb.hdr(func(h *header) { h.iat = vb.ms(vectorNow) + S; h.exp = h.iat + 60000 }))},
		{name: "late-at-skew", desc: "now is exp + skew - 1 ms", msg: vb.req("hmac"),
			recv: func(v *vector) { v.Now = int64(vb.ms(vectorIssued.Add(vectorTTL))+S) - 1 }},
		{name: "exp-just-after-iat", desc: "exp = iat + 1 ms", msg: vb.with(vb.req("hmac"), vb.hdr(func(h *header) { h.exp = h.iat + 1 }))},
		{name: "window-edge", desc: "the counter is 63 below the highest accepted (width 64)", msg: vb.req("hmac"), recv: vb.replayed(vectorClientCtr + 63)},
		{name: "window-out-of-order", desc: "counters just below and above were accepted, this one was not", msg: vb.req("ed25519"),
			recv: vb.replayed(vectorClientCtr-1, vectorClientCtr+1)},
		{name: "window-128", desc: "width 128: the counter is 100 below the highest accepted", msg: vb.req("hmac"),
			recv: vb.recvs(func(v *vector) { v.ReplayWidth = 128 }, vb.replayed(vectorClientCtr+100))},
		{name: "size-limit-exact", desc: "the receiver's size limit is the envelope's length", msg: vb.req("hmac"),
			recv: func(v *vector) { v.MaxSize = len(v.Envelope) / 2 }},
		{name: "empty-payload", desc: "a request with an empty payload", msg: vb.with(vb.req("hmac"), func(_ *vectorGen, f *forgery) { f.payload = nil })},
		{name: "empty-payload-psk", desc: "an empty payload encrypted under a pre-shared key: P is 28 bytes, nonce and tag", msg: vb.with(vb.req("psk"), func(_ *vectorGen, f *forgery) { f.payload = nil })},
	}
}

// specExampleCorr is the correlation id of the example of SPEC.md §5.1.
var specExampleCorr, _ = hex.DecodeString("d673955cd52ccfdebb687b3e3c85f726")

// vectorID128 is an id of 128 bytes with every character ids allow.
var vectorID128 = ("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._:@" + vb.repeat("client-", 10))[:128]

// frameVectors break the frame (SPEC.md §2) and the size limit.
func frameVectors() []vectorSpec {
	version := func(b byte) func(*vectorGen, *forgery) {
		return func(_ *vectorGen, f *forgery) { f.version, f.versionSet = b, true }
	}
	firstByte := func(b byte, rule, result, desc string) vectorSpec {
		return vectorSpec{name: fmt.Sprintf("first-byte-%02x", b), desc: desc + "; the tags are computed over the envelope as it is",
			rule: rule, result: result, msg: vb.req("hmac"), breakMsg: version(b)}
	}
	length := func(name, desc string, offset func(b []byte) int, value func(b []byte, at int) uint32) vectorSpec {
		return vectorSpec{name: name, desc: desc, rule: "frame-len", result: "malformed", msg: vb.req("hmac", "ed25519"),
			breakMsg: vb.envelopeBytes(func(b []byte) []byte {
				at := offset(b)
				return vb.setU32(b, at, value(b, at))
			})}
	}
	justPast := func(b []byte, at int) uint32 { return uint32(len(b)-at-4) + 1 }
	return []vectorSpec{
		{name: "too-large", desc: "the envelope is one byte longer than the receiver's size limit", rule: "size-limit", result: "too-large",
			msg: vb.req("hmac"), breakRecv: func(v *vector) { v.MaxSize = len(v.Envelope)/2 - 1 }},
		firstByte(0x02, "frame-future", "unsupported-version", "first byte 0x02, kept for a later version"),
		firstByte(0x1f, "frame-future", "unsupported-version", "first byte 0x1F, the last kept for a later version"),
		firstByte(0x00, "frame-version", "malformed", "first byte 0x00"),
		firstByte(0x20, "frame-version", "malformed", "first byte 0x20, the first of the bytes that are never a version"),
		firstByte(0x7b, "frame-version", "malformed", "first byte '{', as JSON text begins"),
		firstByte(0xff, "frame-version", "malformed", "first byte 0xFF"),
		{name: "armored", desc: "a genuine envelope as its armor (base64url text), not de-armored", rule: "frame-version", result: "malformed",
			msg: vb.req("hmac"), breakMsg: vb.envelopeBytes(func(b []byte) []byte { return []byte(b64.EncodeToString(b)) })},
		{name: "empty", desc: "no bytes at all", rule: "frame-cut", result: "malformed",
			msg: vb.req("hmac"), breakMsg: vb.envelopeBytes(func([]byte) []byte { return []byte{} })},
		{name: "version-byte-only", desc: "the byte 0x01 alone", rule: "frame-cut", result: "malformed",
			msg: vb.req("hmac"), breakMsg: vb.envelopeBytes(func([]byte) []byte { return []byte{Version} })},
		{name: "sixteen-bytes", desc: "0x01 and three zero lengths, the fourth cut after 3 bytes (16 bytes)", rule: "frame-cut", result: "malformed",
			msg: vb.req("hmac"), breakMsg: vb.envelopeBytes(func([]byte) []byte { return append([]byte{Version}, make([]byte, 15)...) })},
		{name: "signature-length-cut", desc: "a genuine envelope without its last byte, which is inside len(S)", rule: "frame-cut", result: "malformed",
			msg: vb.req("hmac"), breakMsg: vb.envelopeBytes(func(b []byte) []byte { return b[:len(b)-1] })},
		length("header-length-max", "len(H) is 0xFFFFFFFF", func([]byte) int { return 1 }, func([]byte, int) uint32 { return 0xffffffff }),
		length("header-length-past-end", "len(H) runs one byte past the end of E",
			func([]byte) int { return 1 }, justPast),
		length("payload-length-past-end", "len(P) runs one byte past the end of E",
			func(b []byte) int { _, p, _, _ := vb.memberOffsets(b); return p }, justPast),
		length("mac-length-past-end", "len(M) runs one byte past the end of E",
			func(b []byte) int { _, _, m, _ := vb.memberOffsets(b); return m }, justPast),
		length("signature-length-past-end", "len(S) runs one byte past the end of E",
			func(b []byte) int { _, _, _, s := vb.memberOffsets(b); return s }, justPast),
		{name: "signature-past-end-zero", desc: "an ES256 signature whose last byte is 0x00, cut off: len(S) (64) runs one byte past the end of E, which E padded with a zero byte would not",
			rule: "frame-len", result: "malformed", msg: vb.req("es256"),
			search:   func(m *forged) bool { return m.bytes[len(m.bytes)-1] == 0 },
			breakMsg: vb.envelopeBytes(func(b []byte) []byte { return b[:len(b)-1] })},
		{name: "mac-past-end-zero", desc: "an HMAC request whose tag ends with 0x00; E ends after the tag's first 31 bytes: len(M) runs past the end, and len(S) is missing",
			rule: "frame-len", result: "malformed", msg: vb.req("hmac"),
			search:   func(m *forged) bool { return m.parts.mac[31] == 0 },
			breakMsg: vb.envelopeBytes(func(b []byte) []byte { return b[:len(b)-5] })},
		{name: "payload-past-end-zero", desc: "a pre-shared-key request whose AEAD tag ends with 0x00; E ends one byte before the end of P: len(P) runs past the end, len(M) and len(S) are missing",
			rule: "frame-len", result: "malformed", msg: vb.req("psk"),
			search:   func(m *forged) bool { return m.parts.payload[len(m.parts.payload)-1] == 0 },
			breakMsg: vb.envelopeBytes(func(b []byte) []byte { return b[:len(b)-9] })},
		{name: "trailing-byte", desc: "a zero byte after S (here empty)", rule: "frame-trailing", result: "malformed",
			msg: vb.req("hmac"), breakMsg: vb.envelopeBytes(func(b []byte) []byte { return append(b, 0) })},
		{name: "trailing-byte-signed", desc: "a zero byte after the signature", rule: "frame-trailing", result: "malformed",
			msg: vb.req("ed25519"), breakMsg: vb.envelopeBytes(func(b []byte) []byte { return append(b, 0) })},
		{name: "two-envelopes", desc: "the envelope twice, back to back", rule: "frame-trailing", result: "malformed",
			msg: vb.req("hmac"), breakMsg: vb.envelopeBytes(func(b []byte) []byte { return append(b, b...) })},
	}
}

// headerVectors break one rule of the header (SPEC.md §3.1, §3.2).
func headerVectors() []vectorSpec {
	malformed := func(name, rule, desc string, msg func(*vectorGen) *forgery, change func(*vectorGen, *forgery), recv ...func(*vector)) vectorSpec {
		return vectorSpec{name: name, desc: desc, rule: rule, result: "malformed", msg: msg, breakMsg: change, breakRecv: vb.recvs(recv...)}
	}
	kind := func(k Kind) func(*vectorGen, *forgery) { return vb.hdr(func(h *header) { h.kind = k }) }
	prot := func(bits Protection) func(*vectorGen, *forgery) { return vb.hdr(func(h *header) { h.prot |= bits }) }
	sigAlg := func(c byte) func(*vectorGen, *forgery) { return vb.hdr(func(h *header) { h.sigAlg = algCode(c) }) }
	from := func(id string) func(*vectorGen, *forgery) { return vb.hdr(func(h *header) { h.from = id }) }
	to := func(ids ...string) func(*vectorGen, *forgery) { return vb.hdr(func(h *header) { h.to = ids }) }
	topic := func(t string) func(*vectorGen, *forgery) { return vb.hdr(func(h *header) { h.topic = t }) }
	replyTo := func(t string) func(*vectorGen, *forgery) { return vb.hdr(func(h *header) { h.replyTo = t }) }
	corr := func(c []byte) func(*vectorGen, *forgery) { return vb.hdr(func(h *header) { h.corr = c }) }
	re := func(change func(re []byte) []byte) func(*vectorGen, *forgery) {
		return vb.hdr(func(h *header) { h.re = change(bytes.Clone(h.re)) })
	}
	code := func(c string) func(*vectorGen, *forgery) { return vb.hdr(func(h *header) { h.hotpCode = c }) }
	times := func(iat, exp uint64) func(*vectorGen, *forgery) {
		return vb.hdr(func(h *header) { h.iat, h.exp = iat, exp })
	}
	cut := func(n int) func(*vectorGen, *forgery) {
		return vb.headerBytes(func(b []byte) []byte { return b[:len(b)-n] })
	}
	hmacReq, sigReq, wrapReq := vb.req("hmac"), vb.req("ed25519"), vb.req("ed25519", "x25519")
	hmacRep := vb.rep(Reply, []string{"hmac"}, "hmac")
	sigEvt := vb.evt("doors/3", []string{"gateway"}, "ed25519")
	kidMac := func(g *vectorGen) []byte { id := g.ks.macs["hmac"].KeyID(); return id[:] }
	var out []vectorSpec
	add := func(s ...vectorSpec) { out = append(out, s...) }

	// §3.1: reading the fields.
	add(
		malformed("header-empty", "hdr-cut", "len(H) is 0", hmacReq, vb.headerBytes(func([]byte) []byte { return []byte{} })),
		malformed("smallest-frame", "hdr-cut", "the 17-byte frame of four empty members", hmacReq,
			vb.envelopeBytes(func([]byte) []byte { return append([]byte{Version}, make([]byte, 16)...) })),
		malformed("header-kind-and-prot-only", "hdr-cut", "H is the kind and prot bytes alone", hmacReq, vb.headerBytes(func(b []byte) []byte { return b[:2] })),
		malformed("from-past-end", "hdr-cut", "from announces 128 bytes (a valid length), more than H has left", hmacReq, vb.rawField(fieldFrom, rawStr8(128, "client"))),
		malformed("to-count-past-end", "hdr-cut", "an event whose to announces 64 ids; H ends after the first", sigEvt, vb.headerCut(fieldTo, 1+8, 64)),
		malformed("to-id-past-end", "hdr-cut", "the id in to announces 128 bytes, more than H has left", hmacReq, vb.rawField(fieldTo, append([]byte{1}, rawStr8(128, "gateway")...))),
		malformed("topic-past-end", "hdr-cut", "topic announces 1024 bytes, more than H has left", hmacReq, vb.rawField(fieldTopic, rawStr16(1024, "get-card"))),
		malformed("reply-to-past-end", "hdr-cut", "replyTo announces 1024 bytes, more than H has left", hmacReq, vb.rawField(fieldReplyTo, rawStr16(1024, "mqttsec/client/reply"))),
		malformed("corr-past-end", "hdr-cut", "corr announces 64 bytes, more than H has left", hmacReq,
			func(g *vectorGen, f *forgery) { vb.rawField(fieldCorr, rawStr8(64, string(f.h.corr)))(g, f) }),
		malformed("re-past-end", "hdr-cut", "a reply whose H ends 10 bytes into re", hmacRep, vb.headerCut(fieldRe, 1+10, -1)),
		malformed("exp-cut", "hdr-cut", "H ends 4 bytes into exp (the mac field and the rest of exp cut off)", hmacReq, cut(keyIDSize+4)),
		malformed("mac-kid-cut", "hdr-cut", "H ends one byte before the end of the mac key id", hmacReq, cut(1)),
		malformed("hotp-code-past-end", "hdr-cut", "the HOTP code announces 8 digits; H ends after 6", vb.req("hmac", "hotp"),
			vb.headerBytes(func(b []byte) []byte { b[len(b)-7] = 8; return b })),
		malformed("sig-kid-cut", "hdr-cut", "H ends one byte before the end of the sig key id", sigReq, cut(1)),
		malformed("psk-kid-cut", "hdr-cut", "H ends one byte before the end of the pre-shared key id", vb.req("hmac", "psk"), cut(1)),
		malformed("enc-count-past-end", "hdr-cut", "enc announces 2 wrapped keys; H holds 1", wrapReq,
			vb.headerBytes(func(b []byte) []byte { b[len(b)-(1+keyIDSize+2+x25519WrappedSize)-1] = 2; return b })),
		vectorSpec{name: "wk-past-end", desc: "H ends one byte before the end of the last wk (80 bytes announced), a byte that is 0x00; the signature covers H as it is",
			rule: "hdr-cut", result: "malformed", msg: wrapReq, breakMsg: cut(1),
			search: func(m *forged) bool { return m.parts.header[len(m.parts.header)-1] == 0 }},
		malformed("header-trailing-byte", "hdr-trailing", "a zero byte after the mac key id, the last field", hmacReq,
			func(_ *vectorGen, f *forgery) { f.tail = []byte{0} }),
		malformed("header-trailing-after-enc", "hdr-trailing", "a zero byte after the wrapped keys", wrapReq,
			func(_ *vectorGen, f *forgery) { f.tail = []byte{0} }),
		malformed("header-trailing-mac-kid", "hdr-trailing", "an HMAC key id after the sig field, in a header whose prot has sig only", sigReq,
			func(g *vectorGen, f *forgery) { f.tail = kidMac(g) }),
		malformed("kind-03", "hdr-kind", "kind 0x03 (req and rep at once)", hmacReq, kind(0x03)),
		malformed("kind-00", "hdr-kind", "kind 0x00", hmacReq, kind(0x00)),
		malformed("kind-10", "hdr-kind", "kind 0x10", hmacReq, kind(0x10)),
		malformed("prot-bit-10", "hdr-prot-bits", "prot has bit 0x10 beside hmac", hmacReq, prot(0x10)),
		malformed("prot-bit-80", "hdr-prot-bits", "prot has bit 0x80 beside sig", sigReq, prot(0x80)),
		malformed("prot-none", "hdr-prot-none", "prot 0: no protection, no fields after exp", hmacReq, vb.keys()),
		malformed("sig-alg-0", "sig-alg", "signature algorithm code 0", sigReq, sigAlg(0)),
		malformed("sig-alg-4", "sig-alg", "signature algorithm code 4", sigReq, sigAlg(4)),
		malformed("sig-alg-ff", "sig-alg", "signature algorithm code 0xFF", sigReq, sigAlg(0xff)),
		malformed("rcpt-alg-0", "rcpt-alg", "a wrapped key with algorithm code 0 before the receiver's", wrapReq, vb.prepend(vb.entry(algCode(0), x25519WrappedSize))),
		malformed("rcpt-alg-4", "rcpt-alg", "a wrapped key with algorithm code 4 before the receiver's", wrapReq, vb.prepend(vb.entry(algCode(4), x25519WrappedSize))),
		malformed("wrapped-65", "rcpt-max", "65 wrapped keys: 64 for keys the receiver does not hold, the last its own", wrapReq,
			func(g *vectorGen, f *forgery) {
				var es []func() wrappedKey
				for range 64 {
					es = append(es, vb.entry(HPKEX25519, x25519WrappedSize))
				}
				vb.prepend(es...)(g, f)
			}),
	)

	// §3.2: ids and recipients.
	long := vb.repeat("c", 129)
	add(
		malformed("from-empty", "id-len", "from is empty (the receiver knows a peer of that id)", hmacReq, from(""), vb.sender("")),
		malformed("from-129", "id-len", "from is 129 bytes", hmacReq, from(long), vb.sender(long)),
		malformed("to-129", "id-len", "the id in to is 129 bytes (the receiver's own)", hmacReq, to(long), vb.receiver(long)),
		malformed("to-empty-id", "id-len", "the id in to is empty (the receiver's own)", hmacReq, to(""), vb.receiver("")),
		malformed("from-slash", "id-chars", "from has a '/'", hmacReq, from("cli/ent"), vb.sender("cli/ent")),
		malformed("from-non-ascii", "id-chars", "from has a non-ASCII letter (é)", hmacReq, from("clienté"), vb.sender("clienté")),
		malformed("to-space", "id-chars", "the id in to has a space", hmacReq, to("gate way"), vb.receiver("gate way")),
		malformed("to-wildcard", "id-chars", "the id in to has a '+'", hmacReq, to("gateway+"), vb.receiver("gateway+")),
		malformed("request-two-recipients", "to-one", "a signed request to gateway and gateway-2", sigReq, to("gateway", "gateway-2")),
		malformed("request-no-recipient", "to-one", "a signed request with an empty to", sigReq, to()),
		malformed("reply-two-recipients", "to-one", "a signed reply to client and client-2", vb.rep(Reply, []string{"hmac"}, "ed25519"), to("client", "client-2")),
		malformed("event-65-recipients", "to-max", "an event to 65 recipients", sigEvt, to(append([]string{"gateway"}, vb.ids("gw-", 64)...)...)),
		malformed("event-duplicate-recipient", "to-dup", "an event to gateway, gateway-2 and gateway again", sigEvt, to("gateway", "gateway-2", "gateway")),
		malformed("event-hmac-two-recipients", "pairwise-to", "an event with an HMAC to two recipients", vb.evt("doors/3", []string{"gateway"}, "hmac"), to("gateway", "gateway-2")),
		malformed("event-hmac-broadcast", "pairwise-to", "an event with an HMAC to any subscriber (no recipients)", vb.evt("doors/3", []string{"gateway"}, "hmac"), to()),
		malformed("event-hotp-two-recipients", "pairwise-to", "a signed event with a HOTP code, to two recipients", vb.evt("doors/3", []string{"gateway"}, "ed25519", "hotp"), to("gateway", "gateway-2")),
		malformed("event-psk-two-recipients", "pairwise-to", "an event encrypted under a pre-shared key, to two recipients", vb.evt("doors/3", []string{"gateway"}, "psk"), to("gateway", "gateway-2")),
	)

	// §3.2: topics. The receiver expects no topic, so that only the rule
	// refuses.
	badTopic := func(name, rule, desc, t string) vectorSpec {
		return malformed(name, rule, desc, hmacReq, topic(t), vb.noExpectedTopic)
	}
	badReplyTo := func(name, rule, desc, t string) vectorSpec {
		return malformed(name, rule, desc, hmacReq, replyTo(t))
	}
	add(
		badTopic("topic-empty", "topic-len", "an empty method", ""),
		badTopic("topic-1025", "topic-len", "a method of 1025 bytes", vb.repeat("m", 1025)),
		badReplyTo("reply-to-empty", "topic-len", "a request with an empty replyTo", ""),
		badReplyTo("reply-to-1025", "topic-len", "a replyTo of 1025 bytes", vb.repeat("r", 1025)),
		badTopic("topic-overlong-utf8", "topic-utf8", "the method has C0 AF, an overlong '/'", "get-card\xc0\xaf"),
		badTopic("topic-overlong-utf8-3", "topic-utf8", "the method has E0 80 AF, an overlong '/' in three bytes", "get\xe0\x80\xafcard"),
		badTopic("topic-surrogate", "topic-utf8", "the method has ED A0 80, the surrogate U+D800", "get-card\xed\xa0\x80"),
		badTopic("topic-above-10ffff", "topic-utf8", "the method has F4 90 80 80, above U+10FFFF", "get-card\xf4\x90\x80\x80"),
		badTopic("topic-cut-utf8", "topic-utf8", "the method ends inside a sequence (E2 82)", "get-card\xe2\x82"),
		badTopic("topic-lone-continuation", "topic-utf8", "the method has a lone continuation byte 80", "get\x80card"),
		badTopic("topic-byte-ff", "topic-utf8", "the method has the byte FF", "get-card\xff"),
		badReplyTo("reply-to-latin1", "topic-utf8", "replyTo in Latin-1 (E9 for é)", "mqttsec/cli\xe9nt/reply"),
		badTopic("topic-nul", "topic-ctl", "the method has U+0000", "get-card\x00"),
		badTopic("topic-newline", "topic-ctl", "the method has U+000A", "get\ncard"),
		badTopic("topic-1f", "topic-ctl", "the method has U+001F", "get\x1fcard"),
		badTopic("topic-del", "topic-ctl", "the method has U+007F", "get-card\x7f"),
		badReplyTo("reply-to-tab", "topic-ctl", "replyTo has U+0009", "mqttsec/client/\treply"),
		badTopic("topic-quote", "topic-json", "the method has '\"'", `get"card`),
		badTopic("topic-backslash", "topic-json", "the method has '\\'", `get\card`),
		badReplyTo("reply-to-quote", "topic-json", "replyTo has '\"'", `mqttsec/"client"/reply`),
		badTopic("topic-plus", "topic-wild", "the method has '+'", "cards/+"),
		badTopic("topic-hash", "topic-wild", "the method has '#'", "cards/#"),
		badReplyTo("reply-to-plus", "topic-wild", "replyTo has '+'", "mqttsec/+/reply"),
		malformed("event-topic-hash", "topic-wild", "an event on doors/#", sigEvt, topic("doors/#"), vb.noExpectedTopic),
		badTopic("topic-2028", "topic-sep", "the method has U+2028", "get\u2028card"),
		badTopic("topic-2029", "topic-sep", "the method has U+2029", "get\u2029card"),
	)

	// §3.2: fields by kind, numbers, HOTP code, wrapped keys.
	add(
		malformed("reply-with-reply-to", "replyto-extra", "a reply with a replyTo", hmacRep, replyTo("mqttsec/gateway/reply")),
		malformed("error-with-reply-to", "replyto-extra", "an error reply with a replyTo", vb.rep(ErrorReply, []string{"hmac"}, "hmac"), replyTo("mqttsec/gateway/reply")),
		malformed("event-with-reply-to", "replyto-extra", "an event with a replyTo", sigEvt, replyTo("doors/3/ack")),
		malformed("request-corr-empty", "corr-len", "a request with an empty corr", hmacReq, corr(nil)),
		malformed("request-corr-65", "corr-len", "a request with a corr of 65 bytes", hmacReq, corr(bytes.Repeat([]byte{0xc0}, 65))),
		malformed("event-with-corr", "corr-extra", "an event with a corr", sigEvt, corr(bytes.Repeat([]byte{0xc0}, 16))),
		malformed("reply-re-31", "re-len", "a reply whose re is the request's digest without its last byte", hmacRep, re(func(r []byte) []byte { return r[:31] })),
		malformed("reply-re-33", "re-len", "a reply whose re is the request's digest and a zero byte", hmacRep, re(func(r []byte) []byte { return append(r, 0) })),
		malformed("reply-re-empty", "re-len", "a reply with an empty re", hmacRep, re(func([]byte) []byte { return nil })),
		malformed("request-with-re", "re-extra", "a request with a re of 32 bytes", hmacReq, re(func([]byte) []byte { return bytes.Repeat([]byte{0xee}, 32) })),
		malformed("event-with-re", "re-extra", "an event with a re of 32 bytes", sigEvt, re(func([]byte) []byte { return bytes.Repeat([]byte{0xee}, 32) })),
		malformed("ctr-zero", "ctr-zero", "counter 0", hmacReq, func(_ *vectorGen, f *forgery) { f.h.ctr = 0 }),
		malformed("exp-above-max", "time-range", "a time request of a clockless peer with iat 2^63-5000 and exp 2^63+5000: only the range is wrong", vb.timeReq("hmac"),
			times(1<<63-5000, 1<<63+5000)),
		malformed("iat-and-exp-above-max", "time-range", "a time request of a clockless peer with iat 2^63 and exp 2^63+10000", vb.timeReq("hmac"),
			times(1<<63, 1<<63+10000)),
		malformed("exp-2-64-minus-1", "time-range", "a time request of a clockless peer with iat 2^64-10001 and exp 2^64-1", vb.timeReq("hmac"),
			times(vectorMax64-10000, vectorMax64)),
		malformed("exp-equals-iat", "exp-order", "exp = iat", hmacReq, vb.hdr(func(h *header) { h.exp = h.iat })),
		malformed("exp-before-iat", "exp-order", "exp = iat - 1 ms", hmacReq, vb.hdr(func(h *header) { h.exp = h.iat - 1 })),
		malformed("iat-above-exp-max", "exp-order", "a time request of a clockless peer with iat 2^63 and exp 2^63-1", vb.timeReq("hmac"),
			times(1<<63, vectorMax63)),
		malformed("hotp-7-digits", "hotp-len", "a HOTP code of 7 digits", vb.req("hmac", "hotp"), code("1234567")),
		malformed("hotp-empty", "hotp-len", "an empty HOTP code", vb.req("hmac", "hotp"), code("")),
		malformed("hotp-9-digits", "hotp-len", "a HOTP code of 9 digits", vb.req("hmac", "hotp"), code("123456789")),
		malformed("hotp-letter", "hotp-chars", "a 6-byte HOTP code with a letter", vb.req("hmac", "hotp"), code("12345a")),
		malformed("hotp-sign", "hotp-chars", "a 6-byte HOTP code with a minus sign", vb.req("hmac", "hotp"), code("-12345")),
		malformed("rcpt-duplicate", "rcpt-dup", "the receiver's wrapped key twice", wrapReq, vb.hdr(func(h *header) { h.rcpt = append(h.rcpt, h.rcpt[0]) })),
		malformed("rcpt-duplicate-kid", "rcpt-dup", "a second entry (X-Wing) with the key id of the first (the receiver's X25519 key)", wrapReq,
			vb.hdr(func(h *header) {
				h.rcpt = append(h.rcpt, wrappedKey{alg: HPKEXWing, kid: h.rcpt[0].kid, wk: bytes.Repeat([]byte{0x77}, xwingWrappedSize)})
			})),
		malformed("wk-x25519-79", "wk-x25519", "an HPKE-X25519 wk of 79 bytes, for a key the receiver does not hold, before its own", wrapReq, vb.prepend(vb.entry(HPKEX25519, 79))),
		malformed("wk-x25519-81", "wk-x25519", "an HPKE-X25519 wk of 81 bytes, for a key the receiver does not hold, before its own", wrapReq, vb.prepend(vb.entry(HPKEX25519, 81))),
		malformed("wk-xwing-1167", "wk-xwing", "an X-Wing wk of 1167 bytes, for a key the receiver does not hold, before its own", wrapReq, vb.prepend(vb.entry(HPKEXWing, 1167))),
		malformed("wk-xwing-80", "wk-xwing", "an X-Wing wk of 80 bytes, for a key the receiver does not hold, before its own", wrapReq, vb.prepend(vb.entry(HPKEXWing, 80))),
		malformed("wk-rsa-255", "wk-rsa", "an RSA-OAEP wk of 255 bytes, for a key the receiver does not hold, before its own", wrapReq, vb.prepend(vb.entry(RSAOAEP256, 255))),
		malformed("wk-rsa-1025", "wk-rsa", "an RSA-OAEP wk of 1025 bytes, for a key the receiver does not hold, before its own", wrapReq, vb.prepend(vb.entry(RSAOAEP256, 1025))),
	)
	// The time requests above are opened by a receiver whose policy marks
	// the peer clockless (see the genuine message's receiver).
	for i := range out {
		if strings.Contains(out[i].desc, "time request of a clockless peer") {
			out[i].recv = vb.clocklessPeer
		}
	}
	return out
}

// memberVectors break the sizes of M, S and P (SPEC.md §3.3).
func memberVectors() []vectorSpec {
	malformed := func(name, rule, desc string, msg func(*vectorGen) *forgery, change func(*vectorGen, *forgery)) vectorSpec {
		return vectorSpec{name: name, desc: desc, rule: rule, result: "malformed", msg: msg, breakMsg: change}
	}
	parts := vb.afterTags
	return []vectorSpec{
		malformed("mac-31", "mac-len", "the HMAC tag without its last byte", vb.req("hmac"), parts(func(p *envelopeParts) { p.mac = p.mac[:31] })),
		malformed("mac-33", "mac-len", "the HMAC tag and a zero byte", vb.req("hmac"), parts(func(p *envelopeParts) { p.mac = append(p.mac, 0) })),
		malformed("mac-stripped", "mac-len", "prot has hmac, M is empty", vb.req("hmac", "ed25519"), parts(func(p *envelopeParts) { p.mac = nil })),
		malformed("mac-undeclared", "mac-extra", "a signed request whose prot has no hmac, with a genuine HMAC tag in M", vb.req("ed25519"),
			func(g *vectorGen, f *forgery) {
				parts(func(p *envelopeParts) {
					m := hmac.New(sha256.New, g.ks.macs["hmac"].secret)
					m.Write(vb.authOf(p))
					p.mac = m.Sum(nil)
				})(g, f)
			}),
		malformed("ed25519-63", "sig-len-ed25519", "an Ed25519 signature without its last byte", vb.req("ed25519"), parts(func(p *envelopeParts) { p.sig = p.sig[:63] })),
		malformed("ed25519-stripped", "sig-len-ed25519", "prot has sig (Ed25519), S is empty", vb.req("hmac", "ed25519"), parts(func(p *envelopeParts) { p.sig = nil })),
		malformed("es256-der", "sig-len-es256", "an ES256 signature in ASN.1 DER instead of r || s", vb.req("es256"), parts(func(p *envelopeParts) { p.sig = vb.derSignature(p.sig) })),
		malformed("es256-65", "sig-len-es256", "an ES256 signature and a zero byte", vb.req("es256"), parts(func(p *envelopeParts) { p.sig = append(p.sig, 0) })),
		malformed("ps256-255", "sig-len-ps256", "a PS256 signature without its last byte", vb.req("ps256"), parts(func(p *envelopeParts) { p.sig = p.sig[:255] })),
		malformed("ps256-1025", "sig-len-ps256", "a PS256 signature followed by 769 zero bytes (1025)", vb.req("ps256"), parts(func(p *envelopeParts) { p.sig = append(p.sig, make([]byte, 769)...) })),
		malformed("signature-undeclared", "sig-extra", "an HMAC request whose prot has no sig, with a genuine Ed25519 signature in S", vb.req("hmac"),
			func(g *vectorGen, f *forgery) {
				parts(func(p *envelopeParts) {
					a := vb.authOf(p)
					p.sig = must[[]byte](g.t)(g.ks.signers["ed25519"].Sign(a[:]))
				})(g, f)
			}),
		malformed("ciphertext-27", "enc-short", "pre-shared-key encryption, P of 27 bytes (under the HMAC)", vb.req("hmac", "psk"),
			vb.payloadBytes(func(p []byte) []byte { return p[:27] })),
		malformed("ciphertext-empty", "enc-short", "wrapped-key encryption, P empty (under the signature)", vb.req("ed25519", "x25519"),
			vb.payloadBytes(func([]byte) []byte { return nil })),
	}
}
