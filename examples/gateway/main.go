// Command gateway answers sealed requests over any MQTT broker, with keys
// from files. It serves two methods: "echo" returns the payload and "time"
// returns the gateway's clock. Refused messages are logged to stderr, a
// flood of them in a line per --reject-log-interval.
//
//	go run ./examples/client --gen-hmac client-gateway.hmac
//	go run ./examples/gateway --broker tcp://127.0.0.1:1883 --peer client --hmac-key client-gateway.hmac
//
// With a key directory (--keys, made by examples/keygen) it serves every
// peer the directory holds, as it is reloaded, and names them at start;
// --peer ID narrows that to the one peer. The single-file key flags are
// for one peer, --peer (default "client").
//
// With --state DIR the replay windows and the gateway's message counter are
// kept in DIR (replay.FileStore, replay.FileCounter), so a request captured
// before a restart is still refused after it. Create them once, on the
// first start, with --init; later starts open them, and one that finds
// the replay store gone or damaged reports the loss and refuses what may
// have been accepted before it (a missing counter stops the gateway: it
// must not guess where its counter stood). Without --state they live in
// memory: after a restart only the messages' lifetimes bound replays. One
// gateway at a time may use DIR.
//
// Several gateways under one id can share the requests as replicas: give
// each --redis ADDR (their replay windows and message counter, shared in
// Redis: replay.RedisStore, replay.RedisCounter) and the same
// --share-group NAME (an MQTT shared subscription splits the requests
// between them). A request replayed to another replica is refused there.
// Start the first replica of a new deployment once with --init, which
// creates the store's state in Redis (replay.InitRedisStore); a later start
// with it fails, since creating the state again would hide its loss.
// Without it, a Redis holding no state for the gateway is taken as lost
// state: the loss is logged and messages issued before it plus the clock
// skew are refused. Run Redis with appendonly yes, appendfsync always and
// maxmemory-policy noeviction; only then does --redis-durable say that a
// restarted Redis kept everything (otherwise a restart is a loss too).
// Redis then holds the replicas' replay state: whoever can write to it can
// clear a sender's window and have its captured messages accepted again
// until they expire, so keep it as private as the keys (its own network,
// TLS with rediss://, an ACL user; a password in the URL shows in the
// process list).
//
//	go run ./examples/gateway --peer client --hmac-key client-gateway.hmac --redis 127.0.0.1:6379 --share-group gateways --init
//
// With a Redis Cluster, give --redis-cluster instead of --redis: some of
// its nodes (host:port,host:port,...), or a redis:// or rediss:// URL
// naming the others with addr= parameters. The senders' windows are then
// spread over 16 shards (replay.RedisStoreOptions.Shards), each in one
// slot with a state marker of its own, so the store scales out over
// the masters, and a master that loses its data pauses the senders of its
// shards only. The layout is part of the state: every replica of a
// deployment gives the same flag (--redis or --redis-cluster), and a
// deployment moved from one to the other finds no state (a loss, as
// above).
//
// Operators: the log (stderr) says when the connection to the broker is
// lost, fails and comes back, when subscriptions are renewed, when the
// keys or the authorization rules are reloaded or a reload is refused
// (naming the file and line), and warns daily of a --cert or --ca
// certificate that expires within --expiry-warning (30 days). With
// --metrics ADDR the gateway serves, over plain HTTP without
// authentication (keep ADDR on loopback or a private network), /metrics in
// the Prometheus text format (mqttsec's metrics, listed in the mqttsec
// package documentation, with the Go runtime's and the process's), and
// /healthz and /readyz (503 and the reason while not connected and
// subscribed).
//
//	go run ./examples/gateway --keys keys/gateway --metrics 127.0.0.1:9464
//
// Ctrl-C or SIGTERM stops the gateway.
package main

import (
	"context"
	"crypto/rand"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/redis/go-redis/v9"
	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/metric/noop"

	"github.com/mqttsec/mqttsec/internal/cli"
	"github.com/mqttsec/mqttsec/mqttsec"
	"github.com/mqttsec/mqttsec/mqttsec/authz"
	"github.com/mqttsec/mqttsec/mqttsec/keydir"
	"github.com/mqttsec/mqttsec/mqttsec/replay"
)

