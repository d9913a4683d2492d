package mqttsec_test

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/mqttsec/mqttsec/envelope"
	"github.com/mqttsec/mqttsec/internal/hostile"
	"github.com/mqttsec/mqttsec/internal/mqttproxy"
	"github.com/mqttsec/mqttsec/internal/testwait"
	"github.com/mqttsec/mqttsec/mqttsec"
)

// liveWorld is a gateway and a client on a hostile broker, each with a
// clock the test can move, and the gateway's log.
type liveWorld struct {
	t      *testing.T
	proto  int
	b      *hostile.Broker
	gw     *mqttsec.Server
	client *mqttsec.Client
	log    *testwait.Log // the gateway's
	// clientLog is the log of the first client.
	clientLog *testwait.Log
	// gwClock and clientClock are added to the real time on each side.
	gwClock, clientClock atomic.Int64
	runs                 atomic.Int64 // handler runs
	clientRing           *mqttsec.Keyring
	send                 mqttsec.Protection
	proxy                *mqttproxy.Proxy // with liveOptions.proxy
}

type liveOptions struct {
	// skew is the gateway's MaxClockSkew for the client (0: the default).
	skew time.Duration
	// signed adds an Ed25519 signature to the client's requests (a slower
	// open, for more overlap between workers).
	signed bool
	// configure adjusts the gateway's configuration.
	configure func(*mqttsec.ServerConfig)
	// handler serves "work" (nil: count and echo).
	handler mqttsec.HandlerFunc
	// proxy puts an mqttproxy between the gateway and the broker;
	// clientProxy, between the first client and the broker.
	proxy, clientProxy bool
	// clientCounter numbers the first client's messages (nil: the clock).
	clientCounter envelope.Counter
}

const workTopic = "mqttsec/gateway/req/work"

func newLiveWorld(t *testing.T, proto int, o liveOptions) *liveWorld {
	t.Helper()
	hb, err := hostile.Start()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { hb.Close() })
	w := &liveWorld{t: t, proto: proto, b: hb, log: &testwait.Log{}, clientLog: &testwait.Log{}}
	k := getKeys()
	require := envelope.HMAC
	w.send = mqttsec.Protection{HMAC: k.hmac}
	if o.signed {
		require |= envelope.Signature
		w.send.Signer = k.client.ed
	}
	clientPeer := peerOf(k, "client", k.client, require, mqttsec.Protection{HMAC: k.hmac})
	clientPeer.Policy.MaxClockSkew = o.skew
	gatewayURL, clientURL := hb.URL(), hb.URL()
	if o.proxy || o.clientProxy {
		w.proxy = mustT(mqttproxy.Start(hb.Addr()))
		t.Cleanup(w.proxy.Close)
		if o.proxy {
			gatewayURL = w.proxy.URL()
		} else {
			clientURL = w.proxy.URL()
		}
	}
	cfg := mqttsec.ServerConfig{Config: mqttsec.Config{
		ID: "gateway", Keyring: mustT(mqttsec.NewKeyring(mqttsec.Own{}, clientPeer)),
		Transport: transport(t, proto, gatewayURL, "gateway", nil),
		Logger:    slog.New(slog.NewTextHandler(w.log, nil)), RejectLogInterval: -1,
		Now: func() time.Time { return time.Now().Add(time.Duration(w.gwClock.Load())) },
	}}
	if o.configure != nil {
		o.configure(&cfg)
	}
	w.gw = mustT(mqttsec.NewServer(cfg))
	h := o.handler
	if h == nil {
		h = func(ctx context.Context, r *mqttsec.Request) ([]byte, error) {
			w.runs.Add(1)
			return r.Payload, nil
		}
	}
	w.gw.HandleFunc("work", h)
	w.start(w.gw)
	w.clientRing = mustT(mqttsec.NewKeyring(mqttsec.Own{}, peerOf(k, "gateway", k.gateway, envelope.HMAC, w.send)))
	w.client = w.newClientAt(clientURL, slog.New(slog.NewTextHandler(w.clientLog, nil)), o.clientCounter)
	return w
}

// start starts s and closes it when the test ends.
func (w *liveWorld) start(s interface {
	Start(context.Context) error
	Close(context.Context) error
}) {
	w.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := s.Start(ctx); err != nil {
		w.t.Fatal(err)
	}
	w.t.Cleanup(func() { s.Close(context.Background()) })
}

