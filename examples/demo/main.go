// Command demo runs mqttsec end to end over an MQTT broker: an embedded
// broker (or --broker URL), a gateway, and one client per protection set,
// all in one process with keys generated on the spot. It sends requests
// under every protection set, broadcasts an encrypted event to two
// recipients, then acts as a hostile party on the broker — tampering with,
// replaying, re-routing and reflecting captured messages — and shows each
// refused. It exits with status 1 if anything does not behave as expected.
//
//	go run ./examples/demo
//	go run ./examples/demo --broker tcp://127.0.0.1:1883 --protocol 3
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"time"
)

func main() {
	broker := flag.String("broker", "", "MQTT broker URL (tcp://host:port); empty starts an embedded broker")
	protocol := flag.Int("protocol", 5, "MQTT protocol version: 3 (3.1.1) or 5")
	timeout := flag.Duration("timeout", 60*time.Second, "give up after this long")
	flag.Parse()
	if *protocol != 3 && *protocol != 5 {
		fmt.Fprintln(os.Stderr, "demo: --protocol must be 3 or 5")
		os.Exit(2)
	}
	ctx, cancel := context.WithTimeout(context.Background(), *timeout)
	defer cancel()
	if err := run(ctx, os.Stdout, *broker, *protocol); err != nil {
		fmt.Fprintln(os.Stderr, "demo:", err)
		os.Exit(1)
	}
}

// report prints one line per check and remembers failures.
type report struct {
	w        io.Writer
	checks   int
	failures int
}

func (r *report) section(title string) { fmt.Fprintf(r.w, "\n%s\n", title) }

func (r *report) check(ok bool, what, detail string) {
	r.checks++
	mark := "ok  "
	if !ok {
		mark = "FAIL"
		r.failures++
	}
	fmt.Fprintf(r.w, "  %s %-42s %s\n", mark, what, detail)
}
