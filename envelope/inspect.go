package envelope

import (
	"bytes"
	"strings"
	"time"
)

// Header is the decoded header of an envelope that has NOT been verified:
// every field is whatever the sender — or the broker — wrote. Use it only to
// route a message to the right Open call (for example to find the pending
// request a reply claims to answer) or to show an envelope to a person;
// never to decide anything.
type Header struct {
	Version       int // envelope format: Version1, Version2 or Version3
	Kind          Kind
	From          string
	To            []string
	Topic         string
	ReplyTo       string
	CorrelationID []byte
	InReplyTo     []byte
	Counter       uint64
	IssuedAt      time.Time
	ExpiresAt     time.Time
	Protections   Protection
	// Algorithms and KeyIDs list, in header order, the algorithm and key id
	// of each MAC, HOTP, signature and encryption key named.
	Algorithms []Algorithm
	KeyIDs     []string

	// What Opener.OpenInspected continues from; the exported fields above
	// are copies for reading and are never trusted.
	env    *Envelope
	parsed *header
}

// Inspect checks the size (0 means DefaultMaxSize), the outer form and the
// header structure of data, the cheap steps 1 to 3 of Open, and returns the
// unverified header. Its errors are those of Open's first steps. It decodes
// only the header member; the payload, MAC and signature members are
// checked (in version 1, to be strict base64url) and left for
// Opener.OpenInspected, which opens the envelope from here. Inspect keeps
// its own copy of data for that, so the caller may reuse data at once.
func Inspect(data []byte, maxSize int) (*Header, error) {
	if maxSize <= 0 {
		maxSize = DefaultMaxSize
	}
	if len(data) > maxSize {
		return nil, ErrTooLarge
	}
	p := new(parsed)
	h, err := parseChecked(p, bytes.Clone(data), maxSize, false)
	if err != nil {
		return nil, err
	}
	env := &p.env
	w := h.wire
	out := &Header{
		Version: env.Version, Kind: h.kind, From: w.From, To: append([]string(nil), w.To...), Topic: w.Topic, ReplyTo: w.ReplyTo,
		Counter: w.Ctr, IssuedAt: h.issuedAt, ExpiresAt: h.expiresAt, Protections: h.prot,
		env: env, parsed: h,
	}
	out.CorrelationID, out.InReplyTo = copyIDs(nil, h.corr, h.re)
	add := func(alg Algorithm, kid string) {
		out.Algorithms = append(out.Algorithms, alg)
		out.KeyIDs = append(out.KeyIDs, kid)
	}
	if w.Enc != nil {
		if w.Enc.Kid != "" {
			add(A256GCM, w.Enc.Kid)
		}
		for _, r := range w.Enc.Rcpt {
			add(r.Alg, r.Kid)
		}
	}
	if w.MAC != nil {
		add(w.MAC.Alg, w.MAC.Kid)
	}
	if w.HOTP != nil {
		add(HOTP, w.HOTP.Kid)
	}
	if w.Sig != nil {
		add(w.Sig.Alg, w.Sig.Kid)
	}
	return out, nil
}

// Routing is what Peek reads from an envelope's unverified header: enough
// to route the envelope to where it is opened, nothing to decide on.
type Routing struct {
	Kind Kind
	// From is the sender the header names.
	From string
	// Counter is the counter the header carries.
	Counter uint64
	// InReplyTo is, for a reply or an error reply, the digest of the
	// request it claims to answer; zero for other kinds.
	InReplyTo [32]byte
}

// Peek runs Inspect's checks on data and returns what routes it: its kind,
// sender and counter, and the digest of the request a reply claims to
// answer. It keeps nothing of data. It is for routing: a receiver finds
// with it whatever waits for that request (or orders one sender's
// messages, or sheds senders it does not know) and hands data over, to be
// checked in full by Opener.Open there. Nothing Peek returns is
// authenticated.
func Peek(data []byte, maxSize int) (Routing, error) {
	p := parsedPool.Get().(*parsed)
	defer func() {
		*p = parsed{}
		parsedPool.Put(p)
	}()
	h, err := parseChecked(p, data, maxSize, false)
	if err != nil {
		return Routing{}, err
	}
	// The header's strings may point into data: the sender is copied.
	r := Routing{Kind: h.kind, From: strings.Clone(h.wire.From), Counter: h.wire.Ctr}
	// checkHeader holds a reply's digest to its length.
	copy(r.InReplyTo[:], h.re)
	return r, nil
}

// DigestOf returns the digest that identifies an envelope (SPEC.md §8):
// SHA-256 of its signing input. It is computed from public bytes and proves
// nothing; Sealed.Digest and Message.Digest give the same value.
func DigestOf(data []byte) [32]byte {
	e, err := Parse(data)
	if err != nil {
		return [32]byte{}
	}
	return e.signingInput().digest()
}