func main() {
	// SIGTERM too (systemd, docker stop): the gateway disconnects and closes
	// its state as it does on Ctrl-C.
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Stdout, os.Stderr, nil); err != nil {
		fmt.Fprintln(os.Stderr, "gateway:", err)
		os.Exit(1)
	}
}

// flags are the gateway's command line.
type flags struct {
	fs                      *flag.FlagSet
	conn                    cli.Conn
	keys                    cli.Keys
	state                   stateFlags
	id, peer                string
	usersFile, groupsFile   string
	shareGroup, metricsAddr string
	expiryWarning           time.Duration
	rejectLogInterval       rejectInterval
}

// parseFlags reads args; help is set when the usage was asked for (and
// printed to stdout).
func parseFlags(args []string, stdout, stderr io.Writer) (f *flags, help bool, err error) {
	f = &flags{fs: flag.NewFlagSet("gateway", flag.ContinueOnError), rejectLogInterval: rejectInterval(mqttsec.DefaultRejectLogInterval)}
	fs := f.fs
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprintln(fs.Output(), "usage: gateway [flags]  (serves echo and time to --peer, or with --keys to every peer of the directory, until Ctrl-C)")
		fs.PrintDefaults()
	}
	f.conn.Register(fs)
	f.keys.Register(fs)
	fs.StringVar(&f.id, "id", "gateway", "this gateway's id (with --keys: the key directory's)")
	fs.StringVar(&f.peer, "peer", "", "the id of the only client allowed to call (default: with --keys every peer of the directory, as it is reloaded; with the single-file flags \""+defaultPeer+"\")")
	fs.StringVar(&f.usersFile, "users", "", "authorization: file of 'caller-id  group, ...' lines (with --groups)")
	fs.StringVar(&f.groupsFile, "groups", "", "authorization: file of 'group  pattern, !pattern, ...' lines (with --users)")
	f.state.register(fs)
	fs.StringVar(&f.shareGroup, "share-group", "", "share the requests with the other gateways of this id in this group (needs --redis or --redis-cluster)")
	fs.StringVar(&f.metricsAddr, "metrics", "", "serve /metrics (Prometheus), /healthz and /readyz over plain HTTP, without authentication, on this `address` (127.0.0.1:9464); the metrics name the peers")
	fs.DurationVar(&f.expiryWarning, "expiry-warning", 30*24*time.Hour, "log daily a warning for each certificate of --cert and --ca that expires within this `duration` (an error once expired)")
	fs.Var(&f.rejectLogInterval, "reject-log-interval", "at most one log line per this `duration` (30s, 1m) for refused messages of one kind, with how many were left out; 0 or -1 (no unit needed) logs every refusal")
	if help, err := cli.Parse(fs, args, stdout); help || err != nil {
		return nil, help, err
	}
	return f, false, f.check()
}

// check checks the flags that go together, and sets the default peer of
// the single-file key flags.
func (f *flags) check() error {
	if err := cli.CheckID("id", f.id); err != nil {
		return err
	}
	if f.peer != "" {
		if err := cli.CheckID("peer", f.peer); err != nil {
			return err
		}
	} else if f.keys.Dir == "" {
		// Single key files are for one peer, whose id they do not hold.
		f.peer = defaultPeer
	}
	if err := f.state.check(); err != nil {
		return err
	}
	if f.shareGroup != "" && !f.state.inRedis() {
		return errors.New("--share-group needs --redis or --redis-cluster: replicas must share their replay windows and message counter")
	}
	if (f.usersFile == "") != (f.groupsFile == "") {
		return errors.New("--users and --groups go together")
	}
	return nil
}

// gateway is a gateway being set up and run.
type gateway struct {
	*flags
	log    *slog.Logger
	stdout io.Writer
	// background holds what runs beside the server (the watchers), which
	// ends with run's context, before run returns.
	background sync.WaitGroup
}

