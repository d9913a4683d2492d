package replay

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/mqttsec/mqttsec/envelope"
)

var ctx = context.Background()

var t0 = time.Date(2026, 11, 22, 12, 0, 0, 0, time.UTC)

func seen(sender string, ctr uint64) envelope.Seen {
	return envelope.Seen{Sender: sender, Counter: ctr, IssuedAt: t0.Add(time.Duration(ctr) * time.Millisecond)}
}

// create makes a new store in dir; open opens the one there.
// createAdmitted creates a store in dir that has admitted counters 1 to n
// of sender "a".
func createAdmitted(t testing.TB, dir string, n uint64) *FileStore {
	t.Helper()
	s := create(t, dir)
	for c := uint64(1); c <= n; c++ {
		admit(t, s, "a", c)
	}
	return s
}

func create(t testing.TB, dir string) *FileStore {
	t.Helper()
	s, err := CreateFileStore(dir, FileStoreOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func open(t testing.TB, dir string) *FileStore {
	t.Helper()
	s, err := OpenFileStore(dir, FileStoreOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// crash ends s as the death of its process would: the kernel closes its
// files, which drops the lock, and nothing else happens.
func crash(s *FileStore) {
	s.log.Close()
	s.lock.Close()
}

// losses returns the losses s reported so far (NotifyLoss hands over
// those noticed before it was called at once).
func losses(s *FileStore) []error {
	var got []error
	var mu sync.Mutex
	s.NotifyLoss(func(err error) {
		mu.Lock()
		got = append(got, err)
		mu.Unlock()
	})
	mu.Lock()
	defer mu.Unlock()
	return got
}

// openNoLoss opens the store in dir and fails t if it reports a loss.
func openNoLoss(t testing.TB, dir string) *FileStore {
	t.Helper()
	s := open(t, dir)
	if l := losses(s); len(l) != 0 {
		t.Fatalf("a loss reported: %v", l)
	}
	return s
}

// refused fails t unless Check and Admit both refuse m as a replay.
func refused(t testing.TB, s *FileStore, m envelope.Seen) {
	t.Helper()
	if err := s.Check(ctx, m); !errors.Is(err, envelope.ErrReplayed) {
		t.Fatalf("Check(%s %d issued %s) = %v, want ErrReplayed", m.Sender, m.Counter, m.IssuedAt.Format(time.RFC3339Nano), err)
	}
	if err := s.Admit(ctx, m); !errors.Is(err, envelope.ErrReplayed) {
		t.Fatalf("Admit(%s %d issued %s) = %v, want ErrReplayed", m.Sender, m.Counter, m.IssuedAt.Format(time.RFC3339Nano), err)
	}
}

// readFile, writeFile and admit are the test's setup steps; a failing one
// fails the test.
func readFile(t testing.TB, path string) []byte {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return data
}

func writeFile(t testing.TB, path string, data []byte) {
	t.Helper()
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatal(err)
	}
}

func admit(t testing.TB, s *FileStore, sender string, ctr uint64) {
	t.Helper()
	if err := s.Admit(ctx, seen(sender, ctr)); err != nil {
		t.Fatal(err)
	}
}

func TestFileStoreSurvivesRestart(t *testing.T) {
	dir := t.TempDir()
	s := create(t, dir)
	for c := uint64(1); c <= 50; c++ {
		if err := s.Admit(ctx, seen("a", c)); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.Admit(ctx, seen("a", 20)); !errors.Is(err, envelope.ErrReplayed) {
		t.Fatalf("duplicate: %v", err)
	}
	crash(s) // no Close: the process dies
	s2 := openNoLoss(t, dir)
	for _, c := range []uint64{1, 20, 50} {
		if err := s2.Admit(ctx, seen("a", c)); !errors.Is(err, envelope.ErrReplayed) {
			t.Fatalf("counter %d after restart: %v", c, err)
		}
	}
	if err := s2.Admit(ctx, seen("a", 51)); err != nil {
		t.Fatalf("new counter after restart: %v", err)
	}
	if err := s2.Admit(ctx, seen("b", 1)); err != nil {
		t.Fatalf("new sender after restart: %v", err)
	}
}

// TestFileStoreCrashAtEveryByte stops the last commit (a frame after the
// committed length, then the header) at every byte, as a crash would, and
// opens what is left. Before the header is written the frame, whole or
// torn, is an uncommitted tail: dropped with no loss, everything whose
// Admit returned still refused. A header written without its whole frame
// (a power loss that reordered the writes) is a loss, never a guess.
func TestFileStoreCrashAtEveryByte(t *testing.T) {
	dir := t.TempDir()
	s := createAdmitted(t, dir, 5)
	before := readFile(t, filepath.Join(dir, logName))
	admit(t, s, "a", 6)
	after := readFile(t, filepath.Join(dir, logName))
	if len(after) <= len(before) {
		t.Fatal("the last Admit wrote nothing")
	}
	oldHeader, newHeader := before[:fileHeaderSize], after[:fileHeaderSize]
	for cut := len(before); cut <= len(after); cut++ {
		frame := after[len(before):cut]
		t.Run(fmt.Sprintf("frame cut at %d, old header", cut), func(t *testing.T) {
			d := t.TempDir()
			writeFile(t, filepath.Join(d, logName), slices.Concat(oldHeader, before[fileHeaderSize:], frame))
			r := openNoLoss(t, d)
			for c := uint64(1); c <= 5; c++ {
				refused(t, r, seen("a", c))
			}
			if n := len(readFile(t, filepath.Join(d, logName))); n != len(before) {
				t.Fatalf("the uncommitted tail was kept: %d bytes, want %d", n, len(before))
			}
			// New writes follow the committed part.
			admit(t, r, "a", 6)
			crash(r)
			refused(t, openNoLoss(t, d), seen("a", 6))
		})
		t.Run(fmt.Sprintf("frame cut at %d, new header", cut), func(t *testing.T) {
			d := t.TempDir()
			writeFile(t, filepath.Join(d, logName), slices.Concat(newHeader, before[fileHeaderSize:], frame))
			r := open(t, d)
			defer r.Close()
			if l := losses(r); (cut < len(after)) != (len(l) == 1) || len(l) > 1 {
				t.Fatalf("frame of %d bytes of %d under its header: losses %v", len(frame), len(after)-len(before), l)
			}
			for c := uint64(1); c <= 6; c++ {
				refused(t, r, seen("a", c))
			}
		})
	}
}

// The compaction's crash points: before the snapshot's rename (the old
// log, a stray temporary file); after it, before the log's header is
// reset (a log of generation 0 beside a snapshot of generation 1); after
// the header, before the log is cut (its old frames an uncommitted tail).
// Each opens without a loss, and everything admitted stays refused.
func TestFileStoreCrashDuringCompaction(t *testing.T) {
	dir := t.TempDir()
	s := createAdmitted(t, dir, 10)
	oldLog := readFile(t, filepath.Join(dir, logName))
	if err := s.Compact(); err != nil {
		t.Fatal(err)
	}
	resetLog := readFile(t, filepath.Join(dir, logName))
	if len(resetLog) != fileHeaderSize {
		t.Fatalf("log not reset by Compact: %d bytes", len(resetLog))
	}
	snap := readFile(t, filepath.Join(dir, snapshotName))
	admit(t, s, "a", 11)
	crash(s)

	for _, tc := range []struct {
		name  string
		files map[string][]byte
	}{
		{"before the rename", map[string][]byte{logName: oldLog, "." + snapshotName + ".tmp123": snap[:len(snap)/2]}},
		{"after the rename", map[string][]byte{logName: oldLog, snapshotName: snap}},
		{"after the header", map[string][]byte{logName: slices.Concat(resetLog, oldLog[fileHeaderSize:]), snapshotName: snap}},
		{"complete", nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d := dir
			if tc.files != nil {
				d = t.TempDir()
				for name, data := range tc.files {
					writeFile(t, filepath.Join(d, name), data)
				}
			}
			r := openNoLoss(t, d)
			defer r.Close()
			for c := uint64(1); c <= 10; c++ {
				refused(t, r, seen("a", c))
			}
		})
	}
}

func TestFileStoreConcurrentAdmitExactlyOnce(t *testing.T) {
	s := create(t, t.TempDir())
	var mu sync.Mutex
	won := map[uint64]int{}
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Go(func() {
			for c := uint64(1); c <= 200; c++ {
				sender := fmt.Sprint("s", g%2)
				if s.Admit(ctx, seen(sender, c)) == nil {
					mu.Lock()
					won[uint64(g%2)<<32|c]++
					mu.Unlock()
				}
			}
		})
	}
	wg.Wait()
	if len(won) != 400 {
		t.Fatalf("%d distinct messages admitted, want 400", len(won))
	}
	for k, n := range won {
		if n != 1 {
			t.Fatalf("message %x admitted %d times", k, n)
		}
	}
}

func TestFileStoreAutomaticCompactionKeepsState(t *testing.T) {
	dir := t.TempDir()
	s, err := CreateFileStore(dir, FileStoreOptions{CompactAfter: 256})
	if err != nil {
		t.Fatal(err)
	}
	for c := uint64(1); c <= 300; c++ {
		if err := s.Admit(ctx, seen(fmt.Sprint("s", c%7), c)); err != nil {
			t.Fatal(err)
		}
	}
	if n := len(readFile(t, filepath.Join(dir, logName))); n > 512 {
		t.Fatalf("log is %d bytes: compaction did not run", n)
	}
	crash(s)
	r := openNoLoss(t, dir)
	for c := uint64(1); c <= 300; c++ {
		if err := r.Check(ctx, seen(fmt.Sprint("s", c%7), c)); !errors.Is(err, envelope.ErrReplayed) {
			t.Fatalf("counter %d re-admitted after compactions", c)
		}
	}
}

func TestFileStoreClosed(t *testing.T) {
	s := create(t, t.TempDir())
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if err := s.Admit(ctx, seen("a", 1)); !errors.Is(err, ErrClosed) {
		t.Fatalf("Admit after Close = %v, want ErrClosed", err)
	}
	if err := s.Check(ctx, seen("a", 1)); !errors.Is(err, ErrClosed) {
		t.Fatalf("Check after Close = %v, want ErrClosed", err)
	}
	if err := s.Compact(); !errors.Is(err, ErrClosed) {
		t.Fatalf("Compact after Close = %v, want ErrClosed", err)
	}
}

// BenchmarkFileStoreAdmit measures Admit with 1 and 64 goroutines per CPU
// admitting at once: with more in flight, more records share one fsync.
func BenchmarkFileStoreAdmit(b *testing.B) {
	for _, par := range []int{1, 64} {
		b.Run(fmt.Sprint("parallelism=", par), func(b *testing.B) { benchAdmit(b, par) })
	}
}

func benchAdmit(b *testing.B, par int) {
	s, err := CreateFileStore(b.TempDir(), FileStoreOptions{})
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	// Each goroutine is a sender of its own, so that its counters arrive
	// in order: one counter shared by all would let a goroutine that was
	// held up fall more than a window behind its sender's newest message.
	var goroutines atomic.Int64
	b.SetParallelism(par)
	b.RunParallel(func(pb *testing.PB) {
		sender := fmt.Sprint("s", goroutines.Add(1))
		for c := uint64(1); pb.Next(); c++ {
			if err := s.Admit(ctx, seen(sender, c)); err != nil {
				b.Error(err)
				return
			}
		}
	})
}

// A store reopened with a smaller MaxSenders than the one that wrote its
// snapshot starts, and still refuses the replay of what it keeps.
func TestFileStoreReopensWithFewerSenders(t *testing.T) {
	dir := t.TempDir()
	s, err := CreateFileStore(dir, FileStoreOptions{MaxSenders: 100})
	if err != nil {
		t.Fatal(err)
	}
	for i := range 100 {
		if err := s.Admit(ctx, seen(fmt.Sprint("sender-", i), uint64(i+1))); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.Compact(); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	r, err := OpenFileStore(dir, FileStoreOptions{MaxSenders: 5})
	if err != nil {
		t.Fatalf("reopened with MaxSenders 5: %v", err)
	}
	defer r.Close()
	if err := r.Check(ctx, seen("sender-99", 100)); !errors.Is(err, envelope.ErrReplayed) {
		t.Fatalf("the newest sender's last message after reopening: %v, want ErrReplayed", err)
	}
}

// A FileStore says its window width, as the mqttsec SDK's ordering asks
// of a store (interface{ Width() int }), so that it holds back no more
// messages than the width requires.
func TestFileStoreWidth(t *testing.T) {
	for _, tc := range []struct{ opt, want int }{{0, DefaultWindow}, {1024, 1024}} {
		dir := t.TempDir()
		s, err := CreateFileStore(dir, FileStoreOptions{Width: tc.opt})
		if err != nil {
			t.Fatal(err)
		}
		var store envelope.ReplayStore = s
		w, ok := store.(interface{ Width() int })
		if !ok {
			t.Fatal("FileStore has no Width method")
		}
		if got := w.Width(); got != tc.want {
			t.Errorf("Width with FileStoreOptions.Width %d = %d, want %d", tc.opt, got, tc.want)
		}
		must(t, s.Close())
	}
}
