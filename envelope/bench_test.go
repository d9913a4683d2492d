package envelope

import (
	"bytes"
	"context"
	"crypto/rand"
	"runtime"
	"strconv"
	"sync/atomic"
	"testing"
)

// admitAll is a ReplayStore that admits every counter, so one sealed
// envelope can be opened b.N times. The window itself is measured by
// BenchmarkMemoryStoreAdmit.
type admitAll struct{}

func (admitAll) Check(context.Context, Seen) error { return nil }
func (admitAll) Admit(context.Context, Seen) error { return nil }

func BenchmarkMemoryStoreAdmit(b *testing.B) {
	s := must[*MemoryStore](b)(NewMemoryStore(0))
	var n uint64
	for b.Loop() {
		n++
		s.Admit(ctx, Seen{Sender: "client", Counter: n, IssuedAt: testNow})
	}
}

func BenchmarkParse(b *testing.B) {
	w := newWorld(b)
	p := w.request("get-card")
	p.HMAC = w.hmac
	s := must[*Sealed](b)(w.sealer().Seal(p, make([]byte, 256)))
	b.ReportAllocs()
	for b.Loop() {
		Parse(s.Bytes)
	}
}

// BenchmarkInspect reads the unverified header of a request whose payload
// is random bytes, as a client does for each reply before opening it.
func BenchmarkInspect(b *testing.B) {
	w := newWorld(b)
	for _, size := range []int{256, 4096} {
		b.Run(strconv.Itoa(size), func(b *testing.B) {
			p := w.request("get-card")
			p.HMAC = w.hmac
			payload := make([]byte, size)
			rand.Read(payload)
			s, err := w.sealer().Seal(p, payload)
			if err != nil {
				b.Fatal(err)
			}
			b.ReportAllocs()
			for b.Loop() {
				if _, err := Inspect(s.Bytes, 0); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func BenchmarkMemoryStoreAdmitParallel(b *testing.B) {
	s := must[*MemoryStore](b)(NewMemoryStore(0))
	var n atomic.Uint64
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			c := n.Add(1)
			s.Admit(ctx, Seen{Sender: senderName(c % 1024), Counter: c, IssuedAt: testNow})
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

func senderName(i uint64) string { return senderNames[i] }

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
				s := must[*MemoryStore](b)(NewBoundedMemoryStore(width, senders))
				for i := range senders {
					s.Admit(ctx, Seen{Sender: "sender-" + strconv.Itoa(i), Counter: 1, IssuedAt: testNow})
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

// BenchmarkOpenRefusals compares the cost of refusing junk and forgeries
// with the cost of accepting a genuine HMAC request: a receiver that
// requires an HMAC sheds floods before any public-key work.
func BenchmarkOpenRefusals(b *testing.B) {
	w := newWorld(b)
	w.peer.Policy = Policy{Require: HMAC}
	payload := make([]byte, 256)
	p := w.request("get-card")
	p.HMAC = w.hmac
	genuine := must[*Sealed](b)(w.sealer().Seal(p, payload))
	forgedMAC := flipInMember(genuine.Bytes, memberMAC, 3)
	unknown := &Sealer{ID: "mallory", Counter: NewMemoryCounter(0), Now: w.clock}
	fromUnknown := must[*Sealed](b)(unknown.Seal(p, payload))
	ps := w.request("get-card")
	ps.Signer = w.ed
	signed := must[*Sealed](b)(w.sealer().Seal(ps, payload))
	badSig := flipInMember(signed.Bytes, memberSig, 3)
	cases := []struct {
		name  string
		data  []byte
		store ReplayStore
	}{
		{"accepted-hmac", genuine.Bytes, admitAll{}},
		{"junk", bytes.Repeat([]byte("x"), 800), admitAll{}},
		{"unknown-sender", fromUnknown.Bytes, admitAll{}},
		{"forged-hmac", forgedMAC, admitAll{}},
		{"replayed", genuine.Bytes, nil},
		{"signature-only-policy-refused", badSig, admitAll{}},
	}
	for _, c := range cases {
		b.Run(c.name, func(b *testing.B) {
			o := w.opener()
			if c.store == nil {
				o.Replay.Admit(ctx, Seen{Sender: "client", Counter: genuine.Counter, IssuedAt: testNow})
			} else {
				o.Replay = c.store
			}
			b.ReportAllocs()
			for b.Loop() {
				o.Open(ctx, c.data, expectRequest)
			}
		})
	}
}
