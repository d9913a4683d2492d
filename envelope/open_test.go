package envelope

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/sha256"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"
)

var ctx = context.Background()

type suite struct {
	name    string
	apply   func(w *world, p *Params)
	require Protection
	legacy  bool
}

func suites() []suite {
	return []suite{
		{"hmac", func(w *world, p *Params) { p.HMAC = w.hmac }, HMAC, false},
		{"hmac+hotp", func(w *world, p *Params) { p.HMAC = w.hmac; p.HOTP = w.hotp }, HMAC | HOTPCode, false},
		{"ed25519", func(w *world, p *Params) { p.Signer = w.ed }, Signature, false},
		{"es256", func(w *world, p *Params) { p.Signer = w.es }, Signature, false},
		{"ps256", func(w *world, p *Params) { p.Signer = w.ps }, Signature, false},
		{"rs256-legacy", func(w *world, p *Params) { p.Signer = w.rs }, Signature, true},
		{"psk", func(w *world, p *Params) { p.PSK = w.psk }, Encryption, false},
		{"hmac+psk", func(w *world, p *Params) { p.HMAC = w.hmac; p.PSK = w.psk }, HMAC | Encryption, false},
		{"ed25519+hpke-x25519", func(w *world, p *Params) { p.Signer = w.ed; p.Recipients = []Recipient{w.x25519} }, Signature | Encryption, false},
		{"ed25519+hpke-xwing", func(w *world, p *Params) { p.Signer = w.ed; p.Recipients = []Recipient{w.xwing} }, Signature | Encryption, false},
		{"ps256+rsa-oaep", func(w *world, p *Params) { p.Signer = w.ps; p.Recipients = []Recipient{w.rsaoaep} }, Signature | Encryption, false},
		{"hmac+hpke-x25519", func(w *world, p *Params) { p.HMAC = w.hmac; p.Recipients = []Recipient{w.x25519} }, HMAC | Encryption, false},
		{"everything", func(w *world, p *Params) {
			p.HMAC, p.HOTP, p.Signer = w.hmac, w.hotp, w.es
			p.Recipients = []Recipient{w.xwing, w.x25519, w.rsaoaep}
		}, HMAC | HOTPCode | Signature | Encryption, false},
	}
}

func TestRoundTripEverySuite(t *testing.T) {
	for _, version := range []int{Version1, Version2, Version3} {
		for _, s := range suites() {
			t.Run(fmt.Sprintf("v%d/%s", version, s.name), func(t *testing.T) {
				w := newWorld(t)
				w.peer.Policy = Policy{Require: s.require, AllowLegacyRSAPKCS1v15: s.legacy}
				p := w.request("get-card")
				p.Version = version
				s.apply(w, p)
				payload := []byte(`{"card":8165538}`)
				sealed, err := w.sealer().Seal(p, payload)
				if err != nil {
					t.Fatal(err)
				}
				visible := []byte(b64.EncodeToString(payload)) // the text form
				if version != Version1 {
					visible = payload
				}
				if bytes.Contains(sealed.Bytes, visible) != (s.require&Encryption == 0) {
					t.Fatal("payload visible in an encrypted envelope, or not found in a clear one")
				}
				o := w.opener()
				m, err := o.Open(ctx, sealed.Bytes, expectRequest)
				if err != nil {
					t.Fatalf("Open: %v", err)
				}
				if !bytes.Equal(m.Payload, payload) || m.From != "client" || m.Topic != "get-card" ||
					m.Kind != Request || m.ReplyTo != "mqttsec/client/reply" || m.Protections != s.require ||
					m.Counter != sealed.Counter || m.Digest != sealed.Digest || !bytes.Equal(m.CorrelationID, sealed.CorrelationID) ||
					m.Version != version {
					t.Fatalf("opened message differs: %+v", m)
				}
				if _, err := o.Open(ctx, sealed.Bytes, expectRequest); !errors.Is(err, ErrReplayed) {
					t.Fatalf("second Open = %v, want ErrReplayed", err)
				}
			})
		}
	}
}

