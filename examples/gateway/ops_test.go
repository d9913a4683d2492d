package main

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/mqttsec/mqttsec/internal/cli"
	"github.com/mqttsec/mqttsec/internal/testbroker"
	"github.com/mqttsec/mqttsec/internal/testcerts"
	"github.com/mqttsec/mqttsec/internal/testwait"
	"github.com/mqttsec/mqttsec/mqttsec"
	"github.com/mqttsec/mqttsec/mqttsec/keydir"
)

// get fetches url and returns its status and body.
func get(t *testing.T, url string) (int, string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, string(body)
}

// runGateway runs the gateway with args until the test ends; it returns
// its stdout and stderr as they grow, once it listens.
func runGateway(t *testing.T, args ...string) (stdout, stderr *testwait.Log) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	stdout, stderr = &testwait.Log{}, &testwait.Log{}
	ready, done := make(chan struct{}), make(chan error, 1)
	go func() { done <- run(ctx, args, stdout, stderr, ready) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("gateway exit: %v\n%s", err, stderr)
		}
	})
	select {
	case <-ready:
	case err := <-done:
		done <- err
		t.Fatalf("gateway: %v\n%s", err, stderr)
	}
	return stdout, stderr
}

var opsAddr = regexp.MustCompile(`metrics on http://([^/]+)/metrics`)

// TestGatewayServesMetricsAndHealth: with --metrics the gateway serves
// the Prometheus text format (mqttsec's metrics, labelled by outcome, peer
// and method, beside the Go runtime's), /healthz, and /readyz, which
// turns to 503 with the reason when the broker goes away.
func TestGatewayServesMetricsAndHealth(t *testing.T) {
	b, err := testbroker.Start("127.0.0.1:0", nil) // closed by the test
	if err != nil {
		t.Fatal(err)
	}
	hmac, _ := hmacAndState(t)
	stdout, _ := runGateway(t, "--broker", b.URL(), "--hmac-key", hmac, "--metrics", "127.0.0.1:0")
	m := opsAddr.FindStringSubmatch(stdout.String())
	if m == nil {
		t.Fatalf("no metrics address in:\n%s", stdout)
	}
	base := "http://" + m[1]
	if code, body := get(t, base+"/healthz"); code != 200 || body != "ok\n" {
		t.Fatalf("/healthz: %d %q", code, body)
	}
	if code, body := get(t, base+"/readyz"); code != 200 || body != "ready\n" {
		t.Fatalf("/readyz: %d %q", code, body)
	}

	ring, err := (&cli.Keys{HMAC: hmac}).Keyring("gateway")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c := startClient(t, ctx, b.URL(), ring)
	if _, err := c.Request(ctx, "gateway", "echo", []byte("x")); err != nil {
		t.Fatal(err)
	}
	code, body := get(t, base+"/metrics")
	if code != 200 {
		t.Fatalf("/metrics: %d", code)
	}
	for _, want := range []*regexp.Regexp{
		regexp.MustCompile(`(?m)^mqttsec_messages_total\{[^}]*mqttsec_outcome="accepted"[^}]*mqttsec_peer="client"[^}]*\} 1$`),
		regexp.MustCompile(`(?m)^mqttsec_server_handler_duration_seconds_count\{[^}]*mqttsec_method="echo"[^}]*mqttsec_result="ok"[^}]*\} 1$`),
		regexp.MustCompile(`(?m)^mqttsec_replay_duration_seconds_bucket\{`),
		regexp.MustCompile(`(?m)^mqttsec_connection_up\{[^}]*\} 1$`),
		regexp.MustCompile(`(?m)^mqttsec_queue_capacity\{[^}]*\} 1024$`),
		regexp.MustCompile(`(?m)^go_goroutines `),
	} {
		if !want.MatchString(body) {
			t.Errorf("/metrics has no line matching %s", want)
		}
	}
	if t.Failed() {
		t.Logf("/metrics:\n%s", body)
	}

	b.Close()
	testwait.Until(t, "/readyz to report the broker gone", func() bool {
		code, body := get(t, base+"/readyz")
		return code == http.StatusServiceUnavailable && strings.Contains(body, "not connected to the broker")
	})
}

