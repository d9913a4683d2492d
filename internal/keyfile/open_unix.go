//go:build unix

package keyfile

import "syscall"

// nonBlocking opens without blocking, so that a path naming a FIFO is
// refused as not regular instead of waiting for a writer.
const nonBlocking = syscall.O_NONBLOCK
