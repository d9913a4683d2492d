package replay_test

// The tests of Window and MemoryStore, which moved here from package
// envelope with the replay windows themselves.

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"runtime"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/mqttsec/mqttsec/envelope"
	"github.com/mqttsec/mqttsec/mqttsec/replay"
)

func TestWindowRules(t *testing.T) {
	tests := []struct {
		name   string
		width  int
		accept []uint64 // accepted in order before the probe
		probe  uint64
		fresh  bool
	}{
		{"first counter", 64, nil, 1, true},
		{"first counter may be large", 64, nil, 1 << 60, true},
		{"duplicate of highest", 64, []uint64{10}, 10, false},
		{"above highest", 64, []uint64{10}, 11, true},
		{"far above highest", 64, []uint64{10}, 10 + 1<<40, true},
		{"inside window, unseen", 64, []uint64{100}, 37, true},
		{"inside window, seen", 64, []uint64{37, 100}, 37, false},
		{"oldest slot", 64, []uint64{100}, 100 - 63, true},
		{"just below window", 64, []uint64{100}, 100 - 64, false},
		{"wide window keeps more", 256, []uint64{1000}, 1000 - 255, true},
		{"wide window edge", 256, []uint64{1000}, 1000 - 256, false},
		{"seen survives shift within word", 128, []uint64{50, 60}, 50, false},
		{"seen survives shift across words", 128, []uint64{50, 150}, 50, false},
		{"shift past width forgets and refuses", 128, []uint64{50, 500}, 50, false},
		{"max counter", 64, []uint64{1}, ^uint64(0), true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w, err := replay.NewWindow(tt.width)
			if err != nil {
				t.Fatal(err)
			}
			for _, c := range tt.accept {
				if !w.Accept(c) {
					t.Fatalf("setup: %d refused", c)
				}
			}
			if got := w.Fresh(tt.probe); got != tt.fresh {
				t.Fatalf("Fresh(%d) = %v, want %v", tt.probe, got, tt.fresh)
			}
			if got := w.Accept(tt.probe); got != tt.fresh {
				t.Fatalf("Accept(%d) = %v, want %v", tt.probe, got, tt.fresh)
			}
			if w.Accept(tt.probe) {
				t.Fatalf("Accept(%d) twice", tt.probe)
			}
		})
	}
}

func TestNewWindowWidth(t *testing.T) {
	for _, width := range []int{0, 32, 63, 65, 100, replay.MaxWindow + 64} {
		if _, err := replay.NewWindow(width); !errors.Is(err, envelope.ErrInvalidConfig) {
			t.Errorf("replay.NewWindow(%d) = %v, want envelope.ErrInvalidConfig", width, err)
		}
		if width == 0 {
			continue // replay.NewMemoryStore(0) means DefaultWindow
		}
		if _, err := replay.NewMemoryStore(width); !errors.Is(err, envelope.ErrInvalidConfig) {
			t.Errorf("replay.NewMemoryStore(%d) = %v, want envelope.ErrInvalidConfig", width, err)
		}
	}
	if _, err := replay.NewBoundedMemoryStore(64, 0); !errors.Is(err, envelope.ErrInvalidConfig) {
		t.Errorf("replay.NewBoundedMemoryStore(64, 0) = %v, want envelope.ErrInvalidConfig", err)
	}
	for _, width := range []int{64, 128, 4096, replay.MaxWindow} {
		w, err := replay.NewWindow(width)
		if err != nil || w.Width() != width {
			t.Errorf("replay.NewWindow(%d) = %v", width, err)
		}
	}
}

// TestWindowMatchesModel checks the bitmap window against a plain set with
// the same rule, over random walks of counters.
func TestWindowMatchesModel(t *testing.T) {
	for _, width := range []int{64, 128, 192} {
		r := rand.New(rand.NewPCG(uint64(width), 1))
		w := must[*replay.Window](t)(replay.NewWindow(width))
		seen := map[uint64]bool{}
		var highest uint64
		started := false
		for i := 0; i < 20000; i++ {
			var c uint64
			switch r.IntN(4) {
			case 0:
				c = highest + 1 + uint64(r.IntN(3*width))
			default:
				c = highest - uint64(r.IntN(width+10))
			}
			if c == 0 {
				c = 1
			}
			want := !started || c > highest || (highest-c < uint64(width) && !seen[c])
			if got := w.Accept(c); got != want {
				t.Fatalf("width %d step %d: Accept(%d) = %v, want %v (highest %d)", width, i, c, got, want, highest)
			}
			if want {
				seen[c] = true
				if !started || c > highest {
					highest = c
				}
				started = true
			}
		}
	}
}

