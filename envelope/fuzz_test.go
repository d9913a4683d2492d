package envelope

import (
	"bytes"
	"slices"
	"testing"
)

// fuzzSeeds are envelopes of every suite, as requests, with a reply and an
// event beside them; and the pending request the reply answers.
func fuzzSeeds(f testing.TB, w *world) (seeds [][]byte, pending *Sealed) {
	for _, s := range suites() {
		p := w.request("get-card")
		s.apply(w, p)
		sealed, err := w.sealer().Seal(p, []byte(`{"card":8165538}`))
		if err != nil {
			f.Fatal(err)
		}
		seeds = append(seeds, sealed.Bytes)
	}
	pending = sealRequestWith(f, w, withHMAC, nil)
	o := w.opener()
	o.Replay = admitAllStore{}
	in, err := o.Open(ctx, pending.Bytes, expectRequest)
	if err != nil {
		f.Fatal(err)
	}
	for _, p := range []*Params{
		{Kind: Reply, InReplyTo: in, HMAC: w.hmac},
		{Kind: ErrorReply, InReplyTo: in, HMAC: w.hmac, PSK: w.psk},
	} {
		rep, err := w.gatewaySealer().Seal(p, []byte("answer"))
		if err != nil {
			f.Fatal(err)
		}
		seeds = append(seeds, rep.Bytes)
	}
	for _, p := range []*Params{
		{Kind: Event, To: []string{"gateway", "other"}, Topic: "doors/3", Signer: w.ed, Recipients: []Recipient{w.x25519, w.xwing}},
		{Kind: Event, Topic: "status", Signer: w.es},
	} {
		ev, err := w.sealer().Seal(p, []byte("opened"))
		if err != nil {
			f.Fatal(err)
		}
		seeds = append(seeds, ev.Bytes)
	}
	return append(seeds, pending.Bytes), pending
}

// FuzzOpen: Open never panics on any bytes; every refusal wraps exactly one
// error class; Peek refuses with the class Open refuses with at its first
// steps, and reads what Open opens; Route and OpenRouted refuse and open
// exactly what Open does (see sameOutcome); and every envelope a fully trusting
// receiver opens carries a tag or ciphertext that the independent reading
// of the format (indep_test.go) verifies with the world's keys, and
// decrypts to the payload Open returned: mutation never makes an
// acceptable message the key holders did not make. (The inputs that open
// are not only the seeds: the fuzz cache keeps inputs from earlier runs,
// sealed under the same keys.)
func FuzzOpen(f *testing.F) {
	w := newWorld(f)
	seeds, pending := fuzzSeeds(f, w)
	for _, s := range seeds {
		f.Add(s)
	}
	f.Add([]byte{})
	f.Add([]byte{0x01})
	f.Add([]byte{0x02})
	f.Add(make([]byte, 17))
	gatewayKeys := must[*Keys](f)(NewKeys(w.ids, w.peer))
	clientKeys := must[*Keys](f)(NewKeys(nil, &Peer{ID: "gateway", HMACKeys: []*HMACKey{w.hmac}, AEADKeys: []*AEADKey{w.psk}}))
	receivers := []struct {
		o      *Opener
		expect *Expect
	}{
		{&Opener{ID: "gateway", Keys: gatewayKeys, Now: w.clock}, &Expect{Kinds: Request | Event}},
		{&Opener{ID: "client", Keys: clientKeys, Now: w.clock}, &Expect{Kinds: Reply | ErrorReply, Request: pending}},
	}
	opened := 0
	for _, s := range seeds {
		for _, r := range receivers {
			o := *r.o
			o.Replay = newTestStore()
			if _, err := o.Open(ctx, s, r.expect); err == nil {
				opened++
			}
		}
	}
	if opened != len(seeds) {
		f.Fatalf("%d of %d seeds open", opened, len(seeds))
	}
	early := []error{ErrTooLarge, ErrMalformed, ErrUnsupportedVersion}
	f.Fuzz(func(t *testing.T, data []byte) {
		input := bytes.Clone(data)
		peeked, perr := Peek(data, 0)
		for _, r := range receivers {
			o := *r.o
			o.Replay = newTestStore()
			m, err := o.Open(ctx, data, r.expect)
			if !bytes.Equal(data, input) {
				t.Fatal("Open changed its input")
			}
			routed := *r.o
			routed.Replay = newTestStore()
			if diff := sameOutcome(m, err, openRouted(&routed, data, r.expect)); diff != "" {
				t.Fatal(diff)
			}
			if err != nil {
				if got := matchedClasses(err); len(got) != 1 || m != nil {
					t.Fatalf("refusal %q wraps %v", err, got)
				}
				switch {
				case perr != nil && Class(perr) != Class(err):
					t.Fatalf("Peek: %v; Open: %v", perr, err)
				case perr == nil && slices.Contains(early, Class(err)):
					t.Fatalf("Peek read what Open refuses as %v", err)
				}
				continue
			}
			if perr != nil {
				t.Fatalf("Open accepted what Peek refuses: %v", perr)
			}
			if m.Kind != peeked.Kind || m.From != peeked.From || m.Topic != peeked.Topic || m.Counter != peeked.Counter ||
				!slices.Equal(m.To, peeked.To) || !bytes.Equal(m.CorrelationID, peeked.CorrelationID) || m.Protections != peeked.Protections {
				t.Fatalf("Open read %+v, Peek %+v", m, peeked)
			}
			r, err := indepOpen(w, data)
			if err != nil {
				t.Fatalf("opened what the independent reading does not read: %v", err)
			}
			if !r.authentic() {
				t.Fatalf("opened an envelope no key of the world authenticates: %x", data)
			}
			if !bytes.Equal(r.payload, m.Payload) {
				t.Fatalf("opened payload %q, the independent reading %q", m.Payload, r.payload)
			}
		}
	})
}

