package mqttsec

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/trace"

	"github.com/mqttsec/mqttsec/envelope"
	"github.com/mqttsec/mqttsec/mqttsec/replay"
)

// Config is what Clients and Servers share.
type Config struct {
	// ID is this party's id, as its peers know it.
	ID string
	// Transport is the MQTT connection (NewPahoV5 or NewPahoV3).
	Transport Transport
	// Keyring holds this party's keys and its peers.
	Keyring *Keyring
	// Replay keeps the per-sender replay windows; nil means an in-memory
	// store (replay.MemoryStore) with DefaultReplayWindow and
	// replay.DefaultMaxSenders, on the clock Now. A store that tells how
	// full it is (a Stats() replay.MemoryStats method, as MemoryStore and
	// FileStore have) is measured (mqttsec.replay.senders and
	// mqttsec.replay.forgotten), and when it forgets senders that may
	// still send, a warning is logged. A store that
	// notices the loss of its own records (the durable stores of
	// mqttsec/replay, through a NotifyLoss(func(error)) method) has each
	// loss logged as an error and counted as StatStateLost; it then
	// refuses what may have been accepted before the loss, by itself.
	Replay envelope.ReplayStore
	// Counter numbers the messages this party seals; nil means
	// envelope.NewClockCounter().
	Counter envelope.Counter
	// Topics is the topic scheme; the zero value is the default scheme.
	Topics Topics
	// Logger receives the log of refused messages; nil discards it.
	Logger *slog.Logger
	// RejectLevel is the level refused messages are logged at; the zero
	// value is slog.LevelInfo. A message refused because the replay store
	// failed is logged at slog.LevelError.
	RejectLevel slog.Level
	// RejectLogInterval is the least time between two log lines about
	// refused messages of one kind (the same message and error class):
	// the first is logged at once, later ones within the interval are
	// counted, and the next line says how many were left out
	// ("suppressed"), so a flood of junk cannot flood the log. Stats count
	// every refusal. Zero means DefaultRejectLogInterval; a negative value
	// logs every refusal.
	RejectLogInterval time.Duration
	// Workers is the number of goroutines that open and handle messages;
	// zero means 4 × GOMAXPROCS. One sender's messages are admitted to
	// the replay window in the order they arrived whenever a later one
	// would otherwise push an earlier one out of it.
	Workers int
	// QueueSize bounds the messages waiting for a worker; zero means 1024.
	// Only messages from senders in the keyring are queued: junk and
	// unknown senders are refused before the queue, at once. A message
	// that finds the queue full is dropped and counted as "overload": the
	// connection is never stalled.
	QueueSize int
	// PublishTimeout bounds how long a reply, or an event published with
	// a context that has no deadline, waits for the broker's
	// acknowledgement; zero means DefaultPublishTimeout. A reply waits
	// apart from the worker that sealed it, so a broker that withholds
	// acknowledgements does not hold the workers.
	PublishTimeout time.Duration
	// MaxSize is the largest envelope accepted or produced; zero means
	// envelope.DefaultMaxSize.
	MaxSize int
	// Now is the clock; nil means time.Now.
	Now func() time.Time
	// MeterProvider receives the metrics, TracerProvider the spans (see
	// the package documentation for their names); nil means the global
	// ones of go.opentelemetry.io/otel, which record nothing until the
	// application installs an SDK.
	MeterProvider  metric.MeterProvider
	TracerProvider trace.TracerProvider
	// ContinueTraces makes a server's span of a request the child of the
	// caller's span, whose context the request carries (see the package
	// documentation), so that one trace runs from the caller through the
	// handler and on to what the handler calls. The caller, an
	// authenticated peer, then chooses the trace id and whether its
	// requests are sampled here. Without it the span starts a trace of the
	// server's own, sampled by the server's sampler, and links to the
	// caller's span.
	ContinueTraces bool
	// ResponseProperties also sets the MQTT v5 ResponseTopic and
	// CorrelationData properties on requests, and CorrelationData on
	// replies, for plain v5 tools that watch the traffic. mqttsec itself
	// never reads them (only the envelope counts), and they cost the broker
	// work on every message, so they are off by default. MQTT v3.1.1 has
	// no such properties.
	ResponseProperties bool
}

