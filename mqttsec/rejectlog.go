package mqttsec

import (
	"context"
	"log/slog"
	"sync"
	"time"
)

// DefaultRejectLogInterval is the least time between two log lines about
// refusals of one kind, unless Config.RejectLogInterval says otherwise.
const DefaultRejectLogInterval = 10 * time.Second

// rejectLog logs refused messages without letting a flood of them flood
// the log: a broker, or any client of it, can send junk far faster than a
// log line is written. Of the refusals of one kind (one message and error
// class), the first is logged at once; then at most one line per interval,
// which says how many were left out since the line before ("suppressed").
// Close logs what is still left out. Stats count every refusal.
type rejectLog struct {
	log      *slog.Logger
	interval time.Duration // negative: every refusal is logged
	now      func() time.Time

	mu    sync.Mutex
	kinds map[rejectKind]*rejectCount
}

// rejectKind is what one line stands for: a message and an error class,
// both from this package, never from the network.
type rejectKind struct {
	level      slog.Level
	msg, class string
}

type rejectCount struct {
	last       time.Time // when the last line was logged
	suppressed int       // refusals since, not logged
}

func newRejectLog(log *slog.Logger, interval time.Duration, now func() time.Time) *rejectLog {
	if interval == 0 {
		interval = DefaultRejectLogInterval
	}
	if now == nil {
		now = time.Now
	}
	return &rejectLog{log: log, interval: interval, now: now, kinds: map[rejectKind]*rejectCount{}}
}

// Log logs a refusal of kind (level, msg, class) with attrs, or counts it
// for the next line of its kind. class is logged as the "class" attribute
// when it is not empty.
func (r *rejectLog) Log(ctx context.Context, level slog.Level, msg, class string, attrs ...any) {
	r.LogMore(ctx, level, msg, class, nil, attrs...)
}

// LogMore is Log with more attributes, after attrs: those more returns, if
// more is not nil. It is called only when the line is written, so what
// takes work to find (a header parsed again) is not found for a refusal
// that is only counted. They are no part of the kind: a line of a kind
// stands for refusals whatever their attributes, and the kinds kept stay
// the package's own, however many senders a flood claims.
func (r *rejectLog) LogMore(ctx context.Context, level slog.Level, msg, class string, more func() []any, attrs ...any) {
	if !r.log.Enabled(ctx, level) {
		return
	}
	suppressed := 0
	if r.interval >= 0 {
		k := rejectKind{level: level, msg: msg, class: class}
		now := r.now()
		r.mu.Lock()
		c := r.kinds[k]
		// A clock set back (Config.Now) does not hold lines back.
		if c != nil && !now.Before(c.last) && now.Sub(c.last) < r.interval {
			c.suppressed++
			r.mu.Unlock()
			return
		}
		if c == nil {
			c = &rejectCount{}
			r.kinds[k] = c
		}
		suppressed = c.suppressed
		c.suppressed, c.last = 0, now
		r.mu.Unlock()
	}
	r.write(ctx, level, msg, class, suppressed, attrs, more)
}

// write logs one line: msg, then class (if any), attrs, what more returns
// (if more is not nil) and suppressed (if any).
func (r *rejectLog) write(ctx context.Context, level slog.Level, msg, class string, suppressed int, attrs []any, more func() []any) {
	if class != "" {
		attrs = append([]any{"class", class}, attrs...)
	}
	if more != nil {
		// A copy, never the caller's array.
		attrs = append(attrs[:len(attrs):len(attrs)], more()...)
	}
	if suppressed > 0 {
		attrs = append(attrs, "suppressed", suppressed)
	}
	r.log.Log(ctx, level, msg, attrs...)
}

// Close logs, for each kind with refusals left out since its last line, one
// line saying how many.
func (r *rejectLog) Close() {
	r.mu.Lock()
	left := map[rejectKind]int{}
	for k, c := range r.kinds {
		if c.suppressed > 0 {
			left[k] = c.suppressed
			c.suppressed = 0
		}
	}
	r.mu.Unlock()
	for k, n := range left {
		r.write(context.Background(), k.level, k.msg, k.class, n, nil, nil)
	}
}
