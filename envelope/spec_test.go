package envelope

import (
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
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
				checked[fmt.Sprintf("version %d", data[0])]++
			}
		})
	}
	for _, alg := range []string{"HS256", "Ed25519", "ES256", "PS256", "RS256", "A256GCM", "version 2", "version 3"} {
		if checked[alg] == 0 {
			t.Errorf("no accepted vector uses %s", alg) // versions 2 and 3: the forms of SPEC.md §13 and §14
		}
	}
}

// TestCompactHeadersFollowTheSpec reads the compact header of every vector
// of version 3 whose header reads (SPEC.md §14.2) with the independent
// reading in specref_test.go, and compares the value with the vector's
// header field, the same value as canonical JSON (§3.4).
func TestCompactHeadersFollowTheSpec(t *testing.T) {
	files, err := filepath.Glob(filepath.Join("testdata", "vectors", "[0-9]*.json"))
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, f := range files {
		var v struct{ Name, EnvelopeHex, Header string }
		readJSON(t, f, &v)
		data, err := hex.DecodeString(v.EnvelopeHex)
		if err != nil || len(data) < 5 || data[0] != 3 || v.Header == "" {
			continue
		}
		t.Run(v.Name, func(t *testing.T) {
			keys := &specKeys{}
			m, err := keys.members(data)
			if err != nil {
				t.Fatal(err)
			}
			got, err := readCompactSpec(m.header)
			if err != nil {
				t.Fatal(err)
			}
			var want map[string]any
			if err := json.Unmarshal([]byte(v.Header), &want); err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, want) {
				t.Fatalf("compact header reads as\n%v\nthe header field is\n%v", got, want)
			}
		})
		n++
	}
	if n < 16 {
		t.Fatalf("%d vectors with a compact header that reads, want the 16 accepted ones at least", n)
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
