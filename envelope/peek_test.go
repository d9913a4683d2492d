package envelope

import (
	"bytes"
	"errors"
	"reflect"
	"slices"
	"testing"
	"time"
)

// TestPeek holds every field of Peek's header to what the sender asked
// for, for requests, replies, error replies and events with every kind of
// key, and checks that the header keeps nothing of the bytes it was read
// from.
func TestPeek(t *testing.T) {
	w := newWorld(t)
	corr := []byte("corr-0123456789a")
	exp := testNow.Add(DefaultTTL)
	req := must[*Sealed](t)(w.sealer().Seal(&Params{Kind: Request, To: []string{"gateway"}, Topic: "get-card",
		ReplyTo: "mqttsec/client/reply", CorrelationID: corr,
		HMAC: w.hmac, HOTP: w.hotp, Signer: w.es, Recipients: []Recipient{w.xwing, w.x25519, w.rsaoaep}}, []byte("q")))
	in := must[*Message](t)(w.opener().Open(ctx, req.Bytes, expectRequest))
	gw := w.gatewaySealer()
	reply := must[*Sealed](t)(gw.Seal(&Params{Kind: Reply, InReplyTo: in, HMAC: w.hmac, TTL: time.Minute}, []byte("r")))
	errReply := must[*Sealed](t)(gw.Seal(&Params{Kind: ErrorReply, InReplyTo: in, PSK: w.psk, Signer: w.ps, TTL: 2 * time.Second}, []byte("e")))
	event := must[*Sealed](t)(w.sealer().Seal(&Params{Kind: Event, To: []string{"a", "b", "c"}, Topic: "doors/3/opened", Signer: w.ed}, nil))
	broadcast := must[*Sealed](t)(w.sealer().Seal(&Params{Kind: Event, Topic: "status", HMAC: w.hmac, PSK: w.psk, To: []string{"gateway"}}, nil))
	for _, tt := range []struct {
		name string
		data []byte
		want Header
	}{
		{"request", req.Bytes, Header{
			Kind: Request, From: "client", To: []string{"gateway"}, Topic: "get-card", ReplyTo: "mqttsec/client/reply",
			CorrelationID: corr, Counter: req.Counter, IssuedAt: testNow, ExpiresAt: exp,
			Protections: Encryption | HMAC | HOTPCode | Signature,
			Keys: []KeyRef{{HS256, w.hmac.KeyID()}, {HOTP, w.hotp.KeyID()}, {ES256, w.es.KeyID()},
				{HPKEXWing, w.xwing.KeyID()}, {HPKEX25519, w.x25519.KeyID()}, {RSAOAEP256, w.rsaoaep.KeyID()}},
		}},
		{"reply", reply.Bytes, Header{
			Kind: Reply, From: "gateway", To: []string{"client"}, Topic: "get-card", CorrelationID: corr,
			InReplyTo: req.Digest, Counter: reply.Counter, IssuedAt: testNow, ExpiresAt: testNow.Add(time.Minute),
			Protections: HMAC, Keys: []KeyRef{{HS256, w.hmac.KeyID()}},
		}},
		{"error reply", errReply.Bytes, Header{
			Kind: ErrorReply, From: "gateway", To: []string{"client"}, Topic: "get-card", CorrelationID: corr,
			InReplyTo: req.Digest, Counter: errReply.Counter, IssuedAt: testNow, ExpiresAt: testNow.Add(2 * time.Second),
			Protections: Encryption | Signature, Keys: []KeyRef{{PS256, w.ps.KeyID()}, {A256GCM, w.psk.KeyID()}},
		}},
		{"event to three", event.Bytes, Header{
			Kind: Event, From: "client", To: []string{"a", "b", "c"}, Topic: "doors/3/opened",
			Counter: event.Counter, IssuedAt: testNow, ExpiresAt: exp,
			Protections: Signature, Keys: []KeyRef{{Ed25519, w.ed.KeyID()}},
		}},
		{"event under pairwise keys", broadcast.Bytes, Header{
			Kind: Event, From: "client", To: []string{"gateway"}, Topic: "status",
			Counter: broadcast.Counter, IssuedAt: testNow, ExpiresAt: exp,
			Protections: Encryption | HMAC, Keys: []KeyRef{{HS256, w.hmac.KeyID()}, {A256GCM, w.psk.KeyID()}},
		}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			data := bytes.Clone(tt.data)
			got, err := Peek(data, 0)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(data, tt.data) {
				t.Fatal("Peek changed its input")
			}
			// Overwrite the input, as a transport reusing its buffer would.
			for i := range data {
				data[i] = 'X'
			}
			if !sameHeaderFields(got, &tt.want) {
				t.Fatalf("Peek:\n%+v\nwant\n%+v", *got, tt.want)
			}
			// A second Peek of the same bytes gives a header of its own.
			again := must[*Header](t)(Peek(tt.data, 0))
			if len(again.CorrelationID) > 0 {
				again.CorrelationID[0] ^= 1
			}
			again.To[0] = "changed"
			again.Keys[0].ID[0] ^= 1
			if !sameHeaderFields(got, &tt.want) {
				t.Fatal("two Peeks share memory")
			}
		})
	}
}

