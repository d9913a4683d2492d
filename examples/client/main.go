// Command client sends one sealed request to a gateway over any MQTT broker,
// with keys from files, and prints the reply. It also makes key files.
//
//	go run ./examples/client --gen-hmac client-gateway.hmac
//	go run ./examples/client --broker tcp://127.0.0.1:1883 --hmac-key client-gateway.hmac echo hello
//
// Errors go to stderr as "client: ..." and the exit status says what
// kind of failure it was:
//
//	0  ok: the reply was printed (or the keys written, or -h)
//	1  anything else (e.g. a malformed error reply, a publish the broker refused)
//	2  usage: a flag that does not parse, no METHOD or too many arguments
//	3  configuration: keys (files, directory, peer), ids (--id, --server),
//	   --broker or --protocol not usable, a key file that cannot be written
//	4  cannot connect to the broker (or subscribe to the reply topic)
//	5  no reply from the gateway within --timeout (mqttsec.ErrNoReply)
//	6  the gateway answered with an error reply (*mqttsec.Error): its code and message are printed
//	7  the gateway's reply was refused for clock skew (mqttsec.ErrClockSkew)
//	8  the request was not acknowledged by the broker (mqttsec.ErrUnacknowledged)
//
// -v logs to stderr what the client saw while waiting: the connection to
// the broker, and each reply it refused and why.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"
	"time"

	"github.com/mqttsec/mqttsec/internal/cli"
	"github.com/mqttsec/mqttsec/mqttsec"
)

func main() {
	if err := run(context.Background(), os.Args[1:], os.Stdout, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "client:", err)
		os.Exit(exitCode(err))
	}
}

// Exit statuses; see the package doc.
const (
	exitOK         = 0
	exitOther      = 1
	exitUsage      = 2
	exitConfig     = 3
	exitConnect    = 4
	exitNoReply    = 5
	exitErrorReply = 6
	exitClockSkew  = 7
	exitUnacked    = 8
)

// exitStatuses is the table of exit statuses the usage ends with.
const exitStatuses = `exit status:
  0  ok
  1  anything else
  2  usage: bad flag, no METHOD, too many arguments
  3  configuration: keys, ids, --broker, --protocol
  4  cannot connect to the broker (or subscribe to the reply topic)
  5  no reply from the gateway within --timeout
  6  the gateway answered with an error reply (its code and message are printed)
  7  the gateway's reply was refused for clock skew
  8  the request was not acknowledged by the broker
`

// exitError is an error of run with the exit status it stands for.
type exitError struct {
	code int
	err  error
}

func (e *exitError) Error() string { return e.err.Error() }
func (e *exitError) Unwrap() error { return e.err }

// fail gives err the exit status code (nil stays nil).
func fail(code int, err error) error {
	if err == nil {
		return nil
	}
	return &exitError{code: code, err: err}
}

// exitCode is the exit status for run's error.
func exitCode(err error) int {
	if err == nil {
		return exitOK
	}
	var e *exitError
	if errors.As(err, &e) {
		return e.code
	}
	return exitOther
}

// requestCode is the exit status for an error of Client.Request.
func requestCode(err error) int {
	var remote *mqttsec.Error
	switch {
	case errors.As(err, &remote):
		return exitErrorReply
	case errors.Is(err, mqttsec.ErrClockSkew):
		return exitClockSkew
	case errors.Is(err, mqttsec.ErrUnacknowledged):
		return exitUnacked
	case errors.Is(err, mqttsec.ErrNoReply):
		return exitNoReply
	case errors.Is(err, mqttsec.ErrUnknownPeer), errors.Is(err, mqttsec.ErrNoEncryptionKey), errors.Is(err, mqttsec.ErrInvalidConfig):
		return exitConfig
	}
	return exitOther
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("client", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprintln(fs.Output(), "usage: client [flags] METHOD [PAYLOAD]\n       client --gen-hmac FILE | --gen-ed25519 BASE")
		fs.PrintDefaults()
		fmt.Fprint(fs.Output(), exitStatuses)
	}
	var conn cli.Conn
	var keys cli.Keys
	conn.Register(fs)
	keys.Register(fs)
	id := fs.String("id", "client", "this client's id (with --keys: the key directory's)")
	server := fs.String("server", "gateway", "the gateway's id")
	timeout := fs.Duration("timeout", 10*time.Second, "how long to wait for the reply")
	genHMAC := fs.String("gen-hmac", "", "write a new 32-byte HMAC key to this file (mode 600) and exit")
	genEd := fs.String("gen-ed25519", "", "write a new Ed25519 key pair to BASE.key and BASE.pub and exit")
	verbose := fs.Bool("v", false, "log to stderr the connection and each reply refused while waiting, and why")
	if help, err := cli.Parse(fs, args, stdout); help || err != nil {
		return fail(exitUsage, err)
	}
	if did, err := cli.Generate(*genHMAC, *genEd); did || err != nil {
		return fail(exitConfig, err)
	}
	if fs.NArg() < 1 || fs.NArg() > 2 {
		fs.Usage()
		return fail(exitUsage, errors.New("need METHOD and an optional PAYLOAD"))
	}
	c, err := newClient(fs, &conn, &keys, *id, *server, *verbose, stderr)
	if err != nil {
		return fail(exitConfig, err)
	}
	ctx, cancel := context.WithTimeout(ctx, *timeout)
	defer cancel()
	if err := c.Start(ctx); err != nil {
		return fail(exitConnect, fmt.Errorf("cannot connect to the broker %s: %w", conn.Broker, err))
	}
	defer c.Close(context.Background())
	var payload []byte
	if fs.NArg() == 2 {
		payload = []byte(fs.Arg(1))
	}
	out, err := c.Request(ctx, *server, fs.Arg(0), payload)
	if err != nil {
		return requestFailed(*server, err)
	}
	fmt.Fprintf(stdout, "%s\n", out)
	return nil
}

// newClient makes the client: id and server checked, keys loaded, its id
// from the key directory if there is one, its transport, and with
// verbose its log on stderr.
func newClient(fs *flag.FlagSet, conn *cli.Conn, keys *cli.Keys, id, server string, verbose bool, stderr io.Writer) (*mqttsec.Client, error) {
	for _, f := range [][2]string{{"id", id}, {"server", server}} {
		if err := cli.CheckID(f[0], f[1]); err != nil {
			return nil, err
		}
	}
	ring, dirID, err := keys.Load(server)
	if err != nil {
		return nil, err
	}
	self, err := cli.OwnID(fs, "id", id, keys.Dir, dirID)
	if err != nil {
		return nil, err
	}
	tr, err := conn.Transport(fmt.Sprintf("%s-%d", self, time.Now().UnixNano()))
	if err != nil {
		return nil, err
	}
	cfg := mqttsec.Config{ID: self, Transport: tr, Keyring: ring}
	if verbose {
		// Refusals are logged at RejectLevel (Info); connection events at
		// Info and Warn. Without -v the SDK's log is discarded, as before.
		cfg.Logger = slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: slog.LevelInfo}))
		cfg.RejectLevel = slog.LevelInfo
	}
	return mqttsec.NewClient(cfg)
}

// requestFailed is run's error for a request to server that failed with
// err, with the exit status of its class; a gateway's error reply is
// given as its code and message.
func requestFailed(server string, err error) error {
	code := requestCode(err)
	var remote *mqttsec.Error
	if errors.As(err, &remote) {
		// The gateway's code and message, without the SDK's prefix.
		err = fmt.Errorf("%s answered with error %s", server, strings.TrimPrefix(remote.Error(), "mqttsec: remote error: "))
	}
	return fail(code, err)
}
