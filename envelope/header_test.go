package envelope

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"runtime"
	"strings"
	"testing"
)

func TestValidIDTable(t *testing.T) {
	for _, tt := range []struct {
		id   string
		want bool
	}{
		{"client", true},
		{"a", true},
		{"A-Z.a_z:0@9", true},
		{strings.Repeat("x", MaxIDLength), true},
		{strings.Repeat("x", MaxIDLength+1), false},
		{"", false},
		{"a/b", false},
		{"a+b", false},
		{"a#b", false},
		{"a b", false},
		{"a\x00b", false},
		{"a\nb", false},
		{"tür", false},
		{"a\"b", false},
		{"a\\b", false},
		{"a,b", false},
		{"a$b", false},
		{"\x7f", false},
	} {
		if got := validID(tt.id); got != tt.want || ValidID(tt.id) != tt.want {
			t.Errorf("validID(%q) = %v, want %v", tt.id, got, tt.want)
		}
	}
	// Every byte: exactly the ASCII letters, digits and -._:@ are id
	// bytes.
	for c := range 256 {
		want := c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || strings.IndexByte("-._:@", byte(c)) >= 0
		if got := validID("x" + string([]byte{byte(c)})); got != want {
			t.Errorf("validID with byte %#x = %v, want %v", c, got, want)
		}
	}
}

func TestValidTopicTable(t *testing.T) {
	for _, tt := range []struct {
		topic string
		want  bool
	}{
		{"get-card", true},
		{"doors/3/opened", true},
		{"/", true},
		{"a b", true},
		{"türen/öffnen", true},
		{"日本/東京", true},
		{"emoji/\U0001F600", true},
		{"\u00a0nbsp", true},
		{"a\u2027b", true},
		{strings.Repeat("t", maxTopicLength), true},
		{strings.Repeat("ü", maxTopicLength/2), true},
		{strings.Repeat("t", maxTopicLength+1), false},
		{strings.Repeat("ü", maxTopicLength/2) + "t", false},
		{"", false},
		{"a/+", false},
		{"a/#", false},
		{"a\nb", false},
		{"a\x00b", false},
		{"a\x1fb", false},
		{"a\x7f", false},
		{`a"b`, false},
		{`a\b`, false},
		{"a\u2028b", false},
		{"a\u2029b", false},
		{"a\xffb", false},
		{"tür\xc3", false},
		{"tür/+", false},
		{"tür\x7f", false},
		{"tür\u2029", false},
		{"tür\x01", false},
		{"\xed\xa0\x80", false},     // a surrogate, U+D800
		{"\xc0\xaf", false},         // "/" in two bytes: not the shortest form
		{"\xe0\x80\xaf", false},     // "/" in three bytes
		{"\xf4\x90\x80\x80", false}, // past U+10FFFF
		{"a\u0085b", true},          // NEL: a C1 control, not excluded
	} {
		if got := validTopic(tt.topic); got != tt.want {
			t.Errorf("validTopic(%q) = %v, want %v", tt.topic, got, tt.want)
		}
	}
	// Every ASCII byte alone, after ASCII, and after a non-ASCII rune.
	for c := range 0x80 {
		want := c >= 0x20 && c != 0x7f && !strings.ContainsRune(`"\+#`, rune(c))
		for _, prefix := range []string{"", "a", "ü"} {
			if got := validTopic(prefix + string(rune(c))); got != want {
				t.Errorf("validTopic(%q) = %v, want %v", prefix+string(rune(c)), got, want)
			}
		}
	}
}

// kid12 is a key id of twelve bytes b.
func kid12(b byte) KeyID { return KeyID(bytes.Repeat([]byte{b}, keyIDSize)) }

