// Command keygen creates and inspects key directories (see package
// mqttsec/keydir for the layout):
//
//	keygen init   --dir keys/gateway --id gateway [--rsa] [--force]
//	keygen export --dir keys/gateway --to keys/client/peers/gateway [--force]
//	keygen pair   --dir keys/gateway --peer-dir keys/client [--hmac] [--hotp] [--psk] [--send "hmac sig"] [--sign es256] [--force]
//	keygen show   --dir keys/gateway
//	keygen acl    --dir keys/gateway [--out FILE] [--prefix P] [--force]
//
// init writes the party's own keys (mode 600) and prints their public key
// ids; export writes the public keys for the other side; pair gives two
// parties shared secrets and a peer.conf for each other; acl writes a
// Mosquitto acl_file (mqttsec.Topics.MosquittoACL) for the directory's
// party and its peers. Existing files are never overwritten without --force.
package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"

	"github.com/mqttsec/mqttsec/internal/cli"
	"github.com/mqttsec/mqttsec/internal/keyfile"
	"github.com/mqttsec/mqttsec/mqttsec"
	"github.com/mqttsec/mqttsec/mqttsec/keydir"
)

func main() {
	if err := run(os.Args[1:], os.Stdout, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "keygen:", err)
		os.Exit(1)
	}
}

const usage = "usage: keygen init|export|pair|show|acl [flags]  (keygen CMD -h for flags)"

// synopsis is each command's usage line.
var synopsis = map[string]string{
	"init":   "keygen init --dir DIR --id ID [--rsa] [--force]",
	"export": "keygen export --dir DIR --to PEERDIR [--force]",
	"pair":   `keygen pair --dir DIR --peer-dir DIR [--hmac] [--hotp] [--psk] [--send "hmac sig"] [--sign ALG] [--force]`,
	"show":   "keygen show --dir DIR",
	"acl":    "keygen acl --dir DIR [--out FILE] [--prefix P] [--force]",
}

// aclHelp says how acl maps a key directory onto the ACL.
const aclHelp = `Writes a Mosquitto acl_file for the party of DIR and every peer under
DIR/peers, to stdout or to FILE (mode 0644). Each MQTT username must be the
mqttsec id (with mTLS: the certificate's common name and
use_identity_as_username true). The party of DIR is the server (gateway):
it reads its own requests, writes replies and reads its peers' events; each
peer is a client: it calls the party only, reads its own replies and the
party's events. Every identity publishes only its own events.`

func run(args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		return errors.New(usage)
	}
	switch args[0] {
	case "-h", "-help", "--help", "help":
		fmt.Fprintln(stdout, usage)
		for _, cmd := range []string{"init", "export", "pair", "show", "acl"} {
			fmt.Fprintln(stdout, "  "+synopsis[cmd])
		}
		return nil
	}
	err := command(args, stdout, stderr)
	if errors.Is(err, keydir.ErrExists) {
		// The library's error cannot know the flag that overwrites.
		err = fmt.Errorf("%w: add --force to overwrite", err)
	}
	return err
}

func command(args []string, stdout, stderr io.Writer) error {
	run, ok := subcommands[args[0]]
	if !ok {
		return errors.New(usage)
	}
	fs := flag.NewFlagSet("keygen "+args[0], flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprintln(fs.Output(), "usage:", synopsis[args[0]])
		if args[0] == "acl" {
			fmt.Fprintln(fs.Output(), aclHelp)
		}
		fs.PrintDefaults()
	}
	c := &cmd{
		fs:     fs,
		dir:    fs.String("dir", "", "the party's key directory"),
		force:  fs.Bool("force", false, "overwrite existing files"),
		args:   args[1:],
		stdout: stdout,
	}
	return run(c)
}

// cmd is what every subcommand shares: its flag set with --dir and
// --force, its arguments and where it prints.
type cmd struct {
	fs     *flag.FlagSet
	dir    *string
	force  *bool
	args   []string
	stdout io.Writer
}

// parse parses the arguments once the subcommand has added its flags;
// help is true when they asked for the usage, which was printed.
func (c *cmd) parse() (help bool, err error) { return cli.Parse(c.fs, c.args, c.stdout) }

// subcommands runs each subcommand: it adds its flags to c.fs, parses, and
// does its work.
var subcommands = map[string]func(c *cmd) error{
	"init":   initCmd,
	"export": exportCmd,
	"pair":   pairCmd,
	"show":   showCmd,
	"acl":    aclCmd,
}

