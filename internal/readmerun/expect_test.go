//go:build linux

package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestREADMEPlan checks, without running anything, that every command of
// the repository's README.md has an expectation of the right kind and that
// every command of its readme-run: ci blocks is a line of .ci/run: what
// the run checks before it starts.
func TestREADMEPlan(t *testing.T) {
	blocks, err := load(filepath.Join("..", ".."))
	if err != nil {
		t.Fatal(err)
	}
	if len(blocks) == 0 {
		t.Fatal("README.md has no sh blocks")
	}
}

// TestNoStaleExpectations fails for an entry no README command uses: a
// command changed in README.md must have its entry changed, not added.
func TestNoStaleExpectations(t *testing.T) {
	readme, err := os.ReadFile(filepath.Join("..", "..", "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	blocks, err := parseREADME(string(readme))
	if err != nil {
		t.Fatal(err)
	}
	used := map[string]bool{}
	for _, b := range blocks {
		for _, c := range b.cmds {
			used[key(c.cmd)] = true
		}
	}
	for _, e := range expectations {
		if !used[key(e.cmd)] {
			t.Errorf("no README command is %q", e.cmd)
		}
	}
}

func TestExpectationsWellFormed(t *testing.T) {
	seen := map[string]bool{}
	for _, e := range expectations {
		k := key(e.cmd)
		if seen[k] {
			t.Errorf("%q: two entries", e.cmd)
		}
		seen[k] = true
		provided := e.provides != 0 || len(e.packages) > 0
		if provided == (len(e.outcomes) > 0) {
			t.Errorf("%q: an entry either has outcomes (a command that runs) or provides or checks packages (a services block's), not both or neither", e.cmd)
		}
	}
}

func TestPlanFindsProblems(t *testing.T) {
	ciRun := "#!/usr/bin/env bash\ngo vet ./...\necho \"== go test -race ./...\"\n"
	for _, tc := range []struct {
		name   string
		marker string
		cmd    command
		want   string // "" for no problem
	}{
		{"known command", "", command{cmd: "go run ./examples/demo"}, ""},
		{"kill", "", command{cmd: "kill %1"}, ""},
		{"unknown command", "", command{cmd: "go run ./examples/new"}, "no expectation"},
		{"ci command in .ci/run", markerCI, command{cmd: "go vet ./..."}, ""},
		{"ci command only echoed by .ci/run", markerCI, command{cmd: "go test -race ./..."}, `.ci/run has no line "go test -race ./..."`},
		{"services command run as a command", "", command{cmd: "mosquitto -d"}, "which the runner provides"},
		{"command in a services block", markerServices, command{cmd: "go run ./examples/demo"}, "in a readme-run: services block"},
		{"foreground command given &", "", command{cmd: "go run ./examples/demo &", background: true}, "no expectation"},
		{"job run in the foreground", "", command{cmd: "go run ./examples/gateway --keys keys/gateway"}, "no expectation"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := planCommand(tc.marker, tc.cmd, ciRun)
			switch {
			case tc.want == "" && err != nil:
				t.Errorf("unexpected problem: %v", err)
			case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
				t.Errorf("problem %v, want one containing %q", err, tc.want)
			}
		})
	}
}

func TestPlanNeedsReadiness(t *testing.T) {
	saved := expectations
	defer func() { expectations = saved }()
	expectations = []expectation{{cmd: "go run ./x &", outcomes: prints(``)}, {cmd: "go run ./y", outcomes: prints(``), endsAfterNext: true}}
	if err := planCommand("", command{cmd: "go run ./x &", background: true}, ""); err == nil || !strings.Contains(err.Error(), "needs a readiness condition") {
		t.Errorf("a job without readiness: %v", err)
	}
	if err := planCommand("", command{cmd: "go run ./y"}, ""); err == nil || !strings.Contains(err.Error(), "only a background command") {
		t.Errorf("a foreground command that ends after the next: %v", err)
	}
}

func TestCheckCI(t *testing.T) {
	ciRun := "set -e\n\tgo vet ./...\ngo  test -race -count=1 ./...\n" + runnerLine + "\n"
	for _, tc := range []struct {
		cmd string
		ok  bool
	}{
		{"go vet ./...", true},
		{"go test -race -count=1 ./...", true},
		{"go test -race ./...", false},
		{"go vet", false},
		{ciSelf, true},
	} {
		if err := checkCI(ciRun, tc.cmd); (err == nil) != tc.ok {
			t.Errorf("checkCI(%q) = %v, want ok %v", tc.cmd, err, tc.ok)
		}
	}
	if err := checkCI("go vet ./...\n", ciSelf); err == nil {
		t.Errorf("%s passes though .ci/run does not run the README", ciSelf)
	}
}
