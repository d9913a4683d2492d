// Package hostile is a deliberately malicious MQTT broker for tests: the
// embedded broker with a hook that, per test, rewrites, redirects, drops,
// holds, duplicates or records what clients publish — while acknowledging
// it as usual — and injects messages of its own, the way a broker that is
// the adversary can.
package hostile

import (
	"bytes"
	"sync"

	mochi "github.com/mochi-mqtt/server/v2"
	"github.com/mochi-mqtt/server/v2/packets"

	"github.com/mqttsec/mqttsec/internal/testbroker"
)

// Message is a publish as the broker sees it.
type Message struct {
	Topic           string
	Payload         []byte
	ResponseTopic   string // MQTT v5
	CorrelationData []byte // MQTT v5
}

// Verdict is what the broker does with a publish. The zero Verdict
// delivers it unchanged.
type Verdict struct {
	// Drop acknowledges the publish and delivers nothing.
	Drop bool
	// Replace, if set, is delivered instead (topic, payload, properties).
	Replace *Message
	// Also are delivered after it (duplicates, copies to other topics).
	Also []Message
}

// Rule decides the fate of each publish from a client.
type Rule func(m Message) Verdict

// Broker is a running hostile broker.
type Broker struct {
	*testbroker.Broker
	hook *hook
}

// Start runs a hostile broker on a free loopback port; until SetRule, it
// behaves.
func Start() (*Broker, error) {
	h := &hook{}
	b, err := testbroker.Start("127.0.0.1:0", nil, h)
	if err != nil {
		return nil, err
	}
	h.broker = b
	return &Broker{Broker: b, hook: h}, nil
}

// SetRule sets the rule for the publishes that follow (nil: behave).
func (b *Broker) SetRule(r Rule) {
	b.hook.mu.Lock()
	b.hook.rule = r
	b.hook.mu.Unlock()
}

// Seen returns copies of every client publish so far on topic, in order.
func (b *Broker) Seen(topic string) []Message {
	b.hook.mu.Lock()
	defer b.hook.mu.Unlock()
	var out []Message
	for _, m := range b.hook.log {
		if m.Topic == topic {
			out = append(out, clone(m))
		}
	}
	return out
}

// Inject publishes a message as the broker itself (QoS 1); it bypasses the
// rule.
func (b *Broker) Inject(m Message) error { return b.Publish(m.Topic, m.Payload) }

func clone(m Message) Message {
	m.Payload = bytes.Clone(m.Payload)
	m.CorrelationData = bytes.Clone(m.CorrelationData)
	return m
}

type hook struct {
	mochi.HookBase
	broker *testbroker.Broker
	mu     sync.Mutex
	rule   Rule
	log    []Message
}

func (h *hook) ID() string { return "hostile" }

func (h *hook) Provides(b byte) bool { return b == mochi.OnPublish }

func (h *hook) OnPublish(cl *mochi.Client, pk packets.Packet) (packets.Packet, error) {
	if cl.Net.Inline {
		return pk, nil // the broker's own injections pass untouched
	}
	m := Message{Topic: pk.TopicName, Payload: bytes.Clone(pk.Payload),
		ResponseTopic: pk.Properties.ResponseTopic, CorrelationData: bytes.Clone(pk.Properties.CorrelationData)}
	h.mu.Lock()
	h.log = append(h.log, clone(m))
	rule := h.rule
	h.mu.Unlock()
	if rule == nil {
		return pk, nil
	}
	v := rule(clone(m))
	for _, extra := range v.Also {
		go h.broker.Publish(extra.Topic, extra.Payload)
	}
	if v.Drop {
		return pk, packets.CodeSuccessIgnore // acknowledged, not delivered
	}
	if r := v.Replace; r != nil {
		pk.TopicName = r.Topic
		pk.Payload = r.Payload
		pk.Properties.ResponseTopic = r.ResponseTopic
		pk.Properties.CorrelationData = r.CorrelationData
	}
	return pk, nil
}
