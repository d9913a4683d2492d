package enroll

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/mqttsec/mqttsec/envelope"
)

// The domain-separation labels of SPEC.md §14, each with its 0x00.
const (
	fpLabel         = "mqttsec enroll fp v1\x00"
	popLabel        = "mqttsec enroll pop v1\x00"
	helloLabel      = "mqttsec enroll hello v1\x00"
	helloPoPLabel   = "mqttsec enroll hello-pop v1\x00"
	helloSigLabel   = "mqttsec enroll hello-sig v1\x00"
	welcomeLabel    = "mqttsec enroll welcome v1\x00"
	welcomePoPLabel = "mqttsec enroll welcome-pop v1\x00"
	welcomeSigLabel = "mqttsec enroll welcome-sig v1\x00"
)

// Sizes of SPEC.md §14.
const (
	// FingerprintSize is the size of a fingerprint F.
	FingerprintSize = sha256.Size
	// PoPSize is the size of a PoP: 128 bits.
	PoPSize = 16
	// SeedSize is the size of a device's PoP seed.
	SeedSize = 32
	// NonceSize is the size of a hello's nonce.
	NonceSize = 16
	// PublicKeySize is the size of an ES256 public key as the exchange
	// carries it: the uncompressed point 0x04 || X || Y (SPEC.md §6).
	PublicKeySize = 65
	tagSize       = sha256.Size
	sigSize       = 64
)

// DefaultWindow is N, how long one PoP is shown (SPEC.md §14.2); a code is
// current for between N and 2N.
const DefaultWindow = 30 * time.Second

// MaxWindow is the longest N: a code is current for up to 2N, the time a
// photo of it is of any use.
const MaxWindow = time.Hour

var b64 = base64.RawURLEncoding.Strict()

// Fingerprint returns F, the fingerprint of a device's public key pkD
// (the 65-byte point of SPEC.md §6): SHA-256("mqttsec enroll fp v1" ||
// 0x00 || pkD). It binds a code and an approval to one key.
func Fingerprint(pkD []byte) [FingerprintSize]byte {
	h := sha256.New()
	h.Write([]byte(fpLabel))
	h.Write(pkD)
	return [FingerprintSize]byte(h.Sum(nil))
}

// Window returns w = floor(t / n), with t the seconds of the device's clock
// (now.Unix(): a monotonic clock will do, passed as time.Unix(seconds, 0))
// and n the window length in whole seconds (n is rounded down to whole
// seconds, and taken as one second if shorter). A time before the epoch
// gives a negative w, which is taken modulo 2^64 as the u64 of SPEC.md
// §14.2 is.
func Window(now time.Time, n time.Duration) uint64 {
	t, sec := now.Unix(), int64(n/time.Second)
	if sec < 1 {
		sec = 1
	}
	w := t / sec
	if t%sec != 0 && t < 0 {
		w-- // floor, not truncation
	}
	return uint64(w)
}

// PoP is a proof of possession: the 128 bits a device shows in its code for
// one window, which the operator's approval carries to the gateway and
// which keys the tags of the hello and the welcome. It is a secret while its
// code is current. It never prints: every fmt verb, String, GoString and
// MarshalText give "PoP(redacted)". Its bytes are read by slicing it
// (pop[:]), and written out only by Code.Text and Approval.MarshalBinary,
// which carry it.
type PoP [PoPSize]byte

const redactedPoP = "PoP(redacted)"

// String returns "PoP(redacted)".
func (PoP) String() string { return redactedPoP }

// GoString returns "PoP(redacted)".
func (PoP) GoString() string { return redactedPoP }

// Format writes "PoP(redacted)" whatever the verb, so that %x or %d do not
// print the bytes either.
func (PoP) Format(f fmt.State, _ rune) { io.WriteString(f, redactedPoP) }

// MarshalText returns "PoP(redacted)", so that a PoP marshalled to JSON or
// logged by a structured logger does not show its bytes either. There is no
// UnmarshalText.
func (PoP) MarshalText() ([]byte, error) { return []byte(redactedPoP), nil }

// DerivePoP returns the PoP of window w under a device's PoP seed:
// HMAC-SHA-256(seed, "mqttsec enroll pop v1" || 0x00 || u64 w)[0:16].
func DerivePoP(seed []byte, w uint64) PoP {
	m := hmac.New(sha256.New, seed)
	m.Write([]byte(popLabel))
	var u [8]byte
	binary.BigEndian.PutUint64(u[:], w)
	m.Write(u[:])
	var sum [sha256.Size]byte
	return PoP(m.Sum(sum[:0])[:PoPSize])
}

