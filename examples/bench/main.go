// Command bench measures mqttsec next to what it is built from, in one run:
// Seal and Open of every suite next to the bare primitives of that suite;
// secured request/reply next to plain Paho request/reply on the same broker,
// client library, QoS and payload; the seed system's design (RSA-2048
// signatures and RSA-OAEP-wrapped AES: ps256+rsa-oaep, with RSA-PSS where
// the seed signed PKCS#1 v1.5) next to Ed25519 + HPKE and HMAC +
// pre-shared AES-GCM; and the replay stores.
//
//	go run ./examples/bench                        # embedded broker
//	go run ./examples/bench --broker tcp://127.0.0.1:1883 --redis 127.0.0.1:6379
//	go run ./examples/bench --filter 'envelope/hmac' --duration 2s --json
//
// Round-trip rows: ratio is plain Paho's throughput over the secured one's
// (above 1 is slower); the note gives the p50 latency added over plain
// Paho, measured request by request in turns with it, next to the time the
// bare primitives take per round trip. The plain-envelope-size rows are
// plain Paho with requests as long as an HMAC request envelope, so that the
// cost of the envelope's size can be told from the rest. The floor rows
// (hmac-floor, ed25519-floor, ed25519+hpke-x25519-floor) carry a suite's
// envelope length and add its bare primitives where a round trip runs
// them, and nothing else: the least any implementation of the format can
// cost, which that suite's rows are compared with too.
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"regexp"
	"runtime"
	"runtime/pprof"
	"testing"
	"time"

	"github.com/mqttsec/mqttsec/internal/cli"
	"github.com/mqttsec/mqttsec/internal/testbroker"
)

// Row is one measurement. Ref names the row it is compared with; Ratio is
// this row's cost over the reference's (ns/op ratio, or for throughput
// rows reference throughput over this one's, so above 1 always means
// slower).
type Row struct {
	Name        string  `json:"name"`
	NsPerOp     float64 `json:"ns_per_op,omitempty"`
	OpsPerSec   float64 `json:"ops_per_sec,omitempty"`
	AllocsPerOp int64   `json:"allocs_per_op,omitempty"`
	P50Us       float64 `json:"p50_us,omitempty"`
	P99Us       float64 `json:"p99_us,omitempty"`
	Extra       string  `json:"extra,omitempty"`
	// Replay-store rows only: the store's memory per sender.
	BytesPerSender float64 `json:"bytes_per_sender,omitempty"`
	Ref            string  `json:"ref,omitempty"`
	Ratio          float64 `json:"ratio,omitempty"`
	OverheadNs     float64 `json:"overhead_ns,omitempty"`
	// Round trips only: the p50 and p99 latency added over plain Paho
	// (measured in turns with it), the primitives' time per round trip
	// (seal and open of the request and of the reply), and the p50 added
	// over the primitives.
	AddedP50Us          float64 `json:"added_p50_us,omitempty"`
	AddedP99Us          float64 `json:"added_p99_us,omitempty"`
	PrimitivesUs        float64 `json:"primitives_us,omitempty"`
	AddedOverPrimitives float64 `json:"added_over_primitives,omitempty"`
	// Secured round trips, when the plain-envelope-size row was measured:
	// its throughput over this row's, the cost of everything but the
	// envelope's size.
	RatioSameSize float64 `json:"ratio_same_size,omitempty"`
	// Round trips of a suite with a floor row (hmac-floor for hmac, and
	// so on), when it was measured: its throughput over this row's, the
	// cost of the envelope code and the SDK above what the format's bytes
	// and primitives cost.
	RatioFloor float64 `json:"ratio_floor,omitempty"`
	// Round trips only, where the platform tells: the process's CPU time
	// (user and system, every goroutine: with the embedded broker, the
	// broker's too) per round trip while the throughput was measured,
	// and, for rows compared with plain Paho, this over plain's. On a
	// machine whose cores are all busy, CPU per round trip is what bounds
	// throughput, and it varies less from run to run than throughput
	// does on a shared machine.
	CPUUsPerOp float64 `json:"cpu_us_per_op,omitempty"`
	CPURatio   float64 `json:"cpu_ratio,omitempty"`
}

type options struct {
	duration time.Duration
	filter   *regexp.Regexp
	broker   string
	redis    string
	inFlight int
	rounds   int
}

// newFlagSet returns the command's flag set: the testing package's flags
// (registered by testing.Init; bench sets test.benchtime), which its usage
// leaves out, and its own.
func newFlagSet(stderr io.Writer) *flag.FlagSet {
	fs := flag.NewFlagSet("bench", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprintln(fs.Output(), "usage: bench [flags]")
		cli.PrintDefaults(fs, "test.")
	}
	flag.CommandLine.VisitAll(func(f *flag.Flag) { fs.Var(f.Value, f.Name, f.Usage) })
	return fs
}

