package mqttproxy

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/eclipse/paho.golang/autopaho"
	"github.com/eclipse/paho.golang/paho"
	mqtt "github.com/eclipse/paho.mqtt.golang"
	mochi "github.com/mochi-mqtt/server/v2"
	"github.com/mochi-mqtt/server/v2/packets"

	"github.com/mqttsec/mqttsec/internal/testbroker"
	"github.com/mqttsec/mqttsec/internal/testwait"
)

// ---- The framing, on crafted byte streams ----

// Packets as a broker sends them.
var (
	connack  = []byte{0x20, 0x02, 0x00, 0x00}
	puback3  = []byte{0x40, 0x02, 0x00, 0x01}             // MQTT 3.1.1: packet id
	puback5  = []byte{0x40, 0x04, 0x00, 0x02, 0x10, 0x00} // MQTT 5: packet id, reason code, no properties
	suback   = []byte{0x90, 0x03, 0x00, 0x03, 0x01}
	pingresp = []byte{0xd0, 0x00}
	// malformed is a PUBLISH whose remaining length runs to five bytes.
	malformed = []byte{0x30, 0xff, 0xff, 0xff, 0xff, 0x01, 0x00, 0x00}
)

// publish is a QoS 0 PUBLISH on topic "t" with remaining length n (at
// least 3). Its payload counts bytes up, so it holds 0x40 (a PUBACK's first
// byte) and bytes with the continuation bit: only a framer that skips
// bodies by their length gets past it.
func publish(n int) []byte {
	b := appendLength([]byte{0x30}, n)
	body := make([]byte, n)
	for i := range body {
		body[i] = byte(i)
	}
	copy(body, []byte{0x00, 0x01, 't'})
	return append(b, body...)
}

// appendLength appends n as an MQTT remaining length.
func appendLength(b []byte, n int) []byte {
	for {
		d := byte(n % 128)
		n /= 128
		if n > 0 {
			d |= 0x80
		}
		b = append(b, d)
		if n == 0 {
			return b
		}
	}
}

func cat(parts ...[]byte) []byte { return bytes.Join(parts, nil) }

// framed is what a framer made of a stream.
type framed struct {
	out   []byte // what passed
	types []byte // the type of every packet whose fixed header completed
	err   error  // the first error; nothing was fed after it
}

// frame feeds pieces, in order, to a fresh framer that drops PUBACKs when
// withhold is set.
func frame(pieces [][]byte, withhold bool) framed {
	var f framer
	var r framed
	drop := func(t byte) bool {
		r.types = append(r.types, t)
		return withhold && t == puback
	}
	for _, p := range pieces {
		if r.out, r.err = f.filter(r.out, p, drop); r.err != nil {
			break
		}
	}
	return r
}

// splits returns the ways the tests cut a stream into reads: whole, in two
// at every byte boundary, and a byte at a time.
func splits(s []byte) map[string][][]byte {
	m := map[string][][]byte{"whole": {s}}
	for i := 1; i < len(s); i++ {
		m[fmt.Sprintf("split at %d", i)] = [][]byte{s[:i], s[i:]}
	}
	var bytewise [][]byte
	for i := range s {
		bytewise = append(bytewise, s[i:i+1])
	}
	m["byte by byte"] = bytewise
	return m
}

func TestFramerDropsPubacksSplitAnywhere(t *testing.T) {
	pub := publish(200) // a two-byte remaining length
	stream := cat(connack, puback3, pub, puback5, pingresp, suback, publish(3))
	withheld := cat(connack, pub, pingresp, suback, publish(3))
	types := []byte{2, 4, 3, 4, 13, 9, 3}
	for name, pieces := range splits(stream) {
		r := frame(pieces, true)
		if r.err != nil || !bytes.Equal(r.out, withheld) || !bytes.Equal(r.types, types) {
			t.Fatalf("%s, withholding: err %v, types %v (want %v), passed % x\nwant % x", name, r.err, r.types, types, r.out, withheld)
		}
		r = frame(pieces, false)
		if r.err != nil || !bytes.Equal(r.out, stream) {
			t.Fatalf("%s, passing: err %v, passed % x\nwant % x", name, r.err, r.out, stream)
		}
	}
}

