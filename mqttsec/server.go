package mqttsec

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"

	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"

	"github.com/mqttsec/mqttsec/envelope"
)

// Request is an authenticated request, as a handler sees it.
type Request struct {
	// Caller is the authenticated id of the sender.
	Caller string
	// Method is the method called (the envelope's topic, which matched the
	// MQTT topic the request arrived on).
	Method string
	// Payload is the opened payload.
	Payload []byte
	// Protections lists what protected the request.
	Protections envelope.Protection
}

// Handler answers requests for one method. Its context ends when the
// request expires or the server closes. Returning an *Error sends its code
// and message to the caller; any other error sends CodeInternal without
// detail. A handler runs only once everything its reply needs is secured:
// the request is recorded in the replay store and the reply's counter is
// drawn, so that a request never runs without an answer being possible.
type Handler interface {
	ServeRequest(ctx context.Context, req *Request) ([]byte, error)
}

// HandlerFunc adapts a function to Handler.
type HandlerFunc func(ctx context.Context, req *Request) ([]byte, error)

// ServeRequest calls f.
func (f HandlerFunc) ServeRequest(ctx context.Context, req *Request) ([]byte, error) {
	return f(ctx, req)
}

// ServerConfig configures a Server.
type ServerConfig struct {
	Config
	// ReplyToAllowed decides whether a caller may have its reply published
	// to replyTo. Nil allows only the caller's own reply topic of the topic
	// scheme and topics below it, so the server cannot be used to publish
	// onto anyone else's topics.
	ReplyToAllowed func(caller, replyTo string) bool
	// Authorize decides, after authentication, whether caller may call
	// method. Nil allows every caller in the keyring every method.
	Authorize func(caller, method string) bool
	// ShareGroup, if set, subscribes through the MQTT shared subscription
	// $share/<ShareGroup>/..., so that several replicas split the requests.
	// It is spelled like an id (letters, digits and - . _ : @). Replicas
	// answer as one id, so NewServer then requires Config.Counter and
	// Config.Replay, which every replica must share (see ErrReplicaState).
	ShareGroup string
}

// Server (a gateway) answers sealed requests with sealed replies, through
// handlers registered per method. It also publishes and subscribes to
// events.
//
// It answers time requests (method envelope.TimeMethod) of peers whose
// Policy.Clockless is set itself, with no handler: devices without a
// real-time clock learn the time from the issue time of the reply, an
// empty one sealed as every reply to the peer is. Such a request is
// accepted whatever its timestamps (its lifetime still within the peer's
// Policy.MaxLifetime), is refused as a replay like any other, and passes
// ServerConfig.ReplyToAllowed and ServerConfig.Authorize first (an
// Authorize that grants methods one by one must grant it). A handler
// registered for the method serves only the other peers.
type Server struct {
	*node
	scfg ServerConfig

	mu       sync.RWMutex
	handlers map[string]Handler
}

// NewServer returns a Server; register handlers, then Start it.
func NewServer(cfg ServerConfig) (*Server, error) {
	if g := cfg.ShareGroup; g != "" {
		if !envelope.ValidID(g) {
			return nil, fmt.Errorf("%w: invalid ShareGroup %q: 1-128 letters, digits and - . _ : @", ErrInvalidConfig, g)
		}
		if cfg.Counter == nil || cfg.Replay == nil {
			return nil, ErrReplicaState
		}
	}
	n, err := newNode(cfg.Config)
	if err != nil {
		return nil, err
	}
	s := &Server{node: n, scfg: cfg, handlers: map[string]Handler{}}
	n.requests = s.handleRequest
	return s, nil
}

// Handle registers h for method, replacing any earlier one.
func (s *Server) Handle(method string, h Handler) {
	s.mu.Lock()
	s.handlers[method] = h
	s.mu.Unlock()
}

// HandleFunc registers f for method.
func (s *Server) HandleFunc(method string, f func(ctx context.Context, req *Request) ([]byte, error)) {
	s.Handle(method, HandlerFunc(f))
}

