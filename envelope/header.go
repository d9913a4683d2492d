package envelope

import (
	"cmp"
	"crypto/sha256"
	"encoding/binary"
	"math"
	"sync"
	"time"
	"unicode/utf8"

	"golang.org/x/crypto/cryptobyte"
)

// header is the authenticated header of SPEC.md §3, as typed values. Its
// strings are cut from one copy of the header's bytes (readHeader), or are
// the sender's own (Seal); ids, digests and key ids are bytes, which point
// into the bytes read.
type header struct {
	kind    Kind
	prot    Protection
	from    string
	to      []string
	topic   string
	replyTo string // requests only
	corr    []byte // correlation id: requests, replies and errors
	re      []byte // request digest, 32 bytes: replies and errors
	ctr     uint64
	iat     uint64 // ms since the epoch
	exp     uint64

	macKid   KeyID     // with HMAC
	hotpKid  KeyID     // with HOTPCode
	hotpCode string    // with HOTPCode
	sigAlg   Algorithm // with Signature
	sigKid   KeyID
	pskKid   KeyID        // with Encryption under a pre-shared key
	rcpt     []wrappedKey // with Encryption under wrapped keys

	// Room for the usual single recipient.
	toRoom [1]string
	// text is the header as parse read it, the string its fields are cut
	// from: OpenRouted checks that the envelope's header still holds it.
	text string
}

// headers keeps headers between Open, Peek and Seal calls: a header points
// to itself (its room for one recipient), so it would otherwise take an
// allocation of 288 bytes per call. With the pool, Seal and Open of a
// 256-byte HMAC or PSK message take 3 allocations instead of 4 and 7–13 %
// less time (BenchmarkEnvelope/(hmac|psk)/256, six interleaved rounds;
// Open of psk not significant). Nothing that leaves those calls points
// into a header, and putHeader clears it before it goes back.
var headers = sync.Pool{New: func() any { return new(header) }}

func getHeader() *header { return headers.Get().(*header) }

func putHeader(h *header) {
	*h = header{}
	headers.Put(h)
}

// wrappedKey is one recipient of a wrapped content key.
type wrappedKey struct {
	alg Algorithm
	kid KeyID
	wk  []byte
}

// Limits on header fields (SPEC.md §3.2).
const (
	MaxIDLength     = 128  // sender and recipient ids
	maxTopicLength  = 1024 // topic / method and reply-to
	maxRecipients   = 64   // entries in "to" and in the wrapped keys
	maxCorrelation  = 64   // correlation id bytes
	correlationSize = 16   // bytes Seal draws for a new request
)

// Sizes the header fixes (SPEC.md §3.2, §4).
const (
	x25519WrappedSize = 32 + contentKeySize + 16   // enc || AES-GCM(CK)
	xwingWrappedSize  = 1120 + contentKeySize + 16 // enc || AES-GCM(CK)
	minRSASize        = 2048 / 8
	maxRSASize        = 8192 / 8
	// minRecipientSize is the fewest bytes a wrapped key's entry takes
	// before its key is checked (SPEC.md §3.1): its algorithm, key id and
	// length.
	minRecipientSize = 1 + keyIDSize + 2
)

// issuedAt and expiresAt are the header's timestamps as times.
func (h *header) issuedAt() time.Time  { return time.UnixMilli(int64(h.iat)) }
func (h *header) expiresAt() time.Time { return time.UnixMilli(int64(h.exp)) }

// pairwise reports whether h names a key only two parties hold: an HMAC,
// HOTP or pre-shared encryption key.
func (h *header) pairwise() bool {
	return h.prot&(HMAC|HOTPCode) != 0 || h.preShared()
}

// preShared reports whether the payload is encrypted under a pre-shared key.
func (h *header) preShared() bool { return h.prot&Encryption != 0 && len(h.rcpt) == 0 }

// readHeader reads the header bytes b into h (SPEC.md §3.1) and checks its
// rules (§3.2). The strings of h are cut from text, a copy of b the caller
// makes once. Every failure is ErrMalformed.
func readHeader(h *header, b []byte, text string) error {
	if !parseHeader(h, b, text) {
		return errorf(ErrMalformed, "header does not read")
	}
	return h.check()
}

// parseHeader reads the fields of §3.1 front to back; it checks only that
// they are there, that the kind, protections and algorithms are known, and
// that nothing follows the last.
func parseHeader(h *header, b []byte, text string) bool {
	r := headerReader{s: b, text: text, ok: true}
	*h = header{}
	h.kind, h.prot = Kind(r.u8()), Protection(r.u8())
	if !h.kind.valid() || h.prot == 0 || h.prot&^allProtections != 0 {
		return false
	}
	h.from = r.str8()
	h.to = r.ids(h.toRoom[:0])
	h.topic, h.replyTo = r.str16(), r.str16()
	h.corr, h.re = r.bytes8(), r.bytes8()
	h.ctr, h.iat, h.exp = r.u64(), r.u64(), r.u64()
	if h.prot&HMAC != 0 {
		h.macKid = r.kid()
	}
	if h.prot&HOTPCode != 0 {
		h.hotpKid, h.hotpCode = r.kid(), r.str8()
	}
	if h.prot&Signature != 0 {
		h.sigAlg, h.sigKid = r.alg(&signatureCodes), r.kid()
	}
	if h.prot&Encryption != 0 {
		r.encryption(h)
	}
	return r.ok && r.s.Empty()
}

