package mqttsec_test

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/mqttsec/mqttsec/envelope"
	"github.com/mqttsec/mqttsec/internal/hostile"
	"github.com/mqttsec/mqttsec/mqttsec"
	"github.com/mqttsec/mqttsec/mqttsec/replay"
)

// hostileWorld is a gateway (and a second one, "gateway-2") and a client on
// a hostile broker; the gateways' clock can be moved forward.
type hostileWorld struct {
	b       *hostile.Broker
	client  *mqttsec.Client
	gw, gw2 *mqttsec.Server
	skew    atomic.Int64 // nanoseconds added to the gateways' clock
	runs    atomic.Int64 // handler runs on either gateway
	deletes atomic.Int64
}

const (
	reqTopic   = "mqttsec/gateway/req/get-card"
	replyTopic = "mqttsec/client/reply"
)

// newHostileWorld starts the world.
func newHostileWorld(t *testing.T, proto int) *hostileWorld {
	t.Helper()
	hb, err := hostile.Start()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { hb.Close() })
	w := &hostileWorld{b: hb}
	k := getKeys()
	clock := func() time.Time { return time.Now().Add(time.Duration(w.skew.Load())) }
	send := mqttsec.Protection{HMAC: k.hmac, Signer: k.client.ed, TTL: 5 * time.Second}
	req := envelope.HMAC | envelope.Signature
	for _, id := range []string{"gateway", "gateway-2"} {
		ring := mustT(mqttsec.NewKeyring(mqttsec.Own{}, peerOf(k, "client", k.client, req, mqttsec.Protection{HMAC: k.hmac, Signer: k.gateway.ed})))
		s := mustT(mqttsec.NewServer(mqttsec.ServerConfig{Config: mqttsec.Config{ID: id, Keyring: ring, Now: clock,
			Transport: transport(t, proto, hb.URL(), id, nil)}}))
		s.HandleFunc("get-card", func(ctx context.Context, r *mqttsec.Request) ([]byte, error) {
			w.runs.Add(1)
			return append([]byte("card "), r.Payload...), nil
		})
		s.HandleFunc("delete-card", func(ctx context.Context, r *mqttsec.Request) ([]byte, error) {
			w.deletes.Add(1)
			return []byte("deleted"), nil
		})
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		if err := s.Start(ctx); err != nil {
			t.Fatal(err)
		}
		cancel()
		t.Cleanup(func() { s.Close(context.Background()) })
		if id == "gateway" {
			w.gw = s
		} else {
			w.gw2 = s
		}
	}
	ring := mustT(mqttsec.NewKeyring(mqttsec.Own{},
		peerOf(k, "gateway", k.gateway, req, send), peerOf(k, "gateway-2", k.gateway, req, send)))
	w.client = mustT(mqttsec.NewClient(mqttsec.Config{ID: "client", Keyring: ring, Transport: transport(t, proto, hb.URL(), "client", nil)}))
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := w.client.Start(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { w.client.Close(context.Background()) })
	return w
}

// call makes one request with a short deadline.
func (w *hostileWorld) call(payload string, d time.Duration) ([]byte, error) {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	return w.client.Request(ctx, "gateway", "get-card", []byte(payload))
}

// callInBackground makes a request with a 10 s deadline on a goroutine of
// its own; the channel gets nil if the gateway's answer came back, else the
// error.
func (w *hostileWorld) callInBackground(payload string) <-chan error {
	done := make(chan error, 1)
	go func() {
		out, err := w.call(payload, 10*time.Second)
		if err == nil && string(out) != "card "+payload {
			err = fmt.Errorf("request %q got %q", payload, out)
		}
		done <- err
	}()
	return done
}

// stillWorks checks that legitimate traffic goes on after an attack.
func (w *hostileWorld) stillWorks(t *testing.T) {
	t.Helper()
	w.b.SetRule(nil)
	if out, err := w.call("after", 10*time.Second); err != nil || string(out) != "card after" {
		t.Fatalf("legitimate request after the attack: %q, %v", out, err)
	}
}

// envelopeMembers are an envelope's members, for an attacker to edit; mac
// and sig are empty when absent.
type envelopeMembers struct{ header, payload, mac, sig []byte }

