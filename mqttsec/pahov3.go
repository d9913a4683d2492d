package mqttsec

import (
	"context"
	"fmt"
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
// on each connect, and turns OrderMatters off so that no callback can
// serialise the connection (messages go to the Client's or Server's worker
// pool at once). Every message the connection receives goes to the Client
// or Server, through the options' DefaultPublishHandler, which the
// transport sets.
type PahoV3 struct {
	opts *mqtt.ClientOptions

	mu      sync.Mutex
	filters []string
	client  mqtt.Client
	deliver func(Inbound)
	closed  chan struct{} // closed by Close: ends renewal back-offs
	guard   guard
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
	userOnConnect := o.OnConnect
	o.SetOrderMatters(false)
	o.SetAutoReconnect(true)
	o.SetDefaultPublishHandler(t.handler)
	o.SetOnConnectHandler(func(c mqtt.Client) {
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

// resubscribe renews every filter after a (re)connection, retrying a failed
// subscription while the connection stays up and the transport open.
func (t *PahoV3) resubscribe(c mqtt.Client) {
	t.mu.Lock()
	filters := append([]string(nil), t.filters...)
	closed, report := t.closed, t.guard.renewFailed
	t.mu.Unlock()
	renew(filters, closed, func(f string) error {
		ctx, cancel := context.WithTimeout(context.Background(), subscribeTimeout)
		defer cancel()
		return subscribeV3(ctx, c, f)
	}, func(error) bool { return c.IsConnectionOpen() }, report)
}

func (t *PahoV3) setGuard(g guard) {
	t.mu.Lock()
	t.guard = g
	t.mu.Unlock()
}

// Subscribe implements Transport.
func (t *PahoV3) Subscribe(ctx context.Context, filter string) error {
	t.mu.Lock()
	t.filters = append(t.filters, filter)
	client := t.client
	t.mu.Unlock()
	if client == nil || !client.IsConnectionOpen() {
		return nil // subscribed on connection
	}
	return subscribeV3(ctx, client, filter)
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

// Publish implements Transport.
func (t *PahoV3) Publish(ctx context.Context, m Outbound) error {
	t.mu.Lock()
	client := t.client
	t.mu.Unlock()
	if client == nil {
		return ErrClosed
	}
	if err := wait(ctx, client.Publish(m.Topic, 1, false, m.Payload)); err != nil {
		return fmt.Errorf("mqttsec: publish: %w", err)
	}
	return nil
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
