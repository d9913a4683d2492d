package replay

import (
	"context"
	"errors"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
)

// One caller per sender at a time; other senders are not held up; a caller
// whose context ends stops waiting; no entry outlives its callers.
func TestSenderLocks(t *testing.T) {
	var l senderLocks
	var inside, most atomic.Int64
	var wg sync.WaitGroup
	for range 32 {
		wg.Go(func() {
			for range 50 {
				unlock, err := l.lock(context.Background(), "client")
				if err != nil {
					t.Error(err)
					return
				}
				n := inside.Add(1)
				for m := most.Load(); n > m && !most.CompareAndSwap(m, n); m = most.Load() {
				}
				runtime.Gosched() // let others try to come in
				inside.Add(-1)
				unlock()
			}
		})
	}
	wg.Wait()
	if m := most.Load(); m != 1 {
		t.Fatalf("%d callers held one sender's lock at once", m)
	}

	unlockA, err := l.lock(context.Background(), "a")
	if err != nil {
		t.Fatal(err)
	}
	cancelled, cancel := context.WithCancel(context.Background())
	cancel()
	// Another sender's lock is free while a's is held.
	unlockB, err := l.lock(context.Background(), "b")
	if err != nil {
		t.Fatalf("lock b while a is held: %v", err)
	}
	unlockB()
	if _, err := l.lock(cancelled, "a"); !errors.Is(err, context.Canceled) {
		t.Fatalf("lock a, held, with an ended context: %v", err)
	}
	l.mu.Lock()
	entries, refs := len(l.locks), l.locks["a"].refs
	l.mu.Unlock()
	if entries != 1 || refs != 1 {
		t.Fatalf("%d entries, a has %d references; want 1 and 1", entries, refs)
	}
	unlockA()
	if len(l.locks) != 0 {
		t.Fatalf("%d entries left after every caller unlocked", len(l.locks))
	}
}

// conflictBackoff returns when its wait is over, and at once with the
// context's error when the context has ended.
func TestConflictBackoff(t *testing.T) {
	for attempt := 1; attempt <= 8; attempt++ {
		if err := conflictBackoff(context.Background(), attempt); err != nil {
			t.Fatalf("attempt %d: %v", attempt, err)
		}
	}
	ended, cancel := context.WithCancel(context.Background())
	cancel()
	if err := conflictBackoff(ended, 6); !errors.Is(err, context.Canceled) {
		t.Fatalf("with an ended context: %v", err)
	}
}
