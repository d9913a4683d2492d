package replay

import (
	"errors"
	"fmt"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/mqttsec/mqttsec/envelope"
	"github.com/mqttsec/mqttsec/internal/redisserver"
)

// redisClock is a receiver's clock that a test moves by hand, in whole
// milliseconds (as Redis keeps times).
type redisClock struct{ ms atomic.Int64 }

func newRedisClock() *redisClock {
	c := &redisClock{}
	c.ms.Store(time.Now().UnixMilli())
	return c
}

func (c *redisClock) Now() time.Time      { return time.UnixMilli(c.ms.Load()) }
func (c *redisClock) Add(d time.Duration) { c.ms.Add(d.Milliseconds()) }

// redisLossLog records what a store reports through NotifyLoss.
type redisLossLog struct {
	mu   sync.Mutex
	errs []error
}

func (l *redisLossLog) add(err error) {
	l.mu.Lock()
	l.errs = append(l.errs, err)
	l.mu.Unlock()
}

func (l *redisLossLog) all() []error {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]error(nil), l.errs...)
}

// redisSkew is the receivers' tolerance for the senders' clocks in these
// tests (Seen.Skew).
const redisSkew = 2 * time.Second

// redisMsg is a message issued at iat, with a lifetime of a minute.
func redisMsg(sender string, ctr uint64, iat time.Time) envelope.Seen {
	return envelope.Seen{Sender: sender, Counter: ctr, IssuedAt: iat, ExpiresAt: iat.Add(time.Minute + redisSkew), Skew: redisSkew}
}

// redisDeployment is the replicas of one store (one prefix), each with its
// own Redis client and its own log of reported losses.
type redisDeployment struct {
	replicas []*RedisStore
	losses   []*redisLossLog
}

// newRedisDeployment initialises a store under prefix on the Redis at addr
// (db: the database number) and opens it n times, as n replicas do.
func newRedisDeployment(t *testing.T, addr string, db, n int, opt RedisStoreOptions) *redisDeployment {
	t.Helper()
	return openRedisDeployment(t, addr, db, n, opt, true)
}

// openRedisDeployment opens a store n times, as n replicas do, the first
// with InitRedisStore if init is set (else all with NewRedisStore, as
// replicas moved to another Redis do).
func openRedisDeployment(t *testing.T, addr string, db, n int, opt RedisStoreOptions, init bool) *redisDeployment {
	t.Helper()
	return deployReplicas(t, n, opt, init, func() redis.UniversalClient {
		rdb := redis.NewClient(&redis.Options{Addr: addr, DB: db})
		t.Cleanup(func() { rdb.Close() })
		return rdb
	})
}

// deployReplicas opens a store n times on clients from newClient, as n
// replicas do, the first with InitRedisStore if init is set (else all
// with NewRedisStore), each with its own log of reported losses.
func deployReplicas(t testing.TB, n int, opt RedisStoreOptions, init bool, newClient func() redis.UniversalClient) *redisDeployment {
	t.Helper()
	d := &redisDeployment{}
	for i := range n {
		rdb := newClient()
		open := NewRedisStore
		if i == 0 && init {
			open = func(rdb redis.UniversalClient, opt RedisStoreOptions) (*RedisStore, error) {
				return InitRedisStore(ctx, rdb, opt)
			}
		}
		s, err := open(rdb, opt)
		if err != nil {
			t.Fatal(err)
		}
		l := &redisLossLog{}
		s.NotifyLoss(l.add)
		d.replicas, d.losses = append(d.replicas, s), append(d.losses, l)
	}
	return d
}

// reported returns every loss the replicas reported.
func (d *redisDeployment) reported() []error {
	var out []error
	for _, l := range d.losses {
		out = append(out, l.all()...)
	}
	return out
}

// traffic admits n messages from each of senders, issued at the clock's
// time, spread over the replicas, and returns them.
func (d *redisDeployment) traffic(t *testing.T, clock *redisClock, senders []string, first uint64, n int) []envelope.Seen {
	t.Helper()
	var sent []envelope.Seen
	for c := first; c < first+uint64(n); c++ {
		for i, sender := range senders {
			m := redisMsg(sender, c, clock.Now())
			if err := d.replicas[(int(c)+i)%len(d.replicas)].Admit(ctx, m); err != nil {
				t.Fatalf("admitting %s %d: %v", sender, c, err)
			}
			sent = append(sent, m)
		}
	}
	return sent
}

// replay admits every message again, all at once over the replicas, and
// fails t if any is accepted or refused other than as a replay; it
// returns the errors.
func (d *redisDeployment) replay(t *testing.T, sent []envelope.Seen) []error {
	t.Helper()
	errs := make([]error, len(sent))
	var wg sync.WaitGroup
	for i, m := range sent {
		wg.Go(func() { errs[i] = d.replicas[i%len(d.replicas)].Admit(ctx, m) })
	}
	wg.Wait()
	for i, err := range errs {
		if !errors.Is(err, envelope.ErrReplayed) {
			t.Fatalf("%s %d, admitted before, admitted again: %v", sent[i].Sender, sent[i].Counter, err)
		}
	}
	return errs
}

