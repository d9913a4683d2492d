package envelope

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"math/bits"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

// TestSealWritesTheFormat holds what Seal writes, for every suite, to an
// independent reading of the format: the frame, the header field by field,
// the digest, the tags and the ciphertext.
func TestSealWritesTheFormat(t *testing.T) {
	for _, s := range suites() {
		t.Run(s.name, func(t *testing.T) {
			w := newWorld(t)
			payload := []byte("\x00\x01binary \xff payload")
			corr := []byte("corr-0123456789a")
			sealed := sealRequestWith(t, w, func(w *world, p *Params) { s.apply(w, p); p.CorrelationID = corr }, payload)
			b := sealed.Bytes
			if b[0] != 0x01 {
				t.Fatalf("first byte %#x, want 0x01", b[0])
			}
			H, P, M, S, ok := indepFrame(b)
			if !ok {
				t.Fatal("not four members after the version byte")
			}
			if len(b) != 17+len(H)+len(P)+len(M)+len(S) {
				t.Fatalf("envelope of %d bytes", len(b))
			}
			r, err := indepOpen(w, b)
			if err != nil {
				t.Fatal(err)
			}
			h := r.header
			iat, exp := uint64(testNow.UnixMilli()), uint64(testNow.Add(DefaultTTL).UnixMilli())
			if h.kind != 0x01 || h.prot != byte(s.require) || h.from != "client" || !slices.Equal(h.to, []string{"gateway"}) ||
				h.topic != "get-card" || h.replyTo != "mqttsec/client/reply" || !bytes.Equal(h.corr, corr) || len(h.re) != 0 ||
				h.ctr != 1 || h.iat != iat || h.exp != exp {
				t.Fatalf("header %+v", h)
			}
			// The header, written by hand from the format's table up to
			// the key fields.
			want := []byte{0x01, byte(s.require), 6}
			want = append(want, "client"...)
			want = append(want, 1, 7)
			want = append(want, "gateway"...)
			want = append(want, 0, 8)
			want = append(want, "get-card"...)
			want = append(want, 0, 20)
			want = append(want, "mqttsec/client/reply"...)
			want = append(want, 16)
			want = append(want, corr...)
			want = append(want, 0)
			want = binary.BigEndian.AppendUint64(want, 1)
			want = binary.BigEndian.AppendUint64(want, iat)
			want = binary.BigEndian.AppendUint64(want, exp)
			if !bytes.HasPrefix(H, want) {
				t.Fatalf("header\n%x\ndoes not begin with\n%x", H, want)
			}
			if r.digest != sealed.Digest {
				t.Fatal("Sealed.Digest is not SHA-256 of the prefix and the envelope through the payload")
			}
			if (len(M) == 32) != (s.require&HMAC != 0) || (s.require&HMAC != 0) != r.macOK {
				t.Fatalf("HMAC tag of %d bytes, verified %v", len(M), r.macOK)
			}
			if (len(S) > 0) != (s.require&Signature != 0) || (s.require&Signature != 0) != r.sigOK {
				t.Fatalf("signature of %d bytes, verified %v", len(S), r.sigOK)
			}
			if s.require&Encryption != 0 {
				if !r.pskOK && !r.wrapOK {
					t.Fatal("the payload does not decrypt")
				}
				if len(P) != len(payload)+28 || bytes.Contains(b, payload) {
					t.Fatalf("ciphertext of %d bytes for a payload of %d", len(P), len(payload))
				}
			} else if !bytes.Equal(P, payload) {
				t.Fatal("the clear payload is not P")
			}
			if !bytes.Equal(r.payload, payload) {
				t.Fatalf("payload %q", r.payload)
			}
			// Each key the header names is the one the suite used.
			if s.require&HMAC != 0 && !bytes.Equal(h.macKid, w.hmac.id[:]) {
				t.Fatalf("mac kid %x", h.macKid)
			}
			if s.require&HOTPCode != 0 && (!bytes.Equal(h.hotpKid, w.hotp.id[:]) || h.hotpCode != w.hotp.key.Code(1)) {
				t.Fatalf("hotp %x %q", h.hotpKid, h.hotpCode)
			}
		})
	}
}

