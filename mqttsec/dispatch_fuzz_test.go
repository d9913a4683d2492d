package mqttsec

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/mqttsec/mqttsec/envelope"
)

// recordingTransport is a Transport that records what is published.
type recordingTransport struct {
	mu        sync.Mutex
	published []Outbound
}

func (r *recordingTransport) Start(context.Context, func(Inbound)) error { return nil }
func (r *recordingTransport) Subscribe(context.Context, string) error    { return nil }
func (r *recordingTransport) Close(context.Context) error                { return nil }
func (r *recordingTransport) Publish(_ context.Context, m Outbound) error {
	r.mu.Lock()
	r.published = append(r.published, m)
	r.mu.Unlock()
	return nil
}

// FuzzServerDispatch feeds arbitrary topics and payloads to a gateway's
// dispatch (Route, routing, OpenRouted, reply-to check, handler, reply). It must never
// panic, run the handler only for the genuine seed request (once), and
// publish only to the caller's own reply topic.
func FuzzServerDispatch(f *testing.F) {
	secret := bytes.Repeat([]byte{1}, 32)
	key, err := envelope.NewHMACKey(secret)
	if err != nil {
		f.Fatal(err)
	}
	edKey := ed25519.NewKeyFromSeed(bytes.Repeat([]byte{2}, 32))
	signer, err := envelope.NewEd25519Signer(edKey)
	if err != nil {
		f.Fatal(err)
	}
	verifier, err := envelope.NewEd25519Verifier(edKey.Public().(ed25519.PublicKey))
	if err != nil {
		f.Fatal(err)
	}
	peer := &Peer{
		Peer: envelope.Peer{ID: "client", HMACKeys: []*envelope.HMACKey{key}, Verifiers: []envelope.Verifier{verifier},
			Policy: envelope.Policy{Require: envelope.HMAC}},
		Send: Protection{HMAC: key},
	}
	// Everything about the genuine request is fixed, so that every fuzzing
	// process builds the same bytes.
	now := time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)
	clock := func() time.Time { return now }
	sealer := &envelope.Sealer{ID: "client", Counter: envelope.NewMemoryCounter(100), Now: clock}
	genuine, err := sealer.Seal(&envelope.Params{Kind: envelope.Request, To: []string{"gateway"}, Topic: "get-card",
		ReplyTo: "mqttsec/client/reply", CorrelationID: []byte("fixed-correlation"), HMAC: key, Signer: signer}, []byte("42"))
	if err != nil {
		f.Fatal(err)
	}
	f.Add("mqttsec/gateway/req/get-card", genuine.Bytes)
	f.Add("mqttsec/gateway/req/delete-card", genuine.Bytes)
	f.Add("mqttsec/client/reply", genuine.Bytes)
	f.Add("mqttsec/gateway/req/get-card", []byte(`{"v":1,"h":"e30","p":""}`))
	f.Add("mqttsec/other/evt/x", []byte("junk"))

	f.Fuzz(func(t *testing.T, topic string, payload []byte) {
		ring, err := NewKeyring(Own{}, peer)
		if err != nil {
			t.Fatal(err)
		}
		tr := &recordingTransport{}
		s, err := NewServer(ServerConfig{Config: Config{ID: "gateway", Transport: tr, Keyring: ring, Now: clock}})
		if err != nil {
			t.Fatal(err)
		}
		var runs atomic.Int64
		s.HandleFunc("get-card", func(ctx context.Context, r *Request) ([]byte, error) {
			runs.Add(1)
			return []byte("ok"), nil
		})
		s.ctx, s.cancel = context.WithCancel(context.Background())
		defer s.cancel()
		// What envelope.Route refuses, enqueue refuses before the queue;
		// the rest is queued with what Route read.
		if r, err := envelope.Route(payload, 0); err == nil {
			q := queued{in: Inbound{Topic: topic, Payload: payload}, routed: r}
			s.route(q)
			s.route(q) // a duplicate delivery
		}
		s.sends.Wait() // the replies' publishes
		onTopic := topic == "mqttsec/gateway/req/get-card"
		isGenuine := onTopic && bytes.Equal(payload, genuine.Bytes)
		n := runs.Load()
		if (isGenuine && n != 1) || (!isGenuine && n != 0) {
			t.Fatalf("handler ran %d times for %q on %q", n, payload, topic)
		}
		// Only the one run of the handler is answered: nothing else opens.
		if len(tr.published) != int(n) {
			t.Fatalf("%d replies published for %d handler runs", len(tr.published), n)
		}
		for _, p := range tr.published {
			if p.Topic != "mqttsec/client/reply" {
				t.Fatalf("published to %q", p.Topic)
			}
		}
	})
}
