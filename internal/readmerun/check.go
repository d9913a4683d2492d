//go:build linux

package main

import (
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
)

// checkOutcome returns nil if a command that exited with status exit and
// printed out ended in one of outcomes, and otherwise what went wrong.
func checkOutcome(outcomes []outcome, exit int, out string) error {
	if err := checkRejected(out); err != nil {
		return err
	}
	for _, o := range outcomes {
		if o.exit == exit && o.output.MatchString(out) {
			return nil
		}
	}
	var want []string
	for _, o := range outcomes {
		want = append(want, fmt.Sprintf("exit status %d and output matching `%s`", o.exit, o.output))
	}
	return fmt.Errorf("exit status %d; expected %s", exit, strings.Join(want, ", or "))
}

// checkOutput returns nil if out matches re and holds nothing rejected.
func checkOutput(re *regexp.Regexp, out string) error {
	if err := checkRejected(out); err != nil {
		return err
	}
	if !re.MatchString(out) {
		return fmt.Errorf("its output does not match `%s`", re)
	}
	return nil
}

// checkRejected returns an error if out holds a panic or a data race.
func checkRejected(out string) error {
	if m := rejected.FindString(out); m != "" {
		return fmt.Errorf("its output holds %q", strings.TrimSpace(m))
	}
	return nil
}

// exitStatus is a process's exit status as a shell reports it: 128+N for a
// process killed by signal N.
func exitStatus(ws syscall.WaitStatus) int {
	if ws.Signaled() {
		return 128 + int(ws.Signal())
	}
	return ws.ExitStatus()
}

// checkStopped returns nil if every process of a job stopped with sig
// ended cleanly: exited with status 0, or was killed by sig itself
// (go run does not catch SIGTERM: it dies of it, and the program it runs,
// which does, exits on its own).
func checkStopped(sig syscall.Signal, statuses []syscall.WaitStatus) error {
	for _, ws := range statuses {
		if ws.Exited() && ws.ExitStatus() == 0 || ws.Signaled() && ws.Signal() == sig {
			continue
		}
		return fmt.Errorf("a process of the job ended with exit status %d on %v", exitStatus(ws), sig)
	}
	return nil
}

// checkFiles returns nil if every file exists under dir with its mode.
func checkFiles(dir string, files []file) error {
	for _, f := range files {
		info, err := os.Stat(filepath.Join(dir, f.path))
		if err != nil {
			return fmt.Errorf("it did not leave %s: %v", f.path, err)
		}
		if f.mode != 0 && info.Mode().Perm() != f.mode {
			return fmt.Errorf("%s has mode %04o, not %04o", f.path, info.Mode().Perm(), f.mode)
		}
	}
	return nil
}

// tail returns the last n lines of s.
func tail(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = append([]string{fmt.Sprintf("[... %d lines before]", len(lines)-n)}, lines[len(lines)-n:]...)
	}
	return strings.Join(lines, "\n")
}