func TestMemoryStoreConcurrentAdmit(t *testing.T) {
	s := must[*replay.MemoryStore](t)(replay.NewMemoryStore(128))
	var wg sync.WaitGroup
	var mu sync.Mutex
	admitted := map[uint64]int{}
	for range 8 {
		wg.Go(func() {
			for c := uint64(1); c <= 500; c++ {
				if s.Admit(ctx, envelope.Seen{Sender: "peer", Counter: c, IssuedAt: testNow}) == nil {
					mu.Lock()
					admitted[c]++
					mu.Unlock()
				}
			}
		})
	}
	wg.Wait()
	for c, n := range admitted {
		if n != 1 {
			t.Fatalf("counter %d admitted %d times", c, n)
		}
	}
	if err := s.Check(ctx, envelope.Seen{Sender: "peer", Counter: 500, IssuedAt: testNow}); !errors.Is(err, envelope.ErrReplayed) {
		t.Fatalf("Check(500) = %v", err)
	}
	if err := s.Check(ctx, envelope.Seen{Sender: "other", Counter: 500, IssuedAt: testNow}); err != nil {
		t.Fatalf("senders share a window: %v", err)
	}
	if s.Len() != 1 {
		t.Fatalf("Len = %d (Check must not create state)", s.Len())
	}
}

// A bounded store forgets senders when full, and never re-admits a message
// of a forgotten sender: anything issued at or before the newest message it
// had accepted from them is refused.
func TestMemoryStoreEvictionNeverReadmits(t *testing.T) {
	s, err := replay.NewBoundedMemoryStore(64, 3)
	if err != nil {
		t.Fatal(err)
	}
	at := func(sec int) time.Time { return testNow.Add(time.Duration(sec) * time.Second) }
	admit := func(sender string, ctr uint64, sec int) error {
		return s.Admit(ctx, envelope.Seen{Sender: sender, Counter: ctr, IssuedAt: at(sec)})
	}
	for i, id := range []string{"a", "b", "c"} {
		if err := admit(id, 10, i); err != nil {
			t.Fatal(err)
		}
	}
	// "a" is the least recently used: a fourth sender forgets it.
	if err := admit("d", 1, 10); err != nil {
		t.Fatal(err)
	}
	if s.Len() != 3 {
		t.Fatalf("Len = %d, want 3", s.Len())
	}
	// None of the three has a known expiry, so the one with the earliest
	// newest issue time, "a", is forgotten live, and the floor of its
	// bucket is that time.
	if st := s.Stats(); st.ForgottenLive != 1 || st.ForgottenExpired != 0 {
		t.Fatalf("Stats = %+v, want one sender forgotten live", st)
	}
	floor := s.Floor()
	if !floor.Equal(at(0)) {
		t.Fatalf("floor %v, want %v", floor, at(0))
	}
	forgotten := "a"
	// The old message of the forgotten sender is refused, by Check and Admit.
	old := envelope.Seen{Sender: forgotten, Counter: 10, IssuedAt: floor}
	if err := s.Check(ctx, old); !errors.Is(err, envelope.ErrReplayed) {
		t.Fatalf("Check(old message of a forgotten sender) = %v", err)
	}
	if err := s.Admit(ctx, old); !errors.Is(err, envelope.ErrReplayed) {
		t.Fatalf("Admit(old message of a forgotten sender) = %v", err)
	}
	// A message issued after the floor is accepted, and then tracked again.
	if err := admit(forgotten, 11, 20); err != nil {
		t.Fatalf("new message after eviction: %v", err)
	}
	if err := admit(forgotten, 11, 20); !errors.Is(err, envelope.ErrReplayed) {
		t.Fatalf("its replay: %v", err)
	}
	// The new window knows nothing of what came before the eviction: the
	// old message, within its width below the new counter, stays refused.
	if err := s.Admit(ctx, old); !errors.Is(err, envelope.ErrReplayed) {
		t.Fatalf("Admit(old message after its sender was tracked again) = %v", err)
	}
	// The floor binds the senders of the forgotten one's bucket that the
	// store does not track, and no other. ("b" was forgotten live too,
	// when "a" came back, with a floor later than "a"'s.)
	same, other := senderInBucket(s, forgotten), senderOutside(s, forgotten, "b")
	if err := s.Admit(ctx, envelope.Seen{Sender: same, Counter: 1, IssuedAt: floor}); !errors.Is(err, envelope.ErrReplayed) {
		t.Fatalf("a sender of the forgotten one's bucket, at its floor: %v", err)
	}
	if err := s.Admit(ctx, envelope.Seen{Sender: other, Counter: 1, IssuedAt: floor}); err != nil {
		t.Fatalf("a sender of another bucket, at the forgotten one's floor: %v", err)
	}
	if _, err := replay.NewBoundedMemoryStore(64, 0); err == nil {
		t.Fatal("a store for no senders accepted")
	}
}

