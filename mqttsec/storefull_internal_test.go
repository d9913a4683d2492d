package mqttsec

import (
	"testing"

	"github.com/mqttsec/mqttsec/mqttsec/replay"
)

// statsStore is a sized store whose Stats a test sets.
type statsStore struct{ st replay.MemoryStats }

func (s *statsStore) Stats() replay.MemoryStats { return s.st }

// TestFullWatchLogsLiveSendersForgotten: the watch looks at the store
// every fullCheckEvery admissions and logs once for each look that finds
// more live senders forgotten than the last, with how many more.
func TestFullWatchLogsLiveSendersForgotten(t *testing.T) {
	store := &statsStore{st: replay.MemoryStats{Senders: 4, MaxSenders: 4}}
	var logged []uint64
	w := &fullWatch{store: store, log: func(_ replay.MemoryStats, forgotten uint64) { logged = append(logged, forgotten) }}
	admit := func(n int) {
		for range n {
			w.admit()
		}
	}
	store.st.ForgottenExpired = 100 // harmless turnover: never logged
	admit(fullCheckEvery)
	store.st.ForgottenLive = 3
	admit(fullCheckEvery - 1)
	if len(logged) != 0 {
		t.Fatalf("logged %v before the look that finds live senders forgotten", logged)
	}
	admit(1)
	admit(fullCheckEvery) // nothing more forgotten
	store.st.ForgottenLive = 5
	admit(fullCheckEvery)
	if len(logged) != 2 || logged[0] != 3 || logged[1] != 2 {
		t.Fatalf("logged %v, want [3 2]", logged)
	}
}

// TestWatchFullOnlySizedStores: a store that does not tell how full it
// is gets no watch.
func TestWatchFullOnlySizedStores(t *testing.T) {
	n := &node{}
	if w := n.watchFull(struct{}{}); w != nil {
		t.Fatal("a watch for a store without Stats")
	}
	mem, err := replay.NewMemoryStore(0)
	if err != nil {
		t.Fatal(err)
	}
	if w := n.watchFull(mem); w == nil {
		t.Fatal("no watch for a MemoryStore")
	}
}
