//go:build linux

package main

import (
	"context"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

func startTestProc(t *testing.T, script string) *proc {
	t.Helper()
	if err := becomeSubreaper(); err != nil {
		t.Fatal(err)
	}
	p, err := startProc(t.TempDir(), nil, filepath.Join(t.TempDir(), "out"), "bash", "-c", script)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if !p.exited() {
			p.kill()
		}
	})
	return p
}

func TestProcExitStatusAndOutput(t *testing.T) {
	p := startTestProc(t, "echo out; echo err >&2; exit 3")
	ws, err := p.wait(context.Background(), time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	if len(ws) != 1 || exitStatus(ws[0]) != 3 {
		t.Errorf("statuses %v, want one, exit status 3", ws)
	}
	if got := p.output(); got != "out\nerr\n" {
		t.Errorf("output %q, want stdout and stderr in order", got)
	}
}

// TestProcStopLikeGoRun stops a job shaped like go run: a leader that dies
// of SIGTERM and a child that catches it and exits 0. The runner, a
// subreaper, waits for the orphaned child and sees it exit 0.
func TestProcStopLikeGoRun(t *testing.T) {
	// The child closes once the leader is gone, as a gateway outlives the
	// go run that died at once.
	p := startTestProc(t, `sh -c 'trap "while kill -0 $PPID 2>/dev/null; do sleep 0.01; done; echo child closing; exit 0" TERM; echo child ready; while :; do sleep 0.05; done' & wait`)
	if err := waitFor(time.Minute, func() (bool, error) { return strings.Contains(p.output(), "child ready"), nil }); err != nil {
		t.Fatal(err)
	}
	p.signal(syscall.SIGTERM)
	ws, err := p.wait(context.Background(), time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	if len(ws) != 2 || !ws[0].Signaled() || ws[0].Signal() != syscall.SIGTERM || !ws[1].Exited() || ws[1].ExitStatus() != 0 {
		t.Errorf("statuses %v: want the leader killed by SIGTERM, then the child exited 0", ws)
	}
	if err := checkStopped(syscall.SIGTERM, ws); err != nil {
		t.Error(err)
	}
	if !strings.Contains(p.output(), "child closing") {
		t.Errorf("output %q: the child did not run its handler", p.output())
	}
}

// TestProcLeftRunning: a child left running after its leader
// exits is waited for until a deadline, then reported and killed.
func TestProcLeftRunning(t *testing.T) {
	p := startTestProc(t, `sh -c 'trap "" TERM; echo child ready; while :; do sleep 0.05; done' & echo leader done`)
	if err := waitFor(time.Minute, func() (bool, error) { return strings.Contains(p.output(), "child ready") && p.exited(), nil }); err != nil {
		t.Fatal(err)
	}
	_, err := reapGroup(p.pgid(), time.Now().Add(200*time.Millisecond))
	if err == nil || !strings.Contains(err.Error(), "still running") {
		t.Errorf("reapGroup = %v, want an error saying processes are still running", err)
	}
	p.kill()
	if err := syscall.Kill(-p.pgid(), 0); err != syscall.ESRCH {
		t.Errorf("after kill, the group still has processes (kill 0: %v)", err)
	}
}

func TestProcTimeout(t *testing.T) {
	p := startTestProc(t, `while :; do sleep 0.05; done`)
	_, err := p.wait(context.Background(), 100*time.Millisecond)
	if err == nil || !strings.Contains(err.Error(), "still running after") {
		t.Errorf("wait = %v, want a timeout", err)
	}
	if !p.exited() {
		t.Error("the proc runs on after its timeout")
	}
}

func TestWaitFor(t *testing.T) {
	n := 0
	if err := waitFor(time.Minute, func() (bool, error) { n++; return n == 3, nil }); err != nil || n != 3 {
		t.Errorf("waitFor = %v after %d calls, want nil after 3", err, n)
	}
	if err := waitFor(50*time.Millisecond, func() (bool, error) { return false, nil }); err == nil {
		t.Error("waitFor of a condition never met returned nil")
	}
}

func TestNextJobNumber(t *testing.T) {
	r := &runner{}
	if n := r.nextJobNumber(); n != 1 {
		t.Errorf("no jobs: %d, want 1", n)
	}
	r.jobs = []*job{{num: 1}, {num: 3}}
	if n := r.nextJobNumber(); n != 4 {
		t.Errorf("jobs 1 and 3: %d, want 4, as bash numbers", n)
	}
	if j := r.takeJob(3); j == nil || len(r.jobs) != 1 {
		t.Fatal("takeJob(3) did not take job 3")
	}
	if n := r.nextJobNumber(); n != 2 {
		t.Errorf("job 1: %d, want 2", n)
	}
}
