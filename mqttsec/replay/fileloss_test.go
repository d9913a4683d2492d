package replay

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/mqttsec/mqttsec/envelope"
)

// history is a store's directory after two compactions, with what it
// admitted and copies of its files from along the way.
type history struct {
	dir      string
	admitted []envelope.Seen
	// ends are the log's committed lengths after each of the last four
	// batches (one Admit each).
	ends []int64
	// older holds the log and the snapshot (of generation 1) as they were
	// before the second compaction.
	older map[string][]byte
}

// makeHistory builds a history. The store's clock runs an hour behind
// until the older copies are taken: the commit times in them are then an
// hour before the files' change times once copied back, as a real
// restore from a backup (taken earlier than the restore) leaves them.
func makeHistory(t *testing.T) *history {
	h := &history{dir: t.TempDir(), older: map[string][]byte{}}
	s := create(t, h.dir)
	setClock(s, func() time.Time { return time.Now().Add(-time.Hour) })
	h.admit(t, s, "a", 1, 5)
	compact(t, s)
	h.admit(t, s, "a", 6, 8)
	for _, name := range []string{logName, snapshotName} {
		h.older[name] = readFile(t, filepath.Join(h.dir, name))
	}
	setClock(s, time.Now)
	h.admit(t, s, "b", 1, 4)
	compact(t, s)
	for c := uint64(9); c <= 12; c++ {
		h.admit(t, s, "a", c, c)
		h.ends = append(h.ends, int64(len(readFile(t, filepath.Join(h.dir, logName)))))
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	return h
}

func (h *history) admit(t *testing.T, s *FileStore, sender string, from, to uint64) {
	t.Helper()
	for c := from; c <= to; c++ {
		admit(t, s, sender, c)
		h.admitted = append(h.admitted, seen(sender, c))
	}
}

func (h *history) path(name string) string { return filepath.Join(h.dir, name) }

func compact(t *testing.T, s *FileStore) {
	t.Helper()
	if err := s.Compact(); err != nil {
		t.Fatal(err)
	}
}

// flip changes one byte of a file.
func flip(t *testing.T, path string, at int64) {
	t.Helper()
	data := readFile(t, path)
	data[at] ^= 0x20
	writeFile(t, path, data)
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// TestFileStoreLoss damages a store's directory in each way it can be
// lost or damaged, and shows that the store opens all the same, reports
// the loss exactly once, refuses every message admitted before it and any
// other issued up to the moment it noticed the loss plus the skew, accepts
// later ones, and goes on refusing the earlier ones after a restart and a
// compaction, without reporting the loss again.
func TestFileStoreLoss(t *testing.T) {
	last := func(h *history) (int64, int64) { return h.ends[len(h.ends)-2], h.ends[len(h.ends)-1] }
	for _, tc := range []struct {
		name   string
		damage func(t *testing.T, h *history)
		what   string // in the LossError's What
	}{
		{"log truncated to 0", func(t *testing.T, h *history) { must(t, os.Truncate(h.path(logName), 0)) }, "replay.log is empty"},
		{"directory deleted", func(t *testing.T, h *history) { must(t, os.RemoveAll(h.dir)) }, "directory is missing"},
		{"log deleted", func(t *testing.T, h *history) { must(t, os.Remove(h.path(logName))) }, "replay.log is missing"},
		{"log shorter than its header", func(t *testing.T, h *history) { must(t, os.Truncate(h.path(logName), 40)) }, "shorter than its header"},
		{"header byte changed", func(t *testing.T, h *history) { flip(t, h.path(logName), 35) }, "header is damaged"},
		{"byte changed in the last batch", func(t *testing.T, h *history) {
			from, to := last(h)
			flip(t, h.path(logName), (from+to)/2)
		}, "damaged at offset"},
		{"byte changed in the first batch", func(t *testing.T, h *history) { flip(t, h.path(logName), fileHeaderSize+20) }, "damaged at offset"},
		{"last 3 bytes cut", func(t *testing.T, h *history) {
			_, to := last(h)
			must(t, os.Truncate(h.path(logName), to-3))
		}, "replay.log is cut"},
		{"cut at a frame boundary", func(t *testing.T, h *history) {
			from, _ := last(h)
			must(t, os.Truncate(h.path(logName), from))
		}, "replay.log is cut"},
		{"snapshot deleted", func(t *testing.T, h *history) { must(t, os.Remove(h.path(snapshotName))) }, "replay.snapshot is missing"},
		{"snapshot damaged", func(t *testing.T, h *history) {
			flip(t, h.path(snapshotName), int64(len(readFile(t, h.path(snapshotName)))/2))
		}, "replay.snapshot is damaged"},
		{"snapshot swapped with an older one", func(t *testing.T, h *history) {
			writeFile(t, h.path(snapshotName), h.older[snapshotName])
		}, "generation 1, replay.log expects 2"},
		{"directory restored from an older copy", func(t *testing.T, h *history) {
			for name, data := range h.older {
				writeFile(t, h.path(name), data)
			}
		}, "changed after the store last wrote it"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if strings.Contains(tc.what, "changed after") && !changeTimeSupported {
				t.Skip("this system has no change time this package reads: a restored copy goes unnoticed")
			}
			h := makeHistory(t)
			tc.damage(t, h)
			checkLoss(t, h, tc.what)
		})
	}
}

// checkLoss opens a damaged history and checks what TestFileStoreLoss
// says.
func checkLoss(t *testing.T, h *history, what string) {
	s := open(t, h.dir)
	reported := losses(s)
	if len(reported) != 1 {
		t.Fatalf("%d losses reported, want 1: %v", len(reported), reported)
	}
	var loss *LossError
	if !errors.As(reported[0], &loss) || !errors.Is(reported[0], ErrStateLost) {
		t.Fatalf("loss reported as %T %v", reported[0], reported[0])
	}
	if !strings.Contains(loss.What, what) {
		t.Fatalf("loss %q, want it to say %q", loss.What, what)
	}
	skew := envelope.DefaultMaxClockSkew
	unsure := []envelope.Seen{
		{Sender: "new", Counter: 1, IssuedAt: loss.Noticed.Add(skew)},
		{Sender: "new", Counter: 2, IssuedAt: loss.Noticed.Add(skew + time.Second), Skew: skew + 2*time.Second},
	}
	later := envelope.Seen{Sender: "new", Counter: 3, IssuedAt: loss.Noticed.Add(skew + time.Millisecond)}
	for _, m := range append(h.admitted, unsure...) {
		refused(t, s, m)
	}
	if err := s.Admit(ctx, later); err != nil {
		t.Fatalf("a message issued after the loss plus the skew: %v", err)
	}
	for _, compactFirst := range []bool{false, true} {
		if compactFirst {
			compact(t, s)
		}
		must(t, s.Close())
		s = openNoLoss(t, h.dir)
		for _, m := range append(h.admitted, append(unsure, later)...) {
			refused(t, s, m)
		}
	}
	must(t, s.Close())
	// The log that was there is kept aside, not destroyed.
	if lost := strings.Contains(what, "replay.log is missing") || strings.Contains(what, "directory"); !lost {
		if _, err := os.Stat(h.path(logName + damagedSuffix)); err != nil {
			t.Errorf("the damaged log was not kept aside: %v", err)
		}
	}
}

// Garbage after the committed length (what a crash in the middle of a
// write leaves) is dropped without a loss; everything committed stays
// refused, and new writes follow it.
func TestFileStoreDropsUncommittedTail(t *testing.T) {
	for name, tail := range map[string][]byte{
		"garbage":     []byte(strings.Repeat("\xa5", 100)),
		"a frame":     encodeFrame(time.Now(), appendRecord(nil, "b", 1, time.Now())),
		"a torn one":  encodeFrame(time.Now(), appendRecord(nil, "b", 1, time.Now()))[:20],
		"three bytes": {0, 0, 1},
	} {
		t.Run(name, func(t *testing.T) {
			dir := t.TempDir()
			s := createAdmitted(t, dir, 5)
			must(t, s.Close())
			logPath := filepath.Join(dir, logName)
			committed := readFile(t, logPath)
			writeFile(t, logPath, append(committed, tail...))

			s = openNoLoss(t, dir)
			if got := readFile(t, logPath); len(got) != len(committed) {
				t.Fatalf("log is %d bytes after opening, want the %d committed", len(got), len(committed))
			}
			for c := uint64(1); c <= 5; c++ {
				refused(t, s, seen("a", c))
			}
			admit(t, s, "b", 1)
			crash(s)
			refused(t, openNoLoss(t, dir), seen("b", 1))
		})
	}
}

// A process killed in the middle of a commit loses nothing and reports no
// loss. The kill is simulated by failing the step after it, then crashing:
// killed after the frame, before the header, the frame is an uncommitted
// tail and dropped; killed after the header, before the fsync, the
// kernel keeps both, and the batch is committed.
func TestFileStoreKilledMidCommit(t *testing.T) {
	for _, tc := range []struct {
		name      string
		fault     *fault
		committed bool
	}{
		{"after the frame", &fault{op: "write", header: true, times: 1}, false},
		{"after the header", &fault{op: "sync", times: 1}, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			s := createAdmitted(t, dir, 3)
			injectFaults(s, tc.fault.fail)
			if err := s.Admit(ctx, seen("b", 1)); !errors.Is(err, errInjected) {
				t.Fatalf("Admit interrupted by the kill = %v", err)
			}
			crash(s)
			r := openNoLoss(t, dir)
			for c := uint64(1); c <= 3; c++ {
				refused(t, r, seen("a", c))
			}
			err := r.Check(ctx, seen("b", 1))
			if tc.committed != errors.Is(err, envelope.ErrReplayed) {
				t.Fatalf("the interrupted batch: Check = %v; committed: %v", err, tc.committed)
			}
		})
	}
}

