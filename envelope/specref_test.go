package envelope

// This file imports nothing but the standard library and uses no code of
// the package: it is an independent reading of SPEC.md §4, the checks a
// port to another language makes first, and of the compact header of §14.

import (
	"crypto"
	"crypto/aes"
	"crypto/cipher"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/hmac"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"os"
	"path/filepath"
	"testing"
)

// specKeys are the test-vector keys (testdata/vectors/keys.json) as the
// standard library holds them.
type specKeys struct {
	macs   [][]byte
	psk    []byte
	ed     []ed25519.PublicKey
	es     *ecdsa.PublicKey
	rsa    *rsa.PublicKey
	strict *base64.Encoding
}

func readSpecKeys(t testing.TB) *specKeys {
	t.Helper()
	var raw struct {
		HMAC, OtherHMAC, PSK string
		Ed25519Seed          string `json:"ed25519Seed"`
		OtherEd25519Seed     string `json:"otherEd25519Seed"`
		ES256Private         string `json:"es256Private"`
		RSASignPrivate       string `json:"rsaSignPrivate"`
	}
	data, err := os.ReadFile(filepath.Join("testdata", "vectors", "keys.json"))
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(data, &raw); err != nil {
		t.Fatal(err)
	}
	k := &specKeys{strict: base64.RawURLEncoding.Strict()}
	dec := func(s string) []byte {
		b, err := k.strict.DecodeString(s)
		if err != nil {
			t.Fatalf("keys.json: base64url %q: %v", s, err)
		}
		return b
	}
	k.macs = [][]byte{dec(raw.HMAC), dec(raw.OtherHMAC)}
	k.psk = dec(raw.PSK)
	for _, seed := range []string{raw.Ed25519Seed, raw.OtherEd25519Seed} {
		k.ed = append(k.ed, ed25519.NewKeyFromSeed(dec(seed)).Public().(ed25519.PublicKey))
	}
	es, err := ecdsa.ParseRawPrivateKey(elliptic.P256(), dec(raw.ES256Private))
	if err != nil {
		t.Fatal(err)
	}
	k.es = &es.PublicKey
	block, _ := pem.Decode([]byte(raw.RSASignPrivate))
	if block == nil {
		t.Fatal("keys.json: rsaSignPrivate is not PEM")
	}
	parsed, err := x509.ParsePKCS8PrivateKey(block.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	k.rsa = &parsed.(*rsa.PrivateKey).PublicKey
	return k
}

// check recomputes the signing input, the digest D and the authenticated
// block A of an envelope (SPEC.md §4.1) and verifies each MAC, signature
// and pre-shared-key ciphertext it carries (§4.6) with the vector keys. It
// returns D and the algorithms it verified, or the first that failed.
func (k *specKeys) check(envelope []byte) (d [32]byte, verified []string, err error) {
	m, err := k.members(envelope)
	if err != nil {
		return d, nil, err
	}
	var h struct {
		V   int
		Sig *struct{ Alg string }
		Enc *struct{ Kid string }
	}
	header := m.header
	if m.version == 3 {
		// The compact header read into the JSON value it stands for.
		value, err := readCompactSpec(m.header)
		if err != nil {
			return d, nil, err
		}
		if header, err = json.Marshal(value); err != nil {
			return d, nil, err
		}
	}
	if err := json.Unmarshal(header, &h); err != nil {
		return d, nil, err
	}
	if h.V != m.version {
		return d, nil, fmt.Errorf("header version %d in an envelope of version %d", h.V, m.version)
	}
	prefix := fmt.Sprintf("mqttsec.v%d.", m.version)
	d = sha256.Sum256(append([]byte(prefix), m.signed...))
	a := append([]byte(prefix+"digest."), d[:]...)
	if m.mac != nil {
		tag := m.mac
		ok := false
		for _, key := range k.macs {
			m := hmac.New(sha256.New, key)
			m.Write(a)
			ok = ok || hmac.Equal(m.Sum(nil), tag)
		}
		if !ok {
			return d, nil, errors.New("mac is not HMAC-SHA-256 of the authenticated block")
		}
		verified = append(verified, "HS256")
	}
	if m.sig != nil {
		if h.Sig == nil {
			return d, nil, errors.New("sig member without header sig")
		}
		sig := m.sig
		ha := sha256.Sum256(a)
		ok := false
		switch h.Sig.Alg {
		case "Ed25519":
			for _, pub := range k.ed {
				ok = ok || ed25519.Verify(pub, a, sig)
			}
		case "ES256":
			ok = len(sig) == 64 && ecdsa.Verify(k.es, ha[:],
				new(big.Int).SetBytes(sig[:32]), new(big.Int).SetBytes(sig[32:]))
		case "PS256":
			ok = rsa.VerifyPSS(k.rsa, crypto.SHA256, ha[:], sig, &rsa.PSSOptions{SaltLength: 32}) == nil
		case "RS256":
			ok = rsa.VerifyPKCS1v15(k.rsa, crypto.SHA256, ha[:], sig) == nil
		default:
			return d, nil, fmt.Errorf("signature algorithm %q", h.Sig.Alg)
		}
		if !ok {
			return d, nil, fmt.Errorf("sig is not a %s signature of the authenticated block", h.Sig.Alg)
		}
		verified = append(verified, h.Sig.Alg)
	}
	if h.Enc != nil && h.Enc.Kid != "" {
		p := m.payload
		block, err := aes.NewCipher(k.psk)
		if err != nil {
			return d, nil, err
		}
		gcm, err := cipher.NewGCM(block)
		if err != nil {
			return d, nil, err
		}
		if len(p) < 12+16 {
			return d, nil, errors.New("ciphertext shorter than nonce and tag")
		}
		if _, err := gcm.Open(nil, p[:12], p[12:], m.aad); err != nil {
			return d, nil, errors.New("payload does not open with the pre-shared key")
		}
		verified = append(verified, "A256GCM")
	}
	return d, verified, nil
}

// specMembers is an envelope taken apart as SPEC.md §2 and §13 describe.
type specMembers struct {
	version                   int
	header, payload, mac, sig []byte // decoded; mac and sig nil when absent
	signed                    []byte // what follows the prefix in the signing input
	aad                       []byte // the header as sent: the AEAD's associated data
}

// members reads a version-1 envelope with encoding/json and strict
// base64url, or a version-2 or 3 one with encoding/binary.
func (k *specKeys) members(envelope []byte) (*specMembers, error) {
	if len(envelope) > 0 && (envelope[0] == 2 || envelope[0] == 3) {
		m := &specMembers{version: int(envelope[0])}
		rest := envelope[1:]
		var fields [4][]byte
		for i := range fields {
			if len(rest) < 4 || uint64(binary.BigEndian.Uint32(rest)) > uint64(len(rest)-4) {
				return nil, errors.New("truncated binary envelope")
			}
			n := binary.BigEndian.Uint32(rest)
			fields[i], rest = rest[4:4+n], rest[4+n:]
			if i == 1 {
				// The signing input is the envelope through the payload.
				m.signed = envelope[:len(envelope)-len(rest)]
			}
		}
		if len(rest) != 0 {
			return nil, errors.New("bytes after the sig member")
		}
		m.header, m.payload, m.aad = fields[0], fields[1], fields[0]
		if len(fields[2]) > 0 {
			m.mac = fields[2]
		}
		if len(fields[3]) > 0 {
			m.sig = fields[3]
		}
		return m, nil
	}
	var outer struct {
		H, P, MAC, Sig string
	}
	if err := json.Unmarshal(envelope, &outer); err != nil {
		return nil, err
	}
	m := &specMembers{version: 1, signed: []byte(outer.H + "." + outer.P), aad: []byte(outer.H)}
	var err error
	if m.header, err = k.strict.DecodeString(outer.H); err != nil {
		return nil, err
	}
	if m.payload, err = k.strict.DecodeString(outer.P); err != nil {
		return nil, err
	}
	if outer.MAC != "" {
		if m.mac, err = k.strict.DecodeString(outer.MAC); err != nil {
			return nil, err
		}
	}
	if outer.Sig != "" {
		if m.sig, err = k.strict.DecodeString(outer.Sig); err != nil {
			return nil, err
		}
	}
	return m, nil
}

// readCompactSpec reads a compact header (SPEC.md §14.2) into the JSON
// value of §3.1 it carries, as encoding/json would decode that JSON: the
// two must be equal. It checks the form only, not the rules of §3.2.
func readCompactSpec(b []byte) (map[string]any, error) {
	truncated := errors.New("compact header: truncated")
	take := func(n int) ([]byte, error) {
		if len(b) < n {
			return nil, truncated
		}
		v := b[:n]
		b = b[n:]
		return v, nil
	}
	u8 := func() (int, error) {
		v, err := take(1)
		if err != nil {
			return 0, err
		}
		return int(v[0]), nil
	}
	str8 := func() ([]byte, error) {
		n, err := u8()
		if err != nil {
			return nil, err
		}
		return take(n)
	}
	str16 := func() ([]byte, error) {
		n, err := take(2)
		if err != nil {
			return nil, err
		}
		return take(int(binary.BigEndian.Uint16(n)))
	}
	u64 := func() (uint64, error) {
		v, err := take(8)
		if err != nil {
			return 0, err
		}
		return binary.BigEndian.Uint64(v), nil
	}
	b64 := base64.RawURLEncoding.EncodeToString
	algs := map[int]string{1: "HS256", 2: "Ed25519", 3: "ES256", 4: "PS256", 5: "RS256",
		6: "A256GCM", 7: "HPKE-X25519", 8: "HPKE-MLKEM768X25519", 9: "RSA-OAEP-256"}
	alg := func() (string, error) {
		c, err := u8()
		if err != nil {
			return "", err
		}
		if algs[c] == "" {
			return "", fmt.Errorf("compact header: algorithm code %d", c)
		}
		return algs[c], nil
	}
	kid := func() (string, error) {
		v, err := take(12)
		return b64(v), err
	}
	var errs []error
	must := func(v any, err error) any {
		errs = append(errs, err)
		return v
	}
	h := map[string]any{}
	v, _ := u8()
	h["v"] = float64(v)
	kind, _ := u8()
	h["kind"] = map[int]string{1: "req", 2: "rep", 4: "evt", 8: "err"}[kind]
	prot, err := u8()
	if err != nil || prot&^0x0F != 0 || h["kind"] == "" {
		return nil, errors.New("compact header: bad version, kind or protection bits")
	}
	h["from"] = string(must(str8()).([]byte))
	if n := must(u8()).(int); n > 0 {
		var to []any
		for range n {
			to = append(to, string(must(str8()).([]byte)))
		}
		h["to"] = to
	}
	h["topic"] = string(must(str16()).([]byte))
	if r := must(str16()).([]byte); len(r) > 0 {
		h["replyTo"] = string(r)
	}
	if c := must(str8()).([]byte); len(c) > 0 {
		h["corr"] = b64(c)
	}
	if r := must(str8()).([]byte); len(r) > 0 {
		h["re"] = b64(r)
	}
	h["ctr"] = fmt.Sprint(must(u64()).(uint64))
	h["iat"] = float64(must(u64()).(uint64))
	h["exp"] = float64(must(u64()).(uint64))
	var names []any
	for _, p := range []struct {
		bit  int
		name string
	}{{1, "enc"}, {2, "hmac"}, {4, "hotp"}, {8, "sig"}} {
		if prot&p.bit != 0 {
			names = append(names, p.name)
		}
	}
	h["prot"] = names
	if prot&2 != 0 {
		h["mac"] = map[string]any{"alg": must(alg()), "kid": must(kid())}
	}
	if prot&4 != 0 {
		h["hotp"] = map[string]any{"kid": must(kid()), "code": string(must(str8()).([]byte))}
	}
	if prot&8 != 0 {
		h["sig"] = map[string]any{"alg": must(alg()), "kid": must(kid())}
	}
	if prot&1 != 0 {
		enc := map[string]any{"alg": must(alg())}
		if n := must(u8()).(int); n == 0 {
			enc["kid"] = must(kid())
		} else {
			var rcpt []any
			for range n {
				rcpt = append(rcpt, map[string]any{"alg": must(alg()), "kid": must(kid()), "wk": b64(must(str16()).([]byte))})
			}
			enc["rcpt"] = rcpt
		}
		h["enc"] = enc
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	if len(b) != 0 {
		return nil, errors.New("compact header: bytes after the last field")
	}
	return h, nil
}
