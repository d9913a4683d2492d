// Package keydir keeps a party's keys in a directory and loads them into an
// mqttsec.Keyring, with permission checks, key rotation and hot reload.
//
// # Layout
//
//	<dir>/self/id              this party's id (one line)
//	<dir>/self/ed25519.key     own signing keys, PEM PKCS #8 (mode 600)
//	<dir>/self/es256.key
//	<dir>/self/rsa-sign.key
//	<dir>/self/x25519.key      own decryption keys (mode 600): X25519 and
//	<dir>/self/xwing.key       RSA as PEM PKCS #8, MLKEM768-X25519 (no PEM
//	<dir>/self/rsa-oaep.key    form yet) as base64url 32-byte seeds
//	<dir>/peers/<id>/peer.conf what the peer must send and how to seal for it
//	<dir>/peers/<id>/hmac.key  shared secrets, one base64url secret per
//	<dir>/peers/<id>/hotp.key  line (mode 600); the first line is the
//	<dir>/peers/<id>/psk.key   primary, used for sending; all are accepted
//	<dir>/peers/<id>/ed25519.pub  the peer's signing keys, PEM PUBLIC KEY
//	<dir>/peers/<id>/es256.pub    blocks; all are accepted
//	<dir>/peers/<id>/rsa-sign.pub
//	<dir>/peers/<id>/xwing.pub    the peer's encryption keys: base64url
//	<dir>/peers/<id>/x25519.pub   lines for MLKEM768-X25519, PEM for X25519
//	<dir>/peers/<id>/rsa-oaep.pub and RSA; the first key of the first
//	                              file present (in this order) is used
//
// Secret files must not be readable, and the peers' public key files and
// peer.conf not writable, by group or others: Load refuses them
// (ErrPermissions, ErrWritable).
//
// peer.conf has one directive per line ('#' comments):
//
//	send hmac sig enc     protections for messages to the peer
//	require hmac sig      protections its messages must carry (default: as send)
//	sign ed25519          own key that signs for it (default: the first present)
//	hotp-digits 8         HOTP code length (default 6)
//	ttl 30s               lifetime of messages to it (default 60s)
//	clockless             the peer has no real-time clock: answer its time
//	                      requests whatever their timestamps (SPEC.md §10)
//
// # Rotation
//
// Add the new key everywhere it must be accepted (a second line, another
// PEM block, a new .pub file), reload, make it the primary on the sending
// side (first line), reload, then remove the old key. No message is lost:
// receivers accept every listed key, and key ids say which one was used.
package keydir

import (
	"bufio"
	"bytes"
	"context"
	"crypto/ecdh"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/hpke"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/mqttsec/mqttsec/envelope"
	"github.com/mqttsec/mqttsec/internal/keyfile"
	"github.com/mqttsec/mqttsec/internal/poll"
	"github.com/mqttsec/mqttsec/mqttsec"
	"github.com/mqttsec/mqttsec/rsasign"
)

// FileError is a problem with one file (and line, if known). It never
// contains key material.
type FileError struct {
	Path string
	Line int
	Msg  string
	Err  error // the underlying error, if any (ErrPermissions, say)
}

// Unwrap returns the underlying error.
func (e *FileError) Unwrap() error { return e.Err }

func (e *FileError) Error() string {
	if e.Line > 0 {
		return fmt.Sprintf("%s:%d: %s", e.Path, e.Line, e.Msg)
	}
	return e.Path + ": " + e.Msg
}

var (
	// ErrPermissions is wrapped by errors about secret files readable by
	// group or others.
	ErrPermissions = keyfile.ErrPermissions
	// ErrNotRegular is wrapped by errors about a key file that is a
	// directory, device or pipe.
	ErrNotRegular = keyfile.ErrNotRegular
	// ErrTooLarge is wrapped by errors about a file larger than any key
	// file needs to be (1 MiB).
	ErrTooLarge = keyfile.ErrTooLarge
	// ErrWritable is wrapped by errors about a peer's public key file or
	// peer.conf that group or others may write: whoever can write it can
	// put their own key in the peer's place, or lower what the peer must
	// send.
	ErrWritable = errors.New("file must not be writable by group or others (chmod go-w)")
)