// rebuild cuts env into its members, lets change edit copies of them, and
// writes them back (SPEC.md §2: the first byte, then each member after its
// length as 4 bytes big-endian), as a broker that knows the format can.
func rebuild(t *testing.T, env []byte, change func(m *envelopeMembers)) []byte {
	t.Helper()
	if _, err := envelope.Peek(env, 0); err != nil {
		t.Fatal(err)
	}
	var members [4][]byte
	rest := env[1:]
	for i := range members {
		n := binary.BigEndian.Uint32(rest)
		members[i], rest = bytes.Clone(rest[4:4+n]), rest[4+n:]
	}
	m := &envelopeMembers{header: members[0], payload: members[1], mac: members[2], sig: members[3]}
	change(m)
	out := []byte{env[0]}
	for _, f := range [][]byte{m.header, m.payload, m.mac, m.sig} {
		out = binary.BigEndian.AppendUint32(out, uint32(len(f)))
		out = append(out, f...)
	}
	return out
}

// flipPayload changes one bit of the payload: the envelope stays well
// formed.
func flipPayload(t *testing.T, env []byte) []byte {
	return rebuild(t, env, func(m *envelopeMembers) { m.payload[0] ^= 1 })
}

// editHeader replaces the bytes of a header field (an id, a digest, a key
// id), keeping payload and tags.
func editHeader(t *testing.T, env []byte, old, new []byte) []byte {
	t.Helper()
	return rebuild(t, env, func(m *envelopeMembers) {
		if !bytes.Contains(m.header, old) {
			t.Fatalf("header has no %q", old)
		}
		m.header = bytes.Replace(m.header, old, new, 1)
	})
}

func stat(s interface{ Stats() map[string]uint64 }, name string) uint64 { return s.Stats()[name] }

// TestHostileBroker runs every attack of the threat model through a broker
// that performs it, and checks the exact outcome: the refusal class and
// counter, no handler run for a forged or replayed request, no forged reply
// returned, a clean timeout where the broker withholds, and legitimate
// traffic working afterwards.
func TestHostileBroker(t *testing.T) {
	for _, proto := range protocols {
		t.Run(fmt.Sprintf("v%d", proto), func(t *testing.T) { hostileAttacks(t, proto) })
	}
}