// TestSealTimes: iat is the sealer's clock in milliseconds, exp iat plus
// the TTL (DefaultTTL when zero).
func TestSealTimes(t *testing.T) {
	for _, tt := range []struct {
		name string
		now  time.Time
		ttl  time.Duration
	}{
		{"default TTL", testNow, 0},
		{"one millisecond", testNow, time.Millisecond},
		{"an hour", testNow, time.Hour},
		{"sub-millisecond clock", testNow.Add(999 * time.Microsecond), 5 * time.Second},
		{"the epoch", time.UnixMilli(0), 10 * time.Second},
	} {
		t.Run(tt.name, func(t *testing.T) {
			w := newWorld(t)
			s := &Sealer{ID: "client", Counter: NewMemoryCounter(0), Now: func() time.Time { return tt.now }}
			p := w.request("m")
			p.HMAC, p.TTL = w.hmac, tt.ttl
			sealed := must[*Sealed](t)(s.Seal(p, nil))
			H, _, _, _, _ := indepFrame(sealed.Bytes)
			h, ok := indepParseHeader(H)
			if !ok {
				t.Fatal("header does not read")
			}
			ttl := tt.ttl
			if ttl == 0 {
				ttl = DefaultTTL
			}
			if h.iat != uint64(tt.now.UnixMilli()) || h.exp != uint64(tt.now.Add(ttl).UnixMilli()) {
				t.Fatalf("iat %d exp %d", h.iat, h.exp)
			}
		})
	}
}

// failingCounter, failingSigner and failingRecipient fail with their error.
type failingCounter struct{ err error }

func (c failingCounter) Next() (uint64, error) { return 0, c.err }

type failingSigner struct {
	Signer
	err error
}

func (s failingSigner) Sign([]byte) ([]byte, error) { return nil, s.err }

type failingRecipient struct {
	Recipient
	err error
}

func (r failingRecipient) Wrap([]byte) ([]byte, error) { return nil, r.err }

// renamedSigner and renamedRecipient claim an algorithm of no code.
type renamedSigner struct{ Signer }

func (renamedSigner) Algorithm() Algorithm { return "RS256" }

type renamedRecipient struct{ Recipient }

func (renamedRecipient) Algorithm() Algorithm { return "RSA1_5" }

