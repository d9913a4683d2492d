package rsasign

import (
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"errors"
	"fmt"
	"os"
	"strings"
	"testing"
)

func loadKey(t testing.TB, name string) *rsa.PrivateKey {
	t.Helper()
	data, err := os.ReadFile("testdata/" + name)
	if err != nil {
		t.Fatal(err)
	}
	k, err := ParsePrivateKeyPEM(data)
	if err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	return k
}

// signerAndVerifier returns a PSS signer for key and a verifier of its
// public key.
func signerAndVerifier(t *testing.T, key *rsa.PrivateKey) (*Signer, *Verifier) {
	t.Helper()
	s, err := NewSigner(key)
	if err != nil {
		t.Fatal(err)
	}
	v, err := NewVerifier(s.Public())
	if err != nil {
		t.Fatal(err)
	}
	return s, v
}

func TestSignVerify(t *testing.T) {
	key := loadKey(t, "rsa2048.pem")
	s, v := signerAndVerifier(t, key)
	msg := []byte("get-card 8165538")
	sig, err := s.Sign(msg)
	if err != nil {
		t.Fatal(err)
	}
	if err := v.Verify(msg, sig); err != nil {
		t.Fatalf("Verify: %v", err)
	}
	// The exact parameters a port must use: PSS, SHA-256, MGF1-SHA-256, 32-byte salt.
	digest := sha256.Sum256(msg)
	if err := rsa.VerifyPSS(s.Public(), crypto.SHA256, digest[:], sig, &rsa.PSSOptions{SaltLength: 32}); err != nil {
		t.Fatalf("signature is not PSS with 32-byte salt: %v", err)
	}
}

func TestVerifyRejects(t *testing.T) {
	key := loadKey(t, "rsa2048.pem")
	s, v := signerAndVerifier(t, key)
	msg := []byte("message")
	sig, err := s.Sign(msg)
	if err != nil {
		t.Fatal(err)
	}
	digest := sha256.Sum256(msg)
	pkcs1, err := rsa.SignPKCS1v15(nil, key, crypto.SHA256, digest[:])
	if err != nil {
		t.Fatal(err)
	}
	otherSalt, err := rsa.SignPSS(rand.Reader, key, crypto.SHA256, digest[:], &rsa.PSSOptions{SaltLength: 20})
	if err != nil {
		t.Fatal(err)
	}
	flipped := append([]byte(nil), sig...)
	flipped[10] ^= 0x80

	tests := []struct {
		name string
		v    *Verifier
		msg  []byte
		sig  []byte
		ok   bool
	}{
		{"pss ok", v, msg, sig, true},
		{"pss other message", v, []byte("messagf"), sig, false},
		{"pss flipped", v, msg, flipped, false},
		{"pss truncated", v, msg, sig[:len(sig)-1], false},
		{"pss empty", v, msg, nil, false},
		{"pss other salt length", v, msg, otherSalt, false},
		{"pkcs1 refused", v, msg, pkcs1, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.v.Verify(tt.msg, tt.sig)
			if tt.ok && err != nil {
				t.Fatalf("Verify = %v, want nil", err)
			}
			if !tt.ok && !errors.Is(err, ErrVerify) {
				t.Fatalf("Verify = %v, want ErrVerify", err)
			}
		})
	}
}

func TestKeySize(t *testing.T) {
	small := loadKeyAllowSmall(t)
	if _, err := NewSigner(small); !errors.Is(err, ErrKeySize) {
		t.Errorf("NewSigner(1024) = %v, want ErrKeySize", err)
	}
	if _, err := NewVerifier(&small.PublicKey); !errors.Is(err, ErrKeySize) {
		t.Errorf("NewVerifier(1024) = %v, want ErrKeySize", err)
	}
	if _, err := NewSigner(nil); err == nil {
		t.Error("NewSigner(nil) succeeded")
	}
	if _, err := NewVerifier(nil); err == nil {
		t.Error("NewVerifier(nil) succeeded")
	}
	data, _ := os.ReadFile("testdata/rsa1024.pem")
	if _, err := ParsePrivateKeyPEM(data); !errors.Is(err, ErrKeySize) {
		t.Errorf("ParsePrivateKeyPEM(1024) = %v, want ErrKeySize", err)
	}
}

