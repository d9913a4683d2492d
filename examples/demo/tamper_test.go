package main

import (
	"bytes"
	"context"
	"errors"
	"testing"

	"github.com/mqttsec/mqttsec/envelope"
)

// TestTamper: in the text and compact forms, the tampered envelope is still
// well formed, carries the counter moved on by 1000 and a payload changed
// in one byte, and is refused as inauthentic; other forms, and envelopes
// with no payload, are refused with an error.
func TestTamper(t *testing.T) {
	key, err := envelope.NewHMACKey(bytes.Repeat([]byte{7}, 32))
	if err != nil {
		t.Fatal(err)
	}
	sealer := &envelope.Sealer{ID: "client", Counter: envelope.NewClockCounter()}
	keys, err := envelope.NewKeys(nil, &envelope.Peer{ID: "client", HMACKeys: []*envelope.HMACKey{key}, Policy: envelope.Policy{Require: envelope.HMAC}})
	if err != nil {
		t.Fatal(err)
	}
	seal := func(version int, payload string) []byte {
		t.Helper()
		s, err := sealer.Seal(&envelope.Params{Kind: envelope.Request, To: []string{"gateway"}, Topic: "get-card",
			ReplyTo: "mqttsec/client/reply", HMAC: key, Version: version}, []byte(payload))
		if err != nil {
			t.Fatal(err)
		}
		return s.Bytes
	}
	for _, version := range []int{envelope.Version1, 0} {
		env := seal(version, `{"card":8165538}`)
		before, err := envelope.Inspect(env, 0)
		if err != nil {
			t.Fatal(err)
		}
		out, err := tamper(env)
		if err != nil {
			t.Fatalf("version %d: %v", before.Version, err)
		}
		after, err := envelope.Inspect(out, 0)
		if err != nil {
			t.Fatalf("version %d: the tampered envelope is not well formed: %v", before.Version, err)
		}
		if after.Counter != before.Counter+1000 {
			t.Errorf("version %d: counter %d, want %d", before.Version, after.Counter, before.Counter+1000)
		}
		pb, err := envelope.Parse(env)
		if err != nil {
			t.Fatal(err)
		}
		pa, err := envelope.Parse(out)
		if err != nil {
			t.Fatal(err)
		}
		if diff := bytesDiffer(pb.Payload, pa.Payload); diff != 1 {
			t.Errorf("version %d: %d payload bytes changed, want 1", before.Version, diff)
		}
		o := &envelope.Opener{ID: "gateway", Keys: keys, Replay: mustStore(t)}
		if _, err := o.Open(context.Background(), out, &envelope.Expect{Kinds: envelope.Request}); !errors.Is(err, envelope.ErrAuthentication) {
			t.Errorf("version %d: Open = %v, want ErrAuthentication", before.Version, err)
		}
	}
	if _, err := tamper(seal(envelope.Version2, "x")); err == nil {
		t.Error("a binary envelope was tampered with")
	}
	if _, err := tamper(seal(envelope.Version3, "")); err == nil {
		t.Error("a compact envelope with no payload was tampered with")
	}
}

func bytesDiffer(a, b []byte) int {
	if len(a) != len(b) {
		return -1
	}
	n := 0
	for i := range a {
		if a[i] != b[i] {
			n++
		}
	}
	return n
}

func mustStore(t *testing.T) *envelope.MemoryStore {
	t.Helper()
	s, err := envelope.NewMemoryStore(0)
	if err != nil {
		t.Fatal(err)
	}
	return s
}
