package main

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"testing"

	"github.com/mqttsec/mqttsec/envelope"
	"github.com/mqttsec/mqttsec/mqttsec/replay"
)

// TestTamper: the tampered envelope is still well formed, carries the
// counter moved on by 1000 and a payload changed in one byte, and is
// refused as inauthentic; an envelope with no payload, and anything that
// is not an envelope, are refused with an error.
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
	seal := func(payload string) []byte {
		t.Helper()
		s, err := sealer.Seal(&envelope.Params{Kind: envelope.Request, To: []string{"gateway"}, Topic: "get-card",
			ReplyTo: "mqttsec/client/reply", HMAC: key}, []byte(payload))
		if err != nil {
			t.Fatal(err)
		}
		return s.Bytes
	}
	env := seal(`{"card":8165538}`)
	before, err := envelope.Peek(env, 0)
	if err != nil {
		t.Fatal(err)
	}
	out, err := tamper(env)
	if err != nil {
		t.Fatal(err)
	}
	after, err := envelope.Peek(out, 0)
	if err != nil {
		t.Fatalf("the tampered envelope is not well formed: %v", err)
	}
	if after.Counter != before.Counter+1000 {
		t.Errorf("counter %d, want %d", after.Counter, before.Counter+1000)
	}
	if diff := bytesDiffer(payloadOf(t, env), payloadOf(t, out)); diff != 1 {
		t.Errorf("%d payload bytes changed, want 1", diff)
	}
	o := &envelope.Opener{ID: "gateway", Keys: keys, Replay: mustStore(t)}
	if _, err := o.Open(context.Background(), out, &envelope.Expect{Kinds: envelope.Request}); !errors.Is(err, envelope.ErrAuthentication) {
		t.Errorf("Open = %v, want ErrAuthentication", err)
	}
	if _, err := tamper(seal("")); err == nil {
		t.Error("an envelope with no payload was tampered with")
	}
	if _, err := tamper([]byte(`{"message":{"request":{"card":1}}}`)); err == nil {
		t.Error("junk was tampered with")
	}
}

// payloadOf returns the payload member of an envelope: the second member
// of its frame, 0x01 || len(H) || H || len(P) || P || ... (SPEC.md §2).
func payloadOf(t *testing.T, env []byte) []byte {
	t.Helper()
	if _, err := envelope.Peek(env, 0); err != nil {
		t.Fatal(err)
	}
	hl := int(binary.BigEndian.Uint32(env[1:5]))
	pl := int(binary.BigEndian.Uint32(env[5+hl:]))
	return env[5+hl+4 : 5+hl+4+pl]
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

func mustStore(t *testing.T) *replay.MemoryStore {
	t.Helper()
	s, err := replay.NewMemoryStore(0)
	if err != nil {
		t.Fatal(err)
	}
	return s
}
