package benchsuite

import (
	"sync"
	"testing"

	"github.com/mqttsec/mqttsec/envelope"
)

// recordingVerifier passes verification on to its Verifier and records
// which signatures it was given and how many of them failed.
type recordingVerifier struct {
	envelope.Verifier
	mu      sync.Mutex
	sigs    map[string]bool
	invalid int
}

func (r *recordingVerifier) Verify(msg, sig []byte) error {
	err := r.Verifier.Verify(msg, sig)
	r.mu.Lock()
	defer r.mu.Unlock()
	r.sigs[string(sig)] = true
	if err != nil {
		r.invalid++
	}
	return err
}

func (r *recordingVerifier) reset() {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.sigs, r.invalid = map[string]bool{}, 0
}

// For every kind of signature, the primitives' open and a Case's Open
// verify Variants different valid signatures in turn, never one over and
// over.
func TestOpenVerifiesVariedSignatures(t *testing.T) {
	gw, cl, err := NewKeyPair()
	if err != nil {
		t.Fatal(err)
	}
	suites := SuitesByName()
	for _, name := range []string{"ed25519", "es256@v2", "ps256@v3", "ed25519+hpke-x25519@v3"} {
		t.Run(name, func(t *testing.T) {
			s := suites[name]
			p := &envelope.Params{}
			s.Apply(cl, gw, p)
			rec := &recordingVerifier{}
			from := *cl
			from.Verifiers = nil
			for _, v := range cl.Verifiers {
				if v.KeyID() == p.Signer.KeyID() && v.Algorithm() == p.Signer.Algorithm() {
					rec.Verifier = v
					v = rec
				}
				from.Verifiers = append(from.Verifiers, v)
			}
			rec.reset()
			c, err := NewCase(s, &from, gw, make([]byte, 256))
			if err != nil {
				t.Fatal(err)
			}
			for _, open := range []struct {
				name string
				f    func()
			}{{"primitives", c.PrimOpen}, {"envelope", c.Open}} {
				rec.reset()
				for range 3 * Variants {
					open.f()
				}
				if len(rec.sigs) != Variants || rec.invalid != 0 {
					t.Errorf("%s open: %d different signatures in %d calls, %d invalid; want %d, all valid",
						open.name, len(rec.sigs), 3*Variants, rec.invalid, Variants)
				}
			}
		})
	}
}

// Keys that cannot run a suite are an error from Primitives, not a panic
// when the primitives run.
func TestPrimitivesRefuseMissingKeys(t *testing.T) {
	gw, cl, err := NewKeyPair()
	if err != nil {
		t.Fatal(err)
	}
	suites := SuitesByName()
	noVerifiers, noIdentities := *cl, *gw
	noVerifiers.Verifiers, noIdentities.Identities = nil, nil
	for _, tt := range []struct {
		suite    string
		from, to *Keys
	}{
		{"ed25519", &noVerifiers, gw},
		{"ed25519+hpke-x25519@v3", cl, &noIdentities},
	} {
		if _, _, err := Primitives(suites[tt.suite], tt.from, tt.to, []byte("signing input"), nil, nil); err == nil {
			t.Errorf("%s with a key missing: no error", tt.suite)
		}
	}
}
