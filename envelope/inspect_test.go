package envelope

import (
	"bytes"
	"crypto/sha256"
	"errors"
	"testing"
)

func TestInspect(t *testing.T) {
	w := newWorld(t)
	p := w.request("get-card")
	p.HMAC, p.Signer, p.Recipients = w.hmac, w.es, []Recipient{w.x25519}
	s, err := w.sealer().Seal(p, []byte("x"))
	if err != nil {
		t.Fatal(err)
	}
	h, err := Inspect(s.Bytes, 0)
	if err != nil {
		t.Fatal(err)
	}
	if h.Kind != Request || h.From != "client" || h.Topic != "get-card" || h.Counter != s.Counter ||
		!bytes.Equal(h.CorrelationID, s.CorrelationID) || h.Protections != Encryption|HMAC|Signature {
		t.Fatalf("header = %+v", h)
	}
	wantAlgs := []Algorithm{HPKEX25519, HS256, ES256}
	wantKids := []string{w.x25519.KeyID(), w.hmac.KeyID(), w.es.KeyID()}
	for i := range wantAlgs {
		if h.Algorithms[i] != wantAlgs[i] || h.KeyIDs[i] != wantKids[i] {
			t.Fatalf("key %d = %s %s", i, h.Algorithms[i], h.KeyIDs[i])
		}
	}
	if _, err := Inspect(s.Bytes, 10); !errors.Is(err, ErrTooLarge) {
		t.Fatalf("Inspect(small limit) = %v", err)
	}
	if _, err := Inspect([]byte("{}"), 0); !errors.Is(err, ErrMalformed) {
		t.Fatalf("Inspect(junk) = %v", err)
	}
}

func TestEnvelopeSigningInput(t *testing.T) {
	w := newWorld(t)
	p := w.request("m")
	p.HMAC = w.hmac
	s := must[*Sealed](t)(w.sealer().Seal(p, []byte("x")))
	e, err := Parse(s.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	si := e.SigningInput()
	if !bytes.HasPrefix(si, append([]byte("mqttsec.v1."), e.HeaderText()...)) || sha256.Sum256(si) != s.Digest {
		t.Fatalf("signing input %q does not give the digest", si)
	}
}

// TestOpenInspected: an inspected envelope opens without a second parse,
// with Open's checks; the exported header fields are copies that cannot
// steer it; a Header not made by Inspect is refused.
func TestOpenInspected(t *testing.T) {
	w := newWorld(t)
	p := w.request("get-card")
	p.HMAC = w.hmac
	s, err := w.sealer().Seal(p, []byte("card"))
	if err != nil {
		t.Fatal(err)
	}
	data := bytes.Clone(s.Bytes)
	h, err := Inspect(data, 0)
	if err != nil {
		t.Fatal(err)
	}
	// The caller may reuse its buffer and scribble on the copies.
	clear(data)
	h.From, h.Topic, h.To[0] = "mallory", "delete-card", "elsewhere"
	h.CorrelationID[0] ^= 1
	o := w.opener()
	m, err := o.OpenInspected(ctx, h, &Expect{Kinds: Request, Topic: "get-card"})
	if err != nil {
		t.Fatal(err)
	}
	if m.From != "client" || m.Topic != "get-card" || string(m.Payload) != "card" ||
		!bytes.Equal(m.CorrelationID, s.CorrelationID) || m.Digest != s.Digest {
		t.Fatalf("opened %+v", m)
	}
	if _, err := o.OpenInspected(ctx, h, &Expect{Kinds: Request}); !errors.Is(err, ErrReplayed) {
		t.Fatalf("second OpenInspected = %v, want ErrReplayed", err)
	}
	// Open's context checks apply.
	s2 := must[*Sealed](t)(w.sealer().Seal(p, []byte("card")))
	h2 := must[*Header](t)(Inspect(s2.Bytes, 0))
	if _, err := o.OpenInspected(ctx, h2, &Expect{Kinds: Request, Topic: "delete-card"}); !errors.Is(err, ErrContext) {
		t.Fatalf("wrong topic = %v, want ErrContext", err)
	}
	for _, bad := range []*Header{nil, {}, {Kind: Request, From: "client"}} {
		if _, err := o.OpenInspected(ctx, bad, &Expect{Kinds: Request}); !errors.Is(err, ErrMalformed) {
			t.Fatalf("OpenInspected(%+v) = %v, want ErrMalformed", bad, err)
		}
	}
}
