package replay

import (
	"errors"
	"fmt"
	"os"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/mqttsec/mqttsec/envelope"
)

// RedisEnv names the environment variable with the address (host:port) of
// a Redis server for these tests; without it they skip.
const RedisEnv = "MQTTSEC_TEST_REDIS"

func redisClient(t testing.TB) *redis.Client {
	t.Helper()
	addr := os.Getenv(RedisEnv)
	if addr == "" {
		t.Skipf("set %s=host:port to run the Redis store tests", RedisEnv)
	}
	rdb := redis.NewClient(&redis.Options{Addr: addr})
	t.Cleanup(func() { rdb.Close() })
	if err := rdb.Ping(ctx).Err(); err != nil {
		t.Fatalf("%s=%s: %v", RedisEnv, addr, err)
	}
	return rdb
}

// redisStores returns n stores of one new deployment (InitRedisStore, then
// NewRedisStore) under a prefix of their own, sharing a Redis client.
func redisStores(t testing.TB, n int, opt RedisStoreOptions) []*RedisStore {
	rdb := redisClient(t)
	return newStores(t, n, opt, func() redis.UniversalClient { return rdb })
}

// replicaStores is redisStores with a Redis client of its own for each
// store, as separate replicas have.
func replicaStores(t testing.TB, n int, opt RedisStoreOptions) []*RedisStore {
	return newStores(t, n, opt, func() redis.UniversalClient { return redisClient(t) })
}

func newStores(t testing.TB, n int, opt RedisStoreOptions, client func() redis.UniversalClient) []*RedisStore {
	t.Helper()
	opt.Prefix = fmt.Sprintf("mqttsec-test:%s:%d:", t.Name(), time.Now().UnixNano())
	var out []*RedisStore
	for i := range n {
		mk := NewRedisStore
		if i == 0 {
			mk = func(rdb redis.UniversalClient, opt RedisStoreOptions) (*RedisStore, error) {
				return InitRedisStore(ctx, rdb, opt)
			}
		}
		s, err := mk(client(), opt)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, s)
	}
	return out
}

func TestRedisStoreSharedBetweenReplicas(t *testing.T) {
	st := redisStores(t, 2, RedisStoreOptions{})
	a, b := st[0], st[1]
	if err := a.Admit(ctx, seen("client", 10)); err != nil {
		t.Fatal(err)
	}
	// The same message delivered to the other replica.
	if err := b.Check(ctx, seen("client", 10)); !errors.Is(err, envelope.ErrReplayed) {
		t.Fatalf("Check on the other replica: %v", err)
	}
	if err := b.Admit(ctx, seen("client", 10)); !errors.Is(err, envelope.ErrReplayed) {
		t.Fatalf("Admit on the other replica: %v", err)
	}
	// Reordering within the window works across replicas.
	if err := b.Admit(ctx, seen("client", 12)); err != nil {
		t.Fatal(err)
	}
	if err := a.Admit(ctx, seen("client", 11)); err != nil {
		t.Fatalf("reordered 11: %v", err)
	}
	if err := a.Admit(ctx, seen("client", 12)); !errors.Is(err, envelope.ErrReplayed) {
		t.Fatalf("12 again: %v", err)
	}
}

func TestRedisStoreConcurrentExactlyOnce(t *testing.T) {
	st := redisStores(t, 4, RedisStoreOptions{})
	var mu sync.Mutex
	won := map[uint64]int{}
	var wg sync.WaitGroup
	for _, s := range st {
		for range 2 {
			wg.Go(func() {
				for c := uint64(1); c <= 100; c++ {
					if s.Admit(ctx, seen("client", c)) == nil {
						mu.Lock()
						won[c]++
						mu.Unlock()
					}
				}
			})
		}
	}
	wg.Wait()
	for c := uint64(1); c <= 100; c++ {
		if won[c] != 1 {
			t.Fatalf("counter %d admitted %d times by 8 racing replicas", c, won[c])
		}
	}
}

