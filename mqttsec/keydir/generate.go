package keydir

import (
	"crypto/ecdh"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/hpke"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/mqttsec/mqttsec/envelope"
	"github.com/mqttsec/mqttsec/internal/keyfile"
	"github.com/mqttsec/mqttsec/mqttsec"
)

// ErrExists means a file would be overwritten without Force (the Force
// field of InitOptions or PairOptions, Export's force; keygen's --force).
var ErrExists = keyfile.ErrExists

// write creates path, and the directories above it, with data and mode;
// an existing file is ErrExists unless force.
func write(path string, data []byte, mode os.FileMode, force bool) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return err
	}
	return keyfile.Write(path, data, mode, force)
}

func pemPKCS8(k any) ([]byte, error) {
	der, err := x509.MarshalPKCS8PrivateKey(k)
	if err != nil {
		return nil, err
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), nil
}

func pemPKIX(k any) ([]byte, error) {
	der, err := x509.MarshalPKIXPublicKey(k)
	if err != nil {
		return nil, err
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}), nil
}

// InitOptions chooses what Init creates.
type InitOptions struct {
	RSA   bool // also RSA-2048 signing and RSA-OAEP keys (slower; for RSA-only peers)
	Force bool // overwrite existing files
}

// Init creates dir/self: the id and fresh Ed25519, ECDSA P-256, X25519 and
// MLKEM768X25519 keys (and RSA keys if asked), secret files with mode 600.
func Init(dir, id string, opt InitOptions) error {
	if !envelope.ValidID(id) {
		return fmt.Errorf("%w: keydir: invalid id %q: an id is 1 to %d bytes of ASCII letters, digits and - . _ : @", mqttsec.ErrInvalidConfig, id, envelope.MaxIDLength)
	}
	self := filepath.Join(dir, "self")
	if err := write(filepath.Join(self, "id"), []byte(id+"\n"), 0o644, opt.Force); err != nil {
		return err
	}
	_, edPriv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return err
	}
	es, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return err
	}
	keys := map[string]any{"ed25519.key": edPriv, "es256.key": es}
	if opt.RSA {
		for _, name := range []string{"rsa-sign.key", "rsa-oaep.key"} {
			k, err := rsa.GenerateKey(rand.Reader, 2048)
			if err != nil {
				return err
			}
			keys[name] = k
		}
	}
	for name, k := range keys {
		data, err := pemPKCS8(k)
		if err != nil {
			return err
		}
		if err := write(filepath.Join(self, name), data, 0o600, opt.Force); err != nil {
			return err
		}
	}
	xk, err := ecdh.X25519().GenerateKey(rand.Reader)
	if err != nil {
		return err
	}
	data, err := pemPKCS8(xk)
	if err != nil {
		return err
	}
	if err := write(filepath.Join(self, "x25519.key"), data, 0o600, opt.Force); err != nil {
		return err
	}
	xw, err := hpke.MLKEM768X25519().GenerateKey()
	if err != nil {
		return err
	}
	seed, err := xw.Bytes()
	if err != nil {
		return err
	}
	if err := write(filepath.Join(self, "xwing.key"), []byte(b64.EncodeToString(seed)+"\n"), 0o600, opt.Force); err != nil {
		return err
	}
	return nil
}

// Export writes dir's public keys into outDir (normally the other side's
// peers/<this id>/ directory), ready to copy.
func Export(dir, outDir string, force bool) error {
	self := filepath.Join(dir, "self")
	for _, f := range []struct{ key, pub string }{{"ed25519.key", "ed25519.pub"}, {"es256.key", "es256.pub"}, {"rsa-sign.key", "rsa-sign.pub"}, {"rsa-oaep.key", "rsa-oaep.pub"}, {"x25519.key", "x25519.pub"}} {
		path := filepath.Join(self, f.key)
		if !exists(path) {
			continue
		}
		k, err := parsePrivatePEM(path)
		if err != nil {
			return err
		}
		var pub any
		switch key := k.(type) {
		case ed25519.PrivateKey:
			pub = key.Public()
		case *ecdsa.PrivateKey:
			pub = &key.PublicKey
		case *rsa.PrivateKey:
			pub = &key.PublicKey
		case *ecdh.PrivateKey:
			pub = key.PublicKey()
		}
		data, err := pemPKIX(pub)
		if err != nil {
			return err
		}
		if err := write(filepath.Join(outDir, f.pub), data, 0o644, force); err != nil {
			return err
		}
	}
	for name, kem := range map[string]hpke.KEM{"xwing": hpke.MLKEM768X25519()} {
		path := filepath.Join(self, name+".key")
		if !exists(path) {
			continue
		}
		secrets, err := secretLines(path)
		if err != nil {
			return err
		}
		var b strings.Builder
		for _, s := range secrets {
			priv, err := kem.NewPrivateKey(s)
			if err != nil {
				return &FileError{Path: path, Line: 0, Msg: "not a private key of this kind"}
			}
			b.WriteString(b64.EncodeToString(priv.PublicKey().Bytes()) + "\n")
		}
		if err := write(filepath.Join(outDir, name+".pub"), []byte(b.String()), 0o644, force); err != nil {
			return err
		}
	}
	return nil
}