// DefaultReplayWindow is the replay window width of the default store. It is
// wider than the envelope's minimum because one client sends many requests
// at once: counters are drawn when a request is sealed, but concurrent
// publishes reach the broker in any order, and a request that falls more
// than a window behind the newest one from its sender is refused.
const DefaultReplayWindow = 1024

// DefaultPublishTimeout is Config.PublishTimeout's default.
const DefaultPublishTimeout = 10 * time.Second

// Event is a verified event.
type Event struct {
	From        string
	Topic       string
	Payload     []byte
	Protections envelope.Protection
}

// EventHandler handles verified events of one sender.
type EventHandler func(ctx context.Context, ev *Event)

// node is the machinery shared by Client and Server: sealing, opening, the
// worker pool, routing and events.
type node struct {
	cfg    Config
	topics Topics
	sealer *envelope.Sealer
	opener *envelope.Opener
	log    *slog.Logger
	stats  stats
	tel    *telemetry
	// store is the replay store under the node's wrappers.
	store envelope.ReplayStore
	// gauges is the registration of the observable gauges' callback,
	// ended by stop.
	gauges metric.Registration
	// rejects logs refused messages, a flood of them in few lines.
	rejects *rejectLog
	// reuseBuffers is whether envelopes are sealed into pooled buffers
	// (see payloadFree), decided once for the transport.
	reuseBuffers bool

	// Topics this node routes on, computed once rather than per message.
	replyTopic string
	reqPrefix  string

	// connectedBefore is whether the transport connected once already.
	connectedBefore atomic.Bool
	// serving is set once Start succeeded; connected while the transport
	// is connected, as far as it tells (a transport that tells nothing is
	// taken as connected once started); renewing while subscriptions are
	// being renewed after a reconnection. Ready reads them.
	serving, connected, renewing atomic.Bool

	// unread counts oversize messages whose payload the transport dropped
	// unread (see guard): each still arrives, empty, and is not counted
	// again.
	unread atomic.Int64

	// arrivals orders the admission of each sender's queued messages
	// (see orderedStore).
	arrivals *arrivals
	queue    chan queued
	// intake ends when the node starts closing: queued messages are no
	// longer opened, handlers already running finish.
	intake     context.Context
	stopIntake context.CancelFunc
	ctx        context.Context
	cancel     context.CancelFunc
	wg         sync.WaitGroup
	// sends counts replies and events still waiting for the broker's
	// acknowledgement (see send).
	sends sync.WaitGroup
	// sendSlots bounds them.
	sendSlots chan struct{}

	mu       sync.Mutex
	started  bool
	closed   bool
	events   map[string]EventHandler
	requests func(ctx context.Context, in Inbound, r *envelope.Routed, method string)
	replies  func(ctx context.Context, in Inbound)
}

