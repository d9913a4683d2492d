package enroll

import (
	"strings"
	"testing"
	"time"
)

// TestParseCode: codes as SPEC.md §14.2 writes them, and what is not one.
func TestParseCode(t *testing.T) {
	fp := Fingerprint([]byte("a key"))
	pop := DerivePoP([]byte("a seed"), 7)
	good := Code{ID: "door-7", Fingerprint: fp, PoP: pop}.Text()
	f64, p64 := b64.EncodeToString(fp[:]), b64.EncodeToString(pop[:])
	if good != "mqttsec-enroll:1:door-7:"+f64+":"+p64 || len(f64) != 43 || len(p64) != 22 {
		t.Fatalf("code %q", good)
	}
	long := strings.Repeat("a", 128)
	for _, tc := range []struct {
		name, text string
		id         string // "" for a refusal
	}{
		{"good", good, "door-7"},
		{"an id with colons", "mqttsec-enroll:1:site:door:7:" + f64 + ":" + p64, "site:door:7"},
		{"an id of 128 bytes", "mqttsec-enroll:1:" + long + ":" + f64 + ":" + p64, long},
		{"an id of 129 bytes", "mqttsec-enroll:1:" + long + "a:" + f64 + ":" + p64, ""},
		{"an empty id", "mqttsec-enroll:1::" + f64 + ":" + p64, ""},
		{"an id with a space", "mqttsec-enroll:1:door 7:" + f64 + ":" + p64, ""},
		{"version 2", strings.Replace(good, ":1:", ":2:", 1), ""},
		{"version 01", strings.Replace(good, ":1:", ":01:", 1), ""},
		{"another scheme", strings.Replace(good, "mqttsec-enroll", "mqttsec-enrol", 1), ""},
		{"upper case", strings.ToUpper(good[:14]) + good[14:], ""},
		{"no PoP", "mqttsec-enroll:1:door-7:" + f64, ""},
		{"no fields", "mqttsec-enroll:1", ""},
		{"nothing", "", ""},
		{"padded", "mqttsec-enroll:1:door-7:" + f64 + "=:" + p64 + "==", ""},
		{"standard base64", "mqttsec-enroll:1:door-7:+" + f64[1:] + ":" + p64, ""},
		{"a PoP too short", good[:len(good)-1], ""},
		{"a PoP too long", good + "A", ""},
		{"a PoP with trailing bits", good[:len(good)-1] + string(rune(p64[21]+1)), ""},
		{"a line end", good + "\n", ""},
		{"a space before", " " + good, ""},
		{"an extra field", good + ":", ""},
		{"too long", "mqttsec-enroll:1:" + strings.Repeat("a", 300), ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, err := ParseCode(tc.text)
			if tc.id == "" {
				wantClass(t, "ParseCode", err, ErrMalformed)
				if c != (Code{}) {
					t.Fatal("a refused code returned fields")
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if c.ID != tc.id || c.Fingerprint != fp || c.PoP != pop || c.Text() != tc.text {
				t.Fatalf("%+v", c)
			}
		})
	}
}

// TestApprovalPayload: the payload of SPEC.md §14.3 both ways.
func TestApprovalPayload(t *testing.T) {
	a := &Approval{ID: "door-7", Fingerprint: Fingerprint([]byte("k")), PoP: DerivePoP([]byte("s"), 1),
		Template: "door", Assign: "lobby-7", TTL: 90 * time.Second}
	b, err := a.MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	want := "\x01\x06door-7" + string(a.Fingerprint[:]) + string(a.PoP[:]) + "\x04door\x07lobby-7\x00\x00\x00\x5a"
	if string(b) != want {
		t.Fatalf("payload %x", b)
	}
	got, err := ParseApproval(b)
	if err != nil || *got != *a {
		t.Fatalf("%+v, %v", got, err)
	}
	if got.AssignedID() != "lobby-7" || (&Approval{ID: "x"}).AssignedID() != "x" {
		t.Fatal("AssignedID")
	}
	for _, tc := range []struct {
		name string
		edit func(*Approval)
		ok   bool
	}{
		{"ttl 0", func(a *Approval) { a.TTL = 0 }, true},
		{"ttl 1 s", func(a *Approval) { a.TTL = time.Second }, true},
		{"ttl 3600 s", func(a *Approval) { a.TTL = time.Hour }, true},
		{"ttl 3601 s", func(a *Approval) { a.TTL = time.Hour + time.Second }, false},
		{"ttl 1.5 s", func(a *Approval) { a.TTL = 1500 * time.Millisecond }, false},
		{"ttl negative", func(a *Approval) { a.TTL = -time.Second }, false},
		{"no assign", func(a *Approval) { a.Assign = "" }, true},
		{"id not valid", func(a *Approval) { a.ID = "door/7" }, false},
		{"no id", func(a *Approval) { a.ID = "" }, false},
		{"assign not valid", func(a *Approval) { a.Assign = "lobby 7" }, false},
		{"no template", func(a *Approval) { a.Template = "" }, false},
		{"template not valid", func(a *Approval) { a.Template = "door#" }, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := *a
			tc.edit(&c)
			b, err := c.MarshalBinary()
			if !tc.ok {
				wantClass(t, "MarshalBinary", err, ErrBadRequest)
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got, err := ParseApproval(b); err != nil || *got != c {
				t.Fatalf("%+v, %v", got, err)
			}
		})
	}
	for name, p := range map[string][]byte{
		"empty":      nil,
		"version 2":  append([]byte{2}, b[1:]...),
		"cut":        b[:len(b)-1],
		"trailing":   append(b[:len(b):len(b)], 0),
		"ttl 3601 s": append(b[:len(b)-4:len(b)-4], 0, 0, 0x0e, 0x11),
		"ttl 2^32-1": append(b[:len(b)-4:len(b)-4], 0xff, 0xff, 0xff, 0xff),
		"id too long": append(append([]byte{1, 129}, strings.Repeat("a", 129)...),
			b[8:]...),
	} {
		if _, err := ParseApproval(p); Class(err) != ErrBadRequest {
			t.Errorf("%s: %v", name, err)
		}
	}
}