func hostileAttacks(t *testing.T, proto int) {
	short := 700 * time.Millisecond
	refusedOnce := func(t *testing.T, w *hostileWorld, s interface{ Stats() map[string]uint64 }, name string) {
		t.Helper()
		waitFor(t, name+" counted", func() bool { return stat(s, name) == 1 })
	}
	type attack struct {
		name string
		v5   bool // MQTT v5 properties only
		run  func(t *testing.T, w *hostileWorld)
	}
	attacks := []attack{
		{name: "bit flipped in a request", run: func(t *testing.T, w *hostileWorld) {
			w.b.SetRule(func(m hostile.Message) hostile.Verdict {
				if m.Topic != reqTopic {
					return hostile.Verdict{}
				}
				m.Payload = flipPayload(t, m.Payload)
				return hostile.Verdict{Replace: &m}
			})
			if _, err := w.call("x", short); !errors.Is(err, context.DeadlineExceeded) {
				t.Fatalf("request through a tampering broker: %v, want a timeout", err)
			}
			refusedOnce(t, w, w.gw, mqttsec.StatAuthentication)
		}},
		{name: "request truncated", run: func(t *testing.T, w *hostileWorld) {
			w.b.SetRule(func(m hostile.Message) hostile.Verdict {
				if m.Topic == reqTopic {
					m.Payload = m.Payload[:len(m.Payload)-9]
					return hostile.Verdict{Replace: &m}
				}
				return hostile.Verdict{}
			})
			w.call("x", short)
			refusedOnce(t, w, w.gw, mqttsec.StatMalformed)
		}},
		{name: "request padded", run: func(t *testing.T, w *hostileWorld) {
			w.b.SetRule(func(m hostile.Message) hostile.Verdict {
				if m.Topic == reqTopic {
					m.Payload = append(m.Payload, "    "...)
					return hostile.Verdict{Replace: &m}
				}
				return hostile.Verdict{}
			})
			w.call("x", short)
			refusedOnce(t, w, w.gw, mqttsec.StatMalformed)
		}},
		{name: "request duplicated", run: func(t *testing.T, w *hostileWorld) {
			w.b.SetRule(func(m hostile.Message) hostile.Verdict {
				if m.Topic == reqTopic {
					return hostile.Verdict{Also: []hostile.Message{m, m}}
				}
				return hostile.Verdict{}
			})
			if out, err := w.call("dup", 10*time.Second); err != nil || string(out) != "card dup" {
				t.Fatalf("duplicated request: %q, %v", out, err)
			}
			waitFor(t, "two copies refused", func() bool { return stat(w.gw, mqttsec.StatReplayed) == 2 })
			if w.runs.Load() != 1 {
				t.Fatalf("handler ran %d times", w.runs.Load())
			}
		}},
		{name: "request replayed later", run: func(t *testing.T, w *hostileWorld) {
			if _, err := w.call("first", 10*time.Second); err != nil {
				t.Fatal(err)
			}
			w.b.Inject(w.b.Seen(reqTopic)[0])
			refusedOnce(t, w, w.gw, mqttsec.StatReplayed)
			if w.runs.Load() != 1 {
				t.Fatalf("handler ran %d times", w.runs.Load())
			}
		}},
		{name: "request held past its expiry", run: func(t *testing.T, w *hostileWorld) {
			w.b.SetRule(func(m hostile.Message) hostile.Verdict { return hostile.Verdict{Drop: m.Topic == reqTopic} })
			w.call("late", short)
			w.skew.Store(int64(5*time.Second + envelope.DefaultMaxClockSkew + time.Second))
			w.b.Inject(w.b.Seen(reqTopic)[0])
			refusedOnce(t, w, w.gw, mqttsec.StatExpired)
			w.skew.Store(0)
			if w.runs.Load() != 0 {
				t.Fatal("an expired request was handled")
			}
		}},
		{name: "request dropped", run: func(t *testing.T, w *hostileWorld) {
			w.b.SetRule(func(m hostile.Message) hostile.Verdict { return hostile.Verdict{Drop: m.Topic == reqTopic} })
			if _, err := w.call("x", short); !errors.Is(err, context.DeadlineExceeded) {
				t.Fatalf("dropped request: %v, want a timeout", err)
			}
		}},
		{name: "reply dropped", run: func(t *testing.T, w *hostileWorld) {
			w.b.SetRule(func(m hostile.Message) hostile.Verdict { return hostile.Verdict{Drop: m.Topic == replyTopic} })
			if _, err := w.call("x", short); !errors.Is(err, context.DeadlineExceeded) {
				t.Fatalf("dropped reply: %v, want a timeout", err)
			}
		}},
		{name: "get-card re-published as delete-card", run: func(t *testing.T, w *hostileWorld) {
			w.b.SetRule(func(m hostile.Message) hostile.Verdict {
				if m.Topic == reqTopic {
					m.Topic = "mqttsec/gateway/req/delete-card"
					return hostile.Verdict{Replace: &m}
				}
				return hostile.Verdict{}
			})
			w.call("x", short)
			refusedOnce(t, w, w.gw, mqttsec.StatContext)
			if w.deletes.Load() != 0 {
				t.Fatal("delete-card ran")
			}
		}},
		{name: "request re-addressed to another gateway", run: func(t *testing.T, w *hostileWorld) {
			w.b.SetRule(func(m hostile.Message) hostile.Verdict {
				if m.Topic == reqTopic {
					m.Topic = "mqttsec/gateway-2/req/get-card"
					return hostile.Verdict{Replace: &m}
				}
				return hostile.Verdict{}
			})
			w.call("x", short)
			refusedOnce(t, w, w.gw2, mqttsec.StatContext)
		}},
		{name: "request reflected to the client as a reply", run: func(t *testing.T, w *hostileWorld) {
			w.b.SetRule(func(m hostile.Message) hostile.Verdict {
				if m.Topic == reqTopic {
					return hostile.Verdict{Also: []hostile.Message{{Topic: replyTopic, Payload: m.Payload}}}
				}
				return hostile.Verdict{}
			})
			if out, err := w.call("refl", 10*time.Second); err != nil || string(out) != "card refl" {
				t.Fatalf("with a reflection: %q, %v", out, err)
			}
			refusedOnce(t, w, w.client, mqttsec.StatContext)
		}},
		{name: "reply bound to another pending request", run: func(t *testing.T, w *hostileWorld) {
			// The broker withholds every reply. While request 2 is pending
			// it rewrites the reply to request 1 to claim it answers
			// request 2, then lets the genuine reply 2 through.
			w.b.SetRule(func(m hostile.Message) hostile.Verdict { return hostile.Verdict{Drop: m.Topic == replyTopic} })
			w.call("one", short)
			done := w.callInBackground("two")
			waitFor(t, "both replies withheld", func() bool { return len(w.b.Seen(replyTopic)) == 2 })
			replies := w.b.Seen(replyTopic)
			h1 := mustT(envelope.Peek(replies[0].Payload, 0))
			h2 := mustT(envelope.Peek(replies[1].Payload, 0)) // request 2's digest and correlation id
			forged := editHeader(t, replies[0].Payload, h1.InReplyTo[:], h2.InReplyTo[:])
			forged = editHeader(t, forged, h1.CorrelationID, h2.CorrelationID)
			w.b.Inject(hostile.Message{Topic: replyTopic, Payload: forged})
			waitFor(t, "forged binding refused", func() bool { return stat(w.client, mqttsec.StatAuthentication) == 1 })
			w.b.Inject(replies[1])
			if err := <-done; err != nil {
				t.Fatal(err)
			}
		}},
		{name: "signature stripped", run: func(t *testing.T, w *hostileWorld) {
			w.b.SetRule(func(m hostile.Message) hostile.Verdict {
				if m.Topic == reqTopic {
					m.Payload = rebuild(t, m.Payload, func(m *envelopeMembers) { m.sig = nil })
					return hostile.Verdict{Replace: &m}
				}
				return hostile.Verdict{}
			})
			w.call("x", short)
			// The header still declares it: the members do not have the
			// sizes it gives them (envelope/SPEC.md §3.3).
			refusedOnce(t, w, w.gw, mqttsec.StatMalformed)
		}},
		{name: "HMAC stripped", run: func(t *testing.T, w *hostileWorld) {
			w.b.SetRule(func(m hostile.Message) hostile.Verdict {
				if m.Topic == reqTopic {
					m.Payload = rebuild(t, m.Payload, func(m *envelopeMembers) { m.mac = nil })
					return hostile.Verdict{Replace: &m}
				}
				return hostile.Verdict{}
			})
			w.call("x", short)
			// The header still declares it: the members do not have the
			// sizes it gives them (envelope/SPEC.md §3.3).
			refusedOnce(t, w, w.gw, mqttsec.StatMalformed)
		}},
		{name: "requests reordered", run: func(t *testing.T, w *hostileWorld) {
			// The broker holds request 1 until request 2 has been answered:
			// both are genuine and fresh, so both are handled, once.
			var held atomic.Bool
			w.b.SetRule(func(m hostile.Message) hostile.Verdict {
				return hostile.Verdict{Drop: m.Topic == reqTopic && held.CompareAndSwap(false, true)}
			})
			first := w.callInBackground("one")
			waitFor(t, "request 1 held", func() bool { return len(w.b.Seen(reqTopic)) == 1 })
			if out, err := w.call("two", 10*time.Second); err != nil || string(out) != "card two" {
				t.Fatalf("request 2: %q, %v", out, err)
			}
			w.b.Inject(w.b.Seen(reqTopic)[0])
			if err := <-first; err != nil {
				t.Fatalf("request 1 delivered late: %v", err)
			}
			if w.runs.Load() != 2 {
				t.Fatalf("handler ran %d times for two requests", w.runs.Load())
			}
		}},
		{name: "key id swapped", run: func(t *testing.T, w *hostileWorld) {
			w.b.SetRule(func(m hostile.Message) hostile.Verdict {
				if m.Topic == reqTopic {
					h, err := envelope.Peek(m.Payload, 0)
					if err != nil {
						t.Error(err)
						return hostile.Verdict{}
					}
					kid := h.Keys[0].ID
					m.Payload = editHeader(t, m.Payload, kid[:], make([]byte, len(kid)))
					return hostile.Verdict{Replace: &m}
				}
				return hostile.Verdict{}
			})
			w.call("x", short)
			refusedOnce(t, w, w.gw, mqttsec.StatUnknownKey)
		}},
		{name: "MQTT v5 ResponseTopic and CorrelationData forged", v5: true, run: func(t *testing.T, w *hostileWorld) {
			w.b.SetRule(func(m hostile.Message) hostile.Verdict {
				if m.Topic == reqTopic {
					m.ResponseTopic, m.CorrelationData = "eve/inbox", []byte("eve")
					return hostile.Verdict{Replace: &m}
				}
				return hostile.Verdict{}
			})
			if out, err := w.call("props", 10*time.Second); err != nil || string(out) != "card props" {
				t.Fatalf("with forged properties: %q, %v", out, err)
			}
			if n := len(w.b.Seen("eve/inbox")); n != 0 {
				t.Fatalf("the gateway published %d messages to the forged response topic", n)
			}
		}},
		{name: "request from an unknown sender", run: func(t *testing.T, w *hostileWorld) {
			s := &envelope.Sealer{ID: "mallory", Counter: envelope.NewClockCounter()}
			key := mustT(envelope.NewHMACKey(bytes.Repeat([]byte{7}, 32)))
			forged := mustT(s.Seal(&envelope.Params{Kind: envelope.Request, To: []string{"gateway"}, Topic: "delete-card",
				ReplyTo: "mqttsec/mallory/reply", HMAC: key}, nil))
			w.b.Inject(hostile.Message{Topic: "mqttsec/gateway/req/delete-card", Payload: forged.Bytes})
			refusedOnce(t, w, w.gw, mqttsec.StatUnknownKey)
			if w.deletes.Load() != 0 {
				t.Fatal("delete-card ran")
			}
		}},
		{name: "junk flood", run: func(t *testing.T, w *hostileWorld) {
			const n = 2000
			for i := range n {
				w.b.Inject(hostile.Message{Topic: reqTopic, Payload: []byte(strings.Repeat("x", i%300))})
			}
			waitFor(t, "junk refused or shed", func() bool {
				return stat(w.gw, mqttsec.StatMalformed)+stat(w.gw, mqttsec.StatOverload) == n
			})
			if w.runs.Load() != 0 {
				t.Fatal("a handler ran for junk")
			}
		}},
	}
	for _, a := range attacks {
		if a.v5 && proto != 5 {
			continue
		}
		t.Run(a.name, func(t *testing.T) {
			checkNoLeaks(t)
			w := newHostileWorld(t, proto)
			a.run(t, w)
			w.stillWorks(t)
		})
	}
}

