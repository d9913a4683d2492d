package envelope

import (
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"math/big"

	"golang.org/x/crypto/cryptobyte"
	"golang.org/x/crypto/cryptobyte/asn1"

	"github.com/mqttsec/mqttsec/rsasign"
)

// A Signer signs envelopes. Implementations other than this package's may
// hold their key elsewhere (an HSM, a secure element) but must produce the
// exact signature format SPEC.md gives for their Algorithm.
type Signer interface {
	Algorithm() Algorithm
	KeyID() KeyID
	Sign(msg []byte) ([]byte, error)
}

// signatureSize is the signature length of s when s tells it, else 0; Seal
// sizes its output buffer with it.
func signatureSize(s Signer) int {
	if sized, ok := s.(interface{ signatureSize() int }); ok {
		return sized.signatureSize()
	}
	return 0
}

// A Verifier checks envelope signatures by one peer key.
type Verifier interface {
	Algorithm() Algorithm
	KeyID() KeyID
	// Verify returns nil only if sig is a valid signature of msg.
	Verify(msg, sig []byte) error
}

var (
	_ Signer   = (*ed25519Signer)(nil)
	_ Verifier = (*ed25519Verifier)(nil)
	_ Signer   = (*ecdsaSigner)(nil)
	_ Verifier = (*ecdsaVerifier)(nil)
	_ Signer   = (*rsaSigner)(nil)
	_ Verifier = (*rsaVerifier)(nil)
)

// --- Ed25519 ---

type ed25519Signer struct {
	id  KeyID
	key ed25519.PrivateKey
}

// NewEd25519Signer returns a Signer for an Ed25519 private key (copied).
func NewEd25519Signer(key ed25519.PrivateKey) (Signer, error) {
	if len(key) != ed25519.PrivateKeySize {
		return nil, ErrKeySize
	}
	k := append(ed25519.PrivateKey(nil), key...)
	return &ed25519Signer{id: PublicKeyID(Ed25519, k.Public().(ed25519.PublicKey)), key: k}, nil
}

func (s *ed25519Signer) Algorithm() Algorithm            { return Ed25519 }
func (s *ed25519Signer) KeyID() KeyID                    { return s.id }
func (s *ed25519Signer) Sign(msg []byte) ([]byte, error) { return ed25519.Sign(s.key, msg), nil }
func (s *ed25519Signer) signatureSize() int              { return ed25519.SignatureSize }
func (s *ed25519Signer) String() string                  { return "Ed25519Signer(" + s.id.String() + ")" }
func (s *ed25519Signer) GoString() string                { return s.String() }

type ed25519Verifier struct {
	id  KeyID
	pub ed25519.PublicKey
}

// NewEd25519Verifier returns a Verifier for an Ed25519 public key (copied).
func NewEd25519Verifier(pub ed25519.PublicKey) (Verifier, error) {
	if len(pub) != ed25519.PublicKeySize {
		return nil, ErrKeySize
	}
	p := append(ed25519.PublicKey(nil), pub...)
	return &ed25519Verifier{id: PublicKeyID(Ed25519, p), pub: p}, nil
}

func (v *ed25519Verifier) Algorithm() Algorithm { return Ed25519 }
func (v *ed25519Verifier) KeyID() KeyID         { return v.id }
func (v *ed25519Verifier) Verify(msg, sig []byte) error {
	if len(sig) != ed25519.SignatureSize || !ed25519.Verify(v.pub, msg, sig) {
		return ErrAuthentication
	}
	return nil
}

// --- ECDSA P-256 ---

type ecdsaSigner struct {
	id  KeyID
	key *ecdsa.PrivateKey
}

func p256PublicBytes(pub *ecdsa.PublicKey) ([]byte, error) {
	if pub == nil || pub.Curve != elliptic.P256() {
		return nil, ErrKeyType
	}
	return pub.Bytes()
}

// NewECDSASigner returns a Signer for an ECDSA P-256 private key (copied:
// later changes to key do not reach the signer). Signatures are SHA-256 and
// encoded as the 64-byte r || s.
func NewECDSASigner(key *ecdsa.PrivateKey) (Signer, error) {
	if key == nil {
		return nil, ErrKeyType
	}
	pub, err := p256PublicBytes(&key.PublicKey)
	if err != nil {
		return nil, err
	}
	raw, err := key.Bytes()
	if err != nil {
		return nil, ErrKeyType
	}
	own, err := ecdsa.ParseRawPrivateKey(elliptic.P256(), raw)
	clear(raw)
	if err != nil {
		return nil, ErrKeyType
	}
	return &ecdsaSigner{id: PublicKeyID(ES256, pub), key: own}, nil
}

