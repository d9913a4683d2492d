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

func TestKeygenHelp(t *testing.T) {
	for _, tt := range []struct {
		args []string
		want string
	}{
		{[]string{"-h"}, "usage: keygen init|export|pair|show"},
		{[]string{"--help"}, "usage: keygen init|export|pair|show"},
		{[]string{"help"}, "keygen pair --dir DIR --peer-dir DIR"},
		{[]string{"init", "-h"}, "usage: keygen init --dir DIR --id ID"},
		{[]string{"export", "--help"}, "usage: keygen export --dir DIR --to PEERDIR"},
		{[]string{"pair", "-h"}, "-peer-dir"},
		{[]string{"show", "--dir", "x", "-h"}, "usage: keygen show --dir DIR"},
	} {
		var out, errOut bytes.Buffer
		if err := run(tt.args, &out, &errOut); err != nil || !strings.Contains(out.String(), tt.want) || errOut.Len() != 0 {
			t.Errorf("keygen %q = %v; stdout %q, stderr %q; want %q on stdout and no error", tt.args, err, out.String(), errOut.String(), tt.want)
		}
	}
}

// Errors an operator acts on say what to type.
func TestKeygenErrorsNameTheFix(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "door-7")
	var out, errOut bytes.Buffer
	exported := filepath.Join(t.TempDir(), "peers", "door-7")
	for _, args := range [][]string{{"init", "--dir", dir, "--id", "door-7"}, {"export", "--dir", dir, "--to", exported}} {
		if err := run(args, &out, &errOut); err != nil {
			t.Fatal(err)
		}
	}
	for _, tt := range []struct {
		args []string
		want []string
	}{
		{[]string{"init", "--dir", dir, "--id", "door-7"}, []string{"file exists", "--force"}},
		{[]string{"export", "--dir", dir, "--to", exported}, []string{"file exists", "--force"}},
		{[]string{"init", "--dir", filepath.Join(t.TempDir(), "x"), "--id", "bad id"}, []string{`--id "bad id"`, "1 to 128 bytes of ASCII letters, digits and - . _ : @"}},
	} {
		err := run(tt.args, &out, &errOut)
		for _, s := range tt.want {
			if err == nil || !strings.Contains(err.Error(), s) {
				t.Errorf("keygen %q = %v; want an error saying %s", tt.args, err, s)
			}
		}
	}
}
