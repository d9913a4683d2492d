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
