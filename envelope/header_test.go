package envelope

import (
	"errors"
	"strings"
	"testing"
)

func validWire() *wireHeader {
	return &wireHeader{
		V: 1, Kind: "req", From: "client", To: []string{"gateway"}, Topic: "get-card",
		ReplyTo: "mqttsec/client/reply", Corr: "AAAAAAAAAAAAAAAAAAAAAA", Ctr: 7, Iat: 1000, Exp: 2000,
		Prot: []string{"hmac"}, MAC: &macParams{Alg: HS256, Kid: "AAAAAAAAAAAAAAAA"},
	}
}

func TestValidateHeader(t *testing.T) {
	re := b64.EncodeToString(make([]byte, 32))
	kid := "BBBBBBBBBBBBBBBB"
	tests := []struct {
		name   string
		change func(h *wireHeader)
		want   error
	}{
		{"valid request", func(h *wireHeader) {}, nil},
		{"valid reply", func(h *wireHeader) { h.Kind = "rep"; h.ReplyTo = ""; h.Re = re }, nil},
		{"valid error", func(h *wireHeader) { h.Kind = "err"; h.ReplyTo = ""; h.Re = re }, nil},
		{"valid event", func(h *wireHeader) { h.Kind = "evt"; h.ReplyTo = ""; h.Corr = "" }, nil},
		{"header version 2", func(h *wireHeader) { h.V = 2 }, ErrMalformed},
		{"unknown kind", func(h *wireHeader) { h.Kind = "cmd" }, ErrMalformed},
		{"empty sender", func(h *wireHeader) { h.From = "" }, ErrMalformed},
		{"sender with slash", func(h *wireHeader) { h.From = "a/b" }, ErrMalformed},
		{"sender too long", func(h *wireHeader) { h.From = strings.Repeat("a", MaxIDLength+1) }, ErrMalformed},
		{"request to nobody", func(h *wireHeader) { h.To = nil }, ErrMalformed},
		{"request to two", func(h *wireHeader) { h.To = []string{"a", "b"} }, ErrMalformed},
		{"duplicate recipients", func(h *wireHeader) {
			h.Kind = "evt"
			h.ReplyTo = ""
			h.Corr = ""
			h.MAC = nil
			h.Prot = []string{"sig"}
			h.Sig = &sigParams{Ed25519, kid}
			h.To = []string{"a", "a"}
		}, ErrMalformed},
		{"too many recipients", func(h *wireHeader) { h.To = make([]string, MaxRecipients+1) }, ErrMalformed},
		{"topic with wildcard", func(h *wireHeader) { h.Topic = "a/#" }, ErrMalformed},
		{"topic with control", func(h *wireHeader) { h.Topic = "a\nb" }, ErrMalformed},
		{"topic with quote", func(h *wireHeader) { h.Topic = `a"b` }, ErrMalformed},
		{"topic with U+2028", func(h *wireHeader) { h.Topic = "a\u2028b" }, ErrMalformed},
		{"topic invalid utf-8", func(h *wireHeader) { h.Topic = "a\xffb" }, ErrMalformed},
		{"topic utf-8", func(h *wireHeader) { h.Topic = "türen/öffnen" }, nil},
		{"topic utf-8, then a wildcard", func(h *wireHeader) { h.Topic = "tür/+" }, ErrMalformed},
		{"topic utf-8, then a control", func(h *wireHeader) { h.Topic = "tür\x7f" }, ErrMalformed},
		{"topic utf-8, then U+2029", func(h *wireHeader) { h.Topic = "tür\u2029" }, ErrMalformed},
		{"topic utf-8, then invalid utf-8", func(h *wireHeader) { h.Topic = "tür\xc3" }, ErrMalformed},
		{"topic with DEL", func(h *wireHeader) { h.Topic = "a\x7f" }, ErrMalformed},
		{"topic with backslash", func(h *wireHeader) { h.Topic = `a\b` }, ErrMalformed},
		{"reply-to with wildcard", func(h *wireHeader) { h.ReplyTo = "r/+" }, ErrMalformed},
		{"topic too long", func(h *wireHeader) { h.Topic = strings.Repeat("t", MaxTopicLength+1) }, ErrMalformed},
		{"request without reply-to", func(h *wireHeader) { h.ReplyTo = "" }, ErrMalformed},
		{"reply with reply-to", func(h *wireHeader) { h.Kind = "rep"; h.Re = re }, ErrMalformed},
		{"request without correlation", func(h *wireHeader) { h.Corr = "" }, ErrMalformed},
		{"correlation not base64url", func(h *wireHeader) { h.Corr = "AA=A" }, ErrMalformed},
		{"correlation with line break", func(h *wireHeader) { h.Corr = "AAAAAAAAAAA\nAAAAAAAAAAA" }, ErrMalformed},
		{"correlation with stray bits", func(h *wireHeader) { h.Corr = "AAAAAAAAAAAAAAAAAAAAAB" }, ErrMalformed},
		{"correlation too long", func(h *wireHeader) { h.Corr = b64.EncodeToString(make([]byte, MaxCorrelation+1)) }, ErrMalformed},
		{"event with correlation", func(h *wireHeader) { h.Kind = "evt"; h.ReplyTo = "" }, ErrMalformed},
		{"reply without digest", func(h *wireHeader) { h.Kind = "rep"; h.ReplyTo = "" }, ErrMalformed},
		{"reply with short digest", func(h *wireHeader) { h.Kind = "rep"; h.ReplyTo = ""; h.Re = "AAAA" }, ErrMalformed},
		{"reply digest with line break", func(h *wireHeader) { h.Kind = "rep"; h.ReplyTo = ""; h.Re = re[:20] + "\r\n" + re[20:] }, ErrMalformed},
		{"request with digest", func(h *wireHeader) { h.Re = re }, ErrMalformed},
		{"counter zero", func(h *wireHeader) { h.Ctr = 0 }, ErrMalformed},
		{"negative iat", func(h *wireHeader) { h.Iat = -1 }, ErrMalformed},
		{"exp before iat", func(h *wireHeader) { h.Exp = h.Iat }, ErrMalformed},
		{"prot empty", func(h *wireHeader) { h.Prot = nil }, ErrMalformed},
		{"prot lists absent member", func(h *wireHeader) { h.Prot = []string{"hmac", "sig"} }, ErrMalformed},
		{"prot omits present member", func(h *wireHeader) { h.Sig = &sigParams{Ed25519, kid} }, ErrMalformed},
		{"prot out of order", func(h *wireHeader) { h.Sig = &sigParams{Ed25519, kid}; h.Prot = []string{"sig", "hmac"} }, ErrMalformed},
		{"prot duplicated", func(h *wireHeader) { h.Prot = []string{"hmac", "hmac"} }, ErrMalformed},
		{"unknown mac alg", func(h *wireHeader) { h.MAC.Alg = "HS1" }, ErrPolicy},
		{"bad kid", func(h *wireHeader) { h.MAC.Kid = "short" }, ErrMalformed},
		{"hotp code letters", func(h *wireHeader) { h.HOTP = &hotpParams{kid, "12345a"}; h.Prot = []string{"hmac", "hotp"} }, ErrMalformed},
		{"hotp code 7 digits", func(h *wireHeader) { h.HOTP = &hotpParams{kid, "1234567"}; h.Prot = []string{"hmac", "hotp"} }, ErrMalformed},
		{"sig alg none", func(h *wireHeader) { h.Sig = &sigParams{"none", kid}; h.Prot = []string{"hmac", "sig"} }, ErrPolicy},
		{"enc alg unknown", func(h *wireHeader) { h.Enc = &encParams{Alg: "A128CBC", Kid: kid}; h.Prot = []string{"enc", "hmac"} }, ErrPolicy},
		{"enc with kid and rcpt", func(h *wireHeader) {
			h.Enc = &encParams{Alg: A256GCM, Kid: kid, Rcpt: []wrappedKey{{HPKEX25519, kid, "AAAA"}}}
			h.Prot = []string{"enc", "hmac"}
		}, ErrMalformed},
		{"enc with neither", func(h *wireHeader) { h.Enc = &encParams{Alg: A256GCM}; h.Prot = []string{"enc", "hmac"} }, ErrMalformed},
		{"wrap alg unknown", func(h *wireHeader) {
			h.Enc = &encParams{Alg: A256GCM, Rcpt: []wrappedKey{{"RSA1_5", kid, "AAAA"}}}
			h.Prot = []string{"enc", "hmac"}
		}, ErrPolicy},
		{"wrapped key too long", func(h *wireHeader) {
			h.Enc = &encParams{Alg: A256GCM, Rcpt: []wrappedKey{{HPKEX25519, kid, strings.Repeat("A", 2000)}}}
			h.Prot = []string{"enc", "hmac"}
		}, ErrMalformed},
		{"wrapped key", func(h *wireHeader) {
			h.Enc = &encParams{Alg: A256GCM, Rcpt: []wrappedKey{{HPKEX25519, kid, "AAAA"}}}
			h.Prot = []string{"enc", "hmac"}
		}, nil},
		{"wrapped key with line break", func(h *wireHeader) {
			h.Enc = &encParams{Alg: A256GCM, Rcpt: []wrappedKey{{HPKEX25519, kid, "AA\rAA"}}}
			h.Prot = []string{"enc", "hmac"}
		}, ErrMalformed},
		{"wrapped key padded", func(h *wireHeader) {
			h.Enc = &encParams{Alg: A256GCM, Rcpt: []wrappedKey{{HPKEX25519, kid, "AA=="}}}
			h.Prot = []string{"enc", "hmac"}
		}, ErrMalformed},
		{"duplicate wrapped kid", func(h *wireHeader) {
			h.Enc = &encParams{Alg: A256GCM, Rcpt: []wrappedKey{{HPKEX25519, kid, "AAAA"}, {HPKEX25519, kid, "AAAA"}}}
			h.Prot = []string{"enc", "hmac"}
		}, ErrMalformed},
		{"hmac event to two", func(h *wireHeader) { h.Kind = "evt"; h.ReplyTo = ""; h.Corr = ""; h.To = []string{"a", "b"} }, ErrMalformed},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := validWire()
			tt.change(h)
			_, err := validateHeader(h, Version1)
			if !errors.Is(err, tt.want) || (tt.want == nil && err != nil) {
				t.Fatalf("validateHeader = %v, want %v", err, tt.want)
			}
		})
	}
}

