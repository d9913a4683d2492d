package mqttsec_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	mqtt "github.com/eclipse/paho.mqtt.golang"

	"github.com/mqttsec/mqttsec/envelope"
	"github.com/mqttsec/mqttsec/mqttsec"
)

func brokers() []struct {
	name string
	get  func(testing.TB) *broker
} {
	return []struct {
		name string
		get  func(testing.TB) *broker
	}{{"embedded", embeddedBroker}, {"mosquitto", mosquittoBroker}}
}

// forEach runs f for each broker and protocol.
func forEach(t *testing.T, f func(t *testing.T, b *broker, proto int)) {
	for _, br := range brokers() {
		for _, proto := range protocols {
			t.Run(fmt.Sprintf("%s/v%d", br.name, proto), func(t *testing.T) {
				f(t, br.get(t), proto)
			})
		}
	}
}

func TestRoundTripEveryProtection(t *testing.T) {
	forEach(t, func(t *testing.T, b *broker, proto int) {
		for _, s := range suites() {
			t.Run(s.name, func(t *testing.T) {
				checkNoLeaks(t)
				p := newPair(t, b, pairOptions{proto: proto, suite: s, handlers: map[string]mqttsec.HandlerFunc{
					"whoami": func(ctx context.Context, r *mqttsec.Request) ([]byte, error) {
						return []byte(r.Caller + " " + r.Protections.String()), nil
					},
				}})
				ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
				defer cancel()
				out, err := p.client.Request(ctx, "gateway", "whoami", nil)
				if err != nil {
					t.Fatal(err)
				}
				if want := "client " + s.require.String(); string(out) != want {
					t.Fatalf("reply %q, want %q", out, want)
				}
				out, err = p.client.Request(ctx, "gateway", "echo", []byte("payload"))
				if err != nil || string(out) != "client echo payload" {
					t.Fatalf("echo = %q, %v", out, err)
				}
			})
		}
	})
}

func TestConcurrentRequests(t *testing.T) {
	forEach(t, func(t *testing.T, b *broker, proto int) {
		checkNoLeaks(t)
		p := newPair(t, b, pairOptions{proto: proto})
		const total, inFlight = 1000, 64
		ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
		defer cancel()
		failed := requestsInFlight(t, total, inFlight, func(i int) error {
			want := fmt.Sprintf("client echo %d", i)
			out, err := p.client.Request(ctx, "gateway", "echo", fmt.Appendf(nil, "%d", i))
			if err == nil && string(out) != want {
				err = fmt.Errorf("reply %q, want %q", out, want)
			}
			return err
		})
		if n := failed; n > 0 {
			t.Fatalf("%d of %d requests failed; client %v; server %v", n, total, p.client.Stats(), p.server.Stats())
		}
		if got := p.server.Stats()[mqttsec.StatAccepted]; got != total {
			t.Fatalf("server handled %d requests, want %d", got, total)
		}
	})
}

func TestTimeoutCancelAndLateReply(t *testing.T) {
	forEach(t, func(t *testing.T, b *broker, proto int) {
		checkNoLeaks(t)
		release := make(chan struct{})
		var started, finished, answered atomic.Int64
		held := heldHandler(&started, release)
		slow := func(ctx context.Context, r *mqttsec.Request) ([]byte, error) {
			out, err := held(ctx, r)
			if err == nil {
				answered.Add(1)
			}
			finished.Add(1)
			return out, err
		}
		p := newPair(t, b, pairOptions{proto: proto, handlers: map[string]mqttsec.HandlerFunc{"slow": slow}})
		ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
		defer cancel()
		if _, err := p.client.Request(ctx, "gateway", "slow", nil); !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("timeout: %v", err)
		}
		// Under load the 300 ms may run out before the request is even
		// published, so the first handler may or may not have started.
		cctx, ccancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		before := started.Load()
		go func() { _, err := p.client.Request(cctx, "gateway", "slow", nil); done <- err }()
		waitFor(t, "the second request to reach its handler", func() bool { return started.Load() > before })
		ccancel()
		if err := returned(t, "the request after its context was cancelled", done); !errors.Is(err, context.Canceled) {
			t.Fatalf("cancel: %v", err)
		}
		// The handlers now answer; the replies find no pending request and
		// are dropped quietly. (A handler whose request expired while it
		// waited, the first one, sends nothing: its caller gave up.)
		close(release)
		waitFor(t, "every handler to return", func() bool { return finished.Load() == started.Load() })
		waitFor(t, "late replies dropped", func() bool {
			return p.client.Stats()[mqttsec.StatUnmatchedReply] == uint64(answered.Load())
		})
		// The client still works.
		rctx, rcancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer rcancel()
		if out, err := p.client.Request(rctx, "gateway", "echo", []byte("x")); err != nil || string(out) != "client echo x" {
			t.Fatalf("after late replies: %q, %v", out, err)
		}
	})
}