func TestSealRefusesInvalidParams(t *testing.T) {
	w := newWorld(t)
	req := &Message{Kind: Request, From: "client", Topic: "m", CorrelationID: []byte{1}}
	evt := &Message{Kind: Event, From: "client", Topic: "m"}
	manyRecipients := make([]Recipient, maxRecipients+1)
	for i := range manyRecipients {
		manyRecipients[i] = w.x25519
	}
	manyIDs := make([]string, maxRecipients+1)
	for i := range manyIDs {
		manyIDs[i] = fmt.Sprint("r", i)
	}
	rq := func(change func(p *Params)) *Params {
		p := &Params{Kind: Request, To: []string{"gateway"}, Topic: "m", ReplyTo: "r", Signer: w.ed}
		change(p)
		return p
	}
	tests := []struct {
		name string
		s    *Sealer
		p    *Params
	}{
		{"no authentication", w.sealer(), rq(func(p *Params) { p.Signer = nil })},
		{"hotp alone", w.sealer(), rq(func(p *Params) { p.Signer, p.HOTP = nil, w.hotp })},
		{"wrapped key alone", w.sealer(), rq(func(p *Params) { p.Signer, p.Recipients = nil, []Recipient{w.x25519} })},
		{"psk and recipients", w.sealer(), &Params{Kind: Event, Topic: "m", PSK: w.psk, Recipients: []Recipient{w.x25519}}},
		{"bad sender id", &Sealer{ID: "a/b", Counter: w.ctr}, &Params{Kind: Event, Topic: "m", HMAC: w.hmac, To: []string{"x"}}},
		{"empty sender id", &Sealer{ID: "", Counter: w.ctr}, &Params{Kind: Event, Topic: "m", Signer: w.ed}},
		{"no counter", &Sealer{ID: "client"}, &Params{Kind: Event, Topic: "m", Signer: w.ed}},
		{"request to two", w.sealer(), rq(func(p *Params) { p.To = []string{"a", "b"} })},
		{"request to nobody", w.sealer(), rq(func(p *Params) { p.To = nil })},
		{"request without reply-to", w.sealer(), rq(func(p *Params) { p.ReplyTo = "" })},
		{"request with a bad recipient id", w.sealer(), rq(func(p *Params) { p.To = []string{"a+b"} })},
		{"request with InReplyTo", w.sealer(), rq(func(p *Params) { p.InReplyTo = req })},
		{"correlation id of 65 bytes", w.sealer(), rq(func(p *Params) { p.CorrelationID = make([]byte, 65) })},
		{"wildcard topic", w.sealer(), &Params{Kind: Event, Topic: "a/+", Signer: w.ed}},
		{"empty topic", w.sealer(), &Params{Kind: Event, Signer: w.ed}},
		{"topic too long", w.sealer(), &Params{Kind: Event, Topic: strings.Repeat("t", maxTopicLength+1), Signer: w.ed}},
		{"reply-to with wildcard", w.sealer(), rq(func(p *Params) { p.ReplyTo = "r/#" })},
		{"hmac event to two", w.sealer(), &Params{Kind: Event, To: []string{"a", "b"}, Topic: "m", HMAC: w.hmac}},
		{"hmac event to nobody", w.sealer(), &Params{Kind: Event, Topic: "m", HMAC: w.hmac}},
		{"psk event to two", w.sealer(), &Params{Kind: Event, To: []string{"a", "b"}, Topic: "m", PSK: w.psk}},
		{"event to duplicate recipients", w.sealer(), &Params{Kind: Event, To: []string{"a", "a"}, Topic: "m", Signer: w.ed}},
		{"event to 65 recipients", w.sealer(), &Params{Kind: Event, To: manyIDs, Topic: "m", Signer: w.ed}},
		{"65 wrapped keys", w.sealer(), &Params{Kind: Event, Topic: "m", Signer: w.ed, Recipients: manyRecipients}},
		{"the same recipient key twice", w.sealer(), &Params{Kind: Event, Topic: "m", Signer: w.ed, Recipients: []Recipient{w.x25519, w.x25519}}},
		{"reply without request", w.sealer(), &Params{Kind: Reply, Signer: w.ed}},
		{"reply to an event", w.sealer(), &Params{Kind: Reply, InReplyTo: evt, Signer: w.ed}},
		{"reply with its own topic", w.sealer(), &Params{Kind: Reply, InReplyTo: req, Topic: "x", Signer: w.ed}},
		{"reply with its own recipients", w.sealer(), &Params{Kind: Reply, InReplyTo: req, To: []string{"x"}, Signer: w.ed}},
		{"reply with its own correlation id", w.sealer(), &Params{Kind: ErrorReply, InReplyTo: req, CorrelationID: []byte{2}, Signer: w.ed}},
		{"reply with a reply-to", w.sealer(), &Params{Kind: Reply, InReplyTo: req, ReplyTo: "r", Signer: w.ed}},
		{"event with a reply-to", w.sealer(), &Params{Kind: Event, Topic: "m", ReplyTo: "r", Signer: w.ed}},
		{"event with a correlation id", w.sealer(), &Params{Kind: Event, Topic: "m", CorrelationID: []byte{1}, Signer: w.ed}},
		{"event with InReplyTo", w.sealer(), &Params{Kind: Event, Topic: "m", InReplyTo: req, Signer: w.ed}},
		{"unknown kind", w.sealer(), &Params{Kind: 0, Topic: "m", Signer: w.ed}},
		{"two kinds", w.sealer(), &Params{Kind: Request | Event, Topic: "m", Signer: w.ed}},
		{"negative TTL", w.sealer(), rq(func(p *Params) { p.TTL = -time.Second })},
		{"TTL under a millisecond", w.sealer(), rq(func(p *Params) { p.TTL = time.Microsecond })},
		{"clock before 1970", &Sealer{ID: "client", Counter: w.ctr, Now: func() time.Time { return time.UnixMilli(-1) }}, rq(func(p *Params) {})},
		{"signer of an algorithm with no code", w.sealer(), rq(func(p *Params) { p.Signer = renamedSigner{w.ed} })},
		{"recipient of an algorithm with no code", w.sealer(), rq(func(p *Params) { p.Recipients = []Recipient{renamedRecipient{w.x25519}} })},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if s, err := tt.s.Seal(tt.p, nil); !errors.Is(err, ErrInvalidParams) || s != nil || Class(err) != ErrInvalidParams {
				t.Fatalf("Seal = %v, want ErrInvalidParams", err)
			}
		})
	}
}