// senderInBucket returns a sender id that shares sender's bucket in s.
func senderInBucket(s *replay.MemoryStore, sender string) string {
	return probeSender(func(id string) bool { return replay.SameBucket(s, id, sender) })
}

// senderOutside returns a sender id that shares the bucket of none of
// senders in s.
func senderOutside(s *replay.MemoryStore, senders ...string) string {
	return probeSender(func(id string) bool {
		for _, sender := range senders {
			if replay.SameBucket(s, id, sender) {
				return false
			}
		}
		return true
	})
}

// probeSender returns the first of the ids "probe-0", "probe-1"… that ok
// accepts.
func probeSender(ok func(id string) bool) string {
	for i := 0; ; i++ {
		if id := "probe-" + strconv.Itoa(i); ok(id) {
			return id
		}
	}
}

// forgetCase is a full store's senders, and the one it should forget to
// make room for a newcomer.
type forgetCase struct {
	name      string
	max       int
	sent      []sentAt // admitted in order, from the least recently active
	restored  string   // a sender loaded by Restore before sent, if any
	now       int      // the store's clock when the newcomer comes, in seconds after testNow
	forgotten string
	live      bool // forgotten with its bucket's floor raised
}

// sentAt is a sender's one admitted message.
type sentAt struct {
	sender  string
	issued  int // seconds after testNow
	expires int // seconds after testNow; 0: unknown
}

func secondsAfter(sec int) time.Time { return testNow.Add(time.Duration(sec) * time.Second) }

// What a full store forgets to make room for a new sender, and what that
// costs: nothing for a sender whose admitted messages have all expired, a
// floor for its bucket otherwise.
func TestMemoryStoreForgets(t *testing.T) {
	tests := []forgetCase{
		{"an expired sender is forgotten first", 2,
			[]sentAt{{"a", 0, 60}, {"b", 1, 61}}, "", 61, "a", false},
		{"at its ExpiresAt a sender is still live", 2,
			[]sentAt{{"a", 0, 60}, {"b", 1, 61}}, "", 60, "a", true},
		{"an expired sender is preferred to an older live one", 3,
			[]sentAt{{"a", 0, 500}, {"b", 1, 61}, {"c", 2, 500}}, "", 100, "b", false},
		{"an unknown expiry never passes", 2,
			[]sentAt{{"a", 0, 0}, {"b", 1, 61}}, "", 100, "b", false},
		{"a restored sender's expiry is unknown", 2,
			[]sentAt{{"a", 1, 60}}, "r", 1000, "a", false},
		{"live: the earliest newest issue time of the oldest eight", 3,
			[]sentAt{{"a", 5, 500}, {"b", 1, 500}, {"c", 3, 500}}, "", 100, "b", true},
		{"the eighth least recently active is considered", 9,
			[]sentAt{{"s0", 0, 500}, {"s1", 1, 500}, {"s2", 2, 500}, {"s3", 3, 500}, {"s4", 4, 500},
				{"s5", 5, 500}, {"s6", 6, 500}, {"e", 7, 60}, {"s8", 8, 500}}, "", 100, "e", false},
		{"the ninth is not", 9,
			[]sentAt{{"s0", 0, 500}, {"s1", 1, 500}, {"s2", 2, 500}, {"s3", 3, 500}, {"s4", 4, 500},
				{"s5", 5, 500}, {"s6", 6, 500}, {"s7", 7, 500}, {"new", 8, 60}}, "", 100, "s0", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := tt.fill(t)
			if gone := forgottenOf(s, tt.sent); len(gone) != 1 || gone[0] != tt.forgotten {
				t.Fatalf("forgot %v, want %s", gone, tt.forgotten)
			}
			// Every forget raises its bucket's floor to the sender's newest
			// issue time: Floor, the latest one, tells.
			want := replay.MemoryStats{Senders: tt.max, MaxSenders: tt.max, ForgottenExpired: 1}
			wantFloor := tt.newest()
			if tt.live {
				want.ForgottenExpired, want.ForgottenLive = 0, 1
			}
			got := s.Stats()
			want.Buckets = got.Buckets
			if got != want {
				t.Fatalf("Stats = %+v, want %+v", got, want)
			}
			if !s.Floor().Equal(wantFloor) {
				t.Fatalf("Floor = %v, want %v", s.Floor(), wantFloor)
			}
		})
	}
}

