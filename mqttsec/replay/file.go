package replay

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/mqttsec/mqttsec/envelope"
	"github.com/mqttsec/mqttsec/internal/keyfile"
)

// FileStore is a ReplayStore kept in a directory, safe across crashes.
//
// # Durability
//
// Every accepted message is appended to a log before Admit returns, and the
// log is fsynced: once Admit returned nil the acceptance survives a crash.
// Concurrent Admits share one write and one fsync (group commit), so
// throughput stays high. Each write is one framed batch with a CRC; after a
// crash, a torn last batch (whose Admits never returned) is discarded, and
// damage anywhere else is ErrCorrupt, never a silent loss.
//
// When the log grows past CompactAfter bytes it is folded into a snapshot:
// the snapshot is written to a temporary file, fsynced and renamed, then the
// log is truncated. A crash at any point leaves either the old snapshot and
// the full log, or the new snapshot (and possibly the old log, which replays
// harmlessly).
//
// On start, each known sender's counters up to the highest it had accepted
// are refused (a message merely reordered across a restart is refused
// too: the safe side).
//
// The store locks its log until Close (or the end of the process): a
// second OpenFileStore of the directory is ErrLocked, since two stores on
// one directory would each admit what the other had seen. The lock is
// flock(2) where the system has it.
type FileStore struct {
	dir          string
	compactAfter int64
	mem          *envelope.MemoryStore

	mu      sync.Mutex // guards pending, seq, err
	pending []byte
	seq     uint64
	err     error

	flushMu sync.Mutex // one flusher at a time; guards log, durable, logSize
	log     *os.File
	durable uint64
	logSize int64
	closed  bool
}

var _ envelope.ReplayStore = (*FileStore)(nil)

// FileStoreOptions configures OpenFileStore. The zero value is usable.
type FileStoreOptions struct {
	// Width is the replay window width (0: envelope.DefaultWindow).
	Width int
	// MaxSenders bounds the senders tracked (0: envelope.DefaultMaxSenders).
	MaxSenders int
	// CompactAfter is the log size that triggers a snapshot (0: 4 MiB).
	CompactAfter int64
}

const (
	snapshotName = "replay.snapshot"
	logName      = "replay.log"
	snapMagic    = "mqttsec-replay-snapshot v1\n"
)

// OpenFileStore opens (creating if needed) the store in dir. While another
// store holds dir the error is ErrLocked; a damaged state file is
// ErrCorrupt; a state file that is not a regular file is refused.
func OpenFileStore(dir string, opt FileStoreOptions) (*FileStore, error) {
	if opt.MaxSenders == 0 {
		opt.MaxSenders = envelope.DefaultMaxSenders
	}
	if opt.CompactAfter <= 0 {
		opt.CompactAfter = 4 << 20
	}
	mem, err := envelope.NewBoundedMemoryStore(opt.Width, opt.MaxSenders)
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, err
	}
	s := &FileStore{dir: dir, compactAfter: opt.CompactAfter, mem: mem}
	log, err := openLocked(filepath.Join(dir, logName))
	if err != nil {
		return nil, err
	}
	if err := s.loadSnapshot(); err != nil {
		log.Close()
		return nil, err
	}
	if err := s.replayLog(log); err != nil {
		log.Close()
		return nil, err
	}
	return s, nil
}

