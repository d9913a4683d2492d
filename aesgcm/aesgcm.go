// Package aesgcm seals and opens messages with AES-256-GCM, owning the nonces.
//
// Every [Key.Seal] draws a fresh random 96-bit nonce from crypto/rand (through
// the standard library's cipher.NewGCMWithRandomNonce) and returns
// nonce || ciphertext || tag, so callers never choose a nonce and cannot
// repeat one by mistake.
//
// # Limits
//
// With random 96-bit nonces the probability of a nonce collision stays below
// 2^-32 only while a key seals at most 2^32 messages (NIST SP 800-38D §8.3).
// A [Key] counts the messages it has sealed and refuses to seal more than
// [MaxMessagesPerKey]; the count lives in memory, so a long-lived pre-shared
// key that is used across many process restarts must be rotated by policy
// well before that limit. Keys used for a single message (as the envelope
// does for wrapped content keys) never come near it.
package aesgcm

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"errors"
	"sync/atomic"
)

const (
	// KeySize is the size of an AES-256 key in bytes.
	KeySize = 32
	// NonceSize is the size of the random GCM nonce that prefixes every
	// sealed message.
	NonceSize = 12
	// TagSize is the size of the GCM authentication tag.
	TagSize = 16
	// Overhead is the number of bytes Seal adds to a plaintext.
	Overhead = NonceSize + TagSize
	// MaxMessagesPerKey is the number of messages one Key will seal before it
	// refuses with ErrKeyExhausted (2^32, the random-nonce bound of
	// NIST SP 800-38D).
	MaxMessagesPerKey = 1 << 32
)

// Errors returned by this package. They never include key material.
var (
	// ErrKeySize means the key is not exactly KeySize bytes.
	ErrKeySize = errors.New("aesgcm: key must be 32 bytes")
	// ErrOpen means the sealed message is too short, was modified, or was
	// sealed under another key or associated data.
	ErrOpen = errors.New("aesgcm: message authentication failed")
	// ErrKeyExhausted means the key has sealed MaxMessagesPerKey messages.
	ErrKeyExhausted = errors.New("aesgcm: key has reached its message limit; rotate it")
)

// Key is an AES-256-GCM key. It is safe for concurrent use. Its String method
// never prints key material.
type Key struct {
	aead   cipher.AEAD
	sealed atomic.Uint64
}

// NewKey returns a Key for the 32-byte secret k. The bytes are copied into
// the cipher's key schedule; the caller may wipe k afterwards.
func NewKey(k []byte) (*Key, error) {
	if len(k) != KeySize {
		return nil, ErrKeySize
	}
	block, err := aes.NewCipher(k)
	if err != nil {
		return nil, ErrKeySize
	}
	aead, err := cipher.NewGCMWithRandomNonce(block)
	if err != nil {
		return nil, err
	}
	return &Key{aead: aead}, nil
}

// GenerateKey returns 32 random bytes suitable for NewKey.
func GenerateKey() []byte {
	k := make([]byte, KeySize)
	rand.Read(k)
	return k
}

// Seal encrypts and authenticates plaintext and authenticates aad, appending
// nonce || ciphertext || tag to dst. The nonce comes from crypto/rand.
func (k *Key) Seal(dst, plaintext, aad []byte) ([]byte, error) {
	if k.sealed.Add(1) > MaxMessagesPerKey {
		return nil, ErrKeyExhausted
	}
	return k.aead.Seal(dst, nil, plaintext, aad), nil
}

// Open authenticates and decrypts sealed (as returned by Seal) with aad,
// appending the plaintext to dst. Any failure is ErrOpen.
func (k *Key) Open(dst, sealed, aad []byte) ([]byte, error) {
	if len(sealed) < Overhead {
		return nil, ErrOpen
	}
	out, err := k.aead.Open(dst, nil, sealed, aad)
	if err != nil {
		return nil, ErrOpen
	}
	return out, nil
}

// String describes the key without revealing it.
func (k *Key) String() string { return "aesgcm.Key(AES-256-GCM, secret)" }

// GoString describes the key without revealing it, for %#v.
func (k *Key) GoString() string { return k.String() }
