package replay

import (
	"encoding/binary"
	"fmt"
	"hash/crc32"
	"math"
	"os"
	"time"

	"github.com/mqttsec/mqttsec/envelope"
)

// The FileStore's on-disk format; FileStore's documentation describes it
// and the reasons for it.

const (
	logName      = "replay.log"
	snapshotName = "replay.snapshot"
	lockName     = "replay.lock"
	// damagedSuffix names a state file moved aside after a loss.
	damagedSuffix = ".damaged"

	logMagic  = "MQSRLOG2"
	snapMagic = "MQSRSNP2"
	// fileHeaderSize is the size of the block at the start of the log and
	// of the snapshot.
	fileHeaderSize = 64
	// frameOverhead is a frame's length, write time and CRC.
	frameOverhead = 4 + 8 + 4
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

func crc32c(b []byte) uint32 { return crc32.Checksum(b, castagnoli) }

// fileHeader is the block at offset 0 of the log and of the snapshot.
type fileHeader struct {
	id  [16]byte // the store's random id
	gen uint64   // the snapshot generation
	// length is, in the log, the committed length and, in the snapshot,
	// the file's length; both count the header.
	length  int64
	commit  time.Time // the wall clock when the header was written
	loss    time.Time // when the latest loss was noticed (zero: never)
	bodyCRC uint32    // the snapshot's body's CRC-32C (0 in the log)
}

// encode returns the header's 64 bytes: magic, id, generation, length,
// commit time and loss time (Unix nanoseconds, 0 for none), body CRC, and
// the CRC-32C of the 60 bytes before it; integers big-endian.
func (h fileHeader) encode(magic string) []byte {
	b := make([]byte, 0, fileHeaderSize)
	b = append(b, magic...)
	b = append(b, h.id[:]...)
	b = binary.BigEndian.AppendUint64(b, h.gen)
	b = binary.BigEndian.AppendUint64(b, uint64(h.length))
	b = binary.BigEndian.AppendUint64(b, uint64(unixNano(h.commit)))
	b = binary.BigEndian.AppendUint64(b, uint64(unixNano(h.loss)))
	b = binary.BigEndian.AppendUint32(b, h.bodyCRC)
	return binary.BigEndian.AppendUint32(b, crc32c(b))
}

// parseFileHeader reads the header at the start of b, and reports whether
// it is whole, of this magic, undamaged and plausible.
func parseFileHeader(b []byte, magic string) (fileHeader, bool) {
	if len(b) < fileHeaderSize || string(b[:8]) != magic ||
		crc32c(b[:60]) != binary.BigEndian.Uint32(b[60:]) {
		return fileHeader{}, false
	}
	h := fileHeader{
		gen:     binary.BigEndian.Uint64(b[24:]),
		length:  int64(binary.BigEndian.Uint64(b[32:])),
		commit:  fromUnixNano(int64(binary.BigEndian.Uint64(b[40:]))),
		loss:    fromUnixNano(int64(binary.BigEndian.Uint64(b[48:]))),
		bodyCRC: binary.BigEndian.Uint32(b[56:]),
	}
	copy(h.id[:], b[8:24])
	// No store reaches the last generation: the next one would wrap.
	return h, h.length >= fileHeaderSize && h.gen < math.MaxUint64
}

func unixNano(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.UnixNano()
}

func fromUnixNano(n int64) time.Time {
	if n == 0 {
		return time.Time{}
	}
	return time.Unix(0, n)
}

// encodeFrame returns one group commit's frame: the length n of what
// follows up to the CRC, then the write time (Unix nanoseconds) and the
// records, then the CRC-32C of everything before it in the frame.
func encodeFrame(written time.Time, records []byte) []byte {
	b := make([]byte, 0, frameOverhead+len(records))
	b = binary.BigEndian.AppendUint32(b, uint32(8+len(records)))
	b = binary.BigEndian.AppendUint64(b, uint64(written.UnixNano()))
	b = append(b, records...)
	return binary.BigEndian.AppendUint32(b, crc32c(b))
}

// parseFrame reads the frame at the start of b: its write time, its
// records and its size; ok is false unless it is whole and undamaged.
func parseFrame(b []byte) (written time.Time, records []byte, size int, ok bool) {
	if len(b) < frameOverhead {
		return time.Time{}, nil, 0, false
	}
	n := int64(binary.BigEndian.Uint32(b))
	if n < 8 || n > int64(len(b)-8) {
		return time.Time{}, nil, 0, false
	}
	if crc32c(b[:4+n]) != binary.BigEndian.Uint32(b[4+n:]) {
		return time.Time{}, nil, 0, false
	}
	written = time.Unix(0, int64(binary.BigEndian.Uint64(b[4:])))
	return written, b[12 : 4+n], int(4 + n + 4), true
}

// fileRecord is one accepted message, or in the snapshot one sender's
// highest counter and newest issue time.
type fileRecord struct {
	sender   string
	ctr      uint64
	issuedAt time.Time
}

// appendRecord appends [u16 sender length][sender][u64 counter][i64
// issued-at, Unix milliseconds].
func appendRecord(b []byte, sender string, ctr uint64, issuedAt time.Time) []byte {
	b = binary.BigEndian.AppendUint16(b, uint16(len(sender)))
	b = append(b, sender...)
	b = binary.BigEndian.AppendUint64(b, ctr)
	return binary.BigEndian.AppendUint64(b, uint64(issuedAt.UnixMilli()))
}

// parseRecords appends the records that fill b to recs; ok is false if b
// is not a whole number of well-formed records.
func parseRecords(b []byte, recs []fileRecord) (_ []fileRecord, ok bool) {
	for len(b) > 0 {
		if len(b) < 2 {
			return recs, false
		}
		n := int(binary.BigEndian.Uint16(b))
		if n > envelope.MaxIDLength || len(b) < 2+n+16 {
			return recs, false
		}
		recs = append(recs, fileRecord{
			sender:   string(b[2 : 2+n]),
			ctr:      binary.BigEndian.Uint64(b[2+n:]),
			issuedAt: time.UnixMilli(int64(binary.BigEndian.Uint64(b[10+n:]))),
		})
		b = b[2+n+16:]
	}
	return recs, true
}

// logImage is what a log holds: its header, the records of its committed
// frames, its size, and the time of its last write that the store made.
type logImage struct {
	hdr  fileHeader
	recs []fileRecord
	size int64
	// lastWrite is the header's commit time, or the write time of a whole
	// frame in the uncommitted tail if later: a crash between a frame and
	// its header leaves the file changed at that time.
	lastWrite time.Time
}

// parseLog reads a log; anything but a whole header followed by whole
// frames up to exactly its committed length (and anything after it, the
// uncommitted tail) is a *fileDamage.
func parseLog(data []byte) (logImage, error) {
	switch {
	case len(data) == 0:
		return logImage{}, damagedFile("replay.log is empty")
	case len(data) < fileHeaderSize:
		return logImage{}, damagedFile("replay.log is shorter than its header")
	}
	h, ok := parseFileHeader(data, logMagic)
	if !ok {
		return logImage{}, damagedFile("replay.log's header is damaged (or of an earlier version)")
	}
	if h.length > int64(len(data)) {
		return logImage{}, damagedFile("replay.log is cut: %d bytes of %d committed are left", len(data), h.length)
	}
	recs, err := parseFrames(data[fileHeaderSize:h.length])
	if err != nil {
		return logImage{}, err
	}
	img := logImage{hdr: h, recs: recs, size: int64(len(data)), lastWrite: h.commit}
	if t, _, _, ok := parseFrame(data[h.length:]); ok && t.After(img.lastWrite) {
		img.lastWrite = t
	}
	return img, nil
}

// lastRecorded returns the latest time that a state file (of kind magic,
// with status fi) records and that can be read: its header's commit time
// and loss time, if the header checks out, and in the log the write time
// of each frame from the header on that checks out, up to the first that
// does not, committed or not; zero if none. It serves where the file does
// not check out as a whole, to date a loss.
//
// A commit or write time must also be plausible: after 1970, and no later
// than the file's change time (or its modification time, where the system
// has none that this package reads) plus ctimeSlack. The store takes such
// a time just before it writes it, so a later one was not written by this
// machine's clock: a CRC that checked out by chance, or a crafted file,
// which would otherwise refuse every message until then. A loss time is
// taken as restore takes it from a file that checks out: it may be later
// than the file, when the loss was dated by a time recorded before it.
func lastRecorded(data []byte, magic string, fi os.FileInfo) time.Time {
	changed := fi.ModTime()
	if ct, ok := changeTime(fi); ok {
		changed = ct
	}
	ceiling := changed.Add(ctimeSlack)
	var latest time.Time
	take := func(t time.Time) {
		if t.UnixNano() > 0 && !t.After(ceiling) {
			latest = later(latest, t)
		}
	}
	h, ok := parseFileHeader(data, magic)
	if ok {
		take(h.commit)
		latest = later(latest, h.loss)
	}
	if magic != logMagic || len(data) < fileHeaderSize {
		return latest
	}
	for b := data[fileHeaderSize:]; ; {
		t, _, size, ok := parseFrame(b)
		if !ok {
			return latest
		}
		take(t)
		b = b[size:]
	}
}

// parseFrames reads the committed frames, which start after the header.
func parseFrames(b []byte) ([]fileRecord, error) {
	var recs []fileRecord
	for pos := 0; pos < len(b); {
		_, body, size, ok := parseFrame(b[pos:])
		if ok {
			recs, ok = parseRecords(body, recs)
		}
		if !ok {
			return nil, damagedFile("replay.log is damaged at offset %d", fileHeaderSize+pos)
		}
		pos += size
	}
	return recs, nil
}

// fileSnapshot is what a snapshot holds: its header, the floor of the
// senders it forgot, and one record per sender it kept.
type fileSnapshot struct {
	hdr   fileHeader
	floor time.Time
	recs  []fileRecord
}

// encodeSnapshotBody returns what follows a snapshot's header: the floor
// (i64 Unix nanoseconds, 0 for none), then one record per sender.
func encodeSnapshotBody(mem *MemoryStore) []byte {
	b := binary.BigEndian.AppendUint64(nil, uint64(unixNano(mem.Floor())))
	mem.Each(func(sender string, highest uint64, newest time.Time) {
		b = appendRecord(b, sender, highest, newest)
	})
	return b
}

// parseSnapshot reads a snapshot, and reports whether it is whole and
// undamaged.
func parseSnapshot(data []byte) (fileSnapshot, bool) {
	h, ok := parseFileHeader(data, snapMagic)
	if !ok || h.gen == 0 || h.length != int64(len(data)) || len(data) < fileHeaderSize+8 {
		return fileSnapshot{}, false
	}
	body := data[fileHeaderSize:]
	if crc32c(body) != h.bodyCRC {
		return fileSnapshot{}, false
	}
	recs, ok := parseRecords(body[8:], nil)
	floor := fromUnixNano(int64(binary.BigEndian.Uint64(body)))
	return fileSnapshot{hdr: h, floor: floor, recs: recs}, ok
}

// fileDamage is a loss found while opening a FileStore, saying what was
// found; OpenFileStore reports it as a *LossError.
type fileDamage struct{ what string }

func (d *fileDamage) Error() string { return d.what }

func damagedFile(format string, args ...any) error {
	return &fileDamage{what: fmt.Sprintf(format, args...)}
}
