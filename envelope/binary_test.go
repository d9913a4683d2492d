package envelope

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"testing"
)

// sealRequest seals a get-card request in envelope version with the
// protections params sets (nil: HMAC + Ed25519).
func sealRequest(t *testing.T, w *world, version int, params func(*world, *Params), payload []byte) *Sealed {
	t.Helper()
	p := w.request("get-card")
	p.Version = version
	if params == nil {
		params = func(w *world, p *Params) { p.HMAC, p.Signer = w.hmac, w.ed }
	}
	params(w, p)
	s, err := w.sealer().Seal(p, payload)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// TestBinaryFrame checks the layout of SPEC.md §13 byte by byte.
func TestBinaryFrame(t *testing.T) {
	w := newWorld(t)
	payload := []byte("\x00\x01binary \xff payload")
	s := sealRequest(t, w, Version2, nil, payload)
	b := s.Bytes
	if b[0] != 0x02 {
		t.Fatalf("first byte %#x", b[0])
	}
	rest := b[1:]
	var members [][]byte
	for range 4 {
		n := binary.BigEndian.Uint32(rest)
		members = append(members, rest[4:4+n])
		rest = rest[4+n:]
	}
	if len(rest) != 0 {
		t.Fatalf("%d bytes after the signature", len(rest))
	}
	if !bytes.HasPrefix(members[0], []byte(`{"v":2,"kind":"req","from":"client",`)) {
		t.Fatalf("header %q", members[0])
	}
	if !bytes.Equal(members[1], payload) || len(members[2]) != 32 || len(members[3]) != 64 {
		t.Fatalf("members of %d, %d, %d, %d bytes", len(members[0]), len(members[1]), len(members[2]), len(members[3]))
	}
	if len(b) != frameFixed+len(members[0])+len(payload)+32+64 {
		t.Fatalf("envelope of %d bytes", len(b))
	}
	e, err := Parse(b)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(e.Marshal(), b) {
		t.Fatal("Parse/Marshal changed the bytes")
	}
	// The digest is SHA-256 of the prefix and the envelope up to the end of
	// the payload.
	end := frameFixed - 8 + len(members[0]) + len(payload)
	if !bytes.Equal(e.SigningInput(), append([]byte("mqttsec.v2."), b[:end]...)) {
		t.Fatal("signing input is not the prefix and the envelope through the payload")
	}
	if DigestOf(b) != s.Digest {
		t.Fatal("DigestOf differs from Sealed.Digest")
	}
	v1 := sealRequest(t, w, Version1, nil, payload)
	if len(b) >= len(v1.Bytes) {
		t.Fatalf("binary envelope %d bytes, text %d", len(b), len(v1.Bytes))
	}
}

// TestBinaryFrameRejects mutates a binary envelope the ways the broker can.
func TestBinaryFrameRejects(t *testing.T) {
	withLen := func(b []byte, member int, n uint32) []byte {
		out := bytes.Clone(b)
		off := 1
		for range member {
			off += 4 + int(binary.BigEndian.Uint32(out[off:]))
		}
		binary.BigEndian.PutUint32(out[off:], n)
		return out
	}
	// whole takes the envelope's members as they are, for the cases that
	// write a header no reencode would.
	whole := func(w *world, b []byte) *Envelope { return must[*Envelope](w.t)(Parse(b)) }
	tests := []struct {
		name   string
		params func(*world, *Params)
		mutate func(w *world, b []byte) []byte
		expect *Expect
		want   error
	}{
		{name: "only the version byte", mutate: func(_ *world, b []byte) []byte { return b[:1] }, want: ErrMalformed},
		{name: "cut inside a length", mutate: func(_ *world, b []byte) []byte { return b[:3] }, want: ErrMalformed},
		{name: "last byte cut", mutate: func(_ *world, b []byte) []byte { return b[:len(b)-1] }, want: ErrMalformed},
		{name: "a byte appended", mutate: func(_ *world, b []byte) []byte { return append(bytes.Clone(b), 0) }, want: ErrMalformed},
		{name: "header length past the end", mutate: func(_ *world, b []byte) []byte { return withLen(b, 0, uint32(len(b))) }, want: ErrMalformed},
		{name: "payload length 2^32-1", mutate: func(_ *world, b []byte) []byte { return withLen(b, 1, 1<<32-1) }, want: ErrMalformed},
		{name: "empty header", mutate: func(w *world, b []byte) []byte {
			e := whole(w, b)
			return appendFrame(nil, Version2, nil, e.Payload, e.MAC, e.Signature)
		}, want: ErrMalformed},
		{name: "version byte 0x04", mutate: func(_ *world, b []byte) []byte { return append([]byte{4}, b[1:]...) }, want: ErrUnsupportedVersion},
		{name: "version byte 0x1f", mutate: func(_ *world, b []byte) []byte { return append([]byte{0x1f}, b[1:]...) }, want: ErrUnsupportedVersion},
		{name: "version byte 0x01", mutate: func(_ *world, b []byte) []byte { return append([]byte{1}, b[1:]...) }, want: ErrMalformed},
		{name: "version byte 0x00", mutate: func(_ *world, b []byte) []byte { return append([]byte{0}, b[1:]...) }, want: ErrMalformed},
		{name: "header says version 1", mutate: rewriteHeader(func(h *wireHeader) { h.V = Version1 }), want: ErrMalformed},
		{name: "header as base64url text", mutate: func(w *world, b []byte) []byte {
			e := whole(w, b)
			return appendFrame(nil, Version2, []byte(b64.EncodeToString(e.Header)), e.Payload, e.MAC, e.Signature)
		}, want: ErrMalformed},
		{name: "topic rewritten", mutate: rewriteHeader(func(h *wireHeader) { h.Topic = "delete-card" }),
			expect: &Expect{Kinds: Request, Topic: "delete-card"}, want: ErrAuthentication},
		{name: "counter rewritten", mutate: rewriteHeader(func(h *wireHeader) { h.Ctr += 1000 }), want: ErrAuthentication},
		{name: "payload byte changed", mutate: editMembers(func(m *envelopeMembers) { m.payload[0] ^= 1 }), want: ErrAuthentication},
		{name: "payload byte appended, length fixed", mutate: editMembers(func(m *envelopeMembers) { m.payload = append(m.payload, 'x') }), want: ErrAuthentication},
		{name: "ciphertext byte changed", params: func(w *world, p *Params) { p.PSK = w.psk },
			mutate: editMembers(func(m *envelopeMembers) { m.payload[20] ^= 1 }), want: ErrDecryption},
		{name: "mac stripped", mutate: editMembers(func(m *envelopeMembers) { m.mac = nil }), want: ErrAuthentication},
		{name: "mac cut to 31 bytes", mutate: editMembers(func(m *envelopeMembers) { m.mac = m.mac[:31] }), want: ErrAuthentication},
		{name: "signature stripped", mutate: editMembers(func(m *envelopeMembers) { m.sig = nil }), want: ErrAuthentication},
		{name: "mac not declared", params: sigOnly, mutate: editMembers(func(m *envelopeMembers) { m.mac = make([]byte, 32) }), want: ErrMalformed},
		{name: "signature not declared", params: hmacOnly, mutate: editMembers(func(m *envelopeMembers) { m.sig = make([]byte, 64) }), want: ErrMalformed},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w := newWorld(t)
			s := sealRequest(t, w, Version2, tt.params, []byte(`{"card":8165538}`))
			bad := tt.mutate(w, s.Bytes)
			o := w.opener()
			want := tt.expect
			if want == nil {
				want = expectRequest
			}
			if m, err := o.Open(ctx, bad, want); !errors.Is(err, tt.want) || m != nil {
				t.Fatalf("Open = %v, want %v", err, tt.want)
			}
			if _, err := Inspect(bad, 0); err == nil && !errors.Is(tt.want, ErrAuthentication) && !errors.Is(tt.want, ErrDecryption) {
				t.Fatalf("Inspect accepted what Open refuses as %v", tt.want)
			}
			// Nothing refused touched the replay state.
			if _, err := o.Open(ctx, s.Bytes, expectRequest); err != nil {
				t.Fatalf("genuine envelope after the refusal: %v", err)
			}
		})
	}
}

