package replay

import (
	"context"
	_ "embed"
	"errors"
	"strconv"
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
// The key is created at the current time in nanoseconds, so a counter
// lost with Redis's data (a restart without persistence, FLUSHALL, an
// eviction) starts again above the values it handed out before. A Redis
// that comes back with an older value (an RDB snapshot, an AOF with
// appendfsync everysec after a power cut, a failover to a lagging
// replica, or a failback to one) is another process than the one that
// last moved the counter up: every call compares the process's run_id
// (INFO server) with the one recorded in "<key>#run_id", and on a process
// not seen before moves the counter up to the current time in
// nanoseconds too, once per process whatever the number of replicas. (A
// message sealed just before such a jump and delivered after one sealed
// just after it falls behind its receiver's window, and is refused.
// SCRIPT FLUSH, on the same process, moves nothing.) With Redis Cluster,
// put a {hash tag} in the key, so that both keys share a slot.
// Both rest on two assumptions: the replicas' clocks do not go back (nor
// lag the clock of the replica that created the key by more than the time
// since), and the counter handed out fewer values than nanoseconds have
// passed since it was created. A Redis restored from an old backup while
// the same process runs on is not noticed: restart it. A value handed out
// twice would make receivers refuse the second message as a replay; it
// never makes them accept one twice.
//
// The commands it uses are EVALSHA and EVAL; its script calls GET, SET,
// INCR and INFO.
type RedisCounter struct {
	rdb     redis.UniversalClient
	key     string
	timeout time.Duration
}

//go:embed rediscounter.lua
var counterSource string

var counterScript = redis.NewScript(counterSource)

// NewRedisCounter returns a counter stored under key.
func NewRedisCounter(rdb redis.UniversalClient, key string) *RedisCounter {
	return &RedisCounter{rdb: rdb, key: key, timeout: 5 * time.Second}
}

// Next implements envelope.Counter with one round trip: the script by
// its digest (EVALSHA), or itself (EVAL) when Redis does not have it. Each
// call checks the Redis process (see rediscounter.lua).
func (c *RedisCounter) Next() (uint64, error) {
	ctx, cancel := context.WithTimeout(context.Background(), c.timeout)
	defer cancel()
	now := strconv.FormatInt(time.Now().UnixNano(), 10)
	v, err := counterScript.Run(ctx, c.rdb, []string{c.key, c.key + "#run_id"}, now).Text()
	if err != nil {
		return 0, err
	}
	n, err := strconv.ParseInt(v, 10, 64)
	if err != nil || n <= 0 {
		return 0, errors.New("replay: redis counter out of range")
	}
	return uint64(n), nil
}
