package redisserver

import (
	"context"
	"errors"
	"os"
	"testing"

	"github.com/redis/go-redis/v9"
)

// start is Start for a test: it skips unless MQTTSEC_TEST_REDIS is set
// (how CI says the Redis tests are on) and redis-server is installed, and
// kills the server when the test ends.
func start(t *testing.T, flags ...string) (*Server, *redis.Client) {
	t.Helper()
	if os.Getenv("MQTTSEC_TEST_REDIS") == "" {
		t.Skip("set MQTTSEC_TEST_REDIS=host:port to run the tests that start their own redis-server")
	}
	if Binary() == "" {
		t.Skip("redis-server is not installed")
	}
	s, err := Start(t.TempDir(), flags...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Kill() })
	rdb := redis.NewClient(&redis.Options{Addr: s.Addr(), MaxRetries: -1})
	t.Cleanup(func() { rdb.Close() })
	return s, rdb
}

func runID(t *testing.T, rdb *redis.Client) string {
	t.Helper()
	info, err := rdb.InfoMap(context.Background(), "server").Result()
	if err != nil {
		t.Fatal(err)
	}
	return info["Server"]["run_id"]
}

// Killed and restarted on its port, a server keeps what it persisted and
// nothing else, and is a new process (another run_id); stopped, it
// answers nothing.
func TestKillRestartStop(t *testing.T) {
	ctx := context.Background()
	for _, tc := range []struct {
		name  string
		flags []string
		kept  bool
	}{
		{"no persistence", nil, false},
		{"AOF, fsync always", []string{"--appendonly", "yes", "--appendfsync", "always"}, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s, rdb := start(t, tc.flags...)
			addr, before := s.Addr(), runID(t, rdb)
			if err := rdb.Set(ctx, "k", "v", 0).Err(); err != nil {
				t.Fatal(err)
			}
			if err := s.Kill(); err != nil {
				t.Fatal(err)
			}
			if s.Running() || rdb.Ping(ctx).Err() == nil {
				t.Fatal("a killed server still answers")
			}
			if err := s.Restart(); err != nil {
				t.Fatal(err)
			}
			if s.Addr() != addr {
				t.Fatalf("restarted on %s, was %s", s.Addr(), addr)
			}
			if after := runID(t, rdb); after == before || after == "" {
				t.Fatalf("run_id %q after the restart, %q before", after, before)
			}
			v, err := rdb.Get(ctx, "k").Result()
			switch {
			case tc.kept && (err != nil || v != "v"):
				t.Fatalf("after the restart k = %q, %v; want v", v, err)
			case !tc.kept && !errors.Is(err, redis.Nil):
				t.Fatalf("after the restart k = %q, %v; want no key", v, err)
			}
			if err := s.Stop(); err != nil {
				t.Fatal(err)
			}
			if rdb.Ping(ctx).Err() == nil {
				t.Fatal("a stopped server still answers")
			}
		})
	}
}

// A flag redis-server refuses is an error naming its complaint, not a hang.
func TestStartRefusedFlag(t *testing.T) {
	start(t) // for the skips
	_, err := Start(t.TempDir(), "--no-such-setting", "1")
	if err == nil {
		t.Fatal("Start accepted a flag redis-server does not know")
	}
	t.Log(err)
}
