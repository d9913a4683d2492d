package b64url

import (
	"encoding/base64"
	"errors"
	"strings"
	"testing"
)

// Valid, DecodeString and AppendDecodeString accept exactly what Go's strict base64url decoder
// accepts, minus the CR and LF it skips: every string of up to three
// characters over an alphabet that covers each class of byte (the last
// character's unused bits included), and a few longer ones.
func TestValidMatchesTheStrictDecoder(t *testing.T) {
	alphabet := "ABCEIQgw_-9z=\r\n .+/\x00\xff" // A B C E I Q g w: values 0, 1, 2, 4, 8, 16, 32, 48
	inputs := []string{"", "AAAA", "AAAAAA", "AAAAAB", "AAAAAAA", "AAAAAAE", "AAAA\nAAAA", "AAAA\r\n", strings.Repeat("_-", 500), strings.Repeat("A", 128), strings.Repeat("A", 131)}
	var grow func(prefix string, n int)
	grow = func(prefix string, n int) {
		inputs = append(inputs, prefix)
		if n == 0 {
			return
		}
		for i := 0; i < len(alphabet); i++ {
			grow(prefix+alphabet[i:i+1], n-1)
		}
	}
	grow("", 3)
	for _, in := range inputs {
		wantValue, err := base64.RawURLEncoding.Strict().DecodeString(in)
		want := err == nil && !strings.ContainsAny(in, "\r\n")
		if got := Valid(in); got != want {
			t.Errorf("Valid(%q) = %v, want %v", in, got, want)
		}
		if got := Valid([]byte(in)); got != want {
			t.Errorf("Valid([]byte(%q)) = %v, want %v", in, got, want)
		}
		got, err := DecodeString(in)
		switch {
		case (err == nil) != want:
			t.Errorf("DecodeString(%q) = %v, want ok %v", in, err, want)
		case err != nil && !errors.Is(err, ErrInvalid):
			t.Errorf("DecodeString(%q) = %v, want ErrInvalid", in, err)
		case err == nil && string(got) != string(wantValue):
			t.Errorf("DecodeString(%q) = %x, want %x", in, got, wantValue)
		}
		checkAppendDecode(t, in, wantValue, want)
	}
}

// checkAppendDecode holds AppendDecodeString to the strict decoder's value
// (valid says whether in is strict base64url): it appends exactly that to
// what dst held, or returns ErrInvalid and dst unchanged.
func checkAppendDecode(t *testing.T, in string, value []byte, valid bool) {
	t.Helper()
	prefix := []byte("kept")
	got, err := AppendDecodeString(prefix, in)
	switch {
	case (err == nil) != valid:
		t.Errorf("AppendDecodeString(%q) = %v, want ok %v", in, err, valid)
	case err != nil && (!errors.Is(err, ErrInvalid) || string(got) != "kept"):
		t.Errorf("AppendDecodeString(%q) = %q, %v; want \"kept\", ErrInvalid", in, got, err)
	case err == nil && string(got) != "kept"+string(value):
		t.Errorf("AppendDecodeString(%q) = %x, want \"kept\" then %x", in, got, value)
	}
}

func TestIsChar(t *testing.T) {
	const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
	for c := range 256 {
		if got, want := IsChar(byte(c)), strings.IndexByte(alphabet, byte(c)) >= 0; got != want {
			t.Errorf("IsChar(%q) = %v, want %v", byte(c), got, want)
		}
	}
}

// FuzzDecodeString holds Valid, DecodeString and AppendDecodeString to Go's
// strict decoder, which differs only in skipping line breaks.
func FuzzDecodeString(f *testing.F) {
	for _, s := range []string{"", "AAAA", "AAAAAB", "AAAAAAE", "AA\nAA", "AA==", "+/", "_-_-", "A"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, in string) {
		want, err := base64.RawURLEncoding.Strict().DecodeString(in)
		ok := err == nil && !strings.ContainsAny(in, "\r\n")
		if vs, vb := Valid(in), Valid([]byte(in)); vs != ok || vb != ok {
			t.Fatalf("Valid(%q) = %v (string), %v ([]byte), want %v", in, vs, vb, ok)
		}
		got, err := DecodeString(in)
		if (err == nil) != ok {
			t.Fatalf("DecodeString(%q) = %v, want ok %v", in, err, ok)
		}
		if err != nil && !errors.Is(err, ErrInvalid) {
			t.Fatalf("DecodeString(%q) = %v, want ErrInvalid", in, err)
		}
		if ok && string(got) != string(want) {
			t.Fatalf("DecodeString(%q) = %x, want %x", in, got, want)
		}
		checkAppendDecode(t, in, want, ok)
		if ok && base64.RawURLEncoding.EncodeToString(got) != in {
			t.Fatalf("%q is not the only encoding of its value", in)
		}
	})
}
