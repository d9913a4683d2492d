//go:build linux || darwin || freebsd || netbsd || openbsd || dragonfly

package replay

import (
	"errors"
	"os"
	"syscall"
)

// lockSupported reports whether lock takes a real lock on this system.
const lockSupported = true

// lock takes an exclusive advisory lock (flock) on f without waiting; the
// lock lasts until f is closed, or the process ends. Another holder is
// ErrLocked.
func lock(f *os.File) error {
	rc, err := f.SyscallConn()
	if err != nil {
		return err
	}
	var lockErr error
	if err := rc.Control(func(fd uintptr) {
		lockErr = syscall.Flock(int(fd), syscall.LOCK_EX|syscall.LOCK_NB)
	}); err != nil {
		return err
	}
	if errors.Is(lockErr, syscall.EWOULDBLOCK) {
		return ErrLocked
	}
	return lockErr
}
