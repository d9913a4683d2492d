package hotp

import (
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
)

// RFC 4226 Appendix D.
var rfcSecret = []byte("12345678901234567890")
var rfcCodes = []string{"755224", "287082", "359152", "969429", "338314", "254676", "287922", "162583", "399871", "520489"}

func rfcKey(t testing.TB) *Key {
	t.Helper()
	k, err := NewKey(rfcSecret, 6)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func TestRFC4226Vectors(t *testing.T) {
	k := rfcKey(t)
	for c, want := range rfcCodes {
		if got := k.Code(uint64(c)); got != want {
			t.Errorf("Code(%d) = %s, want %s", c, got, want)
		}
		if !k.Verify(want, uint64(c)) {
			t.Errorf("Verify(%s, %d) = false", want, c)
		}
		if k.Verify(want, uint64(c)+1) {
			t.Errorf("Verify(%s, %d) = true for the wrong counter", want, c+1)
		}
	}
}

func TestNewKey(t *testing.T) {
	tests := []struct {
		size, digits int
		err          error
	}{
		{15, 6, ErrSecretSize},
		{16, 6, nil},
		{20, 8, nil},
		{64, 6, nil},
		{65, 6, ErrSecretSize},
		{20, 7, ErrDigits},
		{20, 0, ErrDigits},
	}
	for _, tt := range tests {
		_, err := NewKey(make([]byte, tt.size), tt.digits)
		if !errors.Is(err, tt.err) {
			t.Errorf("NewKey(%d bytes, %d digits) = %v, want %v", tt.size, tt.digits, err, tt.err)
		}
	}
}

func TestNewKeyCopiesSecret(t *testing.T) {
	secret := append([]byte(nil), rfcSecret...)
	k, _ := NewKey(secret, 6)
	secret[0] ^= 0xff
	if got := k.Code(0); got != rfcCodes[0] {
		t.Fatalf("key changed with the caller's slice: %s", got)
	}
	out := k.Secret()
	out[0] ^= 0xff
	if got := k.Code(0); got != rfcCodes[0] {
		t.Fatalf("key changed through Secret(): %s", got)
	}
}

func TestParseKey(t *testing.T) {
	// "12345678901234567890" in base32.
	for _, s := range []string{
		"GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ",
		"gezdgnbvgy3tqojqgezdgnbvgy3tqojq",
		"GEZD GNBV GY3T QOJQ GEZD GNBV GY3T QOJQ",
	} {
		k, err := ParseKey(s, 6)
		if err != nil {
			t.Fatalf("ParseKey(%q): %v", s, err)
		}
		if k.Code(1) != rfcCodes[1] {
			t.Fatalf("ParseKey(%q) gives the wrong secret", s)
		}
	}
	// uhppoted's sample secret is 80 bits: below RFC 4226's 128-bit minimum.
	if _, err := ParseKey("DAIOJ9BJQHPC7JBZ", 6); !errors.Is(err, ErrSecretEncoding) {
		t.Errorf("ParseKey(invalid base32) = %v", err)
	}
	if _, err := ParseKey("DAIOJBJQHPC7JBZA", 6); !errors.Is(err, ErrSecretSize) {
		t.Errorf("ParseKey(80-bit) = %v, want ErrSecretSize", err)
	}
	if _, err := ParseKey("!!!!", 6); !errors.Is(err, ErrSecretEncoding) {
		t.Errorf("ParseKey(garbage) = %v", err)
	}
}

func TestVerifyStrictFormat(t *testing.T) {
	k := rfcKey(t)
	for _, code := range []string{"", " 755224", "755224 ", "75522", "7552244", "75522a", "+55224", "７55224"} {
		if k.Verify(code, 0) {
			t.Errorf("Verify(%q) = true", code)
		}
	}
}

func TestWindow(t *testing.T) {
	k := rfcKey(t)
	tests := []struct {
		name      string
		start     uint64
		lookAhead uint64
		codes     []string // presented in order
		want      []int64  // matched counter, or -1 for ErrInvalidCode
		next      uint64
	}{
		{"in order", 0, 2, rfcCodes[:3], []int64{0, 1, 2}, 3},
		{"resync within look-ahead", 0, 3, []string{rfcCodes[3]}, []int64{3}, 4},
		{"beyond look-ahead", 0, 2, []string{rfcCodes[3]}, []int64{-1}, 0},
		{"used code refused", 0, 5, []string{rfcCodes[1], rfcCodes[1]}, []int64{1, -1}, 2},
		{"older code refused after a newer one", 0, 5, []string{rfcCodes[4], rfcCodes[2]}, []int64{4, -1}, 5},
		{"below start refused", 5, 3, []string{rfcCodes[4]}, []int64{-1}, 5},
		{"malformed", 0, 3, []string{"abcdef", ""}, []int64{-1, -1}, 0},
		{"zero look-ahead uses default", 0, 0, []string{rfcCodes[DefaultLookAhead-1]}, []int64{DefaultLookAhead - 1}, DefaultLookAhead},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w := NewWindow(tt.start, tt.lookAhead)
			for i, code := range tt.codes {
				got, err := w.Verify(k, code)
				if tt.want[i] < 0 {
					if !errors.Is(err, ErrInvalidCode) {
						t.Fatalf("code %d: Verify = %d, %v; want ErrInvalidCode", i, got, err)
					}
					continue
				}
				if err != nil || got != uint64(tt.want[i]) {
					t.Fatalf("code %d: Verify = %d, %v; want %d", i, got, err, tt.want[i])
				}
			}
			if w.Next() != tt.next {
				t.Fatalf("Next = %d, want %d", w.Next(), tt.next)
			}
		})
	}
}

// Racing verifications of one code: exactly one wins.
func TestWindowConcurrentSingleUse(t *testing.T) {
	k := rfcKey(t)
	w := NewWindow(0, 5)
	var wg sync.WaitGroup
	var mu sync.Mutex
	wins := 0
	for range 16 {
		wg.Go(func() {
			if _, err := w.Verify(k, rfcCodes[2]); err == nil {
				mu.Lock()
				wins++
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	if wins != 1 {
		t.Fatalf("%d goroutines accepted one code", wins)
	}
}

func TestStringHidesSecret(t *testing.T) {
	k := rfcKey(t)
	for _, s := range []string{fmt.Sprint(k), fmt.Sprintf("%+v", k), fmt.Sprintf("%#v", k)} {
		if strings.Contains(s, "GEZD") || strings.Contains(s, "1234") {
			t.Fatalf("formatted key leaks the secret: %q", s)
		}
	}
}

func ExampleKey() {
	key, _ := NewKey([]byte("12345678901234567890"), 6)
	fmt.Println(key.Code(0), key.Verify("755224", 0), key.Verify("755224", 1))
	// Output: 755224 true false
}

func ExampleWindow() {
	key, _ := NewKey([]byte("12345678901234567890"), 6)
	w := NewWindow(0, 5)
	// Codes for counters 0 and 1 were lost; the one for counter 2 arrives.
	counter, err := w.Verify(key, key.Code(2))
	fmt.Println(counter, err, w.Next())
	_, err = w.Verify(key, key.Code(2))
	fmt.Println(err)
	// Output:
	// 2 <nil> 3
	// hotp: invalid code
}

func BenchmarkCode(b *testing.B) {
	k := rfcKey(b)
	for b.Loop() {
		k.Code(12345)
	}
}
