package envelope

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

// fakeKid is a Signer that names another key's id.
type fakeKid struct {
	Signer
	kid KeyID
}

func (f *fakeKid) KeyID() KeyID { return f.kid }

// TestOpenRejects changes a valid envelope the ways a broker (or a peer)
// can, or opens it in a context that does not fit it, and checks the class
// of each refusal. Unless a case says otherwise the envelope is a request
// with an HMAC and an Ed25519 signature.
func TestOpenRejects(t *testing.T) {
	type tc struct {
		name      string
		params    func(w *world, p *Params)
		policy    Policy
		expect    *Expect
		nilExpect bool
		mutate    func(w *world, b []byte) []byte
		before    func(w *world, o *Opener)
		want      error
		// sealedBad: the envelope as sealed is refused too (a wrong key,
		// a lifetime over the default).
		sealedBad bool
	}
	edit := func(change func(p *splitParts)) func(*world, []byte) []byte {
		return func(w *world, b []byte) []byte { return editEnvelope(w.t, b, change) }
	}
	rewrite := func(change func(h *header, p *splitParts)) func(*world, []byte) []byte {
		return func(w *world, b []byte) []byte { return rewriteEnvelope(w.t, b, change) }
	}
	flip := func(b []byte, i int) []byte {
		out := bytes.Clone(b)
		out[i] ^= 0x01
		return out
	}
	bytesOf := func(b []byte) func(*world, []byte) []byte { return func(*world, []byte) []byte { return b } }
	hmacAndX25519 := func(w *world, p *Params) { p.HMAC, p.Recipients = w.hmac, []Recipient{w.x25519} }
	tests := []tc{
		// Steps 1 and 2: size and frame.
		{name: "too large", before: func(w *world, o *Opener) { o.MaxSize = 100 }, want: ErrTooLarge},
		{name: "empty", mutate: bytesOf(nil), want: ErrMalformed},
		{name: "text", mutate: bytesOf([]byte("hello")), want: ErrMalformed},
		{name: "an old JSON envelope", mutate: bytesOf([]byte(`{"v":1,"h":"e30","p":""}`)), want: ErrMalformed},
		{name: "armored (base64url) envelope", mutate: func(_ *world, b []byte) []byte {
			return []byte(base64.RawURLEncoding.EncodeToString(b))
		}, want: ErrMalformed},
		{name: "version byte 0x02", mutate: func(_ *world, b []byte) []byte { return append([]byte{0x02}, b[1:]...) }, want: ErrUnsupportedVersion},
		{name: "version byte 0x00", mutate: func(_ *world, b []byte) []byte { return append([]byte{0x00}, b[1:]...) }, want: ErrMalformed},
		{name: "a byte appended", mutate: func(_ *world, b []byte) []byte { return append(bytes.Clone(b), 0) }, want: ErrMalformed},
		{name: "last byte cut", mutate: func(_ *world, b []byte) []byte { return b[:len(b)-1] }, want: ErrMalformed},
		// Step 3: the header and the members it sizes.
		{name: "kind byte 0x03 (two kinds)", mutate: edit(func(p *splitParts) { p.header[0] = 0x03 }), want: ErrMalformed},
		{name: "protection bit 0x10", mutate: edit(func(p *splitParts) { p.header[1] |= 0x10 }), want: ErrMalformed},
		{name: "signature algorithm code 0", mutate: rewrite(func(h *header, _ *splitParts) { h.sigAlg = "none" }), want: ErrMalformed},
		{name: "a byte after the header's last field", mutate: edit(func(p *splitParts) { p.header = append(p.header, 0) }), want: ErrMalformed},
		{name: "mac member emptied", mutate: edit(func(p *splitParts) { p.mac = nil }), want: ErrMalformed},
		{name: "mac cut to 31 bytes", mutate: edit(func(p *splitParts) { p.mac = p.mac[:31] }), want: ErrMalformed},
		{name: "mac of 33 bytes", mutate: edit(func(p *splitParts) { p.mac = append(p.mac, 0) }), want: ErrMalformed},
		{name: "signature member emptied", mutate: edit(func(p *splitParts) { p.sig = nil }), want: ErrMalformed},
		{name: "signature cut to 63 bytes", mutate: edit(func(p *splitParts) { p.sig = p.sig[:63] }), want: ErrMalformed},
		{name: "mac not declared", params: withEd25519, mutate: edit(func(p *splitParts) { p.mac = make([]byte, 32) }), want: ErrMalformed},
		{name: "signature not declared", params: withHMAC, mutate: edit(func(p *splitParts) { p.sig = make([]byte, 64) }), want: ErrMalformed},
		// The broker rewrites authenticated fields, keeping the tags.
		{name: "topic rewritten (get-card to delete-card)", mutate: rewriteHeader(func(h *header) { h.topic = "delete-card" }), want: ErrAuthentication},
		{name: "topic rewritten, receiver expects it", mutate: rewriteHeader(func(h *header) { h.topic = "delete-card" }),
			expect: &Expect{Kinds: Request, Topic: "delete-card"}, want: ErrAuthentication},
		{name: "re-addressed to another receiver", mutate: rewriteHeader(func(h *header) { h.to = []string{"gateway-2"} }),
			before: func(w *world, o *Opener) { o.ID = "gateway-2" }, want: ErrAuthentication},
		{name: "sender renamed to another peer with the same keys", mutate: rewriteHeader(func(h *header) { h.from = "client-2" }),
			before: func(w *world, o *Opener) {
				twin := *w.peer
				twin.ID = "client-2"
				o.Keys = must[*Keys](w.t)(NewKeys(w.ids, w.peer, &twin))
			}, want: ErrAuthentication},
		{name: "reply-to redirected", mutate: rewriteHeader(func(h *header) { h.replyTo = "mqttsec/eve/reply" }), want: ErrAuthentication},
		{name: "correlation id changed", mutate: rewriteHeader(func(h *header) { h.corr = []byte("another") }), want: ErrAuthentication},
		{name: "counter rewritten", mutate: rewriteHeader(func(h *header) { h.ctr += 1000 }), want: ErrAuthentication},
		{name: "issue time moved", mutate: rewriteHeader(func(h *header) { h.iat -= 1000 }), want: ErrAuthentication},
		{name: "expiry extended", mutate: rewriteHeader(func(h *header) { h.exp += 1000 }), want: ErrAuthentication},
		{name: "kind changed to event", mutate: rewriteHeader(func(h *header) { h.kind, h.replyTo, h.corr = Event, "", nil }),
			expect: &Expect{Kinds: Event}, want: ErrAuthentication},
		{name: "signature stripped from header and envelope", mutate: rewrite(func(h *header, p *splitParts) {
			h.prot &^= Signature
			h.sigAlg, h.sigKid, p.sig = "", KeyID{}, nil
		}), want: ErrAuthentication},
		{name: "hmac stripped from header and envelope", mutate: rewrite(func(h *header, p *splitParts) {
			h.prot &^= HMAC
			h.macKid, p.mac = KeyID{}, nil
		}), want: ErrAuthentication},
		{name: "signature algorithm changed to ES256, same key id", mutate: rewriteHeader(func(h *header) { h.sigAlg = ES256 }), want: ErrUnknownKey},
		{name: "tampered payload", mutate: edit(func(p *splitParts) { p.payload[3] ^= 1 }), want: ErrAuthentication},
		{name: "payload byte appended", mutate: edit(func(p *splitParts) { p.payload = append(p.payload, 'x') }), want: ErrAuthentication},
		{name: "tampered mac", mutate: edit(func(p *splitParts) { p.mac = flip(p.mac, 3) }), want: ErrAuthentication},
		{name: "tampered signature", params: withEd25519, mutate: edit(func(p *splitParts) { p.sig = flip(p.sig, 3) }), want: ErrAuthentication},
		{name: "tampered ciphertext, pre-shared key and hmac", params: func(w *world, p *Params) { p.HMAC, p.PSK = w.hmac, w.psk },
			mutate: edit(func(p *splitParts) { p.payload = flip(p.payload, 20) }), want: ErrAuthentication},
		{name: "tampered ciphertext, pre-shared key only", params: func(w *world, p *Params) { p.PSK = w.psk },
			mutate: edit(func(p *splitParts) { p.payload = flip(p.payload, 20) }), want: ErrDecryption},
		{name: "tampered wrapped key, signed", params: func(w *world, p *Params) { p.Signer, p.Recipients = w.ed, []Recipient{w.x25519} },
			mutate: rewriteHeader(func(h *header) { h.rcpt[0].wk = flip(h.rcpt[0].wk, 40) }), want: ErrAuthentication},
		// Step 5: the sender, its policy.
		{name: "unknown sender", before: func(w *world, o *Opener) { o.Keys = must[*Keys](w.t)(NewKeys(nil)) }, want: ErrUnknownKey},
		{name: "no keyring", before: func(w *world, o *Opener) { o.Keys = nil }, want: ErrUnknownKey},
		{name: "signature required, hmac only", params: withHMAC, policy: Policy{Require: Signature}, want: ErrPolicy},
		{name: "hmac required, signature only", params: withEd25519, policy: Policy{Require: HMAC}, want: ErrPolicy},
		{name: "encryption required, sent in clear", policy: Policy{Require: Encryption}, want: ErrPolicy},
		{name: "pairwise encryption required, wrapped key sent", params: func(w *world, p *Params) {
			p.Signer, p.Recipients = w.ed, []Recipient{w.x25519}
		}, policy: Policy{Require: Encryption, RequirePairwiseEncryption: true}, want: ErrPolicy},
		{name: "hotp required, absent", policy: Policy{Require: HOTPCode}, want: ErrPolicy},
		{name: "no sender authentication: hmac stripped from a message to a wrapped key", params: hmacAndX25519,
			mutate: rewrite(func(h *header, p *splitParts) {
				h.prot &^= HMAC
				h.macKid, p.mac = KeyID{}, nil
			}), want: ErrPolicy},
		// Step 6: freshness.
		{name: "expired", mutate: func(w *world, b []byte) []byte { w.now = w.now.Add(DefaultTTL + DefaultMaxClockSkew); return b }, want: ErrExpired},
		{name: "not yet valid", mutate: func(w *world, b []byte) []byte { w.now = w.now.Add(-DefaultMaxClockSkew - time.Millisecond); return b }, want: ErrExpired},
		{name: "lifetime over the default", params: func(w *world, p *Params) { withHMAC(w, p); p.TTL = DefaultMaxLifetime + time.Millisecond }, want: ErrExpired, sealedBad: true},
		{name: "lifetime over the policy's", policy: Policy{MaxLifetime: DefaultTTL - time.Millisecond}, want: ErrExpired},
		// Step 7: the keys the header names.
		{name: "unknown hmac key id", before: func(w *world, o *Opener) { w.peer.HMACKeys = nil }, want: ErrUnknownKey},
		{name: "unknown signing key id", params: withEd25519, before: func(w *world, o *Opener) { w.peer.Verifiers = w.peer.Verifiers[1:] }, want: ErrUnknownKey},
		{name: "unknown pre-shared key id", params: func(w *world, p *Params) { p.PSK = w.psk }, before: func(w *world, o *Opener) { w.peer.AEADKeys = nil }, want: ErrUnknownKey},
		{name: "wrapped to a key the receiver does not hold", params: hmacAndX25519,
			before: func(w *world, o *Opener) { o.Keys = must[*Keys](w.t)(NewKeys(w.ids[1:], w.peer)) }, want: ErrUnknownKey},
		// Step 8 and 10: the tags.
		{name: "hmac under another key", params: func(w *world, p *Params) {
			p.HMAC, p.Signer = &HMACKey{id: w.hmac.id, secret: w.sec.OtherHMAC}, w.ed
		}, want: ErrAuthentication, sealedBad: true},
		{name: "signature by another key", params: func(w *world, p *Params) {
			other := must[Signer](w.t)(NewEd25519Signer(edFromSeed(w.sec.OtherEd25519Seed)))
			p.HMAC, p.Signer = w.hmac, &fakeKid{Signer: other, kid: w.ed.KeyID()}
		}, want: ErrAuthentication, sealedBad: true},
		// Step 12 (and 9): the replay window.
		{name: "replayed", before: func(w *world, o *Opener) {
			o.Replay.Admit(ctx, Seen{Sender: "client", Counter: 1, IssuedAt: testNow})
		}, want: ErrReplayed},
		// Step 4: the context.
		{name: "wrong kind expected", expect: &Expect{Kinds: Event}, want: ErrContext},
		{name: "other method", expect: &Expect{Kinds: Request, Topic: "delete-card"}, want: ErrContext},
		{name: "other sender expected", expect: &Expect{Kinds: Request, From: "admin"}, want: ErrContext},
		{name: "addressed to another receiver", before: func(w *world, o *Opener) { o.ID = "gateway-2" }, want: ErrContext},
		{name: "an empty Expect accepts nothing", expect: &Expect{}, want: ErrContext},
		{name: "a nil Expect accepts nothing", nilExpect: true, want: ErrContext},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w := newWorld(t)
			p := w.request("get-card")
			if tt.params == nil {
				p.HMAC, p.Signer = w.hmac, w.ed
			} else {
				tt.params(w, p)
			}
			w.peer.Policy = tt.policy
			sealed, err := w.sealer().Seal(p, []byte("payload of the request"))
			if err != nil {
				t.Fatal(err)
			}
			b := sealed.Bytes
			if tt.mutate != nil {
				b = tt.mutate(w, bytes.Clone(b))
			}
			o := w.opener()
			if tt.before != nil {
				tt.before(w, o)
			}
			expect := tt.expect
			if expect == nil && !tt.nilExpect {
				expect = expectRequest
			}
			m, err := o.Open(ctx, b, expect)
			if !errors.Is(err, tt.want) || m != nil {
				t.Fatalf("Open = %v, %v; want %v", m, err, tt.want)
			}
			if got := matchedClasses(err); len(got) != 1 || Class(err) != tt.want {
				t.Fatalf("error %q wraps classes %v, want only %v", err, got, tt.want)
			}
			checkNoDetail(t, w, err)
			// A refused message leaves no trace in the replay window: the
			// genuine envelope still opens on a receiver sharing the store.
			if tt.want != ErrReplayed && !tt.sealedBad {
				w2 := newWorld(t)
				w2.replay = w.replay
				if _, err := w2.opener().Open(ctx, sealed.Bytes, expectRequest); err != nil {
					t.Fatalf("the genuine envelope after the refusal: %v", err)
				}
			}
		})
	}
}

