package mqttsec_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"

	"github.com/mqttsec/mqttsec/envelope"
	"github.com/mqttsec/mqttsec/internal/testbroker"
	"github.com/mqttsec/mqttsec/internal/testwait"
	"github.com/mqttsec/mqttsec/mqttsec"
	"github.com/mqttsec/mqttsec/mqttsec/replay"
)

// meter is an SDK meter provider whose metrics a test reads when it asks.
type meter struct {
	reader   *sdkmetric.ManualReader
	provider *sdkmetric.MeterProvider
}

func newMeter(t *testing.T) *meter {
	r := sdkmetric.NewManualReader()
	m := &meter{reader: r, provider: sdkmetric.NewMeterProvider(sdkmetric.WithReader(r))}
	t.Cleanup(func() { m.provider.Shutdown(context.Background()) })
	return m
}

// point is one data point of a metric: its attributes (as "key=value"
// pairs, without mqttsec.id) and its value (a sum, a gauge or a
// histogram's count).
type point struct {
	attrs string
	value int64
}

// read collects the metrics and returns each instrument's points by name.
func (m *meter) read(t *testing.T) map[string][]point {
	t.Helper()
	var rm metricdata.ResourceMetrics
	if err := m.reader.Collect(context.Background(), &rm); err != nil {
		t.Fatal(err)
	}
	out := map[string][]point{}
	for _, sm := range rm.ScopeMetrics {
		for _, md := range sm.Metrics {
			switch d := md.Data.(type) {
			case metricdata.Sum[int64]:
				for _, p := range d.DataPoints {
					out[md.Name] = append(out[md.Name], point{labels(p.Attributes), p.Value})
				}
			case metricdata.Gauge[int64]:
				for _, p := range d.DataPoints {
					out[md.Name] = append(out[md.Name], point{labels(p.Attributes), p.Value})
				}
			case metricdata.Histogram[float64]:
				for _, p := range d.DataPoints {
					out[md.Name] = append(out[md.Name], point{labels(p.Attributes), int64(p.Count)})
				}
			default:
				t.Fatalf("%s: unexpected data %T", md.Name, md.Data)
			}
		}
	}
	return out
}

// labels renders attrs as "k=v,k=v" in key order, leaving out mqttsec.id.
func labels(attrs attribute.Set) string {
	s := ""
	for _, kv := range attrs.ToSlice() {
		if kv.Key == "mqttsec.id" {
			continue
		}
		if s != "" {
			s += ","
		}
		s += fmt.Sprintf("%s=%s", kv.Key, kv.Value.String())
	}
	return s
}

// value is the value of the point of name with exactly attrs, or -1 if
// there is none.
func value(points map[string][]point, name, attrs string) int64 {
	for _, p := range points[name] {
		if p.attrs == attrs {
			return p.value
		}
	}
	return -1
}