// TestHeaderRuleTable applies the rules of the header (SPEC.md §3.2) to
// headers changed from a valid request one field at a time: check refuses
// each broken rule as malformed, and so does Open when the header comes
// with a valid HMAC.
func TestHeaderRuleTable(t *testing.T) {
	digest := bytes.Repeat([]byte{0xd1}, 32)
	ids := func(n int) []string {
		out := make([]string, n)
		for i := range out {
			out[i] = fmt.Sprint("r", i)
		}
		return out
	}
	asReply := func(h *header) { h.kind, h.replyTo, h.re = Reply, "", digest }
	asEvent := func(h *header) { h.kind, h.replyTo, h.corr = Event, "", nil }
	signedOnly := func(h *header) { h.prot, h.sigAlg, h.sigKid = Signature, Ed25519, kid12(5) }
	wrapped := func(alg Algorithm, n int) func(h *header) {
		return func(h *header) {
			h.prot |= Encryption
			h.rcpt = []wrappedKey{{alg: alg, kid: kid12(9), wk: make([]byte, n)}}
		}
	}
	tests := []struct {
		name   string
		change []func(h *header)
		ok     bool
	}{
		{"valid request", nil, true},
		{"valid reply", []func(*header){asReply}, true},
		{"valid error", []func(*header){asReply, func(h *header) { h.kind = ErrorReply }}, true},
		{"valid event", []func(*header){asEvent}, true},
		{"event to nobody, signed", []func(*header){asEvent, signedOnly, func(h *header) { h.to = nil }}, true},
		{"event to 64, signed", []func(*header){asEvent, signedOnly, func(h *header) { h.to = ids(64) }}, true},
		{"event to 65, signed", []func(*header){asEvent, signedOnly, func(h *header) { h.to = ids(65) }}, false},
		{"event to two, signed and wrapped", []func(*header){asEvent, signedOnly, wrapped(HPKEX25519, 80), func(h *header) { h.to = ids(2) }}, true},
		{"event to two under an HMAC", []func(*header){asEvent, func(h *header) { h.to = ids(2) }}, false},
		{"event to nobody under an HMAC", []func(*header){asEvent, func(h *header) { h.to = nil }}, false},
		{"event to two with a HOTP code", []func(*header){asEvent, signedOnly, func(h *header) {
			h.prot |= HOTPCode
			h.hotpKid, h.hotpCode, h.to = kid12(3), "123456", ids(2)
		}}, false},
		{"event to two under a pre-shared key", []func(*header){asEvent, signedOnly, func(h *header) {
			h.prot |= Encryption
			h.pskKid, h.to = kid12(4), ids(2)
		}}, false},
		{"duplicate recipients", []func(*header){asEvent, signedOnly, func(h *header) { h.to = []string{"a", "b", "a"} }}, false},
		{"bad recipient id", []func(*header){func(h *header) { h.to = []string{"gate/way"} }}, false},
		{"empty sender", []func(*header){func(h *header) { h.from = "" }}, false},
		{"sender with a slash", []func(*header){func(h *header) { h.from = "a/b" }}, false},
		{"sender of 128 bytes", []func(*header){func(h *header) { h.from = strings.Repeat("s", 128) }}, true},
		{"sender of 129 bytes", []func(*header){func(h *header) { h.from = strings.Repeat("s", 129) }}, false},
		{"request to nobody", []func(*header){func(h *header) { h.to = nil }}, false},
		{"request to two", []func(*header){signedOnly, func(h *header) { h.to = ids(2) }}, false},
		{"reply to two", []func(*header){asReply, signedOnly, func(h *header) { h.to = ids(2) }}, false},
		{"topic with a wildcard", []func(*header){func(h *header) { h.topic = "a/#" }}, false},
		{"empty topic", []func(*header){func(h *header) { h.topic = "" }}, false},
		{"topic of 1024 bytes", []func(*header){func(h *header) { h.topic = strings.Repeat("t", 1024) }}, true},
		{"topic of 1025 bytes", []func(*header){func(h *header) { h.topic = strings.Repeat("t", 1025) }}, false},
		{"topic not UTF-8", []func(*header){func(h *header) { h.topic = "a\xff" }}, false},
		{"request without reply-to", []func(*header){func(h *header) { h.replyTo = "" }}, false},
		{"reply with a reply-to", []func(*header){asReply, func(h *header) { h.replyTo = "r" }}, false},
		{"event with a reply-to", []func(*header){asEvent, func(h *header) { h.replyTo = "r" }}, false},
		{"reply-to with a wildcard", []func(*header){func(h *header) { h.replyTo = "r/+" }}, false},
		{"request without correlation id", []func(*header){func(h *header) { h.corr = nil }}, false},
		{"correlation id of 1 byte", []func(*header){func(h *header) { h.corr = []byte{0} }}, true},
		{"correlation id of 64 bytes", []func(*header){func(h *header) { h.corr = make([]byte, 64) }}, true},
		{"correlation id of 65 bytes", []func(*header){func(h *header) { h.corr = make([]byte, 65) }}, false},
		{"event with a correlation id", []func(*header){asEvent, func(h *header) { h.corr = []byte{1} }}, false},
		{"reply without correlation id", []func(*header){asReply, func(h *header) { h.corr = nil }}, false},
		{"reply without request digest", []func(*header){asReply, func(h *header) { h.re = nil }}, false},
		{"reply with a digest of 31 bytes", []func(*header){asReply, func(h *header) { h.re = digest[:31] }}, false},
		{"reply with a digest of 33 bytes", []func(*header){asReply, func(h *header) { h.re = append(bytes.Clone(digest), 0) }}, false},
		{"request with a request digest", []func(*header){func(h *header) { h.re = digest }}, false},
		{"event with a request digest", []func(*header){asEvent, func(h *header) { h.re = digest }}, false},
		{"counter 0", []func(*header){func(h *header) { h.ctr = 0 }}, false},
		{"counter 2^64-1", []func(*header){func(h *header) { h.ctr = math.MaxUint64 }}, true},
		{"issued at 0", []func(*header){func(h *header) { h.iat, h.exp = 0, 1 }}, true},
		{"expiry at 2^63-1", []func(*header){func(h *header) { h.exp = math.MaxInt64 }}, true},
		{"expiry at 2^63", []func(*header){func(h *header) { h.exp = math.MaxInt64 + 1 }}, false},
		{"issued at 2^63", []func(*header){func(h *header) { h.iat, h.exp = math.MaxInt64+1, math.MaxInt64+2 }}, false},
		{"expiry at the issue time", []func(*header){func(h *header) { h.exp = h.iat }}, false},
		{"expiry before the issue time", []func(*header){func(h *header) { h.exp = h.iat - 1 }}, false},
		{"hotp code of 6 digits", []func(*header){func(h *header) { h.prot |= HOTPCode; h.hotpKid, h.hotpCode = kid12(3), "012345" }}, true},
		{"hotp code of 8 digits", []func(*header){func(h *header) { h.prot |= HOTPCode; h.hotpKid, h.hotpCode = kid12(3), "01234567" }}, true},
		{"hotp code of 7 digits", []func(*header){func(h *header) { h.prot |= HOTPCode; h.hotpKid, h.hotpCode = kid12(3), "0123456" }}, false},
		{"hotp code of 5 digits", []func(*header){func(h *header) { h.prot |= HOTPCode; h.hotpKid, h.hotpCode = kid12(3), "01234" }}, false},
		{"hotp code with a letter", []func(*header){func(h *header) { h.prot |= HOTPCode; h.hotpKid, h.hotpCode = kid12(3), "01234a" }}, false},
		{"hotp code with a space", []func(*header){func(h *header) { h.prot |= HOTPCode; h.hotpKid, h.hotpCode = kid12(3), " 12345" }}, false},
		{"HPKE-X25519 key of 80 bytes", []func(*header){wrapped(HPKEX25519, 80)}, true},
		{"HPKE-X25519 key of 79 bytes", []func(*header){wrapped(HPKEX25519, 79)}, false},
		{"HPKE-X25519 key of 81 bytes", []func(*header){wrapped(HPKEX25519, 81)}, false},
		{"X-Wing key of 1168 bytes", []func(*header){wrapped(HPKEXWing, 1168)}, true},
		{"X-Wing key of 1167 bytes", []func(*header){wrapped(HPKEXWing, 1167)}, false},
		{"X-Wing key of 1169 bytes", []func(*header){wrapped(HPKEXWing, 1169)}, false},
		{"RSA-OAEP key of 256 bytes", []func(*header){wrapped(RSAOAEP256, 256)}, true},
		{"RSA-OAEP key of 1024 bytes", []func(*header){wrapped(RSAOAEP256, 1024)}, true},
		{"RSA-OAEP key of 255 bytes", []func(*header){wrapped(RSAOAEP256, 255)}, false},
		{"RSA-OAEP key of 1025 bytes", []func(*header){wrapped(RSAOAEP256, 1025)}, false},
		{"two wrapped keys of one id", []func(*header){wrapped(HPKEX25519, 80), func(h *header) {
			h.rcpt = append(h.rcpt, wrappedKey{alg: RSAOAEP256, kid: h.rcpt[0].kid, wk: make([]byte, 256)})
		}}, false},
		{"two wrapped keys of two ids", []func(*header){wrapped(HPKEX25519, 80), func(h *header) {
			h.rcpt = append(h.rcpt, wrappedKey{alg: RSAOAEP256, kid: kid12(10), wk: make([]byte, 256)})
		}}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w := newWorld(t)
			h := w.handRequest("get-card", 1)
			for _, c := range tt.change {
				c(h)
			}
			err := h.check()
			if tt.ok != (err == nil) || err != nil && (!errors.Is(err, ErrMalformed) || len(matchedClasses(err)) != 1) {
				t.Fatalf("check = %v, want ok %v", err, tt.ok)
			}
			// Written, framed and tagged by the holder of the HMAC key:
			// Open refuses a broken rule as malformed whatever the tag
			// says, and a header within the rules gets past step 3.
			data := sealByHand(w.hmac, h, make([]byte, 28)) // room for a nonce and tag
			var hh header
			if perr := readHeader(&hh, splitEnvelope(t, data).header, string(splitEnvelope(t, data).header)); (perr == nil) != tt.ok {
				t.Fatalf("readHeader of the written header = %v, want ok %v", perr, tt.ok)
			}
			if h.prot&HMAC == 0 {
				return
			}
			_, oerr := w.opener().Open(ctx, data, &Expect{Kinds: Request | Reply | Event | ErrorReply})
			if malformed := errors.Is(oerr, ErrMalformed); malformed == tt.ok {
				t.Fatalf("Open = %v, want malformed %v", oerr, !tt.ok)
			}
		})
	}
}

