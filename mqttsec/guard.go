package mqttsec

import (
	"context"
	"crypto/tls"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/eclipse/paho.golang/autopaho"
	mqtt "github.com/eclipse/paho.mqtt.golang"
	"golang.org/x/net/proxy"

	"github.com/mqttsec/mqttsec/internal/packetlimit"
)

// guard is what a node asks of the transports in this package before it
// starts them: a bound on the packets read from the broker, and where to
// report what happens on the transport's own goroutines.
type guard struct {
	// packetLimit bounds the packets read from the broker (see
	// internal/packetlimit); 0 means no bound.
	packetLimit int
	// dropped is told of each PUBLISH over packetLimit, whose payload was
	// dropped unread; Paho then delivers it with an empty payload.
	dropped func(topic string, size int)
	// renewFailed is told of subscriptions that could not be renewed
	// after a reconnect (a broker whose ACL now refuses a filter).
	renewFailed func(error)
	// unguarded is told, when the transport starts, that its connections
	// are dialled by Paho and so read without packetLimit.
	unguarded func()
	// refused is told why the guard failed a connection (a packet other
	// than PUBLISH over packetLimit, or a malformed one).
	refused func(error)
	// connection is told of the connection's life: up, lost, an attempt
	// that failed, subscriptions renewed.
	connection func(connectionEvent)
}

// connectionEvent is one change in a transport's connection.
type connectionEvent struct {
	kind connectionKind
	// err is why a connection was lost or an attempt failed (may be nil).
	err error
	// filters is how many subscriptions were renewed (connRenewed).
	filters int
}

type connectionKind int

const (
	connUp      connectionKind = iota + 1 // connected, or connected again
	connLost                              // an established connection ended
	connFailed                            // an attempt to connect failed
	connRenewed                           // every subscription was renewed after connecting again
)

// tell reports ev to the node, if it listens.
func (g guard) tell(ev connectionEvent) {
	if g.connection != nil {
		g.connection(ev)
	}
}

// guarded is a Transport that takes a guard.
type guarded interface {
	setGuard(g guard)
}

// packetMargin is what a packet may carry beside an envelope of MaxSize:
// its topic, packet id and properties.
const packetMargin = 64 << 10

// packetWriter gives paho.golang the connection it needs to write packets
// from several goroutines: a sync.Locker, which paho holds while it writes
// one packet as several buffers (every packet it sends goes through
// packets.ControlPacket.WriteTo, which does so). Between Lock and Unlock the
// buffers are gathered and then written at once to the connection
// underneath (one writev on TCP, as without a wrapper in between). A failed
// write closes the connection, so that paho's reader fails and the
// connection is made again; it also fails every later write.
type packetWriter struct {
	net.Conn          // reads, deadlines and Close go through the limit
	to       net.Conn // where writes go

	mu       sync.Mutex
	locked   atomic.Bool
	pending  net.Buffers // guarded by mu
	flushing net.Buffers // guarded by mu: pending, as WriteTo consumes it
	err      error       // guarded by mu
}

func (w *packetWriter) Lock() {
	w.mu.Lock()
	w.locked.Store(true)
}

func (w *packetWriter) Unlock() {
	if len(w.pending) > 0 && w.err == nil {
		// WriteTo consumes the slice it is given: give it a copy of the
		// header, so that pending keeps its array for the next packet.
		w.flushing = w.pending
		if _, err := w.flushing.WriteTo(w.to); err != nil {
			w.err = err
			w.to.Close()
		}
	}
	clear(w.pending)
	w.pending = w.pending[:0]
	w.locked.Store(false)
	w.mu.Unlock()
}

// Write gathers b for Unlock. Called without the lock held (paho does not),
// it takes the lock and writes b at once.
func (w *packetWriter) Write(b []byte) (int, error) {
	if !w.locked.Load() {
		w.Lock()
		defer w.Unlock()
	}
	if w.err != nil {
		return 0, w.err
	}
	// Paho keeps b unchanged until its write returns, after Unlock.
	w.pending = append(w.pending, b)
	return len(b), nil
}

// Schemes the transports dial themselves, in order to bound what they
// read; others are left to Paho, unbounded.
var (
	tcpSchemes = []string{"mqtt", "tcp", ""}
	tlsSchemes = []string{"ssl", "tls", "mqtts", "mqtt+ssl", "tcps"}
	wsSchemes  = []string{"ws", "wss"}
)

