package envelope

import (
	"encoding/hex"
	"encoding/json"
	"os"
	"path/filepath"
	"testing"
)

// TestVectorsFollowTheSpec recomputes, for every accepted vector, the digest,
// the authenticated block, the MAC, the signature and the pre-shared-key
// decryption from SPEC.md §4 with the independent reading in specref_test.go
// (the standard library, no code of this package), so that the
// specification, the vectors and the implementation cannot drift apart
// unnoticed. It is what a port to another language does first.
func TestVectorsFollowTheSpec(t *testing.T) {
	keys := readSpecKeys(t)
	files, err := filepath.Glob(filepath.Join("testdata", "vectors", "[0-9]*.json"))
	if err != nil {
		t.Fatal(err)
	}
	checked := map[string]int{}
	for _, f := range files {
		var v struct {
			Name, Result, Envelope, EnvelopeHex, Digest string
		}
		readJSON(t, f, &v)
		if v.Result != "ok" {
			continue
		}
		t.Run(v.Name, func(t *testing.T) {
			data := []byte(v.Envelope)
			if v.EnvelopeHex != "" {
				if data, err = hex.DecodeString(v.EnvelopeHex); err != nil {
					t.Fatal(err)
				}
			}
			d, verified, err := keys.check(data)
			if err != nil {
				t.Fatal(err)
			}
			if v.Digest != "" && v.Digest != keys.strict.EncodeToString(d[:]) {
				t.Error("digest field is not SHA-256 of the signing input")
			}
			for _, alg := range verified {
				checked[alg]++
			}
			if v.EnvelopeHex != "" {
				checked["binary"]++
			}
		})
	}
	for _, alg := range []string{"HS256", "Ed25519", "ES256", "PS256", "RS256", "A256GCM", "binary"} {
		if checked[alg] == 0 {
			t.Errorf("no accepted vector uses %s", alg) // "binary": the form of SPEC.md §13
		}
	}
}

func readJSON(t *testing.T, path string, v any) {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(data, v); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
}
