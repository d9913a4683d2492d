package replay

import (
	"context"
	_ "embed"
	"errors"
	"fmt"
	"strconv"
	"strings"
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
// (INFO server) with the one recorded in "<key>#run_id" (on a cluster,
// see below), and on a process not seen before moves the counter up to
// the current time in nanoseconds too, once per process whatever the
// number of replicas. (A message sealed just before such a jump and
// delivered after one sealed just after it falls behind its receiver's
// window, and is refused. SCRIPT FLUSH, on the same process, moves
// nothing.) Both rest on two assumptions: the replicas' clocks do not go
// back (nor lag the clock of the replica that created the key by more
// than the time since), and the counter handed out fewer values than
// nanoseconds have passed since it was created. A Redis restored from an old backup while
// the same process runs on is not noticed: restart it. A value handed out
// twice would make receivers refuse the second message as a replay; it
// never makes them accept one twice.
//
// The commands it uses are EVALSHA and EVAL; its script calls GET, SET,
// INCR and INFO.
//
// # Redis Cluster
//
// The script touches both keys, which must then share a hash slot. On a
// ClusterClient, a key with a hash tag ("{gateway}:counter") keeps
// "<key>#run_id", in its slot; a key without one has its run_id in
// "{<key>}#run_id", whose tag is the whole key, and so hashes as the key
// does, on whichever node holds it. That takes a key with no '}' (a '{'
// alone is fine): Next refuses any other key without a hash tag. On a
// Client the run_id is in "<key>#run_id". A Ring is refused, as by
// RedisStore: it may move the counter to another shard, whose value is
// older.
type RedisCounter struct {
	rdb     redis.UniversalClient
	key     string
	runKey  string // the key of the run_id that last moved it
	err     error  // why the key cannot serve on rdb, returned by Next
	timeout time.Duration
}

//go:embed rediscounter.lua
var counterSource string

var counterScript = redis.NewScript(counterSource)

// NewRedisCounter returns a counter stored under key. A key that cannot
// share a hash slot with its run_id key on a ClusterClient, or a Ring (see
// "Redis Cluster"), makes every Next fail with an error wrapping
// envelope.ErrInvalidConfig.
func NewRedisCounter(rdb redis.UniversalClient, key string) *RedisCounter {
	c := &RedisCounter{rdb: rdb, key: key, timeout: 5 * time.Second}
	c.runKey, c.err = runIDKey(rdb, key)
	return c
}

// runIDKey returns the key of the run_id beside key, in its hash slot
// where rdb places keys by slot. Redis Cluster hashes only the text
// between a key's first '{' and the first '}' after it, if any is there;
// otherwise the whole key. "{"+key+"}" therefore has all of key as its tag
// exactly when key is not empty and holds no '}'.
func runIDKey(rdb redis.UniversalClient, key string) (string, error) {
	if isRing(rdb) {
		return "", errRing
	}
	if !slotted(rdb) || hasHashTag(key) {
		return key + runIDSuffix, nil
	}
	if key == "" || strings.ContainsRune(key, '}') {
		return "", fmt.Errorf("%w: redis counter key %q is empty or holds a '}' without a {hash tag}: no run_id key can share its cluster slot; give it a tag (\"{gateway}:counter\") or no '}'", envelope.ErrInvalidConfig, key)
	}
	return "{" + key + "}" + runIDSuffix, nil
}

// runIDSuffix ends the key of a counter's run_id.
const runIDSuffix = "#run_id"

// Next implements envelope.Counter with one round trip: the script by
// its digest (EVALSHA), or itself (EVAL) when Redis does not have it. Each
// call checks the Redis process (see rediscounter.lua).
func (c *RedisCounter) Next() (uint64, error) {
	if c.err != nil {
		return 0, c.err
	}
	ctx, cancel := context.WithTimeout(context.Background(), c.timeout)
	defer cancel()
	now := strconv.FormatInt(time.Now().UnixNano(), 10)
	v, err := counterScript.Run(ctx, c.rdb, []string{c.key, c.runKey}, now).Text()
	if err != nil {
		return 0, err
	}
	n, err := strconv.ParseInt(v, 10, 64)
	if err != nil || n <= 0 {
		return 0, errors.New("replay: redis counter out of range")
	}
	return uint64(n), nil
}
