//go:build linux

package main

import (
	"bytes"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
)

// copyRepo copies the work tree of the git checkout at repo into dst, a
// new directory: the files git tracks, and those it would show as
// untracked (new files not ignored), as they are on disk. The README's
// commands then write their keys and captures there, not in the checkout,
// and start from a tree without them, as on a fresh clone. It returns how
// many files it copied.
func copyRepo(repo, dst string) (int, error) {
	list, err := exec.Command("git", "-C", repo, "ls-files", "-z", "--cached", "--others", "--exclude-standard").Output()
	if err != nil {
		return 0, fmt.Errorf("listing the files of %s (a git checkout is needed): %v", repo, err)
	}
	n := 0
	for _, name := range bytes.Split(bytes.TrimRight(list, "\x00"), []byte{0}) {
		copied, err := copyEntry(filepath.Join(repo, string(name)), filepath.Join(dst, string(name)))
		if err != nil {
			return n, err
		}
		if copied {
			n++
		}
	}
	return n, nil
}

// copyEntry copies a regular file or a symbolic link from src to dst,
// making dst's directory; it skips what no longer exists (deleted in the
// work tree) and anything else (submodules).
func copyEntry(src, dst string) (bool, error) {
	info, err := os.Lstat(src)
	if os.IsNotExist(err) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
		return false, err
	}
	switch {
	case info.Mode()&os.ModeSymlink != 0:
		target, err := os.Readlink(src)
		if err != nil {
			return false, err
		}
		return true, os.Symlink(target, dst)
	case info.Mode().IsRegular():
		return true, copyFile(src, dst, info.Mode().Perm())
	}
	return false, nil
}

// copyFile copies src's bytes to a new file dst with mode perm.
func copyFile(src, dst string, perm os.FileMode) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_EXCL, perm)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}
