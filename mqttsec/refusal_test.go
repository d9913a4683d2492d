package mqttsec_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	mochi "github.com/mochi-mqtt/server/v2"

	"github.com/mqttsec/mqttsec/internal/testbroker"
	"github.com/mqttsec/mqttsec/internal/testwait"
	"github.com/mqttsec/mqttsec/mqttsec"
)

// refuse is a broker ACL that allows everything except subscribing to
// reading and publishing to writing, until lifted.
type refuse struct {
	mochi.HookBase
	reading, writing string
	lifted           atomic.Bool
}

func (*refuse) ID() string { return "refuse" }

func (*refuse) Provides(b byte) bool { return b == mochi.OnACLCheck }

func (h *refuse) OnACLCheck(_ *mochi.Client, topic string, write bool) bool {
	if h.lifted.Load() {
		return true
	}
	if write {
		return topic != h.writing
	}
	return topic != h.reading
}

// A subscription the broker refuses fails Start with ErrSubscribeRefused on
// both transports: MQTT 3.1.1 reports the refusal only as return code 0x80
// in the SUBACK, which must not pass for a granted subscription. (Mosquitto
// with an acl_file grants every subscription and filters at delivery, so
// the refusing broker is the embedded one with an ACL hook.)
func TestStartFailsWhenBrokerRefusesSubscription(t *testing.T) {
	for _, proto := range protocols {
		t.Run(fmt.Sprintf("v%d", proto), func(t *testing.T) {
			checkNoLeaks(t)
			b, err := testbroker.Start("127.0.0.1:0", nil, &refuse{reading: mqttsec.Topics{}.Reply("bob")})
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { b.Close() })
			k := getKeys()
			s := suites()[0]
			keys := mustT(mqttsec.NewKeyring(mqttsec.Own{Signer: k.client.ed, Identities: k.client.ids},
				peerOf(k, "gateway", k.gateway, s.require, s.send(k, k.client, k.gateway))))
			client := mustT(mqttsec.NewClient(mqttsec.Config{ID: "bob", Transport: transport(t, proto, b.URL(), "bob", nil), Keyring: keys}))
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			if err := client.Start(ctx); !errors.Is(err, mqttsec.ErrSubscribeRefused) {
				t.Errorf("Start = %v, want an error wrapping ErrSubscribeRefused", err)
			}
			if err := client.Close(ctx); err != nil {
				t.Errorf("Close: %v", err)
			}
		})
	}
}

// A request the broker refuses to take (an MQTT 5 PUBACK with a reason code
// of 0x80 or more) fails at once with ErrPublishRefused instead of waiting
// for a reply that cannot come. (MQTT 3.1.1 has no such PUBACK: a broker
// drops the message, or the connection.)
func TestRequestFailsWhenBrokerRefusesPublish(t *testing.T) {
	checkNoLeaks(t)
	topics := mqttsec.Topics{}
	b, err := testbroker.Start("127.0.0.1:0", nil, &refuse{writing: topics.Request("gateway", "admin/reset")})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Close() })
	p := newPair(t, &broker{url: b.URL(), embedded: b}, pairOptions{proto: 5})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := p.client.Request(ctx, "gateway", "admin/reset", nil); !errors.Is(err, mqttsec.ErrPublishRefused) {
		t.Fatalf("Request = %v, want an error wrapping ErrPublishRefused", err)
	}
	if _, err := p.client.Request(ctx, "gateway", "echo", nil); err != nil {
		t.Fatalf("Request of an allowed method: %v", err)
	}
}

// A subscription the broker starts refusing after a reconnect cannot fail
// Start, which returned long ago: the node logs it as an error and the
// transport keeps retrying, so service resumes once the broker allows it
// again.
func TestRefusedRenewalIsLoggedAndRetried(t *testing.T) {
	for _, proto := range protocols {
		t.Run(fmt.Sprintf("v%d", proto), func(t *testing.T) {
			checkNoLeaks(t)
			acl := &refuse{reading: mqttsec.Topics{}.RequestFilter("gateway")}
			acl.lifted.Store(true)
			b, err := testbroker.Start("127.0.0.1:0", nil, acl)
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { b.Close() })
			logged := &testwait.Log{}
			p := newPair(t, &broker{url: b.URL(), embedded: b}, pairOptions{proto: proto, configure: func(c *mqttsec.ServerConfig) {
				c.Logger = slog.New(slog.NewTextHandler(logged, &slog.HandlerOptions{Level: slog.LevelError}))
			}})
			request := func() error {
				ctx, cancel := context.WithTimeout(context.Background(), time.Second)
				defer cancel()
				_, err := p.client.Request(ctx, "gateway", "echo", nil)
				return err
			}
			if err := request(); err != nil {
				t.Fatal(err)
			}
			acl.lifted.Store(false)
			if err := b.Restart(); err != nil {
				t.Fatal(err)
			}
			waitFor(t, "the refused renewal logged as an error", func() bool {
				line := logged.String()
				return strings.Contains(line, `level=ERROR msg="mqttsec: subscription not renewed"`) &&
					strings.Contains(line, mqttsec.ErrSubscribeRefused.Error())
			})
			acl.lifted.Store(true)
			waitFor(t, "requests answered again", func() bool { return request() == nil })
		})
	}
}