// A flood of well-formed envelopes from thousands of unknown senders leaves
// no state behind: senders are looked up before anything is recorded, so
// the replay store only ever tracks real peers.
func TestFloodFromUnknownSendersLeavesNoState(t *testing.T) {
	b := embeddedBroker(t)
	store := mustT(replay.NewMemoryStore(mqttsec.DefaultReplayWindow))
	p := newPair(t, b, pairOptions{proto: 5, configure: func(c *mqttsec.ServerConfig) { c.Replay = store }})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := p.client.Request(ctx, "gateway", "echo", nil); err != nil {
		t.Fatal(err)
	}
	key := mustT(envelope.NewHMACKey(bytes.Repeat([]byte{3}, 32)))
	const n = 3000
	for i := range n {
		s := &envelope.Sealer{ID: fmt.Sprint("bot-", i), Counter: envelope.NewMemoryCounter(0)}
		env := mustT(s.Seal(&envelope.Params{Kind: envelope.Request, To: []string{"gateway"}, Topic: "echo",
			ReplyTo: fmt.Sprint("mqttsec/bot-", i, "/reply"), HMAC: key}, nil))
		b.embedded.Publish("mqttsec/gateway/req/echo", env.Bytes)
	}
	waitFor(t, "flood refused", func() bool {
		st := p.server.Stats()
		return st[mqttsec.StatUnknownKey]+st[mqttsec.StatOverload] == n
	})
	if store.Len() != 1 {
		t.Fatalf("the replay store tracks %d senders after the flood, want 1", store.Len())
	}
	if _, err := p.client.Request(ctx, "gateway", "echo", nil); err != nil {
		t.Fatalf("after the flood: %v", err)
	}
}
