package mqttsec_test

import (
	"bytes"
	"context"
	"testing"
	"time"

	"github.com/mqttsec/mqttsec/envelope"
	"github.com/mqttsec/mqttsec/internal/hostile"
	"github.com/mqttsec/mqttsec/mqttsec"
)

// TestResponseProperties: on MQTT v5, requests carry ResponseTopic and
// CorrelationData, and replies CorrelationData, exactly when
// Config.ResponseProperties asks for them; the values are the envelope's.
func TestResponseProperties(t *testing.T) {
	for _, on := range []bool{false, true} {
		name := "off"
		if on {
			name = "on"
		}
		t.Run(name, func(t *testing.T) {
			hb, err := hostile.Start()
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { hb.Close() })
			k := getKeys()
			prot := mqttsec.Protection{HMAC: k.hmac}
			gwRing := mustT(mqttsec.NewKeyring(mqttsec.Own{}, peerOf(k, "client", k.client, envelope.HMAC, prot)))
			gw := mustT(mqttsec.NewServer(mqttsec.ServerConfig{Config: mqttsec.Config{ID: "gateway", Keyring: gwRing,
				Transport: transport(t, 5, hb.URL(), "gateway", nil), ResponseProperties: on}}))
			gw.HandleFunc("get-card", func(ctx context.Context, r *mqttsec.Request) ([]byte, error) { return r.Payload, nil })
			clRing := mustT(mqttsec.NewKeyring(mqttsec.Own{}, peerOf(k, "gateway", k.gateway, envelope.HMAC, prot)))
			cl := mustT(mqttsec.NewClient(mqttsec.Config{ID: "client", Keyring: clRing,
				Transport: transport(t, 5, hb.URL(), "client", nil), ResponseProperties: on}))
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			for _, start := range []func(context.Context) error{gw.Start, cl.Start} {
				if err := start(ctx); err != nil {
					t.Fatal(err)
				}
			}
			t.Cleanup(func() { cl.Close(context.Background()); gw.Close(context.Background()) })
			if out, err := cl.Request(ctx, "gateway", "get-card", []byte("x")); err != nil || string(out) != "x" {
				t.Fatalf("Request: %q, %v", out, err)
			}
			reqs, replies := hb.Seen(reqTopic), hb.Seen(replyTopic)
			if len(reqs) != 1 || len(replies) != 1 {
				t.Fatalf("broker saw %d requests and %d replies, want 1 and 1", len(reqs), len(replies))
			}
			h, err := envelope.Peek(reqs[0].Payload, 0)
			if err != nil {
				t.Fatal(err)
			}
			if !on {
				if reqs[0].ResponseTopic != "" || reqs[0].CorrelationData != nil || replies[0].CorrelationData != nil {
					t.Fatalf("properties sent while off: %q %x %x", reqs[0].ResponseTopic, reqs[0].CorrelationData, replies[0].CorrelationData)
				}
				return
			}
			if reqs[0].ResponseTopic != h.ReplyTo || !bytes.Equal(reqs[0].CorrelationData, h.CorrelationID) {
				t.Fatalf("request properties %q %x, envelope says %q %x", reqs[0].ResponseTopic, reqs[0].CorrelationData, h.ReplyTo, h.CorrelationID)
			}
			if !bytes.Equal(replies[0].CorrelationData, h.CorrelationID) {
				t.Fatalf("reply CorrelationData %x, want %x", replies[0].CorrelationData, h.CorrelationID)
			}
		})
	}
}
