// Package testbroker runs an embedded MQTT broker
// (github.com/mochi-mqtt/server/v2) on a loopback port, for the demo and the
// tests: MQTT v3.1.1 and v5, optionally over TLS, restartable on the same
// address to exercise reconnects.
package testbroker

import (
	"crypto/tls"
	"fmt"
	"log/slog"
	"net"
	"sync/atomic"
	"time"

	mochi "github.com/mochi-mqtt/server/v2"
	"github.com/mochi-mqtt/server/v2/hooks/auth"
	"github.com/mochi-mqtt/server/v2/listeners"
	"github.com/mochi-mqtt/server/v2/packets"
)

// Broker is a running embedded broker.
type Broker struct {
	srv    *mochi.Server
	addr   string
	wsAddr string // mochi's own WebSocket listener, if started
	tls    *tls.Config
	hooks  []mochi.Hook
}

var ids atomic.Uint64

// Start runs a broker that accepts every client on addr ("127.0.0.1:0"
// picks a free port). With tlsConfig set, the listener speaks TLS with it
// (set ClientAuth there to require client certificates). Extra hooks (a
// hostile broker's, say) are added after the one that admits everyone. Every
// client may read and write every topic, unless an extra hook provides
// mochi.OnACLCheck: then the extra hooks decide (a subscription or publish
// is allowed when one of them allows it).
func Start(addr string, tlsConfig *tls.Config, hooks ...mochi.Hook) (*Broker, error) {
	return start(addr, tlsConfig, "", hooks)
}

// StartWithWebSocket is Start (without TLS) with mochi's own WebSocket
// listener too, on a free loopback port: WebSocketURL is its ws:// URL.
// Unlike WebSocketBridge, which carries a stream to a TCP listener, it is
// the broker itself reading MQTT from WebSocket messages.
func StartWithWebSocket(addr string, hooks ...mochi.Hook) (*Broker, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	// mochi's listener binds the address itself: pick a free port.
	wsAddr := l.Addr().String()
	l.Close()
	return start(addr, nil, wsAddr, hooks)
}

// start runs the broker, with mochi's WebSocket listener on wsAddr unless
// it is empty.
func start(addr string, tlsConfig *tls.Config, wsAddr string, hooks []mochi.Hook) (*Broker, error) {
	srv := mochi.New(&mochi.Options{
		InlineClient: true,
		Logger:       slog.New(slog.DiscardHandler),
	})
	admit := mochi.Hook(new(auth.AllowHook))
	for _, h := range hooks {
		if h.Provides(mochi.OnACLCheck) {
			admit = new(allowConnect)
		}
	}
	if err := srv.AddHook(admit, nil); err != nil {
		return nil, err
	}
	for _, h := range hooks {
		if err := srv.AddHook(h, nil); err != nil {
			return nil, err
		}
	}
	l := &listener{Listener: listeners.NewTCP(listeners.Config{
		ID:        fmt.Sprintf("tcp%d", ids.Add(1)),
		Address:   addr,
		TLSConfig: tlsConfig,
	}), srv: srv}
	if err := srv.AddListener(l); err != nil {
		return nil, err
	}
	if wsAddr != "" {
		ws := &listener{Listener: listeners.NewWebsocket(listeners.Config{
			ID:      fmt.Sprintf("ws%d", ids.Add(1)),
			Address: wsAddr,
		}), srv: srv}
		if err := srv.AddListener(ws); err != nil {
			return nil, err
		}
	}
	if err := srv.Serve(); err != nil {
		srv.Close()
		return nil, err
	}
	if wsAddr != "" {
		// mochi binds the WebSocket listener on a goroutine of its own.
		if err := awaitListening(wsAddr); err != nil {
			srv.Close()
			return nil, err
		}
	}
	return &Broker{srv: srv, addr: l.Address(), wsAddr: wsAddr, tls: tlsConfig, hooks: hooks}, nil
}

// awaitListening waits up to 5 s for something to accept connections on
// addr.
func awaitListening(addr string) error {
	deadline := time.Now().Add(5 * time.Second)
	for {
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err == nil {
			return c.Close()
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("testbroker: WebSocket listener on %s: %w", addr, err)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// allowConnect admits every client and leaves ACL checks to other hooks.
type allowConnect struct{ mochi.HookBase }

func (*allowConnect) ID() string { return "allow-connect" }

func (*allowConnect) Provides(b byte) bool { return b == mochi.OnConnectAuthenticate }

func (*allowConnect) OnConnectAuthenticate(*mochi.Client, packets.Packet) bool { return true }

// listener is mochi's TCP listener, except that closing it drops the
// clients without mochi's Clients.GetByListener: that takes the clients'
// read lock twice, and deadlocks the broker's Close when a client connects
// or leaves in between (mochi-mqtt/server#488, still in v2.7.9).
type listener struct {
	listeners.Listener
	srv *mochi.Server
}

// Close closes the listener and disconnects its clients.
func (l *listener) Close(listeners.CloseFn) {
	l.Listener.Close(func(id string) {
		for _, cl := range l.srv.Clients.GetAll() { // one read lock
			if cl.Net.Listener == id && !cl.Closed() {
				_ = l.srv.DisconnectClient(cl, packets.ErrServerShuttingDown)
			}
		}
	})
}

// Addr is the host:port the broker listens on.
func (b *Broker) Addr() string { return b.addr }

// URL is the broker's address as a URL: tcp:// or tls://.
func (b *Broker) URL() string {
	if b.tls != nil {
		return "tls://" + b.addr
	}
	return "tcp://" + b.addr
}

// WebSocketURL is the ws:// URL of the broker's own WebSocket listener
// (StartWithWebSocket), or "" when it has none.
func (b *Broker) WebSocketURL() string {
	if b.wsAddr == "" {
		return ""
	}
	return "ws://" + b.wsAddr
}

// Port is the listening port.
func (b *Broker) Port() string {
	_, port, _ := net.SplitHostPort(b.addr)
	return port
}

// ClientIDs returns the client ids of the sessions the broker holds:
// connected clients, and those whose session outlives their connection. A
// client that left with a session that ends with its connection (its
// subscriptions dropped) is no longer among them.
func (b *Broker) ClientIDs() []string {
	var ids []string
	for id := range b.srv.Clients.GetAll() {
		ids = append(ids, id)
	}
	return ids
}

// Publish injects a message as the broker itself (QoS 1), the way a hostile
// broker can put anything on any topic.
func (b *Broker) Publish(topic string, payload []byte) error {
	return b.srv.Publish(topic, payload, false, 1)
}

// Close stops the broker and drops every client.
func (b *Broker) Close() error { return b.srv.Close() }

// Restart stops the broker and starts a new one on the same address; every
// client is disconnected and must reconnect and re-subscribe.
func (b *Broker) Restart() error {
	b.srv.Close()
	nb, err := start(b.addr, b.tls, b.wsAddr, b.hooks)
	if err != nil {
		return err
	}
	*b = *nb
	return nil
}
