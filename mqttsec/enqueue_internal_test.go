package mqttsec

import (
	"context"
	"crypto/rand"
	"testing"

	"github.com/mqttsec/mqttsec/envelope"
)

// A message that finds the queue full is dropped and counted as overload,
// at once, without waiting for room; once the node is closing, messages are
// dropped without being counted (the workers are gone, nothing is lost
// that would have been handled). Junk and messages from senders not in the
// keyring never take a place in the queue: they are refused before it.
func TestFullQueueDropsAndCounts(t *testing.T) {
	secret := make([]byte, 32)
	rand.Read(secret)
	key, err := envelope.NewHMACKey(secret)
	if err != nil {
		t.Fatal(err)
	}
	ring, err := NewKeyring(Own{}, &Peer{Peer: envelope.Peer{ID: "client", HMACKeys: []*envelope.HMACKey{key}}, Send: Protection{HMAC: key}})
	if err != nil {
		t.Fatal(err)
	}
	n, err := newNode(Config{ID: "gateway", Transport: &recordingTransport{}, Keyring: ring})
	if err != nil {
		t.Fatal(err)
	}
	n.queue = make(chan queued, 2)
	n.ctx, n.cancel = context.WithCancel(context.Background())
	n.intake, n.stopIntake = context.WithCancel(n.ctx)
	sealFrom := func(id string) []byte {
		s := &envelope.Sealer{ID: id, Counter: envelope.NewClockCounter()}
		m, err := s.Seal(&envelope.Params{Kind: envelope.Request, To: []string{"gateway"}, Topic: "m", ReplyTo: "mqttsec/" + id + "/reply", HMAC: key}, nil)
		if err != nil {
			t.Fatal(err)
		}
		return m.Bytes
	}
	const topic = "mqttsec/gateway/req/m"
	for range 3 {
		n.enqueue(Inbound{Topic: topic, Payload: []byte("junk")})
		n.enqueue(Inbound{Topic: topic, Payload: sealFrom("stranger")})
	}
	if len(n.queue) != 0 || n.Stats()[StatMalformed] != 3 || n.Stats()[StatUnknownKey] != 3 {
		t.Fatalf("junk and strangers: %d queued, %d malformed, %d unknown-key; want 0, 3, 3",
			len(n.queue), n.Stats()[StatMalformed], n.Stats()[StatUnknownKey])
	}
	for range 5 {
		n.enqueue(Inbound{Topic: topic, Payload: sealFrom("client")})
	}
	if len(n.queue) != 2 || n.Stats()[StatOverload] != 3 {
		t.Fatalf("%d queued and %d counted as overload, want 2 and 3", len(n.queue), n.Stats()[StatOverload])
	}
	if got := len(n.arrivals.senders["client"]); got != 2 {
		t.Fatalf("%d arrivals of the client kept, want the 2 queued", got)
	}
	n.stopIntake()
	n.enqueue(Inbound{Topic: topic, Payload: sealFrom("client")})
	if got := n.Stats()[StatOverload]; got != 3 {
		t.Fatalf("closing: %d counted as overload, want still 3", got)
	}
	n.cancel()
	n.rejects.Close()
}
