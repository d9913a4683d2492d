package rsasign

import (
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"testing"
)

func loadRaw(t *testing.T, data []byte) *rsa.PrivateKey {
	t.Helper()
	block, _ := pem.Decode(data)
	k, err := x509.ParsePKCS8PrivateKey(block.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	return k.(*rsa.PrivateKey)
}
