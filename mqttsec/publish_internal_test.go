package mqttsec

import (
	"context"
	"sync/atomic"
	"testing"
	"time"
)

// startingTransport records how a Client published: handed over
// (startPublish) or through Publish.
type startingTransport struct {
	recordingTransport
	bound          time.Duration
	started, plain atomic.Int64
}

func (s *startingTransport) startPublish(Outbound) (<-chan struct{}, func() error, error) {
	s.started.Add(1)
	done := make(chan struct{})
	close(done)
	return done, func() error { return nil }, nil
}

func (s *startingTransport) handOverBound() time.Duration { return s.bound }

func (s *startingTransport) Publish(ctx context.Context, m Outbound) error {
	s.plain.Add(1)
	return s.recordingTransport.Publish(ctx, m)
}

// TestPublishHandsOverOnlyWithinTheDeadline: a Request hands its message
// over on its own goroutine only when the transport's longest hand-over
// fits in what is left of its deadline; otherwise it publishes on a
// goroutine of its own, so that a backed-up connection cannot keep it
// past its deadline.
func TestPublishHandsOverOnlyWithinTheDeadline(t *testing.T) {
	for _, tc := range []struct {
		name        string
		bound, left time.Duration
		handedOver  bool
	}{
		{"bound well within the deadline", time.Second, time.Minute, true},
		{"bound past the deadline", time.Minute, time.Second, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tr := &startingTransport{bound: tc.bound}
			c := &Client{node: &node{cfg: Config{Transport: tr}}}
			ctx, cancel := context.WithTimeout(context.Background(), tc.left)
			defer cancel()
			acked, outcome, err := c.publish(ctx, Outbound{Topic: "t"})
			if err != nil {
				t.Fatal(err)
			}
			select {
			case <-acked:
			case <-ctx.Done():
				t.Fatal("the publish did not end")
			}
			if err := outcome(); err != nil {
				t.Fatal(err)
			}
			started, plain := tr.started.Load(), tr.plain.Load()
			if (tc.handedOver && (started != 1 || plain != 0)) || (!tc.handedOver && (started != 0 || plain != 1)) {
				t.Fatalf("handed over %d, published %d; want handed over: %v", started, plain, tc.handedOver)
			}
		})
	}
}
