package replay

import (
	"encoding/binary"
	"fmt"
	"math"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/mqttsec/mqttsec/envelope"
)

// nextCounter picks the next counter of a random walk around window ref:
// near its top, exactly around its lower edge, a jump of 2^32 or more or
// of about the width, or a repeat of a recent one.
func nextCounter(rng *rand.Rand, ref *Window, c, base uint64) uint64 {
	w := uint64(ref.Width())
	switch k := rng.IntN(10); {
	case k < 4:
		c = c - min(c-1, w) + rng.Uint64N(2*w)
	case k < 6:
		h, _ := ref.Highest()
		c = h - min(h-1, w-1+rng.Uint64N(3))
	case k == 6:
		c += []uint64{w - 1, w, w + 1, 1 << 32, 1<<33 + 7}[rng.IntN(5)]
	default:
		c = c - min(c-1, rng.Uint64N(8))
	}
	if c == 0 || c > math.MaxUint64-1 {
		c = base
	}
	return c
}

// storeAndWindow returns a RedisStore of the given width under a prefix of
// its own, and an empty Window of that width to hold it to.
func storeAndWindow(t *testing.T, rdb *redis.Client, name string, width int) (*RedisStore, *Window) {
	t.Helper()
	s, err := InitRedisStore(ctx, rdb, RedisStoreOptions{Prefix: fmt.Sprintf("mqttsec-test:%s:%d:", name, time.Now().UnixNano()), Width: width})
	if err != nil {
		t.Fatal(err)
	}
	ref, err := NewWindow(width)
	if err != nil {
		t.Fatal(err)
	}
	return s, ref
}

// checkRing holds a sender's key, as the script stores it, to window ref
// and newest issue time newest (ms): the ring layout, the same newest and
// highest counter, and a ring bit set for exactly the counters ref
// accepted within its width.
func checkRing(t *testing.T, stored []byte, ref *Window, newest int64) {
	t.Helper()
	width := ref.Width()
	if len(stored) != 17+width/8 || stored[0] != 2 {
		t.Fatalf("stored %d bytes starting %#x, want %d starting 0x2", len(stored), stored[:1], 17+width/8)
	}
	highest, _ := ref.Highest()
	if got := int64(binary.BigEndian.Uint64(stored[1:9])); got != newest {
		t.Fatalf("newest %d, want %d", got, newest)
	}
	if got := binary.BigEndian.Uint64(stored[9:17]); got != highest {
		t.Fatalf("highest %d, want %d", got, highest)
	}
	ring := stored[17:]
	for i := range uint64(width) {
		want := false // positions of counters 0 and below stay clear
		if i < highest {
			want = !ref.Fresh(highest - i)
		}
		p := (highest - i) % uint64(width)
		if got := ring[p/8]&(0x80>>(p%8)) != 0; got != want {
			t.Fatalf("counter %d (ring position %d): bit %v, want %v", highest-i, p, got, want)
		}
	}
}

// The script Redis runs for Admit keeps a window exactly as
// Window does: the same counters accepted and refused, and a ring
// that records exactly those, including around 2^32, 2^53 and 2^64 where
// Lua's doubles could not hold a counter. Check agrees with both.
func TestAdmitScriptMatchesWindow(t *testing.T) {
	rdb := redisClient(t)
	rng := rand.New(rand.NewPCG(1, 2))
	t0 := time.Now()
	for _, width := range []int{64, 128, 192, 1024, MaxRedisWidth} {
		for _, base := range []uint64{1, 1<<32 - 70, 1<<53 - 100, math.MaxUint64 - 5000} {
			t.Run(fmt.Sprintf("width=%d/base=%d", width, base), func(t *testing.T) {
				s, ref := storeAndWindow(t, rdb, "script", width)
				newest := int64(math.MinInt64)
				accepted, refused := 0, 0
				c := base
				for i := range 400 {
					c = nextCounter(rng, ref, c, base)
					iat := t0.Add(time.Duration(rng.IntN(20000)-10000) * time.Millisecond)
					m := envelope.Seen{Sender: "client", Counter: c, IssuedAt: iat, ExpiresAt: iat.Add(time.Minute)}
					if err := s.Check(ctx, m); (err == nil) != ref.Fresh(c) {
						t.Fatalf("op %d, counter %d: Check = %v, window fresh: %v", i, c, err, ref.Fresh(c))
					}
					want := ref.Accept(c)
					if want && iat.UnixMilli() > newest {
						newest = iat.UnixMilli()
					}
					err := s.Admit(ctx, m)
					if want {
						accepted++
					} else {
						refused++
					}
					if got := err == nil; got != want || (err != nil && err != envelope.ErrReplayed) {
						t.Fatalf("op %d, counter %d: Admit = %v, window accepts: %v", i, c, err, want)
					}
					stored, err := rdb.Get(ctx, s.prefix+"client").Bytes()
					if err != nil {
						if want {
							t.Fatalf("op %d: %v", i, err)
						}
						continue
					}
					checkRing(t, stored, ref, newest)
				}
				if accepted < 50 || refused < 50 {
					t.Fatalf("%d accepted and %d refused: the sequence does not exercise both", accepted, refused)
				}
			})
		}
	}
}

