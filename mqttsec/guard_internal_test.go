package mqttsec

import (
	"bytes"
	"context"
	"errors"
	"net"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/eclipse/paho.golang/packets"
)

// recorder is a connection that records what is written to it, in order,
// one Write at a time; with fail set, every Write fails.
type recorder struct {
	net.Conn
	mu     sync.Mutex
	writes [][]byte
	fail   bool
	closed bool
}

func (r *recorder) Write(b []byte) (int, error) {
	// Let other writers run between two writes, as a socket write would.
	defer runtime.Gosched()
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.fail {
		return 0, errors.New("broken pipe")
	}
	r.writes = append(r.writes, bytes.Clone(b))
	return len(b), nil
}

func (r *recorder) Close() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.closed = true
	return nil
}

// paho.golang writes each packet as several buffers under the writer's
// lock; from many goroutines at once the packets reach the connection
// whole, one after another.
func TestPacketWriterKeepsPacketsWhole(t *testing.T) {
	to := &recorder{}
	w := &packetWriter{Conn: to, to: to}
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Go(func() {
			for range 100 {
				p := packets.NewControlPacket(packets.PUBLISH)
				p.Content.(*packets.Publish).Topic = "t"
				p.Content.(*packets.Publish).Payload = bytes.Repeat([]byte{byte('a' + g)}, 100)
				if _, err := p.WriteTo(w); err != nil {
					t.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
	// Each packet: fixed header (2), topic (3), properties (1), payload.
	const size = 2 + 3 + 1 + 100
	stream := bytes.Join(to.writes, nil)
	if len(stream) != 8*100*size {
		t.Fatalf("wrote %d bytes, want %d", len(stream), 8*100*size)
	}
	for i := 0; i < len(stream); i += size {
		payload := stream[i+size-100 : i+size]
		if bytes.Count(payload, payload[:1]) != 100 {
			t.Fatalf("packet at byte %d mixes writers: %q", i, payload)
		}
	}
}

// A write that fails closes the connection, so that the reader fails and
// paho connects again, and every later write fails.
func TestPacketWriterFailureClosesConnection(t *testing.T) {
	to := &recorder{fail: true}
	w := &packetWriter{Conn: to, to: to}
	w.Lock()
	if _, err := w.Write([]byte("packet")); err != nil {
		t.Fatalf("Write under the lock = %v; the error comes at Unlock", err)
	}
	w.Unlock()
	if !to.closed {
		t.Fatal("a failed write left the connection open")
	}
	to.fail = false
	if _, err := w.Write([]byte("later")); err == nil {
		t.Fatal("a write after a failed one succeeded")
	}
	if len(to.writes) != 0 {
		t.Fatalf("wrote %q after a failure", to.writes)
	}
}

// A Write outside Lock (paho does not make one) is written at once.
func TestPacketWriterWritesOutsideLockAtOnce(t *testing.T) {
	to := &recorder{}
	w := &packetWriter{Conn: to, to: to}
	if _, err := w.Write([]byte("now")); err != nil {
		t.Fatal(err)
	}
	if len(to.writes) != 1 || string(to.writes[0]) != "now" {
		t.Fatalf("wrote %q, want [now]", to.writes)
	}
}

// A dial is bounded as net.Dialer bounds one, by the earlier of its
// Timeout from now and its Deadline, so that a proxy's or a TLS handshake
// that never ends cannot hold a dial without a context of its own.
func TestBrokerDialerBound(t *testing.T) {
	now := time.Now()
	soon, later := now.Add(time.Minute), now.Add(time.Hour)
	for _, tc := range []struct {
		name     string
		dialer   net.Dialer
		parent   time.Time // zero: the parent context has no deadline
		want     time.Time // zero: no deadline
		atLeast  bool      // want is a lower bound (a Timeout counted from the call)
		atLatest time.Time
	}{
		{name: "neither"},
		{name: "parent only", parent: soon, want: soon},
		{name: "deadline", dialer: net.Dialer{Deadline: soon}, want: soon},
		{name: "deadline after parent", dialer: net.Dialer{Deadline: later}, parent: soon, want: soon},
		{name: "timeout", dialer: net.Dialer{Timeout: time.Hour}, want: later, atLeast: true, atLatest: time.Now().Add(time.Hour + time.Minute)},
		{name: "deadline before timeout", dialer: net.Dialer{Timeout: 2 * time.Hour, Deadline: later}, want: later},
		{name: "timeout before deadline", dialer: net.Dialer{Timeout: time.Minute, Deadline: later}, want: soon, atLeast: true, atLatest: later},
	} {
		t.Run(tc.name, func(t *testing.T) {
			parent := context.Background()
			if !tc.parent.IsZero() {
				var cancel context.CancelFunc
				parent, cancel = context.WithDeadline(parent, tc.parent)
				defer cancel()
			}
			ctx, cancel := brokerDialer{net: &tc.dialer}.bound(parent)
			got, ok := ctx.Deadline()
			switch {
			case tc.want.IsZero():
				if ok {
					t.Fatalf("deadline %v, want none", got)
				}
			case tc.atLeast:
				if !ok || got.Before(tc.want) || !got.Before(tc.atLatest) {
					t.Fatalf("deadline %v (%v), want in [%v, %v)", got, ok, tc.want, tc.atLatest)
				}
			default:
				if !ok || !got.Equal(tc.want) {
					t.Fatalf("deadline %v (%v), want %v", got, ok, tc.want)
				}
			}
			cancel()
			if bounded := tc.dialer.Timeout != 0 || !tc.dialer.Deadline.IsZero(); bounded && ctx.Err() == nil {
				t.Fatal("cancel did not end the context")
			}
		})
	}
}

// Stand-ins of messages refused unread are counted off exactly once each,
// however many transport goroutines deliver at once.
func TestTakeUnreadNeverBelowZero(t *testing.T) {
	var n node
	n.unread.Store(100)
	var taken atomic.Int64
	var wg sync.WaitGroup
	for range 64 {
		wg.Go(func() {
			for range 10 {
				if n.takeUnread() {
					taken.Add(1)
				}
			}
		})
	}
	wg.Wait()
	if got, left := taken.Load(), n.unread.Load(); got != 100 || left != 0 {
		t.Fatalf("took %d stand-ins, %d left; want 100 and 0", got, left)
	}
}
