package envelope

import (
	"context"
	"errors"
	"sync"
)

// A ReplayStore keeps, per sender, the window of counters already accepted
// (SPEC.md §5.3). Implementations must be safe for concurrent use, and Admit
// must be atomic per sender: of two concurrent Admit calls with the same
// sender and counter, exactly one succeeds.
type ReplayStore interface {
	// Check returns ErrReplayed if ctr would be refused now. It changes
	// nothing; Open calls it early to shed replays before any crypto.
	Check(ctx context.Context, sender string, ctr uint64) error
	// Admit atomically checks ctr and records it as accepted, returning
	// ErrReplayed if it was already accepted or is below the window.
	Admit(ctx context.Context, sender string, ctr uint64) error
}

// DefaultWindow is the replay window width used when none is given.
const DefaultWindow = 64

// MaxWindow bounds the window width (64 KiB of bitmap per sender).
const MaxWindow = 1 << 19

// Window is the sliding replay window for one sender: the highest counter
// accepted, and a bitmap of which of the Width counters at and below it were
// accepted. Counters above the highest are always fresh; counters Width or
// more below it are always refused. The zero Window is not usable; use
// NewWindow.
type Window struct {
	highest uint64
	bits    []uint64 // bit i set: highest-i was accepted
	started bool
}

// NewWindow returns an empty window of the given width (a multiple of 64,
// from 64 to MaxWindow).
func NewWindow(width int) (*Window, error) {
	if width < 64 || width > MaxWindow || width%64 != 0 {
		return nil, errors.New("envelope: replay window width must be a multiple of 64 from 64 to 524288")
	}
	return &Window{bits: make([]uint64, width/64)}, nil
}

// Width returns the window width in counters.
func (w *Window) Width() int { return len(w.bits) * 64 }

// Highest returns the highest counter accepted, and false if none was.
func (w *Window) Highest() (uint64, bool) { return w.highest, w.started }

// Fresh reports whether ctr would be accepted.
func (w *Window) Fresh(ctr uint64) bool {
	if !w.started || ctr > w.highest {
		return true
	}
	d := w.highest - ctr
	if d >= uint64(w.Width()) {
		return false
	}
	return w.bits[d/64]&(1<<(d%64)) == 0
}

// Accept records ctr if it is fresh and reports whether it was.
func (w *Window) Accept(ctr uint64) bool {
	if !w.Fresh(ctr) {
		return false
	}
	if !w.started || ctr > w.highest {
		shift := ctr - w.highest
		if !w.started {
			shift = uint64(w.Width())
		}
		w.shift(shift)
		w.highest = ctr
		w.started = true
		w.bits[0] |= 1
		return true
	}
	d := w.highest - ctr
	w.bits[d/64] |= 1 << (d % 64)
	return true
}

// shift moves every bit n places towards older counters.
func (w *Window) shift(n uint64) {
	words := len(w.bits)
	if n >= uint64(words*64) {
		clear(w.bits)
		return
	}
	ws, bs := int(n/64), n%64
	for j := words - 1; j >= 0; j-- {
		var v uint64
		if src := j - ws; src >= 0 {
			v = w.bits[src] << bs
			if bs > 0 && src > 0 {
				v |= w.bits[src-1] >> (64 - bs)
			}
		}
		w.bits[j] = v
	}
}

// MemoryStore is a ReplayStore held in process memory. It forgets
// everything on restart: after a restart only the timestamp checks
// (Policy.MaxLifetime) bound what can be replayed.
type MemoryStore struct {
	width int
	mu    sync.Mutex
	win   map[string]*Window
}

var _ ReplayStore = (*MemoryStore)(nil)

// NewMemoryStore returns an empty store whose windows are width counters
// wide (see NewWindow; 0 means DefaultWindow).
func NewMemoryStore(width int) (*MemoryStore, error) {
	if width == 0 {
		width = DefaultWindow
	}
	if _, err := NewWindow(width); err != nil {
		return nil, err
	}
	return &MemoryStore{width: width, win: make(map[string]*Window)}, nil
}

// Check implements ReplayStore.
func (s *MemoryStore) Check(ctx context.Context, sender string, ctr uint64) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if w := s.win[sender]; w != nil && !w.Fresh(ctr) {
		return ErrReplayed
	}
	return nil
}

// Admit implements ReplayStore.
func (s *MemoryStore) Admit(ctx context.Context, sender string, ctr uint64) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	w := s.win[sender]
	if w == nil {
		w, _ = NewWindow(s.width)
		s.win[sender] = w
	}
	if !w.Accept(ctr) {
		return ErrReplayed
	}
	return nil
}

// Len returns the number of senders tracked.
func (s *MemoryStore) Len() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.win)
}
