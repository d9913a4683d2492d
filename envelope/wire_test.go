package envelope

import (
	"encoding/base64"
	"errors"
	"strings"
	"testing"
)

// strictB64 and decodeMember accept exactly what Go's strict base64url
// decoder accepts, minus the CR and LF it skips: every string of up to
// three characters over an alphabet that covers each class of byte (the
// last character's unused bits included), and a few longer ones.
func TestStrictB64MatchesTheStrictDecoder(t *testing.T) {
	alphabet := "ABCEIQgw_-9z=\r\n .+/\x00\xff" // A B C E I Q g w: values 0, 1, 2, 4, 8, 16, 32, 48
	inputs := []string{"", "AAAA", "AAAAAA", "AAAAAB", "AAAAAAA", "AAAAAAE", "AAAA\nAAAA", "AAAA\r\n", strings.Repeat("_-", 500)}
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
		_, err := base64.RawURLEncoding.Strict().DecodeString(in)
		want := err == nil && !strings.ContainsAny(in, "\r\n")
		if got := strictB64(in); got != want {
			t.Errorf("strictB64(%q) = %v, want %v", in, got, want)
		}
		if got := strictB64([]byte(in)); got != want {
			t.Errorf("strictB64([]byte(%q)) = %v, want %v", in, got, want)
		}
		if _, err := decodeMember(in); (err == nil) != want {
			t.Errorf("decodeMember(%q) = %v, want ok %v", in, err, want)
		} else if err != nil && !errors.Is(err, ErrMalformed) {
			t.Errorf("decodeMember(%q) = %v, want ErrMalformed", in, err)
		}
	}
}
