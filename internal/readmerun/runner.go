//go:build linux

package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"
)

// A runner runs README commands, in document order, in a copy of the
// repository, with the services it provides.
type runner struct {
	out      io.Writer
	dir      string // the copy of the repository where the commands run
	logs     string // the outputs of commands and services
	env      []string
	services map[service]*running
	jobs     []*job // background jobs still running, in start order
	seq      int    // numbers output files
	ran      int    // commands run or provided
}

// A job is a background command of the current block.
type job struct {
	num       int // its job number, as a shell following the README numbers it
	c         command
	e         *expectation
	p         *proc
	logOffset int // the length of Mosquitto's log when it started
	before    map[service]int
}

// newRunner makes a work directory with a copy of the repository at repo.
func newRunner(repo string, out io.Writer) (*runner, error) {
	work, err := os.MkdirTemp("", "readmerun-")
	if err != nil {
		return nil, err
	}
	r := &runner{out: out, dir: filepath.Join(work, "repo"), logs: filepath.Join(work, "logs"), env: commandEnv(), services: map[service]*running{}}
	n, err := r.prepare(repo)
	if err != nil {
		os.RemoveAll(work)
		return nil, err
	}
	fmt.Fprintf(out, "readmerun: %d files of %s copied to %s; the commands run there\n", n, repo, r.dir)
	return r, nil
}

// prepare makes the runner's directories and copies repo; it returns how
// many files it copied.
func (r *runner) prepare(repo string) (int, error) {
	for _, d := range []string{r.dir, r.logs} {
		if err := os.Mkdir(d, 0o755); err != nil {
			return 0, err
		}
	}
	return copyRepo(repo, r.dir)
}

// commandEnv is the runner's environment without MQTTSEC_ variables (.ci/run
// sets those for its own tests): the README's commands set what they need.
func commandEnv() []string {
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "MQTTSEC_") {
			env = append(env, kv)
		}
	}
	return env
}

// close stops what is still running and removes the work directory, or
// keeps it and says where when keep is set.
func (r *runner) close(keep bool) {
	for _, j := range r.jobs {
		j.p.kill()
	}
	for _, s := range r.services {
		if err := s.stop(); err != nil {
			fmt.Fprintf(r.out, "readmerun: stopping %s: %v\n", s.s, err)
		}
	}
	work := filepath.Dir(r.dir)
	if keep {
		fmt.Fprintf(r.out, "readmerun: the copy and the outputs are kept in %s\n", work)
		return
	}
	os.RemoveAll(work)
}

// block runs, checks or provides the commands of b.
func (r *runner) block(ctx context.Context, b block) error {
	switch b.marker {
	case markerCI:
		for _, c := range b.cmds {
			r.report(c, "ci", 0, "(.ci/run runs it)")
		}
		return nil
	case markerServices:
		for _, c := range b.cmds {
			if err := r.provide(c); err != nil {
				return commandError(c, 0, err, "")
			}
		}
		return nil
	}
	for _, c := range b.cmds {
		if err := r.command(ctx, c); err != nil {
			return err
		}
	}
	return r.endBlock(b)
}

// endBlock fails if a background job of b outlives it: a reader following
// the README would still have it running in the next section.
func (r *runner) endBlock(b block) error {
	if len(r.jobs) == 0 {
		return nil
	}
	j := r.jobs[0]
	return fmt.Errorf("README.md:%d: the block leaves job %%%d running (%s, line %d): end the block with kill %%%d", b.line, j.num, j.c.cmd, j.c.line, j.num)
}

// command runs one command of a block.
func (r *runner) command(ctx context.Context, c command) error {
	if n, ok := killJob(c.cmd); ok {
		return r.kill(ctx, c, n)
	}
	e := lookup(c.cmd)
	if err := r.ensure(e.uses); err != nil {
		return commandError(c, 0, err, "")
	}
	if c.background {
		return r.startJob(ctx, c, e)
	}
	return r.foreground(ctx, c, e)
}

// start starts a command's shell text in the copy, in a process group of
// its own.
func (r *runner) start(text string) (*proc, error) {
	r.seq++
	return startProc(r.dir, r.env, filepath.Join(r.logs, fmt.Sprintf("%03d.out", r.seq)), "bash", "-c", text)
}

// foreground runs c to its end and checks what it did; then the jobs that
// end by themselves after it must have ended.
func (r *runner) foreground(ctx context.Context, c command, e *expectation) error {
	before, err := r.connections(e.uses)
	if err != nil {
		return commandError(c, 0, err, "")
	}
	p, err := r.start(c.text)
	if err != nil {
		return commandError(c, 0, err, "")
	}
	statuses, err := p.wait(ctx, e.limit())
	took := time.Since(p.started)
	if err == nil {
		err = checkOutcome(e.outcomes, exitStatus(statuses[0]), p.output())
	}
	if err == nil {
		err = r.checkEffects(e, before)
	}
	if err != nil {
		return commandError(c, took, err, p.output())
	}
	r.report(c, "ok", took, "")
	return r.endSelfEnding(ctx)
}

