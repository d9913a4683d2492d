//go:build linux

package main

import (
	"fmt"
	"strings"
)

// runnerLine is the line of .ci/run that runs this program.
const runnerLine = "go run ./internal/readmerun"

// ciSelf is the README's command for CI itself: it is checked by .ci/run
// running the README (and so the claim that .ci/run is what CI runs is
// part of what CI checks).
const ciSelf = "bash .ci/run"

// checkCI returns nil if .ci/run, whose text is ciRun, runs cmd: one of its
// lines is exactly cmd (blanks around it aside). The commands of a
// readme-run: ci block are checked so rather than run twice.
func checkCI(ciRun, cmd string) error {
	want := key(cmd)
	if want == ciSelf {
		want = runnerLine
	}
	for _, l := range strings.Split(ciRun, "\n") {
		if key(l) == want {
			return nil
		}
	}
	if want == runnerLine {
		return fmt.Errorf(".ci/run has no line %q: it does not run the README's commands", runnerLine)
	}
	return fmt.Errorf(".ci/run has no line %q: make the README's command and .ci/run's agree, or run the command (move it out of the readme-run: ci block and give it an expectation)", want)
}
