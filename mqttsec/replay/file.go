package replay

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"github.com/mqttsec/mqttsec/envelope"
)

// FileStore is a ReplayStore kept in a directory, safe across crashes,
// that notices when its files were lost or damaged.
//
// # Durability
//
// Every accepted message is written to a log before Admit returns, and the
// log is fsynced: once Admit returned nil the acceptance survives a crash.
// Concurrent Admits share one write and one fsync (group commit). When the
// log grows past CompactAfter bytes it is folded into a snapshot. On start,
// each known sender's counters up to the highest it had accepted are
// refused (a message merely reordered across a restart is refused too: the
// safe side).
//
// A write or fsync that fails fails the Admits of that group commit (the
// message is refused, never acted on: the envelope package reports it as
// envelope.ErrReplayStore). Nothing is sticky: the next Admit first cuts
// the log back to its committed length and tries again, so the store
// recovers by itself when the disk has room again. A message whose Admit
// failed is refused as a replay if it comes again before a restart. Only
// Close is final (ErrClosed).
//
// # Loss
//
// OpenFileStore never guesses at damaged state, and never stops the
// receiver for it either. If the directory or the log is missing, the log
// is emptied, cut short, changed anywhere in what was committed, or its
// header is damaged; if the snapshot is missing, damaged, of another store
// or of a generation the log does not expect; or if a state file was
// changed after the store last wrote it (restored from a copy, edited): the
// store moves the files aside (replay.log.damaged, replay.snapshot.damaged,
// replacing older ones), starts over with no windows, and reports a
// *LossError (wrapping ErrStateLost) through NotifyLoss. It then refuses
// every message issued at or before the loss moment plus that message's
// clock skew (envelope.Seen.Skew), since any of them may have been
// accepted before, and accepts later ones as usual: it heals as time
// passes, with no restart. The loss moment is when the store noticed the
// loss, or the latest time that the lost files recorded (a commit time in
// a header, a frame's write time) if later, so that a clock that came up
// behind the one that accepted the messages (a device without a
// battery-backed clock, not yet synchronized) still refuses them. Only
// times that can be read (in a header or frame whose CRC checks out) and
// are plausible (no later than the file's ctime plus 2 s: a time the
// store took before it wrote it) count. The moment is kept in the log and
// the snapshot, so a restart does not shorten the refusal. Opening still
// fails, without a loss, while another store holds the directory
// (ErrLocked), for a state file that is not a regular file
// (ErrNotRegular), and for permission and I/O errors.
//
// The last check reads the files' change time (ctime), which, unlike the
// modification time, programs cannot set: a file whose ctime is more than
// 2 s after the commit time the store recorded in it was changed by
// something else. The store records the time before each write it makes
// (see the commit below), so that its own writes, torn or whole, pass.
// Anything else that changes the inode counts: a copy back from a backup,
// an edit, but also a chmod, chown or hard link, so leave the directory to
// the store, on a local file system (on a network file system the change
// time comes from the server's clock, which may run ahead of this one). A
// rollback of the whole file system or VM (ZFS, btrfs or LVM snapshots, a
// VM snapshot) brings the old change times back with the old files, and is
// not noticed. A write that fails may still change the file: a store
// killed after a write of its log's header failed, before it recovered,
// reports a loss at the next start (Close repairs the log first, so a
// store closed once its header could be written again does not). Systems
// without a ctime this package reads (all but Linux, macOS, the BSDs and
// Solaris) skip this check: there, a directory restored from an older copy
// of itself is not noticed.
//
// A log written before this format (by an earlier version of this
// package) is taken for a damaged one: the first start after upgrading
// reports a loss, and refuses the messages issued up to a clock skew
// after that start.
//
// # Format
//
// The directory holds replay.log, replay.snapshot (after the first
// compaction) and replay.lock (flock(2) on it, where the system has it,
// keeps a second store out: ErrLocked). Integers are big-endian, times
// Unix nanoseconds (0 for none), CRCs CRC-32C (Castagnoli).
//
// Both files start with a 64-byte header: an 8-byte magic ("MQSRLOG2" or
// "MQSRSNP2"), the store's random 16-byte id, the snapshot generation
// (u64), a length (u64), the commit time (i64, the wall clock just before
// the header was written), the loss time (i64, the latest loss moment),
// the snapshot body's CRC (u32, 0 in the log) and the CRC of the 60 bytes
// before it (u32).
//
// In the log, the length is the committed length: the header and the
// frames that follow it up to there are committed. Each group commit
// appends one frame: [u32 n][i64 write time][records][u32 CRC of the
// frame's first 4+n bytes], n counting the write time and the records. A
// record is [u16 sender length][sender][u64 counter][i64 issued-at, Unix
// milliseconds]. Bytes after the committed length are an uncommitted tail.
//
// In the snapshot the length is the file's length, and the body after the
// header is [i64 floor (MemoryStore.Floor)] followed by one record
// per sender: its highest counter and newest issue time.
//
// # Commit, and why a crash loses nothing
//
// A group commit writes three times, then fsyncs once: (1) the header,
// still with the committed length, stamped with the commit time now; (2)
// its frame at the committed length; (3) the header with the new
// committed length, stamped again. Only after the fsync does Admit
// return. Each header write is 64 bytes at offset 0, inside one page and
// one disk sector: a kill does not tear it. Write (1) makes the time in
// the file cover the writes after it, so that a commit coming after an
// idle spell, torn by a crash, does not look like a file changed after
// the store wrote it. So, for a process killed (kill -9, a crash):
//
//   - Before (1) took effect: the file is as the last commit left it.
//   - After (1), before (3): the frame, absent, torn or whole, lies beyond
//     the committed length. Its Admits never returned; OpenFileStore cuts
//     it off, and reports no loss: the ctime is that of (1) or (2), within
//     the slack of the time (1) recorded. This is the only damage dropped
//     without a loss, because the header proves it uncommitted.
//   - After (3): the kernel holds all the writes; the batch is committed
//     (its messages are refused if they come again, although their Admits
//     never returned: the safe side).
//
// And for a power loss before the fsync completed, when the disk may hold
// any of the three writes without the others (writes are reordered), and
// the file's ctime as of any of them:
//
//   - Header (3) without the whole frame: the committed part no longer
//     checks out, and OpenFileStore reports a loss: safe, if needless.
//   - Header (1), or the header of the last commit, with the frame absent,
//     torn or whole: an uncommitted tail, dropped. But if the disk kept a
//     ctime later than the header it kept by more than 2 s (an idle spell
//     before the commit, header (1) lost), that too is reported as a loss.
//
// A failed write or fsync: the next commit first writes the header with
// the committed length again, then cuts the file there, then commits as
// above; the file is never shorter than a header in it says.
//
// Anything else that does not check out in the committed part (a header
// or frame CRC, a record that does not parse, frames not ending exactly at
// the committed length, a file shorter than it) cannot come from a process
// crash, and is a loss. The change-time check also takes a whole frame in
// the uncommitted tail as the last write when it is later than the header
// (a log that an earlier version of this package, which did not write
// (1), left so).
//
// One window remains: a write updates the ctime as it starts, before it
// copies anything, so a kill that lands inside write (1) itself, after
// the ctime moved and before the header did, after an idle spell, is
// reported as a loss (safe, a pause of the skew). It lasts microseconds.
//
// # Compaction
//
// The snapshot of generation g+1 (the log being at g) is written whole to
// a temporary file: body, fsync, header stamped with its commit time,
// fsync; stamped again just before it is renamed into place (the rename is
// its last change, and the syncs before it may be slow); fsync; the
// directory fsynced. Then the log's header is rewritten with generation
// g+1 and committed length 64, fsynced, and the file cut to its header.
// A crash before the rename leaves the old
// snapshot and log (and a stray temporary file); between the rename and
// the header, a log of generation g beside a snapshot of g+1, which is
// accepted: its records are all in the snapshot, and replaying them again
// is harmless; after the header, the old frames are an uncommitted tail.
// A log of generation g beside a snapshot of g-1 or g+2, or none when g >
// 0, is a loss.
type FileStore struct {
	dir          string
	compactAfter int64
	mem          *MemoryStore
	losses       lossReports
	// lossAt is the latest loss moment (zero: never); set while opening.
	lossAt time.Time
	now    func() time.Time // the wall clock; tests set another
	closed atomic.Bool

	mu  sync.Mutex // guards cur
	cur *batch     // the records waiting for the next group commit

	flushMu     sync.Mutex // one writer at a time; guards the fields below
	lock        *os.File   // replay.lock, locked until Close
	log         logFile
	hdr         fileHeader // the log's header as last durably written
	dirty       bool       // a write failed: the file may not end at hdr.length
	nextCompact int64      // the log body size that triggers a compaction
}

