// Package b64url is the one strict reading of unpadded base64url (RFC 4648
// §5) that the key files and the text armor of envelopes share: only the 64
// alphabet characters, no padding, no line breaks, and zero unused bits in
// the last character, so that each byte string has exactly one encoding. Go's
// base64.RawURLEncoding.Strict() agrees except that it skips CR and LF
// anywhere in its input.
package b64url

import (
	"encoding/base64"
	"errors"
)

// ErrInvalid means a text is not strict unpadded base64url.
var ErrInvalid = errors.New("not strict unpadded base64url")

// values maps each byte to its 6-bit base64url value, and every byte
// outside the alphabet to 0xff.
var values = func() (t [256]byte) {
	for i := range t {
		t[i] = 0xff
	}
	for i, c := range "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_" {
		t[c] = byte(i)
	}
	return t
}()

// IsChar reports whether c is one of the 64 base64url characters.
func IsChar(c byte) bool { return values[c] != 0xff }

// Valid reports whether text is strict unpadded base64url. It reads every
// byte without a branch: the texts it checks are random-looking.
func Valid[T string | []byte](text T) bool {
	var seen byte
	for i := 0; i < len(text); i++ {
		seen |= values[text[i]]
	}
	if seen&0xc0 != 0 { // a byte outside the alphabet
		return false
	}
	switch len(text) % 4 {
	case 1:
		return false
	case 2: // the last character carries 2 bits
		return values[text[len(text)-1]]&0x0f == 0
	case 3: // the last character carries 4 bits
		return values[text[len(text)-1]]&0x03 == 0
	}
	return true
}

// DecodeString decodes s if it is Valid; otherwise the error is ErrInvalid,
// which never quotes s.
func DecodeString(s string) ([]byte, error) { return AppendDecodeString(nil, s) }

// AppendDecodeString appends the bytes s encodes to dst, growing it as
// needed; s must be strict unpadded base64url (see Valid), or ErrInvalid is
// returned. Up to 128 characters are decoded without an allocation of
// their own.
func AppendDecodeString(dst []byte, s string) ([]byte, error) {
	if !Valid(s) {
		return dst, ErrInvalid
	}
	var buf [128]byte
	var src []byte
	if len(s) <= len(buf) {
		src = buf[:copy(buf[:], s)]
	} else {
		src = []byte(s)
	}
	return base64.RawURLEncoding.AppendDecode(dst, src)
}
