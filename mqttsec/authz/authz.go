// Package authz decides, after a caller is authenticated, whether it may
// call a method: callers belong to groups, groups are granted (or denied)
// method patterns. Nothing is allowed unless granted, and a deny always
// wins.
//
// Two files describe the rules, one entry per line, '#' starting a comment:
//
//	# users: caller-id   group, group, ...
//	door-controller-7    doors, audit
//	ops-console          operators
//
//	# groups: group      pattern, pattern, ...   ('!' denies)
//	doors                doors/*, get-card
//	operators            *, !admin/*
//	audit                log/append
//
// Patterns match the full method name: '*' matches any run of characters
// ('/' included), '?' exactly one, and every other character itself —
// hyphens, dots and brackets included. There are no regular expressions.
//
// A file with a syntax error is refused as a whole with its file name and
// line; an [Authorizer] then keeps the rules it had.
package authz

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"sync/atomic"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/mqttsec/mqttsec/envelope"
	"github.com/mqttsec/mqttsec/internal/keyfile"
	"github.com/mqttsec/mqttsec/internal/poll"
)

// SyntaxError is a malformed line in a rules file.
type SyntaxError struct {
	File string
	Line int
	Msg  string
}

func (e *SyntaxError) Error() string { return fmt.Sprintf("%s:%d: %s", e.File, e.Line, e.Msg) }

// Rules is a parsed, immutable set of rules.
type Rules struct {
	groups map[string][]string // caller -> groups
	allow  map[string][]string // group -> patterns
	deny   map[string][]string // group -> patterns
}

// MaxLineLength bounds a line of a rules file.
const MaxLineLength = 4096

// MaxFileSize bounds a rules file: 16 MiB holds several hundred thousand
// callers, and a file larger than that (a wrong path, a runaway generator)
// is refused before it fills the memory.
const MaxFileSize = 16 << 20

// ErrTooLarge is wrapped by the error for a rules file longer than
// MaxFileSize.
var ErrTooLarge = fmt.Errorf("rules file larger than %d bytes", MaxFileSize)

// limited reads at most MaxFileSize bytes from r, then fails with
// ErrTooLarge if there is more.
type limited struct {
	r    io.Reader
	left int64
}

func (l *limited) Read(p []byte) (int, error) {
	if l.left < 0 {
		return 0, ErrTooLarge
	}
	// One byte past the limit tells a file of exactly MaxFileSize bytes
	// from a longer one.
	if int64(len(p)) > l.left+1 {
		p = p[:l.left+1]
	}
	n, err := l.r.Read(p)
	l.left -= int64(n)
	if l.left < 0 {
		return 0, ErrTooLarge
	}
	return n, err
}

