package envelope

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/subtle"
	"errors"
	"time"

	"github.com/mqttsec/mqttsec/aesgcm"
)

// Message is an opened, verified message.
type Message struct {
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
	// TimeRequest marks a time request (method TimeMethod) of a peer whose
	// policy says it has no clock (Policy.Clockless), accepted whatever its
	// timestamps: answer it with an empty reply, whose issue time is the
	// answer, and act on nothing else. It is decided with the policy Open
	// applied, so a keyring reloaded meanwhile cannot change it.
	TimeRequest bool

	// Room for the usual recipient list, correlation id and request
	// digest, so that a message owns them without allocations of their
	// own.
	to  [1]string
	ids [correlationSize + 32]byte
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
	// Clockless marks a receiver without a real-time clock (SPEC.md §10):
	// it accepts only replies and errors to its pending requests, whose
	// binding proves them fresh, and checks their lifetime but not their
	// timestamps against a clock. A reply is accepted only while its
	// request is within its lifetime on the monotonic clock, counted from
	// Seal (ErrContext after). Every other message is ErrExpired. The
	// time a reply tells (Message.IssuedAt) lags the true time by at most
	// the wait: a receiver that learns its time from it should discard a
	// reply that took longer than half its skew, and never set its clock
	// back.
	Clockless bool
}

// Expect is the context in which a receiver opens a message. Every set field
// must match the authenticated header, or Open fails with ErrContext.
type Expect struct {
	// Kinds accepted, e.g. Request, or Reply|ErrorReply. Zero accepts none.
	Kinds Kind
	// From, if set, is the only accepted sender.
	From string
	// Topic, if set, must equal the header's topic (the method of a
	// request, the topic of an event). Set it from the MQTT topic the
	// message arrived on, so a request re-published to another method is
	// refused.
	Topic string
	// Request is the pending request a reply or an error must answer: its
	// digest, correlation id and method, from its recipient. Replies and
	// errors are refused without it.
	Request *Sealed
}

// Open verifies data and returns the message. The checks run in the order
// of SPEC.md §9, cheapest first; the replay window is updated last, only
// for a message that passed everything else. A failure wraps exactly one
// error class (see [Class]), except that a ctx done while the replay store
// is consulted returns ctx's error; it never reveals which key, byte or
// check inside the class failed, and nothing about the failure should be
// sent to the peer.
func (o *Opener) Open(ctx context.Context, data []byte, want *Expect) (*Message, error) {
	h := getHeader()
	defer putHeader(h)
	f, err := parse(h, data, o.MaxSize) // steps 1 to 3
	if err != nil {
		return nil, err
	}
	return o.open(ctx, f, h, want)
}

// open takes Open's steps from 4 on, for the frame f and its header h.
func (o *Opener) open(ctx context.Context, f frame, h *header, want *Expect) (*Message, error) {
	if err := o.checkContext(h, want); err != nil { // 4
		return nil, err
	}
	peer, seen, err := o.admissible(h) // 5 and 6
	if err != nil {
		return nil, err
	}
	keys, err := o.resolveKeys(peer, h) // 7
	if err != nil {
		return nil, err
	}
	digest := f.digest()
	auth := authBlockOf(digest)
	if err := keys.checkSymmetric(h, f.mac, auth); err != nil { // 8
		return nil, err
	}
	if err := o.checkSignedOrSealed(ctx, &f, seen, keys, auth); err != nil { // 9 and 10
		return nil, err
	}
	payload, err := keys.decrypt(&f) // 11
	if err != nil {
		return nil, err
	}
	// 12. Record the counter; the atomic Admit settles races between
	// duplicates that passed Check together.
	if err := o.Replay.Admit(ctx, seen); err != nil {
		return nil, replayError(err)
	}
	m := newMessage(h, payload, digest)
	m.TimeRequest = peer.Policy.timeRequest(h)
	return m, nil
}

