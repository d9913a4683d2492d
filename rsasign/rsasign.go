// Package rsasign signs and verifies with RSA-PSS over SHA-256 (RFC 8017
// §8.1, salt length 32 bytes, MGF1-SHA-256), refusing keys under 2048 bits.
// PKCS #1 v1.5 signatures (no security proof, a history of verification
// bugs) are neither made nor accepted.
package rsasign

import (
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
)

// MinKeyBits is the smallest RSA modulus this package accepts.
const MinKeyBits = 2048

// MaxKeyBits is the largest RSA modulus this package accepts; larger keys
// would let a peer make every verification arbitrarily expensive.
const MaxKeyBits = 8192

// SaltLength is the PSS salt length in bytes (the SHA-256 output size).
// Verification requires exactly this length.
const SaltLength = sha256.Size

// Errors returned by this package.
var (
	// ErrKeySize means the modulus is shorter than MinKeyBits or longer than MaxKeyBits.
	ErrKeySize = errors.New("rsasign: RSA key must be 2048 to 8192 bits")
	// ErrVerify means the signature does not verify.
	ErrVerify = errors.New("rsasign: signature verification failed")
	// ErrKeyFormat means a PEM or DER input did not hold the expected RSA key.
	ErrKeyFormat = errors.New("rsasign: not a PEM-encoded RSA key")
)

var pssOptions = &rsa.PSSOptions{SaltLength: SaltLength, Hash: crypto.SHA256}

func checkSize(pub *rsa.PublicKey) error {
	if pub == nil || pub.N == nil {
		return ErrKeySize
	}
	if n := pub.N.BitLen(); n < MinKeyBits || n > MaxKeyBits {
		return ErrKeySize
	}
	return nil
}

// Signer makes RSA-PSS SHA-256 signatures. It is safe for concurrent use and
// never prints key material.
type Signer struct {
	key *rsa.PrivateKey
}

// NewSigner returns a Signer for key, which must be at least MinKeyBits.
func NewSigner(key *rsa.PrivateKey) (*Signer, error) {
	if key == nil {
		return nil, ErrKeySize
	}
	if err := checkSize(&key.PublicKey); err != nil {
		return nil, err
	}
	if err := key.Validate(); err != nil {
		return nil, ErrKeyFormat
	}
	return &Signer{key: key}, nil
}

// Sign returns the RSA-PSS SHA-256 signature of msg. The salt comes from
// crypto/rand.
func (s *Signer) Sign(msg []byte) ([]byte, error) {
	digest := sha256.Sum256(msg)
	return rsa.SignPSS(rand.Reader, s.key, crypto.SHA256, digest[:], pssOptions)
}

// Public returns the signer's public key.
func (s *Signer) Public() *rsa.PublicKey { return &s.key.PublicKey }

// String describes the signer without revealing the key.
func (s *Signer) String() string {
	return fmt.Sprintf("rsasign.Signer(RSA-PSS-SHA256, %d bits)", s.key.N.BitLen())
}

// GoString describes the signer without revealing the key, for %#v.
func (s *Signer) GoString() string { return s.String() }

// Verifier checks RSA-PSS SHA-256 signatures.
type Verifier struct {
	pub *rsa.PublicKey
}

// NewVerifier returns a Verifier of RSA-PSS SHA-256 signatures by pub.
func NewVerifier(pub *rsa.PublicKey) (*Verifier, error) {
	if err := checkSize(pub); err != nil {
		return nil, err
	}
	return &Verifier{pub: pub}, nil
}

// Public returns the verifier's public key.
func (v *Verifier) Public() *rsa.PublicKey { return v.pub }

// Verify reports ErrVerify unless sig is a valid signature of msg.
func (v *Verifier) Verify(msg, sig []byte) error {
	if len(sig) != v.pub.Size() {
		return ErrVerify
	}
	digest := sha256.Sum256(msg)
	if rsa.VerifyPSS(v.pub, crypto.SHA256, digest[:], sig, pssOptions) != nil {
		return ErrVerify
	}
	return nil
}

// ParsePrivateKeyPEM parses a PEM "PRIVATE KEY" (PKCS #8) or
// "RSA PRIVATE KEY" (PKCS #1) block holding an RSA key of an accepted size.
// Errors never include the key bytes.
func ParsePrivateKeyPEM(data []byte) (*rsa.PrivateKey, error) {
	block, _ := pem.Decode(data)
	if block == nil {
		return nil, ErrKeyFormat
	}
	var key *rsa.PrivateKey
	switch block.Type {
	case "PRIVATE KEY":
		k, err := x509.ParsePKCS8PrivateKey(block.Bytes)
		if err != nil {
			return nil, ErrKeyFormat
		}
		rk, ok := k.(*rsa.PrivateKey)
		if !ok {
			return nil, ErrKeyFormat
		}
		key = rk
	case "RSA PRIVATE KEY":
		k, err := x509.ParsePKCS1PrivateKey(block.Bytes)
		if err != nil {
			return nil, ErrKeyFormat
		}
		key = k
	default:
		return nil, ErrKeyFormat
	}
	if err := checkSize(&key.PublicKey); err != nil {
		return nil, err
	}
	return key, nil
}

// ParsePublicKeyPEM parses a PEM "PUBLIC KEY" (PKIX) or "RSA PUBLIC KEY"
// (PKCS #1) block holding an RSA key of an accepted size.
func ParsePublicKeyPEM(data []byte) (*rsa.PublicKey, error) {
	block, _ := pem.Decode(data)
	if block == nil {
		return nil, ErrKeyFormat
	}
	var pub *rsa.PublicKey
	switch block.Type {
	case "PUBLIC KEY":
		k, err := x509.ParsePKIXPublicKey(block.Bytes)
		if err != nil {
			return nil, ErrKeyFormat
		}
		rk, ok := k.(*rsa.PublicKey)
		if !ok {
			return nil, ErrKeyFormat
		}
		pub = rk
	case "RSA PUBLIC KEY":
		k, err := x509.ParsePKCS1PublicKey(block.Bytes)
		if err != nil {
			return nil, ErrKeyFormat
		}
		pub = k
	default:
		return nil, ErrKeyFormat
	}
	if err := checkSize(pub); err != nil {
		return nil, err
	}
	return pub, nil
}