// checkNoDetail fails if err names a key of the world: an error says its
// class and at most a short reason, never which key, byte or value.
func checkNoDetail(t *testing.T, w *world, err error) {
	t.Helper()
	text := err.Error()
	if Class(err) != nil && !strings.HasPrefix(text, Class(err).Error()) {
		t.Errorf("error %q does not begin with its class", text)
	}
	for _, kid := range []KeyID{w.hmac.KeyID(), w.hotp.KeyID(), w.psk.KeyID(), w.ed.KeyID(), w.es.KeyID(), w.ps.KeyID(), w.x25519.KeyID()} {
		if strings.Contains(text, kid.String()) || strings.Contains(text, hex.EncodeToString(kid[:])) {
			t.Errorf("error %q names key %s", text, kid)
		}
	}
	for _, secret := range [][]byte{w.sec.HMAC, w.sec.PSK} {
		if strings.Contains(text, hex.EncodeToString(secret[:8])) || strings.Contains(text, string(secret[:8])) {
			t.Errorf("error %q shows a secret", text)
		}
	}
}

// TestReplyBinding: a reply opens only against the pending request it
// answers.
func TestReplyBinding(t *testing.T) {
	w := newWorld(t)
	gwSealer, client, gateway := w.gatewaySealer(), w.clientOpener(), w.opener()
	send := func(method string) (*Sealed, *Message) {
		s := sealRequestWith(t, w, withHMAC, []byte(method))
		m, err := gateway.Open(ctx, s.Bytes, expectRequest)
		if err != nil {
			t.Fatal(err)
		}
		return s, m
	}
	req1, in1 := send("get-card")
	req2, in2 := send("get-card")
	reply := func(kind Kind, in *Message) *Sealed {
		s, err := gwSealer.Seal(&Params{Kind: kind, InReplyTo: in, HMAC: w.hmac}, []byte("answer"))
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	rep1, rep2 := reply(Reply, in1), reply(ErrorReply, in2)
	want := func(req *Sealed) *Expect { return &Expect{Kinds: Reply | ErrorReply, From: "gateway", Request: req} }
	for _, tt := range []struct {
		name   string
		data   []byte
		expect *Expect
	}{
		{"a reply delivered to the wrong pending request", rep1.Bytes, want(req2)},
		{"an error reply delivered to the wrong pending request", rep2.Bytes, want(req1)},
		{"a request reflected to its sender as a reply", req1.Bytes, want(req1)},
		{"a request reflected, with requests expected", req1.Bytes, &Expect{Kinds: Request | Reply, Request: req1}},
		{"a reply without its request", rep1.Bytes, &Expect{Kinds: Reply}},
		{"a reply with a reply as its request", rep1.Bytes, &Expect{Kinds: Reply, Request: rep2}},
		{"a reply when only errors are expected", rep1.Bytes, &Expect{Kinds: ErrorReply, Request: req1}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := client.Open(ctx, tt.data, tt.expect); !errors.Is(err, ErrContext) {
				t.Fatalf("Open = %v, want ErrContext", err)
			}
		})
	}
	m, err := client.Open(ctx, rep1.Bytes, want(req1))
	if err != nil || m.Kind != Reply || string(m.Payload) != "answer" || !bytes.Equal(m.InReplyTo, req1.Digest[:]) ||
		!bytes.Equal(m.CorrelationID, req1.CorrelationID) || m.Topic != "get-card" || m.Digest != [32]byte{} {
		t.Fatalf("reply 1: %+v, %v", m, err)
	}
	m, err = client.Open(ctx, rep2.Bytes, want(req2))
	if err != nil || m.Kind != ErrorReply || !bytes.Equal(m.InReplyTo, req2.Digest[:]) {
		t.Fatalf("error reply 2: %+v, %v", m, err)
	}
}

