package envelope

import (
	"bytes"
	"testing"
)

func addVectorSeeds(f *testing.F) {
	for _, v := range loadVectors(f) {
		f.Add(v.envelopeBytes(f))
	}
}

// FuzzParse: Parse never panics, and whatever it accepts re-encodes to the
// same bytes (one envelope, one encoding).
func FuzzParse(f *testing.F) {
	addVectorSeeds(f)
	f.Add([]byte(`{"v":1,"h":"e30","p":""}`))
	f.Add([]byte("\x02\x00\x00\x00\x02{}\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00"))
	f.Fuzz(func(t *testing.T, data []byte) {
		e, err := Parse(data)
		if err != nil {
			if Class(err) == nil {
				t.Fatalf("error without a class: %v", err)
			}
			return
		}
		if !bytes.Equal(e.Marshal(), data) {
			t.Fatalf("Parse/Marshal changed %q into %q", data, e.Marshal())
		}
	})
}

// FuzzHeader: decodeHeader never panics, accepts only what it would itself
// encode, and validateHeader never panics on what it accepts.
func FuzzHeader(f *testing.F) {
	for _, v := range loadVectors(f) {
		if v.Header != "" {
			f.Add([]byte(v.Header))
		}
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		w, err := decodeHeader(data)
		if err != nil {
			return
		}
		again, err := encodeHeader(w)
		if err != nil || !bytes.Equal(again, data) {
			t.Fatalf("accepted a non-canonical header %q", data)
		}
		for _, version := range []int{Version1, Version2, Version3} {
			if _, err := validateHeader(w, version); err != nil && Class(err) == nil {
				t.Fatalf("error without a class: %v", err)
			}
		}
	})
}

// FuzzOpen: Open never panics, every refusal has a class, Inspect with
// OpenInspected agrees with Open, Peek agrees with Inspect, and every envelope a fully trusting
// receiver opens carries a MAC, signature or pre-shared-key ciphertext that
// the independent reading of the spec (specref_test.go) verifies with the
// vector keys: mutation never makes an acceptable message the key holders
// did not make. (Envelopes they made are not only the seeds: a fuzz cache
// keeps inputs from earlier generations of the vectors.)
func FuzzOpen(f *testing.F) {
	vectors := loadVectors(f)
	_, lk := loadVectorKeys(f)
	base := vectors[0]
	receiver := func(t testing.TB) *Opener {
		o := base.opener(t, lk)
		client := o.Keys.Peer("client")
		client.Policy = Policy{AllowLegacyRSAPKCS1v15: true}
		gw := *client
		gw.ID = "gateway"
		o.Keys = must[*Keys](t)(NewKeys(identitiesOf(lk), client, &gw))
		return o
	}
	everything := &Expect{Kinds: Request | Event}
	spec := readSpecKeys(f)
	opened := 0
	for _, v := range vectors {
		f.Add(v.envelopeBytes(f))
		if _, err := receiver(f).Open(ctx, v.envelopeBytes(f), everything); err == nil {
			opened++
		}
	}
	if opened == 0 {
		f.Fatal("no seed opens")
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		m, err := receiver(t).Open(ctx, data, everything)
		// Inspect then OpenInspected, on a receiver of its own, must end
		// the same way: the same class, or the same message.
		o2 := receiver(t)
		var m2 *Message
		h, err2 := Inspect(data, o2.MaxSize)
		// Peek runs Inspect's checks and reads the same kind, sender,
		// counter and digest.
		r, err3 := Peek(data, o2.MaxSize)
		kind, re := r.Kind, r.InReplyTo
		if Class(err2) != Class(err3) || (err2 == nil) != (err3 == nil) {
			t.Fatalf("Inspect: %v; Peek: %v", err2, err3)
		}
		if err2 == nil && (kind != h.Kind || (h.InReplyTo == nil) != (re == [32]byte{}) || (h.InReplyTo != nil && !bytes.Equal(h.InReplyTo, re[:]))) {
			t.Fatalf("Inspect read %v and %x; Peek %v and %x", h.Kind, h.InReplyTo, kind, re)
		}
		if err2 == nil && (r.From != h.From || r.Counter != h.Counter) {
			t.Fatalf("Inspect read %q, %d; Peek %q, %d", h.From, h.Counter, r.From, r.Counter)
		}
		if err2 == nil {
			m2, err2 = o2.OpenInspected(ctx, h, everything)
		}
		if Class(err) != Class(err2) || (err == nil) != (err2 == nil) {
			t.Fatalf("Open: %v; Inspect and OpenInspected: %v", err, err2)
		}
		if err != nil {
			if Class(err) == nil {
				t.Fatalf("error without a class: %v", err)
			}
			return
		}
		if !bytes.Equal(m.Payload, m2.Payload) || m.Digest != m2.Digest || m.From != m2.From {
			t.Fatalf("Open and OpenInspected disagree: %+v, %+v", m, m2)
		}
		if _, verified, err := spec.check(data); err != nil || len(verified) == 0 {
			t.Fatalf("opened an envelope the spec does not authenticate (%v, verified %v): %q", err, verified, data)
		}
	})
}

func identitiesOf(lk *loadedKeys) []Identity {
	return []Identity{lk.identities["x25519"], lk.identities["xwing"], lk.identities["rsa-oaep"]}
}