// initCmd is keygen init.
func initCmd(c *cmd) error {
	id := c.fs.String("id", "", "the party's id")
	withRSA := c.fs.Bool("rsa", false, "also create RSA-2048 signing and RSA-OAEP keys")
	if help, err := c.parse(); help || err != nil {
		return err
	}
	if *c.dir == "" || *id == "" {
		return errors.New("init needs --dir and --id")
	}
	if err := cli.CheckID("id", *id); err != nil {
		return err
	}
	if err := keydir.Init(*c.dir, *id, keydir.InitOptions{RSA: *withRSA, Force: *c.force}); err != nil {
		return err
	}
	return show(*c.dir, c.stdout)
}

// exportCmd is keygen export.
func exportCmd(c *cmd) error {
	to := c.fs.String("to", "", "directory to write the public keys to (the other side's peers/<id>)")
	if help, err := c.parse(); help || err != nil {
		return err
	}
	if *c.dir == "" || *to == "" {
		return errors.New("export needs --dir and --to")
	}
	if err := keydir.Export(*c.dir, *to, *c.force); err != nil {
		return err
	}
	fmt.Fprintf(c.stdout, "public keys of %s written to %s\n", *c.dir, *to)
	return nil
}

// pairCmd is keygen pair.
func pairCmd(c *cmd) error {
	peerDir := c.fs.String("peer-dir", "", "the other party's key directory")
	hmac := c.fs.Bool("hmac", false, "a shared HMAC key")
	hotp := c.fs.Bool("hotp", false, "a shared HOTP secret")
	psk := c.fs.Bool("psk", false, "a shared AES-256-GCM key")
	send := c.fs.String("send", "", `peer.conf send line for both sides (default "hmac")`)
	sign := c.fs.String("sign", "", "peer.conf sign line for both sides: the own key that signs, ed25519, es256 or rsa (default: the first present, ed25519); es256 for a device of the C port")
	if help, err := c.parse(); help || err != nil {
		return err
	}
	if *c.dir == "" || *peerDir == "" {
		return errors.New("pair needs --dir and --peer-dir")
	}
	err := keydir.Pair(*c.dir, *peerDir, keydir.PairOptions{HMAC: *hmac, HOTP: *hotp, PSK: *psk, Send: *send, Sign: *sign, Force: *c.force})
	if err != nil {
		return err
	}
	fmt.Fprintf(c.stdout, "%s and %s now share the requested secrets (files mode 600)\n", *c.dir, *peerDir)
	return nil
}

// showCmd is keygen show.
func showCmd(c *cmd) error {
	if help, err := c.parse(); help || err != nil {
		return err
	}
	if *c.dir == "" {
		return errors.New("show needs --dir")
	}
	return show(*c.dir, c.stdout)
}

// aclCmd is keygen acl.
func aclCmd(c *cmd) error {
	out := c.fs.String("out", "", "file to write the ACL to, mode 0644 (default: stdout)")
	prefix := c.fs.String("prefix", mqttsec.DefaultTopicPrefix, "first topic level(s) of the topic scheme")
	if help, err := c.parse(); help || err != nil {
		return err
	}
	if *c.dir == "" {
		return errors.New("acl needs --dir")
	}
	acl, err := dirACL(*c.dir, mqttsec.Topics{Prefix: *prefix})
	if err != nil {
		return err
	}
	if *out == "" {
		_, err = c.stdout.Write(acl)
		return err
	}
	if err := keyfile.Write(*out, acl, 0o644, *c.force); err != nil {
		return err
	}
	fmt.Fprintf(c.stdout, "Mosquitto ACL for %s written to %s\n", *c.dir, *out)
	return nil
}

// aclIdentities maps a key directory onto ACL identities: the party serves
// and reads its peers' events; each peer calls the party and reads its
// events.
func aclIdentities(party string, peers []string) []mqttsec.ACLIdentity {
	ids := []mqttsec.ACLIdentity{{ID: party, Serves: true, EventsFrom: peers}}
	for _, p := range peers {
		ids = append(ids, mqttsec.ACLIdentity{ID: p, Calls: []string{party}, EventsFrom: []string{party}})
	}
	return ids
}

// dirACL loads dir and returns the Mosquitto ACL for its party and peers.
func dirACL(dir string, topics mqttsec.Topics) ([]byte, error) {
	p, err := keydir.Load(dir)
	if err != nil {
		return nil, err
	}
	return topics.MosquittoACL(aclIdentities(p.ID, p.Keyring.PeerIDs()))
}

func show(dir string, w io.Writer) error {
	out, err := keydir.Describe(dir)
	if err != nil {
		return err
	}
	_, err = io.WriteString(w, out)
	return err
}
