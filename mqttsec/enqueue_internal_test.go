package mqttsec

import (
	"context"
	"testing"
)

// A message that finds the queue full is dropped and counted as overload,
// at once, without waiting for room; once the node is closing, messages are
// dropped without being counted (the workers are gone, nothing is lost
// that would have been handled).
func TestFullQueueDropsAndCounts(t *testing.T) {
	ring, err := NewKeyring(Own{})
	if err != nil {
		t.Fatal(err)
	}
	n, err := newNode(Config{ID: "gateway", Transport: &recordingTransport{}, Keyring: ring})
	if err != nil {
		t.Fatal(err)
	}
	n.queue = make(chan Inbound, 2)
	n.ctx, n.cancel = context.WithCancel(context.Background())
	for range 5 {
		n.enqueue(Inbound{Topic: "mqttsec/gateway/req/m", Payload: []byte("x")})
	}
	if len(n.queue) != 2 || n.Stats()[StatOverload] != 3 {
		t.Fatalf("%d queued and %d counted as overload, want 2 and 3", len(n.queue), n.Stats()[StatOverload])
	}
	n.cancel()
	n.enqueue(Inbound{Topic: "mqttsec/gateway/req/m", Payload: []byte("x")})
	if got := n.Stats()[StatOverload]; got != 3 {
		t.Fatalf("closing: %d counted as overload, want still 3", got)
	}
	n.rejects.Close()
}
