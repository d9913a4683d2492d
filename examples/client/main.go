// Command client sends one sealed request to a gateway over any MQTT broker,
// with keys from files, and prints the reply. It also makes key files.
//
//	go run ./examples/client --gen-hmac client-gateway.hmac
//	go run ./examples/client --broker tcp://127.0.0.1:1883 --hmac-key client-gateway.hmac echo hello
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/mqttsec/mqttsec/internal/cli"
	"github.com/mqttsec/mqttsec/mqttsec"
)

func main() {
	if err := run(context.Background(), os.Args[1:], os.Stdout, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "client:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("client", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprintln(fs.Output(), "usage: client [flags] METHOD [PAYLOAD]\n       client --gen-hmac FILE | --gen-ed25519 BASE")
		fs.PrintDefaults()
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
	if help, err := cli.Parse(fs, args, stdout); help || err != nil {
		return err
	}
	if did, err := cli.Generate(*genHMAC, *genEd); did || err != nil {
		return err
	}
	if fs.NArg() < 1 || fs.NArg() > 2 {
		fs.Usage()
		return errors.New("need METHOD and an optional PAYLOAD")
	}
	for _, f := range [][2]string{{"id", *id}, {"server", *server}} {
		if err := cli.CheckID(f[0], f[1]); err != nil {
			return err
		}
	}
	ring, dirID, err := keys.Load(*server)
	if err != nil {
		return err
	}
	self, err := cli.OwnID(fs, "id", *id, keys.Dir, dirID)
	if err != nil {
		return err
	}
	tr, err := conn.Transport(fmt.Sprintf("%s-%d", self, time.Now().UnixNano()))
	if err != nil {
		return err
	}
	c, err := mqttsec.NewClient(mqttsec.Config{ID: self, Transport: tr, Keyring: ring})
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, *timeout)
	defer cancel()
	if err := c.Start(ctx); err != nil {
		return err
	}
	defer c.Close(context.Background())
	var payload []byte
	if fs.NArg() == 2 {
		payload = []byte(fs.Arg(1))
	}
	out, err := c.Request(ctx, *server, fs.Arg(0), payload)
	if err != nil {
		var remote *mqttsec.Error
		if errors.As(err, &remote) {
			return fmt.Errorf("gateway answered %s", strings.TrimPrefix(remote.Error(), "mqttsec: remote error: "))
		}
		return err
	}
	fmt.Fprintf(stdout, "%s\n", out)
	return nil
}