// Seal refuses what would be larger than the sealer's MaxSize (or the
// default), and returns the error of a failing counter, signer or
// recipient as it is.
func TestSealFailures(t *testing.T) {
	w := newWorld(t)
	hmacRequest := func() *Params { p := w.request("m"); p.HMAC = w.hmac; return p }
	// The size of an HMAC request with an empty payload, to set limits by.
	base := len(must[*Sealed](t)(w.sealer().Seal(hmacRequest(), nil)).Bytes)
	boom := errors.New("boom")
	for _, tt := range []struct {
		name    string
		s       *Sealer
		p       *Params
		payload int
		want    error
	}{
		{"over DefaultMaxSize", w.sealer(), hmacRequest(), DefaultMaxSize, ErrTooLarge},
		{"DefaultMaxSize exactly", w.sealer(), hmacRequest(), DefaultMaxSize - base, nil},
		{"over the sealer's MaxSize", &Sealer{ID: "client", Counter: w.ctr, Now: w.clock, MaxSize: base + 9}, hmacRequest(), 10, ErrTooLarge},
		{"the sealer's MaxSize exactly", &Sealer{ID: "client", Counter: w.ctr, Now: w.clock, MaxSize: base + 10}, hmacRequest(), 10, nil},
		{"counter exhausted", &Sealer{ID: "client", Counter: NewMemoryCounter(^uint64(0)), Now: w.clock}, hmacRequest(), 0, ErrCounterExhausted},
		{"counter fails", &Sealer{ID: "client", Counter: failingCounter{boom}, Now: w.clock}, hmacRequest(), 0, boom},
		{"signer fails", w.sealer(), func() *Params { p := hmacRequest(); p.Signer = failingSigner{w.ed, boom}; return p }(), 0, boom},
		{"recipient fails", w.sealer(), func() *Params {
			p := hmacRequest()
			p.Recipients = []Recipient{failingRecipient{w.x25519, boom}}
			return p
		}(), 0, boom},
	} {
		t.Run(tt.name, func(t *testing.T) {
			s, err := tt.s.Seal(tt.p, make([]byte, tt.payload))
			if !errors.Is(err, tt.want) || (tt.want == nil) != (s != nil) {
				t.Fatalf("Seal = %v, want %v", err, tt.want)
			}
			if tt.want == nil && len(s.Bytes) != base+tt.payload {
				t.Fatalf("envelope of %d bytes, want %d", len(s.Bytes), base+tt.payload)
			}
		})
	}
}