// CreateFileStore makes a new store, never over an existing one;
// OpenFileStore opens one, and never makes one silently.
func TestCreateAndOpenFileStore(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "new", "replay")
	s := create(t, dir)
	if fi, err := os.Stat(dir); err != nil || fi.Mode().Perm() != 0o700 {
		t.Fatalf("directory: %v, %v; want mode 0700", fi, err)
	}
	admit(t, s, "a", 1)
	if _, err := CreateFileStore(dir, FileStoreOptions{}); !errors.Is(err, ErrLocked) && lockSupported {
		t.Fatalf("CreateFileStore on an open store = %v, want ErrLocked", err)
	}
	must(t, s.Close())
	if _, err := CreateFileStore(dir, FileStoreOptions{}); !errors.Is(err, ErrExists) {
		t.Fatalf("CreateFileStore on an existing store = %v, want ErrExists", err)
	}
	s = openNoLoss(t, dir)
	refused(t, s, seen("a", 1))
	must(t, s.Close())

	for name, opt := range map[string]FileStoreOptions{"width": {Width: 100}, "senders": {MaxSenders: -1}} {
		if _, err := OpenFileStore(dir, opt); !errors.Is(err, envelope.ErrInvalidConfig) {
			t.Errorf("%s: OpenFileStore = %v, want ErrInvalidConfig", name, err)
		}
		if _, err := CreateFileStore(t.TempDir(), opt); !errors.Is(err, envelope.ErrInvalidConfig) {
			t.Errorf("%s: CreateFileStore = %v, want ErrInvalidConfig", name, err)
		}
	}
	file := filepath.Join(t.TempDir(), "file")
	writeFile(t, file, nil)
	for _, f := range []func(string, FileStoreOptions) (*FileStore, error){OpenFileStore, CreateFileStore} {
		if _, err := f(file, FileStoreOptions{}); err == nil {
			t.Errorf("a store opened in a regular file")
		}
	}
	// An empty directory holds no store: opening it is a loss, reported.
	empty := t.TempDir()
	s = open(t, empty)
	defer s.Close()
	if l := losses(s); len(l) != 1 || !errors.Is(l[0], ErrStateLost) {
		t.Fatalf("opening an empty directory: losses %v", l)
	}
}

