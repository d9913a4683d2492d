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

// KeyIDSize is the number of bytes of a key id before base64url encoding;
// encoded it is 16 characters.
const KeyIDSize = 12

const kidLabel = "mqttsec kid v1\x00"

var b64 = base64.RawURLEncoding.Strict()

// PublicKeyID derives the key id of a public key: the first 12 bytes of
// SHA-256("mqttsec kid v1" || 0x00 || alg || 0x00 || pub), base64url. SPEC.md
// lists the byte form of pub for each algorithm.
func PublicKeyID(alg Algorithm, pub []byte) string {
	h := sha256.New()
	h.Write([]byte(kidLabel))
	h.Write([]byte(alg))
	h.Write([]byte{0})
	h.Write(pub)
	return b64.EncodeToString(h.Sum(nil)[:KeyIDSize])
}

// SecretKeyID derives the key id of a shared secret: the first 12 bytes of
// HMAC-SHA-256(secret, "mqttsec kid v1" || 0x00 || alg), base64url. The id
// reveals nothing usable about a high-entropy secret.
func SecretKeyID(alg Algorithm, secret []byte) string {
	m := hmac.New(sha256.New, secret)
	m.Write([]byte(kidLabel))
	m.Write([]byte(alg))
	return b64.EncodeToString(m.Sum(nil)[:KeyIDSize])
}

// Sizes of shared secrets.
const (
	MinHMACKeySize = 32 // HMAC-SHA-256 keys: at least the hash size
	MaxHMACKeySize = 64 // longer keys are hashed by HMAC and add nothing
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
	id     string
	secret []byte
	pool   sync.Pool // of *macState keyed with secret: keying costs two SHA-256 blocks
}

// NewHMACKey returns an HMACKey holding a copy of secret (32 to 64 bytes).
func NewHMACKey(secret []byte) (*HMACKey, error) {
	if len(secret) < MinHMACKeySize || len(secret) > MaxHMACKeySize {
		return nil, ErrKeySize
	}
	s := append([]byte(nil), secret...)
	return &HMACKey{id: SecretKeyID(HS256, s), secret: s}, nil
}

// KeyID returns the key's id.
func (k *HMACKey) KeyID() string { return k.id }

// String describes the key by id only.
func (k *HMACKey) String() string { return "HMACKey(" + k.id + ")" }

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
	id  string
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
func (k *HOTPKey) KeyID() string { return k.id }

// String describes the key by id only.
func (k *HOTPKey) String() string { return "HOTPKey(" + k.id + ")" }

// GoString describes the key by id only, for %#v.
func (k *HOTPKey) GoString() string { return k.String() }

// AEADKey is a pre-shared per-peer AES-256-GCM key. It both encrypts and,
// because only the two peers hold it, authenticates the sender. Its String
// method never prints the secret.
type AEADKey struct {
	id  string
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
func (k *AEADKey) KeyID() string { return k.id }

// String describes the key by id only.
func (k *AEADKey) String() string { return "AEADKey(" + k.id + ")" }

// GoString describes the key by id only, for %#v.
func (k *AEADKey) GoString() string { return k.String() }