// TestGatewayWarnsOfCertificateExpiry: over TLS, the gateway warns of a
// certificate that expires within --expiry-warning, and reports each
// certificate's expiry as a metric.
func TestGatewayWarnsOfCertificateExpiry(t *testing.T) {
	set, err := testcerts.New("gateway") // valid for a day
	if err != nil {
		t.Fatal(err)
	}
	files, err := set.WriteFiles(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	b, err := testbroker.Start("127.0.0.1:0", set.ServerTLS(true))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Close() })
	hmac, _ := hmacAndState(t)
	stdout, stderr := runGateway(t, "--broker", b.URL(), "--ca", files.CA, "--cert", files.ClientCert, "--key", files.ClientKey,
		"--hmac-key", hmac, "--metrics", "127.0.0.1:0", "--expiry-warning", "48h")
	for _, role := range []string{"client certificate", "CA"} {
		testwait.Until(t, "a warning for the "+role, func() bool {
			return regexp.MustCompile(`level=WARN msg="gateway: certificate expires soon" role="` + role).MatchString(stderr.String())
		})
	}
	m := opsAddr.FindStringSubmatch(stdout.String())
	if m == nil {
		t.Fatalf("no metrics address in:\n%s", stdout)
	}
	_, body := get(t, "http://"+m[1]+"/metrics")
	want := regexp.MustCompile(`(?m)^mqttsec_tls_certificate_expiry_seconds\{[^}]*file="` + regexp.QuoteMeta(files.ClientCert) + `"[^}]*\} (\S+)$`)
	if got := want.FindStringSubmatch(body); got == nil {
		t.Fatalf("no expiry of the client certificate in /metrics:\n%s", body)
	}
}

// TestLogExpiry: a certificate past its expiry is an error, one within
// the warning window a warning, and one beyond it is not logged.
func TestLogExpiry(t *testing.T) {
	now := time.Date(2026, 12, 7, 0, 0, 0, 0, time.UTC)
	for _, c := range []struct {
		notAfter time.Time
		want     string
	}{
		{now.Add(-time.Hour), `level=ERROR msg="gateway: certificate expired"`},
		{now.Add(24 * time.Hour), `level=WARN msg="gateway: certificate expires soon" role=CA file=ca.pem subject="CN=test CA" not_after=2026-12-08T00:00:00.000Z left=24h0m0s`},
		{now.Add(31 * 24 * time.Hour), ``},
	} {
		var out bytes.Buffer
		log := slog.New(slog.NewTextHandler(&out, &slog.HandlerOptions{ReplaceAttr: func(_ []string, a slog.Attr) slog.Attr {
			if a.Key == slog.TimeKey {
				return slog.Attr{}
			}
			return a
		}}))
		logExpiry(log, []certificate{{file: "ca.pem", role: "CA", subject: "CN=test CA", notAfter: c.notAfter}}, 30*24*time.Hour, now)
		if got := strings.TrimSpace(out.String()); (c.want == "") != (got == "") || !strings.HasPrefix(got, c.want) {
			t.Errorf("expiry %v: logged %q, want %q", c.notAfter, got, c.want)
		}
	}
}