// b64 writes the base64url lines of key files; they are read with
// keyfile.DecodeLine, which refuses a line break inside a line.
var b64 = base64.RawURLEncoding

// Party is what Load found: the party's id and its keyring.
type Party struct {
	ID      string
	Keyring *mqttsec.Keyring
}

// Load reads the directory. A problem with a file is a *FileError naming
// it (and the line, where there is one), never showing key material.
func Load(dir string) (*Party, error) {
	idData, err := readPublic(filepath.Join(dir, "self", "id"))
	if err != nil {
		return nil, err
	}
	id := strings.TrimSpace(string(idData))
	if !envelope.ValidID(id) {
		return nil, &FileError{Path: filepath.Join(dir, "self", "id"), Line: 1, Msg: "not a valid id"}
	}
	own, signers, err := loadSelf(filepath.Join(dir, "self"))
	if err != nil {
		return nil, err
	}
	entries, err := os.ReadDir(filepath.Join(dir, "peers"))
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return nil, err
	}
	var peers []*mqttsec.Peer
	for _, e := range entries {
		if !e.IsDir() {
			continue
		}
		p, err := loadPeer(filepath.Join(dir, "peers", e.Name()), e.Name(), signers)
		if err != nil {
			return nil, err
		}
		peers = append(peers, p)
	}
	ring, err := mqttsec.NewKeyring(own, peers...)
	if err != nil {
		return nil, err
	}
	return &Party{ID: id, Keyring: ring}, nil
}

// readPrivate reads a secret file after checking its permissions.
func readPrivate(path string) ([]byte, error) {
	return readFile(path, keyfile.ReadPrivate)
}

// readPublic reads a file that holds no secret.
func readPublic(path string) ([]byte, error) {
	return readFile(path, keyfile.ReadPublic)
}

// writableError is a peer's public key file that group or others may
// write.
type writableError struct{ mode os.FileMode }

func (e *writableError) Error() string { return fmt.Sprintf("%v (mode %v)", ErrWritable, e.mode) }

// readPeerPublic reads a peer's public key file. Like a secret file's, its
// permissions are checked on the file that was opened, not on the path:
// group and others must not be able to write it.
func readPeerPublic(path string) ([]byte, error) {
	return readFile(path, func(path string) ([]byte, error) {
		f, err := keyfile.OpenRegular(path, os.O_RDONLY, 0)
		if err != nil {
			return nil, err
		}
		defer f.Close()
		st, err := f.Stat()
		if err != nil {
			return nil, err
		}
		if perm := st.Mode().Perm(); perm&0o022 != 0 {
			return nil, &writableError{mode: perm}
		}
		data, err := io.ReadAll(io.LimitReader(f, keyfile.MaxSize+1))
		if err != nil {
			return nil, err
		}
		if len(data) > keyfile.MaxSize {
			return nil, &fs.PathError{Op: "read", Path: path, Err: ErrTooLarge}
		}
		return data, nil
	})
}

// readFile reads a file of the directory with read, which bounds its size.
// Every error is a FileError naming the file, wrapping what read returned
// (so that errors.Is(err, fs.ErrNotExist) or ErrTooLarge still holds).
func readFile(path string, read func(string) ([]byte, error)) ([]byte, error) {
	data, err := read(path)
	if err == nil {
		return data, nil
	}
	var pe *keyfile.PermissionError
	if errors.As(err, &pe) {
		return nil, &FileError{Path: path, Msg: fmt.Sprintf("%v (mode %v)", ErrPermissions, pe.Mode), Err: ErrPermissions}
	}
	var we *writableError
	if errors.As(err, &we) {
		return nil, &FileError{Path: path, Msg: we.Error(), Err: ErrWritable}
	}
	msg := err.Error()
	var pathErr *fs.PathError
	if errors.As(err, &pathErr) {
		msg = pathErr.Err.Error() // the path is FileError's own
	}
	return nil, &FileError{Path: path, Msg: msg, Err: err}
}

