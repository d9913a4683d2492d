package main

import (
	"cmp"
	"context"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"sort"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/mqttsec/mqttsec/envelope"
	"github.com/mqttsec/mqttsec/internal/benchsuite"
	"github.com/mqttsec/mqttsec/internal/cli"
	"github.com/mqttsec/mqttsec/mqttsec/replay"
)

func run(ctx context.Context, opt options) ([]Row, error) {
	var rows []Row
	want := func(name string) bool { return opt.filter.MatchString(name) }
	gwKeys, clKeys, err := benchsuite.NewKeyPair()
	if err != nil {
		return nil, err
	}
	// primCost remembers the primitive cost (seal + open, 256 bytes) per
	// suite, to compare round-trip latency with.
	primCost := map[string]float64{}
	for _, s := range benchsuite.Suites() {
		for _, size := range []int{256, 4096} {
			base := fmt.Sprintf("envelope/%s/%d", s.Name, size)
			if !want(base+"/seal") && !want(base+"/open") {
				continue
			}
			r, err := envelopeRows(s, size, base, clKeys, gwKeys, opt.rounds)
			if err != nil {
				return nil, err
			}
			for _, row := range r {
				if want(row.Name) {
					rows = append(rows, row)
				}
			}
			if size == 256 {
				primCost[s.Name] = r[1].NsPerOp + r[3].NsPerOp
			}
		}
	}
	rt, err := roundTripRows(ctx, opt, want, clKeys, gwKeys, primCost)
	if err != nil {
		return nil, err
	}
	rows = append(rows, rt...)
	st, err := storeRows(opt, want)
	if err != nil {
		return nil, err
	}
	return append(rows, st...), nil
}

func bench(f func(b *testing.B)) testing.BenchmarkResult {
	return testing.Benchmark(func(b *testing.B) {
		b.ReportAllocs()
		f(b)
	})
}

// envelopeRows measures Seal and Open next to the suite's bare primitives,
// in rounds (each a benchtime/rounds slice of every row in turn), and
// reports each row's median round, so that drift of a shared machine
// reaches a row and its reference alike.
func envelopeRows(s benchsuite.Suite, size int, base string, from, to *benchsuite.Keys, rounds int) ([]Row, error) {
	c, err := benchsuite.NewCase(s, from, to, make([]byte, size))
	if err != nil {
		return nil, fmt.Errorf("%s: %w", base, err)
	}
	ops := []func(){c.Seal, c.PrimSeal, c.Open, c.PrimOpen}
	results := make([][]testing.BenchmarkResult, len(ops))
	for range rounds {
		for i, op := range ops {
			results[i] = append(results[i], bench(func(b *testing.B) {
				for b.Loop() {
					op()
				}
			}))
		}
	}
	seal, pseal, open, popen := medianResult(results[0]), medianResult(results[1]), medianResult(results[2]), medianResult(results[3])
	row := func(name string, r testing.BenchmarkResult, ref *Row) Row {
		out := Row{Name: name, NsPerOp: nsPerOp(r), AllocsPerOp: r.AllocsPerOp()}
		if ref != nil && ref.NsPerOp > 0 {
			out.Ref, out.Ratio, out.OverheadNs = ref.Name, out.NsPerOp/ref.NsPerOp, out.NsPerOp-ref.NsPerOp
		}
		return out
	}
	ps := row(base+"/seal-primitives", pseal, nil)
	po := row(base+"/open-primitives", popen, nil)
	ps.Extra = fmt.Sprintf("envelope %d bytes", c.EnvelopeSize)
	return []Row{row(base+"/seal", seal, &ps), ps, row(base+"/open", open, &po), po}, nil
}

// sizedPlain names the plain rows whose requests are as long as an HMAC
// request envelope (see benchsuite.EnvelopeSized).
const sizedPlain = "plain-envelope-size"

// floorSuites are the suites with a floor row: plain Paho carrying the
// suite's request envelope length and running its bare primitives where a
// round trip runs them (see benchsuite.FloorPair), and nothing else. The
// public-key suites have one too: their primitives take long enough that
// the process's other threads go to sleep while they run, so a floor
// shows what that costs a round trip before any envelope code runs.
var floorSuites = []string{"hmac", "psk", "ed25519", "ed25519+hpke-x25519"}

// floorName is the name of suite's floor row: "hmac-floor" and so on.
func floorName(suite string) string { return suite + "-floor" }

// roundTripSuites are the suites measured over the broker.
var roundTripSuites = []string{"hmac", "psk", "hmac+psk", "ed25519", "ed25519+hpke-x25519", "ps256+rsa-oaep"}