// batch is one group commit: the records of the Admits that wait for it,
// and its outcome once done (guarded by flushMu).
type batch struct {
	records []byte
	done    bool
	err     error
}

// logFile is the log as the store writes it: an *os.File, or in tests
// one that fails on demand.
type logFile interface {
	io.WriterAt
	Sync() error
	Truncate(size int64) error
	Close() error
}

var _ envelope.ReplayStore = (*FileStore)(nil)

// FileStoreOptions configures CreateFileStore and OpenFileStore. The zero
// value is usable.
type FileStoreOptions struct {
	// Width is the replay window width (0: DefaultWindow).
	Width int
	// MaxSenders bounds the senders tracked (0: DefaultMaxSenders). See
	// MemoryStore for what happens when it is full, and how to size it.
	MaxSenders int
	// CompactAfter is the log size that triggers a snapshot (0: 4 MiB).
	CompactAfter int64
	// Now is the receiver's clock (nil: time.Now), which tells when every
	// message admitted from a sender has expired, as
	// MemoryStoreOptions.Now; it must not run ahead of the receiver's. The
	// times the store writes in its files always come from the system's
	// clock.
	Now func() time.Time
}

// ctimeSlack is how much later than its recorded commit time a state
// file's ctime may be before it counts as changed outside the store: the
// time between taking a commit time and the last write it covers (the
// frame after a header stamped first, or a rename), with room for a write
// that waits on a busy disk.
const ctimeSlack = 2 * time.Second

