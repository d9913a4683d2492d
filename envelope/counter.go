package envelope

import (
	"errors"
	"sync/atomic"
	"time"
)

// A Counter hands a sender the counter for each message it seals. Counters
// must strictly increase across everything one sender id seals, including
// across restarts: a receiver refuses any counter it has seen or that is
// older than its replay window.
type Counter interface {
	Next() (uint64, error)
}

// ErrCounterExhausted means a counter reached 2^64-1.
var ErrCounterExhausted = errors.New("envelope: counter exhausted")

// MemoryCounter is a Counter held in memory, safe for concurrent use. It
// does not survive a restart: a sender that restarts with a MemoryCounter
// from the same start is refused by receivers that remember its earlier
// counters, so start it above anything used before (for example from a
// clock) or use a durable counter.
type MemoryCounter struct {
	last atomic.Uint64
}

// NewMemoryCounter returns a counter whose first Next returns last+1.
func NewMemoryCounter(last uint64) *MemoryCounter {
	c := &MemoryCounter{}
	c.last.Store(last)
	return c
}

// Next implements Counter.
func (c *MemoryCounter) Next() (uint64, error) {
	for {
		last := c.last.Load()
		if last == ^uint64(0) {
			return 0, ErrCounterExhausted
		}
		if c.last.CompareAndSwap(last, last+1) {
			return last + 1, nil
		}
	}
}

// NewClockCounter returns a MemoryCounter that starts at the current time in
// nanoseconds since the Unix epoch. A sender that restarts with it continues
// above every counter it used before, as long as its clock never goes back
// and it seals fewer than a billion messages per second on average. It is a
// convenient default where no durable counter is kept, not a replacement for
// one on a device with an unreliable clock.
func NewClockCounter() *MemoryCounter {
	return NewMemoryCounter(uint64(time.Now().UnixNano()))
}
