package envelope

import (
	"bytes"
	"encoding/json"
	"reflect"
	"testing"
)

// refEncodeHeader and refDecodeHeader are the reference: encoding/json with
// HTML escaping off, and "decode, re-encode, compare". The codec must agree
// with them on every input.
func refEncodeHeader(h *wireHeader) []byte {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(h); err != nil {
		return nil
	}
	return bytes.TrimSuffix(buf.Bytes(), []byte{'\n'})
}

func refDecodeHeader(data []byte) (*wireHeader, bool) {
	var h wireHeader
	if json.Unmarshal(data, &h) != nil {
		return nil, false
	}
	if !bytes.Equal(refEncodeHeader(&h), data) {
		return nil, false
	}
	return &h, true
}

// outcome is what Open makes of a header: refused (nil), or the header.
func outcome(h *wireHeader, ok bool) *wireHeader {
	if !ok {
		return nil
	}
	if _, err := validateHeader(h, Version1); err != nil {
		return nil
	}
	return h
}

func checkCodecAgrees(t *testing.T, data []byte) {
	got, gok := readHeader(data)
	want, wok := refDecodeHeader(data)
	a, b := outcome(got, gok), outcome(want, wok)
	if (a == nil) != (b == nil) || (a != nil && !reflect.DeepEqual(a, b)) {
		t.Fatalf("codec and encoding/json disagree on %q:\ncodec %+v (%v)\njson  %+v (%v)", data, got, gok, want, wok)
	}
	if a != nil {
		if enc := appendHeader(nil, a); !bytes.Equal(enc, data) {
			t.Fatalf("appendHeader(readHeader(x)) != x:\n%q\n%q", enc, data)
		}
	}
}

func TestCodecMatchesEncodingJSON(t *testing.T) {
	w := newWorld(t)
	var headers [][]byte
	for _, s := range suites() {
		p := w.request("doors/open")
		s.apply(w, p)
		sealed, err := w.sealer().Seal(p, []byte("x"))
		if err != nil {
			t.Fatal(err)
		}
		e, _ := Parse(sealed.Bytes)
		headers = append(headers, e.Header)
		h, ok := readHeader(e.Header)
		if !ok {
			t.Fatalf("%s: codec refuses its own header", s.name)
		}
		if ref := refEncodeHeader(h); !bytes.Equal(ref, e.Header) {
			t.Fatalf("%s: encoding/json writes\n%s\nthe codec wrote\n%s", s.name, ref, e.Header)
		}
	}
	for _, v := range loadVectors(t) {
		if v.Header != "" {
			headers = append(headers, []byte(v.Header))
		}
	}
	for _, h := range headers {
		checkCodecAgrees(t, h)
	}
	// Edge cases both must treat alike.
	for _, s := range []string{
		`{"v":1,"kind":"req","from":"a","topic":"t","ctr":"1","iat":0,"exp":1,"prot":[]}`,
		`{"v":1,"kind":"req","from":"a","topic":"t","ctr":"1","iat":0,"exp":1,"prot":null}`,
		`{"v":-1,"kind":"evt","from":"a","topic":"t","ctr":"1","iat":0,"exp":1,"prot":["sig"],"sig":{"alg":"Ed25519","kid":"AAAAAAAAAAAAAAAA"}}`,
		`{"v":1,"kind":"evt","from":"a","topic":"<&>","ctr":"1","iat":-1,"exp":1,"prot":["sig"],"sig":{"alg":"Ed25519","kid":"AAAAAAAAAAAAAAAA"}}`,
		`{"v":1,"kind":"evt","from":"a","topic":"<&>","ctr":"18446744073709551615","iat":0,"exp":9223372036854775807,"prot":["sig"],"sig":{"alg":"Ed25519","kid":"AAAAAAAAAAAAAAAA"}}`,
		`{"v":1,"kind":"evt","from":"a","topic":"t","ctr":"18446744073709551616","iat":0,"exp":1,"prot":["sig"],"sig":{"alg":"Ed25519","kid":"AAAAAAAAAAAAAAAA"}}`,
		"{\"v\":1,\"kind\":\"evt\",\"from\":\"a\",\"topic\":\"t\u2028\",\"ctr\":\"1\",\"iat\":0,\"exp\":1,\"prot\":[\"sig\"],\"sig\":{\"alg\":\"Ed25519\",\"kid\":\"AAAAAAAAAAAAAAAA\"}}",
		`{"v":1,"kind":"evt","from":"a","topic":"t\u00e9","ctr":"1","iat":0,"exp":1,"prot":["sig"],"sig":{"alg":"Ed25519","kid":"AAAAAAAAAAAAAAAA"}}`,
		`{"v":1,"kind":"evt","from":"a","to":[],"topic":"t","ctr":"1","iat":0,"exp":1,"prot":["sig"],"sig":{"alg":"Ed25519","kid":"AAAAAAAAAAAAAAAA"}}`,
		`{"v":1,"kind":"evt","from":"a","topic":"t","ctr":"1","iat":0,"exp":1,"prot":["enc","sig"],"sig":{"alg":"Ed25519","kid":"AAAAAAAAAAAAAAAA"},"enc":{"alg":"A256GCM","rcpt":[]}}`,
		`{"v":1,"kind":"evt","from":"a","topic":"t","ctr":"1","iat":0,"exp":1,"prot":["enc","sig"],"sig":{"alg":"Ed25519","kid":"AAAAAAAAAAAAAAAA"},"enc":{"alg":"A256GCM","kid":""}}`,
	} {
		checkCodecAgrees(t, []byte(s))
	}
}

// FuzzHeaderCodec: on any input the codec and encoding/json make the same
// decision, and what is accepted re-encodes to the same bytes.
func FuzzHeaderCodec(f *testing.F) {
	for _, v := range loadVectors(f) {
		if v.Header != "" {
			f.Add([]byte(v.Header))
		}
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		checkCodecAgrees(t, data)
	})
}

func BenchmarkHeaderCodec(b *testing.B) {
	w := newWorld(b)
	p := w.request("get-card")
	p.HMAC = w.hmac
	s := must[*Sealed](b)(w.sealer().Seal(p, nil))
	e := must[*Envelope](b)(Parse(s.Bytes))
	b.Run("read", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			readHeader(e.Header)
		}
	})
	b.Run("read-encoding-json", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			refDecodeHeader(e.Header)
		}
	})
}