// Start connects and subscribes to the server's request topics.
func (s *Server) Start(ctx context.Context) error {
	filter := s.topics.RequestFilter(s.cfg.ID)
	if s.scfg.ShareGroup != "" {
		filter = "$share/" + s.scfg.ShareGroup + "/" + filter
	}
	return s.start(ctx, filter)
}

// Close disconnects and waits for running handlers to return.
func (s *Server) Close(ctx context.Context) error { return s.close(ctx) }

func (s *Server) replyToAllowed(caller, replyTo string) bool {
	if s.scfg.ReplyToAllowed != nil {
		return s.scfg.ReplyToAllowed(caller, replyTo)
	}
	own := s.topics.Reply(caller)
	return replyTo == own || strings.HasPrefix(replyTo, own+"/")
}

func (s *Server) handleRequest(ctx context.Context, in Inbound, r *envelope.Routed, method string) {
	m, err := s.opener.OpenRouted(ctx, r, &envelope.Expect{Kinds: envelope.Request, Topic: method})
	if err != nil {
		s.rejectRouted(in, err, r)
		return
	}
	until := s.liveUntil(m)
	// A counter for the reply is drawn before anything runs: a counter
	// that cannot be had (a full disk, Redis down) refuses the request
	// before its handler, which would otherwise act and leave no way to
	// answer.
	rs, err := s.replySealer(m)
	if err != nil {
		return
	}
	ctx, span := s.startSpan(ctx, m)
	if !s.replyToAllowed(m.From, m.ReplyTo) {
		s.refuse(ctx, StatBadReplyTo, m.From, "mqttsec: reply-to refused", "caller", m.From, "method", method)
		// Answer on the caller's own reply topic, never on the one asked for.
		s.reply(rs, m, s.topics.Reply(m.From), until, nil, &Error{Code: CodeBadReplyTo}, span)
		return
	}
	if s.scfg.Authorize != nil && !s.scfg.Authorize(m.From, method) {
		s.refuse(ctx, StatForbidden, m.From, "mqttsec: forbidden", "caller", m.From, "method", method)
		s.reply(rs, m, m.ReplyTo, until, nil, &Error{Code: CodeForbidden}, span)
		return
	}
	if m.TimeRequest {
		// A clockless peer's time request: the reply's issue time is the
		// answer.
		s.count(StatAccepted, m.From)
		s.reply(rs, m, m.ReplyTo, until, nil, nil, span)
		return
	}
	s.mu.RLock()
	h := s.handlers[method]
	s.mu.RUnlock()
	if h == nil {
		s.count(StatNotFound, m.From)
		s.reply(rs, m, m.ReplyTo, until, nil, &Error{Code: CodeNotFound, Message: method}, span)
		return
	}
	s.count(StatAccepted, m.From)
	out, expired, herr := s.serve(ctx, h, m, until)
	if expired {
		// The request expired while its handler ran: its caller has given
		// up (its deadline is the request's expiry), so no answer is sent.
		s.count(StatHandlerError, m.From)
		s.log.Warn("mqttsec: request expired while its handler ran, no reply sent", "caller", m.From, "method", method)
		endSpan(span, herr)
		return
	}
	if herr != nil {
		s.count(StatHandlerError, m.From)
		var e *Error
		if !errors.As(herr, &e) {
			s.log.Error("mqttsec: handler failed", "caller", m.From, "method", method, "err", herr)
			e = &Error{Code: CodeInternal}
		}
		s.reply(rs, m, m.ReplyTo, until, nil, e, span)
		return
	}
	s.reply(rs, m, m.ReplyTo, until, out, nil, span)
}

