package envelope_test

import (
	"bytes"
	"context"
	"crypto"
	"crypto/aes"
	"crypto/cipher"
	"crypto/ecdh"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/hmac"
	"crypto/hpke"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"hash"
	"os"
	"testing"
	"time"

	"github.com/mqttsec/mqttsec/envelope"
	"github.com/mqttsec/mqttsec/hotp"
	"github.com/mqttsec/mqttsec/rsasign"
)

// benchKeys are the raw keys of the benchmarks, and the package's keys
// made of them.
type benchKeys struct {
	hmacSecret, hotpSecret, pskSecret []byte
	edPriv                            ed25519.PrivateKey
	es                                *ecdsa.PrivateKey
	rsaSign, rsaEnc                   *rsa.PrivateKey
	x, xwing                          hpke.PrivateKey

	hmac      *envelope.HMACKey
	hotp      *envelope.HOTPKey
	psk       *envelope.AEADKey
	ed, ecdsa envelope.Signer
	ps        envelope.Signer
	verifiers []envelope.Verifier
	x25519    envelope.Recipient
	xw        envelope.Recipient
	oaep      envelope.Recipient
	ids       []envelope.Identity
}

func newBenchKeys(b *testing.B) *benchKeys {
	b.Helper()
	check := func(err error) {
		if err != nil {
			b.Fatal(err)
		}
	}
	pem := func(name string) *rsa.PrivateKey {
		data, err := os.ReadFile("testdata/" + name)
		check(err)
		k, err := rsasign.ParsePrivateKeyPEM(data)
		check(err)
		return k
	}
	random := func(n int) []byte { r := make([]byte, n); rand.Read(r); return r }
	k := &benchKeys{hmacSecret: random(32), hotpSecret: random(20), pskSecret: random(32)}
	var err error
	_, k.edPriv, err = ed25519.GenerateKey(rand.Reader)
	check(err)
	k.es, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	check(err)
	k.rsaSign, k.rsaEnc = pem("rsa2048.pem"), pem("rsa2048-oaep.pem")
	k.x, err = hpke.DHKEM(ecdh.X25519()).GenerateKey()
	check(err)
	k.xwing, err = hpke.MLKEM768X25519().GenerateKey()
	check(err)
	k.hmac, err = envelope.NewHMACKey(k.hmacSecret)
	check(err)
	k.hotp, err = envelope.NewHOTPKey(k.hotpSecret, 6)
	check(err)
	k.psk, err = envelope.NewAEADKey(k.pskSecret)
	check(err)
	k.ed, err = envelope.NewEd25519Signer(k.edPriv)
	check(err)
	k.ecdsa, err = envelope.NewECDSASigner(k.es)
	check(err)
	k.ps, err = envelope.NewRSASigner(k.rsaSign)
	check(err)
	for _, f := range []func() (envelope.Verifier, error){
		func() (envelope.Verifier, error) {
			return envelope.NewEd25519Verifier(k.edPriv.Public().(ed25519.PublicKey))
		},
		func() (envelope.Verifier, error) { return envelope.NewECDSAVerifier(&k.es.PublicKey) },
		func() (envelope.Verifier, error) { return envelope.NewRSAVerifier(&k.rsaSign.PublicKey) },
	} {
		v, err := f()
		check(err)
		k.verifiers = append(k.verifiers, v)
	}
	k.x25519, err = envelope.NewHPKERecipient(k.x.PublicKey())
	check(err)
	k.xw, err = envelope.NewHPKERecipient(k.xwing.PublicKey())
	check(err)
	k.oaep, err = envelope.NewRSARecipient(&k.rsaEnc.PublicKey)
	check(err)
	for _, f := range []func() (envelope.Identity, error){
		func() (envelope.Identity, error) { return envelope.NewHPKEIdentity(k.x) },
		func() (envelope.Identity, error) { return envelope.NewHPKEIdentity(k.xwing) },
		func() (envelope.Identity, error) { return envelope.NewRSAIdentity(k.rsaEnc) },
	} {
		id, err := f()
		check(err)
		k.ids = append(k.ids, id)
	}
	return k
}

