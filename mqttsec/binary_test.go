package mqttsec_test

import (
	"bytes"
	"context"
	"errors"
	"testing"
	"time"

	"github.com/mqttsec/mqttsec/envelope"
	"github.com/mqttsec/mqttsec/mqttsec"
)

func suiteNamed(t *testing.T, name string) suite {
	for _, s := range suites() {
		if s.name == name {
			return s
		}
	}
	t.Fatalf("no suite %q", name)
	return suite{}
}

// TestBinaryPayload: a payload of any bytes travels in its envelope and
// comes back exactly, under each kind of protection, and the broker
// carries one request and its reply. Seen on the broker.
func TestBinaryPayload(t *testing.T) {
	forEach(t, func(t *testing.T, b *broker, proto int) {
		for _, name := range []string{"hmac", "psk", "ed25519+hpke-x25519"} {
			t.Run(name, func(t *testing.T) {
				checkNoLeaks(t)
				reqTopic, replyTopic := mqttsec.Topics{}.Request("gateway", "echo"), mqttsec.Topics{}.Reply("client")
				eve := newAttacker(t, b, reqTopic, replyTopic)
				p := newPair(t, b, pairOptions{proto: proto, suite: suiteNamed(t, name)})
				ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
				defer cancel()
				payload := []byte("binary \x00\xff payload")
				out, err := p.client.Request(ctx, "gateway", "echo", payload)
				if err != nil || !bytes.Equal(out, append([]byte("client echo "), payload...)) {
					t.Fatalf("echo = %q, %v", out, err)
				}
				waitFor(t, "request and reply captured", func() bool {
					return len(eve.captured(reqTopic)) == 1 && len(eve.captured(replyTopic)) == 1
				})
				for i, m := range [][]byte{eve.captured(reqTopic)[0], eve.captured(replyTopic)[0]} {
					h, err := envelope.Peek(m, 0)
					if err != nil {
						t.Fatal(err)
					}
					if want := []envelope.Kind{envelope.Request, envelope.Reply}[i]; h.Kind != want {
						t.Fatalf("captured a %s, want a %s", h.Kind, want)
					}
				}
			})
		}
	})
}

// TestBinaryEvents: an event is on the broker as an envelope and reaches
// its subscriber.
func TestBinaryEvents(t *testing.T) {
	forEach(t, func(t *testing.T, b *broker, proto int) {
		checkNoLeaks(t)
		p := newPair(t, b, pairOptions{proto: proto, suite: suiteNamed(t, "ed25519")})
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		events := make(chan *mqttsec.Event, 1)
		if err := p.client.SubscribeEvents(ctx, "gateway", func(_ context.Context, ev *mqttsec.Event) { events <- ev }); err != nil {
			t.Fatal(err)
		}
		topic := mqttsec.Topics{}.Event("gateway", "doors/3/opened")
		eve := newAttacker(t, b, topic)
		if err := p.server.PublishEvent(ctx, "doors/3/opened", []byte(`{"door":3}`), mqttsec.EventOptions{To: []string{"client"}}); err != nil {
			t.Fatal(err)
		}
		select {
		case ev := <-events:
			if string(ev.Payload) != `{"door":3}` || ev.From != "gateway" {
				t.Fatalf("event %+v", ev)
			}
		case <-ctx.Done():
			t.Fatal("no event")
		}
		waitFor(t, "event captured", func() bool { return len(eve.captured(topic)) == 1 })
		if h, err := envelope.Peek(eve.captured(topic)[0], 0); err != nil || h.Kind != envelope.Event || h.From != "gateway" {
			t.Fatalf("captured event: %+v, %v", h, err)
		}
		// Options Seal refuses are the caller's: ErrInvalidEvent, wrapping
		// Seal's own class.
		for _, opt := range []mqttsec.EventOptions{{To: []string{"client"}, TTL: time.Nanosecond}} {
			err := p.server.PublishEvent(ctx, "doors/3/opened", nil, opt)
			if !errors.Is(err, mqttsec.ErrInvalidEvent) || !errors.Is(err, envelope.ErrInvalidParams) {
				t.Fatalf("PublishEvent with %+v = %v, want ErrInvalidEvent and envelope.ErrInvalidParams", opt, err)
			}
		}
	})
}