func TestDecodeHeaderCanonical(t *testing.T) {
	good, err := encodeHeader(validWire())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := decodeHeader(good); err != nil {
		t.Fatalf("canonical header refused: %v", err)
	}
	s := string(good)
	variants := map[string]string{
		"leading space":   " " + s,
		"space after key": strings.Replace(s, `"kind":`, `"kind": `, 1),
		"case variant":    strings.Replace(s, `"kind"`, `"Kind"`, 1),
		"duplicate key":   strings.Replace(s, `"kind":"req",`, `"kind":"evt","kind":"req",`, 1),
		"unknown key":     strings.Replace(s, `"kind":"req",`, `"kind":"req","x":1,`, 1),
		"escaped char":    strings.Replace(s, `"client"`, `"\u0063lient"`, 1),
		"counter number":  strings.Replace(s, `"ctr":"7"`, `"ctr":7`, 1),
		"counter padded":  strings.Replace(s, `"ctr":"7"`, `"ctr":"07"`, 1),
		"float time":      strings.Replace(s, `"iat":1000`, `"iat":1000.0`, 1),
		"exponent time":   strings.Replace(s, `"iat":1000`, `"iat":1e3`, 1),
		"reordered":       strings.Replace(s, `"kind":"req","from":"client",`, `"from":"client","kind":"req",`, 1),
		"null to":         strings.Replace(s, `"to":["gateway"],`, `"to":null,`, 1),
		"trailing comma":  strings.Replace(s, `}}`, `},}`, 1),
		"not json":        "{",
	}
	for name, v := range variants {
		if v == s {
			t.Fatalf("%s: variant equals the canonical form", name)
		}
		if _, err := decodeHeader([]byte(v)); !errors.Is(err, ErrMalformed) {
			t.Errorf("%s: decodeHeader = %v, want ErrMalformed", name, err)
		}
	}
}

