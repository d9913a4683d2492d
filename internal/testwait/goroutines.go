package testwait

import (
	"runtime"
	"strings"
	"testing"
	"time"
)

// Goroutines returns the stack of every goroutine, by goroutine id.
func Goroutines() map[string]string {
	buf := make([]byte, 1<<20)
	for {
		n := runtime.Stack(buf, true)
		if n < len(buf) {
			buf = buf[:n]
			break
		}
		buf = make([]byte, 2*len(buf))
	}
	out := map[string]string{}
	for _, g := range strings.Split(string(buf), "\n\n") {
		header, _, _ := strings.Cut(g, "\n")
		fields := strings.Fields(header) // "goroutine 42 [running]:"
		if len(fields) >= 2 && fields[0] == "goroutine" {
			out[fields[1]] = g
		}
	}
	return out
}

// NoneLeft waits up to 10 s for every goroutine that is not in before
// (taken with Goroutines) and not the testing package's own to end, and
// fails t naming those still running, with their stacks. It compares
// goroutine ids, so stragglers of earlier tests do not count.
func NoneLeft(t testing.TB, before map[string]string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		var leaked []string
		for id, stack := range Goroutines() {
			if _, old := before[id]; !old && !strings.Contains(stack, "testing.") {
				leaked = append(leaked, stack)
			}
		}
		if len(leaked) == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Errorf("%d goroutines outlived the test:\n%s", len(leaked), strings.Join(leaked, "\n\n"))
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
}
