//go:build linux

package replay

import (
	"errors"
	"os"
	"path/filepath"
	"syscall"
	"testing"

	"github.com/mqttsec/mqttsec/envelope"
)

// On a real full disk (a small tmpfs), Admits fail with ENOSPC, counted
// as store failures and never as replays; once space is freed the same
// store admits again, without being reopened, and lost nothing.
func TestFileStoreFullDisk(t *testing.T) {
	mnt := t.TempDir()
	if os.Geteuid() != 0 {
		t.Skip("skipped: mounting a small tmpfs to fill needs root")
	}
	if err := syscall.Mount("tmpfs", mnt, "tmpfs", 0, "size=64k,mode=0700"); err != nil {
		t.Skipf("skipped: cannot mount a tmpfs here (%v)", err)
	}
	t.Cleanup(func() { syscall.Unmount(mnt, 0) })
	dir := filepath.Join(mnt, "replay")
	s := create(t, dir)
	var acked []envelope.Seen
	c := uint64(1)
	admitNext := func() error {
		m := seen("a", c)
		c++
		err := s.Admit(ctx, m)
		if err == nil {
			acked = append(acked, m)
		}
		return err
	}
	for range 3 {
		must(t, admitNext())
	}
	fill := filepath.Join(mnt, "fill")
	fillDisk(t, fill)

	// The log's last page may still have room for a few frames.
	var err error
	for range 1000 {
		if err = admitNext(); err != nil {
			break
		}
	}
	if !errors.Is(err, syscall.ENOSPC) || errors.Is(err, envelope.ErrReplayed) {
		t.Fatalf("Admit on a full disk = %v, want ENOSPC", err)
	}
	if err := admitNext(); !errors.Is(err, syscall.ENOSPC) {
		t.Fatalf("Admit on a disk still full = %v, want ENOSPC", err)
	}
	must(t, os.Remove(fill))
	for range 3 {
		if err := admitNext(); err != nil {
			t.Fatalf("Admit once space was freed: %v", err)
		}
	}
	must(t, s.Close())
	r := openNoLoss(t, dir)
	defer r.Close()
	for _, m := range acked {
		refused(t, r, m)
	}
	t.Logf("%d messages admitted around the full disk", len(acked))
}

// fillDisk writes path until the file system has no room left.
func fillDisk(t *testing.T, path string) {
	t.Helper()
	f, err := os.Create(path)
	must(t, err)
	defer f.Close()
	chunk := make([]byte, 4096)
	for {
		if _, err := f.Write(chunk); err != nil {
			if !errors.Is(err, syscall.ENOSPC) {
				t.Fatal(err)
			}
			return
		}
	}
}
