// Package benchsuite holds what the benchmarks share: every protection
// suite with its keys, the bare primitive work each suite cannot avoid (to
// measure the envelope's overhead against), and request/reply pairs over
// MQTT, secured and plain.
package benchsuite

import (
	"bytes"
	"context"
	"crypto/ecdh"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/hmac"
	"crypto/hpke"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/binary"
	"fmt"
	"hash"
	"sync"
	"sync/atomic"

	"github.com/mqttsec/mqttsec/aesgcm"
	"github.com/mqttsec/mqttsec/envelope"
	"github.com/mqttsec/mqttsec/hotp"
)

// Keys is one party's full key set, and the pairwise secrets it shares
// with the other party.
type Keys struct {
	HMACSecret, HOTPSecret, PSKSecret []byte
	HMAC                              *envelope.HMACKey
	HOTP                              *envelope.HOTPKey
	PSK                               *envelope.AEADKey

	EdPriv  ed25519.PrivateKey
	ES      *ecdsa.PrivateKey
	RSASign *rsa.PrivateKey
	RSAEnc  *rsa.PrivateKey
	X       hpke.PrivateKey
	XWing   hpke.PrivateKey

	Ed, ECDSA, PS    envelope.Signer
	Verifiers        []envelope.Verifier
	X25519, XW, OAEP envelope.Recipient
	Identities       []envelope.Identity
}

// NewKeyPair generates the key sets of two parties that share their
// pairwise secrets: a gateway's and a client's.
func NewKeyPair() (gateway, client *Keys, err error) {
	if gateway, err = NewKeys(nil); err != nil {
		return nil, nil, err
	}
	if client, err = NewKeys(gateway); err != nil {
		return nil, nil, err
	}
	return gateway, client, nil
}

// NewKeys generates a key set; pairwise secrets are copied from shared if
// it is not nil.
func NewKeys(shared *Keys) (*Keys, error) {
	k := &Keys{}
	if shared != nil {
		k.HMACSecret, k.HOTPSecret, k.PSKSecret = shared.HMACSecret, shared.HOTPSecret, shared.PSKSecret
	} else {
		k.HMACSecret, k.HOTPSecret, k.PSKSecret = random(32), random(20), random(32)
	}
	var err error
	steps := []func() error{
		func() (err error) { k.HMAC, err = envelope.NewHMACKey(k.HMACSecret); return },
		func() (err error) { k.HOTP, err = envelope.NewHOTPKey(k.HOTPSecret, 6); return },
		func() (err error) { k.PSK, err = envelope.NewAEADKey(k.PSKSecret); return },
		func() (err error) { _, k.EdPriv, err = ed25519.GenerateKey(rand.Reader); return },
		func() (err error) { k.ES, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader); return },
		func() (err error) { k.RSASign, err = rsa.GenerateKey(rand.Reader, 2048); return },
		func() (err error) { k.RSAEnc, err = rsa.GenerateKey(rand.Reader, 2048); return },
		func() (err error) { k.X, err = hpke.DHKEM(ecdh.X25519()).GenerateKey(); return },
		func() (err error) { k.XWing, err = hpke.MLKEM768X25519().GenerateKey(); return },
		func() (err error) { k.Ed, err = envelope.NewEd25519Signer(k.EdPriv); return },
		func() (err error) { k.ECDSA, err = envelope.NewECDSASigner(k.ES); return },
		func() (err error) { k.PS, err = envelope.NewRSASigner(k.RSASign); return },
		func() error {
			for _, f := range []func() (envelope.Verifier, error){
				func() (envelope.Verifier, error) {
					return envelope.NewEd25519Verifier(k.EdPriv.Public().(ed25519.PublicKey))
				},
				func() (envelope.Verifier, error) { return envelope.NewECDSAVerifier(&k.ES.PublicKey) },
				func() (envelope.Verifier, error) { return envelope.NewRSAVerifier(&k.RSASign.PublicKey) },
			} {
				v, err := f()
				if err != nil {
					return err
				}
				k.Verifiers = append(k.Verifiers, v)
			}
			return nil
		},
		func() (err error) { k.X25519, err = envelope.NewHPKERecipient(k.X.PublicKey()); return },
		func() (err error) { k.XW, err = envelope.NewHPKERecipient(k.XWing.PublicKey()); return },
		func() (err error) { k.OAEP, err = envelope.NewRSARecipient(&k.RSAEnc.PublicKey); return },
		func() error {
			for _, f := range []func() (envelope.Identity, error){
				func() (envelope.Identity, error) { return envelope.NewHPKEIdentity(k.X) },
				func() (envelope.Identity, error) { return envelope.NewHPKEIdentity(k.XWing) },
				func() (envelope.Identity, error) { return envelope.NewRSAIdentity(k.RSAEnc) },
			} {
				id, err := f()
				if err != nil {
					return err
				}
				k.Identities = append(k.Identities, id)
			}
			return nil
		},
	}
	for _, step := range steps {
		if err = step(); err != nil {
			return nil, err
		}
	}
	return k, nil
}

