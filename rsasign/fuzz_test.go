package rsasign

import (
	"os"
	"testing"
)

// FuzzParsePEM: the key parsers never panic and never return a key outside
// the size bounds.
func FuzzParsePEM(f *testing.F) {
	for _, name := range []string{"rsa2048.pem", "rsa2048.pkcs1.pem", "rsa2048.pub.pem", "rsa1024.pem", "ed25519.pem"} {
		data, err := os.ReadFile("testdata/" + name)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		if k, err := ParsePrivateKeyPEM(data); err == nil {
			if n := k.N.BitLen(); n < MinKeyBits || n > MaxKeyBits {
				t.Fatalf("accepted a %d-bit key", n)
			}
		}
		if k, err := ParsePublicKeyPEM(data); err == nil {
			if n := k.N.BitLen(); n < MinKeyBits || n > MaxKeyBits {
				t.Fatalf("accepted a %d-bit key", n)
			}
		}
	})
}
