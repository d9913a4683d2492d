package mqttsec_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/mqttsec/mqttsec/envelope"
	"github.com/mqttsec/mqttsec/internal/testwait"
	"github.com/mqttsec/mqttsec/mqttsec"
)

// A flood of junk from another client of the broker is counted message by
// message but logged in a few lines: the first refusal, then (here, with
// the gateway's clock standing still, at Close) one line saying how many
// were left out. With RejectLogInterval negative, each is logged.
func TestJunkFloodLogsFewLines(t *testing.T) {
	const junk = 200
	for _, proto := range protocols {
		for _, interval := range []time.Duration{0, -1} {
			t.Run(fmt.Sprintf("v%d/interval=%v", proto, interval), func(t *testing.T) {
				checkNoLeaks(t)
				b := embeddedBroker(t)
				log := &testwait.Log{}
				still := time.Now()
				p := newPair(t, b, pairOptions{proto: proto, noCleanup: true, configure: func(c *mqttsec.ServerConfig) {
					c.Logger = slog.New(slog.NewTextHandler(log, nil))
					c.RejectLogInterval = interval
					c.Now = func() time.Time { return still }
				}})
				eve := newAttacker(t, b)
				for i := range junk {
					eve.publish(t, mqttsec.Topics{}.Request("gateway", "echo"), []byte(strings.Repeat("x", 1+i%50)))
				}
				waitFor(t, "the junk refused", func() bool { return p.server.Stats()[mqttsec.StatMalformed] == junk })
				refused := func() int { return strings.Count(log.String(), `msg="mqttsec: message refused" class=malformed`) }
				want := 1
				if interval < 0 {
					want = junk
				}
				// Close below also finds exactly the lines expected.
				expectLines(t, log, `msg="mqttsec: message refused" class=malformed`, want)
				p.close(t)
				if interval < 0 {
					if n := refused(); n != junk {
						t.Fatalf("after Close: %d lines, want %d", n, junk)
					}
					return
				}
				if n, line := refused(), fmt.Sprintf("suppressed=%d", junk-1); n != 2 || !strings.Contains(log.String(), line) {
					t.Fatalf("after Close: %d lines, want 2, the second with %s:\n%s", n, line, log)
				}
			})
		}
	}
}

// A flood of refused requests from a caller that holds valid keys is
// logged like junk: a request for a method Authorize refuses, and one
// asking for its reply on another party's topic, are each logged once and
// then counted (or, with a negative interval, logged every time).
func TestAuthenticatedRefusalsLogFewLines(t *testing.T) {
	const flood = 20
	for _, tt := range []struct {
		name, msg, stat string
		// send sends one request; a genuine client's sealer is given for
		// requests the SDK would not send.
		send func(t *testing.T, p *pair, eve *attacker, sealer *envelope.Sealer)
	}{
		{"forbidden", "mqttsec: forbidden", mqttsec.StatForbidden, func(t *testing.T, p *pair, _ *attacker, _ *envelope.Sealer) {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			var e *mqttsec.Error
			if _, err := p.client.Request(ctx, "gateway", "admin/reset", nil); !errors.As(err, &e) || e.Code != mqttsec.CodeForbidden {
				t.Fatalf("Request: %v, want CodeForbidden", err)
			}
		}},
		{"reply-to refused", "mqttsec: reply-to refused", mqttsec.StatBadReplyTo, func(t *testing.T, _ *pair, eve *attacker, sealer *envelope.Sealer) {
			req, err := sealer.Seal(&envelope.Params{Kind: envelope.Request, To: []string{"gateway"}, Topic: "echo",
				ReplyTo: "factory/valve/7/set", HMAC: getKeys().hmac}, nil)
			if err != nil {
				t.Fatal(err)
			}
			eve.publish(t, "mqttsec/gateway/req/echo", req.Bytes)
		}},
	} {
		for _, interval := range []time.Duration{0, -1} {
			t.Run(fmt.Sprintf("%s/interval=%v", tt.name, interval), func(t *testing.T) {
				b := embeddedBroker(t)
				log := &testwait.Log{}
				still := time.Now()
				p := newPair(t, b, pairOptions{proto: 5, noCleanup: true, handlers: map[string]mqttsec.HandlerFunc{"admin/reset": echo},
					configure: func(c *mqttsec.ServerConfig) {
						c.Logger = slog.New(slog.NewTextHandler(log, nil))
						c.RejectLogInterval = interval
						c.Now = func() time.Time { return still }
						c.Authorize = func(caller, method string) bool { return method != "admin/reset" }
					}})
				eve := newAttacker(t, b)
				sealer := &envelope.Sealer{ID: "client", Counter: envelope.NewMemoryCounter(0)}
				for range flood {
					tt.send(t, p, eve, sealer)
				}
				waitFor(t, "every request refused", func() bool { return p.server.Stats()[tt.stat] == flood })
				want := 1
				if interval < 0 {
					want = flood
				}
				expectLines(t, log, fmt.Sprintf("msg=%q", tt.msg), want)
				p.close(t)
				if interval >= 0 && !strings.Contains(log.String(), fmt.Sprintf("suppressed=%d", flood-1)) {
					t.Fatalf("after Close, no line says suppressed=%d:\n%s", flood-1, log)
				}
			})
		}
	}
}

// expectLines holds log to want lines holding pattern. A refusal is
// counted just before it is logged, so it waits for the lines first; then
// no more may have come.
func expectLines(t *testing.T, log *testwait.Log, pattern string, want int) {
	t.Helper()
	count := func() int { return strings.Count(log.String(), pattern) }
	waitFor(t, fmt.Sprintf("%d log lines", want), func() bool { return count() >= want })
	if n := count(); n != want {
		t.Fatalf("%d log lines with %s, want %d:\n%s", n, pattern, want, log)
	}
}
