package keyfile

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestSecretRoundTripAndPermissions(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "hmac.key")
	if err := WriteSecret(path, 32); err != nil {
		t.Fatal(err)
	}
	if err := WriteSecret(path, 32); err == nil {
		t.Fatal("existing secret overwritten")
	}
	s, err := ReadSecret(path)
	if err != nil || len(s) != 32 {
		t.Fatalf("ReadSecret = %d bytes, %v", len(s), err)
	}
	os.Chmod(path, 0o640)
	if _, err := ReadSecret(path); !errors.Is(err, ErrPermissions) {
		t.Fatalf("group-readable secret: %v", err)
	}
	bad := filepath.Join(dir, "bad.key")
	os.WriteFile(bad, []byte("c2VjcmV0IQ==\n"), 0o600)
	if _, err := ReadSecret(bad); err == nil || strings.Contains(err.Error(), "c2VjcmV0") {
		t.Fatalf("padded base64 accepted or echoed: %v", err)
	}
}

func TestEd25519Files(t *testing.T) {
	base := filepath.Join(t.TempDir(), "sign")
	if err := WriteEd25519(base); err != nil {
		t.Fatal(err)
	}
	priv, err := ReadEd25519Private(base + ".key")
	if err != nil {
		t.Fatal(err)
	}
	pub, err := ReadEd25519Public(base + ".pub")
	if err != nil {
		t.Fatal(err)
	}
	if !pub.Equal(priv.Public()) {
		t.Fatal("public key file does not match the private key")
	}
	if _, err := ReadEd25519Private(base + ".pub"); err == nil {
		t.Fatal("public key read as private")
	}
	if err := WriteEd25519(base); err == nil {
		t.Fatal("existing key overwritten")
	}
}
