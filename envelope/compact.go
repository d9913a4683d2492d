package envelope

import (
	"encoding/binary"
	"math"
)

// The compact header of version 3 (SPEC.md §14) carries the header value of
// §3 as bytes: integers big-endian, strings and byte strings after their
// length, key ids as the 12 bytes their 16 base64url characters stand for,
// algorithms as one-byte codes. Every header value has exactly one
// encoding, so the bytes are canonical by construction; the reader accepts
// exactly what appendCompactHeader writes (FuzzCompactHeader checks both
// ways). The reader fills the same wireHeader the JSON reader fills, so
// that checkHeader applies §3.2 to every version alike.

// kidSize is the length of a key id in the compact header: 16 base64url
// characters are 96 bits.
const kidSize = 12

// algorithmCodes gives each algorithm its byte in the compact header; zero
// and every code past the table name no algorithm.
var algorithmCodes = [...]Algorithm{
	1: HS256, 2: Ed25519, 3: ES256, 4: PS256, 5: RS256,
	6: A256GCM, 7: HPKEX25519, 8: HPKEXWing, 9: RSAOAEP256,
}

func algorithmCode(a Algorithm) (byte, bool) {
	for c, alg := range algorithmCodes {
		if c > 0 && alg == a {
			return byte(c), true
		}
	}
	return 0, false
}

// algorithmOf is the algorithm of code c, or "" (which every check refuses
// as an unknown algorithm, ErrPolicy) for a code that names none.
func algorithmOf(c byte) Algorithm {
	if int(c) < len(algorithmCodes) {
		return algorithmCodes[c]
	}
	return ""
}

// minRecipientSize is the fewest bytes a recipient takes in the compact
// header: its algorithm, key id, and a wrapped key of one byte.
const minRecipientSize = 1 + kidSize + 2 + 1

// Limits the compact form's length prefixes impose; §3.2 sets tighter ones
// for every field but the wrapped key (maxWrappedSize).
const (
	maxLen8  = math.MaxUint8
	maxLen16 = math.MaxUint16
)

// appendCompactHeader writes h in the compact form. It fails, with
// ErrInvalidParams, for a value the form cannot hold: Seal validates the
// header first, so only headers edited past validation (tests) get here.
func appendCompactHeader(b []byte, h *wireHeader) ([]byte, error) {
	kind, ok := parseKind(h.Kind)
	if !ok || h.V < 0 || h.V > maxLen8 || h.Iat < 0 || h.Exp < 0 {
		return nil, errorf(ErrInvalidParams, "compact header: kind, version or timestamp")
	}
	w := compactWriter{b: append(b, byte(h.V), byte(kind), byte(h.members()))}
	w.len8(h.From)
	w.count(len(h.To))
	for _, to := range h.To {
		w.len8(to)
	}
	w.len16(h.Topic)
	w.len16(h.ReplyTo)
	w.decoded8(h.Corr)
	w.decoded8(h.Re)
	w.b = binary.BigEndian.AppendUint64(w.b, h.Ctr)
	w.b = binary.BigEndian.AppendUint64(w.b, uint64(h.Iat))
	w.b = binary.BigEndian.AppendUint64(w.b, uint64(h.Exp))
	if h.MAC != nil {
		w.alg(h.MAC.Alg)
		w.kid(h.MAC.Kid)
	}
	if h.HOTP != nil {
		w.kid(h.HOTP.Kid)
		w.len8(h.HOTP.Code)
	}
	if h.Sig != nil {
		w.alg(h.Sig.Alg)
		w.kid(h.Sig.Kid)
	}
	if h.Enc != nil {
		w.alg(h.Enc.Alg)
		switch {
		case h.Enc.Kid != "" && len(h.Enc.Rcpt) == 0:
			w.count(0)
			w.kid(h.Enc.Kid)
		case h.Enc.Kid == "" && len(h.Enc.Rcpt) > 0:
			w.count(len(h.Enc.Rcpt))
			for _, r := range h.Enc.Rcpt {
				w.alg(r.Alg)
				w.kid(r.Kid)
				w.decoded16(r.WK)
			}
		default:
			w.fail("encryption needs exactly one of kid and rcpt")
		}
	}
	if w.err != nil {
		return nil, w.err
	}
	return w.b, nil
}

// compactWriter appends the compact form's fields; the first field that
// does not fit sets err, and the rest are skipped.
type compactWriter struct {
	b   []byte
	err error
}

func (w *compactWriter) fail(why string) {
	if w.err == nil {
		w.err = errorf(ErrInvalidParams, "compact header: "+why)
	}
}

func (w *compactWriter) count(n int) {
	if n > maxLen8 {
		w.fail("too many entries")
		return
	}
	w.b = append(w.b, byte(n))
}

func (w *compactWriter) len8(s string) {
	if len(s) > maxLen8 {
		w.fail("field too long")
		return
	}
	w.b = append(append(w.b, byte(len(s))), s...)
}

func (w *compactWriter) len16(s string) {
	if len(s) > maxLen16 {
		w.fail("field too long")
		return
	}
	w.b = append(binary.BigEndian.AppendUint16(w.b, uint16(len(s))), s...)
}

func (w *compactWriter) alg(a Algorithm) {
	c, ok := algorithmCode(a)
	if !ok {
		w.fail("unknown algorithm")
		return
	}
	w.b = append(w.b, c)
}

// kid writes the 12 bytes a key id's 16 base64url characters encode.
func (w *compactWriter) kid(k string) {
	if !validKid(k) {
		w.fail("bad key id")
		return
	}
	w.decoded(k)
}

