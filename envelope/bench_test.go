package envelope

import (
	"bytes"
	"crypto/rand"
	"strconv"
	"testing"
)

// BenchmarkParse runs Open's first three steps (size, frame, header with
// the members it sizes) on a 256-byte HMAC request.
func BenchmarkParse(b *testing.B) {
	w := newWorld(b)
	s := sealRequestWith(b, w, withHMAC, make([]byte, 256))
	b.ReportAllocs()
	for b.Loop() {
		var h header
		if _, err := parse(&h, s.Bytes, 0); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkPeek reads the unverified header of a request whose payload is
// random bytes, as a client does for each reply to route it (before
// Envelope 1.0: BenchmarkInspect).
func BenchmarkPeek(b *testing.B) {
	w := newWorld(b)
	for _, size := range []int{256, 4096} {
		b.Run(strconv.Itoa(size), func(b *testing.B) {
			payload := make([]byte, size)
			rand.Read(payload)
			s := sealRequestWith(b, w, withHMAC, payload)
			b.ReportAllocs()
			for b.Loop() {
				if _, err := Peek(s.Bytes, 0); err != nil {
					b.Fatal(err)
				}
			}
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
	genuine := sealRequestWith(b, w, withHMAC, payload)
	forgedMAC := editEnvelope(b, genuine.Bytes, func(p *splitParts) { p.mac[3] ^= 1 })
	unknown := &Sealer{ID: "mallory", Counter: NewMemoryCounter(0), Now: w.clock}
	p := w.request("get-card")
	p.HMAC = w.hmac
	fromUnknown := must[*Sealed](b)(unknown.Seal(p, payload))
	signed := sealRequestWith(b, w, withEd25519, payload)
	badSig := editEnvelope(b, signed.Bytes, func(p *splitParts) { p.sig[3] ^= 1 })
	cases := []struct {
		name   string
		data   []byte
		store  ReplayStore
		refuse error
	}{
		{"accepted-hmac", genuine.Bytes, admitAllStore{}, nil},
		{"junk", bytes.Repeat([]byte("x"), 800), admitAllStore{}, ErrMalformed},
		{"unknown-sender", fromUnknown.Bytes, admitAllStore{}, ErrUnknownKey},
		{"forged-hmac", forgedMAC, admitAllStore{}, ErrAuthentication},
		{"replayed", genuine.Bytes, nil, ErrReplayed},
		{"signature-only-policy-refused", badSig, admitAllStore{}, ErrPolicy},
	}
	for _, c := range cases {
		b.Run(c.name, func(b *testing.B) {
			o := w.opener()
			if c.store == nil {
				w.replay.Admit(ctx, Seen{Sender: "client", Counter: genuine.Counter, IssuedAt: testNow})
			} else {
				o.Replay = c.store
			}
			if _, err := o.Open(ctx, c.data, expectRequest); Class(err) != c.refuse {
				b.Fatalf("Open = %v, want %v", err, c.refuse)
			}
			b.ReportAllocs()
			for b.Loop() {
				o.Open(ctx, c.data, expectRequest)
			}
		})
	}
}