func TestFramerFourByteLength(t *testing.T) {
	big := publish(1 << 21) // remaining length 80 80 80 01
	if !bytes.Equal(big[1:5], []byte{0x80, 0x80, 0x80, 0x01}) {
		t.Fatalf("length bytes % x", big[1:5])
	}
	stream := cat(big, puback3, pingresp)
	pieces := [][]byte{stream[:3]} // a read that ends inside the length
	for rest := stream[3:]; len(rest) > 0; {
		n := min(len(rest), 64<<10)
		pieces, rest = append(pieces, rest[:n]), rest[n:]
	}
	r := frame(pieces, true)
	if want := cat(big, pingresp); r.err != nil || !bytes.Equal(r.out, want) || !bytes.Equal(r.types, []byte{3, 4, 13}) {
		t.Fatalf("err %v, types %v, passed %d bytes (want %d)", r.err, r.types, len(r.out), len(want))
	}

	// The largest length MQTT allows is four bytes still.
	maxHeader := []byte{0x30, 0xff, 0xff, 0xff, 0x7f}
	if r := frame([][]byte{maxHeader}, true); r.err != nil || !bytes.Equal(r.out, maxHeader) {
		t.Fatalf("header of a 256 MiB publish: err %v, passed % x", r.err, r.out)
	}
}

func TestFramerMalformedLength(t *testing.T) {
	pub := publish(10)
	stream := cat(puback3, pub, malformed, pingresp)
	for name, pieces := range splits(stream) {
		r := frame(pieces, true)
		if !errors.Is(r.err, errMalformed) {
			t.Fatalf("%s: err %v, want errMalformed", name, r.err)
		}
		// What came before the bad header passed; none of it did.
		if !bytes.Equal(r.out, pub) || !bytes.Equal(r.types, []byte{4, 3}) {
			t.Fatalf("%s: types %v, passed % x\nwant % x", name, r.types, r.out, pub)
		}
	}
}

// ---- The proxy, on crafted byte streams ----

// fakeBroker is a listener standing in for the broker, to craft its bytes.
func fakeBroker(t *testing.T) *net.TCPListener {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	return l.(*net.TCPListener)
}

func startProxy(t *testing.T, upstream string) *Proxy {
	t.Helper()
	p, err := Start(upstream)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(p.Close)
	return p
}

// connect opens a connection through p and returns its client side and
// the fake broker's side.
func connect(t *testing.T, p *Proxy, broker *net.TCPListener) (client, upstream net.Conn) {
	t.Helper()
	client, err := net.Dial("tcp", p.Addr())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { client.Close() })
	broker.SetDeadline(time.Now().Add(10 * time.Second))
	upstream, err = broker.Accept()
	if err != nil {
		t.Fatalf("the proxy did not connect to the broker: %v", err)
	}
	t.Cleanup(func() { upstream.Close() })
	return client, upstream
}

func write(t *testing.T, c net.Conn, b []byte) {
	t.Helper()
	if _, err := c.Write(b); err != nil {
		t.Fatal(err)
	}
}

// readFull reads n bytes from c, failing t if they take over 10 s.
func readFull(t *testing.T, c net.Conn, n int) []byte {
	t.Helper()
	c.SetReadDeadline(time.Now().Add(10 * time.Second))
	defer c.SetReadDeadline(time.Time{})
	b := make([]byte, n)
	for got := 0; got < n; {
		k, err := c.Read(b[got:])
		if err != nil {
			t.Fatalf("read %d of %d bytes: %v", got, n, err)
		}
		got += k
	}
	return b
}

// closedByProxy fails t unless c's next read finds the connection closed
// (within 10 s), with no bytes first.
func closedByProxy(t *testing.T, c net.Conn, side string) {
	t.Helper()
	c.SetReadDeadline(time.Now().Add(10 * time.Second))
	n, err := c.Read(make([]byte, 1))
	if n != 0 || err == nil || errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("%s side: read %d bytes, %v; want the connection closed", side, n, err)
	}
}

