package main

import (
	"context"
	"fmt"
	"os"
	"runtime"
	"sort"
	"strconv"
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
	gwKeys, err := benchsuite.NewKeys(nil)
	if err != nil {
		return nil, err
	}
	clKeys, err := benchsuite.NewKeys(gwKeys)
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
			r, err := envelopeRows(s, size, base, clKeys, gwKeys)
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

func envelopeRows(s benchsuite.Suite, size int, base string, from, to *benchsuite.Keys) ([]Row, error) {
	payload := make([]byte, size)
	sealer := &envelope.Sealer{ID: "client", Counter: envelope.NewClockCounter()}
	p := &envelope.Params{Kind: envelope.Request, To: []string{"gateway"}, Topic: "get-card", ReplyTo: "mqttsec/client/reply"}
	s.Apply(from, to, p)
	sealed, err := sealer.Seal(p, payload)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", base, err)
	}
	keys, err := envelope.NewKeys(to.Identities, s.Peer("client", from))
	if err != nil {
		return nil, err
	}
	opener := &envelope.Opener{ID: "gateway", Keys: keys, Replay: benchsuite.AdmitAll{}}
	expect := &envelope.Expect{Kinds: envelope.Request}
	if _, err := opener.Open(context.Background(), sealed.Bytes, expect); err != nil {
		return nil, fmt.Errorf("%s: %w", base, err)
	}
	e, _ := envelope.Parse(sealed.Bytes)
	primSeal, primOpen := benchsuite.Primitives(s, from, to, e.SigningInput(), payload, e.HeaderText())

	seal := bench(func(b *testing.B) {
		for b.Loop() {
			sealer.Seal(p, payload)
		}
	})
	pseal := bench(func(b *testing.B) {
		for b.Loop() {
			primSeal()
		}
	})
	open := bench(func(b *testing.B) {
		for b.Loop() {
			opener.Open(context.Background(), sealed.Bytes, expect)
		}
	})
	popen := bench(func(b *testing.B) {
		for b.Loop() {
			primOpen()
		}
	})
	row := func(name string, r testing.BenchmarkResult, ref *Row) Row {
		out := Row{Name: name, NsPerOp: float64(r.NsPerOp()), AllocsPerOp: r.AllocsPerOp()}
		if r.N > 0 && r.T > 0 {
			out.NsPerOp = float64(r.T.Nanoseconds()) / float64(r.N)
		}
		if ref != nil && ref.NsPerOp > 0 {
			out.Ref, out.Ratio, out.OverheadNs = ref.Name, out.NsPerOp/ref.NsPerOp, out.NsPerOp-ref.NsPerOp
		}
		return out
	}
	ps := row(base+"/seal-primitives", pseal, nil)
	po := row(base+"/open-primitives", popen, nil)
	ps.Extra = fmt.Sprintf("envelope %d bytes", len(sealed.Bytes))
	return []Row{row(base+"/seal", seal, &ps), ps, row(base+"/open", open, &po), po}, nil
}

// roundTripSuites are the suites measured over the broker.
var roundTripSuites = []string{"hmac", "psk", "hmac+psk", "ed25519", "ed25519+hpke-x25519", "seed-rs256-oaep"}

// rounds is how many times each round-trip pair is measured, interleaved
// with the others, so that drift of a shared machine affects all alike;
// each row reports the median round.
const rounds = 3