// The legacy RS256 suite is refused unless the policy opts in.
func TestLegacyRS256NeedsOptIn(t *testing.T) {
	w := newWorld(t)
	p := w.request("get-card")
	p.Signer = w.rs
	sealed, err := w.sealer().Seal(p, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.opener().Open(ctx, sealed.Bytes, expectRequest); !errors.Is(err, ErrPolicy) {
		t.Fatalf("Open = %v, want ErrPolicy", err)
	}
}

// TestOpenRejects mutates a valid envelope the ways the broker can and checks
// the class of each refusal.
func TestOpenRejects(t *testing.T) {
	type tc struct {
		name   string
		params func(w *world, p *Params) // protections; default HMAC + Ed25519
		policy Policy
		expect *Expect
		mutate func(w *world, b []byte) []byte
		before func(w *world, o *Opener)
		want   error
	}
	replace := func(old, new string) func(*world, []byte) []byte {
		return func(_ *world, b []byte) []byte { return bytes.Replace(b, []byte(old), []byte(new), 1) }
	}
	tests := []tc{
		{name: "too large", before: func(w *world, o *Opener) { o.MaxSize = 100 }, want: ErrTooLarge},
		{name: "not json", mutate: func(*world, []byte) []byte { return []byte("hello") }, want: ErrMalformed},
		{name: "empty", mutate: func(*world, []byte) []byte { return nil }, want: ErrMalformed},
		{name: "version 2", mutate: replace(`{"v":1,`, `{"v":2,`), want: ErrUnsupportedVersion},
		{name: "version 01", mutate: replace(`{"v":1,`, `{"v":01,`), want: ErrMalformed},
		{name: "whitespace", mutate: replace(`{"v":1,`, `{"v": 1,`), want: ErrMalformed},
		{name: "member order", mutate: func(_ *world, b []byte) []byte {
			e, _ := Parse(b)
			return []byte(fmt.Sprintf(`{"v":1,"p":"%s","h":"%s","mac":"%s","sig":"%s"}`, e.rawPayload, e.rawHeader, e.rawMAC, e.rawSig))
		}, want: ErrMalformed},
		{name: "padding", mutate: replace(`","p":"`, `=","p":"`), want: ErrMalformed},
		{name: "standard base64", mutate: func(_ *world, b []byte) []byte {
			return bytes.Replace(b, []byte(`"}`), []byte(`+"}`), 1)
		}, want: ErrMalformed},
		{name: "trailing data", mutate: func(_ *world, b []byte) []byte { return append(b, ' ') }, want: ErrMalformed},
		{name: "tampered header", mutate: func(_ *world, b []byte) []byte { return flipInMember(b, memberH, 40) }, want: ErrMalformed},
		{name: "topic rewritten (get-card to delete-card)", mutate: rewriteHeader(func(h *wireHeader) { h.Topic = "delete-card" }), want: ErrAuthentication},
		{name: "topic rewritten, receiver expects it", mutate: rewriteHeader(func(h *wireHeader) { h.Topic = "delete-card" }), expect: &Expect{Kinds: Request, Topic: "delete-card"}, want: ErrAuthentication},
		{name: "re-addressed to another receiver", mutate: rewriteHeader(func(h *wireHeader) { h.To = []string{"gateway-2"} }), before: func(w *world, o *Opener) { o.ID = "gateway-2" }, want: ErrAuthentication},
		{name: "reply-to redirected", mutate: rewriteHeader(func(h *wireHeader) { h.ReplyTo = "mqttsec/eve/reply" }), want: ErrAuthentication},
		{name: "counter rewritten", mutate: rewriteHeader(func(h *wireHeader) { h.Ctr += 1000 }), want: ErrAuthentication},
		{name: "expiry extended", mutate: rewriteHeader(func(h *wireHeader) { h.Exp += 1000 }), want: ErrAuthentication},
		{name: "signature stripped from header and envelope", mutate: func(w *world, b []byte) []byte {
			b = rewriteHeader(func(h *wireHeader) { h.Sig = nil; h.Prot = []string{"hmac"} })(w, b)
			return dropMember(memberSig)(w, b)
		}, want: ErrAuthentication},
		{name: "kind changed to event", mutate: rewriteHeader(func(h *wireHeader) { h.Kind = "evt"; h.ReplyTo = ""; h.Corr = "" }), expect: &Expect{Kinds: Event}, want: ErrAuthentication},
		{name: "unknown signature algorithm", mutate: rewriteHeader(func(h *wireHeader) { h.Sig.Alg = "none" }), want: ErrPolicy},
		{name: "non-canonical header", mutate: func(w *world, b []byte) []byte {
			e, _ := Parse(b)
			hj := bytes.Replace(e.Header, []byte(`{"v":1,`), []byte(`{"v":1 ,`), 1)
			return appendOuter(nil, []byte(b64.EncodeToString(hj)), e.rawPayload, e.rawMAC, e.rawSig)
		}, want: ErrMalformed},
		{name: "tampered payload", mutate: func(_ *world, b []byte) []byte { return flipInMember(b, memberP, 3) }, want: ErrAuthentication},
		{name: "tampered mac", mutate: func(_ *world, b []byte) []byte { return flipInMember(b, memberMAC, 3) }, want: ErrAuthentication},
		{name: "tampered signature", params: sigOnly, mutate: func(_ *world, b []byte) []byte { return flipInMember(b, memberSig, 3) }, want: ErrAuthentication},
		{name: "stripped mac member", mutate: dropMember(memberMAC), want: ErrAuthentication},
		{name: "stripped sig member", mutate: dropMember(memberSig), want: ErrAuthentication},
		{name: "undeclared mac member", params: sigOnly, mutate: func(_ *world, b []byte) []byte {
			return bytes.Replace(b, []byte(memberSig), []byte(memberMAC+"AAAA"+memberSig), 1)
		}, want: ErrMalformed},
		{name: "unknown sender", before: func(w *world, o *Opener) { o.Keys = must[*Keys](w.t)(NewKeys(nil)) }, want: ErrUnknownKey},
		{name: "unknown hmac key id", before: func(w *world, o *Opener) { w.peer.HMACKeys = nil }, want: ErrUnknownKey},
		{name: "unknown signing key id", params: sigOnly, before: func(w *world, o *Opener) { w.peer.Verifiers = w.peer.Verifiers[1:] }, want: ErrUnknownKey},
		{name: "hmac under another key", params: func(w *world, p *Params) {
			p.HMAC = &HMACKey{id: w.hmac.id, secret: w.sec.OtherHMAC}
		}, want: ErrAuthentication},
		{name: "signature by another key", params: func(w *world, p *Params) {
			other := must[Signer](w.t)(NewEd25519Signer(edFromSeed(w.sec.OtherEd25519Seed)))
			p.Signer = &fakeKid{Signer: other, kid: w.ed.KeyID()}
		}, want: ErrAuthentication},
		{name: "signature required, hmac only", params: hmacOnly, policy: Policy{Require: Signature}, want: ErrPolicy},
		{name: "hmac required, signature only", params: sigOnly, policy: Policy{Require: HMAC}, want: ErrPolicy},
		{name: "encryption required, sent in clear", policy: Policy{Require: Encryption}, want: ErrPolicy},
		{name: "pairwise encryption required, wrapped key sent", params: func(w *world, p *Params) {
			p.Signer = w.ed
			p.Recipients = []Recipient{w.x25519}
		}, policy: Policy{Require: Encryption, RequirePairwiseEncryption: true}, want: ErrPolicy},
		{name: "hotp required, absent", policy: Policy{Require: HOTPCode}, want: ErrPolicy},
		{name: "expired", mutate: func(w *world, b []byte) []byte { w.now = w.now.Add(DefaultTTL + DefaultMaxClockSkew); return b }, want: ErrExpired},
		{name: "not yet valid", mutate: func(w *world, b []byte) []byte { w.now = w.now.Add(-DefaultMaxClockSkew - time.Millisecond); return b }, want: ErrExpired},
		{name: "lifetime over policy", params: func(w *world, p *Params) { hmacOnly(w, p); p.TTL = time.Hour }, want: ErrExpired},
		{name: "replayed", before: func(w *world, o *Opener) { o.Replay.Admit(ctx, Seen{Sender: "client", Counter: 1, IssuedAt: testNow}) }, want: ErrReplayed},
		{name: "older than window", before: func(w *world, o *Opener) {
			o.Replay.Admit(ctx, Seen{Sender: "client", Counter: 1 + DefaultWindow, IssuedAt: testNow})
		}, want: ErrReplayed},
		{name: "wrong kind expected", expect: &Expect{Kinds: Event}, want: ErrContext},
		{name: "other method", expect: &Expect{Kinds: Request, Topic: "delete-card"}, want: ErrContext},
		{name: "other sender expected", expect: &Expect{Kinds: Request, From: "admin"}, want: ErrContext},
		{name: "addressed to another receiver", before: func(w *world, o *Opener) { o.ID = "gateway-2" }, want: ErrContext},
		{name: "nil expect accepts nothing", expect: &Expect{}, want: ErrContext},
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
			sealed, err := w.sealer().Seal(p, []byte("payload"))
			if err != nil {
				t.Fatal(err)
			}
			b := sealed.Bytes
			if tt.mutate != nil {
				b = tt.mutate(w, b)
			}
			o := w.opener()
			if tt.before != nil {
				tt.before(w, o)
			}
			expect := tt.expect
			if expect == nil {
				expect = expectRequest
			}
			m, err := o.Open(ctx, b, expect)
			if !errors.Is(err, tt.want) || m != nil {
				t.Fatalf("Open = %v, %v; want %v", m, err, tt.want)
			}
			if Class(err) != tt.want {
				t.Fatalf("Class = %v, want %v", Class(err), tt.want)
			}
			// A refused message leaves no trace in the replay window: the
			// untouched original still opens (unless the test replayed it).
			if tt.want != ErrReplayed && tt.mutate == nil && tt.before == nil && tt.expect == nil {
				if _, err := o.Open(ctx, sealed.Bytes, expectRequest); !errors.Is(err, tt.want) {
					t.Fatalf("original after refusal: %v", err)
				}
			}
		})
	}
}