// A key in the earlier layout (the newest issue time and Window's
// encoding, the window shifted on every move) is read as it is by Check,
// and rewritten as a ring by the first Admit, keeping its time to live;
// from there on the store goes on as the window would have.
func TestAdmitScriptReadsEarlierLayout(t *testing.T) {
	rdb := redisClient(t)
	rng := rand.New(rand.NewPCG(3, 4))
	t0 := time.Now()
	for _, width := range []int{64, 192, 1024, MaxRedisWidth} {
		for _, base := range []uint64{1, 1<<32 - 70, math.MaxUint64 - 5000} {
			t.Run(fmt.Sprintf("width=%d/base=%d", width, base), func(t *testing.T) {
				s, ref := storeAndWindow(t, rdb, "earlier", width)
				c := base
				for range 300 {
					c = nextCounter(rng, ref, c, base)
					ref.Accept(c)
				}
				newest := t0.UnixMilli()
				key := s.prefix + "client"
				if err := rdb.Set(ctx, key, encodeEarlier(t, ref, newest), time.Hour).Err(); err != nil {
					t.Fatal(err)
				}
				h, _ := ref.Highest()
				for _, probe := range []uint64{h, h + 1, h - 1, h - uint64(width) + 1, h - uint64(width), c, c - 1, c + 1} {
					if err := s.Check(ctx, envelope.Seen{Sender: "client", Counter: probe}); (err == nil) != ref.Fresh(probe) {
						t.Fatalf("Check(%d) on the earlier layout = %v, window fresh: %v", probe, err, ref.Fresh(probe))
					}
				}
				for i := range 100 {
					c = nextCounter(rng, ref, c, base)
					m := envelope.Seen{Sender: "client", Counter: c, IssuedAt: t0.Add(time.Duration(i) * time.Millisecond)}
					want := ref.Accept(c)
					if want {
						newest = max(newest, m.IssuedAt.UnixMilli())
					}
					if err := s.Admit(ctx, m); (err == nil) != want {
						t.Fatalf("op %d, counter %d: Admit = %v, window accepts: %v", i, c, err, want)
					}
					stored, err := rdb.Get(ctx, key).Bytes()
					if err != nil {
						t.Fatal(err)
					}
					checkRing(t, stored, ref, newest)
				}
				if ttl, err := rdb.PTTL(ctx, key).Result(); err != nil || ttl < 59*time.Minute {
					t.Fatalf("time to live %v (%v), want the hour the key had", ttl, err)
				}
			})
		}
	}
	// A key of the newest issue time alone (no counter yet) takes a first
	// counter and keeps the later issue time.
	s := redisStores(t, 1, RedisStoreOptions{})[0]
	later := t0.Add(time.Hour).UnixMilli()
	if err := rdb.Set(ctx, s.prefix+"client", binary.BigEndian.AppendUint64(nil, uint64(later)), time.Hour).Err(); err != nil {
		t.Fatal(err)
	}
	if err := s.Admit(ctx, envelope.Seen{Sender: "client", Counter: 7, IssuedAt: t0}); err != nil {
		t.Fatal(err)
	}
	ref, _ := NewWindow(DefaultWindow)
	ref.Accept(7)
	stored, err := rdb.Get(ctx, s.prefix+"client").Bytes()
	if err != nil {
		t.Fatal(err)
	}
	checkRing(t, stored, ref, later)
}

// encodeEarlier is a sender's key in the earlier layout, for window w and
// newest issue time newest (ms): [i64 newest][window's MarshalBinary].
func encodeEarlier(t *testing.T, w *Window, newest int64) []byte {
	t.Helper()
	b, err := w.MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	return append(binary.BigEndian.AppendUint64(nil, uint64(newest)), b...)
}
