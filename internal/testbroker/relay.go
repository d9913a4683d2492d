package testbroker

import (
	"io"
	"net"
	"sync"
	"sync/atomic"
)

// conns is the connections a relay or bridge has open: Close ends them all
// and waits for the goroutines that carry them.
type conns struct {
	wg   sync.WaitGroup
	mu   sync.Mutex
	open map[io.Closer]bool
	shut bool
}

// add registers cs to be closed by closeAll; once closeAll has run it
// closes them instead and returns false.
func (s *conns) add(cs ...io.Closer) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.shut {
		for _, c := range cs {
			c.Close()
		}
		return false
	}
	if s.open == nil {
		s.open = map[io.Closer]bool{}
	}
	for _, c := range cs {
		s.open[c] = true
	}
	return true
}

// drop closes c and forgets it.
func (s *conns) drop(c io.Closer) {
	s.mu.Lock()
	delete(s.open, c)
	s.mu.Unlock()
	c.Close()
}

// closeAll closes every connection, refuses new ones and waits for the
// goroutines started with s.wg.
func (s *conns) closeAll() {
	s.mu.Lock()
	s.shut = true
	for c := range s.open {
		c.Close()
	}
	s.mu.Unlock()
	s.wg.Wait()
}

// Relay passes TCP connections on to another address and counts them: a
// test puts one in front of a proxy, say, to see that connections went
// through it.
type Relay struct {
	l     net.Listener
	to    string
	count atomic.Int64
	conns conns
}

// NewRelay starts a relay on a free loopback port to to (host:port).
func NewRelay(to string) (*Relay, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	r := &Relay{l: l, to: to}
	r.conns.wg.Go(r.accept)
	return r, nil
}

// Addr is the relay's host:port.
func (r *Relay) Addr() string { return r.l.Addr().String() }

// Connections is how many connections the relay has accepted.
func (r *Relay) Connections() int64 { return r.count.Load() }

// Close stops the relay, ends its connections and waits for them.
func (r *Relay) Close() {
	r.l.Close()
	r.conns.closeAll()
}

func (r *Relay) accept() {
	for {
		c, err := r.l.Accept()
		if err != nil {
			return
		}
		r.count.Add(1)
		up, err := net.Dial("tcp", r.to)
		if err != nil {
			c.Close()
			continue
		}
		if !r.conns.add(c, up) {
			return
		}
		r.conns.wg.Go(func() { r.pipe(up, c) })
		r.conns.wg.Go(func() { r.pipe(c, up) })
	}
}

// pipe copies from src to dst until src ends, then closes both.
func (r *Relay) pipe(dst, src net.Conn) {
	_, _ = io.Copy(dst, src)
	r.conns.drop(dst)
	r.conns.drop(src)
}
