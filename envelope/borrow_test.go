package envelope_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/mqttsec/mqttsec/envelope"
)

// recordingKeyring is a Keyring that keeps every peer id it is asked for,
// as a keyring with a cache or a log of lookups would.
type recordingKeyring struct {
	*envelope.Keys
	mu    sync.Mutex
	asked []string
}

func (k *recordingKeyring) Peer(id string) *envelope.Peer {
	k.mu.Lock()
	k.asked = append(k.asked, id)
	k.mu.Unlock()
	return k.Keys.Peer(id)
}

// TestOpenKeepsNothingOfItsInput opens a request, then overwrites the bytes
// it was opened from, as a transport reusing its read buffer would: the
// message, the id the keyring was given and the replay store's record of
// the sender must all be unchanged, in every form.
func TestOpenKeepsNothingOfItsInput(t *testing.T) {
	f := newSealFixture(t)
	for _, version := range []int{envelope.Version1, envelope.Version2, envelope.Version3} {
		t.Run(fmt.Sprintf("v%d", version), func(t *testing.T) {
			sealed, err := f.sealer().Seal(f.params(version), []byte("payload"))
			if err != nil {
				t.Fatal(err)
			}
			keys, err := envelope.NewKeys(nil, &envelope.Peer{ID: "client", HMACKeys: []*envelope.HMACKey{f.key}})
			if err != nil {
				t.Fatal(err)
			}
			store, err := envelope.NewMemoryStore(0)
			if err != nil {
				t.Fatal(err)
			}
			ring := &recordingKeyring{Keys: keys}
			o := &envelope.Opener{ID: "gateway", Keys: ring, Replay: store, Now: func() time.Time { return f.now }}
			data := bytes.Clone(sealed.Bytes)
			m, err := o.Open(context.Background(), data, &envelope.Expect{Kinds: envelope.Request})
			if err != nil {
				t.Fatal(err)
			}
			for i := range data {
				data[i] = 'X'
			}
			want := f.params(version)
			if m.From != "client" || m.Topic != want.Topic || m.ReplyTo != want.ReplyTo || !slices.Equal(m.To, want.To) ||
				!bytes.Equal(m.CorrelationID, want.CorrelationID) || !bytes.Equal(m.Payload, []byte("payload")) {
				t.Fatalf("the message changed with its input: %+v", m)
			}
			if !slices.Equal(ring.asked, []string{"client"}) {
				t.Fatalf("the keyring's ids changed with the input: %q", ring.asked)
			}
			// The store still knows the sender: the same envelope again is a
			// replay.
			if _, err := o.Open(context.Background(), sealed.Bytes, &envelope.Expect{Kinds: envelope.Request}); !errors.Is(err, envelope.ErrReplayed) {
				t.Fatalf("the envelope again: %v, want ErrReplayed", err)
			}
		})
	}
}