// checkLoss fails t unless the redisDeployment reported exactly one loss, of
// kind (a code of admit.lua, lossKinds), noticed at noticed; kind 0: none.
// Several kinds are allowed where the test cannot tell which comes first.
func (d *redisDeployment) checkLoss(t *testing.T, noticed time.Time, kinds ...int) {
	t.Helper()
	got := d.reported()
	if len(kinds) == 1 && kinds[0] == 0 {
		if len(got) != 0 {
			t.Fatalf("%d losses reported, want none: %v", len(got), got)
		}
		return
	}
	if len(got) != 1 {
		t.Fatalf("%d losses reported by the replicas, want 1: %v", len(got), got)
	}
	var le *LossError
	if !errors.As(got[0], &le) || !errors.Is(got[0], ErrStateLost) {
		t.Fatalf("reported %T %v, want a *LossError wrapping ErrStateLost", got[0], got[0])
	}
	if !le.Noticed.Equal(noticed) {
		t.Fatalf("loss noticed at %v, want %v (the receiver's clock)", le.Noticed, noticed)
	}
	for _, k := range kinds {
		if le.What == fmt.Sprintf(lossKinds[k], d.replicas[0].prefix+stateSuffix) {
			return
		}
	}
	t.Fatalf("reported %q, want one of the kinds %v", le.What, kinds)
}

// afterLoss checks that messages issued up to the skew after the loss are
// refused, from known and new senders, and those issued later are
// admitted once.
func (d *redisDeployment) afterLoss(t *testing.T, noticed time.Time, sender string, next uint64) {
	t.Helper()
	s := d.replicas[len(d.replicas)-1]
	for _, m := range []envelope.Seen{
		redisMsg(sender, next, noticed),
		redisMsg(sender, next+1, noticed.Add(redisSkew)),
		redisMsg("newcomer", 1, noticed.Add(redisSkew)),
	} {
		if err := s.Check(ctx, m); !errors.Is(err, envelope.ErrReplayed) {
			t.Fatalf("Check of %s %d issued %v after the loss: %v, want refused", m.Sender, m.Counter, m.IssuedAt.Sub(noticed), err)
		}
		if err := s.Admit(ctx, m); !errors.Is(err, envelope.ErrReplayed) || errors.Is(err, ErrStateLost) {
			t.Fatalf("%s %d issued %v after the loss: %v, want refused (no new loss)", m.Sender, m.Counter, m.IssuedAt.Sub(noticed), err)
		}
	}
	later := noticed.Add(redisSkew + time.Millisecond)
	for _, m := range []envelope.Seen{redisMsg(sender, next+2, later), redisMsg("newcomer", 1, later)} {
		if err := s.Check(ctx, m); err != nil {
			t.Fatalf("Check of %s %d issued after the loss + skew: %v", m.Sender, m.Counter, err)
		}
		if err := s.Admit(ctx, m); err != nil {
			t.Fatalf("%s %d issued after the loss + skew: %v", m.Sender, m.Counter, err)
		}
		if err := d.replicas[0].Admit(ctx, m); !errors.Is(err, envelope.ErrReplayed) {
			t.Fatalf("%s %d admitted twice: %v", m.Sender, m.Counter, err)
		}
	}
}

// redisLossDB is the database of the shared test Redis that the loss tests
// flush: the other tests (and packages) use database 0.
const redisLossDB = 9

// Redis loses the store's records while it runs (FLUSHDB, or the marker
// deleted). The first Admit after it reports the loss, once over all
// replicas; every message admitted before is refused by Admit and Check
// on every replica; messages issued up to the skew after the loss are
// refused, and later ones admitted as usual.
func TestRedisStoreNoticesLoss(t *testing.T) {
	addr := redisClient(t).Options().Addr
	for _, tc := range []struct {
		name string
		lose func(rdb *redis.Client, s *RedisStore) error
	}{
		{"FLUSHDB", func(rdb *redis.Client, _ *RedisStore) error { return rdb.FlushDB(ctx).Err() }},
		{"marker deleted", func(rdb *redis.Client, s *RedisStore) error { return rdb.Del(ctx, s.prefix+stateSuffix).Err() }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rdb := redis.NewClient(&redis.Options{Addr: addr, DB: redisLossDB})
			t.Cleanup(func() { rdb.Close() })
			if err := rdb.Ping(ctx).Err(); err != nil {
				t.Skipf("database %d of %s: %v", redisLossDB, addr, err)
			}
			clock := newRedisClock()
			d := newRedisDeployment(t, addr, redisLossDB, 3, RedisStoreOptions{
				Prefix: fmt.Sprintf("mqttsec-test:loss:%d:", time.Now().UnixNano()), Now: clock.Now,
			})
			senders := []string{"client-a", "client-b", "client-c"}
			sent := d.traffic(t, clock, senders, 1, 20)
			if err := tc.lose(rdb, d.replicas[0]); err != nil {
				t.Fatal(err)
			}
			clock.Add(time.Second)
			noticed := clock.Now()

			// In order: the first refusal is the one that noticed.
			for i, m := range sent {
				err := d.replicas[i%3].Admit(ctx, m)
				if !errors.Is(err, envelope.ErrReplayed) {
					t.Fatalf("%s %d admitted again after the loss: %v", m.Sender, m.Counter, err)
				}
				if lost := errors.Is(err, ErrStateLost); lost != (i == 0) {
					t.Fatalf("message %d refused with %v", i, err)
				}
			}
			for _, s := range d.replicas {
				for _, m := range sent {
					if err := s.Check(ctx, m); !errors.Is(err, envelope.ErrReplayed) {
						t.Fatalf("Check of %s %d after the loss: %v", m.Sender, m.Counter, err)
					}
				}
			}
			d.checkLoss(t, noticed, -2)
			if n := len(d.losses[0].all()); n != 1 {
				t.Fatalf("the replica that noticed reported %d losses", n)
			}
			// A function given to NotifyLoss later hears of it too.
			var late redisLossLog
			d.replicas[0].NotifyLoss(late.add)
			if len(late.all()) != 1 {
				t.Fatalf("a late NotifyLoss heard of %d losses", len(late.all()))
			}
			d.afterLoss(t, noticed, "client-a", 100)
			d.replay(t, sent)
			d.checkLoss(t, noticed, -2) // still the one loss
		})
	}
}

