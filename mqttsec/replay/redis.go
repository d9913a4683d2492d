package replay

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/fnv"
	"strconv"
	"strings"
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
// Window accepts (a test runs both side by side), and keeps the
// window as a ring of bits that it updates in place, so an Admit costs
// Redis about the same at every width.
//
// The server must be Redis 7 or later and allow scripting. The commands a
// store uses are EVALSHA, EVAL (when Redis lacks the script, and in
// InitRedisStore), MGET, and EXISTS (InitRedisStore); its scripts call GET, GETRANGE, GETBIT, SETBIT, SETRANGE, SET, STRLEN, PTTL,
// PEXPIRE, EXISTS and INFO. An ACL user for the store's prefix P needs:
//
//	ACL SETUSER gateway on >PASSWORD ~P* +evalsha +eval +mget +get +getrange +getbit +setbit +setrange +set +strlen +pttl +pexpire +exists +info
//
// and, for a RedisCounter, its key and its run_id key (KEY#run_id, or on
// a cluster {KEY}#run_id for a KEY without a hash tag: see RedisCounter)
// in the pattern or patterns of their own (~KEY*, ~{KEY}#run_id), and
// +incr. (INFO is in ACL category @dangerous: name it, as above, rather
// than allowing the category.) A Redis Cluster keeps its users per node:
// set the user on every node, with +cluster|slots and +command, with which
// go-redis's ClusterClient learns the slots and the commands' keys.
//
// # Losing state
//
// Redis may lose what the store wrote: a Redis without persistence
// restarts empty; one that saves RDB snapshots restarts with the last
// snapshot, and one with appendfsync everysec loses up to about a second
// of writes to a power cut or a kernel crash (not to a crash of Redis
// alone); a failover promotes a replica that may lack the last writes
// (replication is asynchronous); FLUSHALL, FLUSHDB or a restored backup
// replace everything; under maxmemory, an eviction policy removes keys. A
// sender whose window was lost would have its captured messages accepted
// again until they expire. So the store keeps a state marker,
// P+"#state" (no time to live; "#" is in no sender id; one per shard
// with Shards, see "Redis Cluster"), written by InitRedisStore for a new
// store, and notices a loss when:
//
//   - the marker is missing (Redis restarted or failed over without its
//     data, was flushed, or evicted it; or someone deleted it);
//   - a sender's key is missing and the server's evicted_keys (INFO stats,
//     every key evicted from any database) moved since the marker recorded
//     it: a key of the store may have been evicted (CONFIG RESETSTAT, which
//     zeroes the count, is taken for an eviction too);
//   - Redis is another process than the one the marker names (another
//     run_id, INFO server): a restart, a failover, or a failback. Every
//     Admit compares the run_ids (a few µs of Redis's time), whatever the
//     script cache holds: a process keeps its scripts when it is demoted
//     and promoted again, and Redis caches a script sent with EVAL even
//     when running it fails. A new process is a loss unless DurableRedis
//     says it kept every write and the server cannot evict keys (see
//     below).
//
// Admit then records the loss in the marker, with the time it noticed it
// (Now), reports a *LossError (which wraps ErrStateLost) to the functions
// given to NotifyLoss, and refuses the message. From then on, the store
// (every replica sharing it) refuses every message issued at or before
// that time plus the receiver's clock skew (envelope.Seen.Skew), any of
// which may have been accepted before the loss; a message issued later is
// accepted as usual, with no restart. For about the skew after a loss
// (30 s by default) nothing is accepted. One replica reports each loss:
// the one that noticed it. Check refuses the same messages, but notices
// nothing itself: a missing marker is Admit's to report.
//
// Which loss the store notices, by Redis's persistence:
//
//   - none (save "", appendonly no): after a restart Redis is empty; the
//     store notices the missing marker. After a failover to a replica,
//     the new run_id.
//   - RDB snapshots: Redis restarts with the marker of the last snapshot;
//     the store notices the new run_id.
//   - AOF, appendfsync everysec: the same (a power cut may have lost the
//     last second). DurableRedis must stay false.
//   - AOF, appendfsync always, no failover (or failovers that wait for the
//     replica to catch up, such as FAILOVER): Redis keeps every write it
//     acknowledged. With DurableRedis, on a server that cannot evict keys
//     (maxmemory 0, or maxmemory-policy noeviction), the store accepts a
//     restart without a loss, and nothing is refused. On a server that
//     can, a restart is still a loss: the process before it may have
//     evicted windows no Admit has found missing yet, and the new process
//     counts its evictions from 0. Without DurableRedis, each restart is
//     reported as a loss (safe, but a pause of the skew).
//
// FLUSHALL, FLUSHDB and evictions are noticed whatever the persistence
// (evictions followed by a restart, as the restart: with DurableRedis, a
// loss where the server may evict). A backup restored into a restarted
// Redis brings back the marker it holds, and is noticed as a new process;
// with DurableRedis it is not: delete the marker after a restore (DEL
// P#state), and the store notices the loss.
//
// Not noticed: older data replacing the data of a Redis process that runs
// on, when its marker names that same process. That is a backup loaded
// without a restart (DEBUG RELOAD NOSAVE), or a failover to a lagging
// replica that no Admit reaches before the old master, resynchronised
// from it, is promoted again (after an Admit on the replica, the marker
// names the replica, and the failback is noticed). Nor, with
// DurableRedis, evictions that no Admit found before a restart that also
// turned eviction off: the store goes by the new process's settings.
//
// Keep the replicas' clocks synchronised to well within the skew: a
// replica whose clock is d behind another's records a loss d too early,
// and a message the other accepted, issued in the last d of the skew
// ahead of its clock, could be accepted again.
//
// # Redis Cluster
//
// A script may touch the keys of one hash slot only, and each Admit reads
// a sender's window with the marker that watches the Redis process
// holding it. With Shards 0 or 1 (the default) the store has one marker,
// Prefix+"#state", and on a ClusterClient its Prefix must hold a hash tag
// ("{gateway}:replay:"): the whole store then lives in one slot, on one
// node.
//
// With Shards = N, 2 to MaxRedisShards, the senders are spread over N
// shards: sender s belongs to shard k = FNV-1a (32 bits, hash/fnv) of its
// id, mod N, and shard k's keys start with Prefix+"{k/N}" (k and N in
// decimal): its senders' windows, Prefix+"{k/N}"+s, and a marker of its
// own, Prefix+"{k/N}#state", with the layout and the meaning of the
// single marker above. The tag keeps each shard in one slot and spreads
// the shards over the cluster's masters; each marker watches the process
// of the node holding its shard, so a node that restarts, fails over, is
// flushed or evicts is a loss for the senders of its shards only,
// reported once per shard (by the first Admit of one of its senders,
// with the shard's marker in LossError.What), which then refuses what was
// issued before it plus the skew. The prefix then holds no brace, since
// its tag would put every shard in one slot. The slots of the N tags are
// fixed (CLUSTER KEYSLOT), not evenly spread: give a few times as many
// shards as the cluster has masters (16 or more for three), each a
// marker key.
//
// The hash, the layout and N are part of the stored format: another hash
// would move senders to empty windows. A store opened with another
// Shards finds none of its markers and reports a loss for each shard at
// its first Admit (safe: it never reads empty windows under markers that
// record no loss); never call InitRedisStore to change Shards, which
// would create those markers and hide the windows left behind. Moving a
// slot to another node (resharding, a node added) moves its shard's
// marker to another process: a loss for that shard, as a failover is.
// Give every node of the cluster the same persistence and eviction
// settings.
//
// # Upgrading
//
// A store written by a version without the marker has none: the first
// Admit reports a loss. Call InitRedisStore once instead, while the old
// replicas are stopped and if Redis is known to have kept its data.
//
// Keys written before the ring layout (a shifted bitmap) are read as they
// are and rewritten as rings by their next Admit. A replica still running
// the earlier code reads a ring as a damaged value: it refuses that
// sender's messages (ErrCorrupt) rather than admit any, until it is
// upgraded too. Versions before this one checked the Redis process only
// after NOSCRIPT, which misses some restarts and failovers (see "Losing
// state"); their script is not this one's, and they read the same marker.
// Upgrade the replicas of one store together.
//
// # Memory
//
// Each key is kept until Retention after the last moment any message it
// admitted could still be accepted as fresh (envelope.Seen.ExpiresAt: the
// message's expiry plus the receiver's clock skew), and at least Retention
// after the sender's last admitted message. A message the store has
// forgotten is therefore already refused as expired, whatever the
// receivers' Policy.MaxLifetime; Retention is the margin for replicas whose
// clocks disagree. Run Redis with maxmemory-policy noeviction and memory
// to spare, and give the store a Redis of its own: an eviction of any key
// on it is taken for a loss the next time a sender has no window (and,
// with DurableRedis, any restart of a server that may evict is a loss).
type RedisStore struct {
	rdb       redis.UniversalClient
	prefix    string
	shards    int // 1: one marker for every sender, Prefix+"#state"
	width     int
	retention time.Duration
	now       func() time.Time
	durable   bool
	losses    lossReports
}

