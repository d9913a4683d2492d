package envelope

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"runtime"
	"strconv"
	"sync/atomic"
	"testing"

	"github.com/mqttsec/mqttsec/aesgcm"
)

// admitAll is a ReplayStore that admits every counter, so one sealed
// envelope can be opened b.N times. The window itself is measured by
// BenchmarkMemoryStoreAdmit.
type admitAll struct{}

func (admitAll) Check(context.Context, Seen) error { return nil }
func (admitAll) Admit(context.Context, Seen) error { return nil }

// BenchmarkEnvelope measures, for each suite with a 256-byte payload, Seal
// and Open next to the raw primitives that suite cannot avoid (the same
// operations on the same sizes, with no envelope around them). The ratio
// seal/primitive-seal and open/primitive-open is the envelope's overhead.
func BenchmarkEnvelope(b *testing.B) {
	payload := make([]byte, 256)
	rand.Read(payload)
	for _, s := range suites() {
		w := newWorld(b)
		w.peer.Policy = Policy{Require: s.require, AllowLegacyRSAPKCS1v15: s.legacy}
		p := w.request("get-card")
		s.apply(w, p)
		sealer := w.sealer()
		o := w.opener()
		o.Replay = admitAll{}
		sealed, err := sealer.Seal(p, payload)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := o.Open(ctx, sealed.Bytes, expectRequest); err != nil {
			b.Fatal(err)
		}
		prim := primitivesFor(b, w, p, sealed.Bytes, payload)

		b.Run(s.name+"/seal", func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, err := sealer.Seal(p, payload); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run(s.name+"/primitives-seal", func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				prim.seal()
			}
		})
		b.Run(s.name+"/open", func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, err := o.Open(ctx, sealed.Bytes, expectRequest); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run(s.name+"/primitives-open", func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				prim.open()
			}
		})
	}
}

type primitives struct{ seal, open func() }

// primitivesFor returns the bare cryptographic work of a suite: MAC and
// signature over a message as long as the envelope's signing input, AES-GCM
// over the payload, and one key wrap per recipient.
func primitivesFor(b *testing.B, w *world, p *Params, sealedBytes, payload []byte) primitives {
	e, err := Parse(sealedBytes)
	if err != nil {
		b.Fatal(err)
	}
	msg := signingInput{h: e.rawHeader, p: e.rawPayload}.bytes()
	var seals, opens []func()
	if p.HMAC != nil {
		key := w.sec.HMAC
		tag := func() []byte { m := hmac.New(sha256.New, key); m.Write(msg); return m.Sum(nil) }
		t := tag()
		seals = append(seals, func() { tag() })
		opens = append(opens, func() { hmac.Equal(tag(), t) })
	}
	if p.HOTP != nil {
		seals = append(seals, func() { p.HOTP.key.Code(12345) })
		opens = append(opens, func() { p.HOTP.key.Verify("123456", 12345) })
	}
	if p.Signer != nil {
		switch p.Signer.Algorithm() {
		case Ed25519:
			priv := ed25519.NewKeyFromSeed(w.sec.Ed25519Seed)
			sig := ed25519.Sign(priv, msg)
			pub := priv.Public().(ed25519.PublicKey)
			seals = append(seals, func() { ed25519.Sign(priv, msg) })
			opens = append(opens, func() { ed25519.Verify(pub, msg, sig) })
		default:
			sig, _ := p.Signer.Sign(msg)
			v := w.peer.verifier(p.Signer.Algorithm(), p.Signer.KeyID())
			seals = append(seals, func() { p.Signer.Sign(msg) })
			opens = append(opens, func() { v.Verify(msg, sig) })
		}
	}
	if p.PSK != nil || len(p.Recipients) > 0 {
		k, _ := aesgcm.NewKey(w.sec.PSK)
		ct, _ := k.Seal(nil, payload, e.rawHeader)
		seals = append(seals, func() { k.Seal(nil, payload, e.rawHeader) })
		opens = append(opens, func() { k.Open(nil, ct, e.rawHeader) })
	}
	// The sender wraps to every recipient; a receiver unwraps only its own
	// entry (the first one it holds a key for, as Open does).
	for i, r := range p.Recipients {
		cek := make([]byte, 32)
		wk, _ := r.Wrap(cek)
		seals = append(seals, func() { r.Wrap(cek) })
		if i == 0 {
			var id Identity
			for _, candidate := range w.ids {
				if candidate.KeyID() == r.KeyID() {
					id = candidate
				}
			}
			opens = append(opens, func() { id.Unwrap(wk) })
		}
	}
	return primitives{
		seal: func() {
			for _, f := range seals {
				f()
			}
		},
		open: func() {
			for _, f := range opens {
				f()
			}
		},
	}
}

func BenchmarkMemoryStoreAdmit(b *testing.B) {
	s, _ := NewMemoryStore(0)
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
	s, _ := w.sealer().Seal(p, make([]byte, 256))
	b.ReportAllocs()
	for b.Loop() {
		Parse(s.Bytes)
	}
}

func BenchmarkMemoryStoreAdmitParallel(b *testing.B) {
	s, _ := NewMemoryStore(0)
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
				s, _ := NewBoundedMemoryStore(width, senders)
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
	genuine, _ := w.sealer().Seal(p, payload)
	forgedMAC := flipInMember(genuine.Bytes, memberMAC, 3)
	unknown := &Sealer{ID: "mallory", Counter: NewMemoryCounter(0), Now: w.clock}
	fromUnknown, _ := unknown.Seal(p, payload)
	ps := w.request("get-card")
	ps.Signer = w.ed
	signed, _ := w.sealer().Seal(ps, payload)
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
				o.Replay.Admit(ctx, Seen{"client", genuine.Counter, testNow})
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
