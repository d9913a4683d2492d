package mqttsec_test

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"path/filepath"
	"runtime"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/eclipse/paho.golang/autopaho"
	"github.com/eclipse/paho.golang/paho"
	mqtt "github.com/eclipse/paho.mqtt.golang"
	"github.com/gorilla/websocket"

	"github.com/mqttsec/mqttsec/internal/testbroker"
	"github.com/mqttsec/mqttsec/internal/testwait"
	"github.com/mqttsec/mqttsec/mqttsec"
)

// fakeBroker is a hostile broker speaking just enough MQTT to one client:
// it accepts the connection and every subscription, then sends what the
// test asks, and reports the packet ids the client acknowledges.
type fakeBroker struct {
	l      net.Listener
	v5     bool
	conns  atomic.Int64 // connections accepted
	send   chan []byte  // raw bytes to send once the client has subscribed
	pubAck chan int     // packet ids of the client's PUBACKs
}

func newFakeBroker(t *testing.T, v5 bool) *fakeBroker {
	return newFakeBrokerOn(t, v5, "tcp", "127.0.0.1:0")
}

// newFakeBrokerOn is newFakeBroker listening on network and address.
func newFakeBrokerOn(t *testing.T, v5 bool, network, address string) *fakeBroker {
	l, err := net.Listen(network, address)
	if err != nil {
		t.Fatal(err)
	}
	b := &fakeBroker{l: l, v5: v5, send: make(chan []byte, 4), pubAck: make(chan int, 16)}
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			b.conns.Add(1)
			b.serve(c)
		}
	}()
	t.Cleanup(func() { l.Close(); <-done })
	return b
}

func (b *fakeBroker) url() string {
	if b.l.Addr().Network() == "unix" {
		return "unix://" + b.l.Addr().String()
	}
	return "tcp://" + b.l.Addr().String()
}

// readPacket reads one MQTT packet: its first byte and its body.
func readPacket(r *bufio.Reader) (byte, []byte, error) {
	first, err := r.ReadByte()
	if err != nil {
		return 0, nil, err
	}
	n := 0
	for i := 0; ; i++ {
		c, err := r.ReadByte()
		if err != nil {
			return 0, nil, err
		}
		n |= int(c&0x7f) << (7 * i)
		if c&0x80 == 0 {
			break
		}
	}
	body := make([]byte, n)
	_, err = io.ReadFull(r, body)
	return first, body, err
}

// serve answers one connection until the client leaves.
func (b *fakeBroker) serve(c net.Conn) {
	defer c.Close()
	r := bufio.NewReader(c)
	subscribed := make(chan struct{})
	stop := make(chan struct{})
	sent := make(chan struct{})
	defer func() { close(stop); <-sent }()
	go func() {
		defer close(sent)
		select {
		case <-stop:
			return
		case <-subscribed:
		}
		for {
			select {
			case <-stop:
				return
			case raw := <-b.send:
				if _, err := c.Write(raw); err != nil {
					return
				}
			}
		}
	}()
	for {
		first, body, err := readPacket(r)
		if err != nil {
			return
		}
		var out []byte
		switch first >> 4 {
		case 1: // CONNECT
			out = []byte{0x20, 0x02, 0x00, 0x00}
			if b.v5 {
				out = []byte{0x20, 0x03, 0x00, 0x00, 0x00}
			}
		case 8: // SUBSCRIBE: grant QoS 1
			out = []byte{0x90, 0x03, body[0], body[1], 0x01}
			if b.v5 {
				out = []byte{0x90, 0x04, body[0], body[1], 0x00, 0x01}
			}
		case 4: // PUBACK
			b.pubAck <- int(body[0])<<8 | int(body[1])
		case 12: // PINGREQ
			out = []byte{0xd0, 0x00}
		case 14: // DISCONNECT
			return
		}
		if len(out) > 0 {
			if _, err := c.Write(out); err != nil {
				return
			}
		}
		if first>>4 == 8 {
			select {
			case <-subscribed:
			default:
				close(subscribed) // send only after the SUBACK
			}
		}
	}
}

