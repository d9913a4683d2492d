package envelope

import (
	"strconv"
	"unicode/utf8"
)

// The header codec writes and reads exactly the canonical form of SPEC.md
// §3.4: members in their fixed order, no whitespace, strings without any
// escape, integers in minimal decimal. Its output equals what encoding/json
// writes for wireHeader (with HTML escaping off) for every header whose
// strings need no escape, and its reader accepts exactly those bytes; the
// tests and FuzzHeaderCodec check both against encoding/json.

// appendHeader writes h canonically. Strings are written as they are; Seal
// validates them first, so none needs an escape.
func appendHeader(b []byte, h *wireHeader) []byte {
	b = append(b, `{"v":`...)
	b = strconv.AppendInt(b, int64(h.V), 10)
	b = appendStrMember(b, `,"kind":`, h.Kind)
	b = appendStrMember(b, `,"from":`, h.From)
	if len(h.To) > 0 {
		b = append(b, `,"to":`...)
		b = appendStrArray(b, h.To)
	}
	b = appendStrMember(b, `,"topic":`, h.Topic)
	if h.ReplyTo != "" {
		b = appendStrMember(b, `,"replyTo":`, h.ReplyTo)
	}
	if h.Corr != "" {
		b = appendStrMember(b, `,"corr":`, h.Corr)
	}
	if h.Re != "" {
		b = appendStrMember(b, `,"re":`, h.Re)
	}
	b = append(b, `,"ctr":"`...)
	b = strconv.AppendUint(b, h.Ctr, 10)
	b = append(b, `","iat":`...)
	b = strconv.AppendInt(b, h.Iat, 10)
	b = append(b, `,"exp":`...)
	b = strconv.AppendInt(b, h.Exp, 10)
	b = append(b, `,"prot":`...)
	switch {
	case h.Prot == nil:
		b = append(b, "null"...)
	case len(h.Prot) == 0:
		b = append(b, "[]"...)
	default:
		b = appendStrArray(b, h.Prot)
	}
	if h.MAC != nil {
		b = appendStrMember(b, `,"mac":{"alg":`, string(h.MAC.Alg))
		b = appendStrMember(b, `,"kid":`, h.MAC.Kid)
		b = append(b, '}')
	}
	if h.HOTP != nil {
		b = appendStrMember(b, `,"hotp":{"kid":`, h.HOTP.Kid)
		b = appendStrMember(b, `,"code":`, h.HOTP.Code)
		b = append(b, '}')
	}
	if h.Sig != nil {
		b = appendStrMember(b, `,"sig":{"alg":`, string(h.Sig.Alg))
		b = appendStrMember(b, `,"kid":`, h.Sig.Kid)
		b = append(b, '}')
	}
	if h.Enc != nil {
		b = appendStrMember(b, `,"enc":{"alg":`, string(h.Enc.Alg))
		if h.Enc.Kid != "" {
			b = appendStrMember(b, `,"kid":`, h.Enc.Kid)
		}
		if len(h.Enc.Rcpt) > 0 {
			b = append(b, `,"rcpt":[`...)
			for i, r := range h.Enc.Rcpt {
				if i > 0 {
					b = append(b, ',')
				}
				b = appendStrMember(b, `{"alg":`, string(r.Alg))
				b = appendStrMember(b, `,"kid":`, r.Kid)
				b = appendStrMember(b, `,"wk":`, r.WK)
				b = append(b, '}')
			}
			b = append(b, ']')
		}
		b = append(b, '}')
	}
	return append(b, '}')
}

func appendStrMember(b []byte, name, s string) []byte {
	b = append(b, name...)
	b = append(b, '"')
	b = append(b, s...)
	return append(b, '"')
}

func appendStrArray(b []byte, ss []string) []byte {
	b = append(b, '[')
	for i, s := range ss {
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, '"')
		b = append(b, s...)
		b = append(b, '"')
	}
	return append(b, ']')
}

