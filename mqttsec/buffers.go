package mqttsec

import (
	"sync"

	"github.com/mqttsec/mqttsec/envelope"
)

// payloadFree is implemented by transports whose Publish keeps no
// reference to a message's payload once it returned nil, so that the
// buffer may be reused at once. PahoV5 qualifies: paho.golang writes a
// publish before Publish returns and keeps a serialized copy for
// retransmission. PahoV3 does not: across a reconnect, paho.mqtt.golang
// can still be writing a resent copy of a publish (its store shares the
// payload) after the publish was acknowledged and Publish returned. Nor is
// a Transport of the caller's own assumed to: those envelopes are sealed
// into buffers of their own.
type payloadFree interface {
	keepsNoPayload()
}

func (*PahoV5) keepsNoPayload() {}

var _ payloadFree = (*PahoV5)(nil)

// envelopeBuffers recycles the buffers envelopes are sealed into (see
// node.seal): a buffer goes back only after the publish of its envelope
// succeeded, and none larger than maxPooledEnvelope is kept.
var envelopeBuffers = sync.Pool{New: func() any {
	b := make([]byte, 0, 1024)
	return &b
}}

// maxPooledEnvelope is the largest buffer envelopeBuffers keeps, so that
// one large message does not pin its buffer for good.
const maxPooledEnvelope = 64 << 10

// sealedMessage is a sealed envelope and the pooled buffer it was sealed
// into, if any.
type sealedMessage struct {
	*envelope.Sealed
	buf *[]byte
}

// seal seals payload, into a pooled buffer when the transport lets the
// buffer be reused after the publish.
func (n *node) seal(p *envelope.Params, payload []byte) (sealedMessage, error) {
	return n.sealWith(n.sealer, p, payload)
}

// sealWith is seal with another sealer (one whose counter was drawn in
// advance).
func (n *node) sealWith(sealer *envelope.Sealer, p *envelope.Params, payload []byte) (sealedMessage, error) {
	if !n.reuseBuffers {
		s, err := sealer.Seal(p, payload)
		return sealedMessage{Sealed: s}, err
	}
	buf := envelopeBuffers.Get().(*[]byte)
	s, err := sealer.SealInto(*buf, p, payload)
	if err != nil {
		envelopeBuffers.Put(buf)
		return sealedMessage{}, err
	}
	return sealedMessage{Sealed: s, buf: buf}, nil
}

// published hands back the buffer of an envelope whose publish succeeded.
// After a failed publish the transport may still hold the bytes (a
// publish abandoned at its deadline can still be on its way), so the
// buffer is left to the garbage collector instead.
func (s sealedMessage) published() {
	if s.buf == nil || cap(s.Bytes) > maxPooledEnvelope {
		return
	}
	*s.buf = s.Bytes[:0]
	envelopeBuffers.Put(s.buf)
}
