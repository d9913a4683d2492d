package mqttsec_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/mqttsec/mqttsec/envelope"
	"github.com/mqttsec/mqttsec/internal/redisserver"
	"github.com/mqttsec/mqttsec/mqttsec"
	"github.com/mqttsec/mqttsec/mqttsec/replay"
)

// Three gateway replicas share their replay windows in a Redis that keeps
// nothing on disk. Redis is killed and restarted empty, and every request
// captured before is published again, within its lifetime: no handler runs
// a second time (before the Redis store noticed losses, 1,856 of such
// requests ran twice in a measured run). The loss is reported once; a
// request issued before the loss plus the clock skew is refused, a later
// one handled once. The test moves the parties' clocks (Config.Now and the
// store's Now) past the skew instead of waiting for it.
func TestReplicasRefuseReplaysAfterRedisRestartedEmpty(t *testing.T) {
	if os.Getenv(RedisEnv) == "" {
		t.Skipf("set %s=host:port (and install redis-server) to run the Redis restart tests", RedisEnv)
	}
	if redisserver.Binary() == "" {
		t.Skip("redis-server is not installed (on PATH or in /usr/bin): the Redis restart tests start their own")
	}
	srv, err := redisserver.Start(t.TempDir()) // no RDB, no AOF
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Kill() })
	b := embeddedBroker(t)
	k := getKeys()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()

	// Every party's clock, moved by the test.
	var ahead atomic.Int64
	now := func() time.Time { return time.Now().Add(time.Duration(ahead.Load())) }

	const prefix = "mqttsec-test:redisloss:"
	opt := replay.RedisStoreOptions{Prefix: prefix, Width: mqttsec.DefaultReplayWindow, Now: now}
	admin := redis.NewClient(&redis.Options{Addr: srv.Addr()})
	defer admin.Close()
	if _, err := replay.InitRedisStore(ctx, admin, opt); err != nil {
		t.Fatal(err)
	}

	var mu sync.Mutex
	calls := map[string]int{} // handler calls by request payload
	var losses []error
	var servers []*mqttsec.Server
	for i := range 3 {
		rdb := redis.NewClient(&redis.Options{Addr: srv.Addr()})
		defer rdb.Close()
		store, err := replay.NewRedisStore(rdb, opt)
		if err != nil {
			t.Fatal(err)
		}
		store.NotifyLoss(func(err error) {
			mu.Lock()
			losses = append(losses, err)
			mu.Unlock()
		})
		ring := mustT(mqttsec.NewKeyring(mqttsec.Own{}, peerOf(k, "client", k.client, envelope.HMAC, mqttsec.Protection{HMAC: k.hmac})))
		s := mustT(mqttsec.NewServer(mqttsec.ServerConfig{
			ShareGroup: "gateways",
			Config: mqttsec.Config{ID: "gateway", Keyring: ring, Replay: store, Counter: replay.NewRedisCounter(rdb, prefix+"#counter"),
				Transport: transport(t, 5, b.url, fmt.Sprint("gateway-", i), nil), Now: now},
		}))
		s.HandleFunc("count", func(ctx context.Context, r *mqttsec.Request) ([]byte, error) {
			mu.Lock()
			calls[string(r.Payload)]++
			mu.Unlock()
			return r.Payload, nil
		})
		if err := s.Start(ctx); err != nil {
			t.Fatal(err)
		}
		defer s.Close(context.Background())
		servers = append(servers, s)
	}
	ring := mustT(mqttsec.NewKeyring(mqttsec.Own{}, peerOf(k, "gateway", k.gateway, envelope.HMAC, mqttsec.Protection{HMAC: k.hmac})))
	client := mustT(mqttsec.NewClient(mqttsec.Config{ID: "client", Keyring: ring, Transport: transport(t, 5, b.url, "client", nil), Now: now}))
	if err := client.Start(ctx); err != nil {
		t.Fatal(err)
	}
	defer client.Close(context.Background())
	topic := "mqttsec/gateway/req/count"
	eve := newAttacker(t, b, topic)

	// requests sends n requests named name-0 ... and checks each was
	// answered and handled once.
	requests := func(name string, n int) {
		t.Helper()
		failed := requestsInFlight(t, n, 8, func(i int) error {
			want := fmt.Sprint(name, "-", i)
			reply, err := client.Request(ctx, "gateway", "count", []byte(want))
			if err == nil && string(reply) != want {
				err = fmt.Errorf("reply %q", reply)
			}
			return err
		})
		if failed != 0 {
			t.Fatalf("%d of %d %s requests failed", failed, n, name)
		}
	}
	handledOnce := func(name string, n int) {
		t.Helper()
		mu.Lock()
		defer mu.Unlock()
		wrong, first := 0, ""
		for i := range n {
			if c := calls[fmt.Sprint(name, "-", i)]; c != 1 {
				if wrong++; wrong == 1 {
					first = fmt.Sprintf("%s-%d handled %d times", name, i, c)
				}
			}
		}
		if wrong > 0 {
			t.Fatalf("%d of %d requests not handled exactly once (%s)", wrong, n, first)
		}
	}
	count := func(stats ...string) (n uint64) {
		for _, s := range servers {
			st := s.Stats()
			for _, name := range stats {
				n += st[name]
			}
		}
		return n
	}
	refused := func() uint64 { return count(mqttsec.StatReplayed, mqttsec.StatReplayStore) }

	const total = 60
	requests("before", total)
	handledOnce("before", total)
	waitFor(t, "the requests captured", func() bool { return len(eve.captured(topic)) == total })

	if err := srv.Kill(); err != nil {
		t.Fatal(err)
	}
	if err := srv.Restart(); err != nil {
		t.Fatal(err)
	}
	if n, err := admin.DBSize(ctx).Result(); err != nil || n != 0 {
		t.Fatalf("Redis restarted with %d keys (%v), want none", n, err)
	}
	accepted := count(mqttsec.StatAccepted)
	for _, req := range eve.captured(topic) {
		eve.publish(t, topic, req)
	}
	waitFor(t, "every replayed request refused or handled", func() bool {
		return refused()+count(mqttsec.StatAccepted)-accepted == total
	})
	handledOnce("before", total)
	mu.Lock()
	lost := append([]error(nil), losses...)
	mu.Unlock()
	var le *replay.LossError
	if len(lost) != 1 || !errors.As(lost[0], &le) || !errors.Is(lost[0], replay.ErrStateLost) {
		t.Fatalf("losses reported by the replicas: %v; want one *replay.LossError", lost)
	}
	t.Logf("reported: %v", le)

	// A new request issued now is refused too: the replicas cannot tell
	// it from one accepted before the loss.
	early, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { _, err := client.Request(early, "gateway", "count", []byte("early")); done <- err }()
	waitFor(t, "the request issued before the loss + skew refused", func() bool { return refused() == total+1 })
	stop()
	if err := returned(t, "the early request", done); !errors.Is(err, context.Canceled) {
		t.Fatalf("early request: %v", err)
	}

	// Past the skew, requests are handled as usual, each once.
	ahead.Store(int64(envelope.DefaultMaxClockSkew + time.Second))
	requests("after", 20)
	handledOnce("after", 20)
	mu.Lock()
	defer mu.Unlock()
	if calls["early"] != 0 || len(losses) != 1 {
		t.Fatalf("the early request was handled %d times; %d losses reported", calls["early"], len(losses))
	}
}
