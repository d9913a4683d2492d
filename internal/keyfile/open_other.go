//go:build !unix

package keyfile

import "os"

// openFlags opens for reading; these systems have no FIFO that blocks an
// open.
const openFlags = os.O_RDONLY