// parse runs Open's steps 1 to 3 into h: the size (before anything is
// read; maxSize 0 means DefaultMaxSize), the frame, and the header with the
// members it sizes. The strings of h are cut from one copy of the header,
// which nothing else holds.
func parse(h *header, data []byte, maxSize int) (frame, error) {
	if len(data) > maxSizeOr(maxSize) {
		return frame{}, ErrTooLarge
	}
	f, err := readFrame(data)
	if err != nil {
		return frame{}, err
	}
	text := string(f.header)
	if err := readHeader(h, f.header, text); err != nil {
		return frame{}, err
	}
	h.text = text
	if err := f.checkMembers(h); err != nil {
		return frame{}, err
	}
	return f, nil
}

// maxSizeOr is maxSize, or DefaultMaxSize for 0 (or less).
func maxSizeOr(maxSize int) int {
	if maxSize <= 0 {
		return DefaultMaxSize
	}
	return maxSize
}

// checkContext is step 4: the message is for this receiver, of a kind,
// sender and topic it expects, and a reply answers its pending request.
func (o *Opener) checkContext(h *header, want *Expect) error {
	if len(h.to) > 0 && !contains(h.to, o.ID) {
		return errorf(ErrContext, "not addressed to this receiver")
	}
	if want == nil {
		want = &Expect{}
	}
	switch {
	case want.Kinds&h.kind == 0:
		return errorf(ErrContext, "unexpected message kind")
	case want.From != "" && want.From != h.from:
		return errorf(ErrContext, "unexpected sender")
	case want.Topic != "" && want.Topic != h.topic:
		return errorf(ErrContext, "topic does not match")
	}
	if h.kind == Reply || h.kind == ErrorReply {
		return answers(h, want.Request, o.Clockless)
	}
	return nil
}

// answers checks that a reply or error answers req: its digest (compared
// in constant time), correlation id and method, from its recipient. A
// clockless receiver, which has only the binding to prove a reply fresh,
// also stops waiting for it when the request's lifetime is over on the
// monotonic clock.
func answers(h *header, req *Sealed, clockless bool) error {
	switch {
	case req == nil || req.kind != Request:
		return errorf(ErrContext, "no pending request")
	case clockless && !time.Now().Before(req.waitUntil):
		return errorf(ErrContext, "no longer waiting for the request")
	case subtle.ConstantTimeCompare(req.Digest[:], h.re) != 1:
		return errorf(ErrContext, "reply to another request")
	case !bytes.Equal(req.CorrelationID, h.corr) || req.topic != h.topic || req.to != h.from:
		return errorf(ErrContext, "reply does not match its request")
	}
	return nil
}

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}

// admissible runs steps 5 and 6: the sender is known, the message is as
// protected as its policy demands, and fresh. It returns the sender and
// what the replay store is told of the message.
func (o *Opener) admissible(h *header) (*Peer, Seen, error) {
	if o.Keys == nil {
		return nil, Seen{}, errorf(ErrUnknownKey, "no keyring")
	}
	peer := o.Keys.Peer(h.from)
	if peer == nil {
		return nil, Seen{}, errorf(ErrUnknownKey, "unknown sender")
	}
	if err := peer.Policy.check(h); err != nil {
		return nil, Seen{}, err
	}
	now := time.Now
	if o.Now != nil {
		now = o.Now
	}
	seen, err := peer.Policy.freshness(h, now(), o.Clockless)
	if err != nil {
		return nil, Seen{}, err
	}
	if o.Replay == nil {
		return nil, Seen{}, errorf(ErrReplayStore, "no replay store")
	}
	return peer, seen, nil
}

var errUnknownKeyID = errorf(ErrUnknownKey, "no key with this id")

// resolvedKeys are the keys a message's header names, found in step 7.
type resolvedKeys struct {
	mac      *HMACKey
	hotp     *HOTPKey
	verifier Verifier
	psk      *aesgcm.Key
	identity Identity
	wrapped  []byte
}

