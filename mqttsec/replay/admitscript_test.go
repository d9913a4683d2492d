package replay

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"math"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/mqttsec/mqttsec/envelope"
)

// The script Redis runs for Admit keeps a window exactly as
// envelope.Window does: the same counters accepted and refused, and the
// same bytes stored, including around 2^32, 2^53 and 2^64 where Lua's
// doubles could not hold a counter.
func TestAdmitScriptMatchesWindow(t *testing.T) {
	rdb := redisClient(t)
	rng := rand.New(rand.NewPCG(1, 2))
	t0 := time.Now()
	for _, width := range []int{64, 128, 1024, MaxRedisWidth} {
		for _, base := range []uint64{1, 1<<32 - 70, 1<<53 - 100, math.MaxUint64 - 5000} {
			t.Run(fmt.Sprintf("width=%d/base=%d", width, base), func(t *testing.T) {
				s, err := NewRedisStore(rdb, RedisStoreOptions{Prefix: fmt.Sprintf("mqttsec-test:script:%d:", time.Now().UnixNano()), Width: width})
				if err != nil {
					t.Fatal(err)
				}
				ref, err := envelope.NewWindow(width)
				if err != nil {
					t.Fatal(err)
				}
				newest := int64(math.MinInt64)
				accepted, refused := 0, 0
				w := uint64(width)
				c := base
				for i := range 400 {
					switch k := rng.IntN(10); {
					case k < 4: // near the top
						c = c - min(c-1, w) + rng.Uint64N(2*w)
					case k < 6: // exactly around the window's edge
						h, _ := ref.Highest()
						c = h - min(h-1, w-1+rng.Uint64N(3))
					case k == 6: // a jump of 2^32 or more, or of the width
						c += []uint64{w - 1, w, w + 1, 1 << 32, 1<<33 + 7}[rng.IntN(5)]
					default: // repeat a recent one
						c = c - min(c-1, rng.Uint64N(8))
					}
					if c == 0 || c > math.MaxUint64-1 {
						c = base
					}
					iat := t0.Add(time.Duration(rng.IntN(20000)-10000) * time.Millisecond)
					m := envelope.Seen{Sender: "client", Counter: c, IssuedAt: iat, ExpiresAt: iat.Add(time.Minute)}
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
					if err != nil && want {
						t.Fatalf("op %d: %v", i, err)
					}
					if newest != math.MinInt64 {
						wantState := encodeState(t, ref, newest)
						if !bytes.Equal(stored, wantState) {
							t.Fatalf("op %d, counter %d: stored\n%x\nwant\n%x", i, c, stored, wantState)
						}
					}
				}
				if accepted < 50 || refused < 50 {
					t.Fatalf("%d accepted and %d refused: the sequence does not exercise both", accepted, refused)
				}
			})
		}
	}
}

// encodeState is what a sender's key holds for window w and newest issue
// time newest (ms): [i64 newest][window's MarshalBinary].
func encodeState(t *testing.T, w *envelope.Window, newest int64) []byte {
	t.Helper()
	b, err := w.MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	return append(binary.BigEndian.AppendUint64(nil, uint64(newest)), b...)
}