func TestErrorReplies(t *testing.T) {
	forEach(t, func(t *testing.T, b *broker, proto int) {
		checkNoLeaks(t)
		p := newPair(t, b, pairOptions{proto: proto,
			configure: func(c *mqttsec.ServerConfig) {
				c.Authorize = func(caller, method string) bool { return method != "admin/reset" }
			},
			handlers: map[string]mqttsec.HandlerFunc{
				"bad": func(ctx context.Context, r *mqttsec.Request) ([]byte, error) {
					return nil, mqttsec.Errorf(mqttsec.CodeBadRequest, "card %s unknown", r.Payload)
				},
				"broken": func(ctx context.Context, r *mqttsec.Request) ([]byte, error) {
					return nil, errors.New("database password is hunter2")
				},
				"admin/reset": echo,
				"huge": func(ctx context.Context, r *mqttsec.Request) ([]byte, error) {
					return make([]byte, envelope.DefaultMaxSize), nil
				},
				"huge-error": func(ctx context.Context, r *mqttsec.Request) ([]byte, error) {
					return nil, mqttsec.Errorf(mqttsec.CodeBadRequest, "%s", strings.Repeat("x", envelope.DefaultMaxSize))
				},
			}})
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		tests := []struct {
			method, code, message string
		}{
			{"bad", mqttsec.CodeBadRequest, "card 42 unknown"},
			{"broken", mqttsec.CodeInternal, ""},
			{"missing", mqttsec.CodeNotFound, "missing"},
			{"admin/reset", mqttsec.CodeForbidden, ""},
			{"huge", mqttsec.CodeReplyTooLarge, ""},
			{"huge-error", mqttsec.CodeReplyTooLarge, ""},
		}
		for _, tt := range tests {
			_, err := p.client.Request(ctx, "gateway", tt.method, []byte("42"))
			var e *mqttsec.Error
			if !errors.As(err, &e) || e.Code != tt.code || e.Message != tt.message {
				t.Errorf("%s: %v, want code %s message %q", tt.method, err, tt.code, tt.message)
			}
		}
		st := p.server.Stats()
		if st[mqttsec.StatForbidden] != 1 || st[mqttsec.StatNotFound] != 1 || st[mqttsec.StatHandlerError] != 3 ||
			st[mqttsec.StatReplyTooLarge] != 2 || st[mqttsec.StatPublishError] != 0 {
			t.Fatalf("stats %v", st)
		}
	})
}

// attacker is a plain MQTT client: it can read and publish anything, as
// every client of a public broker can.
type attacker struct {
	c    mqtt.Client
	mu   sync.Mutex
	seen map[string][][]byte
}

func newAttacker(t *testing.T, b *broker, filters ...string) *attacker {
	t.Helper()
	a := &attacker{seen: map[string][][]byte{}}
	o := mqtt.NewClientOptions().AddBroker(b.url).SetClientID(fmt.Sprintf("eve-%d", time.Now().UnixNano()))
	a.c = mqtt.NewClient(o)
	if tok := a.c.Connect(); !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
		t.Fatalf("attacker connect: %v", tok.Error())
	}
	t.Cleanup(func() { a.c.Disconnect(50) })
	for _, f := range filters {
		tok := a.c.Subscribe(f, 1, func(_ mqtt.Client, m mqtt.Message) {
			a.mu.Lock()
			a.seen[m.Topic()] = append(a.seen[m.Topic()], bytes.Clone(m.Payload()))
			a.mu.Unlock()
		})
		if !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
			t.Fatalf("attacker subscribe: %v", tok.Error())
		}
	}
	return a
}