// resolveKeys is step 7: every key the header names is one the receiver
// holds, for this sender or (a wrapped key) for itself.
func (o *Opener) resolveKeys(peer *Peer, h *header) (resolvedKeys, error) {
	var k resolvedKeys
	if h.prot&HMAC != 0 {
		if k.mac = peer.hmacKey(h.macKid); k.mac == nil {
			return resolvedKeys{}, errUnknownKeyID
		}
	}
	if h.prot&HOTPCode != 0 {
		if k.hotp = peer.hotpKey(h.hotpKid); k.hotp == nil {
			return resolvedKeys{}, errUnknownKeyID
		}
	}
	if h.prot&Signature != 0 {
		if k.verifier = peer.verifier(h.sigAlg, h.sigKid); k.verifier == nil {
			return resolvedKeys{}, errUnknownKeyID
		}
	}
	if h.preShared() {
		a := peer.aeadKey(h.pskKid)
		if a == nil {
			return resolvedKeys{}, errUnknownKeyID
		}
		k.psk = a.key
	}
	for _, w := range h.rcpt {
		if id := o.Keys.Identity(w.kid); id != nil && id.Algorithm() == w.alg {
			k.identity, k.wrapped = id, w.wk
			break
		}
	}
	if len(h.rcpt) > 0 && k.identity == nil {
		return resolvedKeys{}, errUnknownKeyID
	}
	return k, nil
}

// checkSymmetric is step 8: the HMAC tag over the authenticated block a
// (in constant time) and the HOTP code for the counter, with the key's
// number of digits.
func (k *resolvedKeys) checkSymmetric(h *header, mac []byte, a authBlock) error {
	if k.mac != nil {
		tag := k.mac.tag(a)
		if !hmac.Equal(tag[:], mac) {
			return ErrAuthentication
		}
	}
	if k.hotp != nil && !k.hotp.key.Verify(h.hotpCode, h.ctr) {
		return ErrAuthentication
	}
	return nil
}

// checkSignedOrSealed runs steps 9 and 10 for a message with a signature
// or encryption: a read-only look at the replay window, so that a replay
// is shed before public-key work and decryption, then the signature. A
// message with neither has nothing left to shed: Admit (step 12) refuses
// a replay with the same class, one request sooner.
func (o *Opener) checkSignedOrSealed(ctx context.Context, f *frame, seen Seen, k resolvedKeys, a authBlock) error {
	if k.verifier == nil && k.psk == nil && k.identity == nil {
		return nil
	}
	if err := o.Replay.Check(ctx, seen); err != nil {
		return replayError(err)
	}
	if k.verifier != nil {
		signed := a // a copy for the interface call: a stays on the stack
		if k.verifier.Verify(signed[:], f.sig) != nil {
			return ErrAuthentication
		}
	}
	return nil
}

// decrypt is step 11: the payload, decrypted when it is encrypted, in a
// buffer of the message's own.
func (k *resolvedKeys) decrypt(f *frame) ([]byte, error) {
	key := k.psk
	if k.identity != nil {
		var err error
		if key, err = unwrap(k.identity, k.wrapped); err != nil {
			return nil, err
		}
	}
	if key == nil {
		return bytes.Clone(f.payload), nil
	}
	payload, err := key.Open(make([]byte, 0, len(f.payload)-aesgcm.Overhead), f.payload, f.associatedData())
	if err != nil {
		return nil, ErrDecryption
	}
	return payload, nil
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

// newMessage is the opened message of header h.
func newMessage(h *header, payload []byte, digest [32]byte) *Message {
	m := &Message{
		Kind:        h.kind,
		From:        h.from,
		Topic:       h.topic,
		ReplyTo:     h.replyTo,
		Counter:     h.ctr,
		IssuedAt:    h.issuedAt(),
		ExpiresAt:   h.expiresAt(),
		Protections: h.prot,
		Payload:     payload,
	}
	if len(h.to) > 0 {
		m.To = append(m.to[:0:len(m.to)], h.to...)
	}
	ids := append(append(m.ids[:0], h.corr...), h.re...)
	if len(h.corr) > 0 {
		m.CorrelationID = ids[:len(h.corr):len(h.corr)]
	}
	if len(h.re) > 0 {
		m.InReplyTo = ids[len(h.corr):len(ids):len(ids)]
	}
	if h.kind == Request {
		m.Digest = digest
	}
	return m
}

// replayError keeps a context error a context error and a replay a
// replay; any other store failure refuses the message as ErrReplayStore,
// wrapping the store's error: a store that cannot answer must not admit.
func replayError(err error) error {
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) || errors.Is(err, ErrReplayed) {
		return err
	}
	return &storeError{err}
}
