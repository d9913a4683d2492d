package mqttsec_test

import (
	"context"
	"testing"

	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"

	"github.com/mqttsec/mqttsec/internal/benchsuite"
	"github.com/mqttsec/mqttsec/mqttsec"
)

// BenchmarkInProcessRoundTrip measures what mqttsec's own code costs a
// sequential request/reply, with no broker or network to add their time
// and noise: each pair talks over a benchsuite.MemoryBus of its own.
// "floor" is benchsuite.FloorPair over such a bus: the same hand-offs
// between goroutines, the suite's envelope length, and only its bare
// primitives. secured ÷ floor is the envelope code and the SDK around the
// primitives. "instrumented" is secured with OpenTelemetry SDK meter and
// tracer providers on both sides (metrics read by no one, every span
// sampled and dropped): instrumented ÷ secured is what the metrics and
// spans cost when an application installs an SDK.
//
//	go test -run '^$' -bench InProcessRoundTrip -benchmem ./mqttsec
func BenchmarkInProcessRoundTrip(b *testing.B) {
	gwKeys, clKeys, err := benchsuite.NewKeyPair()
	if err != nil {
		b.Fatal(err)
	}
	suites := benchsuite.SuitesByName()
	payload := make([]byte, 256)
	ctx := context.Background()
	for _, name := range []string{"hmac", "psk", "ed25519"} {
		for _, kind := range []string{"secured", "instrumented", "floor"} {
			b.Run(name+"/"+kind, func(b *testing.B) {
				var pair *benchsuite.Pair
				var err error
				switch kind {
				case "secured":
					pair, err = benchsuite.SecuredPair(ctx, benchsuite.NewMemoryBus().Dial, suites[name], gwKeys, clKeys)
				case "instrumented":
					mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(sdkmetric.NewManualReader()))
					tp := sdktrace.NewTracerProvider()
					defer mp.Shutdown(ctx)
					defer tp.Shutdown(ctx)
					pair, err = benchsuite.SecuredPairWith(ctx, benchsuite.NewMemoryBus().Dial, suites[name], gwKeys, clKeys,
						func(c *mqttsec.Config) { c.MeterProvider, c.TracerProvider = mp, tp })
				default:
					pair, _, err = benchsuite.FloorPair(ctx, benchsuite.NewMemoryBus().Dial, suites[name], clKeys, gwKeys, payload)
				}
				if err != nil {
					b.Fatal(err)
				}
				defer pair.Close()
				b.ReportAllocs()
				for b.Loop() {
					if err := pair.Request(ctx, payload); err != nil {
						b.Fatal(err)
					}
				}
			})
		}
	}
}
