package replay

import (
	"errors"
	"fmt"
	"hash/crc32"
	"os"
	"path/filepath"
	"strings"
	"testing"

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
	for name, content := range map[string]string{
		"empty":       "",
		"garbage":     "hello\n",
		"bad crc":     "mqttsec-counter v1 1000 00000000\n",
		"zero":        "mqttsec-counter v1 0 " + crcOf("0") + "\n",
		"extra space": "mqttsec-counter v1  1000 " + crcOf("1000") + "\n",
		"no newline":  "mqttsec-counter v1 1000 " + crcOf("1000"),
		"overflow":    "mqttsec-counter v1 99999999999999999999 " + crcOf("99999999999999999999") + "\n",
		"oversize":    string(counterLine(1000)) + strings.Repeat(" ", 1<<20),
	} {
		p := filepath.Join(dir, "c")
		if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		if _, err := OpenFileCounter(p, 0); !errors.Is(err, ErrCorrupt) {
			t.Errorf("%s: %v, want ErrCorrupt", name, err)
		}
	}
	p := filepath.Join(dir, "ok")
	if err := os.WriteFile(p, counterLine(1000), 0o600); err != nil {
		t.Fatal(err)
	}
	c, err := OpenFileCounter(p, 0)
	if err != nil {
		t.Fatal(err)
	}
	if n, _ := c.Next(); n != 1000 {
		t.Fatalf("resumed at %d, want 1000", n)
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
			failReservations(c, func(path string, data []byte, mode os.FileMode) error {
				if tc.landed {
					writeFileAtomic(path, data, mode)
				}
				return errInjected
			})
			for range 2 {
				if n, err := c.Next(); !errors.Is(err, errInjected) || n != 0 {
					t.Fatalf("Next while reservations fail = %d, %v; want 0 and the error", n, err)
				}
			}
			failReservations(c, writeFileAtomic)
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