// serve runs h for req, which is live until until, and measures it: the
// handler's duration by method and result, and the requests in flight.
// expired is whether the handler failed because the request expired
// while it ran.
func (s *Server) serve(ctx context.Context, h Handler, req *envelope.Message, until time.Time) (out []byte, expired bool, err error) {
	hctx, cancel := context.WithDeadline(ctx, until)
	defer cancel()
	metered := s.tel.metering()
	if metered {
		s.tel.handling(ctx, req.Topic, 1)
	}
	began := time.Now()
	out, err = h.ServeRequest(hctx, &Request{Caller: req.From, Method: req.Topic, Payload: req.Payload, Protections: req.Protections})
	took := time.Since(began)
	expired = err != nil && errors.Is(err, context.DeadlineExceeded) && hctx.Err() != nil
	result := "ok"
	switch {
	case expired:
		result = "expired"
	case err != nil:
		result = "error"
	}
	if metered {
		s.tel.handling(ctx, req.Topic, -1)
		s.tel.handled(ctx, req.From, req.Topic, result, took)
	}
	return out, expired, err
}

// startSpan starts the span of req, just opened (see
// telemetry.startServe), named after its method if the server has a
// handler for it, "_OTHER" otherwise.
func (s *Server) startSpan(ctx context.Context, req *envelope.Message) (context.Context, trace.Span) {
	return s.tel.startServe(ctx, req, s.methodLabel(req))
}

// methodLabel is req's method as a label: bounded by the handlers
// registered, whatever methods callers name.
func (s *Server) methodLabel(req *envelope.Message) string {
	if req.TimeRequest {
		return req.Topic
	}
	s.mu.RLock()
	_, ok := s.handlers[req.Topic]
	s.mu.RUnlock()
	if ok {
		return req.Topic
	}
	return otherMethod
}

// replySealer returns the sealer of the reply to req, with a counter
// drawn for it in advance, or counts and logs why there is none; the
// request is then refused without an answer, since none could be sealed.
func (s *Server) replySealer(req *envelope.Message) (*envelope.Sealer, error) {
	drawn, err := s.sealer.Counter.Next()
	if err != nil {
		s.count(StatNoCounter, req.From)
		s.rejects.Log(s.ctx, slog.LevelError, "mqttsec: no counter for the reply, request refused before its handler", StatNoCounter,
			"caller", req.From, "method", req.Topic, "err", err)
		return nil, err
	}
	rs := *s.sealer
	rs.Counter = &replyCounter{fresh: s.sealer.Counter, drawn: drawn}
	return &rs, nil
}

// drawnCounter is a counter drawn in advance for one message: Next
// returns it, every time.
type drawnCounter uint64

func (c drawnCounter) Next() (uint64, error) { return uint64(c), nil }

// replyCounter numbers one reply. It draws a fresh counter when the reply
// is sealed, so that a reply whose handler ran long does not fall behind
// the replies sealed meanwhile (and below its receiver's window); if none
// can be drawn then, it uses the one drawn before the handler ran. Next
// returns the same counter every time: only one envelope sealed with it is
// published (a reply too large to send is sealed again as an error
// reply). It is not safe for concurrent use, and needs none.
type replyCounter struct {
	fresh envelope.Counter
	drawn uint64
	given uint64
}

func (c *replyCounter) Next() (uint64, error) {
	if c.given == 0 {
		c.given = c.drawn
		if n, err := c.fresh.Next(); err == nil {
			c.given = n
		}
	}
	return c.given, nil
}

// liveUntil is when req, just opened, stops being live: its expiry, which
// is its caller's deadline, plus the skew allowed between the caller's
// clock and this one. Open accepts it until then, a handler may work on it
// until then, and a reply is sent until then. A clockless peer's time
// request has timestamps of no clock: it is live for its lifetime and the
// skew from now, when it was opened, as Open records it.
func (s *Server) liveUntil(req *envelope.Message) time.Time {
	skew := envelope.DefaultMaxClockSkew
	if p := s.cfg.Keyring.Peer(req.From); p != nil {
		skew = p.Policy.ClockSkew()
	}
	if req.TimeRequest {
		return s.now().Add(req.ExpiresAt.Sub(req.IssuedAt) + skew)
	}
	return req.ExpiresAt.Add(skew)
}

