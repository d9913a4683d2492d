package envelope

import (
	"errors"
	"testing"

	"github.com/mqttsec/mqttsec/internal/b64url"
)

// decodeMember accepts what b64url accepts (its own test holds that to Go's
// strict decoder) and refuses the rest as malformed, line breaks included.
func TestDecodeMember(t *testing.T) {
	for _, in := range []string{"", "AAAA", "AAAAAA", "AAAAAB", "AAAAAAA", "AAAAAAE", "AAAA\nAAAA", "AAAA\r\n", "AA==", "A", "AB+/", "lWJvfR_0CRz2r2wsxz-0Tw"} {
		want := b64url.Valid(in)
		if _, err := decodeMember(in); (err == nil) != want {
			t.Errorf("decodeMember(%q) = %v, want ok %v", in, err, want)
		} else if err != nil && !errors.Is(err, ErrMalformed) {
			t.Errorf("decodeMember(%q) = %v, want ErrMalformed", in, err)
		}
	}
}