// TestVersionsDoNotCross: a message sealed in one form and re-framed in
// another, with the header's version changed to match, keeps its MAC or
// signature but opens in no other form.
func TestVersionsDoNotCross(t *testing.T) {
	versions := []int{Version1, Version2, Version3}
	for _, from := range versions {
		for _, other := range versions {
			if other == from {
				continue
			}
			for _, prot := range []struct {
				name  string
				apply func(*world, *Params)
			}{{"hmac", hmacOnly}, {"ed25519", sigOnly}} {
				t.Run(fmt.Sprintf("from v%d to v%d/%s", from, other, prot.name), func(t *testing.T) {
					w := newWorld(t)
					s := sealRequest(t, w, from, prot.apply, []byte(`{"card":8165538}`))
					crossed := reencode(t, s.Bytes, other, func(h *wireHeader, _ *envelopeMembers) { h.V = other })
					// Well formed in the other version: only the tags refuse it.
					if _, err := Inspect(crossed, 0); err != nil {
						t.Fatalf("Inspect: %v", err)
					}
					if _, err := w.opener().Open(ctx, crossed, expectRequest); !errors.Is(err, ErrAuthentication) {
						t.Fatalf("Open = %v, want ErrAuthentication", err)
					}
					// The genuine message still opens.
					if _, err := w.opener().Open(ctx, s.Bytes, expectRequest); err != nil {
						t.Fatalf("genuine: %v", err)
					}
				})
			}
		}
	}
}