// reply seals, with rs, a reply (or, with e set, an error reply) to req,
// which is live until until (see liveUntil), and publishes it on topic. A
// reply too large to seal is replaced by an error reply with
// CodeReplyTooLarge, so that the caller learns of it at once instead of
// waiting for its deadline. The wait for the broker's acknowledgement
// happens apart (see node.send), so a broker that withholds
// acknowledgements never holds the worker, and lasts no longer than the
// request is live: after that its caller has given up.
func (s *Server) reply(rs *envelope.Sealer, req *envelope.Message, topic string, until time.Time, payload []byte, e *Error, span trace.Span) {
	if e != nil {
		span.SetAttributes(attrResult.String(e.Code))
		span.SetStatus(codes.Error, "error reply: "+e.Code)
	}
	left := until.Sub(s.now())
	if left <= 0 {
		s.count(StatPublishError, req.From)
		s.log.Warn("mqttsec: request expired before its reply was sealed, no reply sent", "caller", req.From, "method", req.Topic)
		endSpan(span, context.DeadlineExceeded)
		return
	}
	prot, err := s.cfg.Keyring.sendTo(req.From)
	if err != nil {
		s.count(StatPublishError, req.From)
		s.log.Error("mqttsec: no keys to answer caller", "caller", req.From)
		endSpan(span, err)
		return
	}
	sealed, err := s.sealReply(rs, req, prot, payload, e)
	if errors.Is(err, envelope.ErrTooLarge) {
		s.count(StatReplyTooLarge, req.From)
		s.log.Error("mqttsec: reply too large to send, error reply sent instead",
			"caller", req.From, "method", req.Topic, "error_reply", e != nil)
		sealed, err = s.sealReply(rs, req, prot, nil, &Error{Code: CodeReplyTooLarge})
	}
	if err != nil {
		s.count(StatPublishError, req.From)
		s.log.Error("mqttsec: reply not sent", "caller", req.From, "method", req.Topic, "err", err)
		endSpan(span, err)
		return
	}
	out := Outbound{Topic: topic, Payload: sealed.Bytes}
	if s.cfg.ResponseProperties {
		out.CorrelationData = req.CorrelationID
	}
	caller, method := req.From, req.Topic
	s.send(out, left, func(err error) {
		s.sent(sealed, caller, method, err)
		endSpan(span, err)
	})
}

// sent counts and logs the outcome of a reply's publish. A reply the
// broker took but did not acknowledge in time may have been delivered:
// it is "unconfirmed", never "not sent".
func (s *Server) sent(sealed sealedMessage, caller, method string, err error) {
	switch {
	case err == nil:
		sealed.published()
	case errors.Is(err, ErrUnacknowledged):
		s.count(StatPublishUnconfirmed, caller)
		s.log.Warn("mqttsec: reply sent, not acknowledged by the broker", "caller", caller, "method", method, "err", err)
	default:
		s.count(StatPublishError, caller)
		s.log.Error("mqttsec: reply not sent", "caller", caller, "method", method, "err", err)
	}
}

// sealReply seals, with rs, payload as the reply to req, or e as its
// error reply.
func (s *Server) sealReply(rs *envelope.Sealer, req *envelope.Message, prot *Protection, payload []byte, e *Error) (sealedMessage, error) {
	p := &envelope.Params{Kind: envelope.Reply, InReplyTo: req}
	if e != nil {
		p.Kind = envelope.ErrorReply
		payload, _ = json.Marshal(e)
	}
	prot.apply(p)
	return s.sealWith(rs, p, payload)
}

// PublishEvent seals and publishes an event (see Client.PublishEvent).
func (s *Server) PublishEvent(ctx context.Context, topic string, payload []byte, opt EventOptions) error {
	return s.publishEvent(ctx, topic, payload, opt)
}

// SubscribeEvents calls h for every verified event of sender.
func (s *Server) SubscribeEvents(ctx context.Context, sender string, h EventHandler) error {
	return s.subscribeEvents(ctx, sender, h)
}