func TestKeyIDs(t *testing.T) {
	w := newWorld(t)
	// Ids are derived from the key and differ by algorithm and key.
	ids := map[string]string{}
	for name, id := range map[string]string{
		"hmac": w.hmac.KeyID(), "hotp": w.hotp.KeyID(), "psk": w.psk.KeyID(),
		"ed25519": w.ed.KeyID(), "es256": w.es.KeyID(), "ps256": w.ps.KeyID(), "rs256": w.rs.KeyID(),
		"x25519": w.x25519.KeyID(), "xwing": w.xwing.KeyID(), "rsa-oaep": w.rsaoaep.KeyID(),
	} {
		if !validKid(id) {
			t.Errorf("%s: key id %q is not 16 base64url characters", name, id)
		}
		if prev, dup := ids[id]; dup {
			t.Errorf("%s and %s share key id %s", name, prev, id)
		}
		ids[id] = name
	}
	// Same secret, same id; a sender's and a receiver's view agree.
	again := must[*HMACKey](t)(NewHMACKey(w.sec.HMAC))
	if again.KeyID() != w.hmac.KeyID() {
		t.Error("HMAC key id is not deterministic")
	}
	for i, id := range w.ids {
		r := []Recipient{w.x25519, w.xwing, w.rsaoaep}[i]
		if id.KeyID() != r.KeyID() {
			t.Errorf("identity %d and its recipient disagree on the key id", i)
		}
	}
	for i, v := range w.peer.Verifiers {
		s := []Signer{w.ed, w.es, w.ps, w.rs}[i]
		if v.KeyID() != s.KeyID() {
			t.Errorf("verifier %d and its signer disagree on the key id", i)
		}
	}
}
