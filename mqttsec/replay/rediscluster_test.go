package replay

import (
	"context"
	"errors"
	"fmt"
	"os"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/mqttsec/mqttsec/envelope"
	"github.com/mqttsec/mqttsec/internal/testwait"
)

// RedisClusterEnv names the environment variable with the addresses
// (host:port,host:port,...) of the nodes of a Redis Cluster for these
// tests; without it they skip. .ci/run starts one of three masters.
const RedisClusterEnv = "MQTTSEC_TEST_REDIS_CLUSTER"

// clusterShards is the shards of the stores these tests make: on three
// masters that split the slots evenly, 5, 5 and 6 shards each.
const clusterShards = 16

// clusterTest skips t unless RedisClusterEnv is set, and returns a
// function making clients of the test cluster, closed when the test ends;
// then no goroutine the test started may be left.
func clusterTest(t testing.TB) (newClient func() *redis.ClusterClient) {
	t.Helper()
	addrs := os.Getenv(RedisClusterEnv)
	if addrs == "" {
		t.Skipf("set %s=host:port,host:port,host:port (the nodes of a Redis Cluster) to run the Redis Cluster tests", RedisClusterEnv)
	}
	before := testwait.Goroutines()
	t.Cleanup(func() { testwait.NoneLeft(t, before) })
	return func() *redis.ClusterClient {
		t.Helper()
		rdb := redis.NewClusterClient(&redis.ClusterOptions{Addrs: strings.Split(addrs, ",")})
		t.Cleanup(func() { rdb.Close() })
		if err := rdb.Ping(ctx).Err(); err != nil {
			t.Fatalf("%s=%s: %v", RedisClusterEnv, addrs, err)
		}
		return rdb
	}
}

// clusterPrefix returns a prefix of the test's own, whose keys the test's
// end deletes from every master of rdb's cluster.
func clusterPrefix(t testing.TB, rdb *redis.ClusterClient, name string) string {
	t.Helper()
	prefix := fmt.Sprintf("mqttsec-test:cluster:%s:%d:", name, time.Now().UnixNano())
	t.Cleanup(func() {
		for addr, keys := range keysPerMaster(t, rdb, prefix) {
			if err := deleteKeys(rdb, addr, keys); err != nil {
				t.Errorf("deleting the test's keys on %s: %v", addr, err)
			}
		}
	})
	return prefix
}

