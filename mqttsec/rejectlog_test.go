package mqttsec

import (
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

// logLines is a slog handler's output, one line per record.
type logLines struct{ strings.Builder }

func (l *logLines) lines() []string {
	s := strings.TrimSuffix(l.String(), "\n")
	if s == "" {
		return nil
	}
	return strings.Split(s, "\n")
}

// Refusals of one kind are logged first at once, then once per interval
// with the number left out in between; kinds are counted apart; a negative
// interval logs each; Close logs what is left.
func TestRejectLogThrottlesEachKind(t *testing.T) {
	const interval = 10 * time.Second
	type step struct {
		after time.Duration // clock advance before this refusal
		msg   string
		class string
	}
	tests := []struct {
		name     string
		interval time.Duration
		level    slog.Level // handler's level; refusals are logged at Info
		steps    []step
		want     []string // lines, as "msg class suppressed" (empty parts left out)
		atClose  []string
	}{
		{name: "first at once, the rest counted", interval: interval,
			steps: []step{{0, "refused", "malformed"}, {time.Second, "refused", "malformed"}, {time.Second, "refused", "malformed"}},
			want:  []string{"refused malformed"}, atClose: []string{"refused malformed 2"}},
		{name: "a line per interval says how many were left out", interval: interval,
			steps: []step{{0, "refused", "malformed"}, {time.Second, "refused", "malformed"}, {time.Second, "refused", "malformed"}, {interval, "refused", "malformed"}, {interval, "refused", "malformed"}},
			want:  []string{"refused malformed", "refused malformed 2", "refused malformed"}},
		{name: "kinds apart", interval: interval,
			steps:   []step{{0, "refused", "malformed"}, {0, "refused", "authentication"}, {0, "refused", "malformed"}, {0, "queue-full", "overload"}, {0, "unavailable", ""}, {0, "unavailable", ""}},
			want:    []string{"refused malformed", "refused authentication", "queue-full overload", "unavailable"},
			atClose: []string{"refused malformed 1", "unavailable 1"}},
		{name: "a clock set back does not hold lines back", interval: interval,
			steps: []step{{0, "refused", "malformed"}, {time.Second, "refused", "malformed"}, {-time.Hour, "refused", "malformed"}},
			want:  []string{"refused malformed", "refused malformed 1"}},
		{name: "negative interval logs each", interval: -1,
			steps: []step{{0, "refused", "malformed"}, {0, "refused", "malformed"}, {0, "refused", "malformed"}},
			want:  []string{"refused malformed", "refused malformed", "refused malformed"}},
		{name: "zero interval is the default", interval: 0,
			steps: []step{{0, "refused", "malformed"}, {DefaultRejectLogInterval - time.Millisecond, "refused", "malformed"}, {time.Millisecond, "refused", "malformed"}},
			want:  []string{"refused malformed", "refused malformed 1"}},
		{name: "level off: nothing logged or counted", interval: interval, level: slog.LevelWarn,
			steps: []step{{0, "refused", "malformed"}, {0, "refused", "malformed"}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var out logLines
			log := slog.New(slog.NewTextHandler(&out, &slog.HandlerOptions{
				Level: tt.level,
				ReplaceAttr: func(_ []string, a slog.Attr) slog.Attr {
					if a.Key == slog.TimeKey || a.Key == slog.LevelKey {
						return slog.Attr{}
					}
					return a
				},
			}))
			now := time.Unix(1_800_000_000, 0)
			r := newRejectLog(log, tt.interval, func() time.Time { return now })
			for _, s := range tt.steps {
				now = now.Add(s.after)
				r.Log(context.Background(), slog.LevelInfo, s.msg, s.class, "topic", "t")
			}
			checkLines(t, "logged", out.lines(), tt.want)
			out.Reset()
			r.Close()
			checkLines(t, "at close", out.lines(), tt.atClose)
		})
	}
}

// checkLines compares slog text lines with "msg class suppressed" forms, in
// any order for lines at close (Close walks a map).
func checkLines(t *testing.T, what string, got, want []string) {
	t.Helper()
	short := make([]string, len(got))
	for i, line := range got {
		var parts []string
		for _, key := range []string{"msg=", "class=", "suppressed="} {
			if _, v, ok := strings.Cut(line, key); ok {
				v, _, _ = strings.Cut(v, " ")
				parts = append(parts, strings.Trim(v, `"`))
			}
		}
		short[i] = strings.Join(parts, " ")
	}
	if what == "at close" {
		want = slices.Sorted(slices.Values(want))
		slices.Sort(short)
	}
	if strings.Join(short, "\n") != strings.Join(want, "\n") {
		t.Fatalf("%s:\n%s\nwant:\n%s", what, strings.Join(short, "\n"), strings.Join(want, "\n"))
	}
}

// BenchmarkRejectLog is what logging one refused message costs, to a file
// through slog's text handler: each refusal on its own line (interval -1),
// next to the default throttle during a flood.
//
//	go test -run '^$' -bench RejectLog ./mqttsec
func BenchmarkRejectLog(b *testing.B) {
	for _, tc := range []struct {
		name     string
		interval time.Duration
	}{{"every-refusal", -1}, {"throttled", 0}} {
		b.Run(tc.name, func(b *testing.B) {
			f, err := os.Create(filepath.Join(b.TempDir(), "log"))
			if err != nil {
				b.Fatal(err)
			}
			defer f.Close()
			r := newRejectLog(slog.New(slog.NewTextHandler(f, nil)), tc.interval, nil)
			ctx := context.Background()
			b.ReportAllocs()
			for b.Loop() {
				r.Log(ctx, slog.LevelInfo, "mqttsec: message refused", StatMalformed, "topic", "mqttsec/gateway/req/get-card")
			}
		})
	}
}
