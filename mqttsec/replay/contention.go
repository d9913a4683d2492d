package replay

import (
	"context"
	"math/rand/v2"
	"sync"
	"time"
)

// senderLocks lets one caller per sender at a time into a section: the
// Admits of one process for one sender take turns instead of racing each
// other's optimistic transactions on the sender's Redis key (see
// RedisStore.Admit). Only senders with a caller holding or waiting have an
// entry, so the map is bounded by the callers in flight.
type senderLocks struct {
	mu    sync.Mutex
	locks map[string]*senderLock
}

type senderLock struct {
	held chan struct{} // holds one token while the lock is held
	refs int           // callers holding or waiting; guarded by senderLocks.mu
}

// lock waits until the caller holds sender's lock, or ctx ends (then it
// returns ctx's error). After a nil error the caller must call unlock.
func (l *senderLocks) lock(ctx context.Context, sender string) (unlock func(), err error) {
	l.mu.Lock()
	if l.locks == nil {
		l.locks = map[string]*senderLock{}
	}
	sl := l.locks[sender]
	if sl == nil {
		sl = &senderLock{held: make(chan struct{}, 1)}
		l.locks[sender] = sl
	}
	sl.refs++
	l.mu.Unlock()
	select {
	case sl.held <- struct{}{}:
		return func() {
			<-sl.held
			l.release(sender, sl)
		}, nil
	case <-ctx.Done():
		l.release(sender, sl)
		return nil, ctx.Err()
	}
}

// release drops one caller's reference, and the entry with the last.
func (l *senderLocks) release(sender string, sl *senderLock) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if sl.refs--; sl.refs == 0 {
		delete(l.locks, sender)
	}
}

// conflictBackoff waits before the attempt-th try (from 1) of a transaction
// that conflicted: a random time below 50 µs × 2^attempt (at most 3.2 ms),
// so that replicas that keep colliding on one sender's key spread out. It
// returns ctx's error if ctx ends first.
func conflictBackoff(ctx context.Context, attempt int) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	limit := 50 * time.Microsecond << min(attempt, 6)
	t := time.NewTimer(rand.N(limit))
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