// roundTripRows measures each secured pair next to plain Paho in rounds:
// in every round each secured pair's latency is taken in turns with plain
// Paho's (request by request), then every pair's throughput in turn. Each
// row reports the median round, so drift of a shared machine reaches every
// row alike.
func roundTripRows(ctx context.Context, opt options, want func(string) bool, clKeys, gwKeys *benchsuite.Keys, primCost map[string]float64) ([]Row, error) {
	var rows []Row
	payload := make([]byte, 256)
	for _, proto := range []int{3, 5} {
		conn := cli.Conn{Broker: opt.broker, Protocol: proto}
		prefix := fmt.Sprintf("roundtrip/v%d/", proto)
		plain := &roundTripEntry{name: prefix + "plain", suite: "plain"}
		entries := []*roundTripEntry{plain}
		// Plain Paho carrying an HMAC request envelope's length, and the
		// floors.
		var sized *roundTripEntry
		floors := map[string]*roundTripEntry{}
		if want(prefix + sizedPlain) {
			sized = &roundTripEntry{name: prefix + sizedPlain, suite: sizedPlain, sizedAs: "hmac"}
			entries = append(entries, sized)
		}
		for _, suite := range floorSuites {
			if name := floorName(suite); want(prefix + name) {
				floors[suite] = &roundTripEntry{name: prefix + name, suite: name, floorOf: suite}
				entries = append(entries, floors[suite])
			}
		}
		for _, name := range roundTripSuites {
			if want(prefix + name) {
				entries = append(entries, &roundTripEntry{name: prefix + name, suite: name})
			}
		}
		if len(entries) == 1 && !want(plain.name) {
			continue
		}
		for _, e := range entries {
			if err := e.open(ctx, conn.Transport, clKeys, gwKeys, payload); err != nil {
				return nil, fmt.Errorf("%s: %w", e.name, err)
			}
			defer e.pair.Close()
		}
		slice := opt.duration / time.Duration(opt.rounds)
		rctx, cancel := context.WithTimeout(ctx, time.Duration(len(entries))*(10*opt.duration+30*time.Second))
		defer cancel()
		for range opt.rounds {
			for _, e := range entries {
				if e == plain && len(entries) > 1 {
					continue // measured in turns with each secured pair
				}
				if err := e.latencyRound(rctx, plain, payload, slice); err != nil {
					return nil, fmt.Errorf("%s: %w", e.name, err)
				}
			}
			for _, e := range entries {
				if err := e.throughputRound(rctx, payload, opt.inFlight, slice); err != nil {
					return nil, fmt.Errorf("%s: %w", e.name, err)
				}
			}
		}
		ref := Row{Name: plain.name, OpsPerSec: median(plain.tput), P50Us: us(medianDuration(plain.p50)), P99Us: us(medianDuration(plain.p99)),
			CPUUsPerOp: medianOrZero(plain.cpu), Extra: fmt.Sprintf("%d in flight; median of %d interleaved rounds", opt.inFlight, opt.rounds)}
		if want(ref.Name) {
			rows = append(rows, ref)
		}
		for _, e := range entries[1:] {
			r := Row{Name: e.name, OpsPerSec: median(e.tput), P50Us: us(medianDuration(e.p50)), P99Us: us(medianDuration(e.p99)),
				Ref: ref.Name, Ratio: ref.OpsPerSec / median(e.tput), AddedP50Us: us(medianDuration(e.added)), AddedP99Us: us(medianDuration(e.added99)),
				CPUUsPerOp: medianOrZero(e.cpu)}
			if ref.CPUUsPerOp > 0 {
				r.CPURatio = r.CPUUsPerOp / ref.CPUUsPerOp
			}
			if e.sizedAs != "" {
				r.Extra = fmt.Sprintf("plain Paho with %d-byte requests, an HMAC request envelope's length: p50 %+.1f µs over plain (in turns)", e.size, r.AddedP50Us)
				rows = append(rows, r)
				continue
			}
			suite := e.suite
			if e.floorOf != "" {
				suite = e.floorOf
			}
			// A round trip seals and opens twice: the request and the reply.
			prim, ok := primCost[suite]
			if !ok {
				var err error
				if prim, err = primitiveCost(suiteNamed(suite), clKeys, gwKeys); err != nil {
					return nil, fmt.Errorf("%s: %w", e.name, err)
				}
				// A suite and its floor are held to the same measure.
				primCost[suite] = prim
			}
			r.PrimitivesUs = 2 * prim / 1000
			r.AddedOverPrimitives = r.AddedP50Us / r.PrimitivesUs
			latency := fmt.Sprintf("p50 %+.1f µs over plain (in turns) = %.2f× the %.1f µs of primitives per round trip, p99 %+.1f µs",
				r.AddedP50Us, r.AddedOverPrimitives, r.PrimitivesUs, r.AddedP99Us)
			if e.floorOf != "" {
				r.Extra = fmt.Sprintf("plain Paho with %d-byte messages running %s's primitives, no envelope or SDK: %s", e.size, e.floorOf, latency)
				rows = append(rows, r)
				continue
			}
			r.Extra = latency
			if sized != nil {
				r.RatioSameSize = median(sized.tput) / r.OpsPerSec
				r.Extra += "; " + relative(r.RatioSameSize, sized.suite)
			}
			if fl := floors[e.suite]; fl != nil {
				r.RatioFloor = median(fl.tput) / r.OpsPerSec
				r.Extra += "; " + relative(r.RatioFloor, fl.suite)
			}
			rows = append(rows, r)
		}
	}
	return rows, nil
}

