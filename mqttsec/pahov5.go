package mqttsec

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/eclipse/paho.golang/autopaho"
	"github.com/eclipse/paho.golang/packets"
	"github.com/eclipse/paho.golang/paho"
	"github.com/eclipse/paho.golang/paho/session"
	"github.com/eclipse/paho.golang/paho/session/state"
)

// PahoV5 is a Transport over MQTT v5, using github.com/eclipse/paho.golang's
// autopaho, which reconnects by itself. Subscriptions are renewed after every
// reconnect. Requests carry the MQTT v5 ResponseTopic and CorrelationData
// properties for interoperability; mqttsec trusts only the envelope.
//
// Do not use paho.golang's extensions/rpc beside it: it matches replies by
// predictable correlation ids and accepts them unauthenticated.
type PahoV5 struct {
	cfg autopaho.ClientConfig
	// failFirst makes Start fail at the first failed connection attempt
	// rather than retry until its context ends (NewTransport without
	// ConnectRetry).
	failFirst bool

	mu      sync.Mutex
	filters []string
	cm      *autopaho.ConnectionManager
	life    context.Context // ends when the transport closes
	stop    context.CancelFunc
	guard   guard
	// connections counts the connections made, the first included.
	connections int
}

var _ Transport = (*PahoV5)(nil)

// NewPahoV5 returns a transport for an autopaho configuration the caller has
// filled in (ServerUrls, TlsCfg, ClientID, credentials, back-off, ...). Its
// OnConnectionUp, OnConnectionDown, OnConnectError and OnPublishReceived
// callbacks still run; the transport adds its own beside them. Use
// TLSConfig to build TlsCfg for TLS and mTLS. Without a ReconnectBackoff
// (or the deprecated ConnectRetryDelay), the transport reconnects after
// 100 ms to 1 s, at random, rather than autopaho's fixed 10 s.
func NewPahoV5(cfg autopaho.ClientConfig) *PahoV5 {
	return &PahoV5{cfg: cfg}
}

// Start implements Transport. It returns once connected, or, having given
// up when ctx ended, with an error wrapping ctx's error and, if an attempt
// failed, that of the latest failed attempt (a refused or unreachable
// broker, a TLS failure, the broker's refusal as an autopaho.ConnackError).
func (t *PahoV5) Start(ctx context.Context, deliver func(Inbound)) error {
	t.mu.Lock()
	if t.cm != nil {
		t.mu.Unlock()
		return ErrAlreadyStarted
	}
	cfg := t.cfg
	cfg.AttemptConnection = t.guard.attemptConnection(cfg)
	//lint:ignore SA1019 a configuration that sets the deprecated field keeps the delay it asked for
	if cfg.ReconnectBackoff == nil && cfg.ConnectRetryDelay == 0 {
		cfg.ReconnectBackoff = reconnectBackoff
	}
	sess := cfg.ClientConfig.Session
	if sess == nil {
		// autopaho would make this one; it must live across reconnects.
		sess = state.NewInMemory()
	}
	cfg.ClientConfig.Session = sessionMarkingStored{sess}
	g := t.guard
	userUp := cfg.OnConnectionUp
	cfg.OnConnectionUp = func(cm *autopaho.ConnectionManager, ack *paho.Connack) {
		g.tell(connectionEvent{kind: connUp})
		go t.resubscribe(cm)
		if userUp != nil {
			userUp(cm, ack)
		}
	}
	userDown := cfg.OnConnectionDown
	cfg.OnConnectionDown = func() bool {
		g.tell(connectionEvent{kind: connLost})
		return userDown == nil || userDown()
	}
	userConnectError := cfg.OnConnectError
	// lastFailure keeps why the latest connection attempt failed, for
	// Start's error should the first connection never come.
	var lastFailure struct {
		sync.Mutex
		err error
	}
	// awaiting ends Start's wait for the first connection: ctx, or with
	// failFirst the first attempt that fails.
	awaiting, giveUp := context.WithCancel(ctx)
	defer giveUp()
	cfg.OnConnectError = func(err error) {
		lastFailure.Lock()
		lastFailure.err = err
		lastFailure.Unlock()
		if t.failFirst {
			giveUp()
		}
		g.tell(connectionEvent{kind: connFailed, err: err})
		if userConnectError != nil {
			userConnectError(err)
		}
	}
	handlers := append([]func(paho.PublishReceived) (bool, error){}, cfg.OnPublishReceived...)
	cfg.OnPublishReceived = append(handlers, func(pr paho.PublishReceived) (bool, error) {
		p := pr.Packet
		in := Inbound{Topic: p.Topic, Payload: p.Payload, Duplicate: p.Duplicate(), Retained: p.Retain}
		if p.Properties != nil {
			in.ResponseTopic = p.Properties.ResponseTopic
			in.CorrelationData = p.Properties.CorrelationData
		}
		deliver(in)
		return true, nil
	})
	life, stop := context.WithCancel(context.Background())
	cm, err := autopaho.NewConnection(life, cfg)
	if err != nil {
		stop()
		t.mu.Unlock()
		return fmt.Errorf("mqttsec: mqtt v5 connection: %w", err)
	}
	t.cm, t.life, t.stop = cm, life, stop
	t.mu.Unlock()
	if err := cm.AwaitConnection(awaiting); err != nil {
		// autopaho retries until ctx ends (or, with failFirst, the first
		// attempt fails); its error says only that. The last attempt's
		// failure says why (read before Close, whose cancel may fail the
		// attempt under way).
		lastFailure.Lock()
		why := lastFailure.err
		lastFailure.Unlock()
		t.Close(context.Background())
		if why != nil && ctx.Err() == nil {
			return fmt.Errorf("mqttsec: mqtt v5 connect: %w", why) // failFirst
		}
		if why != nil {
			return fmt.Errorf("mqttsec: mqtt v5 connect: %w (gave up: %w)", why, err)
		}
		return fmt.Errorf("mqttsec: mqtt v5 connect: %w", err)
	}
	return nil
}

