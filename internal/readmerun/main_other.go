//go:build !linux

// Command readmerun runs the commands of README.md; see main.go. It needs
// Linux (process groups, a child subreaper), where CI runs it.
package main

import (
	"fmt"
	"os"
)

func main() {
	fmt.Fprintln(os.Stderr, "readmerun: runs on Linux only")
	os.Exit(1)
}