// TestHeaderFieldRefusals: what the header reader refuses before any rule
// (fields that do not read, unknown codes, bytes after the last field),
// all malformed; every prefix of a valid header is refused too, and none
// panics.
func TestHeaderFieldRefusals(t *testing.T) {
	w := newWorld(t)
	base := splitEnvelope(t, sealRequestWith(t, w, withHMAC, nil).Bytes).header
	every := splitEnvelope(t, sealRequestWith(t, w, func(w *world, p *Params) {
		p.HMAC, p.HOTP, p.Signer, p.Recipients = w.hmac, w.hotp, w.es, []Recipient{w.x25519, w.rsaoaep}
	}, nil).Bytes).header
	signedWrapped := splitEnvelope(t, sealRequestWith(t, w, func(w *world, p *Params) {
		p.Signer, p.Recipients = w.ed, []Recipient{w.x25519}
	}, nil).Bytes).header
	// Offsets by the format's table, for a request with one recipient.
	from := 2
	to := from + 1 + int(base[from])
	topic := to + 1 + 1 + int(base[to+1])
	replyTo := topic + 2 + int(binary.BigEndian.Uint16(base[topic:]))
	corr := replyTo + 2 + int(binary.BigEndian.Uint16(base[replyTo:]))
	re := corr + 1 + int(base[corr])
	ctr := re + 1 + int(base[re])
	mac := ctr + 24
	if len(base) != mac+keyIDSize {
		t.Fatalf("layout: header of %d bytes, mac kid at %d", len(base), mac)
	}
	// In signedWrapped the same offsets hold up to the counter; then the
	// signature's code and kid, and the recipient count.
	sigCode := mac
	rcptCount := sigCode + 1 + keyIDSize
	if signedWrapped[sigCode] != 1 || signedWrapped[rcptCount] != 1 || signedWrapped[rcptCount+1] != 1 {
		t.Fatalf("layout: signature code %d, recipient count %d, wrap code %d", signedWrapped[sigCode], signedWrapped[rcptCount], signedWrapped[rcptCount+1])
	}
	set := func(h []byte, at int, b ...byte) []byte {
		out := bytes.Clone(h)
		copy(out[at:], b)
		return out
	}
	splice := func(h []byte, from, to int, b ...byte) []byte {
		return append(append(bytes.Clone(h[:from]), b...), h[to:]...)
	}
	for _, tt := range []struct {
		name   string
		header []byte
	}{
		{"empty", nil},
		{"kind alone", []byte{1}},
		{"kind 0", set(base, 0, 0)},
		{"kind 3 (two kinds)", set(base, 0, 3)},
		{"kind 0x10", set(base, 0, 0x10)},
		{"kind 0x80", set(base, 0, 0x80)},
		{"no protection", set(base[:mac], 1, 0)},
		{"protection bit 0x10", set(base, 1, base[1]|0x10)},
		{"protection bit 0x80", set(base, 1, base[1]|0x80)},
		{"sender length past the end", set(base, from, 0xff)},
		{"recipient count past the end", set(base, to, 0xff)},
		{"topic length past the end", set(base, topic, 0xff, 0xff)},
		{"a byte after the last field", append(bytes.Clone(base), 0)},
		{"mac key id cut", base[:len(base)-1]},
		{"hmac declared, no key id", splice(base, mac, len(base))},
		{"signature code 0", set(signedWrapped, sigCode, 0)},
		{"signature code 4", set(signedWrapped, sigCode, 4)},
		{"signature code 0xff", set(signedWrapped, sigCode, 0xff)},
		{"wrap code 0", set(signedWrapped, rcptCount+1, 0)},
		{"wrap code 4", set(signedWrapped, rcptCount+1, 4)},
		{"65 recipients", set(signedWrapped, rcptCount, 65)},
		{"255 recipients", set(signedWrapped, rcptCount, 255)},
		{"2 recipients, 1 present", set(signedWrapped, rcptCount, 2)},
		{"wrapped key length past the end", set(signedWrapped, rcptCount+1+1+keyIDSize, 0xff, 0xff)},
		{"every protection, cut at the last byte", every[:len(every)-1]},
		{"every protection, a byte after", append(bytes.Clone(every), 0)},
	} {
		t.Run(tt.name, func(t *testing.T) {
			var h header
			if err := readHeader(&h, tt.header, string(tt.header)); !errors.Is(err, ErrMalformed) {
				t.Fatalf("readHeader = %v, want ErrMalformed", err)
			}
		})
	}
	for _, h := range [][]byte{base, every, signedWrapped} {
		for n := range len(h) {
			var hh header
			if parseHeader(&hh, h[:n], string(h[:n])) {
				t.Fatalf("the first %d of %d bytes read as a header", n, len(h))
			}
		}
		var hh header
		if err := readHeader(&hh, h, string(h)); err != nil {
			t.Fatal(err)
		}
		if again := appendHeader(nil, &hh); !bytes.Equal(again, h) {
			t.Fatalf("a header read and written again changed:\n%x\n%x", h, again)
		}
	}
}