// InitRedisStore creates a store's state once: again is ErrExists. A
// store that was never initialised (a redisDeployment that skipped it, or one
// of a version without the marker) cannot be told from one that Redis
// lost: its first Admit reports a loss.
func TestInitRedisStore(t *testing.T) {
	rdb := redisClient(t)
	opt := RedisStoreOptions{Prefix: fmt.Sprintf("mqttsec-test:init:%d:", time.Now().UnixNano())}
	s, err := InitRedisStore(ctx, rdb, opt)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := InitRedisStore(ctx, rdb, opt); !errors.Is(err, ErrExists) {
		t.Fatalf("InitRedisStore again: %v, want ErrExists", err)
	}
	var reports redisLossLog
	s.NotifyLoss(reports.add)
	if err := s.Admit(ctx, redisMsg("client", 1, time.Now())); err != nil {
		t.Fatalf("the first message of a new store: %v", err)
	}
	if _, err := InitRedisStore(ctx, rdb, RedisStoreOptions{Prefix: opt.Prefix, Width: 65}); !errors.Is(err, envelope.ErrInvalidConfig) {
		t.Fatalf("InitRedisStore with an invalid width: %v", err)
	}

	never, err := NewRedisStore(rdb, RedisStoreOptions{Prefix: opt.Prefix + "never:"})
	if err != nil {
		t.Fatal(err)
	}
	never.NotifyLoss(reports.add)
	if err := never.Admit(ctx, redisMsg("client", 1, time.Now())); !errors.Is(err, ErrStateLost) || !errors.Is(err, envelope.ErrReplayed) {
		t.Fatalf("the first Admit of a store never initialised: %v, want a loss", err)
	}
	if len(reports.all()) != 1 {
		t.Fatalf("%d losses reported, want 1", len(reports.all()))
	}
	if _, err := InitRedisStore(ctx, rdb, RedisStoreOptions{Prefix: opt.Prefix + "never:"}); !errors.Is(err, ErrExists) {
		t.Fatalf("InitRedisStore after the loss was recorded: %v, want ErrExists", err)
	}
}

// InitRedisStore that fails part way, here for want of write permission
// on two of four shards' markers (an ACL user's; on a cluster, a node
// down), says how many markers it created. Again, it is ErrExists and
// writes nothing. The store opened as it is reports a loss for each shard
// without a marker, at its first Admit, and none for the others.
func TestInitRedisStorePartly(t *testing.T) {
	srv := privateRedis(t)
	admin := redis.NewClient(&redis.Options{Addr: srv.Addr()})
	t.Cleanup(func() { admin.Close() })
	prefix := "mqttsec-test:partly:"
	redisDo(t, admin, "ACL", "SETUSER", "gateway", "on", ">secret", "%R~"+prefix+"*",
		"%RW~"+prefix+"{0/4}*", "%RW~"+prefix+"{1/4}*", "+exists", "+eval", "+info", "+set")
	gw := redis.NewClient(&redis.Options{Addr: srv.Addr(), Username: "gateway", Password: "secret"})
	t.Cleanup(func() { gw.Close() })
	opt := RedisStoreOptions{Prefix: prefix, Shards: 4}
	_, err := InitRedisStore(ctx, gw, opt)
	if err == nil || errors.Is(err, ErrExists) || !strings.Contains(err.Error(), "2 of 4 state markers") || !strings.Contains(err.Error(), "NOPERM") {
		t.Fatalf("InitRedisStore with two markers it may not write: %v, want a failure naming 2 of 4 markers", err)
	}
	if _, err := InitRedisStore(ctx, admin, opt); !errors.Is(err, ErrExists) {
		t.Fatalf("InitRedisStore again: %v, want ErrExists", err)
	}
	s, err := NewRedisStore(admin, opt)
	if err != nil {
		t.Fatal(err)
	}
	var reports redisLossLog
	s.NotifyLoss(reports.add)
	for k, created := range []bool{true, true, false, false} {
		sender := ""
		for i := 0; sender == ""; i++ {
			if shardOf(fmt.Sprint("client-", i), 4) == k {
				sender = fmt.Sprint("client-", i)
			}
		}
		_, marker := s.keys(sender)
		if n, err := admin.Exists(ctx, marker).Result(); err != nil || (n == 1) != created {
			t.Fatalf("shard %d: marker %s exists %d (%v), want created: %v", k, marker, n, err, created)
		}
		if err := s.Admit(ctx, redisMsg(sender, 1, time.Now())); errors.Is(err, ErrStateLost) == created || (created && err != nil) {
			t.Fatalf("shard %d, created %v: Admit = %v", k, created, err)
		}
	}
	if n := len(reports.all()); n != 2 {
		t.Fatalf("%d losses reported, want 2", n)
	}
}

