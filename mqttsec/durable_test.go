package mqttsec_test

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/mqttsec/mqttsec/envelope"
	"github.com/mqttsec/mqttsec/internal/testwait"
	"github.com/mqttsec/mqttsec/mqttsec"
	"github.com/mqttsec/mqttsec/mqttsec/replay"
)

// The restart test runs the gateway as a child process of the test binary:
// TestMain turns into the gateway when this variable is set.
const childEnv = "MQTTSEC_TEST_CHILD_GATEWAY"

func TestMain(m *testing.M) {
	if os.Getenv(childEnv) != "" {
		if err := childGateway(); err != nil {
			fmt.Fprintln(os.Stderr, "child gateway:", err)
			os.Exit(1)
		}
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// childGateway serves "count" with a durable replay store and counter in
// the directory it is given, printing one line per handled request and one
// per refusal, until it is killed.
func childGateway() error {
	secret, err := hex.DecodeString(os.Getenv("CHILD_HMAC"))
	if err != nil {
		return err
	}
	key, err := envelope.NewHMACKey(secret)
	if err != nil {
		return err
	}
	dir := os.Getenv("CHILD_DIR")
	// Created on the first start, opened on every restart.
	storeDir, opt := filepath.Join(dir, "replay"), replay.FileStoreOptions{Width: mqttsec.DefaultReplayWindow}
	store, err := replay.CreateFileStore(storeDir, opt)
	if errors.Is(err, replay.ErrExists) {
		store, err = replay.OpenFileStore(storeDir, opt)
	}
	if err != nil {
		return err
	}
	counterPath := filepath.Join(dir, "counter")
	counter, err := replay.OpenFileCounter(counterPath, 0)
	if err != nil {
		counter, err = replay.CreateFileCounter(counterPath, 1, 0)
		if err != nil {
			return err
		}
	}
	ring, err := mqttsec.NewKeyring(mqttsec.Own{}, &mqttsec.Peer{
		Peer: envelope.Peer{ID: "client", HMACKeys: []*envelope.HMACKey{key}, Policy: envelope.Policy{Require: envelope.HMAC}},
		Send: mqttsec.Protection{HMAC: key},
	})
	if err != nil {
		return err
	}
	var out sync.Mutex
	say := func(format string, args ...any) {
		out.Lock()
		fmt.Printf(format+"\n", args...)
		out.Unlock()
	}
	log := slog.New(slog.NewTextHandler(lineWriter{say}, nil))
	srv, err := mqttsec.NewServer(mqttsec.ServerConfig{Config: mqttsec.Config{
		ID: "gateway", Keyring: ring, Replay: store, Counter: counter, Logger: log,
		// The test counts the refusals in the log: one line each.
		RejectLogInterval: -1,
		Transport:         transportFor(os.Getenv("CHILD_BROKER"), 5, "gateway"),
	}})
	if err != nil {
		return err
	}
	srv.HandleFunc("count", func(ctx context.Context, r *mqttsec.Request) ([]byte, error) {
		say("handled %s", r.Payload)
		return r.Payload, nil
	})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := srv.Start(ctx); err != nil {
		return err
	}
	say("ready")
	select {} // until killed
}

type lineWriter struct{ say func(string, ...any) }

func (w lineWriter) Write(p []byte) (int, error) {
	w.say("%s", strings.TrimSpace(string(p)))
	return len(p), nil
}

// child is a running child gateway and what it printed.
type child struct {
	cmd   *exec.Cmd
	mu    sync.Mutex
	lines []string
	ready chan struct{}
	done  chan struct{}
}

func startChild(t *testing.T, brokerURL, dir, hmacHex string) *child {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), childEnv+"=1", "CHILD_BROKER="+brokerURL, "CHILD_DIR="+dir, "CHILD_HMAC="+hmacHex)
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	c := &child{cmd: cmd, ready: make(chan struct{}), done: make(chan struct{})}
	go c.read(stdout)
	t.Cleanup(func() { c.kill() })
	select {
	case <-c.ready:
	case <-c.done:
		t.Fatal("child gateway exited before it was ready")
	case <-time.After(20 * time.Second):
		t.Fatal("child gateway not ready")
	}
	return c
}

