// Package testcerts makes a throwaway certificate authority with server and
// client certificates, for TLS and mTLS tests against real brokers.
package testcerts

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"time"
)

// Set is a CA and certificates it issued, in memory and as PEM.
type Set struct {
	CA         *x509.Certificate
	CAPEM      []byte
	Server     tls.Certificate
	ServerPEM  []byte // certificate
	ServerKey  []byte // PKCS #8 key
	Client     tls.Certificate
	ClientPEM  []byte
	ClientKey  []byte
	ClientName string
}

// New issues a CA, a server certificate for 127.0.0.1 and localhost, and a
// client certificate with common name clientName.
func New(clientName string) (*Set, error) {
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	now := time.Now()
	caTmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "mqttsec test CA"},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.Add(24 * time.Hour),
		IsCA:                  true,
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageCertSign,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		return nil, err
	}
	ca, err := x509.ParseCertificate(caDER)
	if err != nil {
		return nil, err
	}
	s := &Set{CA: ca, CAPEM: pemBlock("CERTIFICATE", caDER), ClientName: clientName}
	issue := func(serial int64, cn string, usage x509.ExtKeyUsage, server bool) (tls.Certificate, []byte, []byte, error) {
		key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			return tls.Certificate{}, nil, nil, err
		}
		tmpl := &x509.Certificate{
			SerialNumber: big.NewInt(serial),
			Subject:      pkix.Name{CommonName: cn},
			NotBefore:    now.Add(-time.Hour),
			NotAfter:     now.Add(24 * time.Hour),
			KeyUsage:     x509.KeyUsageDigitalSignature,
			ExtKeyUsage:  []x509.ExtKeyUsage{usage},
		}
		if server {
			tmpl.DNSNames = []string{"localhost"}
			tmpl.IPAddresses = []net.IP{net.ParseIP("127.0.0.1")}
		}
		der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, &key.PublicKey, caKey)
		if err != nil {
			return tls.Certificate{}, nil, nil, err
		}
		keyDER, err := x509.MarshalPKCS8PrivateKey(key)
		if err != nil {
			return tls.Certificate{}, nil, nil, err
		}
		certPEM, keyPEM := pemBlock("CERTIFICATE", der), pemBlock("PRIVATE KEY", keyDER)
		pair, err := tls.X509KeyPair(certPEM, keyPEM)
		return pair, certPEM, keyPEM, err
	}
	if s.Server, s.ServerPEM, s.ServerKey, err = issue(2, "localhost", x509.ExtKeyUsageServerAuth, true); err != nil {
		return nil, err
	}
	if s.Client, s.ClientPEM, s.ClientKey, err = issue(3, clientName, x509.ExtKeyUsageClientAuth, false); err != nil {
		return nil, err
	}
	return s, nil
}

func pemBlock(typ string, der []byte) []byte {
	return pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der})
}

// ServerTLS returns a broker-side TLS configuration; with requireClientCert
// the broker demands a client certificate issued by the CA.
func (s *Set) ServerTLS(requireClientCert bool) *tls.Config {
	pool := x509.NewCertPool()
	pool.AddCert(s.CA)
	cfg := &tls.Config{Certificates: []tls.Certificate{s.Server}, MinVersion: tls.VersionTLS12}
	if requireClientCert {
		cfg.ClientAuth = tls.RequireAndVerifyClientCert
		cfg.ClientCAs = pool
	}
	return cfg
}

// Files holds the paths WriteFiles wrote.
type Files struct{ CA, ServerCert, ServerKey, ClientCert, ClientKey string }

// WriteFiles writes the PEM files into dir, keys with mode 0600.
func (s *Set) WriteFiles(dir string) (Files, error) {
	f := Files{
		CA: filepath.Join(dir, "ca.pem"), ServerCert: filepath.Join(dir, "server.pem"), ServerKey: filepath.Join(dir, "server.key"),
		ClientCert: filepath.Join(dir, "client.pem"), ClientKey: filepath.Join(dir, "client.key"),
	}
	for path, data := range map[string][]byte{f.CA: s.CAPEM, f.ServerCert: s.ServerPEM, f.ClientCert: s.ClientPEM} {
		if err := os.WriteFile(path, data, 0o644); err != nil {
			return f, err
		}
	}
	for path, data := range map[string][]byte{f.ServerKey: s.ServerKey, f.ClientKey: s.ClientKey} {
		if err := os.WriteFile(path, data, 0o600); err != nil {
			return f, err
		}
	}
	return f, nil
}