// SCRIPT FLUSH empties the script cache of the same process: the next
// Admit sends the script again (EVAL), finds the process the same, and
// goes on; no loss, and the windows still refuse replays.
func TestRedisStoreScriptFlushIsNoLoss(t *testing.T) {
	srv := privateRedis(t)
	rdb := redis.NewClient(&redis.Options{Addr: srv.Addr()})
	t.Cleanup(func() { rdb.Close() })
	clock := newRedisClock()
	d := newRedisDeployment(t, srv.Addr(), 0, 2, RedisStoreOptions{
		Prefix: fmt.Sprintf("mqttsec-test:flush:%d:", time.Now().UnixNano()), Now: clock.Now,
	})
	sent := d.traffic(t, clock, []string{"client"}, 1, 10)
	if err := rdb.ScriptFlush(ctx).Err(); err != nil {
		t.Fatal(err)
	}
	for _, err := range d.replay(t, sent) {
		if errors.Is(err, errBeforeLoss) {
			t.Fatalf("refused as before a loss: %v", err)
		}
	}
	d.traffic(t, clock, []string{"client"}, 11, 5)
	d.checkLoss(t, time.Time{}, 0)
}

// A marker that is not the store's is ErrCorrupt, for Admit and Check,
// and left as it is.
func TestRedisStoreCorruptMarker(t *testing.T) {
	rdb := redisClient(t)
	s := redisStores(t, 1, RedisStoreOptions{})[0]
	for _, v := range []string{"xx", "\x02" + strings.Repeat("\x00", 56)} {
		if err := rdb.Set(ctx, s.prefix+stateSuffix, v, 0).Err(); err != nil {
			t.Fatal(err)
		}
		if err := s.Admit(ctx, redisMsg("client", 1, time.Now())); !errors.Is(err, ErrCorrupt) {
			t.Fatalf("Admit with marker %q: %v, want ErrCorrupt", v, err)
		}
		if err := s.Check(ctx, redisMsg("client", 1, time.Now())); !errors.Is(err, ErrCorrupt) {
			t.Fatalf("Check with marker %q: %v, want ErrCorrupt", v, err)
		}
		if got, err := rdb.Get(ctx, s.prefix+stateSuffix).Result(); err != nil || got != v {
			t.Fatalf("the marker became %q, %v", got, err)
		}
	}
	if err := s.Admit(ctx, redisMsg("#state", 1, time.Now())); !errors.Is(err, errSenderID) {
		t.Fatalf("Admit for sender #state: %v", err)
	}
}

// privateRedis starts a redis-server of the test's own with the given
// flags, killed when the test ends. It skips unless the Redis tests are on
// (RedisEnv) and redis-server is installed.
func privateRedis(t *testing.T, flags ...string) *redisserver.Server {
	t.Helper()
	if os.Getenv(RedisEnv) == "" {
		t.Skipf("set %s=host:port (and install redis-server) to run the tests that restart or fill a Redis of their own", RedisEnv)
	}
	if redisserver.Binary() == "" {
		t.Skip("redis-server is not installed (on PATH or in /usr/bin): the tests that restart or fill a Redis of their own need it")
	}
	srv, err := redisserver.Start(t.TempDir(), flags...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Kill() })
	return srv
}

var redisAOFAlways = []string{"--appendonly", "yes", "--appendfsync", "always"}

// Redis restarts under the replicas of two stores (each with a prefix, and
// so a marker, of its own). Whatever it kept, no message is
// admitted twice. A restart that may have lost writes is reported once per
// store, by the replica that noticed it; a Redis that keeps every write,
// given DurableRedis, is no loss and refuses nothing new.
func TestRedisStoreRestart(t *testing.T) {
	kill := (*redisserver.Server).Kill
	for _, tc := range []struct {
		name     string
		flags    []string
		stop     func(*redisserver.Server) error
		snapshot bool // an RDB snapshot (SAVE) halfway through the traffic
		durable  bool
		loss     int // the loss noticed (admit.lua's code); 0: none
	}{
		{"no persistence, killed", nil, kill, false, false, -2},
		{"no persistence, killed, DurableRedis", nil, kill, false, true, -2},
		{"RDB snapshot, killed", nil, kill, true, false, -6},
		{"AOF fsync always, killed", redisAOFAlways, kill, false, false, -6},
		{"AOF fsync always, stopped", redisAOFAlways, (*redisserver.Server).Stop, false, false, -6},
		{"AOF fsync always, killed, DurableRedis", redisAOFAlways, kill, false, true, 0},
		// A server that cannot evict (noeviction) keeps DurableRedis's
		// promise; one that can may have evicted windows the store has
		// not yet found missing, which a restart then hides (see
		// TestRedisStoreDurableRestartAfterEviction): a loss.
		{"AOF fsync always, noeviction, killed, DurableRedis", append(redisAOFAlways[:len(redisAOFAlways):len(redisAOFAlways)], "--maxmemory", "64mb", "--maxmemory-policy", "noeviction"), kill, false, true, 0},
		{"AOF fsync always, volatile-lru, killed, DurableRedis", append(redisAOFAlways[:len(redisAOFAlways):len(redisAOFAlways)], "--maxmemory", "64mb", "--maxmemory-policy", "volatile-lru"), kill, false, true, -7},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv := privateRedis(t, tc.flags...)
			clock := newRedisClock()
			var deps []*redisDeployment
			var sent [][]envelope.Seen
			for i := range 2 {
				deps = append(deps, newRedisDeployment(t, srv.Addr(), 0, 3, RedisStoreOptions{
					Prefix: fmt.Sprintf("mqttsec-test:restart-%d:", i), Now: clock.Now, DurableRedis: tc.durable,
				}))
				sent = append(sent, deps[i].traffic(t, clock, []string{"client-a", "client-b"}, 1, 20))
			}
			if tc.snapshot {
				if err := redis.NewClient(&redis.Options{Addr: srv.Addr()}).Save(ctx).Err(); err != nil {
					t.Fatal(err)
				}
			}
			for i, d := range deps {
				// After the snapshot, if any: these are what it lacks.
				sent[i] = append(sent[i], d.traffic(t, clock, []string{"client-a", "client-b"}, 21, 20)...)
			}
			if err := tc.stop(srv); err != nil {
				t.Fatal(err)
			}
			if err := srv.Restart(); err != nil {
				t.Fatal(err)
			}
			clock.Add(time.Second)
			noticed := clock.Now()
			for i, d := range deps {
				errs := d.replay(t, sent[i])
				d.checkLoss(t, noticed, tc.loss)
				if tc.loss != 0 {
					d.afterLoss(t, noticed, "client-a", 100)
					continue
				}
				for _, err := range errs {
					if errors.Is(err, errBeforeLoss) {
						t.Fatalf("refused as before a loss: %v", err)
					}
				}
				// No pause: a message issued now is admitted.
				d.traffic(t, clock, []string{"client-a", "newcomer"}, 100, 1)
			}
		})
	}
}

