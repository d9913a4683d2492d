package mqttsec_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/mqttsec/mqttsec/envelope"
	"github.com/mqttsec/mqttsec/mqttsec"
)

// withVersions wraps a suite so that the client's Send asks for envelope
// version client and the gateway's for version gateway.
func withVersions(s suite, client, gateway int) suite {
	send := s.send
	s.send = func(k *testKeys, from, to *partyKeys) mqttsec.Protection {
		p := send(k, from, to)
		if from == k.client {
			p.Version = client
		} else {
			p.Version = gateway
		}
		return p
	}
	return s
}

func suiteNamed(t *testing.T, name string) suite {
	for _, s := range suites() {
		if s.name == name {
			return s
		}
	}
	t.Fatalf("no suite %q", name)
	return suite{}
}

// TestBinaryEnvelopes: a client whose Send.Version is 2 sends binary
// requests and gets binary replies, whatever the gateway sends on its own;
// a client that leaves it zero sends compact ones (the default), and one
// that sends version 1 gets version 1 back from a gateway set to 2. Seen on
// the broker, byte by byte.
func TestBinaryEnvelopes(t *testing.T) {
	forEach(t, func(t *testing.T, b *broker, proto int) {
		for _, name := range []string{"hmac", "psk", "ed25519+hpke-x25519"} {
			for _, v := range []struct{ client, gateway, want int }{
				{envelope.Version2, 0, envelope.Version2},
				{0, envelope.Version2, envelope.Version3},
				{envelope.Version1, envelope.Version2, envelope.Version1},
				{envelope.Version3, 0, envelope.Version3},
				{envelope.Version3, envelope.Version2, envelope.Version3},
			} {
				t.Run(fmt.Sprintf("%s/client-v%d-gateway-v%d", name, v.client, v.gateway), func(t *testing.T) {
					checkNoLeaks(t)
					reqTopic, replyTopic := mqttsec.Topics{}.Request("gateway", "echo"), mqttsec.Topics{}.Reply("client")
					eve := newAttacker(t, b, reqTopic, replyTopic)
					p := newPair(t, b, pairOptions{proto: proto, suite: withVersions(suiteNamed(t, name), v.client, v.gateway)})
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
					for _, m := range [][]byte{eve.captured(reqTopic)[0], eve.captured(replyTopic)[0]} {
						h, err := envelope.Inspect(m, 0)
						if err != nil {
							t.Fatal(err)
						}
						if h.Version != v.want {
							t.Fatalf("%s in version %d, want %d", h.Kind, h.Version, v.want)
						}
						if v.want != envelope.Version1 && int(m[0]) != v.want {
							t.Fatalf("%s begins with %#x", h.Kind, m[0])
						}
					}
				})
			}
		}
	})
}

// TestBinaryEvents: an event published with EventOptions.Version 2 or 3 is
// in that form on the broker and reaches its subscriber.
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
		for i, version := range []int{envelope.Version2, envelope.Version3} {
			if err := p.server.PublishEvent(ctx, "doors/3/opened", []byte(`{"door":3}`), mqttsec.EventOptions{To: []string{"client"}, Version: version}); err != nil {
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
			waitFor(t, "event captured", func() bool { return len(eve.captured(topic)) == i+1 })
			if m := eve.captured(topic)[i]; int(m[0]) != version {
				t.Fatalf("version %d event begins with %#x", version, m[0])
			}
		}
		// Options Seal refuses are the caller's: ErrInvalidEvent, wrapping
		// Seal's own class.
		for _, opt := range []mqttsec.EventOptions{{To: []string{"client"}, Version: 4}, {To: []string{"client"}, TTL: time.Nanosecond}} {
			err := p.server.PublishEvent(ctx, "doors/3/opened", nil, opt)
			if !errors.Is(err, mqttsec.ErrInvalidEvent) || !errors.Is(err, envelope.ErrInvalidParams) {
				t.Fatalf("PublishEvent with %+v = %v, want ErrInvalidEvent and envelope.ErrInvalidParams", opt, err)
			}
		}
	})
}

// A keyring refuses a Send.Version that is not an envelope version.
func TestKeyringRefusesUnknownVersion(t *testing.T) {
	k := getKeys()
	for _, v := range []int{-1, 4} {
		_, err := mqttsec.NewKeyring(mqttsec.Own{}, peerOf(k, "gateway", k.gateway, envelope.HMAC, mqttsec.Protection{HMAC: k.hmac, Version: v}))
		if !errors.Is(err, mqttsec.ErrInvalidConfig) {
			t.Fatalf("Send.Version %d: NewKeyring = %v, want ErrInvalidConfig", v, err)
		}
	}
}