// TestMetricsByOutcomePeerAndMethod: a gateway and a client report what
// happened to each message, request and connection, labelled by outcome,
// peer and method; refusals are labelled with the sender they claim only
// when it is a peer, so a flood claiming random senders adds no series.
func TestMetricsByOutcomePeerAndMethod(t *testing.T) {
	b := embeddedBroker(t)
	gw, cl := newMeter(t), newMeter(t)
	p := newPair(t, b, pairOptions{proto: 5, suite: suites()[0],
		configure:       func(c *mqttsec.ServerConfig) { c.MeterProvider, c.QueueSize = gw.provider, 64 },
		configureClient: func(c *mqttsec.Config) { c.MeterProvider = cl.provider },
	})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := p.client.Request(ctx, "gateway", "echo", []byte("hi")); err != nil {
		t.Fatal(err)
	}
	var e *mqttsec.Error
	if _, err := p.client.Request(ctx, "gateway", "no-such-method", nil); !errors.As(err, &e) || e.Code != mqttsec.CodeNotFound {
		t.Fatalf("unknown method: %v", err)
	}
	// What a hostile broker injects: junk, a forgery claiming the client
	// (a flipped tag), and forgeries claiming 50 senders nobody knows.
	topic := "mqttsec/gateway/req/echo"
	k := getKeys()
	forged := sealAs(t, "client", k.hmac)
	forged[len(forged)-5] ^= 1 // the HMAC tag's last byte, before the empty signature's length
	inject := [][]byte{[]byte("junk"), forged}
	for i := range 50 {
		inject = append(inject, sealAs(t, fmt.Sprintf("stranger-%d", i), k.hmac))
	}
	for _, m := range inject {
		if err := b.embedded.Publish(topic, m); err != nil {
			t.Fatal(err)
		}
	}
	testwait.Until(t, "the injected messages refused", func() bool {
		st := p.server.Stats()
		return st[mqttsec.StatMalformed] == 1 && st[mqttsec.StatAuthentication] == 1 && st[mqttsec.StatUnknownKey] == 50
	})

	got := gw.read(t)
	expectPoints(t, "gateway", got, []pointWant{
		{"mqttsec.messages", "mqttsec.outcome=accepted,mqttsec.peer=client", 1},
		{"mqttsec.messages", "mqttsec.outcome=not-found,mqttsec.peer=client", 1},
		{"mqttsec.messages", "mqttsec.outcome=authentication,mqttsec.peer=client", 1},
		{"mqttsec.messages", "mqttsec.outcome=malformed", 1},
		{"mqttsec.messages", "mqttsec.outcome=unknown-key", 50},
		{"mqttsec.server.handler.duration", "mqttsec.method=echo,mqttsec.peer=client,mqttsec.result=ok", 1},
		{"mqttsec.server.active_requests", "mqttsec.method=echo", 0},
		{"mqttsec.replay.duration", "mqttsec.operation=admit,mqttsec.result=ok", 2},
		{"mqttsec.queue.capacity", "", 64},
		{"mqttsec.queue.depth", "", 0},
		{"mqttsec.connection.up", "", 1},
		{"mqttsec.connection.events", "mqttsec.event=connected", 1},
	})
	for _, pt := range got["mqttsec.messages"] {
		if strings.Contains(pt.attrs, "mqttsec.peer=") && !strings.Contains(pt.attrs, "mqttsec.peer=client") {
			t.Errorf("a label for a sender outside the keyring: %s", pt.attrs)
		}
	}
	if n := len(got["mqttsec.messages"]); n != 5 {
		t.Errorf("%d series of mqttsec.messages, want 5: %v", n, got["mqttsec.messages"])
	}

	expectPoints(t, "client", cl.read(t), []pointWant{
		{"mqttsec.client.request.duration", "mqttsec.method=echo,mqttsec.result=ok,mqttsec.server=gateway", 1},
		{"mqttsec.client.request.duration", "mqttsec.method=no-such-method,mqttsec.result=error_reply,mqttsec.server=gateway", 1},
		{"mqttsec.client.active_requests", "", 0},
		{"mqttsec.messages", "mqttsec.outcome=accepted,mqttsec.peer=gateway", 2},
	})
}

// pointWant is the value a metric's point with attrs must have.
type pointWant struct {
	name, attrs string
	want        int64
}

// expectPoints checks that got, the metrics of who, has each point of
// wants.
func expectPoints(t *testing.T, who string, got map[string][]point, wants []pointWant) {
	t.Helper()
	for _, w := range wants {
		if v := value(got, w.name, w.attrs); v != w.want {
			t.Errorf("%s %s{%s} = %d, want %d; all: %v", who, w.name, w.attrs, v, w.want, got[w.name])
		}
	}
}

// sealAs seals a request for echo on the gateway from id with key.
func sealAs(t *testing.T, id string, key *envelope.HMACKey) []byte {
	t.Helper()
	s := &envelope.Sealer{ID: id, Counter: envelope.NewClockCounter()}
	m, err := s.Seal(&envelope.Params{Kind: envelope.Request, To: []string{"gateway"}, Topic: "echo",
		ReplyTo: "mqttsec/" + id + "/reply", HMAC: key}, []byte("x"))
	if err != nil {
		t.Fatal(err)
	}
	return m.Bytes
}