// decoded8 and decoded16 write the bytes base64url text encodes after
// their length.
func (w *compactWriter) decoded8(text string) {
	if b64.DecodedLen(len(text)) > maxLen8 {
		w.fail("field too long")
		return
	}
	at := len(w.b)
	w.b = append(w.b, 0)
	w.decoded(text)
	w.b[at] = byte(len(w.b) - at - 1)
}

func (w *compactWriter) decoded16(text string) {
	if b64.DecodedLen(len(text)) > maxLen16 {
		w.fail("field too long")
		return
	}
	at := len(w.b)
	w.b = append(w.b, 0, 0)
	w.decoded(text)
	binary.BigEndian.PutUint16(w.b[at:], uint16(len(w.b)-at-2))
}

func (w *compactWriter) decoded(text string) {
	if w.err != nil {
		return
	}
	out, err := b64.AppendDecode(w.b, []byte(text))
	if err != nil {
		w.fail("bad base64url")
		return
	}
	w.b = out
}

// readCompactHeader reads a compact header into blk. It checks the
// form only — lengths, the protection bits, nothing left over — and leaves
// every rule of §3.2 to checkHeader. The strings point into b, which is
// not copied: whatever keeps one beyond the life of b copies it (see
// Opener.open). The members that version 1 and 2 carry as base64url (key
// ids, the correlation id, the request digest, wrapped keys) are given to
// checkHeader in that form, written into blk.text (and strings pointing
// into it) or, when they do not fit, into a buffer of their own.
func readCompactHeader(blk *headerBlock, b []byte) bool {
	r := compactReader{s: borrow(b)}
	*blk = headerBlock{}
	h := &blk.wire
	h.V = int(r.u8())
	h.Kind = Kind(r.u8()).wire() // "" for no kind: checkHeader refuses it
	prot := Protection(r.u8())
	if prot&^(Encryption|HMAC|HOTPCode|Signature) != 0 {
		return false
	}
	h.From = r.str8()
	if n := int(r.u8()); n > 0 {
		h.To = blk.to[:0]
		for range n {
			h.To = append(h.To, r.str8())
		}
	}
	h.Topic = r.str16()
	h.ReplyTo = r.str16()
	// The base64url text of every binary field is written into the block.
	text := blk.text[:0]
	encode := func(dst *string, raw string) {
		if r.bad || raw == "" {
			return
		}
		*dst = appendText(&text, []byte(raw))
	}
	encode(&h.Corr, r.str8())
	encode(&h.Re, r.str8())
	h.Ctr = r.u64()
	iat, exp := r.u64(), r.u64()
	if iat > math.MaxInt64 || exp > math.MaxInt64 {
		return false
	}
	h.Iat, h.Exp = int64(iat), int64(exp)
	if prot != 0 {
		h.Prot = blk.prot[:0]
		for _, n := range protectionNames {
			if prot&n.p != 0 {
				h.Prot = append(h.Prot, n.wire)
			}
		}
	}
	if prot&HMAC != 0 {
		blk.mac.Alg = algorithmOf(r.u8())
		encode(&blk.mac.Kid, r.fixed(kidSize))
		h.MAC = &blk.mac
	}
	if prot&HOTPCode != 0 {
		h.HOTP = &hotpParams{}
		encode(&h.HOTP.Kid, r.fixed(kidSize))
		h.HOTP.Code = r.str8()
	}
	if prot&Signature != 0 {
		blk.sig.Alg = algorithmOf(r.u8())
		encode(&blk.sig.Kid, r.fixed(kidSize))
		h.Sig = &blk.sig
	}
	if prot&Encryption != 0 {
		h.Enc = &encParams{Alg: algorithmOf(r.u8())}
		if n := int(r.u8()); n == 0 {
			encode(&h.Enc.Kid, r.fixed(kidSize))
		} else if n > MaxRecipients || n*minRecipientSize > len(r.s) {
			// Refused before room for n recipients is allocated.
			r.bad = true
		} else {
			h.Enc.Rcpt = make([]wrappedKey, n)
			for i := range h.Enc.Rcpt {
				rk := &h.Enc.Rcpt[i]
				rk.Alg = algorithmOf(r.u8())
				encode(&rk.Kid, r.fixed(kidSize))
				wk := r.str16()
				if wk == "" || len(wk) > maxWrappedSize {
					r.bad = true
				}
				encode(&rk.WK, wk)
			}
		}
	}
	return !r.bad && r.s == ""
}

// compactReader reads the compact header front to back. Reading past the
// end sets bad and yields zero values; the caller checks bad once.
type compactReader struct {
	s   string
	bad bool
}

func (r *compactReader) fixed(n int) string {
	if r.bad || len(r.s) < n {
		r.bad = true
		return ""
	}
	v := r.s[:n]
	r.s = r.s[n:]
	return v
}

func (r *compactReader) u8() byte {
	if v := r.fixed(1); v != "" {
		return v[0]
	}
	return 0
}

func (r *compactReader) u64() uint64 {
	if v := r.fixed(8); v != "" {
		return binary.BigEndian.Uint64([]byte(v))
	}
	return 0
}

func (r *compactReader) str8() string { return r.fixed(int(r.u8())) }

func (r *compactReader) str16() string {
	if v := r.fixed(2); v != "" {
		return r.fixed(int(v[0])<<8 | int(v[1]))
	}
	return ""
}
