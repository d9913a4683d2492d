package mqttsec

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"sync"
	"time"

	mqtt "github.com/eclipse/paho.mqtt.golang"
	"github.com/eclipse/paho.mqtt.golang/packets"
)

// PahoV3 is a Transport over MQTT v3.1.1, using
// github.com/eclipse/paho.mqtt.golang. v3.1.1 has no ResponseTopic or
// CorrelationData: reply-to and correlation travel only in the envelope.
//
// The transport turns on automatic reconnection, renews every subscription
// on each connect, and keeps OrderMatters on: messages reach the Client or
// Server one at a time, in the order the broker sent them, which a gateway
// needs to admit one sender's messages in order (see Config.Workers). The
// callback only queues each message for a worker, never waiting, so it does
// not hold the connection up. Every message the connection receives goes to
// the Client or Server, through the options' DefaultPublishHandler, which
// the transport sets. Options left at Paho's default reconnection intervals
// (10 minutes at most between reconnection attempts, 30 s between first
// connection attempts) get a bound under a second instead, different for
// each transport (500 ms to 1 s), so that clients reconnect promptly when
// the broker is back and do not all retry at the same moment.
type PahoV3 struct {
	opts *mqtt.ClientOptions

	mu      sync.Mutex
	filters []string
	client  mqtt.Client
	deliver func(Inbound)
	closed  chan struct{} // closed by Close: ends renewal back-offs
	guard   guard
	// connections counts the connections made, the first included.
	connections int
	// writeTimeout is the options' WriteTimeout, as Start set it: the
	// longest Paho takes to hand a publish over to its writer.
	writeTimeout time.Duration
}

var _ Transport = (*PahoV3)(nil)

// NewPahoV3 returns a transport for client options the caller has filled in
// (AddBroker, SetClientID, SetTLSConfig, credentials, ...). Its OnConnect
// handler still runs, after the transport's.
func NewPahoV3(opts *mqtt.ClientOptions) *PahoV3 {
	return &PahoV3{opts: opts}
}

func (t *PahoV3) handler(_ mqtt.Client, m mqtt.Message) {
	t.mu.Lock()
	deliver := t.deliver
	t.mu.Unlock()
	if deliver != nil {
		deliver(Inbound{Topic: m.Topic(), Payload: m.Payload(), Duplicate: m.Duplicate(), Retained: m.Retained()})
	}
}

// Start implements Transport. It returns once connected.
func (t *PahoV3) Start(ctx context.Context, deliver func(Inbound)) error {
	t.mu.Lock()
	if t.client != nil {
		t.mu.Unlock()
		return ErrAlreadyStarted
	}
	o := *t.opts
	store := o.Store
	if store == nil {
		store = mqtt.NewMemoryStore()
	}
	o.SetStore(copyingStore{store})
	o.CustomOpenConnectionFn = t.guard.openConnection(&o)
	if o.WriteTimeout == 0 {
		// paho blocks a Publish or Subscribe for up to WriteTimeout when
		// the connection drops under it (default 30 s); bound that, so that
		// nothing outlives Close for long.
		o.SetWriteTimeout(writeTimeout)
	}
	t.writeTimeout = o.WriteTimeout
	promptReconnects(&o)
	userOnConnect := o.OnConnect
	userNotify := o.OnConnectionNotification
	o.SetConnectionNotificationHandler(func(c mqtt.Client, n mqtt.ConnectionNotification) {
		t.notified(n)
		if userNotify != nil {
			userNotify(c, n)
		}
	})
	o.SetOrderMatters(true)
	o.SetAutoReconnect(true)
	o.SetDefaultPublishHandler(t.handler)
	o.SetOnConnectHandler(func(c mqtt.Client) {
		// Told here, not from the connection notification, which Paho
		// sends on a goroutine of its own: the renewal's end is then told
		// after its connection.
		t.tellConnected()
		t.resubscribe(c)
		if userOnConnect != nil {
			userOnConnect(c)
		}
	})
	t.deliver = deliver
	t.closed = make(chan struct{})
	t.client = mqtt.NewClient(&o)
	client := t.client
	t.mu.Unlock()
	if err := wait(ctx, client.Connect()); err != nil {
		t.Close(context.Background())
		return fmt.Errorf("mqttsec: mqtt v3.1.1 connect: %w", err)
	}
	return nil
}