// TestTraceSpansClientToHandler: with ContinueTraces, a request's span on
// the client is the parent of the gateway's span, which the handler finds
// in its context; the gateway's span ends once its reply was acknowledged.
func TestTraceSpansClientToHandler(t *testing.T) {
	b := embeddedBroker(t)
	gwSpans, clSpans := tracetest.NewSpanRecorder(), tracetest.NewSpanRecorder()
	gwTracer := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(gwSpans))
	clTracer := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(clSpans))
	inHandler := make(chan trace.SpanContext, 1)
	p := newPair(t, b, pairOptions{proto: 5, suite: suites()[0],
		configure: func(c *mqttsec.ServerConfig) { c.TracerProvider, c.ContinueTraces = gwTracer, true },
		configureClient: func(c *mqttsec.Config) {
			c.TracerProvider = clTracer
		},
		handlers: map[string]mqttsec.HandlerFunc{"traced": func(ctx context.Context, r *mqttsec.Request) ([]byte, error) {
			inHandler <- trace.SpanContextFromContext(ctx)
			return nil, nil
		}},
	})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	ctx, app := clTracer.Tracer("app").Start(ctx, "app")
	if _, err := p.client.Request(ctx, "gateway", "traced", nil); err != nil {
		t.Fatal(err)
	}
	app.End()
	handlerSpan := <-inHandler
	testwait.Until(t, "the gateway's span ended", func() bool { return len(gwSpans.Ended()) == 1 })

	var call sdktrace.ReadOnlySpan
	for _, s := range clSpans.Ended() {
		if s.Name() == "call traced" {
			call = s
		}
	}
	if call == nil {
		t.Fatalf("no client span: %v", clSpans.Ended())
	}
	serve := gwSpans.Ended()[0]
	switch {
	case serve.Name() != "serve traced":
		t.Errorf("gateway span %q", serve.Name())
	case serve.SpanKind() != trace.SpanKindServer || call.SpanKind() != trace.SpanKindClient:
		t.Errorf("kinds: %v, %v", call.SpanKind(), serve.SpanKind())
	case call.Parent().SpanID() != app.SpanContext().SpanID():
		t.Errorf("the client span's parent is not the application's span")
	case serve.Parent().TraceID() != call.SpanContext().TraceID() || serve.Parent().SpanID() != call.SpanContext().SpanID():
		t.Errorf("gateway span's parent %v, want the client span %v", serve.Parent(), call.SpanContext())
	case !serve.Parent().IsRemote():
		t.Errorf("gateway span's parent not remote")
	case handlerSpan.SpanID() != serve.SpanContext().SpanID():
		t.Errorf("the handler's context holds span %v, not the gateway's %v", handlerSpan.SpanID(), serve.SpanContext().SpanID())
	}
}

// TestCallerTraceIsOnlyLinked: by default the gateway's span starts a
// trace of its own, sampled by the gateway, and links to the caller's span:
// a caller that asks not to be sampled is traced all the same, and the
// trace id is not the caller's.
func TestCallerTraceIsOnlyLinked(t *testing.T) {
	b := embeddedBroker(t)
	gwSpans := tracetest.NewSpanRecorder()
	gwTracer := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(gwSpans))
	p := newPair(t, b, pairOptions{proto: 5, suite: suites()[0],
		configure: func(c *mqttsec.ServerConfig) { c.TracerProvider = gwTracer },
	})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	// The caller's span context, not sampled, from no tracer at all.
	caller := trace.NewSpanContext(trace.SpanContextConfig{
		TraceID: trace.TraceID{0x0a, 0xf7, 0x65, 1}, SpanID: trace.SpanID{0xb7, 0xad, 1}, Remote: true,
	})
	if _, err := p.client.Request(trace.ContextWithSpanContext(ctx, caller), "gateway", "echo", nil); err != nil {
		t.Fatal(err)
	}
	testwait.Until(t, "the gateway's span ended", func() bool { return len(gwSpans.Ended()) == 1 })
	serve := gwSpans.Ended()[0]
	switch links := serve.Links(); {
	case serve.Parent().IsValid():
		t.Errorf("gateway span has parent %v; want a root", serve.Parent())
	case serve.SpanContext().TraceID() == caller.TraceID():
		t.Errorf("gateway span continues the caller's trace")
	case len(links) != 1 || links[0].SpanContext.TraceID() != caller.TraceID() || links[0].SpanContext.SpanID() != caller.SpanID():
		t.Errorf("links %v; want one, to the caller's span", links)
	}
}

