// Package hotp makes and checks RFC 4226 HMAC-based one-time passwords,
// using github.com/pquerna/otp for the algorithm itself.
//
// A six- or eight-digit code is weak on its own: it is guessable with
// probability 10^-6 (or 10^-8) per try and it says nothing about the message
// it travels with. The envelope therefore only accepts a HOTP code inside a
// header that is also covered by an HMAC, an AEAD or a signature, and uses
// the message's authenticated counter as the HOTP counter, so every code is
// bound to exactly one message and, through the replay window, is never
// accepted twice.
//
// [Window] implements the RFC 4226 §7.4 look-ahead resynchronisation for
// codes that arrive without their counter: it searches a bounded window of
// counters ahead of the last one used and never accepts a code at or below it
// again.
package hotp

import (
	"crypto/subtle"
	"encoding/base32"
	"errors"
	"strings"
	"sync"

	"github.com/pquerna/otp"
	pqhotp "github.com/pquerna/otp/hotp"
)

// MinSecretSize is the smallest accepted shared secret in bytes: 128 bits,
// the minimum of RFC 4226 requirement R6.
const MinSecretSize = 16

// MaxSecretSize bounds the shared secret (HMAC-SHA1 hashes longer keys first,
// so more adds nothing).
const MaxSecretSize = 64

// DefaultLookAhead is the look-ahead window a zero Window uses.
const DefaultLookAhead = 10

// Errors returned by this package. They never include secrets or codes.
var (
	// ErrSecretSize means the secret is outside MinSecretSize..MaxSecretSize.
	ErrSecretSize = errors.New("hotp: secret must be 16 to 64 bytes")
	// ErrDigits means the code length is neither 6 nor 8.
	ErrDigits = errors.New("hotp: codes must have 6 or 8 digits")
	// ErrSecretEncoding means a base32 secret could not be decoded.
	ErrSecretEncoding = errors.New("hotp: secret is not valid base32")
	// ErrInvalidCode means the code does not match any permitted counter.
	ErrInvalidCode = errors.New("hotp: invalid code")
)

var b32 = base32.StdEncoding.WithPadding(base32.NoPadding)

// Key is an RFC 4226 shared secret with its code length. It is safe for
// concurrent use; its String method never prints the secret.
type Key struct {
	secret string // base32, the form github.com/pquerna/otp takes
	digits otp.Digits
}

// NewKey returns a Key for secret (copied) producing codes of digits digits
// (6 or 8).
func NewKey(secret []byte, digits int) (*Key, error) {
	if len(secret) < MinSecretSize || len(secret) > MaxSecretSize {
		return nil, ErrSecretSize
	}
	if digits != 6 && digits != 8 {
		return nil, ErrDigits
	}
	return &Key{secret: b32.EncodeToString(secret), digits: otp.Digits(digits)}, nil
}

// ParseKey decodes a base32 secret (RFC 4648, case-insensitive, padding
// optional, spaces ignored) as used by authenticator apps and uhppoted's
// secrets files.
func ParseKey(base32Secret string, digits int) (*Key, error) {
	s := strings.ToUpper(strings.Join(strings.Fields(base32Secret), ""))
	s = strings.TrimRight(s, "=")
	secret, err := b32.DecodeString(s)
	if err != nil {
		return nil, ErrSecretEncoding
	}
	return NewKey(secret, digits)
}

// Digits returns the code length.
func (k *Key) Digits() int { return int(k.digits) }

// Secret returns a copy of the shared secret.
func (k *Key) Secret() []byte {
	b, _ := b32.DecodeString(k.secret)
	return b
}

// Code returns the code for counter.
func (k *Key) Code(counter uint64) string {
	code, err := pqhotp.GenerateCodeCustom(k.secret, counter, pqhotp.ValidateOpts{
		Digits:    k.digits,
		Algorithm: otp.AlgorithmSHA1,
	})
	if err != nil {
		// The secret was encoded by NewKey, so it always decodes.
		panic("hotp: internal secret encoding: " + err.Error())
	}
	return code
}

// Verify reports whether code is the code for counter, comparing in constant
// time. A code of the wrong length or with anything but ASCII digits fails.
func (k *Key) Verify(code string, counter uint64) bool {
	if !wellFormed(code, k.Digits()) {
		return false
	}
	return subtle.ConstantTimeCompare([]byte(k.Code(counter)), []byte(code)) == 1
}

// String describes the key without revealing the secret.
func (k *Key) String() string { return "hotp.Key(secret)" }

// GoString describes the key without revealing the secret, for %#v.
func (k *Key) GoString() string { return k.String() }

func wellFormed(code string, digits int) bool {
	if len(code) != digits {
		return false
	}
	for i := 0; i < len(code); i++ {
		if code[i] < '0' || code[i] > '9' {
			return false
		}
	}
	return true
}

// Window checks codes that arrive without their counter, per RFC 4226 §7.4:
// a code is accepted if it matches a counter in [Next, Next+LookAhead], and
// Next then moves past the matched counter, so a used code, and every code
// before it, is never accepted again. It is safe for concurrent use.
type Window struct {
	// LookAhead is how many counters past Next are tried; zero means
	// DefaultLookAhead. A larger window resynchronises after more lost codes
	// but multiplies a guesser's chance per try by LookAhead+1.
	LookAhead uint64

	mu   sync.Mutex
	next uint64
}

// NewWindow returns a Window whose next expected counter is next.
func NewWindow(next uint64, lookAhead uint64) *Window {
	return &Window{LookAhead: lookAhead, next: next}
}

// Next returns the lowest counter the window still accepts.
func (w *Window) Next() uint64 {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.next
}

// Verify checks code against the counters Next..Next+LookAhead. On a match
// it returns the matched counter and moves Next past it; otherwise it returns
// ErrInvalidCode and leaves the window unchanged. Every counter in the window
// is tried, so the time taken does not reveal where a match was found.
func (w *Window) Verify(k *Key, code string) (uint64, error) {
	if !wellFormed(code, k.Digits()) {
		return 0, ErrInvalidCode
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	ahead := w.LookAhead
	if ahead == 0 {
		ahead = DefaultLookAhead
	}
	// matched holds the first matching counter plus one, so that zero means
	// no match; a match at the very last counter (2^64-1) is not accepted.
	var matched uint64
	for i := uint64(0); i <= ahead; i++ {
		c := w.next + i
		if c < w.next { // counter space exhausted
			break
		}
		ok := subtle.ConstantTimeCompare([]byte(k.Code(c)), []byte(code))
		if ok == 1 && matched == 0 {
			matched = c + 1
		}
	}
	if matched == 0 {
		return 0, ErrInvalidCode
	}
	w.next = matched
	return matched - 1, nil
}
