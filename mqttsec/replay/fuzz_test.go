package replay

import (
	"bytes"
	"encoding/binary"
	"errors"
	"path/filepath"
	"testing"
	"time"

	"github.com/mqttsec/mqttsec/envelope"
)

// FuzzCounterFile: the counter-file parser never panics, and accepts only
// the exact line it writes, of either version.
func FuzzCounterFile(f *testing.F) {
	f.Add(counterLine(1, time.Time{}))
	f.Add(counterLine(1<<62, time.Time{}))
	f.Add(counterLine(1, time.Now()))
	f.Add(counterLine(1<<62, time.Unix(0, 1)))
	f.Add([]byte("mqttsec-counter v1 12 00000000\n"))
	f.Add([]byte("mqttsec-counter v2 12 0000000000000000001 00000000\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		n, written, err := parseCounterLine(data)
		if err != nil {
			if !errors.Is(err, ErrCorrupt) {
				t.Fatalf("error %v is not ErrCorrupt", err)
			}
			return
		}
		if line := counterLine(n, written); !bytes.Equal(line, data) {
			t.Fatalf("accepted %q, which writes as %q", data, line)
		}
	})
}

// FuzzFileStoreOpen: whatever the log and the snapshot hold, opening
// never panics and never fails (they are regular files that can be read:
// nothing is left to fail on), but opens cleanly or in a loss state, with
// one LossError; what opened keeps working, and opens again without a
// loss.
func FuzzFileStoreOpen(f *testing.F) {
	dir := f.TempDir()
	s, err := CreateFileStore(dir, FileStoreOptions{})
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
	admit(f, s, "b", 1)
	log2 := readFile(f, filepath.Join(dir, logName))
	snap := readFile(f, filepath.Join(dir, snapshotName))
	f.Add(log, []byte(nil))
	f.Add(log, snap)
	f.Add(log2, snap)
	f.Add(log2, []byte(nil))
	f.Add(append(log2, 0, 0, 1), snap)
	f.Add([]byte{0, 0, 0, 1}, snap)
	f.Fuzz(func(t *testing.T, log, snap []byte) {
		d := t.TempDir()
		writeFile(t, filepath.Join(d, logName), restamp(log, logMagic))
		if snap != nil {
			writeFile(t, filepath.Join(d, snapshotName), restamp(snap, snapMagic))
		}
		s, err := OpenFileStore(d, FileStoreOptions{})
		if err != nil {
			t.Fatalf("OpenFileStore = %v", err)
		}
		reported := losses(s)
		if len(reported) > 1 {
			t.Fatalf("%d losses reported at once", len(reported))
		}
		if len(reported) == 1 {
			var loss *LossError
			if !errors.As(reported[0], &loss) {
				t.Fatalf("loss reported as %T", reported[0])
			}
			if err := s.Check(ctx, envelope.Seen{Sender: "x", Counter: 1, IssuedAt: loss.Noticed}); !errors.Is(err, envelope.ErrReplayed) {
				t.Fatalf("a message issued when the loss was noticed: %v", err)
			}
		}
		// It admits, or refuses as a replay (a loaded floor or loss time
		// may cover the message), nothing else.
		if err := s.Admit(ctx, envelope.Seen{Sender: "fresh-sender", Counter: 1, IssuedAt: time.Now().Add(time.Hour)}); err != nil && !errors.Is(err, envelope.ErrReplayed) {
			t.Fatalf("a store that opened cannot admit: %v", err)
		}
		if err := s.Close(); err != nil {
			t.Fatal(err)
		}
		s = openNoLoss(t, d)
		s.Close()
	})
}

// restamp sets the commit time in a header that checks out to now, as if
// the store had just written it, so that the fuzzer reaches what lies
// beyond the change-time check.
func restamp(b []byte, magic string) []byte {
	h, ok := parseFileHeader(b, magic)
	if !ok {
		return b
	}
	h.commit = time.Now()
	return append(h.encode(magic), b[fileHeaderSize:]...)
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