func TestProxyFramesTheBrokerStream(t *testing.T) {
	broker := fakeBroker(t)
	p := startProxy(t, broker.Addr().String())
	p.WithholdAcks(true)
	client, up := connect(t, p, broker)

	pub := publish(300)
	write(t, up, connack)
	for _, b := range puback3 { // a PUBACK in four writes
		write(t, up, []byte{b})
	}
	write(t, up, pub[:2]) // a PUBLISH split inside its length
	write(t, up, pub[2:])
	write(t, up, puback5)
	write(t, up, pingresp)
	want := cat(connack, pub, pingresp)
	if got := readFull(t, client, len(want)); !bytes.Equal(got, want) {
		t.Fatalf("client got % x\nwant % x", got, want)
	}
	if n := p.Withheld(); n != 2 {
		t.Fatalf("Withheld %d, want 2", n)
	}

	p.WithholdAcks(false)
	write(t, up, puback3)
	if got := readFull(t, client, len(puback3)); !bytes.Equal(got, puback3) {
		t.Fatalf("with acks passed, client got % x, want the PUBACK", got)
	}

	// The client's stream passes as bytes, PUBACKs and all.
	p.WithholdAcks(true)
	fromClient := cat(puback3, []byte("anything at all"), puback5)
	write(t, client, fromClient)
	if got := readFull(t, up, len(fromClient)); !bytes.Equal(got, fromClient) {
		t.Fatalf("broker got % x\nwant % x", got, fromClient)
	}
	if n := p.Withheld(); n != 2 {
		t.Fatalf("Withheld %d after the client's PUBACKs, want 2", n)
	}

	// A five-byte remaining length ends the connection, on both sides,
	// after what came before it.
	write(t, up, cat(pingresp, malformed))
	if got := readFull(t, client, len(pingresp)); !bytes.Equal(got, pingresp) {
		t.Fatalf("client got % x, want the PINGRESP", got)
	}
	closedByProxy(t, client, "client")
	closedByProxy(t, up, "broker")

	// The proxy goes on relaying new connections.
	client2, up2 := connect(t, p, broker)
	write(t, up2, pingresp)
	if got := readFull(t, client2, len(pingresp)); !bytes.Equal(got, pingresp) {
		t.Fatalf("new connection: client got % x", got)
	}
}

// buffer is a bytes.Buffer for one writing goroutine and a reading test.
type buffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (b *buffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

func (b *buffer) Len() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Len()
}

func (b *buffer) Bytes() []byte {
	b.mu.Lock()
	defer b.mu.Unlock()
	return bytes.Clone(b.b.Bytes())
}

// TestStallBacksUpTCP shows, without timing, that a stalled proxy takes
// nothing: the far side reads all the while, yet the writer's socket fills
// until a write blocks, and not one byte has reached the reader; un-stalled,
// every byte arrives, in order.
func TestStallBacksUpTCP(t *testing.T) {
	broker := fakeBroker(t)
	p := startProxy(t, broker.Addr().String())
	client, up := connect(t, p, broker)
	chunk := bytes.Repeat(publish(1000), 16) // MQTT, for the broker's side
	t.Run("broker to client", func(t *testing.T) { backsUp(t, p, up, client, chunk) })
	t.Run("client to broker", func(t *testing.T) { backsUp(t, p, client, up, chunk) })
}

