package envelope

import (
	"bytes"
	"cmp"
	"crypto/rand"
	"crypto/sha256"
	"math"
	"reflect"
	"time"

	"github.com/mqttsec/mqttsec/aesgcm"
)

// DefaultTTL is the lifetime Seal gives a message when Params.TTL is zero.
const DefaultTTL = 60 * time.Second

// Sealer seals messages on behalf of one sender.
type Sealer struct {
	// ID is the sender's id, as receivers know it.
	ID string
	// Counter supplies the per-sender message counter.
	Counter Counter
	// Now returns the current time; nil means time.Now.
	Now func() time.Time
	// MaxSize is the largest envelope Seal will produce; zero means
	// DefaultMaxSize. Keep it no larger than the receivers' MaxSize.
	MaxSize int
}

// Params describes one message: its context and the protections to apply.
// At least one of HMAC, Signer and PSK must be set: every message
// authenticates its sender.
type Params struct {
	// Kind is Request, Reply, Event or ErrorReply. For Reply and
	// ErrorReply set InReplyTo instead of To, Topic and CorrelationID.
	Kind Kind
	// To lists the recipient ids: exactly one for requests, none or more
	// for events.
	To []string
	// Topic is the method of a request or the topic of an event.
	Topic string
	// ReplyTo is where a request's reply must go.
	ReplyTo string
	// CorrelationID of a request; nil draws 16 random bytes.
	CorrelationID []byte
	// InReplyTo is the opened request a Reply or ErrorReply answers.
	InReplyTo *Message
	// TTL is how long the message stays valid; zero means DefaultTTL.
	TTL time.Duration

	// HMAC adds an HMAC-SHA-256 tag under this per-peer key.
	HMAC *HMACKey
	// HOTP adds an RFC 4226 code for the message counter under this key.
	HOTP *HOTPKey
	// Signer adds a signature.
	Signer Signer
	// PSK encrypts the payload under this pre-shared per-peer key.
	PSK *AEADKey
	// Recipients encrypts the payload under a fresh content key wrapped to
	// each of them. PSK and Recipients are mutually exclusive.
	Recipients []Recipient
}

// Sealed is a sealed message.
type Sealed struct {
	// Bytes is the envelope to publish.
	Bytes []byte
	// Digest identifies the message; a reply to a request carries it.
	Digest [32]byte
	// CorrelationID is the request's correlation id.
	CorrelationID []byte
	// Counter is the counter the message carries.
	Counter uint64

	// What a reply must match besides the digest (Expect.Request): the
	// request's kind, method and recipient.
	kind      Kind
	topic, to string
	// waitUntil is when the request's lifetime ends on the monotonic
	// clock: a clockless receiver accepts its reply only before then
	// (SPEC.md §10).
	waitUntil time.Time
}

func invalid(why string) error { return errorf(ErrInvalidParams, why) }

// Seal builds the header, encrypts, then MACs and signs (SPEC.md §5).
// Mistakes in p are ErrInvalidParams; a message larger than MaxSize is
// ErrTooLarge; a failing Counter, Signer or Recipient returns its error.
func (s *Sealer) Seal(p *Params, payload []byte) (*Sealed, error) {
	return s.SealInto(nil, p, payload)
}

// SealInto is Seal writing the envelope into buf, from its start, when
// buf's capacity holds it, and into a new buffer otherwise; Sealed.Bytes is
// the envelope either way. A sender that publishes one message at a time
// can reuse one buffer and allocate no envelope: buf must then stay
// untouched until whatever reads Sealed.Bytes (a publish, a queue, a
// retransmission) is done with it. buf must not share memory with
// payload: that is ErrInvalidParams.
func (s *Sealer) SealInto(buf []byte, p *Params, payload []byte) (*Sealed, error) {
	if err := s.checkParams(p, buf, payload); err != nil {
		return nil, err
	}
	h := getHeader()
	defer putHeader(h)
	if err := s.address(h, p); err != nil {
		return nil, err
	}
	if err := s.stamp(h, p); err != nil {
		return nil, err
	}
	key, err := protect(h, p)
	if err != nil {
		return nil, err
	}
	if err := h.check(); err != nil {
		return nil, errorf(ErrInvalidParams, err.Error())
	}
	sealed := &Sealed{CorrelationID: h.corr, Counter: h.ctr, kind: h.kind, topic: h.topic,
		waitUntil: time.Now().Add(time.Duration(h.exp-h.iat) * time.Millisecond)}
	if p.CorrelationID != nil || p.InReplyTo != nil {
		// The caller's (or the request's) bytes, which may even lie in
		// buf: the Sealed keeps a copy, taken before buf is written.
		sealed.CorrelationID = bytes.Clone(h.corr)
	}
	if h.kind == Request {
		sealed.to = h.to[0]
	}
	if sealed.Bytes, sealed.Digest, err = s.write(buf, h, p, key, payload); err != nil {
		return nil, err
	}
	return sealed, nil
}

