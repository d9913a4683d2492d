package benchsuite

import (
	"context"
	"testing"

	"github.com/mqttsec/mqttsec/mqttsec"
)

func TestFilterMatches(t *testing.T) {
	for _, tt := range []struct {
		filter, topic string
		want          bool
	}{
		{"a/b", "a/b", true},
		{"a/b", "a/c", false},
		{"a/b", "a/b/c", false},
		{"a/b/c", "a/b", false},
		{"a/+", "a/b", true},
		{"a/+", "a/b/c", false},
		{"a/+/c", "a/b/c", true},
		{"a/#", "a/b/c", true},
		{"a/#", "b/c", false},
		{"#", "a", true},
	} {
		if got := filterMatches(tt.filter, tt.topic); got != tt.want {
			t.Errorf("filterMatches(%q, %q) = %v, want %v", tt.filter, tt.topic, got, tt.want)
		}
	}
}

// A message reaches each subscriber whose filter matches, once, with a
// payload of its own, and nothing reaches a closed transport.
func TestMemoryBusDelivers(t *testing.T) {
	ctx := context.Background()
	bus := NewMemoryBus()
	got := map[string]chan mqttsec.Inbound{}
	check := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	subscribe := func(name string, filters ...string) mqttsec.Transport {
		tr, err := bus.Dial(name)
		check(err)
		got[name] = make(chan mqttsec.Inbound, 4)
		check(tr.Start(ctx, func(in mqttsec.Inbound) { got[name] <- in }))
		for _, f := range filters {
			check(tr.Subscribe(ctx, f))
		}
		return tr
	}
	subscribe("both", "a/+", "a/#") // two matching filters: one copy
	subscribe("other", "b/#")
	closed := subscribe("closed", "a/b")
	check(closed.Close(ctx))
	pub, err := bus.Dial("pub")
	check(err)
	payload := []byte("x")
	if err := pub.Publish(ctx, mqttsec.Outbound{Topic: "a/b", Payload: payload}); err != nil {
		t.Fatal(err)
	}
	bus.handing.Wait()
	payload[0] = 'y'
	if n := len(got["both"]); n != 1 {
		t.Fatalf("%d copies for two matching filters, want 1", n)
	}
	if in := <-got["both"]; in.Topic != "a/b" || string(in.Payload) != "x" {
		t.Fatalf("delivered %q %q, want a/b with its own copy of x", in.Topic, in.Payload)
	}
	if len(got["other"]) != 0 || len(got["closed"]) != 0 {
		t.Fatalf("delivered to %d not matching and %d closed, want none", len(got["other"]), len(got["closed"]))
	}
}
