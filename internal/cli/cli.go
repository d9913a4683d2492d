// Package cli holds what the example commands share: flags for the broker
// connection and for key files, turned into a transport and a keyring.
package cli

import (
	"bytes"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"strings"
	"unicode/utf8"

	"github.com/redis/go-redis/v9"

	"github.com/mqttsec/mqttsec/envelope"
	"github.com/mqttsec/mqttsec/internal/keyfile"
	"github.com/mqttsec/mqttsec/mqttsec"
	"github.com/mqttsec/mqttsec/mqttsec/keydir"
)

// Conn is how to reach the broker.
type Conn struct {
	Broker   string
	Protocol int
	CA       string
	Cert     string
	Key      string
	// Username is the MQTT user name ("" for none). Its password comes
	// from PasswordFile or, without one, from the PasswordEnv environment
	// variable; never from a flag, which would show in ps.
	Username     string
	PasswordFile string
}

// PasswordEnv is the environment variable holding the broker password when
// --username is given without --password-file.
const PasswordEnv = "MQTTSEC_PASSWORD"

// maxMQTTString is the longest user name or password an MQTT CONNECT
// packet carries (a two-byte length).
const maxMQTTString = 65535

// Register adds the connection flags to fs.
func (c *Conn) Register(fs *flag.FlagSet) {
	fs.StringVar(&c.Broker, "broker", "tcp://127.0.0.1:1883", "broker URL: tcp://host:port, tls://host:port, ws://, wss:// or unix:///path; host:port alone means tcp://host:port (credentials go in --username, not the URL)")
	fs.IntVar(&c.Protocol, "protocol", 5, "MQTT version: 3 (3.1.1) or 5")
	fs.StringVar(&c.CA, "ca", "", "PEM file of the CA that issued the broker's certificate (tls://)")
	fs.StringVar(&c.Cert, "cert", "", "PEM client certificate, for brokers that require one")
	fs.StringVar(&c.Key, "key", "", "PEM key of the client certificate (mode 600)")
	fs.StringVar(&c.Username, "username", "", "MQTT user name, for brokers that require a password: the password is the first line of --password-file, or else $"+PasswordEnv)
	fs.StringVar(&c.PasswordFile, "password-file", "", "file whose first line is the broker password (mode 600; needs --username)")
}

// credentials returns the user name and password to connect with: the
// password is the first line of PasswordFile (a secret file: group and
// others must not be able to read it), or else the PasswordEnv variable.
// Without a user name the password is not looked up (MQTT 3.1.1 allows no
// password without a user name), and --password-file is an error. A user
// name with no password is allowed: some brokers need only that.
func (c *Conn) credentials() (user string, password []byte, err error) {
	if c.Username == "" {
		if c.PasswordFile != "" {
			return "", nil, errors.New("--password-file needs --username")
		}
		return "", nil, nil
	}
	if len(c.Username) > maxMQTTString || !utf8.ValidString(c.Username) || strings.ContainsRune(c.Username, 0) {
		return "", nil, fmt.Errorf("--username: must be UTF-8 without NUL, at most %d bytes", maxMQTTString)
	}
	if c.PasswordFile != "" {
		data, err := keyfile.ReadPrivate(c.PasswordFile)
		if err != nil {
			return "", nil, fmt.Errorf("--password-file: %w", err)
		}
		line, _, _ := bytes.Cut(data, []byte("\n"))
		line = bytes.TrimSuffix(line, []byte("\r"))
		if len(line) == 0 {
			return "", nil, fmt.Errorf("--password-file %s: the first line is empty", c.PasswordFile)
		}
		if len(line) > maxMQTTString {
			return "", nil, fmt.Errorf("--password-file %s: the password is longer than %d bytes", c.PasswordFile, maxMQTTString)
		}
		return c.Username, bytes.Clone(line), nil
	}
	if env := os.Getenv(PasswordEnv); env != "" {
		if len(env) > maxMQTTString {
			return "", nil, fmt.Errorf("$%s: the password is longer than %d bytes (or use --password-file)", PasswordEnv, maxMQTTString)
		}
		return c.Username, []byte(env), nil
	}
	return c.Username, nil, nil
}

// Transport returns an unstarted transport for clientID, made by
// mqttsec.NewTransport from the flags; errors name the flag to change.
func (c *Conn) Transport(clientID string) (mqttsec.Transport, error) {
	opt, broker, err := c.options(clientID)
	if err != nil {
		return nil, err
	}
	tr, err := mqttsec.NewTransport(broker, opt)
	if err != nil {
		// The flags are checked; what is left is how they go together
		// (TLS files with a --broker URL without TLS).
		return nil, fmt.Errorf("--broker %s: %w", broker, err)
	}
	return tr, nil
}