func (a *attacker) captured(topic string) [][]byte {
	a.mu.Lock()
	defer a.mu.Unlock()
	return append([][]byte(nil), a.seen[topic]...)
}

func (a *attacker) publish(t *testing.T, topic string, payload []byte) {
	t.Helper()
	if tok := a.c.Publish(topic, 1, false, payload); !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
		t.Fatalf("attacker publish: %v", tok.Error())
	}
}

func TestDuplicateDeliveryRunsHandlerOnce(t *testing.T) {
	forEach(t, func(t *testing.T, b *broker, proto int) {
		checkNoLeaks(t)
		var runs atomic.Int64
		p := newPair(t, b, pairOptions{proto: proto, handlers: map[string]mqttsec.HandlerFunc{
			"open-door": func(ctx context.Context, r *mqttsec.Request) ([]byte, error) {
				runs.Add(1)
				return []byte("opened"), nil
			},
		}})
		topic := "mqttsec/gateway/req/open-door"
		eve := newAttacker(t, b, topic)
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if _, err := p.client.Request(ctx, "gateway", "open-door", nil); err != nil {
			t.Fatal(err)
		}
		waitFor(t, "the request captured", func() bool { return len(eve.captured(topic)) == 1 })
		req := eve.captured(topic)[0]
		for range 3 {
			eve.publish(t, topic, req)
		}
		waitFor(t, "three replays refused", func() bool { return p.server.Stats()[mqttsec.StatReplayed] == 3 })
		if runs.Load() != 1 {
			t.Fatalf("handler ran %d times", runs.Load())
		}
	})
}

func TestReplyToAbuseRefused(t *testing.T) {
	forEach(t, func(t *testing.T, b *broker, proto int) {
		checkNoLeaks(t)
		var runs atomic.Int64
		p := newPair(t, b, pairOptions{proto: proto, handlers: map[string]mqttsec.HandlerFunc{
			"get-card": func(ctx context.Context, r *mqttsec.Request) ([]byte, error) { runs.Add(1); return []byte("card"), nil },
		}})
		victim := "factory/valve/7/set"
		eve := newAttacker(t, b, victim, "mqttsec/client/reply")
		// A genuine client (it holds the keys) asks for its reply on someone
		// else's topic.
		k := getKeys()
		sealer := &envelope.Sealer{ID: "client", Counter: envelope.NewClockCounter()}
		req, err := sealer.Seal(&envelope.Params{Kind: envelope.Request, To: []string{"gateway"}, Topic: "get-card",
			ReplyTo: victim, HMAC: k.hmac}, nil)
		if err != nil {
			t.Fatal(err)
		}
		eve.publish(t, "mqttsec/gateway/req/get-card", req.Bytes)
		waitFor(t, "reply-to refused", func() bool { return p.server.Stats()[mqttsec.StatBadReplyTo] == 1 })
		waitFor(t, "error reply on the caller's own topic", func() bool { return len(eve.captured("mqttsec/client/reply")) == 1 })
		if n := len(eve.captured(victim)); n != 0 || runs.Load() != 0 {
			t.Fatalf("%d messages on the victim topic, handler ran %d times", n, runs.Load())
		}
		// The error reply the client's own topic received is sealed and
		// names the code.
		h, err := envelope.Peek(eve.captured("mqttsec/client/reply")[0], 0)
		if err != nil || h.Kind != envelope.ErrorReply || h.InReplyTo != req.Digest {
			t.Fatalf("error reply: %+v, %v", h, err)
		}
	})
}

