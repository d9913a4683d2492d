package mqttsec_test

import (
	"fmt"
	"log/slog"
	"strings"
	"testing"
	"time"

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
				// A refusal is counted just before it is logged: wait for
				// the lines, then no more may come (Close below also finds
				// exactly the lines expected).
				waitFor(t, fmt.Sprintf("%d log lines", want), func() bool { return refused() >= want })
				if n := refused(); n != want {
					t.Fatalf("%d log lines for %d junk messages, want %d:\n%s", n, junk, want, log)
				}
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