// TestSealedOwnsItsCorrelationID: Sealed, which the requester keeps to
// open the reply against, holds its own copy of the correlation id; a
// caller reusing the buffer it passed in Params changes nothing.
func TestSealedOwnsItsCorrelationID(t *testing.T) {
	w := newWorld(t)
	corr := []byte("corr-0123456789a")
	p := w.request("get-card")
	p.HMAC, p.CorrelationID = w.hmac, corr
	req := must[*Sealed](t)(w.sealer().Seal(p, nil))
	in := must[*Message](t)(w.opener().Open(ctx, req.Bytes, expectRequest))
	rep := must[*Sealed](t)(w.gatewaySealer().Seal(&Params{Kind: Reply, InReplyTo: in, HMAC: w.hmac}, nil))
	copy(corr, "XXXXXXXXXXXXXXXX") // the caller reuses its buffer
	clear(in.CorrelationID)        // and the gateway its message
	if !bytes.Equal(req.CorrelationID, []byte("corr-0123456789a")) {
		t.Fatalf("Sealed.CorrelationID changed with the caller's buffer: %q", req.CorrelationID)
	}
	if _, err := w.clientOpener().Open(ctx, rep.Bytes, &Expect{Kinds: Reply, Request: req}); err != nil {
		t.Fatalf("the reply: %v", err)
	}
	if !bytes.Equal(rep.CorrelationID, []byte("corr-0123456789a")) {
		t.Fatalf("the reply's Sealed.CorrelationID changed with the request message: %q", rep.CorrelationID)
	}
}

// TestSealsShareNothing: Seal builds each header in reused memory; seals
// of every kind and protection, run concurrently, each carry exactly their
// own fields, never one left from an earlier seal.
func TestSealsShareNothing(t *testing.T) {
	w := newWorld(t)
	req := sealRequestWith(t, w, withHMAC, nil)
	in, err := w.opener().Open(ctx, req.Bytes, expectRequest)
	if err != nil {
		t.Fatal(err)
	}
	gw := w.gatewaySealer()
	var wg sync.WaitGroup
	for g := range 4 {
		wg.Go(func() {
			for i := range 100 {
				topic := fmt.Sprintf("m/%d/%d", g, i)
				var p *Params
				var s *Sealer
				switch i % 5 {
				case 0:
					s, p = w.sealer(), &Params{Kind: Request, To: []string{"gateway"}, Topic: topic, ReplyTo: "mqttsec/client/reply", HMAC: w.hmac, HOTP: w.hotp}
				case 1:
					s, p = gw, &Params{Kind: Reply, InReplyTo: in, HMAC: w.hmac}
				case 2:
					s, p = w.sealer(), &Params{Kind: Event, To: []string{"a", "b"}, Topic: topic, Signer: w.ed}
				case 3:
					s, p = w.sealer(), &Params{Kind: Request, To: []string{"gateway"}, Topic: topic, ReplyTo: "r", PSK: w.psk}
				case 4:
					s, p = w.sealer(), &Params{Kind: Event, Topic: topic, Signer: w.es, Recipients: []Recipient{w.x25519, w.rsaoaep}}
				}
				sealed, err := s.Seal(p, []byte(topic))
				if err != nil {
					t.Error(err)
					return
				}
				h, err := Peek(sealed.Bytes, 0)
				if err != nil {
					t.Error(err)
					return
				}
				if err := sameHeader(h, p, in); err != nil {
					t.Errorf("seal %d of goroutine %d: %v", i, g, err)
					return
				}
			}
		})
	}
	wg.Wait()
}