// backsUp stalls p and writes chunks to w until a write blocks, while
// reading r; then it un-stalls p and checks that r gets all that was
// written, and got nothing before.
func backsUp(t *testing.T, p *Proxy, w, r net.Conn, chunk []byte) {
	var got buffer
	readDone := make(chan struct{})
	go func() {
		defer close(readDone)
		b := make([]byte, 64<<10)
		for {
			n, err := r.Read(b)
			got.Write(b[:n])
			if err != nil {
				return
			}
		}
	}()
	defer func() { // stop the reader
		r.SetReadDeadline(time.Unix(1, 0))
		<-readDone
		r.SetReadDeadline(time.Time{})
	}()

	p.Stall(true)
	var sent bytes.Buffer
	var rest []byte
	for rest == nil {
		w.SetWriteDeadline(time.Now().Add(50 * time.Millisecond))
		n, err := w.Write(chunk)
		sent.Write(chunk[:n])
		switch {
		case errors.Is(err, os.ErrDeadlineExceeded):
			rest = chunk[n:] // the sockets are full: the proxy takes nothing
		case err != nil:
			t.Fatal(err)
		case sent.Len() > 256<<20:
			t.Fatalf("%d bytes went into a stalled proxy and it did not back up", sent.Len())
		}
	}
	w.SetWriteDeadline(time.Time{})
	if n := got.Len(); n != 0 {
		t.Fatalf("%d bytes forwarded while stalled", n)
	}
	t.Logf("%d bytes backed up", sent.Len())

	p.Stall(false)
	write(t, w, rest)
	sent.Write(rest)
	testwait.Until(t, "every byte after the stall", func() bool { return got.Len() >= sent.Len() })
	if !bytes.Equal(got.Bytes(), sent.Bytes()) {
		t.Fatalf("got %d bytes, not the %d sent", got.Len(), sent.Len())
	}
}

// ---- The proxy in front of the embedded broker, with Paho clients ----

var protocols = []int{3, 5}

// client is a Paho client of MQTT 3.1.1 or 5 that connects to one URL,
// reconnects when its connection drops, and routes what it receives by
// topic.
type client interface {
	// subscribe subscribes to topic at QoS 1; its payloads come on the
	// channel.
	subscribe(t *testing.T, topic string) <-chan string
	// publish sends payload to topic at QoS qos without waiting for it.
	publish(topic string, qos byte, payload string) pending
	// connects is how many connections the client has made.
	connects() int64
	// close disconnects and stops reconnecting; it may be called again.
	close()
}

// pending is a publish in flight: it waits up to d for the publish to
// complete (QoS 0: written to the connection; QoS 1: acknowledged by a
// PUBACK) and says whether it did, with what error.
type pending func(d time.Duration) (done bool, err error)

// awaiting is the pending of a publish that closes done when it completes,
// with the error err returns.
func awaiting(done <-chan struct{}, err func() error) pending {
	return func(d time.Duration) (bool, error) {
		select {
		case <-done: // done already, even with d zero
			return true, err()
		default:
		}
		select {
		case <-done:
			return true, err()
		case <-time.After(d):
			return false, nil
		}
	}
}

// newClient connects a client of protocol proto (3 or 5) to brokerURL, as
// the project's tests configure each Paho client; t closes it.
func newClient(t *testing.T, proto int, brokerURL, name string) client {
	t.Helper()
	id := fmt.Sprintf("%s-%s-%d", name, strings.ReplaceAll(t.Name(), "/", "_"), time.Now().UnixNano())
	var c client
	var err error
	if proto == 5 {
		c, err = newV5(brokerURL, id)
	} else {
		c, err = newV3(brokerURL, id)
	}
	if err != nil {
		t.Fatalf("v%d client %s: %v", proto, name, err)
	}
	t.Cleanup(c.close)
	return c
}

// router passes each received payload to the channel of its topic.
type router struct {
	mu sync.Mutex
	to map[string]chan string
}

func (r *router) add(topic string) <-chan string {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.to == nil {
		r.to = map[string]chan string{}
	}
	ch := make(chan string, 100)
	r.to[topic] = ch
	return ch
}

func (r *router) deliver(topic, payload string) {
	r.mu.Lock()
	ch := r.to[topic]
	r.mu.Unlock()
	select {
	case ch <- payload:
	default: // no subscription (nil), or 100 unread: the test fails anyway
	}
}

type v3client struct {
	c      mqtt.Client
	n      atomic.Int64
	routes router
	once   sync.Once
}

func newV3(brokerURL, id string) (*v3client, error) {
	c := &v3client{}
	o := mqtt.NewClientOptions().AddBroker(brokerURL).SetClientID(id).
		SetConnectRetry(true).SetConnectRetryInterval(50 * time.Millisecond).
		SetMaxReconnectInterval(200 * time.Millisecond).SetConnectTimeout(5 * time.Second).
		SetOnConnectHandler(func(mqtt.Client) { c.n.Add(1) })
	c.c = mqtt.NewClient(o)
	if err := wait3(c.c.Connect()); err != nil {
		c.close()
		return nil, err
	}
	return c, nil
}