// TestReplyFollowsRequestVersion: a reply is sealed in its request's form
// unless Params.Version says otherwise.
func TestReplyFollowsRequestVersion(t *testing.T) {
	for _, tt := range []struct {
		request, asked, want int
	}{
		{Version1, 0, Version1}, {Version2, 0, Version2}, {Version2, Version1, Version1}, {Version1, Version2, Version2},
		{Version3, 0, Version3}, {Version3, Version2, Version2}, {Version1, Version3, Version3},
	} {
		t.Run(fmt.Sprintf("request v%d, asked %d", tt.request, tt.asked), func(t *testing.T) {
			w := newWorld(t)
			req := sealRequest(t, w, tt.request, func(w *world, p *Params) { p.HMAC = w.hmac }, nil)
			in, err := w.opener().Open(ctx, req.Bytes, expectRequest)
			if err != nil {
				t.Fatal(err)
			}
			if in.Version != tt.request {
				t.Fatalf("request opened as version %d", in.Version)
			}
			rep, err := w.gatewaySealer().Seal(&Params{Kind: Reply, InReplyTo: in, HMAC: w.hmac, Version: tt.asked}, []byte("ok"))
			if err != nil {
				t.Fatal(err)
			}
			h, err := Inspect(rep.Bytes, 0)
			if err != nil {
				t.Fatal(err)
			}
			if h.Version != tt.want {
				t.Fatalf("reply in version %d, want %d", h.Version, tt.want)
			}
		})
	}
	w := newWorld(t)
	for _, v := range []int{-1, 4} {
		p := w.request("get-card")
		p.Version, p.HMAC = v, w.hmac
		if _, err := w.sealer().Seal(p, nil); !errors.Is(err, ErrInvalidParams) {
			t.Fatalf("version %d: Seal = %v, want ErrInvalidParams", v, err)
		}
	}
}

