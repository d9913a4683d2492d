package mqttsec

import (
	"context"
	"log/slog"
	"sync"
	"sync/atomic"

	"github.com/mqttsec/mqttsec/mqttsec/replay"
)

// sizedStore is a replay store that tells how full it is and what it
// forgot to make room (replay.MemoryStore, replay.FileStore).
type sizedStore interface {
	Stats() replay.MemoryStats
}

// fullCheckEvery is how many admissions pass between two looks at a
// sized store's Stats: a store forgetting live senders is taking new
// senders fast, so a look this often comes soon after, and costs the
// store's lock once per so many messages.
const fullCheckEvery = 256

// fullWatch logs when a sized store forgot senders that may still send
// (replay.MemoryStats.ForgottenLive grew): it is too small for the
// senders of one lifetime, and legitimate messages may be refused. The
// metrics (see observe) show the same at every collection.
type fullWatch struct {
	store    sizedStore
	admitted atomic.Uint64
	log      func(st replay.MemoryStats, forgotten uint64)

	mu       sync.Mutex
	lastLive uint64
}

// admit counts one admission, and every fullCheckEvery looks at the
// store.
func (w *fullWatch) admit() {
	if w.admitted.Add(1)%fullCheckEvery != 0 {
		return
	}
	// Two looks at once take turns, so that each sees the count the
	// other left: ForgottenLive only grows.
	w.mu.Lock()
	st := w.store.Stats()
	grew := st.ForgottenLive - w.lastLive
	w.lastLive = st.ForgottenLive
	w.mu.Unlock()
	if grew > 0 {
		w.log(st, grew)
	}
}

// watchFull returns the watch of store, or nil if it does not tell how
// full it is. Its lines go through the reject log, one per
// RejectLogInterval however full the store stays.
func (n *node) watchFull(store any) *fullWatch {
	s, ok := store.(sizedStore)
	if !ok {
		return nil
	}
	return &fullWatch{store: s, log: func(st replay.MemoryStats, forgotten uint64) {
		n.rejects.Log(context.Background(), slog.LevelWarn,
			"mqttsec: replay store full: it forgot senders whose messages may still be fresh, and may refuse legitimate ones; raise its MaxSenders to the senders of one lifetime and skew",
			"replay-full", "forgotten_live", forgotten, "senders", st.Senders, "max_senders", st.MaxSenders)
	}}
}
