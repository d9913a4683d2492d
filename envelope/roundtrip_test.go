package envelope

import (
	"bytes"
	"context"
	"errors"
	"testing"
)

var ctx = context.Background()

type suite struct {
	name    string
	apply   func(w *world, p *Params)
	require Protection
}

func suites() []suite {
	return []suite{
		{"hmac", func(w *world, p *Params) { p.HMAC = w.hmac }, HMAC},
		{"hmac+hotp", func(w *world, p *Params) { p.HMAC = w.hmac; p.HOTP = w.hotp }, HMAC | HOTPCode},
		{"ed25519", func(w *world, p *Params) { p.Signer = w.ed }, Signature},
		{"es256", func(w *world, p *Params) { p.Signer = w.es }, Signature},
		{"ps256", func(w *world, p *Params) { p.Signer = w.ps }, Signature},
		{"psk", func(w *world, p *Params) { p.PSK = w.psk }, Encryption},
		{"hmac+psk", func(w *world, p *Params) { p.HMAC = w.hmac; p.PSK = w.psk }, HMAC | Encryption},
		{"ed25519+hpke-x25519", func(w *world, p *Params) { p.Signer = w.ed; p.Recipients = []Recipient{w.x25519} }, Signature | Encryption},
		{"ed25519+hpke-xwing", func(w *world, p *Params) { p.Signer = w.ed; p.Recipients = []Recipient{w.xwing} }, Signature | Encryption},
		{"ps256+rsa-oaep", func(w *world, p *Params) { p.Signer = w.ps; p.Recipients = []Recipient{w.rsaoaep} }, Signature | Encryption},
		{"hmac+hpke-x25519", func(w *world, p *Params) { p.HMAC = w.hmac; p.Recipients = []Recipient{w.x25519} }, HMAC | Encryption},
		{"everything", func(w *world, p *Params) {
			p.HMAC, p.HOTP, p.Signer = w.hmac, w.hotp, w.es
			p.Recipients = []Recipient{w.xwing, w.x25519, w.rsaoaep}
		}, HMAC | HOTPCode | Signature | Encryption},
	}
}

func TestRoundTripEverySuite(t *testing.T) {
	for _, s := range suites() {
		t.Run(s.name, func(t *testing.T) {
			w := newWorld(t)
			w.peer.Policy = Policy{Require: s.require}
			p := w.request("get-card")
			s.apply(w, p)
			payload := []byte(`{"card":8165538}`)
			sealed, err := w.sealer().Seal(p, payload)
			if err != nil {
				t.Fatal(err)
			}
			if bytes.Contains(sealed.Bytes, payload) != (s.require&Encryption == 0) {
				t.Fatal("payload visible in an encrypted envelope, or not found in a clear one")
			}
			o := w.opener()
			m, err := o.Open(ctx, sealed.Bytes, expectRequest)
			if err != nil {
				t.Fatalf("Open: %v", err)
			}
			if !bytes.Equal(m.Payload, payload) || m.From != "client" || m.Topic != "get-card" ||
				m.Kind != Request || m.ReplyTo != "mqttsec/client/reply" || m.Protections != s.require ||
				m.Counter != sealed.Counter || m.Digest != sealed.Digest || !bytes.Equal(m.CorrelationID, sealed.CorrelationID) {
				t.Fatalf("opened message differs: %+v", m)
			}
			if _, err := o.Open(ctx, sealed.Bytes, expectRequest); !errors.Is(err, ErrReplayed) {
				t.Fatalf("second Open = %v, want ErrReplayed", err)
			}
			// A reply answers it.
			rep, err := w.gatewaySealer().Seal(&Params{Kind: Reply, InReplyTo: m, HMAC: w.hmac}, []byte("ok"))
			if err != nil {
				t.Fatal(err)
			}
			got, err := w.clientOpener().Open(ctx, rep.Bytes, &Expect{Kinds: Reply, Request: sealed})
			if err != nil || string(got.Payload) != "ok" {
				t.Fatalf("reply: %v", err)
			}
		})
	}
}
