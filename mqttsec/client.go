package mqttsec

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"go.opentelemetry.io/otel/trace"

	"github.com/mqttsec/mqttsec/envelope"
	"github.com/mqttsec/mqttsec/mqttsec/replay"
)

// Client sends requests to servers and waits for their sealed replies. It
// also publishes and subscribes to events. Many requests may be in flight at
// once; it is safe for concurrent use.
type Client struct {
	*node

	mu      sync.Mutex
	pending map[[32]byte]*pending
	closed  chan struct{} // closed by Close: waiting requests return ErrClosed
}

type pending struct {
	// candidates are replies whose header names this request, still to be
	// opened by the waiting Request; buffered, so the transport's goroutine
	// never waits. Each is a payload as it arrived on the reply topic,
	// which the transport gave up (see Transport), as envelope.Route read
	// it; nothing of it is trusted before OpenRouted.
	candidates chan *envelope.Routed
}

// candidateBuffer is how many replies naming one request may wait to be
// opened. Beyond it, more are dropped and counted as overload: the waiting
// Request opens them as fast as they come, so only a flood of forgeries
// that name this very request can fill it.
const candidateBuffer = 8

// NewClient returns a Client; Start connects it.
func NewClient(cfg Config) (*Client, error) {
	n, err := newNode(cfg)
	if err != nil {
		return nil, err
	}
	c := &Client{node: n, pending: map[[32]byte]*pending{}, closed: make(chan struct{})}
	n.replies = c.routeReply
	return c, nil
}

// Start connects and subscribes to the client's reply topic.
func (c *Client) Start(ctx context.Context) error {
	return c.start(ctx, c.replyTopic)
}

// Close disconnects. Requests still waiting return ErrClosed.
func (c *Client) Close(ctx context.Context) error {
	err := c.close(ctx)
	c.mu.Lock()
	if !c.shut() {
		close(c.closed)
	}
	clear(c.pending)
	c.mu.Unlock()
	return err
}

// shut reports whether Close was called.
func (c *Client) shut() bool {
	select {
	case <-c.closed:
		return true
	default:
		return false
	}
}

// Request seals payload as a request for method on server, publishes it,
// and returns the payload of the server's reply, opened and checked to be
// from server and bound to this very request.
//
// The request expires with ctx: its envelope's expiry is no later than
// ctx's deadline, so a server refuses it once the caller has given up
// (give or take the receiver's clock skew, Policy.MaxClockSkew). If ctx has
// no deadline, the request's lifetime (the peer's Protection.TTL) is the
// deadline: after it no valid reply can come.
//
// If the server answers with an error reply, Request returns it as an
// *Error. If its authentic reply is refused because the two clocks
// disagree by more than the skew allows, Request returns a
// *ClockSkewError at once. If the client's replay store fails, Request
// returns that error (envelope.ErrReplayStore) as soon as a reply
// arrives, since none can be accepted. A reply that arrives before the
// broker acknowledged the request counts: the reply shows the request
// arrived. A reply arriving after Request returned is dropped.
//
// If ctx ends (its deadline, or a cancel) before a reply came, Request
// returns a *NoReplyError naming the server and method and how long it
// waited: errors.Is finds ErrNoReply and ctx's error
// (context.DeadlineExceeded, context.Canceled) in it. The server may be
// down, or its handler slow; the request may or may not have run. When
// the transport reports first that the request could not be sent, Request
// returns that error instead. The broker's acknowledgement of the request
// is awaited beside the reply, never before it.
//
// Each Request is a span ("call <method>") of Config.TracerProvider, and
// is measured (see the package documentation); the request carries the
// span's trace context to the server as its correlation id.
func (c *Client) Request(ctx context.Context, server, method string, payload []byte) (out []byte, err error) {
	began := time.Now()
	if err := c.live(); err != nil {
		return nil, err
	}
	ctx, span, metered := c.tel.startCall(ctx, server, method)
	out, err = c.request(ctx, server, method, payload, began)
	c.tel.endCall(ctx, span, metered, began, server, method, err)
	return out, err
}

// request is Request, measured by it.
func (c *Client) request(ctx context.Context, server, method string, payload []byte, began time.Time) ([]byte, error) {
	prot, err := c.cfg.Keyring.sendTo(server)
	if err != nil {
		return nil, err
	}
	if _, ok := ctx.Deadline(); !ok {
		ttl := prot.TTL
		if ttl == 0 {
			ttl = envelope.DefaultTTL
		}
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, ttl)
		defer cancel()
	}
	sealed, err := c.sealRequest(ctx, prot, server, method, payload)
	if err != nil {
		return nil, err
	}
	p, err := c.await(sealed.Digest)
	if err != nil {
		return nil, err
	}
	defer c.forget(sealed.Digest, p)
	out := Outbound{Topic: c.topics.Request(server, method), Payload: sealed.Bytes}
	if c.cfg.ResponseProperties {
		out.ResponseTopic, out.CorrelationData = c.replyTopic, sealed.CorrelationID
	}
	// The reply is awaited while the publish waits for its
	// acknowledgement: a broker that withholds it delays nothing.
	acked, outcome, err := c.publish(ctx, out)
	if err != nil {
		return nil, err // not sent: no reply can come
	}
	return c.awaitReply(ctx, p, acked, outcome, sealed, server, method, began)
}

