package envelope

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"sync"
	"testing"
	"time"
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
			w, err := NewWindow(tt.width)
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
	for _, width := range []int{0, 32, 63, 65, 100, MaxWindow + 64} {
		if _, err := NewWindow(width); !errors.Is(err, ErrInvalidConfig) {
			t.Errorf("NewWindow(%d) = %v, want ErrInvalidConfig", width, err)
		}
		if width == 0 {
			continue // NewMemoryStore(0) means DefaultWindow
		}
		if _, err := NewMemoryStore(width); !errors.Is(err, ErrInvalidConfig) {
			t.Errorf("NewMemoryStore(%d) = %v, want ErrInvalidConfig", width, err)
		}
	}
	if _, err := NewBoundedMemoryStore(64, 0); !errors.Is(err, ErrInvalidConfig) {
		t.Errorf("NewBoundedMemoryStore(64, 0) = %v, want ErrInvalidConfig", err)
	}
	for _, width := range []int{64, 128, 4096, MaxWindow} {
		w, err := NewWindow(width)
		if err != nil || w.Width() != width {
			t.Errorf("NewWindow(%d) = %v", width, err)
		}
	}
}

// TestWindowMatchesModel checks the bitmap window against a plain set with
// the same rule, over random walks of counters.
func TestWindowMatchesModel(t *testing.T) {
	for _, width := range []int{64, 128, 192} {
		r := rand.New(rand.NewPCG(uint64(width), 1))
		w := must[*Window](t)(NewWindow(width))
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
	s := must[*MemoryStore](t)(NewMemoryStore(128))
	var wg sync.WaitGroup
	var mu sync.Mutex
	admitted := map[uint64]int{}
	for range 8 {
		wg.Go(func() {
			for c := uint64(1); c <= 500; c++ {
				if s.Admit(ctx, Seen{Sender: "peer", Counter: c, IssuedAt: testNow}) == nil {
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
	if err := s.Check(ctx, Seen{Sender: "peer", Counter: 500, IssuedAt: testNow}); !errors.Is(err, ErrReplayed) {
		t.Fatalf("Check(500) = %v", err)
	}
	if err := s.Check(ctx, Seen{Sender: "other", Counter: 500, IssuedAt: testNow}); err != nil {
		t.Fatalf("senders share a window: %v", err)
	}
	if s.Len() != 1 {
		t.Fatalf("Len = %d (Check must not create state)", s.Len())
	}
}

func TestMemoryCounter(t *testing.T) {
	c := NewMemoryCounter(41)
	if n, _ := c.Next(); n != 42 {
		t.Fatalf("Next = %d", n)
	}
	c = NewMemoryCounter(^uint64(0) - 1)
	if n, err := c.Next(); n != ^uint64(0) || err != nil {
		t.Fatalf("Next = %d, %v", n, err)
	}
	if _, err := c.Next(); !errors.Is(err, ErrCounterExhausted) {
		t.Fatalf("Next past max = %v", err)
	}
	c = NewMemoryCounter(0)
	var wg sync.WaitGroup
	var mu sync.Mutex
	seen := map[uint64]bool{}
	for range 8 {
		wg.Go(func() {
			for range 1000 {
				n, _ := c.Next()
				mu.Lock()
				if seen[n] {
					t.Errorf("counter %d handed out twice", n)
				}
				seen[n] = true
				mu.Unlock()
			}
		})
	}
	wg.Wait()
}

func TestClockCounterStartsAboveEarlierRuns(t *testing.T) {
	before := uint64(time.Now().UnixNano())
	c := NewClockCounter()
	n, err := c.Next()
	if err != nil || n <= before {
		t.Fatalf("Next = %d, %v; want above %d", n, err, before)
	}
	if m, _ := c.Next(); m != n+1 {
		t.Fatalf("second Next = %d, want %d", m, n+1)
	}
}

// A bounded store forgets senders when full, and never re-admits a message
// of a forgotten sender: anything issued at or before the newest message it
// had accepted from them is refused.
func TestMemoryStoreEvictionNeverReadmits(t *testing.T) {
	s, err := NewBoundedMemoryStore(64, 3)
	if err != nil {
		t.Fatal(err)
	}
	at := func(sec int) time.Time { return testNow.Add(time.Duration(sec) * time.Second) }
	admit := func(sender string, ctr uint64, sec int) error {
		return s.Admit(ctx, Seen{Sender: sender, Counter: ctr, IssuedAt: at(sec)})
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
	old := Seen{Sender: forgotten, Counter: 10, IssuedAt: floor}
	if err := s.Check(ctx, old); !errors.Is(err, ErrReplayed) {
		t.Fatalf("Check(old message of a forgotten sender) = %v", err)
	}
	if err := s.Admit(ctx, old); !errors.Is(err, ErrReplayed) {
		t.Fatalf("Admit(old message of a forgotten sender) = %v", err)
	}
	// A message issued after the floor is accepted, and then tracked again.
	if err := admit(forgotten, 11, 20); err != nil {
		t.Fatalf("new message after eviction: %v", err)
	}
	if err := admit(forgotten, 11, 20); !errors.Is(err, ErrReplayed) {
		t.Fatalf("its replay: %v", err)
	}
	// The new window knows nothing of what came before the eviction: the
	// old message, within its width below the new counter, stays refused.
	if err := s.Admit(ctx, old); !errors.Is(err, ErrReplayed) {
		t.Fatalf("Admit(old message after its sender was tracked again) = %v", err)
	}
	if _, err := NewBoundedMemoryStore(64, 0); err == nil {
		t.Fatal("a store for no senders accepted")
	}
}

// Memory stays bounded however many senders arrive.
func TestMemoryStoreBounded(t *testing.T) {
	s := must[*MemoryStore](t)(NewBoundedMemoryStore(64, 100))
	for i := range 10000 {
		s.Admit(ctx, Seen{Sender: fmt.Sprint("sender-", i), Counter: 1, IssuedAt: testNow.Add(time.Duration(i) * time.Millisecond)})
	}
	if s.Len() > 100 {
		t.Fatalf("Len = %d after 10000 senders, limit 100", s.Len())
	}
}

func TestMemoryStoreRestore(t *testing.T) {
	s := must[*MemoryStore](t)(NewBoundedMemoryStore(64, 10))
	s.Restore("a", 100, testNow)
	for _, c := range []uint64{1, 37, 99, 100} {
		if err := s.Check(ctx, Seen{Sender: "a", Counter: c, IssuedAt: testNow.Add(time.Hour)}); !errors.Is(err, ErrReplayed) {
			t.Fatalf("counter %d after Restore(100): %v", c, err)
		}
	}
	if err := s.Admit(ctx, Seen{Sender: "a", Counter: 101, IssuedAt: testNow}); err != nil {
		t.Fatalf("101 after Restore(100): %v", err)
	}
	s.Restore("a", 50, testNow) // never lowers
	if err := s.Admit(ctx, Seen{Sender: "a", Counter: 102, IssuedAt: testNow}); err != nil {
		t.Fatalf("102: %v", err)
	}
	s.RaiseFloor(testNow)
	if err := s.Check(ctx, Seen{Sender: "b", Counter: 1, IssuedAt: testNow}); !errors.Is(err, ErrReplayed) {
		t.Fatalf("unknown sender at the floor: %v", err)
	}
	seen := map[string]uint64{}
	s.Each(func(id string, h uint64, _ time.Time) { seen[id] = h })
	if len(seen) != 1 || seen["a"] != 102 {
		t.Fatalf("Each = %v", seen)
	}
}

func TestWindowBinaryRoundTrip(t *testing.T) {
	w := must[*Window](t)(NewWindow(128))
	empty := must[[]byte](t)(w.MarshalBinary())
	for _, c := range []uint64{5, 90, 91, 40} {
		w.Accept(c)
	}
	b := must[[]byte](t)(w.MarshalBinary())
	v := must[*Window](t)(NewWindow(128))
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
	short := must[*Window](t)(NewWindow(64))
	if err := short.UnmarshalBinary(b); err == nil {
		t.Fatal("a 128-wide encoding decoded into a 64-wide window")
	}
}
