package envelope

import (
	"bytes"
	"fmt"
	"math/bits"
	"sync"
	"testing"
)

// TestSealsShareNothing: Seal builds each header in a pooled block; seals
// of every kind and protection, run concurrently, each carry exactly their
// own fields, never one left from an earlier seal.
func TestSealsShareNothing(t *testing.T) {
	w := newWorld(t)
	req := sealRequest(t, w, Version1, func(w *world, p *Params) { p.HMAC = w.hmac }, nil)
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
				switch i % 4 {
				case 0:
					s, p = w.sealer(), &Params{Kind: Request, To: []string{"gateway"}, Topic: topic, ReplyTo: "mqttsec/client/reply", HMAC: w.hmac, HOTP: w.hotp}
				case 1:
					s, p = gw, &Params{Kind: Reply, InReplyTo: in, HMAC: w.hmac}
				case 2:
					s, p = w.sealer(), &Params{Kind: Event, To: []string{"a", "b"}, Topic: topic, Signer: w.ed}
				case 3:
					s, p = w.sealer(), &Params{Kind: Request, To: []string{"gateway"}, Topic: topic, ReplyTo: "r", PSK: w.psk, Version: Version2}
				}
				sealed, err := s.Seal(p, []byte(topic))
				if err != nil {
					t.Error(err)
					return
				}
				h, err := Inspect(sealed.Bytes, 0)
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
	var re []byte
	if p.Kind == Reply {
		to, topic, re = []string{req.From}, req.Topic, req.Digest[:]
	}
	var prot Protection
	if p.HMAC != nil {
		prot |= HMAC
	}
	if p.HOTP != nil {
		prot |= HOTPCode
	}
	if p.Signer != nil {
		prot |= Signature
	}
	if p.PSK != nil {
		prot |= Encryption
	}
	switch {
	case h.Kind != p.Kind:
		return fmt.Errorf("kind %v, want %v", h.Kind, p.Kind)
	case fmt.Sprint(h.To) != fmt.Sprint(to):
		return fmt.Errorf("to %v, want %v", h.To, to)
	case h.Topic != topic || h.ReplyTo != replyTo:
		return fmt.Errorf("topic %q and reply-to %q, want %q and %q", h.Topic, h.ReplyTo, topic, replyTo)
	case !bytes.Equal(h.InReplyTo, re):
		return fmt.Errorf("request digest %x, want %x", h.InReplyTo, re)
	case h.Protections != prot || len(h.Algorithms) != bits.OnesCount(uint(prot)):
		return fmt.Errorf("protections %v (%v), want %v", h.Protections, h.Algorithms, prot)
	case (p.Kind == Event) != (h.CorrelationID == nil):
		return fmt.Errorf("correlation id %x on a %v", h.CorrelationID, p.Kind)
	}
	return nil
}
