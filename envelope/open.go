package envelope

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"crypto/subtle"
	"errors"
	"strings"
	"sync"
	"time"

	"github.com/mqttsec/mqttsec/aesgcm"
)

// Message is an opened, verified message.
type Message struct {
	Version       int // envelope format: Version1, Version2 or Version3
	Kind          Kind
	From          string   // authenticated sender id
	To            []string // recipient ids (empty: an event to any subscriber)
	Topic         string   // method of a request, topic of an event
	ReplyTo       string   // requests only
	CorrelationID []byte   // requests, replies and errors
	InReplyTo     []byte   // replies and errors: digest of the request answered
	Counter       uint64
	IssuedAt      time.Time
	ExpiresAt     time.Time
	Protections   Protection
	Payload       []byte
	// Digest identifies a request (it is zero for other kinds); Seal of a
	// reply copies it into the reply's header.
	Digest [32]byte

	// Room for the usual recipient list, correlation id and request digest,
	// so that a message owns them without allocations of their own.
	to  [1]string
	ids [correlationSize + sha256.Size]byte
}

// ownedStrings copies the strings of w that a message keeps out of the
// message's bytes, into one new allocation; the recipients are appended to
// to.
func ownedStrings(w *wireHeader, to []string) (from, topic, replyTo string, recipients []string) {
	n := len(w.From) + len(w.Topic) + len(w.ReplyTo)
	for _, r := range w.To {
		n += len(r)
	}
	text := make([]byte, 0, n)
	text = append(append(append(text, w.From...), w.Topic...), w.ReplyTo...)
	for _, r := range w.To {
		text = append(text, r...)
	}
	all := borrow(text) // text is the message's own, and never changes
	take := func(s string) string {
		out := all[:len(s)]
		all = all[len(s):]
		return out
	}
	from, topic, replyTo = take(w.From), take(w.Topic), take(w.ReplyTo)
	for _, r := range w.To {
		to = append(to, take(r))
	}
	return from, topic, replyTo, to
}

// keep copies the recipients, correlation id and request digest into m:
// the recipients from ownedStrings, the ids out of the parse state of Open.
func (m *Message) keep(to []string, corr, re []byte) {
	if len(to) > 0 {
		m.To = append(m.to[:0:len(m.to)], to...)
	}
	m.CorrelationID, m.InReplyTo = copyIDs(m.ids[:0], corr, re)
}

// copyIDs copies a correlation id and a request digest into buf, or into
// a new buffer when they do not fit, and returns the copies (nil for an
// empty one). The correlation id is capped at its length, so that
// appending to it never writes into the digest.
func copyIDs(buf, corr, re []byte) (corrCopy, reCopy []byte) {
	n := len(corr) + len(re)
	if n > cap(buf) {
		buf = make([]byte, 0, n)
	}
	ids := append(append(buf[:0], corr...), re...)
	if len(corr) > 0 {
		corrCopy = ids[:len(corr):len(corr)]
	}
	if len(re) > 0 {
		reCopy = ids[len(corr):n:n]
	}
	return corrCopy, reCopy
}

// Opener opens messages on behalf of one receiver.
type Opener struct {
	// ID is the receiver's id: a message must name it among its recipients
	// (an event without recipients is for any receiver).
	ID string
	// Keys holds the peers and the receiver's own decryption keys.
	Keys Keyring
	// Replay keeps the per-sender replay windows.
	Replay ReplayStore
	// Now returns the current time; nil means time.Now.
	Now func() time.Time
	// MaxSize is the largest envelope accepted; zero means DefaultMaxSize.
	MaxSize int
}

// Open verifies data and returns the message. The checks run in the order of
// SPEC.md §9, cheapest first; the replay window is updated last, only for a
// message that passed everything else. A failure wraps exactly one error
// class (see [Class]); it never reveals which key, byte or check inside the
// class failed, and nothing about the failure should be sent to the peer.
func (o *Opener) Open(ctx context.Context, data []byte, want *Expect) (*Message, error) {
	// 1-3. Size, outer form and version, header.
	p := parsedPool.Get().(*parsed)
	defer func() {
		*p = parsed{}
		parsedPool.Put(p)
	}()
	h, err := parseChecked(p, data, o.MaxSize, true)
	if err != nil {
		return nil, err
	}
	return o.open(ctx, &p.env, h, want)
}

// OpenInspected opens the envelope Inspect returned h for, running Open's
// steps from 4 on without parsing it again: a receiver that looked at the
// header to route a message pays for the parse once. The checks and errors
// are Open's. Inspect's size limit applies, not the Opener's MaxSize.
func (o *Opener) OpenInspected(ctx context.Context, h *Header, want *Expect) (*Message, error) {
	if h == nil || h.env == nil {
		return nil, errorf(ErrMalformed, "header did not come from Inspect")
	}
	// Inspect decoded only the header member; this call decodes the rest
	// into its own copy, so that one Header may be opened concurrently.
	env := *h.env
	if err := env.decodeBody(nil); err != nil {
		return nil, err
	}
	return o.open(ctx, &env, h.parsed, want)
}

