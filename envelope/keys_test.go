package envelope

import (
	"bytes"
	"crypto/ecdh"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/hmac"
	"crypto/hpke"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"errors"
	"fmt"
	"testing"
)

func TestKeyIDString(t *testing.T) {
	var seq KeyID
	for i := range seq {
		seq[i] = byte(i)
	}
	for _, tt := range []struct {
		kid  KeyID
		want string
	}{
		// Base64url without padding of the twelve bytes (RFC 4648 §5).
		{seq, "AAECAwQFBgcICQoL"},
		{KeyID{}, "AAAAAAAAAAAAAAAA"},
		{KeyID(bytes.Repeat([]byte{0xfb, 0xef, 0xbe}, 4)), "----------------"},
		{KeyID(bytes.Repeat([]byte{0xff}, 12)), "________________"},
	} {
		if got := tt.kid.String(); got != tt.want {
			t.Errorf("KeyID(%x).String() = %q, want %q", tt.kid[:], got, tt.want)
		}
	}
}

// TestKeyIDDerivation derives each key id the way SPEC.md §6 gives it,
// independently of the package: secret keys by HMAC-SHA-256(secret,
// "mqttsec kid v1" || 0x00 || alg), public keys by SHA-256("mqttsec kid v1"
// || 0x00 || alg || 0x00 || pub), first 12 bytes.
func TestKeyIDDerivation(t *testing.T) {
	w := newWorld(t)
	secretID := func(alg string, secret []byte) KeyID {
		m := hmac.New(sha256.New, secret)
		m.Write([]byte("mqttsec kid v1\x00" + alg))
		return KeyID(m.Sum(nil)[:12])
	}
	publicID := func(alg string, pub []byte) KeyID {
		d := sha256.Sum256(append([]byte("mqttsec kid v1\x00"+alg+"\x00"), pub...))
		return KeyID(d[:12])
	}
	pkix := func(pub any) []byte { return must[[]byte](t)(x509.MarshalPKIXPublicKey(pub)) }
	es := must[*ecdsa.PrivateKey](t)(ecdsa.ParseRawPrivateKey(elliptic.P256(), w.sec.ES256Scalar))
	esPub := must[[]byte](t)(es.PublicKey.Bytes())
	xPriv := must[hpke.PrivateKey](t)(hpke.DHKEM(ecdh.X25519()).NewPrivateKey(w.sec.X25519))
	xwPriv := must[hpke.PrivateKey](t)(hpke.MLKEM768X25519().NewPrivateKey(w.sec.XWingSeed))
	for _, tt := range []struct {
		name string
		got  KeyID
		want KeyID
	}{
		{"HS256", w.hmac.KeyID(), secretID("HS256", w.sec.HMAC)},
		{"HOTP", w.hotp.KeyID(), secretID("HOTP", w.sec.HOTP)},
		{"A256GCM", w.psk.KeyID(), secretID("A256GCM", w.sec.PSK)},
		{"Ed25519", w.ed.KeyID(), publicID("Ed25519", ed25519.NewKeyFromSeed(w.sec.Ed25519Seed).Public().(ed25519.PublicKey))},
		{"ES256", w.es.KeyID(), publicID("ES256", esPub)},
		{"PS256", w.ps.KeyID(), publicID("PS256", pkix(&w.sec.RSASign.PublicKey))},
		{"HPKE-X25519", w.x25519.KeyID(), publicID("HPKE-X25519", xPriv.PublicKey().Bytes())},
		{"HPKE-MLKEM768X25519", w.xwing.KeyID(), publicID("HPKE-MLKEM768X25519", xwPriv.PublicKey().Bytes())},
		{"RSA-OAEP-256", w.rsaoaep.KeyID(), publicID("RSA-OAEP-256", pkix(&w.sec.RSAOAEP.PublicKey))},
		{"SecretKeyID", SecretKeyID(HS256, w.sec.HMAC), secretID("HS256", w.sec.HMAC)},
		{"PublicKeyID", PublicKeyID(ES256, esPub), publicID("ES256", esPub)},
	} {
		if tt.got != tt.want {
			t.Errorf("%s: key id %s, want %s", tt.name, tt.got, tt.want)
		}
	}
}

