package replay

import (
	"context"
	_ "embed"
	"encoding/binary"
	"fmt"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/mqttsec/mqttsec/envelope"
)

// admitSource is the check-and-update of a sender's window that Redis runs
// atomically. The script's comments give the layouts of a sender's key and
// of the state marker: the script writes them, and RedisStore.fresh and
// readMarker read them for Check.
//
//go:embed admit.lua
var admitSource string

var admitScript = redis.NewScript(admitSource)

// initSource creates a state marker (InitRedisStore, once per shard).
//
//go:embed init.lua
var initSource string

var initScript = redis.NewScript(initSource)

// Admit implements envelope.ReplayStore: one script that Redis runs
// atomically (admit.lua), in one round trip, so replicas admitting one
// sender's messages at once never conflict and never retry. The script is
// run by its digest (EVALSHA), or sent (EVAL) when Redis does not have it;
// each run checks that Redis is the process the state marker names (see
// RedisStore's "Losing state"). Its two keys, the sender's window and its
// shard's marker, share a hash slot (RedisStore's "Redis Cluster").
func (s *RedisStore) Admit(ctx context.Context, m envelope.Seen) error {
	if !envelope.ValidID(m.Sender) {
		return errSenderID
	}
	var ctr, iat [8]byte
	binary.BigEndian.PutUint64(ctr[:], m.Counter)
	binary.BigEndian.PutUint64(iat[:], uint64(m.IssuedAt.UnixMilli()))
	now := s.now()
	nowMs := now.UnixMilli()
	durable := 0
	if s.durable {
		durable = 1
	}
	windowKey, markerKey := s.keys(m.Sender)
	n, err := admitScript.Run(ctx, s.rdb, []string{windowKey, markerKey},
		ctr[:], iat[:], s.width, s.keep(m, now).Milliseconds(), maxKeep.Milliseconds(),
		nowMs, ceilMillis(m.SkewOrDefault()), durable).Int()
	if err != nil {
		return err
	}
	switch n {
	case 1:
		return nil
	case 0:
		return envelope.ErrReplayed
	case -1:
		return fmt.Errorf("%w: redis window", ErrCorrupt)
	case -4:
		return errBeforeLoss
	case -5:
		return fmt.Errorf("%w: redis state marker %s", ErrCorrupt, markerKey)
	}
	what, ok := lossKinds[n]
	if !ok {
		return fmt.Errorf("replay: redis script answered %d", n)
	}
	loss := &LossError{Noticed: time.UnixMilli(nowMs), What: fmt.Sprintf(what, markerKey)}
	s.losses.report(loss)
	return fmt.Errorf("%w: %w", errBeforeLoss, loss)
}

// lossKinds says what each of admit.lua's loss codes found (%s: the
// marker's key, which with shards names the shard: "{k/N}").
var lossKinds = map[int]string{
	-2: "the state marker %s is missing from Redis: it restarted or failed over without its data, was flushed, or lost the marker",
	-3: "a sender's window is missing from Redis after it evicted keys (maxmemory; marker %s)",
	-6: "Redis is a new process (a restart or a failover; marker %s), which may have lost recent writes, and DurableRedis is not set",
	-7: "Redis is a new process (a restart or a failover; marker %s) on a server that may evict keys (maxmemory with an eviction policy): the earlier process may have evicted windows not yet found missing, which DurableRedis does not cover",
}

// ceilMillis is d in whole milliseconds, rounded up: the skew after a loss
// is never cut short.
func ceilMillis(d time.Duration) int64 {
	return int64((d + time.Millisecond - 1) / time.Millisecond)
}
