package replay

import (
	"bytes"
	"errors"
	"path/filepath"
	"testing"

	"github.com/mqttsec/mqttsec/envelope"
)

// FuzzCounterFile: the counter-file parser never panics, and accepts only
// the exact line it writes.
func FuzzCounterFile(f *testing.F) {
	f.Add(counterLine(1))
	f.Add(counterLine(1 << 62))
	f.Add([]byte("mqttsec-counter v1 12 00000000\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		n, err := parseCounterLine(data)
		if err != nil {
			if !errors.Is(err, ErrCorrupt) {
				t.Fatalf("error %v is not ErrCorrupt", err)
			}
			return
		}
		if !bytes.Equal(counterLine(n), data) {
			t.Fatalf("accepted %q, which writes as %q", data, counterLine(n))
		}
	})
}

// FuzzFileStoreOpen: any log or snapshot content opens or fails with
// ErrCorrupt, never panics, and what opens keeps working.
func FuzzFileStoreOpen(f *testing.F) {
	dir := f.TempDir()
	s, err := OpenFileStore(dir, FileStoreOptions{})
	if err != nil {
		f.Fatal(err)
	}
	for c := uint64(1); c <= 3; c++ {
		admit(f, s, "a", c)
	}
	log := readFile(f, filepath.Join(dir, logName))
	if err := s.Compact(); err != nil {
		f.Fatal(err)
	}
	snap := readFile(f, filepath.Join(dir, snapshotName))
	f.Add(log, snap)
	f.Add(log, []byte(nil))
	f.Add([]byte{0, 0, 0, 1}, snap)
	f.Fuzz(func(t *testing.T, log, snap []byte) {
		d := t.TempDir()
		writeFile(t, filepath.Join(d, logName), log)
		if snap != nil {
			writeFile(t, filepath.Join(d, snapshotName), snap)
		}
		s, err := OpenFileStore(d, FileStoreOptions{})
		if err != nil {
			if !errors.Is(err, ErrCorrupt) {
				t.Fatalf("error %v is not ErrCorrupt", err)
			}
			return
		}
		defer s.Close()
		// A store that opened keeps working: it admits, or refuses as a
		// replay (a loaded floor may cover the message), nothing else.
		if err := s.Admit(ctx, seen("fresh-sender", 1)); err != nil && !errors.Is(err, envelope.ErrReplayed) {
			t.Fatalf("a store that opened cannot admit: %v", err)
		}
	})
}
