package envelope

import (
	"crypto/rand"
	"crypto/sha256"
	"sync"
	"time"
	"unsafe"

	"github.com/mqttsec/mqttsec/aesgcm"
)

// DefaultTTL is the lifetime Seal gives a message when Params.TTL is zero.
const DefaultTTL = 60 * time.Second

// sealScratch is what Seal builds a header in: the header block and the
// buffer the header is written to (JSON, or compact in version 3), which
// Seal copies into the envelope at once. Nothing Seal returns points into
// either, so each goes back to sealScratches, cleared, when Seal returns.
type sealScratch struct {
	blk    headerBlock
	header []byte
}

var sealScratches = sync.Pool{New: func() any { return &sealScratch{header: make([]byte, 0, 512)} }}

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
	// Version is the envelope format: Version1, Version2 or Version3. Zero means
	// the version of the request for a Reply or ErrorReply (so a reply
	// reaches its requester in the form it speaks), and Version otherwise.
	Version int

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
	// Digest identifies the message; a reply to a request carries it, and
	// Expect.InReplyTo takes it.
	Digest [32]byte
	// CorrelationID is the request's correlation id.
	CorrelationID []byte
	// Counter is the counter the message carries.
	Counter uint64
}

func invalid(why string) error { return errorf(ErrInvalidParams, why) }

// Seal builds the header, encrypts, then MACs and signs, per SPEC.md §4.
func (s *Sealer) Seal(p *Params, payload []byte) (*Sealed, error) {
	return s.seal(nil, p, payload, nil)
}

// SealInto is Seal writing the envelope into buf, from its start, when
// buf's capacity holds it, and into a new buffer otherwise; Sealed.Bytes is
// the envelope either way. A sender that publishes one message at a time
// can reuse one buffer and allocate no envelope: buf must then stay
// untouched until whatever reads Sealed.Bytes (a publish, a queue, a
// retransmission) is done with it. buf must not share memory with
// payload: that is ErrInvalidParams.
func (s *Sealer) SealInto(buf []byte, p *Params, payload []byte) (*Sealed, error) {
	return s.seal(buf, p, payload, nil)
}

