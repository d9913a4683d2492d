package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/mqttsec/mqttsec/internal/cli"
	"github.com/mqttsec/mqttsec/internal/keyfile"
	"github.com/mqttsec/mqttsec/internal/testbroker"
	"github.com/mqttsec/mqttsec/internal/testwait"
	"github.com/mqttsec/mqttsec/mqttsec"
	"github.com/mqttsec/mqttsec/mqttsec/keydir"
	"github.com/mqttsec/mqttsec/mqttsec/replay"
)

func TestGatewayAnswersWithKeysFromFiles(t *testing.T) {
	b := startBroker(t)
	dir := t.TempDir()
	hmac := filepath.Join(dir, "client-gateway.hmac")
	gwSign, clSign := filepath.Join(dir, "gateway"), filepath.Join(dir, "client")
	for _, err := range []error{keyfile.WriteSecret(hmac, 32), keyfile.WriteEd25519(gwSign), keyfile.WriteEd25519(clSign)} {
		if err != nil {
			t.Fatal(err)
		}
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	ready := make(chan struct{})
	done := make(chan error, 1)
	var out, errOut bytes.Buffer
	users, groups := filepath.Join(dir, "users"), filepath.Join(dir, "groups")
	os.WriteFile(users, []byte("client  callers\n"), 0o644)
	os.WriteFile(groups, []byte("callers  echo, time\n"), 0o644)
	go func() {
		done <- run(ctx, []string{"--broker", b.URL(), "--hmac-key", hmac, "--sign-key", gwSign + ".key", "--peer-pub", clSign + ".pub",
			"--users", users, "--groups", groups}, &out, &errOut, ready)
	}()
	select {
	case <-ready:
	case err := <-done:
		t.Fatalf("gateway: %v\n%s", err, errOut.String())
	}
	keys := cli.Keys{HMAC: hmac, SignKey: clSign + ".key", PeerPub: gwSign + ".pub"}
	ring, err := keys.Keyring("gateway")
	if err != nil {
		t.Fatal(err)
	}
	rctx, rcancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer rcancel()
	c := startClient(t, rctx, b.URL(), ring)
	reply, err := c.Request(rctx, "gateway", "echo", []byte("hello"))
	if err != nil || string(reply) != "hello" {
		t.Fatalf("echo = %q, %v", reply, err)
	}
	if _, err := c.Request(rctx, "gateway", "time", nil); err != nil {
		t.Fatalf("time: %v", err)
	}
	// Not granted by the rules: a sealed "forbidden" error reply.
	var remote *mqttsec.Error
	if _, err := c.Request(rctx, "gateway", "reboot", nil); !errors.As(err, &remote) || remote.Code != mqttsec.CodeForbidden {
		t.Fatalf("ungranted method: %v", err)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("gateway exit: %v", err)
	}
	if !strings.Contains(out.String(), "accepted=2") || !strings.Contains(out.String(), "forbidden=1") {
		t.Fatalf("gateway output:\n%s", out.String())
	}
}

func TestGatewayRefusesBadFlags(t *testing.T) {
	dir := t.TempDir()
	open := filepath.Join(dir, "open.hmac")
	if err := keyfile.WriteSecret(open, 32); err != nil {
		t.Fatal(err)
	}
	if err := chmod(open); err != nil {
		t.Fatal(err)
	}
	good := filepath.Join(dir, "good.hmac")
	if err := keyfile.WriteSecret(good, 32); err != nil {
		t.Fatal(err)
	}
	lostCounter := filepath.Join(dir, "state")
	if err := os.MkdirAll(filepath.Join(lostCounter, "replay"), 0o700); err != nil {
		t.Fatal(err)
	}
	for _, args := range [][]string{
		{},                   // no keys
		{"--hmac-key", open}, // group-readable secret
		{"--sign-key", "x"},  // half a signature setup
		{"--hmac-key", filepath.Join(dir, "missing")},
		{"--hmac-key", good, "--state", lostCounter}, // a replay store whose counter file is gone
		{"--hmac-key", good, "--share-group", "g"},   // replicas without shared state
		{"--hmac-key", good, "--state", filepath.Join(dir, "s"), "--redis", "127.0.0.1:1"},
		{"--hmac-key", good, "--redis", "127.0.0.1:1"},           // nothing listens there
		{"--hmac-key", good, "--redis", "redis://127.0.0.1:1/0"}, // nor there
		{"--hmac-key", good, "--redis", "http://127.0.0.1:1"},    // not a Redis URL
		{"--hmac-key", good, "--init"},                           // without --state or --redis
		{"--hmac-key", good, "--state", filepath.Join(dir, "d"), "--redis-durable"},
		{"--hmac-key", good, "--redis", "127.0.0.1:1", "--redis-cluster", "127.0.0.1:2"},
		{"--hmac-key", good, "--state", filepath.Join(dir, "c"), "--redis-cluster", "127.0.0.1:1"},
		{"--hmac-key", good, "--redis-cluster", "127.0.0.1:1,127.0.0.1:2"},              // nothing listens there
		{"--hmac-key", good, "--redis-cluster", "redis://127.0.0.1:1?addr=127.0.0.1:2"}, // nor there
		{"--hmac-key", good, "--redis-cluster", "127.0.0.1"},                            // no port
		{"--hmac-key", good, "--redis-cluster", "http://127.0.0.1:1"},                   // not a Redis URL
	} {
		var out, errOut bytes.Buffer
		if err := run(context.Background(), args, &out, &errOut, nil); err == nil {
			t.Errorf("run(%q) succeeded", args)
		}
	}
}

// With --state, a request captured before a restart is refused after it,
// and the gateway's replies keep counting upwards (the client, which saw
// the first run's replies, accepts the second run's).
func TestGatewayStateSurvivesRestart(t *testing.T) {
	b := startBroker(t)
	hmac, state := hmacAndState(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	eve := startEve(t, ctx, b.URL(), "mqttsec/gateway/req/#")

	gateway := func(more ...string) (stop func() string, errOut *testwait.Log) {
		return startGateway(t, ctx, append([]string{"--broker", b.URL(), "--hmac-key", hmac, "--state", state}, more...)...)
	}

	ring, err := (&cli.Keys{HMAC: hmac}).Keyring("gateway")
	if err != nil {
		t.Fatal(err)
	}
	c := startClient(t, ctx, b.URL(), ring)

	stop, _ := gateway("--init") // a new deployment
	if reply, err := c.Request(ctx, "gateway", "echo", []byte("before")); err != nil || string(reply) != "before" {
		t.Fatalf("echo before the restart = %q, %v", reply, err)
	}
	testwait.Until(t, "the request captured", func() bool { return len(eve.captured()) == 1 })
	// A second gateway on the same state would admit what the first had
	// seen: it is refused while the first runs.
	var second bytes.Buffer
	if err := run(ctx, []string{"--broker", b.URL(), "--hmac-key", hmac, "--state", state}, &second, &second, nil); !errors.Is(err, replay.ErrLocked) {
		t.Fatalf("a second gateway on the same state = %v, want replay.ErrLocked\n%s", err, second.String())
	}
	stop()

	stop, errOut := gateway()
	if err := eve.Publish(ctx, mqttsec.Outbound{Topic: "mqttsec/gateway/req/echo", Payload: eve.captured()[0]}); err != nil {
		t.Fatal(err)
	}
	testwait.Until(t, "the replay refused", func() bool { return strings.Contains(errOut.String(), "class=replayed") })
	if reply, err := c.Request(ctx, "gateway", "echo", []byte("after")); err != nil || string(reply) != "after" {
		t.Fatalf("echo after the restart = %q, %v", reply, err)
	}
	if out := stop(); !strings.Contains(out, "replayed=1") || !strings.Contains(out, "accepted=1") {
		t.Fatalf("second run's counts:\n%s", out)
	}
}

// startGateway runs the gateway with args until stop, which returns what
// it printed on stdout; errOut is its stderr (the log) as it grows.
func startGateway(t *testing.T, ctx context.Context, args ...string) (stop func() string, errOut *testwait.Log) {
	t.Helper()
	gctx, gcancel := context.WithCancel(ctx)
	ready, done := make(chan struct{}), make(chan error, 1)
	var out bytes.Buffer
	errOut = &testwait.Log{}
	go func() {
		done <- run(gctx, args, &out, errOut, ready)
	}()
	select {
	case <-ready:
	case err := <-done:
		gcancel()
		t.Fatalf("gateway: %v\n%s", err, errOut.String())
	}
	return func() string {
		gcancel()
		if err := <-done; err != nil {
			t.Fatalf("gateway exit: %v", err)
		}
		return out.String()
	}, errOut
}

// redisEnv names the variable with a Redis address (host:port) for the
// replica test; without it the test skips.
const redisEnv = "MQTTSEC_TEST_REDIS"

// Two gateways under one id with --redis and --share-group split the
// requests, answer every one, and refuse a request replayed to either:
// they share their replay windows (and message counter) in Redis.
func TestGatewayReplicasShareRequestsAndState(t *testing.T) {
	addr := os.Getenv(redisEnv)
	if addr == "" {
		t.Skipf("set %s=host:port to run the replica test against a real Redis", redisEnv)
	}
	// The other replica names Redis by URL.
	replicasShareRequestsAndState(t, []string{"--redis", addr}, []string{"--redis", "redis://" + addr + "/0"})
}

// redisClusterEnv names the variable with the addresses of a Redis
// Cluster's nodes (host:port,host:port,...) for the cluster replica test;
// without it the test skips.
const redisClusterEnv = "MQTTSEC_TEST_REDIS_CLUSTER"

// The replicas of TestGatewayReplicasShareRequestsAndState, with their
// state in a Redis Cluster (--redis-cluster): the same. The test's keys
// are deleted at its end.
func TestGatewayReplicasOnRedisCluster(t *testing.T) {
	addrs := os.Getenv(redisClusterEnv)
	if addrs == "" {
		t.Skipf("set %s=host:port,host:port,host:port (the nodes of a Redis Cluster) to run the cluster replica test", redisClusterEnv)
	}
	first, others, _ := strings.Cut(addrs, ",")
	// The other replica names the cluster by URL.
	url := "redis://" + first + "?addr=" + strings.ReplaceAll(others, ",", "&addr=")
	id := replicasShareRequestsAndState(t, []string{"--redis-cluster", addrs}, []string{"--redis-cluster", url})
	deleteClusterState(t, strings.Split(addrs, ","), id)
}

// deleteClusterState deletes the replay store and the counter of gateway
// id from the cluster.
func deleteClusterState(t *testing.T, addrs []string, id string) {
	t.Helper()
	rdb := redis.NewClusterClient(&redis.ClusterOptions{Addrs: addrs})
	defer rdb.Close()
	ctx := context.Background()
	counter := "mqttsec:counter:" + id
	keys := []string{counter, "{" + counter + "}#run_id"}
	err := rdb.ForEachMaster(ctx, func(ctx context.Context, node *redis.Client) error {
		it := node.Scan(ctx, 0, "mqttsec:replay:"+id+":*", 1000).Iterator()
		for it.Next(ctx) {
			if err := node.Del(ctx, it.Val()).Err(); err != nil {
				return err
			}
		}
		return it.Err()
	})
	if err == nil {
		err = rdb.Del(ctx, keys...).Err() // one slot: the run_id key's tag is the counter's key
	}
	if err != nil {
		t.Errorf("deleting the gateway's state: %v", err)
	}
}

// replicasShareRequestsAndState runs two replicas of a new gateway id, on
// the state that redisA and redisB name (the same Redis, named two ways),
// and returns the id.
func replicasShareRequestsAndState(t *testing.T, redisA, redisB []string) (id string) {
	b := startBroker(t)
	hmac, _ := hmacAndState(t)
	id = fmt.Sprintf("gw-%d", time.Now().UnixNano()) // keys of its own in Redis
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	eve := startEve(t, ctx, b.URL(), "mqttsec/"+id+"/req/#")

	// Each refusal logged, so that the test can count them.
	args := []string{"--broker", b.URL(), "--id", id, "--hmac-key", hmac, "--share-group", "replicas", "--reject-log-interval", "-1ns"}
	argsA := append(slices.Clone(args), redisA...)
	// The first replica creates the deployment's state in Redis.
	stopA, _ := startGateway(t, ctx, append(slices.Clone(argsA), "--init")...)
	stopB, logB := startGateway(t, ctx, append(slices.Clone(args), redisB...)...)
	// The state exists now: creating it again is refused, since it would
	// hide a loss.
	var out, errOut bytes.Buffer
	if err := run(ctx, append(slices.Clone(argsA), "--init"), &out, &errOut, nil); !errors.Is(err, replay.ErrExists) {
		t.Fatalf("a second --init: %v, want replay.ErrExists", err)
	}
	ring, err := (&cli.Keys{HMAC: hmac}).Keyring(id)
	if err != nil {
		t.Fatal(err)
	}
	c := startClient(t, ctx, b.URL(), ring)
	const n = 20
	for i := range n {
		want := fmt.Sprintf("request %d", i)
		if reply, err := c.Request(ctx, id, "echo", []byte(want)); err != nil || string(reply) != want {
			t.Fatalf("echo %d = %q, %v", i, reply, err)
		}
	}
	testwait.Until(t, "the requests captured", func() bool { return len(eve.captured()) == n })
	// A stops; every replay reaches B, which refuses also those that A
	// accepted, from the windows they share.
	a := counts(t, stopA())
	testwait.Until(t, "the broker to drop A's session and its share", func() bool {
		replicas := 0
		for _, cid := range b.ClientIDs() {
			if strings.HasPrefix(cid, id+"-") {
				replicas++
			}
		}
		return replicas == 1
	})
	for _, req := range eve.captured() {
		if err := eve.Publish(ctx, mqttsec.Outbound{Topic: "mqttsec/" + id + "/req/echo", Payload: req}); err != nil {
			t.Fatal(err)
		}
	}
	testwait.Until(t, "every replay refused", func() bool { return strings.Count(logB.String(), "class=replayed") == n })
	bc := counts(t, stopB())
	// The broker picks a group member at random for each request: both
	// served some (each of 20 requests went to A with probability 1/2).
	if a[mqttsec.StatAccepted] == 0 || bc[mqttsec.StatAccepted] == 0 || a[mqttsec.StatAccepted]+bc[mqttsec.StatAccepted] != n {
		t.Fatalf("A accepted %d and B %d requests; want %d between them, some each", a[mqttsec.StatAccepted], bc[mqttsec.StatAccepted], n)
	}
	if bc[mqttsec.StatReplayed] != n {
		t.Fatalf("B refused %d replays, want %d (A had accepted %d of the originals)", bc[mqttsec.StatReplayed], n, a[mqttsec.StatAccepted])
	}
	return id
}

// counts reads the "name=count" lines the gateway prints when it stops.
func counts(t *testing.T, out string) map[string]int {
	t.Helper()
	c := map[string]int{}
	for _, line := range strings.Fields(out) {
		if name, v, ok := strings.Cut(line, "="); ok {
			n, err := strconv.Atoi(v)
			if err != nil {
				t.Fatalf("gateway printed %q: %v", line, err)
			}
			c[name] = n
		}
	}
	return c
}

// eve is a client of the broker that records what it sees and can publish.
type eve struct {
	mqttsec.Transport
	mu  sync.Mutex
	got [][]byte
}

// startEve connects eve to broker and subscribes it to filter; the test's
// end disconnects it.
func startEve(t *testing.T, ctx context.Context, broker, filter string) *eve {
	t.Helper()
	tr, err := (&cli.Conn{Broker: broker, Protocol: 5}).Transport("eve")
	if err != nil {
		t.Fatal(err)
	}
	e := &eve{Transport: tr}
	if err := tr.Start(ctx, func(in mqttsec.Inbound) {
		e.mu.Lock()
		e.got = append(e.got, bytes.Clone(in.Payload))
		e.mu.Unlock()
	}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { tr.Close(context.Background()) })
	if err := tr.Subscribe(ctx, filter); err != nil {
		t.Fatal(err)
	}
	return e
}

// captured returns the payloads eve has seen so far.
func (e *eve) captured() [][]byte {
	e.mu.Lock()
	defer e.mu.Unlock()
	return append([][]byte(nil), e.got...)
}

// startBroker starts an embedded broker that the test's end stops.
func startBroker(t *testing.T) *testbroker.Broker {
	t.Helper()
	b, err := testbroker.Start("127.0.0.1:0", nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Close() })
	return b
}

// hmacAndState returns a new shared HMAC key file and a --state directory
// path (not yet created), both in the test's temporary directory.
func hmacAndState(t *testing.T) (hmac, state string) {
	t.Helper()
	dir := t.TempDir()
	hmac, state = filepath.Join(dir, "client-gateway.hmac"), filepath.Join(dir, "state")
	if err := keyfile.WriteSecret(hmac, 32); err != nil {
		t.Fatal(err)
	}
	return hmac, state
}

// startClient starts the peer "client" of the gateway on broker, with ring.
func startClient(t *testing.T, ctx context.Context, broker string, ring *mqttsec.Keyring) *mqttsec.Client {
	t.Helper()
	tr, err := (&cli.Conn{Broker: broker, Protocol: 5}).Transport("test-client")
	if err != nil {
		t.Fatal(err)
	}
	c, err := mqttsec.NewClient(mqttsec.Config{ID: "client", Transport: tr, Keyring: ring})
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Start(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close(context.Background()) })
	return c
}

