//go:build linux

package main

import (
	"fmt"
	"regexp"
	"strings"
)

// A block is one ```sh fence of README.md.
type block struct {
	line   int    // README.md line of the opening fence
	marker string // from a <!-- readme-run: ... --> line before the fence: "", markerCI or markerServices
	cmds   []command
}

// A command is one line of a block; a line ending in a backslash continues
// on the next.
type command struct {
	line       int    // README.md line where it starts
	text       string // as written, comment included: what bash runs
	cmd        string // text without its comment, trimmed: what is shown
	background bool   // cmd ends in a lone &: the runner starts it as job
}

const (
	// markerCI marks a block of commands that .ci/run runs itself; each
	// must be a line of .ci/run.
	markerCI = "ci"
	// markerServices marks a block that installs and starts services
	// (Mosquitto); the runner provides each service in its place.
	markerServices = "services"
)

var markerLine = regexp.MustCompile(`^<!--\s*readme-run:\s*(\S*)\s*-->$`)

// shellFences are fence info strings that hold shell commands but are not
// run: README.md writes its commands as ```sh.
var shellFences = map[string]bool{"bash": true, "shell": true, "console": true, "zsh": true}

// parseREADME returns the ```sh blocks of a README in document order.
func parseREADME(src string) ([]block, error) {
	lines := strings.Split(strings.ReplaceAll(src, "\r\n", "\n"), "\n")
	var blocks []block
	marker, markerAt := "", 0
	for i := 0; i < len(lines); i++ {
		t := strings.TrimSpace(lines[i])
		if m := markerLine.FindStringSubmatch(t); m != nil {
			if m[1] != markerCI && m[1] != markerServices {
				return nil, fmt.Errorf("README.md:%d: unknown readme-run marker %q (known: %s, %s)", i+1, m[1], markerCI, markerServices)
			}
			marker, markerAt = m[1], i+1
			continue
		}
		if !strings.HasPrefix(t, "```") {
			if t != "" && marker != "" {
				return nil, fmt.Errorf("README.md:%d: the readme-run marker is not followed by a ```sh block", markerAt)
			}
			continue
		}
		info := strings.TrimSpace(strings.TrimPrefix(t, "```"))
		end := closingFence(lines, i+1)
		if end < 0 {
			return nil, fmt.Errorf("README.md:%d: fence not closed", i+1)
		}
		switch {
		case info == "sh":
			b, err := parseBlock(lines[i+1:end], i+2)
			if err != nil {
				return nil, err
			}
			b.line, b.marker = i+1, marker
			blocks = append(blocks, b)
		case shellFences[info]:
			return nil, fmt.Errorf("README.md:%d: a ```%s block: write ```sh, which readmerun runs", i+1, info)
		case marker != "":
			return nil, fmt.Errorf("README.md:%d: the readme-run marker is not followed by a ```sh block", markerAt)
		}
		marker = ""
		i = end
	}
	return blocks, nil
}

// closingFence returns the index of the first line from start that closes
// a fence, or -1.
func closingFence(lines []string, start int) int {
	for j := start; j < len(lines); j++ {
		if strings.TrimSpace(lines[j]) == "```" {
			return j
		}
	}
	return -1
}

// parseBlock returns the commands of a block's lines, the first of which is
// README.md line first.
func parseBlock(lines []string, first int) (block, error) {
	var b block
	for i := 0; i < len(lines); i++ {
		c := command{line: first + i, text: lines[i]}
		for strings.HasSuffix(c.text, `\`) && i+1 < len(lines) {
			i++
			c.text += "\n" + lines[i]
		}
		c.cmd = stripComment(c.text)
		if c.cmd == "" {
			continue // blank or comment only
		}
		if strings.HasSuffix(c.cmd, `\`) {
			return block{}, fmt.Errorf("README.md:%d: the block ends inside a continued line", c.line)
		}
		c.background = strings.HasSuffix(c.cmd, "&") && !strings.HasSuffix(c.cmd, "&&")
		b.cmds = append(b.cmds, c)
	}
	return b, nil
}

// stripComment returns a shell line without its comment, trimmed: a # that
// starts a word outside quotes starts the comment ('mqttsec/a/#' and a#b
// hold no comment). Continued lines are joined with a space.
func stripComment(s string) string {
	s = strings.ReplaceAll(s, "\\\n", " ")
	var quote rune
	escaped := false
	for i, r := range s {
		switch {
		case escaped:
			escaped = false
		case quote == '\'':
			if r == '\'' {
				quote = 0
			}
		case r == '\\':
			escaped = true
		case quote == '"':
			if r == '"' {
				quote = 0
			}
		case r == '\'' || r == '"':
			quote = r
		case r == '#' && (i == 0 || s[i-1] == ' ' || s[i-1] == '\t'):
			return strings.TrimSpace(s[:i])
		}
	}
	return strings.TrimSpace(s)
}

// key is a command's entry in the expectation table: cmd with runs of
// blanks made one space, so that aligning comments does not change it.
func key(cmd string) string {
	return strings.Join(strings.Fields(cmd), " ")
}

// jobRun is what a background command runs: cmd without its final &.
func jobRun(cmd string) string {
	return strings.TrimSpace(strings.TrimSuffix(cmd, "&"))
}

var killLine = regexp.MustCompile(`^kill %([1-9][0-9]*)$`)

// killJob reports whether cmd is "kill %N", which the runner performs
// itself (each line runs in a shell of its own, where %N means nothing),
// as an interactive shell does: SIGTERM to job N's process group.
func killJob(cmd string) (n int, ok bool) {
	m := killLine.FindStringSubmatch(key(cmd))
	if m == nil {
		return 0, false
	}
	fmt.Sscan(m[1], &n)
	return n, true
}