func TestKeyIDs(t *testing.T) {
	w := newWorld(t)
	// Ids differ by algorithm and key.
	ids := map[KeyID]string{}
	for name, id := range map[string]KeyID{
		"hmac": w.hmac.KeyID(), "hotp": w.hotp.KeyID(), "psk": w.psk.KeyID(),
		"ed25519": w.ed.KeyID(), "es256": w.es.KeyID(), "ps256": w.ps.KeyID(),
		"x25519": w.x25519.KeyID(), "xwing": w.xwing.KeyID(), "rsa-oaep": w.rsaoaep.KeyID(),
	} {
		if prev, dup := ids[id]; dup {
			t.Errorf("%s and %s share key id %s", name, prev, id)
		}
		ids[id] = name
	}
	// The same secret under another algorithm, or the same algorithm under
	// another secret, is another id.
	if SecretKeyID(HS256, w.sec.PSK) == w.psk.KeyID() || SecretKeyID(HS256, w.sec.OtherHMAC) == w.hmac.KeyID() {
		t.Error("a secret key id does not depend on both algorithm and secret")
	}
	// Same secret, same id; a sender's and a receiver's view agree.
	if must[*HMACKey](t)(NewHMACKey(w.sec.HMAC)).KeyID() != w.hmac.KeyID() {
		t.Error("HMAC key id is not deterministic")
	}
	for i, id := range w.ids {
		if r := []Recipient{w.x25519, w.xwing, w.rsaoaep}[i]; id.KeyID() != r.KeyID() || id.Algorithm() != r.Algorithm() {
			t.Errorf("identity %d and its recipient disagree on the key id or algorithm", i)
		}
	}
	for i, v := range w.peer.Verifiers {
		if s := []Signer{w.ed, w.es, w.ps}[i]; v.KeyID() != s.KeyID() || v.Algorithm() != s.Algorithm() {
			t.Errorf("verifier %d and its signer disagree on the key id or algorithm", i)
		}
	}
	// Keys print as their id.
	for _, tt := range []struct {
		got, want string
	}{
		{w.hmac.String(), "HMACKey(" + w.hmac.KeyID().String() + ")"},
		{w.hotp.String(), "HOTPKey(" + w.hotp.KeyID().String() + ")"},
		{w.psk.String(), "AEADKey(" + w.psk.KeyID().String() + ")"},
		{fmt.Sprintf("%#v", w.hmac), "HMACKey(" + w.hmac.KeyID().String() + ")"},
	} {
		if tt.got != tt.want {
			t.Errorf("key prints as %q, want %q", tt.got, tt.want)
		}
	}
}

func TestKeyConstructors(t *testing.T) {
	p384, err := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	check := func(name string, err, want error) {
		t.Helper()
		if !errors.Is(err, want) || (want == nil) != (err == nil) {
			t.Errorf("%s: %v, want %v", name, err, want)
		}
	}
	for _, n := range []int{0, 31, 65} {
		_, err := NewHMACKey(make([]byte, n))
		check(fmt.Sprintf("HMAC key of %d bytes", n), err, ErrKeySize)
	}
	for _, n := range []int{32, 64} {
		_, err := NewHMACKey(make([]byte, n))
		check("HMAC key of 32 or 64 bytes", err, nil)
	}
	for _, n := range []int{16, 31, 33} {
		_, err := NewAEADKey(make([]byte, n))
		check("AEAD key not of 32 bytes", err, ErrKeySize)
	}
	_, err = NewHOTPKey(make([]byte, 20), 7)
	if err == nil {
		t.Error("a HOTP key of 7 digits")
	}
	_, err = NewHOTPKey(make([]byte, 8), 6)
	if err == nil {
		t.Error("a HOTP secret of 8 bytes")
	}
	_, err = NewEd25519Signer(make([]byte, 31))
	check("Ed25519 private key of 31 bytes", err, ErrKeySize)
	_, err = NewEd25519Verifier(make([]byte, 31))
	check("Ed25519 public key of 31 bytes", err, ErrKeySize)
	_, err = NewECDSASigner(p384)
	check("ECDSA P-384 signer", err, ErrKeyType)
	_, err = NewECDSASigner(nil)
	check("nil ECDSA signer", err, ErrKeyType)
	_, err = NewECDSAVerifier(&p384.PublicKey)
	check("ECDSA P-384 verifier", err, ErrKeyType)
	_, err = NewRSASigner(nil)
	check("nil RSA signer", err, ErrKeyType)

	// Secrets are copied: the caller may wipe its own.
	w := newWorld(t)
	secret := bytes.Clone(w.sec.HMAC)
	k := must[*HMACKey](t)(NewHMACKey(secret))
	clear(secret)
	w.peer.HMACKeys = []*HMACKey{k}
	s := sealRequestWith(t, w, func(_ *world, p *Params) { p.HMAC = k }, nil)
	if _, err := w.opener().Open(ctx, s.Bytes, expectRequest); err != nil {
		t.Fatalf("a key whose caller wiped the secret: %v", err)
	}
	if _, err := newWorld(t).opener().Open(ctx, s.Bytes, expectRequest); err != nil {
		t.Fatalf("the wiped secret's key is not the original: %v", err)
	}

	// NewKeys refuses peers it cannot index.
	for _, tt := range []struct {
		name  string
		peers []*Peer
	}{
		{"nil peer", []*Peer{nil}},
		{"invalid peer id", []*Peer{{ID: "a/b"}}},
		{"empty peer id", []*Peer{{ID: ""}}},
		{"duplicate peer id", []*Peer{{ID: "a"}, {ID: "a"}}},
	} {
		_, err := NewKeys(nil, tt.peers...)
		if !errors.Is(err, ErrInvalidConfig) || Class(err) != nil {
			t.Errorf("NewKeys(%s) = %v, want ErrInvalidConfig (not a class)", tt.name, err)
		}
	}
}
