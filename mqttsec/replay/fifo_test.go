//go:build linux || darwin || freebsd || netbsd || openbsd || dragonfly

package replay

import (
	"errors"
	"os"
	"path/filepath"
	"syscall"
	"testing"
)

// A state file that is not a regular file is refused at once; a FIFO
// would otherwise block the open or the read until something wrote to it.
func TestStateFilesMustBeRegular(t *testing.T) {
	fifoAt := func(t *testing.T, path string) {
		t.Helper()
		if err := syscall.Mkfifo(path, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	t.Run("replay log", func(t *testing.T) {
		dir := t.TempDir()
		fifoAt(t, filepath.Join(dir, logName))
		if _, err := OpenFileStore(dir, FileStoreOptions{}); !errors.Is(err, ErrNotRegular) {
			t.Fatalf("OpenFileStore = %v, want not regular", err)
		}
	})
	t.Run("snapshot", func(t *testing.T) {
		dir := t.TempDir()
		s := create(t, dir)
		if err := s.Compact(); err != nil {
			t.Fatal(err)
		}
		if err := s.Close(); err != nil {
			t.Fatal(err)
		}
		path := filepath.Join(dir, snapshotName)
		if err := os.Remove(path); err != nil {
			t.Fatal(err)
		}
		fifoAt(t, path)
		if _, err := OpenFileStore(dir, FileStoreOptions{}); !errors.Is(err, ErrNotRegular) {
			t.Fatalf("OpenFileStore = %v, want not regular", err)
		}
	})
	t.Run("lock", func(t *testing.T) {
		dir := t.TempDir()
		fifoAt(t, filepath.Join(dir, lockName))
		if _, err := CreateFileStore(dir, FileStoreOptions{}); !errors.Is(err, ErrNotRegular) {
			t.Fatalf("CreateFileStore = %v, want not regular", err)
		}
	})
	t.Run("counter", func(t *testing.T) {
		path := filepath.Join(t.TempDir(), "counter")
		fifoAt(t, path)
		if _, err := OpenFileCounter(path, 0); !errors.Is(err, ErrNotRegular) {
			t.Fatalf("OpenFileCounter = %v, want not regular", err)
		}
	})
}