// envelopeMembers are an envelope's decoded payload and tags; mac and sig
// are nil when absent.
type envelopeMembers struct{ payload, mac, sig []byte }

// reencode parses b (any version), lets edit change its decoded header
// and members, and writes them as an envelope of version (0: b's own): what
// a broker that understands the format can do. The payload is Parse's copy,
// so edit may change it in place.
func reencode(t testing.TB, b []byte, version int, edit func(h *wireHeader, m *envelopeMembers)) []byte {
	t.Helper()
	e, err := Parse(b)
	if err != nil {
		t.Fatal(err)
	}
	h, err := decodeVersionHeader(e.Version, e.Header)
	if err != nil {
		t.Fatal(err)
	}
	m := &envelopeMembers{payload: e.Payload, mac: e.MAC, sig: e.Signature}
	edit(h, m)
	if version == 0 {
		version = e.Version
	}
	hj, err := encodeVersionHeader(version, h)
	if err != nil {
		t.Fatal(err)
	}
	if framed(version) {
		return appendFrame(nil, version, hj, m.payload, m.mac, m.sig)
	}
	enc := func(x []byte) []byte {
		if x == nil {
			return nil
		}
		return []byte(b64.EncodeToString(x))
	}
	return appendOuter(nil, enc(hj), enc(m.payload), enc(m.mac), enc(m.sig))
}