// TestExpectRequestRefusesOtherReplies: a reply the gateway's HMAC key
// vouches for, written by hand, opens against its request only when its
// digest, correlation id, method and sender are the request's; the first
// case shows the hand-made reply is otherwise acceptable.
func TestExpectRequestRefusesOtherReplies(t *testing.T) {
	for _, tt := range []struct {
		name   string
		change func(h *header)
		want   error
	}{
		{"as the gateway would write it", func(h *header) {}, nil},
		{"an error reply", func(h *header) { h.kind = ErrorReply }, nil},
		{"another correlation id", func(h *header) { h.corr = []byte("another-corr") }, ErrContext},
		{"the correlation id cut by a byte", func(h *header) { h.corr = h.corr[:len(h.corr)-1] }, ErrContext},
		{"another method", func(h *header) { h.topic = "delete-card" }, ErrContext},
		{"from another peer", func(h *header) { h.from = "gateway-2" }, ErrContext},
		{"another request digest", func(h *header) { h.re = bytes.Clone(h.re); h.re[31] ^= 1 }, ErrContext},
		{"a request", func(h *header) { h.kind, h.re, h.replyTo = Request, nil, "mqttsec/gateway/reply" }, ErrContext},
	} {
		t.Run(tt.name, func(t *testing.T) {
			w := newWorld(t)
			req := sealRequestWith(t, w, withHMAC, nil)
			h := w.handReply(req, 7)
			tt.change(h)
			if err := h.check(); err != nil {
				t.Fatalf("the hand-made reply breaks a header rule: %v", err)
			}
			data := sealByHand(w.hmac, h, []byte("answer"))
			// The client knows gateway-2 by the same key, so that only
			// the binding tells the two apart.
			keys := must[*Keys](t)(NewKeys(nil,
				&Peer{ID: "gateway", HMACKeys: []*HMACKey{w.hmac}},
				&Peer{ID: "gateway-2", HMACKeys: []*HMACKey{w.hmac}}))
			o := &Opener{ID: "client", Keys: keys, Replay: newTestStore(), Now: w.clock}
			m, err := o.Open(ctx, data, &Expect{Kinds: Reply | ErrorReply, Request: req})
			if !errors.Is(err, tt.want) || (tt.want == nil) != (m != nil) {
				t.Fatalf("Open = %v, %v; want %v", m, err, tt.want)
			}
		})
	}
}

