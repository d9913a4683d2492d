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
	serveGateway(t, b.URL(), 3, "test-gateway", ring, func(ctx context.Context, r *mqttsec.Request) ([]byte, error) { return r.Payload, nil })
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()

	// host:port without a scheme is tcp://host:port on both versions.
	for _, broker := range []string{b.URL(), b.Addr()} {
		for _, proto := range []string{"3", "5"} {
			out.Reset()
			err := run(ctx, []string{"--broker", broker, "--protocol", proto, "--timeout", "5s", "--hmac-key", hmac, "echo", "hello"}, &out, &errOut)
			if err != nil || out.String() != "hello\n" {
				t.Fatalf("v%s --broker %s: echo printed %q, %v", proto, broker, out.String(), err)
			}
		}
	}
	// An unknown scheme is refused before connecting, naming the accepted
	// ones.
	for _, proto := range []string{"3", "5"} {
		err := run(ctx, []string{"--broker", "http://" + b.Addr(), "--protocol", proto, "--hmac-key", hmac, "echo", "hello"}, &out, &errOut)
		if err == nil || !strings.Contains(err.Error(), "tcp://") || !strings.Contains(err.Error(), `"http"`) {
			t.Fatalf("v%s --broker http://: %v; want an error naming the accepted schemes", proto, err)
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
	serveGateway(t, b.URL(), 5, "kd-gateway", ring, func(ctx context.Context, r *mqttsec.Request) ([]byte, error) {
		return []byte(r.Protections.String() + " " + string(r.Payload)), nil
	})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
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

func TestClientHelp(t *testing.T) {
	for _, args := range [][]string{{"-h"}, {"--help"}, {"--keys", "x", "-help"}} {
		var out, errOut bytes.Buffer
		if err := run(context.Background(), args, &out, &errOut); err != nil || !strings.HasPrefix(out.String(), "usage: client") || !strings.Contains(out.String(), "-keys") || errOut.Len() != 0 {
			t.Errorf("client %q = %v; stdout %q, stderr %q; want usage on stdout and no error", args, err, out.String(), errOut.String())
		}
	}
}

// With --keys and no --id the client is the party of the key directory; an
// --id that differs from it, or is not an id, is refused before any
// connection.
func TestClientIDFromKeyDirectory(t *testing.T) {
	b, err := testbroker.Start("127.0.0.1:0", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	root := t.TempDir()
	gw, door := filepath.Join(root, "gateway"), filepath.Join(root, "door-7")
	for _, err := range []error{
		keydir.Init(gw, "gateway", keydir.InitOptions{}), keydir.Init(door, "door-7", keydir.InitOptions{}),
		keydir.Pair(gw, door, keydir.PairOptions{HMAC: true}),
	} {
		if err != nil {
			t.Fatal(err)
		}
	}
	ring, err := (&cli.Keys{Dir: gw}).Keyring("door-7")
	if err != nil {
		t.Fatal(err)
	}
	serveGateway(t, b.URL(), 5, "kd-gateway", ring, func(ctx context.Context, r *mqttsec.Request) ([]byte, error) {
		return []byte(r.Caller + " " + string(r.Payload)), nil
	})
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	for _, tt := range []struct {
		name  string
		flags []string
		reply string
		err   []string
	}{
		{name: "id from the directory", reply: "door-7 hello\n"},
		{name: "the same id given", flags: []string{"--id", "door-7"}, reply: "door-7 hello\n"},
		{name: "the default id given", flags: []string{"--id", "client"}, err: []string{`"client"`, `"door-7"`, door}},
		{name: "another id", flags: []string{"--id", "door-8"}, err: []string{`"door-8"`, `"door-7"`}},
		{name: "not an id", flags: []string{"--id", "bad id"}, err: []string{"--id", "ASCII letters, digits and - . _ : @"}},
		{name: "server not an id", flags: []string{"--server", "gate way"}, err: []string{"--server", "ASCII letters, digits and - . _ : @"}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			var out, errOut bytes.Buffer
			args := append([]string{"--broker", b.URL(), "--timeout", "5s", "--keys", door}, tt.flags...)
			err := run(ctx, append(args, "echo", "hello"), &out, &errOut)
			if tt.err == nil {
				if err != nil || out.String() != tt.reply {
					t.Fatalf("reply %q, %v; want %q", out.String(), err, tt.reply)
				}
				return
			}
			if err == nil {
				t.Fatalf("reply %q; want an error", out.String())
			}
			for _, s := range tt.err {
				if !strings.Contains(err.Error(), s) {
					t.Errorf("error %q does not say %s", err, s)
				}
			}
		})
	}
}

// An id that is not one is refused first, saying what an id may hold.
func TestClientRefusesBadIDs(t *testing.T) {
	missing := filepath.Join(t.TempDir(), "missing.hmac")
	for _, args := range [][]string{
		{"--id", "bad id", "--hmac-key", missing, "echo"},
		{"--server", "a/b", "--hmac-key", missing, "echo"},
		{"--id", "", "echo"},
	} {
		var out, errOut bytes.Buffer
		err := run(context.Background(), args, &out, &errOut)
		if err == nil || !strings.Contains(err.Error(), "--"+strings.TrimPrefix(args[0], "--")) || !strings.Contains(err.Error(), "ASCII letters, digits and - . _ : @") {
			t.Errorf("client %q = %v; want an error naming %s and the allowed characters", args, err, args[0])
		}
	}
}

// serveGateway starts the SDK's Server as "gateway" on broker over MQTT
// proto, with ring, answering "echo" with echo, until the test ends.
func serveGateway(t *testing.T, broker string, proto int, clientID string, ring *mqttsec.Keyring, echo mqttsec.HandlerFunc) {
	t.Helper()
	tr, err := (&cli.Conn{Broker: broker, Protocol: proto}).Transport(clientID)
	if err != nil {
		t.Fatal(err)
	}
	srv, err := mqttsec.NewServer(mqttsec.ServerConfig{Config: mqttsec.Config{ID: "gateway", Transport: tr, Keyring: ring}})
	if err != nil {
		t.Fatal(err)
	}
	srv.HandleFunc("echo", echo)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := srv.Start(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Close(context.Background()) })
}