// checkEffects checks the files a command leaves and the services it used.
func (r *runner) checkEffects(e *expectation, before map[service]int) error {
	if err := checkFiles(r.dir, e.files); err != nil {
		return err
	}
	after, err := r.connections(e.uses)
	if err != nil {
		return err
	}
	for _, s := range e.uses {
		if after[s] <= before[s] {
			return fmt.Errorf("it made no connection to %s on %s", s, s.addr())
		}
	}
	return nil
}

// connections counts the connections each service has seen so far (for
// Redis not counting the one that asks).
func (r *runner) connections(uses []service) (map[service]int, error) {
	n := map[service]int{}
	for _, s := range uses {
		c, err := r.services[s].connections()
		if err != nil {
			return nil, fmt.Errorf("counting the connections to %s: %v", s, err)
		}
		if s == redis {
			c--
		}
		n[s] = c
	}
	return n, nil
}

// ensure starts the services a command uses that are not running yet, or
// fails for one the README should have started by then.
func (r *runner) ensure(uses []service) error {
	for _, s := range uses {
		if r.services[s] != nil {
			continue
		}
		if s.fromREADME() {
			return fmt.Errorf("it uses %s on %s, which the README has not started by then", s, s.addr())
		}
		run, err := startService(s, r.logs)
		if err != nil {
			return err
		}
		r.services[s] = run
		fmt.Fprintf(r.out, "readmerun: %s on %s, started by the runner for the command below\n", s, s.addr())
	}
	return nil
}

// provide does in a services block command's place what it would do:
// checks that the packages it installs are installed and their tools
// present, and starts the service it starts.
func (r *runner) provide(c command) error {
	e := lookup(c.cmd)
	start := time.Now()
	if err := r.checkPackages(e.packages); err != nil {
		return err
	}
	for _, t := range e.tools {
		if _, err := lookTool(t, filepath.Join("/usr/sbin", t)); err != nil {
			return err
		}
	}
	note := fmt.Sprintf("(installed: %s)", strings.Join(e.packages, ", "))
	if e.provides != 0 {
		run, err := startService(e.provides, r.logs)
		if err != nil {
			return err
		}
		r.services[e.provides] = run
		note = fmt.Sprintf("(the runner's %s on %s, started with no listener configured, as this command starts it)", e.provides, e.provides.addr())
	}
	r.report(c, "provided", time.Since(start), note)
	return nil
}

// checkPackages returns nil if dpkg has every package installed, or if
// this is not a Debian system (it then says so).
func (r *runner) checkPackages(pkgs []string) error {
	if len(pkgs) == 0 {
		return nil
	}
	if _, err := exec.LookPath("dpkg-query"); err != nil {
		fmt.Fprintf(r.out, "readmerun: no dpkg-query: the packages %s are not checked\n", strings.Join(pkgs, ", "))
		return nil
	}
	out, err := exec.Command("dpkg-query", append([]string{"-W", "-f", "${Package} ${db:Status-Status}\n"}, pkgs...)...).CombinedOutput()
	if err != nil || strings.Count(string(out), " installed\n") != len(pkgs) {
		return fmt.Errorf("not every package of %s is installed (.ci/run installs them): %s", strings.Join(pkgs, ", "), strings.TrimSpace(string(out)))
	}
	return nil
}

// report prints one line for a command.
func (r *runner) report(c command, status string, took time.Duration, note string) {
	r.ran++
	d := ""
	if took > 0 {
		d = fmt.Sprintf("%.1fs", took.Seconds())
	}
	fmt.Fprintf(r.out, "README.md:%-4d %-9s %7s  %s %s\n", c.line, status, d, c.cmd, note)
}

// commandError says which command failed, how, and what it printed.
func commandError(c command, took time.Duration, err error, out string) error {
	msg := fmt.Sprintf("README.md:%d: %s\n  failed", c.line, c.cmd)
	if took > 0 {
		msg += fmt.Sprintf(" after %.1fs", took.Seconds())
	}
	msg += ": " + err.Error()
	if out != "" {
		msg += "\n  its output (the end):\n" + indent(tail(out, 40))
	}
	return fmt.Errorf("%s", msg)
}

// indent indents every line of s by four spaces.
func indent(s string) string {
	return "    " + strings.ReplaceAll(s, "\n", "\n    ")
}

// stopSignal is what kill %N sends, as a shell does.
const stopSignal = syscall.SIGTERM