// TestGatewayLogsReloads: a change to the key directory or the rules is
// logged once: the reload, or its refusal naming the file and line (the
// previous keys or rules staying in force).
func TestGatewayLogsReloads(t *testing.T) {
	b := startBroker(t)
	root, gw, _ := pairedKeyDirs(t)
	users, groups := filepath.Join(root, "users"), filepath.Join(root, "groups")
	write := func(path, text string) {
		t.Helper()
		if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write(users, "client  callers\n")
	write(groups, "callers  echo\n")
	_, stderr := runGateway(t, "--broker", b.URL(), "--keys", gw, "--users", users, "--groups", groups)
	logged := func(re string) int { return len(regexp.MustCompile(re).FindAllString(stderr.String(), -1)) }

	conf := filepath.Join(gw, "peers", "client", "peer.conf")
	good, err := os.ReadFile(conf)
	if err != nil {
		t.Fatal(err)
	}
	steps := []struct {
		path, text, want string
	}{
		{conf, "send nothing\n", `level=ERROR msg="gateway: keys not reloaded, the previous keys stay" err="` + regexp.QuoteMeta(conf) + `:1: `},
		{conf, string(good), `level=INFO msg="gateway: keys reloaded" dir=` + regexp.QuoteMeta(gw) + ` peers=client`},
		{groups, "callers\n", `level=ERROR msg="gateway: authorization rules not reloaded, the previous rules stay" err="` + regexp.QuoteMeta(groups) + `:1: `},
		{groups, "callers  echo, time\n", `level=INFO msg="gateway: authorization rules reloaded"`},
	}
	for _, s := range steps {
		write(s.path, s.text)
		testwait.Until(t, "the log line "+s.want, func() bool { return logged(s.want) > 0 })
	}
	// Each change once, though the watchers polled many times since.
	for _, s := range steps {
		if n := logged(s.want); n != 1 {
			t.Errorf("%d lines match %s, want 1:\n%s", n, s.want, stderr)
		}
	}
}

// TestGatewayLeavesNothingRunning: when run returns, whether it failed to
// start (the --metrics port taken) or was stopped, the watchers of the
// keys, the rules and the certificates have ended.
func TestGatewayLeavesNothingRunning(t *testing.T) {
	b := startBroker(t)
	root, gw, _ := pairedKeyDirs(t)
	users, groups := filepath.Join(root, "users"), filepath.Join(root, "groups")
	os.WriteFile(users, []byte("client  callers\n"), 0o644)
	os.WriteFile(groups, []byte("callers  echo\n"), 0o644)
	taken, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer taken.Close()
	args := []string{"--broker", b.URL(), "--keys", gw, "--users", users, "--groups", groups}
	watchers := regexp.MustCompile(`main\.watchExpiry|keydir\.Watch|authz\.\(\*Authorizer\)\.Watch|poll\.Reload`)
	left := func() []string {
		var out []string
		for _, stack := range testwait.Goroutines() {
			if watchers.MatchString(stack) {
				out = append(out, stack)
			}
		}
		return out
	}
	for _, tc := range []struct {
		name  string
		extra []string
		fails bool
	}{
		{"metrics port taken", []string{"--metrics", taken.Addr().String()}, true},
		{"stopped", []string{"--metrics", "127.0.0.1:0"}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx, cancel := context.WithCancel(context.Background())
			ready, done := make(chan struct{}), make(chan error, 1)
			var out, errOut testwait.Log
			go func() { done <- run(ctx, append(args, tc.extra...), &out, &errOut, ready) }()
			if !tc.fails {
				select {
				case <-ready:
				case err := <-done:
					t.Fatalf("run = %v\n%s", err, errOut.String())
				}
				cancel()
			}
			var err error
			select {
			case err = <-done:
			case <-time.After(10 * time.Second):
				t.Fatal("run did not return within 10 s")
			}
			// Checked before the context of a run that failed ends: run
			// itself must have ended its watchers.
			l := left()
			cancel()
			if (err != nil) != tc.fails {
				t.Fatalf("run = %v\n%s", err, errOut.String())
			}
			if len(l) > 0 {
				t.Fatalf("%d watchers outlived run:\n%s", len(l), strings.Join(l, "\n\n"))
			}
		})
	}
}

// TestCertificates: a CA file's certificates are read whole; a block that
// does not parse is skipped and said, as TLSConfig skips it; the gauge
// takes the first to expire of each file.
func TestCertificates(t *testing.T) {
	set, err := testcerts.New("gateway")
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "bundle.pem")
	bad := "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n"
	if err := os.WriteFile(path, append(append(set.CAPEM, bad...), set.ClientPEM...), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := mqttsec.TLSConfig(mqttsec.TLSFiles{CAFile: path}); err != nil {
		t.Fatalf("TLSConfig refuses the bundle: %v", err)
	}
	certs, skipped, err := certificates(map[string]string{"CA": path, "none": ""})
	if err != nil {
		t.Fatal(err)
	}
	if len(certs) != 2 || len(skipped) != 1 || !strings.Contains(skipped[0].Error(), path) {
		t.Fatalf("%d certificates, skipped %v; want 2 and one skipped, naming the file", len(certs), skipped)
	}
	certs[0].notAfter = certs[1].notAfter.Add(time.Hour)
	first := earliest(certs)
	if len(first) != 1 || first[0].subject != certs[1].subject {
		t.Fatalf("earliest = %+v; want the second certificate", first)
	}
}

// pairedKeyDirs makes, in a new temporary directory root, the key
// directories gw of "gw-1" and cl of "client", paired with an HMAC key.
func pairedKeyDirs(t *testing.T) (root, gw, cl string) {
	t.Helper()
	root = t.TempDir()
	gw, cl = filepath.Join(root, "gw-1"), filepath.Join(root, "client")
	for _, err := range []error{
		keydir.Init(gw, "gw-1", keydir.InitOptions{}), keydir.Init(cl, "client", keydir.InitOptions{}),
		keydir.Pair(gw, cl, keydir.PairOptions{HMAC: true}),
	} {
		if err != nil {
			t.Fatal(err)
		}
	}
	return root, gw, cl
}
