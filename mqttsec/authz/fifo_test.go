//go:build linux || darwin || freebsd || netbsd || openbsd || dragonfly

package authz

import (
	"errors"
	"os"
	"path/filepath"
	"syscall"
	"testing"
)

// A rules file that is not a regular file is refused at once, and a failed
// reload keeps the rules in force; a FIFO would otherwise block Load, and
// Watch with it, until something wrote to it.
func TestRulesFilesMustBeRegular(t *testing.T) {
	u, g := ruleFiles(t)
	dir := filepath.Dir(u)
	fifo := filepath.Join(dir, "fifo")
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct{ name, users, groups string }{
		{"users is a FIFO", fifo, g},
		{"groups is a FIFO", u, fifo},
		{"users is a directory", dir, g},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := Load(tc.users, tc.groups); !errors.Is(err, ErrNotRegular) {
				t.Fatalf("Load = %v, want an error wrapping %v", err, ErrNotRegular)
			}
		})
	}
	a, err := Load(u, g)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Remove(g); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Mkfifo(g, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := a.Reload(); !errors.Is(err, ErrNotRegular) {
		t.Fatalf("Reload = %v, want an error wrapping %v", err, ErrNotRegular)
	}
	if !a.Allowed("a", "get-card") {
		t.Fatal("a failed reload dropped the rules in force")
	}
}