// TestHeaderRecipientCountBounded: a header that claims more recipients
// than it carries is refused before room for them is allocated: a few
// bytes from a hostile broker cost no more than any other refused header.
func TestHeaderRecipientCountBounded(t *testing.T) {
	w := newWorld(t)
	h := splitEnvelope(t, sealRequestWith(t, w, func(w *world, p *Params) { p.Signer, p.Recipients = w.ed, []Recipient{w.x25519} }, nil).Bytes).header
	var hh header
	if err := readHeader(&hh, h, string(h)); err != nil || len(hh.rcpt) != 1 {
		t.Fatal(err)
	}
	// The recipient count is the byte before the only entry, which runs
	// to the end: code, kid, u16 length, 80 bytes.
	i := len(h) - (1 + keyIDSize + 2 + 80) - 1
	if h[i] != 1 {
		t.Fatalf("layout: recipient count %d", h[i])
	}
	for _, n := range []byte{64, 255} {
		claims := append(bytes.Clone(h[:i]), n)
		claims = append(claims, make([]byte, 300)...) // room for 3 recipients, not n
		const runs = 200
		var before, after runtime.MemStats
		runtime.ReadMemStats(&before)
		for range runs {
			if parseHeader(&hh, claims, string(claims)) {
				t.Fatalf("a header claiming %d recipients read", n)
			}
		}
		runtime.ReadMemStats(&after)
		if per := (after.TotalAlloc - before.TotalAlloc) / runs; per > 1024 {
			t.Fatalf("%d recipients claimed: %d bytes allocated per refused header", n, per)
		}
	}
}

