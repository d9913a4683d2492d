//go:build !(linux || openbsd || dragonfly || solaris || darwin || freebsd || netbsd)

package replay

import (
	"os"
	"time"
)

// changeTimeSupported reports whether changeTime reads the change time
// (ctime) on this system: not here, so a FileStore cannot tell a state
// file restored from a copy from its own.
const changeTimeSupported = false

// changeTime reports nothing on systems whose file status has no change
// time that this package reads.
func changeTime(os.FileInfo) (time.Time, bool) { return time.Time{}, false }