// rewriteHeader re-encodes the header with a change, keeping the payload
// and tags, in the envelope's own version.
func rewriteHeader(change func(*wireHeader)) func(*world, []byte) []byte {
	return func(w *world, b []byte) []byte {
		return reencode(w.t, b, 0, func(h *wireHeader, _ *envelopeMembers) { change(h) })
	}
}

// editMembers changes an envelope's payload or tags, keeping its header, in
// the envelope's own version.
func editMembers(change func(m *envelopeMembers)) func(*world, []byte) []byte {
	return func(w *world, b []byte) []byte {
		return reencode(w.t, b, 0, func(_ *wireHeader, m *envelopeMembers) { change(m) })
	}
}

func hmacOnly(w *world, p *Params) { p.HMAC = w.hmac }
func sigOnly(w *world, p *Params)  { p.Signer = w.ed }

type fakeKid struct {
	Signer
	kid string
}

func (f *fakeKid) KeyID() string { return f.kid }

func flipInMember(b []byte, literal string, offset int) []byte {
	out := bytes.Clone(b)
	i := bytes.Index(out, []byte(literal)) + len(literal) + offset
	// Swap to another base64url character of the same 6-bit group position.
	if out[i] == 'A' {
		out[i] = 'B'
	} else {
		out[i] = 'A'
	}
	return out
}

func dropMember(literal string) func(*world, []byte) []byte {
	return func(_ *world, b []byte) []byte {
		i := bytes.Index(b, []byte(literal))
		j := i + len(literal) + bytes.IndexByte(b[i+len(literal):], '"')
		return append(bytes.Clone(b[:i]), b[j:]...)
	}
}

// A refused message must not consume its counter: after a tampered copy is
// refused, the genuine one is still accepted.
func TestRefusalDoesNotTouchReplayState(t *testing.T) {
	w := newWorld(t)
	p := w.request("get-card")
	p.HMAC = w.hmac
	sealed := must[*Sealed](t)(w.sealer().Seal(p, []byte("x")))
	o := w.opener()
	if _, err := o.Open(ctx, flipInMember(sealed.Bytes, memberP, 0), expectRequest); !errors.Is(err, ErrAuthentication) {
		t.Fatalf("tampered: %v", err)
	}
	if _, err := o.Open(ctx, sealed.Bytes, expectRequest); err != nil {
		t.Fatalf("genuine after tampered copy: %v", err)
	}
}

