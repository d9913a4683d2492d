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
	// All three senders fit in the sample of eight, so the least recently
	// used one, "a", is the one forgotten, and the floor is its newest issue
	// time.
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
	if _, err := replay.NewBoundedMemoryStore(64, 0); err == nil {
		t.Fatal("a store for no senders accepted")
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

var senderNames = func() []string {
	out := make([]string, 1024)
	for i := range out {
		out[i] = "sender-" + strconv.Itoa(i)
	}
	return out
}()

// BenchmarkMemoryStoreBytesPerSender reports the heap each tracked sender
// costs, for the default 64-wide and the SDK's 1024-wide windows.
func BenchmarkMemoryStoreBytesPerSender(b *testing.B) {
	for _, width := range []int{64, 1024} {
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
