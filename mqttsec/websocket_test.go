package mqttsec_test

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/mqttsec/mqttsec/internal/testbroker"
	"github.com/mqttsec/mqttsec/internal/testwait"
	"github.com/mqttsec/mqttsec/mqttsec"
)

// Over the broker's own WebSocket listener (mochi's, not the test bridge):
// paho.golang writes each packet as several WebSocket messages and a large
// packet spans many frames, which the broker must join into MQTT packets.
// Concurrent requests of up to 96 KiB come back intact on both protocols,
// and a message over MaxSize from another client is still dropped unread.
func TestBrokerWebSocketListener(t *testing.T) {
	for _, proto := range protocols {
		t.Run(fmt.Sprintf("v%d", proto), func(t *testing.T) {
			checkNoLeaks(t)
			bk, err := testbroker.StartWithWebSocket("127.0.0.1:0")
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { bk.Close() })
			log := &testwait.Log{}
			p := newPair(t, &broker{url: bk.WebSocketURL()}, pairOptions{proto: proto, configure: func(c *mqttsec.ServerConfig) {
				c.Logger = slog.New(slog.NewTextHandler(log, nil))
			}})
			ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
			defer cancel()
			const total, inFlight = 200, 16
			failed := requestsInFlight(t, total, inFlight, func(i int) error {
				payload := bytes.Repeat([]byte{byte('a' + i%26)}, (i*7919)%(96<<10))
				out, err := p.client.Request(ctx, "gateway", "echo", payload)
				if err == nil && !bytes.Equal(out, append([]byte("client echo "), payload...)) {
					err = fmt.Errorf("reply of %d bytes for a %d-byte request is not its echo", len(out), len(payload))
				}
				return err
			})
			if failed > 0 {
				t.Fatalf("%d of %d requests failed; client %v; server %v", failed, total, p.client.Stats(), p.server.Stats())
			}
			eve := newAttacker(t, &broker{url: bk.URL()})
			eve.publish(t, mqttsec.Topics{}.Request("gateway", "echo"), bytes.Repeat([]byte{'A'}, 16<<20))
			waitFor(t, "the message refused unread", func() bool {
				return strings.Contains(log.String(), `msg="mqttsec: message refused unread"`)
			})
			if st := p.server.Stats(); st[mqttsec.StatTooLarge] != 1 || st[mqttsec.StatMalformed] != 0 {
				t.Fatalf("stats %v, want too-large 1 and malformed 0", st)
			}
			if out, err := p.client.Request(ctx, "gateway", "echo", []byte("after")); err != nil || string(out) != "client echo after" {
				t.Fatalf("Request after the oversize message = %q, %v", out, err)
			}
		})
	}
}