// seal is SealInto with a hook for tests: when edit is set, it may change
// the header before it is encoded, and the parameter and header checks
// that would refuse the result are skipped.
func (s *Sealer) seal(buf []byte, p *Params, payload []byte, edit func(*wireHeader)) (*Sealed, error) {
	if !validID(s.ID) {
		return nil, invalid("bad sender id")
	}
	if s.Counter == nil {
		return nil, invalid("no counter")
	}
	if p.HMAC == nil && p.Signer == nil && p.PSK == nil && edit == nil {
		return nil, errorf(ErrInvalidParams, "no sender authentication: set HMAC, Signer or PSK")
	}
	if p.PSK != nil && len(p.Recipients) > 0 {
		return nil, invalid("PSK and Recipients are mutually exclusive")
	}
	now := time.Now
	if s.Now != nil {
		now = s.Now
	}
	ttl := p.TTL
	if ttl == 0 {
		ttl = DefaultTTL
	}
	if ttl < time.Millisecond {
		return nil, invalid("TTL under a millisecond")
	}
	version := p.Version
	if version == 0 {
		version = Version
		if req := p.InReplyTo; req != nil && req.Version != 0 {
			version = req.Version
		}
	}
	if version != Version1 && !framed(version) {
		return nil, invalid("unknown envelope version")
	}
	scratch := sealScratches.Get().(*sealScratch)
	defer func() {
		scratch.blk = headerBlock{}
		scratch.header = scratch.header[:0]
		sealScratches.Put(scratch)
	}()
	blk := &scratch.blk
	w := &blk.wire
	// The header's base64url members are written into the block, which
	// nothing outside Seal sees.
	text := blk.text[:0]
	encode := func(b []byte) string { return appendText(&text, b) }
	*w = wireHeader{V: version, Kind: p.Kind.wire(), From: s.ID}
	var corr []byte
	switch p.Kind {
	case Request, Event:
		if p.InReplyTo != nil {
			return nil, invalid("InReplyTo is for replies")
		}
		w.To = p.To
		w.Topic = p.Topic
		if p.Kind == Request {
			w.ReplyTo = p.ReplyTo
			corr = p.CorrelationID
			if corr == nil {
				corr = make([]byte, correlationSize)
				rand.Read(corr)
			}
			w.Corr = encode(corr)
		}
	case Reply, ErrorReply:
		req := p.InReplyTo
		if req == nil || req.Kind != Request {
			return nil, invalid("a reply needs the request in InReplyTo")
		}
		if len(p.To) > 0 || p.Topic != "" || p.CorrelationID != nil {
			return nil, invalid("a reply takes its context from InReplyTo")
		}
		blk.to[0] = req.From
		w.To = blk.to[:]
		w.Topic = req.Topic
		corr = req.CorrelationID
		w.Corr = encode(corr)
		w.Re = encode(req.Digest[:])
	default:
		return nil, invalid("unknown kind")
	}
	ctr, err := s.Counter.Next()
	if err != nil {
		return nil, err
	}
	w.Ctr = ctr
	t := now()
	w.Iat = t.UnixMilli()
	w.Exp = t.Add(ttl).UnixMilli()

	var prot Protection
	var contentKey *aesgcm.Key
	if p.PSK != nil {
		prot |= Encryption
		w.Enc = &encParams{Alg: A256GCM, Kid: p.PSK.id}
		contentKey = p.PSK.key
	} else if len(p.Recipients) > 0 {
		prot |= Encryption
		cek := aesgcm.GenerateKey()
		if contentKey, err = aesgcm.NewKey(cek); err != nil {
			return nil, err
		}
		w.Enc = &encParams{Alg: A256GCM, Rcpt: make([]wrappedKey, len(p.Recipients))}
		for i, r := range p.Recipients {
			wk, err := r.Wrap(cek)
			if err != nil {
				return nil, err
			}
			w.Enc.Rcpt[i] = wrappedKey{Alg: r.Algorithm(), Kid: r.KeyID(), WK: b64.EncodeToString(wk)}
		}
		clear(cek)
	}
	if p.HMAC != nil {
		prot |= HMAC
		blk.mac = macParams{Alg: HS256, Kid: p.HMAC.id}
		w.MAC = &blk.mac
	}
	if p.HOTP != nil {
		prot |= HOTPCode
		w.HOTP = &hotpParams{Kid: p.HOTP.id, Code: p.HOTP.key.Code(ctr)}
	}
	if p.Signer != nil {
		prot |= Signature
		blk.sig = sigParams{Alg: p.Signer.Algorithm(), Kid: p.Signer.KeyID()}
		w.Sig = &blk.sig
	}
	if prot != 0 {
		w.Prot = blk.prot[:0]
		for _, n := range protectionNames {
			if prot&n.p != 0 {
				w.Prot = append(w.Prot, n.wire)
			}
		}
	}
	if edit != nil {
		edit(w)
	} else if _, err := blk.validate(version); err != nil {
		// The header must pass the receiver's structural checks.
		return nil, errorf(ErrInvalidParams, err.Error())
	}
	var hdr []byte
	switch {
	case version == Version3:
		// Compact: validate accepted every field, so it fits the form.
		if hdr, err = appendCompactHeader(scratch.header[:0], w); err != nil {
			return nil, err
		}
		scratch.header = hdr
	case edit != nil:
		if hdr, err = encodeHeader(w); err != nil {
			return nil, err
		}
	default:
		// validate accepted every string, and so none needs an escape.
		hdr = appendHeader(scratch.header[:0], w)
		scratch.header = hdr // kept, grown or not, for the next Seal
	}
	maxSize := s.MaxSize
	if maxSize <= 0 {
		maxSize = DefaultMaxSize
	}
	// The envelope is written into one buffer of its final size; the header
	// and payload inside it are what the AEAD, digest, MAC and signature
	// read.
	bodyLen := len(payload)
	if contentKey != nil {
		bodyLen += aesgcm.Overhead
	}
	f := framing(version)
	size := f.size(len(hdr), bodyLen)
	if p.HMAC != nil {
		size += f.member(sha256.Size)
	}
	if p.Signer != nil {
		size += f.member(signatureSize(p.Signer))
	}
	if size > maxSize {
		return nil, ErrTooLarge
	}
	if overlap(buf[:cap(buf)], payload) {
		return nil, invalid("the buffer overlaps the payload")
	}
	if cap(buf) < size {
		buf = make([]byte, 0, size)
	}
	out := f.start(buf[:0], hdr)
	h := out[len(out)-f.encodedLen(len(hdr)):]
	out = f.payloadStart(out, bodyLen)
	if contentKey != nil {
		// The header as sent is the associated data: it binds every header
		// field, including the wrapped keys, to the ciphertext.
		if framed(version) {
			// Encrypted straight into the envelope.
			if out, err = contentKey.Seal(out, payload, h); err != nil {
				return nil, err
			}
		} else {
			body, err := contentKey.Seal(make([]byte, 0, bodyLen), payload, h)
			if err != nil {
				return nil, err
			}
			out = b64.AppendEncode(out, body)
		}
	} else {
		out = f.appendMember(out, payload)
	}
	pt := out[len(out)-f.encodedLen(bodyLen):]

	digest := signingInput{v: version, h: h, p: pt}.digest()
	auth := authBlockOf(version, digest)
	var tag, sig []byte
	if p.HMAC != nil {
		t := p.HMAC.tag(auth)
		tag = t[:]
	}
	if p.Signer != nil {
		signed := auth // a copy for the interface call: auth stays on the stack
		if sig, err = p.Signer.Sign(signed[:]); err != nil {
			return nil, err
		}
	}
	out = f.finish(out, tag, sig)
	if len(out) > maxSize {
		// Only a signer of unknown signature size gets here.
		return nil, ErrTooLarge
	}
	return &Sealed{Bytes: out, Digest: digest, CorrelationID: corr, Counter: ctr}, nil
}

// overlap reports whether a and b share any byte of memory.
func overlap(a, b []byte) bool {
	if len(a) == 0 || len(b) == 0 {
		return false
	}
	aStart, bStart := uintptr(unsafe.Pointer(&a[0])), uintptr(unsafe.Pointer(&b[0]))
	return aStart <= bStart+uintptr(len(b)-1) && bStart <= aStart+uintptr(len(a)-1)
}
