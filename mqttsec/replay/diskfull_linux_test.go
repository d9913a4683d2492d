//go:build linux

package replay

import (
	"errors"
	"os"
	"path/filepath"
	"syscall"
	"testing"

	"github.com/mqttsec/mqttsec/envelope"
	"github.com/mqttsec/mqttsec/internal/smalldisk"
)

// On a real full disk (a small tmpfs), Admits fail with ENOSPC, counted
// as store failures and never as replays; once space is freed the same
// store admits again, without being reopened, and lost nothing.
func TestFileStoreFullDisk(t *testing.T) {
	mnt := smalldisk.Mount(t, 64<<10)
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
	smalldisk.Fill(t, fill)

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