func exists(path string) bool {
	_, err := os.Stat(path)
	return err == nil
}

// lines returns the non-comment lines with their numbers.
func lines(data []byte) (out []string, nums []int) {
	sc := bufio.NewScanner(bytes.NewReader(data))
	n := 0
	for sc.Scan() {
		n++
		t := sc.Text()
		if i := strings.IndexByte(t, '#'); i >= 0 {
			t = t[:i]
		}
		if t = strings.TrimSpace(t); t != "" {
			out, nums = append(out, t), append(nums, n)
		}
	}
	return out, nums
}

// secretLines reads base64url secrets, one per line.
func secretLines(path string) ([][]byte, error) {
	data, err := readPrivate(path)
	if err != nil {
		return nil, err
	}
	ls, nums := lines(data)
	var out [][]byte
	for i, l := range ls {
		b, err := keyfile.DecodeLine(l)
		if err != nil {
			return nil, &FileError{Path: path, Line: nums[i], Msg: "not a base64url secret"}
		}
		out = append(out, b)
	}
	if len(out) == 0 {
		return nil, &FileError{Path: path, Line: 0, Msg: "no key in file"}
	}
	return out, nil
}

// pemBlocks returns the PEM blocks of a file.
func pemBlocks(data []byte) []*pem.Block {
	var out []*pem.Block
	for {
		var b *pem.Block
		b, data = pem.Decode(data)
		if b == nil {
			return out
		}
		out = append(out, b)
	}
}

func parsePrivatePEM(path string) (any, error) {
	data, err := readPrivate(path)
	if err != nil {
		return nil, err
	}
	blocks := pemBlocks(data)
	if len(blocks) != 1 {
		return nil, &FileError{Path: path, Line: 0, Msg: "want exactly one PEM private key"}
	}
	switch blocks[0].Type {
	case "PRIVATE KEY":
		k, err := x509.ParsePKCS8PrivateKey(blocks[0].Bytes)
		if err != nil {
			return nil, &FileError{Path: path, Line: 0, Msg: "not a PKCS #8 private key"}
		}
		return k, nil
	case "RSA PRIVATE KEY":
		k, err := rsasign.ParsePrivateKeyPEM(data)
		if err != nil {
			return nil, &FileError{Path: path, Line: 0, Msg: err.Error()}
		}
		return k, nil
	}
	return nil, &FileError{Path: path, Line: 0, Msg: "not a PEM private key"}
}

// ownSigners maps algorithm names ("ed25519", "es256", "rsa") to signers.
type ownSigners map[string]envelope.Signer

var signerOrder = []string{"ed25519", "es256", "rsa"}

