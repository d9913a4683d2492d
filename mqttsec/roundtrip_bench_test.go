package mqttsec_test

import (
	"context"
	"fmt"
	"runtime"
	"strings"
	"testing"

	"github.com/mqttsec/mqttsec/internal/benchsuite"
	"github.com/mqttsec/mqttsec/internal/cli"
	"github.com/mqttsec/mqttsec/internal/testbroker"
)

// BenchmarkRoundTrip measures request/reply over the embedded broker, for
// both transports: plain Paho (the same client library, QoS 1, topics and
// 256-byte payload, no security) next to mqttsec with each symmetric and
// public-key suite of examples/bench. "plain-envelope-size" is plain Paho
// carrying as many bytes as an HMAC request envelope of that payload: the
// cost of the envelope's size alone. Names ending in @v2 seal binary
// envelopes (envelope.Version2) and in @v3 compact ones (Version3);
// "plain-envelope-size@v2" and "@v3" carry a binary or compact HMAC
// envelope's length. The "hmac-floor" rows carry the same bytes as the
// sized rows of their form and run HMAC's bare primitives where a round
// trip runs them, with no envelope or SDK: the least the format costs (see
// benchsuite.FloorPair). "ed25519-floor" and "ed25519-floor@v3" do the
// same for Ed25519's envelope and primitives. "sequential" is one request at a time
// (ns/op is the latency); "inflight64" keeps 64 requests outstanding (ns/op
// is the inverse of the throughput). Allocations count the whole process:
// broker, responder and requester.
//
//	go test -run '^$' -bench RoundTrip -benchmem ./mqttsec
func BenchmarkRoundTrip(b *testing.B) {
	broker, err := testbroker.Start("127.0.0.1:0", nil)
	if err != nil {
		b.Fatal(err)
	}
	defer broker.Close()
	gwKeys, clKeys, err := benchsuite.NewKeyPair()
	if err != nil {
		b.Fatal(err)
	}
	suites := benchsuite.SuitesByName()
	payload := make([]byte, 256)
	ctx := context.Background()
	for _, proto := range []int{3, 5} {
		conn := cli.Conn{Broker: broker.URL(), Protocol: proto}
		for _, name := range []string{"plain", "plain-envelope-size", "hmac-floor", "hmac", "psk", "hmac+psk", "ed25519-floor", "ed25519", "ed25519+hpke-x25519",
			"plain-envelope-size@v2", "hmac-floor@v2", "hmac@v2", "psk@v2", "hmac+psk@v2",
			"plain-envelope-size@v3", "hmac-floor@v3", "hmac@v3", "psk@v3", "hmac+psk@v3", "ed25519-floor@v3", "ed25519@v3"} {
			b.Run(fmt.Sprintf("v%d/%s", proto, name), func(b *testing.B) {
				var pair *benchsuite.Pair
				var err error
				switch name {
				case "plain":
					pair, err = benchsuite.PlainPair(ctx, conn.Transport)
				case "plain-envelope-size", "plain-envelope-size@v2", "plain-envelope-size@v3":
					if pair, err = benchsuite.PlainPair(ctx, conn.Transport); err == nil {
						hmac := suites["hmac"+strings.TrimPrefix(name, "plain-envelope-size")]
						pair.Request, _, err = benchsuite.EnvelopeSized(pair.Request, hmac, clKeys, gwKeys, payload)
					}
				case "hmac-floor", "hmac-floor@v2", "hmac-floor@v3", "ed25519-floor", "ed25519-floor@v3":
					base, form, _ := strings.Cut(name, "-floor")
					pair, _, err = benchsuite.FloorPair(ctx, conn.Transport, suites[base+form], clKeys, gwKeys, payload)
				default:
					pair, err = benchsuite.SecuredPair(ctx, conn.Transport, suites[name], gwKeys, clKeys)
				}
				if err != nil {
					b.Fatal(err)
				}
				defer pair.Close()
				b.Run("sequential", func(b *testing.B) {
					b.ReportAllocs()
					for b.Loop() {
						if err := pair.Request(ctx, payload); err != nil {
							b.Fatal(err)
						}
					}
				})
				b.Run("inflight64", func(b *testing.B) {
					b.ReportAllocs()
					b.SetParallelism(max(1, 64/runtime.GOMAXPROCS(0)))
					b.RunParallel(func(pb *testing.PB) {
						for pb.Next() {
							if err := pair.Request(ctx, payload); err != nil {
								b.Error(err)
								return
							}
						}
					})
				})
			})
		}
	}
}