func random(n int) []byte {
	b := make([]byte, n)
	rand.Read(b)
	return b
}

// Suite is one protection set: how a sender with keys from seals to a
// receiver with keys to.
type Suite struct {
	Name      string
	Symmetric bool // no public-key operation
	Require   envelope.Protection
	Apply     func(from, to *Keys, p *envelope.Params)
}

// SuitesByName returns Suites by name.
func SuitesByName() map[string]Suite {
	m := map[string]Suite{}
	for _, s := range Suites() {
		m[s.Name] = s
	}
	return m
}

// Suites returns every suite. "ps256+rsa-oaep" is the design of the seed
// system this project replaces (RSA-2048 signatures and an RSA-OAEP-wrapped
// AES key per message) with RSA-PSS for its PKCS#1 v1.5 signatures, which
// envelope 1.0 does not carry.
func Suites() []Suite {
	return []Suite{
		{"hmac", true, envelope.HMAC, func(f, t *Keys, p *envelope.Params) { p.HMAC = f.HMAC }},
		{"hmac+hotp", true, envelope.HMAC | envelope.HOTPCode, func(f, t *Keys, p *envelope.Params) { p.HMAC, p.HOTP = f.HMAC, f.HOTP }},
		{"psk", true, envelope.Encryption, func(f, t *Keys, p *envelope.Params) { p.PSK = f.PSK }},
		{"hmac+psk", true, envelope.HMAC | envelope.Encryption, func(f, t *Keys, p *envelope.Params) { p.HMAC, p.PSK = f.HMAC, f.PSK }},
		{"ed25519", false, envelope.Signature, func(f, t *Keys, p *envelope.Params) { p.Signer = f.Ed }},
		{"es256", false, envelope.Signature, func(f, t *Keys, p *envelope.Params) { p.Signer = f.ECDSA }},
		{"ps256", false, envelope.Signature, func(f, t *Keys, p *envelope.Params) { p.Signer = f.PS }},
		{"ed25519+hpke-x25519", false, envelope.Signature | envelope.Encryption, func(f, t *Keys, p *envelope.Params) {
			p.Signer, p.Recipients = f.Ed, []envelope.Recipient{t.X25519}
		}},
		{"ed25519+hpke-xwing", false, envelope.Signature | envelope.Encryption, func(f, t *Keys, p *envelope.Params) {
			p.Signer, p.Recipients = f.Ed, []envelope.Recipient{t.XW}
		}},
		{"ps256+rsa-oaep", false, envelope.Signature | envelope.Encryption, func(f, t *Keys, p *envelope.Params) {
			p.Signer, p.Recipients = f.PS, []envelope.Recipient{t.OAEP}
		}},
	}
}

// Peer returns how receiver `to` sees sender `from` under suite s.
func (s Suite) Peer(id string, from *Keys) *envelope.Peer {
	return &envelope.Peer{
		ID:        id,
		Policy:    envelope.Policy{Require: s.Require},
		HMACKeys:  []*envelope.HMACKey{from.HMAC},
		HOTPKeys:  []*envelope.HOTPKey{from.HOTP},
		AEADKeys:  []*envelope.AEADKey{from.PSK},
		Verifiers: from.Verifiers,
	}
}

