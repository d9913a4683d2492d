package replay

import (
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/mqttsec/mqttsec/envelope"
)

// ErrStateLost is wrapped by the error a durable store reports, through
// NotifyLoss, when it finds that records it kept are gone or damaged: a
// file emptied, deleted, cut short, changed or restored from a backup; a
// Redis that restarted without its data, was flushed, failed over to an
// empty replica or evicted a key. A store cannot tell which of its
// records were lost, so it refuses every message issued before the loss
// was noticed plus the clock skew (SPEC.md §7.3): each of those may have
// been accepted before. It never admits one again; once their issue time
// is that far behind, messages are accepted as usual, with no restart.
var ErrStateLost = errors.New("replay: replay state lost")

// ErrExists is the error of creating replay state (CreateFileStore,
// InitRedisStore) where some already exists: it is opened, never created
// again, since creating it anew would forget what it admitted.
var ErrExists = errors.New("replay: replay state already exists")

// LossError is the report of one loss of replay state.
type LossError struct {
	// Noticed is the moment the refusal counts from: when the store
	// noticed the loss, on the receiver's clock, or a later time that the
	// damaged state itself records (a clock that came up behind). Messages
	// issued up to the clock skew after it are refused.
	Noticed time.Time
	// What says what was found, naming no secret ("replay.log is
	// shorter than its header says").
	What string
}

func (e *LossError) Error() string {
	return fmt.Sprintf("replay: replay state lost (%s), noticed at %s: messages issued before then plus the clock skew are refused",
		e.What, e.Noticed.UTC().Format(time.RFC3339Nano))
}

// Unwrap returns ErrStateLost.
func (e *LossError) Unwrap() error { return ErrStateLost }

// errBeforeLoss refuses a message issued before a loss was noticed (plus
// the skew): it may have been accepted before the loss.
var errBeforeLoss = fmt.Errorf("%w: issued before the replay state was lost", envelope.ErrReplayed)

// beforeLoss reports whether m was issued at or before noticed plus its
// skew; a zero noticed means no loss.
func beforeLoss(noticed time.Time, m envelope.Seen) bool {
	return !noticed.IsZero() && !m.IssuedAt.After(noticed.Add(m.SkewOrDefault()))
}

// lossReports hands each loss a store notices to every function given to
// NotifyLoss, including the losses noticed before it was given.
type lossReports struct {
	mu       sync.Mutex
	handlers []func(error)
	past     []error // the most recent losses, for handlers that come later
}

// maxPastLosses bounds the losses kept for handlers registered later.
const maxPastLosses = 16

// add registers f and calls it with every loss noticed so far.
func (l *lossReports) add(f func(error)) {
	l.mu.Lock()
	l.handlers = append(l.handlers, f)
	past := append([]error(nil), l.past...)
	l.mu.Unlock()
	for _, err := range past {
		f(err)
	}
}

// report records err and calls every handler with it.
func (l *lossReports) report(err error) {
	l.mu.Lock()
	l.past = append(l.past, err)
	if len(l.past) > maxPastLosses {
		l.past = l.past[len(l.past)-maxPastLosses:]
	}
	handlers := append([](func(error))(nil), l.handlers...)
	l.mu.Unlock()
	for _, f := range handlers {
		f(err)
	}
}
