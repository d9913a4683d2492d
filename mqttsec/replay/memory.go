package replay

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/maphash"
	"math"
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

// MemoryStore is an envelope.ReplayStore held in process memory, for at
// most MaxSenders senders (see MemoryStoreOptions).
//
// It forgets everything on restart: after a restart only the timestamp
// checks (envelope.Policy.MaxLifetime) bound what can be replayed. Use a
// durable store (FileStore, RedisStore) where that matters.
//
// # When it is full
//
// The store keeps its senders in the order of their last admitted message.
// To make room for a new sender it looks at the eight least recently
// active ones:
//
//   - If the latest envelope.Seen.ExpiresAt admitted from one of them has
//     passed (by MemoryStoreOptions.Now), every message the store admitted
//     from that sender is refused as expired anyway: it forgets that
//     sender (MemoryStats.ForgottenExpired). A sender with an admitted
//     message whose ExpiresAt was zero (unknown), or loaded by Restore, is
//     never taken for expired.
//   - Otherwise it forgets the one of them whose newest issue time is the
//     earliest (MemoryStats.ForgottenLive).
//
// Either way it raises the floor of the forgotten sender's bucket to that
// sender's newest issue time. Senders fall into buckets by a keyed hash of
// their id; there are MemoryStats.Buckets of them (4 × MaxSenders rounded
// up to a power of two, at most 2^22), 8 bytes each, allocated at the
// first forget. A message from a sender the store does not track is
// accepted only if issued after the floor of its bucket (and after
// Floor's), and a sender tracked again keeps that floor for its messages:
// forgetting never re-admits a message. For an expired sender the floor
// is what keeps it so even where the receiver's expiry check and the
// store disagree: a copy of an admitted message that Open found fresh
// just before its expiry and that reaches Admit just after (a signature
// to verify, an earlier message of its sender to wait for), a clock set
// back, or a skew raised since. It costs legitimate messages nothing in
// practice: the floor is an issue time the receiver no longer accepts
// from that sender, and a message of another sender of the bucket is
// refused only if issued no later than it.
//
// Each Admit costs O(1) whether the store is full or not: no scan of the
// senders, and no allocation once it is full (a new sender takes the
// forgotten one's state).
//
// # False refusals
//
// Of what the store does to make room, only a live forget can refuse a
// legitimate message: one from a sender the store does not track, issued
// at or before the newest issue time of a sender forgotten live from the
// same bucket. If senders' clocks are at most Δ from the receiver's and
// messages at most ℓ in transit, that sender sent within 2Δ+ℓ before the
// refused message arrived; being among the eight least recently active,
// it was followed by MaxSenders−8 others. So:
//
//   - While fewer than MaxSenders−8 senders send within any 2Δ+ℓ (200 ms
//     for clocks ±100 ms apart), no legitimate message is refused, however
//     many senders send within a lifetime.
//   - Beyond that, a message from a sender the store does not track is
//     refused with probability at most F/B: F is the number of live
//     forgets during the 2Δ+ℓ before it, B the number of buckets. For N
//     senders that send in turn, each every P, F = N(2Δ+ℓ)/P −
//     (MaxSenders−8).
//
// At twice the cap, with clocks ±100 ms apart and B ≥ 4 × MaxSenders, that
// is no false refusal while each sender sends less often than about every
// 400 ms, and at most (0.4 s/P − 1)/4 + 2/MaxSenders of the messages
// beyond: about 8 % if each sends every 300 ms, 25 % every 200 ms, 75 %
// every 100 ms (measured with MaxSenders 1000, clocks spread evenly: 0.1 %,
// 1 % and 5 %; in two camps 200 ms apart, the worst case: 1.5 %, 5 % and
// 10 %).
//
// # Sizing
//
// Give MaxSenders at least the number of senders that send within one
// Policy.MaxLifetime plus Policy.MaxClockSkew, plus up to one more
// MaxClockSkew for senders whose clocks run ahead (a message stays fresh
// until its exp, by the sender's clock, plus the skew). Then every sender
// forgotten has expired, MemoryStats.ForgottenLive stays 0, and no
// legitimate message is refused. A sender costs about 165 bytes of heap
// with the default 64-counter window, 180 with 256 counters and 275 with
// 1024 (BenchmarkMemoryStoreBytesPerSender, with ids of up to 13 bytes;
// longer ids cost their length). A ForgottenLive that grows (see Stats)
// says the store is too small, or, after a durable store restarted, that
// senders it restored and no longer hears from are leaving.
type MemoryStore struct {
	width      int
	maxSenders int
	now        func() time.Time
	seed       maphash.Seed
	nBuckets   int // a power of two

	mu      sync.Mutex
	win     map[string]*senderState
	lru     senderState // list head: lru.next is the most recently active sender, lru.prev the least
	floor   stamp       // RaiseFloor's: for every sender the store does not track
	buckets []stamp     // the forgotten senders' newest issue times, by bucket; nil until the first
	stats   MemoryStats // the counts; Senders is len(win), filled in by Stats
}