// TestEnvelopeFirstByteRules: the first byte is the format's version:
// 0x01 is this one; 0x02 to 0x1F are kept for later versions
// (ErrUnsupportedVersion); every other byte, like empty input, is not an
// envelope (ErrMalformed). Open and Peek agree.
func TestEnvelopeFirstByteRules(t *testing.T) {
	w := newWorld(t)
	sealed := sealRequestWith(t, w, withHMAC, nil)
	check := func(t *testing.T, data []byte, want error) {
		t.Helper()
		o := w.opener()
		o.Replay = admitAllStore{}
		if _, err := o.Open(ctx, data, expectRequest); !errors.Is(err, want) || Class(err) != want && want != nil {
			t.Fatalf("Open(% x...) = %v, want %v", data[:min(len(data), 4)], err, want)
		}
		if _, err := Peek(data, 0); !errors.Is(err, want) {
			t.Fatalf("Peek(% x...) = %v, want %v", data[:min(len(data), 4)], err, want)
		}
	}
	check(t, nil, ErrMalformed)
	check(t, []byte{}, ErrMalformed)
	for b := range 256 {
		var want error
		switch {
		case b == 0x01:
		case b >= 0x02 && b <= 0x1f:
			want = ErrUnsupportedVersion
		default:
			want = ErrMalformed
		}
		t.Run(fmt.Sprintf("%#02x", b), func(t *testing.T) {
			check(t, append([]byte{byte(b)}, sealed.Bytes[1:]...), want)
			alone := want
			if b == 0x01 {
				alone = ErrMalformed // a version byte and nothing else
			}
			check(t, []byte{byte(b)}, alone)
		})
	}
}