// roundTripEntry is one pair of roundTripRows and what its rounds
// measured.
type roundTripEntry struct {
	name, suite string
	pair        *benchsuite.Pair
	p50, p99    []time.Duration
	added       []time.Duration // p50 over plain's, taken in turns
	added99     []time.Duration // p99 over plain's, taken in turns
	tput        []float64
	cpu         []float64 // µs of process CPU per round trip
	// sizedAs, for plain Paho carrying requests as long as a suite's
	// request envelope, names that suite; size is the length.
	sizedAs string
	size    int
	// floorOf, for plain Paho carrying a suite's envelope length and
	// running its primitives, names that suite.
	floorOf string
}

// open starts e's pair over dial: plain Paho (for the plain row, alone
// or carrying a suite's envelope length), a floor, or a secured pair.
func (e *roundTripEntry) open(ctx context.Context, dial benchsuite.Dial, clKeys, gwKeys *benchsuite.Keys, payload []byte) error {
	var err error
	switch {
	case e.floorOf != "":
		e.pair, e.size, err = benchsuite.FloorPair(ctx, dial, suiteNamed(e.floorOf), clKeys, gwKeys, payload)
	case e.sizedAs != "":
		if e.pair, err = benchsuite.PlainPair(ctx, dial); err == nil {
			e.pair.Request, e.size, err = benchsuite.EnvelopeSized(e.pair.Request, suiteNamed(e.sizedAs), clKeys, gwKeys, payload)
		}
	case e.suite == "plain":
		e.pair, err = benchsuite.PlainPair(ctx, dial)
	default:
		e.pair, err = benchsuite.SecuredPair(ctx, dial, suiteNamed(e.suite), gwKeys, clKeys)
	}
	return err
}

// latencyRound takes one round of e's latency in turns with plain's (or
// plain's alone, when e is plain) for d.
func (e *roundTripEntry) latencyRound(ctx context.Context, plain *roundTripEntry, payload []byte, d time.Duration) error {
	reqs := []benchsuite.Requester{plain.pair.Request}
	if e != plain {
		reqs = append(reqs, e.pair.Request)
	}
	lat, err := benchsuite.Latencies(ctx, payload, d, reqs...)
	if err != nil {
		return err
	}
	plain.p50 = append(plain.p50, benchsuite.Percentile(lat[0], 0.5))
	plain.p99 = append(plain.p99, benchsuite.Percentile(lat[0], 0.99))
	if e != plain {
		p50, p99 := benchsuite.Percentile(lat[1], 0.5), benchsuite.Percentile(lat[1], 0.99)
		e.p50, e.p99 = append(e.p50, p50), append(e.p99, p99)
		e.added = append(e.added, p50-benchsuite.Percentile(lat[0], 0.5))
		e.added99 = append(e.added99, p99-benchsuite.Percentile(lat[0], 0.99))
	}
	return nil
}

// throughputRound takes one round of e's throughput with inFlight
// requests for d, and the process's CPU per round trip meanwhile where
// the platform tells.
func (e *roundTripEntry) throughputRound(ctx context.Context, payload []byte, inFlight int, d time.Duration) error {
	began := time.Now()
	cpu0, cpuOK := processCPU()
	t, err := benchsuite.Throughput(ctx, e.pair.Request, payload, inFlight, d)
	if err != nil {
		return err
	}
	e.tput = append(e.tput, t)
	if cpu1, ok := processCPU(); ok && cpuOK {
		done := t * time.Since(began).Seconds()
		e.cpu = append(e.cpu, us(cpu1-cpu0)/done)
	}
	return nil
}