func roundTripRows(ctx context.Context, opt options, want func(string) bool, clKeys, gwKeys *benchsuite.Keys, primCost map[string]float64) ([]Row, error) {
	var rows []Row
	payload := make([]byte, 256)
	for _, proto := range []int{3, 5} {
		conn := cli.Conn{Broker: opt.broker, Protocol: proto}
		prefix := fmt.Sprintf("roundtrip/v%d/", proto)
		type entry struct {
			name  string
			suite string
			pair  *benchsuite.Pair
			p50   []time.Duration
			p99   []time.Duration
			tput  []float64
		}
		var entries []*entry
		for _, name := range append([]string{"plain"}, roundTripSuites...) {
			if !want(prefix + name) {
				continue
			}
			entries = append(entries, &entry{name: prefix + name, suite: name})
		}
		if len(entries) == 0 {
			continue
		}
		if entries[0].suite != "plain" {
			// Every secured row is compared with plain Paho.
			entries = append([]*entry{{name: prefix + "plain", suite: "plain"}}, entries...)
		}
		for _, e := range entries {
			var err error
			if e.suite == "plain" {
				e.pair, err = benchsuite.PlainPair(ctx, conn)
			} else {
				var suite benchsuite.Suite
				for _, s := range benchsuite.Suites() {
					if s.Name == e.suite {
						suite = s
					}
				}
				e.pair, err = benchsuite.SecuredPair(ctx, conn, suite, gwKeys, clKeys)
			}
			if err != nil {
				return nil, fmt.Errorf("%s: %w", e.name, err)
			}
			defer e.pair.Close()
		}
		slice := opt.duration / rounds
		for range rounds {
			for _, e := range entries {
				rctx, cancel := context.WithTimeout(ctx, 10*opt.duration+30*time.Second)
				p50, p99, _, err := benchsuite.Latency(rctx, e.pair.Request, payload, slice)
				if err == nil {
					var t float64
					t, err = benchsuite.Throughput(rctx, e.pair.Request, payload, opt.inFlight, slice)
					e.tput = append(e.tput, t)
				}
				cancel()
				if err != nil {
					return nil, fmt.Errorf("%s: %w", e.name, err)
				}
				e.p50, e.p99 = append(e.p50, p50), append(e.p99, p99)
			}
		}
		var plain Row
		for i, e := range entries {
			r := Row{Name: e.name, OpsPerSec: median(e.tput),
				P50Us: float64(medianDuration(e.p50).Microseconds()), P99Us: float64(medianDuration(e.p99).Microseconds())}
			if i == 0 {
				r.Extra = fmt.Sprintf("%d in flight; median of %d interleaved rounds", opt.inFlight, rounds)
				plain = r
			} else {
				r.Ref, r.Ratio = plain.Name, plain.OpsPerSec/r.OpsPerSec
				r.Extra = fmt.Sprintf("p50 %+.0f µs over plain", r.P50Us-plain.P50Us)
				if c := primCost[e.suite]; c > 0 {
					// A round trip seals and opens twice: request and reply.
					r.Extra += fmt.Sprintf("; primitives per round trip %.0f µs", 2*c/1000)
				}
			}
			if want(e.name) {
				rows = append(rows, r)
			}
		}
	}
	return rows, nil
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
	if want("replay/memory") {
		s, _ := envelope.NewMemoryStore(1024)
		parallel("replay/memory", 1, func(m envelope.Seen) error { return s.Admit(context.Background(), m) })
		for _, width := range []int{64, 1024} {
			runtime.GC()
			var before, after runtime.MemStats
			runtime.ReadMemStats(&before)
			ms, _ := envelope.NewBoundedMemoryStore(width, 100000)
			for i := range 100000 {
				ms.Admit(context.Background(), envelope.Seen{Sender: "sender-" + strconv.Itoa(i), Counter: 1, IssuedAt: t0})
			}
			runtime.GC()
			runtime.ReadMemStats(&after)
			runtime.KeepAlive(ms)
			rows = append(rows, Row{Name: fmt.Sprintf("replay/memory/bytes-per-sender/window=%d", width),
				Extra: fmt.Sprintf("%.0f bytes per tracked sender", float64(after.HeapAlloc-before.HeapAlloc)/100000)})
		}
	}
	if want("replay/file") {
		dir, err := os.MkdirTemp("", "mqttsec-bench-")
		if err != nil {
			return nil, err
		}
		defer os.RemoveAll(dir)
		s, err := replay.OpenFileStore(dir, replay.FileStoreOptions{Width: 1024})
		if err != nil {
			return nil, err
		}
		defer s.Close()
		parallel("replay/file", 64, func(m envelope.Seen) error { return s.Admit(context.Background(), m) })
	}
	if want("replay/redis") && opt.redis != "" {
		rdb := redis.NewClient(&redis.Options{Addr: opt.redis})
		defer rdb.Close()
		s, err := replay.NewRedisStore(rdb, replay.RedisStoreOptions{Prefix: fmt.Sprintf("mqttsec-bench:%d:", time.Now().UnixNano()), Width: 1024})
		if err != nil {
			return nil, err
		}
		parallel("replay/redis", 16, func(m envelope.Seen) error { return s.Admit(context.Background(), m) })
	}
	return rows, nil
}