// publishStarter is a transport that can hand a message over without
// waiting for its acknowledgement, and tell when that came (PahoV3, whose
// Paho client returns a token). A Request then waits for the
// acknowledgement beside the reply on its own goroutine. Handing over
// may itself wait, up to handOverBound (a connection backed up).
type publishStarter interface {
	startPublish(m Outbound) (acked <-chan struct{}, outcome func() error, err error)
	handOverBound() time.Duration
}

// publish publishes out for a Request, which waits for the reply
// meanwhile: acked is closed once the broker acknowledged it or the
// publish failed, and outcome then says which, as Transport.Publish
// does. The message is handed over on the calling goroutine where the
// transport can do that without waiting for the acknowledgement, and
// within what is left of ctx (which has a deadline) whatever the
// connection does; otherwise the publish runs on a goroutine of its own,
// with ctx.
func (c *Client) publish(ctx context.Context, out Outbound) (acked <-chan struct{}, outcome func() error, err error) {
	if s, ok := c.cfg.Transport.(publishStarter); ok {
		if deadline, _ := ctx.Deadline(); time.Until(deadline) > s.handOverBound() {
			return s.startPublish(out)
		}
	}
	done := make(chan struct{})
	var perr error
	go func() {
		perr = c.cfg.Transport.Publish(ctx, out)
		close(done)
	}()
	return done, func() error { return perr }, nil
}

// noReply is Request's error when ctx ended before a reply came.
func noReply(ctx context.Context, server, method string, waited time.Duration) *NoReplyError {
	cause := ctx.Err()
	if own := context.Cause(ctx); own != nil && own != cause {
		cause = fmt.Errorf("%w: %w", cause, own)
	}
	return &NoReplyError{Server: server, Method: method, Waited: waited, Cause: cause}
}

// awaitReply waits for the reply to the request sealed, published on
// server: the first candidate that opens, an authentic reply refused for
// its timestamps, a publish that failed before the request was sent, the
// client's Close or ctx (a *NoReplyError), whichever comes first. began is
// when Request was called.
func (c *Client) awaitReply(ctx context.Context, p *pending, acked <-chan struct{}, outcome func() error, sealed sealedMessage, server, method string, began time.Time) ([]byte, error) {
	expect := &envelope.Expect{
		Kinds: envelope.Reply | envelope.ErrorReply, From: server, Request: sealed.Sealed,
	}
	for {
		select {
		case <-acked:
			acked = nil
			if err := outcome(); err == nil {
				sealed.published()
				trace.SpanFromContext(ctx).AddEvent("request acknowledged by the broker")
			} else if !errors.Is(err, ErrUnacknowledged) {
				return nil, err // not sent: no reply can come
			}
		case cand := <-p.candidates:
			payload, done, err := c.openReply(ctx, cand, expect, server)
			if done {
				return payload, err
			}
		case <-c.closed:
			return nil, ErrClosed
		case <-ctx.Done():
			return nil, noReply(ctx, server, method, time.Since(began))
		}
	}
}

// sealRequest seals payload as a request for method on server, expiring
// with ctx (which has a deadline) or the peer's TTL, whichever comes first.
// The counter is drawn first: that may wait (a file, Redis), and the
// expiry is measured from when it is done, and sealed as of that moment,
// so it is never later than ctx's deadline.
func (c *Client) sealRequest(ctx context.Context, prot *Protection, server, method string, payload []byte) (sealedMessage, error) {
	ctr, err := c.sealer.Counter.Next()
	if err != nil {
		return sealedMessage{}, err
	}
	at, realNow := c.now(), time.Now()
	lifetime := prot.TTL
	if lifetime == 0 {
		lifetime = envelope.DefaultTTL
	}
	deadline, _ := ctx.Deadline()
	ttl := min(deadline.Sub(realNow), lifetime)
	if ttl < time.Millisecond {
		// An envelope lives at least a millisecond: no time is left.
		return sealedMessage{}, context.DeadlineExceeded
	}
	params := &envelope.Params{Kind: envelope.Request, To: []string{server}, Topic: method, ReplyTo: c.replyTopic,
		CorrelationID: correlationID(ctx)}
	prot.apply(params)
	params.TTL = ttl
	sealer := *c.sealer
	sealer.Counter, sealer.Now = drawnCounter(ctr), func() time.Time { return at }
	return c.sealWith(&sealer, params, payload)
}

