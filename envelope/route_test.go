package envelope

import (
	"bytes"
	"errors"
	"fmt"
	"reflect"
	"slices"
	"testing"
)

// openRouted is Route then OpenRouted, as a receiver that routes does.
func openRouted(o *Opener, data []byte, want *Expect) func() (*Message, error) {
	return func() (*Message, error) {
		r, err := Route(data, o.MaxSize)
		if err != nil {
			return nil, err
		}
		return o.OpenRouted(ctx, r, want)
	}
}

// sameOutcome says how the outcome of open differs from Open's, m and
// err: "" if both refuse with the same error class, or both open the same
// message.
func sameOutcome(m *Message, err error, open func() (*Message, error)) string {
	rm, rerr := open()
	switch {
	case (err == nil) != (rerr == nil):
		return fmt.Sprintf("Open: %v; Route and OpenRouted: %v", err, rerr)
	case err != nil && Class(err) != Class(rerr):
		return fmt.Sprintf("Open refused with %v, OpenRouted with %v", err, rerr)
	case err != nil:
		return ""
	case rm.Kind != m.Kind || rm.From != m.From || rm.Topic != m.Topic || rm.ReplyTo != m.ReplyTo ||
		rm.Counter != m.Counter || !rm.IssuedAt.Equal(m.IssuedAt) || !rm.ExpiresAt.Equal(m.ExpiresAt) ||
		rm.Protections != m.Protections || rm.Digest != m.Digest || rm.TimeRequest != m.TimeRequest ||
		!slices.Equal(rm.To, m.To) || !bytes.Equal(rm.CorrelationID, m.CorrelationID) ||
		!bytes.Equal(rm.InReplyTo, m.InReplyTo) || !bytes.Equal(rm.Payload, m.Payload):
		return fmt.Sprintf("Open opened %+v, OpenRouted %+v", m, rm)
	}
	return ""
}

// TestRouteOpensAsOpen: for an envelope of every suite and kind, for the
// receiver it is for and one it is not for, Route then OpenRouted opens
// or refuses exactly as Open does, and opening the same Routed again is
// refused as the replay it is.
func TestRouteOpensAsOpen(t *testing.T) {
	w := newWorld(t)
	seeds, pending := fuzzSeeds(t, w)
	gatewayKeys := must[*Keys](t)(NewKeys(w.ids, w.peer))
	clientKeys := must[*Keys](t)(NewKeys(nil, &Peer{ID: "gateway", HMACKeys: []*HMACKey{w.hmac}, AEADKeys: []*AEADKey{w.psk}}))
	receivers := []struct {
		o      Opener
		expect *Expect
	}{
		{Opener{ID: "gateway", Keys: gatewayKeys, Now: w.clock}, &Expect{Kinds: Request | Event}},
		{Opener{ID: "client", Keys: clientKeys, Now: w.clock}, &Expect{Kinds: Reply | ErrorReply, Request: pending}},
	}
	opened := 0
	for i, data := range seeds {
		for _, r := range receivers {
			plain, routed := r.o, r.o
			plain.Replay, routed.Replay = newTestStore(), newTestStore()
			m, err := plain.Open(ctx, data, r.expect)
			if diff := sameOutcome(m, err, openRouted(&routed, data, r.expect)); diff != "" {
				t.Fatalf("seed %d, %s: %s", i, r.o.ID, diff)
			}
			if err != nil {
				continue
			}
			opened++
			rt, err := Route(data, 0)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := routed.OpenRouted(ctx, rt, r.expect); !errors.Is(err, ErrReplayed) {
				t.Fatalf("seed %d opened twice from one Routed: %v", i, err)
			}
		}
	}
	if opened != len(seeds) {
		t.Fatalf("%d of %d seeds opened", opened, len(seeds))
	}
}

// TestRouteReadsWhatPeekReads: a Routed claims what Peek reads, and
// refuses what Peek refuses, with the same class.
func TestRouteReadsWhatPeekReads(t *testing.T) {
	w := newWorld(t)
	seeds, _ := fuzzSeeds(t, w)
	bad := [][]byte{{}, {0x01}, {0x02}, make([]byte, 17), append([]byte{0x00}, seeds[0][1:]...)}
	for i, data := range append(seeds, bad...) {
		h, perr := Peek(data, 0)
		r, rerr := Route(data, 0)
		if (perr == nil) != (rerr == nil) || (perr != nil && Class(perr) != Class(rerr)) {
			t.Fatalf("input %d: Peek %v, Route %v", i, perr, rerr)
		}
		if perr != nil {
			continue
		}
		if !reflect.DeepEqual(r.Header(), h) {
			t.Fatalf("input %d: Route's header %+v, Peek's %+v", i, r.Header(), h)
		}
		if r.Kind() != h.Kind || r.From() != h.From || r.Counter() != h.Counter || r.InReplyTo() != h.InReplyTo || r.Len() != len(data) {
			t.Fatalf("input %d: Route claims %v %q %d %x (%d bytes), Peek %+v", i, r.Kind(), r.From(), r.Counter(), r.InReplyTo(), r.Len(), h)
		}
	}
}

// TestOpenRoutedRefusesAChangedHeader: bytes whose header changed after
// Route (another envelope of the same length written over them, say) are
// refused, not opened under the claims Route read.
func TestOpenRoutedRefusesAChangedHeader(t *testing.T) {
	w := newWorld(t)
	data := sealRequestWith(t, w, withHMAC, []byte("payload")).Bytes
	other := sealRequestWith(t, w, withHMAC, []byte("payload")).Bytes
	if len(other) != len(data) {
		t.Fatalf("two requests of %d and %d bytes", len(data), len(other))
	}
	r, err := Route(data, 0)
	if err != nil {
		t.Fatal(err)
	}
	copy(data, other) // a later counter, and a valid MAC over it
	if _, err := w.opener().OpenRouted(ctx, r, expectRequest); Class(err) != ErrMalformed {
		t.Fatalf("a header changed after Route: %v", err)
	}
}

// TestOpenRoutedChecksItsOwnSize: OpenRouted holds an envelope to its own
// Opener's MaxSize, whatever Route was given, and refuses nothing routed.
func TestOpenRoutedChecksItsOwnSize(t *testing.T) {
	w := newWorld(t)
	data := sealRequestWith(t, w, withHMAC, []byte("payload")).Bytes
	r, err := Route(data, 0)
	if err != nil {
		t.Fatal(err)
	}
	o := w.opener()
	o.MaxSize = len(data) - 1
	if _, err := o.OpenRouted(ctx, r, expectRequest); !errors.Is(err, ErrTooLarge) {
		t.Fatalf("an envelope over the Opener's MaxSize: %v", err)
	}
	if _, err := w.opener().OpenRouted(ctx, nil, expectRequest); Class(err) != ErrMalformed {
		t.Fatalf("nil: %v", err)
	}
	o.MaxSize = len(data)
	if _, err := o.OpenRouted(ctx, r, expectRequest); err != nil {
		t.Fatalf("within MaxSize: %v", err)
	}
}
