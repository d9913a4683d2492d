package replay

import (
	"errors"
	"io"
	"os"
	"time"
)

// open locks the directory and loads the store, or starts it over in a
// loss state if what it finds is lost or damaged (see FileStore).
func (s *FileStore) open() error {
	existed, err := makeDir(s.dir)
	if err != nil {
		return err
	}
	if err := s.lockDir(); err != nil {
		return err
	}
	err = damagedFile("the replay directory is missing")
	var recorded time.Time
	if existed {
		recorded, err = s.load()
	}
	var d *fileDamage
	if errors.As(err, &d) {
		return s.startOver(d.what, recorded)
	}
	return err
}

// load reads and checks the log and the snapshot, and if they check out
// restores the windows from them and keeps the log for writing. A loss
// is a *fileDamage, returned with the latest time that the files, damaged
// or not, recorded (see lastRecorded); a file of the wrong kind or that
// cannot be read is another error.
func (s *FileStore) load() (recorded time.Time, err error) {
	log, err := openState(s.path(logName), os.O_RDWR)
	if err != nil {
		return time.Time{}, err
	}
	snap, err := openState(s.path(snapshotName), os.O_RDONLY)
	if err != nil {
		closeFile(log)
		return time.Time{}, err
	}
	defer closeFile(snap)
	lf, err := readState(log, logMagic)
	var sf stateFile
	if err == nil {
		sf, err = readState(snap, snapMagic)
	}
	if err != nil {
		closeFile(log)
		return time.Time{}, err
	}
	recorded = later(lf.recorded, sf.recorded)
	img, sn, err := verify(lf, sf)
	if err != nil {
		closeFile(log)
		return recorded, err
	}
	s.restore(img, sn)
	return recorded, s.adopt(log, img)
}

func closeFile(f *os.File) {
	if f != nil {
		f.Close()
	}
}

// stateFile is a state file as read: its bytes, its status (nil when
// missing), and the latest time the store recorded in it.
type stateFile struct {
	data     []byte
	fi       os.FileInfo
	recorded time.Time
}

// readState reads the state file f of kind magic (nil when missing), and
// stats it.
func readState(f *os.File, magic string) (stateFile, error) {
	if f == nil {
		return stateFile{}, nil
	}
	data, err := io.ReadAll(f)
	if err != nil {
		return stateFile{}, err
	}
	fi, err := f.Stat()
	if err != nil {
		return stateFile{}, err
	}
	return stateFile{data: data, fi: fi, recorded: lastRecorded(data, magic, fi)}, nil
}

func later(a, b time.Time) time.Time {
	if b.After(a) {
		return b
	}
	return a
}

// verify checks the log and the snapshot (fi nil when missing) against
// each other and against their change times.
func verify(log, snap stateFile) (logImage, fileSnapshot, error) {
	if log.fi == nil {
		return logImage{}, fileSnapshot{}, damagedFile("replay.log is missing")
	}
	img, err := parseLog(log.data)
	if err != nil {
		return logImage{}, fileSnapshot{}, err
	}
	if err := checkChangeTime(log.fi, img.lastWrite, logName); err != nil {
		return logImage{}, fileSnapshot{}, err
	}
	sn, err := checkSnapshot(snap, img.hdr)
	return img, sn, err
}

// checkSnapshot checks the snapshot (fi nil when missing) that a log with
// header want expects: none before the first compaction; then one of the
// log's store, of the log's generation, or of the next one if a crash
// came between the snapshot and the log's reset.
func checkSnapshot(snap stateFile, want fileHeader) (fileSnapshot, error) {
	switch {
	case snap.fi == nil && want.gen == 0:
		return fileSnapshot{}, nil
	case snap.fi == nil:
		return fileSnapshot{}, damagedFile("replay.snapshot is missing")
	}
	sn, ok := parseSnapshot(snap.data)
	switch {
	case !ok:
		return fileSnapshot{}, damagedFile("replay.snapshot is damaged")
	case sn.hdr.id != want.id:
		return fileSnapshot{}, damagedFile("replay.snapshot is another store's")
	case sn.hdr.gen != want.gen && sn.hdr.gen != want.gen+1:
		return fileSnapshot{}, damagedFile("replay.snapshot is of generation %d, replay.log expects %d", sn.hdr.gen, want.gen)
	}
	return sn, checkChangeTime(snap.fi, sn.hdr.commit, snapshotName)
}

// checkChangeTime finds a state file changed since the store last wrote
// it at written: its ctime is later by more than ctimeSlack.
func checkChangeTime(fi os.FileInfo, written time.Time, name string) error {
	if ct, ok := changeTime(fi); ok && ct.After(written.Add(ctimeSlack)) {
		return damagedFile("%s was changed after the store last wrote it (edited, or restored from a copy)", name)
	}
	return nil
}

// restore loads the windows, the floor and the loss time from a log and
// snapshot that checked out.
func (s *FileStore) restore(img logImage, sn fileSnapshot) {
	s.mem.RaiseFloor(sn.floor)
	for _, r := range append(sn.recs, img.recs...) {
		s.mem.Restore(r.sender, r.ctr, r.issuedAt)
	}
	s.lossAt = img.hdr.loss
	if sn.hdr.loss.After(s.lossAt) {
		s.lossAt = sn.hdr.loss
	}
	s.hdr = img.hdr
	s.hdr.gen = max(img.hdr.gen, sn.hdr.gen)
	s.hdr.loss = s.lossAt
}

// adopt keeps f as the log, cutting off an uncommitted tail: the frame of
// a commit that a crash interrupted, whose Admits never returned.
func (s *FileStore) adopt(f *os.File, img logImage) error {
	s.log = f
	if img.size == s.hdr.length {
		return nil
	}
	s.dirty = true
	if err := s.cutBack(); err != nil {
		return err
	}
	return s.sync()
}

// startOver moves the state files aside and starts a new log with no
// windows, refusing what was issued before the loss moment (plus the
// skew), and reports the loss. The loss moment is now, or recorded (the
// latest time the lost files recorded) if later: a clock that came up
// behind the one that accepted the messages (a device without a
// battery-backed clock, before it synchronizes) would otherwise refuse
// none of them.
func (s *FileStore) startOver(what string, recorded time.Time) error {
	noticed := later(s.now(), recorded)
	for _, name := range []string{logName, snapshotName} {
		if err := moveAside(s.path(name)); err != nil {
			return err
		}
	}
	if err := s.createLog(fileHeader{id: newStoreID(), length: fileHeaderSize, loss: noticed}); err != nil {
		return err
	}
	s.lossAt = noticed
	s.losses.report(&LossError{Noticed: noticed, What: what})
	return nil
}