// newClient starts another client of id "client", logging to log (nil:
// nowhere), numbering its messages with counter (nil: a new run of it,
// whose counter starts afresh from the clock).
func (w *liveWorld) newClient(log *slog.Logger, counter envelope.Counter) *mqttsec.Client {
	w.t.Helper()
	return w.newClientAt(w.b.URL(), log, counter)
}

// newClientAt is newClient connecting to the broker at url.
func (w *liveWorld) newClientAt(url string, log *slog.Logger, counter envelope.Counter) *mqttsec.Client {
	w.t.Helper()
	c := mustT(mqttsec.NewClient(mqttsec.Config{ID: "client", Keyring: w.clientRing, Logger: log, Counter: counter,
		Transport: transport(w.t, w.proto, url, "client", nil),
		Now:       func() time.Time { return time.Now().Add(time.Duration(w.clientClock.Load())) },
	}))
	w.start(c)
	return c
}

// call makes one request for "work" within d.
func (w *liveWorld) call(c *mqttsec.Client, payload string, d time.Duration) ([]byte, error) {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	return c.Request(ctx, "gateway", "work", []byte(payload))
}

// lines counts the gateway's log lines holding s.
func (w *liveWorld) lines(s string) int { return strings.Count(w.log.String(), s) }

// A caller whose clock is behind the gateway's by more than the skew gets
// the gateway's reply refused as not yet valid; Request says so at once,
// as a *ClockSkewError, instead of waiting for its deadline. A forged reply
// with a future issue time, naming the same request, does not end the
// wait: only an authentic one does.
func TestClockSkewIsAnError(t *testing.T) {
	for _, proto := range protocols {
		t.Run(fmt.Sprintf("v%d", proto), func(t *testing.T) {
			w := newLiveWorld(t, proto, liveOptions{})
			w.clientClock.Store(int64(-40 * time.Second))
			start := time.Now()
			// The request must outlive the 40 s, less the gateway's skew of
			// 30 s, for the gateway to take it: it expires with its caller.
			_, err := w.call(w.client, "late clock", 30*time.Second)
			var skew *mqttsec.ClockSkewError
			if !errors.As(err, &skew) || !errors.Is(err, mqttsec.ErrClockSkew) || !errors.Is(err, envelope.ErrExpired) {
				t.Fatalf("Request = %v, want a *ClockSkewError", err)
			}
			if skew.Server != "gateway" || skew.Offset < 39*time.Second || skew.Offset > 45*time.Second {
				t.Fatalf("ClockSkewError{Server: %q, Offset: %v}, want gateway about 40 s ahead", skew.Server, skew.Offset)
			}
			if time.Since(start) >= 30*time.Second {
				t.Fatal("Request waited for its deadline")
			}
			if n := stat(w.client, mqttsec.StatClockSkew); n != 1 {
				t.Fatalf("clock-skew counted %d times, want 1", n)
			}
			w.clientClock.Store(0)
			forgedFutureReply(t, w)
		})
	}
}

// forgedFutureReply injects, for each request the client makes, a reply
// naming it, issued 100 s ahead and sealed under a key the client does not
// hold; the request still gets the gateway's genuine reply.
func forgedFutureReply(t *testing.T, w *liveWorld) {
	t.Helper()
	forger := &envelope.Sealer{ID: "gateway", Counter: envelope.NewClockCounter(), Now: func() time.Time { return time.Now().Add(100 * time.Second) }}
	secret := make([]byte, 32)
	rand.Read(secret)
	wrong := mustT(envelope.NewHMACKey(secret))
	w.b.SetRule(func(m hostile.Message) hostile.Verdict {
		if m.Topic != workTopic {
			return hostile.Verdict{}
		}
		fake, err := forgeReply(forger, wrong, m.Payload)
		if err != nil {
			t.Errorf("forging: %v", err)
			return hostile.Verdict{}
		}
		return hostile.Verdict{Also: []hostile.Message{{Topic: "mqttsec/client/reply", Payload: fake}}}
	})
	out, err := w.call(w.client, "genuine", 10*time.Second)
	if err != nil || string(out) != "genuine" {
		t.Fatalf("with a forged future reply injected: %q, %v", out, err)
	}
	if n := stat(w.client, mqttsec.StatClockSkew); n != 1 {
		t.Fatalf("clock-skew counted %d times after the forgery, want still 1", n)
	}
	w.b.SetRule(nil)
}

