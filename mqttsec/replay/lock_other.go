//go:build !(linux || darwin || freebsd || netbsd || openbsd || dragonfly)

package replay

import "os"

// lockSupported reports whether lock takes a real lock on this system.
const lockSupported = false

// lock does nothing on systems without flock: nothing stops a second
// FileStore or FileCounter from opening the same state there.
func lock(*os.File) error { return nil }
