package main

import "testing"

// The demo is also a test: every protection set round-trips and every
// attack is refused with the expected class.
func TestDemo(t *testing.T) {
	if err := run(); err != nil {
		t.Fatal(err)
	}
}
