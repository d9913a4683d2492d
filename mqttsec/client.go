package mqttsec

import (
	"context"
	"errors"
	"sync"

	"github.com/mqttsec/mqttsec/envelope"
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
	// which the transport gave up (see Transport); nothing reads it before
	// Open.
	candidates chan []byte
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
// If the server answers with an error reply, Request returns it as an
// *Error. If the client's replay store fails, Request returns that error
// (envelope.ErrReplayStore) as soon as a reply arrives, since none can be
// accepted. If ctx has no deadline, the request's lifetime (the peer's
// Protection.TTL) is the deadline: after it no valid reply can come. A reply
// arriving after Request returned is dropped.
func (c *Client) Request(ctx context.Context, server, method string, payload []byte) ([]byte, error) {
	if err := c.live(); err != nil {
		return nil, err
	}
	prot, err := c.cfg.Keyring.sendTo(server)
	if err != nil {
		return nil, err
	}
	replyTo := c.replyTopic
	params := &envelope.Params{Kind: envelope.Request, To: []string{server}, Topic: method, ReplyTo: replyTo, Version: prot.Version}
	prot.apply(params)
	sealed, err := c.seal(params, payload)
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
	p := &pending{candidates: make(chan []byte, candidateBuffer)}
	// Registered before publishing, so that even an immediate reply finds
	// it; removed on every way out.
	c.mu.Lock()
	if c.shut() {
		c.mu.Unlock()
		return nil, ErrClosed
	}
	c.pending[sealed.Digest] = p
	c.mu.Unlock()
	defer func() {
		c.mu.Lock()
		if c.pending[sealed.Digest] == p {
			delete(c.pending, sealed.Digest)
		}
		c.mu.Unlock()
	}()
	out := Outbound{Topic: c.topics.Request(server, method), Payload: sealed.Bytes}
	if c.cfg.ResponseProperties {
		out.ResponseTopic, out.CorrelationData = replyTo, sealed.CorrelationID
	}
	if err := c.cfg.Transport.Publish(ctx, out); err != nil {
		return nil, err
	}
	sealed.published()
	expect := &envelope.Expect{
		Kinds: envelope.Reply | envelope.ErrorReply, From: server, InReplyTo: sealed.Digest[:], CorrelationID: sealed.CorrelationID,
	}
	for {
		select {
		case cand := <-p.candidates:
			m, err := c.opener.Open(ctx, cand, expect)
			if err != nil {
				c.reject(Inbound{Topic: c.replyTopic}, err)
				if errors.Is(err, envelope.ErrReplayStore) {
					// The client's own replay store failed: no reply,
					// genuine or not, can be accepted now.
					return nil, err
				}
				// A forgery does not end the wait: the genuine reply may
				// follow.
				continue
			}
			c.stats.add(StatAccepted)
			if m.Kind == envelope.ErrorReply {
				return nil, decodeError(m.Payload)
			}
			return m.Payload, nil
		case <-c.closed:
			return nil, ErrClosed
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
}

// routeReply runs on the transport's goroutine. It finds the pending
// request a reply claims to answer (from the unverified header, which
// envelope.Peek checks cheaply) and hands it to that request's Request call,
// which opens it against exactly that request. Nothing is trusted before
// that Open.
func (c *Client) routeReply(ctx context.Context, in Inbound) {
	route, err := envelope.Peek(in.Payload, c.cfg.MaxSize)
	if err != nil {
		c.reject(in, err)
		return
	}
	if route.Kind != envelope.Reply && route.Kind != envelope.ErrorReply {
		// A request or event on the reply topic: a reflection.
		c.reject(in, envelope.ErrContext)
		return
	}
	// Nothing trusts the digest before Open.
	c.mu.Lock()
	p := c.pending[route.InReplyTo]
	c.mu.Unlock()
	if p == nil {
		c.refuse(ctx, StatUnmatchedReply, "mqttsec: reply for no pending request", "topic", in.Topic)
		return
	}
	select {
	case p.candidates <- in.Payload:
	default:
		c.refuse(ctx, StatOverload, "mqttsec: too many replies for one request, dropped", "topic", in.Topic)
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