// TestMemoryStoreExpiredForgetStillRefusesReplays: a copy of an admitted
// message that the receiver found fresh just before its expiry, and that
// reaches Admit after the store forgot its sender as expired, is refused;
// so is one checked after the receiver's clock was set back. The floor of
// the forgotten sender's bucket holds them.
func TestMemoryStoreExpiredForgetStillRefusesReplays(t *testing.T) {
	now := time.Unix(1_000_000, 0)
	s := must[*replay.MemoryStore](t)(replay.NewMemoryStoreWith(replay.MemoryStoreOptions{MaxSenders: 1, Now: func() time.Time { return now }}))
	m := envelope.Seen{Sender: "a", Counter: 7, IssuedAt: now, ExpiresAt: now.Add(90 * time.Second)}
	if err := s.Admit(ctx, m); err != nil {
		t.Fatal(err)
	}
	now = now.Add(91 * time.Second)
	if err := s.Admit(ctx, envelope.Seen{Sender: "b", Counter: 1, IssuedAt: now, ExpiresAt: now.Add(90 * time.Second)}); err != nil {
		t.Fatal(err)
	}
	if st := s.Stats(); st.ForgottenExpired != 1 {
		t.Fatalf("Stats = %+v, want a forgotten as expired", st)
	}
	for _, at := range []time.Duration{0, -60 * time.Second} { // the clock set back
		now = now.Add(at)
		if err := s.Check(ctx, m); !errors.Is(err, envelope.ErrReplayed) {
			t.Fatalf("Check of the replay, clock moved %v: %v", at, err)
		}
		if err := s.Admit(ctx, m); !errors.Is(err, envelope.ErrReplayed) {
			t.Fatalf("Admit of the replay, clock moved %v: %v", at, err)
		}
	}
}

// fill returns a store holding the case's senders, into which the
// newcomer then came.
func (tt forgetCase) fill(t *testing.T) *replay.MemoryStore {
	now := testNow
	s := must[*replay.MemoryStore](t)(replay.NewMemoryStoreWith(replay.MemoryStoreOptions{
		MaxSenders: tt.max, Now: func() time.Time { return now }}))
	if tt.restored != "" {
		s.Restore(tt.restored, 1, secondsAfter(0))
	}
	for _, m := range tt.sent {
		seen := envelope.Seen{Sender: m.sender, Counter: 1, IssuedAt: secondsAfter(m.issued)}
		if m.expires != 0 {
			seen.ExpiresAt = secondsAfter(m.expires)
		}
		if err := s.Admit(ctx, seen); err != nil {
			t.Fatal(err)
		}
	}
	now = secondsAfter(tt.now)
	if err := s.Admit(ctx, envelope.Seen{Sender: "newcomer", Counter: 1, IssuedAt: now}); err != nil {
		t.Fatal(err)
	}
	return s
}

// newest returns the issue time of the forgotten sender's message.
func (tt forgetCase) newest() time.Time {
	for _, m := range tt.sent {
		if m.sender == tt.forgotten {
			return secondsAfter(m.issued)
		}
	}
	return time.Time{}
}

