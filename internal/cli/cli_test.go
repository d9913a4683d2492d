package cli

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	mochi "github.com/mochi-mqtt/server/v2"
	"github.com/mochi-mqtt/server/v2/hooks/auth"
	"github.com/mochi-mqtt/server/v2/listeners"

	"github.com/mqttsec/mqttsec/internal/keyfile"
	"github.com/mqttsec/mqttsec/internal/testcerts"
	"github.com/mqttsec/mqttsec/mqttsec"
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

func TestRedisClusterOptions(t *testing.T) {
	for _, tt := range []struct {
		in    string
		addrs []string
		user  string
		tls   bool
		err   bool
	}{
		{in: "127.0.0.1:7000", addrs: []string{"127.0.0.1:7000"}},
		{in: "127.0.0.1:7000,127.0.0.1:7001,[::1]:7002", addrs: []string{"127.0.0.1:7000", "127.0.0.1:7001", "[::1]:7002"}},
		{in: "redis://127.0.0.1:7000?addr=127.0.0.1:7001", addrs: []string{"127.0.0.1:7000", "127.0.0.1:7001"}},
		{in: "rediss://gateway:secret@cache.example:7000?addr=cache2.example:7000", addrs: []string{"cache.example:7000", "cache2.example:7000"}, user: "gateway", tls: true},
		{in: "", err: true},
		{in: "127.0.0.1:7000,", err: true},
		{in: "127.0.0.1", err: true},
		{in: "http://127.0.0.1:7000", err: true},
		{in: "redis://127.0.0.1:7000?no_such_option=1", err: true},
	} {
		t.Run(tt.in, func(t *testing.T) {
			opt, err := RedisClusterOptions(tt.in)
			if tt.err {
				if err == nil || !strings.HasPrefix(err.Error(), "--redis-cluster: ") {
					t.Fatalf("RedisClusterOptions = %+v, %v; want an error naming --redis-cluster", opt, err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(opt.Addrs, tt.addrs) || opt.Username != tt.user || (opt.TLSConfig != nil) != tt.tls {
				t.Fatalf("Addrs %q user %q TLS %v; want %q %q %v", opt.Addrs, opt.Username, opt.TLSConfig != nil, tt.addrs, tt.user, tt.tls)
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

// Both transports take the --broker URL through mqttsec.ParseBrokerURL:
// a bad one is an error naming --broker before any connection, on either
// MQTT version; a user name or password in it is refused, naming the
// flags that take them, without showing the password.
func TestTransportChecksBroker(t *testing.T) {
	for _, proto := range []int{3, 5} {
		for _, tt := range []struct {
			broker string
			err    []string // in the error; nil for none
			is     error
		}{
			{broker: "127.0.0.1:1883"},
			{broker: "tcp://127.0.0.1:1883"},
			{broker: "localhost"},
			{broker: "TLS://h:8883"},
			{broker: "unix:///run/mosquitto.sock"},
			{broker: "http://127.0.0.1:1883", err: []string{`"http"`, "accepted", "tcp://", "tls://", "ws://", "wss://", "unix://", "host:port"}},
			{broker: "", err: []string{"empty"}},
			{broker: "tcp://", err: []string{"no host"}},
			{broker: "tcp://h:port", err: []string{"invalid port"}},
			{broker: "tcp://alice:s3cret@h:1883", err: []string{"--username", "--password-file", "$" + PasswordEnv}, is: mqttsec.ErrCredentialsInURL},
			{broker: "alice:s3cret@h:1883", err: []string{"--username"}, is: mqttsec.ErrCredentialsInURL},
		} {
			t.Run(fmt.Sprintf("v%d %s", proto, tt.broker), func(t *testing.T) {
				tr, err := (&Conn{Broker: tt.broker, Protocol: proto}).Transport("x")
				if (err == nil) != (tt.err == nil) {
					t.Fatalf("Transport = %v, %v; want error %v", tr, err, tt.err != nil)
				}
				if err == nil {
					return
				}
				for _, s := range append(tt.err, "--broker") {
					if !strings.Contains(err.Error(), s) {
						t.Errorf("error %q does not say %s", err, s)
					}
				}
				if !errors.Is(err, mqttsec.ErrInvalidConfig) || tt.is != nil && !errors.Is(err, tt.is) {
					t.Errorf("error %v does not wrap ErrInvalidConfig and %v", err, tt.is)
				}
				if strings.Contains(err.Error(), "s3cret") {
					t.Errorf("error %q shows the password", err)
				}
			})
		}
	}
}

// The TLS flags go with a TLS --broker URL: with a tcp:// one they are an
// error, not a connection in the clear.
func TestTLSFlagsNeedTLSBroker(t *testing.T) {
	certs, err := testcerts.New("client")
	if err != nil {
		t.Fatal(err)
	}
	files, err := certs.WriteFiles(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	for _, proto := range []int{3, 5} {
		c := Conn{Broker: "tcp://127.0.0.1:1883", Protocol: proto, CA: files.CA}
		if _, err := c.Transport("x"); err == nil || !strings.Contains(err.Error(), "--broker tcp://127.0.0.1:1883") || !strings.Contains(err.Error(), "tls://") {
			t.Errorf("v%d: --ca with a tcp:// broker: %v; want an error naming --broker and tls://", proto, err)
		}
		c.Broker = "tls://127.0.0.1:8883"
		if _, err := c.Transport("x"); err != nil {
			t.Errorf("v%d: --ca with a tls:// broker: %v", proto, err)
		}
		c.CA, c.Key = "", files.ClientKey
		if _, err := c.Transport("x"); err == nil || !errors.Is(err, mqttsec.ErrInvalidConfig) {
			t.Errorf("v%d: --key without --cert: %v; want an error", proto, err)
		}
	}
}

// Without --keys a peer id is needed; with it, "" means every peer.
func TestLoadWithoutPeer(t *testing.T) {
	_, _, err := (&Keys{HMAC: "x.hmac"}).Load("")
	if err == nil || !strings.Contains(err.Error(), "--keys") {
		t.Fatalf("Load(\"\") with --hmac-key = %v; want an error saying a peer id is needed", err)
	}
}

// writePasswordFile writes content to a new file with mode perm.
func writePasswordFile(t *testing.T, content string, perm os.FileMode) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "password")
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(path, perm); err != nil { // past the umask
		t.Fatal(err)
	}
	return path
}

// --username, --password-file and $MQTTSEC_PASSWORD reach the options
// given to mqttsec.NewTransport (which sends them on both MQTT versions:
// TestCredentialsConnect); a password file that group or others can read is
// refused, and every error names the flag that fixes it.
func TestCredentials(t *testing.T) {
	good := writePasswordFile(t, "s3cret pw\r\nsecond line ignored\n", 0o600)
	noNewline := writePasswordFile(t, "bare", 0o400)
	groupReadable := writePasswordFile(t, "s3cret\n", 0o640)
	otherReadable := writePasswordFile(t, "s3cret\n", 0o604)
	emptyLine := writePasswordFile(t, "\nsecond\n", 0o600)
	missing := filepath.Join(t.TempDir(), "absent")
	for _, tt := range []struct {
		name    string
		args    []string
		env     string // $MQTTSEC_PASSWORD, unset if ""
		user    string
		pass    string
		err     string // in the error; "" for none
		errPerm bool   // the error wraps keyfile.ErrPermissions
	}{
		{name: "none"},
		{name: "file", args: []string{"--username", "alice", "--password-file", good}, user: "alice", pass: "s3cret pw"},
		{name: "file without newline", args: []string{"--username", "alice", "--password-file", noNewline}, user: "alice", pass: "bare"},
		{name: "env", args: []string{"--username", "alice"}, env: "from-env", user: "alice", pass: "from-env"},
		{name: "file over env", args: []string{"--username", "alice", "--password-file", good}, env: "from-env", user: "alice", pass: "s3cret pw"},
		{name: "username alone", args: []string{"--username", "alice"}, user: "alice"},
		{name: "env without username", env: "from-env"},
		{name: "file without username", args: []string{"--password-file", good}, err: "--password-file needs --username"},
		{name: "group-readable file", args: []string{"--username", "alice", "--password-file", groupReadable}, err: "--password-file: ", errPerm: true},
		{name: "other-readable file", args: []string{"--username", "alice", "--password-file", otherReadable}, err: "--password-file: ", errPerm: true},
		{name: "empty first line", args: []string{"--username", "alice", "--password-file", emptyLine}, err: "--password-file " + emptyLine + ": the first line is empty"},
		{name: "missing file", args: []string{"--username", "alice", "--password-file", missing}, err: "--password-file: "},
		{name: "username not UTF-8", args: []string{"--username", "al\xffice"}, env: "from-env", err: "--username: "},
	} {
		for _, proto := range []string{"3", "5"} {
			t.Run(tt.name+"/v"+proto, func(t *testing.T) {
				if tt.env != "" {
					t.Setenv(PasswordEnv, tt.env)
				} else {
					t.Setenv(PasswordEnv, "")
					os.Unsetenv(PasswordEnv) // t.Setenv restores it afterwards
				}
				var c Conn
				fs := flag.NewFlagSet("x", flag.ContinueOnError)
				c.Register(fs)
				if err := fs.Parse(append([]string{"--broker", "127.0.0.1:1883", "--protocol", proto}, tt.args...)); err != nil {
					t.Fatal(err)
				}
				opt, _, err := c.options("id")
				if tt.err != "" {
					if err == nil || !strings.Contains(err.Error(), tt.err) {
						t.Fatalf("options error %v; want one containing %q", err, tt.err)
					}
					if tt.errPerm != errors.Is(err, keyfile.ErrPermissions) {
						t.Fatalf("options error %v: wraps ErrPermissions %v, want %v", err, !tt.errPerm, tt.errPerm)
					}
					if strings.Contains(err.Error(), "s3cret") {
						t.Fatalf("error %v quotes the password", err)
					}
					if _, err := c.Transport("id"); err == nil {
						t.Fatal("options failed but Transport did not")
					}
					return
				}
				if err != nil {
					t.Fatal(err)
				}
				if opt.Protocol != c.Protocol {
					t.Fatalf("--protocol %d built options for %d", c.Protocol, opt.Protocol)
				}
				user, pass := opt.Username, string(opt.Password)
				if user != tt.user || pass != tt.pass {
					t.Fatalf("username %q, password %q; want %q, %q", user, pass, tt.user, tt.pass)
				}
			})
		}
	}
}

// There is no --password flag: it would show in ps.
func TestNoPasswordFlag(t *testing.T) {
	fs := flag.NewFlagSet("x", flag.ContinueOnError)
	new(Conn).Register(fs)
	if fs.Lookup("password") != nil {
		t.Fatal("--password is registered")
	}
	for _, name := range []string{"username", "password-file"} {
		if fs.Lookup(name) == nil {
			t.Fatalf("--%s is not registered", name)
		}
	}
}

// startAuthBroker runs a mochi broker that admits only alice with password
// pw (the testbroker package admits everyone).
func startAuthBroker(t *testing.T) string {
	t.Helper()
	srv := mochi.New(&mochi.Options{InlineClient: true, Logger: slog.New(slog.DiscardHandler)})
	ledger := &auth.Ledger{Users: auth.Users{"alice": {Username: "alice", Password: "pw"}}}
	if err := srv.AddHook(new(auth.Hook), &auth.Options{Ledger: ledger}); err != nil {
		t.Fatal(err)
	}
	l := listeners.NewTCP(listeners.Config{ID: "auth", Address: "127.0.0.1:0"})
	if err := srv.AddListener(l); err != nil {
		t.Fatal(err)
	}
	if err := srv.Serve(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Close() })
	return "tcp://" + l.Address()
}

// A broker that requires a password admits the transport built from the
// flags, on both MQTT versions, and refuses a wrong password.
func TestCredentialsConnect(t *testing.T) {
	broker := startAuthBroker(t)
	right := writePasswordFile(t, "pw\n", 0o600)
	wrong := writePasswordFile(t, "not-pw\n", 0o600)
	for _, tt := range []struct {
		name string
		file string
		env  string
		ok   bool
	}{
		{name: "file", file: right, ok: true},
		{name: "env", env: "pw", ok: true},
		{name: "wrong file", file: wrong},
		{name: "wrong env", env: "not-pw"},
	} {
		for _, proto := range []int{3, 5} {
			t.Run(fmt.Sprintf("%s/v%d", tt.name, proto), func(t *testing.T) {
				t.Setenv(PasswordEnv, tt.env)
				c := Conn{Broker: broker, Protocol: proto, Username: "alice", PasswordFile: tt.file}
				tr, err := c.Transport(fmt.Sprintf("auth-%d", proto))
				if err != nil {
					t.Fatal(err)
				}
				timeout := 10 * time.Second
				if !tt.ok {
					timeout = 2 * time.Second
				}
				ctx, cancel := context.WithTimeout(context.Background(), timeout)
				defer cancel()
				err = tr.Start(ctx, func(mqttsec.Inbound) {})
				closeCtx, closeCancel := context.WithTimeout(context.Background(), 5*time.Second)
				defer closeCancel()
				defer tr.Close(closeCtx)
				if (err == nil) != tt.ok {
					t.Fatalf("Start = %v; want success %v", err, tt.ok)
				}
			})
		}
	}
}