func TestGatewayHelp(t *testing.T) {
	for _, args := range [][]string{{"-h"}, {"--help"}} {
		var out, errOut bytes.Buffer
		if err := run(context.Background(), args, &out, &errOut, nil); err != nil || !strings.HasPrefix(out.String(), "usage: gateway") || !strings.Contains(out.String(), "-keys") || errOut.Len() != 0 {
			t.Errorf("gateway %q = %v; stdout %q, stderr %q; want usage on stdout and no error", args, err, out.String(), errOut.String())
		}
	}
}

// With --keys and no --id the gateway is the party of the key directory;
// an --id that differs from it, or an id that is not one, is refused
// before any connection.
func TestGatewayIDFromKeyDirectory(t *testing.T) {
	b := startBroker(t)
	_, gw, cl := pairedKeyDirs(t)
	for _, tt := range []struct {
		name  string
		flags []string
		err   []string // nil: serves as gw-1
	}{
		{name: "id from the directory"},
		{name: "the same id given", flags: []string{"--id", "gw-1"}},
		{name: "the default id given", flags: []string{"--id", "gateway"}, err: []string{`"gateway"`, `"gw-1"`, gw}},
		{name: "not an id", flags: []string{"--id", "bad id"}, err: []string{"--id", "ASCII letters, digits and - . _ : @"}},
		{name: "peer not an id", flags: []string{"--peer", "a/b"}, err: []string{"--peer", "ASCII letters, digits and - . _ : @"}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()
			args := append([]string{"--broker", b.URL(), "--keys", gw}, tt.flags...)
			if tt.err != nil {
				var out, errOut bytes.Buffer
				err := run(ctx, args, &out, &errOut, nil)
				if err == nil {
					t.Fatal("run succeeded; want an error")
				}
				for _, s := range tt.err {
					if !strings.Contains(err.Error(), s) {
						t.Errorf("error %q does not say %s", err, s)
					}
				}
				return
			}
			stop, _ := startGateway(t, ctx, args...)
			defer stop()
			ring, err := (&cli.Keys{Dir: cl}).Keyring("gw-1")
			if err != nil {
				t.Fatal(err)
			}
			c := startClient(t, ctx, b.URL(), ring)
			if reply, err := c.Request(ctx, "gw-1", "echo", []byte("hi")); err != nil || string(reply) != "hi" {
				t.Fatalf("echo to gw-1 = %q, %v", reply, err)
			}
		})
	}
}

