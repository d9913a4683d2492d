package mqttsec_test

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"time"

	"github.com/mqttsec/mqttsec/envelope"
	"github.com/mqttsec/mqttsec/mqttsec"
	"github.com/mqttsec/mqttsec/mqttsec/replay"
)

// A Server answers the time request of a peer whose Policy.Clockless is
// set itself, with no handler: a device whose clock is 25 years behind
// seals one, and opens the empty reply without a clock
// (Opener.Clockless), which tells it the server's time. A peer with a
// clock gets no such answer: no handler serves the method.
func TestServerAnswersClocklessTimeRequests(t *testing.T) {
	forEach(t, func(t *testing.T, b *broker, proto int) {
		checkNoLeaks(t)
		k := getKeys()
		hmac := mqttsec.Protection{HMAC: k.hmac}
		device := peerOf(k, "device", k.client, envelope.HMAC, hmac)
		device.Policy.Clockless = true
		p := newPair(t, b, pairOptions{proto: proto, configure: func(c *mqttsec.ServerConfig) {
			c.Keyring = mustT(mqttsec.NewKeyring(mqttsec.Own{}, peerOf(k, "client", k.client, envelope.HMAC, hmac), device))
		}})
		timeTopic, replyTopic := mqttsec.Topics{}.Request("gateway", envelope.TimeMethod), mqttsec.Topics{}.Reply("device")
		eve := newAttacker(t, b, replyTopic)

		deviceClock := func() time.Time { return time.Date(2001, 1, 1, 0, 0, 0, 0, time.UTC) }
		sealer := &envelope.Sealer{ID: "device", Counter: envelope.NewMemoryCounter(0), Now: deviceClock}
		req := mustT(sealer.Seal(&envelope.Params{Kind: envelope.Request, To: []string{"gateway"}, Topic: envelope.TimeMethod,
			ReplyTo: replyTopic, HMAC: k.hmac}, nil))
		eve.publish(t, timeTopic, req.Bytes)
		waitFor(t, "the time reply", func() bool { return len(eve.captured(replyTopic)) == 1 })

		gateway := &envelope.Peer{ID: "gateway", Policy: envelope.Policy{Require: envelope.HMAC}, HMACKeys: []*envelope.HMACKey{k.hmac}}
		opener := &envelope.Opener{ID: "device", Keys: mustT(envelope.NewKeys(nil, gateway)),
			Replay: mustT(replay.NewMemoryStore(0)), Now: deviceClock, Clockless: true}
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		m, err := opener.Open(ctx, eve.captured(replyTopic)[0], &envelope.Expect{Kinds: envelope.Reply | envelope.ErrorReply, From: "gateway", Request: req})
		if err != nil {
			t.Fatalf("the device opens the time reply: %v", err)
		}
		if m.Kind != envelope.Reply || len(m.Payload) != 0 {
			t.Fatalf("time reply: a %s of %q, want an empty reply", m.Kind, m.Payload)
		}
		if off := time.Since(m.IssuedAt); off < 0 || off > time.Second {
			t.Fatalf("the reply tells the time %v, %v off the server's clock", m.IssuedAt, off)
		}

		// The client has a clock: its time request is any other method's.
		_, err = p.client.Request(ctx, "gateway", envelope.TimeMethod, nil)
		if e := (*mqttsec.Error)(nil); !errors.As(err, &e) || e.Code != mqttsec.CodeNotFound {
			t.Fatalf("the client's time request: %v, want CodeNotFound", err)
		}
	})
}

// Whether a request is a clockless peer's time request is decided once,
// with the policy Open applied: a keyring reloaded between Open and the
// dispatch (here by Authorize, which runs in between) cannot send a
// request accepted whatever its timestamps to an application's handler.
func TestTimeRequestSurvivesAKeyringReload(t *testing.T) {
	forEach(t, func(t *testing.T, b *broker, proto int) {
		checkNoLeaks(t)
		k := getKeys()
		hmac := mqttsec.Protection{HMAC: k.hmac}
		clockless := peerOf(k, "device", k.client, envelope.HMAC, hmac)
		clockless.Policy.Clockless = true
		ring := mustT(mqttsec.NewKeyring(mqttsec.Own{}, clockless))
		reloaded := mustT(mqttsec.NewKeyring(mqttsec.Own{}, peerOf(k, "device", k.client, envelope.HMAC, hmac)))
		var handled atomic.Int32
		newPair(t, b, pairOptions{proto: proto,
			handlers: map[string]mqttsec.HandlerFunc{envelope.TimeMethod: func(context.Context, *mqttsec.Request) ([]byte, error) {
				handled.Add(1)
				return []byte("from the handler"), nil
			}},
			configure: func(c *mqttsec.ServerConfig) {
				c.Keyring = ring
				c.Authorize = func(string, string) bool { ring.Replace(reloaded); return true }
			}})
		timeTopic, replyTopic := mqttsec.Topics{}.Request("gateway", envelope.TimeMethod), mqttsec.Topics{}.Reply("device")
		eve := newAttacker(t, b, replyTopic)

		sealer := &envelope.Sealer{ID: "device", Counter: envelope.NewMemoryCounter(0),
			Now: func() time.Time { return time.Date(2001, 1, 1, 0, 0, 0, 0, time.UTC) }}
		req := mustT(sealer.Seal(&envelope.Params{Kind: envelope.Request, To: []string{"gateway"}, Topic: envelope.TimeMethod,
			ReplyTo: replyTopic, HMAC: k.hmac}, nil))
		eve.publish(t, timeTopic, req.Bytes)
		waitFor(t, "the time reply", func() bool { return len(eve.captured(replyTopic)) == 1 })
		if n := handled.Load(); n != 0 {
			t.Fatalf("the application's %s handler ran %d time(s) for a request sealed in 2001", envelope.TimeMethod, n)
		}
		h := mustT(envelope.Peek(eve.captured(replyTopic)[0], 0))
		if h.Kind != envelope.Reply {
			t.Fatalf("answered with a %s, want the time reply", h.Kind)
		}
	})
}
