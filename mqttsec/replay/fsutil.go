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

// writeFileAtomic replaces path with data: it writes a temporary file in the
// same directory, syncs it, renames it over path and syncs the directory,
// so that after a crash path holds either the old or the new content.
func writeFileAtomic(path string, data []byte, mode os.FileMode) error {
	dir := filepath.Dir(path)
	tmp, err := os.CreateTemp(dir, "."+filepath.Base(path)+".tmp*")
	if err != nil {
		return err
	}
	name := tmp.Name()
	defer os.Remove(name) // no-op after the rename
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Chmod(mode); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	if err := os.Rename(name, path); err != nil {
		return err
	}
	return syncDir(dir)
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}

// writeStamped replaces path, as writeFileAtomic does, with a header block
// of fileHeaderSize bytes followed by body. The body is written and synced
// first, then the header that stamp returns, synced too: a header holding
// its commit time is thus written just before the file's last change (the
// rename), however long the body took to reach the disk.
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
	if _, err := f.WriteAt(stamp(), 0); err != nil {
		return err
	}
	return f.Sync()
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
