package envelope

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"hash"
	"sync"

	"github.com/mqttsec/mqttsec/aesgcm"
	"github.com/mqttsec/mqttsec/hotp"
)

// keyIDSize is the length of a key id.
const keyIDSize = 12

// KeyID identifies a key: 12 bytes derived from the key (SPEC.md §6), which
// the header carries as they are. People see it as its 16 base64url
// characters (String).
type KeyID [12]byte

// String returns the id as 16 base64url characters.
func (k KeyID) String() string { return b64.EncodeToString(k[:]) }

const kidLabel = "mqttsec kid v1\x00"

var b64 = base64.RawURLEncoding.Strict()

// PublicKeyID derives the key id of a public key: the first 12 bytes of
// SHA-256("mqttsec kid v1" || 0x00 || alg || 0x00 || pub). SPEC.md lists the
// byte form of pub for each algorithm.
func PublicKeyID(alg Algorithm, pub []byte) KeyID {
	h := sha256.New()
	h.Write([]byte(kidLabel))
	h.Write([]byte(alg))
	h.Write([]byte{0})
	h.Write(pub)
	return KeyID(h.Sum(nil)[:keyIDSize])
}

// SecretKeyID derives the key id of a shared secret: the first 12 bytes of
// HMAC-SHA-256(secret, "mqttsec kid v1" || 0x00 || alg). The id reveals
// nothing usable about a high-entropy secret.
func SecretKeyID(alg Algorithm, secret []byte) KeyID {
	m := hmac.New(sha256.New, secret)
	m.Write([]byte(kidLabel))
	m.Write([]byte(alg))
	return KeyID(m.Sum(nil)[:keyIDSize])
}

// Sizes of shared secrets.
const (
	minHMACKeySize = 32 // HMAC-SHA-256 keys: at least the hash size
	maxHMACKeySize = 64 // longer keys are hashed by HMAC and add nothing
)

// Errors for key construction (programming or configuration errors, not
// peer input).
var (
	ErrKeySize = errors.New("envelope: key has the wrong size")
	ErrKeyType = errors.New("envelope: unsupported key type")
)

// HMACKey is a per-peer HMAC-SHA-256 key. Its String method never prints the
// secret.
type HMACKey struct {
	id     KeyID
	secret []byte
	pool   sync.Pool // of *macState keyed with secret: keying costs two SHA-256 blocks
}

// NewHMACKey returns an HMACKey holding a copy of secret (32 to 64 bytes).
func NewHMACKey(secret []byte) (*HMACKey, error) {
	if len(secret) < minHMACKeySize || len(secret) > maxHMACKeySize {
		return nil, ErrKeySize
	}
	s := append([]byte(nil), secret...)
	return &HMACKey{id: SecretKeyID(HS256, s), secret: s}, nil
}

// KeyID returns the key's id.
func (k *HMACKey) KeyID() KeyID { return k.id }

// String describes the key by id only.
func (k *HMACKey) String() string { return "HMACKey(" + k.id.String() + ")" }

// GoString describes the key by id only, for %#v.
func (k *HMACKey) GoString() string { return k.String() }

// tag returns HMAC-SHA-256 of the authenticated block a under the key. The
// block is copied into the pooled state, so that the caller's stays on its
// stack.
func (k *HMACKey) tag(a authBlock) [sha256.Size]byte {
	m, _ := k.pool.Get().(*macState)
	if m == nil {
		m = &macState{h: hmac.New(sha256.New, k.secret)}
	}
	m.block = a
	m.h.Reset()
	m.h.Write(m.block[:])
	out := [sha256.Size]byte(m.h.Sum(m.sum[:0]))
	k.pool.Put(m)
	return out
}

// macState is a keyed HMAC and room for its input and output, reused
// through a pool.
type macState struct {
	h     hash.Hash
	block authBlock
	sum   [sha256.Size]byte
}

// HOTPKey is a per-peer RFC 4226 secret. Its String method never prints the
// secret.
type HOTPKey struct {
	id  KeyID
	key *hotp.Key
}

// NewHOTPKey returns a HOTPKey for a copy of secret (16 to 64 bytes) making
// codes of digits digits (6 or 8).
func NewHOTPKey(secret []byte, digits int) (*HOTPKey, error) {
	k, err := hotp.NewKey(secret, digits)
	if err != nil {
		return nil, err
	}
	return &HOTPKey{id: SecretKeyID(HOTP, secret), key: k}, nil
}

// KeyID returns the key's id.
func (k *HOTPKey) KeyID() KeyID { return k.id }

// String describes the key by id only.
func (k *HOTPKey) String() string { return "HOTPKey(" + k.id.String() + ")" }

// GoString describes the key by id only, for %#v.
func (k *HOTPKey) GoString() string { return k.String() }

// AEADKey is a pre-shared per-peer AES-256-GCM key. It both encrypts and,
// because only the two peers hold it, authenticates the sender. Its String
// method never prints the secret.
type AEADKey struct {
	id  KeyID
	key *aesgcm.Key
}

// NewAEADKey returns an AEADKey for a copy of the 32-byte secret. See
// aesgcm.MaxMessagesPerKey for how many messages one key may seal.
func NewAEADKey(secret []byte) (*AEADKey, error) {
	k, err := aesgcm.NewKey(secret)
	if err != nil {
		return nil, ErrKeySize
	}
	return &AEADKey{id: SecretKeyID(A256GCM, secret), key: k}, nil
}

// KeyID returns the key's id.
func (k *AEADKey) KeyID() KeyID { return k.id }

// String describes the key by id only.
func (k *AEADKey) String() string { return "AEADKey(" + k.id.String() + ")" }

// GoString describes the key by id only, for %#v.
func (k *AEADKey) GoString() string { return k.String() }