func TestReplyBinding(t *testing.T) {
	w := newWorld(t)
	gwSealer, client, gateway := w.gatewaySealer(), w.clientOpener(), w.opener()

	send := func(method string) (*Sealed, *Message) {
		p := w.request(method)
		p.HMAC = w.hmac
		s, err := w.sealer().Seal(p, []byte(method))
		if err != nil {
			t.Fatal(err)
		}
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
	rep1 := reply(Reply, in1)
	rep2 := reply(ErrorReply, in2)
	want := func(req *Sealed) *Expect {
		return &Expect{Kinds: Reply | ErrorReply, From: "gateway", InReplyTo: req.Digest[:], CorrelationID: req.CorrelationID}
	}
	// A reply delivered to the wrong pending request is refused.
	if _, err := client.Open(ctx, rep1.Bytes, want(req2)); !errors.Is(err, ErrContext) {
		t.Fatalf("reply to request 1 opened for request 2: %v", err)
	}
	// A request reflected back to its sender as a reply is refused.
	if _, err := client.Open(ctx, req1.Bytes, want(req1)); !errors.Is(err, ErrContext) {
		t.Fatalf("reflected request: %v", err)
	}
	// Replies are refused without the request they answer.
	if _, err := client.Open(ctx, rep1.Bytes, &Expect{Kinds: Reply}); !errors.Is(err, ErrContext) {
		t.Fatalf("reply without InReplyTo: %v", err)
	}
	m, err := client.Open(ctx, rep1.Bytes, want(req1))
	if err != nil || m.Kind != Reply || string(m.Payload) != "answer" || !bytes.Equal(m.InReplyTo, req1.Digest[:]) {
		t.Fatalf("reply 1: %+v, %v", m, err)
	}
	m, err = client.Open(ctx, rep2.Bytes, want(req2))
	if err != nil || m.Kind != ErrorReply {
		t.Fatalf("error reply 2: %+v, %v", m, err)
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
		o := &Opener{ID: tc.id, Keys: keys, Replay: must[*MemoryStore](t)(NewMemoryStore(0)), Now: w.clock}
		m, err := o.Open(ctx, sealed.Bytes, &Expect{Kinds: Event, From: "client", Topic: "door/3/opened"})
		if err != nil || string(m.Payload) != "opened" {
			t.Fatalf("%s: %v", tc.id, err)
		}
	}
	// A third receiver with neither key cannot decrypt even if named.
	keys := must[*Keys](t)(NewKeys(nil, w.peer))
	o := &Opener{ID: "gateway", Keys: keys, Replay: must[*MemoryStore](t)(NewMemoryStore(0)), Now: w.clock}
	if _, err := o.Open(ctx, sealed.Bytes, &Expect{Kinds: Event}); !errors.Is(err, ErrUnknownKey) {
		t.Fatalf("receiver without a key: %v", err)
	}
	// One not named is refused before any crypto.
	o.ID = "eve"
	if _, err := o.Open(ctx, sealed.Bytes, &Expect{Kinds: Event}); !errors.Is(err, ErrContext) {
		t.Fatalf("receiver not named: %v", err)
	}
}

func TestBroadcastEventWithoutRecipients(t *testing.T) {
	w := newWorld(t)
	sealed, err := w.sealer().Seal(&Params{Kind: Event, Topic: "status", Signer: w.es}, []byte("up"))
	if err != nil {
		t.Fatal(err)
	}
	o := w.opener()
	o.ID = "anyone"
	if m, err := o.Open(ctx, sealed.Bytes, &Expect{Kinds: Event}); err != nil || string(m.Payload) != "up" {
		t.Fatalf("Open = %v", err)
	}
}

func TestSealRefusesInvalidParams(t *testing.T) {
	w := newWorld(t)
	req := &Message{Kind: Request, From: "client", Topic: "m", CorrelationID: []byte{1}}
	tests := []struct {
		name string
		s    *Sealer
		p    *Params
	}{
		{"no authentication", w.sealer(), &Params{Kind: Request, To: []string{"gateway"}, Topic: "m", ReplyTo: "r"}},
		{"hotp alone", w.sealer(), &Params{Kind: Request, To: []string{"gateway"}, Topic: "m", ReplyTo: "r", HOTP: w.hotp}},
		{"wrapped key alone", w.sealer(), &Params{Kind: Request, To: []string{"gateway"}, Topic: "m", ReplyTo: "r", Recipients: []Recipient{w.x25519}}},
		{"psk and recipients", w.sealer(), &Params{Kind: Event, Topic: "m", PSK: w.psk, Recipients: []Recipient{w.x25519}}},
		{"bad sender id", &Sealer{ID: "a/b", Counter: w.ctr}, &Params{Kind: Event, Topic: "m", HMAC: w.hmac, To: []string{"x"}}},
		{"no counter", &Sealer{ID: "client"}, &Params{Kind: Event, Topic: "m", Signer: w.ed}},
		{"request to two", w.sealer(), &Params{Kind: Request, To: []string{"a", "b"}, Topic: "m", ReplyTo: "r", Signer: w.ed}},
		{"request without reply-to", w.sealer(), &Params{Kind: Request, To: []string{"a"}, Topic: "m", Signer: w.ed}},
		{"wildcard topic", w.sealer(), &Params{Kind: Event, Topic: "a/+", Signer: w.ed}},
		{"empty topic", w.sealer(), &Params{Kind: Event, Signer: w.ed}},
		{"hmac event to two", w.sealer(), &Params{Kind: Event, To: []string{"a", "b"}, Topic: "m", HMAC: w.hmac}},
		{"reply without request", w.sealer(), &Params{Kind: Reply, Signer: w.ed}},
		{"reply with own context", w.sealer(), &Params{Kind: Reply, InReplyTo: req, Topic: "x", Signer: w.ed}},
		{"unknown kind", w.sealer(), &Params{Kind: 0, Topic: "m", Signer: w.ed}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if s, err := tt.s.Seal(tt.p, nil); !errors.Is(err, ErrInvalidParams) || s != nil {
				t.Fatalf("Seal = %v, want ErrInvalidParams", err)
			}
		})
	}
	big := make([]byte, DefaultMaxSize)
	p := w.request("m")
	p.HMAC = w.hmac
	if _, err := w.sealer().Seal(p, big); !errors.Is(err, ErrTooLarge) {
		t.Fatalf("Seal(huge) = %v, want ErrTooLarge", err)
	}
}

// Of many goroutines opening the same envelope at once, exactly one wins.
func TestConcurrentDuplicatesAdmitOnce(t *testing.T) {
	w := newWorld(t)
	p := w.request("open-door")
	p.HMAC = w.hmac
	sealed := must[*Sealed](t)(w.sealer().Seal(p, nil))
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
			}
		})
	}
	wg.Wait()
	if ok != 1 || replayed != 31 {
		t.Fatalf("accepted %d, replayed %d; want 1 and 31", ok, replayed)
	}
}

func TestQoS1DuplicatesAndReordering(t *testing.T) {
	w := newWorld(t)
	var msgs [][]byte
	for range 5 {
		p := w.request("m")
		p.HMAC = w.hmac
		s := must[*Sealed](t)(w.sealer().Seal(p, nil))
		msgs = append(msgs, s.Bytes)
	}
	o := w.opener()
	order := []int{2, 0, 4, 1, 1, 3, 0, 4}
	want := []error{nil, nil, nil, nil, ErrReplayed, nil, ErrReplayed, ErrReplayed}
	for i, idx := range order {
		_, err := o.Open(ctx, msgs[idx], expectRequest)
		if !errors.Is(err, want[i]) {
			t.Fatalf("delivery %d (message %d): %v, want %v", i, idx, err, want[i])
		}
	}
}