// benchSuite is one protection set, named as the benchmarks before
// Envelope 1.0 named it.
type benchSuite struct {
	name    string
	require envelope.Protection
	apply   func(k *benchKeys, p *envelope.Params)
}

func benchSuites() []benchSuite {
	return []benchSuite{
		{"hmac", envelope.HMAC, func(k *benchKeys, p *envelope.Params) { p.HMAC = k.hmac }},
		{"hmac+hotp", envelope.HMAC | envelope.HOTPCode, func(k *benchKeys, p *envelope.Params) { p.HMAC, p.HOTP = k.hmac, k.hotp }},
		{"psk", envelope.Encryption, func(k *benchKeys, p *envelope.Params) { p.PSK = k.psk }},
		{"hmac+psk", envelope.HMAC | envelope.Encryption, func(k *benchKeys, p *envelope.Params) { p.HMAC, p.PSK = k.hmac, k.psk }},
		{"ed25519", envelope.Signature, func(k *benchKeys, p *envelope.Params) { p.Signer = k.ed }},
		{"es256", envelope.Signature, func(k *benchKeys, p *envelope.Params) { p.Signer = k.ecdsa }},
		{"ps256", envelope.Signature, func(k *benchKeys, p *envelope.Params) { p.Signer = k.ps }},
		{"ed25519+hpke-x25519", envelope.Signature | envelope.Encryption, func(k *benchKeys, p *envelope.Params) {
			p.Signer, p.Recipients = k.ed, []envelope.Recipient{k.x25519}
		}},
		{"ed25519+hpke-xwing", envelope.Signature | envelope.Encryption, func(k *benchKeys, p *envelope.Params) {
			p.Signer, p.Recipients = k.ed, []envelope.Recipient{k.xw}
		}},
		{"ps256+rsa-oaep", envelope.Signature | envelope.Encryption, func(k *benchKeys, p *envelope.Params) {
			p.Signer, p.Recipients = k.ps, []envelope.Recipient{k.oaep}
		}},
	}
}

// benchAdmitAll admits every counter, so that envelopes open again and
// again.
type benchAdmitAll struct{}

func (benchAdmitAll) Check(context.Context, envelope.Seen) error { return nil }
func (benchAdmitAll) Admit(context.Context, envelope.Seen) error { return nil }

// variants is how many different envelopes an open benchmark, and
// different signatures a primitive verification, take in turns: a
// verification runs in variable time, and the same one again and again
// trains the CPU's branch predictors to it, which no stream of real
// messages does.
const variants = 64

// BenchmarkEnvelope measures, for each suite with 256-byte and 4 KiB
// payloads, Seal and Open next to the bare primitives the suite cannot
// avoid: SHA-256 of the signing input (the digest), the HMAC-SHA-256 of the
// 50-byte authenticated block, the HOTP code, the signature of that block,
// AES-256-GCM of the payload and one key wrap or unwrap, with no envelope
// around them. seal minus primitives-seal, and open minus primitives-open,
// is the envelope's overhead per message; seal-into is Seal into a buffer
// reused from one message to the next (SealInto), which leaves out the
// allocation of the envelope.
func BenchmarkEnvelope(b *testing.B) {
	k := newBenchKeys(b)
	for _, size := range []int{256, 4096} {
		payload := make([]byte, size)
		rand.Read(payload)
		for _, s := range benchSuites() {
			seal, sealInto, open := envelopeRows(b, k, s, payload)
			primSeal, primOpen := primitiveRows(b, k, s, payload)
			for _, row := range []struct {
				name string
				f    func()
			}{
				{"seal", seal},
				{"seal-into", sealInto},
				{"primitives-seal", primSeal},
				{"open", open},
				{"primitives-open", primOpen},
			} {
				b.Run(fmt.Sprintf("%s/%d/%s", s.name, size, row.name), func(b *testing.B) {
					b.ReportAllocs()
					for b.Loop() {
						row.f()
					}
				})
			}
		}
	}
}

