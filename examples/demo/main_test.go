package main

import (
	"bytes"
	"context"
	"fmt"
	"strings"
	"testing"
	"time"
)

// The demo is also a test: on the embedded broker, with both protocols,
// every check must pass.
func TestDemo(t *testing.T) {
	for _, proto := range []int{3, 5} {
		t.Run(fmt.Sprintf("v%d", proto), func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
			defer cancel()
			var out bytes.Buffer
			if err := run(ctx, &out, "", proto); err != nil {
				t.Fatalf("%v\n%s", err, out.String())
			}
			if strings.Contains(out.String(), "FAIL") || !strings.Contains(out.String(), "behaved as expected") {
				t.Fatalf("unexpected report:\n%s", out.String())
			}
		})
	}
}

func TestDemoFlags(t *testing.T) {
	for _, tt := range []struct {
		args      []string
		help, err bool
		stdout    string
	}{
		{args: []string{"-h"}, help: true, stdout: "usage: demo"},
		{args: []string{"--help"}, help: true, stdout: "-protocol"},
		{args: []string{"--protocol", "4"}, err: true},
		{args: []string{"--nope"}, err: true},
		{args: []string{"--protocol", "3", "--broker", "tcp://127.0.0.1:1883"}},
	} {
		var out, errOut bytes.Buffer
		opt, help, err := parseFlags(tt.args, &out, &errOut)
		if help != tt.help || (err != nil) != tt.err || !strings.Contains(out.String(), tt.stdout) || tt.stdout == "" && out.Len() != 0 {
			t.Errorf("demo %q = %+v, %v, %v; stdout %q", tt.args, opt, help, err, out.String())
		}
		if tt.help && errOut.Len() != 0 {
			t.Errorf("demo %q wrote to stderr: %q", tt.args, errOut.String())
		}
	}
}