func TestClockSkewBoundaries(t *testing.T) {
	tests := []struct {
		name  string
		shift time.Duration // receiver clock minus sender clock
		want  error
	}{
		{"in sync", 0, nil},
		{"receiver behind within skew", -DefaultMaxClockSkew, nil},
		{"receiver behind beyond skew", -DefaultMaxClockSkew - time.Millisecond, ErrExpired},
		{"just before expiry plus skew", DefaultTTL + DefaultMaxClockSkew - time.Millisecond, nil},
		{"at expiry plus skew", DefaultTTL + DefaultMaxClockSkew, ErrExpired},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w := newWorld(t)
			p := w.request("m")
			p.HMAC = w.hmac
			s := must[*Sealed](t)(w.sealer().Seal(p, nil))
			w.now = w.now.Add(tt.shift)
			_, err := w.opener().Open(ctx, s.Bytes, expectRequest)
			if !errors.Is(err, tt.want) {
				t.Fatalf("Open = %v, want %v", err, tt.want)
			}
		})
	}
}

func TestContextCancelled(t *testing.T) {
	w := newWorld(t)
	p := w.request("m")
	p.HMAC = w.hmac
	s := must[*Sealed](t)(w.sealer().Seal(p, nil))
	c, cancel := context.WithCancel(ctx)
	cancel()
	if _, err := w.opener().Open(c, s.Bytes, expectRequest); !errors.Is(err, context.Canceled) {
		t.Fatalf("Open = %v, want context.Canceled", err)
	}
}

func TestErrorsNameNoKeys(t *testing.T) {
	w := newWorld(t)
	p := w.request("m")
	p.HMAC = &HMACKey{id: w.hmac.id, secret: w.sec.OtherHMAC}
	s := must[*Sealed](t)(w.sealer().Seal(p, nil))
	_, err := w.opener().Open(ctx, s.Bytes, expectRequest)
	if err == nil || strings.Contains(err.Error(), w.hmac.id) || err.Error() != string(ErrAuthentication) {
		t.Fatalf("error = %q", err)
	}
	for _, v := range []any{w.hmac, w.hotp, w.psk, w.ed, w.ids[0]} {
		for _, f := range []string{"%v", "%+v", "%#v", "%s"} {
			out := fmt.Sprintf(f, v)
			if strings.Contains(out, "secret:") || strings.Contains(out, "key:") {
				t.Errorf("%T formatted with %s shows fields: %s", v, f, out)
			}
		}
	}
}