func (s *FileStore) loadSnapshot() error {
	f, err := keyfile.OpenRegular(filepath.Join(s.dir, snapshotName), os.O_RDONLY, 0)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	// Unbounded: a store opened with a smaller MaxSenders than the one that
	// wrote the snapshot must still start (Restore drops the excess).
	data, err := io.ReadAll(f)
	f.Close()
	if err != nil {
		return err
	}
	if len(data) < len(snapMagic)+8+4 || string(data[:len(snapMagic)]) != snapMagic {
		return fmt.Errorf("%w: %s", ErrCorrupt, snapshotName)
	}
	body, sum := data[:len(data)-4], binary.BigEndian.Uint32(data[len(data)-4:])
	if crc32.ChecksumIEEE(body) != sum {
		return fmt.Errorf("%w: %s", ErrCorrupt, snapshotName)
	}
	r := bytes.NewReader(body[len(snapMagic):])
	var floor int64
	if binary.Read(r, binary.BigEndian, &floor) != nil {
		return fmt.Errorf("%w: %s", ErrCorrupt, snapshotName)
	}
	s.mem.RaiseFloor(time.UnixMilli(floor))
	for r.Len() > 0 {
		sender, ctr, iat, err := readRecord(r)
		if err != nil {
			return fmt.Errorf("%w: %s", ErrCorrupt, snapshotName)
		}
		s.mem.Restore(sender, ctr, time.UnixMilli(iat))
	}
	return nil
}

// Log layout: batches of [u32 length][records][u32 crc32 of records];
// a record is [u16 sender length][sender][u64 counter][i64 issued-at ms].
// replayLog reads the locked log f, which the store keeps for writing; the
// caller closes f if replayLog fails.
func (s *FileStore) replayLog(f *os.File) error {
	data, err := io.ReadAll(f)
	if err != nil {
		return err
	}
	good := 0
	for good < len(data) {
		rest := data[good:]
		if len(rest) < 4 {
			break // torn length
		}
		n := int(binary.BigEndian.Uint32(rest))
		if n > len(rest)-8 {
			break // torn batch: it runs past the end
		}
		batch, sum := rest[4:4+n], binary.BigEndian.Uint32(rest[4+n:])
		if crc32.ChecksumIEEE(batch) != sum {
			if 4+n+4 == len(rest) {
				break // the last batch, torn inside
			}
			return fmt.Errorf("%w: %s at offset %d", ErrCorrupt, logName, good)
		}
		r := bytes.NewReader(batch)
		for r.Len() > 0 {
			sender, ctr, iat, err := readRecord(r)
			if err != nil {
				return fmt.Errorf("%w: %s at offset %d", ErrCorrupt, logName, good)
			}
			s.mem.Restore(sender, ctr, time.UnixMilli(iat))
		}
		good += 4 + n + 4
	}
	if good < len(data) {
		// Discard the torn tail: its Admits never returned.
		if err := f.Truncate(int64(good)); err != nil {
			return err
		}
		if err := f.Sync(); err != nil {
			return err
		}
	}
	if _, err := f.Seek(int64(good), io.SeekStart); err != nil {
		return err
	}
	s.log, s.logSize = f, int64(good)
	return nil
}

func appendRecord(b []byte, sender string, ctr uint64, iatMs int64) []byte {
	b = binary.BigEndian.AppendUint16(b, uint16(len(sender)))
	b = append(b, sender...)
	b = binary.BigEndian.AppendUint64(b, ctr)
	return binary.BigEndian.AppendUint64(b, uint64(iatMs))
}

func readRecord(r *bytes.Reader) (string, uint64, int64, error) {
	var n uint16
	if err := binary.Read(r, binary.BigEndian, &n); err != nil {
		return "", 0, 0, err
	}
	if int(n) > envelope.MaxIDLength || int(n) > r.Len() {
		return "", 0, 0, ErrCorrupt
	}
	name := make([]byte, n)
	if _, err := io.ReadFull(r, name); err != nil {
		return "", 0, 0, err
	}
	var ctr uint64
	var iat int64
	if err := binary.Read(r, binary.BigEndian, &ctr); err != nil {
		return "", 0, 0, err
	}
	if err := binary.Read(r, binary.BigEndian, &iat); err != nil {
		return "", 0, 0, err
	}
	return string(name), ctr, iat, nil
}

// Check implements envelope.ReplayStore.
func (s *FileStore) Check(ctx context.Context, m envelope.Seen) error {
	return s.mem.Check(ctx, m)
}