// writeTimeout is the WriteTimeout PahoV3 sets when the options have none.
const writeTimeout = 5 * time.Second

// Paho's defaults for the reconnection intervals, which promptReconnects
// replaces.
const (
	pahoMaxReconnectInterval = 10 * time.Minute
	pahoConnectRetryInterval = 30 * time.Second
)

// promptReconnects bounds the intervals between connection attempts left
// at Paho's defaults to a random 500 ms to 1 s: Paho doubles the interval
// from 1 s up to the bound, so with it every attempt comes within a second,
// and a fleet does not reconnect in step.
func promptReconnects(o *mqtt.ClientOptions) {
	bound := 500*time.Millisecond + rand.N(500*time.Millisecond)
	if o.MaxReconnectInterval == pahoMaxReconnectInterval {
		o.SetMaxReconnectInterval(bound)
	}
	if o.ConnectRetryInterval == pahoConnectRetryInterval {
		o.SetConnectRetryInterval(bound)
	}
}

// notified tells the node of Paho's connection notifications.
func (t *PahoV3) notified(n mqtt.ConnectionNotification) {
	t.mu.Lock()
	g := t.guard
	t.mu.Unlock()
	switch n := n.(type) {
	case mqtt.ConnectionNotificationLost:
		g.tell(connectionEvent{kind: connLost, err: n.Reason})
	case mqtt.ConnectionNotificationFailed:
		g.tell(connectionEvent{kind: connFailed, err: n.Reason})
	}
}

// tellConnected tells the node of a connection made.
func (t *PahoV3) tellConnected() {
	t.mu.Lock()
	g := t.guard
	t.mu.Unlock()
	g.tell(connectionEvent{kind: connUp})
}

// connectionOpen reports whether the connection is open now.
func (t *PahoV3) connectionOpen() bool {
	t.mu.Lock()
	c := t.client
	t.mu.Unlock()
	return c != nil && c.IsConnectionOpen()
}

// resubscribe renews every filter after a (re)connection, retrying a failed
// subscription while the connection stays up and the transport open.
func (t *PahoV3) resubscribe(c mqtt.Client) {
	t.mu.Lock()
	filters := append([]string(nil), t.filters...)
	closed, g := t.closed, t.guard
	t.connections++
	again := t.connections > 1
	t.mu.Unlock()
	renewed := renew(filters, closed, func(f string) error {
		ctx, cancel := context.WithTimeout(context.Background(), subscribeTimeout)
		defer cancel()
		return subscribeV3(ctx, c, f)
	}, func(error) bool { return c.IsConnectionOpen() }, g.renewFailed)
	if renewed && again {
		g.tell(connectionEvent{kind: connRenewed, filters: len(filters)})
	}
}

func (t *PahoV3) setGuard(g guard) {
	t.mu.Lock()
	t.guard = g
	t.mu.Unlock()
}

// Subscribe implements Transport. A filter the broker refuses
// (ErrSubscribeRefused) is not kept: it is not subscribed again after a
// reconnect.
func (t *PahoV3) Subscribe(ctx context.Context, filter string) error {
	t.mu.Lock()
	t.filters = append(t.filters, filter)
	client := t.client
	t.mu.Unlock()
	if client == nil || !client.IsConnectionOpen() {
		return nil // subscribed on connection
	}
	err := subscribeV3(ctx, client, filter)
	if errors.Is(err, ErrSubscribeRefused) {
		t.mu.Lock()
		t.filters = dropFilter(t.filters, filter)
		t.mu.Unlock()
	}
	return err
}

