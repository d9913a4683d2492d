package envelope

import (
	"bytes"
	"crypto"
	"crypto/aes"
	"crypto/cipher"
	"crypto/ecdh"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/hmac"
	"crypto/hpke"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"math/big"
)

// An independent reading of the format (SPEC.md §2 to §4, as decided for
// Envelope 1.0), written from the text and not from this package's code:
// the tests hold Seal's output and Open's acceptances to it.

// indepHeader is a header as the format's table lists its fields.
type indepHeader struct {
	kind, prot              byte
	from                    string
	to                      []string
	topic, replyTo          string
	corr, re                []byte
	ctr, iat, exp           uint64
	macKid, hotpKid, sigKid []byte
	hotpCode                string
	sigAlg                  byte
	encCount                int // -1 without encryption
	pskKid                  []byte
	rcpt                    []indepRecipient
}

type indepRecipient struct {
	alg     byte
	kid, wk []byte
}

// indepCursor reads big-endian fields front to back; ok turns false at the
// first field that runs past the end.
type indepCursor struct {
	b  []byte
	ok bool
}

func (c *indepCursor) take(n int) []byte {
	if !c.ok || n < 0 || n > len(c.b) {
		c.ok = false
		return nil
	}
	v := c.b[:n]
	c.b = c.b[n:]
	return v
}

func (c *indepCursor) u8() int {
	v := c.take(1)
	if v == nil {
		return 0
	}
	return int(v[0])
}

func (c *indepCursor) u16() int {
	v := c.take(2)
	if v == nil {
		return 0
	}
	return int(binary.BigEndian.Uint16(v))
}

func (c *indepCursor) u64() uint64 {
	v := c.take(8)
	if v == nil {
		return 0
	}
	return binary.BigEndian.Uint64(v)
}

func (c *indepCursor) str8() []byte  { return c.take(c.u8()) }
func (c *indepCursor) str16() []byte { return c.take(c.u16()) }

// indepParseHeader reads the fields of the header table; it checks none of
// the rules, only that the fields are there and nothing follows.
func indepParseHeader(b []byte) (*indepHeader, bool) {
	c := &indepCursor{b: b, ok: true}
	h := &indepHeader{encCount: -1}
	h.kind, h.prot = byte(c.u8()), byte(c.u8())
	h.from = string(c.str8())
	for range c.u8() {
		h.to = append(h.to, string(c.str8()))
	}
	h.topic, h.replyTo = string(c.str16()), string(c.str16())
	h.corr, h.re = c.str8(), c.str8()
	h.ctr, h.iat, h.exp = c.u64(), c.u64(), c.u64()
	if h.prot&0x02 != 0 {
		h.macKid = c.take(12)
	}
	if h.prot&0x04 != 0 {
		h.hotpKid = c.take(12)
		h.hotpCode = string(c.str8())
	}
	if h.prot&0x08 != 0 {
		h.sigAlg = byte(c.u8())
		h.sigKid = c.take(12)
	}
	if h.prot&0x01 != 0 {
		h.encCount = c.u8()
		if h.encCount == 0 {
			h.pskKid = c.take(12)
		}
		for range h.encCount {
			if !c.ok {
				break
			}
			r := indepRecipient{alg: byte(c.u8()), kid: c.take(12)}
			r.wk = c.str16()
			h.rcpt = append(h.rcpt, r)
		}
	}
	return h, c.ok && len(c.b) == 0
}

// indepFrame cuts an envelope into its four members; ok is false unless it
// is exactly 0x01 and four members.
func indepFrame(data []byte) (h, p, m, s []byte, ok bool) {
	if len(data) < 1 || data[0] != 0x01 {
		return nil, nil, nil, nil, false
	}
	c := &indepCursor{b: data[1:], ok: true}
	member := func() []byte {
		n := c.take(4)
		if n == nil {
			return nil
		}
		return c.take(int(binary.BigEndian.Uint32(n)))
	}
	h, p, m, s = member(), member(), member(), member()
	return h, p, m, s, c.ok && len(c.b) == 0
}

// indepResult is what the independent reading finds in an envelope with
// the world's keys.
type indepResult struct {
	header  *indepHeader
	digest  [32]byte
	macOK   bool   // M is the HMAC of A under the world's HMAC key
	sigOK   bool   // S is the client's signature of A
	pskOK   bool   // P decrypts under the world's pre-shared key
	wrapOK  bool   // P decrypts under a content key wrapped to the gateway
	payload []byte // the plaintext, when the payload is clear or decrypts
}

