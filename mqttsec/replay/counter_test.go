package replay

import (
	"errors"
	"fmt"
	"hash/crc32"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/mqttsec/mqttsec/envelope"
)

func TestFileCounterNeverGoesBack(t *testing.T) {
	path := filepath.Join(t.TempDir(), "counter")
	c, err := CreateFileCounter(path, 1, 10)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := CreateFileCounter(path, 1, 10); err == nil {
		t.Fatal("an existing counter file was overwritten")
	}
	seen := map[uint64]bool{}
	var last uint64
	take := func(c *FileCounter, n int) {
		for range n {
			v, err := c.Next()
			if err != nil {
				t.Fatal(err)
			}
			if seen[v] || v <= last {
				t.Fatalf("counter %d after %d", v, last)
			}
			seen[v], last = true, v
		}
	}
	take(c, 25)
	// A crash: the process ends without any shutdown (the kernel closes
	// its files, dropping the lock); start again, twice.
	for range 2 {
		c.lock.Close()
		c, err = OpenFileCounter(path, 10)
		if err != nil {
			t.Fatal(err)
		}
		take(c, 7)
	}
	// Writes per block, not per message: 25 counters in blocks of 10 need
	// 3 reservations; resuming skips at most one block.
	if last > 25+7+7+2*10 {
		t.Fatalf("counters ran ahead too far: %d", last)
	}
}

func TestFileCounterRefusesLossAndDamage(t *testing.T) {
	dir := t.TempDir()
	if _, err := OpenFileCounter(filepath.Join(dir, "none"), 0); !errors.Is(err, ErrMissing) {
		t.Fatalf("missing file: %v", err)
	}
	if _, err := CreateFileCounter(filepath.Join(dir, "zero"), 0, 0); !errors.Is(err, envelope.ErrInvalidConfig) {
		t.Fatalf("first counter 0: %v, want envelope.ErrInvalidConfig", err)
	}
	ns := fmt.Sprintf("%019d", time.Now().UnixNano())
	for name, content := range map[string]string{
		"empty":          "",
		"garbage":        "hello\n",
		"bad crc":        "mqttsec-counter v1 1000 00000000\n",
		"zero":           "mqttsec-counter v1 0 " + crcOf("0") + "\n",
		"extra space":    "mqttsec-counter v1  1000 " + crcOf("1000") + "\n",
		"no newline":     "mqttsec-counter v1 1000 " + crcOf("1000"),
		"overflow":       "mqttsec-counter v1 99999999999999999999 " + crcOf("99999999999999999999") + "\n",
		"oversize":       string(counterLine(1000, time.Now())) + strings.Repeat(" ", 1<<20),
		"leading zero":   "mqttsec-counter v1 01000 " + crcOf("01000") + "\n",
		"v1 with a time": "mqttsec-counter v1 1000 " + ns + " " + crcOf("1000 "+ns) + "\n",
		"v2 no time":     "mqttsec-counter v2 1000 " + crcOf("1000") + "\n",
		"v2 bad crc":     "mqttsec-counter v2 1000 " + ns + " " + crcOf("1000") + "\n",
		"v2 time zero":   "mqttsec-counter v2 1000 0000000000000000000 " + crcOf("1000 0000000000000000000") + "\n",
		"v2 short time":  "mqttsec-counter v2 1000 " + ns[1:] + " " + crcOf("1000 "+ns[1:]) + "\n",
		"v2 signed time": "mqttsec-counter v2 1000 +" + ns[1:] + " " + crcOf("1000 +"+ns[1:]) + "\n",
		"v3":             "mqttsec-counter v3 1000 " + ns + " " + crcOf("1000 "+ns) + "\n",
	} {
		p := filepath.Join(dir, "c")
		if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		if _, err := OpenFileCounter(p, 0); !errors.Is(err, ErrCorrupt) {
			t.Errorf("%s: %v, want ErrCorrupt", name, err)
		}
	}
	// Both versions of the line are read: version 1 (of an earlier
	// release, with no time) and version 2.
	for name, line := range map[string][]byte{"v1": counterLine(1000, time.Time{}), "v2": counterLine(1000, time.Now())} {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, line, 0o600); err != nil {
			t.Fatal(err)
		}
		c, err := OpenFileCounter(p, 0)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if n, _ := c.Next(); n != 1000 {
			t.Fatalf("%s: resumed at %d, want 1000", name, n)
		}
		must(t, c.Close())
	}
}