func loadSelf(dir string) (mqttsec.Own, ownSigners, error) {
	var own mqttsec.Own
	signers := ownSigners{}
	files := map[string]string{"ed25519": "ed25519.key", "es256": "es256.key", "rsa": "rsa-sign.key"}
	for _, alg := range signerOrder {
		path := filepath.Join(dir, files[alg])
		if !exists(path) {
			continue
		}
		k, err := parsePrivatePEM(path)
		if err != nil {
			return own, nil, err
		}
		var s envelope.Signer
		switch key := k.(type) {
		case ed25519.PrivateKey:
			if alg == "ed25519" {
				s, err = envelope.NewEd25519Signer(key)
			}
		case *ecdsa.PrivateKey:
			if alg == "es256" {
				s, err = envelope.NewECDSASigner(key)
			}
		case *rsa.PrivateKey:
			if alg == "rsa" {
				s, err = envelope.NewRSASigner(key)
			}
		}
		if err != nil {
			return own, nil, &FileError{Path: path, Line: 0, Msg: err.Error()}
		}
		if s == nil {
			return own, nil, &FileError{Path: path, Line: 0, Msg: "key type does not match the file name"}
		}
		signers[alg] = s
		if own.Signer == nil {
			own.Signer = s
		}
	}
	if path := filepath.Join(dir, "x25519.key"); exists(path) {
		k, err := parsePrivatePEM(path)
		if err != nil {
			return own, nil, err
		}
		xk, ok := k.(*ecdh.PrivateKey)
		if !ok || xk.Curve() != ecdh.X25519() {
			return own, nil, &FileError{Path: path, Line: 0, Msg: "not an X25519 key"}
		}
		priv, err := hpke.NewDHKEMPrivateKey(xk)
		if err != nil {
			return own, nil, &FileError{Path: path, Line: 0, Msg: err.Error()}
		}
		id, err := envelope.NewHPKEIdentity(priv)
		if err != nil {
			return own, nil, &FileError{Path: path, Line: 0, Msg: err.Error()}
		}
		own.Identities = append(own.Identities, id)
	}
	if path := filepath.Join(dir, "xwing.key"); exists(path) {
		// MLKEM768-X25519 has no PEM form yet: base64url seeds, one a line.
		secrets, err := secretLines(path)
		if err != nil {
			return own, nil, err
		}
		for _, sk := range secrets {
			priv, err := hpke.MLKEM768X25519().NewPrivateKey(sk)
			if err != nil {
				return own, nil, &FileError{Path: path, Line: 0, Msg: "not an MLKEM768-X25519 seed"}
			}
			id, err := envelope.NewHPKEIdentity(priv)
			if err != nil {
				return own, nil, &FileError{Path: path, Line: 0, Msg: err.Error()}
			}
			own.Identities = append(own.Identities, id)
		}
	}
	if path := filepath.Join(dir, "rsa-oaep.key"); exists(path) {
		k, err := parsePrivatePEM(path)
		if err != nil {
			return own, nil, err
		}
		rk, ok := k.(*rsa.PrivateKey)
		if !ok {
			return own, nil, &FileError{Path: path, Line: 0, Msg: "not an RSA key"}
		}
		id, err := envelope.NewRSAIdentity(rk)
		if err != nil {
			return own, nil, &FileError{Path: path, Line: 0, Msg: err.Error()}
		}
		own.Identities = append(own.Identities, id)
	}
	return own, signers, nil
}

type peerConf struct {
	send, require envelope.Protection
	requireSet    bool
	sign          string
	hotpDigits    int
	ttl           time.Duration
	clockless     bool
}

var protectionWords = map[string]envelope.Protection{
	"hmac": envelope.HMAC, "hotp": envelope.HOTPCode, "sig": envelope.Signature, "enc": envelope.Encryption,
}

func parsePeerConf(path string) (*peerConf, error) {
	// peer.conf says what the peer must send: like its public keys, it
	// must not be writable by group or others.
	data, err := readPeerPublic(path)
	if err != nil {
		return nil, err
	}
	return parsePeerConfData(path, data)
}

// parsePeerConfData parses peer.conf content; path names it in errors.
func parsePeerConfData(path string, data []byte) (*peerConf, error) {
	c := &peerConf{hotpDigits: 6}
	ls, nums := lines(data)
	for i, l := range ls {
		f := strings.Fields(l)
		bad := func(msg string) error { return &FileError{Path: path, Line: nums[i], Msg: msg} }
		switch f[0] {
		case "send", "require":
			var p envelope.Protection
			for _, w := range f[1:] {
				v, ok := protectionWords[w]
				if !ok {
					return nil, bad(fmt.Sprintf("unknown protection %q (hmac, hotp, sig, enc)", w))
				}
				p |= v
			}
			if f[0] == "send" {
				c.send = p
			} else {
				c.require, c.requireSet = p, true
			}
		case "sign":
			if len(f) != 2 || (f[1] != "ed25519" && f[1] != "es256" && f[1] != "rsa") {
				return nil, bad("want: sign ed25519|es256|rsa")
			}
			c.sign = f[1]
		case "hotp-digits":
			if len(f) != 2 || (f[1] != "6" && f[1] != "8") {
				return nil, bad("want: hotp-digits 6|8")
			}
			c.hotpDigits = int(f[1][0] - '0')
		case "ttl":
			d, err := time.ParseDuration(strings.Join(f[1:], ""))
			if len(f) != 2 || err != nil || d <= 0 {
				return nil, bad("want: ttl <duration>, e.g. ttl 30s")
			}
			c.ttl = d
		case "clockless":
			if len(f) != 1 {
				return nil, bad("want: clockless")
			}
			c.clockless = true
		case "envelope", "legacy-rs256":
			return nil, bad(fmt.Sprintf("directive %q was removed: envelope 1.0 has one format, without RS256", f[0]))
		default:
			return nil, bad(fmt.Sprintf("unknown directive %q", f[0]))
		}
	}
	if c.send == 0 {
		return nil, &FileError{Path: path, Line: 0, Msg: "no send directive"}
	}
	if !c.requireSet {
		c.require = c.send
	}
	return c, nil
}

