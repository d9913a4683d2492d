package mqttsec_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/mqttsec/mqttsec/mqttsec"
)

// lonelyClient is a started client whose keyring knows "gateway", with no
// server running for it.
func lonelyClient(t *testing.T, b *broker, proto int) *mqttsec.Client {
	t.Helper()
	k := getKeys()
	s := suites()[0]
	ring := mustT(mqttsec.NewKeyring(mqttsec.Own{Signer: k.client.ed, Identities: k.client.ids},
		peerOf(k, "gateway", k.gateway, s.require, s.send(k, k.client, k.gateway))))
	c := mustT(mqttsec.NewClient(mqttsec.Config{ID: "client", Transport: transport(t, proto, b.url, "client", nil), Keyring: ring}))
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := c.Start(ctx); err != nil {
		t.Fatalf("client start: %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := c.Close(ctx); err != nil {
			t.Errorf("client close: %v", err)
		}
	})
	return c
}

// TestRequestWithoutReplyIsNoReplyError: a request whose context ends
// before any reply (no server running, or a handler that does not answer
// in time, deadline or cancel) fails with a *NoReplyError that names the
// server and method and still wraps the context's error.
func TestRequestWithoutReplyIsNoReplyError(t *testing.T) {
	tests := []struct {
		name   string
		server bool   // start a server (with a "hold" handler)
		method string // the method called
		cancel bool   // cancel the context once the handler runs, rather than let the deadline pass
		want   error  // the context error the result must wrap
	}{
		{"server never started", false, "echo", false, context.DeadlineExceeded},
		{"handler past the deadline", true, "hold", false, context.DeadlineExceeded},
		{"cancelled while the handler runs", true, "hold", true, context.Canceled},
	}
	forEach(t, func(t *testing.T, b *broker, proto int) {
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				release := make(chan struct{})
				defer close(release)
				started := make(chan struct{}, 1)
				hold := func(ctx context.Context, r *mqttsec.Request) ([]byte, error) {
					select {
					case started <- struct{}{}:
					default:
					}
					select {
					case <-release:
						return []byte("late"), nil
					case <-ctx.Done():
						return nil, ctx.Err()
					}
				}
				var c *mqttsec.Client
				if tt.server {
					c = newPair(t, b, pairOptions{proto: proto, handlers: map[string]mqttsec.HandlerFunc{"hold": hold}}).client
				} else {
					c = lonelyClient(t, b, proto)
				}
				const wait = 400 * time.Millisecond
				limit := wait
				if tt.cancel {
					limit = 10 * time.Second
				}
				ctx, cancel := context.WithTimeout(context.Background(), limit)
				if tt.cancel {
					go func() {
						select {
						case <-started:
							cancel()
						case <-ctx.Done():
						}
					}()
				}
				defer cancel()
				out, err := c.Request(ctx, "gateway", tt.method, []byte("hi"))
				if err == nil {
					t.Fatalf("request answered %q", out)
				}
				t.Log(err)
				var nr *mqttsec.NoReplyError
				if !errors.As(err, &nr) {
					t.Fatalf("error %v (%T) is not a *NoReplyError", err, err)
				}
				if !errors.Is(err, mqttsec.ErrNoReply) || !errors.Is(err, tt.want) {
					t.Fatalf("error %v does not wrap ErrNoReply and %v", err, tt.want)
				}
				if errors.Is(err, mqttsec.ErrClockSkew) || errors.Is(err, mqttsec.ErrUnacknowledged) {
					t.Fatalf("error %v claims clock skew or a missing acknowledgement", err)
				}
				if nr.Server != "gateway" || nr.Method != tt.method {
					t.Fatalf("error names %q/%q, want gateway/%s", nr.Server, nr.Method, tt.method)
				}
				if !tt.cancel && nr.Waited < wait/2 {
					t.Fatalf("waited %v, the deadline was %v away", nr.Waited, wait)
				}
				prefix := fmt.Sprintf("mqttsec: no reply from %q to %q in ", "gateway", tt.method)
				if msg := err.Error(); !strings.HasPrefix(msg, prefix) || !strings.HasSuffix(msg, ": "+tt.want.Error()) {
					t.Fatalf("error reads %q, want %q...: %v", msg, prefix, tt.want)
				}
			})
		}
	})
}

