//go:build !unix

package keyfile

// nonBlocking adds nothing: these systems have no FIFO that blocks an open.
const nonBlocking = 0
