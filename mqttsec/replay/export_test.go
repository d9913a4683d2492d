package replay

import (
	"errors"
	"sync"
	"time"
)

// The seams through which tests reach into a FileStore and a FileCounter.

// errInjected is the error of an injected I/O failure.
var errInjected = errors.New("injected I/O error: no space left on device")

// faultyLog is a log whose operations go through fail first: "write"
// (with its offset), "sync" or "truncate". An error fails the operation;
// a write that fails with written > 0 writes that many bytes first, as a
// write that ran out of space half way does.
type faultyLog struct {
	logFile
	fail func(op string, off int64) (written int, err error)
}

func (f faultyLog) WriteAt(b []byte, off int64) (int, error) {
	n, err := f.fail("write", off)
	if err == nil {
		return f.logFile.WriteAt(b, off)
	}
	n = min(n, len(b))
	if n > 0 {
		f.logFile.WriteAt(b[:n], off)
	}
	return n, err
}

func (f faultyLog) Sync() error {
	if _, err := f.fail("sync", 0); err != nil {
		return err
	}
	return f.logFile.Sync()
}

func (f faultyLog) Truncate(size int64) error {
	if _, err := f.fail("truncate", size); err != nil {
		return err
	}
	return f.logFile.Truncate(size)
}

// injectFaults makes s's log operations go through fail.
func injectFaults(s *FileStore, fail func(op string, off int64) (int, error)) {
	s.flushMu.Lock()
	defer s.flushMu.Unlock()
	s.log = faultyLog{logFile: s.log, fail: fail}
}

// fault fails the next times operations op on the log, after letting the
// first skip of them pass: for "write", those at offset 0 (the header) if
// header is set, the others (frames) if not. A failing write writes
// partial bytes first.
type fault struct {
	op      string
	header  bool
	skip    int
	times   int
	partial int

	mu      sync.Mutex
	skipped int
	hits    int
}

func (f *fault) fail(op string, off int64) (int, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if op != f.op || (op == "write" && (off == 0) != f.header) || f.hits == f.times {
		return 0, nil
	}
	if f.skipped < f.skip {
		f.skipped++
		return 0, nil
	}
	f.hits++
	return f.partial, errInjected
}

// setClock makes s read the wall clock from now.
func setClock(s *FileStore, now func() time.Time) {
	s.flushMu.Lock()
	defer s.flushMu.Unlock()
	s.now = now
}

// openAt opens the store in dir with the wall clock now, as a machine
// whose clock reads now would.
func openAt(dir string, now func() time.Time) (*FileStore, error) {
	return openFileStore(dir, FileStoreOptions{}, now)
}

// failReservations makes c's reservations go through write.
func failReservations(c *FileCounter, write func(path string, line func() []byte) error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.write = write
}

// setCounterClock makes c read the wall clock from now.
func setCounterClock(c *FileCounter, now func() time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = now
}

// SameBucket reports whether senders a and b share a floor in s (see
// MemoryStore), for the tests of package replay_test.
func SameBucket(s *MemoryStore, a, b string) bool { return s.bucket(a) == s.bucket(b) }