// publishPacket builds a QoS 1 PUBLISH with packet id id.
func publishPacket(v5 bool, topic string, id int, payload []byte) []byte {
	var body []byte
	body = append(body, byte(len(topic)>>8), byte(len(topic)))
	body = append(body, topic...)
	body = append(body, byte(id>>8), byte(id))
	if v5 {
		body = append(body, 0x00)
	}
	body = append(body, payload...)
	var n []byte
	for l := len(body); ; {
		d := byte(l & 0x7f)
		l >>= 7
		if l == 0 {
			n = append(n, d)
			break
		}
		n = append(n, d|0x80)
	}
	return append(append([]byte{0x32}, n...), body...)
}

// clientOver returns an unstarted Client "client" over tr, logging to the
// returned log; the test's cleanup closes it.
func clientOver(t *testing.T, tr mqttsec.Transport) (*mqttsec.Client, *testwait.Log) {
	t.Helper()
	k := getKeys()
	s := suites()[0]
	keys := mustT(mqttsec.NewKeyring(mqttsec.Own{}, peerOf(k, "gateway", k.gateway, s.require, s.send(k, k.client, k.gateway))))
	log := &testwait.Log{}
	c := mustT(mqttsec.NewClient(mqttsec.Config{ID: "client", Transport: tr, Keyring: keys, Logger: slog.New(slog.NewTextHandler(log, nil))}))
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := c.Close(ctx); err != nil {
			t.Errorf("client close: %v", err)
		}
	})
	return c, log
}

// A broker (or any client of a broker without a size limit) that sends a
// message far over MaxSize costs the receiver neither its memory nor its
// session: the payload is dropped as it streams in, unread; the message is
// acknowledged and counted as too-large; what follows arrives as usual.
func TestOversizeMessageDroppedUnread(t *testing.T) {
	const huge = 32 << 20
	for _, proto := range protocols {
		for _, dial := range []string{"transport's dialer", "caller's dialer", "websocket", "unix socket"} {
			t.Run(fmt.Sprintf("v%d/%s", proto, dial), func(t *testing.T) {
				testOversize(t, proto, dial, huge)
			})
		}
	}
}

// testOversize runs TestOversizeMessageDroppedUnread for one protocol, with
// the transport's own dialer, one the caller configured, over a WebSocket
// or over a Unix socket.
func testOversize(t *testing.T, proto int, dial string, huge int) {
	checkNoLeaks(t)
	network, address := "tcp", "127.0.0.1:0"
	if dial == "unix socket" {
		network, address = "unix", filepath.Join(t.TempDir(), "broker.sock")
	}
	b := newFakeBrokerOn(t, proto == 5, network, address)
	var tr mqttsec.Transport
	var dials atomic.Int64
	switch dial {
	case "caller's dialer":
		tr = dialingTransport(t, proto, b.url(), &dials)
	case "websocket":
		bridge := testbroker.NewWebSocketBridge(b.l.Addr().String(), nil)
		t.Cleanup(bridge.Close)
		tr = transport(t, proto, bridge.URL(), "client", nil)
	default:
		tr = transport(t, proto, b.url(), "client", nil)
	}
	c, _ := clientOver(t, tr)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := c.Start(ctx); err != nil {
		t.Fatal(err)
	}
	reply := mqttsec.Topics{}.Reply("client")
	oversize := publishPacket(proto == 5, reply, 1, bytes.Repeat([]byte{'A'}, huge))
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	b.send <- oversize
	b.send <- publishPacket(proto == 5, reply, 2, []byte("junk"))
	acked := map[int]bool{}
	for len(acked) < 2 {
		select {
		case id := <-b.pubAck:
			acked[id] = true
		case <-ctx.Done():
			t.Fatalf("PUBACKs for %v, want packets 1 and 2", acked)
		}
	}
	if !acked[1] || !acked[2] {
		t.Fatalf("PUBACKs for %v, want packets 1 and 2", acked)
	}
	runtime.ReadMemStats(&after)
	grew := after.TotalAlloc - before.TotalAlloc
	t.Logf("a %d-byte message cost %d bytes of allocation", huge, grew)
	if grew > uint64(huge/4) {
		t.Errorf("receiving a %d-byte message allocated %d bytes", huge, grew)
	}
	waitFor(t, "the junk counted", func() bool { return c.Stats()[mqttsec.StatMalformed] == 1 })
	if st := c.Stats(); st[mqttsec.StatTooLarge] != 1 || st[mqttsec.StatMalformed] != 1 {
		t.Fatalf("stats %v, want too-large 1 and malformed 1", st)
	}
	if dial == "caller's dialer" && dials.Load() == 0 {
		t.Fatal("the caller's dialer was not used")
	}
}

