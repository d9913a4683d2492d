package envelope

import (
	"encoding/binary"
	"fmt"
)

// acceptedIn is every accepted vector of version 1 sealed in another
// version, named "vN-" and described with form before the description.
func acceptedIn(version int, form string) []vectorSpec {
	var out []vectorSpec
	for _, s := range vectorSpecs() {
		if s.result != "" {
			continue
		}
		s.name, s.desc, s.version = fmt.Sprintf("v%d-%s", version, s.name), form+s.desc, version
		out = append(out, s)
	}
	return out
}

// binaryVectorSpecs are the vectors of the binary form (SPEC.md §13): every
// accepted vector of version 1 sealed as version 2, then the refusals that
// the binary framing adds or changes.
func binaryVectorSpecs() []vectorSpec {
	out := acceptedIn(Version2, "binary form: ")
	withHMAC := func(g *gen, p *Params) { p.HMAC = g.w.hmac }
	withHMACEd := func(g *gen, p *Params) { p.HMAC = g.w.hmac; p.Signer = g.w.ed }
	// asBinary writes an envelope of any version as a binary one after
	// edit changes its header or members (see reencode).
	asBinary := func(edit func(h *wireHeader, m *envelopeMembers)) func(*gen, []byte) []byte {
		return func(g *gen, b []byte) []byte { return reencode(g.t, b, Version2, edit) }
	}
	header := func(change func(*wireHeader)) func(*gen, []byte) []byte {
		return asBinary(func(h *wireHeader, _ *envelopeMembers) { change(h) })
	}
	members := func(change func(*envelopeMembers)) func(*gen, []byte) []byte {
		return asBinary(func(_ *wireHeader, m *envelopeMembers) { change(m) })
	}
	v2 := func(s vectorSpec) vectorSpec { s.version = Version2; return s }
	return append(out,
		v2(vectorSpec{name: "v2-tampered-header", desc: "binary form: header re-encoded with topic get-card changed to delete-card",
			expect: &vectorExpect{Kinds: []string{"req"}, Topic: "delete-card"}, result: "authentication",
			build: mutated(withHMACEd, header(func(h *wireHeader) { h.Topic = "delete-card" }))}),
		v2(vectorSpec{name: "v2-tampered-payload", desc: "binary form: first payload byte changed", result: "authentication",
			build: mutated(withHMACEd, members(func(m *envelopeMembers) { m.payload[0] ^= 1 }))}),
		v2(vectorSpec{name: "v2-tampered-ciphertext", desc: "binary form: pre-shared-key ciphertext changed; only the AEAD protects it", result: "decryption",
			build: mutated(func(g *gen, p *Params) { p.PSK = g.w.psk }, members(func(m *envelopeMembers) { m.payload[20] ^= 1 }))}),
		v2(vectorSpec{name: "v2-stripped-signature-member", desc: "binary form: sig member emptied while the header still declares it", result: "authentication",
			build: mutated(withHMACEd, members(func(m *envelopeMembers) { m.sig = nil }))}),
		v2(vectorSpec{name: "v2-truncated", desc: "binary form: last byte cut off", result: "malformed",
			build: mutated(withHMAC, func(g *gen, b []byte) []byte { return b[:len(b)-1] })}),
		v2(vectorSpec{name: "v2-trailing-byte", desc: "binary form: a zero byte after the sig member", result: "malformed",
			build: mutated(withHMAC, func(g *gen, b []byte) []byte { return append(b, 0) })}),
		v2(vectorSpec{name: "v2-length-past-end", desc: "binary form: the header length is the whole envelope's", result: "malformed",
			build: mutated(withHMAC, func(g *gen, b []byte) []byte {
				binary.BigEndian.PutUint32(b[1:], uint32(len(b)))
				return b
			})}),
		v2(vectorSpec{name: "v2-header-version-1", desc: "binary form carrying a header that says version 1", result: "malformed",
			build: mutated(withHMAC, header(func(h *wireHeader) { h.V = Version1 }))}),
		v2(vectorSpec{name: "v2-unknown-version", desc: "first byte 0x04: a binary version this receiver does not speak", result: "unsupported-version",
			build: mutated(withHMAC, func(g *gen, b []byte) []byte { b[0] = 4; return b })}),
		vectorSpec{name: "v2-from-text", desc: "a version-1 message re-framed in the binary form, its header's version set to 2, its HMAC kept", result: "authentication",
			build: mutated(withHMAC, header(func(h *wireHeader) { h.V = Version2 }))},
		v2(vectorSpec{name: "v2-replayed", desc: "binary form: the receiver already accepted this counter", replayed: []uint64{1001}, result: "replayed", build: simple(withHMAC)}),
		v2(vectorSpec{name: "v2-forged-replay", desc: "binary form: HMAC under another key, on a counter the receiver already accepted", replayed: []uint64{1001}, result: "authentication",
			build: simple(func(g *gen, p *Params) { p.HMAC = &HMACKey{id: g.w.hmac.id, secret: g.w.sec.OtherHMAC} })}),
	)
}