func TestEventToSeveralRecipients(t *testing.T) {
	w := newWorld(t)
	sealed, err := w.sealer().Seal(&Params{
		Kind: Event, To: []string{"gateway", "gateway-2"}, Topic: "door/3/opened",
		Signer: w.ed, Recipients: []Recipient{w.x25519, w.xwing},
	}, []byte("opened"))
	if err != nil {
		t.Fatal(err)
	}
	// gateway holds the X25519 key, gateway-2 only the X-Wing key.
	for _, tc := range []struct {
		id  string
		ids []Identity
	}{{"gateway", w.ids[:1]}, {"gateway-2", w.ids[1:2]}} {
		keys := must[*Keys](t)(NewKeys(tc.ids, w.peer))
		o := &Opener{ID: tc.id, Keys: keys, Replay: newTestStore(), Now: w.clock}
		m, err := o.Open(ctx, sealed.Bytes, &Expect{Kinds: Event, From: "client", Topic: "door/3/opened"})
		if err != nil || string(m.Payload) != "opened" || !slices.Equal(m.To, []string{"gateway", "gateway-2"}) ||
			m.CorrelationID != nil || m.InReplyTo != nil || m.Digest != [32]byte{} {
			t.Fatalf("%s: %+v, %v", tc.id, m, err)
		}
	}
	// A receiver with neither key cannot decrypt even if named.
	keys := must[*Keys](t)(NewKeys(nil, w.peer))
	o := &Opener{ID: "gateway", Keys: keys, Replay: newTestStore(), Now: w.clock}
	if _, err := o.Open(ctx, sealed.Bytes, &Expect{Kinds: Event}); !errors.Is(err, ErrUnknownKey) {
		t.Fatalf("receiver without a key: %v", err)
	}
	// A receiver holding a key of the right id, but of another algorithm,
	// does not use it.
	o.Keys = must[*Keys](t)(NewKeys([]Identity{&otherAlgorithm{w.ids[0]}}, w.peer))
	if _, err := o.Open(ctx, sealed.Bytes, &Expect{Kinds: Event}); !errors.Is(err, ErrUnknownKey) {
		t.Fatalf("receiver with the key id under another algorithm: %v", err)
	}
	// One not named is refused before any crypto.
	o.ID = "eve"
	if _, err := o.Open(ctx, sealed.Bytes, &Expect{Kinds: Event}); !errors.Is(err, ErrContext) {
		t.Fatalf("receiver not named: %v", err)
	}
}

// otherAlgorithm is an Identity that claims another wrap algorithm.
type otherAlgorithm struct{ Identity }

func (otherAlgorithm) Algorithm() Algorithm { return RSAOAEP256 }

func TestBroadcastEventWithoutRecipients(t *testing.T) {
	w := newWorld(t)
	sealed, err := w.sealer().Seal(&Params{Kind: Event, Topic: "status", Signer: w.es}, []byte("up"))
	if err != nil {
		t.Fatal(err)
	}
	o := w.opener()
	o.ID = "anyone"
	if m, err := o.Open(ctx, sealed.Bytes, &Expect{Kinds: Event}); err != nil || string(m.Payload) != "up" || m.To != nil {
		t.Fatalf("Open = %+v, %v", m, err)
	}
}

// Of many goroutines opening the same envelope at once, exactly one wins,
// with Admit alone (HMAC) and with Check before it (a signature).
func TestConcurrentDuplicatesAdmitOnce(t *testing.T) {
	for _, s := range []struct {
		name   string
		params func(*world, *Params)
	}{{"hmac", withHMAC}, {"ed25519", withEd25519}} {
		t.Run(s.name, func(t *testing.T) {
			w := newWorld(t)
			sealed := sealRequestWith(t, w, s.params, nil)
			o := w.opener()
			var wg sync.WaitGroup
			var mu sync.Mutex
			ok, replayed := 0, 0
			for range 32 {
				wg.Go(func() {
					_, err := o.Open(ctx, sealed.Bytes, expectRequest)
					mu.Lock()
					defer mu.Unlock()
					switch {
					case err == nil:
						ok++
					case errors.Is(err, ErrReplayed):
						replayed++
					default:
						t.Error(err)
					}
				})
			}
			wg.Wait()
			if ok != 1 || replayed != 31 {
				t.Fatalf("accepted %d, replayed %d; want 1 and 31", ok, replayed)
			}
		})
	}
}

func TestQoS1DuplicatesAndReordering(t *testing.T) {
	w := newWorld(t)
	var msgs [][]byte
	for range 5 {
		msgs = append(msgs, sealRequestWith(t, w, withHMAC, nil).Bytes)
	}
	o := w.opener()
	order := []int{2, 0, 4, 1, 1, 3, 0, 4}
	want := []error{nil, nil, nil, nil, ErrReplayed, nil, ErrReplayed, ErrReplayed}
	for i, idx := range order {
		if _, err := o.Open(ctx, msgs[idx], expectRequest); !errors.Is(err, want[i]) {
			t.Fatalf("delivery %d (message %d): %v, want %v", i, idx, err, want[i])
		}
	}
}

func TestClockSkewBoundaries(t *testing.T) {
	tests := []struct {
		name  string
		skew  time.Duration // the policy's; 0 is the default
		shift time.Duration // receiver clock minus sender clock
		want  error
	}{
		{"in sync", 0, 0, nil},
		{"receiver behind within skew", 0, -DefaultMaxClockSkew, nil},
		{"receiver behind beyond skew", 0, -DefaultMaxClockSkew - time.Millisecond, ErrExpired},
		{"just before expiry plus skew", 0, DefaultTTL + DefaultMaxClockSkew - time.Millisecond, nil},
		{"at expiry plus skew", 0, DefaultTTL + DefaultMaxClockSkew, ErrExpired},
		{"a skew of 5 s, receiver 5 s behind", 5 * time.Second, -5 * time.Second, nil},
		{"a skew of 5 s, receiver 5.001 s behind", 5 * time.Second, -5*time.Second - time.Millisecond, ErrExpired},
		{"a skew of 5 s, just before expiry plus skew", 5 * time.Second, DefaultTTL + 5*time.Second - time.Millisecond, nil},
		{"a skew of 5 s, at expiry plus skew", 5 * time.Second, DefaultTTL + 5*time.Second, ErrExpired},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w := newWorld(t)
			w.peer.Policy.MaxClockSkew = tt.skew
			s := sealRequestWith(t, w, withHMAC, nil)
			w.now = w.now.Add(tt.shift)
			if _, err := w.opener().Open(ctx, s.Bytes, expectRequest); !errors.Is(err, tt.want) {
				t.Fatalf("Open = %v, want %v", err, tt.want)
			}
		})
	}
}