// Redis evicts keys under maxmemory. Once a sender's window is gone, the
// store notices the eviction (or, where the policy may evict the marker
// too, the missing marker), reports it once, and admits nothing twice.
func TestRedisStoreEviction(t *testing.T) {
	for _, tc := range []struct {
		policy string
		loss   []int
	}{
		// The marker has no time to live: only windows are evicted.
		{"volatile-lru", []int{-3}},
		{"allkeys-lru", []int{-3, -2}},
	} {
		t.Run(tc.policy, func(t *testing.T) {
			srv := privateRedis(t, "--maxmemory", "4mb", "--maxmemory-policy", tc.policy)
			rdb := redis.NewClient(&redis.Options{Addr: srv.Addr()})
			t.Cleanup(func() { rdb.Close() })
			clock := newRedisClock()
			d := newRedisDeployment(t, srv.Addr(), 0, 2, RedisStoreOptions{Prefix: "mqttsec-test:evict:", Now: clock.Now})
			var senders []string
			for i := range 200 {
				senders = append(senders, fmt.Sprint("client-", i))
			}
			sent := d.traffic(t, clock, senders, 1, 1)
			filler := make([]byte, 8<<10)
			evicted := false
			for round := 0; !evicted; round++ {
				if round == 2000 {
					t.Fatal("no sender's window was evicted after 800 MB of filler")
				}
				p := rdb.Pipeline()
				for k := range 50 {
					p.Set(ctx, fmt.Sprintf("filler:%d:%d", round, k), filler, time.Hour)
				}
				exists := make([]*redis.IntCmd, len(senders))
				for i, sender := range senders {
					exists[i] = p.Exists(ctx, d.replicas[0].prefix+sender)
				}
				if _, err := p.Exec(ctx); err != nil {
					t.Fatal(err)
				}
				for _, e := range exists {
					evicted = evicted || e.Val() == 0
				}
			}
			clock.Add(time.Second)
			noticed := clock.Now()
			// While Redis goes on evicting, each sender found without a
			// window is another loss (one evicted since the last may have
			// held messages admitted after it): the test gives Redis room
			// again, to see that one eviction is reported once.
			if err := rdb.ConfigSet(ctx, "maxmemory", "0").Err(); err != nil {
				t.Fatal(err)
			}
			d.replay(t, sent)
			d.checkLoss(t, noticed, tc.loss...)
			d.afterLoss(t, noticed, "client-0", 100)
			d.checkLoss(t, noticed, tc.loss...)
		})
	}
}

