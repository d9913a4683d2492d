package envelope

import (
	"crypto/ecdh"
	"crypto/hpke"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"

	"github.com/mqttsec/mqttsec/rsasign"
)

// A Recipient wraps a per-message content key to one receiver's public key.
type Recipient interface {
	Algorithm() Algorithm
	KeyID() KeyID
	Wrap(contentKey []byte) ([]byte, error)
}

// An Identity unwraps content keys wrapped to it. Unwrap returns an error
// (any error) if the wrapped key was not made for this identity.
type Identity interface {
	Algorithm() Algorithm
	KeyID() KeyID
	Unwrap(wrapped []byte) ([]byte, error)
}

var (
	_ Recipient = (*hpkeRecipient)(nil)
	_ Identity  = (*hpkeIdentity)(nil)
	_ Recipient = (*rsaRecipient)(nil)
	_ Identity  = (*rsaIdentity)(nil)
)

// hpkeInfo is the HPKE info string for every content-key wrap.
const hpkeInfo = "mqttsec v1 content key"

// oaepLabel is the RSA-OAEP label for every content-key wrap.
const oaepLabel = "mqttsec v1 content key"

// contentKeySize is the size of a content key: an AES-256 key.
const contentKeySize = 32

func hpkeAlgorithm(kem hpke.KEM) (Algorithm, bool) {
	switch kem.ID() {
	case hpke.DHKEM(x25519Curve()).ID():
		return HPKEX25519, true
	case hpke.MLKEM768X25519().ID():
		return HPKEXWing, true
	}
	return "", false
}

type hpkeRecipient struct {
	id  KeyID
	alg Algorithm
	pub hpke.PublicKey
}

// NewHPKERecipient returns a Recipient for an HPKE public key of the KEM
// DHKEM(X25519, HKDF-SHA256) (algorithm HPKE-X25519) or MLKEM768-X25519
// (algorithm HPKE-MLKEM768X25519, post-quantum hybrid). Content keys are
// sealed in HPKE base mode with HKDF-SHA256 and AES-256-GCM.
func NewHPKERecipient(pub hpke.PublicKey) (Recipient, error) {
	alg, ok := hpkeAlgorithm(pub.KEM())
	if !ok {
		return nil, ErrKeyType
	}
	return &hpkeRecipient{id: PublicKeyID(alg, pub.Bytes()), alg: alg, pub: pub}, nil
}

func (r *hpkeRecipient) Algorithm() Algorithm { return r.alg }
func (r *hpkeRecipient) KeyID() KeyID         { return r.id }
func (r *hpkeRecipient) Wrap(cek []byte) ([]byte, error) {
	return hpke.Seal(r.pub, hpke.HKDFSHA256(), hpke.AES256GCM(), []byte(hpkeInfo), cek)
}

type hpkeIdentity struct {
	id  KeyID
	alg Algorithm
	key hpke.PrivateKey
}

// NewHPKEIdentity returns the Identity for an HPKE private key of a KEM that
// NewHPKERecipient accepts.
func NewHPKEIdentity(key hpke.PrivateKey) (Identity, error) {
	alg, ok := hpkeAlgorithm(key.KEM())
	if !ok {
		return nil, ErrKeyType
	}
	return &hpkeIdentity{id: PublicKeyID(alg, key.PublicKey().Bytes()), alg: alg, key: key}, nil
}

func (i *hpkeIdentity) Algorithm() Algorithm { return i.alg }
func (i *hpkeIdentity) KeyID() KeyID         { return i.id }
func (i *hpkeIdentity) String() string {
	return "HPKEIdentity(" + string(i.alg) + ", " + i.id.String() + ")"
}
func (i *hpkeIdentity) GoString() string { return i.String() }
func (i *hpkeIdentity) Unwrap(wrapped []byte) ([]byte, error) {
	if !wrappedSizeFits(i.alg, len(wrapped)) {
		return nil, ErrDecryption
	}
	return hpke.Open(i.key, hpke.HKDFSHA256(), hpke.AES256GCM(), []byte(hpkeInfo), wrapped)
}

type rsaRecipient struct {
	id  KeyID
	pub *rsa.PublicKey
}

// NewRSARecipient returns an RSA-OAEP-256 Recipient (RSAES-OAEP with SHA-256
// and MGF1-SHA-256) for pub, which must be at least 2048 bits.
func NewRSARecipient(pub *rsa.PublicKey) (Recipient, error) {
	if _, err := rsasign.NewVerifier(pub); err != nil { // same size rules
		return nil, err
	}
	return &rsaRecipient{id: PublicKeyID(RSAOAEP256, rsaPublicBytes(pub)), pub: pub}, nil
}

func (r *rsaRecipient) Algorithm() Algorithm { return RSAOAEP256 }
func (r *rsaRecipient) KeyID() KeyID         { return r.id }
func (r *rsaRecipient) Wrap(cek []byte) ([]byte, error) {
	return rsa.EncryptOAEP(sha256.New(), rand.Reader, r.pub, cek, []byte(oaepLabel))
}

type rsaIdentity struct {
	id  KeyID
	key *rsa.PrivateKey
}

// NewRSAIdentity returns the RSA-OAEP-256 Identity for key (copied).
func NewRSAIdentity(key *rsa.PrivateKey) (Identity, error) {
	key, err := copyRSA(key)
	if err != nil {
		return nil, err
	}
	if _, err := rsasign.NewVerifier(&key.PublicKey); err != nil {
		return nil, err
	}
	return &rsaIdentity{id: PublicKeyID(RSAOAEP256, rsaPublicBytes(&key.PublicKey)), key: key}, nil
}

func (i *rsaIdentity) Algorithm() Algorithm { return RSAOAEP256 }
func (i *rsaIdentity) KeyID() KeyID         { return i.id }
func (i *rsaIdentity) String() string       { return "RSAIdentity(" + i.id.String() + ")" }
func (i *rsaIdentity) GoString() string     { return i.String() }
func (i *rsaIdentity) Unwrap(wrapped []byte) ([]byte, error) {
	if len(wrapped) != i.key.Size() {
		return nil, ErrDecryption
	}
	return rsa.DecryptOAEP(sha256.New(), nil, i.key, wrapped, []byte(oaepLabel))
}

func x25519Curve() ecdh.Curve { return ecdh.X25519() }
