package mqttsec

import (
	"bytes"
	"context"
	"errors"
	"sync"
	"testing"

	"github.com/mqttsec/mqttsec/envelope"
)

// keepingTransport is a Transport that keeps every payload it publishes,
// as a transport queueing messages for later would, next to a copy taken
// at the publish.
type keepingTransport struct {
	fail bool // every publish fails, as when the broker never acknowledges
	mu   sync.Mutex
	kept []keptPayload
}

type keptPayload struct{ kept, copied []byte }

func (r *keepingTransport) Start(context.Context, func(Inbound)) error { return nil }
func (r *keepingTransport) Subscribe(context.Context, string) error    { return nil }
func (r *keepingTransport) Close(context.Context) error                { return nil }
func (r *keepingTransport) Publish(_ context.Context, m Outbound) error {
	r.mu.Lock()
	r.kept = append(r.kept, keptPayload{kept: m.Payload, copied: bytes.Clone(m.Payload)})
	r.mu.Unlock()
	if r.fail {
		return errPublish
	}
	return nil
}

var errPublish = errors.New("no acknowledgement")

// changed counts kept payloads whose bytes are no longer those published.
func (r *keepingTransport) changed() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	n := 0
	for _, k := range r.kept {
		if !bytes.Equal(k.kept, k.copied) {
			n++
		}
	}
	return n
}

// payloadFreeTransport is a keepingTransport that claims what PahoV5
// promises: it keeps nothing of a payload once Publish returned.
type payloadFreeTransport struct{ keepingTransport }

func (*payloadFreeTransport) keepsNoPayload() {}

// TestEnvelopeBuffersAreReusedOnlyWhereSafe publishes events one after
// another: the buffers envelopes are sealed into are reused for a transport
// that keeps nothing of a payload after Publish (PahoV5) once
// the publish succeeded, and never for any other transport or after a
// failed publish: kept payloads must stay as published.
func TestEnvelopeBuffersAreReusedOnlyWhereSafe(t *testing.T) {
	key, err := envelope.NewHMACKey(bytes.Repeat([]byte{3}, 32))
	if err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		name      string
		transport interface {
			Transport
			changed() int
		}
		reused bool
	}{
		{"a transport of the caller's own", &keepingTransport{}, false},
		{"a transport that keeps no payload", &payloadFreeTransport{}, true},
		{"a transport that keeps no payload, failing", &payloadFreeTransport{keepingTransport{fail: true}}, false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			ring, err := NewKeyring(Own{}, &Peer{Peer: envelope.Peer{ID: "gateway", HMACKeys: []*envelope.HMACKey{key}}, Send: Protection{HMAC: key}})
			if err != nil {
				t.Fatal(err)
			}
			c, err := NewClient(Config{ID: "client", Transport: tt.transport, Keyring: ring})
			if err != nil {
				t.Fatal(err)
			}
			ctx := context.Background()
			if err := c.Start(ctx); err != nil {
				t.Fatal(err)
			}
			defer c.Close(ctx)
			// Each payload differs, so a reused buffer changes what an
			// earlier publish handed over.
			for i := range 50 {
				err := c.PublishEvent(ctx, "reading", []byte{byte(i)}, EventOptions{To: []string{"gateway"}})
				if err != nil && !errors.Is(err, errPublish) {
					t.Fatal(err)
				}
			}
			if changed := tt.transport.changed(); (changed > 0) != tt.reused {
				t.Fatalf("%d of 50 published payloads changed afterwards; want reuse: %v", changed, tt.reused)
			}
		})
	}
}
