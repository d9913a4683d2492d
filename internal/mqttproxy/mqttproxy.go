// Package mqttproxy is a TCP proxy for tests that stands between MQTT
// clients and their broker and, on demand, misbehaves the way a hostile or
// failing broker does: it withholds the broker's PUBACKs (so a publisher
// waits for acknowledgements that never come), stalls every connection, or
// drops them all.
//
// It follows the broker→client stream packet by packet: the fixed header's
// packet type (the high nibble of its first byte) and remaining length (one
// to four bytes, seven bits each), framed alike in MQTT 3.1.1 and 5. The
// client→broker stream passes as plain bytes.
package mqttproxy

import (
	"context"
	"errors"
	"net"
	"os"
	"sync"
	"sync/atomic"
	"time"
)

// Proxy relays MQTT connections from a loopback port to one broker.
type Proxy struct {
	l        net.Listener
	upstream string
	cancel   context.CancelFunc // ends a dial to the broker in progress
	wg       sync.WaitGroup     // the accept loop and every pipe

	withhold atomic.Bool
	withheld atomic.Int64

	mu      sync.Mutex
	wake    *sync.Cond // on mu: broadcast when a stall ends, a link closes or the proxy closes
	links   map[*link]bool
	stalled bool
	closed  bool
}

// link is one relayed connection: the client's and the broker's side.
type link struct {
	client, broker net.Conn
	closed         bool // under Proxy.mu
}

// Start listens on a free loopback port and relays every connection it
// accepts to upstream (host:port).
func Start(upstream string) (*Proxy, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithCancel(context.Background())
	p := &Proxy{l: l, upstream: upstream, cancel: cancel, links: map[*link]bool{}}
	p.wake = sync.NewCond(&p.mu)
	p.wg.Go(func() { p.accept(ctx) })
	return p, nil
}

// Addr is the proxy's host:port.
func (p *Proxy) Addr() string { return p.l.Addr().String() }

// URL is the proxy's address as an MQTT broker URL: tcp://host:port.
func (p *Proxy) URL() string { return "tcp://" + p.Addr() }

// WithholdAcks turns withholding on or off: while on, every PUBACK from the
// broker is dropped instead of reaching its client; everything else
// passes. It applies to each PUBACK whose fixed header arrives while on.
func (p *Proxy) WithholdAcks(on bool) { p.withhold.Store(on) }

// Withheld is how many PUBACKs the proxy has dropped so far.
func (p *Proxy) Withheld() int64 { return p.withheld.Load() }

// Stall turns stalling on or off. While on, the proxy reads nothing from
// either side of any connection, new ones included, and writes nothing it
// had not already begun to write: the bytes wait unread, so TCP backs up as
// on a stalled connection. Turning it off resumes forwarding; nothing is
// lost.
func (p *Proxy) Stall(on bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.stalled = on
	// A read in progress ends at once with a past deadline (before it
	// takes any bytes); its pipe then waits in await. Only Stall sets
	// deadlines, so clearing them undoes nothing else.
	deadline := time.Time{}
	if on {
		deadline = time.Unix(1, 0)
	}
	for l := range p.links {
		l.client.SetReadDeadline(deadline)
		l.broker.SetReadDeadline(deadline)
	}
	p.wake.Broadcast()
}

// DropConnections closes every current connection, on both sides; the
// proxy goes on accepting new ones.
func (p *Proxy) DropConnections() {
	p.mu.Lock()
	defer p.mu.Unlock()
	for l := range p.links {
		p.closeLink(l)
	}
}

// Close stops the proxy: it closes the listener and every connection and
// returns once all of the proxy's goroutines have ended.
func (p *Proxy) Close() {
	p.l.Close()
	p.cancel()
	p.mu.Lock()
	p.closed = true
	for l := range p.links {
		p.closeLink(l)
	}
	p.wake.Broadcast()
	p.mu.Unlock()
	p.wg.Wait()
}

// closeLink closes both sides of l and forgets it; p.mu is held.
func (p *Proxy) closeLink(l *link) {
	if l.closed {
		return
	}
	l.closed = true
	l.client.Close()
	l.broker.Close()
	delete(p.links, l)
	p.wake.Broadcast()
}

