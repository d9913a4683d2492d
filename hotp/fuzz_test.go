package hotp

import "testing"

// FuzzParseKey: ParseKey never panics, and a key it accepts round-trips
// through Secret and produces well-formed codes that verify.
func FuzzParseKey(f *testing.F) {
	f.Add("GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ", 6)
	f.Add("gezd gnbv gy3t qojq gezd gnbv gy3t qojq====", 8)
	f.Add("DAIOJ9BJQHPC7JBZ", 6)
	f.Fuzz(func(t *testing.T, s string, digits int) {
		k, err := ParseKey(s, digits)
		if err != nil {
			return
		}
		again, err := NewKey(k.Secret(), digits)
		if err != nil {
			t.Fatalf("secret of an accepted key refused: %v", err)
		}
		code := k.Code(99)
		if again.Code(99) != code || !k.Verify(code, 99) || len(code) != digits {
			t.Fatalf("inconsistent key: code %q", code)
		}
	})
}