// loadKeyAllowSmall parses the 1024-bit test key without the size check.
func loadKeyAllowSmall(t *testing.T) *rsa.PrivateKey {
	t.Helper()
	data, _ := os.ReadFile("testdata/rsa1024.pem")
	_, err := ParsePrivateKeyPEM(data)
	if !errors.Is(err, ErrKeySize) {
		t.Fatalf("expected the 1024-bit key to be refused, got %v", err)
	}
	k := loadRaw(t, data)
	return k
}

func TestParsePEM(t *testing.T) {
	read := func(name string) []byte {
		b, err := os.ReadFile("testdata/" + name)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	pkcs8 := loadKey(t, "rsa2048.pem")
	pkcs1 := loadKey(t, "rsa2048.pkcs1.pem")
	if !pkcs8.Equal(pkcs1) {
		t.Fatal("PKCS#1 and PKCS#8 forms of one key differ")
	}
	pub, err := ParsePublicKeyPEM(read("rsa2048.pub.pem"))
	if err != nil || !pub.Equal(&pkcs8.PublicKey) {
		t.Fatalf("ParsePublicKeyPEM = %v", err)
	}
	bad := []struct {
		name string
		data []byte
	}{
		{"empty", nil},
		{"not pem", []byte("hello")},
		{"ed25519 key", read("ed25519.pem")},
		{"public as private", read("rsa2048.pub.pem")},
		{"garbage body", []byte("-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n")},
		{"other type", []byte("-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n")},
	}
	for _, tt := range bad {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := ParsePrivateKeyPEM(tt.data); !errors.Is(err, ErrKeyFormat) {
				t.Errorf("ParsePrivateKeyPEM = %v, want ErrKeyFormat", err)
			}
		})
	}
	if _, err := ParsePublicKeyPEM(read("rsa2048.pem")); !errors.Is(err, ErrKeyFormat) {
		t.Errorf("ParsePublicKeyPEM(private) = %v, want ErrKeyFormat", err)
	}
	// Errors never echo the input.
	_, err = ParsePrivateKeyPEM([]byte("-----BEGIN PRIVATE KEY-----\nc2VjcmV0LXNlY3JldA==\n-----END PRIVATE KEY-----\n"))
	if err == nil || strings.Contains(err.Error(), "c2VjcmV0") {
		t.Fatalf("error = %v", err)
	}
}

func TestStringHidesKey(t *testing.T) {
	s, _ := NewSigner(loadKey(t, "rsa2048.pem"))
	for _, out := range []string{fmt.Sprint(s), fmt.Sprintf("%+v", s), fmt.Sprintf("%#v", s)} {
		if out != "rsasign.Signer(RSA-PSS-SHA256, 2048 bits)" {
			t.Errorf("formatted signer = %q", out)
		}
	}
}

func ExampleSigner() {
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		panic(err)
	}
	signer, _ := NewSigner(key)
	verifier, _ := NewVerifier(signer.Public())
	sig, _ := signer.Sign([]byte("open door 3"))
	fmt.Println(verifier.Verify([]byte("open door 3"), sig))
	fmt.Println(verifier.Verify([]byte("open door 4"), sig))
	// Output:
	// <nil>
	// rsasign: signature verification failed
}

func BenchmarkSign(b *testing.B) {
	s, _ := NewSigner(loadKey(b, "rsa2048.pem"))
	msg := make([]byte, 256)
	for b.Loop() {
		s.Sign(msg)
	}
}

func BenchmarkVerify(b *testing.B) {
	s, _ := NewSigner(loadKey(b, "rsa2048.pem"))
	v, _ := NewVerifier(s.Public())
	msg := make([]byte, 256)
	sig, _ := s.Sign(msg)
	for b.Loop() {
		v.Verify(msg, sig)
	}
}