// accept relays each connection to the listener until it closes.
func (p *Proxy) accept(ctx context.Context) {
	var d net.Dialer
	for {
		c, err := p.l.Accept()
		if err != nil {
			return // the listener is closed
		}
		up, err := d.DialContext(ctx, "tcp", p.upstream)
		if err != nil {
			c.Close()
			continue
		}
		l := &link{client: c, broker: up}
		p.mu.Lock()
		if p.closed {
			p.mu.Unlock()
			c.Close()
			up.Close()
			return
		}
		p.links[l] = true
		p.mu.Unlock()
		var f framer
		p.wg.Go(func() { p.pipe(l, l.client, l.broker, nil) })
		p.wg.Go(func() { p.pipe(l, l.broker, l.client, &f) })
	}
}

// pipe forwards src to dst until either fails, then closes the link. With
// f set, src is the broker, and f drops what WithholdAcks withholds.
func (p *Proxy) pipe(l *link, src, dst net.Conn, f *framer) {
	defer func() {
		p.mu.Lock()
		p.closeLink(l)
		p.mu.Unlock()
	}()
	buf := make([]byte, 32<<10)
	var out []byte
	for p.await(l) {
		n, err := src.Read(buf)
		data := buf[:n]
		var malformed error
		if f != nil {
			out, malformed = f.filter(out[:0], data, p.drop)
			data = out
		}
		if len(data) > 0 {
			if !p.await(l) {
				return
			}
			if _, werr := dst.Write(data); werr != nil {
				return
			}
		}
		if malformed != nil {
			return
		}
		if err != nil && !errors.Is(err, os.ErrDeadlineExceeded) {
			return // a deadline error is a stall starting: await it
		}
	}
}

// await blocks while the proxy is stalled; it reports false once l or the
// proxy is closed.
func (p *Proxy) await(l *link) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	for p.stalled && !l.closed && !p.closed {
		p.wake.Wait()
	}
	return !l.closed && !p.closed
}

// drop decides the fate of a packet from the broker: a PUBACK is dropped,
// and counted, while WithholdAcks is on.
func (p *Proxy) drop(packetType byte) bool {
	if packetType == puback && p.withhold.Load() {
		p.withheld.Add(1)
		return true
	}
	return false
}

const puback = 4 // MQTT control packet type

// errMalformed is a remaining length that runs past four bytes.
var errMalformed = errors.New("mqttproxy: remaining length longer than four bytes")

// framer follows an MQTT byte stream packet by packet, across reads split
// anywhere. The zero framer is at the start of a packet.
type framer struct {
	header [5]byte // the fixed header read so far: type byte, then length
	n      int     // bytes in header
	left   int     // bytes of the current packet's body still to come
	drop   bool    // the current packet is dropped
}

// filter appends to out the bytes of p that pass, and returns it. Each
// packet passes whole unless drop, called with its type once its fixed
// header is complete, returns true; then none of it passes. A fixed header
// is held back until complete. After errMalformed, the stream is beyond
// repair; out still has what passed before the bad header.
func (f *framer) filter(out, p []byte, drop func(packetType byte) bool) ([]byte, error) {
	for len(p) > 0 {
		if f.left > 0 { // in a body
			k := min(f.left, len(p))
			if !f.drop {
				out = append(out, p[:k]...)
			}
			f.left -= k
			p = p[k:]
			continue
		}
		b := p[0]
		p = p[1:]
		f.header[f.n] = b
		f.n++
		if f.n == 1 || b&0x80 != 0 { // the type byte, or more length to come
			if f.n == len(f.header) {
				return out, errMalformed
			}
			continue
		}
		length := 0
		for i := f.n - 1; i >= 1; i-- {
			length = length<<7 | int(f.header[i]&0x7f)
		}
		f.drop = drop(f.header[0] >> 4)
		if !f.drop {
			out = append(out, f.header[:f.n]...)
		}
		f.left, f.n = length, 0
	}
	return out, nil
}
