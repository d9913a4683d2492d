package mqttsec_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/mqttsec/mqttsec/internal/mosquitto"
	"github.com/mqttsec/mqttsec/internal/testcerts"
	"github.com/mqttsec/mqttsec/mqttsec"
)

// realMosquitto skips unless the real-broker tests are switched on, and
// fails if they are but mosquitto is missing.
func realMosquitto(t *testing.T) {
	t.Helper()
	if os.Getenv(MosquittoEnv) == "" {
		t.Skipf("set %s to run this test against a real Mosquitto (started here as a child process)", MosquittoEnv)
	}
	if mosquitto.Binary() == "" {
		t.Fatalf("%s is set but mosquitto is not installed", MosquittoEnv)
	}
}

// TestMosquittoRequiresClientCertificate runs Mosquitto with a TLS listener
// that requires client certificates: with a valid certificate both
// transports connect and exchange sealed requests; without one they are
// refused.
func TestMosquittoRequiresClientCertificate(t *testing.T) {
	realMosquitto(t)
	dir := t.TempDir()
	certs, err := testcerts.New("client")
	if err != nil {
		t.Fatal(err)
	}
	files, err := certs.WriteFiles(dir)
	if err != nil {
		t.Fatal(err)
	}
	extra := fmt.Sprintf("cafile %s\ncertfile %s\nkeyfile %s\nrequire_certificate true\ntls_version tlsv1.2\n",
		files.CA, files.ServerCert, files.ServerKey)
	m, err := mosquitto.StartWith(dir, extra)
	if err != nil {
		log, _ := os.ReadFile(filepath.Join(dir, "mosquitto.log"))
		t.Fatalf("%v\n%s", err, log)
	}
	t.Cleanup(m.Stop)
	b := &broker{url: m.TLSURL()}
	withCert, err := mqttsec.TLSConfig(mqttsec.TLSFiles{CAFile: files.CA, CertFile: files.ClientCert, KeyFile: files.ClientKey})
	if err != nil {
		t.Fatal(err)
	}
	noCert, err := mqttsec.TLSConfig(mqttsec.TLSFiles{CAFile: files.CA})
	if err != nil {
		t.Fatal(err)
	}
	for _, proto := range protocols {
		t.Run(fmt.Sprintf("v%d", proto), func(t *testing.T) {
			checkNoLeaks(t)
			p := newPair(t, b, pairOptions{proto: proto, tls: withCert})
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			if out, err := p.client.Request(ctx, "gateway", "echo", []byte("mtls")); err != nil || string(out) != "client echo mtls" {
				t.Fatalf("request over mTLS: %q, %v", out, err)
			}
			notConnected(t, transport(t, proto, b.url, "nocert", noCert), 700*time.Millisecond, "without a client certificate")
		})
	}
}
