package mqttsec

import "context"

// Inbound is a message as the broker delivered it. Nothing in it is
// authenticated: the envelope in Payload is what counts.
type Inbound struct {
	Topic   string
	Payload []byte
	// ResponseTopic and CorrelationData are the MQTT v5 properties, empty on
	// v3.1.1. They are informational only; the authenticated values are in
	// the envelope header.
	ResponseTopic   string
	CorrelationData []byte
	// Duplicate and Retained are the broker's flags; a retained copy is
	// refused by the replay window like any other replay.
	Duplicate bool
	Retained  bool
}

// Outbound is a message to publish at QoS 1.
type Outbound struct {
	Topic   string
	Payload []byte
	// ResponseTopic and CorrelationData are set on MQTT v5 when
	// Config.ResponseProperties asks for them; v3.1.1 ignores them.
	ResponseTopic   string
	CorrelationData []byte
}

// Transport is the MQTT connection under a Client or Server. The package
// provides one for each Eclipse Paho client: [NewPahoV5] (MQTT v5 through
// autopaho) and [NewPahoV3] (MQTT v3.1.1).
//
// Implementations must be safe for concurrent use, must re-establish every
// subscription after each reconnect, and must not call deliver for a message
// before Start returned.
type Transport interface {
	// Start connects (retrying in the background as configured) and hands
	// every message received on any subscribed filter to deliver. deliver is
	// called on the transport's own goroutine and returns quickly. It takes
	// the message: the transport must not change or reuse its Payload
	// afterwards, which is read later, on another goroutine.
	Start(ctx context.Context, deliver func(Inbound)) error
	// Subscribe adds a topic filter at QoS 1, kept across reconnects; a
	// filter the broker refuses (ErrSubscribeRefused) is not kept.
	Subscribe(ctx context.Context, filter string) error
	// Publish sends a message at QoS 1 and waits for the broker's
	// acknowledgement or ctx.
	Publish(ctx context.Context, m Outbound) error
	// Close disconnects and stops reconnecting.
	Close(ctx context.Context) error
}
