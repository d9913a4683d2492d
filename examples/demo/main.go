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
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/mqttsec/mqttsec/internal/cli"
)

// options are the command's flags.
type options struct {
	broker   string
	protocol int
	timeout  time.Duration
}

// parseFlags reads the command line; help, printed to stdout, ends the
// command with status 0.
func parseFlags(args []string, stdout, stderr io.Writer) (opt options, help bool, err error) {
	fs := flag.NewFlagSet("demo", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprintln(fs.Output(), "usage: demo [--broker URL] [--protocol 3|5] [--timeout D]")
		fs.PrintDefaults()
	}
	fs.StringVar(&opt.broker, "broker", "", "MQTT broker URL (tcp://host:port); empty starts an embedded broker")
	fs.IntVar(&opt.protocol, "protocol", 5, "MQTT protocol version: 3 (3.1.1) or 5")
	fs.DurationVar(&opt.timeout, "timeout", 60*time.Second, "give up after this long")
	if help, err := cli.Parse(fs, args, stdout); help || err != nil {
		return opt, help, err
	}
	if opt.protocol != 3 && opt.protocol != 5 {
		return opt, false, errors.New("--protocol must be 3 or 5")
	}
	return opt, false, nil
}

func main() {
	opt, help, err := parseFlags(os.Args[1:], os.Stdout, os.Stderr)
	if help {
		return
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "demo:", err)
		os.Exit(2)
	}
	ctx, cancel := context.WithTimeout(context.Background(), opt.timeout)
	defer cancel()
	if err := run(ctx, os.Stdout, opt.broker, opt.protocol); err != nil {
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