// options checks the flags and returns what Transport hands to
// mqttsec.NewTransport: the options and the broker URL.
func (c *Conn) options(clientID string) (mqttsec.TransportOptions, string, error) {
	opt := mqttsec.TransportOptions{ClientID: clientID, Protocol: c.Protocol}
	if c.CA != "" || c.Cert != "" || c.Key != "" {
		var err error
		if opt.TLS, err = mqttsec.TLSConfig(mqttsec.TLSFiles{CAFile: c.CA, CertFile: c.Cert, KeyFile: c.Key}); err != nil {
			return opt, "", err
		}
	}
	if c.Protocol != 3 && c.Protocol != 5 {
		return opt, "", errors.New("--protocol must be 3 or 5")
	}
	u, err := mqttsec.ParseBrokerURL(c.Broker)
	if errors.Is(err, mqttsec.ErrCredentialsInURL) {
		return opt, "", fmt.Errorf("--broker: %w: give --username, and the password in --password-file or $%s (a password in a URL or flag shows in process lists and logs)",
			mqttsec.ErrCredentialsInURL, PasswordEnv)
	}
	if err != nil {
		return opt, "", fmt.Errorf("--broker: %w", err)
	}
	if opt.Username, opt.Password, err = c.credentials(); err != nil {
		return opt, "", err
	}
	return opt, u.String(), nil
}

// Keys names the key files for one peer, or a whole key directory.
type Keys struct {
	Dir     string
	HMAC    string
	SignKey string
	PeerPub string
}

// Register adds the key flags to fs.
func (k *Keys) Register(fs *flag.FlagSet) {
	fs.StringVar(&k.Dir, "keys", "", "key directory made by examples/keygen (instead of the single-file flags)")
	fs.StringVar(&k.HMAC, "hmac-key", "", "file with the HMAC key shared with the peer (base64url, mode 600)")
	fs.StringVar(&k.SignKey, "sign-key", "", "own Ed25519 private key (PKCS #8 PEM, mode 600): sign what is sent")
	fs.StringVar(&k.PeerPub, "peer-pub", "", "the peer's Ed25519 public key (PEM): require its signature")
}

// Keyring builds a keyring with one peer: messages to it carry an HMAC
// and/or an Ed25519 signature, and the same is required of its messages.
func (k *Keys) Keyring(peerID string) (*mqttsec.Keyring, error) {
	ring, _, err := k.Load(peerID)
	return ring, err
}

// Load is Keyring, and also returns the id the --keys directory gives its
// party ("" without --keys). With --keys the keyring holds every peer of
// the directory; peerID, unless it is "", must be one of them. The
// single-file flags need a peerID.
func (k *Keys) Load(peerID string) (ring *mqttsec.Keyring, dirID string, err error) {
	if k.Dir != "" {
		if k.HMAC != "" || k.SignKey != "" || k.PeerPub != "" {
			return nil, "", errors.New("--keys replaces --hmac-key, --sign-key and --peer-pub")
		}
		p, err := keydir.Load(k.Dir)
		if err != nil {
			return nil, "", err
		}
		if peerID != "" && p.Keyring.Peer(peerID) == nil {
			return nil, "", fmt.Errorf("%s has no peer %q", k.Dir, peerID)
		}
		return p.Keyring, p.ID, nil
	}
	if peerID == "" {
		return nil, "", errors.New("the single-file flags (--hmac-key, --sign-key, --peer-pub) need the peer's id; a --keys directory names its peers")
	}
	ring, err = k.files(peerID)
	return ring, "", err
}

// files builds the keyring from the single-file flags.
func (k *Keys) files(peerID string) (*mqttsec.Keyring, error) {
	var own mqttsec.Own
	peer := &mqttsec.Peer{Peer: envelope.Peer{ID: peerID}}
	if k.HMAC != "" {
		secret, err := keyfile.ReadSecret(k.HMAC)
		if err != nil {
			return nil, err
		}
		key, err := envelope.NewHMACKey(secret)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", k.HMAC, err)
		}
		peer.HMACKeys = []*envelope.HMACKey{key}
		peer.Send.HMAC = key
		peer.Policy.Require |= envelope.HMAC
	}
	if (k.SignKey == "") != (k.PeerPub == "") {
		return nil, errors.New("--sign-key and --peer-pub go together")
	}
	if k.SignKey != "" {
		priv, err := keyfile.ReadEd25519Private(k.SignKey)
		if err != nil {
			return nil, err
		}
		signer, err := envelope.NewEd25519Signer(priv)
		if err != nil {
			return nil, err
		}
		pub, err := keyfile.ReadEd25519Public(k.PeerPub)
		if err != nil {
			return nil, err
		}
		verifier, err := envelope.NewEd25519Verifier(pub)
		if err != nil {
			return nil, err
		}
		own.Signer = signer
		peer.Send.Signer = signer
		peer.Verifiers = []envelope.Verifier{verifier}
		peer.Policy.Require |= envelope.Signature
	}
	if peer.Policy.Require == 0 {
		return nil, errors.New("give --hmac-key, or --sign-key with --peer-pub, or both")
	}
	return mqttsec.NewKeyring(own, peer)
}