func newNode(cfg Config) (*node, error) {
	if cfg.Transport == nil || cfg.Keyring == nil {
		return nil, fmt.Errorf("%w: Config needs a Transport and a Keyring", ErrInvalidConfig)
	}
	sealer := &envelope.Sealer{ID: cfg.ID, Counter: cfg.Counter, Now: cfg.Now, MaxSize: cfg.MaxSize}
	if sealer.Counter == nil {
		sealer.Counter = envelope.NewClockCounter()
	}
	store := cfg.Replay
	if store == nil {
		var err error
		if store, err = replay.NewMemoryStoreWith(replay.MemoryStoreOptions{Width: DefaultReplayWindow, Now: cfg.Now}); err != nil {
			return nil, err
		}
	}
	n := &node{
		cfg:       cfg,
		topics:    cfg.Topics,
		sealer:    sealer,
		log:       cfg.Logger,
		stats:     newStats(),
		events:    map[string]EventHandler{},
		arrivals:  newArrivals(),
		sendSlots: make(chan struct{}, maxPendingSends),
	}
	tel, err := newTelemetry(cfg)
	if err != nil {
		return nil, err
	}
	n.tel = tel
	timed := &timedStore{ReplayStore: store, tel: tel}
	ordered := &orderedStore{ReplayStore: timed, arrivals: n.arrivals, width: windowWidth(store)}
	n.store = store
	n.opener = &envelope.Opener{ID: cfg.ID, Keys: cfg.Keyring, Replay: ordered, Now: cfg.Now, MaxSize: cfg.MaxSize}
	if n.log == nil {
		n.log = slog.New(slog.DiscardHandler)
	}
	n.rejects = newRejectLog(n.log, cfg.RejectLogInterval, cfg.Now)
	ordered.full = n.watchFull(store)
	_, n.reuseBuffers = cfg.Transport.(payloadFree)
	n.replyTopic = n.topics.Reply(cfg.ID)
	n.reqPrefix = n.topics.requestPrefix(cfg.ID)
	if err := validID(cfg.ID); err != nil {
		return nil, err
	}
	if r, ok := store.(lossReporter); ok {
		r.NotifyLoss(n.stateLost)
	}
	return n, nil
}

func validID(id string) error {
	if !envelope.ValidID(id) {
		return fmt.Errorf("%w: invalid id %q: 1-128 letters, digits and - . _ : @", ErrInvalidConfig, id)
	}
	return nil
}

// start connects the transport, starts the workers and subscribes filters.
func (n *node) start(ctx context.Context, filters ...string) error {
	n.mu.Lock()
	if n.closed {
		n.mu.Unlock()
		return ErrClosed
	}
	if n.started {
		n.mu.Unlock()
		return ErrAlreadyStarted
	}
	n.started = true
	workers := n.cfg.Workers
	if workers <= 0 {
		workers = 4 * runtime.GOMAXPROCS(0)
	}
	size := n.cfg.QueueSize
	if size <= 0 {
		size = 1024
	}
	n.queue = make(chan queued, size)
	n.ctx, n.cancel = context.WithCancel(context.Background())
	n.intake, n.stopIntake = context.WithCancel(n.ctx)
	for range workers {
		n.wg.Go(n.work)
	}
	n.mu.Unlock()
	if g, ok := n.cfg.Transport.(guarded); ok {
		g.setGuard(guard{
			packetLimit: maxSize(n.cfg.MaxSize) + packetMargin,
			dropped:     n.droppedUnread,
			renewFailed: func(err error) {
				n.log.Error("mqttsec: subscription not renewed", "err", err)
			},
			refused: func(err error) {
				n.log.Error("mqttsec: connection to the broker dropped", "err", err)
			},
			connection: n.connectionEvent,
			unguarded: func() {
				n.log.Warn("mqttsec: packets from the broker are read without the size guard (an autopaho WebSocket dialer of the configuration's own): Paho allocates each packet's declared size before it is checked")
			},
		})
	}
	if err := n.cfg.Transport.Start(ctx, n.enqueue); err != nil {
		n.stop()
		return err
	}
	if _, ok := n.cfg.Transport.(guarded); !ok {
		n.connected.Store(true) // as far as this transport tells
	}
	for _, f := range filters {
		if err := n.cfg.Transport.Subscribe(ctx, f); err != nil {
			n.close(context.Background())
			return err
		}
	}
	if err := n.observe(); err != nil {
		n.close(context.Background())
		return err
	}
	n.serving.Store(true)
	return nil
}