// dialingTransport is a transport whose configuration dials the broker with
// a function of its own, counting the dials.
func dialingTransport(t *testing.T, proto int, brokerURL string, dials *atomic.Int64) mqttsec.Transport {
	u, err := url.Parse(brokerURL)
	if err != nil {
		t.Fatal(err)
	}
	if proto == 3 {
		o := mqtt.NewClientOptions().AddBroker(brokerURL).SetClientID("client-own-dialer").
			SetCustomOpenConnectionFn(func(u *url.URL, _ mqtt.ClientOptions) (net.Conn, error) {
				dials.Add(1)
				return net.Dial("tcp", u.Host)
			})
		return mqttsec.NewPahoV3(o)
	}
	return mqttsec.NewPahoV5(autopaho.ClientConfig{
		ServerUrls: []*url.URL{u},
		KeepAlive:  20,
		AttemptConnection: func(ctx context.Context, _ autopaho.ClientConfig, u *url.URL) (net.Conn, error) {
			dials.Add(1)
			var d net.Dialer
			return d.DialContext(ctx, "tcp", u.Host)
		},
		ClientConfig: paho.ClientConfig{ClientID: "client-own-dialer"},
	})
}

// On a real broker that takes large messages (Mosquitto's default is
// MQTT's 256 MiB), any of its clients can send a gateway a message far over
// MaxSize: the gateway's transport refuses it unread, it is counted as
// too-large (once: its empty stand-in is not counted as malformed), and
// service goes on.
func TestOversizeMessageFromAnotherClient(t *testing.T) {
	forEach(t, func(t *testing.T, b *broker, proto int) {
		for _, via := range []string{"tcp", "websocket"} {
			t.Run(via, func(t *testing.T) { testOversizeFromAnotherClient(t, b, proto, via) })
		}
	})
}

// testOversizeFromAnotherClient runs TestOversizeMessageFromAnotherClient
// with the pair connected to the broker over TCP or over a WebSocket.
func testOversizeFromAnotherClient(t *testing.T, b *broker, proto int, via string) {
	checkNoLeaks(t)
	reach := b
	if via == "websocket" {
		u, err := url.Parse(b.url)
		if err != nil {
			t.Fatal(err)
		}
		bridge := testbroker.NewWebSocketBridge(u.Host, nil)
		t.Cleanup(bridge.Close)
		reach = &broker{url: bridge.URL()}
	}
	log := &testwait.Log{}
	p := newPair(t, reach, pairOptions{proto: proto, configure: func(c *mqttsec.ServerConfig) {
		c.Logger = slog.New(slog.NewTextHandler(log, nil))
	}})
	eve := newAttacker(t, b)
	eve.publish(t, mqttsec.Topics{}.Request("gateway", "echo"), bytes.Repeat([]byte{'A'}, 16<<20))
	waitFor(t, "the message counted as too large", func() bool { return p.server.Stats()[mqttsec.StatTooLarge] == 1 })
	// The count comes just before the log line: wait for the line, which
	// only the guard writes (Open would count the message too).
	waitFor(t, "the log to say the message was refused unread", func() bool {
		return strings.Contains(log.String(), `msg="mqttsec: message refused unread"`)
	})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if out, err := p.client.Request(ctx, "gateway", "echo", []byte("after")); err != nil || string(out) != "client echo after" {
		t.Fatalf("Request after the oversize message = %q, %v", out, err)
	}
	if n := p.server.Stats()[mqttsec.StatMalformed]; n != 0 {
		t.Fatalf("the oversize message also counted as malformed (%d)", n)
	}
}