// PairOptions chooses the shared secrets Pair creates and the peer.conf it
// writes on both sides.
type PairOptions struct {
	HMAC, HOTP, PSK bool
	// Send is the peer.conf send line for both sides, e.g. "hmac sig";
	// empty means "hmac".
	Send string
	// Sign, if set, is the peer.conf sign line for both sides: the own key
	// ("ed25519", "es256" or "rsa") that signs for the peer. Empty leaves
	// the default, the first own signing key present (ed25519 first); a
	// device of the C port's profile verifies ES256 only, so pair with it
	// using "es256".
	Sign  string
	Force bool
}

// Pair gives two parties (directories made by Init) fresh shared secrets
// and a peer.conf for each other: a/peers/<b's id>/ and b/peers/<a's id>/.
func Pair(dirA, dirB string, opt PairOptions) error {
	idOf := func(dir string) (string, error) {
		data, err := readPublic(filepath.Join(dir, "self", "id"))
		return strings.TrimSpace(string(data)), err
	}
	a, err := idOf(dirA)
	if err != nil {
		return err
	}
	b, err := idOf(dirB)
	if err != nil {
		return err
	}
	send := opt.Send
	if send == "" {
		send = "hmac"
	}
	conf := []byte("send " + send + "\n")
	if opt.Sign != "" {
		conf = append(conf, "sign "+opt.Sign+"\n"...)
	}
	if _, err := parsePeerConfData("peer.conf", conf); err != nil {
		return err
	}
	sides := []string{filepath.Join(dirA, "peers", b), filepath.Join(dirB, "peers", a)}
	for _, s := range []struct {
		on   bool
		name string
		size int
	}{{opt.HMAC, "hmac.key", 32}, {opt.HOTP, "hotp.key", 20}, {opt.PSK, "psk.key", 32}} {
		if !s.on {
			continue
		}
		secret := make([]byte, s.size)
		rand.Read(secret)
		line := []byte(b64.EncodeToString(secret) + "\n")
		for _, d := range sides {
			if err := write(filepath.Join(d, s.name), line, 0o600, opt.Force); err != nil {
				return err
			}
		}
	}
	for _, d := range sides {
		if err := write(filepath.Join(d, "peer.conf"), conf, 0o644, opt.Force); err != nil {
			return err
		}
	}
	return nil
}

// Describe lists dir's public keys with their key ids, for people.
func Describe(dir string) (string, error) {
	p, err := Load(dir)
	if err != nil {
		return "", err
	}
	own, signers, err := loadSelf(filepath.Join(dir, "self"))
	if err != nil {
		return "", err
	}
	var b strings.Builder
	fmt.Fprintf(&b, "id %s\n", p.ID)
	for _, alg := range signerOrder {
		if s := signers[alg]; s != nil {
			fmt.Fprintf(&b, "signing    %-20s key id %s\n", s.Algorithm(), s.KeyID())
		}
	}
	for _, id := range own.Identities {
		fmt.Fprintf(&b, "decryption %-20s key id %s\n", id.Algorithm(), id.KeyID())
	}
	pubs, err := publicParts(filepath.Join(dir, "self"))
	if err != nil {
		return "", err
	}
	for _, pp := range pubs {
		fmt.Fprintf(&b, "public %s %s\n", pp[0], pp[1])
	}
	for _, peer := range p.Keyring.PeerIDs() {
		ep := p.Keyring.Peer(peer)
		fmt.Fprintf(&b, "peer %s: requires %s; %d HMAC, %d HOTP, %d pre-shared, %d signing keys\n",
			peer, ep.Policy.Require, len(ep.HMACKeys), len(ep.HOTPKeys), len(ep.AEADKeys), len(ep.Verifiers))
	}
	return b.String(), nil
}

// publicParts returns (file, base64url public key) pairs for the own keys:
// the bytes key ids are derived from (SPEC.md §6).
func publicParts(self string) ([][2]string, error) {
	var out [][2]string
	for _, name := range []string{"ed25519.key", "es256.key", "rsa-sign.key", "x25519.key", "rsa-oaep.key"} {
		path := filepath.Join(self, name)
		if !exists(path) {
			continue
		}
		k, err := parsePrivatePEM(path)
		if err != nil {
			return nil, err
		}
		var pub []byte
		switch key := k.(type) {
		case ed25519.PrivateKey:
			pub = key.Public().(ed25519.PublicKey)
		case *ecdsa.PrivateKey:
			pub, err = key.PublicKey.Bytes()
		case *rsa.PrivateKey:
			pub, err = x509.MarshalPKIXPublicKey(&key.PublicKey)
		case *ecdh.PrivateKey:
			pub = key.PublicKey().Bytes()
		}
		if err != nil {
			return nil, err
		}
		out = append(out, [2]string{strings.TrimSuffix(name, ".key"), b64.EncodeToString(pub)})
	}
	if path := filepath.Join(self, "xwing.key"); exists(path) {
		secrets, err := secretLines(path)
		if err != nil {
			return nil, err
		}
		for _, s := range secrets {
			priv, err := hpke.MLKEM768X25519().NewPrivateKey(s)
			if err != nil {
				return nil, &FileError{Path: path, Line: 0, Msg: "not an MLKEM768-X25519 seed"}
			}
			out = append(out, [2]string{"xwing", b64.EncodeToString(priv.PublicKey().Bytes())})
		}
	}
	return out, nil
}
