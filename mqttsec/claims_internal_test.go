package mqttsec

import (
	"context"
	"crypto/rand"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"testing"

	"github.com/mqttsec/mqttsec/envelope"
)

// claimsWorld is a gateway with one peer, "client" (HMAC), fed messages
// by hand: enqueue, then a worker's route for what was queued.
type claimsWorld struct {
	s   *Server
	key *envelope.HMACKey // the client's
	out *logLines
}

func newClaimsWorld(t testing.TB, interval int) *claimsWorld {
	t.Helper()
	key := newTestHMACKey(t)
	ring, err := NewKeyring(Own{}, &Peer{Peer: envelope.Peer{ID: "client", HMACKeys: []*envelope.HMACKey{key}}, Send: Protection{HMAC: key}})
	if err != nil {
		t.Fatal(err)
	}
	out := &logLines{}
	log := slog.New(slog.NewTextHandler(out, &slog.HandlerOptions{
		ReplaceAttr: func(_ []string, a slog.Attr) slog.Attr {
			if a.Key == slog.TimeKey {
				return slog.Attr{}
			}
			return a
		},
	}))
	s, err := NewServer(ServerConfig{Config: Config{ID: "gateway", Transport: &recordingTransport{}, Keyring: ring,
		Logger: log, RejectLogInterval: 0, Workers: 1}})
	if err != nil {
		t.Fatal(err)
	}
	if interval < 0 {
		s.rejects.interval = -1
	}
	s.queue = make(chan queued, 16)
	s.ctx, s.cancel = context.WithCancel(context.Background())
	s.intake, s.stopIntake = context.WithCancel(s.ctx)
	t.Cleanup(s.cancel)
	return &claimsWorld{s: s, key: key, out: out}
}

func newTestHMACKey(t testing.TB) *envelope.HMACKey {
	t.Helper()
	secret := make([]byte, 32)
	rand.Read(secret)
	key, err := envelope.NewHMACKey(secret)
	if err != nil {
		t.Fatal(err)
	}
	return key
}

// deliver hands payload to the gateway as the transport would, and routes
// what is queued as a worker would.
func (w *claimsWorld) deliver(payload []byte) {
	w.s.enqueue(Inbound{Topic: "mqttsec/gateway/req/m", Payload: payload})
	for len(w.s.queue) > 0 {
		q := <-w.s.queue
		w.s.route(q)
		w.s.arrivals.decide(q.arrival)
	}
}

func sealRequest(t testing.TB, from string, key *envelope.HMACKey) []byte {
	t.Helper()
	s := &envelope.Sealer{ID: from, Counter: envelope.NewClockCounter()}
	m, err := s.Seal(&envelope.Params{Kind: envelope.Request, To: []string{"gateway"}, Topic: "m",
		ReplyTo: "mqttsec/" + from + "/reply", HMAC: key}, []byte("x"))
	if err != nil {
		t.Fatal(err)
	}
	return m.Bytes
}

// attr is the value of key in a slog text line, and whether it is there.
func attr(line, key string) (string, bool) {
	_, v, ok := strings.Cut(" "+line, " "+key+"=")
	if !ok {
		return "", false
	}
	if strings.HasPrefix(v, `"`) {
		end := strings.Index(v[1:], `"`)
		return v[1 : 1+end], true
	}
	v, _, _ = strings.Cut(v, " ")
	return v, true
}