// Generate handles the key-generation flags; it reports whether it did
// anything.
func Generate(hmacPath, ed25519Base string) (bool, error) {
	did := false
	if hmacPath != "" {
		if err := keyfile.WriteSecret(hmacPath, 32); err != nil {
			return true, err
		}
		did = true
	}
	if ed25519Base != "" {
		if err := keyfile.WriteEd25519(ed25519Base); err != nil {
			return true, err
		}
		did = true
	}
	return did, nil
}

// RedisOptions reads a --redis flag: host:port, or a redis:// or rediss://
// (TLS) URL.
func RedisOptions(addr string) (*redis.Options, error) {
	if !strings.Contains(addr, "://") {
		return &redis.Options{Addr: addr}, nil
	}
	opt, err := redis.ParseURL(addr)
	if err != nil {
		return nil, fmt.Errorf("--redis: %w", err)
	}
	return opt, nil
}

// RedisClusterOptions reads a --redis-cluster flag: host:port,host:port,...
// (some of the cluster's nodes; the client finds the others), or a
// redis:// or rediss:// (TLS) URL naming the other nodes with addr=
// parameters (redis.ParseClusterURL):
// rediss://user:password@host1:6379?addr=host2:6379&addr=host3:6379.
func RedisClusterOptions(addrs string) (*redis.ClusterOptions, error) {
	if strings.Contains(addrs, "://") {
		opt, err := redis.ParseClusterURL(addrs)
		if err != nil {
			return nil, fmt.Errorf("--redis-cluster: %w", err)
		}
		return opt, nil
	}
	var list []string
	for _, a := range strings.Split(addrs, ",") {
		if _, _, err := net.SplitHostPort(a); err != nil {
			return nil, fmt.Errorf("--redis-cluster: %q is not host:port: %w", a, err)
		}
		list = append(list, a)
	}
	return &redis.ClusterOptions{Addrs: list}, nil
}

// Parse parses args with fs. -h, -help or --help print fs's usage to
// stdout and return help = true with no error: the command stops there
// and exits 0. Any other problem prints to fs's output, as flag does.
// fs.Usage must write to fs.Output().
func Parse(fs *flag.FlagSet, args []string, stdout io.Writer) (help bool, err error) {
	out := fs.Output()
	var buf bytes.Buffer
	fs.SetOutput(&buf)
	err = fs.Parse(args)
	fs.SetOutput(out)
	if errors.Is(err, flag.ErrHelp) {
		_, err = stdout.Write(buf.Bytes())
		return true, err
	}
	out.Write(buf.Bytes())
	return false, err
}

// PrintDefaults prints fs's flags as fs.PrintDefaults does, to fs.Output(),
// leaving out those whose names start with hidePrefix (when it is not
// empty).
func PrintDefaults(fs *flag.FlagSet, hidePrefix string) {
	shown := flag.NewFlagSet(fs.Name(), flag.ContinueOnError)
	shown.SetOutput(fs.Output())
	fs.VisitAll(func(f *flag.Flag) {
		if hidePrefix == "" || !strings.HasPrefix(f.Name, hidePrefix) {
			shown.Var(f.Value, f.Name, f.Usage)
			shown.Lookup(f.Name).DefValue = f.DefValue
		}
	})
	shown.PrintDefaults()
}

// IDRule says what an id is (envelope.ValidID).
var IDRule = fmt.Sprintf("an id is 1 to %d bytes of ASCII letters, digits and - . _ : @", envelope.MaxIDLength)

// CheckID refuses an invalid id given with the flag named name, saying
// what an id may hold.
func CheckID(name, id string) error {
	if envelope.ValidID(id) {
		return nil
	}
	return fmt.Errorf("--%s %q: %s", name, id, IDRule)
}

// OwnID returns the id a command runs as, given the value of its flag
// named name (with its default) and the id of its --keys directory dir
// ("" without one). The directory's id is used unless the flag was given;
// given and different, it is an error naming both. The id is checked
// (CheckID).
func OwnID(fs *flag.FlagSet, name, flagID, dir, dirID string) (string, error) {
	given := false
	fs.Visit(func(f *flag.Flag) { given = given || f.Name == name })
	switch {
	case given || dirID == "":
		if err := CheckID(name, flagID); err != nil {
			return "", err
		}
		if dirID != "" && flagID != dirID {
			return "", fmt.Errorf("--%s %q differs from the id %q of the key directory %s: leave out --%s, or give that id", name, flagID, dirID, dir, name)
		}
		return flagID, nil
	}
	return dirID, nil // keydir.Load checked it
}
