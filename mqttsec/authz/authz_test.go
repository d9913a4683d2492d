package authz

import (
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/mqttsec/mqttsec/internal/testwait"
)

const users = `# who is in which group
door-7        doors, audit
ops           operators   # comment after an entry
auditor	audit
`

const groups = `doors      doors/*, get-card
operators  *, !admin/*, !delete-card
audit      log/append
`

func parse(t *testing.T, u, g string) (*Rules, error) {
	t.Helper()
	return Parse("users", strings.NewReader(u), "groups", strings.NewReader(g))
}

func TestAllowed(t *testing.T) {
	r, err := parse(t, users, groups)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		caller, method string
		want           bool
	}{
		{"door-7", "doors/open", true},
		{"door-7", "doors/3/open", true}, // '*' crosses '/'
		{"door-7", "get-card", true},     // hyphens are literal
		{"door-7", "get-cards", false},
		{"door-7", "log/append", true},
		{"door-7", "delete-card", false},
		{"ops", "get-card", true},
		{"ops", "delete-card", false}, // deny wins over "*"
		{"ops", "admin/reset", false},
		{"ops", "admin", true},
		{"auditor", "log/append", true},
		{"auditor", "log/read", false},
		{"stranger", "get-card", false}, // nothing by default
		{"", "", false},
	}
	for _, tt := range tests {
		if got := r.Allowed(tt.caller, tt.method); got != tt.want {
			t.Errorf("Allowed(%q, %q) = %v, want %v", tt.caller, tt.method, got, tt.want)
		}
	}
}

func TestDenyWinsAcrossGroups(t *testing.T) {
	r, err := parse(t, "a  grant, block\n", "grant  *\nblock  !secret/*\n")
	if err != nil {
		t.Fatal(err)
	}
	if r.Allowed("a", "secret/x") || !r.Allowed("a", "public/x") {
		t.Fatal("a deny in one group must override a grant in another")
	}
}

func TestSyntaxErrorsNameFileAndLine(t *testing.T) {
	tests := []struct {
		name, users, groups string
		file                string
		line                int
	}{
		{"name without list", "a  g\nlonely\n", "g  x\n", "users", 2},
		{"undefined group", "a  g, nope\n", "g  x\n", "users", 1},
		{"duplicate caller", "a  g\na  g\n", "g  x\n", "users", 2},
		{"duplicate group", "a  g\n", "g  x\n\ng  y\n", "groups", 3},
		{"empty item", "a  g,,\n", "g  x\n", "users", 1},
		{"bad name", "a/b  g\n", "g  x\n", "users", 1},
		{"empty deny", "a  g\n", "g  !\n", "groups", 1},
		{"space inside a pattern", "a  g\n", "g  get card\n", "groups", 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := parse(t, tt.users, tt.groups)
			var se *SyntaxError
			if !errors.As(err, &se) || se.File != tt.file || se.Line != tt.line {
				t.Fatalf("error %v, want %s line %d", err, tt.file, tt.line)
			}
		})
	}
	long := "a  " + strings.Repeat("g", MaxLineLength) + "\n"
	if _, err := parse(t, long, "g  x\n"); err == nil {
		t.Fatal("an over-long line accepted")
	}
}

// reference implements the same glob with a regular expression.
func reference(pattern, method string) bool {
	var b strings.Builder
	b.WriteString("^")
	for _, c := range pattern {
		switch c {
		case '*':
			b.WriteString("(?s:.*)")
		case '?':
			b.WriteString("(?s:.)")
		default:
			b.WriteString(regexp.QuoteMeta(string(c)))
		}
	}
	b.WriteString("$")
	return regexp.MustCompile(b.String()).MatchString(method)
}

func TestMatch(t *testing.T) {
	for _, tt := range []struct{ p, m string }{
		{"*", ""}, {"*", "a/b/c"}, {"a*", "a"}, {"a*c", "abbbc"}, {"a*c", "abbbd"}, {"?", ""}, {"?", "x"},
		{"a?c", "abc"}, {"a?c", "ac"}, {"*a*a*a*b", "aaaaaaaaaaaaaaaaaaaaaaaaaaaa"}, {"[a]", "[a]"}, {"[a]", "a"},
		{"get-card", "get-card"}, {"get.card", "getXcard"}, {"**", "x"}, {"a*b*c", "abc"}, {"a*b*c", "acb"},
	} {
		if got, want := Match(tt.p, tt.m), reference(tt.p, tt.m); got != want {
			t.Errorf("Match(%q, %q) = %v, want %v", tt.p, tt.m, got, want)
		}
	}
}

// FuzzMatch compares Match with a regular-expression reference.
func FuzzMatch(f *testing.F) {
	f.Add("a*b?c", "axxbyc")
	f.Add("*/*", "doors/3")
	f.Fuzz(func(t *testing.T, p, m string) {
		if len(p) > 64 || len(m) > 256 {
			return
		}
		if got, want := Match(p, m), reference(p, m); got != want {
			t.Fatalf("Match(%q, %q) = %v, want %v", p, m, got, want)
		}
	})
}

// FuzzParse: the parser never panics; whatever it accepts gives answers.
func FuzzParse(f *testing.F) {
	f.Add(users, groups)
	f.Add("a g\n", "g !x, y\n")
	f.Fuzz(func(t *testing.T, u, g string) {
		r, err := parse(t, u, g)
		if err != nil {
			var se *SyntaxError
			if !errors.As(err, &se) {
				t.Fatalf("error %v is not a SyntaxError", err)
			}
			return
		}
		r.Allowed("a", "x")
	})
}