// A context that is done stays a context error, whichever store call sees
// it: Admit (an HMAC request) or Check (a signed one).
func TestContextDone(t *testing.T) {
	cancelled, cancel := context.WithCancel(ctx)
	cancel()
	expired, cancel2 := context.WithDeadline(ctx, time.Unix(0, 0))
	defer cancel2()
	for _, c := range []struct {
		name string
		ctx  context.Context
		want error
	}{{"cancelled", cancelled, context.Canceled}, {"deadline exceeded", expired, context.DeadlineExceeded}} {
		for _, s := range []struct {
			name   string
			params func(*world, *Params)
		}{{"hmac", withHMAC}, {"ed25519", withEd25519}, {"psk", func(w *world, p *Params) { p.PSK = w.psk }}} {
			t.Run(c.name+"/"+s.name, func(t *testing.T) {
				w := newWorld(t)
				sealed := sealRequestWith(t, w, s.params, nil)
				if _, err := w.opener().Open(c.ctx, sealed.Bytes, expectRequest); !errors.Is(err, c.want) ||
					errors.Is(err, ErrReplayStore) || errors.Is(err, ErrReplayed) {
					t.Fatalf("Open = %v, want %v alone", err, c.want)
				}
				// Nothing was recorded: it opens once the context is live.
				if _, err := w.opener().Open(ctx, sealed.Bytes, expectRequest); err != nil {
					t.Fatalf("Open with a live context: %v", err)
				}
			})
		}
	}
}

// Errors and keys print no secret and no key detail.
func TestErrorsNameNoKeys(t *testing.T) {
	w := newWorld(t)
	p := w.request("m")
	p.HMAC = &HMACKey{id: w.hmac.id, secret: w.sec.OtherHMAC}
	s := must[*Sealed](t)(w.sealer().Seal(p, nil))
	_, err := w.opener().Open(ctx, s.Bytes, expectRequest)
	if err == nil || err.Error() != string(ErrAuthentication) {
		t.Fatalf("error = %q, want the bare class", err)
	}
	checkNoDetail(t, w, err)
	for _, v := range []any{w.hmac, w.hotp, w.psk, w.ed, w.es, w.ps, w.ids[0], w.ids[1], w.ids[2]} {
		for _, f := range []string{"%v", "%+v", "%#v", "%s"} {
			out := fmt.Sprintf(f, v)
			if strings.Contains(out, "secret:") || strings.Contains(out, "key:") || strings.Contains(out, "0x") {
				t.Errorf("%T formatted with %s shows fields: %s", v, f, out)
			}
			for _, secret := range [][]byte{w.sec.HMAC, w.sec.HOTP, w.sec.PSK, w.sec.Ed25519Seed} {
				if strings.Contains(out, hex.EncodeToString(secret[:6])) || strings.Contains(out, strings.Trim(fmt.Sprint(secret[:4]), "[]")) {
					t.Errorf("%T formatted with %s shows a secret: %s", v, f, out)
				}
			}
		}
	}
}

func TestHOTP(t *testing.T) {
	w := newWorld(t)
	w.peer.Policy = Policy{Require: HMAC | HOTPCode}
	o := w.opener()
	seal := func() []byte {
		return sealRequestWith(t, w, func(w *world, p *Params) { p.HMAC, p.HOTP = w.hmac, w.hotp }, nil).Bytes
	}
	first := seal()
	if _, err := o.Open(ctx, first, expectRequest); err != nil {
		t.Fatalf("first: %v", err)
	}
	// Messages lost in transit: the sender's counter runs ahead. The
	// counter travels with the code, so the receiver follows at once.
	for range 500 {
		seal()
	}
	if _, err := o.Open(ctx, seal(), expectRequest); err != nil {
		t.Fatalf("after 500 lost messages: %v", err)
	}
	// A used code is never accepted again.
	if _, err := o.Open(ctx, first, expectRequest); !errors.Is(err, ErrReplayed) {
		t.Fatalf("used code: %v", err)
	}
	// The broker cannot fix up a code: the HMAC covers it.
	wrong := rewriteHeader(func(h *header) { h.hotpCode = w.hotp.key.Code(h.ctr + 1) })(w, seal())
	if _, err := o.Open(ctx, wrong, expectRequest); !errors.Is(err, ErrAuthentication) {
		t.Fatalf("code for another counter: %v", err)
	}
	// A header the HMAC vouches for, with a code that is not the one for
	// its counter under the named key, or of the wrong number of digits.
	for _, tt := range []struct {
		name string
		code func(ctr uint64) string
		want error
	}{
		{"the right code", func(ctr uint64) string { return w.hotp.key.Code(ctr) }, nil},
		{"the code of the counter before", func(ctr uint64) string { return w.hotp.key.Code(ctr - 1) }, ErrAuthentication},
		{"8 digits from a 6-digit key", func(ctr uint64) string {
			k8 := must[*HOTPKey](t)(NewHOTPKey(w.sec.HOTP, 8))
			return k8.key.Code(ctr)
		}, ErrAuthentication},
	} {
		t.Run(tt.name, func(t *testing.T) {
			h := w.handRequest("open-door", 10_000)
			h.prot |= HOTPCode
			h.hotpKid, h.hotpCode = w.hotp.id, tt.code(h.ctr)
			if _, err := o.Open(ctx, sealByHand(w.hmac, h, nil), expectRequest); !errors.Is(err, tt.want) {
				t.Fatalf("Open = %v, want %v", err, tt.want)
			}
		})
	}
	w.peer.HOTPKeys = nil
	if _, err := w.opener().Open(ctx, seal(), expectRequest); !errors.Is(err, ErrUnknownKey) {
		t.Fatalf("without the HOTP key: %v", err)
	}
}

