package main

import (
	"bytes"
	"context"
	"flag"
	"fmt"
	"io"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/mqttsec/mqttsec/internal/cli"
	"github.com/mqttsec/mqttsec/internal/testbroker"
)

// sizeOf reads the request size a sized plain row reports.
func sizeOf(t *testing.T, r Row) int {
	t.Helper()
	var n int
	format := "plain Paho with %d-byte requests"
	if strings.Contains(r.Name, "floor") {
		format = "plain Paho with %d-byte messages"
	}
	if _, err := fmt.Sscanf(r.Extra, format, &n); err != nil {
		t.Fatalf("%s: no size in %q: %v", r.Name, r.Extra, err)
	}
	return n
}

// comparedWith reports whether row r's note compares its throughput with
// the row named other.
func comparedWith(r Row, other string) bool {
	return strings.Contains(r.Extra, "× slower than "+other) || strings.Contains(r.Extra, "× faster than "+other)
}

// TestRelative: a ratio under 1 is said as faster, by its inverse.
func TestRelative(t *testing.T) {
	for _, tt := range []struct {
		ratio float64
		want  string
	}{{1.1, "1.10× slower than x"}, {1, "1.00× slower than x"}, {0.8, "1.25× faster than x"}} {
		if got := relative(tt.ratio, "x"); got != tt.want {
			t.Errorf("relative(%v) = %q, want %q", tt.ratio, got, tt.want)
		}
	}
}