// observe registers the callback of the observable gauges: the queue, the
// replies waiting for the broker, the connection.
func (n *node) observe() error {
	t := n.tel
	reg, err := t.meter.RegisterCallback(func(_ context.Context, o metric.Observer) error {
		id := metric.WithAttributes(t.id)
		o.ObserveInt64(t.queueDepth, int64(len(n.queue)), id)
		o.ObserveInt64(t.queueCapacity, int64(cap(n.queue)), id)
		o.ObserveInt64(t.publishPending, int64(len(n.sendSlots)), id)
		up := int64(0)
		if n.isConnected() {
			up = 1
		}
		o.ObserveInt64(t.connectionUp, up, id)
		if s, ok := n.store.(sizedStore); ok {
			t.observeStore(o, s.Stats())
		}
		return nil
	}, t.queueDepth, t.queueCapacity, t.publishPending, t.connectionUp, t.storeSenders, t.storeCapacity, t.storeForgotten)
	if err != nil {
		return fmt.Errorf("%w: instruments: %w", ErrInvalidConfig, err)
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.closed {
		// Closed while starting: stop, which unregisters, may have run.
		reg.Unregister()
		return ErrClosed
	}
	n.gauges = reg
	return nil
}

// connectionReporter is a transport that says whether its connection is
// open now (PahoV3, whose connection events may arrive out of order).
type connectionReporter interface {
	connectionOpen() bool
}

// isConnected is whether the transport is connected: as it says, if it
// does, or else as its connection events last said.
func (n *node) isConnected() bool {
	if r, ok := n.cfg.Transport.(connectionReporter); ok {
		return r.connectionOpen()
	}
	return n.connected.Load()
}

// Ready reports whether the Client or Server is ready to serve: nil once
// Start succeeded while it is connected to the broker with every
// subscription in place, or else why not (ErrNotStarted, ErrClosed,
// ErrNotConnected) — for a readiness check. A Transport other than
// NewPahoV5's and NewPahoV3's does not tell of its connection: it is taken
// as connected once started.
func (n *node) Ready() error {
	if err := n.live(); err != nil {
		return err
	}
	switch {
	case !n.serving.Load():
		return ErrNotStarted
	case !n.isConnected():
		return fmt.Errorf("%w: the connection to the broker is down", ErrNotConnected)
	case n.renewing.Load():
		return fmt.Errorf("%w: renewing the subscriptions after reconnecting", ErrNotConnected)
	}
	return nil
}

// connectionEvent logs the transport's connection events: an operator
// sees the gateway lose the broker, retry and come back.
func (n *node) connectionEvent(ev connectionEvent) {
	event := ""
	switch ev.kind {
	case connUp:
		if n.connectedBefore.Swap(true) {
			n.renewing.Store(true)
			n.connected.Store(true)
			event = "reconnected"
			n.log.Info("mqttsec: reconnected to the broker")
		} else {
			n.connected.Store(true)
			event = "connected"
			n.log.Info("mqttsec: connected to the broker")
		}
	case connLost:
		n.connected.Store(false)
		event = "lost"
		n.log.Warn("mqttsec: connection to the broker lost", "err", ev.err)
	case connFailed:
		event = "failed"
		// A broker down for long: one line per RejectLogInterval.
		n.rejects.Log(context.Background(), slog.LevelWarn, "mqttsec: connecting to the broker failed", "connect", "err", ev.err)
	case connRenewed:
		n.renewing.Store(false)
		event = "renewed"
		n.log.Info("mqttsec: subscriptions renewed", "filters", ev.filters)
	}
	if event != "" {
		n.tel.connection(event)
	}
}

// maxSize is the envelope size limit a Config's MaxSize sets.
func maxSize(configured int) int {
	if configured <= 0 {
		return envelope.DefaultMaxSize
	}
	return configured
}

// droppedUnread counts and logs a message the transport refused to read
// (see guard): over MaxSize, it could never open.
func (n *node) droppedUnread(topic string, size int) {
	n.unread.Add(1)
	n.refuse(context.Background(), StatTooLarge, "", "mqttsec: message refused unread", "topic", topic, "bytes", size)
}

// takeUnread counts off one message refused unread, if there is one left
// to count off. Transports may deliver on several goroutines at once, so
// the count never goes below zero.
func (n *node) takeUnread() bool {
	for {
		u := n.unread.Load()
		if u <= 0 {
			return false
		}
		if n.unread.CompareAndSwap(u, u-1) {
			return true
		}
	}
}

// queued is a message waiting for a worker, and its place among its
// sender's messages.
type queued struct {
	in Inbound
	// routed is the envelope as envelope.Route read it, opened by the
	// worker without reading it again.
	routed  *envelope.Routed
	arrival *arrival
	// from is the sender the message claims, a peer of the keyring
	// (unverified), for the metrics of its outcome.
	from string
}

// enqueue runs on the transport's goroutine: it never blocks. Replies go
// straight to the request waiting for them (see Client.routeReply). The
// rest is read far enough to know its claimed sender: junk and messages
// from senders not in the keyring are refused here, at once, so that a
// flood of them never takes a place in the queue from a peer's message;
// a peer's message waits for a worker.
func (n *node) enqueue(in Inbound) {
	if len(in.Payload) == 0 && n.takeUnread() {
		return // the empty stand-in of a message already refused unread
	}
	if n.replies != nil && in.Topic == n.replyTopic {
		n.replies(n.ctx, in)
		return
	}
	if n.intake.Err() != nil {
		return // closing: nothing new is opened
	}
	route, err := envelope.Route(in.Payload, n.cfg.MaxSize)
	if err != nil {
		n.rejectPeeked(in, err, nil)
		return
	}
	from := route.From()
	if n.cfg.Keyring.Peer(from) == nil {
		n.rejectRouted(in, envelope.ErrUnknownKey, route)
		return
	}
	q := queued{in: in, routed: route, arrival: n.arrivals.arrive(from, route.Counter()), from: from}
	// One case and a default: a non-blocking send, which needs far less
	// of the delivering goroutine's stack than a select of three cases
	// (transports may deliver each message on a goroutine of its own, whose
	// stack would otherwise grow, by copying, for every message).
	select {
	case n.queue <- q:
	default:
		n.arrivals.decide(q.arrival)
		n.overloaded(in.Topic, q.from)
	}
}

// overloaded counts and logs a message from (the sender it claims, a
// peer) dropped because the queue was full, unless the node is closing and
// its workers are gone.
func (n *node) overloaded(topic, from string) {
	if n.intake.Err() != nil {
		return
	}
	n.refuse(n.ctx, StatOverload, from, "mqttsec: queue full, message dropped", "topic", topic)
}

func (n *node) work() {
	for {
		select {
		case <-n.intake.Done():
			return
		case q := <-n.queue:
			if n.intake.Err() == nil {
				n.route(q)
			}
			n.arrivals.decide(q.arrival)
		}
	}
}

func (n *node) route(q queued) {
	in := q.in
	if n.requests != nil {
		if method, ok := methodAfter(n.reqPrefix, in.Topic); ok {
			n.requests(n.ctx, in, q.routed, method)
			return
		}
	}
	if sender, topic, ok := n.topics.EventTopic(in.Topic); ok {
		n.mu.Lock()
		h := n.events[sender]
		n.mu.Unlock()
		if h != nil {
			n.handleEvent(in, q.routed, sender, topic, h)
			return
		}
	}
	n.count(StatUnroutable, q.from)
}

// rejectPeeked counts and logs a refused message whose header has been
// peeked: h, or nil if it did not read. Nothing goes back to the sender:
// before authentication there is no one to answer. The count's peer is
// the sender h claims, if that is a peer; the log line says what the
// header claims (see appendClaims).
func (n *node) rejectPeeked(in Inbound, err error, h *envelope.Header) {
	n.refuseMessage(in, err, n.claimedPeer(h), func() *envelope.Header { return h })
}

// rejectRouted is rejectPeeked for a message that envelope.Route read:
// the count's peer is the sender it claims, if that is a peer, and the
// line's claims come from r, made into a Header only when the line is
// written, not for refusals a flood has only counted.
func (n *node) rejectRouted(in Inbound, err error, r *envelope.Routed) {
	n.refuseMessage(in, err, n.claimedSender(r.From()), r.Header)
}

// refuseMessage is reject, with peer the label of its count and header
// finding the message's header (nil if it does not read) for the line, if
// one is written.
func (n *node) refuseMessage(in Inbound, err error, peer string, header func() *envelope.Header) {
	class := envelope.Class(err)
	name := classStat[class]
	if name == "" {
		name = StatMalformed
		if errors.Is(err, context.Canceled) {
			return
		}
	}
	n.count(name, peer)
	if class == envelope.ErrReplayStore {
		// This party's own state failed, not the message: every message is
		// refused until it is back, so it is an error whatever RejectLevel
		// says. The store's error names no secret.
		n.rejects.Log(n.ctx, slog.LevelError, "mqttsec: replay store unavailable, message refused", "", "topic", in.Topic, "err", err)
		return
	}
	n.rejects.LogMore(n.ctx, n.cfg.RejectLevel, "mqttsec: message refused", name,
		func() []any { return appendClaims(nil, header()) }, "topic", in.Topic)
}

// claimedPeer is the sender h claims if it is a peer of the keyring, for
// the metrics of a refusal (unverified); "" for a header that did not read
// or a sender the keyring lacks, which are never a label.
func (n *node) claimedPeer(h *envelope.Header) string {
	if h == nil {
		return ""
	}
	return n.claimedSender(h.From)
}

// claimedSender is from if it is a peer of the keyring, else "" (see
// claimedPeer).
func (n *node) claimedSender(from string) string {
	if n.cfg.Keyring.Peer(from) == nil {
		return ""
	}
	return from
}

// count counts an outcome (a Stat name) of a message from peer ("" for
// none known) in Stats and the metrics.
func (n *node) count(stat, peer string) {
	n.stats.add(stat)
	n.tel.count(stat, peer)
}

// appendClaims appends to attrs what a refused message's header claims:
// its sender ("claimed_from"), its kind ("kind") and the keys it names
// ("claimed_keys": "HS256:nCjULoikGARQrPxC,Ed25519:…", at most
// maxClaimedKeys of them), so that an operator can tell which device is
// failing. None of it is verified — the message was refused, and anyone
// may send a header naming any sender and key — hence "claimed_". Key ids
// are public: nothing secret is logged. A nil h (a header that does not
// read: junk, too large, an unsupported version) appends nothing.
func appendClaims(attrs []any, h *envelope.Header) []any {
	if h == nil {
		return attrs
	}
	return append(attrs, "claimed_from", h.From, "kind", h.Kind.String(), "claimed_keys", claimedKeys(h.Keys))
}

// maxClaimedKeys bounds the keys a refusal's line lists: a header may name
// dozens of wrapped keys.
const maxClaimedKeys = 8

// claimedKeys formats keys as "alg:id,alg:id", with "+N more" for keys
// past maxClaimedKeys.
func claimedKeys(keys []envelope.KeyRef) string {
	var b strings.Builder
	for i, k := range keys {
		if i == maxClaimedKeys {
			fmt.Fprintf(&b, ",+%d more", len(keys)-i)
			break
		}
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString(string(k.Algorithm))
		b.WriteByte(':')
		b.WriteString(k.ID.String())
	}
	return b.String()
}

// refuse counts a refused or dropped message from peer ("" for none
// known) under the Stats name stat, and logs msg with attrs through the
// reject log at RejectLevel, where a flood of one kind (msg and stat)
// comes out in few lines.
func (n *node) refuse(ctx context.Context, stat, peer, msg string, attrs ...any) {
	n.count(stat, peer)
	n.rejects.Log(ctx, n.cfg.RejectLevel, msg, stat, attrs...)
}

func (n *node) handleEvent(in Inbound, r *envelope.Routed, sender, topic string, h EventHandler) {
	m, err := n.opener.OpenRouted(n.ctx, r, &envelope.Expect{Kinds: envelope.Event, From: sender, Topic: topic})
	if err != nil {
		n.rejectRouted(in, err, r)
		return
	}
	n.count(StatAccepted, m.From)
	h(n.ctx, &Event{From: m.From, Topic: m.Topic, Payload: m.Payload, Protections: m.Protections})
}

// EventOptions says who an event is for and whether to encrypt it.
type EventOptions struct {
	// To lists the recipients; empty means any subscriber (then the event
	// must be signed: the keyring needs an Own.Signer).
	To []string
	// Encrypt encrypts the event to every recipient's Send.Recipients keys.
	Encrypt bool
	// TTL is how long the event stays valid; zero means envelope.DefaultTTL.
	TTL time.Duration
}

func (n *node) publishEvent(ctx context.Context, topic string, payload []byte, opt EventOptions) error {
	if err := n.live(); err != nil {
		return err
	}
	kr := n.cfg.Keyring
	p := &envelope.Params{Kind: envelope.Event, To: opt.To, Topic: topic, Signer: kr.signer(), TTL: opt.TTL}
	if p.Signer == nil {
		// Without a signing key only a pairwise-protected event to one peer
		// is possible.
		if len(opt.To) != 1 {
			return fmt.Errorf("%w: events to other than exactly one peer need Own.Signer", ErrInvalidEvent)
		}
		prot, err := kr.sendTo(opt.To[0])
		if err != nil {
			return err
		}
		p.HMAC, p.PSK, p.Signer = prot.HMAC, prot.PSK, prot.Signer
	}
	if opt.Encrypt {
		if len(opt.To) == 0 {
			return fmt.Errorf("%w: an encrypted event needs recipients", ErrInvalidEvent)
		}
		if p.PSK == nil {
			for _, id := range opt.To {
				prot, err := kr.sendTo(id)
				if err != nil {
					return fmt.Errorf("%w: %s", err, id)
				}
				if len(prot.Recipients) == 0 {
					return fmt.Errorf("%w: %s", ErrNoEncryptionKey, id)
				}
				p.Recipients = append(p.Recipients, prot.Recipients...)
			}
		}
	}
	sealed, err := n.seal(p, payload)
	if errors.Is(err, envelope.ErrInvalidParams) {
		// Options Seal does not take (a TTL): the caller's.
		return fmt.Errorf("%w: %w", ErrInvalidEvent, err)
	}
	if err != nil {
		return err
	}
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, n.publishTimeout())
		defer cancel()
	}
	if err := n.cfg.Transport.Publish(ctx, Outbound{Topic: n.topics.Event(n.cfg.ID, topic), Payload: sealed.Bytes}); err != nil {
		return err
	}
	sealed.published()
	return nil
}