func loadPeer(dir, id string, signers ownSigners) (*mqttsec.Peer, error) {
	if !envelope.ValidID(id) {
		return nil, &FileError{Path: dir, Line: 0, Msg: "directory name is not a valid peer id"}
	}
	conf, err := parsePeerConf(filepath.Join(dir, "peer.conf"))
	if err != nil {
		return nil, err
	}
	p := &mqttsec.Peer{Peer: envelope.Peer{ID: id, Policy: envelope.Policy{Require: conf.require, Clockless: conf.clockless}}}
	p.Send.TTL = conf.ttl
	if err := loadSharedSecrets(dir, conf, p); err != nil {
		return nil, err
	}
	for _, name := range []string{"ed25519.pub", "es256.pub", "rsa-sign.pub"} {
		if path := filepath.Join(dir, name); exists(path) {
			vs, err := verifiers(path, name)
			if err != nil {
				return nil, err
			}
			p.Verifiers = append(p.Verifiers, vs...)
		}
	}
	recipients, err := loadRecipients(dir)
	if err != nil {
		return nil, err
	}
	if err := chooseSendKeys(filepath.Join(dir, "peer.conf"), conf, p, signers, recipients); err != nil {
		return nil, err
	}
	return p, nil
}

// loadSharedSecrets reads the peer's HMAC, HOTP and pre-shared keys, each
// file optional.
func loadSharedSecrets(dir string, conf *peerConf, p *mqttsec.Peer) error {
	var err error
	if p.HMACKeys, err = secretKeys(filepath.Join(dir, "hmac.key"), envelope.NewHMACKey,
		func(error) string { return "HMAC keys must be 32 to 64 bytes" }); err != nil {
		return err
	}
	newHOTP := func(s []byte) (*envelope.HOTPKey, error) { return envelope.NewHOTPKey(s, conf.hotpDigits) }
	if p.HOTPKeys, err = secretKeys(filepath.Join(dir, "hotp.key"), newHOTP, error.Error); err != nil {
		return err
	}
	p.AEADKeys, err = secretKeys(filepath.Join(dir, "psk.key"), envelope.NewAEADKey,
		func(error) string { return "pre-shared keys must be 32 bytes" })
	return err
}

// secretKeys makes a key of each secret line of path with newKey (none if
// the file does not exist); a secret newKey refuses is an error of the
// file, saying why.
func secretKeys[K any](path string, newKey func([]byte) (K, error), why func(error) string) ([]K, error) {
	if !exists(path) {
		return nil, nil
	}
	secrets, err := secretLines(path)
	if err != nil {
		return nil, err
	}
	var keys []K
	for _, s := range secrets {
		k, err := newKey(s)
		if err != nil {
			return nil, &FileError{Path: path, Line: 0, Msg: why(err)}
		}
		keys = append(keys, k)
	}
	return keys, nil
}

// loadRecipients reads the peer's encryption keys, in the order of the
// layout: xwing.pub, x25519.pub, rsa-oaep.pub, each optional.
func loadRecipients(dir string) ([]envelope.Recipient, error) {
	var recipients []envelope.Recipient
	for _, f := range []struct {
		name string
		read func(path string) ([]envelope.Recipient, error)
	}{{"xwing.pub", xwingRecipients}, {"x25519.pub", x25519Recipients}, {"rsa-oaep.pub", rsaRecipient}} {
		if path := filepath.Join(dir, f.name); exists(path) {
			rs, err := f.read(path)
			if err != nil {
				return nil, err
			}
			recipients = append(recipients, rs...)
		}
	}
	return recipients, nil
}

