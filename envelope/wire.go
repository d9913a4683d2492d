package envelope

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"hash"
	"io"
	"sync"

	"github.com/mqttsec/mqttsec/internal/b64url"
)

// A version-1 envelope is one fixed JSON template (SPEC.md §2):
//
//	{"v":1,"h":"<b64>","p":"<b64>"[,"mac":"<b64>"][,"sig":"<b64>"]}
//
// with no whitespace, members in this order, and base64url without padding.
// A version-2 envelope carries the same members as bytes, each after its
// length (SPEC.md §13):
//
//	0x02 || u32(len h) || h || u32(len p) || p || u32(len mac) || mac || u32(len sig) || sig
//
// Parse accepts exactly these forms, so every envelope has one encoding and
// Marshal(Parse(b)) == b.

const (
	outerPrefix = `{"v":`
	memberH     = `,"h":"`
	memberP     = `","p":"`
	memberMAC   = `","mac":"`
	memberSig   = `","sig":"`
	outerSuffix = `"}`
)

// Envelope is a parsed, not yet verified envelope. The raw fields hold the
// members exactly as received (version 1: their base64url text; version 2:
// their bytes): these bytes, never a re-encoding, are what the MAC, the
// signature and the AEAD cover.
type Envelope struct {
	// Version is the format: Version1 (text), Version2 (binary) or
	// Version3 (compact).
	Version int

	rawHeader  []byte
	rawPayload []byte
	rawMAC     []byte
	rawSig     []byte

	Header    []byte // decoded header: JSON, or in version 3 the compact header
	Payload   []byte // decoded payload; ciphertext when encrypted
	MAC       []byte // decoded HMAC tag, nil when absent
	Signature []byte // decoded signature, nil when absent
}

// Parse checks that data is a canonical envelope of version 1, 2 or 3 and
// decodes its members into buffers of their own. It does not parse the
// header or verify anything. Errors are ErrMalformed or
// ErrUnsupportedVersion.
func Parse(data []byte) (*Envelope, error) {
	e := new(Envelope)
	if err := parseOuter(e, data); err != nil {
		return nil, err
	}
	if err := e.decodeMembers(true); err != nil {
		return nil, err
	}
	if framed(e.Version) {
		// decodeMembers left the members where they are (see decodeBody).
		e.Header, e.Payload = bytes.Clone(e.Header), bytes.Clone(e.Payload)
		e.MAC, e.Signature = bytes.Clone(e.MAC), bytes.Clone(e.Signature)
	}
	return e, nil
}

// parseOuter checks the template and the version and finds the members'
// text, without decoding it, filling e.
func parseOuter(e *Envelope, data []byte) error {
	if len(data) > 0 && data[0] < ' ' {
		// A first byte below 0x20 marks a binary envelope: 0x02 and 0x03
		// are defined, 0x04 to 0x1F are reserved for later versions.
		switch {
		case framed(int(data[0])):
			return parseFrame(e, data)
		case data[0] > Version3:
			return ErrUnsupportedVersion
		}
		return errorf(ErrMalformed, "not an envelope")
	}
	if !bytes.HasPrefix(data, []byte(outerPrefix)) {
		return errorf(ErrMalformed, "not an envelope")
	}
	rest := data[len(outerPrefix):]
	n := 0
	for n < len(rest) && n < 10 && rest[n] >= '0' && rest[n] <= '9' {
		n++
	}
	if n == 0 || n > 9 || (rest[0] == '0' && n > 1) {
		return errorf(ErrMalformed, "bad version number")
	}
	v := 0
	for _, c := range rest[:n] {
		v = v*10 + int(c-'0')
	}
	// Version 2 has no text form.
	if v != Version1 {
		return ErrUnsupportedVersion
	}
	rest = rest[n:]
	*e = Envelope{Version: v}
	var ok bool
	if e.rawHeader, rest, ok = member(rest, memberH); !ok || len(e.rawHeader) == 0 {
		return errorf(ErrMalformed, "bad header member")
	}
	// The closing quote of each member is the opening of the next literal.
	if e.rawPayload, rest, ok = member(rest, memberP); !ok {
		return errorf(ErrMalformed, "bad payload member")
	}
	if bytes.HasPrefix(rest, []byte(memberMAC)) {
		if e.rawMAC, rest, ok = member(rest, memberMAC); !ok || len(e.rawMAC) == 0 {
			return errorf(ErrMalformed, "bad mac member")
		}
	}
	if bytes.HasPrefix(rest, []byte(memberSig)) {
		if e.rawSig, rest, ok = member(rest, memberSig); !ok || len(e.rawSig) == 0 {
			return errorf(ErrMalformed, "bad sig member")
		}
	}
	if string(rest) != outerSuffix {
		return errorf(ErrMalformed, "trailing data")
	}
	// Go's decoder skips CR and LF even in strict mode; the format has no
	// room for either anywhere.
	if bytes.IndexByte(data, '\n') >= 0 || bytes.IndexByte(data, '\r') >= 0 {
		return errorf(ErrMalformed, "line break in the envelope")
	}
	return nil
}