// Primitives returns the bare work of suite s for one request whose
// signing input is as long as si and whose payload is payload: MAC and
// signature over si, AES-GCM over payload with aad, one key wrap (seal) or
// unwrap (open). No envelope around it.
//
// Every request is hashed once: SPEC.md §4.1 and §8 make both sides compute
// D = SHA-256(si), which the reply is bound to. A MAC or signature over si
// includes that pass; a suite with neither (psk) gets the SHA-256 of si as
// a primitive of its own, so that every suite's primitives hash the
// request once.
//
// open verifies a different signature each call, in turn over Variants
// inputs as long as si: verification runs in variable time, and the same
// signature verified over and over trains the CPU's branch predictors to
// it, which no stream of real messages does (on this project's benchmark
// machine, crypto/ed25519 verified one signature over and over 5–10%
// faster than 64 in turn). Every signature open verifies is valid. An
// error means the keys cannot run the suite.
func Primitives(s Suite, from, to *Keys, si, payload, aad []byte) (seal, open func(), err error) {
	p := &envelope.Params{}
	s.Apply(from, to, p)
	var seals, opens []func()
	if p.HMAC == nil && p.Signer == nil {
		digest := func() { sha256.Sum256(si) }
		seals, opens = append(seals, digest), append(opens, digest)
	}
	if p.HMAC != nil {
		// The key is set up once and its HMAC reused, as a careful user
		// does: hmac.New per message would add the key schedule and five
		// allocations to the primitive's time. The pool makes the funcs
		// safe to call from many goroutines.
		macs := sync.Pool{New: func() any { return &macState{h: hmac.New(sha256.New, from.HMACSecret)} }}
		tag := func(check []byte) bool {
			m := macs.Get().(*macState)
			m.h.Reset()
			m.h.Write(si)
			ok := hmac.Equal(m.h.Sum(m.sum[:0]), check)
			macs.Put(m)
			return ok
		}
		m := hmac.New(sha256.New, from.HMACSecret)
		m.Write(si)
		t := m.Sum(nil)
		seals = append(seals, func() { tag(nil) })
		opens = append(opens, func() { tag(t) })
	}
	if p.HOTP != nil {
		k, err := hotp.NewKey(from.HOTPSecret, 6)
		if err != nil {
			return nil, nil, err
		}
		seals = append(seals, func() { k.Code(12345) })
		opens = append(opens, func() { k.Verify("123456", 12345) })
	}
	if p.Signer != nil {
		var v envelope.Verifier
		for _, c := range from.Verifiers {
			if c.KeyID() == p.Signer.KeyID() && c.Algorithm() == p.Signer.Algorithm() {
				v = c
			}
		}
		if v == nil {
			return nil, nil, fmt.Errorf("%s: no verifier for the signer's key", s.Name)
		}
		inputs, sigs := make([][]byte, Variants), make([][]byte, Variants)
		for i := range Variants {
			inputs[i] = bytes.Clone(si)
			// Each input differs from si in its last bytes (or, for a
			// shorter si, its only ones); the length stays.
			tail := inputs[i][max(0, len(si)-8):]
			var n [8]byte
			binary.BigEndian.PutUint64(n[:], uint64(i))
			subtle.XORBytes(tail, tail, n[8-len(tail):])
			if sigs[i], err = p.Signer.Sign(inputs[i]); err != nil {
				return nil, nil, err
			}
		}
		next := turns(Variants)
		seals = append(seals, func() { p.Signer.Sign(si) })
		opens = append(opens, func() { i := next(); v.Verify(inputs[i], sigs[i]) })
	}
	if p.PSK != nil || len(p.Recipients) > 0 {
		k, err := aesgcm.NewKey(from.PSKSecret)
		if err != nil {
			return nil, nil, err
		}
		ct, err := k.Seal(nil, payload, aad)
		if err != nil {
			return nil, nil, err
		}
		seals = append(seals, func() { k.Seal(nil, payload, aad) })
		opens = append(opens, func() { k.Open(nil, ct, aad) })
	}
	if len(p.Recipients) > 0 {
		r := p.Recipients[0]
		cek := make([]byte, 32)
		wk, err := r.Wrap(cek)
		if err != nil {
			return nil, nil, err
		}
		var id envelope.Identity
		for _, c := range to.Identities {
			if c.KeyID() == r.KeyID() {
				id = c
			}
		}
		if id == nil {
			return nil, nil, fmt.Errorf("%s: no identity for the recipient's key", s.Name)
		}
		seals = append(seals, func() { r.Wrap(cek) })
		opens = append(opens, func() { id.Unwrap(wk) })
	}
	return func() {
			for _, f := range seals {
				f()
			}
		}, func() {
			for _, f := range opens {
				f()
			}
		}, nil
}

// Variants is how many different signatures Primitives' open, and
// different envelopes a Case's Open, take in turns.
const Variants = 64

