package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/mqttsec/mqttsec/mqttsec"
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

// pair --sign writes the sign line on both sides.
func TestKeygenPairSign(t *testing.T) {
	root := t.TempDir()
	gw, door := filepath.Join(root, "gateway"), filepath.Join(root, "door-7")
	var out, errOut bytes.Buffer
	for _, args := range [][]string{
		{"init", "--dir", gw, "--id", "gateway"},
		{"init", "--dir", door, "--id", "door-7"},
		{"pair", "--dir", gw, "--peer-dir", door, "--hmac", "--send", "hmac sig", "--sign", "es256"},
	} {
		if err := run(args, &out, &errOut); err != nil {
			t.Fatalf("keygen %v: %v\n%s", args, err, errOut.String())
		}
	}
	for _, conf := range []string{filepath.Join(gw, "peers", "door-7", "peer.conf"), filepath.Join(door, "peers", "gateway", "peer.conf")} {
		data, err := os.ReadFile(conf)
		if err != nil {
			t.Fatal(err)
		}
		if string(data) != "send hmac sig\nsign es256\n" {
			t.Fatalf("%s: %q", conf, data)
		}
	}
	err := run([]string{"pair", "--dir", gw, "--peer-dir", door, "--hmac", "--send", "sig", "--sign", "rsa2", "--force"}, &out, &errOut)
	if err == nil || !strings.Contains(err.Error(), "sign ed25519|es256|rsa") {
		t.Fatalf("pair --sign rsa2: %v", err)
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
		{[]string{"pair", "-h"}, "-sign"},
		{[]string{"show", "--dir", "x", "-h"}, "usage: keygen show --dir DIR"},
		{[]string{"help"}, "keygen acl --dir DIR [--out FILE]"},
		{[]string{"acl", "-h"}, "usage: keygen acl --dir DIR [--out FILE]"},
		{[]string{"acl", "--help"}, "The party of DIR is the server"},
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

// TestKeygenACL: acl writes, for a gateway directory with two peers, the
// ACL the generator gives when the gateway serves and the peers call it.
func TestKeygenACL(t *testing.T) {
	root := t.TempDir()
	gw := filepath.Join(root, "gateway")
	var out, errOut bytes.Buffer
	steps := [][]string{{"init", "--dir", gw, "--id", "gateway"}}
	for _, peer := range []string{"door-7", "alice"} {
		d := filepath.Join(root, peer)
		steps = append(steps,
			[]string{"init", "--dir", d, "--id", peer},
			[]string{"pair", "--dir", gw, "--peer-dir", d, "--hmac"})
	}
	for _, args := range steps {
		if err := run(args, &out, &errOut); err != nil {
			t.Fatalf("keygen %v: %v\n%s", args, err, errOut.String())
		}
	}
	acl := func(topics mqttsec.Topics) string {
		t.Helper()
		want, err := topics.MosquittoACL([]mqttsec.ACLIdentity{
			{ID: "gateway", Serves: true, EventsFrom: []string{"alice", "door-7"}},
			{ID: "alice", Calls: []string{"gateway"}, EventsFrom: []string{"gateway"}},
			{ID: "door-7", Calls: []string{"gateway"}, EventsFrom: []string{"gateway"}},
		})
		if err != nil {
			t.Fatal(err)
		}
		return string(want)
	}
	want := acl(mqttsec.Topics{})
	for _, s := range []string{"user gateway\n", "user alice\n", "user door-7\n", "topic write mqttsec/gateway/req/#"} {
		if !strings.Contains(want, s) {
			t.Fatalf("generator output lacks %q:\n%s", s, want)
		}
	}
	file := filepath.Join(root, "mosquitto.acl")
	for _, tt := range []struct {
		name    string
		args    []string
		stdout  string // exact stdout, unless ""
		errWant []string
		file    string // the file's content afterwards, unless ""
	}{
		{name: "stdout", args: []string{"acl", "--dir", gw}, stdout: want},
		{name: "prefix", args: []string{"acl", "--dir", gw, "--prefix", "site/a"}, stdout: acl(mqttsec.Topics{Prefix: "site/a"})},
		{name: "out", args: []string{"acl", "--dir", gw, "--out", file}, file: want},
		{name: "out again", args: []string{"acl", "--dir", gw, "--out", file, "--prefix", "other"}, errWant: []string{"file exists", "--force"}, file: want},
		{name: "out force", args: []string{"acl", "--dir", gw, "--out", file, "--prefix", "other", "--force"}, file: acl(mqttsec.Topics{Prefix: "other"})},
		{name: "no dir", args: []string{"acl"}, errWant: []string{"acl needs --dir"}},
		{name: "not a key dir", args: []string{"acl", "--dir", root}, errWant: []string{filepath.Join("self", "id")}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			var out, errOut bytes.Buffer
			err := run(tt.args, &out, &errOut)
			if tt.errWant == nil && err != nil {
				t.Fatalf("keygen %q: %v\n%s", tt.args, err, errOut.String())
			}
			for _, s := range tt.errWant {
				if err == nil || !strings.Contains(err.Error(), s) {
					t.Errorf("keygen %q = %v; want an error saying %s", tt.args, err, s)
				}
			}
			if tt.stdout != "" && out.String() != tt.stdout {
				t.Errorf("keygen %q wrote:\n%s\nwant:\n%s", tt.args, out.String(), tt.stdout)
			}
			if tt.file != "" {
				data, err := os.ReadFile(file)
				if err != nil {
					t.Fatal(err)
				}
				if string(data) != tt.file {
					t.Errorf("%s after keygen %q:\n%s\nwant:\n%s", file, tt.args, data, tt.file)
				}
				if fi, err := os.Stat(file); err != nil || fi.Mode().Perm() != 0o644 {
					t.Errorf("%s: mode %v, %v; want 0644", file, fi.Mode().Perm(), err)
				}
			}
		})
	}
}
