//go:build linux || darwin || freebsd || netbsd || openbsd || dragonfly

package keyfile

import (
	"errors"
	"path/filepath"
	"syscall"
	"testing"
)

// A key file path naming a FIFO is refused at once; opening it the plain
// way would wait for a writer that never comes.
func TestReadRefusesFIFO(t *testing.T) {
	path := filepath.Join(t.TempDir(), "key.fifo")
	if err := syscall.Mkfifo(path, 0o600); err != nil {
		t.Fatal(err)
	}
	for _, r := range []struct {
		name string
		read func(string) ([]byte, error)
	}{{"ReadPrivate", ReadPrivate}, {"ReadPublic", ReadPublic}, {"ReadSecret", ReadSecret}} {
		t.Run(r.name, func(t *testing.T) {
			if _, err := r.read(path); !errors.Is(err, ErrNotRegular) {
				t.Fatalf("%s(fifo) = %v, want ErrNotRegular", r.name, err)
			}
		})
	}
}