// run serves until ctx ends; ready, if set, is closed once it listens.
func run(ctx context.Context, args []string, stdout, stderr io.Writer, ready chan<- struct{}) error {
	f, help, err := parseFlags(args, stdout, stderr)
	if help || err != nil {
		return err
	}
	g := &gateway{flags: f, log: slog.New(slog.NewTextHandler(stderr, nil)), stdout: stdout}
	defer g.background.Wait()
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	authorize, err := g.authorization(ctx)
	if err != nil {
		return err
	}
	ring, err := g.keyring(ctx, &authorize)
	if err != nil {
		return err
	}
	prom, err := g.metrics()
	if err != nil {
		return err
	}
	if prom != nil {
		defer func() {
			if err := prom.provider.Shutdown(context.Background()); err != nil {
				g.log.Warn("gateway: metrics not shut down cleanly", "err", err)
			}
		}()
	}
	if err := g.watchCertificates(ctx, prom); err != nil {
		return err
	}
	cfg, closeState, err := g.config(ctx, ring, prom)
	if err != nil {
		return err
	}
	defer closeState()
	srv, err := g.server(cfg, authorize)
	if err != nil {
		return err
	}
	if prom != nil {
		closeOps, err := g.serveOps(prom, srv)
		if err != nil {
			return err
		}
		defer closeOps()
	}
	startCtx, cancelStart := context.WithTimeout(ctx, 30*time.Second)
	defer cancelStart()
	if err := srv.Start(startCtx); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "gateway %s listening on %s for %s (methods: echo, time); Ctrl-C stops\n", g.id, g.conn.Broker, servedPeers(g.peer, g.keys.Dir, ring))
	if ready != nil {
		close(ready)
	}
	<-ctx.Done()
	return g.stop(srv)
}

// authorization loads the --users and --groups rules, if given, and
// reloads them as they change, logging each reload or its refusal.
func (g *gateway) authorization(ctx context.Context) (func(caller, method string) bool, error) {
	if g.usersFile == "" {
		return nil, nil
	}
	rules, err := authz.Load(g.usersFile, g.groupsFile)
	if err != nil {
		return nil, err
	}
	g.background.Go(func() {
		rules.Watch(ctx, 2*time.Second, func() {
			g.log.Info("gateway: authorization rules reloaded", "users", g.usersFile, "groups", g.groupsFile)
		}, func(err error) {
			g.log.Error("gateway: authorization rules not reloaded, the previous rules stay", "err", err)
		})
	})
	return rules.Allowed, nil
}

// keyring loads the keys, sets the gateway's id from the key directory
// (narrowing *authorize to --peer, if given), and reloads the directory
// as it changes, logging each reload or its refusal.
func (g *gateway) keyring(ctx context.Context, authorize *func(caller, method string) bool) (*mqttsec.Keyring, error) {
	ring, dirID, err := g.keys.Load(g.peer)
	if err != nil {
		return nil, err
	}
	if g.keys.Dir != "" && g.peer != "" {
		// The directory's keyring holds all its peers, and a nil Authorize
		// would let each of them call: --peer narrows it to one.
		*authorize = onlyPeer(g.peer, *authorize)
	}
	if g.id, err = cli.OwnID(g.fs, "id", g.id, g.keys.Dir, dirID); err != nil {
		return nil, err
	}
	if g.keys.Dir != "" {
		// Keys rotate by editing the directory: reload on change.
		g.background.Go(func() {
			keydir.Watch(ctx, g.keys.Dir, ring, 2*time.Second, func() {
				g.log.Info("gateway: keys reloaded", "dir", g.keys.Dir, "peers", strings.Join(ring.PeerIDs(), ","))
			}, func(err error) {
				g.log.Error("gateway: keys not reloaded, the previous keys stay", "err", err)
			})
		})
	}
	return ring, nil
}

// metrics is the meter provider the metrics are served from with
// --metrics; nil without.
func (g *gateway) metrics() (*metrics, error) {
	if g.metricsAddr == "" {
		return nil, nil
	}
	return newMetrics()
}

// watchCertificates warns, daily, of the --cert and --ca certificates
// that expire soon, and reports their expiry through prom (if set).
func (g *gateway) watchCertificates(ctx context.Context, prom *metrics) error {
	certs, skipped, err := certificates(map[string]string{"client certificate (--cert)": g.conn.Cert, "CA (--ca)": g.conn.CA})
	if err != nil {
		return err
	}
	for _, err := range skipped {
		g.log.Warn("gateway: certificate skipped", "err", err)
	}
	var meter metric.Meter = noop.NewMeterProvider().Meter("")
	if prom != nil {
		meter = prom.provider.Meter("github.com/mqttsec/mqttsec/examples/gateway")
	}
	g.background.Go(func() { watchExpiry(ctx, g.log, meter, certs, g.expiryWarning, 24*time.Hour) })
	return nil
}