func (n *node) subscribeEvents(ctx context.Context, sender string, h EventHandler) error {
	if err := n.live(); err != nil {
		return err
	}
	if n.cfg.Keyring.Peer(sender) == nil {
		return fmt.Errorf("%w: %s", ErrUnknownPeer, sender)
	}
	n.mu.Lock()
	n.events[sender] = h
	n.mu.Unlock()
	return n.cfg.Transport.Subscribe(ctx, n.topics.EventFilter(sender))
}

// now is the node's clock (Config.Now).
func (n *node) now() time.Time {
	if n.cfg.Now != nil {
		return n.cfg.Now()
	}
	return time.Now()
}

func (n *node) live() error {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.closed {
		return ErrClosed
	}
	if !n.started {
		return ErrNotStarted
	}
	return nil
}

// stop ends the workers and the sends still waiting.
func (n *node) stop() {
	n.mu.Lock()
	n.closed = true
	cancel := n.cancel
	n.mu.Unlock()
	if cancel != nil {
		cancel()
	}
	n.wg.Wait()
	n.sends.Wait()
	n.mu.Lock()
	gauges := n.gauges
	n.gauges = nil
	n.mu.Unlock()
	if gauges != nil {
		gauges.Unregister()
	}
	if left := len(n.queue); left > 0 {
		// Acknowledged to the broker, never opened: their senders get no
		// answer and may retry.
		n.log.Warn("mqttsec: closed with messages still queued, dropped unopened", "messages", left)
	}
	n.rejects.Close()
}