// forgeReply seals, under key, a reply to the request in data, as a broker
// can: the request's digest and ids are public.
func forgeReply(forger *envelope.Sealer, key *envelope.HMACKey, data []byte) ([]byte, error) {
	h, err := envelope.Peek(data, 0)
	if err != nil {
		return nil, err
	}
	digest, err := requestDigest(data)
	if err != nil {
		return nil, err
	}
	req := &envelope.Message{Kind: envelope.Request, From: h.From, To: h.To, Topic: h.Topic,
		ReplyTo: h.ReplyTo, CorrelationID: h.CorrelationID, Digest: digest}
	sealed, err := forger.Seal(&envelope.Params{Kind: envelope.Reply, InReplyTo: req, HMAC: key}, []byte("forged"))
	if err != nil {
		return nil, err
	}
	return sealed.Bytes, nil
}

// A request expires with its caller: its envelope's expiry is the
// caller's deadline (even when drawing its counter took a while, as from a
// file or Redis), so a broker that holds it until after Request returned a
// timeout cannot have it run then (beyond the skew the gateway allows,
// here 200 ms).
func TestRequestExpiresWithItsCaller(t *testing.T) {
	for _, proto := range protocols {
		t.Run(fmt.Sprintf("v%d", proto), func(t *testing.T) {
			w := newLiveWorld(t, proto, liveOptions{skew: 200 * time.Millisecond, clientCounter: slowCounter{envelope.NewClockCounter()}})
			w.b.SetRule(func(m hostile.Message) hostile.Verdict { return hostile.Verdict{Drop: m.Topic == workTopic} })
			ctx, cancel := context.WithTimeout(context.Background(), time.Second)
			deadline, _ := ctx.Deadline()
			_, err := w.client.Request(ctx, "gateway", "work", []byte("held"))
			cancel()
			if !errors.Is(err, context.DeadlineExceeded) {
				t.Fatalf("Request = %v, want its deadline", err)
			}
			held := w.b.Seen(workTopic)
			if len(held) != 1 {
				t.Fatalf("%d requests held, want 1", len(held))
			}
			h := mustT(envelope.Peek(held[0].Payload, 0))
			if h.ExpiresAt.After(deadline) {
				t.Fatalf("the request expires at %v, after its caller's deadline %v", h.ExpiresAt, deadline)
			}
			// Released once the caller gave up, past the skew: refused.
			w.gwClock.Store(int64(2 * time.Second))
			if err := w.b.Inject(held[0]); err != nil {
				t.Fatal(err)
			}
			waitFor(t, "the late request refused", func() bool { return stat(w.gw, mqttsec.StatExpired) == 1 })
			if n := w.runs.Load(); n != 0 {
				t.Fatalf("the handler ran %d times for a request whose caller gave up", n)
			}
		})
	}
}

// Requests from many runs of one client (each run numbers its messages
// from the clock, far above the run before), held by the broker and
// released in counter order, are all handled: the gateway's workers open
// them in parallel, but a later run's message is admitted only after the
// earlier ones it would push out of the window.
func TestHeldAndReleasedRequestsAllRun(t *testing.T) {
	const runs, perRun = 10, 4
	for _, proto := range protocols {
		t.Run(fmt.Sprintf("v%d", proto), func(t *testing.T) {
			w := newLiveWorld(t, proto, liveOptions{signed: true})
			w.b.SetRule(func(m hostile.Message) hostile.Verdict { return hostile.Verdict{Drop: m.Topic == workTopic} })
			var wg sync.WaitGroup
			var failed atomic.Int64
			for r := range runs {
				c := w.client
				if r > 0 {
					c = w.newClient(nil, nil)
				}
				for i := range perRun {
					payload := fmt.Sprintf("run %d request %d", r, i)
					wg.Go(func() {
						if out, err := w.call(c, payload, 20*time.Second); err != nil || string(out) != payload {
							failed.Add(1)
							t.Errorf("%s: %q, %v", payload, out, err)
						}
					})
				}
				waitFor(t, "the run's requests held", func() bool { return len(w.b.Seen(workTopic)) == (r+1)*perRun })
			}
			held := w.b.Seen(workTopic)
			slices.SortFunc(held, func(a, b hostile.Message) int {
				return compareCounters(t, a.Payload, b.Payload)
			})
			w.b.SetRule(nil)
			for _, m := range held {
				if err := w.b.Inject(m); err != nil {
					t.Fatal(err)
				}
			}
			wg.Wait()
			if n := stat(w.gw, mqttsec.StatReplayed); n != 0 {
				t.Fatalf("%d legitimate requests refused as replays", n)
			}
			if n := w.runs.Load(); n != runs*perRun || failed.Load() != 0 {
				t.Fatalf("%d handled, %d failed; want all %d handled", n, failed.Load(), runs*perRun)
			}
		})
	}
}