// senderState is what the store keeps of one sender, and its place in the
// list of senders by last activity.
type senderState struct {
	id      string
	w       Window
	newest  stamp // newest IssuedAt admitted
	expires stamp // latest ExpiresAt admitted; maxStamp when one was unknown
	// since is the floor when the state was made: a window started after
	// senders were forgotten knows nothing of what this sender sent before,
	// so a message issued at or before the floor stays refused.
	since      stamp
	prev, next *senderState
}

var _ envelope.ReplayStore = (*MemoryStore)(nil)

// MemoryStoreOptions configures NewMemoryStoreWith. The zero value is
// usable.
type MemoryStoreOptions struct {
	// Width is the replay window width (0: DefaultWindow; see NewWindow).
	Width int
	// MaxSenders bounds the senders tracked (0: DefaultMaxSenders). See
	// MemoryStore for how to size it.
	MaxSenders int
	// Now is the receiver's clock (nil: time.Now), which tells when every
	// message admitted from a sender has expired (envelope.Seen.ExpiresAt).
	// Give it the receiver's clock (envelope.Opener.Now, mqttsec.Config.Now)
	// if that is set. It must not run ahead of that clock: a store whose
	// clock is d ahead may forget a sender up to d before its last
	// message expires, and admit a replay of that message meanwhile.
	Now func() time.Time
}

// MemoryStats is what a MemoryStore reports of its occupancy and of the
// senders it forgot to make room (see MemoryStore). Stats copies it under
// the store's lock: cheap enough to poll at every metrics collection.
type MemoryStats struct {
	// Senders is the number of senders tracked now, MaxSenders the most
	// the store tracks: it is full when they are equal.
	Senders, MaxSenders int
	// ForgottenExpired counts the senders forgotten once every message
	// admitted from them had expired: harmless, the turnover of a full
	// store.
	ForgottenExpired uint64
	// ForgottenLive counts the senders forgotten while a message admitted
	// from them could still be fresh, each raising the floor of its
	// bucket: legitimate messages may be refused (see MemoryStore, "False
	// refusals"). It grows when MaxSenders is below the number of senders
	// that send within one lifetime plus skew, and as the senders loaded
	// by Restore, whose expiry is unknown, are forgotten.
	ForgottenLive uint64
	// Buckets is the number of floors the senders forgotten are
	// spread over.
	Buckets int
}

// NewMemoryStore returns an empty store whose windows are width counters
// wide (see NewWindow; 0 means DefaultWindow), tracking up to
// DefaultMaxSenders senders.
func NewMemoryStore(width int) (*MemoryStore, error) {
	return NewMemoryStoreWith(MemoryStoreOptions{Width: width})
}

// NewBoundedMemoryStore is NewMemoryStore with a limit on the number of
// senders tracked (at least 1).
func NewBoundedMemoryStore(width, maxSenders int) (*MemoryStore, error) {
	if maxSenders < 1 {
		return nil, errNoSenders()
	}
	return NewMemoryStoreWith(MemoryStoreOptions{Width: width, MaxSenders: maxSenders})
}

// NewMemoryStoreWith returns an empty store configured by opt. Invalid
// options are envelope.ErrInvalidConfig.
func NewMemoryStoreWith(opt MemoryStoreOptions) (*MemoryStore, error) {
	if opt.Width == 0 {
		opt.Width = DefaultWindow
	}
	if _, err := NewWindow(opt.Width); err != nil {
		return nil, err
	}
	switch {
	case opt.MaxSenders == 0:
		opt.MaxSenders = DefaultMaxSenders
	case opt.MaxSenders < 0:
		return nil, errNoSenders()
	}
	if opt.Now == nil {
		opt.Now = time.Now
	}
	s := &MemoryStore{
		width: opt.Width, maxSenders: opt.MaxSenders, now: opt.Now,
		seed: maphash.MakeSeed(), nBuckets: bucketCount(opt.MaxSenders),
		win: make(map[string]*senderState), floor: noStamp,
	}
	s.lru.next, s.lru.prev = &s.lru, &s.lru
	return s, nil
}