// forgottenOf returns the senders of sent that s no longer tracks.
func forgottenOf(s *replay.MemoryStore, sent []sentAt) []string {
	tracked := map[string]bool{}
	s.Each(func(id string, _ uint64, _ time.Time) { tracked[id] = true })
	var gone []string
	for _, m := range sent {
		if !tracked[m.sender] {
			gone = append(gone, m.sender)
		}
	}
	return gone
}

// Each lists the senders least recently active first, so that a durable
// store that restores them in that order keeps the order.
func TestMemoryStoreEachOrder(t *testing.T) {
	s := must[*replay.MemoryStore](t)(replay.NewBoundedMemoryStore(64, 10))
	for i, id := range []string{"a", "b", "c", "a", "d", "b"} {
		if err := s.Admit(ctx, envelope.Seen{Sender: id, Counter: uint64(i + 1), IssuedAt: testNow}); err != nil {
			t.Fatal(err)
		}
	}
	var order []string
	s.Each(func(id string, _ uint64, _ time.Time) { order = append(order, id) })
	if got, want := fmt.Sprint(order), "[c a d b]"; got != want {
		t.Fatalf("Each order %s, want %s", got, want)
	}
}

func TestMemoryStoreBuckets(t *testing.T) {
	tests := []struct{ maxSenders, buckets int }{
		{1, 4}, {3, 16}, {1000, 4096}, {1024, 4096}, {replay.DefaultMaxSenders, 1 << 20}, {1 << 30, 1 << 22},
	}
	for _, tt := range tests {
		s := must[*replay.MemoryStore](t)(replay.NewBoundedMemoryStore(64, tt.maxSenders))
		if got := s.Stats().Buckets; got != tt.buckets {
			t.Errorf("MaxSenders %d: %d buckets, want %d", tt.maxSenders, got, tt.buckets)
		}
	}
	if _, err := replay.NewMemoryStoreWith(replay.MemoryStoreOptions{MaxSenders: -1}); !errors.Is(err, envelope.ErrInvalidConfig) {
		t.Errorf("MaxSenders -1: %v", err)
	}
	if s := must[*replay.MemoryStore](t)(replay.NewMemoryStoreWith(replay.MemoryStoreOptions{})); s.Stats().MaxSenders != replay.DefaultMaxSenders || s.Width() != replay.DefaultWindow {
		t.Errorf("zero options: %+v, width %d", s.Stats(), s.Width())
	}
}

// Memory stays bounded however many senders arrive.
func TestMemoryStoreBounded(t *testing.T) {
	s := must[*replay.MemoryStore](t)(replay.NewBoundedMemoryStore(64, 100))
	for i := range 10000 {
		s.Admit(ctx, envelope.Seen{Sender: fmt.Sprint("sender-", i), Counter: 1, IssuedAt: testNow.Add(time.Duration(i) * time.Millisecond)})
	}
	if s.Len() > 100 {
		t.Fatalf("Len = %d after 10000 senders, limit 100", s.Len())
	}
}

func TestMemoryStoreRestore(t *testing.T) {
	s := must[*replay.MemoryStore](t)(replay.NewBoundedMemoryStore(64, 10))
	s.Restore("a", 100, testNow)
	for _, c := range []uint64{1, 37, 99, 100} {
		if err := s.Check(ctx, envelope.Seen{Sender: "a", Counter: c, IssuedAt: testNow.Add(time.Hour)}); !errors.Is(err, envelope.ErrReplayed) {
			t.Fatalf("counter %d after Restore(100): %v", c, err)
		}
	}
	if err := s.Admit(ctx, envelope.Seen{Sender: "a", Counter: 101, IssuedAt: testNow}); err != nil {
		t.Fatalf("101 after Restore(100): %v", err)
	}
	s.Restore("a", 50, testNow) // never lowers
	if err := s.Admit(ctx, envelope.Seen{Sender: "a", Counter: 102, IssuedAt: testNow}); err != nil {
		t.Fatalf("102: %v", err)
	}
	s.RaiseFloor(testNow)
	if err := s.Check(ctx, envelope.Seen{Sender: "b", Counter: 1, IssuedAt: testNow}); !errors.Is(err, envelope.ErrReplayed) {
		t.Fatalf("unknown sender at the floor: %v", err)
	}
	seen := map[string]uint64{}
	s.Each(func(id string, h uint64, _ time.Time) { seen[id] = h })
	if len(seen) != 1 || seen["a"] != 102 {
		t.Fatalf("Each = %v", seen)
	}
}

