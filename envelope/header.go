package envelope

import (
	"crypto/sha256"
	"time"
	"unicode/utf8"
	"unsafe"

	"github.com/mqttsec/mqttsec/internal/b64url"
)

// wireHeader is the authenticated header (SPEC.md §3). The field order here
// is the canonical member order; absent optional members are omitted.
type wireHeader struct {
	V       int         `json:"v"`
	Kind    string      `json:"kind"`
	From    string      `json:"from"`
	To      []string    `json:"to,omitempty"`
	Topic   string      `json:"topic"`
	ReplyTo string      `json:"replyTo,omitempty"`
	Corr    string      `json:"corr,omitempty"`
	Re      string      `json:"re,omitempty"`
	Ctr     uint64      `json:"ctr,string"`
	Iat     int64       `json:"iat"`
	Exp     int64       `json:"exp"`
	Prot    []string    `json:"prot"`
	MAC     *macParams  `json:"mac,omitempty"`
	HOTP    *hotpParams `json:"hotp,omitempty"`
	Sig     *sigParams  `json:"sig,omitempty"`
	Enc     *encParams  `json:"enc,omitempty"`
}

type macParams struct {
	Alg Algorithm `json:"alg"`
	Kid string    `json:"kid"`
}

type hotpParams struct {
	Kid  string `json:"kid"`
	Code string `json:"code"`
}

type sigParams struct {
	Alg Algorithm `json:"alg"`
	Kid string    `json:"kid"`
}

type encParams struct {
	Alg  Algorithm    `json:"alg"`
	Kid  string       `json:"kid,omitempty"`
	Rcpt []wrappedKey `json:"rcpt,omitempty"`
}

type wrappedKey struct {
	Alg Algorithm `json:"alg"`
	Kid string    `json:"kid"`
	WK  string    `json:"wk"`
}

// Limits on header fields (SPEC.md §3.2).
const (
	MaxIDLength     = 128  // sender and recipient ids
	MaxTopicLength  = 1024 // topic / method and reply-to
	MaxRecipients   = 64   // entries in "to" and in "enc.rcpt"
	MaxCorrelation  = 64   // correlation id bytes
	correlationSize = 16   // bytes Seal draws for a new request
)

// encodeHeader writes h in canonical form (SPEC.md §3.4).
func encodeHeader(h *wireHeader) ([]byte, error) {
	if !literal(h) {
		return nil, errorf(ErrInvalidParams, "header string needs an escape")
	}
	return appendHeader(make([]byte, 0, 512), h), nil
}

// decodeHeaderBlock reads the header of an envelope of the given version
// into blk and accepts it only in canonical form. For versions 1 and 2 that is JSON
// with one fixed member order, no whitespace, no escapes, minimal integers,
// no duplicate, unknown or case-variant members: exactly the bytes
// encodeHeader would write for the parsed value (see codec.go). For version
// 3 it is the compact form, which has one encoding per value (compact.go).
func decodeHeaderBlock(blk *headerBlock, version int, data []byte) error {
	if version == Version3 {
		if !readCompactHeader(blk, data) {
			return errorf(ErrMalformed, "header is not a compact header")
		}
		return nil
	}
	if !readHeaderBlock(blk, data) {
		return errorf(ErrMalformed, "header is not canonical JSON")
	}
	return nil
}

// ValidID reports whether s may be a party id (a sender or recipient id).
func ValidID(s string) bool { return validID(s) }