// dialable reports whether every URL can be dialled here: a TCP or TLS
// scheme (directly or through a SOCKS proxy, as Paho would), a Unix
// socket, or, when webSockets is set, a WebSocket scheme.
func dialable(urls []*url.URL, webSockets bool) bool {
	for _, u := range urls {
		switch s := strings.ToLower(u.Scheme); {
		case slices.Contains(tcpSchemes, s), slices.Contains(tlsSchemes, s), s == "unix":
		case slices.Contains(wsSchemes, s):
			if !webSockets {
				return false
			}
		default:
			return false
		}
	}
	return true
}

// dials reports whether the transport should dial urls itself to bound
// what it reads; when it cannot, it tells g.unguarded.
func (g guard) dials(urls []*url.URL, webSockets bool) bool {
	if dialable(urls, webSockets) {
		return true
	}
	if g.unguarded != nil {
		g.unguarded()
	}
	return false
}

// brokerDialer dials broker URLs the way the Paho transports do.
type brokerDialer struct {
	net *net.Dialer
	tls *tls.Config
	// For WebSocket URLs: the handshake's timeout (0: Paho's default), the
	// HTTP request headers (given the URL and the TLS configuration used,
	// nil for ws://; header may be nil) and paho.mqtt.golang's options.
	timeout   time.Duration
	header    func(*url.URL, *tls.Config) http.Header
	webSocket *mqtt.WebsocketOptions
}

// dial dials u: TCP, TLS with d.tls for the TLS schemes, a Unix socket
// (unix://path, or unix:///absolute/path), or a WebSocket (over TLS with
// d.tls for wss) with paho.mqtt.golang's NewWebsocket, which both
// transports' own dialers amount to. It gives up when ctx ends, and
// within d.net's Timeout and Deadline for the whole dial (a proxy's and a
// TLS handshake included), as net.Dialer and tls.Dialer do.
func (d brokerDialer) dial(ctx context.Context, u *url.URL) (net.Conn, error) {
	ctx, cancel := d.bound(ctx)
	defer cancel()
	scheme := strings.ToLower(u.Scheme)
	switch {
	case slices.Contains(tlsSchemes, scheme):
		return d.dialTLS(ctx, u.Host)
	case slices.Contains(wsSchemes, scheme):
		return d.dialWebSocket(ctx, u, scheme == "wss")
	case scheme == "unix":
		// As paho.mqtt.golang reads it: the host if there is one (a
		// relative path), else the path.
		path := u.Host
		if path == "" {
			path = u.Path
		}
		return d.net.DialContext(ctx, "unix", path)
	}
	return d.dialTCP(ctx, u.Host)
}

// dialTCP dials addr over TCP as both Paho clients do: through the SOCKS5
// proxy that all_proxy (or ALL_PROXY) names, unless no_proxy exempts the
// host, else directly. golang.org/x/net/proxy reads those variables, once
// per process, and dials directly when all_proxy is not a URL it can use.
func (d brokerDialer) dialTCP(ctx context.Context, addr string) (net.Conn, error) {
	p := proxy.FromEnvironmentUsing(d.net)
	if cd, ok := p.(proxy.ContextDialer); ok {
		return cd.DialContext(ctx, "tcp", addr)
	}
	// A proxy scheme registered without DialContext.
	return dialAbandoning(ctx, func() (net.Conn, error) { return p.Dial("tcp", addr) })
}

// dialTLS dials addr with dialTCP and runs a TLS handshake over it with
// d.tls, as tls.Dialer does: naming the host as the server when d.tls names
// none.
func (d brokerDialer) dialTLS(ctx context.Context, addr string) (net.Conn, error) {
	cfg := d.tls
	if cfg == nil {
		cfg = &tls.Config{}
	}
	if cfg.ServerName == "" {
		host, _, err := net.SplitHostPort(addr)
		if err != nil {
			host = addr
		}
		cfg = cfg.Clone()
		cfg.ServerName = host
	}
	c, err := d.dialTCP(ctx, addr)
	if err != nil {
		return nil, err
	}
	tc := tls.Client(c, cfg)
	if err := tc.HandshakeContext(ctx); err != nil {
		c.Close()
		return nil, err
	}
	return tc, nil
}

// bound returns ctx ending no later than d.net's Timeout from now and its
// Deadline, as net.Dialer and tls.Dialer bound a dial.
func (d brokerDialer) bound(ctx context.Context) (context.Context, context.CancelFunc) {
	deadline := d.net.Deadline
	if d.net.Timeout != 0 {
		if t := time.Now().Add(d.net.Timeout); deadline.IsZero() || t.Before(deadline) {
			deadline = t
		}
	}
	if deadline.IsZero() {
		return ctx, func() {}
	}
	return context.WithDeadline(ctx, deadline)
}