// A Redis ACL user with the permissions RedisStore's documentation lists
// can initialise, run and check the store, including after NOSCRIPT and
// after a loss, and draw from a RedisCounter.
func TestRedisStoreACLUser(t *testing.T) {
	srv := privateRedis(t)
	admin := redis.NewClient(&redis.Options{Addr: srv.Addr()})
	t.Cleanup(func() { admin.Close() })
	prefix := "mqttsec-test:acl:"
	setuser := []any{"ACL", "SETUSER", "gateway", "on", ">secret", "~" + prefix + "*"}
	for _, c := range strings.Fields("evalsha eval mget get getrange getbit setbit setrange set strlen pttl pexpire exists info incr") {
		setuser = append(setuser, "+"+c)
	}
	if err := admin.Do(ctx, setuser...).Err(); err != nil {
		t.Fatal(err)
	}
	gw := redis.NewClient(&redis.Options{Addr: srv.Addr(), Username: "gateway", Password: "secret"})
	t.Cleanup(func() { gw.Close() })
	clock := newRedisClock()
	s, err := InitRedisStore(ctx, gw, RedisStoreOptions{Prefix: prefix, Now: clock.Now})
	if err != nil {
		t.Fatal(err)
	}
	var reports redisLossLog
	s.NotifyLoss(reports.add)
	step := func(what string, m envelope.Seen, want error) {
		t.Helper()
		if err := s.Check(ctx, m); !errors.Is(err, want) {
			t.Fatalf("%s: Check = %v, want %v", what, err, want)
		}
		if err := s.Admit(ctx, m); !errors.Is(err, want) {
			t.Fatalf("%s: Admit = %v, want %v", what, err, want)
		}
	}
	step("first message", redisMsg("client", 1, clock.Now()), nil)
	if err := s.Admit(ctx, redisMsg("client", 1, clock.Now())); !errors.Is(err, envelope.ErrReplayed) {
		t.Fatalf("replay: %v", err)
	}
	if err := admin.ScriptFlush(ctx).Err(); err != nil {
		t.Fatal(err)
	}
	step("after SCRIPT FLUSH", redisMsg("client", 2, clock.Now()), nil)
	if err := admin.Del(ctx, s.prefix+stateSuffix).Err(); err != nil {
		t.Fatal(err)
	}
	if err := s.Admit(ctx, redisMsg("client", 3, clock.Now())); !errors.Is(err, ErrStateLost) {
		t.Fatalf("after the marker was deleted: %v, want a loss", err)
	}
	clock.Add(redisSkew + time.Second)
	step("after the loss", redisMsg("client", 4, clock.Now()), nil)
	if len(reports.all()) != 1 {
		t.Fatalf("%d losses reported, want 1", len(reports.all()))
	}
	counter := NewRedisCounter(gw, prefix+"#counter") // "#" is in no sender id
	for range 2 {
		if _, err := counter.Next(); err != nil {
			t.Fatalf("RedisCounter: %v", err)
		}
		if err := admin.ScriptFlush(ctx).Err(); err != nil {
			t.Fatal(err)
		}
	}
}

// Every replica's counter meets NOSCRIPT once on a Redis process (here,
// after SCRIPT FLUSH, as a second replica's first call does): only a
// process not seen before moves the counter up to the clock, so the
// replicas do not make it leap, one after the other, past replies still
// in flight (which their receivers would then refuse as too old).
func TestRedisCounterNoLeapOnAProcessSeenBefore(t *testing.T) {
	srv := privateRedis(t)
	rdb := redis.NewClient(&redis.Options{Addr: srv.Addr()})
	t.Cleanup(func() { rdb.Close() })
	a, b := NewRedisCounter(rdb, "mqttsec-test:counter:gateway"), NewRedisCounter(rdb, "mqttsec-test:counter:gateway")
	first, err := a.Next()
	if err != nil {
		t.Fatal(err)
	}
	if err := rdb.ScriptFlush(ctx).Err(); err != nil {
		t.Fatal(err)
	}
	second, err := b.Next()
	if err != nil {
		t.Fatal(err)
	}
	if second != first+1 {
		t.Fatalf("after NOSCRIPT on the same process: %d, then %d; want the next value", first, second)
	}
}

// Redis restarts under a RedisCounter and the replicas drawing from it:
// the counter never hands out a value again, whatever Redis kept, even
// when another counter's script was loaded into the new process first.
func TestRedisCounterAfterRestart(t *testing.T) {
	for _, tc := range []struct {
		name     string
		flags    []string
		snapshot bool // an RDB snapshot (SAVE) halfway
	}{
		{"no persistence", nil, false},
		{"RDB snapshot", nil, true},
		{"AOF fsync always", redisAOFAlways, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv := privateRedis(t, tc.flags...)
			var replicas []*RedisCounter
			for range 2 {
				rdb := redis.NewClient(&redis.Options{Addr: srv.Addr()})
				t.Cleanup(func() { rdb.Close() })
				replicas = append(replicas, NewRedisCounter(rdb, "mqttsec-test:counter:gateway"))
			}
			other := NewRedisCounter(replicas[0].rdb, "mqttsec-test:counter:other")
			seen := map[uint64]bool{}
			var highest uint64
			draw := func(n int) {
				t.Helper()
				for i := range n {
					v, err := replicas[i%2].Next()
					if err != nil {
						t.Fatal(err)
					}
					if seen[v] || v <= highest {
						t.Fatalf("counter %d handed out after %d (seen before: %v)", v, highest, seen[v])
					}
					seen[v], highest = true, v
				}
			}
			draw(20)
			if tc.snapshot {
				if err := replicas[0].rdb.Save(ctx).Err(); err != nil {
					t.Fatal(err)
				}
			}
			draw(20) // what a snapshot lacks
			if err := srv.Kill(); err != nil {
				t.Fatal(err)
			}
			if err := srv.Restart(); err != nil {
				t.Fatal(err)
			}
			if _, err := other.Next(); err != nil {
				t.Fatal(err)
			}
			draw(20)
		})
	}
}

// redisDo sends a command to Redis, failing t on an error.
func redisDo(t *testing.T, rdb *redis.Client, args ...any) {
	t.Helper()
	if err := rdb.Do(ctx, args...).Err(); err != nil {
		t.Fatalf("%v: %v", args, err)
	}
}

// restartFromSnapshot saves an RDB snapshot, has more done (what the
// snapshot lacks), and kills and restarts the server, which comes back
// with the snapshot.
func restartFromSnapshot(t *testing.T, srv *redisserver.Server, more func()) {
	t.Helper()
	rdb := redis.NewClient(&redis.Options{Addr: srv.Addr()})
	defer rdb.Close()
	redisDo(t, rdb, "SAVE")
	more()
	if err := srv.Kill(); err != nil {
		t.Fatal(err)
	}
	if err := srv.Restart(); err != nil {
		t.Fatal(err)
	}
}