// TestNoReplyErrorText: the error reads as the operator needs it, and
// unwraps to the sentinel and the cause.
func TestNoReplyErrorText(t *testing.T) {
	cause := fmt.Errorf("%w: %w", context.DeadlineExceeded, errors.New("gateway down"))
	tests := []struct {
		err  *mqttsec.NoReplyError
		want string
		is   []error
	}{
		{&mqttsec.NoReplyError{Server: "gateway", Method: "echo", Waited: 10*time.Second + 300*time.Microsecond, Cause: context.DeadlineExceeded},
			`mqttsec: no reply from "gateway" to "echo" in 10s: context deadline exceeded`, []error{mqttsec.ErrNoReply, context.DeadlineExceeded}},
		{&mqttsec.NoReplyError{Server: "g", Method: "m", Waited: 1500 * time.Millisecond, Cause: context.Canceled},
			`mqttsec: no reply from "g" to "m" in 1.5s: context canceled`, []error{mqttsec.ErrNoReply, context.Canceled}},
		{&mqttsec.NoReplyError{Server: "g", Method: "m", Waited: time.Second, Cause: cause},
			`mqttsec: no reply from "g" to "m" in 1s: context deadline exceeded: gateway down`, []error{mqttsec.ErrNoReply, context.DeadlineExceeded}},
	}
	for _, tt := range tests {
		if got := tt.err.Error(); got != tt.want {
			t.Errorf("Error() = %q, want %q", got, tt.want)
		}
		for _, target := range tt.is {
			if !errors.Is(tt.err, target) {
				t.Errorf("%v does not wrap %v", tt.err, target)
			}
		}
	}
}

// TestRequestNoReplyKeepsContextCause: a cause given to the context is
// kept beside the context's own error.
func TestRequestNoReplyKeepsContextCause(t *testing.T) {
	b := embeddedBroker(t)
	c := lonelyClient(t, b, 5)
	why := errors.New("operator gave up")
	ctx, cancel := context.WithTimeoutCause(context.Background(), 200*time.Millisecond, why)
	defer cancel()
	_, err := c.Request(ctx, "gateway", "echo", nil)
	if !errors.Is(err, mqttsec.ErrNoReply) || !errors.Is(err, context.DeadlineExceeded) || !errors.Is(err, why) {
		t.Fatalf("error %v: want ErrNoReply, DeadlineExceeded and the cause", err)
	}
}

// TestStartV5ConnectFailureSaysWhy: over MQTT 5, a broker nobody listens
// for fails Start with the refusal, not only ctx's deadline.
func TestStartV5ConnectFailureSaysWhy(t *testing.T) {
	tests := []struct {
		name  string
		start func(ctx context.Context, tr mqttsec.Transport) error
	}{
		{"transport", func(ctx context.Context, tr mqttsec.Transport) error { return tr.Start(ctx, func(mqttsec.Inbound) {}) }},
		{"client", func(ctx context.Context, tr mqttsec.Transport) error {
			k := getKeys()
			s := suites()[0]
			ring := mustT(mqttsec.NewKeyring(mqttsec.Own{Signer: k.client.ed, Identities: k.client.ids},
				peerOf(k, "gateway", k.gateway, s.require, s.send(k, k.client, k.gateway))))
			c := mustT(mqttsec.NewClient(mqttsec.Config{ID: "client", Transport: tr, Keyring: ring}))
			err := c.Start(ctx)
			if err == nil {
				c.Close(context.Background())
			}
			return err
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tr := transport(t, 5, "tcp://127.0.0.1:1", "client", nil)
			ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
			defer cancel()
			err := tt.start(ctx, tr)
			if err == nil {
				t.Fatal("connected to a port nobody listens on")
			}
			t.Log(err)
			if !errors.Is(err, context.DeadlineExceeded) {
				t.Errorf("error %v does not wrap the context's error", err)
			}
			if !errors.Is(err, syscall.ECONNREFUSED) || !strings.Contains(err.Error(), "connection refused") {
				t.Errorf("error %v does not say the connection was refused", err)
			}
		})
	}
}