// A loss error says what was lost and when, and names no secret.
func TestLossErrorText(t *testing.T) {
	h := makeHistory(t)
	must(t, os.Truncate(h.path(logName), 0))
	s := open(t, h.dir)
	defer s.Close()
	l := losses(s)
	if len(l) != 1 {
		t.Fatalf("losses %v", l)
	}
	msg := l[0].Error()
	for _, want := range []string{"replay state lost", "replay.log is empty", "noticed at"} {
		if !strings.Contains(msg, want) {
			t.Errorf("%q does not say %q", msg, want)
		}
	}
}

// A process killed in the middle of a commit that comes after an idle
// spell (more than ctimeSlack since the last one) loses nothing and
// reports no loss, wherever the kill falls: the frame torn at any byte (its
// own write time unreadable), written whole, or under its header. The idle
// spell is simulated by the clock seam: it runs 5 s behind while the
// earlier messages are committed, then is moved forward to the time of the
// kernel (which sets the change time) for the commit the kill interrupts.
func TestFileStoreKilledMidCommitAfterIdle(t *testing.T) {
	frameLen := len(encodeFrame(time.Now(), appendRecord(nil, "b", 1, time.Now())))
	type killPoint struct {
		name      string
		fault     *fault
		committed bool
	}
	var points []killPoint
	for n := range frameLen {
		points = append(points, killPoint{fmt.Sprintf("frame torn after %d of %d bytes", n, frameLen),
			&fault{op: "write", times: 1, partial: n}, false})
	}
	points = append(points,
		// The second header write (the first stamps the commit).
		killPoint{"after the frame", &fault{op: "write", header: true, skip: 1, times: 1}, false},
		killPoint{"after the header", &fault{op: "sync", times: 1}, true})
	for _, tc := range points {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			s := create(t, dir)
			setClock(s, func() time.Time { return time.Now().Add(-5 * time.Second) })
			for c := uint64(1); c <= 3; c++ {
				admit(t, s, "a", c)
			}
			setClock(s, time.Now)
			injectFaults(s, tc.fault.fail)
			if err := s.Admit(ctx, seen("b", 1)); !errors.Is(err, errInjected) {
				t.Fatalf("Admit interrupted by the kill = %v", err)
			}
			if tc.fault.hits != 1 {
				t.Fatalf("the kill did not come: %d faults hit", tc.fault.hits)
			}
			crash(s)
			r := openNoLoss(t, dir)
			defer r.Close()
			for c := uint64(1); c <= 3; c++ {
				refused(t, r, seen("a", c))
			}
			err := r.Check(ctx, seen("b", 1))
			if tc.committed != errors.Is(err, envelope.ErrReplayed) {
				t.Fatalf("the interrupted batch: Check = %v; committed: %v", err, tc.committed)
			}
		})
	}
}

