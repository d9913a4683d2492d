//go:build linux

// Command readmerun runs the commands of README.md and fails unless each
// does what it should, so that a reader can follow the README verbatim.
//
//	go run ./internal/readmerun [-repo DIR]
//
// It takes README.md's ```sh blocks in document order; each line is one
// command, run with bash -c in a copy of the repository (so that keys and
// captures land there, not in the checkout), with no MQTTSEC_ variables in
// its environment. Every command has an expectation (expect.go): an exit
// status and a regexp its combined output must match, and where it
// applies the files it leaves and the services it must be seen to use. A
// README command without one fails the run, so a new command states what
// it prints; so does output holding a panic or a data race.
//
// A line ending in & is a background job: it runs in a process group of
// its own, numbered as an interactive shell numbers jobs, and the next line
// runs once it is ready (its output says so, or the broker's log shows its
// subscription). kill %N stops a job as a shell does (SIGTERM to its
// process group); the runner then waits for all of its processes and
// checks that they ended cleanly. A job marked as ending by itself must
// end after the next command; no job may outlive its block.
//
// An HTML comment before a block changes how it is taken:
//
//   - <!-- readme-run: services --> installs and starts a service (the
//     broker). The runner checks that the packages named are installed and
//     starts the service itself, on its default port, where it can stop
//     it and read its log.
//   - <!-- readme-run: ci --> holds commands that .ci/run runs itself. Each
//     must be a line of .ci/run; they are not run twice.
//
// Redis and a SOCKS5 proxy (microsocks) are started on their default ports
// for the first command that uses them. Every wait polls a condition with
// a deadline. The runner needs Linux, bash, git, and mosquitto,
// mosquitto_sub, redis-server and microsocks, which .ci/run installs.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"
	"time"
)

func main() {
	repo := flag.String("repo", ".", "the repository whose README.md to run (a git checkout)")
	flag.Parse()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, *repo, os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "readmerun:", err)
		os.Exit(1)
	}
}

// run runs the README of the repository at repo.
func run(ctx context.Context, repo string, out io.Writer) (err error) {
	start := time.Now()
	blocks, err := load(repo)
	if err != nil {
		return err
	}
	if err := becomeSubreaper(); err != nil {
		return err
	}
	r, err := newRunner(repo, out)
	if err != nil {
		return err
	}
	defer func() { r.close(err != nil) }()
	for _, b := range blocks {
		if err := r.block(ctx, b); err != nil {
			return err
		}
	}
	fmt.Fprintf(out, "readmerun: all %d commands of README.md did what they should, in %v\n", r.ran, time.Since(start).Round(time.Second))
	return nil
}

// load reads and parses repo's README.md and checks, before anything runs,
// that every command has an expectation and every CI command is .ci/run's.
func load(repo string) ([]block, error) {
	readme, err := os.ReadFile(filepath.Join(repo, "README.md"))
	if err != nil {
		return nil, err
	}
	ciRun, err := os.ReadFile(filepath.Join(repo, ".ci", "run"))
	if err != nil {
		return nil, err
	}
	blocks, err := parseREADME(string(readme))
	if err != nil {
		return nil, err
	}
	return blocks, plan(blocks, string(ciRun))
}

// plan returns every problem that would stop the run of blocks midway: a
// command without an expectation, or of the wrong kind for its block, and
// a CI command that .ci/run (whose text is ciRun) does not run.
func plan(blocks []block, ciRun string) error {
	var errs []error
	for _, b := range blocks {
		for _, c := range b.cmds {
			if err := planCommand(b.marker, c, ciRun); err != nil {
				errs = append(errs, fmt.Errorf("README.md:%d: %s: %v", c.line, c.cmd, err))
			}
		}
	}
	return errors.Join(errs...)
}

// planCommand checks one command of a block with marker.
func planCommand(marker string, c command, ciRun string) error {
	if marker == markerCI {
		return checkCI(ciRun, c.cmd)
	}
	if _, ok := killJob(c.cmd); ok && marker == "" {
		return nil
	}
	e := lookup(c.cmd)
	switch {
	case e == nil:
		return errors.New("no expectation: add what it prints to the table in internal/readmerun/expect.go")
	case marker == markerServices && len(e.outcomes) > 0:
		return errors.New("in a readme-run: services block, but its expectation is of a command that runs")
	case marker == "" && len(e.outcomes) == 0:
		return errors.New("its expectation is of a services block's command, which the runner provides")
	case c.background != (e.ready.output != nil || e.ready.subscribed != ""):
		return errors.New("a background command (ending in &) needs a readiness condition, and only one has one")
	case e.endsAfterNext && !c.background:
		return errors.New("only a background command can end by itself after the next command")
	}
	return nil
}