// xwingRecipients reads MLKEM768-X25519 public keys, one base64url line
// each.
func xwingRecipients(path string) ([]envelope.Recipient, error) {
	data, err := readPeerPublic(path)
	if err != nil {
		return nil, err
	}
	var recipients []envelope.Recipient
	ls, nums := lines(data)
	for i, l := range ls {
		raw, err := keyfile.DecodeLine(l)
		if err != nil {
			return nil, &FileError{Path: path, Line: nums[i], Msg: "not a base64url public key"}
		}
		pub, err := hpke.MLKEM768X25519().NewPublicKey(raw)
		if err != nil {
			return nil, &FileError{Path: path, Line: nums[i], Msg: "not an MLKEM768-X25519 public key"}
		}
		r, err := envelope.NewHPKERecipient(pub)
		if err != nil {
			return nil, &FileError{Path: path, Line: nums[i], Msg: err.Error()}
		}
		recipients = append(recipients, r)
	}
	return recipients, nil
}

// x25519Recipients reads X25519 public keys, one PEM block each.
func x25519Recipients(path string) ([]envelope.Recipient, error) {
	data, err := readPeerPublic(path)
	if err != nil {
		return nil, err
	}
	var recipients []envelope.Recipient
	for i, b := range pemBlocks(data) {
		bad := &FileError{Path: path, Line: 0, Msg: fmt.Sprintf("PEM block %d is not an X25519 public key", i+1)}
		if b.Type != "PUBLIC KEY" {
			return nil, bad
		}
		k, err := x509.ParsePKIXPublicKey(b.Bytes)
		xk, ok := k.(*ecdh.PublicKey)
		if err != nil || !ok || xk.Curve() != ecdh.X25519() {
			return nil, bad
		}
		pub, err := hpke.NewDHKEMPublicKey(xk)
		if err != nil {
			return nil, bad
		}
		r, err := envelope.NewHPKERecipient(pub)
		if err != nil {
			return nil, &FileError{Path: path, Line: 0, Msg: err.Error()}
		}
		recipients = append(recipients, r)
	}
	return recipients, nil
}

// rsaRecipient reads an RSA-OAEP public key in PEM.
func rsaRecipient(path string) ([]envelope.Recipient, error) {
	data, err := readPeerPublic(path)
	if err != nil {
		return nil, err
	}
	pub, err := rsasign.ParsePublicKeyPEM(data)
	if err != nil {
		return nil, &FileError{Path: path, Line: 0, Msg: err.Error()}
	}
	r, err := envelope.NewRSARecipient(pub)
	if err != nil {
		return nil, &FileError{Path: path, Line: 0, Msg: err.Error()}
	}
	return []envelope.Recipient{r}, nil
}

// chooseSendKeys sets how to seal for the peer: the first key of each
// protection peer.conf (at confPath) asks to send.
func chooseSendKeys(confPath string, conf *peerConf, p *mqttsec.Peer, signers ownSigners, recipients []envelope.Recipient) error {
	need := func(ok bool, what string) error {
		if !ok {
			return &FileError{Path: confPath, Line: 0, Msg: "send " + what + " needs " + map[string]string{
				"hmac": "hmac.key", "hotp": "hotp.key", "sig": "an own signing key in self/", "enc": "psk.key or an encryption key of the peer",
			}[what]}
		}
		return nil
	}
	if conf.send&envelope.HMAC != 0 {
		if err := need(len(p.HMACKeys) > 0, "hmac"); err != nil {
			return err
		}
		p.Send.HMAC = p.HMACKeys[0]
	}
	if conf.send&envelope.HOTPCode != 0 {
		if err := need(len(p.HOTPKeys) > 0, "hotp"); err != nil {
			return err
		}
		p.Send.HOTP = p.HOTPKeys[0]
	}
	if conf.send&envelope.Signature != 0 {
		s := signers.choose(conf.sign)
		if err := need(s != nil, "sig"); err != nil {
			return err
		}
		p.Send.Signer = s
	}
	if conf.send&envelope.Encryption != 0 {
		switch {
		case len(p.AEADKeys) > 0:
			p.Send.PSK = p.AEADKeys[0]
		case len(recipients) > 0:
			p.Send.Recipients = recipients[:1]
		default:
			return need(false, "enc")
		}
	}
	if p.Send.HMAC == nil && p.Send.Signer == nil && p.Send.PSK == nil {
		return &FileError{Path: confPath, Line: 0, Msg: "send must include hmac, sig, or enc with psk.key"}
	}
	return nil
}