const defaultCompactAfter = 4 << 20

// CreateFileStore creates a new, empty store in dir, creating dir (mode
// 0700) if needed. If dir already holds a store's log or snapshot the
// error is ErrExists: open it with OpenFileStore instead. While another
// store holds dir the error is ErrLocked.
func CreateFileStore(dir string, opt FileStoreOptions) (*FileStore, error) {
	s, err := newFileStore(dir, opt)
	if err != nil {
		return nil, err
	}
	if err := s.create(); err != nil {
		s.closeFiles()
		return nil, err
	}
	return s, nil
}

// OpenFileStore opens the store that CreateFileStore made in dir. Lost or
// damaged state (see FileStore) does not fail it: the store opens in a
// loss state and reports a *LossError through NotifyLoss. It fails while
// another store holds dir (ErrLocked), for a state file that is not a
// regular file (ErrNotRegular), for invalid options
// (envelope.ErrInvalidConfig) and for permission and I/O errors.
func OpenFileStore(dir string, opt FileStoreOptions) (*FileStore, error) {
	return openFileStore(dir, opt, time.Now)
}

// openFileStore opens the store with the wall clock now (tests set
// another).
func openFileStore(dir string, opt FileStoreOptions, now func() time.Time) (*FileStore, error) {
	s, err := newFileStore(dir, opt)
	if err != nil {
		return nil, err
	}
	s.now = now
	if err := s.open(); err != nil {
		s.closeFiles()
		return nil, err
	}
	return s, nil
}

func newFileStore(dir string, opt FileStoreOptions) (*FileStore, error) {
	if opt.CompactAfter <= 0 {
		opt.CompactAfter = defaultCompactAfter
	}
	mem, err := NewMemoryStoreWith(MemoryStoreOptions{Width: opt.Width, MaxSenders: opt.MaxSenders, Now: opt.Now})
	if err != nil {
		return nil, err
	}
	return &FileStore{dir: dir, compactAfter: opt.CompactAfter, nextCompact: opt.CompactAfter, mem: mem, now: time.Now}, nil
}

func (s *FileStore) path(name string) string { return filepath.Join(s.dir, name) }

// create makes the directory if needed, locks it, and writes a new log
// there if it holds no store.
func (s *FileStore) create() error {
	if _, err := makeDir(s.dir); err != nil {
		return err
	}
	if err := s.lockDir(); err != nil {
		return err
	}
	for _, name := range []string{logName, snapshotName} {
		if _, err := os.Lstat(s.path(name)); !errors.Is(err, fs.ErrNotExist) {
			if err == nil {
				err = fmt.Errorf("%w: %s holds %s", ErrExists, s.dir, name)
			}
			return err
		}
	}
	return s.createLog(fileHeader{id: newStoreID(), length: fileHeaderSize})
}

func (s *FileStore) lockDir() error {
	lk, err := openLocked(s.path(lockName))
	if err != nil {
		return err
	}
	s.lock = lk
	return nil
}