func main() {
	testing.Init()
	fs := newFlagSet(os.Stderr)
	duration := fs.Duration("duration", time.Second, "time per row")
	filter := fs.String("filter", "", "only rows whose name matches this regular expression")
	asJSON := fs.Bool("json", false, "print the rows as JSON")
	broker := fs.String("broker", "", "MQTT broker URL for the round-trip rows; empty starts an embedded broker")
	redisAddr := fs.String("redis", "", "Redis for the Redis replay-store rows: host:port, or a redis:// or rediss:// (TLS) URL")
	inFlight := fs.Int("in-flight", 64, "requests in flight for the throughput rows")
	rounds := fs.Int("rounds", 5, "interleaved rounds per row, each taking duration/rounds; rows report the median round")
	cpuProfile := fs.String("cpuprofile", "", "write a CPU profile of the whole run to this file")
	if help, err := cli.Parse(fs, os.Args[1:], os.Stdout); help {
		return
	} else if err != nil {
		os.Exit(2)
	}
	if *cpuProfile != "" {
		f, err := os.Create(*cpuProfile)
		if err != nil {
			fmt.Fprintln(os.Stderr, "bench:", err)
			os.Exit(1)
		}
		pprof.StartCPUProfile(f)
		defer pprof.StopCPUProfile()
	}
	if *rounds < 1 {
		fmt.Fprintln(os.Stderr, "bench: --rounds must be at least 1")
		os.Exit(2)
	}
	re, err := regexp.Compile(*filter)
	if err != nil {
		fmt.Fprintln(os.Stderr, "bench: --filter:", err)
		os.Exit(2)
	}
	// Envelope rows run in --rounds slices, interleaved with their
	// references; the store rows use one slice each.
	flag.Set("test.benchtime", (*duration / time.Duration(*rounds)).String())
	opt := options{duration: *duration, filter: re, broker: *broker, redis: *redisAddr, inFlight: *inFlight, rounds: *rounds}
	if opt.broker == "" && wantsRoundTrips(re) {
		b, err := testbroker.Start("127.0.0.1:0", nil)
		if err != nil {
			fmt.Fprintln(os.Stderr, "bench:", err)
			os.Exit(1)
		}
		defer b.Close()
		opt.broker = b.URL()
	}
	ctx := context.Background()
	rows, err := run(ctx, opt)
	if err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1)
	}
	if *asJSON {
		enc := json.NewEncoder(os.Stdout)
		enc.SetIndent("", "  ")
		enc.Encode(rows)
		return
	}
	printTable(os.Stdout, rows, opt)
}

// wantsRoundTrips reports whether the filter selects any round-trip row.
func wantsRoundTrips(re *regexp.Regexp) bool {
	for _, proto := range []string{"3", "5"} {
		names := []string{"plain", sizedPlain}
		for _, suite := range floorSuites {
			names = append(names, floorName(suite))
		}
		for _, name := range append(names, roundTripSuites...) {
			if re.MatchString("roundtrip/v" + proto + "/" + name) {
				return true
			}
		}
	}
	return false
}

func printTable(w io.Writer, rows []Row, opt options) {
	fmt.Fprintf(w, "mqttsec bench: %s, %s/%s, %d CPUs, %s per row\n\n", runtime.Version(), runtime.GOOS, runtime.GOARCH, runtime.NumCPU(), opt.duration)
	fmt.Fprintf(w, "%-52s %12s %12s %7s %9s %9s %8s %8s %8s %8s  %s\n", "row", "ns/op", "ops/s", "allocs", "p50 µs", "p99 µs", "cpu µs", "ratio", "cpu×", "+µs", "reference / note")
	for _, r := range rows {
		field := func(v float64, f string) string {
			if v == 0 {
				return ""
			}
			return fmt.Sprintf(f, v)
		}
		allocs := ""
		if r.AllocsPerOp > 0 || r.NsPerOp > 0 {
			allocs = fmt.Sprint(r.AllocsPerOp)
		}
		note := r.Ref
		if r.Extra != "" {
			if note != "" {
				note += "; "
			}
			note += r.Extra
		}
		fmt.Fprintf(w, "%-52s %12s %12s %7s %9s %9s %8s %8s %8s %8s  %s\n", r.Name,
			field(r.NsPerOp, "%.0f"), field(r.OpsPerSec, "%.0f"), allocs,
			field(r.P50Us, "%.1f"), field(r.P99Us, "%.1f"), field(r.CPUUsPerOp, "%.1f"),
			field(r.Ratio, "%.2f×"), field(r.CPURatio, "%.2f×"), field(r.OverheadNs/1000, "%.2f"), note)
	}
}
