package replay

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/mqttsec/mqttsec/envelope"
)

// DefaultRetention is how long a RedisStore keeps a sender's window after
// the last of its admitted messages expires.
const DefaultRetention = 10 * time.Minute

// RedisStore is a ReplayStore in Redis, shared by several gateway replicas
// (for example behind an MQTT shared subscription): a message replayed to
// another replica is refused there too.
//
// Each sender's window is one Redis key. Admit checks and updates it in a
// Lua script that Redis runs atomically, in one round trip: of two
// replicas admitting the same message at once exactly one succeeds, and
// replicas admitting different messages of one sender never conflict or
// retry, however many there are. The script keeps the window exactly as
// envelope.Window does (a test runs both side by side); see MaxRedisWidth
// for what a wide window costs Redis. The server must allow scripting
// (EVALSHA, and EVAL the first time); the commands a store uses are GET,
// PTTL, SET and those.
//
// # Memory
//
// Each key is kept until Retention after the last moment any message it
// admitted could still be accepted as fresh (envelope.Seen.ExpiresAt: the
// message's expiry plus the receiver's clock skew), and at least Retention
// after the sender's last admitted message. A message the store has
// forgotten is therefore already refused as expired, whatever the
// receivers' Policy.MaxLifetime; Retention is the margin for replicas whose
// clocks disagree. Run Redis with a maxmemory-policy that never evicts these
// keys early (noeviction, or volatile-ttl with ample memory), and with
// persistence if the state must survive a Redis restart.
type RedisStore struct {
	rdb       redis.UniversalClient
	prefix    string
	width     int
	retention time.Duration
}

var _ envelope.ReplayStore = (*RedisStore)(nil)

// RedisStoreOptions configures NewRedisStore. The zero value is usable.
type RedisStoreOptions struct {
	// Prefix starts every key (default "mqttsec:replay:"); the sender's
	// id follows. Replicas of one receiver share a prefix. Receivers with
	// different ids should each have their own (say, with the id in it):
	// under one prefix, a sender's messages to all of them share one
	// window, which then has to absorb the reordering of them all.
	Prefix string
	// Width is the replay window width (0: envelope.DefaultWindow), at
	// most MaxRedisWidth.
	Width int
	// Retention is how long a sender's window is kept after the last of
	// its admitted messages expires (0: DefaultRetention). See the type's
	// documentation.
	Retention time.Duration
}

// MaxRedisWidth bounds a RedisStore's window width: Redis runs the window
// update itself (admit.lua), and while it does it serves no one else. An
// Admit that moves the window costs it work in proportion to the width:
// sequential Admits on loopback Redis 7.0.15 took ~86 µs at width 1024,
// ~139 µs at 4096 and ~0.75 ms at 65536.
const MaxRedisWidth = 1 << 16

// NewRedisStore returns a store using rdb, which the caller configured
// (address, TLS, credentials) and closes.
func NewRedisStore(rdb redis.UniversalClient, opt RedisStoreOptions) (*RedisStore, error) {
	if opt.Prefix == "" {
		opt.Prefix = "mqttsec:replay:"
	}
	if opt.Width == 0 {
		opt.Width = envelope.DefaultWindow
	}
	if _, err := envelope.NewWindow(opt.Width); err != nil {
		return nil, err
	}
	if opt.Width > MaxRedisWidth {
		return nil, fmt.Errorf("%w: redis window width %d is over %d", envelope.ErrInvalidConfig, opt.Width, MaxRedisWidth)
	}
	if opt.Retention <= 0 {
		opt.Retention = DefaultRetention
	}
	if opt.Retention > maxKeep/2 {
		return nil, fmt.Errorf("%w: redis retention %v is longer than %v", envelope.ErrInvalidConfig, opt.Retention, maxKeep/2)
	}
	return &RedisStore{rdb: rdb, prefix: opt.Prefix, width: opt.Width, retention: opt.Retention}, nil
}

// window decodes a sender's key as stored, [i64 newest issue time ms]
// [window encoding] (admit.lua writes it), into its window; b nil (no key)
// is an empty window.
func (s *RedisStore) window(b []byte) (*envelope.Window, error) {
	w, _ := envelope.NewWindow(s.width) // NewRedisStore checked the width
	if b == nil {
		return w, nil
	}
	if len(b) < 8 || w.UnmarshalBinary(b[8:]) != nil {
		return nil, fmt.Errorf("%w: redis window", ErrCorrupt)
	}
	return w, nil
}

// Check implements envelope.ReplayStore.
func (s *RedisStore) Check(ctx context.Context, m envelope.Seen) error {
	b, err := s.rdb.Get(ctx, s.prefix+m.Sender).Bytes()
	if errors.Is(err, redis.Nil) {
		b, err = nil, nil
	}
	if err != nil {
		return err
	}
	w, err := s.window(b)
	if err != nil {
		return err
	}
	if !w.Fresh(m.Counter) {
		return envelope.ErrReplayed
	}
	return nil
}

// maxKeep bounds a key's time to live (Redis refuses expiry times that
// overflow); no sane Policy.MaxLifetime comes near it.
const maxKeep = 50 * 365 * 24 * time.Hour

// keep returns how long, at least, the window must live after admitting
// m: Retention, or Retention after m stops being fresh if that is later.
// (admit.lua keeps the key's own time to live when it is longer.)
func (s *RedisStore) keep(m envelope.Seen) time.Duration {
	ttl := s.retention
	if !m.ExpiresAt.IsZero() {
		if until := time.Until(m.ExpiresAt); until > 0 {
			ttl = max(ttl, min(until, maxKeep/2)+s.retention)
		}
	}
	// Redis keeps milliseconds: round up so the key never expires early.
	return min(ttl.Truncate(time.Millisecond)+time.Millisecond, maxKeep)
}