var benchNow = time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)

func benchParams(k *benchKeys, s benchSuite) *envelope.Params {
	p := &envelope.Params{Kind: envelope.Request, To: []string{"gateway"}, Topic: "get-card", ReplyTo: "mqttsec/client/reply"}
	s.apply(k, p)
	return p
}

// envelopeRows returns Seal and Open of one request of suite s; Open takes
// variants envelopes in turn.
func envelopeRows(b *testing.B, k *benchKeys, s benchSuite, payload []byte) (seal, sealInto, open func()) {
	sealer := &envelope.Sealer{ID: "client", Counter: envelope.NewMemoryCounter(0), Now: func() time.Time { return benchNow }}
	keys, err := envelope.NewKeys(k.ids, &envelope.Peer{
		ID: "client", Policy: envelope.Policy{Require: s.require},
		HMACKeys: []*envelope.HMACKey{k.hmac}, HOTPKeys: []*envelope.HOTPKey{k.hotp},
		AEADKeys: []*envelope.AEADKey{k.psk}, Verifiers: k.verifiers,
	})
	if err != nil {
		b.Fatal(err)
	}
	o := &envelope.Opener{ID: "gateway", Keys: keys, Replay: benchAdmitAll{}, Now: func() time.Time { return benchNow }}
	p := benchParams(k, s)
	var sealed [variants][]byte
	for i := range sealed {
		se, err := sealer.Seal(p, payload)
		if err != nil {
			b.Fatal(err)
		}
		sealed[i] = se.Bytes
	}
	want := &envelope.Expect{Kinds: envelope.Request}
	if m, err := o.Open(context.Background(), sealed[0], want); err != nil || !bytes.Equal(m.Payload, payload) {
		b.Fatalf("%s: Open: %v", s.name, err)
	}
	next := 0
	buf := make([]byte, 0, 2*len(sealed[0]))
	return func() {
			if _, err := sealer.Seal(p, payload); err != nil {
				b.Fatal(err)
			}
		}, func() {
			if _, err := sealer.SealInto(buf, p, payload); err != nil {
				b.Fatal(err)
			}
		}, func() {
			if _, err := o.Open(context.Background(), sealed[next%variants], want); err != nil {
				b.Fatal(err)
			}
			next++
		}
}