// wait3 waits up to 10 s for tok.
func wait3(tok mqtt.Token) error {
	if !tok.WaitTimeout(10 * time.Second) {
		return errors.New("no answer within 10 s")
	}
	return tok.Error()
}

func (c *v3client) subscribe(t *testing.T, topic string) <-chan string {
	t.Helper()
	ch := c.routes.add(topic)
	if err := wait3(c.c.Subscribe(topic, 1, func(_ mqtt.Client, m mqtt.Message) {
		c.routes.deliver(m.Topic(), string(m.Payload()))
	})); err != nil {
		t.Fatalf("subscribe %s: %v", topic, err)
	}
	return ch
}

func (c *v3client) publish(topic string, qos byte, payload string) pending {
	tok := c.c.Publish(topic, qos, false, payload)
	return awaiting(tok.Done(), tok.Error)
}

func (c *v3client) connects() int64 { return c.n.Load() }

func (c *v3client) close() { c.once.Do(func() { c.c.Disconnect(100) }) }

type v5client struct {
	cm     *autopaho.ConnectionManager
	ctx    context.Context // ends with close: ends the publishes in flight
	cancel context.CancelFunc
	wg     sync.WaitGroup // the publishes in flight
	n      atomic.Int64
	routes router
	once   sync.Once
}

func newV5(brokerURL, id string) (*v5client, error) {
	u, err := url.Parse(brokerURL)
	if err != nil {
		return nil, err
	}
	c := &v5client{}
	c.ctx, c.cancel = context.WithCancel(context.Background())
	cfg := autopaho.ClientConfig{
		ServerUrls:       []*url.URL{u},
		KeepAlive:        20,
		ReconnectBackoff: autopaho.NewConstantBackoff(50 * time.Millisecond),
		ConnectTimeout:   5 * time.Second,
		OnConnectionUp:   func(*autopaho.ConnectionManager, *paho.Connack) { c.n.Add(1) },
		ClientConfig: paho.ClientConfig{
			ClientID: id,
			OnPublishReceived: []func(paho.PublishReceived) (bool, error){func(r paho.PublishReceived) (bool, error) {
				c.routes.deliver(r.Packet.Topic, string(r.Packet.Payload))
				return true, nil
			}},
		},
	}
	if c.cm, err = autopaho.NewConnection(c.ctx, cfg); err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(c.ctx, 10*time.Second)
	defer cancel()
	if err := c.cm.AwaitConnection(ctx); err != nil {
		c.close()
		return nil, err
	}
	return c, nil
}

func (c *v5client) subscribe(t *testing.T, topic string) <-chan string {
	t.Helper()
	ch := c.routes.add(topic)
	ctx, cancel := context.WithTimeout(c.ctx, 10*time.Second)
	defer cancel()
	if _, err := c.cm.Subscribe(ctx, &paho.Subscribe{Subscriptions: []paho.SubscribeOptions{{Topic: topic, QoS: 1}}}); err != nil {
		t.Fatalf("subscribe %s: %v", topic, err)
	}
	return ch
}

func (c *v5client) publish(topic string, qos byte, payload string) pending {
	done := make(chan struct{})
	var err error
	c.wg.Go(func() {
		defer close(done)
		_, err = c.cm.Publish(c.ctx, &paho.Publish{Topic: topic, QoS: qos, Payload: []byte(payload)})
	})
	return awaiting(done, func() error { return err })
}

func (c *v5client) connects() int64 { return c.n.Load() }

func (c *v5client) close() {
	c.once.Do(func() {
		c.cancel()
		c.wg.Wait()
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		c.cm.Disconnect(ctx)
	})
}

// startBroker starts the embedded broker, with hooks, for t.
func startBroker(t *testing.T, hooks ...mochi.Hook) *testbroker.Broker {
	t.Helper()
	b, err := testbroker.Start("127.0.0.1:0", nil, hooks...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Close() })
	return b
}

