package mqttsec_test

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/mqttsec/mqttsec/internal/mosquitto"
	"github.com/mqttsec/mqttsec/internal/testbroker"
	"github.com/mqttsec/mqttsec/internal/testcerts"
	"github.com/mqttsec/mqttsec/mqttsec"
)

// TestBrokerRestartMidTraffic restarts the broker while requests are in
// flight: each request completes or fails with an error within its
// deadline, none hangs, no handler runs twice for one request, and traffic
// resumes after the clients reconnect and re-subscribe.
//
// It runs on the embedded broker, and on a private Mosquitto child process
// when MQTTSEC_TEST_MOSQUITTO is set (the real-broker switch) and mosquitto
// is installed.
func TestBrokerRestartMidTraffic(t *testing.T) {
	for _, kind := range []string{"embedded", "mosquitto"} {
		for _, proto := range protocols {
			t.Run(fmt.Sprintf("%s/v%d", kind, proto), func(t *testing.T) {
				checkNoLeaks(t) // first, so that it runs after the broker's cleanup
				b, restart := restartableBroker(t, kind)
				testRestart(t, b, restart, proto)
			})
		}
	}
}

func restartableBroker(t *testing.T, kind string) (*broker, func() error) {
	if kind == "embedded" {
		b := embeddedBroker(t)
		return b, b.embedded.Restart
	}
	if os.Getenv(MosquittoEnv) == "" {
		t.Skipf("set %s to run this test against a real Mosquitto (started here as a child process)", MosquittoEnv)
	}
	if mosquitto.Binary() == "" {
		t.Fatalf("%s is set but mosquitto is not installed", MosquittoEnv)
	}
	m, err := mosquitto.Start(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(m.Stop)
	return &broker{url: m.URL()}, m.Restart
}

func testRestart(t *testing.T, b *broker, restart func() error, proto int) {
	var mu sync.Mutex
	handled := map[string]int{}
	p := newPair(t, b, pairOptions{proto: proto, handlers: map[string]mqttsec.HandlerFunc{
		"count": func(ctx context.Context, r *mqttsec.Request) ([]byte, error) {
			mu.Lock()
			handled[string(r.Payload)]++
			mu.Unlock()
			return r.Payload, nil
		},
	}})
	var ok, failed, seq atomic.Int64
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			for {
				select {
				case <-stop:
					return
				default:
				}
				id := fmt.Sprint(seq.Add(1))
				ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
				out, err := p.client.Request(ctx, "gateway", "count", []byte(id))
				cancel()
				switch {
				case err == nil && string(out) == id:
					ok.Add(1)
				case err == nil:
					t.Errorf("request %s answered with %q", id, out)
				default:
					failed.Add(1)
				}
			}
		})
	}
	waitFor(t, "traffic before the restart", func() bool { return ok.Load() >= 50 })
	if err := restart(); err != nil {
		t.Fatal(err)
	}
	before := ok.Load()
	deadline := time.Now().Add(15 * time.Second)
	for ok.Load() < before+50 {
		if time.Now().After(deadline) {
			close(stop)
			wg.Wait()
			t.Fatalf("no traffic after the restart: %d ok, %d failed; client %v; server %v",
				ok.Load(), failed.Load(), p.client.Stats(), p.server.Stats())
		}
		time.Sleep(5 * time.Millisecond)
	}
	close(stop)
	wg.Wait() // every request returned: none hung
	mu.Lock()
	defer mu.Unlock()
	for id, n := range handled {
		if n != 1 {
			t.Fatalf("request %s handled %d times", id, n)
		}
	}
	t.Logf("%d requests completed, %d failed cleanly across the restart", ok.Load(), failed.Load())
}

