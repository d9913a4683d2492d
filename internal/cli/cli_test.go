package cli

import (
	"bytes"
	"flag"
	"fmt"
	"strings"
	"testing"
)

func TestRedisOptions(t *testing.T) {
	for _, tt := range []struct {
		in   string
		addr string
		db   int
		tls  bool
		err  bool
	}{
		{in: "127.0.0.1:6379", addr: "127.0.0.1:6379"},
		{in: "redis://127.0.0.1:6390/2", addr: "127.0.0.1:6390", db: 2},
		{in: "rediss://user:secret@cache.example:6380", addr: "cache.example:6380", tls: true},
		{in: "redis://127.0.0.1:6379/not-a-db", err: true},
		{in: "http://127.0.0.1:6379", err: true},
	} {
		t.Run(tt.in, func(t *testing.T) {
			opt, err := RedisOptions(tt.in)
			if tt.err {
				if err == nil || !strings.HasPrefix(err.Error(), "--redis: ") {
					t.Fatalf("RedisOptions = %+v, %v; want an error naming --redis", opt, err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if opt.Addr != tt.addr || opt.DB != tt.db || (opt.TLSConfig != nil) != tt.tls {
				t.Fatalf("Addr %q DB %d TLS %v; want %q %d %v", opt.Addr, opt.DB, opt.TLSConfig != nil, tt.addr, tt.db, tt.tls)
			}
		})
	}
}

// -h, -help and --help print the usage to stdout and report help with no
// error (the command exits 0); anything else goes to the set's output.
func TestParse(t *testing.T) {
	for _, tt := range []struct {
		args               []string
		help, err          bool
		inStdout, inStderr string
	}{
		{args: []string{"-h"}, help: true, inStdout: "usage: x"},
		{args: []string{"--help"}, help: true, inStdout: "usage: x"},
		{args: []string{"-help"}, help: true, inStdout: "usage: x"},
		{args: []string{"--id", "a", "-h"}, help: true, inStdout: "-id string"},
		{args: []string{"--nope"}, err: true, inStderr: "usage: x"},
		{args: []string{"--id", "a", "arg"}},
	} {
		t.Run(strings.Join(tt.args, " "), func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			fs := flag.NewFlagSet("x", flag.ContinueOnError)
			fs.SetOutput(&stderr)
			fs.Usage = func() { fmt.Fprintln(fs.Output(), "usage: x"); fs.PrintDefaults() }
			fs.String("id", "", "an id")
			help, err := Parse(fs, tt.args, &stdout)
			if help != tt.help || (err != nil) != tt.err {
				t.Fatalf("Parse = %v, %v; want help %v, error %v", help, err, tt.help, tt.err)
			}
			if !strings.Contains(stdout.String(), tt.inStdout) || !strings.Contains(stderr.String(), tt.inStderr) {
				t.Fatalf("stdout %q, stderr %q; want %q and %q in them", stdout.String(), stderr.String(), tt.inStdout, tt.inStderr)
			}
			if tt.inStdout == "" && stdout.Len() != 0 || tt.inStderr == "" && stderr.Len() != 0 {
				t.Fatalf("stdout %q, stderr %q; want nothing where nothing is expected", stdout.String(), stderr.String())
			}
			if fs.Output() != &stderr {
				t.Fatal("Parse did not restore the set's output")
			}
		})
	}
}

func TestPrintDefaultsHides(t *testing.T) {
	var out bytes.Buffer
	fs := flag.NewFlagSet("x", flag.ContinueOnError)
	fs.SetOutput(&out)
	d := fs.Duration("test.benchtime", 0, "hidden")
	fs.String("filter", "all", "shown")
	*d = 5 // a value set before the usage is printed is not shown as the default
	PrintDefaults(fs, "test.")
	if got := out.String(); strings.Contains(got, "test.") || !strings.Contains(got, "-filter") || !strings.Contains(got, `(default "all")`) {
		t.Fatalf("usage:\n%s", got)
	}
}

func TestCheckID(t *testing.T) {
	for _, tt := range []struct {
		id string
		ok bool
	}{
		{"door-7", true}, {"a.b_c:d@e", true}, {"bad id", false}, {"", false}, {"a/b", false}, {strings.Repeat("x", 129), false},
	} {
		err := CheckID("id", tt.id)
		if (err == nil) != tt.ok {
			t.Errorf("CheckID(%q) = %v", tt.id, err)
		}
		if err != nil && !strings.Contains(err.Error(), "--id") || err != nil && !strings.Contains(err.Error(), "1 to 128 bytes of ASCII letters, digits and - . _ : @") {
			t.Errorf("CheckID(%q) = %v; want the flag and the allowed characters", tt.id, err)
		}
	}
}

// The key directory's id is the command's unless --id says otherwise; a
// different --id is an error naming both.
func TestOwnID(t *testing.T) {
	for _, tt := range []struct {
		name  string
		args  []string
		dirID string
		want  string
		err   []string
	}{
		{name: "default", want: "client"},
		{name: "flag", args: []string{"--id", "door-7"}, want: "door-7"},
		{name: "directory", dirID: "door-7", want: "door-7"},
		{name: "both agree", args: []string{"--id", "door-7"}, dirID: "door-7", want: "door-7"},
		{name: "default given", args: []string{"--id", "client"}, dirID: "door-7", err: []string{`"client"`, `"door-7"`, "keys/door-7"}},
		{name: "both differ", args: []string{"--id", "door-8"}, dirID: "door-7", err: []string{`"door-8"`, `"door-7"`}},
		{name: "bad id", args: []string{"--id", "bad id"}, err: []string{"- . _ : @"}},
		{name: "bad id beside a directory", args: []string{"--id", "bad id"}, dirID: "door-7", err: []string{"--id", "- . _ : @"}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			fs := flag.NewFlagSet("x", flag.ContinueOnError)
			id := fs.String("id", "client", "")
			if err := fs.Parse(tt.args); err != nil {
				t.Fatal(err)
			}
			got, err := OwnID(fs, "id", *id, "keys/door-7", tt.dirID)
			if tt.err == nil {
				if err != nil || got != tt.want {
					t.Fatalf("OwnID = %q, %v; want %q", got, err, tt.want)
				}
				return
			}
			if err == nil {
				t.Fatalf("OwnID = %q; want an error", got)
			}
			for _, s := range tt.err {
				if !strings.Contains(err.Error(), s) {
					t.Errorf("error %q does not say %s", err, s)
				}
			}
		})
	}
}