// A WebSocket URL is dialled by the transport (to read it through the
// guard) the way Paho would: with the headers the configuration gives,
// autopaho's WebSocketCfg.Header and paho.mqtt.golang's HTTPHeaders.
func TestWebSocketDialSendsConfiguredHeaders(t *testing.T) {
	for _, proto := range protocols {
		t.Run(fmt.Sprintf("v%d", proto), func(t *testing.T) {
			checkNoLeaks(t)
			b := embeddedBroker(t)
			u, err := url.Parse(b.url)
			if err != nil {
				t.Fatal(err)
			}
			bridge := testbroker.NewWebSocketBridge(u.Host, nil)
			t.Cleanup(bridge.Close)
			wsURL, err := url.Parse(bridge.URL())
			if err != nil {
				t.Fatal(err)
			}
			want := fmt.Sprintf("v%d-token", proto)
			var tr mqttsec.Transport
			if proto == 3 {
				o := mqtt.NewClientOptions().AddBroker(bridge.URL()).SetClientID("client-headers").
					SetHTTPHeaders(http.Header{"X-Mqttsec-Test": {want}})
				tr = mqttsec.NewPahoV3(o)
			} else {
				tr = mqttsec.NewPahoV5(autopaho.ClientConfig{
					ServerUrls: []*url.URL{wsURL},
					KeepAlive:  20,
					WebSocketCfg: &autopaho.WebSocketConfig{Header: func(*url.URL, *tls.Config) http.Header {
						return http.Header{"X-Mqttsec-Test": {want}}
					}},
					ClientConfig: paho.ClientConfig{ClientID: "client-headers"},
				})
			}
			c, log := clientOver(t, tr)
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			if err := c.Start(ctx); err != nil {
				t.Fatal(err)
			}
			hs := bridge.Headers()
			if len(hs) == 0 || hs[0].Get("X-Mqttsec-Test") != want {
				t.Fatalf("handshake headers %v, want X-Mqttsec-Test: %s", hs, want)
			}
			if strings.Contains(log.String(), "without the size guard") {
				t.Fatalf("the WebSocket connection was left unguarded; log:\n%s", log)
			}
		})
	}
}

// Connections Paho dials itself (here: WebSockets with an MQTT 5
// configuration's own WebSocket dialer) are read without the size guard,
// and Start says so in the log; TCP, WebSocket and Unix-socket URLs are
// guarded silently.
func TestUnguardedConnectionsAreLogged(t *testing.T) {
	for _, proto := range protocols {
		for _, tc := range []struct {
			scheme string
			custom bool // an autopaho WebSocketCfg.Dialer
			warned bool
		}{{"tcp", false, false}, {"ws", false, false}, {"unix", false, false}, {"ws", true, true}} {
			if tc.custom && proto != 5 {
				continue
			}
			t.Run(fmt.Sprintf("v%d/%s/own-websocket-dialer=%v", proto, tc.scheme, tc.custom), func(t *testing.T) {
				checkNoLeaks(t)
				l, err := net.Listen("tcp", "127.0.0.1:0")
				if err != nil {
					t.Fatal(err)
				}
				addr := l.Addr().String()
				l.Close() // nothing listens: Start gives up at its deadline
				tr := transport(t, proto, tc.scheme+"://"+addr, "client", nil)
				if tc.custom {
					u, _ := url.Parse(tc.scheme + "://" + addr)
					tr = mqttsec.NewPahoV5(autopaho.ClientConfig{
						ServerUrls: []*url.URL{u},
						WebSocketCfg: &autopaho.WebSocketConfig{Dialer: func(*url.URL, *tls.Config) *websocket.Dialer {
							return &websocket.Dialer{Subprotocols: []string{"mqtt"}}
						}},
						ClientConfig: paho.ClientConfig{ClientID: "client"},
					})
				}
				c, log := clientOver(t, tr)
				ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
				defer cancel()
				if err := c.Start(ctx); err == nil {
					t.Fatal("Start connected to nothing")
				}
				if got := strings.Contains(log.String(), "without the size guard"); got != tc.warned {
					t.Fatalf("warned %v, want %v; log:\n%s", got, tc.warned, log)
				}
			})
		}
	}
}

// An oversize packet of another kind than PUBLISH (which no honest broker
// sends) ends the connection, and the log says why; the client connects
// again.
func TestOversizeOtherPacketEndsConnection(t *testing.T) {
	for _, proto := range protocols {
		t.Run(fmt.Sprintf("v%d", proto), func(t *testing.T) {
			checkNoLeaks(t)
			b := newFakeBroker(t, proto == 5)
			c, log := clientOver(t, transport(t, proto, b.url(), "client", nil))
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			if err := c.Start(ctx); err != nil {
				t.Fatal(err)
			}
			b.send <- []byte{0x90, 0x80, 0x80, 0x40} // a SUBACK announcing 1 MiB
			waitFor(t, "the dropped connection logged", func() bool {
				l := log.String()
				return strings.Contains(l, `level=ERROR msg="mqttsec: connection to the broker dropped"`) && strings.Contains(l, "over the size limit")
			})
			waitFor(t, "the client connected again", func() bool { return b.conns.Load() >= 2 })
		})
	}
}