func (s *ecdsaSigner) Algorithm() Algorithm { return ES256 }
func (s *ecdsaSigner) KeyID() KeyID         { return s.id }
func (s *ecdsaSigner) String() string       { return "ECDSASigner(" + s.id.String() + ")" }
func (s *ecdsaSigner) GoString() string     { return s.String() }
func (s *ecdsaSigner) signatureSize() int   { return 64 }
func (s *ecdsaSigner) Sign(msg []byte) ([]byte, error) {
	digest := sha256.Sum256(msg)
	der, err := ecdsa.SignASN1(rand.Reader, s.key, digest[:])
	if err != nil {
		return nil, err
	}
	var r, ss big.Int
	in := cryptobyte.String(der)
	var inner cryptobyte.String
	if !in.ReadASN1(&inner, asn1.SEQUENCE) || !inner.ReadASN1Integer(&r) || !inner.ReadASN1Integer(&ss) {
		return nil, ErrKeyType
	}
	out := make([]byte, 64)
	r.FillBytes(out[:32])
	ss.FillBytes(out[32:])
	return out, nil
}

type ecdsaVerifier struct {
	id  KeyID
	pub *ecdsa.PublicKey
}

// NewECDSAVerifier returns a Verifier for an ECDSA P-256 public key.
func NewECDSAVerifier(pub *ecdsa.PublicKey) (Verifier, error) {
	b, err := p256PublicBytes(pub)
	if err != nil {
		return nil, err
	}
	return &ecdsaVerifier{id: PublicKeyID(ES256, b), pub: pub}, nil
}

func (v *ecdsaVerifier) Algorithm() Algorithm { return ES256 }
func (v *ecdsaVerifier) KeyID() KeyID         { return v.id }
func (v *ecdsaVerifier) Verify(msg, sig []byte) error {
	if len(sig) != 64 {
		return ErrAuthentication
	}
	digest := sha256.Sum256(msg)
	r := new(big.Int).SetBytes(sig[:32])
	s := new(big.Int).SetBytes(sig[32:])
	if !ecdsa.Verify(v.pub, digest[:], r, s) {
		return ErrAuthentication
	}
	return nil
}

// --- RSA ---

func rsaPublicBytes(pub *rsa.PublicKey) []byte {
	der, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		return nil
	}
	return der
}

type rsaSigner struct {
	id KeyID
	s  *rsasign.Signer
}

// NewRSASigner returns a PS256 Signer (RSA-PSS SHA-256) for key (copied),
// which must be at least rsasign.MinKeyBits.
func NewRSASigner(key *rsa.PrivateKey) (Signer, error) {
	key, err := copyRSA(key)
	if err != nil {
		return nil, err
	}
	s, err := rsasign.NewSigner(key)
	if err != nil {
		return nil, err
	}
	return &rsaSigner{id: PublicKeyID(PS256, rsaPublicBytes(&key.PublicKey)), s: s}, nil
}

func (s *rsaSigner) Algorithm() Algorithm            { return PS256 }
func (s *rsaSigner) KeyID() KeyID                    { return s.id }
func (s *rsaSigner) Sign(msg []byte) ([]byte, error) { return s.s.Sign(msg) }
func (s *rsaSigner) String() string                  { return "RSASigner(" + s.id.String() + ")" }
func (s *rsaSigner) GoString() string                { return s.String() }
func (s *rsaSigner) signatureSize() int              { return s.s.Public().Size() }

type rsaVerifier struct {
	id KeyID
	v  *rsasign.Verifier
}

// NewRSAVerifier returns a PS256 Verifier (RSA-PSS SHA-256) for pub.
func NewRSAVerifier(pub *rsa.PublicKey) (Verifier, error) {
	v, err := rsasign.NewVerifier(pub)
	if err != nil {
		return nil, err
	}
	return &rsaVerifier{id: PublicKeyID(PS256, rsaPublicBytes(pub)), v: v}, nil
}

func (v *rsaVerifier) Algorithm() Algorithm { return PS256 }
func (v *rsaVerifier) KeyID() KeyID         { return v.id }
func (v *rsaVerifier) Verify(msg, sig []byte) error {
	if v.v.Verify(msg, sig) != nil {
		return ErrAuthentication
	}
	return nil
}

// copyRSA returns an independent copy of an RSA private key.
func copyRSA(key *rsa.PrivateKey) (*rsa.PrivateKey, error) {
	if key == nil {
		return nil, ErrKeyType
	}
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return nil, ErrKeyType
	}
	k, err := x509.ParsePKCS8PrivateKey(der)
	clear(der)
	if err != nil {
		return nil, ErrKeyType
	}
	return k.(*rsa.PrivateKey), nil
}
