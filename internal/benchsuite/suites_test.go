package benchsuite

import (
	"bytes"
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
	for _, name := range []string{"ed25519", "es256", "ps256", "ed25519+hpke-x25519", "ps256+rsa-oaep"} {
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
		{"ed25519+hpke-x25519", cl, &noIdentities},
	} {
		if _, _, err := Primitives(suites[tt.suite], tt.from, tt.to, []byte("signing input"), nil, nil); err == nil {
			t.Errorf("%s with a key missing: no error", tt.suite)
		}
	}
}

// A Case's primitives run over its envelope's signing input and associated
// data: the prefix and the envelope up to the end of the payload, and the
// envelope up to the end of the header.
func TestFrameParts(t *testing.T) {
	gw, cl, err := NewKeyPair()
	if err != nil {
		t.Fatal(err)
	}
	payload := []byte("a payload of some length")
	sealed, err := (&envelope.Sealer{ID: "client", Counter: envelope.NewClockCounter()}).Seal(
		&envelope.Params{Kind: envelope.Request, To: []string{"gateway"}, Topic: "get-card", ReplyTo: "r", HMAC: cl.HMAC}, payload)
	if err != nil {
		t.Fatal(err)
	}
	env := sealed.Bytes
	si, aad, err := frameParts(env)
	if err != nil {
		t.Fatal(err)
	}
	// The HMAC tag (32 bytes) and an empty signature follow the payload.
	if want := append([]byte(signingInputPrefix), env[:len(env)-4-32-4]...); !bytes.Equal(si, want) {
		t.Errorf("signing input %x, want %x", si, want)
	}
	if !bytes.HasSuffix(si, payload) {
		t.Error("the signing input does not end with the payload")
	}
	if want := env[:len(env)-4-32-4-len(payload)-4]; !bytes.Equal(aad, want) {
		t.Errorf("associated data %x, want %x", aad, want)
	}
	if _, _, err := frameParts(env[:len(env)-1]); err == nil {
		t.Error("a cut envelope has parts")
	}
	// Every suite makes a case, named once.
	names := map[string]bool{}
	for _, s := range Suites() {
		if names[s.Name] {
			t.Errorf("two suites named %s", s.Name)
		}
		names[s.Name] = true
		if _, err := NewCase(s, cl, gw, payload); err != nil {
			t.Errorf("%s: %v", s.Name, err)
		}
	}
}
