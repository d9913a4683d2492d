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

func TestFileCounterStopsWhenItCannotReserve(t *testing.T) {
	// Removing the directory makes the next reservation fail (permissions
	// would not: the tests may run as root).
	dir := filepath.Join(t.TempDir(), "d")
	os.Mkdir(dir, 0o700)
	path := filepath.Join(dir, "counter")
	c, err := CreateFileCounter(path, 1, 2)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Next(); err != nil {
		t.Fatal(err)
	}
	c.Next()
	os.RemoveAll(dir)
	if _, err := c.Next(); err == nil {
		t.Fatal("Next succeeded without reserving")
	}
	if _, err := c.Next(); err == nil {
		t.Fatal("the counter went on after a failed reservation")
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
