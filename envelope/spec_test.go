package envelope

import (
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
			Name, Result, Envelope, Digest string
		}
		readJSON(t, f, &v)
		if v.Result != "ok" {
			continue
		}
		t.Run(v.Name, func(t *testing.T) {
			d, verified, err := keys.check([]byte(v.Envelope))
			if err != nil {
				t.Fatal(err)
			}
			if v.Digest != "" && v.Digest != keys.strict.EncodeToString(d[:]) {
				t.Error("digest field is not SHA-256 of the signing input")
			}
			for _, alg := range verified {
				checked[alg]++
			}
		})
	}
	for _, alg := range []string{"HS256", "Ed25519", "ES256", "PS256", "RS256", "A256GCM"} {
		if checked[alg] == 0 {
			t.Errorf("no accepted vector uses %s", alg)
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