// Parse reads the users and groups files (names are used in errors only).
// Every group a user names must be defined in the groups file. A file of
// more than MaxFileSize bytes is refused with an error wrapping
// ErrTooLarge.
func Parse(usersName string, users io.Reader, groupsName string, groups io.Reader) (*Rules, error) {
	r := &Rules{groups: map[string][]string{}, allow: map[string][]string{}, deny: map[string][]string{}}
	defined := map[string]int{}
	err := readEntries(groupsName, groups, func(line int, group string, items []string) error {
		if _, dup := defined[group]; dup {
			return fmt.Errorf("group %q defined twice", group)
		}
		defined[group] = line
		for _, p := range items {
			deny := strings.HasPrefix(p, "!")
			p = strings.TrimPrefix(p, "!")
			if p == "" {
				return errors.New("empty pattern")
			}
			if deny {
				r.deny[group] = append(r.deny[group], p)
			} else {
				r.allow[group] = append(r.allow[group], p)
			}
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	err = readEntries(usersName, users, func(line int, caller string, items []string) error {
		if _, dup := r.groups[caller]; dup {
			return fmt.Errorf("caller %q listed twice", caller)
		}
		for _, g := range items {
			if _, ok := defined[g]; !ok {
				return fmt.Errorf("group %q is not defined in %s", g, groupsName)
			}
		}
		r.groups[caller] = items
		return nil
	})
	if err != nil {
		return nil, err
	}
	return r, nil
}

// readEntries parses "name  item, item, ..." lines.
func readEntries(file string, in io.Reader, entry func(line int, name string, items []string) error) error {
	sc := bufio.NewScanner(&limited{r: in, left: MaxFileSize})
	sc.Buffer(make([]byte, 0, 1024), MaxLineLength)
	n := 0
	for sc.Scan() {
		n++
		text := sc.Text()
		if i := strings.IndexByte(text, '#'); i >= 0 {
			text = text[:i]
		}
		text = strings.TrimSpace(text)
		if text == "" {
			continue
		}
		name, rest, ok := strings.Cut(text, " ")
		if !ok {
			name, rest, ok = strings.Cut(text, "\t")
		}
		if !ok || strings.TrimSpace(rest) == "" {
			return &SyntaxError{file, n, "want a name followed by a comma-separated list"}
		}
		if !validName(name) {
			return &SyntaxError{file, n, fmt.Sprintf("invalid name %q", name)}
		}
		var items []string
		for _, it := range strings.Split(rest, ",") {
			it = strings.TrimSpace(it)
			if it == "" || strings.IndexFunc(it, unicode.IsSpace) >= 0 || !utf8.ValidString(it) {
				return &SyntaxError{file, n, fmt.Sprintf("invalid list item %q", it)}
			}
			items = append(items, it)
		}
		if err := entry(n, name, items); err != nil {
			return &SyntaxError{file, n, err.Error()}
		}
	}
	if err := sc.Err(); errors.Is(err, ErrTooLarge) {
		return fmt.Errorf("%s: %w", file, err)
	} else if err != nil {
		return &SyntaxError{file, n + 1, err.Error()}
	}
	return nil
}

// validName reports whether s may be a caller or group name: the
// envelope's id rules.
func validName(s string) bool { return envelope.ValidID(s) }

// Allowed reports whether caller may call method: some group of the caller
// grants a matching pattern, and no group of the caller denies one.
func (r *Rules) Allowed(caller, method string) bool {
	allowed := false
	for _, g := range r.groups[caller] {
		for _, p := range r.deny[g] {
			if Match(p, method) {
				return false
			}
		}
		for _, p := range r.allow[g] {
			if Match(p, method) {
				allowed = true
			}
		}
	}
	return allowed
}

// Match reports whether method matches pattern: '*' matches any run of
// characters, '?' one character, everything else itself.
func Match(patternText, methodText string) bool {
	// Iterative glob matching over characters with one back-tracking
	// point: never exponential.
	pattern, method := []rune(patternText), []rune(methodText)
	p, m := 0, 0
	starP, starM := -1, 0
	for m < len(method) {
		switch {
		case p < len(pattern) && pattern[p] == '*':
			starP, starM = p, m
			p++
		case p < len(pattern) && (pattern[p] == '?' || pattern[p] == method[m]):
			p++
			m++
		case starP >= 0:
			starM++
			p, m = starP+1, starM
		default:
			return false
		}
	}
	for p < len(pattern) && pattern[p] == '*' {
		p++
	}
	return p == len(pattern)
}

// Authorizer holds the rules loaded from two files and can reload them
// without a restart; it is safe for concurrent use. A reload that fails
// keeps the previous rules.
type Authorizer struct {
	users, groups string
	rules         atomic.Pointer[Rules]
	stamp         atomic.Value // string: the files' sizes and modification times
}

// ErrNotRegular is wrapped by Load's and Reload's error when a rules file
// is a directory, device or FIFO.
var ErrNotRegular = keyfile.ErrNotRegular

// Load reads the rules from the users and groups files. Each must be a
// regular file of at most MaxFileSize bytes: anything else is refused
// (ErrNotRegular, ErrTooLarge) instead of being read or waited on.
func Load(usersPath, groupsPath string) (*Authorizer, error) {
	a := &Authorizer{users: usersPath, groups: groupsPath}
	if err := a.Reload(); err != nil {
		return nil, err
	}
	return a, nil
}

// Reload reads the files again; on any error the previous rules stay.
func (a *Authorizer) Reload() error {
	stamp := a.fileStamp()
	u, err := keyfile.OpenRegular(a.users, os.O_RDONLY, 0)
	if err != nil {
		return err
	}
	defer u.Close()
	g, err := keyfile.OpenRegular(a.groups, os.O_RDONLY, 0)
	if err != nil {
		return err
	}
	defer g.Close()
	r, err := Parse(a.users, u, a.groups, g)
	if err != nil {
		return err
	}
	a.rules.Store(r)
	a.stamp.Store(stamp)
	return nil
}

func (a *Authorizer) fileStamp() string {
	var b strings.Builder
	for _, p := range []string{a.users, a.groups} {
		if st, err := os.Stat(p); err == nil {
			fmt.Fprintf(&b, "%d/%d;", st.Size(), st.ModTime().UnixNano())
		}
	}
	return b.String()
}

// Watch reloads the rules whenever either file changes (checked every
// interval) until ctx ends, and reports each change once: to onReload
// after the new rules took force, to onError (a *SyntaxError names the
// file and line) when they were refused and the previous rules stay.
// Either may be nil.
func (a *Authorizer) Watch(ctx context.Context, interval time.Duration, onReload func(), onError func(error)) {
	last, _ := a.stamp.Load().(string)
	poll.Reload(ctx, interval, last, a.fileStamp, a.Reload, onReload, onError)
}

// Allowed reports whether caller may call method under the current rules.
// Use it as mqttsec.ServerConfig.Authorize.
func (a *Authorizer) Allowed(caller, method string) bool {
	return a.rules.Load().Allowed(caller, method)
}
