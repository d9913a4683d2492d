package envelope

import (
	"errors"
	"testing"

	"github.com/mqttsec/mqttsec/internal/b64url"
)

// decodeInto accepts what b64url accepts (its own test holds that to Go's
// strict decoder) and refuses the rest as malformed, line breaks included.
func TestDecodeInto(t *testing.T) {
	for _, in := range []string{"", "AAAA", "AAAAAA", "AAAAAB", "AAAAAAA", "AAAAAAE", "AAAA\nAAAA", "AAAA\r\n", "AA==", "A", "AB+/", "lWJvfR_0CRz2r2wsxz-0Tw"} {
		want := b64url.Valid(in)
		if _, err := decodeInto(nil, in, 64); (err == nil) != want {
			t.Errorf("decodeInto(%q) = %v, want ok %v", in, err, want)
		} else if err != nil && !errors.Is(err, ErrMalformed) {
			t.Errorf("decodeInto(%q) = %v, want ErrMalformed", in, err)
		}
	}
}