// expect waits up to 10 s for the next value on ch and fails t unless it is
// want.
func expect(t *testing.T, ch <-chan string, want, what string) {
	t.Helper()
	select {
	case got := <-ch:
		if got != want {
			t.Fatalf("%s: got %q, want %q", what, got, want)
		}
	case <-time.After(10 * time.Second):
		t.Fatalf("%s: nothing within 10 s", what)
	}
}

// quietFor is how long quiet watches for what must not come. A correct
// proxy passes quiet however long it is; it bounds how long the tests give a
// broken one to show itself. (TestStallBacksUpTCP proves that a stall holds
// every byte without such a window.)
const quietFor = 200 * time.Millisecond

// quiet fails t if anything comes on ch within quietFor.
func quiet(t *testing.T, ch <-chan string, what string) {
	t.Helper()
	select {
	case got := <-ch:
		t.Fatalf("%s: got %q", what, got)
	case <-time.After(quietFor):
	}
}

// TestWithholdAcks: while acks are withheld, a QoS 1 publish reaches the
// subscriber, but its PUBACK is dropped (Withheld counts it) and the
// publisher's wait for it times out; with acks passed again, a new publish
// is acknowledged.
func TestWithholdAcks(t *testing.T) {
	for _, proto := range protocols {
		t.Run(fmt.Sprintf("v%d", proto), func(t *testing.T) {
			b := startBroker(t)
			p := startProxy(t, b.Addr())
			// Both clients go through the proxy: the subscriber's stream
			// from the broker has no PUBACK in it to withhold.
			sub := newClient(t, proto, p.URL(), "sub")
			got := sub.subscribe(t, "withhold")
			pub := newClient(t, proto, p.URL(), "pub")

			p.WithholdAcks(true)
			first := pub.publish("withhold", 1, "withheld")
			expect(t, got, "withheld", "the subscriber, with acks withheld")
			testwait.Until(t, "the PUBACK withheld", func() bool { return p.Withheld() == 1 })
			// The broker sends one PUBACK per publish, and it is gone:
			// the publisher's wait can only time out.
			if done, err := first(quietFor); done {
				t.Fatalf("the publisher's publish completed (%v) without its PUBACK", err)
			}

			p.WithholdAcks(false)
			if done, err := pub.publish("withhold", 1, "acked")(10 * time.Second); !done || err != nil {
				t.Fatalf("with acks passed, the publish was not acknowledged: done %v, %v", done, err)
			}
			expect(t, got, "acked", "the subscriber, with acks passed")
			if done, err := first(0); done {
				t.Fatalf("the withheld publish completed later (%v)", err)
			}
			if n := p.Withheld(); n != 1 {
				t.Fatalf("Withheld %d, want 1", n)
			}
		})
	}
}

// watch is a broker hook that reports the payloads of the publishes the
// broker receives from clients, and of those it has written to a client's
// connection.
type watch struct {
	mochi.HookBase
	received, sent chan string
}

func newWatch() *watch {
	return &watch{received: make(chan string, 100), sent: make(chan string, 100)}
}

func (w *watch) ID() string { return "watch" }

func (w *watch) Provides(b byte) bool { return b == mochi.OnPublish || b == mochi.OnPacketSent }

func (w *watch) OnPublish(cl *mochi.Client, pk packets.Packet) (packets.Packet, error) {
	if !cl.Net.Inline {
		w.received <- string(pk.Payload)
	}
	return pk, nil
}

func (w *watch) OnPacketSent(cl *mochi.Client, pk packets.Packet, _ []byte) {
	if pk.FixedHeader.Type == packets.Publish {
		w.sent <- string(pk.Payload)
	}
}