// One sender with many messages in flight, spread over three replicas (each
// with its own Redis client): every message is admitted. (Admit was once an
// optimistic transaction whose concurrent runs for one key conflicted;
// with 128 in flight, 13 % of them failed after 64 retries.)
func TestRedisStoreOneBusySenderOverReplicas(t *testing.T) {
	st := replicaStores(t, 3, RedisStoreOptions{Width: 4096})
	const inFlight, each = 128, 40
	var next atomic.Uint64
	var failed atomic.Int64
	var wg sync.WaitGroup
	for i := range inFlight {
		s := st[i%len(st)]
		wg.Go(func() {
			for range each {
				if err := s.Admit(ctx, seen("client", next.Add(1))); err != nil && failed.Add(1) == 1 {
					t.Errorf("Admit: %v", err)
				}
			}
		})
	}
	wg.Wait()
	if n := failed.Load(); n > 0 {
		t.Fatalf("%d of %d admits failed", n, inFlight*each)
	}
	for c := uint64(1); c <= inFlight*each; c += 97 {
		if err := st[int(c)%len(st)].Admit(ctx, seen("client", c)); !errors.Is(err, envelope.ErrReplayed) {
			t.Fatalf("counter %d admitted again: %v", c, err)
		}
	}
}

func TestRedisStoreRetention(t *testing.T) {
	rdb := redisClient(t)
	s := redisStores(t, 1, RedisStoreOptions{Retention: 7 * time.Minute})[0]
	if err := s.Admit(ctx, seen("client", 1)); err != nil {
		t.Fatal(err)
	}
	ttl, err := rdb.TTL(ctx, s.prefix+"client").Result()
	if err != nil || ttl <= 6*time.Minute || ttl > 7*time.Minute {
		t.Fatalf("TTL = %v, %v; want about 7m", ttl, err)
	}
	// A damaged value is an error, not a fresh window, and stays as it
	// was; so is a window of another width.
	rdb.Set(ctx, s.prefix+"broken", "xx", time.Minute)
	if err := s.Admit(ctx, seen("broken", 1)); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("damaged window: %v", err)
	}
	if v, err := rdb.Get(ctx, s.prefix+"broken").Result(); err != nil || v != "xx" {
		t.Fatalf("the damaged value became %q, %v", v, err)
	}
	// A value of the ring layout's length with another first byte too.
	odd := "\x07" + strings.Repeat("\x00", 16+DefaultWindow/8)
	rdb.Set(ctx, s.prefix+"odd", odd, time.Minute)
	if err := s.Admit(ctx, seen("odd", 1)); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("a value of another layout: Admit = %v", err)
	}
	if err := s.Check(ctx, seen("odd", 1)); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("a value of another layout: Check = %v", err)
	}
	if v, err := rdb.Get(ctx, s.prefix+"odd").Result(); err != nil || v != odd {
		t.Fatalf("the value of another layout became %q, %v", v, err)
	}
	wider, err := NewRedisStore(rdb, RedisStoreOptions{Prefix: s.prefix, Width: 128})
	if err != nil {
		t.Fatal(err)
	}
	if err := wider.Admit(ctx, seen("client", 2)); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("a window of another width: %v", err)
	}
}

// A sender's window outlives every message it admitted: its key is kept
// until Retention after the latest ExpiresAt, and a later, shorter-lived
// message never shortens that. Otherwise a receiver whose Policy allows
// lifetimes longer than Retention would re-admit a replay once the key
// expired.
func TestRedisStoreKeepsWindowUntilMessagesExpire(t *testing.T) {
	rdb := redisClient(t)
	s := redisStores(t, 1, RedisStoreOptions{Retention: time.Minute})[0]
	key := s.prefix + "client"
	steps := []struct {
		name     string
		ctr      uint64
		lifetime time.Duration // ExpiresAt - now; 0: not known
		min, max time.Duration // the key's time to live afterwards
	}{
		{"first message, expiry unknown", 1, 0, 59 * time.Second, time.Minute + time.Second},
		{"long-lived message", 2, 2 * time.Hour, 2*time.Hour + 59*time.Second, 2*time.Hour + time.Minute + time.Second},
		{"short-lived message after it", 3, 10 * time.Second, 2*time.Hour + 50*time.Second, 2*time.Hour + time.Minute + time.Second},
		{"expiry unknown after it", 4, 0, 2*time.Hour + 50*time.Second, 2*time.Hour + time.Minute + time.Second},
	}
	for _, step := range steps {
		m := seen("client", step.ctr)
		if step.lifetime > 0 {
			m.ExpiresAt = time.Now().Add(step.lifetime)
		}
		if err := s.Admit(ctx, m); err != nil {
			t.Fatalf("%s: %v", step.name, err)
		}
		ttl, err := rdb.PTTL(ctx, key).Result()
		if err != nil || ttl < step.min || ttl > step.max {
			t.Fatalf("%s: time to live %v (%v), want %v to %v", step.name, ttl, err, step.min, step.max)
		}
	}
}