func TestHOTP(t *testing.T) {
	w := newWorld(t)
	w.peer.Policy = Policy{Require: HMAC | HOTPCode}
	o := w.opener()
	seal := func() []byte {
		p := w.request("open-door")
		p.HMAC, p.HOTP = w.hmac, w.hotp
		s, err := w.sealer().Seal(p, nil)
		if err != nil {
			t.Fatal(err)
		}
		return s.Bytes
	}
	first := seal()
	if _, err := o.Open(ctx, first, expectRequest); err != nil {
		t.Fatalf("first: %v", err)
	}
	// Messages lost in transit: the sender's counter runs ahead. The
	// counter travels with the code, so the receiver resynchronises at once.
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
	// The code must be the one for the message's own counter, under the
	// named key, and a header edit to fix it up breaks the HMAC.
	wrong := rewriteHeader(func(h *wireHeader) { h.HOTP.Code = w.hotp.key.Code(h.Ctr + 1) })(w, seal())
	if _, err := o.Open(ctx, wrong, expectRequest); !errors.Is(err, ErrAuthentication) {
		t.Fatalf("code for another counter: %v", err)
	}
	s, err := w.sealer().seal(nil, &Params{Kind: Request, To: []string{"gateway"}, Topic: "open-door", ReplyTo: "r", HMAC: w.hmac, HOTP: w.hotp},
		nil, func(h *wireHeader) { h.HOTP.Code = w.hotp.key.Code(h.Ctr - 1) })
	if err != nil {
		t.Fatal(err)
	}
	if _, err := o.Open(ctx, s.Bytes, expectRequest); !errors.Is(err, ErrAuthentication) {
		t.Fatalf("validly MACed header with a wrong code: %v", err)
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
	p := w.request("open-door")
	p.HMAC, p.TTL = w.hmac, DefaultMaxLifetime
	captured := must[*Sealed](t)(w.sealer().Seal(p, nil))
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
			w.replay = must[*MemoryStore](t)(NewMemoryStore(0)) // the state is gone
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
	p := w.request("m")
	p.Signer = s
	sealed, err := w.sealer().Seal(p, nil)
	if err != nil {
		t.Fatal(err)
	}
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
	w := newWorld(t)
	p := w.request("m")
	// Signed, so that Open asks the store both to Check and to Admit.
	p.HMAC, p.Signer = w.hmac, w.ed
	s, err := w.sealer().Seal(p, nil)
	if err != nil {
		t.Fatal(err)
	}
	disk := errors.New("replay: writing log: no space left on device")
	for _, tc := range []struct {
		name  string
		store ReplayStore
		class error
		cause error
	}{
		{"check fails", failingStore{checkErr: disk}, ErrReplayStore, disk},
		{"admit fails", failingStore{admitErr: disk}, ErrReplayStore, disk},
		{"no store", nil, ErrReplayStore, nil},
		{"replayed", failingStore{admitErr: ErrReplayed}, ErrReplayed, nil},
		{"store sees cancellation", failingStore{checkErr: context.Canceled}, nil, context.Canceled},
	} {
		t.Run(tc.name, func(t *testing.T) {
			o := w.opener()
			o.Replay = tc.store
			_, err := o.Open(ctx, s.Bytes, expectRequest)
			if err == nil {
				t.Fatal("Open accepted a message its replay store did not admit")
			}
			if got := Class(err); got != tc.class {
				t.Fatalf("Class(%v) = %v, want %v", err, got, tc.class)
			}
			if tc.cause != nil && !errors.Is(err, tc.cause) {
				t.Fatalf("Open = %v, does not wrap %v", err, tc.cause)
			}
			if tc.class == ErrReplayStore && errors.Is(err, ErrReplayed) {
				t.Fatalf("a store failure reported as a replay: %v", err)
			}
		})
	}
}

// recordingStore admits everything and keeps what it was shown.
type recordingStore struct{ checked, admitted []Seen }

func (s *recordingStore) Check(_ context.Context, m Seen) error {
	s.checked = append(s.checked, m)
	return nil
}

func (s *recordingStore) Admit(_ context.Context, m Seen) error {
	s.admitted = append(s.admitted, m)
	return nil
}

// The store learns when the receiver stops accepting the message: its
// expiry plus the peer policy's clock skew, so a store that forgets
// senders after a time knows how long it must keep them.
func TestReplayStoreSeesWhenMessageStopsBeingFresh(t *testing.T) {
	for _, skew := range []time.Duration{0, 2 * time.Minute} {
		t.Run(fmt.Sprint(skew), func(t *testing.T) {
			w := newWorld(t)
			w.peer.Policy.MaxClockSkew = skew
			p := w.request("m")
			// Signed, so that Open asks the store both to Check and to
			// Admit.
			p.HMAC, p.Signer = w.hmac, w.ed
			p.TTL = 3 * time.Minute
			s, err := w.sealer().Seal(p, nil)
			if err != nil {
				t.Fatal(err)
			}
			store := &recordingStore{}
			o := w.opener()
			o.Replay = store
			if _, err := o.Open(ctx, s.Bytes, expectRequest); err != nil {
				t.Fatal(err)
			}
			if skew == 0 {
				skew = DefaultMaxClockSkew
			}
			want := testNow.Add(3 * time.Minute).Add(skew)
			for _, m := range append(store.checked, store.admitted...) {
				if !m.ExpiresAt.Equal(want) {
					t.Fatalf("store saw ExpiresAt %v, want %v (exp + skew)", m.ExpiresAt, want)
				}
			}
			if len(store.checked) != 1 || len(store.admitted) != 1 {
				t.Fatalf("store checked %d and admitted %d messages, want 1 and 1", len(store.checked), len(store.admitted))
			}
			// One millisecond before that instant the message is still
			// fresh; at it, expired.
			for _, tc := range []struct {
				at   time.Time
				want error
			}{{want.Add(-time.Millisecond), nil}, {want, ErrExpired}} {
				w.now = tc.at
				o.Replay = &recordingStore{}
				if _, err := o.Open(ctx, s.Bytes, expectRequest); !errors.Is(err, tc.want) {
					t.Fatalf("Open at %v: %v, want %v", tc.at, err, tc.want)
				}
			}
		})
	}
}

// countingStore is a MemoryStore that counts the calls made to it.
type countingStore struct {
	*MemoryStore
	checks, admits int
}

func (s *countingStore) Check(ctx context.Context, m Seen) error {
	s.checks++
	return s.MemoryStore.Check(ctx, m)
}

func (s *countingStore) Admit(ctx context.Context, m Seen) error {
	s.admits++
	return s.MemoryStore.Admit(ctx, m)
}

// countingVerifier counts the signatures it is asked to verify.
type countingVerifier struct {
	Verifier
	verified int
}

func (v *countingVerifier) Verify(msg, sig []byte) error {
	v.verified++
	return v.Verifier.Verify(msg, sig)
}

// SPEC.md §9: the replay store is consulted only after the HMAC and HOTP
// checks (a forged message never costs a request to a store that may be a
// network service), and before the signature and decryption (a captured
// message sent again costs no public-key work); with neither to come, only
// Admit is asked.
func TestReplayStoreConsultedAfterHMACBeforeSignature(t *testing.T) {
	withHMACEd := func(w *world, p *Params) { p.HMAC, p.Signer = w.hmac, w.ed }
	tests := []struct {
		name   string
		params func(w *world, p *Params)
		mutate func(b []byte) []byte
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
		{name: "tampered payload", params: withHMACEd, mutate: func(b []byte) []byte { return flipInMember(b, memberP, 0) }, want: ErrAuthentication},
		{name: "mac member stripped", params: withHMACEd, mutate: func(b []byte) []byte { return dropMember(memberMAC)(nil, b) }, want: ErrAuthentication},
		{name: "hotp code under another secret", params: func(w *world, p *Params) {
			other := must[*HOTPKey](w.t)(NewHOTPKey(w.sec.OtherHMAC, 6))
			p.HMAC, p.HOTP = w.hmac, &HOTPKey{id: w.hotp.id, key: other.key}
		}, want: ErrAuthentication},
		{name: "replayed, signed", params: withHMACEd, replay: true, want: ErrReplayed, checks: 1},
		// Decryption would refuse the changed ciphertext; the replay is
		// refused first.
		{name: "replayed, pre-shared key only, ciphertext changed", params: func(w *world, p *Params) { p.PSK = w.psk },
			mutate: func(b []byte) []byte { return flipInMember(b, memberP, 20) }, replay: true, want: ErrReplayed, checks: 1},
		{name: "forged signature, no hmac", params: func(w *world, p *Params) { p.Signer = w.ed }, mutate: func(b []byte) []byte { return flipInMember(b, memberSig, 0) }, want: ErrAuthentication, checks: 1, verify: 1},
		{name: "genuine", params: withHMACEd, want: nil, checks: 1, verify: 1, admits: 1},
		// Nothing to shed after the HMAC: Admit alone refuses the replay.
		{name: "genuine, hmac only", params: func(w *world, p *Params) { p.HMAC = w.hmac }, want: nil, admits: 1},
		{name: "replayed, hmac only", params: func(w *world, p *Params) { p.HMAC = w.hmac }, replay: true, want: ErrReplayed, admits: 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w := newWorld(t)
			p := w.request("get-card")
			tt.params(w, p)
			sealed, err := w.sealer().Seal(p, []byte("payload"))
			if err != nil {
				t.Fatal(err)
			}
			b := sealed.Bytes
			if tt.mutate != nil {
				b = tt.mutate(bytes.Clone(b))
			}
			store := &countingStore{MemoryStore: w.replay}
			w.replay = nil
			verifier := &countingVerifier{Verifier: w.peer.Verifiers[0]}
			w.peer.Verifiers[0] = verifier
			o := w.opener()
			o.Replay = store
			if tt.replay {
				if err := store.MemoryStore.Admit(ctx, Seen{Sender: "client", Counter: sealed.Counter, IssuedAt: testNow}); err != nil {
					t.Fatal(err)
				}
			}
			if _, err := o.Open(ctx, b, expectRequest); !errors.Is(err, tt.want) {
				t.Fatalf("Open: %v, want %v", err, tt.want)
			}
			if store.checks != tt.checks {
				t.Errorf("replay store checked %d times, want %d", store.checks, tt.checks)
			}
			if store.admits != tt.admits {
				t.Errorf("Admit called %d times, want %d", store.admits, tt.admits)
			}
			if verifier.verified != tt.verify {
				t.Errorf("%d signatures verified, want %d", verifier.verified, tt.verify)
			}
		})
	}
}