// sameHeader reports how h differs from what Seal was asked for with p.
func sameHeader(h *Header, p *Params, req *Message) error {
	to, topic, replyTo := p.To, p.Topic, p.ReplyTo
	var re [32]byte
	if p.Kind == Reply {
		to, topic, re = []string{req.From}, req.Topic, req.Digest
	}
	var prot Protection
	keys := 0
	if p.HMAC != nil {
		prot |= HMAC
		keys++
	}
	if p.HOTP != nil {
		prot |= HOTPCode
		keys++
	}
	if p.Signer != nil {
		prot |= Signature
		keys++
	}
	if p.PSK != nil {
		prot |= Encryption
		keys++
	}
	if len(p.Recipients) > 0 {
		prot |= Encryption
		keys += len(p.Recipients)
	}
	switch {
	case h.Kind != p.Kind:
		return fmt.Errorf("kind %v, want %v", h.Kind, p.Kind)
	case !slices.Equal(h.To, to):
		return fmt.Errorf("to %v, want %v", h.To, to)
	case h.Topic != topic || h.ReplyTo != replyTo:
		return fmt.Errorf("topic %q and reply-to %q, want %q and %q", h.Topic, h.ReplyTo, topic, replyTo)
	case h.InReplyTo != re:
		return fmt.Errorf("request digest %x, want %x", h.InReplyTo, re)
	case h.Protections != prot || len(h.Keys) != keys || bits.OnesCount(uint(prot)) > len(h.Keys):
		return fmt.Errorf("protections %v (%v), want %v", h.Protections, h.Keys, prot)
	case (p.Kind == Event) != (h.CorrelationID == nil):
		return fmt.Errorf("correlation id %x on a %v", h.CorrelationID, p.Kind)
	}
	return nil
}

// The HMAC tag of a sealed message is HMAC-SHA-256 of the authenticated
// block under the key's secret, and a key's id is what SPEC.md §6 derives:
// a sender and a receiver that share only the secret agree on both.
func TestSealHMACFromSecretAlone(t *testing.T) {
	w := newWorld(t)
	sealed := sealRequestWith(t, w, withHMAC, []byte("x"))
	p := splitEnvelope(t, sealed.Bytes)
	d := sha256.Sum256(append([]byte("mqttsec.v1."), sealed.Bytes[:p.signedLen()]...))
	m := hmac.New(sha256.New, w.sec.HMAC)
	m.Write([]byte("mqttsec.v1.digest."))
	m.Write(d[:])
	if !hmac.Equal(m.Sum(nil), p.mac) {
		t.Fatal("the tag is not HMAC-SHA-256(secret, \"mqttsec.v1.digest.\" || D)")
	}
}

// truncatingSigner signs with its Signer and drops the last byte: a signer
// of another implementation that gets the size of its algorithm wrong.
type truncatingSigner struct{ Signer }

func (s truncatingSigner) Sign(msg []byte) ([]byte, error) {
	sig, err := s.Signer.Sign(msg)
	if err != nil {
		return nil, err
	}
	return sig[:len(sig)-1], nil
}

// Seal refuses a signature its receivers would refuse as malformed
// (SPEC.md §3.3) instead of sending it.
func TestSealRefusesSignatureOfTheWrongSize(t *testing.T) {
	w := newWorld(t)
	for _, signer := range []Signer{w.ed, w.es} {
		p := w.request("m")
		p.Signer = truncatingSigner{signer}
		if s, err := w.sealer().Seal(p, nil); !errors.Is(err, ErrInvalidParams) || s != nil {
			t.Errorf("%s: Seal = %v, want ErrInvalidParams", signer.Algorithm(), err)
		}
	}
}

// A correlation id that lies in the buffer SealInto writes is read before
// the buffer is written: the envelope and Sealed.CorrelationID both carry
// it as it was.
func TestSealIntoCorrelationIDInTheBuffer(t *testing.T) {
	w := newWorld(t)
	buf := make([]byte, 0, 4096)
	corr := buf[:16:16]
	copy(corr, "corr-0123456789a")
	p := w.request("m")
	p.HMAC, p.CorrelationID = w.hmac, corr
	s := must[*Sealed](t)(w.sealer().SealInto(buf, p, []byte("x")))
	h := must[*Header](t)(Peek(s.Bytes, 0))
	if string(h.CorrelationID) != "corr-0123456789a" || string(s.CorrelationID) != "corr-0123456789a" {
		t.Fatalf("correlation id in the envelope %q, in Sealed %q; want both %q", h.CorrelationID, s.CorrelationID, "corr-0123456789a")
	}
}
