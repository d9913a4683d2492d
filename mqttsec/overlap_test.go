package mqttsec_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/mqttsec/mqttsec/mqttsec"
)

// TestOverlappingFiltersDeliverOnce subscribes one transport to two
// filters that both match a topic: each message on it reaches deliver
// once. The first message is followed by later ones on only one of the
// filters; the test waits for all of them, and counts a second delivery
// of the first if it comes before the test has seen them all (a
// duplicate delayed past that goes unseen; nothing makes the test fail
// when there is none).
func TestOverlappingFiltersDeliverOnce(t *testing.T) {
	for _, proto := range []int{3, 5} {
		t.Run(fmt.Sprintf("v%d", proto), func(t *testing.T) {
			b := embeddedBroker(t)
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			got := make(chan string, 64)
			sub := transport(t, proto, b.url, "overlap-sub", nil)
			if err := sub.Start(ctx, func(in mqttsec.Inbound) { got <- string(in.Payload) }); err != nil {
				t.Fatal(err)
			}
			defer sub.Close(context.Background())
			for _, f := range []string{"overlap/#", "overlap/a"} {
				if err := sub.Subscribe(ctx, f); err != nil {
					t.Fatal(err)
				}
			}
			pub := transport(t, proto, b.url, "overlap-pub", nil)
			if err := pub.Start(ctx, func(mqttsec.Inbound) {}); err != nil {
				t.Fatal(err)
			}
			defer pub.Close(context.Background())
			const later = 20
			if err := pub.Publish(ctx, mqttsec.Outbound{Topic: "overlap/a", Payload: []byte("both")}); err != nil {
				t.Fatal(err)
			}
			for i := range later {
				if err := pub.Publish(ctx, mqttsec.Outbound{Topic: "overlap/z", Payload: fmt.Appendf(nil, "later %d", i)}); err != nil {
					t.Fatal(err)
				}
			}
			// PahoV3 hands each message to deliver on a goroutine of its
			// own, so the first message may come after the later ones: the
			// wait is for all of them.
			both, seen := 0, 0
			for seen < later || both == 0 {
				select {
				case p := <-got:
					if p == "both" {
						both++
					} else {
						seen++
					}
				case <-ctx.Done():
					t.Fatalf("%d of %d later messages and %d of the first arrived", seen, later, both)
				}
			}
			// Anything still queued was handed over too.
			for len(got) > 0 {
				if <-got == "both" {
					both++
				}
			}
			if both != 1 {
				t.Fatalf("the message on both filters arrived %d times", both)
			}
		})
	}
}
