package mqttsec

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"
	"go.opentelemetry.io/otel/trace/noop"

	"github.com/mqttsec/mqttsec/envelope"
	"github.com/mqttsec/mqttsec/mqttsec/replay"
)

// instrumentationName names the meter and the tracer.
const instrumentationName = "github.com/mqttsec/mqttsec/mqttsec"

// Attribute keys of the instruments and spans.
const (
	attrID        = attribute.Key("mqttsec.id")
	attrPeer      = attribute.Key("mqttsec.peer")
	attrServer    = attribute.Key("mqttsec.server")
	attrMethod    = attribute.Key("mqttsec.method")
	attrOutcome   = attribute.Key("mqttsec.outcome")
	attrResult    = attribute.Key("mqttsec.result")
	attrOperation = attribute.Key("mqttsec.operation")
	attrEvent     = attribute.Key("mqttsec.event")
	attrReason    = attribute.Key("mqttsec.reason")
	attrRPCSystem = attribute.Key("rpc.system")
	attrRPCMethod = attribute.Key("rpc.method")
)

// otherMethod labels the methods a server has no handler for: a caller
// may name any number of them.
const otherMethod = "_OTHER"

// durationBuckets are the histogram boundaries, in seconds: from 100 µs
// (an in-memory replay store) to 10 s (a request's default lifetime is
// envelope.DefaultTTL).
var durationBuckets = []float64{0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10}

// telemetry holds a node's instruments and tracer.
type telemetry struct {
	id     attribute.KeyValue
	meter  metric.Meter
	tracer trace.Tracer
	// continueTraces is Config.ContinueTraces.
	continueTraces bool
	// ownTracer is whether Config.TracerProvider was given (else the
	// global one is used; see tracing); ownMeter, Config.MeterProvider
	// (see metering).
	ownTracer, ownMeter bool

	received         metric.Int64Counter
	handlerDuration  metric.Float64Histogram
	serverActive     metric.Int64UpDownCounter
	requestDuration  metric.Float64Histogram
	clientActive     metric.Int64UpDownCounter
	replayDuration   metric.Float64Histogram
	connectionEvents metric.Int64Counter

	queueDepth, queueCapacity, publishPending, connectionUp metric.Int64ObservableGauge
	storeSenders, storeCapacity                             metric.Int64ObservableGauge
	storeForgotten                                          metric.Int64ObservableCounter

	// labels holds the options of the label sets seen, so that recording a
	// measurement allocates nothing once its labels were seen.
	labelsMu sync.RWMutex
	labels   map[labelKey]*labelSet
}

// labelKey names a label set: an instrument's kind of set, then values.
type labelKey [4]string

// labelSet is a set of labels as the instruments take it, and the name of
// a span that goes with it, if any.
type labelSet struct {
	add    []metric.AddOption
	record []metric.RecordOption
	name   string
}

// maxLabelSets bounds the label sets kept; past it, each measurement makes
// its set anew. Label values are bounded (see the package documentation),
// so only a keyring of thousands of peers reaches it.
const maxLabelSets = 1 << 14

// label returns the label set of k, made of this party's id and kvs the
// first time k is seen; for a span's set, spanPrefix is not empty and
// the span's name is spanPrefix followed by k[1] (the method), made only
// then.
func (t *telemetry) label(k labelKey, spanPrefix string, kvs ...attribute.KeyValue) *labelSet {
	t.labelsMu.RLock()
	l := t.labels[k]
	t.labelsMu.RUnlock()
	if l != nil {
		return l
	}
	o := metric.WithAttributeSet(attribute.NewSet(append(kvs, t.id)...))
	l = &labelSet{add: []metric.AddOption{o}, record: []metric.RecordOption{o}}
	if spanPrefix != "" {
		l.name = spanPrefix + k[1]
	}
	t.labelsMu.Lock()
	if len(t.labels) < maxLabelSets {
		t.labels[k] = l
	}
	t.labelsMu.Unlock()
	return l
}