// sameHeaderFields compares every field of two headers, the times as
// instants.
func sameHeaderFields(a, b *Header) bool {
	return a.Kind == b.Kind && a.From == b.From && slices.Equal(a.To, b.To) && a.Topic == b.Topic &&
		a.ReplyTo == b.ReplyTo && bytes.Equal(a.CorrelationID, b.CorrelationID) && (a.CorrelationID == nil) == (b.CorrelationID == nil) &&
		a.InReplyTo == b.InReplyTo && a.Counter == b.Counter && a.IssuedAt.Equal(b.IssuedAt) && a.ExpiresAt.Equal(b.ExpiresAt) &&
		a.Protections == b.Protections && slices.Equal(a.Keys, b.Keys) &&
		// Every field is compared above: a field added to Header must be
		// added here.
		exportedFields(reflect.TypeFor[Header]()) == 12
}

func exportedFields(t reflect.Type) int {
	n := 0
	for f := range t.Fields() {
		if f.IsExported() {
			n++
		}
	}
	return n
}

// TestPeekRefusesAsOpenDoes: Peek runs Open's first three steps, with
// their errors, and nothing after: what only a key can tell is not its
// business.
func TestPeekRefusesAsOpenDoes(t *testing.T) {
	w := newWorld(t)
	sealed := sealRequestWith(t, w, nil, []byte("payload"))
	for _, tt := range []struct {
		name    string
		data    []byte
		maxSize int
		want    error // nil: Peek reads it
	}{
		{"genuine", sealed.Bytes, 0, nil},
		{"genuine, limit its size", sealed.Bytes, len(sealed.Bytes), nil},
		{"a byte over the limit", sealed.Bytes, len(sealed.Bytes) - 1, ErrTooLarge},
		{"over DefaultMaxSize", make([]byte, DefaultMaxSize+1), 0, ErrTooLarge},
		{"empty", nil, 0, ErrMalformed},
		{"cut short", sealed.Bytes[:len(sealed.Bytes)-40], 0, ErrMalformed},
		{"version byte 0x1f", append([]byte{0x1f}, sealed.Bytes[1:]...), 0, ErrUnsupportedVersion},
		{"version byte 0x20", append([]byte{0x20}, sealed.Bytes[1:]...), 0, ErrMalformed},
		{"mac cut to 31 bytes", editEnvelope(t, sealed.Bytes, func(p *splitParts) { p.mac = p.mac[:31] }), 0, ErrMalformed},
		{"a header rule broken (counter 0)", rewriteHeader(func(h *header) { h.ctr = 0 })(w, sealed.Bytes), 0, ErrMalformed},
		// Unauthenticated: what only the keys tell, Peek cannot.
		{"tampered mac", editEnvelope(t, sealed.Bytes, func(p *splitParts) { p.mac[0] ^= 1 }), 0, nil},
		{"topic rewritten", rewriteHeader(func(h *header) { h.topic = "delete-card" })(w, sealed.Bytes), 0, nil},
		{"from an unknown sender", rewriteHeader(func(h *header) { h.from = "mallory" })(w, sealed.Bytes), 0, nil},
	} {
		t.Run(tt.name, func(t *testing.T) {
			h, err := Peek(tt.data, tt.maxSize)
			if !errors.Is(err, tt.want) || (tt.want == nil) != (h != nil) {
				t.Fatalf("Peek = %v, want %v", err, tt.want)
			}
			if tt.want == nil {
				return
			}
			if got := matchedClasses(err); len(got) != 1 {
				t.Fatalf("%v wraps %v", err, got)
			}
			o := w.opener()
			o.MaxSize = tt.maxSize
			if _, err := o.Open(ctx, tt.data, expectRequest); Class(err) != tt.want {
				t.Fatalf("Open = %v, Peek %v", err, tt.want)
			}
		})
	}
}