var _ envelope.ReplayStore = (*RedisStore)(nil)

// RedisStoreOptions configures NewRedisStore. The zero value is usable.
type RedisStoreOptions struct {
	// Prefix starts every key (default "mqttsec:replay:"); the sender's
	// id follows, and the state marker is Prefix+"#state" (with Shards,
	// the shard's hash tag comes between). Replicas of one receiver share
	// a prefix. Receivers with different ids should each have their own
	// (say, with the id in it): under one prefix, a sender's messages to
	// all of them share one window, which then has to absorb the
	// reordering of them all. With Redis Cluster and no Shards the prefix
	// must hold a hash tag ("{gateway}:replay:"); with Shards it may hold
	// no brace at all ('{' or '}').
	Prefix string
	// Shards spreads the senders over this many shards, each in one hash
	// slot with a state marker of its own, so that a store scales out
	// over a Redis Cluster (see RedisStore's "Redis Cluster"). 0 or 1: one
	// marker for every sender, Prefix+"#state". At most MaxRedisShards.
	// It is part of the stored format: every replica of a store gives the
	// same Shards. Replicas with different ones would keep separate
	// windows, and each admit what the other admitted (the losses
	// reported for the markers one of them lacks are the only sign).
	// Change it only with every replica stopped.
	Shards int
	// Width is the replay window width (0: DefaultWindow), at
	// most MaxRedisWidth.
	Width int
	// Retention is how long a sender's window is kept after the last of
	// its admitted messages expires (0: DefaultRetention). See the type's
	// documentation.
	Retention time.Duration
	// Now is the receiver's clock (nil: time.Now): the time a loss is
	// noticed, and the base of the windows' times to live. Give it the
	// receiver's mqttsec.Config.Now if that is set.
	Now func() time.Time
	// DurableRedis says that Redis keeps every write it acknowledged
	// across restarts and failovers: appendonly yes with appendfsync
	// always, and no failover to a replica that may lag (replication is
	// asynchronous). A new Redis process (another run_id) is then not a
	// loss, if the server cannot evict keys (maxmemory 0 or
	// maxmemory-policy noeviction; otherwise it is). Leave it false for
	// anything less: RDB snapshots, appendfsync everysec, or automatic
	// failover (Sentinel, Cluster).
	DurableRedis bool
}

