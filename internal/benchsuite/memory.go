package benchsuite

import (
	"context"
	"strings"
	"sync"

	"github.com/mqttsec/mqttsec/mqttsec"
)

// MemoryBus is a broker in memory, for measuring what runs around the
// broker without it: each message goes to every transport with a matching
// filter, copied, with no network, QoS or session in between. Each
// transport receives its messages in order on one goroutine of its own, as
// both Paho transports deliver (autopaho from its connection's reader,
// paho.mqtt.golang with OrderMatters). Its Dial is a Dial.
type MemoryBus struct {
	mu   sync.Mutex
	subs map[*memoryTransport][]string
	// handing counts the deliveries under way.
	handing sync.WaitGroup
}

// NewMemoryBus returns an empty bus.
func NewMemoryBus() *MemoryBus {
	return &MemoryBus{subs: map[*memoryTransport][]string{}}
}

// Dial returns a transport on the bus; the client id is not used.
func (b *MemoryBus) Dial(string) (mqttsec.Transport, error) {
	return &memoryTransport{bus: b, inbox: make(chan mqttsec.Inbound, inboxSize)}, nil
}

// memoryTransport is a mqttsec.Transport on a MemoryBus.
type memoryTransport struct {
	bus *MemoryBus
	// inbox holds the messages for this transport, in order, until its
	// goroutine delivers them.
	inbox chan mqttsec.Inbound

	mu      sync.Mutex
	deliver func(mqttsec.Inbound)
	closing sync.Once
}

// inboxSize is how many messages may wait for one transport's goroutine
// before a publisher waits for room, as behind a full TCP window.
const inboxSize = 1024

func (t *memoryTransport) Start(_ context.Context, deliver func(mqttsec.Inbound)) error {
	t.mu.Lock()
	t.deliver = deliver
	t.mu.Unlock()
	go t.deliverInOrder()
	return nil
}

// deliverInOrder hands the transport's messages over one at a time, until
// Close closes the inbox.
func (t *memoryTransport) deliverInOrder() {
	for in := range t.inbox {
		t.handOver(in)
	}
}

func (t *memoryTransport) Subscribe(_ context.Context, filter string) error {
	t.bus.mu.Lock()
	defer t.bus.mu.Unlock()
	t.bus.subs[t] = append(t.bus.subs[t], filter)
	return nil
}

// Close takes the transport off the bus: nothing more is delivered to it.
func (t *memoryTransport) Close(context.Context) error {
	t.bus.mu.Lock()
	delete(t.bus.subs, t)
	t.bus.mu.Unlock()
	t.mu.Lock()
	t.deliver = nil
	t.mu.Unlock()
	// Off the bus, nothing sends to the inbox any more: its goroutine
	// delivers what is left to no one and ends.
	t.closing.Do(func() { close(t.inbox) })
	return nil
}

// Publish hands each subscriber its own copy of the payload, as a broker
// does, and returns at once.
func (t *memoryTransport) Publish(_ context.Context, m mqttsec.Outbound) error {
	t.bus.mu.Lock()
	defer t.bus.mu.Unlock()
	for sub, filters := range t.bus.subs {
		for _, f := range filters {
			if filterMatches(f, m.Topic) {
				in := mqttsec.Inbound{Topic: m.Topic, Payload: append([]byte(nil), m.Payload...)}
				t.bus.handing.Add(1)
				sub.inbox <- in
				break
			}
		}
	}
	return nil
}

func (t *memoryTransport) handOver(in mqttsec.Inbound) {
	defer t.bus.handing.Done()
	t.mu.Lock()
	deliver := t.deliver
	t.mu.Unlock()
	if deliver != nil {
		deliver(in)
	}
}

// filterMatches reports whether an MQTT topic filter (with + and #)
// matches topic.
func filterMatches(filter, topic string) bool {
	fs, ts := strings.Split(filter, "/"), strings.Split(topic, "/")
	for i, f := range fs {
		switch {
		case f == "#":
			return true
		case i >= len(ts):
			return false
		case f != "+" && f != ts[i]:
			return false
		}
	}
	return len(fs) == len(ts)
}