// checkBody checks, without decoding them, that the payload, MAC and
// signature members are strict base64url: what decodeBody would accept.
func (e *Envelope) checkBody() error {
	if framed(e.Version) {
		return nil // bytes, nothing to check
	}
	for _, text := range [][]byte{e.rawPayload, e.rawMAC, e.rawSig} {
		if !b64url.Valid(text) {
			return errorf(ErrMalformed, "bad base64url")
		}
	}
	return nil
}

// decodeInto decodes the base64url header member s, strictly, into dst's
// spare capacity when it fits (a new buffer otherwise), and returns the
// decoded bytes alone, capped at their length. A member that would decode to
// more than limit bytes is malformed, and is not decoded.
func decodeInto(dst []byte, s string, limit int) ([]byte, error) {
	if b64.DecodedLen(len(s)) > limit {
		return nil, errorf(ErrMalformed, "member too long")
	}
	if b64.DecodedLen(len(s)) > cap(dst)-len(dst) {
		dst = nil
	}
	out, err := b64url.AppendDecodeString(dst[len(dst):], s)
	if err != nil {
		return nil, errorf(ErrMalformed, "bad base64url")
	}
	return out[:len(out):len(out)], nil
}

// decodeMembers decodes the header member and, with body, the payload, MAC
// and signature members too, all into one buffer.
func (e *Envelope) decodeMembers(body bool) error {
	if framed(e.Version) {
		// The members are bytes already. The header is read where it is
		// (its parse copies what it keeps); see decodeBody for the rest.
		e.Header = e.rawHeader
		if body {
			return e.decodeBody(nil)
		}
		return nil
	}
	n := b64.DecodedLen(len(e.rawHeader))
	if body {
		n += e.bodyDecodedLen()
	}
	buf := make([]byte, 0, n)
	var err error
	if e.Header, buf, err = decodeB64(buf, e.rawHeader); err != nil {
		return err
	}
	if body {
		return e.decodeBody(buf)
	}
	return nil
}

func (e *Envelope) bodyDecodedLen() int {
	return b64.DecodedLen(len(e.rawPayload)) + b64.DecodedLen(len(e.rawMAC)) + b64.DecodedLen(len(e.rawSig))
}

// decodeBody decodes the payload, MAC and signature members into buf, which
// has room for them (nil: a buffer of its own).
func (e *Envelope) decodeBody(buf []byte) error {
	if framed(e.Version) {
		// The members are bytes already and are read where they are, in
		// the caller's bytes: Open copies the payload, or decrypts it,
		// into a buffer of its own once every check has passed, and
		// Parse copies every member.
		e.Payload, e.MAC, e.Signature = e.rawPayload, e.rawMAC, e.rawSig
		return nil
	}
	if buf == nil {
		buf = make([]byte, 0, e.bodyDecodedLen())
	}
	var err error
	if e.Payload, buf, err = decodeB64(buf, e.rawPayload); err != nil {
		return err
	}
	if e.rawMAC != nil {
		if e.MAC, buf, err = decodeB64(buf, e.rawMAC); err != nil {
			return err
		}
	}
	if e.rawSig != nil {
		if e.Signature, _, err = decodeB64(buf, e.rawSig); err != nil {
			return err
		}
	}
	return nil
}

// member reads literal then base64url characters up to (not including) the
// next '"'. The quote stays in rest: it begins the next literal.
func member(in []byte, literal string) (value, rest []byte, ok bool) {
	// Every literal after the first starts with the closing quote of the
	// previous value; the header literal does not.
	if !bytes.HasPrefix(in, []byte(literal)) {
		return nil, in, false
	}
	in = in[len(literal):]
	// The strict base64url decoder later refuses any other character, so
	// finding the closing quote is enough here.
	i := bytes.IndexByte(in, '"')
	if i < 0 {
		return nil, in, false
	}
	return in[:i], in[i:], true
}

// decodeB64 appends the decoding of text to buf, which has the capacity for
// it, and returns the decoded value (capacity clipped, so that appending to
// it cannot overwrite the next member) and buf extended.
func decodeB64(buf, text []byte) (value, rest []byte, err error) {
	start := len(buf)
	buf, err = b64.AppendDecode(buf, text)
	if err != nil {
		return nil, nil, errorf(ErrMalformed, "bad base64url")
	}
	return buf[start:len(buf):len(buf)], buf, nil
}