// MaxRedisWidth bounds a RedisStore's window width: each sender's key
// holds width/8 bytes of ring (8 KiB at the bound), and Redis keeps every
// sender's.
const MaxRedisWidth = 1 << 16

// MaxRedisShards bounds RedisStoreOptions.Shards: Redis Cluster has 16384
// hash slots, and more shards than slots would only add markers.
const MaxRedisShards = 16384

// stateSuffix follows the prefix (or the shard's) in the state marker's
// key; '#' is in no sender id (envelope.ValidID).
const stateSuffix = "#state"

// NewRedisStore returns a store using rdb, which the caller configured
// (address, TLS, credentials) and closes. A new deployment creates its
// state with InitRedisStore once; after that, every replica and every
// restart calls NewRedisStore. The errors for options it refuses wrap
// envelope.ErrInvalidConfig.
func NewRedisStore(rdb redis.UniversalClient, opt RedisStoreOptions) (*RedisStore, error) {
	opt = opt.withDefaults()
	if err := opt.check(rdb); err != nil {
		return nil, err
	}
	return &RedisStore{
		rdb: rdb, prefix: opt.Prefix, shards: opt.Shards, width: opt.Width,
		retention: opt.Retention, now: opt.Now, durable: opt.DurableRedis,
	}, nil
}