// resubscribe renews every filter after a (re)connection. It retries a
// failed subscription while the connection lasts; if the connection drops,
// the next OnConnectionUp starts over.
func (t *PahoV5) resubscribe(cm *autopaho.ConnectionManager) {
	t.mu.Lock()
	filters := append([]string(nil), t.filters...)
	life, g := t.life, t.guard
	t.connections++
	again := t.connections > 1
	t.mu.Unlock()
	renewed := renew(filters, life.Done(), func(f string) error {
		ctx, cancel := context.WithTimeout(life, subscribeTimeout)
		defer cancel()
		return subscribeV5(ctx, cm, f)
	}, func(err error) bool { return !errors.Is(err, autopaho.ConnectionDownError) }, g.renewFailed)
	if renewed && again {
		g.tell(connectionEvent{kind: connRenewed, filters: len(filters)})
	}
}

func (t *PahoV5) setGuard(g guard) {
	t.mu.Lock()
	t.guard = g
	t.mu.Unlock()
}

// reportEvery is how many failed attempts to renew one subscription pass
// between two reports, after the first: about one a minute at the longest
// back-off.
const reportEvery = 30

// renew subscribes every filter, then again those that failed, with
// back-off, while retryable says so of their errors, until done closes,
// and reports whether every filter was renewed. A filter that keeps
// failing holds up no other: each round tries every filter still left.
// When the connection is down the next connection renews them all again.
func renew(filters []string, done <-chan struct{}, subscribe func(filter string) error, retryable func(error) bool, report func(error)) bool {
	left := filters
	for attempt := 1; ; attempt++ {
		var failed []string
		for _, f := range left {
			select {
			case <-done:
				return false
			default:
			}
			err := subscribe(f)
			if err == nil {
				continue
			}
			if !retryable(err) {
				return false
			}
			failed = append(failed, f)
			if report != nil && (attempt == 1 || attempt%reportEvery == 0) {
				report(fmt.Errorf("renewing subscription %q after a reconnect (attempt %d, retrying): %w", f, attempt, err))
			}
		}
		if len(failed) == 0 {
			return true
		}
		left = failed
		select {
		case <-time.After(retryDelay(attempt)):
		case <-done:
			return false
		}
	}
}

// subscribeTimeout bounds one SUBSCRIBE/SUBACK exchange when renewing.
const subscribeTimeout = 10 * time.Second

// retryDelay is the back-off between renewal attempts: 100 ms doubling to
// at most 2 s.
func retryDelay(attempt int) time.Duration {
	d := 100 * time.Millisecond << min(attempt-1, 5)
	return min(d, 2*time.Second)
}

func subscribeV5(ctx context.Context, cm *autopaho.ConnectionManager, filter string) error {
	ack, err := cm.Subscribe(ctx, &paho.Subscribe{Subscriptions: []paho.SubscribeOptions{{Topic: filter, QoS: 1}}})
	// Paho reports a refusal as an error beside the SUBACK that carries
	// its reason code.
	if ack != nil && (len(ack.Reasons) != 1 || ack.Reasons[0] > 1) {
		return fmt.Errorf("%w: %q (reason %v)", ErrSubscribeRefused, filter, ack.Reasons)
	}
	if err != nil {
		return fmt.Errorf("mqttsec: subscribe %q: %w", filter, err)
	}
	return nil
}

