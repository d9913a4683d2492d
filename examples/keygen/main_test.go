package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/mqttsec/mqttsec/mqttsec/keydir"
)

func TestKeygenMakesLoadableDirectories(t *testing.T) {
	root := t.TempDir()
	gw, cl := filepath.Join(root, "gateway"), filepath.Join(root, "client")
	var out, errOut bytes.Buffer
	steps := [][]string{
		{"init", "--dir", gw, "--id", "gateway"},
		{"init", "--dir", cl, "--id", "client"},
		{"pair", "--dir", gw, "--peer-dir", cl, "--hmac", "--send", "hmac sig"},
		{"export", "--dir", gw, "--to", filepath.Join(cl, "peers", "gateway")},
		{"export", "--dir", cl, "--to", filepath.Join(gw, "peers", "client")},
		{"show", "--dir", gw},
	}
	for _, args := range steps {
		if err := run(args, &out, &errOut); err != nil {
			t.Fatalf("keygen %v: %v\n%s", args, err, errOut.String())
		}
	}
	if !strings.Contains(out.String(), "peer client: requires hmac+sig") || !strings.Contains(out.String(), "key id") {
		t.Fatalf("output:\n%s", out.String())
	}
	for _, d := range []string{gw, cl} {
		if _, err := keydir.Load(d); err != nil {
			t.Fatalf("Load(%s): %v", d, err)
		}
	}
	for _, conf := range []string{filepath.Join(gw, "peers", "client", "peer.conf"), filepath.Join(cl, "peers", "gateway", "peer.conf")} {
		data, err := os.ReadFile(conf)
		if err != nil {
			t.Fatal(err)
		}
		if string(data) != "send hmac sig\n" {
			t.Fatalf("%s: %q", conf, data)
		}
	}
	// There is one envelope format: pair has no flag to choose a version.
	if err := run([]string{"pair", "--dir", gw, "--peer-dir", cl, "--hmac", "--envelope", "2", "--force"}, &out, &errOut); err == nil || !strings.Contains(err.Error(), "-envelope") {
		t.Fatalf("pair --envelope 2: %v", err)
	}
	// Nothing is overwritten without --force.
	key, err := os.ReadFile(filepath.Join(gw, "self", "ed25519.key"))
	if err != nil {
		t.Fatal(err)
	}
	if err := run([]string{"init", "--dir", gw, "--id", "gateway"}, &out, &errOut); err == nil {
		t.Fatal("init overwrote an existing directory")
	}
	if again, err := os.ReadFile(filepath.Join(gw, "self", "ed25519.key")); err != nil || !bytes.Equal(key, again) {
		t.Fatalf("a key changed: %v", err)
	}
	for _, args := range [][]string{{}, {"frobnicate"}, {"init"}, {"pair", "--dir", gw}, {"export", "--dir", gw}} {
		if err := run(args, &out, &errOut); err == nil {
			t.Errorf("keygen %v succeeded", args)
		}
	}
}
