package envelope

import "context"

// Routed is an envelope whose first steps of Open — its size, frame and
// header (SPEC.md §9, steps 1 to 3) — Route has taken, so that a receiver
// can route it on what its header claims and open it later with
// Opener.OpenRouted, which takes the remaining steps without reading the
// envelope again. Nothing in it is verified: its sender, kind, counter
// and the request it claims to answer are whatever the sender, or the
// broker, wrote. It refers to the bytes it was read from: OpenRouted
// refuses them if their header changed since (ErrMalformed), and
// authenticates the rest as Open does. It may be opened more than once,
// and by several goroutines at once, as long as nothing writes to those
// bytes meanwhile.
type Routed struct {
	f frame
	h header
}

// Route takes Open's first steps on data (maxSize 0 means DefaultMaxSize),
// as Peek does, and returns the envelope read, to be opened with
// Opener.OpenRouted: the way to route an envelope to where it is opened
// (the pending request a reply claims to answer, the queue of its
// sender) and to open it there without reading it twice. Its errors are
// those of Open's first steps.
func Route(data []byte, maxSize int) (*Routed, error) {
	r := &Routed{}
	f, err := parse(&r.h, data, maxSize)
	if err != nil {
		return nil, err
	}
	r.f = f
	return r, nil
}

// Kind is the kind the header claims.
func (r *Routed) Kind() Kind { return r.h.kind }

// From is the sender the header claims.
func (r *Routed) From() string { return r.h.from }

// Counter is the counter the header claims.
func (r *Routed) Counter() uint64 { return r.h.ctr }

// InReplyTo is, for a reply or an error reply, the digest of the request
// it claims to answer; zero for other kinds.
func (r *Routed) InReplyTo() (d [32]byte) {
	copy(d[:], r.h.re)
	return d
}

// Header returns everything the header claims, as Peek does.
func (r *Routed) Header() *Header { return peeked(&r.h) }

// Len is the length of the envelope, in bytes.
func (r *Routed) Len() int { return len(r.f.data) }

// OpenRouted opens an envelope that Route read: it verifies it and
// returns the message exactly as Open does with the bytes Route was
// given, running every remaining check of SPEC.md §9 in the same order
// (and the size check again, against this Opener's MaxSize).
func (o *Opener) OpenRouted(ctx context.Context, r *Routed, want *Expect) (*Message, error) {
	if r == nil {
		return nil, errorf(ErrMalformed, "nothing routed to open")
	}
	if len(r.f.data) > maxSizeOr(o.MaxSize) {
		return nil, ErrTooLarge
	}
	if string(r.f.header) != r.h.text {
		return nil, errorf(ErrMalformed, "the header changed after Route")
	}
	return o.open(ctx, r.f, &r.h, want)
}