// headerReader reads a header with cryptobyte. Its strings are cut from
// text, the header's bytes copied once; its byte strings are left where
// they are. The first field that does not read clears ok, and every read
// after it returns a zero value.
type headerReader struct {
	s    cryptobyte.String
	text string
	ok   bool
}

// read applies f while every read so far succeeded.
func (r *headerReader) read(f func() bool) {
	r.ok = r.ok && f()
}

func (r *headerReader) u8() (v uint8) {
	r.read(func() bool { return r.s.ReadUint8(&v) })
	return v
}

func (r *headerReader) u64() (v uint64) {
	r.read(func() bool { return r.s.ReadUint64(&v) })
	return v
}

func (r *headerReader) kid() (k KeyID) {
	r.read(func() bool { return r.s.CopyBytes(k[:]) })
	return k
}

// bytes8 and bytes16 read a byte string after its length, nil when empty.
func (r *headerReader) bytes8() []byte {
	var v cryptobyte.String
	r.read(func() bool { return r.s.ReadUint8LengthPrefixed(&v) })
	return nilIfEmpty(v)
}

func (r *headerReader) bytes16() []byte {
	var v cryptobyte.String
	r.read(func() bool { return r.s.ReadUint16LengthPrefixed(&v) })
	return nilIfEmpty(v)
}

func nilIfEmpty(b []byte) []byte {
	if len(b) == 0 {
		return nil
	}
	return b[:len(b):len(b)]
}

// str8 and str16 read a string after its length, cut from text.
func (r *headerReader) str8() string  { return r.cut(r.bytes8()) }
func (r *headerReader) str16() string { return r.cut(r.bytes16()) }

// cut returns v, the bytes just read, as the same bytes of text.
func (r *headerReader) cut(v []byte) string {
	end := len(r.text) - len(r.s)
	return r.text[end-len(v) : end]
}

// ids reads a count and that many ids into to.
func (r *headerReader) ids(to []string) []string {
	n := r.u8()
	for range n {
		to = append(to, r.str8())
	}
	if len(to) == 0 {
		return nil
	}
	return to
}

// alg reads an algorithm code of table; a code that names none fails.
func (r *headerReader) alg(table *codeTable) Algorithm {
	a := table.algorithm(r.u8())
	r.ok = r.ok && a != ""
	return a
}

// encryption reads the enc field: a count, then a pre-shared key's id (0)
// or that many wrapped keys.
func (r *headerReader) encryption(h *header) {
	n := int(r.u8())
	if n == 0 {
		h.pskKid = r.kid()
		return
	}
	// Refused before room for n entries is set aside.
	if n > maxRecipients || n*minRecipientSize > len(r.s) {
		r.ok = false
		return
	}
	h.rcpt = make([]wrappedKey, n)
	for i := range h.rcpt {
		h.rcpt[i] = wrappedKey{alg: r.alg(&wrapCodes), kid: r.kid(), wk: r.bytes16()}
	}
}

// check applies the rules of SPEC.md §3.2 to h; every failure is
// ErrMalformed. Seal checks the headers it writes with it too.
func (h *header) check() error {
	why := cmp.Or(checkParties(h), checkTopics(h), checkIDs(h), checkTimes(h), checkHOTPCode(h), checkWrappedKeys(h))
	if why != "" {
		return errorf(ErrMalformed, why)
	}
	return nil
}

// The rules of SPEC.md §3.2, each returning why h breaks it, or "".

func checkParties(h *header) string {
	if !validID(h.from) {
		return "bad sender id"
	}
	if len(h.to) > maxRecipients {
		return "too many recipients"
	}
	for i, to := range h.to {
		if !validID(to) {
			return "bad recipient id"
		}
		for _, prev := range h.to[:i] {
			if prev == to {
				return "duplicate recipient id"
			}
		}
	}
	if h.kind != Event && len(h.to) != 1 {
		return "requests, replies and errors have exactly one recipient"
	}
	if h.pairwise() && len(h.to) != 1 {
		return "pairwise keys need exactly one recipient"
	}
	return ""
}

func checkTopics(h *header) string {
	if !validTopic(h.topic) {
		return "bad topic"
	}
	if (h.kind == Request) != (h.replyTo != "") {
		return "replyTo on a request, and only there"
	}
	if h.replyTo != "" && !validTopic(h.replyTo) {
		return "bad replyTo"
	}
	return ""
}

func checkIDs(h *header) string {
	if (h.kind == Event) != (len(h.corr) == 0) || len(h.corr) > maxCorrelation {
		return "correlation id of 1 to 64 bytes on requests, replies and errors, and only there"
	}
	answers := h.kind == Reply || h.kind == ErrorReply
	if answers && len(h.re) != sha256.Size || !answers && len(h.re) != 0 {
		return "request digest on replies and errors, and only there"
	}
	return ""
}

