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
// cost of the envelope's size alone. The "hmac-floor" row carries the same
// bytes as the sized row and runs HMAC's bare primitives where a round trip
// runs them, with no envelope or SDK: the least the format costs (see
// benchsuite.FloorPair). "ed25519-floor" does the same for Ed25519's
// envelope and primitives. "sequential" is one request at a time
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
		for _, name := range []string{"plain", "plain-envelope-size", "hmac-floor", "hmac", "psk", "hmac+psk", "ed25519-floor", "ed25519", "ed25519+hpke-x25519"} {
			b.Run(fmt.Sprintf("v%d/%s", proto, name), func(b *testing.B) {
				var pair *benchsuite.Pair
				var err error
				switch name {
				case "plain":
					pair, err = benchsuite.PlainPair(ctx, conn.Transport)
				case "plain-envelope-size":
					if pair, err = benchsuite.PlainPair(ctx, conn.Transport); err == nil {
						pair.Request, _, err = benchsuite.EnvelopeSized(pair.Request, suites["hmac"], clKeys, gwKeys, payload)
					}
				case "hmac-floor", "ed25519-floor":
					pair, _, err = benchsuite.FloorPair(ctx, conn.Transport, suites[strings.TrimSuffix(name, "-floor")], clKeys, gwKeys, payload)
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