// authentic reports whether the result shows a sender authentication that
// only the client (or, for the shared keys, the gateway) can make.
func (r *indepResult) authentic() bool { return r.macOK || r.sigOK || r.pskOK }

var errIndep = errors.New("not an envelope by the independent reading")

// indepOpen reads data with the independent reading and verifies, with the
// keys of the test world, every tag and ciphertext it carries.
func indepOpen(w *world, data []byte) (*indepResult, error) {
	H, P, M, S, ok := indepFrame(data)
	if !ok {
		return nil, errIndep
	}
	h, ok := indepParseHeader(H)
	if !ok {
		return nil, errIndep
	}
	r := &indepResult{header: h}
	si := append([]byte("mqttsec.v1."), data[:1+4+len(H)+4+len(P)]...)
	r.digest = sha256.Sum256(si)
	a := append([]byte("mqttsec.v1.digest."), r.digest[:]...)
	if h.prot&0x02 != 0 {
		m := hmac.New(sha256.New, w.sec.HMAC)
		m.Write(a)
		r.macOK = hmac.Equal(m.Sum(nil), M)
	}
	if h.prot&0x08 != 0 {
		r.sigOK = indepVerify(w, h.sigAlg, a, S)
	}
	aad := data[:1+4+len(H)]
	switch {
	case h.encCount == 0:
		r.payload, r.pskOK = indepDecrypt(w.sec.PSK, P, aad)
	case h.encCount > 0:
		for _, rc := range h.rcpt {
			if ck := indepUnwrap(w, rc); ck != nil {
				r.payload, r.wrapOK = indepDecrypt(ck, P, aad)
				break
			}
		}
	default:
		r.payload = bytes.Clone(P)
	}
	return r, nil
}

// indepVerify checks a signature of a by the client's key of the
// algorithm with code alg: Ed25519 over a, ES256 (r || s) and PS256 (salt
// 32) over SHA-256(a).
func indepVerify(w *world, alg byte, a, sig []byte) bool {
	digest := sha256.Sum256(a)
	switch alg {
	case 1:
		return ed25519.Verify(ed25519.NewKeyFromSeed(w.sec.Ed25519Seed).Public().(ed25519.PublicKey), a, sig)
	case 2:
		key, err := ecdsa.ParseRawPrivateKey(elliptic.P256(), w.sec.ES256Scalar)
		if err != nil || len(sig) != 64 {
			return false
		}
		return ecdsa.Verify(&key.PublicKey, digest[:], new(big.Int).SetBytes(sig[:32]), new(big.Int).SetBytes(sig[32:]))
	case 3:
		return rsa.VerifyPSS(&w.sec.RSASign.PublicKey, crypto.SHA256, digest[:], sig, &rsa.PSSOptions{SaltLength: 32, Hash: crypto.SHA256}) == nil
	}
	return false
}

// indepUnwrap unwraps a content key wrapped to one of the gateway's keys,
// or returns nil.
func indepUnwrap(w *world, rc indepRecipient) []byte {
	const info = "mqttsec v1 content key"
	var ck []byte
	var err error
	switch rc.alg {
	case 1:
		var k hpke.PrivateKey
		if k, err = hpke.DHKEM(ecdh.X25519()).NewPrivateKey(w.sec.X25519); err == nil {
			ck, err = hpke.Open(k, hpke.HKDFSHA256(), hpke.AES256GCM(), []byte(info), rc.wk)
		}
	case 2:
		var k hpke.PrivateKey
		if k, err = hpke.MLKEM768X25519().NewPrivateKey(w.sec.XWingSeed); err == nil {
			ck, err = hpke.Open(k, hpke.HKDFSHA256(), hpke.AES256GCM(), []byte(info), rc.wk)
		}
	case 3:
		ck, err = rsa.DecryptOAEP(sha256.New(), nil, w.sec.RSAOAEP, rc.wk, []byte(info))
	default:
		return nil
	}
	if err != nil || len(ck) != 32 {
		return nil
	}
	return ck
}

// indepDecrypt opens P = nonce(12) || AES-256-GCM ciphertext and tag.
func indepDecrypt(key, p, aad []byte) ([]byte, bool) {
	block, err := aes.NewCipher(key)
	if err != nil || len(p) < 12+16 {
		return nil, false
	}
	gcm, err := cipher.NewGCM(block)
	if err != nil {
		return nil, false
	}
	pt, err := gcm.Open(nil, p[:12], p[12:], aad)
	return pt, err == nil
}
