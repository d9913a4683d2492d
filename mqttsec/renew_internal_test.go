package mqttsec

import (
	"errors"
	"slices"
	"sync"
	"testing"

	"github.com/mqttsec/mqttsec/internal/testwait"
)

// TestRenewDoesNotWaitOnARefusedFilter: a filter refused on every attempt
// is retried, while the filters after it are renewed in the first round.
func TestRenewDoesNotWaitOnARefusedFilter(t *testing.T) {
	var mu sync.Mutex
	var renewed []string
	attempts := map[string]int{}
	subscribe := func(f string) error {
		mu.Lock()
		defer mu.Unlock()
		attempts[f]++
		if f == "refused" {
			return ErrSubscribeRefused
		}
		renewed = append(renewed, f)
		return nil
	}
	var reports []error
	done := make(chan struct{})
	result := make(chan bool, 1)
	go func() {
		result <- renew([]string{"a", "refused", "b"}, done, subscribe, func(error) bool { return true },
			func(err error) { mu.Lock(); reports = append(reports, err); mu.Unlock() })
	}()
	testwait.Until(t, "the refused filter tried again", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return attempts["refused"] >= 2
	})
	close(done)
	if <-result {
		t.Fatal("renew reported every filter renewed")
	}
	mu.Lock()
	defer mu.Unlock()
	if !slices.Equal(renewed, []string{"a", "b"}) || attempts["a"] != 1 || attempts["b"] != 1 {
		t.Fatalf("renewed %v with attempts %v; want a and b once each", renewed, attempts)
	}
	if len(reports) != 1 || !errors.Is(reports[0], ErrSubscribeRefused) {
		t.Fatalf("reports %v; want one, for the first attempt", reports)
	}
}