// choose returns the signer named (sign in peer.conf), or without a name
// the first present in signerOrder.
func (signers ownSigners) choose(name string) envelope.Signer {
	if name != "" {
		return signers[name]
	}
	for _, alg := range signerOrder {
		if s := signers[alg]; s != nil {
			return s
		}
	}
	return nil
}

func verifiers(path, name string) ([]envelope.Verifier, error) {
	data, err := readPeerPublic(path)
	if err != nil {
		return nil, err
	}
	blocks := pemBlocks(data)
	if len(blocks) == 0 {
		return nil, &FileError{Path: path, Line: 0, Msg: "no PEM public key"}
	}
	var out []envelope.Verifier
	for i, b := range blocks {
		bad := &FileError{Path: path, Line: 0, Msg: fmt.Sprintf("PEM block %d is not a public key of this kind", i+1)}
		if b.Type != "PUBLIC KEY" {
			return nil, bad
		}
		k, err := x509.ParsePKIXPublicKey(b.Bytes)
		if err != nil {
			return nil, bad
		}
		var v envelope.Verifier
		switch key := k.(type) {
		case ed25519.PublicKey:
			if name == "ed25519.pub" {
				v, err = envelope.NewEd25519Verifier(key)
			}
		case *ecdsa.PublicKey:
			if name == "es256.pub" {
				v, err = envelope.NewECDSAVerifier(key)
			}
		case *rsa.PublicKey:
			if name == "rsa-sign.pub" {
				v, err = envelope.NewRSAVerifier(key)
			}
		}
		if err != nil {
			return nil, &FileError{Path: path, Line: 0, Msg: err.Error()}
		}
		if v == nil {
			return nil, bad
		}
		out = append(out, v)
	}
	return out, nil
}

// stamp summarises the directory's files (names, sizes, times), to notice
// changes.
func stamp(dir string) string {
	var parts []string
	filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return nil
		}
		if info, err := d.Info(); err == nil {
			parts = append(parts, fmt.Sprintf("%s:%d:%d", path, info.Size(), info.ModTime().UnixNano()))
		}
		return nil
	})
	sort.Strings(parts)
	return strings.Join(parts, ";")
}

// Reload reads dir again and, if it loads, swaps its keys into ring. On
// any error ring keeps its keys.
func Reload(dir string, ring *mqttsec.Keyring) error {
	p, err := Load(dir)
	if err != nil {
		return err
	}
	ring.Replace(p.Keyring)
	return nil
}

// Watch reloads dir into ring whenever a file in it changes (checked every
// interval) until ctx ends, and reports each change once: to onReload
// after the new keys took force, to onError (naming the file, and the line
// where there is one) when they were refused and ring keeps its keys.
// Either may be nil. It first reloads dir once, reporting only a failure:
// files may have changed between the caller's Load and Watch.
func Watch(ctx context.Context, dir string, ring *mqttsec.Keyring, interval time.Duration, onReload func(), onError func(error)) {
	last := stamp(dir)
	if err := Reload(dir, ring); err != nil && onError != nil {
		onError(err)
	}
	poll.Reload(ctx, interval, last, func() string { return stamp(dir) },
		func() error { return Reload(dir, ring) }, onReload, onError)
}
