package replay

import (
	"context"
	"errors"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/mqttsec/mqttsec/envelope"
)

var _ envelope.Counter = (*RedisCounter)(nil)

// RedisCounter is one counter shared by every replica that seals messages
// under the same sender id (gateway replicas answering as "gateway"). Each
// replica keeping its own counter would interleave far-apart values, and a
// receiver would refuse whatever falls behind its window; one shared,
// atomically incremented sequence keeps them within it.
//
// The key is created at the current time in nanoseconds, so a counter lost
// with a Redis that keeps no data restarts above the values it handed out
// before (as long as clocks do not go back). Run Redis with persistence
// where that is not enough.
type RedisCounter struct {
	rdb     redis.UniversalClient
	key     string
	timeout time.Duration
}

// NewRedisCounter returns a counter stored under key.
func NewRedisCounter(rdb redis.UniversalClient, key string) *RedisCounter {
	return &RedisCounter{rdb: rdb, key: key, timeout: 5 * time.Second}
}

// Next implements envelope.Counter with one round trip: SETNX to the
// current time (only when the key is new), then INCR.
func (c *RedisCounter) Next() (uint64, error) {
	ctx, cancel := context.WithTimeout(context.Background(), c.timeout)
	defer cancel()
	var incr *redis.IntCmd
	_, err := c.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		p.SetNX(ctx, c.key, time.Now().UnixNano(), 0)
		incr = p.Incr(ctx, c.key)
		return nil
	})
	if err != nil {
		return 0, err
	}
	n, err := incr.Result()
	if err != nil {
		return 0, err
	}
	if n <= 0 {
		return 0, errors.New("replay: redis counter out of range")
	}
	return uint64(n), nil
}
