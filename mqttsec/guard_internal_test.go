package mqttsec

import (
	"bytes"
	"errors"
	"net"
	"runtime"
	"sync"
	"testing"

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
