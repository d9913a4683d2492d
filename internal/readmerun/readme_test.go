//go:build linux

package main

import (
	"strings"
	"testing"
)

func TestStripComment(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"go run ./examples/demo   # a comment", "go run ./examples/demo"},
		{"mosquitto_sub -t 'mqttsec/gateway/req/#' -C 1", "mosquitto_sub -t 'mqttsec/gateway/req/#' -C 1"},
		{`echo "a # b" # c`, `echo "a # b"`},
		{`echo a#b`, `echo a#b`},
		{`echo \# not a comment`, `echo \# not a comment`},
		{`echo "\"#" x # y`, `echo "\"#" x`},
		{"# only a comment", ""},
		{"go run ./x &\t# background", "go run ./x &"},
		{"go run ./x \\\n  --flag   # continued", "go run ./x    --flag"},
	} {
		if got := stripComment(tc.in); got != tc.want {
			t.Errorf("stripComment(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

const sampleREADME = "# Title\n" +
	"\n" +
	"```sh\n" +
	"go run ./a   # first\n" +
	"\n" +
	"# a comment line\n" +
	"go run ./b &\n" +
	"kill %1\n" +
	"```\n" +
	"\n" +
	"```go\n" +
	"x := 1 // ```sh inside a go block is not a fence\n" +
	"```\n" +
	"<!-- readme-run: ci -->\n" +
	"\n" +
	"```sh\n" +
	"go vet ./... \\\n" +
	"  -x\n" +
	"a && b\n" +
	"```\n"

func TestParseREADME(t *testing.T) {
	blocks, err := parseREADME(sampleREADME)
	if err != nil {
		t.Fatal(err)
	}
	type cmd struct {
		line       int
		cmd        string
		background bool
	}
	want := []struct {
		line   int
		marker string
		cmds   []cmd
	}{
		{3, "", []cmd{{4, "go run ./a", false}, {7, "go run ./b &", true}, {8, "kill %1", false}}},
		{16, markerCI, []cmd{{17, "go vet ./...    -x", false}, {19, "a && b", false}}},
	}
	if len(blocks) != len(want) {
		t.Fatalf("%d blocks, want %d: %+v", len(blocks), len(want), blocks)
	}
	for i, b := range blocks {
		if b.line != want[i].line || b.marker != want[i].marker {
			t.Errorf("block %d at line %d marker %q, want line %d marker %q", i, b.line, b.marker, want[i].line, want[i].marker)
		}
		if len(b.cmds) != len(want[i].cmds) {
			t.Fatalf("block %d: %d commands, want %d: %+v", i, len(b.cmds), len(want[i].cmds), b.cmds)
		}
		for j, c := range b.cmds {
			w := want[i].cmds[j]
			if c.line != w.line || c.cmd != w.cmd || c.background != w.background {
				t.Errorf("block %d command %d = line %d %q background %v, want line %d %q background %v", i, j, c.line, c.cmd, c.background, w.line, w.cmd, w.background)
			}
		}
	}
	if got := blocks[0].cmds[0].text; got != "go run ./a   # first" {
		t.Errorf("text = %q: the line as written is what runs", got)
	}
}

func TestParseREADMEErrors(t *testing.T) {
	for _, tc := range []struct{ name, src, want string }{
		{"unknown marker", "<!-- readme-run: skip -->\n```sh\nx\n```\n", `unknown readme-run marker "skip"`},
		{"marker before text", "<!-- readme-run: ci -->\nsome text\n```sh\nx\n```\n", "README.md:1: the readme-run marker is not followed by a ```sh block"},
		{"marker before a go block", "<!-- readme-run: ci -->\n```go\nx\n```\n", "README.md:1: the readme-run marker is not followed by a ```sh block"},
		{"bash fence", "```bash\nx\n```\n", "README.md:1: a ```bash block: write ```sh"},
		{"unclosed", "text\n```sh\nx\n", "README.md:2: fence not closed"},
		{"continued at the end", "```sh\nx \\\n```\n", "ends inside a continued line"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := parseREADME(tc.src)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %v, want one containing %q", err, tc.want)
			}
		})
	}
}

func TestKillJob(t *testing.T) {
	for _, tc := range []struct {
		cmd string
		n   int
		ok  bool
	}{
		{"kill %1", 1, true},
		{"kill  %12", 12, true},
		{"kill %0", 0, false},
		{"kill -INT %1", 0, false},
		{"kill 1234", 0, false},
		{"kill %1 %2", 0, false},
	} {
		n, ok := killJob(tc.cmd)
		if n != tc.n || ok != tc.ok {
			t.Errorf("killJob(%q) = %d, %v; want %d, %v", tc.cmd, n, ok, tc.n, tc.ok)
		}
	}
}

func TestJobRun(t *testing.T) {
	if got := jobRun("go run ./examples/gateway --keys keys/gateway &"); got != "go run ./examples/gateway --keys keys/gateway" {
		t.Errorf("jobRun = %q", got)
	}
}
