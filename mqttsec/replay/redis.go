package replay

import (
	"context"
	"encoding/binary"
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
// retry, however many there are. The script accepts exactly what
// envelope.Window accepts (a test runs both side by side), and keeps the
// window as a ring of bits that it updates in place, so an Admit costs
// Redis about the same at every width. The server must allow scripting
// (EVALSHA, and EVAL the first time); the commands a store uses are GET,
// GETRANGE, GETBIT, SETBIT, SETRANGE, SET, STRLEN, PTTL, PEXPIRE and
// those.
//
// # Upgrading
//
// Keys written before the ring layout (a shifted bitmap) are read as they
// are and rewritten as rings by their next Admit. A replica still running
// the earlier code reads a ring as a damaged value: it refuses that
// sender's messages (ErrCorrupt) rather than admit any, until it is
// upgraded too. Upgrade the replicas of one store together.
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

// MaxRedisWidth bounds a RedisStore's window width: each sender's key
// holds width/8 bytes of ring (8 KiB at the bound), and Redis keeps every
// sender's.
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

// fresh reports whether counter c would be admitted by a sender's window
// as its key holds it (admit.lua writes it and describes both layouts);
// b nil (no key) is an empty window.
func (s *RedisStore) fresh(b []byte, c uint64) (bool, error) {
	width, size := uint64(s.width), s.width/8
	switch {
	case b == nil:
		return true, nil
	case len(b) == ringHeader+size && b[0] == ringLayout:
		highest := binary.BigEndian.Uint64(b[9:ringHeader])
		if c > highest {
			return true, nil
		}
		if highest-c >= width {
			return false, nil
		}
		p := c % width
		return b[ringHeader+p/8]&(0x80>>(p%8)) == 0, nil
	case len(b) == 8 || len(b) == 16+size:
		// The earlier layout: [newest][envelope.Window's encoding].
		w, _ := envelope.NewWindow(s.width) // NewRedisStore checked the width
		if w.UnmarshalBinary(b[8:]) == nil {
			return w.Fresh(c), nil
		}
	}
	return false, fmt.Errorf("%w: redis window", ErrCorrupt)
}

// The ring layout of a sender's key: its first byte, and the bytes before
// the ring (layout, newest issue time, highest counter).
const (
	ringLayout = 2
	ringHeader = 17
)

// Check implements envelope.ReplayStore.
func (s *RedisStore) Check(ctx context.Context, m envelope.Seen) error {
	b, err := s.rdb.Get(ctx, s.prefix+m.Sender).Bytes()
	if errors.Is(err, redis.Nil) {
		b, err = nil, nil
	}
	if err != nil {
		return err
	}
	fresh, err := s.fresh(b, m.Counter)
	if err != nil {
		return err
	}
	if !fresh {
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
