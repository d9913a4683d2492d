package envelope

import (
	"bytes"
	"crypto/sha256"
	"hash"
	"io"
	"sync"

	"github.com/mqttsec/mqttsec/internal/b64url"
)

// The outer envelope is one fixed JSON template (SPEC.md §2):
//
//	{"v":1,"h":"<b64>","p":"<b64>"[,"mac":"<b64>"][,"sig":"<b64>"]}
//
// with no whitespace, members in this order, and base64url without padding.
// Parse accepts exactly this form, so every envelope has one encoding and
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
// base64url text exactly as received: these bytes, never a re-encoding, are
// what the MAC, the signature and the AEAD cover.
type Envelope struct {
	Version int

	rawHeader  []byte
	rawPayload []byte
	rawMAC     []byte
	rawSig     []byte

	Header    []byte // decoded header JSON
	Payload   []byte // decoded payload; ciphertext when encrypted
	MAC       []byte // decoded HMAC tag, nil when absent
	Signature []byte // decoded signature, nil when absent
}

// Parse checks that data is a canonical version-1 envelope and decodes its
// members. It does not parse the header JSON or verify anything. Errors are
// ErrMalformed or ErrUnsupportedVersion.
func Parse(data []byte) (*Envelope, error) {
	e, err := parseOuter(data)
	if err != nil {
		return nil, err
	}
	if err := e.decodeMembers(true); err != nil {
		return nil, err
	}
	return e, nil
}

// parseOuter checks the template and the version and finds the members'
// text, without decoding it.
func parseOuter(data []byte) (*Envelope, error) {
	if !bytes.HasPrefix(data, []byte(outerPrefix)) {
		return nil, errorf(ErrMalformed, "not an envelope")
	}
	rest := data[len(outerPrefix):]
	n := 0
	for n < len(rest) && n < 10 && rest[n] >= '0' && rest[n] <= '9' {
		n++
	}
	if n == 0 || n > 9 || (rest[0] == '0' && n > 1) {
		return nil, errorf(ErrMalformed, "bad version number")
	}
	v := 0
	for _, c := range rest[:n] {
		v = v*10 + int(c-'0')
	}
	if v != Version {
		return nil, ErrUnsupportedVersion
	}
	rest = rest[n:]
	e := &Envelope{Version: v}
	var ok bool
	if e.rawHeader, rest, ok = member(rest, memberH); !ok || len(e.rawHeader) == 0 {
		return nil, errorf(ErrMalformed, "bad header member")
	}
	// The closing quote of each member is the opening of the next literal.
	if e.rawPayload, rest, ok = member(rest, memberP); !ok {
		return nil, errorf(ErrMalformed, "bad payload member")
	}
	if bytes.HasPrefix(rest, []byte(memberMAC)) {
		if e.rawMAC, rest, ok = member(rest, memberMAC); !ok || len(e.rawMAC) == 0 {
			return nil, errorf(ErrMalformed, "bad mac member")
		}
	}
	if bytes.HasPrefix(rest, []byte(memberSig)) {
		if e.rawSig, rest, ok = member(rest, memberSig); !ok || len(e.rawSig) == 0 {
			return nil, errorf(ErrMalformed, "bad sig member")
		}
	}
	if string(rest) != outerSuffix {
		return nil, errorf(ErrMalformed, "trailing data")
	}
	// Go's decoder skips CR and LF even in strict mode; the format has no
	// room for either anywhere.
	if bytes.IndexByte(data, '\n') >= 0 || bytes.IndexByte(data, '\r') >= 0 {
		return nil, errorf(ErrMalformed, "line break in the envelope")
	}
	return e, nil
}

// checkBody checks, without decoding them, that the payload, MAC and
// signature members are strict base64url: what decodeBody would accept.
func (e *Envelope) checkBody() error {
	for _, text := range [][]byte{e.rawPayload, e.rawMAC, e.rawSig} {
		if !b64url.Valid(text) {
			return errorf(ErrMalformed, "bad base64url")
		}
	}
	return nil
}

// decodeMember decodes a base64url header member, strictly (b64url).
func decodeMember(s string) ([]byte, error) {
	b, err := b64url.DecodeString(s)
	if err != nil {
		return nil, errorf(ErrMalformed, "bad base64url")
	}
	return b, nil
}

// decodeMembers decodes the header member and, with body, the payload, MAC
// and signature members too, all into one buffer.
func (e *Envelope) decodeMembers(body bool) error {
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
	return appendOuter(nil, e.rawHeader, e.rawPayload, e.rawMAC, e.rawSig)
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

// signingInputPrefix starts the signing input, whose SHA-256 is the digest.
const signingInputPrefix = "mqttsec.v1."

// signingInput is "mqttsec.v1." || h || "." || p, with h and p the base64url
// text of the header and payload members exactly as sent.
type signingInput struct{ h, p []byte }

var (
	signingInputPrefixBytes = []byte(signingInputPrefix)
	signingInputDot         = []byte{'.'}
)

func (si signingInput) writeTo(w io.Writer) {
	w.Write(signingInputPrefixBytes)
	w.Write(si.h)
	w.Write(signingInputDot)
	w.Write(si.p)
}

func (si signingInput) bytes() []byte {
	b := make([]byte, 0, len(signingInputPrefix)+len(si.h)+1+len(si.p))
	b = append(b, signingInputPrefix...)
	b = append(b, si.h...)
	b = append(b, '.')
	return append(b, si.p...)
}

// digest is SHA-256 of the signing input (SPEC.md §4.1): the value the
// authenticated block carries, and a reply's "re".
func (si signingInput) digest() [32]byte {
	st, _ := digestPool.Get().(*digestState)
	if st == nil {
		st = &digestState{h: sha256.New()}
	}
	st.h.Reset()
	si.writeTo(st.h)
	d := [32]byte(st.h.Sum(st.sum[:0]))
	digestPool.Put(st)
	return d
}

// digestState is a SHA-256 and room for its output, reused through
// digestPool.
type digestState struct {
	h   hash.Hash
	sum [sha256.Size]byte
}

var digestPool sync.Pool

// authPrefix starts the authenticated block.
const authPrefix = "mqttsec.v1.digest."

// authBlock is what every MAC and signature covers (SPEC.md §4.1):
// "mqttsec.v1.digest." || SHA-256(SI), 50 bytes. The message is hashed once,
// whatever its protections; the MAC and signature work on a short block.
type authBlock [len(authPrefix) + sha256.Size]byte

func authBlockOf(digest [32]byte) authBlock {
	var a authBlock
	copy(a[:], authPrefix)
	copy(a[len(authPrefix):], digest[:])
	return a
}

// SigningInput returns the signing input SI of SPEC.md §4.1: its SHA-256 is
// the envelope's digest, which the MAC and signature cover.
func (e *Envelope) SigningInput() []byte {
	return signingInput{h: e.rawHeader, p: e.rawPayload}.bytes()
}

// HeaderText returns the header member exactly as sent: the base64url text
// that is also the AEAD's associated data.
func (e *Envelope) HeaderText() []byte { return append([]byte(nil), e.rawHeader...) }