// TestFrameRules: the frame's refusals (SPEC.md §2), each malformed, and
// none leaving a trace in the replay window.
func TestFrameRules(t *testing.T) {
	w := newWorld(t)
	sealed := sealRequestWith(t, w, nil, []byte(`{"card":8165538}`))
	b := sealed.Bytes
	withLen := func(member int, n uint32) []byte {
		out := bytes.Clone(b)
		off := 1
		for range member {
			off += 4 + int(binary.BigEndian.Uint32(out[off:]))
		}
		binary.BigEndian.PutUint32(out[off:], n)
		return out
	}
	p := splitEnvelope(t, b)
	emptyHeader := (&splitParts{first: 1, payload: p.payload, mac: p.mac, sig: p.sig}).join()
	for _, tt := range []struct {
		name string
		data []byte
		// frameReads: the frame reads, and the header is refused at step
		// 3 (an empty header: SPEC.md §2, hdr-cut).
		frameReads bool
	}{
		{"only the version byte", b[:1], false},
		{"cut inside the header's length", b[:3], false},
		{"16 bytes", b[:16], false},
		{"17 zero-length members but an empty header", []byte{1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0}, true},
		{"last byte cut", b[:len(b)-1], false},
		{"a byte appended", append(bytes.Clone(b), 0), false},
		{"four zero bytes appended", append(bytes.Clone(b), 0, 0, 0, 0), false},
		{"header length past the end", withLen(0, uint32(len(b))), false},
		{"header length one short", withLen(0, uint32(len(p.header)-1)), false},
		{"header length one long", withLen(0, uint32(len(p.header)+1)), false},
		{"header length 2^32-1", withLen(0, math.MaxUint32), false},
		{"payload length 2^32-1", withLen(1, math.MaxUint32), false},
		{"mac length 2^31", withLen(2, 1<<31), false},
		{"signature length one long", withLen(3, uint32(len(p.sig)+1)), false},
		{"empty header", emptyHeader, true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			o := w.opener()
			if m, err := o.Open(ctx, tt.data, expectRequest); !errors.Is(err, ErrMalformed) || m != nil || len(matchedClasses(err)) != 1 {
				t.Fatalf("Open = %v, want ErrMalformed", err)
			}
			if _, err := readFrame(tt.data); tt.frameReads != (err == nil) || err != nil && !errors.Is(err, ErrMalformed) {
				t.Fatalf("readFrame = %v", err)
			}
		})
	}
	if _, err := w.opener().Open(ctx, b, expectRequest); err != nil {
		t.Fatalf("the genuine envelope after the refusals: %v", err)
	}
}

