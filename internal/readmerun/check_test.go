//go:build linux

package main

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
)

func TestCheckOutcome(t *testing.T) {
	outcomes := []outcome{
		{exit: 0, output: regexp.MustCompile(`(?m)^verdict ACCEPTED$`)},
		{exit: 1, output: regexp.MustCompile(`(?m)^verdict REFUSED: expired$`)},
	}
	for _, tc := range []struct {
		name string
		exit int
		out  string
		want string // "" for none
	}{
		{"first outcome", 0, "x\nverdict ACCEPTED\n", ""},
		{"second outcome", 1, "verdict REFUSED: expired\n", ""},
		{"output of the other outcome", 1, "verdict ACCEPTED\n", "exit status 1; expected exit status 0"},
		{"refused for another reason", 1, "verdict REFUSED: bad signature\n", "exit status 1; expected"},
		{"other status", 2, "verdict ACCEPTED\n", "exit status 2"},
		{"panic", 0, "verdict ACCEPTED\npanic: boom\n", `holds "panic:"`},
		{"race", 0, "WARNING: DATA RACE\nverdict ACCEPTED\n", `holds "WARNING: DATA RACE"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := checkOutcome(outcomes, tc.exit, tc.out)
			if (err == nil) != (tc.want == "") || err != nil && !strings.Contains(err.Error(), tc.want) {
				t.Errorf("checkOutcome = %v, want %q", err, tc.want)
			}
		})
	}
}

func TestCheckOutput(t *testing.T) {
	re := regexp.MustCompile(`(?m)^accepted=1$`)
	if err := checkOutput(re, "listening\naccepted=1\n"); err != nil {
		t.Error(err)
	}
	if err := checkOutput(re, "listening\naccepted=2\n"); err == nil {
		t.Error("accepted=2 matched accepted=1")
	}
	if err := checkOutput(re, "accepted=1\npanic: x\n"); err == nil {
		t.Error("a panic passed")
	}
}

// Linux wait statuses: the exit status in the second byte, or the signal
// in the low bits.
func exited(code int) syscall.WaitStatus                     { return syscall.WaitStatus(code << 8) }
func killedBy(sig syscall.Signal) syscall.WaitStatus         { return syscall.WaitStatus(sig) }
func statuses(ws ...syscall.WaitStatus) []syscall.WaitStatus { return ws }

func TestCheckStopped(t *testing.T) {
	for _, tc := range []struct {
		name string
		ws   []syscall.WaitStatus
		ok   bool
	}{
		{"go run died of SIGTERM, the gateway exited 0", statuses(killedBy(syscall.SIGTERM), exited(0)), true},
		{"exited 0", statuses(exited(0)), true},
		{"the gateway failed", statuses(killedBy(syscall.SIGTERM), exited(1)), false},
		{"killed by another signal", statuses(killedBy(syscall.SIGKILL)), false},
		{"crashed", statuses(exited(0), killedBy(syscall.SIGSEGV)), false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if err := checkStopped(syscall.SIGTERM, tc.ws); (err == nil) != tc.ok {
				t.Errorf("checkStopped = %v, want ok %v", err, tc.ok)
			}
		})
	}
}

func TestExitStatus(t *testing.T) {
	if got := exitStatus(exited(5)); got != 5 {
		t.Errorf("exit 5: %d", got)
	}
	if got := exitStatus(killedBy(syscall.SIGTERM)); got != 143 {
		t.Errorf("SIGTERM: %d, want 143 as a shell says", got)
	}
}

func TestCheckFiles(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "secret"), nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "public"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := checkFiles(dir, []file{{"secret", 0o600}, {"public", 0}}); err != nil {
		t.Error(err)
	}
	if err := checkFiles(dir, []file{{"public", 0o600}}); err == nil || !strings.Contains(err.Error(), "mode 0644, not 0600") {
		t.Errorf("wrong mode: %v", err)
	}
	if err := checkFiles(dir, []file{{"missing", 0}}); err == nil || !strings.Contains(err.Error(), "did not leave missing") {
		t.Errorf("missing file: %v", err)
	}
}

func TestTail(t *testing.T) {
	if got := tail("a\nb\nc\n", 2); got != "[... 1 lines before]\nb\nc" {
		t.Errorf("tail = %q", got)
	}
	if got := tail("a\n", 2); got != "a" {
		t.Errorf("tail = %q", got)
	}
}

// TestCommandEnv: .ci/run exports MQTTSEC_TEST_ variables for its own
// tests; the README's commands must not see them (go test ./... there is
// the quick start's, with no services).
func TestCommandEnv(t *testing.T) {
	t.Setenv("MQTTSEC_TEST_MOSQUITTO", "127.0.0.1:18883")
	t.Setenv("MQTTSEC_PASSWORD", "secret")
	t.Setenv("READMERUN_KEPT", "yes")
	env := strings.Join(commandEnv(), "\n")
	if strings.Contains(env, "MQTTSEC_") {
		t.Errorf("the commands' environment holds an MQTTSEC_ variable")
	}
	if !strings.Contains(env, "READMERUN_KEPT=yes") {
		t.Errorf("the commands' environment lost other variables")
	}
}