// keysPerMaster returns the keys starting with prefix on each master of
// the cluster, by address.
func keysPerMaster(t testing.TB, rdb *redis.ClusterClient, prefix string) map[string][]string {
	t.Helper()
	var mu sync.Mutex
	out := map[string][]string{}
	err := rdb.ForEachMaster(ctx, func(ctx context.Context, node *redis.Client) error {
		var keys []string
		it := node.Scan(ctx, 0, prefix+"*", 1000).Iterator()
		for it.Next(ctx) {
			keys = append(keys, it.Val())
		}
		mu.Lock()
		out[node.Options().Addr] = keys
		mu.Unlock()
		return it.Err()
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// deleteKeys deletes keys from the master at addr, one DEL each (a node
// refuses one command over keys of several slots).
func deleteKeys(rdb *redis.ClusterClient, addr string, keys []string) error {
	return rdb.ForEachMaster(ctx, func(ctx context.Context, node *redis.Client) error {
		if node.Options().Addr != addr || len(keys) == 0 {
			return nil
		}
		p := node.Pipeline()
		for _, k := range keys {
			p.Del(ctx, k)
		}
		_, err := p.Exec(ctx)
		return err
	})
}

// clusterDeployment initialises a store on the cluster and opens it
// again, as replicas do, each with a client of its own.
func clusterDeployment(t testing.TB, newClient func() *redis.ClusterClient, n int, opt RedisStoreOptions) *redisDeployment {
	t.Helper()
	return deployReplicas(t, n, opt, true, func() redis.UniversalClient { return newClient() })
}

// clusterSenders returns n sender ids.
func clusterSenders(n int) []string {
	var out []string
	for i := range n {
		out = append(out, fmt.Sprint("client-", i))
	}
	return out
}

// Two replicas of a sharded store on the cluster refuse each other's
// replays, Check and Admit alike; each sender's window shares its slot
// with its shard's marker (as Redis's CLUSTER KEYSLOT says), and the
// senders' windows and the markers are on every master.
func TestRedisClusterStoreSpreadAndShared(t *testing.T) {
	newClient := clusterTest(t)
	admin := newClient()
	prefix := clusterPrefix(t, admin, "spread")
	d := clusterDeployment(t, newClient, 2, RedisStoreOptions{Prefix: prefix, Shards: clusterShards})
	a, b := d.replicas[0], d.replicas[1]
	senders := clusterSenders(48)
	for _, sender := range senders {
		if err := a.Admit(ctx, seen(sender, 1)); err != nil {
			t.Fatalf("%s 1: %v", sender, err)
		}
		if err := b.Check(ctx, seen(sender, 1)); !errors.Is(err, envelope.ErrReplayed) {
			t.Fatalf("%s 1 on the other replica: Check = %v", sender, err)
		}
		if err := b.Admit(ctx, seen(sender, 1)); !errors.Is(err, envelope.ErrReplayed) {
			t.Fatalf("%s 1 on the other replica: Admit = %v", sender, err)
		}
		if err := b.Admit(ctx, seen(sender, 2)); err != nil {
			t.Fatalf("%s 2: %v", sender, err)
		}
		if err := a.Admit(ctx, seen(sender, 2)); !errors.Is(err, envelope.ErrReplayed) {
			t.Fatalf("%s 2 on the first replica: %v", sender, err)
		}
	}
	for _, sender := range senders {
		window, marker := a.keys(sender)
		ws, werr := admin.ClusterKeySlot(ctx, window).Result()
		ms, merr := admin.ClusterKeySlot(ctx, marker).Result()
		if werr != nil || merr != nil || ws != ms || int(ws) != keySlot(window) {
			t.Fatalf("%s in slot %d (%v), its marker %s in %d (%v); keySlot says %d", window, ws, werr, marker, ms, merr, keySlot(window))
		}
	}
	perMaster := keysPerMaster(t, admin, prefix)
	if len(perMaster) != 3 {
		t.Fatalf("%d masters, want the 3 of the test cluster", len(perMaster))
	}
	windows, markers := 0, 0
	for addr, keys := range perMaster {
		m := 0
		for _, k := range keys {
			if strings.HasSuffix(k, stateSuffix) {
				m++
			}
		}
		t.Logf("%s: %d windows, %d markers", addr, len(keys)-m, m)
		if m == 0 || len(keys) == m {
			t.Errorf("master %s holds %d windows and %d markers, want some of each", addr, len(keys)-m, m)
		}
		windows, markers = windows+len(keys)-m, markers+m
	}
	if windows != len(senders) || markers != clusterShards {
		t.Fatalf("%d windows and %d markers, want %d and %d", windows, markers, len(senders), clusterShards)
	}
}

// The store's keys on one master are lost (as FLUSHDB loses them, or a
// restart without persistence; deleted here by prefix, since FLUSHDB
// would also empty the keys of tests of other packages sharing the
// cluster). Each shard of that master reports the loss once, at its
// first Admit, and refuses what its senders sent before it plus the skew;
// the senders of the other masters notice nothing and are not paused.
// No message is admitted twice.
func TestRedisClusterStoreLossOnOneMaster(t *testing.T) {
	newClient := clusterTest(t)
	admin := newClient()
	prefix := clusterPrefix(t, admin, "loss")
	clock := newRedisClock()
	d := clusterDeployment(t, newClient, 2, RedisStoreOptions{Prefix: prefix, Shards: clusterShards, Now: clock.Now})
	senders := clusterSenders(48)
	sent := d.traffic(t, clock, senders, 1, 3)

	first, _ := d.replicas[0].keys(senders[0])
	node, err := admin.MasterForKey(ctx, first)
	if err != nil {
		t.Fatal(err)
	}
	lost := keysPerMaster(t, admin, prefix)[node.Options().Addr]
	if err := deleteKeys(admin, node.Options().Addr, lost); err != nil {
		t.Fatal(err)
	}
	lostMarkers := map[string]bool{} // of the shards with senders on that master
	var lostSenders, kept []string
	for _, sender := range senders {
		window, marker := d.replicas[0].keys(sender)
		if slices.Contains(lost, window) {
			lostSenders, lostMarkers[marker] = append(lostSenders, sender), true
		} else {
			kept = append(kept, sender)
		}
	}
	if len(lostSenders) == 0 || len(kept) == 0 {
		t.Fatalf("%d senders on the master that lost its keys and %d elsewhere, want some of each", len(lostSenders), len(kept))
	}
	t.Logf("%s lost %d keys: %d senders of %d shards; %d senders elsewhere", node.Options().Addr, len(lost), len(lostSenders), len(lostMarkers), len(kept))
	clock.Add(time.Second)
	noticed := clock.Now()

	d.replay(t, sent)
	reported := d.reported()
	if len(reported) != len(lostMarkers) {
		t.Fatalf("%d losses reported, want one per shard of the master (%d): %v", len(reported), len(lostMarkers), reported)
	}
	for _, err := range reported {
		var le *LossError
		if !errors.As(err, &le) || !le.Noticed.Equal(noticed) {
			t.Fatalf("reported %v, want a *LossError noticed at %v", err, noticed)
		}
		found := ""
		for m := range lostMarkers {
			if le.What == fmt.Sprintf(lossKinds[-2], m) {
				found = m
			}
		}
		if found == "" {
			t.Fatalf("reported %q, want the missing marker of a shard of that master, each once", le.What)
		}
		delete(lostMarkers, found)
	}
	s := d.replicas[1]
	for _, sender := range kept {
		// Issued now: the shard lost nothing, so it is not paused.
		if err := s.Admit(ctx, redisMsg(sender, 100, noticed)); err != nil {
			t.Fatalf("%s (on a master that lost nothing), issued at the loss: %v", sender, err)
		}
	}
	for _, sender := range lostSenders {
		if err := s.Admit(ctx, redisMsg(sender, 100, noticed.Add(redisSkew))); !errors.Is(err, errBeforeLoss) || errors.Is(err, ErrStateLost) {
			t.Fatalf("%s (on the master that lost its keys), issued the skew after the loss: %v, want refused as before it", sender, err)
		}
		if err := s.Admit(ctx, redisMsg(sender, 101, noticed.Add(redisSkew+time.Millisecond))); err != nil {
			t.Fatalf("%s, issued after the loss plus the skew: %v", sender, err)
		}
	}
	if n := len(d.reported()); n != len(reported) {
		t.Fatalf("%d losses reported in all, want the %d first ones", n, len(reported))
	}
}

// InitRedisStore on the cluster creates every shard's marker; again, it
// is ErrExists, also when one marker was lost, which it then leaves
// missing: the store reports that loss at the shard's first Admit.
func TestInitRedisStoreOnCluster(t *testing.T) {
	rdb := clusterTest(t)()
	opt := RedisStoreOptions{Prefix: clusterPrefix(t, rdb, "init"), Shards: clusterShards}
	s, err := InitRedisStore(ctx, rdb, opt)
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range s.markers() {
		if n, err := rdb.Exists(ctx, m).Result(); err != nil || n != 1 {
			t.Fatalf("marker %s: exists %d, %v", m, n, err)
		}
	}
	if _, err := InitRedisStore(ctx, rdb, opt); !errors.Is(err, ErrExists) {
		t.Fatalf("InitRedisStore again: %v, want ErrExists", err)
	}
	window, marker := s.keys("client")
	if err := rdb.Del(ctx, marker).Err(); err != nil {
		t.Fatal(err)
	}
	if _, err := InitRedisStore(ctx, rdb, opt); !errors.Is(err, ErrExists) {
		t.Fatalf("InitRedisStore with one marker lost: %v, want ErrExists", err)
	}
	if n, err := rdb.Exists(ctx, marker).Result(); err != nil || n != 0 {
		t.Fatalf("InitRedisStore re-created the lost marker %s (%d, %v)", marker, n, err)
	}
	if err := s.Admit(ctx, redisMsg("client", 1, time.Now())); !errors.Is(err, ErrStateLost) || !strings.Contains(err.Error(), marker) {
		t.Fatalf("first Admit of a sender (%s) of the shard that lost its marker: %v, want a loss naming %s", window, err, marker)
	}
}

// One RedisCounter drawn from by two clients of the cluster at once, under
// a key with a hash tag and one without: every value is handed out once,
// each caller's values increase, and the run_id key shares the counter's
// slot (CLUSTER KEYSLOT).
func TestRedisClusterCounter(t *testing.T) {
	newClient := clusterTest(t)
	a, b := newClient(), newClient()
	for _, key := range []string{
		fmt.Sprintf("mqttsec-test:cluster-counter:%d", time.Now().UnixNano()),
		fmt.Sprintf("{mqttsec-test}:cluster-counter:%d", time.Now().UnixNano()),
	} {
		ca, cb := NewRedisCounter(a, key), NewRedisCounter(b, key)
		t.Cleanup(func() {
			// One DEL: the two keys share a slot.
			if err := a.Del(ctx, key, ca.runKey).Err(); err != nil {
				t.Errorf("deleting %s and %s: %v", key, ca.runKey, err)
			}
		})
		start := uint64(time.Now().UnixNano())
		var mu sync.Mutex
		var got []uint64
		var wg sync.WaitGroup
		for _, c := range []*RedisCounter{ca, cb, ca, cb} {
			wg.Go(func() {
				var last uint64
				for range 100 {
					v, err := c.Next()
					if err != nil {
						t.Errorf("key %s: %v", key, err)
						return
					}
					if v <= last || v <= start {
						t.Errorf("key %s: %d after %d (start %d)", key, v, last, start)
					}
					last = v
					mu.Lock()
					got = append(got, v)
					mu.Unlock()
				}
			})
		}
		wg.Wait()
		slices.Sort(got)
		if len(slices.Compact(got)) != 400 {
			t.Fatalf("key %s: %d distinct values of 400", key, len(slices.Compact(got)))
		}
		ks, kerr := a.ClusterKeySlot(ctx, key).Result()
		rs, rerr := a.ClusterKeySlot(ctx, ca.runKey).Result()
		if kerr != nil || rerr != nil || ks != rs {
			t.Fatalf("%s in slot %d (%v), its run_id key %s in %d (%v)", key, ks, kerr, ca.runKey, rs, rerr)
		}
		if n, err := a.Exists(ctx, ca.runKey).Result(); err != nil || n != 1 {
			t.Fatalf("run_id key %s: exists %d, %v", ca.runKey, n, err)
		}
	}
}

// An ACL user with the permissions RedisStore's documentation lists for a
// cluster, set on every node, can initialise, run and check a sharded
// store, and draw from a RedisCounter whose key has no hash tag.
func TestRedisClusterACLUser(t *testing.T) {
	newClient := clusterTest(t)
	admin := newClient()
	prefix := clusterPrefix(t, admin, "acl")
	key := prefix + "#counter" // "#" is in no sender id
	user := strings.TrimSuffix(prefix, ":")
	setuser := []any{"ACL", "SETUSER", user, "on", ">secret", "~" + prefix + "*", "~{" + key + "}#run_id"}
	for _, c := range strings.Fields("evalsha eval mget get getrange getbit setbit setrange set strlen pttl pexpire exists info incr cluster|slots command") {
		setuser = append(setuser, "+"+c)
	}
	err := admin.ForEachShard(ctx, func(ctx context.Context, node *redis.Client) error {
		t.Cleanup(func() {
			if err := node.Do(ctx, "ACL", "DELUSER", user).Err(); err != nil {
				t.Errorf("ACL DELUSER on %s: %v", node.Options().Addr, err)
			}
		})
		return node.Do(ctx, setuser...).Err()
	})
	if err != nil {
		t.Fatal(err)
	}
	gw := redis.NewClusterClient(&redis.ClusterOptions{Addrs: admin.Options().Addrs, Username: user, Password: "secret"})
	t.Cleanup(func() { gw.Close() })
	s, err := InitRedisStore(ctx, gw, RedisStoreOptions{Prefix: prefix, Shards: clusterShards})
	if err != nil {
		t.Fatal(err)
	}
	for _, sender := range clusterSenders(32) {
		if err := s.Check(ctx, seen(sender, 1)); err != nil {
			t.Fatalf("Check of %s: %v", sender, err)
		}
		if err := s.Admit(ctx, seen(sender, 1)); err != nil {
			t.Fatalf("Admit of %s: %v", sender, err)
		}
	}
	c := NewRedisCounter(gw, key)
	t.Cleanup(func() {
		if err := admin.Del(ctx, c.runKey).Err(); err != nil {
			t.Errorf("deleting %s: %v", c.runKey, err)
		}
	})
	for range 3 {
		if _, err := c.Next(); err != nil {
			t.Fatalf("RedisCounter: %v", err)
		}
	}
}

// BenchmarkRedisClusterStoreAdmit admits on the test cluster, through a
// store of clusterShards shards, the messages of 16 senders per CPU, each
// sender's in order on a goroutine of its own.
//
//	MQTTSEC_TEST_REDIS_CLUSTER=host:port,... go test -run '^$' -bench RedisClusterStoreAdmit ./mqttsec/replay
func BenchmarkRedisClusterStoreAdmit(b *testing.B) {
	newClient := clusterTest(b)
	rdb := newClient()
	opt := RedisStoreOptions{Prefix: clusterPrefix(b, rdb, "bench"), Shards: clusterShards}
	s := clusterDeployment(b, newClient, 1, opt).replicas[0]
	var senders atomic.Uint64
	b.SetParallelism(16)
	b.RunParallel(func(pb *testing.PB) {
		sender := fmt.Sprint("s", senders.Add(1))
		for c := uint64(1); pb.Next(); c++ {
			if err := s.Admit(ctx, seen(sender, c)); err != nil {
				b.Error(err)
				return
			}
		}
	})
}