// config is the server's Config: its transport, keys, log, metrics and
// replay state (closeState closes the state).
func (g *gateway) config(ctx context.Context, ring *mqttsec.Keyring, prom *metrics) (cfg mqttsec.Config, closeState func(), err error) {
	clientID := g.id
	if g.shareGroup != "" {
		// Replicas share the gateway's id, but each needs an MQTT session
		// of its own: a broker drops a client when another connects under
		// its client id.
		clientID += "-" + rand.Text()[:8]
	}
	tr, err := g.conn.Transport(clientID)
	if err != nil {
		return cfg, nil, err
	}
	cfg = mqttsec.Config{ID: g.id, Transport: tr, Keyring: ring, Logger: g.log, RejectLevel: slog.LevelWarn, RejectLogInterval: time.Duration(g.rejectLogInterval)}
	if prom != nil {
		cfg.MeterProvider = prom.provider
	}
	closeState, err = g.state.open(ctx, &cfg)
	return cfg, closeState, err
}

// server is the gateway's Server, with its two methods.
func (g *gateway) server(cfg mqttsec.Config, authorize func(caller, method string) bool) (*mqttsec.Server, error) {
	srv, err := mqttsec.NewServer(mqttsec.ServerConfig{Authorize: authorize, ShareGroup: g.shareGroup, Config: cfg})
	if err != nil {
		return nil, err
	}
	srv.HandleFunc("echo", func(ctx context.Context, r *mqttsec.Request) ([]byte, error) { return r.Payload, nil })
	srv.HandleFunc("time", func(ctx context.Context, r *mqttsec.Request) ([]byte, error) {
		return []byte(time.Now().UTC().Format(time.RFC3339Nano)), nil
	})
	return srv, nil
}

// serveOps serves /metrics, /healthz and /readyz on --metrics, before
// Start, so that /readyz says why the gateway is not ready while it
// connects.
func (g *gateway) serveOps(prom *metrics, srv *mqttsec.Server) (closeOps func(), err error) {
	ops, err := serveOps(g.metricsAddr, prom.handler, srv.Ready)
	if err != nil {
		return nil, err
	}
	fmt.Fprintf(g.stdout, "metrics on http://%s/metrics, health on /healthz and /readyz\n", ops.addr)
	return func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := ops.close(ctx); err != nil {
			g.log.Warn("gateway: metrics server not closed cleanly", "err", err)
		}
	}, nil
}

// stop closes srv and prints its counters.
func (g *gateway) stop(srv *mqttsec.Server) error {
	closeCtx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	err := srv.Close(closeCtx)
	st := srv.Stats()
	names := make([]string, 0, len(st))
	for n := range st {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		if st[n] > 0 {
			fmt.Fprintf(g.stdout, "%s=%d\n", n, st[n])
		}
	}
	if errors.Is(err, context.Canceled) {
		err = nil
	}
	return err
}

// defaultPeer is the peer served with the single-file key flags and no
// --peer.
const defaultPeer = "client"

// onlyPeer lets only peer call, and then only what authorize (if set)
// grants it.
func onlyPeer(peer string, authorize func(caller, method string) bool) func(caller, method string) bool {
	return func(caller, method string) bool {
		return caller == peer && (authorize == nil || authorize(caller, method))
	}
}

// servedPeers says whom the gateway serves, for its start line: peer, or
// without it every peer of the key directory dir, which ring holds now.
func servedPeers(peer, dir string, ring *mqttsec.Keyring) string {
	if peer != "" {
		return peer
	}
	ids := ring.PeerIDs()
	if len(ids) == 0 {
		return fmt.Sprintf("every peer of %s (none yet; keys are reloaded)", dir)
	}
	return fmt.Sprintf("every peer of %s (now: %s)", dir, strings.Join(ids, ", "))
}

// rejectInterval is the --reject-log-interval flag: a duration, or 0 or a
// negative number, with or without a unit, for "no limit: log every
// refusal" (mqttsec.Config.RejectLogInterval takes a negative value for
// that; its zero would mean the default).
type rejectInterval time.Duration

func (r *rejectInterval) String() string { return time.Duration(*r).String() }