// primitiveRows returns the bare work of suite s for one request: as much
// input as the envelope's signing input, a 50-byte block to MAC and sign,
// AES-GCM over payload, one key wrap or unwrap.
func primitiveRows(b *testing.B, k *benchKeys, s benchSuite, payload []byte) (seal, open func()) {
	// The signing input is as long as the envelope through its payload
	// (SPEC.md §4.1): measure it on a sealed one.
	sealer := &envelope.Sealer{ID: "client", Counter: envelope.NewMemoryCounter(0), Now: func() time.Time { return benchNow }}
	p := benchParams(k, s)
	se, err := sealer.Seal(p, payload)
	if err != nil {
		b.Fatal(err)
	}
	hlen := binary.BigEndian.Uint32(se.Bytes[1:])
	plen := binary.BigEndian.Uint32(se.Bytes[5+hlen:])
	si := make([]byte, len("mqttsec.v1.")+9+int(hlen)+int(plen))
	rand.Read(si)
	aad := si[:5+hlen]
	var seals, opens []func()
	block := make([]byte, 50) // "mqttsec.v1.digest." || D
	digest := func() {
		d := sha256.Sum256(si)
		copy(block[18:], d[:])
	}
	seals, opens = append(seals, digest), append(opens, digest)
	if p.HMAC != nil {
		m := hmac.New(sha256.New, k.hmacSecret)
		var sum [32]byte
		tag := func(h hash.Hash) []byte { h.Reset(); h.Write(block); return h.Sum(sum[:0]) }
		good := bytes.Clone(tag(m))
		seals = append(seals, func() { tag(m) })
		opens = append(opens, func() { hmac.Equal(tag(m), good) })
	}
	if p.HOTP != nil {
		key, err := hotp.NewKey(k.hotpSecret, 6)
		if err != nil {
			b.Fatal(err)
		}
		code := key.Code(12345)
		seals = append(seals, func() { key.Code(12345) })
		opens = append(opens, func() { key.Verify(code, 12345) })
	}
	if p.Signer != nil {
		sign, verify := signPrimitive(b, k, p.Signer.Algorithm())
		seals, opens = append(seals, sign), append(opens, verify)
	}
	if p.PSK != nil || len(p.Recipients) > 0 {
		blk, err := aes.NewCipher(k.pskSecret)
		if err != nil {
			b.Fatal(err)
		}
		gcm, err := cipher.NewGCM(blk)
		if err != nil {
			b.Fatal(err)
		}
		// Seal draws a nonce per message, as the package does; open uses
		// the one its ciphertext was made with.
		nonce, openNonce := make([]byte, 12), make([]byte, 12)
		rand.Read(openNonce)
		out := make([]byte, 0, len(payload)+28)
		ct := gcm.Seal(nil, openNonce, payload, aad)
		seals = append(seals, func() { rand.Read(nonce); gcm.Seal(out[:0], nonce, payload, aad) })
		opens = append(opens, func() {
			if _, err := gcm.Open(out[:0], openNonce, ct, aad); err != nil {
				b.Fatal(err)
			}
		})
	}
	if len(p.Recipients) > 0 {
		wrap, unwrap := wrapPrimitive(b, k, p.Recipients[0].Algorithm())
		seals, opens = append(seals, wrap), append(opens, unwrap)
	}
	return func() {
			for _, f := range seals {
				f()
			}
		}, func() {
			for _, f := range opens {
				f()
			}
		}
}

// signPrimitive returns a signature of a 50-byte block, and a
// verification of one of variants signatures in turn, with the suite's
// key and no envelope code.
func signPrimitive(b *testing.B, k *benchKeys, alg envelope.Algorithm) (sign, verify func()) {
	var blocks, sigs [variants][]byte
	var signOnce func(msg []byte) []byte
	var verifyOnce func(msg, sig []byte) bool
	pss := &rsa.PSSOptions{SaltLength: 32, Hash: crypto.SHA256}
	switch alg {
	case envelope.Ed25519:
		pub := k.edPriv.Public().(ed25519.PublicKey)
		signOnce = func(msg []byte) []byte { return ed25519.Sign(k.edPriv, msg) }
		verifyOnce = func(msg, sig []byte) bool { return ed25519.Verify(pub, msg, sig) }
	case envelope.ES256:
		signOnce = func(msg []byte) []byte {
			d := sha256.Sum256(msg)
			sig, err := ecdsa.SignASN1(rand.Reader, k.es, d[:])
			if err != nil {
				b.Fatal(err)
			}
			return sig
		}
		verifyOnce = func(msg, sig []byte) bool {
			d := sha256.Sum256(msg)
			return ecdsa.VerifyASN1(&k.es.PublicKey, d[:], sig)
		}
	case envelope.PS256:
		signOnce = func(msg []byte) []byte {
			d := sha256.Sum256(msg)
			sig, err := rsa.SignPSS(rand.Reader, k.rsaSign, crypto.SHA256, d[:], pss)
			if err != nil {
				b.Fatal(err)
			}
			return sig
		}
		verifyOnce = func(msg, sig []byte) bool {
			d := sha256.Sum256(msg)
			return rsa.VerifyPSS(&k.rsaSign.PublicKey, crypto.SHA256, d[:], sig, pss) == nil
		}
	default:
		b.Fatalf("no signature primitive for %s", alg)
	}
	for i := range blocks {
		blocks[i] = make([]byte, 50)
		rand.Read(blocks[i])
		sigs[i] = signOnce(blocks[i])
	}
	next := 0
	return func() { signOnce(blocks[0]) }, func() {
		i := next % variants
		if !verifyOnce(blocks[i], sigs[i]) {
			b.Fatal("a signature does not verify")
		}
		next++
	}
}