// newTelemetry makes the instruments of a node with id from cfg's
// providers (or the global ones).
func newTelemetry(cfg Config) (*telemetry, error) {
	mp, tp := cfg.MeterProvider, cfg.TracerProvider
	if mp == nil {
		mp = otel.GetMeterProvider()
	}
	if tp == nil {
		tp = otel.GetTracerProvider()
	}
	m := mp.Meter(instrumentationName)
	t := &telemetry{id: attrID.String(cfg.ID), meter: m, tracer: tp.Tracer(instrumentationName), labels: map[labelKey]*labelSet{},
		continueTraces: cfg.ContinueTraces, ownTracer: cfg.TracerProvider != nil, ownMeter: cfg.MeterProvider != nil}
	seconds := []metric.Float64HistogramOption{metric.WithUnit("s"), metric.WithExplicitBucketBoundaries(durationBuckets...)}
	var errs []error
	add := func(err error) { errs = append(errs, err) }
	var err error
	t.received, err = m.Int64Counter("mqttsec.messages", metric.WithUnit("{message}"),
		metric.WithDescription("Messages received, by outcome: accepted, or why they were refused or dropped."))
	add(err)
	t.handlerDuration, err = m.Float64Histogram("mqttsec.server.handler.duration",
		append(seconds, metric.WithDescription("How long request handlers ran."))...)
	add(err)
	t.serverActive, err = m.Int64UpDownCounter("mqttsec.server.active_requests", metric.WithUnit("{request}"),
		metric.WithDescription("Requests whose handler is running."))
	add(err)
	t.requestDuration, err = m.Float64Histogram("mqttsec.client.request.duration",
		append(seconds, metric.WithDescription("How long requests took, from the call to the reply or failure."))...)
	add(err)
	t.clientActive, err = m.Int64UpDownCounter("mqttsec.client.active_requests", metric.WithUnit("{request}"),
		metric.WithDescription("Requests waiting for their reply."))
	add(err)
	t.replayDuration, err = m.Float64Histogram("mqttsec.replay.duration",
		append(seconds, metric.WithDescription("How long the replay store took to check or admit a message."))...)
	add(err)
	t.connectionEvents, err = m.Int64Counter("mqttsec.connection.events", metric.WithUnit("{event}"),
		metric.WithDescription("Connection events: connected, reconnected, lost, failed, renewed."))
	add(err)
	t.queueDepth, err = m.Int64ObservableGauge("mqttsec.queue.depth", metric.WithUnit("{message}"),
		metric.WithDescription("Messages waiting for a worker."))
	add(err)
	t.queueCapacity, err = m.Int64ObservableGauge("mqttsec.queue.capacity", metric.WithUnit("{message}"),
		metric.WithDescription("The most messages that may wait for a worker."))
	add(err)
	t.publishPending, err = m.Int64ObservableGauge("mqttsec.publish.pending", metric.WithUnit("{message}"),
		metric.WithDescription("Replies waiting for the broker's acknowledgement."))
	add(err)
	t.connectionUp, err = m.Int64ObservableGauge("mqttsec.connection.up",
		metric.WithDescription("1 while connected to the broker, else 0."))
	add(err)
	t.storeSenders, err = m.Int64ObservableGauge("mqttsec.replay.senders", metric.WithUnit("{sender}"),
		metric.WithDescription("Senders the replay store tracks (stores that tell: MemoryStore, FileStore)."))
	add(err)
	t.storeCapacity, err = m.Int64ObservableGauge("mqttsec.replay.senders.capacity", metric.WithUnit("{sender}"),
		metric.WithDescription("The most senders the replay store tracks: it is full when mqttsec.replay.senders reaches it."))
	add(err)
	t.storeForgotten, err = m.Int64ObservableCounter("mqttsec.replay.forgotten", metric.WithUnit("{sender}"),
		metric.WithDescription("Senders the full replay store forgot to make room, by reason: expired (harmless) or live (it may refuse legitimate messages: raise its MaxSenders)."))
	add(err)
	if err := errors.Join(errs...); err != nil {
		return nil, fmt.Errorf("%w: instruments: %w", ErrInvalidConfig, err)
	}
	return t, nil
}

// observeStore reports how full a sized replay store is.
func (t *telemetry) observeStore(o metric.Observer, st replay.MemoryStats) {
	id := metric.WithAttributes(t.id)
	o.ObserveInt64(t.storeSenders, int64(st.Senders), id)
	o.ObserveInt64(t.storeCapacity, int64(st.MaxSenders), id)
	o.ObserveInt64(t.storeForgotten, int64(st.ForgottenExpired), metric.WithAttributes(t.id, attrReason.String("expired")))
	o.ObserveInt64(t.storeForgotten, int64(st.ForgottenLive), metric.WithAttributes(t.id, attrReason.String("live")))
}