// relative says how a row's throughput compares with another's, given
// ratio = the other's throughput ÷ the row's: "1.10× slower than x", or
// "1.12× faster than x" for a ratio of 0.89.
func relative(ratio float64, other string) string {
	if ratio < 1 {
		return fmt.Sprintf("%.2f× faster than %s", 1/ratio, other)
	}
	return fmt.Sprintf("%.2f× slower than %s", ratio, other)
}

func us(d time.Duration) float64 { return float64(d.Nanoseconds()) / 1000 }

func suiteNamed(name string) benchsuite.Suite {
	for _, s := range benchsuite.Suites() {
		if s.Name == name {
			return s
		}
	}
	panic("bench: no suite " + name)
}

// primitiveCost is the bare primitives' seal plus open time (ns) of suite s
// for a 256-byte request, measured like the envelope rows, when the filter
// left those out.
func primitiveCost(s benchsuite.Suite, from, to *benchsuite.Keys) (float64, error) {
	c, err := benchsuite.NewCase(s, from, to, make([]byte, 256))
	if err != nil {
		return 0, err
	}
	timeOf := func(f func()) float64 {
		return nsPerOp(bench(func(b *testing.B) {
			for b.Loop() {
				f()
			}
		}))
	}
	return timeOf(c.PrimSeal) + timeOf(c.PrimOpen), nil
}

// medianResult is the round with the median time per op.
func medianResult(rs []testing.BenchmarkResult) testing.BenchmarkResult {
	s := slices.Clone(rs)
	slices.SortFunc(s, func(a, b testing.BenchmarkResult) int { return cmp.Compare(nsPerOp(a), nsPerOp(b)) })
	return s[len(s)/2]
}

func nsPerOp(r testing.BenchmarkResult) float64 {
	return float64(r.T.Nanoseconds()) / float64(max(r.N, 1))
}

// medianOrZero is median, or 0 for no values (a platform that does not
// tell CPU time).
func medianOrZero(v []float64) float64 {
	if len(v) == 0 {
		return 0
	}
	return median(v)
}

func median(v []float64) float64 {
	s := append([]float64(nil), v...)
	sort.Float64s(s)
	return s[len(s)/2]
}

func medianDuration(v []time.Duration) time.Duration {
	s := append([]time.Duration(nil), v...)
	sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
	return s[len(s)/2]
}

func storeRows(opt options, want func(string) bool) ([]Row, error) {
	var rows []Row
	t0 := time.Now()
	parallel := func(name string, par int, admit func(envelope.Seen) error) {
		var n atomic.Uint64
		r := testing.Benchmark(func(b *testing.B) {
			b.SetParallelism(par)
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					c := n.Add(1)
					admit(envelope.Seen{Sender: "s" + strconv.FormatUint(c%1024, 10), Counter: c, IssuedAt: t0})
				}
			})
		})
		ns := float64(r.T.Nanoseconds()) / float64(max(r.N, 1))
		rows = append(rows, Row{Name: name, NsPerOp: ns, OpsPerSec: 1e9 / ns,
			Extra: fmt.Sprintf("%d goroutines", par*runtime.GOMAXPROCS(0))})
	}
	bytesName := func(store string, width int) string {
		return fmt.Sprintf("replay/%s/bytes-per-sender/window=%d", store, width)
	}
	widths := []int{64, 1024}
	if want("replay/memory") {
		s, _ := replay.NewMemoryStore(1024)
		parallel("replay/memory", 1, func(m envelope.Seen) error { return s.Admit(context.Background(), m) })
	}
	for _, width := range widths {
		if !want(bytesName("memory", width)) {
			continue
		}
		perSender, err := heapPerSender(100000, func() (envelope.ReplayStore, func() error, error) {
			ms, err := replay.NewBoundedMemoryStore(width, 100000)
			return ms, func() error { return nil }, err
		})
		if err != nil {
			return nil, err
		}
		rows = append(rows, bytesRow(bytesName("memory", width), perSender, "bytes per tracked sender"))
	}
	dir, err := os.MkdirTemp("", "mqttsec-bench-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)
	if want("replay/file") {
		s, err := replay.CreateFileStore(filepath.Join(dir, "admit"), replay.FileStoreOptions{Width: 1024})
		if err != nil {
			return nil, err
		}
		defer s.Close()
		parallel("replay/file", 64, func(m envelope.Seen) error { return s.Admit(context.Background(), m) })
	}
	for _, width := range widths {
		if !want(bytesName("file", width)) {
			continue
		}
		const senders = 20000
		sub := filepath.Join(dir, fmt.Sprintf("senders-%d", width))
		perSender, err := heapPerSender(senders, func() (envelope.ReplayStore, func() error, error) {
			fs, err := replay.CreateFileStore(sub, replay.FileStoreOptions{Width: width})
			if err != nil {
				return nil, nil, err
			}
			return fs, fs.Close, nil
		})
		if err != nil {
			return nil, err
		}
		onDisk, err := dirSize(sub)
		if err != nil {
			return nil, err
		}
		rows = append(rows, bytesRow(bytesName("file", width), perSender,
			fmt.Sprintf("bytes per tracked sender in memory; the log holds %.0f bytes per admitted message until it is compacted", float64(onDisk)/senders)))
	}
	if opt.redis == "" {
		return rows, nil
	}
	ropt, err := cli.RedisOptions(opt.redis)
	if err != nil {
		return nil, err
	}
	rdb := redis.NewClient(ropt)
	defer rdb.Close()
	prefix := fmt.Sprintf("mqttsec-bench:%d:", time.Now().UnixNano())
	if want("replay/redis") {
		s, err := replay.InitRedisStore(context.Background(), rdb, replay.RedisStoreOptions{Prefix: prefix, Width: 1024})
		if err != nil {
			return nil, err
		}
		parallel("replay/redis", 16, func(m envelope.Seen) error { return s.Admit(context.Background(), m) })
	}
	for _, width := range widths {
		if !want(bytesName("redis", width)) {
			continue
		}
		perSender, err := redisPerSender(rdb, fmt.Sprintf("%swidth-%d:", prefix, width), width)
		if err != nil {
			return nil, err
		}
		rows = append(rows, bytesRow(bytesName("redis", width), perSender, "bytes of Redis memory per sender (MEMORY USAGE of its key)"))
	}
	return rows, nil
}

