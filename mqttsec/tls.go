package mqttsec

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"

	"github.com/mqttsec/mqttsec/internal/keyfile"
)

// TLSFiles names the PEM files for a TLS connection to the broker.
type TLSFiles struct {
	// CAFile holds the CA certificate(s) that issued the broker's
	// certificate; empty means the system roots.
	CAFile string
	// CertFile and KeyFile hold the client certificate and its key, for
	// brokers that require client certificates (mTLS). Both or neither.
	CertFile, KeyFile string
	// ServerName overrides the name checked in the broker's certificate.
	ServerName string
}

var (
	// ErrKeyFilePermissions means a private key file is readable by group
	// or others.
	ErrKeyFilePermissions = keyfile.ErrPermissions
	// ErrNotRegularFile is wrapped by TLSConfig's error when a file it was
	// given is a directory, device or FIFO.
	ErrNotRegularFile = keyfile.ErrNotRegular
	// ErrFileTooLarge is wrapped by TLSConfig's error when a file it was
	// given is larger than 1 MiB (a system CA bundle is ~200 KiB).
	ErrFileTooLarge = keyfile.ErrTooLarge
)

// TLSConfig builds a client TLS configuration (TLS 1.2 or later) from PEM
// files, for autopaho.ClientConfig.TlsCfg or mqtt.ClientOptions.SetTLSConfig.
// A key file readable by group or others is refused. Each file must be a
// regular file of at most 1 MiB; errors name the file and never show key
// material.
func TLSConfig(f TLSFiles) (*tls.Config, error) {
	cfg := &tls.Config{MinVersion: tls.VersionTLS12, ServerName: f.ServerName}
	if f.CAFile != "" {
		data, err := keyfile.ReadPublic(f.CAFile)
		if err != nil {
			return nil, fmt.Errorf("mqttsec: CA file: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(data) {
			return nil, fmt.Errorf("%w: CA file %s: no PEM certificate", ErrInvalidConfig, f.CAFile)
		}
		cfg.RootCAs = pool
	}
	if (f.CertFile == "") != (f.KeyFile == "") {
		return nil, fmt.Errorf("%w: a client certificate needs both CertFile and KeyFile", ErrInvalidConfig)
	}
	if f.CertFile != "" {
		certPEM, err := keyfile.ReadPublic(f.CertFile)
		if err != nil {
			return nil, fmt.Errorf("mqttsec: certificate file: %w", err)
		}
		keyPEM, err := keyfile.ReadPrivate(f.KeyFile)
		if err != nil {
			return nil, fmt.Errorf("mqttsec: key file: %w", err)
		}
		pair, err := tls.X509KeyPair(certPEM, keyPEM)
		clear(keyPEM)
		if err != nil {
			// The error from crypto/tls never contains key bytes.
			return nil, fmt.Errorf("%w: client certificate: %w", ErrInvalidConfig, err)
		}
		cfg.Certificates = []tls.Certificate{pair}
	}
	return cfg, nil
}
