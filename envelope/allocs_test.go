//go:build !race

package envelope

import (
	"slices"
	"testing"
)

// allocBounds are the allocations per message of Seal, SealInto (into a
// buffer with room) and Open, for a 256-byte request of each suite, as
// measured (Go 1.26, linux/amd64) when Envelope 1.0 was written. An
// allocation added to the hot path fails here instead of going unnoticed
// in a benchmark; one removed should lower the bound. Most of the
// public-key suites' allocations are the standard library's (ECDSA, HPKE,
// RSA), so a Go release may move those.
//
// Before Envelope 1.0 (the compact form, version 3, then the default),
// the bounds were hmac 3/3, psk 4/4, hmac+psk 4/4 and hmac+hotp 15/15
// (seal/open), SealInto one under Seal; the public-key suites had none.
var allocBounds = map[string]struct{ seal, sealInto, open float64 }{
	"hmac":                {3, 4, 3},
	"hmac+hotp":           {14, 15, 14},
	"ed25519":             {5, 6, 4},
	"es256":               {66, 67, 25},
	"ps256":               {12, 13, 18},
	"psk":                 {3, 4, 3},
	"hmac+psk":            {3, 4, 3},
	"ed25519+hpke-x25519": {112, 113, 107},
	"ed25519+hpke-xwing":  {93, 94, 86},
	"ps256+rsa-oaep":      {33, 34, 30},
	"hmac+hpke-x25519":    {110, 111, 106},
	"everything":          {284, 285, 118},
}

// TestAllocations holds Seal, SealInto and Open of every suite to the
// allocations they make per message. The race detector changes allocation
// counts, so this file is left out of race builds.
func TestAllocations(t *testing.T) {
	for _, s := range suites() {
		t.Run(s.name, func(t *testing.T) {
			bound, ok := allocBounds[s.name]
			if !ok {
				t.Fatalf("no allocation bound for suite %q", s.name)
			}
			seal, sealInto, open := measureAllocs(t, s)
			t.Logf("%-20s seal %v, seal into a buffer %v, open %v", s.name, seal, sealInto, open)
			if seal > bound.seal || sealInto > bound.sealInto || open > bound.open {
				t.Errorf("allocations per message: seal %v, seal into a buffer %v, open %v; want at most %v, %v and %v",
					seal, sealInto, open, bound.seal, bound.sealInto, bound.open)
			}
		})
	}
}

// TestSealIntoSavesAnAllocation: SealInto into a buffer with room exists
// to save Seal's allocation of the envelope (before Envelope 1.0 it did,
// in every form).
func TestSealIntoSavesAnAllocation(t *testing.T) {
	for _, s := range suites() {
		if !slices.Contains([]string{"hmac", "hmac+hotp", "psk", "hmac+psk"}, s.name) {
			continue // the symmetric suites: public-key work allocates as it will
		}
		t.Run(s.name, func(t *testing.T) {
			seal, sealInto, _ := measureAllocs(t, s)
			if sealInto > seal-1 {
				t.Errorf("SealInto into a buffer with room allocates %v times, Seal %v: it should save the envelope's allocation", sealInto, seal)
			}
		})
	}
}

// measureAllocs returns the allocations per message of Seal, SealInto and
// Open for a 256-byte request of suite s.
func measureAllocs(t *testing.T, s suite) (seal, sealInto, open float64) {
	w := newWorld(t)
	w.peer.Policy = Policy{Require: s.require}
	p := w.request("get-card")
	s.apply(w, p)
	sealer := w.sealer()
	o := w.opener()
	o.Replay = admitAllStore{}
	payload := make([]byte, 256)
	var sealed *Sealed
	var failed error
	seal = testing.AllocsPerRun(100, func() {
		var err error
		if sealed, err = sealer.Seal(p, payload); err != nil {
			failed = err
		}
	})
	// Sealed into a buffer reused from one message to the next, the
	// envelope takes no allocation of its own.
	buf := make([]byte, 0, 8192)
	sealInto = testing.AllocsPerRun(100, func() {
		if _, err := sealer.SealInto(buf, p, payload); err != nil {
			failed = err
		}
	})
	open = testing.AllocsPerRun(100, func() {
		if _, err := o.Open(ctx, sealed.Bytes, expectRequest); err != nil {
			failed = err
		}
	})
	if failed != nil {
		t.Fatal(failed)
	}
	return seal, sealInto, open
}