// A refusal's line says what the refused message's header claims — its
// sender, kind and key ids, under names that say they are unverified —
// when the header reads, and nothing of it when it does not.
func TestRefusalLogsClaims(t *testing.T) {
	mallory := newTestHMACKey(t)
	tests := []struct {
		name    string
		payload func(t *testing.T, w *claimsWorld) []byte
		class   string
		from    string // claimed_from; "" means absent, and so kind and claimed_keys
		keys    func(w *claimsWorld) string
	}{
		{name: "wrong HMAC from a peer", class: StatAuthentication, from: "client",
			payload: func(t *testing.T, w *claimsWorld) []byte {
				m := sealRequest(t, "client", w.key)
				m[len(m)-5] ^= 1 // the HMAC tag's last byte (the signature is empty)
				return m
			},
			keys: func(w *claimsWorld) string { return "HS256:" + w.key.KeyID().String() }},
		{name: "malformed", class: StatMalformed,
			payload: func(*testing.T, *claimsWorld) []byte { return []byte("junk") }},
		{name: "empty", class: StatMalformed,
			payload: func(*testing.T, *claimsWorld) []byte { return nil }},
		{name: "unknown sender", class: StatUnknownKey, from: "mallory",
			payload: func(t *testing.T, _ *claimsWorld) []byte { return sealRequest(t, "mallory", mallory) },
			keys:    func(*claimsWorld) string { return "HS256:" + mallory.KeyID().String() }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w := newClaimsWorld(t, 0)
			w.deliver(tt.payload(t, w))
			lines := w.out.lines()
			if len(lines) != 1 {
				t.Fatalf("%d lines, want 1:\n%s", len(lines), w.out)
			}
			line := lines[0]
			t.Log(line)
			if msg, _ := attr(line, "msg"); msg != "mqttsec: message refused" {
				t.Fatalf("msg %q in %s", msg, line)
			}
			if class, _ := attr(line, "class"); class != tt.class {
				t.Fatalf("class %q, want %q: %s", class, tt.class, line)
			}
			if topic, _ := attr(line, "topic"); topic != "mqttsec/gateway/req/m" {
				t.Fatalf("topic %q: %s", topic, line)
			}
			from, ok := attr(line, "claimed_from")
			if tt.from == "" {
				for _, key := range []string{"claimed_from", "kind", "claimed_keys"} {
					if _, ok := attr(line, key); ok {
						t.Fatalf("%s logged for a header that does not read: %s", key, line)
					}
				}
				return
			}
			if !ok || from != tt.from {
				t.Fatalf("claimed_from %q (%v), want %q: %s", from, ok, tt.from, line)
			}
			if kind, _ := attr(line, "kind"); kind != envelope.Request.String() {
				t.Fatalf("kind %q, want %q: %s", kind, envelope.Request, line)
			}
			if keys, _ := attr(line, "claimed_keys"); keys != tt.keys(w) {
				t.Fatalf("claimed_keys %q, want %q: %s", keys, tt.keys(w), line)
			}
		})
	}
}

// A flood of forgeries claiming ever new senders is logged in one line
// with the first one's claims, and the reject log keeps one kind for it,
// not one per claimed sender.
func TestRefusalClaimsKeepKindsBounded(t *testing.T) {
	const flood = 100
	w := newClaimsWorld(t, 0)
	key := newTestHMACKey(t)
	for i := range flood {
		w.deliver(sealRequest(t, fmt.Sprintf("stranger-%d", i), key))
	}
	if got := w.s.Stats()[StatUnknownKey]; got != flood {
		t.Fatalf("%d counted, want %d", got, flood)
	}
	lines := w.out.lines()
	if len(lines) != 1 {
		t.Fatalf("%d lines, want 1:\n%s", len(lines), w.out)
	}
	if from, _ := attr(lines[0], "claimed_from"); from != "stranger-0" {
		t.Fatalf("claimed_from %q, want stranger-0: %s", from, lines[0])
	}
	if n := len(w.s.rejects.kinds); n != 1 {
		t.Fatalf("%d kinds kept, want 1", n)
	}
	w.out.Reset()
	w.s.rejects.Close()
	if lines := w.out.lines(); len(lines) != 1 || !strings.Contains(lines[0], fmt.Sprintf("suppressed=%d", flood-1)) {
		t.Fatalf("at Close:\n%s", w.out)
	}
}

// claimedKeys lists at most maxClaimedKeys keys, then how many more.
func TestClaimedKeysBounded(t *testing.T) {
	var id envelope.KeyID
	keys := make([]envelope.KeyRef, 67)
	for i := range keys {
		keys[i] = envelope.KeyRef{Algorithm: envelope.HS256, ID: id}
	}
	got := claimedKeys(keys)
	one := "HS256:" + id.String()
	want := strings.Repeat(one+",", maxClaimedKeys) + "+59 more"
	if got != want {
		t.Fatalf("claimedKeys:\n%s\nwant:\n%s", got, want)
	}
	if got := claimedKeys(keys[:1]); got != one {
		t.Fatalf("one key: %q, want %q", got, one)
	}
}

// A refused forgery's cost, once it was routed: the throttled case (a
// flood, where most refusals are only counted) must not read the header
// again, nor allocate more than it did before the claims were logged.
//
//	go test -run '^$' -bench RefusalClaims -benchmem ./mqttsec
func BenchmarkRefusalClaims(b *testing.B) {
	for _, tc := range []struct {
		name     string
		interval int
	}{{"every-refusal", -1}, {"throttled", 0}} {
		b.Run(tc.name, func(b *testing.B) {
			w := newClaimsWorld(b, tc.interval)
			w.s.rejects.log = slog.New(slog.NewTextHandler(io.Discard, nil))
			m := sealRequest(b, "client", w.key)
			m[len(m)-5] ^= 1
			in := Inbound{Topic: "mqttsec/gateway/req/m", Payload: m}
			r, err := envelope.Route(m, 0)
			if err != nil {
				b.Fatal(err)
			}
			b.ReportAllocs()
			for b.Loop() {
				w.s.rejectRouted(in, envelope.ErrAuthentication, r)
			}
		})
	}
}