// TestDefaultVersion: with Params.Version zero, requests and events are
// sealed in the compact form (Version), and a reply to a request in another
// form follows that request.
func TestDefaultVersion(t *testing.T) {
	if Version != Version3 {
		t.Fatalf("Version = %d, want the compact form (%d)", Version, Version3)
	}
	w := newWorld(t)
	for _, tt := range []struct {
		name   string
		params *Params
	}{
		{"request", &Params{Kind: Request, To: []string{"gateway"}, Topic: "get-card", ReplyTo: "mqttsec/client/reply", HMAC: w.hmac}},
		{"event", &Params{Kind: Event, Topic: "status", Signer: w.ed}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			s, err := w.sealer().Seal(tt.params, []byte("x"))
			if err != nil {
				t.Fatal(err)
			}
			if s.Bytes[0] != Version3 {
				t.Fatalf("first byte %#x, want the compact form's %#x", s.Bytes[0], Version3)
			}
			m, err := w.opener().Open(ctx, s.Bytes, &Expect{Kinds: tt.params.Kind})
			if err != nil {
				t.Fatal(err)
			}
			if m.Version != Version3 {
				t.Fatalf("opened as version %d, want %d", m.Version, Version3)
			}
		})
	}
	for _, v := range []int{Version1, Version2} {
		t.Run(fmt.Sprintf("reply to a version %d request", v), func(t *testing.T) {
			w := newWorld(t)
			req := sealRequest(t, w, v, func(w *world, p *Params) { p.HMAC = w.hmac }, nil)
			in, err := w.opener().Open(ctx, req.Bytes, expectRequest)
			if err != nil {
				t.Fatal(err)
			}
			rep, err := w.gatewaySealer().Seal(&Params{Kind: Reply, InReplyTo: in, HMAC: w.hmac}, []byte("ok"))
			if err != nil {
				t.Fatal(err)
			}
			h, err := Inspect(rep.Bytes, 0)
			if err != nil {
				t.Fatal(err)
			}
			if h.Version != v {
				t.Fatalf("reply in version %d, want its request's %d", h.Version, v)
			}
		})
	}
}

// TestBinaryOpenLeavesInputAlone: the binary and compact forms carry the
// payload as bytes, so Open and Parse must copy what they hand out or
// decrypt.
func TestBinaryOpenLeavesInputAlone(t *testing.T) {
	w := newWorld(t)
	payload := []byte("secret payload")
	for _, tt := range []struct {
		name    string
		version int
		params  func(*world, *Params)
	}{
		{"hmac", Version2, func(w *world, p *Params) { p.HMAC = w.hmac }},
		{"hmac+psk", Version2, func(w *world, p *Params) { p.HMAC, p.PSK = w.hmac, w.psk }},
		{"hmac, compact", Version3, func(w *world, p *Params) { p.HMAC = w.hmac }},
		{"hmac+psk, compact", Version3, func(w *world, p *Params) { p.HMAC, p.PSK = w.hmac, w.psk }},
	} {
		s := sealRequest(t, w, tt.version, tt.params, payload)
		data := bytes.Clone(s.Bytes)
		m, err := w.opener().Open(ctx, data, expectRequest)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(data, s.Bytes) {
			t.Fatalf("%s: Open changed the caller's bytes", tt.name)
		}
		clear(data)
		if !bytes.Equal(m.Payload, payload) {
			t.Fatalf("%s: the message's payload shares the caller's bytes", tt.name)
		}
		data = bytes.Clone(s.Bytes)
		e, err := Parse(data)
		if err != nil {
			t.Fatal(err)
		}
		wantHeader, wantPayload := bytes.Clone(e.Header), bytes.Clone(e.Payload)
		clear(data)
		if !bytes.Equal(e.Header, wantHeader) || len(e.MAC) != 32 || bytes.Equal(e.MAC, make([]byte, 32)) || !bytes.Equal(e.Payload, wantPayload) {
			t.Fatalf("%s: Parse's members share the caller's bytes", tt.name)
		}
	}
	// Two OpenInspected calls on one Header decrypt into buffers of their own.
	s2 := sealRequest(t, w, Version2, func(w *world, p *Params) { p.PSK = w.psk }, payload)
	h, err := Inspect(s2.Bytes, 0)
	if err != nil {
		t.Fatal(err)
	}
	o := w.opener()
	o.Replay = admitAll{}
	for range 2 {
		m, err := o.OpenInspected(ctx, h, expectRequest)
		if err != nil {
			t.Fatalf("OpenInspected: %v", err)
		}
		if !bytes.Equal(m.Payload, payload) {
			t.Fatalf("OpenInspected: payload %q", m.Payload)
		}
	}
}
