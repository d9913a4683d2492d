package mqttsec

import (
	"context"
	"sync"
	"time"

	"github.com/mqttsec/mqttsec/envelope"
	"github.com/mqttsec/mqttsec/mqttsec/replay"
)

// Workers open messages in parallel, so without care a sender's messages
// reach the replay window in another order than they arrived. A window
// tolerates that within its width, but not a counter that leaps ahead of
// messages still in flight: a client that restarts numbers its messages
// from the clock, far above its earlier ones, and once the leap is
// admitted every earlier message still queued falls below the window and
// is refused as a replay, though it was never accepted.
//
// arrivals keeps, per sender, the messages waiting for a worker or being
// opened, in the order they arrived (read with envelope.Peek, which is
// unverified). orderedStore, around the node's replay store, holds back a
// message's Admit while an earlier arrival of its sender, still
// undecided, would fall out of the window if it went first. Only such
// leaps wait: messages within the window of each other are admitted in
// parallel, so a durable store still commits them together.

// arrival is one message from the time it is queued until the replay
// store decided it (or it was refused before).
type arrival struct {
	sender  string
	counter uint64 // as the header claims
	decided bool
	waiters chan struct{} // made by the first message to wait on it, closed when decided
}

// arrivals orders the admission of each sender's messages.
type arrivals struct {
	mu      sync.Mutex
	senders map[string][]*arrival // in order of arrival, undecided only
}

func newArrivals() *arrivals {
	return &arrivals{senders: map[string][]*arrival{}}
}

// arrive records a message of sender with counter, as it is queued.
func (a *arrivals) arrive(sender string, counter uint64) *arrival {
	m := &arrival{sender: sender, counter: counter}
	a.mu.Lock()
	a.senders[sender] = append(a.senders[sender], m)
	a.mu.Unlock()
	return m
}

// decide marks m decided, wakes whatever waits on it and forgets it. It
// may be called more than once.
func (a *arrivals) decide(m *arrival) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if m.decided {
		return
	}
	m.decided = true
	if m.waiters != nil {
		close(m.waiters)
	}
	list := a.senders[m.sender]
	for i, x := range list {
		if x == m {
			list = append(list[:i:i], list[i+1:]...)
			break
		}
	}
	if len(list) == 0 {
		delete(a.senders, m.sender)
	} else {
		a.senders[m.sender] = list
	}
}

// claim finds the message being admitted, sender's first undecided
// arrival with counter (it authenticated its counter), and returns it
// with what it must wait for: the channels of the undecided messages of
// its sender that arrived before it and that admitting counter would push
// out of a window of width. It returns nil for a message never queued.
func (a *arrivals) claim(sender string, counter, width uint64) (*arrival, []chan struct{}) {
	a.mu.Lock()
	defer a.mu.Unlock()
	list := a.senders[sender]
	var wait []chan struct{}
	for _, x := range list {
		if x.counter == counter {
			return x, wait
		}
		if x.counter < counter && counter-x.counter >= width {
			if x.waiters == nil {
				x.waiters = make(chan struct{})
			}
			wait = append(wait, x.waiters)
		}
	}
	return nil, nil
}

// maxOrderWait bounds how long a message waits for earlier ones of its
// sender: those are being opened by other workers and are decided within
// an Open; past it, admitting goes ahead (an earlier message may then be
// refused, as it would have been without ordering).
const maxOrderWait = 5 * time.Second

// orderedStore is the node's replay store with Admit held back as
// arrivals says.
type orderedStore struct {
	envelope.ReplayStore
	arrivals *arrivals
	width    uint64
	// full, if not nil, watches how full the store is.
	full *fullWatch
}

// Admit waits for the earlier messages its own would push out of the
// window, then admits it and marks it decided.
func (s *orderedStore) Admit(ctx context.Context, m envelope.Seen) error {
	if s.full != nil {
		s.full.admit()
	}
	a, wait := s.arrivals.claim(m.Sender, m.Counter, s.width)
	if a == nil {
		return s.ReplayStore.Admit(ctx, m) // not queued: a reply, opened where it is awaited
	}
	defer s.arrivals.decide(a)
	if len(wait) > 0 {
		timer := time.NewTimer(maxOrderWait)
		defer timer.Stop()
	waiting:
		for _, w := range wait {
			select {
			case <-w:
			case <-timer.C:
				break waiting
			case <-ctx.Done():
				return ctx.Err()
			}
		}
	}
	return s.ReplayStore.Admit(ctx, m)
}

// lossReporter is a replay store that notices when its own records were
// lost (the durable stores of mqttsec/replay).
type lossReporter interface {
	NotifyLoss(f func(error))
}

// windowWidth is the replay window width of store, if it says, and the
// smallest width a store may have otherwise: the ordering then holds back
// more messages than it needs to, never fewer.
func windowWidth(store envelope.ReplayStore) uint64 {
	if w, ok := store.(interface{ Width() int }); ok && w.Width() > 0 {
		return uint64(w.Width())
	}
	return replay.DefaultWindow
}
