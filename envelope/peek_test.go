package envelope_test

import (
	"bytes"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/mqttsec/mqttsec/envelope"
)

// TestPeek holds Peek to the kind, sender, counter and request digest of
// requests, replies and error replies in every form, and to Inspect's
// refusals.
func TestPeek(t *testing.T) {
	f := newSealFixture(t)
	for _, version := range []int{envelope.Version1, envelope.Version2, envelope.Version3} {
		req, err := f.sealer().Seal(f.params(version), []byte("q"))
		if err != nil {
			t.Fatal(err)
		}
		in := f.open(t, req.Bytes)
		gateway := &envelope.Sealer{ID: "gateway", Counter: envelope.NewMemoryCounter(0), Now: func() time.Time { return f.now }}
		reply, err := gateway.Seal(&envelope.Params{Kind: envelope.Reply, InReplyTo: in, HMAC: f.key}, []byte("r"))
		if err != nil {
			t.Fatal(err)
		}
		errReply, err := gateway.Seal(&envelope.Params{Kind: envelope.ErrorReply, InReplyTo: in, HMAC: f.key}, []byte("e"))
		if err != nil {
			t.Fatal(err)
		}
		for _, tt := range []struct {
			name  string
			data  []byte
			want  envelope.Routing
			class error
		}{
			{"request", req.Bytes, envelope.Routing{Kind: envelope.Request, From: "client", Counter: req.Counter}, nil},
			{"reply", reply.Bytes, envelope.Routing{Kind: envelope.Reply, From: "gateway", Counter: reply.Counter, InReplyTo: req.Digest}, nil},
			{"error reply", errReply.Bytes, envelope.Routing{Kind: envelope.ErrorReply, From: "gateway", Counter: errReply.Counter, InReplyTo: req.Digest}, nil},
			{"cut short", reply.Bytes[:len(reply.Bytes)-40], envelope.Routing{}, envelope.ErrMalformed},
			{"empty", nil, envelope.Routing{}, envelope.ErrMalformed},
			{"too large", make([]byte, envelope.DefaultMaxSize+1), envelope.Routing{}, envelope.ErrTooLarge},
		} {
			t.Run(fmt.Sprintf("v%d/%s", version, tt.name), func(t *testing.T) {
				before := bytes.Clone(tt.data)
				got, err := envelope.Peek(tt.data, 0)
				if !bytes.Equal(before, tt.data) {
					t.Fatal("Peek changed its input")
				}
				if tt.class != nil {
					if !errors.Is(err, tt.class) {
						t.Fatalf("Peek: %v, want %v", err, tt.class)
					}
					return
				}
				if err != nil {
					t.Fatal(err)
				}
				if got != tt.want {
					t.Fatalf("Peek: %+v, want %+v", got, tt.want)
				}
			})
		}
	}
}
