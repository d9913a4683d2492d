package envelope

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"
)

// TestClass: Class finds the one class an error wraps, however deep, and
// nothing in an error that wraps none.
func TestClass(t *testing.T) {
	all := []Error{ErrTooLarge, ErrMalformed, ErrUnsupportedVersion, ErrPolicy, ErrContext, ErrUnknownKey,
		ErrAuthentication, ErrReplayed, ErrReplayStore, ErrExpired, ErrDecryption, ErrInvalidParams}
	seen := map[string]bool{}
	for _, c := range all {
		if !strings.HasPrefix(string(c), "envelope: ") || seen[string(c)] {
			t.Errorf("class %q: not an \"envelope: \" text of its own", c)
		}
		seen[string(c)] = true
		for _, err := range []error{
			c,
			fmt.Errorf("wrapped: %w", c),
			fmt.Errorf("twice: %w", fmt.Errorf("once: %w", c)),
			errorf(c, "a reason"),
			errors.Join(errors.New("other"), c),
		} {
			if got := Class(err); got != c {
				t.Errorf("Class(%q) = %v, want %v", err, got, c)
			}
			if n := len(matchedClasses(err)); n != 1 {
				t.Errorf("%q wraps %d classes", err, n)
			}
		}
		if got := errorf(c, "why").Error(); got != string(c)+": why" {
			t.Errorf("errorf: %q", got)
		}
	}
	for _, err := range []error{nil, errors.New("envelope: malformed"), context.Canceled, ErrInvalidConfig,
		ErrKeySize, ErrKeyType, ErrCounterExhausted, fmt.Errorf("x: %w", ErrInvalidConfig)} {
		if got := Class(err); got != nil {
			t.Errorf("Class(%v) = %v, want nil", err, got)
		}
	}
	// A store's failure is ErrReplayStore and the store's own error, and
	// says both.
	cause := errors.New("disk full")
	err := replayError(cause)
	if Class(err) != ErrReplayStore || !errors.Is(err, cause) || errors.Is(err, ErrReplayed) ||
		err.Error() != string(ErrReplayStore)+": disk full" {
		t.Errorf("replayError(%v) = %q", cause, err)
	}
	for _, keep := range []error{ErrReplayed, fmt.Errorf("x: %w", ErrReplayed), context.Canceled, context.DeadlineExceeded} {
		if got := replayError(keep); got != keep {
			t.Errorf("replayError(%v) = %v, want it unchanged", keep, got)
		}
	}
}

// TestOpenErrorsCarryOneClass opens, concurrently, envelopes refused for
// every reason the attack tests use and checks each error wraps exactly
// one class: a caller that switches on errors.Is sees one answer.
func TestOpenErrorsCarryOneClass(t *testing.T) {
	w := newWorld(t)
	genuine := sealRequestWith(t, w, nil, []byte("x"))
	inputs := map[string]struct {
		data []byte
		want error
	}{
		"too large":   {make([]byte, DefaultMaxSize+1), ErrTooLarge},
		"malformed":   {[]byte("junk"), ErrMalformed},
		"version":     {append([]byte{2}, genuine.Bytes[1:]...), ErrUnsupportedVersion},
		"forged":      {editEnvelope(t, genuine.Bytes, func(p *splitParts) { p.mac[0] ^= 1 }), ErrAuthentication},
		"context":     {rewriteHeader(func(h *header) { h.to = []string{"other"} })(w, genuine.Bytes), ErrContext},
		"unknown key": {rewriteHeader(func(h *header) { h.from = "mallory" })(w, genuine.Bytes), ErrUnknownKey},
		"expired":     {rewriteHeader(func(h *header) { h.iat, h.exp = 1, 2 })(w, genuine.Bytes), ErrExpired},
	}
	o := w.opener()
	var wg sync.WaitGroup
	for name, in := range inputs {
		wg.Go(func() {
			for range 20 {
				_, err := o.Open(ctx, in.data, expectRequest)
				if got := matchedClasses(err); len(got) != 1 || got[0] != in.want {
					t.Errorf("%s: %v wraps %v, want %v", name, err, got, in.want)
					return
				}
			}
		})
	}
	wg.Wait()
}

func TestMemoryCounter(t *testing.T) {
	c := NewMemoryCounter(41)
	if n, _ := c.Next(); n != 42 {
		t.Fatalf("Next = %d", n)
	}
	c = NewMemoryCounter(^uint64(0) - 1)
	if n, err := c.Next(); n != ^uint64(0) || err != nil {
		t.Fatalf("Next = %d, %v", n, err)
	}
	if _, err := c.Next(); !errors.Is(err, ErrCounterExhausted) {
		t.Fatalf("Next past max = %v", err)
	}
	if _, err := c.Next(); !errors.Is(err, ErrCounterExhausted) {
		t.Fatalf("Next past max, again = %v", err)
	}
	c = NewMemoryCounter(0)
	var wg sync.WaitGroup
	var mu sync.Mutex
	seen := map[uint64]bool{}
	for range 8 {
		wg.Go(func() {
			for range 1000 {
				n, _ := c.Next()
				mu.Lock()
				if seen[n] {
					t.Errorf("counter %d handed out twice", n)
				}
				seen[n] = true
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	if len(seen) != 8000 || !seen[1] || !seen[8000] {
		t.Fatalf("%d counters, from 1: %v, to 8000: %v", len(seen), seen[1], seen[8000])
	}
}

func TestClockCounterStartsAboveEarlierRuns(t *testing.T) {
	before := uint64(time.Now().UnixNano())
	c := NewClockCounter()
	n, err := c.Next()
	if err != nil || n <= before {
		t.Fatalf("Next = %d, %v; want above %d", n, err, before)
	}
	if m, _ := c.Next(); m != n+1 {
		t.Fatalf("second Next = %d, want %d", m, n+1)
	}
}