func TestForgedAndReflectedRepliesNeverReturned(t *testing.T) {
	forEach(t, func(t *testing.T, b *broker, proto int) {
		checkNoLeaks(t)
		release := make(chan struct{})
		p := newPair(t, b, pairOptions{proto: proto, handlers: map[string]mqttsec.HandlerFunc{
			"wait": func(ctx context.Context, r *mqttsec.Request) ([]byte, error) {
				select {
				case <-release:
				case <-ctx.Done():
				}
				return []byte("genuine"), nil
			},
		}})
		reqTopic, replyTopic := "mqttsec/gateway/req/wait", "mqttsec/client/reply"
		eve := newAttacker(t, b, reqTopic)
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		got := make(chan []byte, 1)
		go func() {
			out, err := p.client.Request(ctx, "gateway", "wait", nil)
			if err != nil {
				t.Errorf("request: %v", err)
			}
			got <- out
		}()
		waitFor(t, "request captured", func() bool { return len(eve.captured(reqTopic)) == 1 })
		req := eve.captured(reqTopic)[0]
		// The request reflected back as if it were its reply.
		eve.publish(t, replyTopic, req)
		// A forged reply that claims to answer the request: right digest,
		// wrong key.
		h := mustT(envelope.Peek(req, 0))
		forger := &envelope.Sealer{ID: "gateway", Counter: envelope.NewClockCounter()}
		wrong := mustT(envelope.NewHMACKey(bytes.Repeat([]byte{9}, 32)))
		forged := mustT(forger.Seal(&envelope.Params{Kind: envelope.Reply, HMAC: wrong, InReplyTo: &envelope.Message{
			Kind: envelope.Request, From: "client", Topic: "wait", CorrelationID: h.CorrelationID, Digest: digestOf(t, req),
		}}, []byte("forged")))
		eve.publish(t, replyTopic, forged.Bytes)
		waitFor(t, "reflection and forgery refused", func() bool {
			st := p.client.Stats()
			return st[mqttsec.StatContext] == 1 && st[mqttsec.StatUnknownKey] == 1
		})
		close(release)
		if out := <-got; string(out) != "genuine" {
			t.Fatalf("request returned %q", out)
		}
	})
}

// digestOf recomputes a request's digest the way a broker could: it is
// SHA-256 of public bytes (see requestDigest).
func digestOf(t *testing.T, env []byte) [32]byte {
	t.Helper()
	d, err := requestDigest(env)
	if err != nil {
		t.Fatal(err)
	}
	return d
}

// requestDigest is SHA-256 of a prefix and the envelope up to the end of
// its payload (envelope/SPEC.md §4.1). TestRequestDigest checks it against
// Seal's.
func requestDigest(env []byte) ([32]byte, error) {
	if _, err := envelope.Peek(env, 0); err != nil {
		return [32]byte{}, err
	}
	// 0x01 || u32 len(H) || H || u32 len(P) || P || ...; Peek checked the
	// lengths.
	end := 1 + 4 + int(binary.BigEndian.Uint32(env[1:]))
	end += 4 + int(binary.BigEndian.Uint32(env[end:]))
	return sha256.Sum256(append([]byte("mqttsec.v1."), env[:end]...)), nil
}

// TestRequestDigest: the digest the attacks recompute is the one Seal gives,
// with and without tags and encryption.
func TestRequestDigest(t *testing.T) {
	k := getKeys()
	s := &envelope.Sealer{ID: "client", Counter: envelope.NewClockCounter()}
	for _, p := range []envelope.Params{
		{HMAC: k.hmac},
		{Signer: k.client.ed, Recipients: []envelope.Recipient{k.gateway.x25519}},
		{PSK: k.psk},
	} {
		p.Kind, p.To, p.Topic, p.ReplyTo = envelope.Request, []string{"gateway"}, "echo", "mqttsec/client/reply"
		sealed := mustT(s.Seal(&p, []byte("payload")))
		if got := digestOf(t, sealed.Bytes); got != sealed.Digest {
			t.Fatalf("digest %x, Seal's %x", got, sealed.Digest)
		}
	}
}

