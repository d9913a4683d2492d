package main

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/mqttsec/mqttsec/internal/cli"
	"github.com/mqttsec/mqttsec/internal/keyfile"
	"github.com/mqttsec/mqttsec/internal/testbroker"
	"github.com/mqttsec/mqttsec/mqttsec"
)

func TestGatewayAnswersWithKeysFromFiles(t *testing.T) {
	b, err := testbroker.Start("127.0.0.1:0", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
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
	conn := cli.Conn{Broker: b.URL(), Protocol: 5}
	tr, err := conn.Transport("test-client")
	if err != nil {
		t.Fatal(err)
	}
	c, err := mqttsec.NewClient(mqttsec.Config{ID: "client", Transport: tr, Keyring: ring})
	if err != nil {
		t.Fatal(err)
	}
	rctx, rcancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer rcancel()
	if err := c.Start(rctx); err != nil {
		t.Fatal(err)
	}
	defer c.Close(context.Background())
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
	for _, args := range [][]string{
		{},                   // no keys
		{"--hmac-key", open}, // group-readable secret
		{"--sign-key", "x"},  // half a signature setup
		{"--hmac-key", filepath.Join(dir, "missing")},
	} {
		var out, errOut bytes.Buffer
		if err := run(context.Background(), args, &out, &errOut, nil); err == nil {
			t.Errorf("run(%q) succeeded", args)
		}
	}
}
