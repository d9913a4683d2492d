package replay

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/mqttsec/mqttsec/envelope"
)

var ctx = context.Background()

var t0 = time.Date(2026, 11, 22, 12, 0, 0, 0, time.UTC)

func seen(sender string, ctr uint64) envelope.Seen {
	return envelope.Seen{Sender: sender, Counter: ctr, IssuedAt: t0.Add(time.Duration(ctr) * time.Millisecond)}
}

func open(t *testing.T, dir string) *FileStore {
	t.Helper()
	s, err := OpenFileStore(dir, FileStoreOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// crash ends s as the death of its process would: the kernel closes its
// files, which drops the lock, and nothing else happens.
func crash(s *FileStore) { s.log.Close() }

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
	s := open(t, dir)
	for c := uint64(1); c <= 50; c++ {
		if err := s.Admit(ctx, seen("a", c)); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.Admit(ctx, seen("a", 20)); !errors.Is(err, envelope.ErrReplayed) {
		t.Fatalf("duplicate: %v", err)
	}
	crash(s) // no Close: the process dies
	s2 := open(t, dir)
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

// TestFileStoreCrashAtEveryByte cuts the log at every byte of the last
// write, as a crash during that write would, and checks that everything
// whose Admit returned is refused after the restart, and that the store
// opens.
func TestFileStoreCrashAtEveryByte(t *testing.T) {
	dir := t.TempDir()
	s := open(t, dir)
	for c := uint64(1); c <= 5; c++ {
		if err := s.Admit(ctx, seen("a", c)); err != nil {
			t.Fatal(err)
		}
	}
	before := readFile(t, filepath.Join(dir, logName))
	if err := s.Admit(ctx, seen("a", 6)); err != nil {
		t.Fatal(err)
	}
	after := readFile(t, filepath.Join(dir, logName))
	if len(after) <= len(before) {
		t.Fatal("the last Admit wrote nothing")
	}
	for cut := len(before); cut <= len(after); cut++ {
		d := t.TempDir()
		writeFile(t, filepath.Join(d, logName), after[:cut])
		r, err := OpenFileStore(d, FileStoreOptions{})
		if err != nil {
			t.Fatalf("cut at %d: %v", cut, err)
		}
		for c := uint64(1); c <= 5; c++ {
			if err := r.Check(ctx, seen("a", c)); !errors.Is(err, envelope.ErrReplayed) {
				t.Fatalf("cut at %d: acknowledged counter %d re-admitted", cut, c)
			}
		}
		err = r.Check(ctx, seen("a", 6))
		if complete := cut == len(after); complete != errors.Is(err, envelope.ErrReplayed) {
			t.Fatalf("cut at %d of %d: counter 6: %v", cut, len(after), err)
		}
		// The torn tail is gone: new writes append to a clean log.
		if err := r.Admit(ctx, seen("a", 7)); err != nil {
			t.Fatalf("cut at %d: %v", cut, err)
		}
		crash(r)
		r2, err := OpenFileStore(d, FileStoreOptions{})
		if err != nil {
			t.Fatalf("cut at %d, reopened: %v", cut, err)
		}
		if err := r2.Check(ctx, seen("a", 7)); !errors.Is(err, envelope.ErrReplayed) {
			t.Fatalf("cut at %d: write after repair lost", cut)
		}
	}
}

func TestFileStoreRefusesCorruption(t *testing.T) {
	dir := t.TempDir()
	s := open(t, dir)
	for c := uint64(1); c <= 3; c++ {
		admit(t, s, "a", c)
	}
	crash(s)
	data := readFile(t, filepath.Join(dir, logName))
	bad := append([]byte(nil), data...)
	bad[6] ^= 0x40 // inside the first batch, with batches after it
	writeFile(t, filepath.Join(dir, logName), bad)
	if _, err := OpenFileStore(dir, FileStoreOptions{}); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("damaged log: %v, want ErrCorrupt", err)
	}
	writeFile(t, filepath.Join(dir, logName), data)
	s = open(t, dir)
	if err := s.Compact(); err != nil {
		t.Fatal(err)
	}
	crash(s)
	snap := readFile(t, filepath.Join(dir, snapshotName))
	snap[len(snap)-6] ^= 1
	writeFile(t, filepath.Join(dir, snapshotName), snap)
	if _, err := OpenFileStore(dir, FileStoreOptions{}); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("damaged snapshot: %v, want ErrCorrupt", err)
	}
}

// The compaction's write points: a crash before the snapshot's rename
// leaves a stray temporary file and the old state; a crash after the rename
// but before the log is emptied leaves the new snapshot and the old log.
func TestFileStoreCrashDuringCompaction(t *testing.T) {
	dir := t.TempDir()
	s := open(t, dir)
	for c := uint64(1); c <= 10; c++ {
		admit(t, s, "a", c)
	}
	oldLog := readFile(t, filepath.Join(dir, logName))
	if err := s.Compact(); err != nil {
		t.Fatal(err)
	}
	if n := len(readFile(t, filepath.Join(dir, logName))); n != 0 {
		t.Fatalf("log not emptied by Compact: %d bytes", n)
	}
	admit(t, s, "a", 11)
	crash(s)

	// After the rename, before the truncation.
	afterRename := t.TempDir()
	snap := readFile(t, filepath.Join(dir, snapshotName))
	writeFile(t, filepath.Join(afterRename, snapshotName), snap)
	writeFile(t, filepath.Join(afterRename, logName), oldLog)
	// Before the rename: the old log, no snapshot, a stray temporary file.
	beforeRename := t.TempDir()
	writeFile(t, filepath.Join(beforeRename, logName), oldLog)
	writeFile(t, filepath.Join(beforeRename, "."+snapshotName+".tmp123"), snap[:len(snap)/2])

	for name, d := range map[string]string{"after rename": afterRename, "before rename": beforeRename, "complete": dir} {
		r, err := OpenFileStore(d, FileStoreOptions{})
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		for c := uint64(1); c <= 10; c++ {
			if err := r.Check(ctx, seen("a", c)); !errors.Is(err, envelope.ErrReplayed) {
				t.Fatalf("%s: counter %d re-admitted", name, c)
			}
		}
	}
}

func TestFileStoreConcurrentAdmitExactlyOnce(t *testing.T) {
	s := open(t, t.TempDir())
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
	s, err := OpenFileStore(dir, FileStoreOptions{CompactAfter: 256})
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
	r := open(t, dir)
	for c := uint64(1); c <= 300; c++ {
		if err := r.Check(ctx, seen(fmt.Sprint("s", c%7), c)); !errors.Is(err, envelope.ErrReplayed) {
			t.Fatalf("counter %d re-admitted after compactions", c)
		}
	}
}

func TestFileStoreClosed(t *testing.T) {
	s := open(t, t.TempDir())
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if err := s.Admit(ctx, seen("a", 1)); !errors.Is(err, ErrClosed) {
		t.Fatalf("Admit after Close = %v, want ErrClosed", err)
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
	s, err := OpenFileStore(b.TempDir(), FileStoreOptions{})
	if err != nil {
		b.Fatal(err)
	}
	var next sync.Mutex
	var n uint64
	b.SetParallelism(par)
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			next.Lock()
			n++
			c := n
			next.Unlock()
			if err := s.Admit(ctx, seen(fmt.Sprint("s", c%64), c)); err != nil {
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
	s, err := OpenFileStore(dir, FileStoreOptions{MaxSenders: 100})
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