// A loss is dated by the latest of the clock and the times that the lost
// files recorded and that can be read: a receiver whose clock comes up an
// hour behind the one that accepted the messages (no battery-backed clock,
// not yet synchronized) still refuses them all. A time that checks out but
// is later than the file's change time (not written by this clock) is not
// taken.
func TestFileStoreLossDatedByRecordedTimes(t *testing.T) {
	behind := func() time.Time { return time.Now().Add(-time.Hour) }
	for _, tc := range []struct {
		name    string
		compact bool // compact before the last messages
		damage  func(t *testing.T, dir string)
		clock   func() time.Time
		// recorded: the loss is dated at or after the last commit (if
		// not, by the clock)
		recorded bool
	}{
		{"log body damaged: its header's commit time", false, func(t *testing.T, dir string) {
			flip(t, filepath.Join(dir, logName), fileHeaderSize+20)
		}, behind, true},
		{"log header damaged: its frames' write times", false, func(t *testing.T, dir string) {
			flip(t, filepath.Join(dir, logName), 35)
		}, behind, true},
		{"log cut in its last frame: the frames before it and its header", false, func(t *testing.T, dir string) {
			path := filepath.Join(dir, logName)
			must(t, os.Truncate(path, int64(len(readFile(t, path))-3)))
		}, behind, true},
		{"log deleted after a compaction: the snapshot's commit time", true, func(t *testing.T, dir string) {
			must(t, os.Remove(filepath.Join(dir, logName)))
		}, behind, true},
		{"a header and a tail frame dated a year after the file changed", false, func(t *testing.T, dir string) {
			path := filepath.Join(dir, logName)
			data := readFile(t, path)
			h, ok := parseFileHeader(data, logMagic)
			if !ok {
				t.Fatal("the log's header does not check out")
			}
			future := time.Now().AddDate(1, 0, 0)
			h.commit = future
			data = append(h.encode(logMagic), data[fileHeaderSize:]...)
			data[fileHeaderSize+20] ^= 0x20
			data = append(data, encodeFrame(future, appendRecord(nil, "z", 1, future))...)
			writeFile(t, path, data)
		}, time.Now, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			s := create(t, dir)
			var admitted []envelope.Seen
			for c := uint64(1); c <= 6; c++ {
				if c == 4 && tc.compact {
					compact(t, s)
				}
				m := envelope.Seen{Sender: "a", Counter: c, IssuedAt: time.Now()}
				if err := s.Admit(ctx, m); err != nil {
					t.Fatal(err)
				}
				if !tc.compact || c < 4 {
					admitted = append(admitted, m)
				}
			}
			lastCommit := time.Now()
			must(t, s.Close())
			tc.damage(t, dir)

			before := tc.clock()
			r, err := openAt(dir, tc.clock)
			must(t, err)
			after := tc.clock()
			l := losses(r)
			var loss *LossError
			if len(l) != 1 || !errors.As(l[0], &loss) {
				t.Fatalf("losses %v, want one", l)
			}
			if tc.recorded {
				if !loss.Noticed.After(admitted[len(admitted)-1].IssuedAt) || loss.Noticed.After(lastCommit) {
					t.Fatalf("loss dated %s, want the last commit before %s", loss.Noticed.Format(time.RFC3339Nano), lastCommit.Format(time.RFC3339Nano))
				}
			} else if loss.Noticed.Before(before) || loss.Noticed.After(after) {
				t.Fatalf("loss dated %s, want the clock's %s", loss.Noticed.Format(time.RFC3339Nano), before.Format(time.RFC3339Nano))
			}
			for _, m := range admitted {
				refused(t, r, m)
			}
			later := envelope.Seen{Sender: "new", Counter: 1, IssuedAt: loss.Noticed.Add(envelope.DefaultMaxClockSkew + time.Millisecond)}
			if err := r.Check(ctx, later); err != nil {
				t.Fatalf("a message issued after the loss plus the skew: %v", err)
			}
			must(t, r.Close())
			// The new log keeps that moment, for the next start. (Opening
			// it here would find it changed after the store wrote it: the
			// kernel's clock, which sets the change time, is not behind.)
			h, ok := parseFileHeader(readFile(t, filepath.Join(dir, logName)), logMagic)
			if !ok || !h.loss.Equal(loss.Noticed) {
				t.Fatalf("the new log's header keeps the loss at %s, want %s", h.loss, loss.Noticed)
			}
		})
	}
}

// The snapshot's commit time is taken just before it is renamed into
// place (its last change), after the slow fsync of its content: a clock
// that moves 10 s on while the content is synced, as a slow disk makes
// it, leaves a snapshot that opens without a loss.
func TestFileStoreCompactionStampsAfterTheSync(t *testing.T) {
	dir := t.TempDir()
	s := createAdmitted(t, dir, 5)
	// The first time read, the snapshot's first stamp, is 10 s behind.
	var calls atomic.Int64
	setClock(s, func() time.Time {
		if calls.Add(1) == 1 {
			return time.Now().Add(-10 * time.Second)
		}
		return time.Now()
	})
	compact(t, s)
	crash(s)
	r := openNoLoss(t, dir)
	defer r.Close()
	for c := uint64(1); c <= 5; c++ {
		refused(t, r, seen("a", c))
	}
}