// write replaces path's content in one rename, so that a watcher never
// reads the file half written.
func write(t *testing.T, path, content string) {
	t.Helper()
	if err := os.WriteFile(path+".new", []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(path+".new", path); err != nil {
		t.Fatal(err)
	}
}

// ruleFiles writes a users and a groups file in a new directory: caller
// "a" in group "readers", which may call get-*.
func ruleFiles(t *testing.T) (users, groups string) {
	t.Helper()
	dir := t.TempDir()
	users, groups = filepath.Join(dir, "users"), filepath.Join(dir, "groups")
	write(t, users, "a  readers\n")
	write(t, groups, "readers  get-*\n")
	return users, groups
}

func TestReloadKeepsRulesOnError(t *testing.T) {
	u, g := ruleFiles(t)
	a, err := Load(u, g)
	if err != nil {
		t.Fatal(err)
	}
	if !a.Allowed("a", "get-card") {
		t.Fatal("initial rules not in force")
	}
	write(t, g, "readers  get-*, broken pattern\n")
	var se *SyntaxError
	if err := a.Reload(); !errors.As(err, &se) || se.Line != 1 {
		t.Fatalf("Reload of a bad file = %v", err)
	}
	if !a.Allowed("a", "get-card") {
		t.Fatal("a failed reload dropped the previous rules")
	}
	write(t, g, "readers  list-*\n")
	if err := a.Reload(); err != nil {
		t.Fatal(err)
	}
	if a.Allowed("a", "get-card") || !a.Allowed("a", "list-cards") {
		t.Fatal("the new rules are not in force")
	}
}

func TestWatchReloadsChangedFiles(t *testing.T) {
	u, g := ruleFiles(t)
	a, err := Load(u, g)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	var mu sync.Mutex
	var reported []error
	var reloads atomic.Int64
	wg.Go(func() {
		a.Watch(ctx, 5*time.Millisecond, func() { reloads.Add(1) }, func(err error) { mu.Lock(); reported = append(reported, err); mu.Unlock() })
	})
	defer func() { cancel(); wg.Wait() }()
	write(t, g, "readers  get-*, put-*   \n")
	testwait.Until(t, "Watch to pick up the change", func() bool { return a.Allowed("a", "put-card") })
	testwait.Until(t, "the reload to be reported", func() bool { return reloads.Load() == 1 })
	mu.Lock()
	early := reported
	mu.Unlock()
	if len(early) > 0 {
		t.Fatalf("a valid change was reported: %v", early)
	}
	write(t, u, "a  nonexistent\n")
	testwait.Until(t, "the bad change to be reported", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return len(reported) > 0
	})
	mu.Lock()
	bad := reported[0]
	mu.Unlock()
	if !strings.Contains(bad.Error(), u) {
		t.Fatalf("reported %v, want an error naming %s", bad, u)
	}
	if !a.Allowed("a", "put-card") {
		t.Fatal("a bad change replaced the rules")
	}
}

// endless is a reader of comment lines that never ends.
type endless struct{}

func (endless) Read(p []byte) (int, error) {
	for i := range p {
		p[i] = "#\n"[i%2]
	}
	return len(p), nil
}

// padded returns text followed by comment lines up to exactly size bytes.
func padded(text string, size int) string {
	line := "#" + strings.Repeat("-", 62) + "\n"
	var b strings.Builder
	b.WriteString(text)
	for b.Len()+len(line) <= size {
		b.WriteString(line)
	}
	b.WriteString(strings.Repeat("\n", size-b.Len()))
	if b.Len() != size {
		panic("padded: text longer than size")
	}
	return b.String()
}

func TestRulesFileSizeIsBounded(t *testing.T) {
	const u, g = "a  readers\n", "readers  get-*\n"
	for _, tc := range []struct {
		name         string
		users, group io.Reader
		tooLarge     string // the file named in the error; "" means accepted
	}{
		{"both at the limit", strings.NewReader(padded(u, MaxFileSize)), strings.NewReader(padded(g, MaxFileSize)), ""},
		{"users one byte over", strings.NewReader(padded(u, MaxFileSize+1)), strings.NewReader(g), "users"},
		{"groups one byte over", strings.NewReader(u), strings.NewReader(padded(g, MaxFileSize+1)), "groups"},
		{"groups never ends", strings.NewReader(u), endless{}, "groups"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r, err := Parse("users", tc.users, "groups", tc.group)
			if tc.tooLarge == "" {
				if err != nil {
					t.Fatal(err)
				}
				if !r.Allowed("a", "get-card") {
					t.Fatal("the rules before the padding are not in force")
				}
				return
			}
			if !errors.Is(err, ErrTooLarge) {
				t.Fatalf("Parse = %v, want an error wrapping ErrTooLarge", err)
			}
			if !strings.HasPrefix(err.Error(), tc.tooLarge+": ") {
				t.Fatalf("error %q does not name %s", err, tc.tooLarge)
			}
		})
	}
}

func TestReloadRefusesTooLargeFile(t *testing.T) {
	u, g := ruleFiles(t)
	a, err := Load(u, g)
	if err != nil {
		t.Fatal(err)
	}
	write(t, g, padded("readers  list-*\n", MaxFileSize+1))
	if err := a.Reload(); !errors.Is(err, ErrTooLarge) {
		t.Fatalf("Reload = %v, want an error wrapping ErrTooLarge", err)
	}
	if !a.Allowed("a", "get-card") || a.Allowed("a", "list-cards") {
		t.Fatal("a refused reload changed the rules in force")
	}
	if _, err := Load(u, g); !errors.Is(err, ErrTooLarge) {
		t.Fatalf("Load = %v, want an error wrapping ErrTooLarge", err)
	}
}