// subscribeV3 subscribes to filter and waits for the SUBACK, which must
// grant it: MQTT 3.1.1 refuses a subscription with return code 0x80, which
// Paho does not turn into an error.
func subscribeV3(ctx context.Context, c mqtt.Client, filter string) error {
	// No handler of its own: every message goes to the default handler
	// (see Start), once, however many filters it matches, and Paho need
	// not match each message against each filter.
	tok := c.Subscribe(filter, 1, nil)
	if err := wait(ctx, tok); err != nil {
		return fmt.Errorf("mqttsec: subscribe %q: %w", filter, err)
	}
	st, ok := tok.(*mqtt.SubscribeToken)
	if !ok {
		return nil
	}
	// One filter, one return code; Paho keys it by the filter without a
	// $share/group/ or $queue/ prefix.
	result := st.Result()
	if len(result) == 1 {
		for _, code := range result {
			if code <= 1 { // granted QoS 0 or 1
				return nil
			}
		}
	}
	return fmt.Errorf("%w: %q (return codes %v)", ErrSubscribeRefused, filter, result)
}

// Publish implements Transport. An error found as Paho takes the message
// (not connected, its writer stuck past WriteTimeout) means it was not
// sent; once Paho has it, a missing acknowledgement is ErrUnacknowledged:
// Paho's session still sends it again after a reconnect.
func (t *PahoV3) Publish(ctx context.Context, m Outbound) error {
	acked, outcome, err := t.startPublish(m)
	if err != nil {
		return err
	}
	select {
	case <-acked:
		return outcome()
	case <-ctx.Done():
		return fmt.Errorf("%w: %w", ErrUnacknowledged, ctx.Err())
	}
}

// startPublish hands m to Paho and returns without waiting for the
// acknowledgement, which Paho's token tells: acked is closed once it came
// or the publish failed, and outcome then says which, as Publish would.
// An error found as Paho takes the message is returned at once (the
// message was not sent). Taking it may wait for Paho's writer, up to
// handOverBound.
func (t *PahoV3) startPublish(m Outbound) (acked <-chan struct{}, outcome func() error, err error) {
	t.mu.Lock()
	client := t.client
	t.mu.Unlock()
	if client == nil {
		return nil, nil, ErrClosed
	}
	tok := client.Publish(m.Topic, 1, false, m.Payload)
	select {
	case <-tok.Done():
		if err := tok.Error(); err != nil {
			return nil, nil, fmt.Errorf("mqttsec: publish: %w", err)
		}
	default:
	}
	return tok.Done(), func() error {
		if err := tok.Error(); err != nil {
			return fmt.Errorf("%w: %w", ErrUnacknowledged, err)
		}
		return nil
	}, nil
}

// handOverBound is the longest startPublish waits for Paho to take a
// message: its WriteTimeout, once started.
func (t *PahoV3) handOverBound() time.Duration {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.writeTimeout
}

// Close implements Transport.
func (t *PahoV3) Close(ctx context.Context) error {
	t.mu.Lock()
	client := t.client
	t.client, t.deliver = nil, nil
	if client != nil {
		close(t.closed)
	}
	t.mu.Unlock()
	if client != nil {
		client.Disconnect(100)
	}
	return nil
}

// copyingStore keeps its own copy of each PUBLISH packet and hands out
// copies. On reconnect paho.mqtt.golang (v1.5.1) takes stored packets and
// sets their DUP flag while the previous connection's writer may still be
// encoding the very same packet object: a data race (upstream issue
// eclipse-paho/paho.mqtt.golang#703). Copying on Put (which paho calls
// before the packet reaches any writer) and on Get means no packet object
// is shared between the store and a writer.
type copyingStore struct{ mqtt.Store }

func copyPacket(p packets.ControlPacket) packets.ControlPacket {
	if pub, ok := p.(*packets.PublishPacket); ok {
		c := *pub
		return &c
	}
	return p
}

func (s copyingStore) Put(key string, p packets.ControlPacket) { s.Store.Put(key, copyPacket(p)) }

func (s copyingStore) Get(key string) packets.ControlPacket { return copyPacket(s.Store.Get(key)) }

func wait(ctx context.Context, tok mqtt.Token) error {
	select {
	case <-tok.Done():
		return tok.Error()
	case <-ctx.Done():
		return ctx.Err()
	}
}