// bytesRow is a row of bytes per sender.
func bytesRow(name string, perSender float64, what string) Row {
	return Row{Name: name, BytesPerSender: perSender, Extra: fmt.Sprintf("%.0f %s", perSender, what)}
}

// heapPerSender is the Go heap a store opened by open holds per sender,
// after one message from each of n senders.
func heapPerSender(n int, open func() (envelope.ReplayStore, func() error, error)) (float64, error) {
	runtime.GC()
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	s, closeStore, err := open()
	if err != nil {
		return 0, err
	}
	t0 := time.Now()
	// Concurrent, so that a store that syncs to disk commits them in groups.
	var wg sync.WaitGroup
	var failed atomic.Int64
	for g := range 64 {
		wg.Go(func() {
			for i := g; i < n; i += 64 {
				if s.Admit(context.Background(), envelope.Seen{Sender: "sender-" + strconv.Itoa(i), Counter: 1, IssuedAt: t0}) != nil {
					failed.Add(1)
				}
			}
		})
	}
	wg.Wait()
	if f := failed.Load(); f > 0 {
		closeStore()
		return 0, fmt.Errorf("bytes per sender: %d of %d admits failed", f, n)
	}
	runtime.GC()
	runtime.ReadMemStats(&after)
	runtime.KeepAlive(s)
	if err := closeStore(); err != nil {
		return 0, err
	}
	return float64(after.HeapAlloc-before.HeapAlloc) / float64(n), nil
}

// redisPerSender is the Redis memory a RedisStore of width uses per sender
// (MEMORY USAGE of each key), after one message from each of 1000 senders
// under prefix.
func redisPerSender(rdb *redis.Client, prefix string, width int) (float64, error) {
	ctx := context.Background()
	s, err := replay.InitRedisStore(ctx, rdb, replay.RedisStoreOptions{Prefix: prefix, Width: width})
	if err != nil {
		return 0, err
	}
	const n = 1000
	var total int64
	for i := range n {
		sender := "sender-" + strconv.Itoa(i)
		if err := s.Admit(ctx, envelope.Seen{Sender: sender, Counter: 1, IssuedAt: time.Now()}); err != nil {
			return 0, err
		}
		used, err := rdb.MemoryUsage(ctx, prefix+sender).Result()
		if err != nil {
			return 0, err
		}
		total += used
	}
	return float64(total) / n, nil
}

// dirSize is the size of the regular files in dir.
func dirSize(dir string) (int64, error) {
	var total int64
	err := filepath.WalkDir(dir, func(_ string, d fs.DirEntry, err error) error {
		if err != nil || !d.Type().IsRegular() {
			return err
		}
		info, err := d.Info()
		if err == nil {
			total += info.Size()
		}
		return err
	})
	return total, err
}