// dialAbandoning runs a dial that takes no context, and gives up when ctx
// ends first: the dial then ends by its own timeout, and a connection it
// made is closed.
func dialAbandoning(ctx context.Context, dial func() (net.Conn, error)) (net.Conn, error) {
	type dialled struct {
		c   net.Conn
		err error
	}
	done := make(chan dialled, 1)
	go func() {
		c, err := dial()
		done <- dialled{c, err}
	}()
	select {
	case r := <-done:
		return r.c, r.err
	case <-ctx.Done():
		go func() {
			if r := <-done; r.c != nil {
				r.c.Close()
			}
		}()
		return nil, ctx.Err()
	}
}

func (d brokerDialer) dialWebSocket(ctx context.Context, u *url.URL, secure bool) (net.Conn, error) {
	target := *u
	target.User = nil // the WebSocket dialer refuses URLs with user info
	var tlsCfg *tls.Config
	if secure {
		tlsCfg = d.tls
	}
	var header http.Header
	if d.header != nil {
		header = d.header(u, tlsCfg)
	}
	// NewWebsocket takes no context: it ends by its handshake timeout.
	return dialAbandoning(ctx, func() (net.Conn, error) {
		return mqtt.NewWebsocket(target.String(), tlsCfg, d.timeout, header, d.webSocket)
	})
}

// bounded returns a function that passes on what a dial returned, with
// the connection read through the guard's packet limit (and, for MQTT 5,
// written through a packetWriter).
func (g guard) bounded(v5 bool) func(net.Conn, error) (net.Conn, error) {
	return func(c net.Conn, err error) (net.Conn, error) {
		if err != nil {
			return nil, err
		}
		limited := packetlimit.Wrap(c, packetlimit.Options{Limit: g.packetLimit, V5: v5, Dropped: g.dropped, Refused: g.refused})
		if v5 {
			return &packetWriter{Conn: limited, to: c}, nil
		}
		return limited, nil
	}
}

// attemptConnection returns an autopaho AttemptConnection that bounds the
// connection it dials (or that the configuration's own, if set, dials), or
// nil to leave autopaho's dialing alone. WebSocket URLs are dialled here
// unless the configuration brings its own WebSocket dialer.
func (g guard) attemptConnection(cfg autopaho.ClientConfig) func(context.Context, autopaho.ClientConfig, *url.URL) (net.Conn, error) {
	dial := cfg.AttemptConnection
	ownWebSocketDialer := cfg.WebSocketCfg != nil && cfg.WebSocketCfg.Dialer != nil
	if g.packetLimit <= 0 || dial == nil && !g.dials(cfg.ServerUrls, !ownWebSocketDialer) {
		return dial
	}
	if dial == nil {
		dial = func(ctx context.Context, cfg autopaho.ClientConfig, u *url.URL) (net.Conn, error) {
			if cfg.ConnectTimeout > 0 {
				var cancel context.CancelFunc
				ctx, cancel = context.WithTimeout(ctx, cfg.ConnectTimeout)
				defer cancel()
			}
			d := brokerDialer{net: &net.Dialer{}, tls: cfg.TlsCfg, timeout: cfg.ConnectTimeout}
			if cfg.WebSocketCfg != nil {
				d.header = cfg.WebSocketCfg.Header
			}
			return d.dial(ctx, u)
		}
	}
	bound := g.bounded(true)
	return func(ctx context.Context, cfg autopaho.ClientConfig, u *url.URL) (net.Conn, error) {
		return bound(dial(ctx, cfg, u))
	}
}

// openConnection returns a paho.mqtt.golang OpenConnectionFunc that bounds
// the connection it dials (or that the options' own, if set, dials), or
// nil to leave Paho's dialing alone.
func (g guard) openConnection(o *mqtt.ClientOptions) mqtt.OpenConnectionFunc {
	dial := o.CustomOpenConnectionFn
	if g.packetLimit <= 0 || dial == nil && !g.dials(o.Servers, true) {
		return dial
	}
	if dial == nil {
		dial = func(u *url.URL, o mqtt.ClientOptions) (net.Conn, error) {
			d := o.Dialer
			if d == nil {
				d = &net.Dialer{Timeout: o.ConnectTimeout}
			}
			bd := brokerDialer{net: d, tls: o.TLSConfig, timeout: o.ConnectTimeout, webSocket: o.WebsocketOptions,
				header: func(*url.URL, *tls.Config) http.Header { return o.HTTPHeaders }}
			return bd.dial(context.Background(), u)
		}
	}
	bound := g.bounded(false)
	return func(u *url.URL, o mqtt.ClientOptions) (net.Conn, error) {
		return bound(dial(u, o))
	}
}
