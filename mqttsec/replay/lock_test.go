package replay

import (
	"errors"
	"path/filepath"
	"testing"

	"github.com/mqttsec/mqttsec/envelope"
)

// Two stores on one directory would each admit what the other had seen,
// and two counters on one file would hand out the same values: the second
// opener is refused until the first closes.
func TestStateIsExclusive(t *testing.T) {
	if !lockSupported {
		t.Skip("this system has no flock: state files are not locked here")
	}
	t.Run("FileStore", func(t *testing.T) {
		dir := t.TempDir()
		s := create(t, dir)
		if err := s.Admit(ctx, seen("a", 1)); err != nil {
			t.Fatal(err)
		}
		if _, err := OpenFileStore(dir, FileStoreOptions{}); !errors.Is(err, ErrLocked) {
			t.Fatalf("second OpenFileStore = %v, want ErrLocked", err)
		}
		if err := s.Admit(ctx, seen("a", 2)); err != nil {
			t.Fatalf("the first store stopped working after the refused open: %v", err)
		}
		if err := s.Close(); err != nil {
			t.Fatal(err)
		}
		s2 := openNoLoss(t, dir)
		defer s2.Close()
		if err := s2.Check(ctx, seen("a", 2)); !errors.Is(err, envelope.ErrReplayed) {
			t.Fatalf("after Close and reopen, counter 2: %v", err)
		}
	})
	t.Run("FileCounter", func(t *testing.T) {
		path := filepath.Join(t.TempDir(), "counter")
		c, err := CreateFileCounter(path, 1, 10)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := OpenFileCounter(path, 10); !errors.Is(err, ErrLocked) {
			t.Fatalf("second OpenFileCounter = %v, want ErrLocked", err)
		}
		other, err := CreateFileCounter(filepath.Join(filepath.Dir(path), "other"), 1, 10)
		if err != nil {
			t.Fatalf("a counter in another file: %v", err)
		}
		if err := other.Close(); err != nil {
			t.Fatal(err)
		}
		first, err := c.Next()
		if err != nil {
			t.Fatal(err)
		}
		if err := c.Close(); err != nil {
			t.Fatal(err)
		}
		if _, err := c.Next(); err == nil {
			t.Fatal("Next after Close succeeded")
		}
		if err := c.Close(); err != nil {
			t.Fatalf("second Close: %v", err)
		}
		c2, err := OpenFileCounter(path, 10)
		if err != nil {
			t.Fatal(err)
		}
		defer c2.Close()
		if n, err := c2.Next(); err != nil || n <= first {
			t.Fatalf("after reopen Next = %d, %v; want above %d", n, err, first)
		}
	})
}