func (r *rejectInterval) Set(s string) error {
	d, err := time.ParseDuration(s)
	if err != nil {
		n, nerr := strconv.ParseInt(s, 10, 64)
		if nerr != nil {
			return err
		}
		if n > 0 {
			return fmt.Errorf("%s needs a unit (%ss, say), or give 0 or -1 to log every refusal", s, s)
		}
	}
	if d <= 0 {
		d = -1 // every refusal
	}
	*r = rejectInterval(d)
	return nil
}

// stateFlags say where the gateway keeps its replay windows and message
// counter: in memory (neither set), in a directory, in Redis or in a Redis
// Cluster.
type stateFlags struct {
	dir, redis, cluster string
	init, durable       bool
}

// redisClusterShards spreads a --redis-cluster store's senders over the
// cluster (replay.RedisStoreOptions.Shards): a few per master of a small
// cluster. It is part of what is stored: changing it is a loss.
const redisClusterShards = 16

func (f *stateFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&f.dir, "state", "", "directory for the replay windows and message counter, kept across restarts (default: in memory)")
	fs.StringVar(&f.redis, "redis", "", "Redis holding the replay windows and message counter that replicas share (instead of --state): host:port, or a redis:// or rediss:// (TLS) URL")
	fs.StringVar(&f.cluster, "redis-cluster", "", "Redis Cluster holding them instead (the senders spread over 16 shards): host:port,host:port,... of some of its nodes, or a redis:// or rediss:// (TLS) URL with the others as addr= parameters")
	fs.BoolVar(&f.init, "init", false, "create the replay state of a new deployment, in a new --state DIR or in --redis or --redis-cluster (once: it fails where the state exists)")
	fs.BoolVar(&f.durable, "redis-durable", false, "Redis keeps every write across restarts (appendonly yes, appendfsync always, no failover to a lagging replica): a restart is not a loss")
}

// inRedis reports whether the state is in Redis (--redis or
// --redis-cluster).
func (f *stateFlags) inRedis() bool { return f.redis != "" || f.cluster != "" }

// check refuses flags that do not go together.
func (f *stateFlags) check() error {
	switch {
	case f.redis != "" && f.cluster != "":
		return errors.New("--redis and --redis-cluster exclude each other")
	case f.dir != "" && f.inRedis():
		return errors.New("--state and --redis (or --redis-cluster) exclude each other: replicas share their state in Redis")
	case f.init && f.dir == "" && !f.inRedis():
		return errors.New("--init needs --state, --redis or --redis-cluster: it creates their replay state")
	case f.durable && !f.inRedis():
		return errors.New("--redis-durable needs --redis or --redis-cluster")
	}
	return nil
}

// open opens (or, with --init, creates) the state the flags name and sets
// cfg's Replay and Counter to it; release closes it.
func (f *stateFlags) open(ctx context.Context, cfg *mqttsec.Config) (release func(), err error) {
	switch {
	case f.dir != "":
		store, counter, err := durableState(f.dir, f.init)
		if err != nil {
			return nil, err
		}
		cfg.Replay, cfg.Counter = store, counter
		return func() { store.Close(); counter.Close() }, nil
	case f.inRedis():
		rdb, shards, where, err := f.redisClient()
		if err != nil {
			return nil, err
		}
		store, err := f.openRedis(ctx, rdb, cfg.ID, shards)
		if err != nil {
			rdb.Close()
			return nil, fmt.Errorf("%s: %w", where, err)
		}
		cfg.Replay, cfg.Counter = store, replay.NewRedisCounter(rdb, "mqttsec:counter:"+cfg.ID)
		return func() { rdb.Close() }, nil
	}
	return func() {}, nil
}

// redisClient makes the client of --redis or --redis-cluster, and returns
// the store's shards on it (none on one Redis: a single marker) and the
// flag and addresses, for errors.
func (f *stateFlags) redisClient() (rdb redis.UniversalClient, shards int, where string, err error) {
	if f.cluster != "" {
		opt, err := cli.RedisClusterOptions(f.cluster)
		if err != nil {
			return nil, 0, "", err
		}
		return redis.NewClusterClient(opt), redisClusterShards, "--redis-cluster " + strings.Join(opt.Addrs, ","), nil
	}
	opt, err := cli.RedisOptions(f.redis)
	if err != nil {
		return nil, 0, "", err
	}
	return redis.NewClient(opt), 0, "--redis " + opt.Addr, nil
}