// await registers a request about to be published, so that even an
// immediate reply finds it; forget removes it, on every way out.
func (c *Client) await(digest [32]byte) (*pending, error) {
	p := &pending{candidates: make(chan *envelope.Routed, candidateBuffer)}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.shut() {
		return nil, ErrClosed
	}
	c.pending[digest] = p
	return p, nil
}

// forget removes the request await registered, unless another took its
// place.
func (c *Client) forget(digest [32]byte, p *pending) {
	c.mu.Lock()
	if c.pending[digest] == p {
		delete(c.pending, digest)
	}
	c.mu.Unlock()
}

// openReply opens a candidate reply to the request expect describes. done
// is false for a candidate that is refused while the genuine reply may
// still come (a forgery): the wait goes on.
func (c *Client) openReply(ctx context.Context, cand *envelope.Routed, expect *envelope.Expect, server string) (payload []byte, done bool, err error) {
	m, err := c.opener.OpenRouted(ctx, cand, expect)
	if err != nil {
		if errors.Is(err, envelope.ErrExpired) {
			if skew := c.clockSkew(ctx, cand, expect, server, err); skew != nil {
				c.count(StatClockSkew, server)
				c.log.Warn("mqttsec: authentic reply refused, the clocks are too far apart", "server", server, "err", skew)
				return nil, true, skew
			}
		}
		c.rejectRouted(Inbound{Topic: c.replyTopic}, err, cand)
		if errors.Is(err, envelope.ErrReplayStore) {
			// The client's own replay store failed: no reply, genuine or
			// not, can be accepted now.
			return nil, true, err
		}
		return nil, false, nil
	}
	c.count(StatAccepted, server)
	if m.Kind == envelope.ErrorReply {
		return nil, true, decodeError(m.Payload)
	}
	return m.Payload, true, nil
}

// clockSkew returns a *ClockSkewError if cand, refused for its
// timestamps, is nonetheless an authentic reply to the request expect
// describes: opened as of its own issue time, with a replay store of its
// own (nothing of it is recorded), it passes every other check. A forgery
// fails that, and the wait for the genuine reply goes on.
func (c *Client) clockSkew(ctx context.Context, cand *envelope.Routed, expect *envelope.Expect, server string, refusal error) error {
	h := cand.Header()
	scratch, err := replay.NewBoundedMemoryStore(0, 1)
	if err != nil {
		return nil
	}
	at := h.IssuedAt
	o := &envelope.Opener{ID: c.cfg.ID, Keys: c.cfg.Keyring, Replay: scratch, Now: func() time.Time { return at }, MaxSize: c.cfg.MaxSize}
	if _, err := o.OpenRouted(ctx, cand, expect); err != nil {
		return nil
	}
	return &ClockSkewError{Server: server, Offset: at.Sub(c.now()), Err: refusal}
}

// routeReply runs on the transport's goroutine. It finds the pending
// request a reply claims to answer (from the unverified header, which
// envelope.Route reads cheaply) and hands it to that request's Request
// call, which opens it against exactly that request. Nothing is trusted
// before that OpenRouted.
func (c *Client) routeReply(ctx context.Context, in Inbound) {
	route, err := envelope.Route(in.Payload, c.cfg.MaxSize)
	if err != nil {
		c.rejectPeeked(in, err, nil)
		return
	}
	if kind := route.Kind(); kind != envelope.Reply && kind != envelope.ErrorReply {
		// A request or event on the reply topic: a reflection.
		c.rejectRouted(in, envelope.ErrContext, route)
		return
	}
	// Nothing trusts the digest before OpenRouted.
	c.mu.Lock()
	p := c.pending[route.InReplyTo()]
	c.mu.Unlock()
	if p == nil {
		c.refuse(ctx, StatUnmatchedReply, c.claimedSender(route.From()), "mqttsec: reply for no pending request", "topic", in.Topic)
		return
	}
	select {
	case p.candidates <- route:
	default:
		c.refuse(ctx, StatOverload, c.claimedSender(route.From()), "mqttsec: too many replies for one request, dropped", "topic", in.Topic)
	}
}

// PublishEvent seals and publishes an event on topic (under the client's
// event topics), signed with the keyring's Own.Signer and, if asked,
// encrypted to each recipient.
func (c *Client) PublishEvent(ctx context.Context, topic string, payload []byte, opt EventOptions) error {
	return c.publishEvent(ctx, topic, payload, opt)
}

// SubscribeEvents calls h for every event of sender that opens under the
// sender's policy. h runs on a worker goroutine.
func (c *Client) SubscribeEvents(ctx context.Context, sender string, h EventHandler) error {
	return c.subscribeEvents(ctx, sender, h)
}