// A receiver that lost its replay state (a new replica, a wiped disk)
// accepts a captured message again only while the message is fresh: the
// timestamp checks bound the exposure to MaxLifetime + MaxClockSkew.
func TestLostStateBoundedByTimestamps(t *testing.T) {
	w := newWorld(t)
	captured := sealRequestWith(t, w, func(w *world, p *Params) { p.HMAC, p.TTL = w.hmac, DefaultMaxLifetime }, nil)
	if _, err := w.opener().Open(ctx, captured.Bytes, expectRequest); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name  string
		later time.Duration
		want  error
	}{
		{"state lost a minute later: still replayable", time.Minute, nil},
		{"just before expiry + skew", DefaultMaxLifetime + DefaultMaxClockSkew - time.Millisecond, nil},
		{"at expiry + skew: refused", DefaultMaxLifetime + DefaultMaxClockSkew, ErrExpired},
		{"a day later: refused", 24 * time.Hour, ErrExpired},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w.now = testNow.Add(tt.later)
			w.replay = newTestStore() // the state is gone
			if _, err := w.opener().Open(ctx, captured.Bytes, expectRequest); !errors.Is(err, tt.want) {
				t.Fatalf("Open = %v, want %v", err, tt.want)
			}
		})
	}
}

// Signers keep their own copy of a private key: changing the caller's key
// afterwards changes nothing.
func TestSignersCopyKeys(t *testing.T) {
	w := newWorld(t)
	es := must[*ecdsa.PrivateKey](t)(ecdsa.ParseRawPrivateKey(elliptic.P256(), w.sec.ES256Scalar))
	s := must[Signer](t)(NewECDSASigner(es))
	rs := w.sec.RSASign
	r := must[Signer](t)(NewRSASigner(rs))
	//lint:ignore SA1019 the test changes the key the way a careless caller could
	es.D.SetInt64(1)
	sealed := sealRequestWith(t, w, func(w *world, p *Params) { p.Signer = s }, nil)
	if _, err := w.opener().Open(ctx, sealed.Bytes, expectRequest); err != nil {
		t.Fatalf("ECDSA signer followed a change to the caller's key: %v", err)
	}
	if s.(*ecdsaSigner).key == es {
		t.Fatal("ECDSA signer shares the caller's key")
	}
	if r.(*rsaSigner).s.Public() == &rs.PublicKey {
		t.Fatal("RSA signer shares the caller's key")
	}
}

// failingStore fails Check or Admit with a fixed error.
type failingStore struct {
	checkErr, admitErr error
}

func (s failingStore) Check(context.Context, Seen) error { return s.checkErr }
func (s failingStore) Admit(context.Context, Seen) error { return s.admitErr }

// A store that cannot answer refuses the message as ErrReplayStore, with
// its own error behind it; a replay stays a replay and a cancelled context
// stays a context error.
func TestReplayStoreFailures(t *testing.T) {
	disk := errors.New("replay: writing log: no space left on device")
	for _, tc := range []struct {
		name   string
		params func(*world, *Params)
		store  ReplayStore
		class  error
		cause  error
	}{
		{"check fails", nil, failingStore{checkErr: disk}, ErrReplayStore, disk},
		{"admit fails", nil, failingStore{admitErr: disk}, ErrReplayStore, disk},
		{"admit fails, hmac only", withHMAC, failingStore{admitErr: disk}, ErrReplayStore, disk},
		{"admit fails, pre-shared key", func(w *world, p *Params) { p.PSK = w.psk }, failingStore{admitErr: disk}, ErrReplayStore, disk},
		{"no store", nil, nil, ErrReplayStore, nil},
		{"check says replayed", nil, failingStore{checkErr: ErrReplayed}, ErrReplayed, nil},
		{"admit says replayed", nil, failingStore{admitErr: ErrReplayed}, ErrReplayed, nil},
		{"a wrapped replay stays a replay", nil, failingStore{admitErr: fmt.Errorf("redis: %w", ErrReplayed)}, ErrReplayed, nil},
		{"store sees cancellation", nil, failingStore{checkErr: context.Canceled}, nil, context.Canceled},
		{"store sees a deadline", withHMAC, failingStore{admitErr: context.DeadlineExceeded}, nil, context.DeadlineExceeded},
	} {
		t.Run(tc.name, func(t *testing.T) {
			w := newWorld(t)
			s := sealRequestWith(t, w, tc.params, nil)
			o := w.opener()
			o.Replay = tc.store
			m, err := o.Open(ctx, s.Bytes, expectRequest)
			if err == nil || m != nil {
				t.Fatal("Open accepted a message its replay store did not admit")
			}
			if got := Class(err); got != tc.class {
				t.Fatalf("Class(%v) = %v, want %v", err, got, tc.class)
			}
			if n := len(matchedClasses(err)); tc.class != nil && n != 1 {
				t.Fatalf("%v wraps %d classes", err, n)
			}
			if tc.cause != nil && !errors.Is(err, tc.cause) {
				t.Fatalf("Open = %v, does not wrap %v", err, tc.cause)
			}
			if tc.class == ErrReplayStore && !strings.HasPrefix(err.Error(), string(ErrReplayStore)) {
				t.Fatalf("error %q does not begin with its class", err)
			}
		})
	}
}

// The store learns when the receiver stops accepting the message: its
// expiry plus the peer policy's clock skew, so a store that forgets
// senders after a time knows how long it must keep them; and its issue
// time, sender, counter and the skew.
func TestReplayStoreSeesWhenMessageStopsBeingFresh(t *testing.T) {
	for _, skew := range []time.Duration{0, 2 * time.Minute} {
		t.Run(fmt.Sprint(skew), func(t *testing.T) {
			w := newWorld(t)
			w.peer.Policy.MaxClockSkew = skew
			// Signed, so that Open asks the store both to Check and to
			// Admit.
			s := sealRequestWith(t, w, func(w *world, p *Params) { p.HMAC, p.Signer, p.TTL = w.hmac, w.ed, 3*time.Minute }, nil)
			store := &recordingStore{}
			o := w.opener()
			o.Replay = store
			if _, err := o.Open(ctx, s.Bytes, expectRequest); err != nil {
				t.Fatal(err)
			}
			if skew == 0 {
				skew = DefaultMaxClockSkew
			}
			want := Seen{Sender: "client", Counter: s.Counter, IssuedAt: testNow, ExpiresAt: testNow.Add(3 * time.Minute).Add(skew), Skew: skew}
			if len(store.checked) != 1 || len(store.admitted) != 1 {
				t.Fatalf("store checked %d and admitted %d messages, want 1 and 1", len(store.checked), len(store.admitted))
			}
			for _, m := range append(store.checked, store.admitted...) {
				if m.Sender != want.Sender || m.Counter != want.Counter || !m.IssuedAt.Equal(want.IssuedAt) ||
					!m.ExpiresAt.Equal(want.ExpiresAt) || m.Skew != want.Skew {
					t.Fatalf("store saw %+v, want %+v", m, want)
				}
			}
			// One millisecond before that instant the message is still
			// fresh; at it, expired.
			for _, tc := range []struct {
				at   time.Time
				want error
			}{{want.ExpiresAt.Add(-time.Millisecond), nil}, {want.ExpiresAt, ErrExpired}} {
				w.now = tc.at
				o.Replay = &recordingStore{}
				if _, err := o.Open(ctx, s.Bytes, expectRequest); !errors.Is(err, tc.want) {
					t.Fatalf("Open at %v: %v, want %v", tc.at, err, tc.want)
				}
			}
		})
	}
}