// TestMemberSizeRules: the HMAC tag is 32 bytes when declared, the
// signature the size its algorithm gives (Ed25519 and ES256 64, PS256 256
// to 1024), the ciphertext at least its nonce and tag (28 bytes), and
// nothing when not declared: anything else is malformed at step 3, before
// any key is looked at; a member of an allowed size that is wrong fails
// later, as authentication or decryption.
func TestMemberSizeRules(t *testing.T) {
	random := func(n int) []byte {
		b := make([]byte, n)
		for i := range b {
			b[i] = byte(i*7 + 3)
		}
		return b
	}
	psk := func(w *world, p *Params) { p.PSK = w.psk }
	for _, tt := range []struct {
		name   string
		params func(*world, *Params)
		edit   func(p *splitParts)
		want   error
	}{
		{"hmac tag of 31 bytes", withHMAC, func(p *splitParts) { p.mac = p.mac[:31] }, ErrMalformed},
		{"hmac tag of 33 bytes", withHMAC, func(p *splitParts) { p.mac = append(p.mac, 0) }, ErrMalformed},
		{"hmac tag missing", withHMAC, func(p *splitParts) { p.mac = nil }, ErrMalformed},
		{"hmac tag of 32 wrong bytes", withHMAC, func(p *splitParts) { p.mac = random(32) }, ErrAuthentication},
		{"hmac tag not declared, 1 byte", withEd25519, func(p *splitParts) { p.mac = []byte{0} }, ErrMalformed},
		{"signature not declared, 1 byte", withHMAC, func(p *splitParts) { p.sig = []byte{0} }, ErrMalformed},
		{"Ed25519 signature of 63 bytes", withEd25519, func(p *splitParts) { p.sig = p.sig[:63] }, ErrMalformed},
		{"Ed25519 signature of 65 bytes", withEd25519, func(p *splitParts) { p.sig = append(p.sig, 0) }, ErrMalformed},
		{"Ed25519 signature missing", withEd25519, func(p *splitParts) { p.sig = nil }, ErrMalformed},
		{"Ed25519 signature of 64 wrong bytes", withEd25519, func(p *splitParts) { p.sig = random(64) }, ErrAuthentication},
		{"ES256 signature of 63 bytes", func(w *world, p *Params) { p.Signer = w.es }, func(p *splitParts) { p.sig = p.sig[:63] }, ErrMalformed},
		{"ES256 signature of 64 wrong bytes", func(w *world, p *Params) { p.Signer = w.es }, func(p *splitParts) { p.sig = random(64) }, ErrAuthentication},
		{"PS256 signature of 255 bytes", func(w *world, p *Params) { p.Signer = w.ps }, func(p *splitParts) { p.sig = p.sig[:255] }, ErrMalformed},
		{"PS256 signature of 1025 bytes", func(w *world, p *Params) { p.Signer = w.ps }, func(p *splitParts) { p.sig = random(1025) }, ErrMalformed},
		{"PS256 signature of 257 bytes, not the modulus", func(w *world, p *Params) { p.Signer = w.ps }, func(p *splitParts) { p.sig = append(p.sig, 0) }, ErrAuthentication},
		{"PS256 signature of 1024 bytes", func(w *world, p *Params) { p.Signer = w.ps }, func(p *splitParts) { p.sig = random(1024) }, ErrAuthentication},
		{"ciphertext of 27 bytes", psk, func(p *splitParts) { p.payload = p.payload[:27] }, ErrMalformed},
		{"ciphertext of 0 bytes", psk, func(p *splitParts) { p.payload = nil }, ErrMalformed},
		{"ciphertext of 28 wrong bytes", psk, func(p *splitParts) { p.payload = random(28) }, ErrDecryption},
		{"ciphertext of 27 bytes, with an hmac", func(w *world, p *Params) { p.HMAC, p.PSK = w.hmac, w.psk }, func(p *splitParts) { p.payload = p.payload[:27] }, ErrMalformed},
		{"ciphertext of 27 bytes, wrapped key", func(w *world, p *Params) { p.Signer, p.Recipients = w.ed, []Recipient{w.x25519} },
			func(p *splitParts) { p.payload = p.payload[:27] }, ErrMalformed},
		{"clear payload of 0 bytes", withHMAC, func(p *splitParts) { p.payload = nil }, ErrAuthentication},
	} {
		t.Run(tt.name, func(t *testing.T) {
			w := newWorld(t)
			sealed := sealRequestWith(t, w, tt.params, []byte("payload"))
			// An unknown sender: step 3 comes before step 5, so a
			// malformed envelope is malformed whoever sent it.
			data := editEnvelope(t, sealed.Bytes, tt.edit)
			if _, err := w.opener().Open(ctx, data, expectRequest); !errors.Is(err, tt.want) {
				t.Fatalf("Open = %v, want %v", err, tt.want)
			}
			unknown := w.opener()
			unknown.Keys = must[*Keys](t)(NewKeys(nil))
			_, err := unknown.Open(ctx, data, expectRequest)
			if malformed := errors.Is(err, ErrMalformed); malformed != (tt.want == ErrMalformed) {
				t.Fatalf("Open by a receiver that knows no one = %v", err)
			}
		})
	}
}
