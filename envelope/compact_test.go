package envelope

import (
	"bytes"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"os"
	"runtime"
	"strings"
	"testing"
)

// compactSeeds are the compact headers of the vectors.
func compactSeeds(t testing.TB) [][]byte {
	var out [][]byte
	for _, v := range loadVectors(t) {
		if e, err := Parse(v.envelopeBytes(t)); err == nil && e.Version == Version3 {
			out = append(out, e.Header)
		}
	}
	return out
}

// FuzzCompactHeader: the compact reader never panics, accepts only what
// the writer writes back byte for byte (one value, one encoding), and
// checkHeader never panics on what it reads.
func FuzzCompactHeader(f *testing.F) {
	for _, h := range compactSeeds(f) {
		f.Add(h)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		blk, ok := compactBlock(data)
		if !ok {
			return
		}
		again, err := appendCompactHeader(nil, &blk.wire)
		if err == nil && !bytes.Equal(again, data) {
			t.Fatalf("accepted a header that writes back as another:\n%x\n%x", data, again)
		}
		if _, verr := blk.validate(Version3); verr != nil {
			if Class(verr) == nil {
				t.Fatalf("error without a class: %v", verr)
			}
			return
		}
		// A header that passes every check is one Seal could write.
		if err != nil {
			t.Fatalf("a valid header does not write back: %v", err)
		}
	})
}

// TestCompactHeaderRoundTrip: every vector's compact header reads into the
// value its JSON form holds, and writes back to the same bytes.
func TestCompactHeaderRoundTrip(t *testing.T) {
	seeds := compactSeeds(t)
	if len(seeds) < 16 {
		t.Fatalf("%d compact headers among the vectors", len(seeds))
	}
	for _, h := range seeds {
		blk, ok := compactBlock(h)
		if !ok {
			continue // the refusals of the form among the vectors
		}
		again, err := appendCompactHeader(nil, &blk.wire)
		if err != nil {
			continue // an algorithm code that names nothing
		}
		if !bytes.Equal(again, h) {
			t.Fatalf("%x writes back as %x", h, again)
		}
		j, err := encodeHeader(&blk.wire)
		if err != nil {
			t.Fatal(err)
		}
		w, err := decodeHeader(j)
		if err != nil {
			t.Fatal(err)
		}
		fromJSON, err := appendCompactHeader(nil, w)
		if err != nil || !bytes.Equal(fromJSON, h) {
			t.Fatalf("the JSON form %s writes as %x (%v), want %x", j, fromJSON, err, h)
		}
	}
}