// The bench command produces every kind of row, each with its reference,
// on the embedded broker (short durations: this checks the rows, it does
// not measure).
func TestBenchRows(t *testing.T) {
	flag.Set("test.benchtime", "20ms")
	defer flag.Set("test.benchtime", "1s")
	b, err := testbroker.Start("127.0.0.1:0", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	opt := options{
		duration: 10 * time.Millisecond, broker: b.URL(), inFlight: 4, rounds: 2,
		filter: regexp.MustCompile(`^(envelope/(hmac|ed25519)/256/|roundtrip/v[35]/(plain|plain-envelope-size|hmac|hmac-floor|psk|psk-floor|ed25519|ed25519-floor)$|replay/(memory|file))`),
	}
	rows, err := run(context.Background(), opt)
	if err != nil {
		t.Fatal(err)
	}
	byName := map[string]Row{}
	for _, r := range rows {
		byName[r.Name] = r
	}
	for _, name := range []string{
		"envelope/hmac/256/seal", "envelope/hmac/256/open", "envelope/ed25519/256/seal", "envelope/ed25519/256/open",
		"roundtrip/v3/hmac", "roundtrip/v5/hmac", "roundtrip/v3/plain-envelope-size", "roundtrip/v5/plain-envelope-size",
		"roundtrip/v3/hmac-floor", "roundtrip/v5/hmac-floor", "roundtrip/v3/psk-floor", "roundtrip/v5/psk-floor",
		"roundtrip/v3/ed25519-floor", "roundtrip/v5/ed25519-floor",
	} {
		r, ok := byName[name]
		if !ok {
			t.Fatalf("no row %s in %v", name, rows)
		}
		if r.Ref == "" || r.Ratio <= 0 {
			t.Errorf("%s has no reference ratio: %+v", name, r)
		}
		if _, ok := byName[r.Ref]; !ok {
			t.Errorf("%s refers to a missing row %s", name, r.Ref)
		}
	}
	for _, name := range []string{"roundtrip/v3/hmac", "roundtrip/v5/hmac", "roundtrip/v3/ed25519", "roundtrip/v5/ed25519"} {
		if r := byName[name]; r.PrimitivesUs <= 0 || r.AddedOverPrimitives == 0 || r.P50Us <= 0 || r.RatioSameSize <= 0 || !comparedWith(r, "plain-envelope-size") ||
			!strings.Contains(r.Extra, "p99 ") {
			t.Errorf("%s lacks its latency or same-size comparison: %+v", name, r)
		}
	}
	// The floor rows carry the envelope length and run their suite's
	// primitives; that suite's rows are compared with them.
	for _, v := range []string{"3", "5"} {
		for _, suite := range []string{"hmac", "psk", "ed25519"} {
			floor, ok := byName["roundtrip/v"+v+"/"+suite+"-floor"]
			if !ok {
				t.Fatalf("no %s-floor row over MQTT v%s", suite, v)
			}
			row := byName["roundtrip/v"+v+"/"+suite]
			if floor.PrimitivesUs <= 0 || floor.PrimitivesUs != row.PrimitivesUs || floor.P50Us <= 0 {
				t.Errorf("floor row lacks %s's primitives or its latency: %+v", suite, floor)
			}
			if row.RatioFloor <= 0 || !comparedWith(row, suite+"-floor") {
				t.Errorf("%s is not compared with its floor: %+v", row.Name, row)
			}
		}
		hmacFloor, edFloor := byName["roundtrip/v"+v+"/hmac-floor"], byName["roundtrip/v"+v+"/ed25519-floor"]
		if sizeOf(t, hmacFloor) != sizeOf(t, byName["roundtrip/v"+v+"/plain-envelope-size"]) {
			t.Errorf("floor and sized plain rows differ in size: %+v", hmacFloor)
		}
		// An Ed25519 signature is 64 bytes, an HMAC tag 32: each floor
		// carries its own suite's envelope.
		if sizeOf(t, edFloor) <= sizeOf(t, hmacFloor) {
			t.Errorf("ed25519 floor %d bytes, HMAC floor %d", sizeOf(t, edFloor), sizeOf(t, hmacFloor))
		}
	}
	// Where the platform tells CPU time, each round-trip row has its CPU
	// per round trip, and each compared row its ratio to plain's.
	if _, ok := processCPU(); ok {
		for _, r := range rows {
			if !strings.HasPrefix(r.Name, "roundtrip/") {
				continue
			}
			if r.CPUUsPerOp <= 0 || (r.Ref != "" && r.CPURatio <= 0) {
				t.Errorf("%s lacks its CPU per round trip: %+v", r.Name, r)
			}
		}
	}
	// The sized plain rows carry more bytes than plain, and say how many.
	for _, v := range []string{"3", "5"} {
		if r := byName["roundtrip/v"+v+"/plain-envelope-size"]; !strings.Contains(r.Extra, "-byte requests") || r.P50Us <= 0 {
			t.Errorf("sized plain row lacks its size or latency: %+v", r)
		}
	}
	for _, name := range []string{"roundtrip/v3/plain", "roundtrip/v5/plain", "replay/memory", "replay/file"} {
		if r, ok := byName[name]; !ok || r.OpsPerSec <= 0 {
			t.Errorf("row %s missing or empty: %+v", name, r)
		}
	}
	// Memory per sender grows with the window (8 bytes per 64 counters).
	for _, store := range []string{"memory", "file"} {
		small, large := byName["replay/"+store+"/bytes-per-sender/window=64"], byName["replay/"+store+"/bytes-per-sender/window=1024"]
		if small.BytesPerSender <= 0 || large.BytesPerSender <= small.BytesPerSender {
			t.Errorf("%s store: %.0f bytes per sender with a 64-wide window, %.0f with 1024", store, small.BytesPerSender, large.BytesPerSender)
		}
	}
}

// -h prints bench's own flags to stdout, without the testing package's.
func TestBenchHelp(t *testing.T) {
	for _, args := range [][]string{{"-h"}, {"--help"}} {
		var out, errOut bytes.Buffer
		fs := newFlagSet(&errOut)
		fs.Duration("duration", time.Second, "time per row")
		help, err := cli.Parse(fs, args, &out)
		if !help || err != nil || !strings.HasPrefix(out.String(), "usage: bench") || !strings.Contains(out.String(), "-duration") || errOut.Len() != 0 {
			t.Fatalf("bench %q = %v, %v; stdout %q, stderr %q", args, help, err, out.String(), errOut.String())
		}
		if strings.Contains(out.String(), "test.") {
			t.Fatalf("bench %q lists the testing flags:\n%s", args, out.String())
		}
	}
	// They are still accepted.
	old := flag.Lookup("test.benchtime").Value.String()
	defer flag.Set("test.benchtime", old)
	fs := newFlagSet(io.Discard)
	if _, err := cli.Parse(fs, []string{"-test.benchtime", "20ms"}, io.Discard); err != nil {
		t.Fatal(err)
	}
}