// compareCounters orders two envelopes by the counter their header claims.
func compareCounters(t *testing.T, a, b []byte) int {
	ha, hb := mustT(envelope.Peek(a, 0)), mustT(envelope.Peek(b, 0))
	switch {
	case ha.Counter < hb.Counter:
		return -1
	case ha.Counter > hb.Counter:
		return 1
	}
	return 0
}

// A flood of junk and of messages from senders the gateway does not know
// is refused before the gateway's queue, so it never takes a place from a
// peer: with one worker and a queue of 16, every one of a client's
// requests made during a flood of 200,000 (published at QoS 0 by another
// client of the broker, as fast as it can) succeeds.
func TestFloodDoesNotStarvePeers(t *testing.T) {
	const flood = 200_000
	for _, proto := range protocols {
		t.Run(fmt.Sprintf("v%d", proto), func(t *testing.T) {
			w := newLiveWorld(t, proto, liveOptions{configure: func(c *mqttsec.ServerConfig) {
				c.Workers, c.QueueSize = 1, 16
				c.Logger = nil // a refusal each: the log would be the test's cost
			}})
			eve := newAttacker(t, &broker{url: w.b.URL()})
			stranger := strangerRequest(t)
			done := make(chan struct{})
			go func() {
				defer close(done)
				for i := range flood {
					payload := stranger
					if i%2 == 0 {
						payload = []byte(fmt.Sprintf("junk %d", i))
					}
					eve.c.Publish(workTopic, 0, false, payload)
				}
			}()
			refused := func() uint64 { return stat(w.gw, mqttsec.StatMalformed) + stat(w.gw, mqttsec.StatUnknownKey) }
			before := refused()
			calls := 0
			for flooding := true; flooding || calls < 10; calls++ {
				if _, err := w.call(w.client, fmt.Sprintf("during the flood %d", calls), 10*time.Second); err != nil {
					t.Fatalf("request %d during the flood: %v (gateway: %v)", calls, err, w.gw.Stats())
				}
				select {
				case <-done:
					flooding = false
				default:
				}
			}
			during := refused()
			if during == before {
				t.Fatal("the gateway refused none of the flood while the requests were made")
			}
			if n := stat(w.gw, mqttsec.StatOverload); n != 0 {
				t.Fatalf("%d messages dropped as overload", n)
			}
			t.Logf("%d requests succeeded while the gateway refused %d messages of a flood of %d", calls, during-before, flood)
		})
	}
}

// strangerRequest is a well-formed request to the gateway from a sender it
// does not know.
func strangerRequest(t *testing.T) []byte {
	t.Helper()
	secret := make([]byte, 32)
	rand.Read(secret)
	key := mustT(envelope.NewHMACKey(secret))
	s := &envelope.Sealer{ID: "mallory", Counter: envelope.NewClockCounter()}
	m := mustT(s.Seal(&envelope.Params{Kind: envelope.Request, To: []string{"gateway"}, Topic: "work", ReplyTo: "mqttsec/mallory/reply", HMAC: key}, nil))
	return m.Bytes
}

// slowCounter takes 300 ms to draw each counter, as a counter kept in a
// file or in Redis may.
type slowCounter struct{ c envelope.Counter }

func (s slowCounter) Next() (uint64, error) {
	time.Sleep(300 * time.Millisecond)
	return s.c.Next()
}

