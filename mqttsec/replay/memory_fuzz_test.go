package replay_test

import (
	"errors"
	"strconv"
	"testing"
	"time"

	"github.com/mqttsec/mqttsec/envelope"
	"github.com/mqttsec/mqttsec/mqttsec/replay"
)

// FuzzMemoryStore: whatever the order in which a small store sees new
// messages, late ones, replays and the passing of time, it never admits a
// message twice while the message is fresh (before its ExpiresAt, or ever
// when that is unknown), and never tracks more senders than its cap.
//
// The program is read three bytes at a time: an operation, and two
// arguments a and b.
func FuzzMemoryStore(f *testing.F) {
	f.Add([]byte{0, 0, 0, 1, 0, 0, 0, 1, 1, 1, 1, 0, 0, 2, 1, 1, 0, 0, 2, 0, 0, 3, 1, 40, 0, 3, 0, 1, 0, 0, 2, 0, 0})
	f.Add([]byte{0, 0x80, 0, 1, 0, 0, 0, 1, 0, 1, 0, 0, 0, 2, 0, 1, 0, 0, 0, 3, 0, 1, 0, 0, 0, 4, 0, 1, 0, 0, 2, 0, 0, 2, 0, 1})
	f.Add([]byte{0, 0, 7, 0, 1, 7, 0, 2, 7, 0, 3, 7, 1, 0, 0, 1, 0, 1, 1, 0, 2, 1, 0, 0, 3, 0, 200, 2, 0, 0, 2, 0, 1, 2, 0, 2})
	f.Fuzz(func(t *testing.T, prog []byte) {
		m := newStoreModel(t)
		for ; len(prog) >= 3; prog = prog[3:] {
			m.step(prog[0], prog[1], prog[2])
		}
	})
}

// storeModel drives a MemoryStore of three senders on a fake clock, and
// remembers what it admitted.
type storeModel struct {
	t        *testing.T
	store    *replay.MemoryStore
	now      time.Time
	ctr      map[string]uint64 // each sender's last counter used
	pending  []envelope.Seen   // messages made, not yet delivered
	admitted []envelope.Seen
}

func newStoreModel(t *testing.T) *storeModel {
	m := &storeModel{t: t, now: testNow, ctr: map[string]uint64{}}
	m.store = must[*replay.MemoryStore](t)(replay.NewMemoryStoreWith(replay.MemoryStoreOptions{
		MaxSenders: 3, Now: func() time.Time { return m.now }}))
	return m
}

// step runs one operation:
//
//	0: sender a%6 makes a message with the counter b%4+1 past its last,
//	   issued by a clock up to 200 ms off, for 1 to 8 s (a&0x80: an unknown
//	   expiry), and holds it back;
//	1: the held-back message b delivered (late, when others came first);
//	2: the admitted message b replayed;
//	3: b × 250 ms pass.
func (m *storeModel) step(op, a, b byte) {
	switch op % 4 {
	case 0:
		m.pending = append(m.pending, m.make(a, b))
	case 1:
		if len(m.pending) > 0 {
			i := int(b) % len(m.pending)
			msg := m.pending[i]
			m.pending = append(m.pending[:i], m.pending[i+1:]...)
			m.deliver(msg)
		}
	case 2:
		if len(m.admitted) > 0 {
			m.replay(m.admitted[int(b)%len(m.admitted)])
		}
	case 3:
		m.now = m.now.Add(time.Duration(b) * 250 * time.Millisecond)
	}
	if st := m.store.Stats(); st.Senders > st.MaxSenders {
		m.t.Fatalf("%d senders tracked, cap %d", st.Senders, st.MaxSenders)
	}
}

func (m *storeModel) make(a, b byte) envelope.Seen {
	id := "s" + strconv.Itoa(int(a&0x7f)%6)
	m.ctr[id] += uint64(b%4) + 1
	offset := time.Duration(int(a&0x7f)%5-2) * 100 * time.Millisecond
	iat := m.now.Add(offset)
	msg := envelope.Seen{Sender: id, Counter: m.ctr[id], IssuedAt: iat}
	if a&0x80 == 0 {
		msg.ExpiresAt = iat.Add(time.Duration(1+b%8) * time.Second)
	}
	return msg
}

// fresh reports whether the receiver would still take msg for fresh.
func (m *storeModel) fresh(msg envelope.Seen) bool {
	return msg.ExpiresAt.IsZero() || m.now.Before(msg.ExpiresAt)
}

// deliver hands msg to the store as a receiver would: if it is fresh. The
// store may refuse it (a floor), but only as a replay.
func (m *storeModel) deliver(msg envelope.Seen) {
	if !m.fresh(msg) {
		return
	}
	switch err := m.store.Admit(ctx, msg); {
	case err == nil:
		m.admitted = append(m.admitted, msg)
	case !errors.Is(err, envelope.ErrReplayed):
		m.t.Fatalf("Admit(%+v) = %v", msg, err)
	}
}

// replay hands msg, admitted before, to the store again: while fresh, it
// must be refused.
func (m *storeModel) replay(msg envelope.Seen) {
	if !m.fresh(msg) {
		return
	}
	if err := m.store.Check(ctx, msg); !errors.Is(err, envelope.ErrReplayed) {
		m.t.Fatalf("Check of a replay of %s's fresh message %d: %v (%+v)", msg.Sender, msg.Counter, err, m.store.Stats())
	}
	if err := m.store.Admit(ctx, msg); !errors.Is(err, envelope.ErrReplayed) {
		m.t.Fatalf("replay of %s's fresh message %d: %v (%+v)", msg.Sender, msg.Counter, err, m.store.Stats())
	}
}
