//go:build linux

package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"syscall"
	"time"
)

// A proc is a process started in a process group of its own, its combined
// output going to a file. The runner is a child subreaper (see
// becomeSubreaper): whatever the group leaves behind when its leader
// exits is reparented to the runner, which reaps it with the group.
type proc struct {
	cmd     *exec.Cmd
	outPath string
	started time.Time
	done    chan struct{} // closed when the leader has exited
	leader  syscall.WaitStatus
}

// startProc starts name with args in dir, with env, writing its output to
// outPath.
func startProc(dir string, env []string, outPath, name string, args ...string) (*proc, error) {
	out, err := os.Create(outPath)
	if err != nil {
		return nil, err
	}
	defer out.Close() // the child has its own copy
	cmd := exec.Command(name, args...)
	cmd.Dir, cmd.Env = dir, env
	cmd.Stdout, cmd.Stderr = out, out
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	p := &proc{cmd: cmd, outPath: outPath, started: time.Now(), done: make(chan struct{})}
	go func() {
		cmd.Wait()
		p.leader = cmd.ProcessState.Sys().(syscall.WaitStatus)
		close(p.done)
	}()
	return p, nil
}

// pgid is the proc's process group id: its leader's pid.
func (p *proc) pgid() int { return p.cmd.Process.Pid }

// output returns what the proc has printed so far.
func (p *proc) output() string {
	b, err := os.ReadFile(p.outPath)
	if err != nil {
		return fmt.Sprintf("(output unreadable: %v)", err)
	}
	return string(b)
}

// exited reports whether the leader has exited.
func (p *proc) exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// signal sends sig to the proc's process group.
func (p *proc) signal(sig syscall.Signal) {
	syscall.Kill(-p.pgid(), sig)
}

// wait waits up to d for the leader to exit and then up to
// orphanTimeout for every other process of its group to end, and returns
// their wait statuses, the leader's first. On a timeout, or when ctx
// ends, it kills the group and returns an error.
func (p *proc) wait(ctx context.Context, d time.Duration) ([]syscall.WaitStatus, error) {
	timer := time.NewTimer(d)
	defer timer.Stop()
	select {
	case <-p.done:
	case <-timer.C:
		p.kill()
		return nil, fmt.Errorf("still running after %v", d.Round(time.Second))
	case <-ctx.Done():
		p.kill()
		return nil, ctx.Err()
	}
	rest, err := reapGroup(p.pgid(), time.Now().Add(orphanTimeout))
	if err != nil {
		p.kill()
		return nil, err
	}
	return append([]syscall.WaitStatus{p.leader}, rest...), nil
}

// kill ends the whole group at once and reaps it.
func (p *proc) kill() {
	p.signal(syscall.SIGKILL)
	<-p.done // SIGKILL cannot be caught
	reapGroup(p.pgid(), time.Now().Add(5*time.Second))
}

// reapGroup waits, until deadline, for the runner's children in process
// group pgid to exit, and returns their wait statuses. Call it after the
// group's leader was waited for, or it may take the leader's status.
func reapGroup(pgid int, deadline time.Time) ([]syscall.WaitStatus, error) {
	var statuses []syscall.WaitStatus
	for {
		var ws syscall.WaitStatus
		pid, err := syscall.Wait4(-pgid, &ws, syscall.WNOHANG, nil)
		switch {
		case errors.Is(err, syscall.ECHILD) && syscall.Kill(-pgid, 0) != nil:
			return statuses, nil // none left, children or not
		case errors.Is(err, syscall.ECHILD):
			// Still running, and not the runner's children yet.
		case errors.Is(err, syscall.EINTR):
			continue
		case err != nil:
			return statuses, fmt.Errorf("waiting for process group %d: %v", pgid, err)
		case pid > 0:
			statuses = append(statuses, ws)
			continue
		}
		if time.Now().After(deadline) {
			return statuses, errors.New("its leader exited but other processes of its group are still running")
		}
		time.Sleep(pollInterval)
	}
}

// orphanTimeout is how long the processes of a group may outlive its
// leader (a gateway closing after go run died of SIGTERM).
const orphanTimeout = 15 * time.Second

// pollInterval is how often a wait checks its condition.
const pollInterval = 20 * time.Millisecond

// waitFor calls cond every pollInterval until it returns true or an error,
// or until d has passed.
func waitFor(d time.Duration, cond func() (bool, error)) error {
	deadline := time.Now().Add(d)
	for {
		ok, err := cond()
		if ok || err != nil {
			return err
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("not within %v", d)
		}
		time.Sleep(pollInterval)
	}
}