// literal reports whether every string in h can be written without an
// escape, that is, whether appendHeader's output is canonical JSON.
func literal(h *wireHeader) bool {
	ok := func(s string) bool { return plainString(s) }
	all := func(ss []string) bool {
		for _, s := range ss {
			if !ok(s) {
				return false
			}
		}
		return true
	}
	if !ok(h.Kind) || !ok(h.From) || !all(h.To) || !ok(h.Topic) || !ok(h.ReplyTo) || !ok(h.Corr) || !ok(h.Re) || !all(h.Prot) {
		return false
	}
	if h.MAC != nil && (!ok(string(h.MAC.Alg)) || !ok(h.MAC.Kid)) {
		return false
	}
	if h.HOTP != nil && (!ok(h.HOTP.Kid) || !ok(h.HOTP.Code)) {
		return false
	}
	if h.Sig != nil && (!ok(string(h.Sig.Alg)) || !ok(h.Sig.Kid)) {
		return false
	}
	if h.Enc != nil {
		if !ok(string(h.Enc.Alg)) || !ok(h.Enc.Kid) {
			return false
		}
		for _, r := range h.Enc.Rcpt {
			if !ok(string(r.Alg)) || !ok(r.Kid) || !ok(r.WK) {
				return false
			}
		}
	}
	return true
}

// plainString reports whether JSON (with HTML escaping off) writes s
// without any escape: valid UTF-8 with no control character, '"', '\',
// U+2028 or U+2029.
func plainString(s string) bool {
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			if c < 0x20 || c == '"' || c == '\\' {
				return false
			}
			i++
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 || r == '\u2028' || r == '\u2029' {
			return false
		}
		i += size
	}
	return true
}

// headerReader reads the canonical header. Any deviation sets bad. It reads
// from one string copy of the header, so every string it returns is a slice
// of that copy rather than an allocation of its own.
type headerReader struct {
	b   string
	i   int
	bad bool
}

func (r *headerReader) lit(s string) {
	if r.bad || len(r.b)-r.i < len(s) || r.b[r.i:r.i+len(s)] != s {
		r.bad = true
		return
	}
	r.i += len(s)
}

// peek reports whether the next bytes are s, without consuming them.
func (r *headerReader) peek(s string) bool {
	return !r.bad && len(r.b)-r.i >= len(s) && r.b[r.i:r.i+len(s)] == s
}

// str reads a string that needs no escape.
func (r *headerReader) str() string {
	r.lit(`"`)
	if r.bad {
		return ""
	}
	start := r.i
	for r.i < len(r.b) {
		c := r.b[r.i]
		switch {
		case c == '"':
			s := r.b[start:r.i]
			r.i++
			return s
		case c < 0x20 || c == '\\':
			r.bad = true
			return ""
		case c < utf8.RuneSelf:
			r.i++
		default:
			ru, size := utf8.DecodeRuneInString(r.b[r.i:])
			if ru == utf8.RuneError && size == 1 || ru == '\u2028' || ru == '\u2029' {
				r.bad = true
				return ""
			}
			r.i += size
		}
	}
	r.bad = true
	return ""
}

// strArray reads a non-empty array of strings, appending them to out.
func (r *headerReader) strArray(out []string) []string {
	r.lit("[")
	for !r.bad {
		out = append(out, r.str())
		if r.peek("]") {
			r.i++
			return out
		}
		r.lit(",")
	}
	return nil
}

// uint reads a non-negative integer in minimal decimal, at most max.
func (r *headerReader) uint(max uint64) uint64 {
	if r.bad || r.i >= len(r.b) {
		r.bad = true
		return 0
	}
	start := r.i
	var n uint64
	for r.i < len(r.b) && r.b[r.i] >= '0' && r.b[r.i] <= '9' {
		d := uint64(r.b[r.i] - '0')
		if n > (max-d)/10 {
			r.bad = true
			return 0
		}
		n = n*10 + d
		r.i++
	}
	if r.i == start || (r.b[start] == '0' && r.i-start > 1) {
		r.bad = true
		return 0
	}
	return n
}