// count adds one message with outcome (a Stat name) from peer ("" when the
// sender is not in the keyring, or unknown).
func (t *telemetry) count(outcome, peer string) {
	if !t.metering() {
		return
	}
	var l *labelSet
	if peer == "" {
		l = t.label(labelKey{"messages", outcome}, "", attrOutcome.String(outcome))
	} else {
		l = t.label(labelKey{"messages", outcome, peer}, "", attrOutcome.String(outcome), attrPeer.String(peer))
	}
	t.received.Add(context.Background(), 1, l.add...)
}

// connection counts a connection event.
func (t *telemetry) connection(event string) {
	if !t.metering() {
		return
	}
	l := t.label(labelKey{"connection", event}, "", attrEvent.String(event))
	t.connectionEvents.Add(context.Background(), 1, l.add...)
}

// untracedProvider is the global tracer provider as it is before an
// application installs one: its spans record nothing, yet each costs
// allocations. A Client or Server on the global provider starts no span
// while it is this one (BenchmarkInProcessRoundTrip/hmac/secured, 6
// interleaved runs: 57 allocations a round trip instead of 63, 6.7 KiB
// instead of 7.2; the time within the noise, 19.6 against 20.0 µs).
var untracedProvider = otel.GetTracerProvider()

// untracedSpan stands for a span not started.
var untracedSpan trace.Span = noop.Span{}

// tracing is whether spans are started: with a tracer provider of the
// Config's own, or once the application installed a global one.
func (t *telemetry) tracing() bool {
	return t.ownTracer || otel.GetTracerProvider() != untracedProvider
}

// untouchedMeterProvider is the global meter provider as it is before an
// application installs one: its instruments record nothing, yet finding
// each measurement's labels and reading the clock for the durations cost
// every message. A Client or Server on the global provider measures
// nothing while it is this one (see BenchmarkInProcessRoundTrip).
var untouchedMeterProvider = otel.GetMeterProvider()

// metering is whether measurements are recorded: with a meter provider of
// the Config's own, or once the application installed a global one.
func (t *telemetry) metering() bool {
	return t.ownMeter || otel.GetMeterProvider() != untouchedMeterProvider
}

// Span start options, made once.
var (
	clientSpan = []trace.SpanStartOption{trace.WithSpanKind(trace.SpanKindClient)}
	serverSpan = []trace.SpanStartOption{trace.WithSpanKind(trace.SpanKindServer)}
)

// startCall starts the span of a request for method on server, and
// counts it in flight. metered says whether it was counted: endCall is
// told, so that an SDK installed meanwhile never sees the request end
// without having seen it begin.
func (t *telemetry) startCall(ctx context.Context, server, method string) (_ context.Context, _ trace.Span, metered bool) {
	if metered = t.metering(); metered {
		t.clientActive.Add(ctx, 1, t.label(labelKey{"client"}, "").add...)
	}
	if !t.tracing() {
		return ctx, untracedSpan, metered
	}
	l := t.label(labelKey{"call", method}, "call ")
	ctx, span := t.tracer.Start(ctx, l.name, clientSpan...)
	if span.IsRecording() {
		span.SetAttributes(attrRPCSystem.String("mqttsec"), attrRPCMethod.String(method), attrServer.String(server))
	}
	return ctx, span, metered
}

// endCall records the outcome of a request started with startCall at
// began (if startCall counted it: metered), and ends its span.
func (t *telemetry) endCall(ctx context.Context, span trace.Span, metered bool, began time.Time, server, method string, err error) {
	if !metered {
		endSpan(span, err)
		return
	}
	t.clientActive.Add(ctx, -1, t.label(labelKey{"client"}, "").add...)
	result := requestResult(err)
	l := t.label(labelKey{"request", server, method, result}, "",
		attrServer.String(server), attrMethod.String(method), attrResult.String(result))
	t.requestDuration.Record(ctx, time.Since(began).Seconds(), l.record...)
	endSpan(span, err)
}

// startServe starts the span of req, just opened, whose method is
// labelled method: linked to the caller's span, whose context its
// correlation id carries, if any, or with Config.ContinueTraces its child
// (see the package documentation).
func (t *telemetry) startServe(ctx context.Context, req *envelope.Message, method string) (context.Context, trace.Span) {
	if !t.tracing() {
		return ctx, untracedSpan
	}
	l := t.label(labelKey{"serve", method}, "serve ")
	opts := serverSpan
	if caller := callerSpan(req.CorrelationID); caller.IsValid() {
		if t.continueTraces {
			ctx = trace.ContextWithRemoteSpanContext(ctx, caller)
		} else {
			opts = append(opts[:len(opts):len(opts)], trace.WithNewRoot(), trace.WithLinks(trace.Link{SpanContext: caller}))
		}
	}
	ctx, span := t.tracer.Start(ctx, l.name, opts...)
	if span.IsRecording() {
		span.SetAttributes(attrRPCSystem.String("mqttsec"), attrRPCMethod.String(method), attrPeer.String(req.From))
	}
	return ctx, span
}