func checkTimes(h *header) string {
	if h.ctr == 0 {
		return "counter must be at least 1"
	}
	if h.iat > math.MaxInt64 || h.exp > math.MaxInt64 || h.exp <= h.iat {
		return "bad timestamps"
	}
	return ""
}

func checkHOTPCode(h *header) string {
	if h.prot&HOTPCode == 0 {
		return ""
	}
	if len(h.hotpCode) != 6 && len(h.hotpCode) != 8 {
		return "HOTP code of 6 or 8 digits"
	}
	for i := 0; i < len(h.hotpCode); i++ {
		if h.hotpCode[i] < '0' || h.hotpCode[i] > '9' {
			return "HOTP code of 6 or 8 digits"
		}
	}
	return ""
}

func checkWrappedKeys(h *header) string {
	for i, w := range h.rcpt {
		if !wrappedSizeFits(w.alg, len(w.wk)) {
			return "wrapped key of the wrong size"
		}
		for _, prev := range h.rcpt[:i] {
			if prev.kid == w.kid {
				return "duplicate wrapped key id"
			}
		}
	}
	return ""
}

// wrappedSizeFits reports whether n bytes may be a key wrapped with alg.
func wrappedSizeFits(alg Algorithm, n int) bool {
	switch alg {
	case HPKEX25519:
		return n == x25519WrappedSize
	case HPKEXWing:
		return n == xwingWrappedSize
	case RSAOAEP256:
		return n >= minRSASize && n <= maxRSASize
	}
	return false
}

// appendHeader writes h (checked) in the form of SPEC.md §3.1.
func appendHeader(b []byte, h *header) []byte {
	b = append(b, byte(h.kind), byte(h.prot))
	b = appendStr8(b, h.from)
	b = append(b, byte(len(h.to)))
	for _, to := range h.to {
		b = appendStr8(b, to)
	}
	b = appendStr16(b, h.topic)
	b = appendStr16(b, h.replyTo)
	b = appendStr8(b, h.corr)
	b = appendStr8(b, h.re)
	b = binary.BigEndian.AppendUint64(b, h.ctr)
	b = binary.BigEndian.AppendUint64(b, h.iat)
	b = binary.BigEndian.AppendUint64(b, h.exp)
	if h.prot&HMAC != 0 {
		b = append(b, h.macKid[:]...)
	}
	if h.prot&HOTPCode != 0 {
		b = appendStr8(append(b, h.hotpKid[:]...), h.hotpCode)
	}
	if h.prot&Signature != 0 {
		b = append(append(b, signatureCodes.code(h.sigAlg)), h.sigKid[:]...)
	}
	if h.prot&Encryption != 0 {
		b = append(b, byte(len(h.rcpt)))
		if len(h.rcpt) == 0 {
			b = append(b, h.pskKid[:]...)
		}
		for _, w := range h.rcpt {
			b = append(append(b, wrapCodes.code(w.alg)), w.kid[:]...)
			b = appendStr16(b, w.wk)
		}
	}
	return b
}

// appendStr8 and appendStr16 write s after its length; check has bounded
// every field to its length's range.
func appendStr8[T string | []byte](b []byte, s T) []byte {
	return append(append(b, byte(len(s))), s...)
}

func appendStr16[T string | []byte](b []byte, s T) []byte {
	return append(binary.BigEndian.AppendUint16(b, uint16(len(s))), s...)
}

// ValidID reports whether s may be a party id (a sender or recipient id):
// 1 to 128 bytes of ASCII letters, digits and "-._:@". Ids become MQTT
// topic levels, so "/", "+" and "#" are excluded.
func ValidID(s string) bool { return validID(s) }

func validID(s string) bool {
	if len(s) == 0 || len(s) > MaxIDLength {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9':
		case c == '-', c == '.', c == '_', c == ':', c == '@':
		default:
			return false
		}
	}
	return true
}

// validTopic reports whether s may be a topic, method or reply-to: 1 to 1024
// bytes of UTF-8 with no control characters, no '"' or '\', no U+2028 or
// U+2029 (none breaks a log line or needs an escape in JSON) and no MQTT wildcard '+'
// or '#'.
func validTopic(s string) bool {
	if len(s) == 0 || len(s) > maxTopicLength {
		return false
	}
	// ASCII, the usual case, byte by byte; from the first other byte on,
	// rune by rune.
	i := 0
	for ; i < len(s) && s[i] < utf8.RuneSelf; i++ {
		if !topicRune(rune(s[i])) {
			return false
		}
	}
	if i == len(s) {
		return true
	}
	s = s[i:]
	if !utf8.ValidString(s) {
		return false
	}
	for _, r := range s {
		if !topicRune(r) {
			return false
		}
	}
	return true
}

func topicRune(r rune) bool {
	switch {
	case r < 0x20, r == 0x7f, r == '"', r == '\\', r == '+', r == '#', r == 0x2028, r == 0x2029:
		return false
	}
	return true
}