// checkParams refuses what no envelope can be made of.
func (s *Sealer) checkParams(p *Params, buf, payload []byte) error {
	switch {
	case !validID(s.ID):
		return invalid("bad sender id")
	case s.Counter == nil:
		return invalid("no counter")
	case p.HMAC == nil && p.Signer == nil && p.PSK == nil:
		return invalid("no sender authentication: set HMAC, Signer or PSK")
	case p.PSK != nil && len(p.Recipients) > 0:
		return invalid("PSK and Recipients are mutually exclusive")
	case p.TTL < 0 || p.TTL > 0 && p.TTL < time.Millisecond:
		return invalid("TTL under a millisecond")
	case overlap(buf[:cap(buf)], payload):
		return invalid("the buffer overlaps the payload")
	}
	return nil
}

// address fills the header's parties and context: for a reply, from the
// request it answers (SPEC.md §5).
func (s *Sealer) address(h *header, p *Params) error {
	h.kind, h.from = p.Kind, s.ID
	switch p.Kind {
	case Request:
		return addressRequest(h, p)
	case Event:
		if p.InReplyTo != nil || p.ReplyTo != "" || p.CorrelationID != nil {
			return invalid("an event has no InReplyTo, ReplyTo or CorrelationID")
		}
		h.to, h.topic = p.To, p.Topic
		return nil
	case Reply, ErrorReply:
		return addressReply(h, p)
	}
	return invalid("unknown kind")
}

func addressRequest(h *header, p *Params) error {
	if p.InReplyTo != nil {
		return invalid("InReplyTo is for replies")
	}
	h.to, h.topic, h.replyTo, h.corr = p.To, p.Topic, p.ReplyTo, p.CorrelationID
	if h.corr == nil {
		h.corr = make([]byte, correlationSize)
		rand.Read(h.corr)
	}
	return nil
}

func addressReply(h *header, p *Params) error {
	req := p.InReplyTo
	if req == nil || req.Kind != Request {
		return invalid("a reply needs the request in InReplyTo")
	}
	if len(p.To) > 0 || p.Topic != "" || p.ReplyTo != "" || p.CorrelationID != nil {
		return invalid("a reply takes its context from InReplyTo")
	}
	h.toRoom[0] = req.From
	h.to, h.topic = h.toRoom[:], req.Topic
	h.corr, h.re = req.CorrelationID, req.Digest[:]
	return nil
}

// stamp gives the header its counter and timestamps (SPEC.md §5).
func (s *Sealer) stamp(h *header, p *Params) error {
	ctr, err := s.Counter.Next()
	if err != nil {
		return err
	}
	now := time.Now
	if s.Now != nil {
		now = s.Now
	}
	ttl := p.TTL
	if ttl == 0 {
		ttl = DefaultTTL
	}
	t := now()
	if t.UnixMilli() < 0 {
		return invalid("clock before 1970")
	}
	h.ctr, h.iat, h.exp = ctr, uint64(t.UnixMilli()), uint64(t.Add(ttl).UnixMilli())
	return nil
}

// protect adds the protections' members to the header and returns the
// content key to encrypt with, nil for none (SPEC.md §5).
func protect(h *header, p *Params) (*aesgcm.Key, error) {
	var key *aesgcm.Key
	var err error
	switch {
	case p.PSK != nil:
		h.prot |= Encryption
		h.pskKid, key = p.PSK.id, p.PSK.key
	case len(p.Recipients) > 0:
		h.prot |= Encryption
		if key, err = wrapContentKey(h, p.Recipients); err != nil {
			return nil, err
		}
	}
	if p.HMAC != nil {
		h.prot |= HMAC
		h.macKid = p.HMAC.id
	}
	if p.HOTP != nil {
		h.prot |= HOTPCode
		h.hotpKid, h.hotpCode = p.HOTP.id, p.HOTP.key.Code(h.ctr)
	}
	if p.Signer != nil {
		h.prot |= Signature
		h.sigAlg, h.sigKid = p.Signer.Algorithm(), p.Signer.KeyID()
		if signatureCodes.code(h.sigAlg) == 0 {
			return nil, invalid("unknown signature algorithm")
		}
	}
	return key, nil
}

