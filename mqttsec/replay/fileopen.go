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
	if existed {
		err = s.load()
	}
	var d *fileDamage
	if errors.As(err, &d) {
		return s.startOver(d.what)
	}
	return err
}

// load reads and checks the log and the snapshot, and if they check out
// restores the windows from them and keeps the log for writing. A loss
// is a *fileDamage; a file of the wrong kind or that cannot be read is
// another error.
func (s *FileStore) load() error {
	log, err := openState(s.path(logName), os.O_RDWR)
	if err != nil {
		return err
	}
	snap, err := openState(s.path(snapshotName), os.O_RDONLY)
	if err != nil {
		closeFile(log)
		return err
	}
	defer closeFile(snap)
	img, sn, err := verify(log, snap)
	if err != nil {
		closeFile(log)
		return err
	}
	s.restore(img, sn)
	return s.adopt(log, img)
}

func closeFile(f *os.File) {
	if f != nil {
		f.Close()
	}
}

// verify reads the log and the snapshot (nil when missing) and checks
// them against each other and against their change times.
func verify(log, snap *os.File) (logImage, fileSnapshot, error) {
	if log == nil {
		return logImage{}, fileSnapshot{}, damagedFile("replay.log is missing")
	}
	img, err := readLog(log)
	if err != nil {
		return logImage{}, fileSnapshot{}, err
	}
	sn, err := readSnapshot(snap, img.hdr)
	return img, sn, err
}

func readLog(f *os.File) (logImage, error) {
	data, err := io.ReadAll(f)
	if err != nil {
		return logImage{}, err
	}
	img, err := parseLog(data)
	if err != nil {
		return logImage{}, err
	}
	if err := checkChangeTime(f, img.lastWrite, logName); err != nil {
		return logImage{}, err
	}
	return img, nil
}

// readSnapshot reads the snapshot f (nil when missing) that a log with
// header want expects: none before the first compaction; then one of the
// log's store, of the log's generation, or of the next one if a crash
// came between the snapshot and the log's reset.
func readSnapshot(f *os.File, want fileHeader) (fileSnapshot, error) {
	switch {
	case f == nil && want.gen == 0:
		return fileSnapshot{}, nil
	case f == nil:
		return fileSnapshot{}, damagedFile("replay.snapshot is missing")
	}
	data, err := io.ReadAll(f)
	if err != nil {
		return fileSnapshot{}, err
	}
	sn, ok := parseSnapshot(data)
	switch {
	case !ok:
		return fileSnapshot{}, damagedFile("replay.snapshot is damaged")
	case sn.hdr.id != want.id:
		return fileSnapshot{}, damagedFile("replay.snapshot is another store's")
	case sn.hdr.gen != want.gen && sn.hdr.gen != want.gen+1:
		return fileSnapshot{}, damagedFile("replay.snapshot is of generation %d, replay.log expects %d", sn.hdr.gen, want.gen)
	}
	return sn, checkChangeTime(f, sn.hdr.commit, snapshotName)
}

// checkChangeTime finds a state file changed since the store last wrote
// it at written: its ctime is later by more than ctimeSlack.
func checkChangeTime(f *os.File, written time.Time, name string) error {
	fi, err := f.Stat()
	if err != nil {
		return err
	}
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
// windows, refusing what was issued before now (plus the skew), and
// reports the loss.
func (s *FileStore) startOver(what string) error {
	noticed := s.now()
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
