//go:build !race

package envelope_test

import (
	"context"
	"testing"

	"github.com/mqttsec/mqttsec/envelope"
	"github.com/mqttsec/mqttsec/internal/benchsuite"
)

// TestAllocations holds Seal and Open of the symmetric suites, in every
// form, to the allocations they make per message (a 256-byte payload): an
// allocation added to the hot path fails here instead of going unnoticed in
// a benchmark. The race detector changes allocation counts, so this file
// is left out of race builds.
func TestAllocations(t *testing.T) {
	gwKeys, clKeys, err := benchsuite.NewKeyPair()
	if err != nil {
		t.Fatal(err)
	}
	suites := benchsuite.SuitesByName()
	for _, tt := range []struct {
		suite      string
		seal, open float64
	}{
		{"hmac", 3, 3},
		{"psk", 5, 4},
		{"hmac+psk", 5, 4},
		{"hmac+hotp", 15, 15}, // most of them in pquerna/otp, computing and checking the code
		{"hmac@v2", 3, 3},
		{"psk@v2", 4, 4},
		{"hmac+psk@v2", 4, 4},
		{"hmac+hotp@v2", 15, 15},
		{"hmac@v3", 3, 3},
		{"psk@v3", 4, 4},
		{"hmac+psk@v3", 4, 4},
		{"hmac+hotp@v3", 15, 15},
	} {
		t.Run(tt.suite, func(t *testing.T) {
			s, ok := suites[tt.suite]
			if !ok {
				t.Fatalf("no suite %q", tt.suite)
			}
			sealer := &envelope.Sealer{ID: "client", Counter: envelope.NewClockCounter()}
			p := &envelope.Params{Kind: envelope.Request, To: []string{"gateway"}, Topic: "get-card", ReplyTo: "mqttsec/client/reply"}
			s.Apply(clKeys, gwKeys, p)
			keys, err := envelope.NewKeys(gwKeys.Identities, s.Peer("client", clKeys))
			if err != nil {
				t.Fatal(err)
			}
			opener := &envelope.Opener{ID: "gateway", Keys: keys, Replay: benchsuite.AdmitAll{}}
			payload := make([]byte, 256)
			var sealed *envelope.Sealed
			var failed error
			seal := testing.AllocsPerRun(100, func() {
				var err error
				if sealed, err = sealer.Seal(p, payload); err != nil {
					failed = err
				}
			})
			// Sealed into a buffer reused from one message to the next, the
			// envelope takes no allocation of its own.
			buf := make([]byte, 0, 4096)
			sealInto := testing.AllocsPerRun(100, func() {
				if _, err := sealer.SealInto(buf, p, payload); err != nil {
					failed = err
				}
			})
			open := testing.AllocsPerRun(100, func() {
				if _, err := opener.Open(context.Background(), sealed.Bytes, &envelope.Expect{Kinds: envelope.Request}); err != nil {
					failed = err
				}
			})
			if failed != nil {
				t.Fatal(failed)
			}
			if seal > tt.seal || sealInto > tt.seal-1 || open > tt.open {
				t.Errorf("allocations per message: seal %v, seal into a buffer %v, open %v; want at most %v, %v and %v",
					seal, sealInto, open, tt.seal, tt.seal-1, tt.open)
			}
		})
	}
}