// close stops opening messages, lets the handlers already running finish
// and their replies reach the broker while ctx lasts, then disconnects
// the transport and ends the workers. A reply still unacknowledged when
// the connection closes is logged as unconfirmed, not as unsent: it may
// have arrived.
func (n *node) close(ctx context.Context) error {
	n.mu.Lock()
	n.closed = true
	stopIntake := n.stopIntake
	n.mu.Unlock()
	if stopIntake != nil {
		stopIntake()
		n.drain(ctx)
	}
	if ctx.Err() != nil {
		// Draining took all of ctx (a reply waiting for a connection that
		// is gone): disconnecting still gets a moment, so that the broker
		// is told and the connection's resources are freed.
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(context.WithoutCancel(ctx), closeGrace)
		defer cancel()
	}
	err := n.cfg.Transport.Close(ctx)
	n.stop()
	return err
}

// closeGrace is how long Close gives the transport to disconnect when
// draining took all of the caller's context.
const closeGrace = time.Second

// drain waits for the workers and the sends to finish, or for ctx.
func (n *node) drain(ctx context.Context) {
	done := make(chan struct{})
	go func() {
		n.wg.Wait()
		n.sends.Wait()
		close(done)
	}()
	select {
	case <-done:
	case <-ctx.Done():
	}
}