// turns returns a function that counts 0, 1, ..., n-1, 0, ... and is safe
// to call from many goroutines.
func turns(n int) func() int {
	var next atomic.Uint64
	return func() int { return int((next.Add(1) - 1) % uint64(n)) }
}

// macState is a keyed HMAC and room for its output.
type macState struct {
	h   hash.Hash
	sum [sha256.Size]byte
}

// Case is one request of a suite, sealed and opened once to check it,
// ready to be sealed and opened again and again next to the suite's bare
// primitives (see Primitives) for the same message. Open opens Variants
// envelopes of that request (each sealed on its own, so each with its own
// counter, nonce, MAC and signature) in turns, for the reason Primitives
// gives.
type Case struct {
	Seal, Open         func()
	PrimSeal, PrimOpen func()
	// EnvelopeSize is the sealed request's length in bytes.
	EnvelopeSize int
}

// NewCase prepares a request of suite s from keys from to keys to with the
// given payload. Open admits every counter (AdmitAll), so the same envelope
// opens each time.
func NewCase(s Suite, from, to *Keys, payload []byte) (*Case, error) {
	sealer := &envelope.Sealer{ID: "client", Counter: envelope.NewClockCounter()}
	p := &envelope.Params{Kind: envelope.Request, To: []string{"gateway"}, Topic: "get-card", ReplyTo: "mqttsec/client/reply"}
	s.Apply(from, to, p)
	keys, err := envelope.NewKeys(to.Identities, s.Peer("client", from))
	if err != nil {
		return nil, fmt.Errorf("%s: keys: %w", s.Name, err)
	}
	opener := &envelope.Opener{ID: "gateway", Keys: keys, Replay: AdmitAll{}}
	expect := &envelope.Expect{Kinds: envelope.Request}
	ctx := context.Background()
	envelopes := make([][]byte, Variants)
	for i := range envelopes {
		sealed, err := sealer.Seal(p, payload)
		if err != nil {
			return nil, fmt.Errorf("%s: seal: %w", s.Name, err)
		}
		if _, err := opener.Open(ctx, sealed.Bytes, expect); err != nil {
			return nil, fmt.Errorf("%s: open: %w", s.Name, err)
		}
		envelopes[i] = sealed.Bytes
	}
	si, aad, err := frameParts(envelopes[0])
	if err != nil {
		return nil, fmt.Errorf("%s: %w", s.Name, err)
	}
	next := turns(Variants)
	c := &Case{
		Seal:         func() { sealer.Seal(p, payload) },
		Open:         func() { opener.Open(ctx, envelopes[next()], expect) },
		EnvelopeSize: len(envelopes[0]),
	}
	if c.PrimSeal, c.PrimOpen, err = Primitives(s, from, to, si, payload, aad); err != nil {
		return nil, fmt.Errorf("%s: primitives: %w", s.Name, err)
	}
	return c, nil
}

// signingInputPrefix begins the signing input (SPEC.md §4.1).
const signingInputPrefix = "mqttsec.v1."

// frameParts returns the signing input of an envelope, which its digest
// hashes, and the associated data its AEAD authenticates (SPEC.md §4.1,
// §4.6), read from its frame (§2):
//
//	0x01 || u32 len(H) || H || u32 len(P) || P || u32 len(M) || M || u32 len(S) || S
//
// The signing input is the prefix and the envelope up to the end of P; the
// associated data the envelope up to the end of H.
func frameParts(env []byte) (si, aad []byte, err error) {
	if _, err := envelope.Peek(env, len(env)); err != nil {
		return nil, nil, err
	}
	headerEnd := 5 + int(binary.BigEndian.Uint32(env[1:5]))
	payloadEnd := headerEnd + 4 + int(binary.BigEndian.Uint32(env[headerEnd:]))
	return append([]byte(signingInputPrefix), env[:payloadEnd]...), env[:headerEnd], nil
}

// AdmitAll is a ReplayStore that admits every counter, so that one sealed
// envelope can be opened over and over in a benchmark; the stores have rows
// of their own.
type AdmitAll struct{}

// Check implements envelope.ReplayStore.
func (AdmitAll) Check(context.Context, envelope.Seen) error { return nil }

// Admit implements envelope.ReplayStore.
func (AdmitAll) Admit(context.Context, envelope.Seen) error { return nil }