// wrapContentKey draws a content key, wraps it to each recipient into the
// header, and returns it.
func wrapContentKey(h *header, recipients []Recipient) (*aesgcm.Key, error) {
	if len(recipients) > maxRecipients {
		return nil, invalid("too many recipients")
	}
	cek := aesgcm.GenerateKey()
	defer clear(cek)
	h.rcpt = make([]wrappedKey, len(recipients))
	for i, r := range recipients {
		if wrapCodes.code(r.Algorithm()) == 0 {
			return nil, invalid("unknown key wrap algorithm")
		}
		wk, err := r.Wrap(cek)
		if err != nil {
			return nil, err
		}
		h.rcpt[i] = wrappedKey{alg: r.Algorithm(), kid: r.KeyID(), wk: wk}
	}
	return aesgcm.NewKey(cek)
}

// write writes the envelope of the checked header h and the payload into
// buf, or a new buffer (SPEC.md §5), and returns it with its
// digest.
func (s *Sealer) write(buf []byte, h *header, p *Params, key *aesgcm.Key, payload []byte) ([]byte, [32]byte, error) {
	var room [512]byte // the usual header fits; a longer one grows
	hdr := appendHeader(room[:0], h)
	bodyLen := len(payload)
	if key != nil {
		bodyLen += aesgcm.Overhead
	}
	// Every member's length is a u32: no envelope may be longer.
	maxSize := int(min(uint64(cmp.Or(max(s.MaxSize, 0), DefaultMaxSize)), math.MaxUint32))
	size := frameOverhead + len(hdr) + bodyLen + tagsSize(p)
	if size > maxSize {
		return nil, [32]byte{}, ErrTooLarge
	}
	if cap(buf) < size {
		buf = make([]byte, 0, size)
	}
	w := frameWriter{b: buf[:0]}
	w.header(hdr)
	w.payloadLength(bodyLen)
	if err := w.payload(key, payload, 1+lengthSize+len(hdr)); err != nil {
		return nil, [32]byte{}, err
	}
	digest := digestOf(w.b)
	if err := w.authenticate(p, authBlockOf(digest)); err != nil {
		return nil, [32]byte{}, err
	}
	if len(w.b) > maxSize {
		// Only a signer of unknown signature size gets here.
		return nil, [32]byte{}, ErrTooLarge
	}
	return w.b, digest, nil
}

// tagsSize is how long the HMAC tag and the signature p asks for are,
// where the signer tells.
func tagsSize(p *Params) int {
	n := 0
	if p.HMAC != nil {
		n += sha256.Size
	}
	if p.Signer != nil {
		n += signatureSize(p.Signer)
	}
	return n
}

// payload writes the payload, encrypted under key when it is set with the
// first aadLen bytes of the envelope, up to the end of the header, as the
// associated data: they bind the version and every header field, the
// wrapped keys too, to the ciphertext.
func (w *frameWriter) payload(key *aesgcm.Key, payload []byte, aadLen int) error {
	if key == nil {
		w.b = append(w.b, payload...)
		return nil
	}
	var err error
	w.b, err = key.Seal(w.b, payload, w.b[:aadLen])
	return err
}

// authenticate ends the envelope with the HMAC tag and the signature p
// asks for, over the authenticated block a.
func (w *frameWriter) authenticate(p *Params, a authBlock) error {
	var tag [sha256.Size]byte
	var mac, sig []byte
	if p.HMAC != nil {
		tag = p.HMAC.tag(a)
		mac = tag[:]
	}
	if p.Signer != nil {
		signed := a // a copy for the interface call: a stays on the stack
		var err error
		if sig, err = p.Signer.Sign(signed[:]); err != nil {
			return err
		}
		if !signatureSizeFits(p.Signer.Algorithm(), len(sig)) {
			return invalid("the signer made a signature of the wrong size for its algorithm")
		}
	}
	w.tags(mac, sig)
	return nil
}

// overlap reports whether a and b share any byte of memory. It compares
// the addresses of their first and last bytes; reflect reads them off
// pointers to those bytes, which (unlike a slice) need no allocation to
// pass as an interface.
func overlap(a, b []byte) bool {
	if len(a) == 0 || len(b) == 0 {
		return false
	}
	aStart, aEnd := address(&a[0]), address(&a[len(a)-1])
	bStart, bEnd := address(&b[0]), address(&b[len(b)-1])
	return aStart <= bEnd && bStart <= aEnd
}

func address(p *byte) uintptr { return reflect.ValueOf(p).Pointer() }
