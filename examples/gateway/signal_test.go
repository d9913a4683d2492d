//go:build linux || darwin || freebsd || netbsd || openbsd || dragonfly

package main

import (
	"bufio"
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/mqttsec/mqttsec/mqttsec/replay"
)

// asGateway makes the test binary run the gateway's main when a test
// starts it as a child with this variable set.
const asGateway = "MQTTSEC_TEST_RUN_GATEWAY"

func TestMain(m *testing.M) {
	if os.Getenv(asGateway) == "1" {
		main()
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// SIGTERM (systemd, docker stop) stops the gateway as Ctrl-C does: it
// exits 0 after closing its state, instead of dying of the signal. While it
// runs, its --state is locked against other processes.
func TestGatewayStopsOnSIGTERM(t *testing.T) {
	b := startBroker(t)
	hmac, state := hmacAndState(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, os.Args[0], "--broker", b.URL(), "--hmac-key", hmac, "--state", state, "--init")
	cmd.Env = append(os.Environ(), asGateway+"=1")
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	lines := bufio.NewScanner(out)
	if !lines.Scan() || !strings.Contains(lines.Text(), "listening") {
		cmd.Process.Kill()
		cmd.Wait()
		t.Fatalf("gateway did not start: %q\n%s", lines.Text(), stderr.String())
	}
	// While it runs, its state is locked against this other process.
	if _, err := replay.OpenFileStore(filepath.Join(state, "replay"), replay.FileStoreOptions{}); !errors.Is(err, replay.ErrLocked) {
		t.Errorf("replay store of a running gateway: %v, want replay.ErrLocked", err)
	}
	if _, err := replay.OpenFileCounter(filepath.Join(state, "counter"), 0); !errors.Is(err, replay.ErrLocked) {
		t.Errorf("counter of a running gateway: %v, want replay.ErrLocked", err)
	}
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	for lines.Scan() { // the counts it prints on the way out
	}
	if err := cmd.Wait(); err != nil {
		t.Fatalf("gateway after SIGTERM: %v\n%s", err, stderr.String())
	}
	// It closed its state: another gateway may take it now, and finds it
	// whole.
	store, err := replay.OpenFileStore(filepath.Join(state, "replay"), replay.FileStoreOptions{})
	if err != nil {
		t.Fatal(err)
	}
	store.NotifyLoss(func(err error) { t.Errorf("the state the gateway left: %v", err) })
	store.Close()
}

// --state creates the replay store and the counter only with --init, and
// only where neither exists. Without it, a lost replay store beside its
// counter is opened, and reports the loss (it then refuses what may have
// been admitted before), never made anew as if nothing had been admitted;
// a lost counter, or the whole directory gone, stays an error.
func TestDurableStateCreatesOnlyWhatIsNew(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "state")
	if _, _, err := durableState(dir, false); !errors.Is(err, replay.ErrMissing) {
		t.Fatalf("a new directory without --init: %v, want replay.ErrMissing", err)
	}
	store, counter, err := durableState(dir, true)
	if err != nil {
		t.Fatal(err)
	}
	first, err := counter.Next()
	if err != nil {
		t.Fatal(err)
	}
	store.Close()
	counter.Close()
	if _, _, err := durableState(dir, true); !errors.Is(err, replay.ErrExists) {
		t.Fatalf("--init on existing state: %v, want replay.ErrExists", err)
	}

	if err := os.RemoveAll(filepath.Join(dir, "replay")); err != nil {
		t.Fatal(err)
	}
	if _, _, err := durableState(dir, true); !errors.Is(err, replay.ErrExists) {
		t.Fatalf("--init beside a counter: %v, want replay.ErrExists", err)
	}
	if _, err := os.Stat(filepath.Join(dir, "replay")); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("--init beside a counter made a replay store: %v", err)
	}
	store, counter, err = durableState(dir, false)
	if err != nil {
		t.Fatalf("a counter without its replay store: %v", err)
	}
	var lost []error
	store.NotifyLoss(func(err error) { lost = append(lost, err) })
	if len(lost) != 1 || !errors.Is(lost[0], replay.ErrStateLost) {
		t.Errorf("the lost replay store was not reported as lost: %v", lost)
	}
	if n, err := counter.Next(); err != nil || n <= first {
		t.Errorf("counter after the loss = %d, %v; want above %d", n, err, first)
	}
	store.Close()
	counter.Close()

	if err := os.Remove(filepath.Join(dir, "counter")); err != nil {
		t.Fatal(err)
	}
	if _, _, err := durableState(dir, false); !errors.Is(err, replay.ErrMissing) {
		t.Fatalf("a replay store without its counter: %v, want replay.ErrMissing", err)
	}
	if err := os.RemoveAll(dir); err != nil {
		t.Fatal(err)
	}
	if _, _, err := durableState(dir, false); !errors.Is(err, replay.ErrMissing) {
		t.Fatalf("the state directory gone: %v, want replay.ErrMissing", err)
	}
}
