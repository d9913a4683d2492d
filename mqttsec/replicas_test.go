package mqttsec_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/mqttsec/mqttsec/envelope"
	"github.com/mqttsec/mqttsec/mqttsec"
	"github.com/mqttsec/mqttsec/mqttsec/replay"
)

// RedisEnv names the variable with a Redis address for the replica tests.
const RedisEnv = "MQTTSEC_TEST_REDIS"

// TestReplicasShareReplayStateThroughRedis runs two gateway replicas behind
// an MQTT shared subscription with one Redis replay store: requests are
// split between them, and every request replayed through the broker — to
// whichever replica the broker picks — is refused.
func TestReplicasShareReplayStateThroughRedis(t *testing.T) {
	addr := os.Getenv(RedisEnv)
	if addr == "" {
		t.Skipf("set %s=host:port to run the replica tests against Redis", RedisEnv)
	}
	rdb := redis.NewClient(&redis.Options{Addr: addr})
	defer rdb.Close()
	forEach(t, func(t *testing.T, b *broker, proto int) {
		checkNoLeaks(t)
		k := getKeys()
		prefix := fmt.Sprintf("mqttsec-test:replicas:%d:", time.Now().UnixNano())
		var handled [2]atomic.Int64
		var servers []*mqttsec.Server
		// Both replicas answer as "gateway": they draw their counters from
		// one shared sequence, or the client would refuse whichever
		// replica's counters fall behind its window.
		counterKey := prefix + "counter:gateway"
		ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
		defer cancel()
		// A new deployment: its state is created once, or the first
		// message would be taken for a Redis that lost it.
		if _, err := replay.InitRedisStore(ctx, rdb, replay.RedisStoreOptions{Prefix: prefix}); err != nil {
			t.Fatal(err)
		}
		for i := range 2 {
			store, err := replay.NewRedisStore(rdb, replay.RedisStoreOptions{Prefix: prefix, Width: mqttsec.DefaultReplayWindow})
			if err != nil {
				t.Fatal(err)
			}
			ring := mustT(mqttsec.NewKeyring(mqttsec.Own{}, peerOf(k, "client", k.client, envelope.HMAC, mqttsec.Protection{HMAC: k.hmac})))
			s := mustT(mqttsec.NewServer(mqttsec.ServerConfig{
				ShareGroup: "gateways",
				Config: mqttsec.Config{ID: "gateway", Keyring: ring, Replay: store, Counter: replay.NewRedisCounter(rdb, counterKey),
					Transport: transport(t, proto, b.url, fmt.Sprint("gateway-", i), nil)},
			}))
			s.HandleFunc("count", func(ctx context.Context, r *mqttsec.Request) ([]byte, error) {
				handled[i].Add(1)
				return r.Payload, nil
			})
			if err := s.Start(ctx); err != nil {
				t.Fatal(err)
			}
			defer s.Close(context.Background())
			servers = append(servers, s)
		}
		ring := mustT(mqttsec.NewKeyring(mqttsec.Own{}, peerOf(k, "gateway", k.gateway, envelope.HMAC, mqttsec.Protection{HMAC: k.hmac})))
		client := mustT(mqttsec.NewClient(mqttsec.Config{ID: "client", Keyring: ring, Transport: transport(t, proto, b.url, "client", nil)}))
		if err := client.Start(ctx); err != nil {
			t.Fatal(err)
		}
		defer client.Close(context.Background())
		topic := "mqttsec/gateway/req/count"
		eve := newAttacker(t, b, topic)

		const total, inFlight = 400, 32
		start := time.Now()
		failed := requestsInFlight(t, total, inFlight, func(i int) error {
			_, err := client.Request(ctx, "gateway", "count", fmt.Appendf(nil, "%d", i))
			return err
		})
		took := time.Since(start)
		if failed != 0 {
			t.Fatalf("%d of %d requests failed; client %v; replicas %v and %v", failed, total, client.Stats(), servers[0].Stats(), servers[1].Stats())
		}
		h0, h1 := handled[0].Load(), handled[1].Load()
		if h0+h1 != total || h0 == 0 || h1 == 0 {
			t.Fatalf("replicas handled %d and %d of %d requests", h0, h1, total)
		}
		t.Logf("%d requests, %d in flight, split %d/%d over two replicas: %.0f requests/s", total, inFlight, h0, h1, float64(total)/took.Seconds())

		waitFor(t, "requests captured", func() bool { return len(eve.captured(topic)) == total })
		for _, req := range eve.captured(topic)[:50] {
			eve.publish(t, topic, req)
		}
		replayed := func() uint64 {
			return servers[0].Stats()[mqttsec.StatReplayed] + servers[1].Stats()[mqttsec.StatReplayed]
		}
		waitFor(t, "50 replays refused", func() bool { return replayed() == 50 })
		if handled[0].Load()+handled[1].Load() != total {
			t.Fatal("a replayed request was handled")
		}
		t.Logf("replays refused by replica 0: %d, replica 1: %d",
			servers[0].Stats()[mqttsec.StatReplayed], servers[1].Stats()[mqttsec.StatReplayed])
	})
}

// NewServer refuses a ShareGroup that is not one plain topic level, and
// replicas without an explicit Counter and Replay store: replicas answer as
// one id and must share both.
func TestShareGroupConfig(t *testing.T) {
	k := getKeys()
	ring := mustT(mqttsec.NewKeyring(mqttsec.Own{}, peerOf(k, "client", k.client, envelope.HMAC, mqttsec.Protection{HMAC: k.hmac})))
	counter := envelope.NewClockCounter()
	store := mustT(replay.NewMemoryStore(0))
	for _, tc := range []struct {
		name    string
		group   string
		counter envelope.Counter
		replay  envelope.ReplayStore
		want    error // nil: accepted; errAny: some error
	}{
		{"no group, defaults", "", nil, nil, nil},
		{"group with shared state", "gateways", counter, store, nil},
		{"group without counter", "gateways", nil, store, mqttsec.ErrReplicaState},
		{"group without store", "gateways", counter, nil, mqttsec.ErrReplicaState},
		{"group with a slash", "a/b", counter, store, errAny},
		{"group with a wildcard", "g+", counter, store, errAny},
		{"group with a space", "my group", counter, store, errAny},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := mqttsec.NewServer(mqttsec.ServerConfig{ShareGroup: tc.group, Config: mqttsec.Config{
				ID: "gateway", Keyring: ring, Counter: tc.counter, Replay: tc.replay,
				Transport: transport(t, 5, "tcp://127.0.0.1:1", "gateway", nil)}})
			switch {
			case tc.want == nil && err != nil:
				t.Fatalf("NewServer = %v, want success", err)
			case tc.want == errAny && err == nil:
				t.Fatal("NewServer accepted an invalid ShareGroup")
			case tc.want != nil && tc.want != errAny && !errors.Is(err, tc.want):
				t.Fatalf("NewServer = %v, want %v", err, tc.want)
			}
		})
	}
}

var errAny = errors.New("any error")