// newTestCerts makes a CA, a broker certificate and a certificate for
// client "client", and writes them to files in a temporary directory.
func newTestCerts(t *testing.T) (*testcerts.Set, testcerts.Files) {
	t.Helper()
	certs, err := testcerts.New("client")
	if err != nil {
		t.Fatal(err)
	}
	files, err := certs.WriteFiles(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	return certs, files
}

func TestTLSAndClientCertificates(t *testing.T) {
	certs, files := newTestCerts(t)
	for _, mtls := range []bool{false, true} {
		for _, proto := range protocols {
			for _, over := range []string{"tls", "wss"} {
				t.Run(fmt.Sprintf("mtls=%v/v%d/%s", mtls, proto, over), func(t *testing.T) {
					testTLSAndClientCertificates(t, certs, files, mtls, proto, over)
				})
			}
		}
	}
}

// testTLSAndClientCertificates runs TestTLSAndClientCertificates with the
// broker's listener speaking TLS, or with a WebSocket-over-TLS bridge in
// front of it.
func testTLSAndClientCertificates(t *testing.T, certs *testcerts.Set, files testcerts.Files, mtls bool, proto int, over string) {
	checkNoLeaks(t) // registered before the broker's cleanup: runs after it
	// TLS is spoken by the broker's listener, or by the bridge in front of
	// a plain one.
	serverTLS := certs.ServerTLS(mtls)
	listenerTLS := serverTLS
	if over == "wss" {
		listenerTLS = nil
	}
	bk, err := testbroker.Start("127.0.0.1:0", listenerTLS)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { bk.Close() })
	b := &broker{url: bk.URL(), embedded: bk}
	if over == "wss" {
		bridge := testbroker.NewWebSocketBridge(bk.Addr(), serverTLS)
		t.Cleanup(bridge.Close)
		b.url = bridge.URL()
	}
	tf := mqttsec.TLSFiles{CAFile: files.CA}
	if mtls {
		tf.CertFile, tf.KeyFile = files.ClientCert, files.ClientKey
	}
	cfg, err := mqttsec.TLSConfig(tf)
	if err != nil {
		t.Fatal(err)
	}
	p := newPair(t, b, pairOptions{proto: proto, tls: cfg})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if out, err := p.client.Request(ctx, "gateway", "echo", []byte("over tls")); err != nil || string(out) != "client echo over tls" {
		t.Fatalf("request over TLS: %q, %v", out, err)
	}
	// A client that does not trust the broker's CA, or (mTLS) has
	// no certificate, does not get connected.
	bad := &tls.Config{MinVersion: tls.VersionTLS12, RootCAs: x509.NewCertPool()}
	if mtls {
		// Trusts the broker, has no certificate.
		if bad, err = mqttsec.TLSConfig(mqttsec.TLSFiles{CAFile: files.CA}); err != nil {
			t.Fatal(err)
		}
	}
	notConnected(t, transport(t, proto, b.url, "nocert", bad), 500*time.Millisecond, "without trust or certificate")
}

// TestTLSConfigFileErrors: every file TLSConfig reads is bounded and of the
// right kind, a key file must be private, and no error shows key material.
func TestTLSConfigFileErrors(t *testing.T) {
	_, files := newTestCerts(t)
	keyPEM, err := os.ReadFile(files.ClientKey)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	openKey := filepath.Join(dir, "open.key")
	if err := os.WriteFile(openKey, keyPEM, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := chmod(openKey, 0o644); err != nil {
		t.Fatal(err)
	}
	big := filepath.Join(dir, "big.pem")
	if err := os.WriteFile(big, make([]byte, 1<<20+1), 0o644); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name  string
		files mqttsec.TLSFiles
		is    error // nil: any error; ok: none
		ok    bool
	}{
		{"all files good", mqttsec.TLSFiles{CAFile: files.CA, CertFile: files.ClientCert, KeyFile: files.ClientKey}, nil, true},
		{"key readable by others", mqttsec.TLSFiles{CAFile: files.CA, CertFile: files.ClientCert, KeyFile: openKey}, mqttsec.ErrKeyFilePermissions, false},
		{"certificate without key", mqttsec.TLSFiles{CertFile: files.ClientCert}, mqttsec.ErrInvalidConfig, false},
		{"key file as CA", mqttsec.TLSFiles{CAFile: files.ClientKey}, mqttsec.ErrInvalidConfig, false},
		{"CA is a directory", mqttsec.TLSFiles{CAFile: dir}, mqttsec.ErrNotRegularFile, false},
		{"CA too large", mqttsec.TLSFiles{CAFile: big}, mqttsec.ErrFileTooLarge, false},
		{"certificate too large", mqttsec.TLSFiles{CertFile: big, KeyFile: files.ClientKey}, mqttsec.ErrFileTooLarge, false},
		{"key is a directory", mqttsec.TLSFiles{CertFile: files.ClientCert, KeyFile: dir}, mqttsec.ErrNotRegularFile, false},
		{"CA missing", mqttsec.TLSFiles{CAFile: filepath.Join(dir, "none.pem")}, fs.ErrNotExist, false},
		{"certificate and key swapped", mqttsec.TLSFiles{CertFile: files.ClientKey, KeyFile: files.ClientKey}, mqttsec.ErrInvalidConfig, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg, err := mqttsec.TLSConfig(tt.files)
			if tt.ok {
				if err != nil || cfg.RootCAs == nil || len(cfg.Certificates) != 1 {
					t.Fatalf("TLSConfig = %v, %v", cfg, err)
				}
				return
			}
			if err == nil {
				t.Fatal("TLSConfig accepted the files")
			}
			if tt.is != nil && !errors.Is(err, tt.is) {
				t.Fatalf("TLSConfig = %v, want it to wrap %v", err, tt.is)
			}
			if bytes.Contains([]byte(err.Error()), keyPEM[40:80]) {
				t.Fatalf("error shows key material: %v", err)
			}
		})
	}
}