// TestRequestWithoutTraceIsNotTraced: a request from a context with no
// span carries a random correlation id, and the gateway's span starts a
// trace of its own, linked to nothing.
func TestRequestWithoutTraceIsNotTraced(t *testing.T) {
	b := embeddedBroker(t)
	gwSpans := tracetest.NewSpanRecorder()
	gwTracer := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(gwSpans))
	p := newPair(t, b, pairOptions{proto: 5, suite: suites()[0],
		configure: func(c *mqttsec.ServerConfig) { c.TracerProvider, c.ContinueTraces = gwTracer, true },
	})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := p.client.Request(ctx, "gateway", "echo", nil); err != nil {
		t.Fatal(err)
	}
	testwait.Until(t, "the gateway's span ended", func() bool { return len(gwSpans.Ended()) == 1 })
	if s := gwSpans.Ended()[0]; s.Parent().IsValid() || len(s.Links()) != 0 {
		t.Fatalf("gateway span has parent %v and links %v from a request without a trace", s.Parent(), s.Links())
	}
}

// TestReady: Ready says why a party is not ready — not started, the
// broker gone, closed — and nil while it is connected and subscribed,
// again once the broker is back, on both MQTT versions.
func TestReady(t *testing.T) {
	for _, proto := range []int{3, 5} {
		t.Run(fmt.Sprintf("v%d", proto), func(t *testing.T) {
			b, err := testbroker.Start("127.0.0.1:0", nil) // closed and restarted by the test
			if err != nil {
				t.Fatal(err)
			}
			k := getKeys()
			ring := mustT(mqttsec.NewKeyring(mqttsec.Own{}, peerOf(k, "client", k.client, envelope.HMAC, mqttsec.Protection{HMAC: k.hmac})))
			srv := mustT(mqttsec.NewServer(mqttsec.ServerConfig{Config: mqttsec.Config{ID: "gateway", Keyring: ring,
				Transport: transport(t, proto, b.URL(), "gateway", nil)}}))
			if err := srv.Ready(); !errors.Is(err, mqttsec.ErrNotStarted) {
				t.Fatalf("before Start: %v", err)
			}
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()
			if err := srv.Start(ctx); err != nil {
				t.Fatal(err)
			}
			if err := srv.Ready(); err != nil {
				t.Fatalf("started: %v", err)
			}
			b.Close()
			testwait.Until(t, "Ready to see the broker gone", func() bool { return errors.Is(srv.Ready(), mqttsec.ErrNotConnected) })
			b, err = testbroker.Start(b.Addr(), nil)
			if err != nil {
				t.Fatal(err)
			}
			defer b.Close()
			testwait.Until(t, "Ready after the broker came back", func() bool { return srv.Ready() == nil })
			if err := srv.Close(ctx); err != nil {
				t.Fatalf("close: %v", err)
			}
			if err := srv.Ready(); !errors.Is(err, mqttsec.ErrClosed) {
				t.Fatalf("after Close: %v", err)
			}
		})
	}
}

// globalSpans records the spans of the tracer provider TestGlobalTracerProvider
// installs globally. One provider for every run of the test: the global
// provider hands a tracer made before the first installation to the
// first provider installed, for good.
var (
	globalSpans    = tracetest.NewSpanRecorder()
	globalProvider = sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(globalSpans))
)

// TestGlobalTracerProvider: without Config.TracerProvider, a Client and a
// Server made before the application installs a global tracer provider
// trace through it once it is installed.
func TestGlobalTracerProvider(t *testing.T) {
	b := embeddedBroker(t)
	p := newPair(t, b, pairOptions{proto: 5, suite: suites()[0]})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := p.client.Request(ctx, "gateway", "echo", nil); err != nil {
		t.Fatal(err)
	}
	prev := otel.GetTracerProvider()
	otel.SetTracerProvider(globalProvider)
	t.Cleanup(func() { otel.SetTracerProvider(prev) })
	before := len(globalSpans.Ended())
	if _, err := p.client.Request(ctx, "gateway", "echo", nil); err != nil {
		t.Fatal(err)
	}
	testwait.Until(t, "both spans of the request", func() bool { return len(globalSpans.Ended()) == before+2 })
	var names []string
	for _, s := range globalSpans.Ended()[before:] {
		names = append(names, s.Name())
	}
	slices.Sort(names)
	if !slices.Equal(names, []string{"call echo", "serve echo"}) {
		t.Fatalf("spans %v", names)
	}
}

