package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/mqttsec/mqttsec/internal/cli"
	"github.com/mqttsec/mqttsec/internal/testbroker"
	"github.com/mqttsec/mqttsec/mqttsec"
	"github.com/mqttsec/mqttsec/mqttsec/keydir"
)

func TestClientRequestWithKeysFromFiles(t *testing.T) {
	b, err := testbroker.Start("127.0.0.1:0", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	dir := t.TempDir()
	hmac := filepath.Join(dir, "shared.hmac")
	var out, errOut bytes.Buffer
	if err := run(context.Background(), []string{"--gen-hmac", hmac}, &out, &errOut); err != nil {
		t.Fatal(err)
	}
	if err := run(context.Background(), []string{"--gen-hmac", hmac}, &out, &errOut); err == nil {
		t.Fatal("--gen-hmac overwrote an existing key")
	}
	// A gateway with the same key file.
	ring, err := (&cli.Keys{HMAC: hmac}).Keyring("client")
	if err != nil {
		t.Fatal(err)
	}
	tr, err := (&cli.Conn{Broker: b.URL(), Protocol: 3}).Transport("test-gateway")
	if err != nil {
		t.Fatal(err)
	}
	srv, err := mqttsec.NewServer(mqttsec.ServerConfig{Config: mqttsec.Config{ID: "gateway", Transport: tr, Keyring: ring}})
	if err != nil {
		t.Fatal(err)
	}
	srv.HandleFunc("echo", func(ctx context.Context, r *mqttsec.Request) ([]byte, error) { return r.Payload, nil })
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := srv.Start(ctx); err != nil {
		t.Fatal(err)
	}
	defer srv.Close(context.Background())

	for _, proto := range []string{"3", "5"} {
		out.Reset()
		err := run(ctx, []string{"--broker", b.URL(), "--protocol", proto, "--hmac-key", hmac, "echo", "hello"}, &out, &errOut)
		if err != nil || out.String() != "hello\n" {
			t.Fatalf("v%s: echo printed %q, %v", proto, out.String(), err)
		}
	}
	// There is one envelope format: no flag chooses a version.
	if err := run(ctx, []string{"--broker", b.URL(), "--hmac-key", hmac, "--envelope", "2", "echo"}, &out, &errOut); err == nil || !strings.Contains(err.Error(), "-envelope") {
		t.Fatalf("--envelope 2: %v", err)
	}
	err = run(ctx, []string{"--broker", b.URL(), "--hmac-key", hmac, "delete-everything"}, &out, &errOut)
	if err == nil || !strings.Contains(err.Error(), "not-found") {
		t.Fatalf("unknown method: %v", err)
	}
	if err := run(ctx, []string{"--broker", b.URL(), "--hmac-key", hmac}, &out, &errOut); err == nil {
		t.Fatal("no method accepted")
	}
}

func TestClientWithKeyDirectories(t *testing.T) {
	b, err := testbroker.Start("127.0.0.1:0", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	root := t.TempDir()
	gw, cl := filepath.Join(root, "gateway"), filepath.Join(root, "client")
	for _, err := range []error{
		keydir.Init(gw, "gateway", keydir.InitOptions{}), keydir.Init(cl, "client", keydir.InitOptions{}),
		keydir.Pair(gw, cl, keydir.PairOptions{HMAC: true, Send: "hmac sig enc"}),
		keydir.Export(gw, filepath.Join(cl, "peers", "gateway"), false), keydir.Export(cl, filepath.Join(gw, "peers", "client"), false),
	} {
		if err != nil {
			t.Fatal(err)
		}
	}
	ring, err := (&cli.Keys{Dir: gw}).Keyring("client")
	if err != nil {
		t.Fatal(err)
	}
	tr, err := (&cli.Conn{Broker: b.URL(), Protocol: 5}).Transport("kd-gateway")
	if err != nil {
		t.Fatal(err)
	}
	srv, err := mqttsec.NewServer(mqttsec.ServerConfig{Config: mqttsec.Config{ID: "gateway", Transport: tr, Keyring: ring}})
	if err != nil {
		t.Fatal(err)
	}
	srv.HandleFunc("echo", func(ctx context.Context, r *mqttsec.Request) ([]byte, error) {
		return []byte(r.Protections.String() + " " + string(r.Payload)), nil
	})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := srv.Start(ctx); err != nil {
		t.Fatal(err)
	}
	defer srv.Close(context.Background())
	var out, errOut bytes.Buffer
	if err := run(ctx, []string{"--broker", b.URL(), "--keys", cl, "echo", "hi"}, &out, &errOut); err != nil {
		t.Fatalf("%v\n%s", err, errOut.String())
	}
	if out.String() != "enc+hmac+sig hi\n" {
		t.Fatalf("reply %q", out.String())
	}
	// A peer.conf still carrying the envelope version line of earlier
	// releases is refused, naming the file and the directive.
	conf := filepath.Join(cl, "peers", "gateway", "peer.conf")
	data, err := os.ReadFile(conf)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(conf, append(data, "envelope 3\n"...), 0o600); err != nil {
		t.Fatal(err)
	}
	err = run(ctx, []string{"--broker", b.URL(), "--keys", cl, "echo", "hi"}, &out, &errOut)
	if err == nil || !strings.Contains(err.Error(), "peer.conf") || !strings.Contains(err.Error(), "envelope") {
		t.Fatalf("peer.conf with an envelope line: %v", err)
	}
}
