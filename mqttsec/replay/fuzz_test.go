package replay

import (
	"bytes"
	"encoding/binary"
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

// FuzzRedisWindow: whatever a sender's Redis key holds (Redis is shared,
// its contents are not this process's), Check's reading of it never
// panics; a value of neither layout at the store's width is ErrCorrupt;
// and a value it reads admits every counter above its highest and none a
// width or more below it.
func FuzzRedisWindow(f *testing.F) {
	const width = 128
	s := &RedisStore{width: width}
	ring := binary.BigEndian.AppendUint64([]byte{ringLayout, 0, 0, 0, 0, 0, 0, 0, 9}, 500)
	ring = append(ring, make([]byte, width/8)...)
	ring[ringHeader+500%width/8] = 0x80 >> (500 % 8)
	earlier := binary.BigEndian.AppendUint64(make([]byte, 8), 500)
	earlier = append(earlier, make([]byte, width/8)...)
	earlier[16+width/8-1] = 1
	for _, c := range []uint64{499, 500, 501, 372, 373} {
		f.Add(ring, c)
		f.Add(earlier, c)
	}
	f.Add(make([]byte, 8), uint64(1))
	f.Add([]byte("xx"), uint64(1))
	f.Fuzz(func(t *testing.T, b []byte, c uint64) {
		fresh, err := s.fresh(b, c)
		var highest uint64
		switch {
		case len(b) == ringHeader+width/8 && b[0] == ringLayout:
			highest = binary.BigEndian.Uint64(b[9:ringHeader])
		case len(b) == 16+width/8:
			highest = binary.BigEndian.Uint64(b[8:16])
		case len(b) == 8:
			if err != nil || !fresh {
				t.Fatalf("an empty window: fresh %v, %v", fresh, err)
			}
			return
		default:
			if !errors.Is(err, ErrCorrupt) {
				t.Fatalf("%d bytes starting %x: %v, want ErrCorrupt", len(b), b[:min(len(b), 1)], err)
			}
			return
		}
		if err != nil {
			t.Fatalf("a value of a known layout: %v", err)
		}
		if c > highest && !fresh {
			t.Fatalf("counter %d above the highest %d refused", c, highest)
		}
		if c <= highest && highest-c >= width && fresh {
			t.Fatalf("counter %d a width or more below the highest %d admitted", c, highest)
		}
	})
}