// globalMeter is the meter provider TestGlobalMeterProvider installs
// globally, one for every run of the test, as globalProvider is.
var (
	globalReader = sdkmetric.NewManualReader()
	globalMeter  = sdkmetric.NewMeterProvider(sdkmetric.WithReader(globalReader))
)

// TestGlobalMeterProvider: without Config.MeterProvider, a Client and a
// Server made before the application installs a global meter provider
// measure through it once it is installed. A request under way when it
// is installed is not counted out without having been counted in: the
// requests and handlers in flight never go below 0. The next request is
// measured on both sides.
func TestGlobalMeterProvider(t *testing.T) {
	b := embeddedBroker(t)
	entered, release := make(chan struct{}), make(chan struct{})
	p := newPair(t, b, pairOptions{proto: 5, suite: suites()[0], handlers: map[string]mqttsec.HandlerFunc{
		"block": func(ctx context.Context, r *mqttsec.Request) ([]byte, error) {
			close(entered)
			select {
			case <-release:
				return nil, nil
			case <-ctx.Done():
				return nil, ctx.Err()
			}
		},
	}})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	done := make(chan error, 1)
	go func() {
		_, err := p.client.Request(ctx, "gateway", "block", nil)
		done <- err
	}()
	select {
	case <-entered:
	case <-ctx.Done():
		t.Fatal("the handler never ran")
	}
	prev := otel.GetMeterProvider()
	otel.SetMeterProvider(globalMeter)
	t.Cleanup(func() { otel.SetMeterProvider(prev) })
	close(release)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	m := &meter{reader: globalReader, provider: globalMeter}
	for name, points := range m.read(t) {
		if !strings.HasSuffix(name, "active_requests") {
			continue
		}
		for _, pt := range points {
			if pt.value < 0 {
				t.Errorf("%s{%s} = %d after the request under way ended", name, pt.attrs, pt.value)
			}
		}
	}
	const echoRuns = "mqttsec.method=echo,mqttsec.peer=client,mqttsec.result=ok"
	first := m.read(t)
	before := value(first, "mqttsec.messages", "mqttsec.outcome=accepted,mqttsec.peer=gateway")
	beforeEcho := value(first, "mqttsec.server.handler.duration", echoRuns)
	if _, err := p.client.Request(ctx, "gateway", "echo", nil); err != nil {
		t.Fatal(err)
	}
	got := m.read(t)
	if n := value(got, "mqttsec.messages", "mqttsec.outcome=accepted,mqttsec.peer=gateway"); n != max(before, 0)+1 {
		t.Errorf("client's accepted replies: %d, want %d", n, max(before, 0)+1)
	}
	if n := value(got, "mqttsec.messages", "mqttsec.outcome=accepted,mqttsec.peer=client"); n < 1 {
		t.Errorf("server's accepted requests: %d, want at least 1", n)
	}
	if n := value(got, "mqttsec.server.handler.duration", echoRuns); n != max(beforeEcho, 0)+1 {
		t.Errorf("echo handler runs measured: %d, want %d", n, max(beforeEcho, 0)+1)
	}
}

// TestReplayStoreMetrics: a server whose replay store tells how full it
// is reports its senders, its capacity, and the senders it forgot, by
// reason.
func TestReplayStoreMetrics(t *testing.T) {
	b := embeddedBroker(t)
	gw := newMeter(t)
	store, err := replay.NewMemoryStoreWith(replay.MemoryStoreOptions{MaxSenders: 8})
	if err != nil {
		t.Fatal(err)
	}
	p := newPair(t, b, pairOptions{proto: 5, suite: suites()[0],
		configure: func(c *mqttsec.ServerConfig) { c.MeterProvider, c.Replay = gw.provider, store },
	})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := p.client.Request(ctx, "gateway", "echo", nil); err != nil {
		t.Fatal(err)
	}
	got := gw.read(t)
	for _, want := range []struct {
		name, attrs string
		value       int64
	}{
		{"mqttsec.replay.senders", "", 1},
		{"mqttsec.replay.senders.capacity", "", 8},
		{"mqttsec.replay.forgotten", "mqttsec.reason=expired", 0},
		{"mqttsec.replay.forgotten", "mqttsec.reason=live", 0},
	} {
		if v := value(got, want.name, want.attrs); v != want.value {
			t.Errorf("%s{%s} = %d, want %d", want.name, want.attrs, v, want.value)
		}
	}
}
