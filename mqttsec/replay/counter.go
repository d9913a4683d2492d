package replay

import (
	"errors"
	"fmt"
	"hash/crc32"
	"os"
	"strconv"
	"strings"
	"sync"

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
// The file holds one line, "mqttsec-counter v1 <next> <crc32>". A missing
// or damaged file is an error (ErrMissing, ErrCorrupt), never a reset.
//
// A FileCounter locks the file "<path>.lock" until Close (or the end of the
// process), so that two counters never hand out the same values from one
// file: a second Create or Open is ErrLocked. The lock is flock(2) where
// the system has it.
type FileCounter struct {
	path  string
	block uint64
	lock  *os.File

	// write stores a reservation: writeFileAtomic, or in tests one that
	// fails on demand.
	write func(path string, data []byte, mode os.FileMode) error

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
	if err := writeFileAtomic(path, counterLine(first), 0o600); err != nil {
		lk.Close()
		return nil, err
	}
	return newFileCounter(path, block, lk, first), nil
}

// OpenFileCounter opens an existing counter file and resumes after every
// counter that may have been used before. While another counter holds path
// the error is ErrLocked; a missing file is ErrMissing, a damaged one
// ErrCorrupt.
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
	return &FileCounter{path: path, block: block, lock: lk, write: writeFileAtomic, next: next, limit: next}
}

func readCounterFile(path string) (uint64, error) {
	data, err := keyfile.ReadPublic(path) // bounded, and a regular file
	switch {
	case errors.Is(err, os.ErrNotExist):
		return 0, fmt.Errorf("%w: %s", ErrMissing, path)
	case errors.Is(err, keyfile.ErrTooLarge):
		return 0, fmt.Errorf("%w: %s", ErrCorrupt, path)
	case err != nil:
		return 0, err
	}
	next, err := parseCounterLine(data)
	if err != nil {
		return 0, fmt.Errorf("%w: %s", err, path)
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

func counterLine(n uint64) []byte {
	v := strconv.FormatUint(n, 10)
	return fmt.Appendf(nil, "mqttsec-counter v1 %s %08x\n", v, crc32.ChecksumIEEE([]byte(v)))
}

func parseCounterLine(data []byte) (uint64, error) {
	f := strings.Fields(string(data))
	if len(f) != 4 || f[0] != "mqttsec-counter" || f[1] != "v1" || string(data) != strings.Join(f, " ")+"\n" {
		return 0, ErrCorrupt
	}
	n, err := strconv.ParseUint(f[2], 10, 64)
	if err != nil || n == 0 || fmt.Sprintf("%08x", crc32.ChecksumIEEE([]byte(f[2]))) != f[3] {
		return 0, ErrCorrupt
	}
	return n, nil
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
	if err := c.write(c.path, counterLine(limit), 0o600); err != nil {
		return fmt.Errorf("replay: reserving counters: %w", err)
	}
	c.limit = limit
	return nil
}
