//go:build unix

package keyfile

import (
	"os"
	"syscall"
)

// openFlags opens without blocking, so that a key file path naming a FIFO
// is refused as not regular instead of waiting for a writer.
const openFlags = os.O_RDONLY | syscall.O_NONBLOCK
