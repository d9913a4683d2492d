package replay

import (
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/mqttsec/mqttsec/envelope"
	"github.com/mqttsec/mqttsec/internal/keyfile"
)

// DefaultBlock is how many counters a FileCounter reserves per disk write.
const DefaultBlock = 1000

// Errors of the durable counter and stores.
var (
	// ErrCorrupt means a counter file, or a sender's window in Redis, is
	// damaged. The counter refuses to start, and the Redis store to judge
	// that sender, rather than guess: a guess could reuse a counter or
	// re-admit a message. (A FileStore that finds its files damaged opens
	// in a loss state instead; see ErrStateLost.)
	ErrCorrupt = errors.New("replay: state file is corrupt")
	// ErrRestored means a counter file was changed after the counter last
	// wrote it: its change time (ctime) is later than the time written in
	// it by more than 2 s. It was restored from an older copy (which hands
	// out counters already used), edited, or only touched (chmod, chown, a
	// hard link: anything that changes the inode), and the counter cannot
	// tell which, so it refuses to start (SPEC.md §7.1) rather than risk
	// using a counter again. It wraps ErrCorrupt. To go on, create a new
	// counter file whose first counter is above every one used before.
	ErrRestored = fmt.Errorf("%w: changed after the counter last wrote it (restored from an older copy?)", ErrCorrupt)
	// ErrMissing means the counter file does not exist. A sender whose
	// counter file was lost must not silently start again from a low value.
	ErrMissing = errors.New("replay: counter file is missing")
	// ErrLocked means the state is already open in another FileStore or
	// FileCounter, in this process or another. Two holders of one replay
	// state would each admit a message the other had seen, and two holders
	// of one counter would hand out the same counters; so the second is
	// refused.
	ErrLocked = errors.New("replay: state file is in use by another store or counter")
	// ErrNotRegular is wrapped by the error about a state file that is a
	// directory, device or FIFO.
	ErrNotRegular = keyfile.ErrNotRegular
	// ErrClosed is the error of a FileStore's Check and Admit, and of a
	// FileCounter's Next, after Close.
	ErrClosed = errors.New("replay: closed")
)

var _ envelope.Counter = (*FileCounter)(nil)

// FileCounter is a sender's message counter that never goes backwards
// across restarts and crashes, following RFC 8613 Appendix B.1: before
// handing out counters N … N+Block-1 it durably stores N+Block, and on
// start it resumes at the stored value. A crash therefore skips at most
// Block counters, and there is one disk write per Block messages. A
// reservation that cannot be written (a full disk) fails that Next, hands
// out nothing, and is tried again by the next Next: no counter is ever
// handed out before it is durably reserved.
//
// The file holds one line, "mqttsec-counter v2 <next> <written> <crc32>":
// the next counter to reserve from, in decimal; the time the line was
// written, Unix nanoseconds in 19 decimal digits; and the CRC-32 (IEEE) of
// "<next> <written>", in 8 lowercase hexadecimal digits. The line of an
// earlier version, "mqttsec-counter v1 <next> <crc32 of next>", is read
// too (and written over by the next reservation). A missing or damaged
// file is an error (ErrMissing, ErrCorrupt), never a reset.
//
// The time written is taken just before the file is renamed into place,
// which is its last change. A file whose change time (ctime, which no
// program can set) is later than that time by more than 2 s was changed by
// something else, such as a copy restored over it, and opening it fails
// with ErrRestored, as FileStore finds its own files changed. So leave the
// file to the counter: a chmod or chown of it, or a backup tool that
// touches it, stops the counter at its next start. This check is skipped
// for a file of version 1 (until it is written again) and on systems
// whose change time this package does not read (see FileStore). It cannot
// notice a rollback of the whole file system or VM (ZFS, btrfs or LVM
// snapshots, a VM snapshot), which brings back the old change time too.
//
// A FileCounter locks the file "<path>.lock" until Close (or the end of the
// process), so that two counters never hand out the same values from one
// file: a second Create or Open is ErrLocked. The lock is flock(2) where
// the system has it.
type FileCounter struct {
	path  string
	block uint64
	lock  *os.File

	// write stores a reservation, replacing path with the line that line
	// returns (called just before the file's last change): writeCounter,
	// or in tests one that fails on demand.
	write func(path string, line func() []byte) error
	now   func() time.Time // the wall clock; tests set another

	mu    sync.Mutex
	next  uint64 // next counter to hand out
	limit uint64 // first counter not yet durably reserved
	err   error  // final: exhausted or closed
}

// CreateFileCounter creates a new counter file whose first counter is
// first (at least 1: 0 is envelope.ErrInvalidConfig); it fails if the file
// exists. block is how many counters to reserve per write (0 means
// DefaultBlock). While another counter holds path the error is ErrLocked.
func CreateFileCounter(path string, first, block uint64) (*FileCounter, error) {
	if first == 0 {
		return nil, fmt.Errorf("%w: counters start at 1", envelope.ErrInvalidConfig)
	}
	if block == 0 {
		block = DefaultBlock
	}
	lk, err := openLocked(path + ".lock")
	if err != nil {
		return nil, err
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		lk.Close()
		return nil, err
	}
	f.Close()
	c := newFileCounter(path, block, lk, first)
	if err := c.write(path, c.line(first)); err != nil {
		lk.Close()
		return nil, err
	}
	return c, nil
}