func errNoSenders() error {
	return fmt.Errorf("%w: a replay store must track at least one sender", envelope.ErrInvalidConfig)
}

// maxBuckets bounds the buckets of a store (32 MiB of floors).
const maxBuckets = 1 << 22

// bucketCount returns the number of buckets for a store of maxSenders:
// at least four per sender, a power of two, at most maxBuckets.
func bucketCount(maxSenders int) int {
	n := 1
	for n < maxBuckets && n < 4*min(maxSenders, maxBuckets) {
		n <<= 1
	}
	return n
}

// Check implements envelope.ReplayStore.
func (s *MemoryStore) Check(ctx context.Context, m envelope.Seen) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.fresh(s.win[m.Sender], m) {
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
	st := s.win[m.Sender]
	if !s.fresh(st, m) {
		return envelope.ErrReplayed
	}
	if st == nil {
		st = s.add(m.Sender)
	}
	st.w.Accept(m.Counter)
	st.newest = max(st.newest, stampOf(m.IssuedAt))
	st.expires = max(st.expires, expiryOf(m.ExpiresAt))
	s.touch(st)
	return nil
}

// fresh reports whether m would be accepted, st being its sender's state
// (nil when not tracked); s.mu is held.
func (s *MemoryStore) fresh(st *senderState, m envelope.Seen) bool {
	if st == nil {
		return stampOf(m.IssuedAt) > s.floorOf(m.Sender)
	}
	return (st.since == noStamp || stampOf(m.IssuedAt) > st.since) && st.w.Fresh(m.Counter)
}

// floorOf returns the floor for sender while the store does not track it:
// RaiseFloor's, or its bucket's if later; s.mu is held.
func (s *MemoryStore) floorOf(sender string) stamp {
	if s.buckets == nil {
		return s.floor
	}
	return max(s.floor, s.buckets[s.bucket(sender)])
}

// bucket returns the index of sender's bucket.
func (s *MemoryStore) bucket(sender string) int {
	return int(maphash.String(s.seed, sender) & uint64(s.nBuckets-1))
}

// add tracks sender, in the state of a sender forgotten to make room if
// the store is full; s.mu is held.
func (s *MemoryStore) add(sender string) *senderState {
	var st *senderState
	if len(s.win) >= s.maxSenders {
		st = s.makeRoom()
		st.w.reset()
	} else {
		st = &senderState{w: Window{bits: make([]uint64, s.width/64)}}
	}
	st.id, st.newest, st.expires, st.since = sender, noStamp, noStamp, s.floorOf(sender)
	s.win[sender] = st
	s.pushFront(st)
	return st
}

// evictScan is how many of the least recently active senders makeRoom
// considers.
const evictScan = 8

// makeRoom forgets one of the evictScan least recently active senders: one
// whose admitted messages have all expired if there is one; else the one
// with the earliest newest issue time. Either way it raises the sender's
// bucket's floor to its newest issue time. It returns the state it
// dropped. s.mu is held, and the store holds at least one sender.
func (s *MemoryStore) makeRoom() *senderState {
	now := stampOf(s.now())
	victim := s.lru.prev
	for st, n := s.lru.prev, 0; st != &s.lru && n < evictScan; st, n = st.prev, n+1 {
		if now > st.expires {
			s.raiseBucket(st)
			s.forget(st)
			s.stats.ForgottenExpired++
			return st
		}
		if st.newest < victim.newest {
			victim = st
		}
	}
	s.raiseBucket(victim)
	s.forget(victim)
	s.stats.ForgottenLive++
	return victim
}

// raiseBucket raises the floor of st's bucket to st's newest issue time,
// making the buckets at the first call; s.mu is held.
func (s *MemoryStore) raiseBucket(st *senderState) {
	if s.buckets == nil {
		s.buckets = make([]stamp, s.nBuckets)
		for i := range s.buckets {
			s.buckets[i] = noStamp
		}
	}
	b := &s.buckets[s.bucket(st.id)]
	*b = max(*b, st.newest)
}

// forget drops st; s.mu is held.
func (s *MemoryStore) forget(st *senderState) {
	unlink(st)
	delete(s.win, st.id)
}

// touch makes st, which is in the list, the most recently active sender;
// s.mu is held.
func (s *MemoryStore) touch(st *senderState) {
	if s.lru.next != st {
		unlink(st)
		s.pushFront(st)
	}
}

// pushFront puts st, which is in no list, first in the store's list.
func (s *MemoryStore) pushFront(st *senderState) {
	st.prev, st.next = &s.lru, s.lru.next
	s.lru.next.prev = st
	s.lru.next = st
}

