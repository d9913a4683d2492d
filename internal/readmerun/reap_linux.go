package main

import "syscall"

// prSetChildSubreaper is PR_SET_CHILD_SUBREAPER from linux/prctl.h.
const prSetChildSubreaper = 36

// becomeSubreaper makes the runner the parent of every orphan among its
// descendants, so that it can wait for a job's processes after the job's
// leader (go run, which dies of SIGTERM) has exited, and see how they
// ended.
func becomeSubreaper() error {
	if _, _, errno := syscall.RawSyscall(syscall.SYS_PRCTL, prSetChildSubreaper, 1, 0); errno != 0 {
		return errno
	}
	return nil
}