// Marshal returns the envelope's encoding: for a parsed envelope, exactly the
// bytes it was parsed from.
func (e *Envelope) Marshal() []byte {
	if framed(e.Version) {
		return appendFrame(nil, e.Version, e.rawHeader, e.rawPayload, e.rawMAC, e.rawSig)
	}
	return appendOuter(nil, e.rawHeader, e.rawPayload, e.rawMAC, e.rawSig)
}

// frameFixed is the length of a version-2 envelope's fixed part: the
// version byte and the four member lengths.
const frameFixed = 1 + 4*4

// framed reports whether envelopes of version v are binary frames (SPEC.md
// §13.1): versions 2 and 3, which differ in their headers only.
func framed(v int) bool { return v == Version2 || v == Version3 }

// parseFrame reads a version-2 or 3 envelope: four members, each after its
// length as 4 bytes big-endian, and nothing after the last. The header is
// not empty; an empty mac or sig member is an absent one. It fills e.
func parseFrame(e *Envelope, data []byte) error {
	*e = Envelope{Version: int(data[0])}
	rest := data[1:]
	var members [4][]byte
	for i := range members {
		if len(rest) < 4 {
			return errorf(ErrMalformed, "truncated envelope")
		}
		n := binary.BigEndian.Uint32(rest)
		rest = rest[4:]
		if uint64(n) > uint64(len(rest)) {
			return errorf(ErrMalformed, "member longer than the envelope")
		}
		if n > 0 {
			members[i] = rest[:n:n]
		}
		rest = rest[n:]
	}
	if len(rest) != 0 {
		return errorf(ErrMalformed, "trailing data")
	}
	if members[0] == nil {
		return errorf(ErrMalformed, "bad header member")
	}
	e.rawHeader, e.rawPayload, e.rawMAC, e.rawSig = members[0], members[1], members[2], members[3]
	if e.rawPayload == nil {
		e.rawPayload = []byte{}
	}
	return nil
}

// appendFrame writes an envelope of version 2 or 3; nil and empty members
// are written as absent.
func appendFrame(dst []byte, version int, h, p, mac, sig []byte) []byte {
	f := framing(version)
	dst = f.start(dst, h)
	dst = f.payloadStart(dst, len(p))
	return f.finish(append(dst, p...), mac, sig)
}

func appendOuter(dst, h, p, mac, sig []byte) []byte {
	dst = append(dst, outerPrefix...)
	dst = append(dst, '1')
	dst = append(dst, memberH...)
	dst = append(dst, h...)
	dst = append(dst, memberP...)
	dst = append(dst, p...)
	if mac != nil {
		dst = append(dst, memberMAC...)
		dst = append(dst, mac...)
	}
	if sig != nil {
		dst = append(dst, memberSig...)
		dst = append(dst, sig...)
	}
	return append(dst, outerSuffix...)
}

// signingInputPrefixes are the signing inputs' prefixes, by version.
var signingInputPrefixes = [...][]byte{
	Version1: []byte("mqttsec.v1."),
	Version2: []byte("mqttsec.v2."),
	Version3: []byte("mqttsec.v3."),
}

// signingInput is, for version 1, "mqttsec.v1." || h || "." || p, with h and
// p the base64url text of the header and payload members exactly as sent;
// for version 2, "mqttsec.v2." || 0x02 || u32(len h) || h || u32(len p) || p,
// that is the envelope's bytes up to the end of the payload; version 3 is
// the same with "mqttsec.v3." and 0x03.
type signingInput struct {
	v    int
	h, p []byte
}

var signingInputDot = []byte{'.'}

// writeTo writes the signing input to w; scratch (kept by the caller, as w
// may keep what it is given) holds the binary form's version and lengths.
func (si signingInput) writeTo(w io.Writer, scratch *[1 + 4]byte) {
	w.Write(signingInputPrefixes[si.v])
	if framed(si.v) {
		n := scratch
		n[0] = byte(si.v)
		binary.BigEndian.PutUint32(n[1:], uint32(len(si.h)))
		w.Write(n[:])
		w.Write(si.h)
		binary.BigEndian.PutUint32(n[1:], uint32(len(si.p)))
		w.Write(n[1:])
		w.Write(si.p)
		return
	}
	w.Write(si.h)
	w.Write(signingInputDot)
	w.Write(si.p)
}

func (si signingInput) bytes() []byte {
	var b bytes.Buffer
	b.Grow(len(signingInputPrefixes[si.v]) + 9 + len(si.h) + len(si.p))
	si.writeTo(&b, new([1 + 4]byte))
	return b.Bytes()
}

