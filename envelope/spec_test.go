package envelope_test

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/hmac"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"math/big"
	"os"
	"path/filepath"
	"testing"
)

// TestVectorsFollowTheSpec recomputes, for every accepted vector, the digest,
// the authenticated block, the MAC and the signature from SPEC.md §4 with
// nothing but the standard library — no code of this package — so that the
// specification, the vectors and the implementation cannot drift apart
// unnoticed. It is what a port to another language does first.
func TestVectorsFollowTheSpec(t *testing.T) {
	dir := filepath.Join("testdata", "vectors")
	var keys struct {
		HMAC, OtherHMAC string
		Ed25519Seed     string `json:"ed25519Seed"`
		ES256Private    string `json:"es256Private"`
		RSASignPrivate  string `json:"rsaSignPrivate"`
	}
	readJSON(t, filepath.Join(dir, "keys.json"), &keys)
	b64 := base64.RawURLEncoding.Strict()
	mustB64 := func(s string) []byte {
		b, err := b64.DecodeString(s)
		if err != nil {
			t.Fatalf("base64url %q: %v", s, err)
		}
		return b
	}
	macKeys := [][]byte{mustB64(keys.HMAC), mustB64(keys.OtherHMAC)}
	edPub := ed25519.NewKeyFromSeed(mustB64(keys.Ed25519Seed)).Public().(ed25519.PublicKey)
	es, err := ecdsa.ParseRawPrivateKey(elliptic.P256(), mustB64(keys.ES256Private))
	if err != nil {
		t.Fatal(err)
	}
	block, _ := pem.Decode([]byte(keys.RSASignPrivate))
	if block == nil {
		t.Fatal("rsaSignPrivate is not PEM")
	}
	parsed, err := x509.ParsePKCS8PrivateKey(block.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	rsaPub := &parsed.(*rsa.PrivateKey).PublicKey

	files, err := filepath.Glob(filepath.Join(dir, "[0-9]*.json"))
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
			var outer struct {
				V        int
				H, P     string
				MAC, Sig string
			}
			if err := json.Unmarshal([]byte(v.Envelope), &outer); err != nil {
				t.Fatal(err)
			}
			var h struct {
				Sig *struct{ Alg string }
			}
			if err := json.Unmarshal(mustB64(outer.H), &h); err != nil {
				t.Fatal(err)
			}
			// §4.1: SI, its digest D, and the authenticated block A.
			d := sha256.Sum256([]byte("mqttsec.v1." + outer.H + "." + outer.P))
			a := append([]byte("mqttsec.v1.digest."), d[:]...)
			if v.Digest != "" && v.Digest != b64.EncodeToString(d[:]) {
				t.Error("digest field is not SHA-256 of the signing input")
			}
			if outer.MAC != "" {
				ok := false
				for _, k := range macKeys {
					m := hmac.New(sha256.New, k)
					m.Write(a)
					ok = ok || hmac.Equal(m.Sum(nil), mustB64(outer.MAC))
				}
				if !ok {
					t.Error("mac is not HMAC-SHA-256 of the authenticated block")
				}
				checked["HS256"]++
			}
			if outer.Sig == "" {
				return
			}
			sig, ha := mustB64(outer.Sig), sha256.Sum256(a)
			var ok bool
			switch h.Sig.Alg {
			case "Ed25519":
				ok = ed25519.Verify(edPub, a, sig)
			case "ES256":
				ok = len(sig) == 64 && ecdsa.Verify(&es.PublicKey, ha[:],
					new(big.Int).SetBytes(sig[:32]), new(big.Int).SetBytes(sig[32:]))
			case "PS256":
				ok = rsa.VerifyPSS(rsaPub, crypto.SHA256, ha[:], sig, &rsa.PSSOptions{SaltLength: 32}) == nil
			case "RS256":
				ok = rsa.VerifyPKCS1v15(rsaPub, crypto.SHA256, ha[:], sig) == nil
			default:
				t.Fatalf("vector signs with %q", h.Sig.Alg)
			}
			if !ok {
				t.Errorf("sig is not a %s signature of the authenticated block", h.Sig.Alg)
			}
			checked[h.Sig.Alg]++
		})
	}
	for _, alg := range []string{"HS256", "Ed25519", "ES256", "PS256", "RS256"} {
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