// firstCallFailures are ways a script's first run on a new Redis process
// fails at its first write, after Redis cached the script: out of memory
// under noeviction, and a replica not yet promoted (as in a failover).
// fail brings the failure on, heal ends it; want is in the error.
var firstCallFailures = []struct {
	name       string
	fail, heal []any
	want       string
}{
	{"OOM", []any{"CONFIG", "SET", "maxmemory", "1"}, []any{"CONFIG", "SET", "maxmemory", "0"}, "OOM"},
	{"READONLY", []any{"REPLICAOF", "127.0.0.1", "1"}, []any{"REPLICAOF", "NO", "ONE"}, "READONLY"},
}

// Redis restarts from an RDB snapshot, and the first Admit after it fails
// before it can record the loss. The next Admits notice the new process
// all the same: no message is admitted twice. (A store that checked the
// process only after NOSCRIPT did not: the failing EVAL had cached the
// script, and no later Admit checked.)
func TestRedisStoreRestartFirstAdmitFails(t *testing.T) {
	for _, tc := range firstCallFailures {
		t.Run(tc.name, func(t *testing.T) {
			srv := privateRedis(t, "--maxmemory-policy", "noeviction")
			clock := newRedisClock()
			d := newRedisDeployment(t, srv.Addr(), 0, 3, RedisStoreOptions{Prefix: "mqttsec-test:first-fails:", Now: clock.Now})
			senders := []string{"client-a", "client-b"}
			sent := d.traffic(t, clock, senders, 1, 20)
			restartFromSnapshot(t, srv, func() {
				sent = append(sent, d.traffic(t, clock, []string{"client-a"}, 21, 5)...)
			})
			admin := redis.NewClient(&redis.Options{Addr: srv.Addr()})
			t.Cleanup(func() { admin.Close() })
			redisDo(t, admin, tc.fail...)
			clock.Add(time.Second)
			if err := d.replicas[0].Admit(ctx, sent[len(sent)-1]); err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("the first Admit after the restart: %v, want an error with %s", err, tc.want)
			}
			redisDo(t, admin, tc.heal...)
			clock.Add(time.Second)
			noticed := clock.Now()
			d.replay(t, sent)
			d.checkLoss(t, noticed, -6)
			d.afterLoss(t, noticed, "client-a", 100)
		})
	}
}

// Two stores with one prefix in two databases of one Redis: a restart
// that lost writes is noticed by each, which refuses what it admitted.
// (When the store checked the process only after NOSCRIPT, the stores
// shared one script: the first to notice loaded it, and the other then
// never checked.)
func TestRedisStoreRestartTwoDatabases(t *testing.T) {
	srv := privateRedis(t)
	clock := newRedisClock()
	opt := RedisStoreOptions{Prefix: "mqttsec-test:databases:", Now: clock.Now}
	senders := []string{"client-a", "client-b"}
	var deps []*redisDeployment
	var sent [][]envelope.Seen
	for db := range 2 {
		deps = append(deps, newRedisDeployment(t, srv.Addr(), db, 2, opt))
		sent = append(sent, deps[db].traffic(t, clock, senders, 1, 20))
	}
	restartFromSnapshot(t, srv, func() {
		for db, d := range deps {
			sent[db] = append(sent[db], d.traffic(t, clock, senders, 21, 5)...)
		}
	})
	clock.Add(time.Second)
	noticed := clock.Now()
	for db, d := range deps {
		d.replay(t, sent[db])
		d.checkLoss(t, noticed, -6)
		d.afterLoss(t, noticed, "client-a", 100)
	}
}

// Redis, with every write fsynced (DurableRedis) but an eviction policy,
// evicts senders' windows and restarts before any Admit found them
// missing. The new process counts its evictions from 0: the evictions of
// the earlier one are noticed only as a restart on a server that can
// evict, which DurableRedis does not cover. A loss, reported once, and no
// message admitted twice.
func TestRedisStoreDurableRestartAfterEviction(t *testing.T) {
	srv := privateRedis(t, append(redisAOFAlways[:len(redisAOFAlways):len(redisAOFAlways)], "--maxmemory", "4mb", "--maxmemory-policy", "volatile-lru")...)
	store := redis.NewClient(&redis.Options{Addr: srv.Addr()})
	filler := redis.NewClient(&redis.Options{Addr: srv.Addr(), DB: 1})
	t.Cleanup(func() { store.Close(); filler.Close() })
	clock := newRedisClock()
	d := newRedisDeployment(t, srv.Addr(), 0, 2, RedisStoreOptions{Prefix: "mqttsec-test:durable-evict:", Now: clock.Now, DurableRedis: true})
	var senders []string
	for i := range 200 {
		senders = append(senders, fmt.Sprint("client-", i))
	}
	sent := d.traffic(t, clock, senders, 1, 1)
	value := make([]byte, 8<<10)
	evicted := 0
	for round := 0; evicted == 0; round++ {
		if round == 2000 {
			t.Fatal("no sender's window was evicted after 800 MB of filler")
		}
		p := filler.Pipeline()
		for k := range 50 {
			p.Set(ctx, fmt.Sprintf("filler:%d:%d", round, k), value, time.Hour)
		}
		if _, err := p.Exec(ctx); err != nil {
			t.Fatal(err)
		}
		p = store.Pipeline()
		exists := make([]*redis.IntCmd, len(senders))
		for i, sender := range senders {
			exists[i] = p.Exists(ctx, d.replicas[0].prefix+sender)
		}
		if _, err := p.Exec(ctx); err != nil {
			t.Fatal(err)
		}
		for _, e := range exists {
			if e.Val() == 0 {
				evicted++
			}
		}
	}
	// Room again (the filler is in a database of its own), so that the
	// restarted Redis evicts nothing more.
	redisDo(t, filler, "FLUSHDB")
	if err := srv.Kill(); err != nil {
		t.Fatal(err)
	}
	if err := srv.Restart(); err != nil {
		t.Fatal(err)
	}
	t.Logf("%d of %d windows evicted before the restart", evicted, len(senders))
	clock.Add(time.Second)
	noticed := clock.Now()
	d.replay(t, sent)
	d.checkLoss(t, noticed, -7)
	d.afterLoss(t, noticed, "client-0", 100)
	d.checkLoss(t, noticed, -7)
}

