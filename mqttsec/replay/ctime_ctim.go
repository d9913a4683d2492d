//go:build linux || openbsd || dragonfly || solaris

package replay

import (
	"os"
	"syscall"
	"time"
)

// changeTimeSupported reports whether changeTime reads the change time
// (ctime) on this system.
const changeTimeSupported = true

// changeTime returns when the file's inode last changed (ctime): a write,
// a truncation, a change of mode or owner, a rename. Unlike the
// modification time, no program can set it back.
func changeTime(fi os.FileInfo) (time.Time, bool) {
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok {
		return time.Time{}, false
	}
	return time.Unix(st.Ctim.Unix()), true
}