// openRedis checks that rdb answers, then opens (or creates) the replay
// store of the gateway id in it, over shards.
func (f *stateFlags) openRedis(ctx context.Context, rdb redis.UniversalClient, id string, shards int) (*replay.RedisStore, error) {
	if err := rdb.Ping(ctx).Err(); err != nil {
		return nil, err
	}
	return redisStore(ctx, rdb, replay.RedisStoreOptions{
		Prefix: "mqttsec:replay:" + id + ":", Width: mqttsec.DefaultReplayWindow, DurableRedis: f.durable, Shards: shards,
	}, f.init)
}

// redisStore opens the replay store in rdb, or with create, creates it.
func redisStore(ctx context.Context, rdb redis.UniversalClient, opt replay.RedisStoreOptions, create bool) (*replay.RedisStore, error) {
	if !create {
		return replay.NewRedisStore(rdb, opt)
	}
	store, err := replay.InitRedisStore(ctx, rdb, opt)
	if errors.Is(err, replay.ErrExists) {
		return nil, fmt.Errorf("%w: start without --init", err)
	}
	return store, err
}

// durableState opens the replay store and the message counter kept in
// dir, or with create, creates both (dir and both files must be new). A new
// counter starts at the current time in nanoseconds, above the counters
// of an earlier run without --state (those come from the clock too). A
// replay store found missing or damaged is opened as such: it reports the
// loss and refuses what may have been admitted before, never starting anew
// as if nothing had been. A missing counter is an error (replay.ErrMissing):
// the gateway must not guess where its lost counter stood; and so is a
// whole DIR gone, which is not made anew without --init.
func durableState(dir string, create bool) (*replay.FileStore, *replay.FileCounter, error) {
	storeDir, counterPath := filepath.Join(dir, "replay"), filepath.Join(dir, "counter")
	if create {
		return newDurableState(dir, storeDir, counterPath)
	}
	if _, err := os.Stat(dir); errors.Is(err, os.ErrNotExist) {
		err = fmt.Errorf("%w: %s", replay.ErrMissing, dir)
		return nil, nil, fmt.Errorf("--state %s: %w (a new deployment starts once with --init)", dir, err)
	}
	counter, err := replay.OpenFileCounter(counterPath, 0)
	if errors.Is(err, replay.ErrMissing) {
		return nil, nil, fmt.Errorf("--state %s: %w (a new deployment starts once with --init)", dir, err)
	}
	if err != nil {
		return nil, nil, fmt.Errorf("--state %s: %w", dir, err)
	}
	store, err := replay.OpenFileStore(storeDir, replay.FileStoreOptions{Width: mqttsec.DefaultReplayWindow})
	if err != nil {
		counter.Close()
		return nil, nil, fmt.Errorf("--state %s: %w", dir, err)
	}
	return store, counter, nil
}

// newDurableState creates the replay store and the counter of a new
// deployment in dir.
func newDurableState(dir, storeDir, counterPath string) (*replay.FileStore, *replay.FileCounter, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, nil, err
	}
	// Neither may exist: a new store beside an old counter would hide the
	// loss of the store that was there.
	if _, err := os.Lstat(counterPath); err == nil {
		return nil, nil, fmt.Errorf("--state %s: %w: %s: start without --init", dir, replay.ErrExists, counterPath)
	}
	store, err := replay.CreateFileStore(storeDir, replay.FileStoreOptions{Width: mqttsec.DefaultReplayWindow})
	if errors.Is(err, replay.ErrExists) {
		return nil, nil, fmt.Errorf("--state %s: %w: start without --init", dir, err)
	}
	if err != nil {
		return nil, nil, fmt.Errorf("--state %s: %w", dir, err)
	}
	counter, err := replay.CreateFileCounter(counterPath, uint64(time.Now().UnixNano()), 0)
	if errors.Is(err, os.ErrExist) {
		err = fmt.Errorf("%w: %s: start without --init", replay.ErrExists, counterPath)
	}
	if err != nil {
		store.Close()
		return nil, nil, fmt.Errorf("--state %s: %w", dir, err)
	}
	return store, counter, nil
}