// TestCompactHeaderRefusals: what the compact reader refuses (malformed)
// and what it reads but checkHeader refuses, field by field.
func TestCompactHeaderRefusals(t *testing.T) {
	w := newWorld(t)
	seal := func(version int, params func(*world, *Params)) []byte {
		e, err := Parse(sealRequest(t, w, version, params, []byte("x")).Bytes)
		if err != nil {
			t.Fatal(err)
		}
		return e.Header
	}
	hmacOnly := func(w *world, p *Params) { p.HMAC = w.hmac }
	base := seal(Version3, hmacOnly)
	every := seal(Version3, func(w *world, p *Params) {
		p.HMAC, p.HOTP, p.Signer, p.Recipients = w.hmac, w.hotp, w.es, []Recipient{w.x25519}
	})
	// offsets of base: v kind prot | from | to | topic | replyTo | corr | re | ctr iat exp | mac
	from, to, topic, replyTo, corr, re, ctr := compactOffsets(base)
	iat, exp := ctr+8, ctr+16
	mac := ctr + 24
	if len(base) != mac+1+kidSize {
		t.Fatalf("layout: header of %d bytes, mac at %d", len(base), mac)
	}
	// A signed request encrypted to one recipient: sig where base has mac,
	// then enc's algorithm and its recipient count.
	sealed := seal(Version3, func(w *world, p *Params) { p.Signer, p.Recipients = w.ed, []Recipient{w.x25519} })
	rcptCount := mac + 1 + kidSize + 1
	if sealed[rcptCount] != 1 {
		t.Fatalf("layout: recipient count %d", sealed[rcptCount])
	}
	set := func(h []byte, at int, b ...byte) []byte {
		out := bytes.Clone(h)
		copy(out[at:], b)
		return out
	}
	for _, tt := range []struct {
		name   string
		header []byte
		want   error
	}{
		{"empty", nil, ErrMalformed},
		{"version alone", []byte{3}, ErrMalformed},
		{"protection bit 0x10", set(base, 2, base[2]|0x10), ErrMalformed},
		{"protection bit 0x80", set(base, 2, base[2]|0x80), ErrMalformed},
		{"no protection", set(base[:mac], 2, 0), ErrMalformed},
		{"kind 0", set(base, 1, 0), ErrMalformed},
		{"kind 3 (two kinds)", set(base, 1, 3), ErrMalformed},
		{"version 2 inside", set(base, 0, 2), ErrMalformed},
		{"sender length past the end", set(base, from, 0xFF), ErrMalformed},
		{"empty sender", append(set(base[:from], 0), base[to:]...), ErrMalformed},
		{"sender with a slash", set(base, from+1, '/'), ErrMalformed},
		{"recipient count past the end", set(base, to, 0xFF), ErrMalformed},
		{"request to nobody", append(append(bytes.Clone(base[:to]), 0), base[topic:]...), ErrMalformed},
		{"topic with a wildcard", set(base, topic+2, '#'), ErrMalformed},
		{"request without reply-to", append(append(bytes.Clone(base[:replyTo]), 0, 0), base[corr:]...), ErrMalformed},
		{"request without correlation id", append(append(bytes.Clone(base[:corr]), 0), base[re:]...), ErrMalformed},
		{"request digest on a request", append(append(append(bytes.Clone(base[:re]), 32), make([]byte, 32)...), base[ctr:]...), ErrMalformed},
		{"counter 0", set(base, ctr, 0, 0, 0, 0, 0, 0, 0, 0), ErrMalformed},
		{"issued at 2^63", set(base, iat, 0x80), ErrMalformed},
		{"expiry at 2^63", set(base, exp, 0x80), ErrMalformed},
		{"expiry before issue", set(base, exp, 0, 0, 0, 0, 0, 0, 0, 0), ErrMalformed},
		{"mac algorithm 0", set(base, mac, 0), ErrPolicy},
		{"mac algorithm Ed25519", set(base, mac, 2), ErrPolicy},
		{"mac key id cut", base[:len(base)-1], ErrMalformed},
		{"a byte after the last field", append(bytes.Clone(base), 0), ErrMalformed},
		{"65 recipients", set(sealed, rcptCount, 65), ErrMalformed},
		{"255 recipients", set(sealed, rcptCount, 255), ErrMalformed},
		{"2 recipients, 1 present", set(sealed, rcptCount, 2), ErrMalformed},
		{"unknown wrap algorithm", set(sealed, rcptCount+1, 0xEE), ErrPolicy},
		{"empty wrapped key", append(set(sealed[:rcptCount+1+1+kidSize], rcptCount, 1), 0, 0), ErrMalformed},
		{"every protection, cut at the last byte", every[:len(every)-1], ErrMalformed},
		{"every protection, a byte after", append(bytes.Clone(every), 0), ErrMalformed},
	} {
		t.Run(tt.name, func(t *testing.T) {
			blk, err := headerBlockOf(Version3, tt.header)
			if err == nil {
				_, err = blk.validate(Version3)
			}
			if !errors.Is(err, tt.want) {
				t.Fatalf("got %v, want %v", err, tt.want)
			}
		})
	}
	// Every prefix of a valid header is refused, and none panics.
	for _, h := range [][]byte{base, every} {
		for n := range len(h) {
			if _, ok := compactBlock(h[:n]); ok {
				t.Fatalf("the first %d of %d bytes read as a header", n, len(h))
			}
		}
		if blk, ok := compactBlock(h); !ok {
			t.Fatal("the whole header does not read")
		} else if _, err := blk.validate(Version3); err != nil {
			t.Fatal(err)
		}
	}
}