// An id that is not one is refused first, saying what an id may hold.
func TestGatewayRefusesBadIDs(t *testing.T) {
	for _, args := range [][]string{{"--id", "bad id"}, {"--peer", "door#7"}, {"--id", ""}} {
		var out, errOut bytes.Buffer
		err := run(context.Background(), args, &out, &errOut, nil)
		if err == nil || !strings.Contains(err.Error(), args[0]) || !strings.Contains(err.Error(), "ASCII letters, digits and - . _ : @") {
			t.Errorf("gateway %q = %v; want an error naming %s and the allowed characters", args, err, args[0])
		}
	}
}

// With --keys and no --peer the gateway serves every peer of its key
// directory, and says which at start; --peer narrows it to that one, the
// others' requests refused as forbidden; a --peer not in the directory is
// refused at start.
func TestGatewayPeersOfKeyDirectory(t *testing.T) {
	b := startBroker(t)
	root := t.TempDir()
	gw, cl, door := filepath.Join(root, "gw-1"), filepath.Join(root, "client"), filepath.Join(root, "door-7")
	for _, err := range []error{
		keydir.Init(gw, "gw-1", keydir.InitOptions{}), keydir.Init(cl, "client", keydir.InitOptions{}), keydir.Init(door, "door-7", keydir.InitOptions{}),
		keydir.Pair(gw, cl, keydir.PairOptions{HMAC: true}), keydir.Pair(gw, door, keydir.PairOptions{HMAC: true}),
	} {
		if err != nil {
			t.Fatal(err)
		}
	}
	for _, tt := range []struct {
		name   string
		flags  []string
		served []string // served peers; the other is refused as forbidden
		start  string   // in the start line
		err    string   // a start refused, saying this
	}{
		{name: "every peer", served: []string{"client", "door-7"}, start: "for every peer of " + gw + " (now: client, door-7)"},
		{name: "only client", flags: []string{"--peer", "client"}, served: []string{"client"}, start: "for client ("},
		{name: "only door-7", flags: []string{"--peer", "door-7"}, served: []string{"door-7"}, start: "for door-7 ("},
		{name: "not in the directory", flags: []string{"--peer", "nobody"}, err: `no peer "nobody"`},
	} {
		t.Run(tt.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()
			args := append([]string{"--broker", b.URL(), "--keys", gw}, tt.flags...)
			if tt.err != "" {
				var out, errOut bytes.Buffer
				if err := run(ctx, args, &out, &errOut, nil); err == nil || !strings.Contains(err.Error(), tt.err) {
					t.Fatalf("run = %v; want an error saying %s", err, tt.err)
				}
				return
			}
			stop, _ := startGateway(t, ctx, args...)
			for _, p := range []struct{ id, dir string }{{"client", cl}, {"door-7", door}} {
				ring, err := (&cli.Keys{Dir: p.dir}).Keyring("gw-1")
				if err != nil {
					t.Fatal(err)
				}
				c := startClientAs(t, ctx, b.URL(), p.id, ring)
				reply, err := c.Request(ctx, "gw-1", "echo", []byte("hi"))
				var remote *mqttsec.Error
				switch {
				case slices.Contains(tt.served, p.id):
					if err != nil || string(reply) != "hi" {
						t.Errorf("echo from %s = %q, %v; want it served", p.id, reply, err)
					}
				case !errors.As(err, &remote) || remote.Code != mqttsec.CodeForbidden:
					t.Errorf("echo from %s = %q, %v; want it forbidden", p.id, reply, err)
				}
			}
			if out := stop(); !strings.Contains(out, tt.start) {
				t.Errorf("gateway printed:\n%s\nwant %q in its start line", out, tt.start)
			}
		})
	}
}

