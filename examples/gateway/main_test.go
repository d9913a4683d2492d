package main

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mqttsec/mqttsec/internal/cli"
	"github.com/mqttsec/mqttsec/internal/keyfile"
	"github.com/mqttsec/mqttsec/internal/testbroker"
	"github.com/mqttsec/mqttsec/internal/testwait"
	"github.com/mqttsec/mqttsec/mqttsec"
	"github.com/mqttsec/mqttsec/mqttsec/replay"
)

func TestGatewayAnswersWithKeysFromFiles(t *testing.T) {
	b := startBroker(t)
	dir := t.TempDir()
	hmac := filepath.Join(dir, "client-gateway.hmac")
	gwSign, clSign := filepath.Join(dir, "gateway"), filepath.Join(dir, "client")
	for _, err := range []error{keyfile.WriteSecret(hmac, 32), keyfile.WriteEd25519(gwSign), keyfile.WriteEd25519(clSign)} {
		if err != nil {
			t.Fatal(err)
		}
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	ready := make(chan struct{})
	done := make(chan error, 1)
	var out, errOut bytes.Buffer
	users, groups := filepath.Join(dir, "users"), filepath.Join(dir, "groups")
	os.WriteFile(users, []byte("client  callers\n"), 0o644)
	os.WriteFile(groups, []byte("callers  echo, time\n"), 0o644)
	go func() {
		done <- run(ctx, []string{"--broker", b.URL(), "--hmac-key", hmac, "--sign-key", gwSign + ".key", "--peer-pub", clSign + ".pub",
			"--users", users, "--groups", groups}, &out, &errOut, ready)
	}()
	select {
	case <-ready:
	case err := <-done:
		t.Fatalf("gateway: %v\n%s", err, errOut.String())
	}
	keys := cli.Keys{HMAC: hmac, SignKey: clSign + ".key", PeerPub: gwSign + ".pub"}
	ring, err := keys.Keyring("gateway")
	if err != nil {
		t.Fatal(err)
	}
	rctx, rcancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer rcancel()
	c := startClient(t, rctx, b.URL(), ring)
	reply, err := c.Request(rctx, "gateway", "echo", []byte("hello"))
	if err != nil || string(reply) != "hello" {
		t.Fatalf("echo = %q, %v", reply, err)
	}
	if _, err := c.Request(rctx, "gateway", "time", nil); err != nil {
		t.Fatalf("time: %v", err)
	}
	// Not granted by the rules: a sealed "forbidden" error reply.
	var remote *mqttsec.Error
	if _, err := c.Request(rctx, "gateway", "reboot", nil); !errors.As(err, &remote) || remote.Code != mqttsec.CodeForbidden {
		t.Fatalf("ungranted method: %v", err)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("gateway exit: %v", err)
	}
	if !strings.Contains(out.String(), "accepted=2") || !strings.Contains(out.String(), "forbidden=1") {
		t.Fatalf("gateway output:\n%s", out.String())
	}
}

func TestGatewayRefusesBadFlags(t *testing.T) {
	dir := t.TempDir()
	open := filepath.Join(dir, "open.hmac")
	if err := keyfile.WriteSecret(open, 32); err != nil {
		t.Fatal(err)
	}
	if err := chmod(open); err != nil {
		t.Fatal(err)
	}
	good := filepath.Join(dir, "good.hmac")
	if err := keyfile.WriteSecret(good, 32); err != nil {
		t.Fatal(err)
	}
	lostCounter := filepath.Join(dir, "state")
	if err := os.MkdirAll(filepath.Join(lostCounter, "replay"), 0o700); err != nil {
		t.Fatal(err)
	}
	for _, args := range [][]string{
		{},                   // no keys
		{"--hmac-key", open}, // group-readable secret
		{"--sign-key", "x"},  // half a signature setup
		{"--hmac-key", filepath.Join(dir, "missing")},
		{"--hmac-key", good, "--state", lostCounter}, // a replay store whose counter file is gone
	} {
		var out, errOut bytes.Buffer
		if err := run(context.Background(), args, &out, &errOut, nil); err == nil {
			t.Errorf("run(%q) succeeded", args)
		}
	}
}

// With --state, a request captured before a restart is refused after it,
// and the gateway's replies keep counting upwards (the client, which saw
// the first run's replies, accepts the second run's).
func TestGatewayStateSurvivesRestart(t *testing.T) {
	b := startBroker(t)
	hmac, state := hmacAndState(t)
	conn := cli.Conn{Broker: b.URL(), Protocol: 5}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	// Eve records every request on the broker.
	eve, err := conn.Transport("eve")
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var captured [][]byte
	if err := eve.Start(ctx, func(in mqttsec.Inbound) {
		mu.Lock()
		captured = append(captured, bytes.Clone(in.Payload))
		mu.Unlock()
	}); err != nil {
		t.Fatal(err)
	}
	defer eve.Close(context.Background())
	if err := eve.Subscribe(ctx, "mqttsec/gateway/req/#"); err != nil {
		t.Fatal(err)
	}

	gateway := func() (stop func() string, errOut *testwait.Log) {
		gctx, gcancel := context.WithCancel(ctx)
		ready, done := make(chan struct{}), make(chan error, 1)
		var out bytes.Buffer
		errOut = &testwait.Log{}
		go func() {
			done <- run(gctx, []string{"--broker", b.URL(), "--hmac-key", hmac, "--state", state}, &out, errOut, ready)
		}()
		select {
		case <-ready:
		case err := <-done:
			gcancel()
			t.Fatalf("gateway: %v\n%s", err, errOut.String())
		}
		return func() string {
			gcancel()
			if err := <-done; err != nil {
				t.Fatalf("gateway exit: %v", err)
			}
			return out.String()
		}, errOut
	}

	ring, err := (&cli.Keys{HMAC: hmac}).Keyring("gateway")
	if err != nil {
		t.Fatal(err)
	}
	c := startClient(t, ctx, b.URL(), ring)

	stop, _ := gateway()
	if reply, err := c.Request(ctx, "gateway", "echo", []byte("before")); err != nil || string(reply) != "before" {
		t.Fatalf("echo before the restart = %q, %v", reply, err)
	}
	testwait.Until(t, "the request captured", func() bool { mu.Lock(); defer mu.Unlock(); return len(captured) == 1 })
	// A second gateway on the same state would admit what the first had
	// seen: it is refused while the first runs.
	var second bytes.Buffer
	if err := run(ctx, []string{"--broker", b.URL(), "--hmac-key", hmac, "--state", state}, &second, &second, nil); !errors.Is(err, replay.ErrLocked) {
		t.Fatalf("a second gateway on the same state = %v, want replay.ErrLocked\n%s", err, second.String())
	}
	stop()

	stop, errOut := gateway()
	if err := eve.Publish(ctx, mqttsec.Outbound{Topic: "mqttsec/gateway/req/echo", Payload: captured[0]}); err != nil {
		t.Fatal(err)
	}
	testwait.Until(t, "the replay refused", func() bool { return strings.Contains(errOut.String(), "class=replayed") })
	if reply, err := c.Request(ctx, "gateway", "echo", []byte("after")); err != nil || string(reply) != "after" {
		t.Fatalf("echo after the restart = %q, %v", reply, err)
	}
	if out := stop(); !strings.Contains(out, "replayed=1") || !strings.Contains(out, "accepted=1") {
		t.Fatalf("second run's counts:\n%s", out)
	}
}

// startBroker starts an embedded broker that the test's end stops.
func startBroker(t *testing.T) *testbroker.Broker {
	t.Helper()
	b, err := testbroker.Start("127.0.0.1:0", nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Close() })
	return b
}

// hmacAndState returns a new shared HMAC key file and a --state directory
// path (not yet created), both in the test's temporary directory.
func hmacAndState(t *testing.T) (hmac, state string) {
	t.Helper()
	dir := t.TempDir()
	hmac, state = filepath.Join(dir, "client-gateway.hmac"), filepath.Join(dir, "state")
	if err := keyfile.WriteSecret(hmac, 32); err != nil {
		t.Fatal(err)
	}
	return hmac, state
}

// startClient starts the peer "client" of the gateway on broker, with ring.
func startClient(t *testing.T, ctx context.Context, broker string, ring *mqttsec.Keyring) *mqttsec.Client {
	t.Helper()
	tr, err := (&cli.Conn{Broker: broker, Protocol: 5}).Transport("test-client")
	if err != nil {
		t.Fatal(err)
	}
	c, err := mqttsec.NewClient(mqttsec.Config{ID: "client", Transport: tr, Keyring: ring})
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Start(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close(context.Background()) })
	return c
}