// flakyCounter fails while broken is set.
type flakyCounter struct {
	broken atomic.Bool
	c      *envelope.MemoryCounter
}

func (f *flakyCounter) Next() (uint64, error) {
	if f.broken.Load() {
		return 0, errors.New("reserving counters: no space left on device")
	}
	return f.c.Next()
}

// When no counter can be drawn for the reply (a full disk under a file
// counter), the request is refused before its handler runs, counted and
// logged: a request never runs without a way to answer it. Once the
// counter works again, so does the gateway, with no restart.
func TestNoCounterRefusesBeforeTheHandler(t *testing.T) {
	for _, proto := range protocols {
		t.Run(fmt.Sprintf("v%d", proto), func(t *testing.T) {
			counter := &flakyCounter{c: envelope.NewClockCounter()}
			w := newLiveWorld(t, proto, liveOptions{configure: func(c *mqttsec.ServerConfig) { c.Counter = counter }})
			counter.broken.Store(true)
			if _, err := w.call(w.client, "no counter", 500*time.Millisecond); !errors.Is(err, context.DeadlineExceeded) {
				t.Fatalf("Request = %v, want no answer", err)
			}
			waitFor(t, "the refusal counted", func() bool { return stat(w.gw, mqttsec.StatNoCounter) == 1 })
			if n := w.runs.Load(); n != 0 {
				t.Fatalf("the handler ran %d times with no counter for its reply", n)
			}
			if w.lines("no counter for the reply, request refused before its handler") != 1 || w.lines("reply not sent") != 0 {
				t.Fatalf("log:\n%s", w.log)
			}
			counter.broken.Store(false)
			if out, err := w.call(w.client, "counter back", 10*time.Second); err != nil || string(out) != "counter back" {
				t.Fatalf("with the counter back: %q, %v", out, err)
			}
		})
	}
}

// A gateway closed right after its handlers return still delivers their
// replies (Close waits for them, within its context), and logs none of
// them as not sent.
func TestCloseDeliversRepliesInFlight(t *testing.T) {
	const n = 16
	for _, proto := range protocols {
		t.Run(fmt.Sprintf("v%d", proto), func(t *testing.T) {
			release := make(chan struct{})
			var started atomic.Int64
			w := newLiveWorld(t, proto, liveOptions{handler: func(ctx context.Context, r *mqttsec.Request) ([]byte, error) {
				started.Add(1)
				<-release
				return r.Payload, nil
			}, configure: func(c *mqttsec.ServerConfig) { c.Workers = n }})
			results := make(chan error, n)
			for i := range n {
				go func() {
					payload := fmt.Sprintf("in flight %d", i)
					out, err := w.call(w.client, payload, 10*time.Second)
					if err == nil && string(out) != payload {
						err = fmt.Errorf("%q: got %q", payload, out)
					}
					results <- err
				}()
			}
			waitFor(t, "every handler running", func() bool { return started.Load() == n })
			close(release)
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			if err := w.gw.Close(ctx); err != nil {
				t.Fatal(err)
			}
			for range n {
				if err := returned(t, "a request", results); err != nil {
					t.Fatal(err)
				}
			}
			if k := w.lines("reply not sent") + w.lines("not acknowledged"); k != 0 {
				t.Fatalf("%d replies logged as not sent or unacknowledged:\n%s", k, w.log)
			}
		})
	}
}

// The gateway logs the life of its connection: lost when the broker
// restarts, connected again, and its subscriptions renewed.
func TestConnectionEventsAreLogged(t *testing.T) {
	for _, proto := range protocols {
		t.Run(fmt.Sprintf("v%d", proto), func(t *testing.T) {
			w := newLiveWorld(t, proto, liveOptions{})
			// Paho 3.1.1 reports the connection on a goroutine of its own.
			waitFor(t, "a line for the first connection", func() bool { return w.lines(`msg="mqttsec: connected to the broker"`) == 1 })
			if n := w.lines("subscriptions renewed"); n != 0 {
				t.Fatalf("%d renewals logged before any reconnection:\n%s", n, w.log)
			}
			if err := w.b.Restart(); err != nil {
				t.Fatal(err)
			}
			for _, line := range []string{"connection to the broker lost", `msg="mqttsec: reconnected to the broker"`, "subscriptions renewed"} {
				waitFor(t, fmt.Sprintf("%q in the gateway's log", line), func() bool { return w.lines(line) == 1 })
			}
			// The client renews its reply subscription too; a reply sent
			// before that would find no subscriber.
			waitFor(t, "the client's subscription renewed", func() bool {
				return strings.Contains(w.clientLog.String(), "subscriptions renewed")
			})
			if out, err := w.call(w.client, "after the restart", 10*time.Second); err != nil || string(out) != "after the restart" {
				t.Fatalf("after the restart: %q, %v", out, err)
			}
		})
	}
}

