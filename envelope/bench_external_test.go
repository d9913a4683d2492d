package envelope_test

import (
	"context"
	"crypto/rand"
	"fmt"
	"testing"

	"github.com/mqttsec/mqttsec/envelope"
	"github.com/mqttsec/mqttsec/internal/benchsuite"
)

// BenchmarkEnvelope measures, for each suite with 256-byte and 4 KiB payloads, Seal
// and Open next to the bare primitives that suite cannot avoid (the same
// operations on the same sizes, with no envelope around them; see
// benchsuite.Primitives). seal/seal-primitives and open/open-primitives is
// the envelope's overhead. examples/bench prints the same rows as a table.
func BenchmarkEnvelope(b *testing.B) {
	from, err := benchsuite.NewKeys(nil)
	if err != nil {
		b.Fatal(err)
	}
	to, err := benchsuite.NewKeys(from)
	if err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	for _, size := range []int{256, 4096} {
		payload := make([]byte, size)
		rand.Read(payload)
		for _, s := range benchsuite.Suites() {
			sealer := &envelope.Sealer{ID: "client", Counter: envelope.NewClockCounter()}
			p := &envelope.Params{Kind: envelope.Request, To: []string{"gateway"}, Topic: "get-card", ReplyTo: "mqttsec/client/reply"}
			s.Apply(from, to, p)
			sealed, err := sealer.Seal(p, payload)
			if err != nil {
				b.Fatal(err)
			}
			keys, err := envelope.NewKeys(to.Identities, s.Peer("client", from))
			if err != nil {
				b.Fatal(err)
			}
			o := &envelope.Opener{ID: "gateway", Keys: keys, Replay: benchsuite.AdmitAll{}}
			expect := &envelope.Expect{Kinds: envelope.Request}
			if _, err := o.Open(ctx, sealed.Bytes, expect); err != nil {
				b.Fatal(err)
			}
			e, _ := envelope.Parse(sealed.Bytes)
			primSeal, primOpen := benchsuite.Primitives(s, from, to, e.SigningInput(), payload, e.HeaderText())
			for _, row := range []struct {
				name string
				f    func()
			}{
				{"seal", func() { sealer.Seal(p, payload) }},
				{"primitives-seal", primSeal},
				{"open", func() { o.Open(ctx, sealed.Bytes, expect) }},
				{"primitives-open", primOpen},
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