// readHeaderBlock parses the canonical header into blk (ok is false for
// anything else): the header, its members and its arrays live in the block,
// and its strings point into b, which is not copied: whatever keeps one
// beyond the life of b copies it (see Opener.open).
func readHeaderBlock(blk *headerBlock, b []byte) (ok bool) {
	r := &headerReader{b: borrow(b)}
	*blk = headerBlock{}
	h := &blk.wire
	r.lit(`{"v":`)
	h.V = int(r.uint(1<<31 - 1))
	r.lit(`,"kind":`)
	h.Kind = r.str()
	r.lit(`,"from":`)
	h.From = r.str()
	if r.peek(`,"to":`) {
		r.lit(`,"to":`)
		h.To = r.strArray(blk.to[:0])
	}
	r.lit(`,"topic":`)
	h.Topic = r.str()
	if r.peek(`,"replyTo":`) {
		r.lit(`,"replyTo":`)
		if h.ReplyTo = r.str(); h.ReplyTo == "" {
			r.bad = true
		}
	}
	if r.peek(`,"corr":`) {
		r.lit(`,"corr":`)
		if h.Corr = r.str(); h.Corr == "" {
			r.bad = true
		}
	}
	if r.peek(`,"re":`) {
		r.lit(`,"re":`)
		if h.Re = r.str(); h.Re == "" {
			r.bad = true
		}
	}
	r.lit(`,"ctr":"`)
	h.Ctr = r.uint(1<<64 - 1)
	r.lit(`","iat":`)
	h.Iat = int64(r.uint(1<<63 - 1))
	r.lit(`,"exp":`)
	h.Exp = int64(r.uint(1<<63 - 1))
	r.lit(`,"prot":`)
	switch {
	case r.peek("null"):
		r.lit("null")
	case r.peek("[]"):
		r.lit("[]")
		h.Prot = []string{}
	default:
		h.Prot = r.strArray(blk.prot[:0])
	}
	if r.peek(`,"mac":`) {
		h.MAC = &blk.mac
		r.lit(`,"mac":{"alg":`)
		h.MAC.Alg = Algorithm(r.str())
		r.lit(`,"kid":`)
		h.MAC.Kid = r.str()
		r.lit("}")
	}
	if r.peek(`,"hotp":`) {
		h.HOTP = &hotpParams{}
		r.lit(`,"hotp":{"kid":`)
		h.HOTP.Kid = r.str()
		r.lit(`,"code":`)
		h.HOTP.Code = r.str()
		r.lit("}")
	}
	if r.peek(`,"sig":`) {
		h.Sig = &blk.sig
		r.lit(`,"sig":{"alg":`)
		h.Sig.Alg = Algorithm(r.str())
		r.lit(`,"kid":`)
		h.Sig.Kid = r.str()
		r.lit("}")
	}
	if r.peek(`,"enc":`) {
		h.Enc = &encParams{}
		r.lit(`,"enc":{"alg":`)
		h.Enc.Alg = Algorithm(r.str())
		if r.peek(`,"kid":`) {
			r.lit(`,"kid":`)
			if h.Enc.Kid = r.str(); h.Enc.Kid == "" {
				r.bad = true
			}
		}
		if r.peek(`,"rcpt":`) {
			r.lit(`,"rcpt":[`)
			for !r.bad {
				var w wrappedKey
				r.lit(`{"alg":`)
				w.Alg = Algorithm(r.str())
				r.lit(`,"kid":`)
				w.Kid = r.str()
				r.lit(`,"wk":`)
				w.WK = r.str()
				r.lit("}")
				h.Enc.Rcpt = append(h.Enc.Rcpt, w)
				if len(h.Enc.Rcpt) > MaxRecipients+1 {
					r.bad = true
				}
				if r.peek("]") {
					r.i++
					break
				}
				r.lit(",")
			}
		}
		r.lit("}")
	}
	r.lit("}")
	if r.bad || r.i != len(b) {
		return false
	}
	return true
}