// A broker that withholds its acknowledgements of the gateway's replies
// cannot wedge the gateway. The replies themselves are delivered, so
// every request made meanwhile is answered; once the broker behaves
// again, the gateway answers at once (well within PublishTimeout, a
// minute here), since no worker waits for an acknowledgement. At Close,
// the replies never acknowledged are logged as unconfirmed, and none as
// not sent: they did arrive.
func TestWithheldAcknowledgementsDoNotWedge(t *testing.T) {
	const batch = 24 // three times the workers
	for _, proto := range protocols {
		t.Run(fmt.Sprintf("v%d", proto), func(t *testing.T) {
			w := newLiveWorld(t, proto, liveOptions{proxy: true, configure: func(c *mqttsec.ServerConfig) {
				c.Workers, c.PublishTimeout = 8, time.Minute
			}})
			w.proxy.WithholdAcks(true)
			w.requestBatch(t, "withheld", batch)
			waitFor(t, "the acknowledgements withheld", func() bool { return w.proxy.Withheld() == batch })
			w.proxy.WithholdAcks(false)
			w.requestBatch(t, "after", batch)
			ctx, cancel := context.WithTimeout(context.Background(), time.Second)
			defer cancel()
			w.gw.Close(ctx)
			if n := stat(w.gw, mqttsec.StatPublishUnconfirmed); n != batch {
				t.Fatalf("%d replies unconfirmed, want the %d whose acknowledgement was withheld", n, batch)
			}
			if n := w.lines("reply sent, not acknowledged by the broker"); n != batch || w.lines("reply not sent") != 0 {
				t.Fatalf("%d replies logged as unacknowledged, %d as not sent; want %d and 0:\n%s", n, w.lines("reply not sent"), batch, w.log)
			}
		})
	}
}

// A broker that withholds its acknowledgements of a client's requests
// delays none of them: each Request returns with its reply, which the
// broker delivers, while the acknowledgement is still awaited. A client
// that waited for the acknowledgement before the reply would wait each
// request's whole 10 s and fail it. (10 s, past PahoV3's 5 s
// WriteTimeout, so that the requests over MQTT 3.1.1 are handed to Paho
// on their own goroutines.)
func TestWithheldRequestAcknowledgementsDelayNothing(t *testing.T) {
	const batch = 16
	for _, proto := range protocols {
		t.Run(fmt.Sprintf("v%d", proto), func(t *testing.T) {
			w := newLiveWorld(t, proto, liveOptions{clientProxy: true})
			w.proxy.WithholdAcks(true)
			w.requestBatchWithin(t, "withheld", batch, 10*time.Second)
			if n := w.proxy.Withheld(); n != batch {
				t.Fatalf("%d acknowledgements withheld, want the %d requests'", n, batch)
			}
			w.proxy.WithholdAcks(false)
			w.requestBatch(t, "after", batch)
		})
	}
}

// requestBatch makes n requests at once, each with 5 s to be answered.
func (w *liveWorld) requestBatch(t *testing.T, name string, n int) {
	t.Helper()
	w.requestBatchWithin(t, name, n, 5*time.Second)
}

// requestBatchWithin makes n requests at once, each with d to be
// answered.
func (w *liveWorld) requestBatchWithin(t *testing.T, name string, n int, d time.Duration) {
	t.Helper()
	failed := requestsInFlight(t, n, n, func(i int) error {
		payload := fmt.Sprintf("%s %d", name, i)
		out, err := w.call(w.client, payload, d)
		if err == nil && string(out) != payload {
			err = fmt.Errorf("%q: got %q", payload, out)
		}
		return err
	})
	if failed != 0 {
		t.Fatalf("%s: %d of %d requests failed", name, failed, n)
	}
}