func TestEventsToTwoRecipients(t *testing.T) {
	forEach(t, func(t *testing.T, b *broker, proto int) {
		checkNoLeaks(t)
		k := getKeys()
		// The gateway broadcasts to "client" and "other", encrypted to both.
		gwKeys := mustT(mqttsec.NewKeyring(mqttsec.Own{Signer: k.gateway.ed, Identities: k.gateway.ids},
			peerOf(k, "client", k.client, 0, mqttsec.Protection{Signer: k.gateway.ed, Recipients: []envelope.Recipient{k.client.x25519}}),
			peerOf(k, "other", k.other, 0, mqttsec.Protection{Signer: k.gateway.ed, Recipients: []envelope.Recipient{k.other.xwing}}),
		))
		gw := mustT(mqttsec.NewServer(mqttsec.ServerConfig{Config: mqttsec.Config{ID: "gateway", Transport: transport(t, proto, b.url, "gateway", nil), Keyring: gwKeys}}))
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := gw.Start(ctx); err != nil {
			t.Fatal(err)
		}
		defer gw.Close(context.Background())
		type got struct {
			who string
			ev  *mqttsec.Event
		}
		events := make(chan got, 4)
		for _, r := range []struct {
			id string
			pk *partyKeys
		}{{"client", k.client}, {"other", k.other}} {
			kr := mustT(mqttsec.NewKeyring(mqttsec.Own{Identities: r.pk.ids},
				peerOf(k, "gateway", k.gateway, envelope.Signature|envelope.Encryption, mqttsec.Protection{HMAC: k.hmac})))
			c := mustT(mqttsec.NewClient(mqttsec.Config{ID: r.id, Transport: transport(t, proto, b.url, r.id, nil), Keyring: kr}))
			if err := c.Start(ctx); err != nil {
				t.Fatal(err)
			}
			defer c.Close(context.Background())
			id := r.id
			if err := c.SubscribeEvents(ctx, "gateway", func(ctx context.Context, ev *mqttsec.Event) { events <- got{id, ev} }); err != nil {
				t.Fatal(err)
			}
		}
		eve := newAttacker(t, b, "mqttsec/gateway/evt/#")
		if err := gw.PublishEvent(ctx, "doors/3/forced", []byte(`{"door":3}`), mqttsec.EventOptions{To: []string{"client", "other"}, Encrypt: true}); err != nil {
			t.Fatal(err)
		}
		seen := map[string]bool{}
		for range 2 {
			select {
			case g := <-events:
				if string(g.ev.Payload) != `{"door":3}` || g.ev.From != "gateway" || g.ev.Topic != "doors/3/forced" ||
					g.ev.Protections != envelope.Signature|envelope.Encryption {
					t.Fatalf("%s got %+v", g.who, g.ev)
				}
				seen[g.who] = true
			case <-ctx.Done():
				t.Fatalf("events received by %v only", seen)
			}
		}
		waitFor(t, "eve saw the event", func() bool { return len(eve.captured("mqttsec/gateway/evt/doors/3/forced")) == 1 })
		if bytes.Contains(eve.captured("mqttsec/gateway/evt/doors/3/forced")[0], []byte(`door":3`)) {
			t.Fatal("event readable on the broker")
		}
	})
}

// TestCloseEndsWaitingRequests: Close makes a request that is waiting for
// its reply return ErrClosed at once, and a request after Close fails with
// ErrClosed too.
func TestCloseEndsWaitingRequests(t *testing.T) {
	forEach(t, func(t *testing.T, b *broker, proto int) {
		release := make(chan struct{})
		defer close(release)
		var started atomic.Int64
		p := newPair(t, b, pairOptions{proto: proto, handlers: map[string]mqttsec.HandlerFunc{"hold": heldHandler(&started, release)}})
		done := make(chan error, 1)
		go func() {
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			_, err := p.client.Request(ctx, "gateway", "hold", nil)
			done <- err
		}()
		waitFor(t, "the request to reach its handler", func() bool { return started.Load() == 1 })
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := p.client.Close(ctx); err != nil {
			t.Fatalf("Close: %v", err)
		}
		if err := returned(t, "the waiting request after Close", done); !errors.Is(err, mqttsec.ErrClosed) {
			t.Fatalf("waiting request after Close: %v, want ErrClosed", err)
		}
		if _, err := p.client.Request(ctx, "gateway", "hold", nil); !errors.Is(err, mqttsec.ErrClosed) {
			t.Fatalf("request after Close: %v, want ErrClosed", err)
		}
	})
}
