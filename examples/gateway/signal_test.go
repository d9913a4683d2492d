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
	cmd := exec.CommandContext(ctx, os.Args[0], "--broker", b.URL(), "--hmac-key", hmac, "--state", state)
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
	// It closed its state: another gateway may take it now.
	store, err := replay.OpenFileStore(filepath.Join(state, "replay"), replay.FileStoreOptions{})
	if err != nil {
		t.Fatal(err)
	}
	store.Close()
}