// withDefaults returns opt with its zero (or, for Retention, negative)
// fields set to their defaults.
func (opt RedisStoreOptions) withDefaults() RedisStoreOptions {
	if opt.Prefix == "" {
		opt.Prefix = "mqttsec:replay:"
	}
	if opt.Width == 0 {
		opt.Width = DefaultWindow
	}
	if opt.Retention <= 0 {
		opt.Retention = DefaultRetention
	}
	if opt.Shards == 0 {
		opt.Shards = 1
	}
	if opt.Now == nil {
		opt.Now = time.Now
	}
	return opt
}

// check refuses options (with their defaults set) that a store on rdb
// cannot keep.
func (opt RedisStoreOptions) check(rdb redis.UniversalClient) error {
	if _, err := NewWindow(opt.Width); err != nil {
		return err
	}
	if opt.Width > MaxRedisWidth {
		return fmt.Errorf("%w: redis window width %d is over %d", envelope.ErrInvalidConfig, opt.Width, MaxRedisWidth)
	}
	if opt.Retention > maxKeep/2 {
		return fmt.Errorf("%w: redis retention %v is longer than %v", envelope.ErrInvalidConfig, opt.Retention, maxKeep/2)
	}
	return checkLayout(rdb, opt.Prefix, opt.Shards)
}

// checkLayout refuses a prefix and a number of shards whose keys would
// not keep each window in one hash slot with its marker, on rdb.
func checkLayout(rdb redis.UniversalClient, prefix string, shards int) error {
	switch {
	case isRing(rdb):
		return errRing
	case shards < 1 || shards > MaxRedisShards:
		return fmt.Errorf("%w: redis shards %d is not within 0 (one marker) and %d", envelope.ErrInvalidConfig, shards, MaxRedisShards)
	case shards > 1 && strings.ContainsAny(prefix, "{}"):
		return fmt.Errorf("%w: redis prefix %q holds a brace: with Shards, each shard's {hash tag} must be the first in its keys (a tag in the prefix would put every shard in one cluster slot)", envelope.ErrInvalidConfig, prefix)
	case shards == 1 && slotted(rdb) && !hasHashTag(prefix):
		return fmt.Errorf("%w: redis prefix %q has no {hash tag}: without Shards, a store's keys must share a cluster slot (set Shards to spread the senders over the cluster)", envelope.ErrInvalidConfig, prefix)
	}
	return nil
}

// slotted reports whether rdb places each key by its hash slot (its hash
// tag, if any), as a ClusterClient does, so that the keys a script
// touches must share one.
func slotted(rdb redis.UniversalClient) bool {
	_, ok := rdb.(*redis.ClusterClient)
	return ok
}

// isRing reports whether rdb is a go-redis Ring, which neither the store
// nor the counter takes: each client moves the keys of a shard it finds
// down to the others on its own, so two replicas may keep one sender's
// window on two nodes, and the shard, back, still holds its marker with
// nothing to tell that messages were admitted elsewhere meanwhile.
func isRing(rdb redis.UniversalClient) bool {
	_, ok := rdb.(*redis.Ring)
	return ok
}

// errRing refuses a Ring (see isRing).
var errRing = fmt.Errorf("%w: a redis.Ring moves keys between its shards as each client sees them fail, which would split a sender's replay window between replicas: use a redis.Client or a redis.ClusterClient", envelope.ErrInvalidConfig)