// handling counts a handler of method starting (delta 1) or ending (-1).
func (t *telemetry) handling(ctx context.Context, method string, delta int64) {
	t.serverActive.Add(ctx, delta, t.label(labelKey{"active", method}, "", attrMethod.String(method)).add...)
}

// handled records how long a handler of method ran for peer, and its
// result.
func (t *telemetry) handled(ctx context.Context, peer, method, result string, took time.Duration) {
	l := t.label(labelKey{"handled", peer, method, result}, "",
		attrPeer.String(peer), attrMethod.String(method), attrResult.String(result))
	t.handlerDuration.Record(ctx, took.Seconds(), l.record...)
}

// traceparentField is the W3C trace context field a correlation id carries.
const traceparentField = "traceparent"

// traceparentLen is the length of a version-00 traceparent.
const traceparentLen = 55

var traceContext = propagation.TraceContext{}

// correlationID is the correlation id of a request sent from ctx: the
// W3C traceparent of ctx's span, or nil (a random one) if it has none.
func correlationID(ctx context.Context) []byte {
	if !trace.SpanContextFromContext(ctx).IsValid() {
		return nil
	}
	carrier := propagation.MapCarrier{}
	traceContext.Inject(ctx, carrier)
	if tp := carrier[traceparentField]; len(tp) == traceparentLen {
		return []byte(tp)
	}
	return nil
}

// callerSpan is the span context a request's correlation id carries, if
// it is a valid traceparent; the zero, invalid, span context otherwise. A
// random correlation id is not a traceparent.
func callerSpan(corr []byte) trace.SpanContext {
	if len(corr) != traceparentLen || string(corr[:3]) != "00-" {
		return trace.SpanContext{}
	}
	ctx := traceContext.Extract(context.Background(), propagation.MapCarrier{traceparentField: string(corr)})
	return trace.SpanContextFromContext(ctx)
}

// endSpan ends span with err as its status (none for nil).
func endSpan(span trace.Span, err error) {
	if err != nil {
		span.RecordError(err)
		span.SetStatus(codes.Error, err.Error())
	}
	span.End()
}

// requestResult names the outcome of a Request for its histogram: a
// small fixed set, whatever the error.
func requestResult(err error) string {
	if err == nil {
		return "ok"
	}
	var e *Error
	var skew *ClockSkewError
	switch {
	case errors.As(err, &e):
		return "error_reply"
	case errors.Is(err, ErrNoReply):
		return "no_reply"
	case errors.As(err, &skew):
		return "clock_skew"
	case errors.Is(err, ErrPublishRefused):
		return "publish_refused"
	case errors.Is(err, envelope.ErrReplayStore):
		return "replay_store"
	case errors.Is(err, ErrClosed):
		return "closed"
	default:
		return "failed"
	}
}

// timedStore is a replay store whose checks and admissions are measured
// (mqttsec.replay.duration).
type timedStore struct {
	envelope.ReplayStore
	tel *telemetry
}

// Check checks m, measured.
func (s *timedStore) Check(ctx context.Context, m envelope.Seen) error {
	if !s.tel.metering() {
		return s.ReplayStore.Check(ctx, m)
	}
	began := time.Now()
	err := s.ReplayStore.Check(ctx, m)
	s.tel.replayed(ctx, "check", time.Since(began), err)
	return err
}

// Admit admits m, measured.
func (s *timedStore) Admit(ctx context.Context, m envelope.Seen) error {
	if !s.tel.metering() {
		return s.ReplayStore.Admit(ctx, m)
	}
	began := time.Now()
	err := s.ReplayStore.Admit(ctx, m)
	s.tel.replayed(ctx, "admit", time.Since(began), err)
	return err
}

// replayed records one replay store operation that took d and ended
// with err: ok, replayed, or error (the store failed).
func (t *telemetry) replayed(ctx context.Context, op string, d time.Duration, err error) {
	result := "ok"
	switch {
	case errors.Is(err, envelope.ErrReplayed):
		result = "replayed"
	case err != nil:
		result = "error"
	}
	l := t.label(labelKey{"replay", op, result}, "", attrOperation.String(op), attrResult.String(result))
	t.replayDuration.Record(ctx, d.Seconds(), l.record...)
}