// Admit implements envelope.ReplayStore. It returns only once the
// acceptance is on disk (or with an error, and then the message must not
// be acted on).
func (s *FileStore) Admit(ctx context.Context, m envelope.Seen) error {
	s.mu.Lock()
	if s.err != nil {
		s.mu.Unlock()
		return s.err
	}
	// The in-memory window decides atomically; a refused duplicate never
	// reaches the log.
	if err := s.mem.Admit(ctx, m); err != nil {
		s.mu.Unlock()
		return err
	}
	s.pending = appendRecord(s.pending, m.Sender, m.Counter, m.IssuedAt.UnixMilli())
	s.seq++
	mine := s.seq
	s.mu.Unlock()
	return s.flush(mine)
}

// flush makes every record up to mine durable, writing whatever is pending
// at that moment in one batch.
func (s *FileStore) flush(mine uint64) error {
	s.flushMu.Lock()
	defer s.flushMu.Unlock()
	if s.durable >= mine {
		return nil // an earlier flush carried this record
	}
	s.mu.Lock()
	batch, upto, failed := s.pending, s.seq, s.err
	s.pending = nil
	s.mu.Unlock()
	if failed != nil {
		return failed
	}
	if s.closed {
		return s.fail(ErrClosed)
	}
	frame := make([]byte, 0, len(batch)+8)
	frame = binary.BigEndian.AppendUint32(frame, uint32(len(batch)))
	frame = append(frame, batch...)
	frame = binary.BigEndian.AppendUint32(frame, crc32.ChecksumIEEE(batch))
	if _, err := s.log.Write(frame); err != nil {
		return s.fail(fmt.Errorf("replay: writing log: %w", err))
	}
	if err := s.log.Sync(); err != nil {
		return s.fail(fmt.Errorf("replay: syncing log: %w", err))
	}
	s.durable = upto
	s.logSize += int64(len(frame))
	if s.logSize >= s.compactAfter {
		if err := s.compactLocked(); err != nil {
			return s.fail(err)
		}
	}
	return nil
}

// fail makes the store refuse everything from now on: after an I/O error
// it cannot promise durability.
func (s *FileStore) fail(err error) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.err == nil {
		s.err = err
	}
	return s.err
}

// Compact folds the log into a new snapshot now.
func (s *FileStore) Compact() error {
	s.flushMu.Lock()
	defer s.flushMu.Unlock()
	return s.compactLocked()
}

// compactLocked writes a snapshot of the in-memory state (which includes
// everything durable) and empties the log; flushMu is held. Records still
// pending stay pending and are written to the emptied log later.
func (s *FileStore) compactLocked() error {
	var body bytes.Buffer
	body.WriteString(snapMagic)
	binary.Write(&body, binary.BigEndian, s.mem.Floor().UnixMilli())
	var rec []byte
	s.mem.Each(func(sender string, highest uint64, newest time.Time) {
		rec = appendRecord(rec[:0], sender, highest, newest.UnixMilli())
		body.Write(rec)
	})
	data := binary.BigEndian.AppendUint32(body.Bytes(), crc32.ChecksumIEEE(body.Bytes()))
	if err := writeFileAtomic(filepath.Join(s.dir, snapshotName), data, 0o600); err != nil {
		return fmt.Errorf("replay: writing snapshot: %w", err)
	}
	if err := s.log.Truncate(0); err != nil {
		return fmt.Errorf("replay: truncating log: %w", err)
	}
	if _, err := s.log.Seek(0, io.SeekStart); err != nil {
		return err
	}
	if err := s.log.Sync(); err != nil {
		return err
	}
	s.logSize = 0
	return nil
}

// Close flushes nothing further and closes the log, releasing the lock;
// Admit fails afterwards.
func (s *FileStore) Close() error {
	s.flushMu.Lock()
	defer s.flushMu.Unlock()
	if s.closed {
		return nil
	}
	s.closed = true
	s.fail(ErrClosed)
	return s.log.Close()
}
