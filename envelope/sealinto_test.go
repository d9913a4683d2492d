package envelope_test

import (
	"bytes"
	"context"
	"errors"
	"testing"
	"time"

	"github.com/mqttsec/mqttsec/envelope"
	"github.com/mqttsec/mqttsec/mqttsec/replay"
)

// sealFixture is a sender, a receiver and request parameters whose
// envelopes are the same bytes every time (fixed clock, correlation id and
// first counter), so that two ways of sealing can be compared byte for
// byte.
type sealFixture struct {
	key *envelope.HMACKey
	now time.Time
}

func newSealFixture(t testing.TB) *sealFixture {
	t.Helper()
	key, err := envelope.NewHMACKey(bytes.Repeat([]byte{7}, 32))
	if err != nil {
		t.Fatal(err)
	}
	return &sealFixture{key: key, now: time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)}
}

func (f *sealFixture) sealer() *envelope.Sealer {
	return &envelope.Sealer{ID: "client", Counter: envelope.NewMemoryCounter(0), Now: func() time.Time { return f.now }}
}

func (f *sealFixture) params() *envelope.Params {
	return &envelope.Params{Kind: envelope.Request, To: []string{"gateway"}, Topic: "get-card",
		ReplyTo: "mqttsec/client/reply", HMAC: f.key, CorrelationID: []byte("corr-0123456789a")}
}

func (f *sealFixture) open(t testing.TB, data []byte) *envelope.Message {
	t.Helper()
	store, err := replay.NewMemoryStore(0)
	if err != nil {
		t.Fatal(err)
	}
	keys, err := envelope.NewKeys(nil, &envelope.Peer{ID: "client", HMACKeys: []*envelope.HMACKey{f.key}})
	if err != nil {
		t.Fatal(err)
	}
	o := &envelope.Opener{ID: "gateway", Keys: keys, Replay: store, Now: func() time.Time { return f.now }}
	m, err := o.Open(context.Background(), data, &envelope.Expect{Kinds: envelope.Request})
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	return m
}

// TestSealInto holds SealInto to Seal's bytes, in buf when it has room and
// in a buffer of its own when it has not, and refuses a buffer that
// overlaps the payload, leaving the payload as it was.
func TestSealInto(t *testing.T) {
	f := newSealFixture(t)
	want, err := f.sealer().Seal(f.params(), bytes.Repeat([]byte("p"), 256))
	if err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		name string
		// setup returns the buffer and payload to seal; the payload
		// holds 256 bytes "p".
		setup   func() (buf, payload []byte)
		inBuf   bool // the envelope lands in buf's array
		overlap bool // refused: buf and payload share memory
	}{
		{"nil buffer", func() ([]byte, []byte) { return nil, bytes.Repeat([]byte("p"), 256) }, false, false},
		{"too small", func() ([]byte, []byte) {
			return bytes.Repeat([]byte("x"), 10)[:0:10], bytes.Repeat([]byte("p"), 256)
		}, false, false},
		{"one byte too small", func() ([]byte, []byte) {
			return make([]byte, 0, len(want.Bytes)-1), bytes.Repeat([]byte("p"), 256)
		}, false, false},
		{"exactly the envelope's size", func() ([]byte, []byte) {
			return make([]byte, 0, len(want.Bytes)), bytes.Repeat([]byte("p"), 256)
		}, true, false},
		{"room, written from its start", func() ([]byte, []byte) {
			return append(make([]byte, 0, 4096), "junk"...), bytes.Repeat([]byte("p"), 256)
		}, true, false},
		{"payload right before the buffer", func() ([]byte, []byte) {
			all := make([]byte, 256, 256+4096)
			copy(all, bytes.Repeat([]byte("p"), 256))
			return all[256:256], all[:256]
		}, true, false},
		{"payload right after the buffer's capacity", func() ([]byte, []byte) {
			all := make([]byte, 4096+256)
			copy(all[4096:], bytes.Repeat([]byte("p"), 256))
			return all[:0:4096], all[4096:]
		}, true, false},
		{"payload inside the buffer", func() ([]byte, []byte) {
			all := make([]byte, 4096)
			copy(all[100:], bytes.Repeat([]byte("p"), 256))
			return all[:0], all[100:356]
		}, false, true},
		{"payload inside the buffer's capacity, past its length", func() ([]byte, []byte) {
			all := make([]byte, 4096)
			copy(all[1000:], bytes.Repeat([]byte("p"), 256))
			return all[:10], all[1000:1256]
		}, false, true},
		{"buffer inside the payload", func() ([]byte, []byte) {
			payload := bytes.Repeat([]byte("p"), 256)
			return payload[200:200], payload
		}, false, true},
		{"payload's last byte is the buffer's first", func() ([]byte, []byte) {
			all := make([]byte, 4096)
			copy(all, bytes.Repeat([]byte("p"), 256))
			return all[255:255], all[:256]
		}, false, true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			buf, payload := tt.setup()
			got, err := f.sealer().SealInto(buf, f.params(), payload)
			if !bytes.Equal(payload, bytes.Repeat([]byte("p"), 256)) {
				t.Fatal("the payload changed")
			}
			if tt.overlap {
				if !errors.Is(err, envelope.ErrInvalidParams) || got != nil {
					t.Fatalf("SealInto: %v, want ErrInvalidParams", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got.Bytes, want.Bytes) || got.Digest != want.Digest || got.Counter != want.Counter {
				t.Fatal("SealInto wrote other bytes than Seal")
			}
			if shared := cap(buf) > 0 && &buf[:1][0] == &got.Bytes[0]; shared != tt.inBuf {
				t.Fatalf("envelope in buf's array: %v, want %v", shared, tt.inBuf)
			}
			if m := f.open(t, got.Bytes); !bytes.Equal(m.Payload, payload) {
				t.Fatal("opened another payload")
			}
		})
	}
}

// TestSealIntoReuse: one buffer sealed into again and again holds each
// envelope in turn, each the bytes Seal makes of the same message.
func TestSealIntoReuse(t *testing.T) {
	f := newSealFixture(t)
	viaSeal, viaInto := f.sealer(), f.sealer()
	buf := make([]byte, 0, 1024)
	for i := range 5 {
		payload := bytes.Repeat([]byte{byte('a' + i)}, 10*i)
		want, err := viaSeal.Seal(f.params(), payload)
		if err != nil {
			t.Fatal(err)
		}
		got, err := viaInto.SealInto(buf, f.params(), payload)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got.Bytes, want.Bytes) || &got.Bytes[0] != &buf[:1][0] {
			t.Fatalf("message %d: not Seal's bytes, or not in the buffer", i)
		}
		if m := f.open(t, got.Bytes); !bytes.Equal(m.Payload, payload) {
			t.Fatalf("message %d: opened another payload", i)
		}
	}
}
