// Package testwait waits, in tests, for effects that have no event to wait
// on: a message that must be refused, a counter, a file reloaded.
package testwait

import (
	"testing"
	"time"
)

// Until polls cond every 5 ms until it holds, failing t after 10 s with
// "timed out waiting for what".
func Until(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}