func newStoreID() (id [16]byte) {
	rand.Read(id[:]) // never fails
	return id
}

// createLog replaces the log, atomically, with one holding only h (its
// commit time now), and opens it.
func (s *FileStore) createLog(h fileHeader) error {
	path := s.path(logName)
	err := writeStamped(path, nil, func() []byte {
		h.commit = s.now()
		return h.encode(logMagic)
	})
	if err != nil {
		return err
	}
	f, err := openState(path, os.O_RDWR)
	if err == nil && f == nil {
		err = fmt.Errorf("replay: %s vanished as it was created", path)
	}
	if err != nil {
		return err
	}
	s.log, s.hdr = f, h
	return nil
}

// closeFiles closes what a failed open or create left open.
func (s *FileStore) closeFiles() {
	if s.log != nil {
		s.log.Close()
	}
	if s.lock != nil {
		s.lock.Close()
	}
}

// Width returns the replay window width (FileStoreOptions.Width, or
// DefaultWindow): how far below a sender's highest counter a
// message is still judged by its mark rather than refused as too old. The
// mqttsec SDK reads it to hold back no more messages than it must.
func (s *FileStore) Width() int { return s.mem.Width() }

// Stats reports the senders the store tracks and those it forgot to make
// room, as MemoryStore.Stats does (FileStoreOptions.MaxSenders).
func (s *FileStore) Stats() MemoryStats { return s.mem.Stats() }

// NotifyLoss has f called with a *LossError (wrapping ErrStateLost) for
// each loss of state the store notices, including one noticed when it was
// opened, before NotifyLoss was called. The mqttsec SDK logs it as an error
// and counts it.
func (s *FileStore) NotifyLoss(f func(error)) { s.losses.add(f) }

// Check implements envelope.ReplayStore.
func (s *FileStore) Check(ctx context.Context, m envelope.Seen) error {
	if err := s.refuse(m); err != nil {
		return err
	}
	return s.mem.Check(ctx, m)
}

// Admit implements envelope.ReplayStore. It returns only once the
// acceptance is on disk, or with an error, and then the message must not
// be acted on.
func (s *FileStore) Admit(ctx context.Context, m envelope.Seen) error {
	if err := s.refuse(m); err != nil {
		return err
	}
	b, err := s.enqueue(ctx, m)
	if err != nil {
		return err
	}
	return s.commit(b)
}

// refuse returns the error of a closed store, or of a message issued
// before a loss was noticed (plus its skew): it may have been accepted
// before.
func (s *FileStore) refuse(m envelope.Seen) error {
	if s.closed.Load() {
		return ErrClosed
	}
	if beforeLoss(s.lossAt, m) {
		return errBeforeLoss
	}
	return nil
}

// enqueue admits m to the in-memory windows, which decide atomically (a
// refused duplicate never reaches the log), and adds its record to the
// next group commit.
func (s *FileStore) enqueue(ctx context.Context, m envelope.Seen) (*batch, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.mem.Admit(ctx, m); err != nil {
		return nil, err
	}
	if s.cur == nil {
		s.cur = &batch{}
	}
	s.cur.records = appendRecord(s.cur.records, m.Sender, m.Counter, m.IssuedAt)
	return s.cur, nil
}

// commit waits until b is written, writing it (with every record that
// joined it meanwhile) unless another Admit already did, and returns its
// outcome.
func (s *FileStore) commit(b *batch) error {
	s.flushMu.Lock()
	defer s.flushMu.Unlock()
	if !b.done {
		// b is not done, so no commit took it: it is still s.cur.
		s.write(s.take())
	}
	return b.err
}

// take removes the pending batch, so that later records start another.
func (s *FileStore) take() *batch {
	s.mu.Lock()
	defer s.mu.Unlock()
	b := s.cur
	s.cur = nil
	return b
}

// write commits b and records the outcome; flushMu is held.
func (s *FileStore) write(b *batch) {
	b.done = true
	if s.closed.Load() {
		b.err = ErrClosed
		return
	}
	if b.err = s.appendFrame(b.records); b.err == nil {
		s.maybeCompact()
	}
}