// countingVerifier counts the signatures it is asked to verify.
type countingVerifier struct {
	Verifier
	mu       sync.Mutex
	verified int
}

func (v *countingVerifier) Verify(msg, sig []byte) error {
	v.mu.Lock()
	v.verified++
	v.mu.Unlock()
	return v.Verifier.Verify(msg, sig)
}

// SPEC.md §9: the replay store is consulted only after the HMAC and HOTP
// checks (a forged message never costs a request to a store that may be a
// network service), and before the signature and decryption (a captured
// message sent again costs no public-key work); with neither to come, only
// Admit is asked. So a forged and replayed message is refused as forged
// when it has an HMAC, and as replayed when it has only a signature.
func TestReplayStoreConsultedAfterHMACBeforeSignature(t *testing.T) {
	withHMACEd := func(w *world, p *Params) { p.HMAC, p.Signer = w.hmac, w.ed }
	tests := []struct {
		name   string
		params func(w *world, p *Params)
		mutate func(t *testing.T, b []byte) []byte
		replay bool // the genuine message was accepted before
		want   error
		checks int // read-only looks (Check)
		admits int // Admit calls
		verify int // signatures verified
	}{
		{name: "hmac under another key", params: func(w *world, p *Params) {
			p.HMAC, p.Signer = &HMACKey{id: w.hmac.id, secret: w.sec.OtherHMAC}, w.ed
		}, want: ErrAuthentication},
		{name: "hmac under another key, counter replayed", params: func(w *world, p *Params) {
			p.HMAC = &HMACKey{id: w.hmac.id, secret: w.sec.OtherHMAC}
		}, replay: true, want: ErrAuthentication},
		{name: "hmac under another key, signed, counter replayed", params: func(w *world, p *Params) {
			p.HMAC, p.Signer = &HMACKey{id: w.hmac.id, secret: w.sec.OtherHMAC}, w.ed
		}, replay: true, want: ErrAuthentication},
		{name: "tampered payload", params: withHMACEd, mutate: func(t *testing.T, b []byte) []byte {
			return editEnvelope(t, b, func(p *splitParts) { p.payload[0] ^= 1 })
		}, want: ErrAuthentication},
		{name: "hotp code under another secret", params: func(w *world, p *Params) {
			other := must[*HOTPKey](w.t)(NewHOTPKey(w.sec.OtherHMAC, 6))
			p.HMAC, p.HOTP = w.hmac, &HOTPKey{id: w.hotp.id, key: other.key}
		}, want: ErrAuthentication},
		{name: "replayed, signed", params: withHMACEd, replay: true, want: ErrReplayed, checks: 1},
		{name: "forged signature, no hmac, counter replayed", params: withEd25519, mutate: func(t *testing.T, b []byte) []byte {
			return editEnvelope(t, b, func(p *splitParts) { p.sig[0] ^= 1 })
		}, replay: true, want: ErrReplayed, checks: 1},
		// Decryption would refuse the changed ciphertext; the replay is
		// refused first.
		{name: "replayed, pre-shared key only, ciphertext changed", params: func(w *world, p *Params) { p.PSK = w.psk },
			mutate: func(t *testing.T, b []byte) []byte {
				return editEnvelope(t, b, func(p *splitParts) { p.payload[20] ^= 1 })
			}, replay: true, want: ErrReplayed, checks: 1},
		{name: "forged signature, no hmac", params: withEd25519, mutate: func(t *testing.T, b []byte) []byte {
			return editEnvelope(t, b, func(p *splitParts) { p.sig[0] ^= 1 })
		}, want: ErrAuthentication, checks: 1, verify: 1},
		{name: "genuine", params: withHMACEd, want: nil, checks: 1, verify: 1, admits: 1},
		// Nothing to shed after the HMAC: Admit alone refuses the replay.
		{name: "genuine, hmac only", params: withHMAC, want: nil, admits: 1},
		{name: "replayed, hmac only", params: withHMAC, replay: true, want: ErrReplayed, admits: 1},
		{name: "genuine, pre-shared key only", params: func(w *world, p *Params) { p.PSK = w.psk }, want: nil, checks: 1, admits: 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w := newWorld(t)
			sealed := sealRequestWith(t, w, tt.params, []byte("payload of the request"))
			b := sealed.Bytes
			if tt.mutate != nil {
				b = tt.mutate(t, bytes.Clone(b))
			}
			verifier := &countingVerifier{Verifier: w.peer.Verifiers[0]}
			w.peer.Verifiers[0] = verifier
			o := w.opener()
			if tt.replay {
				if err := w.replay.Admit(ctx, Seen{Sender: "client", Counter: sealed.Counter, IssuedAt: testNow}); err != nil {
					t.Fatal(err)
				}
			}
			checks, admits := w.replay.checks, w.replay.admits
			if _, err := o.Open(ctx, b, expectRequest); !errors.Is(err, tt.want) {
				t.Fatalf("Open: %v, want %v", err, tt.want)
			}
			if n := w.replay.checks - checks; n != tt.checks {
				t.Errorf("replay store checked %d times, want %d", n, tt.checks)
			}
			if n := w.replay.admits - admits; n != tt.admits {
				t.Errorf("Admit called %d times, want %d", n, tt.admits)
			}
			if verifier.verified != tt.verify {
				t.Errorf("%d signatures verified, want %d", verifier.verified, tt.verify)
			}
		})
	}
}