// digest is SHA-256 of the signing input (SPEC.md §4.1): the value the
// authenticated block carries, and a reply's "re".
func (si signingInput) digest() [32]byte {
	st, _ := digestPool.Get().(*digestState)
	if st == nil {
		st = &digestState{h: sha256.New()}
	}
	st.h.Reset()
	si.writeTo(st.h, &st.scratch)
	d := [32]byte(st.h.Sum(st.sum[:0]))
	digestPool.Put(st)
	return d
}

// digestState is a SHA-256 and room for its output, reused through
// digestPool.
type digestState struct {
	h       hash.Hash
	sum     [sha256.Size]byte
	scratch [1 + 4]byte // see signingInput.writeTo
}

var digestPool sync.Pool

// authPrefixes are the authenticated blocks' prefixes, by version; all are
// as long.
var authPrefixes = [...]string{
	Version1: "mqttsec.v1.digest.",
	Version2: "mqttsec.v2.digest.",
	Version3: "mqttsec.v3.digest.",
}

const authPrefixLen = len("mqttsec.v1.digest.")

// authBlock is what every MAC and signature covers (SPEC.md §4.1):
// "mqttsec.vN.digest." || SHA-256(SI), 50 bytes. The message is hashed once,
// whatever its protections; the MAC and signature work on a short block.
type authBlock [authPrefixLen + sha256.Size]byte

func authBlockOf(version int, digest [32]byte) authBlock {
	var a authBlock
	copy(a[:], authPrefixes[version])
	copy(a[authPrefixLen:], digest[:])
	return a
}

// signingInput returns what the envelope's digest is computed over.
func (e *Envelope) signingInput() signingInput {
	return signingInput{v: e.Version, h: e.rawHeader, p: e.rawPayload}
}

// SigningInput returns the signing input SI of SPEC.md §4.1: its SHA-256 is
// the envelope's digest, which the MAC and signature cover.
func (e *Envelope) SigningInput() []byte { return e.signingInput().bytes() }

// HeaderText returns the header member exactly as sent (version 1: its
// base64url text; version 2: the header JSON; version 3: the compact
// header): the AEAD's associated data.
func (e *Envelope) HeaderText() []byte { return append([]byte(nil), e.rawHeader...) }

// framing writes one version's outer form around the members Seal produces
// one after the other, straight into the envelope's buffer.
type framing int

// encodedLen is how long a member of n bytes is in the envelope.
func (f framing) encodedLen(n int) int {
	if framed(int(f)) {
		return n
	}
	return b64.EncodedLen(n)
}

// size is the length of an envelope with a header of h bytes, a payload of
// p bytes and neither MAC nor signature.
func (f framing) size(h, p int) int {
	if framed(int(f)) {
		return frameFixed + h + p
	}
	return len(outerPrefix) + 1 + len(memberH) + b64.EncodedLen(h) + len(memberP) + b64.EncodedLen(p) + len(outerSuffix)
}

// member is what a MAC or signature of n bytes adds to the size.
func (f framing) member(n int) int {
	if framed(int(f)) {
		return n
	}
	return len(memberMAC) + b64.EncodedLen(n) // memberSig is as long
}

// start writes the envelope up to the end of the header member.
func (f framing) start(dst, header []byte) []byte {
	if framed(int(f)) {
		dst = append(dst, byte(f))
		dst = binary.BigEndian.AppendUint32(dst, uint32(len(header)))
		return append(dst, header...)
	}
	dst = append(dst, outerPrefix...)
	dst = append(dst, '1')
	dst = append(dst, memberH...)
	return b64.AppendEncode(dst, header)
}

// payloadStart writes what comes before a payload member of n bytes.
func (f framing) payloadStart(dst []byte, n int) []byte {
	if framed(int(f)) {
		return binary.BigEndian.AppendUint32(dst, uint32(n))
	}
	return append(dst, memberP...)
}

// appendMember writes a member's value.
func (f framing) appendMember(dst, m []byte) []byte {
	if framed(int(f)) {
		return append(dst, m...)
	}
	return b64.AppendEncode(dst, m)
}

// finish writes the MAC and signature members (nil: absent) and the end.
func (f framing) finish(dst, tag, sig []byte) []byte {
	if framed(int(f)) {
		dst = binary.BigEndian.AppendUint32(dst, uint32(len(tag)))
		dst = append(dst, tag...)
		dst = binary.BigEndian.AppendUint32(dst, uint32(len(sig)))
		return append(dst, sig...)
	}
	if tag != nil {
		dst = append(dst, memberMAC...)
		dst = b64.AppendEncode(dst, tag)
	}
	if sig != nil {
		dst = append(dst, memberSig...)
		dst = b64.AppendEncode(dst, sig)
	}
	return append(dst, outerSuffix...)
}