// A reservation that fails (a full disk) fails that Next and hands out
// nothing; it is tried again by the next Next, and once it succeeds the
// counter goes on. No counter is handed out twice, or before the file
// reserves it, including across a crash.
func TestFileCounterRetriesAFailedReservation(t *testing.T) {
	for _, tc := range []struct {
		name string
		// write fails a reservation; landed: after writing the file, as a
		// failed directory sync after the rename does.
		landed bool
	}{
		{"nothing written", false},
		{"written, then failed", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "counter")
			c, err := CreateFileCounter(path, 1, 3)
			if err != nil {
				t.Fatal(err)
			}
			handedOut := map[uint64]bool{}
			var last uint64
			next := func() {
				t.Helper()
				n, err := c.Next()
				if err != nil {
					t.Fatal(err)
				}
				if handedOut[n] || n <= last {
					t.Fatalf("counter %d after %d", n, last)
				}
				reserved, err := readCounterFile(path)
				if err != nil || reserved <= n {
					t.Fatalf("counter %d handed out with %d reserved (%v)", n, reserved, err)
				}
				handedOut[n], last = true, n
			}
			for range 3 {
				next()
			}
			failReservations(c, func(path string, line func() []byte) error {
				if tc.landed {
					writeCounter(path, line)
				}
				return errInjected
			})
			for range 2 {
				if n, err := c.Next(); !errors.Is(err, errInjected) || n != 0 {
					t.Fatalf("Next while reservations fail = %d, %v; want 0 and the error", n, err)
				}
			}
			failReservations(c, writeCounter)
			for range 7 {
				next()
			}
			c.lock.Close() // a crash
			c, err = OpenFileCounter(path, 3)
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			next()
		})
	}
}

func crcOf(s string) string { return fmt.Sprintf("%08x", crc32.ChecksumIEEE([]byte(s))) }

func TestFileCounterClosed(t *testing.T) {
	c, err := CreateFileCounter(filepath.Join(t.TempDir(), "counter"), 1, 0)
	if err != nil {
		t.Fatal(err)
	}
	if n, err := c.Next(); err != nil || n != 1 {
		t.Fatalf("Next = %d, %v; want 1", n, err)
	}
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Next(); !errors.Is(err, ErrClosed) {
		t.Fatalf("Next after Close = %v, want ErrClosed", err)
	}
}

// A counter file restored from an older copy would hand out counters
// already used (SPEC.md §7.1): its change time is later than the time the
// counter wrote in it, and opening it fails with ErrRestored (an
// ErrCorrupt), as does one edited. The counter's own file opens, however
// long ago it was written (its change time is then as old); so does one of
// version 1, which holds no time.
func TestFileCounterRefusesRestoredCopy(t *testing.T) {
	if !changeTimeSupported {
		t.Skip("this system has no change time this package reads: a restored copy goes unnoticed")
	}
	path := filepath.Join(t.TempDir(), "counter")
	c, err := CreateFileCounter(path, 1, 10)
	must(t, err)
	// The counter's clock runs a minute behind until the copy is taken:
	// the copy then says it was written a minute before it is copied
	// back, as a copy taken earlier than its restore does.
	setCounterClock(c, func() time.Time { return time.Now().Add(-time.Minute) })
	for range 15 {
		_, err := c.Next()
		must(t, err)
	}
	older := readFile(t, path)
	setCounterClock(c, time.Now)
	for range 10 {
		_, err := c.Next()
		must(t, err)
	}
	must(t, c.Close())
	current := readFile(t, path)

	writeFile(t, path, older) // restored from the copy
	if _, err := OpenFileCounter(path, 10); !errors.Is(err, ErrRestored) || !errors.Is(err, ErrCorrupt) {
		t.Fatalf("a counter file restored from an older copy: %v, want ErrRestored (an ErrCorrupt)", err)
	}
	// Edited to a counter of its own, with a time of a minute ago.
	writeFile(t, path, counterLine(1, time.Now().Add(-time.Minute)))
	if _, err := OpenFileCounter(path, 10); !errors.Is(err, ErrRestored) {
		t.Fatalf("an edited counter file: %v, want ErrRestored", err)
	}
	for name, data := range map[string][]byte{"the counter's own": current, "version 1": counterLine(31, time.Time{})} {
		writeFile(t, path, data)
		c, err := OpenFileCounter(path, 10)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if n, err := c.Next(); err != nil || n != 31 {
			t.Fatalf("%s: Next = %d, %v; want 31", name, n, err)
		}
		must(t, c.Close())
	}
}

// The time a reservation writes is taken just before the file is renamed
// into place (its last change), after the slow fsync of its content: a
// clock that moves 10 s on while the content is synced, as a slow disk
// makes it, leaves a file that opens.
func TestFileCounterStampsAfterTheSync(t *testing.T) {
	path := filepath.Join(t.TempDir(), "counter")
	c, err := CreateFileCounter(path, 1, 10)
	must(t, err)
	// Each write of the line takes the time twice, before and after the
	// sync of its content; the first reads 10 s behind the second.
	calls := 0
	setCounterClock(c, func() time.Time {
		calls++
		if calls%2 == 1 {
			return time.Now().Add(-10 * time.Second)
		}
		return time.Now()
	})
	for range 15 {
		_, err := c.Next()
		must(t, err)
	}
	must(t, c.Close())
	c, err = OpenFileCounter(path, 10)
	if err != nil {
		t.Fatalf("reopening a counter whose content took 10 s to sync: %v", err)
	}
	must(t, c.Close())
}
