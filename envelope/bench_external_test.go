package envelope_test

import (
	"crypto/rand"
	"fmt"
	"testing"

	"github.com/mqttsec/mqttsec/internal/benchsuite"
)

// BenchmarkEnvelope measures, for each suite with 256-byte and 4 KiB payloads, in
// every envelope version (the binary and compact ones named with
// benchsuite.BinarySuffix and benchsuite.CompactSuffix), Seal
// and Open next to the bare primitives that suite cannot avoid (the same
// operations on the same sizes, with no envelope around them; see
// benchsuite.Primitives). seal/seal-primitives and open/open-primitives is
// the envelope's overhead. examples/bench prints the same rows as a table.
func BenchmarkEnvelope(b *testing.B) {
	to, from, err := benchsuite.NewKeyPair()
	if err != nil {
		b.Fatal(err)
	}
	for _, size := range []int{256, 4096} {
		payload := make([]byte, size)
		rand.Read(payload)
		for _, s := range benchsuite.AllSuites() {
			c, err := benchsuite.NewCase(s, from, to, payload)
			if err != nil {
				b.Fatal(err)
			}
			for _, row := range []struct {
				name string
				f    func()
			}{
				{"seal", c.Seal},
				{"primitives-seal", c.PrimSeal},
				{"open", c.Open},
				{"primitives-open", c.PrimOpen},
			} {
				b.Run(fmt.Sprintf("%s/%d/%s", s.Name, size, row.name), func(b *testing.B) {
					b.ReportAllocs()
					for b.Loop() {
						row.f()
					}
				})
			}
		}
	}
}