// TestCorrelationIDLengths: every correlation id length a request may carry
// comes back intact in the request, in its reply and in Peek's header,
// and the opened correlation id and request digest are slices of their own
// length: appending to one never writes into the other.
func TestCorrelationIDLengths(t *testing.T) {
	for _, n := range []int{1, correlationSize - 1, correlationSize, correlationSize + 1, maxCorrelation} {
		t.Run(fmt.Sprint(n), func(t *testing.T) {
			w := newWorld(t)
			corr := bytes.Repeat([]byte{0xc0}, n)
			req := sealRequestWith(t, w, func(w *world, p *Params) { p.HMAC, p.CorrelationID = w.hmac, corr }, nil)
			if !bytes.Equal(req.CorrelationID, corr) {
				t.Fatalf("Sealed.CorrelationID = %x", req.CorrelationID)
			}
			in, err := w.opener().Open(ctx, req.Bytes, expectRequest)
			if err != nil || !bytes.Equal(in.CorrelationID, corr) {
				t.Fatalf("request: %v, correlation id %x", err, in.CorrelationID)
			}
			rep, err := w.gatewaySealer().Seal(&Params{Kind: Reply, InReplyTo: in, HMAC: w.hmac}, []byte("ok"))
			if err != nil {
				t.Fatal(err)
			}
			h, err := Peek(rep.Bytes, 0)
			if err != nil || !bytes.Equal(h.CorrelationID, corr) || h.InReplyTo != req.Digest {
				t.Fatalf("Peek: %v, %x, %x", err, h.CorrelationID, h.InReplyTo)
			}
			m, err := w.clientOpener().Open(ctx, rep.Bytes, &Expect{Kinds: Reply, From: "gateway", Request: req})
			if err != nil || !bytes.Equal(m.CorrelationID, corr) || !bytes.Equal(m.InReplyTo, req.Digest[:]) {
				t.Fatalf("reply: %v", err)
			}
			// An append with room in the slice would write over what follows.
			_ = append(m.CorrelationID, bytes.Repeat([]byte{0xff}, sha256.Size)...)
			if !bytes.Equal(m.InReplyTo, req.Digest[:]) {
				t.Fatal("appending to the correlation id changed the request digest")
			}
		})
	}
	w := newWorld(t)
	for _, corr := range [][]byte{make([]byte, maxCorrelation+1), {}} {
		p := w.request("get-card")
		p.HMAC, p.CorrelationID = w.hmac, corr
		if _, err := w.sealer().Seal(p, nil); !errors.Is(err, ErrInvalidParams) {
			t.Fatalf("correlation id of %d bytes: Seal = %v, want ErrInvalidParams", len(corr), err)
		}
	}
}

// recordingKeyring is a Keyring that keeps every peer id it is asked for,
// as a keyring with a cache or a log of lookups would.
type recordingKeyring struct {
	*Keys
	mu    sync.Mutex
	asked []string
}

func (k *recordingKeyring) Peer(id string) *Peer {
	k.mu.Lock()
	k.asked = append(k.asked, id)
	k.mu.Unlock()
	return k.Keys.Peer(id)
}

// TestOpenKeepsNothingOfItsInput opens a message, then overwrites the bytes
// it was opened from, as a transport reusing its read buffer would: the
// message, the id the keyring was given and what the replay store was told
// must all be unchanged; and Open itself changes nothing in its input.
func TestOpenKeepsNothingOfItsInput(t *testing.T) {
	for _, s := range suites() {
		t.Run(s.name, func(t *testing.T) {
			w := newWorld(t)
			corr := []byte("corr-0123456789a")
			sealed := sealRequestWith(t, w, func(w *world, p *Params) { s.apply(w, p); p.CorrelationID = corr }, []byte("payload"))
			ring := &recordingKeyring{Keys: must[*Keys](t)(NewKeys(w.ids, w.peer))}
			store := &recordingStore{}
			o := &Opener{ID: "gateway", Keys: ring, Replay: store, Now: w.clock}
			data := bytes.Clone(sealed.Bytes)
			m, err := o.Open(ctx, data, expectRequest)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(data, sealed.Bytes) {
				t.Fatal("Open changed its input")
			}
			for i := range data {
				data[i] = 'X'
			}
			if m.From != "client" || m.Topic != "get-card" || m.ReplyTo != "mqttsec/client/reply" || !slices.Equal(m.To, []string{"gateway"}) ||
				!bytes.Equal(m.CorrelationID, corr) || !bytes.Equal(m.Payload, []byte("payload")) {
				t.Fatalf("the message changed with its input: %+v", m)
			}
			if !slices.Equal(ring.asked, []string{"client"}) {
				t.Fatalf("the keyring's ids changed with the input: %q", ring.asked)
			}
			for _, seen := range append(store.checked, store.admitted...) {
				if seen.Sender != "client" {
					t.Fatalf("the store's sender changed with the input: %q", seen.Sender)
				}
			}
		})
	}
}

// TestKeyRotation: a peer holds an old and a new key of each kind while
// senders switch; both open, the header's key id picks the key; once the
// old key is removed, what was sealed under it names an unknown key.
func TestKeyRotation(t *testing.T) {
	w := newWorld(t)
	newHMAC := must[*HMACKey](t)(NewHMACKey(w.sec.OtherHMAC))
	newEdKey := edFromSeed(w.sec.OtherEd25519Seed)
	newEd := must[Signer](t)(NewEd25519Signer(newEdKey))
	newEdVerifier := must[Verifier](t)(NewEd25519Verifier(newEdKey.Public().(ed25519.PublicKey)))
	if newHMAC.KeyID() == w.hmac.KeyID() || newEd.KeyID() == w.ed.KeyID() {
		t.Fatal("the new keys have the old keys' ids")
	}
	w.peer.HMACKeys = append(w.peer.HMACKeys, newHMAC)
	w.peer.Verifiers = append(w.peer.Verifiers, newEdVerifier)
	for _, tt := range []struct {
		name      string
		params    func(*world, *Params)
		afterDrop error // once the old keys are removed
	}{
		{"old hmac key", func(w *world, p *Params) { p.HMAC = w.hmac }, ErrUnknownKey},
		{"new hmac key", func(w *world, p *Params) { p.HMAC = newHMAC }, nil},
		{"old signing key", func(w *world, p *Params) { p.Signer = w.ed }, ErrUnknownKey},
		{"new signing key", func(w *world, p *Params) { p.Signer = newEd }, nil},
	} {
		t.Run(tt.name, func(t *testing.T) {
			during := sealRequestWith(t, w, tt.params, nil)
			if _, err := w.opener().Open(ctx, during.Bytes, expectRequest); err != nil {
				t.Fatalf("during the rotation: %v", err)
			}
			after := sealRequestWith(t, w, tt.params, nil)
			dropped := *w.peer
			dropped.HMACKeys = []*HMACKey{newHMAC}
			dropped.Verifiers = []Verifier{newEdVerifier}
			keys := must[*Keys](t)(NewKeys(w.ids, &dropped))
			o := &Opener{ID: "gateway", Keys: keys, Replay: w.replay, Now: w.clock}
			if _, err := o.Open(ctx, after.Bytes, expectRequest); !errors.Is(err, tt.afterDrop) {
				t.Fatalf("after the old keys were removed: %v, want %v", err, tt.afterDrop)
			}
		})
	}
	// A header naming the new key's id with a tag under the old key is a
	// forgery, not a key mix-up.
	sealed := sealRequestWith(t, w, func(w *world, p *Params) { p.HMAC = &HMACKey{id: newHMAC.id, secret: w.sec.HMAC} }, nil)
	if _, err := w.opener().Open(ctx, sealed.Bytes, expectRequest); !errors.Is(err, ErrAuthentication) {
		t.Fatalf("the new key's id, tagged under the old key: %v", err)
	}
}