// appendFrame commits records: the header stamped with this commit's
// time (still with the committed length), their frame after the committed
// length, then the header that takes it in, then one fsync (see
// FileStore). The first header write makes the time in the file cover
// every write of the commit, so that a crash that tears the frame leaves
// no change later than that time: the torn frame is then an uncommitted
// tail, and not a file changed after the store wrote it.
func (s *FileStore) appendFrame(records []byte) error {
	if err := s.cutBack(); err != nil {
		return err
	}
	next := s.hdr
	err := s.putHeader(s.hdr)
	if err == nil {
		frame := encodeFrame(s.now(), records)
		next.length += int64(len(frame))
		err = s.writeAt(frame, s.hdr.length)
	}
	if err == nil {
		err = s.putHeader(next)
	}
	if err == nil {
		err = s.sync()
	}
	if err != nil {
		s.dirty = true
		return err
	}
	s.hdr = next
	return nil
}

// cutBack undoes what a failed write may have left: the header goes back
// to the committed length, then the file is cut there. The header comes
// first so that the file is never shorter than a header in it says.
func (s *FileStore) cutBack() error {
	if !s.dirty {
		return nil
	}
	if err := s.putHeader(s.hdr); err != nil {
		return err
	}
	if err := s.log.Truncate(s.hdr.length); err != nil {
		return fmt.Errorf("replay: cutting the log back: %w", err)
	}
	s.dirty = false
	return nil
}

// putHeader writes h at the start of the log, stamped with the time now.
func (s *FileStore) putHeader(h fileHeader) error {
	h.commit = s.now()
	if _, err := s.log.WriteAt(h.encode(logMagic), 0); err != nil {
		return fmt.Errorf("replay: writing the log's header: %w", err)
	}
	return nil
}

func (s *FileStore) writeAt(b []byte, off int64) error {
	if _, err := s.log.WriteAt(b, off); err != nil {
		return fmt.Errorf("replay: writing the log: %w", err)
	}
	return nil
}

func (s *FileStore) sync() error {
	if err := s.log.Sync(); err != nil {
		return fmt.Errorf("replay: syncing the log: %w", err)
	}
	return nil
}

// maybeCompact compacts once the log has grown enough. A compaction that
// fails is tried again once the log has grown as much again; the log
// keeps every record meanwhile.
func (s *FileStore) maybeCompact() {
	if s.hdr.length-fileHeaderSize < s.nextCompact {
		return
	}
	if s.compact() != nil {
		s.nextCompact = s.hdr.length - fileHeaderSize + s.compactAfter
	}
}

// Compact folds the log into a new snapshot now.
func (s *FileStore) Compact() error {
	s.flushMu.Lock()
	defer s.flushMu.Unlock()
	if s.closed.Load() {
		return ErrClosed
	}
	return s.compact()
}

// compact writes a snapshot of the in-memory windows (which hold
// everything committed) of the next generation, then resets the log to a
// header of that generation; flushMu is held. Records still pending stay
// pending, and go to the reset log. See FileStore for the crash points.
func (s *FileStore) compact() error {
	gen := s.hdr.gen + 1
	if err := s.writeSnapshot(gen); err != nil {
		return fmt.Errorf("replay: writing the snapshot: %w", err)
	}
	reset := s.hdr
	reset.gen, reset.length = gen, fileHeaderSize
	err := s.putHeader(reset)
	if err == nil {
		err = s.sync()
	}
	if err != nil {
		s.dirty = true
		return err
	}
	// The old frames are now an uncommitted tail: cut them.
	s.hdr, s.dirty, s.nextCompact = reset, true, s.compactAfter
	return s.cutBack()
}

func (s *FileStore) writeSnapshot(gen uint64) error {
	body := encodeSnapshotBody(s.mem)
	h := fileHeader{id: s.hdr.id, gen: gen, length: fileHeaderSize + int64(len(body)),
		loss: s.lossAt, bodyCRC: crc32c(body)}
	return writeStamped(s.path(snapshotName), body, func() []byte {
		h.commit = s.now()
		return h.encode(snapMagic)
	})
}

// Close closes the files, releasing the lock; Check and Admit fail with
// ErrClosed afterwards, and so do the Admits still waiting for a commit.
// After a failed write it first tries once more to cut the log back to its
// committed length, so that the next OpenFileStore finds it as the store
// left it.
func (s *FileStore) Close() error {
	s.flushMu.Lock()
	defer s.flushMu.Unlock()
	if s.closed.Swap(true) {
		return nil
	}
	wasDirty := s.dirty
	err := s.cutBack()
	if err == nil && wasDirty {
		err = s.sync()
	}
	if cerr := s.log.Close(); err == nil {
		err = cerr
	}
	if cerr := s.lock.Close(); err == nil {
		err = cerr
	}
	return err
}