func TestWindowBinaryRoundTrip(t *testing.T) {
	w := must[*replay.Window](t)(replay.NewWindow(128))
	empty := must[[]byte](t)(w.MarshalBinary())
	for _, c := range []uint64{5, 90, 91, 40} {
		w.Accept(c)
	}
	b := must[[]byte](t)(w.MarshalBinary())
	v := must[*replay.Window](t)(replay.NewWindow(128))
	if err := v.UnmarshalBinary(b); err != nil {
		t.Fatal(err)
	}
	for c := uint64(1); c < 200; c++ {
		if v.Fresh(c) != w.Fresh(c) {
			t.Fatalf("counter %d: decoded window differs", c)
		}
	}
	if err := v.UnmarshalBinary(empty); err != nil || !v.Fresh(5) {
		t.Fatalf("empty encoding: %v", err)
	}
	short := must[*replay.Window](t)(replay.NewWindow(64))
	if err := short.UnmarshalBinary(b); err == nil {
		t.Fatal("a 128-wide encoding decoded into a 64-wide window")
	}
}

func BenchmarkMemoryStoreAdmit(b *testing.B) {
	s := must[*replay.MemoryStore](b)(replay.NewMemoryStore(0))
	var n uint64
	for b.Loop() {
		n++
		s.Admit(ctx, envelope.Seen{Sender: "client", Counter: n, IssuedAt: testNow})
	}
}

func BenchmarkMemoryStoreAdmitParallel(b *testing.B) {
	s := must[*replay.MemoryStore](b)(replay.NewMemoryStore(0))
	var n atomic.Uint64
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			c := n.Add(1)
			s.Admit(ctx, envelope.Seen{Sender: senderNames[c%1024], Counter: c, IssuedAt: testNow})
		}
	})
}

// BenchmarkMemoryStoreAdmitFull admits the messages of twice as many
// senders as the store holds, in turn, so that every Admit forgets a
// sender: one whose messages have all expired, or a live one (with a
// floor).
func BenchmarkMemoryStoreAdmitFull(b *testing.B) {
	for _, tc := range []struct {
		name    string
		expires time.Time
	}{
		{"expired", time.Unix(1, 0)},
		{"live", time.Time{}},
	} {
		b.Run(tc.name, func(b *testing.B) {
			s := must[*replay.MemoryStore](b)(replay.NewBoundedMemoryStore(0, len(senderNames)/2))
			var n uint64
			for b.Loop() {
				n++
				m := envelope.Seen{Sender: senderNames[n%uint64(len(senderNames))], Counter: n,
					IssuedAt: testNow.Add(time.Duration(n)), ExpiresAt: tc.expires}
				if err := s.Admit(ctx, m); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

var senderNames = func() []string {
	out := make([]string, 1024)
	for i := range out {
		out[i] = "sender-" + strconv.Itoa(i)
	}
	return out
}()

// BenchmarkMemoryStoreBytesPerSender reports the heap each tracked sender
// costs, for the default 64-wide window, a 256-wide one and the SDK's
// 1024-wide one.
func BenchmarkMemoryStoreBytesPerSender(b *testing.B) {
	for _, width := range []int{64, 256, 1024} {
		b.Run("window="+strconv.Itoa(width), func(b *testing.B) {
			const senders = 100000
			var perSender float64
			for b.Loop() {
				runtime.GC()
				var before, after runtime.MemStats
				runtime.ReadMemStats(&before)
				s := must[*replay.MemoryStore](b)(replay.NewBoundedMemoryStore(width, senders))
				for i := range senders {
					s.Admit(ctx, envelope.Seen{Sender: "sender-" + strconv.Itoa(i), Counter: 1, IssuedAt: testNow})
				}
				runtime.GC()
				runtime.ReadMemStats(&after)
				perSender = float64(after.HeapAlloc-before.HeapAlloc) / senders
				runtime.KeepAlive(s)
			}
			b.ReportMetric(perSender, "bytes/sender")
		})
	}
}

var (
	ctx     = context.Background()
	testNow = time.Date(2026, 11, 22, 12, 0, 0, 0, time.UTC)
)

// must returns a function that returns its first argument, failing t if
// the second is an error.
func must[T any](t testing.TB) func(T, error) T {
	return func(v T, err error) T {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
}