// open runs Open's steps 4 to 12 on a parsed envelope.
func (o *Opener) open(ctx context.Context, env *Envelope, h *header, want *Expect) (*Message, error) {
	w := h.wire
	// 4. Context: addressed to us, the expected kind, sender, topic, request.
	if err := o.checkContext(h, want); err != nil {
		return nil, err
	}
	// 5. Policy of the sender.
	if o.Keys == nil {
		return nil, errorf(ErrUnknownKey, "no keyring")
	}
	// The header's strings point into the message's bytes (see
	// readCompactHeader), which are the caller's: what leaves this call is
	// copied, here, before the keyring and the replay store (which may keep
	// the sender id) see any of it.
	var toRoom [1]string
	from, topic, replyTo, to := ownedStrings(w, toRoom[:0])
	peer := o.Keys.Peer(from)
	if peer == nil {
		return nil, errorf(ErrUnknownKey, "unknown sender")
	}
	if err := peer.Policy.check(h); err != nil {
		return nil, err
	}
	// 6. Freshness: the timestamps.
	now := time.Now
	if o.Now != nil {
		now = o.Now
	}
	if err := peer.Policy.checkTime(h, now()); err != nil {
		return nil, err
	}
	if o.Replay == nil {
		return nil, errorf(ErrReplayStore, "no replay store")
	}
	// 7. Keys named by the header.
	keys, err := o.resolveKeys(peer, w)
	if err != nil {
		return nil, err
	}
	// The message is hashed once; the MAC and signature cover the digest.
	digest := env.signingInput().digest()
	auth := authBlockOf(env.Version, digest)
	// 8. Symmetric checks: HMAC, then the HOTP code.
	if keys.mac != nil {
		tag := keys.mac.tag(auth)
		if len(env.MAC) != len(tag) || !hmac.Equal(tag[:], env.MAC) {
			return nil, ErrAuthentication
		}
	}
	if keys.hotp != nil {
		if !keys.hotp.key.Verify(w.HOTP.Code, w.Ctr) {
			return nil, ErrAuthentication
		}
	}
	// 9. A read-only look at the replay window: replays are shed before
	// public-key work and decryption, and forged messages that an HMAC
	// refuses never reach the store (which may be a network service).
	// Without a signature or encryption nothing is left to shed: Admit
	// (step 12) refuses a replay with the same class, one request sooner.
	skew := peer.Policy.ClockSkew()
	seen := Seen{Sender: from, Counter: w.Ctr, IssuedAt: h.issuedAt, ExpiresAt: h.expiresAt.Add(skew), Skew: skew}
	if keys.verifier != nil || w.Enc != nil {
		if err := o.Replay.Check(ctx, seen); err != nil {
			return nil, replayError(err)
		}
	}
	// 10. Public-key signature.
	if keys.verifier != nil {
		signed := auth // a copy for the interface call: auth stays on the stack
		if env.Signature == nil || keys.verifier.Verify(signed[:], env.Signature) != nil {
			return nil, ErrAuthentication
		}
	}
	// 11. Decryption.
	// Version 1 decoded the payload into this call's own buffer; version
	// 2's is the caller's bytes, which the message must not share.
	payload := env.Payload
	owned := env.Version == Version1
	if w.Enc != nil {
		key := keys.psk
		if key == nil {
			if key, err = unwrap(keys.identity, keys.wrapped); err != nil {
				return nil, err
			}
		}
		// Decrypted in place when the buffer is this call's own, into a
		// new one otherwise.
		dst := env.Payload[:0]
		if !owned {
			dst = make([]byte, 0, max(0, len(env.Payload)-aesgcm.Overhead))
		}
		if payload, err = key.Open(dst, env.Payload, env.rawHeader); err != nil {
			return nil, ErrDecryption
		}
		owned = true
	}
	// 12. Record the counter; the atomic Admit settles races between
	// duplicates that passed Check together.
	if err := o.Replay.Admit(ctx, seen); err != nil {
		return nil, replayError(err)
	}
	if !owned {
		payload = bytes.Clone(payload)
	}
	m := &Message{
		Version:     env.Version,
		Kind:        h.kind,
		From:        from,
		Topic:       topic,
		ReplyTo:     replyTo,
		Counter:     w.Ctr,
		IssuedAt:    h.issuedAt,
		ExpiresAt:   h.expiresAt,
		Protections: h.prot,
		Payload:     payload,
	}
	m.keep(to, h.corr, h.re)
	if h.kind == Request {
		m.Digest = digest
	}
	return m, nil
}