// validID reports whether s may be a party id: 1 to 128 bytes of ASCII
// letters, digits and "-._:@". Ids become MQTT topic levels, so "/", "+",
// "#" and everything needing a JSON escape are excluded.
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
// bytes of UTF-8 with no control characters, no '"' or '\', no U+2028/U+2029
// (so JSON never escapes it) and no MQTT wildcard '+' or '#'.
func validTopic(s string) bool {
	if len(s) == 0 || len(s) > MaxTopicLength {
		return false
	}
	// ASCII, the usual case, byte by byte; from the first other byte on,
	// rune by rune.
	i := 0
	for ; i < len(s) && s[i] < utf8.RuneSelf; i++ {
		switch c := s[i]; {
		case c < 0x20, c == 0x7f, c == '"', c == '\\', c == '+', c == '#':
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
		switch {
		case r < 0x20, r == 0x7f, r == '"', r == '\\', r == '+', r == '#', r == 0x2028, r == 0x2029:
			return false
		}
	}
	return true
}

func validKid(s string) bool {
	if len(s) != 16 {
		return false
	}
	for i := 0; i < len(s); i++ {
		if !b64url.IsChar(s[i]) {
			return false
		}
	}
	return true
}

// members is the set of protections whose parameter members w has.
func (w *wireHeader) members() Protection {
	var p Protection
	if w.Enc != nil {
		p |= Encryption
	}
	if w.MAC != nil {
		p |= HMAC
	}
	if w.HOTP != nil {
		p |= HOTPCode
	}
	if w.Sig != nil {
		p |= Signature
	}
	return p
}

// header is the decoded, structurally valid header.
type header struct {
	wire      *wireHeader
	kind      Kind
	prot      Protection
	corr      []byte // in ids when it fits
	re        []byte // in ids, after the room for corr
	issuedAt  time.Time
	expiresAt time.Time
	// Room for the usual correlation id and, after it, a request digest;
	// a longer correlation id takes an allocation of its own.
	ids [correlationSize + sha256.Size]byte
}

// headerBlock holds a wire header, the members and arrays it points to in
// the common case, and its checked form, so that a header usually lives in
// one block of 704 bytes, which Open and Seal take from pools. More
// recipients than fit grow their slice as usual; the HOTP and encryption
// members are allocated when present.
type headerBlock struct {
	wire    wireHeader
	checked header
	mac     macParams
	sig     sigParams
	to      [1]string
	prot    [len(protectionNames)]string
	// text holds the base64url text a compact header's binary fields are
	// checked in (see readCompactHeader): the usual correlation id,
	// request digest and key ids fit.
	text [192]byte
}

// borrow returns b as a string without copying it: b must not change while
// the string, or any string cut from it, is in use.
func borrow(b []byte) string { return unsafe.String(unsafe.SliceData(b), len(b)) }

// appendText appends the base64url of raw to *text and returns it as a
// string in *text (see borrow). Strings returned earlier stay valid when
// the buffer grows: they keep pointing into the old one, which nothing
// writes again.
func appendText(text *[]byte, raw []byte) string {
	start := len(*text)
	*text = b64.AppendEncode(*text, raw)
	return borrow((*text)[start:])
}

// validate checks b.wire (see checkHeader) into b.checked.
func (b *headerBlock) validate(version int) (*header, error) {
	if err := checkHeader(&b.wire, version, &b.checked); err != nil {
		return nil, err
	}
	return &b.checked, nil
}

// checkHeader checks the structure of a decoded header (SPEC.md §3.2) into
// h, which it overwrites: the version of the envelope that carries it,
// required and forbidden members per kind, formats, and that "prot" lists
// exactly the parameter members present. Unknown algorithms are ErrPolicy;
// everything else is ErrMalformed.
func checkHeader(w *wireHeader, version int, h *header) error {
	bad := func(why string) error { return errorf(ErrMalformed, why) }
	*h = header{wire: w}
	if w.V != version {
		return bad("header version differs from envelope version")
	}
	kind, ok := parseKind(w.Kind)
	if !ok {
		return bad("unknown kind")
	}
	h.kind = kind
	if !validID(w.From) {
		return bad("bad sender id")
	}
	if len(w.To) > MaxRecipients {
		return bad("too many recipients")
	}
	for i, to := range w.To {
		if !validID(to) {
			return bad("bad recipient id")
		}
		for _, prev := range w.To[:i] {
			if prev == to {
				return bad("duplicate recipient id")
			}
		}
	}
	if kind != Event && len(w.To) != 1 {
		return bad("requests, replies and errors have exactly one recipient")
	}
	if !validTopic(w.Topic) {
		return bad("bad topic")
	}
	switch kind {
	case Request:
		if !validTopic(w.ReplyTo) {
			return bad("request without a valid replyTo")
		}
	default:
		if w.ReplyTo != "" {
			return bad("replyTo outside a request")
		}
	}
	var err error
	switch kind {
	case Request, Reply, ErrorReply:
		if h.corr, err = decodeInto(h.ids[:0:correlationSize], w.Corr, MaxCorrelation); err != nil || len(h.corr) == 0 {
			return bad("bad correlation id")
		}
	default:
		if w.Corr != "" {
			return bad("correlation id on an event")
		}
	}
	switch kind {
	case Reply, ErrorReply:
		if h.re, err = decodeInto(h.ids[correlationSize:correlationSize], w.Re, sha256.Size); err != nil || len(h.re) != sha256.Size {
			return bad("reply without a valid request digest")
		}
	default:
		if w.Re != "" {
			return bad("request digest outside a reply")
		}
	}
	if w.Ctr == 0 {
		return bad("counter must be at least 1")
	}
	if w.Iat < 0 || w.Exp <= w.Iat {
		return bad("bad timestamps")
	}
	h.issuedAt = time.UnixMilli(w.Iat)
	h.expiresAt = time.UnixMilli(w.Exp)

	// "prot" must list, in canonical order, exactly the members present.
	if len(w.Prot) == 0 {
		return bad("empty protection list")
	}
	present := w.members()
	i := 0
	for _, n := range protectionNames {
		if present&n.p == 0 {
			continue
		}
		if i >= len(w.Prot) || w.Prot[i] != n.wire {
			return bad("protection list does not match the header")
		}
		i++
	}
	if i != len(w.Prot) {
		return bad("protection list does not match the header")
	}
	h.prot = present

	pairwise := false
	if w.MAC != nil {
		if w.MAC.Alg != HS256 {
			return errorf(ErrPolicy, "unknown MAC algorithm")
		}
		if !validKid(w.MAC.Kid) {
			return bad("bad key id")
		}
		pairwise = true
	}
	if w.HOTP != nil {
		if !validKid(w.HOTP.Kid) || (len(w.HOTP.Code) != 6 && len(w.HOTP.Code) != 8) {
			return bad("bad HOTP member")
		}
		for i := 0; i < len(w.HOTP.Code); i++ {
			if w.HOTP.Code[i] < '0' || w.HOTP.Code[i] > '9' {
				return bad("bad HOTP member")
			}
		}
		pairwise = true
	}
	if w.Sig != nil {
		if !signatureAlgorithm(w.Sig.Alg) {
			return errorf(ErrPolicy, "unknown signature algorithm")
		}
		if !validKid(w.Sig.Kid) {
			return bad("bad key id")
		}
	}
	if w.Enc != nil {
		if w.Enc.Alg != A256GCM {
			return errorf(ErrPolicy, "unknown content encryption algorithm")
		}
		switch {
		case w.Enc.Kid != "" && len(w.Enc.Rcpt) == 0:
			if !validKid(w.Enc.Kid) {
				return bad("bad key id")
			}
			pairwise = true
		case w.Enc.Kid == "" && len(w.Enc.Rcpt) > 0:
			if len(w.Enc.Rcpt) > MaxRecipients {
				return bad("too many wrapped keys")
			}
			for i, r := range w.Enc.Rcpt {
				if !wrapAlgorithm(r.Alg) {
					return errorf(ErrPolicy, "unknown key wrap algorithm")
				}
				if !validKid(r.Kid) || len(r.WK) == 0 || len(r.WK) > b64.EncodedLen(maxWrappedSize) || !b64url.Valid(r.WK) {
					return bad("bad wrapped key")
				}
				for _, prev := range w.Enc.Rcpt[:i] {
					if prev.Kid == r.Kid {
						return bad("duplicate wrapped key id")
					}
				}
			}
		default:
			return bad("encryption needs exactly one of kid and rcpt")
		}
	}
	if pairwise && len(w.To) != 1 {
		return bad("pairwise keys need exactly one recipient")
	}
	return nil
}