// Subscribe implements Transport. A filter the broker refuses
// (ErrSubscribeRefused) is not kept: it is not subscribed again after a
// reconnect.
func (t *PahoV5) Subscribe(ctx context.Context, filter string) error {
	t.mu.Lock()
	t.filters = append(t.filters, filter)
	cm := t.cm
	t.mu.Unlock()
	if cm == nil {
		return nil // subscribed on connection
	}
	if err := cm.AwaitConnection(ctx); err != nil {
		return err
	}
	err := subscribeV5(ctx, cm, filter)
	if errors.Is(err, ErrSubscribeRefused) {
		t.mu.Lock()
		t.filters = dropFilter(t.filters, filter)
		t.mu.Unlock()
	}
	return err
}

// dropFilter removes filter, refused when it was first subscribed, from
// those renewed after a reconnect: the caller has the refusal, and
// renewing it would retry it while the connection lasts, holding up the
// renewal of the filters after it.
func dropFilter(filters []string, filter string) []string {
	for i := len(filters) - 1; i >= 0; i-- {
		if filters[i] == filter {
			return slices.Delete(filters, i, i+1)
		}
	}
	return filters
}

// Publish implements Transport. Until Paho's session holds the message
// (waiting for the connection, or for a packet id while the broker has as
// many messages unacknowledged as it allows), an error means it was not
// sent; once the session holds it, a missing acknowledgement is
// ErrUnacknowledged: the session sends it again after a reconnect.
func (t *PahoV5) Publish(ctx context.Context, m Outbound) error {
	t.mu.Lock()
	cm := t.cm
	t.mu.Unlock()
	if cm == nil {
		return ErrClosed
	}
	if err := cm.AwaitConnection(ctx); err != nil {
		return err
	}
	p := &paho.Publish{QoS: 1, Topic: m.Topic, Payload: m.Payload}
	if m.ResponseTopic != "" || m.CorrelationData != nil {
		p.Properties = &paho.PublishProperties{ResponseTopic: m.ResponseTopic, CorrelationData: m.CorrelationData}
	}
	stored := new(atomic.Bool)
	resp, err := cm.Publish(context.WithValue(ctx, storedKey{}, stored), p)
	// Paho reports a refusal as an error beside the PUBACK that carries its
	// reason code.
	if resp != nil && resp.ReasonCode >= 0x80 {
		return fmt.Errorf("%w: %q (reason %#x)", ErrPublishRefused, m.Topic, resp.ReasonCode)
	}
	if err != nil && stored.Load() {
		return fmt.Errorf("%w: %w", ErrUnacknowledged, err)
	}
	if err != nil {
		return fmt.Errorf("mqttsec: publish: %w", err)
	}
	return nil
}

// reconnectBackoff is PahoV5's default wait before reconnection attempt
// n: at random between 100 ms and a bound that doubles from 200 ms to
// 1 s, so clients reconnect within a second of the broker's return and
// not all at once.
var reconnectBackoff = autopaho.NewExponentialBackoff(100*time.Millisecond, time.Second, 200*time.Millisecond, 2)

// storedKey marks the context of a publish with the flag that
// sessionMarkingStored sets.
type storedKey struct{}

// sessionMarkingStored is Paho's session state, telling each publish
// whether the session took its message: past that point the message may
// be delivered (now, or after a reconnect) whatever the publish returns,
// and a failure is "unacknowledged" rather than "not sent".
type sessionMarkingStored struct{ session.SessionManager }

func (s sessionMarkingStored) AddToSession(ctx context.Context, p session.Packet, resp chan<- packets.ControlPacket) error {
	err := s.SessionManager.AddToSession(ctx, p, resp)
	if stored, ok := ctx.Value(storedKey{}).(*atomic.Bool); ok && err == nil {
		stored.Store(true)
	}
	return err
}

// Close implements Transport.
func (t *PahoV5) Close(ctx context.Context) error {
	t.mu.Lock()
	cm, stop := t.cm, t.stop
	t.cm, t.stop = nil, nil
	t.mu.Unlock()
	if cm == nil {
		return nil
	}
	err := cm.Disconnect(ctx)
	stop()
	select {
	case <-cm.Done():
	case <-ctx.Done():
		return ctx.Err()
	}
	if errors.Is(err, autopaho.ConnectionDownError) {
		err = nil
	}
	return err
}