// replicate makes replica a replica of master and waits until it is in
// sync.
func replicate(t *testing.T, replica *redis.Client, master *redisserver.Server) {
	t.Helper()
	host, port, _ := strings.Cut(master.Addr(), ":")
	redisDo(t, replica, "REPLICAOF", host, port)
	for deadline := time.Now().Add(20 * time.Second); ; {
		info, err := replica.Info(ctx, "replication").Result()
		if err == nil && strings.Contains(info, "master_link_status:up") {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("the replica did not sync: %v %s", err, info)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// synced waits until master's one replica acknowledged every write.
func synced(t *testing.T, master *redis.Client) {
	t.Helper()
	if n, err := master.Wait(ctx, 1, 10*time.Second).Result(); err != nil || n != 1 {
		t.Fatalf("WAIT: %d replicas, %v", n, err)
	}
}

// Redis fails over to a replica and back to the first server, which, while
// a replica, lagged behind. That server kept its script cache through
// all of it: the store notices the failback by the marker (naming the
// process it failed over to), not by NOSCRIPT, and admits nothing twice.
func TestRedisStoreFailback(t *testing.T) {
	flags := []string{"--repl-diskless-sync-delay", "0"}
	a, b := privateRedis(t, flags...), privateRedis(t, flags...)
	ca := redis.NewClient(&redis.Options{Addr: a.Addr()})
	cb := redis.NewClient(&redis.Options{Addr: b.Addr()})
	t.Cleanup(func() { ca.Close(); cb.Close() })
	replicate(t, cb, a)
	clock := newRedisClock()
	opt := RedisStoreOptions{Prefix: "mqttsec-test:failback:", Now: clock.Now}
	senders := []string{"client-a", "client-b"}
	onA := newRedisDeployment(t, a.Addr(), 0, 2, opt)
	onA.traffic(t, clock, senders, 1, 10)
	synced(t, ca)

	// Failover: b is promoted, a follows it.
	redisDo(t, cb, "REPLICAOF", "NO", "ONE")
	replicate(t, ca, b)
	onB := openRedisDeployment(t, b.Addr(), 0, 2, opt, false)
	clock.Add(time.Second)
	failover := clock.Now()
	if err := onB.replicas[0].Admit(ctx, redisMsg("client-a", 11, failover)); !errors.Is(err, ErrStateLost) {
		t.Fatalf("the first Admit after the failover: %v, want a loss", err)
	}
	onB.checkLoss(t, failover, -6)
	clock.Add(redisSkew + time.Second)
	sent := onB.traffic(t, clock, senders, 12, 5)
	synced(t, cb)
	// a is promoted while b goes on: a lacks what follows.
	redisDo(t, ca, "REPLICAOF", "NO", "ONE")
	sent = append(sent, onB.traffic(t, clock, senders, 17, 5)...)

	// Failback to a, which still holds the store's script.
	back := openRedisDeployment(t, a.Addr(), 0, 2, opt, false)
	clock.Add(time.Second)
	noticed := clock.Now()
	back.replay(t, sent)
	back.checkLoss(t, noticed, -6)
	back.afterLoss(t, noticed, "client-a", 100)
}

// Redis restarts from an RDB snapshot under a RedisCounter, and its first
// call after it fails (out of memory, or a replica not yet promoted). The
// counter still moves up to the clock on the next call: it never hands
// out a value again. (A counter that checked the process only after
// NOSCRIPT did not: the failing EVAL had cached the script.)
func TestRedisCounterRestartFirstCallFails(t *testing.T) {
	for _, tc := range firstCallFailures {
		t.Run(tc.name, func(t *testing.T) {
			srv := privateRedis(t, "--maxmemory-policy", "noeviction")
			rdb := redis.NewClient(&redis.Options{Addr: srv.Addr()})
			t.Cleanup(func() { rdb.Close() })
			c := NewRedisCounter(rdb, "mqttsec-test:counter:gateway")
			var highest uint64
			draw := func(n int) {
				t.Helper()
				for range n {
					v, err := c.Next()
					if err != nil {
						t.Fatal(err)
					}
					if v <= highest {
						t.Fatalf("counter %d handed out after %d", v, highest)
					}
					highest = v
				}
			}
			draw(20)
			restartFromSnapshot(t, srv, func() { draw(20) })
			redisDo(t, rdb, tc.fail...)
			if v, err := c.Next(); err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("the first call after the restart: %d, %v; want an error with %s", v, err, tc.want)
			}
			redisDo(t, rdb, tc.heal...)
			draw(20)
		})
	}
}