// TestCompactIsSmaller: the compact form of a request is smaller than the
// binary one, which is smaller than the text one, for the same message.
func TestCompactIsSmaller(t *testing.T) {
	w := newWorld(t)
	var sizes []int
	for _, v := range []int{Version1, Version2, Version3} {
		sizes = append(sizes, len(sealRequest(t, w, v, func(w *world, p *Params) { p.HMAC = w.hmac }, make([]byte, 256)).Bytes))
	}
	if !(sizes[2] < sizes[1] && sizes[1] < sizes[0]) {
		t.Fatalf("sizes of versions 1, 2, 3: %v", sizes)
	}
	t.Logf("a 256-byte HMAC request: %d bytes (text), %d (binary), %d (compact)", sizes[0], sizes[1], sizes[2])
}

// TestSpecCompactExample: the annotated header in SPEC.md §14.2 is vector
// 74-v3-hmac's header, byte for byte.
func TestSpecCompactExample(t *testing.T) {
	spec, err := os.ReadFile("SPEC.md")
	if err != nil {
		t.Fatal(err)
	}
	_, after, ok := strings.Cut(string(spec), "Vector `74-v3-hmac` carries")
	if !ok {
		t.Fatal("SPEC.md has no example of vector 74-v3-hmac")
	}
	_, block, _ := strings.Cut(after, "```\n")
	block, _, _ = strings.Cut(block, "```")
	var written []byte
	for line := range strings.Lines(block) {
		if strings.HasPrefix(line, " ") {
			continue // the rest of an annotation
		}
		bytesPart, _, _ := strings.Cut(line, "   ")
		b, err := hex.DecodeString(strings.ReplaceAll(strings.TrimSpace(bytesPart), " ", ""))
		if err != nil {
			t.Fatalf("%q: %v", line, err)
		}
		written = append(written, b...)
	}
	for _, v := range loadVectors(t) {
		if v.Name != "v3-hmac" {
			continue
		}
		e, err := Parse(v.envelopeBytes(t))
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(written, e.Header) {
			t.Fatalf("SPEC.md shows\n%x\nthe vector's header is\n%x", written, e.Header)
		}
		return
	}
	t.Fatal("no vector v3-hmac")
}

// TestCompactHeaderBoundsRecipients: a header that claims more recipients
// than it carries, or than §3.2 allows, is refused before room for them is
// allocated: a few bytes from a hostile broker cost no more than any other
// refused header.
func TestCompactHeaderBoundsRecipients(t *testing.T) {
	w := newWorld(t)
	e, err := Parse(sealRequest(t, w, Version3, func(w *world, p *Params) { p.Signer, p.Recipients = w.ed, []Recipient{w.x25519} }, nil).Bytes)
	if err != nil {
		t.Fatal(err)
	}
	// The recipient count follows enc's algorithm, which follows sig.
	_, _, _, _, _, _, ctr := compactOffsets(e.Header)
	i := ctr + 24 + 1 + kidSize + 1
	if e.Header[i] != 1 {
		t.Fatalf("layout: recipient count %d", e.Header[i])
	}
	claims := bytes.Clone(e.Header[:i+1])
	claims[i] = 255
	claims = append(claims, make([]byte, 64)...) // room for 4 recipients, not 255
	const runs = 200
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	for range runs {
		if _, ok := compactBlock(claims); ok {
			t.Fatal("a header claiming 255 recipients read")
		}
	}
	runtime.ReadMemStats(&after)
	if per := (after.TotalAlloc - before.TotalAlloc) / runs; per > 2048 {
		t.Fatalf("%d bytes allocated per refused header", per)
	}
}

// compactOffsets finds, in a compact header with one recipient id, where
// each field up to the counter begins.
func compactOffsets(h []byte) (from, to, topic, replyTo, corr, re, ctr int) {
	from = 3
	to = from + 1 + int(h[from])
	topic = to + 1 + 1 + int(h[to+1])
	replyTo = topic + 2 + int(binary.BigEndian.Uint16(h[topic:]))
	corr = replyTo + 2 + int(binary.BigEndian.Uint16(h[replyTo:]))
	re = corr + 1 + int(h[corr])
	ctr = re + 1 + int(h[re])
	return
}