func TestNewRedisStoreRefusesInvalidOptions(t *testing.T) {
	// No server is needed: the options are checked before any command.
	rdb := redis.NewClient(&redis.Options{Addr: "127.0.0.1:1"})
	t.Cleanup(func() { rdb.Close() })
	for _, opt := range []RedisStoreOptions{
		{Width: 65},
		{Width: MaxWindow + 64},
		{Width: MaxRedisWidth + 64},
		{Retention: 100 * 365 * 24 * time.Hour},
	} {
		if _, err := NewRedisStore(rdb, opt); !errors.Is(err, envelope.ErrInvalidConfig) {
			t.Errorf("NewRedisStore(%+v) = %v, want ErrInvalidConfig", opt, err)
		}
	}
	if _, err := NewRedisStore(rdb, RedisStoreOptions{Retention: time.Hour}); err != nil {
		t.Fatalf("a one-hour retention: %v", err)
	}
	if _, err := NewRedisStore(rdb, RedisStoreOptions{Width: MaxRedisWidth}); err != nil {
		t.Fatalf("the widest window: %v", err)
	}
}

func BenchmarkRedisStoreAdmit(b *testing.B) {
	s := redisStores(b, 1, RedisStoreOptions{})[0]
	var mu sync.Mutex
	var n uint64
	b.SetParallelism(16)
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			mu.Lock()
			n++
			c := n
			mu.Unlock()
			s.Admit(ctx, seen(fmt.Sprint("s", c%256), c))
		}
	})
}

// BenchmarkRedisStoreAdmitOneSender is one sender's messages, 128 in
// flight (on two CPUs), admitted by 3, 10, 20 and 40 replicas with their
// own Redis clients, at width 4096: ns/op is the inverse of the sender's
// admission rate. A failed Admit fails the benchmark.
func BenchmarkRedisStoreAdmitOneSender(b *testing.B) {
	for _, replicas := range []int{3, 10, 20, 40} {
		b.Run(fmt.Sprintf("replicas=%d", replicas), func(b *testing.B) {
			st := replicaStores(b, replicas, RedisStoreOptions{Width: 4096})
			var next, replica atomic.Uint64
			b.SetParallelism(128 / runtime.GOMAXPROCS(0))
			b.RunParallel(func(pb *testing.PB) {
				s := st[replica.Add(1)%uint64(len(st))]
				for pb.Next() {
					if err := s.Admit(ctx, seen("client", next.Add(1))); err != nil {
						b.Error(err)
						return
					}
				}
			})
		})
	}
}

func TestRedisCounterSharedAndIncreasing(t *testing.T) {
	rdb := redisClient(t)
	key := fmt.Sprintf("mqttsec-test:counter:%d", time.Now().UnixNano())
	a, b := NewRedisCounter(rdb, key), NewRedisCounter(rdb, key)
	before := uint64(time.Now().UnixNano())
	var mu sync.Mutex
	seen := map[uint64]bool{}
	var wg sync.WaitGroup
	for _, c := range []*RedisCounter{a, b, a, b} {
		wg.Go(func() {
			for range 100 {
				n, err := c.Next()
				if err != nil {
					t.Error(err)
					return
				}
				mu.Lock()
				if seen[n] || n <= before {
					t.Errorf("counter %d repeated or below the start time", n)
				}
				seen[n] = true
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	if len(seen) != 400 {
		t.Fatalf("%d distinct counters, want 400", len(seen))
	}
}