// parseChecked runs Open's steps 1 to 3: the size (before anything is
// parsed; maxSize 0 means DefaultMaxSize), the outer form and version, and
// the canonical, structurally valid header with exactly the tags it
// declares. A declared tag that is missing (stripped) is left for the
// authentication steps to refuse. Without body, the payload, MAC and
// signature members are found but not yet decoded (see decodeBody). It
// fills p, and the header it returns lives in p.
func parseChecked(p *parsed, data []byte, maxSize int, body bool) (*header, error) {
	if maxSize <= 0 {
		maxSize = DefaultMaxSize
	}
	if len(data) > maxSize {
		return nil, ErrTooLarge
	}
	env := &p.env
	if err := parseOuter(env, data); err != nil {
		return nil, err
	}
	if err := env.decodeMembers(body); err != nil {
		return nil, err
	}
	if !body {
		// Step 2 covers every member, decoded now or later.
		if err := env.checkBody(); err != nil {
			return nil, err
		}
	}
	if err := decodeHeaderBlock(&p.blk, env.Version, env.Header); err != nil {
		return nil, err
	}
	h, err := p.blk.validate(env.Version)
	if err != nil {
		return nil, err
	}
	if env.rawMAC != nil && h.prot&HMAC == 0 {
		return nil, errorf(ErrMalformed, "mac member not declared in the header")
	}
	if env.rawSig != nil && h.prot&Signature == 0 {
		return nil, errorf(ErrMalformed, "sig member not declared in the header")
	}
	return h, nil
}

// parsed is what parseChecked fills: an envelope and the block of its
// header.
type parsed struct {
	env Envelope
	blk headerBlock
}

// parsedPool keeps Open's parse state between calls: nothing a Message
// holds points into it (see Opener.open), and it is cleared before it goes
// back.
var parsedPool = sync.Pool{New: func() any { return new(parsed) }}

// replayError keeps a context error a context error and a replay a
// replay; any other store failure refuses the message as ErrReplayStore,
// wrapping the store's error: a store that cannot answer must not admit.
func replayError(err error) error {
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) || errors.Is(err, ErrReplayed) {
		return err
	}
	return &storeError{err}
}

func (o *Opener) checkContext(h *header, want *Expect) error {
	w := h.wire
	if len(w.To) > 0 {
		found := false
		for _, to := range w.To {
			if to == o.ID {
				found = true
			}
		}
		if !found {
			return errorf(ErrContext, "not addressed to this receiver")
		}
	}
	if want == nil {
		want = &Expect{}
	}
	if want.Kinds&h.kind == 0 {
		return errorf(ErrContext, "unexpected message kind")
	}
	if want.From != "" && want.From != w.From {
		return errorf(ErrContext, "unexpected sender")
	}
	if want.Topic != "" && want.Topic != w.Topic {
		return errorf(ErrContext, "topic does not match")
	}
	if h.kind == Reply || h.kind == ErrorReply {
		if len(want.InReplyTo) != 32 || subtle.ConstantTimeCompare(want.InReplyTo, h.re) != 1 {
			return errorf(ErrContext, "reply to another request")
		}
		if want.CorrelationID != nil && !bytes.Equal(want.CorrelationID, h.corr) {
			return errorf(ErrContext, "correlation id does not match")
		}
	}
	return nil
}

var errUnknownKeyID = errorf(ErrUnknownKey, "no key with this id")

type resolvedKeys struct {
	mac      *HMACKey
	hotp     *HOTPKey
	verifier Verifier
	psk      *aesgcm.Key
	identity Identity
	wrapped  []byte
}

func (o *Opener) resolveKeys(peer *Peer, w *wireHeader) (resolvedKeys, error) {
	var k resolvedKeys
	if w.MAC != nil {
		if k.mac = peer.hmacKey(w.MAC.Kid); k.mac == nil {
			return resolvedKeys{}, errUnknownKeyID
		}
	}
	if w.HOTP != nil {
		if k.hotp = peer.hotpKey(w.HOTP.Kid); k.hotp == nil {
			return resolvedKeys{}, errUnknownKeyID
		}
	}
	if w.Sig != nil {
		if k.verifier = peer.verifier(w.Sig.Alg, w.Sig.Kid); k.verifier == nil {
			return resolvedKeys{}, errUnknownKeyID
		}
	}
	if w.Enc != nil {
		if w.Enc.Kid != "" {
			a := peer.aeadKey(w.Enc.Kid)
			if a == nil {
				return resolvedKeys{}, errUnknownKeyID
			}
			k.psk = a.key
		} else {
			for _, r := range w.Enc.Rcpt {
				id := o.Keys.Identity(strings.Clone(r.Kid)) // a copy: see open
				if id == nil || id.Algorithm() != r.Alg {
					continue
				}
				wk, err := decodeInto(nil, r.WK, maxWrappedSize)
				if err != nil {
					return resolvedKeys{}, errorf(ErrMalformed, "bad wrapped key")
				}
				k.identity, k.wrapped = id, wk
				break
			}
			if k.identity == nil {
				return resolvedKeys{}, errUnknownKeyID
			}
		}
	}
	return k, nil
}

func unwrap(id Identity, wrapped []byte) (*aesgcm.Key, error) {
	cek, err := id.Unwrap(wrapped)
	if err != nil || len(cek) != aesgcm.KeySize {
		return nil, ErrDecryption
	}
	key, err := aesgcm.NewKey(cek)
	clear(cek)
	if err != nil {
		return nil, ErrDecryption
	}
	return key, nil
}