// --reject-log-interval takes a duration, or 0 or -1 without a unit for
// "log every refusal" (a negative mqttsec.Config.RejectLogInterval; its
// zero would mean the default instead).
func TestRejectLogIntervalFlag(t *testing.T) {
	for _, tt := range []struct {
		in   string
		want time.Duration
		err  string
	}{
		{in: "30s", want: 30 * time.Second},
		{in: "1m", want: time.Minute},
		{in: "-1ns", want: -1},
		{in: "-1", want: -1},
		{in: "0", want: -1},
		{in: "0s", want: -1},
		{in: "-5", want: -1},
		{in: "-2s", want: -1},
		{in: "30", err: "needs a unit"},
		{in: "soon", err: "soon"},
	} {
		t.Run(tt.in, func(t *testing.T) {
			r := rejectInterval(mqttsec.DefaultRejectLogInterval)
			err := r.Set(tt.in)
			if tt.err != "" {
				if err == nil || !strings.Contains(err.Error(), tt.err) {
					t.Fatalf("Set = %v (%v); want an error saying %s", err, time.Duration(r), tt.err)
				}
				return
			}
			if err != nil || time.Duration(r) != tt.want {
				t.Fatalf("Set = %v, %v; want %v", time.Duration(r), err, tt.want)
			}
		})
	}
	// Through run: a plain -1 or 0 is no parse error (the run stops later,
	// for want of keys); the usage says so, and keeps the default.
	for _, v := range []string{"-1", "0", "30s"} {
		var out, errOut bytes.Buffer
		err := run(context.Background(), []string{"--reject-log-interval", v}, &out, &errOut, nil)
		if err == nil || strings.Contains(err.Error(), "reject-log-interval") || errOut.Len() != 0 {
			t.Errorf("--reject-log-interval %s: %v\n%s", v, err, errOut.String())
		}
	}
	var out, errOut bytes.Buffer
	if err := run(context.Background(), []string{"-h"}, &out, &errOut, nil); err != nil {
		t.Fatal(err)
	}
	if u := out.String(); !strings.Contains(u, "0 or -1") || !strings.Contains(u, "(default 10s)") {
		t.Errorf("usage does not say 0 or -1, or the default:\n%s", u)
	}
}

// startClientAs starts the peer id of the gateway on broker, with ring.
func startClientAs(t *testing.T, ctx context.Context, broker, id string, ring *mqttsec.Keyring) *mqttsec.Client {
	t.Helper()
	tr, err := (&cli.Conn{Broker: broker, Protocol: 5}).Transport("test-" + id)
	if err != nil {
		t.Fatal(err)
	}
	c, err := mqttsec.NewClient(mqttsec.Config{ID: id, Transport: tr, Keyring: ring})
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Start(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close(context.Background()) })
	return c
}