func (c *child) read(r io.Reader) {
	defer close(c.done)
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		line := sc.Text()
		c.mu.Lock()
		c.lines = append(c.lines, line)
		c.mu.Unlock()
		if line == "ready" {
			close(c.ready)
		}
	}
}

// count returns how many lines contain s.
func (c *child) count(s string) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	n := 0
	for _, l := range c.lines {
		if strings.Contains(l, s) {
			n++
		}
	}
	return n
}

// kill sends SIGKILL: no shutdown code runs, as in a crash.
func (c *child) kill() {
	if c.cmd.Process != nil {
		c.cmd.Process.Signal(syscall.SIGKILL)
		c.cmd.Wait()
		<-c.done
	}
}

// TestGatewayKilledAndRestartedRefusesReplays accepts requests, kills the
// gateway process with SIGKILL, restarts it on the same state directory, and
// replays everything captured through the broker: all refused, none
// handled again; new requests are accepted, and the client accepts the
// restarted gateway's replies (its durable counter moved on).
func TestGatewayKilledAndRestartedRefusesReplays(t *testing.T) {
	b := embeddedBroker(t)
	dir := t.TempDir()
	secret := make([]byte, 32)
	rand.Read(secret)
	key, _ := envelope.NewHMACKey(secret)
	gw := startChild(t, b.url, dir, hex.EncodeToString(secret))

	ring := mustT(mqttsec.NewKeyring(mqttsec.Own{}, &mqttsec.Peer{
		Peer: envelope.Peer{ID: "gateway", HMACKeys: []*envelope.HMACKey{key}, Policy: envelope.Policy{Require: envelope.HMAC}},
		Send: mqttsec.Protection{HMAC: key},
	}))
	client := mustT(mqttsec.NewClient(mqttsec.Config{ID: "client", Keyring: ring, Transport: transport(t, 3, b.url, "client", nil)}))
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	if err := client.Start(ctx); err != nil {
		t.Fatal(err)
	}
	defer client.Close(context.Background())
	topic := "mqttsec/gateway/req/count"
	eve := newAttacker(t, b, topic)

	const n = 20
	for i := range n {
		if out, err := client.Request(ctx, "gateway", "count", fmt.Appendf(nil, "before-%d", i)); err != nil || string(out) != fmt.Sprintf("before-%d", i) {
			t.Fatalf("request %d: %q, %v", i, out, err)
		}
	}
	waitFor(t, "requests captured", func() bool { return len(eve.captured(topic)) == n })
	gw.kill()
	gw = startChild(t, b.url, dir, hex.EncodeToString(secret))

	for _, req := range eve.captured(topic) {
		eve.publish(t, topic, req)
	}
	waitFor(t, "every replay refused", func() bool { return gw.count("class=replayed") == n })
	if h := gw.count("handled before-"); h != 0 {
		t.Fatalf("the restarted gateway handled %d replayed requests", h)
	}
	t.Logf("restarted gateway (pid %d) refused %d replays", gw.cmd.Process.Pid, gw.count("class=replayed"))
	for i := range 5 {
		if out, err := client.Request(ctx, "gateway", "count", fmt.Appendf(nil, "after-%d", i)); err != nil || string(out) != fmt.Sprintf("after-%d", i) {
			t.Fatalf("request after restart %d: %q, %v", i, out, err)
		}
	}
}

// transportFor is transport() for code outside a test (the child).
func transportFor(url string, proto int, id string) mqttsec.Transport {
	return transport(nilTB{}, proto, url, id, nil)
}

// nilTB satisfies testing.TB for helpers used by the child process.
type nilTB struct{ testing.TB }