// hasHashTag reports whether keys starting with prefix hash to one Redis
// Cluster slot whatever follows: the prefix holds a non-empty {tag}.
func hasHashTag(prefix string) bool {
	i := strings.IndexByte(prefix, '{')
	return i >= 0 && strings.IndexByte(prefix[i+1:], '}') > 0
}

// shardOf returns the shard of sender among n: FNV-1a (32 bits) of the
// sender id, mod n. It is part of the stored format (RedisStore's "Redis
// Cluster"): a test pins it.
func shardOf(sender string, n int) int {
	if n <= 1 {
		return 0
	}
	h := fnv.New32a()
	h.Write([]byte(sender))
	return int(h.Sum32() % uint32(n))
}

// shardPrefix returns the start of shard k's keys: the store's prefix,
// and with shards, the shard's hash tag "{k/N}".
func (s *RedisStore) shardPrefix(k int) string {
	if s.shards <= 1 {
		return s.prefix
	}
	return s.prefix + "{" + strconv.Itoa(k) + "/" + strconv.Itoa(s.shards) + "}"
}

// keys returns the key of sender's window and that of the state marker
// of its shard (one hash slot).
func (s *RedisStore) keys(sender string) (window, marker string) {
	p := s.shardPrefix(shardOf(sender, s.shards))
	return p + sender, p + stateSuffix
}

// markers returns the keys of every shard's state marker, in shard order.
func (s *RedisStore) markers() []string {
	out := make([]string, s.shards)
	for k := range out {
		out[k] = s.shardPrefix(k) + stateSuffix
	}
	return out
}

// InitRedisStore creates the state of a new store (its state markers, one
// per shard, each recording the Redis process it was made on) and returns
// the store. If any marker exists the error wraps ErrExists, and nothing
// is written: call it once per deployment, never on every start. Called
// where a store's marker was lost, it would hide that loss: keep the flag
// or step that calls it apart from the ordinary start.
//
// With Shards, a failure part way (a node down) may leave some markers
// created: the error says how many, and calling InitRedisStore again
// gives ErrExists. Either open the store as it is (NewRedisStore): each
// shard without a marker reports a loss at its first Admit, and refuses
// messages issued up to the skew after it, which is all a loss costs a
// store that held nothing yet; or delete every marker of the store
// (Prefix+"{k/N}#state" for each k) and call InitRedisStore again.
func InitRedisStore(ctx context.Context, rdb redis.UniversalClient, opt RedisStoreOptions) (*RedisStore, error) {
	s, err := NewRedisStore(rdb, opt)
	if err != nil {
		return nil, err
	}
	markers := s.markers()
	if err := s.noneExists(ctx, markers); err != nil {
		return nil, err
	}
	if err := s.createMarkers(ctx, markers); err != nil {
		return nil, err
	}
	return s, nil
}

// noneExists fails with ErrExists if any of the markers exists, before
// InitRedisStore writes anything: it never re-creates the lost markers of
// a store whose others remain.
func (s *RedisStore) noneExists(ctx context.Context, markers []string) error {
	pipe := s.rdb.Pipeline()
	exists := make([]*redis.IntCmd, len(markers))
	for i, m := range markers {
		exists[i] = pipe.Exists(ctx, m)
	}
	if _, err := pipe.Exec(ctx); err != nil {
		return err
	}
	for i, e := range exists {
		if e.Val() != 0 {
			return fmt.Errorf("%w: redis key %s", ErrExists, markers[i])
		}
	}
	return nil
}