// compactVectorSpecs are the vectors of the compact form (SPEC.md §14):
// every accepted vector of version 1 sealed as version 3, then the
// refusals that the compact header adds.
func compactVectorSpecs() []vectorSpec {
	out := acceptedIn(Version3, "compact form: ")
	withHMAC := func(g *gen, p *Params) { p.HMAC = g.w.hmac }
	withHMACEd := func(g *gen, p *Params) { p.HMAC = g.w.hmac; p.Signer = g.w.ed }
	// reframed writes an envelope of any version as a compact one after
	// edit changes its header (see reencode).
	reframed := func(edit func(h *wireHeader)) func(*gen, []byte) []byte {
		return func(g *gen, b []byte) []byte {
			return reencode(g.t, b, Version3, func(h *wireHeader, _ *envelopeMembers) { edit(h) })
		}
	}
	// headerBytes changes the compact header's bytes, keeping the rest.
	headerBytes := func(change func(h []byte) []byte) func(*gen, []byte) []byte {
		return func(g *gen, b []byte) []byte {
			e, err := Parse(b)
			if err != nil {
				g.t.Fatal(err)
			}
			return appendFrame(nil, e.Version, change(e.Header), e.Payload, e.MAC, e.Signature)
		}
	}
	v3 := func(s vectorSpec) vectorSpec { s.version = Version3; return s }
	return append(out,
		v3(vectorSpec{name: "v3-tampered-header", desc: "compact form: header re-encoded with topic get-card changed to delete-card",
			expect: &vectorExpect{Kinds: []string{"req"}, Topic: "delete-card"}, result: "authentication",
			build: mutated(withHMACEd, reframed(func(h *wireHeader) { h.Topic = "delete-card" }))}),
		v3(vectorSpec{name: "v3-header-version-2", desc: "compact form carrying a header that says version 2", result: "malformed",
			build: mutated(withHMAC, reframed(func(h *wireHeader) { h.V = Version2 }))}),
		vectorSpec{name: "v3-json-header", desc: "a version-2 envelope whose first byte is changed to 0x03: its JSON header is no compact header",
			version: Version2, result: "malformed",
			build: mutated(withHMAC, func(g *gen, b []byte) []byte { b[0] = Version3; return b })},
		vectorSpec{name: "v3-from-v2", desc: "a version-2 message re-framed in the compact form, its header's version set to 3, its HMAC kept",
			version: Version2, result: "authentication",
			build: mutated(withHMAC, reframed(func(h *wireHeader) { h.V = Version3 }))},
		v3(vectorSpec{name: "v3-unknown-protection", desc: "compact form: a protection bit (0x10) no protection has", result: "malformed",
			build: mutated(withHMAC, headerBytes(func(h []byte) []byte { h[2] |= 0x10; return h }))}),
		v3(vectorSpec{name: "v3-header-trailing-byte", desc: "compact form: a zero byte after the last header field", result: "malformed",
			build: mutated(withHMAC, headerBytes(func(h []byte) []byte { return append(h, 0) }))}),
		v3(vectorSpec{name: "v3-header-cut", desc: "compact form: the header's last byte cut off (inside the mac key id)", result: "malformed",
			build: mutated(withHMAC, headerBytes(func(h []byte) []byte { return h[:len(h)-1] }))}),
		v3(vectorSpec{name: "v3-unknown-algorithm", desc: "compact form: MAC algorithm code 0xFF, which names no algorithm", result: "policy",
			build: mutated(withHMAC, headerBytes(func(h []byte) []byte { h[len(h)-kidSize-1] = 0xFF; return h }))}),
		v3(vectorSpec{name: "v3-replayed", desc: "compact form: the receiver already accepted this counter", replayed: []uint64{1001}, result: "replayed", build: simple(withHMAC)}),
		v3(vectorSpec{name: "v3-forged-replay", desc: "compact form: HMAC under another key, on a counter the receiver already accepted", replayed: []uint64{1001}, result: "authentication",
			build: simple(func(g *gen, p *Params) { p.HMAC = &HMACKey{id: g.w.hmac.id, secret: g.w.sec.OtherHMAC} })}),
	)
}