// TestStall: a stall holds a publish in each direction, already written
// into the connection to the proxy, and un-stalling delivers it.
func TestStall(t *testing.T) {
	for _, proto := range protocols {
		t.Run(fmt.Sprintf("v%d", proto), func(t *testing.T) {
			w := newWatch()
			b := startBroker(t, w)
			p := startProxy(t, b.Addr())
			sub := newClient(t, proto, p.URL(), "sub")
			got := sub.subscribe(t, "stall")
			pub := newClient(t, proto, p.URL(), "pub")

			// Client to broker: a QoS 0 publish is done once written.
			p.Stall(true)
			if done, err := pub.publish("stall", 0, "up")(10 * time.Second); !done || err != nil {
				t.Fatalf("QoS 0 publish not written: done %v, %v", done, err)
			}
			quiet(t, w.received, "the broker, stalled")
			quiet(t, got, "the subscriber, stalled")
			p.Stall(false)
			expect(t, w.received, "up", "the broker, un-stalled")
			expect(t, w.sent, "up", "the broker's delivery")
			expect(t, got, "up", "the subscriber, un-stalled")

			// Broker to client.
			p.Stall(true)
			if err := b.Publish("stall", []byte("down")); err != nil {
				t.Fatal(err)
			}
			expect(t, w.sent, "down", "the broker's delivery, stalled")
			quiet(t, got, "the subscriber, stalled")
			p.Stall(false)
			expect(t, got, "down", "the subscriber, un-stalled")
		})
	}
}

// TestDropConnections: a client whose connection the proxy drops connects
// again through it, and the new connection carries publishes both ways.
func TestDropConnections(t *testing.T) {
	for _, proto := range protocols {
		t.Run(fmt.Sprintf("v%d", proto), func(t *testing.T) {
			b := startBroker(t)
			p := startProxy(t, b.Addr())
			c := newClient(t, proto, p.URL(), "c")
			testwait.Until(t, "the first connection", func() bool { return c.connects() >= 1 })

			p.DropConnections()
			testwait.Until(t, "a reconnection", func() bool { return c.connects() >= 2 })
			if n := c.connects(); n != 2 {
				t.Fatalf("%d connections, want 2", n)
			}
			got := c.subscribe(t, "drop")
			if done, err := c.publish("drop", 1, "again")(10 * time.Second); !done || err != nil {
				t.Fatalf("publish after reconnecting: done %v, %v", done, err)
			}
			expect(t, got, "again", "the subscriber after reconnecting")
		})
	}
}

// TestCloseLeavesNoGoroutines: Close returns with every connection in every
// state (clients of both protocols mid-stall; a connection whose client
// does not read, with the proxy blocked writing to it), and once it has
// returned none of the proxy's goroutines is left; once the clients and
// brokers are closed too, no goroutine the test started is.
func TestCloseLeavesNoGoroutines(t *testing.T) {
	before := testwait.Goroutines()

	b, err := testbroker.Start("127.0.0.1:0", nil)
	if err != nil {
		t.Fatal(err)
	}
	p, err := Start(b.Addr())
	if err != nil {
		t.Fatal(err)
	}
	var clients []client
	for _, proto := range protocols {
		c := newClient(t, proto, p.URL(), "c")
		clients = append(clients, c)
		got := c.subscribe(t, "close")
		if done, err := c.publish("close", 1, "before")(10 * time.Second); !done || err != nil {
			t.Fatalf("v%d publish: done %v, %v", proto, done, err)
		}
		expect(t, got, "before", "the subscriber")
	}
	p.Stall(true)

	fake, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p2, err := Start(fake.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	client, up := connect(t, p2, fake.(*net.TCPListener))
	chunk := bytes.Repeat(publish(1000), 16)
	for { // until the client's unread bytes back up to the broker
		up.SetWriteDeadline(time.Now().Add(50 * time.Millisecond))
		if _, err := up.Write(chunk); errors.Is(err, os.ErrDeadlineExceeded) {
			break
		} else if err != nil {
			t.Fatal(err)
		}
	}

	closed := make(chan struct{})
	go func() {
		p.Close()
		p2.Close()
		close(closed)
	}()
	select {
	case <-closed:
	case <-time.After(10 * time.Second):
		t.Fatal("Close did not return within 10 s")
	}
	for id, stack := range testwait.Goroutines() {
		if _, old := before[id]; !old && strings.Contains(stack, "/mqttproxy/mqttproxy.go:") {
			t.Errorf("a proxy goroutine outlived Close:\n%s", stack)
		}
	}

	for _, c := range clients {
		c.close()
	}
	client.Close()
	up.Close()
	fake.Close()
	b.Close()
	testwait.NoneLeft(t, before)
}
