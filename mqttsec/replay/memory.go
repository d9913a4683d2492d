package replay

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/mqttsec/mqttsec/envelope"
)

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
		return nil, fmt.Errorf("%w: replay window width must be a multiple of 64 from 64 to %d", envelope.ErrInvalidConfig, MaxWindow)
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

// DefaultMaxSenders bounds how many senders a MemoryStore tracks when no
// limit is given.
const DefaultMaxSenders = 1 << 18

// MemoryStore is an envelope.ReplayStore held in process memory, for at most
// maxSenders senders (see NewBoundedMemoryStore). When full, it forgets the least recently seen of a
// small random sample of senders and raises its floor to the newest issue
// time that sender had: a message from a sender it does not know is then
// accepted only if issued after the floor, so forgetting never re-admits a
// message.
//
// It forgets everything on restart: after a restart only the timestamp
// checks (envelope.Policy.MaxLifetime) bound what can be replayed. Use a
// durable store (FileStore, RedisStore) where that matters.
type MemoryStore struct {
	width      int
	maxSenders int

	mu    sync.Mutex
	win   map[string]*senderState
	floor time.Time // forgotten senders' newest issue time
	tick  uint64    // logical clock for recency
}

type senderState struct {
	w        *Window
	newest   time.Time // newest IssuedAt accepted
	lastUsed uint64
	// since is the floor when the window was made: a window started after
	// senders were forgotten knows nothing of what this sender sent before,
	// so a message issued at or before the floor stays refused.
	since time.Time
}

var _ envelope.ReplayStore = (*MemoryStore)(nil)

// NewMemoryStore returns an empty store whose windows are width counters
// wide (see NewWindow; 0 means DefaultWindow), tracking up to
// DefaultMaxSenders senders.
func NewMemoryStore(width int) (*MemoryStore, error) {
	return NewBoundedMemoryStore(width, DefaultMaxSenders)
}

// NewBoundedMemoryStore is NewMemoryStore with a limit on the number of
// senders tracked (at least 1).
func NewBoundedMemoryStore(width, maxSenders int) (*MemoryStore, error) {
	if width == 0 {
		width = DefaultWindow
	}
	if _, err := NewWindow(width); err != nil {
		return nil, err
	}
	if maxSenders < 1 {
		return nil, fmt.Errorf("%w: a replay store must track at least one sender", envelope.ErrInvalidConfig)
	}
	return &MemoryStore{width: width, maxSenders: maxSenders, win: make(map[string]*senderState)}, nil
}

// fresh reports whether m would be accepted; s.mu is held.
func (s *MemoryStore) fresh(m envelope.Seen) bool {
	if st := s.win[m.Sender]; st != nil {
		return (st.since.IsZero() || m.IssuedAt.After(st.since)) && st.w.Fresh(m.Counter)
	}
	return m.IssuedAt.After(s.floor)
}

// Check implements envelope.ReplayStore.
func (s *MemoryStore) Check(ctx context.Context, m envelope.Seen) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.fresh(m) {
		return envelope.ErrReplayed
	}
	return nil
}

// Admit implements envelope.ReplayStore.
func (s *MemoryStore) Admit(ctx context.Context, m envelope.Seen) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.fresh(m) {
		return envelope.ErrReplayed
	}
	st := s.track(m.Sender)
	st.w.Accept(m.Counter)
	if m.IssuedAt.After(st.newest) {
		st.newest = m.IssuedAt
	}
	s.tick++
	st.lastUsed = s.tick
	return nil
}

// track returns the state of sender, creating it (and making room) if
// needed; s.mu is held.
func (s *MemoryStore) track(sender string) *senderState {
	st := s.win[sender]
	if st == nil {
		if len(s.win) >= s.maxSenders {
			s.evictOne()
		}
		w, _ := NewWindow(s.width)
		st = &senderState{w: w, since: s.floor}
		s.win[sender] = st
	}
	return st
}

// evictOne forgets the least recently used of up to 8 senders (map order
// is random) and raises the floor to its newest issue time; s.mu is held.
func (s *MemoryStore) evictOne() {
	var victim string
	var oldest *senderState
	n := 0
	for id, st := range s.win {
		if oldest == nil || st.lastUsed < oldest.lastUsed {
			victim, oldest = id, st
		}
		if n++; n == 8 {
			break
		}
	}
	if oldest == nil {
		return
	}
	if oldest.newest.After(s.floor) {
		s.floor = oldest.newest
	}
	delete(s.win, victim)
}

// Width returns the width of the store's windows, in counters.
func (s *MemoryStore) Width() int { return s.width }

// Len returns the number of senders tracked.
func (s *MemoryStore) Len() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.win)
}

// Floor returns the issue time at or before which messages from senders
// the store does not track are refused (zero until it forgot one).
func (s *MemoryStore) Floor() time.Time {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.floor
}

// Restore makes the store refuse every counter of sender up to and
// including highest, and remember newest as its newest issue time. Durable
// stores call it when they load their state: counters accepted before a
// restart, and any below them, are refused afterwards.
func (s *MemoryStore) Restore(sender string, highest uint64, newest time.Time) {
	s.mu.Lock()
	defer s.mu.Unlock()
	st := s.track(sender)
	if h, ok := st.w.Highest(); !ok || highest > h {
		st.w.fillTo(highest)
	}
	if newest.After(st.newest) {
		st.newest = newest
	}
	s.tick++
	st.lastUsed = s.tick
}

// RaiseFloor raises the floor (see Floor) to t if t is later.
func (s *MemoryStore) RaiseFloor(t time.Time) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if t.After(s.floor) {
		s.floor = t
	}
}

// Each calls f for every tracked sender with the highest counter it
// accepted and its newest issue time, holding the store's lock: f must not
// call the store.
func (s *MemoryStore) Each(f func(sender string, highest uint64, newest time.Time)) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for id, st := range s.win {
		h, _ := st.w.Highest()
		f(id, h, st.newest)
	}
}

// fillTo makes highest the highest counter and marks it and every counter
// in the window below it as accepted.
func (w *Window) fillTo(highest uint64) {
	w.highest = highest
	w.started = true
	for i := range w.bits {
		w.bits[i] = ^uint64(0)
	}
}

// MarshalBinary encodes the window: the highest counter (8 bytes, big
// endian; absent when empty) followed by the bitmap, 8 bytes per 64
// counters.
func (w *Window) MarshalBinary() ([]byte, error) {
	if !w.started {
		return []byte{}, nil
	}
	b := make([]byte, 0, 8+8*len(w.bits))
	b = binary.BigEndian.AppendUint64(b, w.highest)
	for _, x := range w.bits {
		b = binary.BigEndian.AppendUint64(b, x)
	}
	return b, nil
}

// UnmarshalBinary decodes what MarshalBinary wrote; the window's width must
// match the encoding's.
func (w *Window) UnmarshalBinary(b []byte) error {
	if len(b) == 0 {
		w.highest, w.started = 0, false
		clear(w.bits)
		return nil
	}
	if len(b) != 8+8*len(w.bits) {
		return errors.New("replay: window encoding does not match the width")
	}
	w.highest, w.started = binary.BigEndian.Uint64(b), true
	for i := range w.bits {
		w.bits[i] = binary.BigEndian.Uint64(b[8+8*i:])
	}
	return nil
}