// Code is what a device shows for an operator to approve (SPEC.md §14.2):
// its proposed id, its key's fingerprint and the PoP of the present window.
// Its text (Text) is the secret for at most 2N; show it, never log it.
// String, every fmt verb and a logger show it with the PoP redacted.
type Code struct {
	// ID is the id the device proposes (SPEC.md §3.2).
	ID string
	// Fingerprint is F of the device's public key.
	Fingerprint [FingerprintSize]byte
	// PoP is the PoP of the window the code was made in.
	PoP PoP
}

const (
	codePrefix = "mqttsec-enroll:1:"
	// maxCodeLength is the longest code: the prefix, a 128-byte id, and
	// F and the PoP in base64url with their colons.
	maxCodeLength = len(codePrefix) + envelope.MaxIDLength + 1 + 43 + 1 + 22
)

// Text returns the code's text, mqttsec-enroll:1:<id>:<base64url(F)>:
// <base64url(PoP)> (base64url without padding), to show as text or as a QR
// code. It is the one place this package writes a PoP out as text: it is
// meant to be shown to the operator, and must not be logged.
func (c Code) Text() string { return c.text(b64.EncodeToString(c.PoP[:])) }

// String returns the code's text with the PoP redacted:
// mqttsec-enroll:1:<id>:<base64url(F)>:PoP(redacted). It is what every fmt
// verb prints; Text returns the code to show.
func (c Code) String() string { return c.text(redactedPoP) }

// GoString is String, for %#v.
func (c Code) GoString() string { return c.String() }

// Format writes String whatever the verb, so that no verb prints the PoP.
func (c Code) Format(f fmt.State, _ rune) { io.WriteString(f, c.String()) }

func (c Code) text(pop string) string {
	var sb strings.Builder
	sb.Grow(len(codePrefix) + len(c.ID) + 2 + b64.EncodedLen(FingerprintSize) + len(pop))
	sb.WriteString(codePrefix)
	sb.WriteString(c.ID)
	sb.WriteByte(':')
	sb.WriteString(b64.EncodeToString(c.Fingerprint[:]))
	sb.WriteByte(':')
	sb.WriteString(pop)
	return sb.String()
}

// ParseCode reads a code's text as Code.Text writes it. An id may hold
// colons (SPEC.md §3.2 allows them), so the last two colon-separated fields
// are F and the PoP, and the id is what is between the version and them.
// No space, line end or other control character is allowed anywhere in the
// text (encoding/base64 would skip CR and LF); base64url is read strictly
// (no padding, no other alphabet, canonical last character) and must give
// exactly 32 and 16 bytes. Every error wraps ErrMalformed, and never quotes
// the text, which holds the PoP.
func ParseCode(s string) (Code, error) {
	var c Code
	if len(s) > maxCodeLength {
		return c, errorf(ErrMalformed, "code too long")
	}
	for i := 0; i < len(s); i++ {
		if s[i] <= ' ' || s[i] >= 0x7f {
			return c, errorf(ErrMalformed, "code holds a space, a line end or a byte that is not printable ASCII")
		}
	}
	const scheme = "mqttsec-enroll:"
	rest, ok := strings.CutPrefix(s, scheme)
	if !ok {
		return c, errorf(ErrMalformed, "not an enrollment code")
	}
	version, rest, ok := strings.Cut(rest, ":")
	if !ok {
		return c, errorf(ErrMalformed, "code has too few fields")
	}
	if version != "1" {
		return c, errorf(ErrMalformed, "code of another version than 1")
	}
	i := strings.LastIndexByte(rest, ':')
	if i < 0 {
		return c, errorf(ErrMalformed, "code has too few fields")
	}
	rest, pop := rest[:i], rest[i+1:]
	i = strings.LastIndexByte(rest, ':')
	if i < 0 {
		return c, errorf(ErrMalformed, "code has too few fields")
	}
	id, fp := rest[:i], rest[i+1:]
	if !envelope.ValidID(id) {
		return c, errorf(ErrMalformed, "code's id is not valid")
	}
	if len(fp) != b64.EncodedLen(FingerprintSize) {
		return c, errorf(ErrMalformed, "code's fingerprint has the wrong length")
	}
	if n, err := b64.Decode(c.Fingerprint[:], []byte(fp)); err != nil || n != FingerprintSize {
		return Code{}, errorf(ErrMalformed, "code's fingerprint is not 32 bytes in base64url")
	}
	if len(pop) != b64.EncodedLen(PoPSize) {
		return Code{}, errorf(ErrMalformed, "code's PoP has the wrong length")
	}
	if n, err := b64.Decode(c.PoP[:], []byte(pop)); err != nil || n != PoPSize {
		clear(c.PoP[:])
		return Code{}, errorf(ErrMalformed, "code's PoP is not 16 bytes in base64url")
	}
	c.ID = id
	return c, nil
}