// unlink takes st out of its list.
func unlink(st *senderState) {
	st.prev.next, st.next.prev = st.next, st.prev
	st.prev, st.next = nil, nil
}

// Width returns the width of the store's windows, in counters.
func (s *MemoryStore) Width() int { return s.width }

// Len returns the number of senders tracked.
func (s *MemoryStore) Len() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.win)
}

// Stats returns the store's occupancy and the counts of senders forgotten
// (see MemoryStats). The counts only grow: a metric takes them as
// counters, a log reports when ForgottenLive grew since it last looked.
func (s *MemoryStore) Stats() MemoryStats {
	s.mu.Lock()
	defer s.mu.Unlock()
	st := s.stats
	st.Senders, st.MaxSenders, st.Buckets = len(s.win), s.maxSenders, s.nBuckets
	return st
}

// Floor returns the latest floor: RaiseFloor's, or a bucket's if later
// (zero while there is none). A message from a sender the store does not
// track is accepted if issued after it, whatever its bucket. A durable
// store saves it, and raises the floor to it when it loads its state
// (RaiseFloor): safe, since it is at or above every bucket's floor, but
// it then applies to every sender.
func (s *MemoryStore) Floor() time.Time {
	s.mu.Lock()
	defer s.mu.Unlock()
	f := s.floor
	for _, b := range s.buckets {
		f = max(f, b)
	}
	return f.time()
}

// Restore makes the store refuse every counter of sender up to and
// including highest, and remember newest as its newest issue time. Durable
// stores call it when they load their state: counters accepted before a
// restart, and any below them, are refused afterwards. What expired is not
// known of a restored sender: when the store is full it is forgotten
// live (see MemoryStore).
func (s *MemoryStore) Restore(sender string, highest uint64, newest time.Time) {
	s.mu.Lock()
	defer s.mu.Unlock()
	st := s.win[sender]
	if st == nil {
		st = s.add(sender)
	}
	if h, ok := st.w.Highest(); !ok || highest > h {
		st.w.fillTo(highest)
	}
	st.newest = max(st.newest, stampOf(newest))
	st.expires = maxStamp
	s.touch(st)
}

// RaiseFloor raises the floor (see Floor) to t if t is later.
func (s *MemoryStore) RaiseFloor(t time.Time) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.floor = max(s.floor, stampOf(t))
}

// Each calls f for every tracked sender with the highest counter it
// accepted and its newest issue time, least recently active first (so
// that Restore in that order keeps the order), holding the store's lock:
// f must not call the store.
func (s *MemoryStore) Each(f func(sender string, highest uint64, newest time.Time)) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for st := s.lru.prev; st != &s.lru; st = st.prev {
		h, _ := st.w.Highest()
		f(st.id, h, st.newest.time())
	}
}

// A stamp is a time in Unix nanoseconds: 8 bytes where a time.Time takes
// 24. A time beyond what an int64 of nanoseconds holds saturates, which
// keeps the order (a before b gives stampOf(a) <= stampOf(b)): comparing
// stamps never finds a message issued after a floor it is not after.
type stamp int64

const (
	noStamp  stamp = math.MinInt64     // the zero time.Time: none
	minStamp stamp = math.MinInt64 + 1 // the earliest time, saturated
	maxStamp stamp = math.MaxInt64     // the latest time, saturated; an unknown expiry

	// minStampSec and maxStampSec bound the Unix seconds whose every
	// nanosecond has a stamp of its own.
	minStampSec = math.MinInt64 / 1_000_000_000
	maxStampSec = math.MaxInt64/1_000_000_000 - 1
)

// stampOf returns t's stamp (noStamp for the zero time).
func stampOf(t time.Time) stamp {
	if t.IsZero() {
		return noStamp
	}
	switch sec := t.Unix(); {
	case sec < minStampSec:
		return minStamp
	case sec > maxStampSec:
		return maxStamp
	}
	return stamp(t.UnixNano())
}

// expiryOf returns the stamp of an envelope.Seen.ExpiresAt: maxStamp,
// never past, when it is zero (unknown).
func expiryOf(t time.Time) stamp {
	if t.IsZero() {
		return maxStamp
	}
	return stampOf(t)
}

// time returns the time of s (the zero time for noStamp).
func (s stamp) time() time.Time {
	if s == noStamp {
		return time.Time{}
	}
	return time.Unix(0, int64(s))
}

// reset empties the window.
func (w *Window) reset() {
	w.highest, w.started = 0, false
	clear(w.bits)
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
