package poll

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/mqttsec/mqttsec/internal/testwait"
)

// TestReload: reload runs once per change of the stamp (not for the
// initial value), a failure is reported once per change, and cancelling
// the context ends the loop.
func TestReload(t *testing.T) {
	var mu sync.Mutex
	stamps := []string{"a", "a", "b", "b", "b", "c", "c"}
	var reloads, failures, successes int
	stamp := func() string {
		mu.Lock()
		defer mu.Unlock()
		s := stamps[0]
		if len(stamps) > 1 {
			stamps = stamps[1:]
		}
		return s
	}
	reload := func() error {
		mu.Lock()
		defer mu.Unlock()
		reloads++
		if reloads == 1 {
			return errors.New("bad file")
		}
		return nil
	}
	onError := func(error) { mu.Lock(); failures++; mu.Unlock() }
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	onReload := func() { mu.Lock(); successes++; mu.Unlock() }
	go func() { Reload(ctx, time.Millisecond, "a", stamp, reload, onReload, onError); close(done) }()
	testwait.Until(t, "every stamp read", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return len(stamps) == 1
	})
	cancel()
	<-done
	mu.Lock()
	defer mu.Unlock()
	if reloads != 2 || failures != 1 || successes != 1 {
		t.Fatalf("%d reloads, %d failures and %d successes reported, want 2 (a→b, b→c), 1 and 1", reloads, failures, successes)
	}
}
