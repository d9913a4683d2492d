package aesgcm

import (
	"bytes"
	"crypto/aes"
	"crypto/cipher"
	"errors"
	"fmt"
	"testing"
)

func testKey(t testing.TB) *Key {
	t.Helper()
	k, err := NewKey(bytes.Repeat([]byte{7}, KeySize))
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func TestNewKeySize(t *testing.T) {
	for _, n := range []int{0, 16, 24, 31, 33, 64} {
		if _, err := NewKey(make([]byte, n)); !errors.Is(err, ErrKeySize) {
			t.Errorf("NewKey(%d bytes) = %v, want ErrKeySize", n, err)
		}
	}
}

func TestRoundTrip(t *testing.T) {
	k := testKey(t)
	for _, n := range []int{0, 1, 15, 16, 17, 4096} {
		pt := bytes.Repeat([]byte{0xab}, n)
		ct, err := k.Seal(nil, pt, []byte("aad"))
		if err != nil {
			t.Fatal(err)
		}
		if len(ct) != n+Overhead {
			t.Fatalf("len(ct) = %d, want %d", len(ct), n+Overhead)
		}
		got, err := k.Open(nil, ct, []byte("aad"))
		if err != nil || !bytes.Equal(got, pt) {
			t.Fatalf("Open = %x, %v; want %x", got, err, pt)
		}
	}
}

// The sealed form is nonce || standard GCM output, so any AES-GCM
// implementation (a firmware port) can open it.
func TestWireFormatIsPlainGCM(t *testing.T) {
	raw := bytes.Repeat([]byte{7}, KeySize)
	k, err := NewKey(raw)
	if err != nil {
		t.Fatal(err)
	}
	ct, err := k.Seal(nil, []byte("hello"), []byte("hdr"))
	if err != nil {
		t.Fatal(err)
	}
	block, err := aes.NewCipher(raw)
	if err != nil {
		t.Fatal(err)
	}
	gcm, err := cipher.NewGCM(block)
	if err != nil {
		t.Fatal(err)
	}
	pt, err := gcm.Open(nil, ct[:NonceSize], ct[NonceSize:], []byte("hdr"))
	if err != nil || string(pt) != "hello" {
		t.Fatalf("plain GCM open = %q, %v", pt, err)
	}
}

func TestNoncesDiffer(t *testing.T) {
	k := testKey(t)
	seen := map[string]bool{}
	for range 1000 {
		ct, err := k.Seal(nil, nil, nil)
		if err != nil {
			t.Fatal(err)
		}
		n := string(ct[:NonceSize])
		if seen[n] {
			t.Fatal("nonce repeated")
		}
		seen[n] = true
	}
}

func TestOpenRejects(t *testing.T) {
	k := testKey(t)
	other, err := NewKey(bytes.Repeat([]byte{8}, KeySize))
	if err != nil {
		t.Fatal(err)
	}
	ct, err := k.Seal(nil, []byte("payload"), []byte("aad"))
	if err != nil {
		t.Fatal(err)
	}
	flip := func(i int) []byte {
		c := bytes.Clone(ct)
		c[i] ^= 1
		return c
	}
	tests := []struct {
		name   string
		key    *Key
		sealed []byte
		aad    []byte
	}{
		{"empty", k, nil, []byte("aad")},
		{"short", k, ct[:Overhead-1], []byte("aad")},
		{"nonce flipped", k, flip(0), []byte("aad")},
		{"ciphertext flipped", k, flip(NonceSize), []byte("aad")},
		{"tag flipped", k, flip(len(ct) - 1), []byte("aad")},
		{"truncated", k, ct[:len(ct)-1], []byte("aad")},
		{"wrong aad", k, ct, []byte("aaD")},
		{"missing aad", k, ct, nil},
		{"wrong key", other, ct, []byte("aad")},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if pt, err := tt.key.Open(nil, tt.sealed, tt.aad); !errors.Is(err, ErrOpen) || pt != nil {
				t.Fatalf("Open = %q, %v; want nil, ErrOpen", pt, err)
			}
		})
	}
}

func TestMessageLimit(t *testing.T) {
	k := testKey(t)
	k.sealed.Store(MaxMessagesPerKey - 1)
	if _, err := k.Seal(nil, nil, nil); err != nil {
		t.Fatalf("last permitted Seal: %v", err)
	}
	if _, err := k.Seal(nil, nil, nil); !errors.Is(err, ErrKeyExhausted) {
		t.Fatalf("Seal past limit = %v, want ErrKeyExhausted", err)
	}
}

func TestStringHidesKey(t *testing.T) {
	k := testKey(t)
	for _, s := range []string{fmt.Sprint(k), fmt.Sprintf("%v", k), fmt.Sprintf("%+v", k), fmt.Sprintf("%#v", k)} {
		if bytes.Contains([]byte(s), bytes.Repeat([]byte{7}, 4)) || bytes.Contains([]byte(s), []byte("0707")) {
			t.Fatalf("String leaks key: %q", s)
		}
	}
}

func ExampleKey() {
	key, err := NewKey(GenerateKey())
	if err != nil {
		panic(err)
	}
	sealed, err := key.Seal(nil, []byte("open the door"), []byte("header"))
	if err != nil {
		panic(err)
	}
	plain, err := key.Open(nil, sealed, []byte("header"))
	fmt.Println(string(plain), err, len(sealed)-len(plain) == Overhead)
	// Output: open the door <nil> true
}

func BenchmarkSeal256(b *testing.B) {
	k := testKey(b)
	pt := make([]byte, 256)
	buf := make([]byte, 0, 256+Overhead)
	b.SetBytes(256)
	for b.Loop() {
		k.Seal(buf[:0], pt, []byte("aad"))
	}
}