// FuzzHeader: the header reader never panics, accepts exactly what
// appendHeader writes (read then written back, every accepted input gives
// the same bytes: one value, one encoding), reads the values the
// independent reading does, and its rule check refuses only as
// malformed.
func FuzzHeader(f *testing.F) {
	w := newWorld(f)
	seeds, _ := fuzzSeeds(f, w)
	for _, s := range seeds {
		H, _, _, _, ok := indepFrame(s)
		if !ok {
			f.Fatal("a seed does not frame")
		}
		f.Add(bytes.Clone(H))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		var h header
		parsed := parseHeader(&h, data, string(data))
		var h2 header
		rerr := readHeader(&h2, data, string(data))
		if rerr != nil && (len(matchedClasses(rerr)) != 1 || Class(rerr) != ErrMalformed) {
			t.Fatalf("readHeader refused as %v", rerr)
		}
		if !parsed {
			if rerr == nil {
				t.Fatal("readHeader accepted what parseHeader refuses")
			}
			return
		}
		if again := appendHeader(nil, &h); !bytes.Equal(again, data) {
			t.Fatalf("accepted a header that writes back as another:\n%x\n%x", data, again)
		}
		cerr := h.check()
		if (cerr == nil) != (rerr == nil) || cerr != nil && Class(cerr) != ErrMalformed {
			t.Fatalf("check: %v; readHeader: %v", cerr, rerr)
		}
		ih, ok := indepParseHeader(data)
		if !ok {
			t.Fatal("parseHeader read what the independent reading does not")
		}
		if byte(h.kind) != ih.kind || byte(h.prot) != ih.prot || h.from != ih.from || !slices.Equal(h.to, ih.to) ||
			h.topic != ih.topic || h.replyTo != ih.replyTo || !bytes.Equal(h.corr, ih.corr) || !bytes.Equal(h.re, ih.re) ||
			h.ctr != ih.ctr || h.iat != ih.iat || h.exp != ih.exp || len(h.rcpt) != len(ih.rcpt) || h.hotpCode != ih.hotpCode {
			t.Fatalf("parseHeader read %+v, the independent reading %+v", h, *ih)
		}
		for i, r := range h.rcpt {
			if r.kid != KeyID(ih.rcpt[i].kid) || !bytes.Equal(r.wk, ih.rcpt[i].wk) || wrapCodes.code(r.alg) != ih.rcpt[i].alg {
				t.Fatalf("recipient %d: %+v, the independent reading %+v", i, r, ih.rcpt[i])
			}
		}
		// The strings are the input's bytes, and stay so when the input
		// changes (they were cut from the copy given as text).
		from := h.from
		for i := range data {
			data[i] ^= 0xff
		}
		if from != ih.from {
			t.Fatalf("the sender changed with the input: %q", from)
		}
	})
}

// FuzzFrame: the frame reader never panics, accepts exactly the frames the
// independent reading does (with a header), refuses with the class its
// first byte calls for, and what it accepts writes back to the same bytes.
func FuzzFrame(f *testing.F) {
	w := newWorld(f)
	seeds, _ := fuzzSeeds(f, w)
	for _, s := range seeds {
		f.Add(s)
	}
	f.Add([]byte{})
	f.Add([]byte{0x01, 0, 0, 0, 1, 'h', 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0})
	f.Add([]byte{0x1f, 0, 0, 0, 0})
	f.Fuzz(func(t *testing.T, data []byte) {
		fr, err := readFrame(data)
		// An empty header passes the frame (SPEC.md §2: step 3 refuses it).
		H, P, M, S, ok := indepFrame(data)
		if (err == nil) != ok {
			t.Fatalf("readFrame: %v; the independent reading: %v", err, ok)
		}
		if err != nil {
			want := ErrMalformed
			if len(data) > 0 && data[0] >= 0x02 && data[0] <= 0x1f {
				want = ErrUnsupportedVersion
			}
			if got := matchedClasses(err); len(got) != 1 || got[0] != want {
				t.Fatalf("readFrame refused % x... as %v, want %v", data[:min(len(data), 8)], err, want)
			}
			return
		}
		if !bytes.Equal(fr.header, H) || !bytes.Equal(fr.payload, P) || !bytes.Equal(fr.mac, M) || !bytes.Equal(fr.sig, S) ||
			fr.payloadEnd != 1+4+len(H)+4+len(P) || !bytes.Equal(fr.associatedData(), data[:1+4+len(H)]) {
			t.Fatal("readFrame cut the members elsewhere than the independent reading")
		}
		fw := frameWriter{}
		fw.header(fr.header)
		fw.payloadLength(len(fr.payload))
		fw.b = append(fw.b, fr.payload...)
		fw.tags(fr.mac, fr.sig)
		if !bytes.Equal(fw.b, data) {
			t.Fatalf("a frame read and written again changed:\n%x\n%x", data, fw.b)
		}
	})
}