// maxPendingSends bounds the replies waiting for the broker's
// acknowledgement at once; a worker with a reply beyond it waits for a
// place: until one of them ends (each within PublishTimeout) or the node
// closes.
const maxPendingSends = 1024

// publishTimeout is Config.PublishTimeout or its default.
func (n *node) publishTimeout() time.Duration {
	if n.cfg.PublishTimeout > 0 {
		return n.cfg.PublishTimeout
	}
	return DefaultPublishTimeout
}

// send publishes out apart from the caller, which goes on at once: the
// wait for the broker's acknowledgement, up to PublishTimeout and never
// longer than within, holds a place among maxPendingSends rather than a
// worker. done gets the outcome.
func (n *node) send(out Outbound, within time.Duration, done func(error)) {
	select {
	case n.sendSlots <- struct{}{}:
	case <-n.ctx.Done():
		done(ErrClosed)
		return
	}
	n.sends.Go(func() {
		defer func() { <-n.sendSlots }()
		// n.ctx ends after the transport closed (see close): a publish
		// still waiting then ends too.
		ctx, cancel := context.WithTimeout(n.ctx, min(within, n.publishTimeout()))
		defer cancel()
		done(n.cfg.Transport.Publish(ctx, out))
	})
}

// stateLost logs and counts a loss of the replay store's own records,
// which the store reports through NotifyLoss.
func (n *node) stateLost(err error) {
	n.count(StatStateLost, "")
	n.log.Error("mqttsec: replay state lost: messages that may have been accepted before it are refused until they are too old to matter", "err", err)
}

// Stats returns the counters of received messages by outcome: accepted,
// each envelope error class, and the SDK's own refusals (see the Stat
// constants).
func (n *node) Stats() map[string]uint64 { return n.stats.snapshot() }