// OpenFileCounter opens an existing counter file and resumes after every
// counter that may have been used before. While another counter holds path
// the error is ErrLocked; a missing file is ErrMissing, a damaged one
// ErrCorrupt, and one changed since the counter wrote it (restored from a
// copy, edited, touched) ErrRestored.
func OpenFileCounter(path string, block uint64) (*FileCounter, error) {
	if block == 0 {
		block = DefaultBlock
	}
	lk, err := openLocked(path + ".lock")
	if err != nil {
		return nil, err
	}
	next, err := readCounterFile(path)
	if err != nil {
		lk.Close()
		return nil, err
	}
	return newFileCounter(path, block, lk, next), nil
}

func newFileCounter(path string, block uint64, lk *os.File, next uint64) *FileCounter {
	return &FileCounter{path: path, block: block, lock: lk, write: writeCounter, now: time.Now, next: next, limit: next}
}

// writeCounter replaces the counter file at path, atomically and durably,
// with the line that line returns, called once the rest is slow work done
// (see writeStamped).
func writeCounter(path string, line func() []byte) error {
	return writeStamped(path, nil, line)
}

// line returns what writes the line that reserves up to next, stamped with
// the time it is called.
func (c *FileCounter) line(next uint64) func() []byte {
	return func() []byte { return counterLine(next, c.now()) }
}

// maxCounterFile bounds the counter file read: its line is under 80 bytes.
const maxCounterFile = 4096

// readCounterFile reads the next counter to reserve from the file at
// path, and checks that nothing changed the file since the counter wrote
// it.
func readCounterFile(path string) (uint64, error) {
	f, err := keyfile.OpenRegular(path, os.O_RDONLY, 0)
	if errors.Is(err, os.ErrNotExist) {
		return 0, fmt.Errorf("%w: %s", ErrMissing, path)
	}
	if err != nil {
		return 0, err
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, maxCounterFile+1))
	if err != nil {
		return 0, err
	}
	fi, err := f.Stat()
	if err != nil {
		return 0, err
	}
	if len(data) > maxCounterFile {
		return 0, fmt.Errorf("%w: %s", ErrCorrupt, path)
	}
	next, written, err := parseCounterLine(data)
	if err != nil {
		return 0, fmt.Errorf("%w: %s", err, path)
	}
	if ct, ok := changeTime(fi); ok && !written.IsZero() && ct.After(written.Add(ctimeSlack)) {
		return 0, fmt.Errorf("%w: %s was written by the counter at %s and changed at %s", ErrRestored, path,
			written.UTC().Format(time.RFC3339Nano), ct.UTC().Format(time.RFC3339Nano))
	}
	return next, nil
}

// Close releases the lock; Next fails afterwards. Every counter handed out
// was reserved in the file before, so Close writes nothing.
func (c *FileCounter) Close() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.lock == nil {
		return nil
	}
	err := c.lock.Close()
	c.lock = nil
	if c.err == nil {
		c.err = ErrClosed
	}
	return err
}

// counterLine returns the counter file's line for next: of version 2,
// with written, or of version 1 if written is not after 1970 (a time the
// line cannot hold).
func counterLine(next uint64, written time.Time) []byte {
	v := strconv.FormatUint(next, 10)
	version := "v1"
	if !written.IsZero() && written.UnixNano() > 0 {
		v, version = fmt.Sprintf("%s %019d", v, written.UnixNano()), "v2"
	}
	return fmt.Appendf(nil, "mqttsec-counter %s %s %08x\n", version, v, crc32.ChecksumIEEE([]byte(v)))
}

// parseCounterLine reads exactly a line that counterLine writes, of either
// version; written is zero for version 1.
func parseCounterLine(data []byte) (next uint64, written time.Time, err error) {
	f := strings.Fields(string(data))
	if string(data) != strings.Join(f, " ")+"\n" || len(f) < 4 || f[0] != "mqttsec-counter" {
		return 0, time.Time{}, ErrCorrupt
	}
	switch {
	case f[1] == "v1" && len(f) == 4:
	case f[1] == "v2" && len(f) == 5:
		ns, err := strconv.ParseInt(f[3], 10, 64)
		if err != nil || ns <= 0 || fmt.Sprintf("%019d", ns) != f[3] {
			return 0, time.Time{}, ErrCorrupt
		}
		written = time.Unix(0, ns)
	default:
		return 0, time.Time{}, ErrCorrupt
	}
	sum := strings.Join(f[2:len(f)-1], " ")
	n, err := strconv.ParseUint(f[2], 10, 64)
	if err != nil || n == 0 || strconv.FormatUint(n, 10) != f[2] ||
		fmt.Sprintf("%08x", crc32.ChecksumIEEE([]byte(sum))) != f[len(f)-1] {
		return 0, time.Time{}, ErrCorrupt
	}
	return n, written, nil
}

// Next implements envelope.Counter. When it must reserve another block and
// cannot (a full disk), it returns that error and hands out nothing; the
// next call tries again. Running out of counters
// (envelope.ErrCounterExhausted) and Close are final.
func (c *FileCounter) Next() (uint64, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.err != nil {
		return 0, c.err
	}
	if c.next == c.limit {
		if err := c.reserve(); err != nil {
			return 0, err
		}
	}
	n := c.next
	c.next++
	return n, nil
}

// reserve durably stores the end of the next block; c.mu is held.
func (c *FileCounter) reserve() error {
	limit := c.limit + c.block
	if limit < c.limit {
		c.err = envelope.ErrCounterExhausted
		return c.err
	}
	if err := c.write(c.path, c.line(limit)); err != nil {
		return fmt.Errorf("replay: reserving counters: %w", err)
	}
	c.limit = limit
	return nil
}
