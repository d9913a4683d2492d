package replay

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"syscall"

	"github.com/mqttsec/mqttsec/internal/keyfile"
)

// openLocked opens path for reading and writing (creating it, mode 0600),
// refuses anything but a regular file, and locks it (see lock) until the
// file is closed.
func openLocked(path string) (*os.File, error) {
	f, err := keyfile.OpenRegular(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, err
	}
	if err := lock(f); err != nil {
		f.Close()
		if errors.Is(err, ErrLocked) {
			return nil, fmt.Errorf("%w: %s", ErrLocked, path)
		}
		return nil, err
	}
	return f, nil
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}

// writeStamped replaces path with a block that stamp returns (the same
// length at each call) followed, at offset fileHeaderSize, by body (none
// if empty). It writes a temporary file (mode 0600) in the same directory,
// renames it over path and syncs the directory, so that after a crash path
// holds either the old or the new content. The body is written and synced
// first, then the stamp, synced too: the file is then whole and valid. The
// stamp is written once more just before the rename, which is the file's
// last change (its ctime), and synced once the file is in place: so the
// time that a stamp holds is taken after every slow step, however long the
// body and the first stamp took to reach the disk. A power loss before the
// last sync may leave the first stamp, which is as valid.
func writeStamped(path string, body []byte, stamp func() []byte) error {
	dir := filepath.Dir(path)
	tmp, err := os.CreateTemp(dir, "."+filepath.Base(path)+".tmp*") // mode 0600
	if err != nil {
		return err
	}
	name := tmp.Name()
	defer os.Remove(name) // no-op after the rename
	err = fillStamped(tmp, body, stamp)
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return err
	}
	if err := os.Rename(name, path); err != nil {
		return err
	}
	if err := syncFile(path); err != nil {
		return err
	}
	return syncDir(dir)
}

func fillStamped(f *os.File, body []byte, stamp func() []byte) error {
	if len(body) > 0 {
		if _, err := f.WriteAt(body, fileHeaderSize); err != nil {
			return err
		}
		if err := f.Sync(); err != nil {
			return err
		}
	}
	first := stamp()
	if _, err := f.WriteAt(first, 0); err != nil {
		return err
	}
	if err := f.Sync(); err != nil {
		return err
	}
	again := stamp()
	if len(again) != len(first) {
		return fmt.Errorf("replay: a stamp of %d bytes, then of %d", len(first), len(again))
	}
	_, err := f.WriteAt(again, 0)
	return err
}

// syncFile syncs the file at path (opening it changes nothing in it).
func syncFile(path string) error {
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		return err
	}
	err = f.Sync()
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}

// moveAside renames a state file that is no longer trusted to
// <path>.damaged, replacing an older one: kept for inspection, never read
// again. A missing file is left missing.
func moveAside(path string) error {
	err := os.Rename(path, path+damagedSuffix)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	return err
}

// makeDir creates dir (mode 0700) if it does not exist, and reports
// whether it did.
func makeDir(dir string) (existed bool, err error) {
	fi, err := os.Stat(dir)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return false, os.MkdirAll(dir, 0o700)
	case err != nil:
		return false, err
	case !fi.IsDir():
		return true, &fs.PathError{Op: "open", Path: dir, Err: syscall.ENOTDIR}
	}
	return true, nil
}

// openState opens a state file that must be a regular file; a missing
// one is nil, with no error.
func openState(path string, flag int) (*os.File, error) {
	f, err := keyfile.OpenRegular(path, flag, 0)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	return f, err
}