// TestCorrelationIDLengths: every correlation id length a request may carry
// comes back intact in the request, in its reply and in Inspect's header,
// and the decoded correlation id and request digest are slices of their own
// length: appending to one never writes into the other.
func TestCorrelationIDLengths(t *testing.T) {
	for _, n := range []int{1, correlationSize - 1, correlationSize, correlationSize + 1, MaxCorrelation} {
		t.Run(fmt.Sprint(n), func(t *testing.T) {
			w := newWorld(t)
			corr := bytes.Repeat([]byte{0xc0}, n)
			req := sealRequest(t, w, Version1, func(w *world, p *Params) { p.HMAC, p.CorrelationID = w.hmac, corr }, nil)
			in, err := w.opener().Open(ctx, req.Bytes, expectRequest)
			if err != nil || !bytes.Equal(in.CorrelationID, corr) {
				t.Fatalf("request: %v, correlation id %x", err, in.CorrelationID)
			}
			rep, err := w.gatewaySealer().Seal(&Params{Kind: Reply, InReplyTo: in, HMAC: w.hmac}, []byte("ok"))
			if err != nil {
				t.Fatal(err)
			}
			h, err := Inspect(rep.Bytes, 0)
			if err != nil || !bytes.Equal(h.CorrelationID, corr) || !bytes.Equal(h.InReplyTo, req.Digest[:]) {
				t.Fatalf("Inspect: %v, %x, %x", err, h.CorrelationID, h.InReplyTo)
			}
			want := &Expect{Kinds: Reply, From: "gateway", InReplyTo: req.Digest[:], CorrelationID: corr}
			m, err := w.clientOpener().OpenInspected(ctx, h, want)
			if err != nil || !bytes.Equal(m.CorrelationID, corr) || !bytes.Equal(m.InReplyTo, req.Digest[:]) {
				t.Fatalf("reply: %v", err)
			}
			for _, ids := range [][2][]byte{{m.CorrelationID, m.InReplyTo}, {h.CorrelationID, h.InReplyTo}} {
				// An append with room in the slice would write over what follows.
				_ = append(ids[0], bytes.Repeat([]byte{0xff}, sha256.Size)...)
				if !bytes.Equal(ids[1], req.Digest[:]) {
					t.Fatal("appending to the correlation id changed the request digest")
				}
			}
		})
	}
	w := newWorld(t)
	p := w.request("get-card")
	p.HMAC, p.CorrelationID = w.hmac, make([]byte, MaxCorrelation+1)
	if _, err := w.sealer().Seal(p, nil); !errors.Is(err, ErrInvalidParams) {
		t.Fatalf("correlation id of %d bytes: Seal = %v, want ErrInvalidParams", MaxCorrelation+1, err)
	}
}