// wrapPrimitive returns one wrap and one unwrap of a 32-byte content key
// with the suite's algorithm and no envelope code.
func wrapPrimitive(b *testing.B, k *benchKeys, alg envelope.Algorithm) (wrap, unwrap func()) {
	const info = "mqttsec v1 content key"
	ck := make([]byte, 32)
	var w func() ([]byte, error)
	var u func(wk []byte) ([]byte, error)
	switch alg {
	case envelope.HPKEX25519, envelope.HPKEXWing:
		priv := k.x
		if alg == envelope.HPKEXWing {
			priv = k.xwing
		}
		w = func() ([]byte, error) {
			return hpke.Seal(priv.PublicKey(), hpke.HKDFSHA256(), hpke.AES256GCM(), []byte(info), ck)
		}
		u = func(wk []byte) ([]byte, error) {
			return hpke.Open(priv, hpke.HKDFSHA256(), hpke.AES256GCM(), []byte(info), wk)
		}
	case envelope.RSAOAEP256:
		w = func() ([]byte, error) {
			return rsa.EncryptOAEP(sha256.New(), rand.Reader, &k.rsaEnc.PublicKey, ck, []byte(info))
		}
		u = func(wk []byte) ([]byte, error) { return rsa.DecryptOAEP(sha256.New(), nil, k.rsaEnc, wk, []byte(info)) }
	default:
		b.Fatalf("no wrap primitive for %s", alg)
	}
	wk, err := w()
	if err != nil {
		b.Fatal(err)
	}
	return func() {
			if _, err := w(); err != nil {
				b.Fatal(err)
			}
		}, func() {
			if _, err := u(wk); err != nil {
				b.Fatal(err)
			}
		}
}

// BenchmarkPrimitives measures each primitive alone, at the sizes an
// envelope uses, for reading BenchmarkEnvelope's primitives rows.
func BenchmarkPrimitives(b *testing.B) {
	k := newBenchKeys(b)
	block := make([]byte, 50)
	rand.Read(block)
	type row struct {
		name string
		f    func()
	}
	var rows []row
	for _, size := range []int{256, 4096} {
		msg := make([]byte, size+100)
		rand.Read(msg)
		blk, _ := aes.NewCipher(k.pskSecret)
		gcm, _ := cipher.NewGCM(blk)
		nonce := make([]byte, 12)
		out := make([]byte, 0, size+28)
		ct := gcm.Seal(nil, nonce, msg[:size], msg[:64])
		rows = append(rows,
			row{fmt.Sprintf("sha256/%d", size+100), func() { sha256.Sum256(msg) }},
			row{fmt.Sprintf("aes-gcm-seal/%d", size), func() { gcm.Seal(out[:0], nonce, msg[:size], msg[:64]) }},
			row{fmt.Sprintf("aes-gcm-open/%d", size), func() { gcm.Open(out[:0], nonce, ct, msg[:64]) }},
		)
	}
	m := hmac.New(sha256.New, k.hmacSecret)
	var sum [32]byte
	rows = append(rows, row{"hmac-sha256/50", func() { m.Reset(); m.Write(block); m.Sum(sum[:0]) }})
	for _, alg := range []envelope.Algorithm{envelope.Ed25519, envelope.ES256, envelope.PS256} {
		sign, verify := signPrimitive(b, k, alg)
		rows = append(rows, row{string(alg) + "-sign", sign}, row{string(alg) + "-verify", verify})
	}
	for _, alg := range []envelope.Algorithm{envelope.HPKEX25519, envelope.HPKEXWing, envelope.RSAOAEP256} {
		wrap, unwrap := wrapPrimitive(b, k, alg)
		rows = append(rows, row{string(alg) + "-wrap", wrap}, row{string(alg) + "-unwrap", unwrap})
	}
	for _, row := range rows {
		b.Run(row.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				row.f()
			}
		})
	}
}