// createMarkers runs init.lua for each marker, in one pipeline (one round
// trip per node). A marker found existing (another InitRedisStore at the
// same time) is ErrExists.
func (s *RedisStore) createMarkers(ctx context.Context, markers []string) error {
	pipe := s.rdb.Pipeline()
	runs := make([]*redis.Cmd, len(markers))
	for i, m := range markers {
		runs[i] = initScript.Eval(ctx, pipe, []string{m})
	}
	pipe.Exec(ctx) // each run's error is its own, read below
	created, existed := 0, ""
	var failed error
	for i, r := range runs {
		n, err := r.Int()
		switch {
		case err != nil:
			if failed == nil {
				failed = err
			}
		case n == 1:
			created++
		case existed == "":
			existed = markers[i]
		}
	}
	switch {
	case failed != nil && created > 0:
		return fmt.Errorf("replay: redis store created in part, %d of %d state markers (calling InitRedisStore again gives ErrExists: open the store as it is, and each shard without a marker reports a loss once, or delete its markers first): %w", created, len(markers), failed)
	case failed != nil:
		return failed
	case existed != "":
		return fmt.Errorf("%w: redis key %s", ErrExists, existed)
	}
	return nil
}

// NotifyLoss has f called with each loss of replay state the store
// notices (a *LossError, wrapping ErrStateLost), including those it
// noticed before. f must not block.
func (s *RedisStore) NotifyLoss(f func(error)) { s.losses.add(f) }

// Width returns the store's window width, in counters.
func (s *RedisStore) Width() int { return s.width }

// readMarker reads the state marker held in key (admit.lua writes it and
// describes it): the loss time it records (zero for none).
func readMarker(key string, b []byte) (time.Time, error) {
	if len(b) < 17 || b[0] != 1 {
		return time.Time{}, fmt.Errorf("%w: redis state marker %s", ErrCorrupt, key)
	}
	loss := int64(binary.BigEndian.Uint64(b[1:9]))
	if loss == 0 {
		return time.Time{}, nil
	}
	return time.UnixMilli(loss), nil
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
		// The earlier layout: [newest][Window's encoding].
		w, _ := NewWindow(s.width) // NewRedisStore checked the width
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

// Check implements envelope.ReplayStore: one MGET of the sender's window
// and its shard's state marker. It refuses what Admit would refuse as a replay or
// as issued before a recorded loss; a missing marker it leaves to Admit,
// which records and reports the loss.
func (s *RedisStore) Check(ctx context.Context, m envelope.Seen) error {
	if !envelope.ValidID(m.Sender) {
		return errSenderID
	}
	windowKey, markerKey := s.keys(m.Sender)
	vals, err := s.rdb.MGet(ctx, windowKey, markerKey).Result()
	if err != nil {
		return err
	}
	if len(vals) != 2 {
		return fmt.Errorf("replay: redis MGET answered %d values for 2 keys", len(vals))
	}
	window, state := stringBytes(vals[0]), stringBytes(vals[1])
	if state != nil {
		loss, err := readMarker(markerKey, state)
		if err != nil {
			return err
		}
		if beforeLoss(loss, m) {
			return errBeforeLoss
		}
	}
	fresh, err := s.fresh(window, m.Counter)
	if err != nil {
		return err
	}
	if !fresh {
		return envelope.ErrReplayed
	}
	return nil
}

// errSenderID refuses a sender id that envelope.ValidID refuses (the
// Opener never passes one): it could name another key, such as the state
// marker.
var errSenderID = errors.New("replay: invalid sender id")

// stringBytes is an MGET value as bytes: nil for a missing key.
func stringBytes(v any) []byte {
	if s, ok := v.(string); ok {
		return []byte(s)
	}
	return nil
}

// maxKeep bounds a key's time to live (Redis refuses expiry times that
// overflow); no sane Policy.MaxLifetime comes near it.
const maxKeep = 50 * 365 * 24 * time.Hour

// keep returns how long, at least, the window must live after admitting
// m at now: Retention, or Retention after m stops being fresh if that is
// later. (admit.lua keeps the key's own time to live when it is longer.)
func (s *RedisStore) keep(m envelope.Seen, now time.Time) time.Duration {
	ttl := s.retention
	if !m.ExpiresAt.IsZero() {
		if until := m.ExpiresAt.Sub(now); until > 0 {
			ttl = max(ttl, min(until, maxKeep/2)+s.retention)
		}
	}
	// Redis keeps milliseconds: round up so the key never expires early.
	return min(ttl.Truncate(time.Millisecond)+time.Millisecond, maxKeep)
}
