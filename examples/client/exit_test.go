package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/mqttsec/mqttsec/internal/cli"
	"github.com/mqttsec/mqttsec/internal/testbroker"
	"github.com/mqttsec/mqttsec/mqttsec"
)

// startGateway starts the SDK's Server as "gateway" on broker with the
// HMAC key in file hmac, answering "echo" with the payload.
func startGateway(t *testing.T, broker, hmac string) {
	t.Helper()
	ring, err := (&cli.Keys{HMAC: hmac}).Keyring("client")
	if err != nil {
		t.Fatal(err)
	}
	serveGateway(t, broker, 5, fmt.Sprintf("exit-gateway-%d", time.Now().UnixNano()), ring,
		func(ctx context.Context, r *mqttsec.Request) ([]byte, error) { return r.Payload, nil })
}

// closedAddr is a TCP address nothing listens on.
func closedAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	return addr
}

// The exit status says which kind of failure it was, and stderr (main's
// "client: " line) the typed error's text.
func TestClientExitStatus(t *testing.T) {
	b, err := testbroker.Start("127.0.0.1:0", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	dir := t.TempDir()
	hmac := filepath.Join(dir, "shared.hmac")
	if err := run(context.Background(), []string{"--gen-hmac", hmac}, &bytes.Buffer{}, &bytes.Buffer{}); err != nil {
		t.Fatal(err)
	}
	startGateway(t, b.URL(), hmac)
	base := []string{"--broker", b.URL(), "--hmac-key", hmac}
	for _, tt := range []struct {
		name string
		args []string
		code int
		says []string // in the error
	}{
		{name: "ok", args: append(base, "--timeout", "5s", "echo", "hi"), code: 0},
		{name: "help", args: []string{"-h"}, code: 0},
		{name: "bad flag", args: append(base, "--no-such-flag", "echo"), code: 2, says: []string{"-no-such-flag"}},
		{name: "bad timeout", args: append(base, "--timeout", "soon", "echo"), code: 2, says: []string{"-timeout"}},
		{name: "no method", args: base, code: 2, says: []string{"METHOD"}},
		{name: "bad key file", args: []string{"--broker", b.URL(), "--hmac-key", filepath.Join(dir, "missing.hmac"), "echo"}, code: 3, says: []string{"missing.hmac"}},
		{name: "key file exists", args: []string{"--gen-hmac", hmac}, code: 3},
		{name: "bad id", args: append(base, "--id", "bad id", "echo"), code: 3, says: []string{"--id"}},
		{name: "bad broker scheme", args: []string{"--broker", "http://" + b.Addr(), "--hmac-key", hmac, "echo"}, code: 3, says: []string{`"http"`}},
		{name: "no broker", args: []string{"--broker", closedAddr(t), "--hmac-key", hmac, "--timeout", "500ms", "echo"}, code: 4, says: []string{"cannot connect to the broker"}},
		{name: "no gateway", args: append(base, "--server", "nobody", "--timeout", "500ms", "echo", "hi"), code: 5, says: []string{`no reply from "nobody" to "echo"`}},
		{name: "error reply", args: append(base, "--timeout", "5s", "delete-everything"), code: 6, says: []string{"gateway answered with error not-found"}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			var out, errOut bytes.Buffer
			err := run(context.Background(), tt.args, &out, &errOut)
			if got := exitCode(err); got != tt.code {
				t.Fatalf("client %q: exit status %d (%v); want %d", tt.args, got, err, tt.code)
			}
			for _, s := range tt.says {
				if !strings.Contains(err.Error(), s) {
					t.Errorf("error %q does not say %s", err, s)
				}
			}
		})
	}
}

// Request's typed errors map to their statuses, wrapped or not.
func TestRequestCode(t *testing.T) {
	for _, tt := range []struct {
		err  error
		code int
	}{
		{&mqttsec.NoReplyError{Server: "gateway", Method: "echo", Cause: context.DeadlineExceeded}, 5},
		{&mqttsec.Error{Code: mqttsec.CodeForbidden}, 6},
		{fmt.Errorf("x: %w", &mqttsec.Error{Code: mqttsec.CodeNotFound}), 6},
		{&mqttsec.ClockSkewError{Server: "gateway", Offset: time.Hour, Err: errors.New("expired")}, 7},
		{fmt.Errorf("publish: %w", mqttsec.ErrUnacknowledged), 8},
		{mqttsec.ErrUnknownPeer, 3},
		{mqttsec.ErrClosed, 1},
		{mqttsec.ErrBadErrorReply, 1},
		{context.DeadlineExceeded, 1},
	} {
		if got := requestCode(tt.err); got != tt.code {
			t.Errorf("requestCode(%v) = %d; want %d", tt.err, got, tt.code)
		}
	}
	if got := exitCode(fail(exitNoReply, &mqttsec.NoReplyError{Cause: context.DeadlineExceeded})); got != 5 {
		t.Errorf("exitCode of a no-reply failure = %d", got)
	}
	if exitCode(nil) != 0 || exitCode(errors.New("x")) != 1 || fail(3, nil) != nil {
		t.Error("exitCode(nil) must be 0, of an unclassified error 1, and fail(code, nil) nil")
	}
}

// With -v the client logs to stderr the replies it refused while waiting,
// and why; without it stderr stays as it was (empty).
func TestClientVerboseLogsRefusedReplies(t *testing.T) {
	b, err := testbroker.Start("127.0.0.1:0", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	hmac := filepath.Join(t.TempDir(), "shared.hmac")
	if err := run(context.Background(), []string{"--gen-hmac", hmac}, &bytes.Buffer{}, &bytes.Buffer{}); err != nil {
		t.Fatal(err)
	}
	// Junk on the client's reply topic, again and again while it waits.
	tr, err := (&cli.Conn{Broker: b.URL(), Protocol: 5}).Transport("junk-sender")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := tr.Start(ctx, func(mqttsec.Inbound) {}); err != nil {
		t.Fatal(err)
	}
	defer tr.Close(context.Background())
	stop := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			select {
			case <-stop:
				return
			case <-time.After(50 * time.Millisecond):
				tr.Publish(ctx, mqttsec.Outbound{Topic: mqttsec.Topics{}.Reply("client"), Payload: []byte("not an envelope")})
			}
		}
	}()
	defer func() { close(stop); <-done }()
	for _, tt := range []struct {
		flags []string
		logs  bool
	}{{nil, false}, {[]string{"-v"}, true}} {
		var out, errOut bytes.Buffer
		args := append(append([]string{"--broker", b.URL(), "--hmac-key", hmac, "--timeout", "1s"}, tt.flags...), "echo")
		err := run(ctx, args, &out, &errOut)
		if exitCode(err) != exitNoReply {
			t.Fatalf("client %q: %v; want no reply", args, err)
		}
		if !tt.logs {
			if errOut.Len() != 0 {
				t.Errorf("client %q wrote to stderr:\n%s", args, errOut.String())
			}
			continue
		}
		log := errOut.String()
		t.Logf("stderr with -v:\n%s", log)
		if !strings.Contains(log, "class=malformed") || !strings.Contains(log, "reply") {
			t.Errorf("client %q: stderr does not show the refused replies and why:\n%s", args, log)
		}
	}
}