func (nilTB) Helper()                   {}
func (nilTB) Name() string              { return "child" }
func (nilTB) Fatal(args ...any)         { panic(fmt.Sprint(args...)) }
func (nilTB) Fatalf(f string, a ...any) { panic(fmt.Sprintf(f, a...)) }

// A gateway whose replay store has failed refuses every request, counts it
// as replay-store (not as a replay), logs it as an error and never runs the
// handler.
func TestFailedReplayStoreRefusesRequests(t *testing.T) {
	store, err := replay.CreateFileStore(filepath.Join(t.TempDir(), "replay"), replay.FileStoreOptions{})
	if err != nil {
		t.Fatal(err)
	}
	var runs atomic.Int64
	logged := &testwait.Log{}
	p := newPair(t, embeddedBroker(t), pairOptions{proto: 5,
		configure: func(c *mqttsec.ServerConfig) {
			c.Replay = store
			c.Logger = slog.New(slog.NewTextHandler(logged, &slog.HandlerOptions{Level: slog.LevelError}))
		},
		handlers: map[string]mqttsec.HandlerFunc{"open-door": func(context.Context, *mqttsec.Request) ([]byte, error) {
			runs.Add(1)
			return []byte("opened"), nil
		}}})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := p.client.Request(ctx, "gateway", "open-door", nil); err != nil {
		t.Fatalf("request before the store failed: %v", err)
	}
	// Closing the store stands in for a disk failure: from then on it
	// answers every Check and Admit with an error.
	if err := store.Close(); err != nil {
		t.Fatal(err)
	}
	// The request waits for a reply until the gateway has refused it, and
	// then until it is cancelled: no reply comes.
	rctx, cancelRequest := context.WithCancel(ctx)
	defer cancelRequest()
	done := make(chan error, 1)
	go func() {
		_, err := p.client.Request(rctx, "gateway", "open-door", nil)
		done <- err
	}()
	waitFor(t, "the request refused", func() bool { return p.server.Stats()[mqttsec.StatReplayStore] == 1 })
	cancelRequest()
	if err := returned(t, "the cancelled request", done); !errors.Is(err, context.Canceled) {
		t.Fatalf("request after the store failed = %v, want no reply (Canceled)", err)
	}
	if n := p.server.Stats()[mqttsec.StatReplayed]; n != 0 {
		t.Fatalf("store failure counted as %d replays", n)
	}
	if n := runs.Load(); n != 1 {
		t.Fatalf("handler ran %d times, want 1 (before the failure only)", n)
	}
	// The log line follows the count.
	waitFor(t, "the store failure logged as an error", func() bool {
		return strings.Contains(logged.String(), "level=ERROR msg=\"mqttsec: replay store unavailable")
	})
}

// A client whose replay store has failed gets that error from Request as
// soon as the reply arrives, instead of waiting out its deadline.
func TestClientWithFailedReplayStoreFailsFast(t *testing.T) {
	store, err := replay.CreateFileStore(filepath.Join(t.TempDir(), "replay"), replay.FileStoreOptions{})
	if err != nil {
		t.Fatal(err)
	}
	p := newPair(t, embeddedBroker(t), pairOptions{proto: 5, clientReplay: store})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := p.client.Request(ctx, "gateway", "echo", []byte("x")); err != nil {
		t.Fatalf("request before the store failed: %v", err)
	}
	if err := store.Close(); err != nil {
		t.Fatal(err)
	}
	_, err = p.client.Request(ctx, "gateway", "echo", []byte("y"))
	if !errors.Is(err, envelope.ErrReplayStore) {
		t.Fatalf("Request = %v, want ErrReplayStore", err)
	}
	if ctx.Err() != nil {
		t.Fatal("Request waited out its deadline")
	}
	if n := p.client.Stats()[mqttsec.StatReplayStore]; n != 1 {
		t.Fatalf("client counted %d replay-store refusals, want 1", n)
	}
}
