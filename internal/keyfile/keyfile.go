// Package keyfile reads and writes key files: shared secrets as one
// base64url line, Ed25519 keys as PEM. Secret files must not be readable by
// group or others. Every read is bounded and of a regular file only;
// OpenRegular gives the same kind check (never blocking on a FIFO) to the
// other files the library loads, such as authorization rules and replay
// state.
package keyfile

import (
	"crypto/ed25519"
	"crypto/rand"
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"strings"

	"github.com/mqttsec/mqttsec/internal/b64url"
)

// ErrPermissions means a secret file is readable by group or others.
var ErrPermissions = errors.New("secret file must not be readable by group or others (chmod 600)")

// PermissionError is a secret file readable by group or others. It wraps
// ErrPermissions.
type PermissionError struct {
	Path string
	Mode os.FileMode
}

func (e *PermissionError) Error() string {
	return fmt.Sprintf("%s: %v (mode %v)", e.Path, ErrPermissions, e.Mode)
}

func (e *PermissionError) Unwrap() error { return ErrPermissions }

// MaxSize is the largest key file ReadPrivate and ReadPublic read; key
// files are a few kilobytes at most.
const MaxSize = 1 << 20

var (
	// ErrNotRegular means a file is a directory, device or FIFO.
	ErrNotRegular = errors.New("not a regular file")
	// ErrTooLarge means a key file is larger than MaxSize.
	ErrTooLarge = fmt.Errorf("larger than %d bytes", MaxSize)
)

// ReadPrivate reads a secret file. The permissions are checked on the file
// that was opened, not on the path, so the file cannot be swapped between
// the check and the read. It must be a regular file of at most MaxSize
// bytes that group and others cannot read; otherwise the error is a
// *PermissionError, or an *fs.PathError (wrapping ErrNotRegular or
// ErrTooLarge when the file is of the wrong kind or size). Errors name the
// file, never its content.
func ReadPrivate(path string) ([]byte, error) {
	return read(path, true)
}

// ReadPublic reads a file that holds no secret (a public key, an id, a
// configuration): a regular file of at most MaxSize bytes, whatever its
// permissions. Errors are as ReadPrivate's.
func ReadPublic(path string) ([]byte, error) {
	return read(path, false)
}

// OpenRegular opens path with flag and perm, as os.OpenFile does, if it
// is a regular file; anything else (a directory, device or FIFO) is an
// *fs.PathError wrapping ErrNotRegular. It never blocks on a FIFO. The kind
// is checked on the file that was opened.
func OpenRegular(path string, flag int, perm os.FileMode) (*os.File, error) {
	f, _, err := openRegular(path, flag, perm)
	return f, err
}

func openRegular(path string, flag int, perm os.FileMode) (*os.File, fs.FileInfo, error) {
	f, err := os.OpenFile(path, flag|nonBlocking, perm)
	if err != nil {
		return nil, nil, err
	}
	st, err := f.Stat()
	if err == nil && !st.Mode().IsRegular() {
		err = &fs.PathError{Op: "open", Path: path, Err: ErrNotRegular}
	}
	if err != nil {
		f.Close()
		return nil, nil, err
	}
	return f, st, nil
}

func read(path string, secret bool) ([]byte, error) {
	f, st, err := openRegular(path, os.O_RDONLY, 0)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	if perm := st.Mode().Perm(); secret && perm&0o077 != 0 {
		return nil, &PermissionError{Path: path, Mode: perm}
	}
	data, err := io.ReadAll(io.LimitReader(f, MaxSize+1))
	if err != nil {
		return nil, err
	}
	if len(data) > MaxSize {
		return nil, &fs.PathError{Op: "read", Path: path, Err: ErrTooLarge}
	}
	return data, nil
}

// ErrNotBase64URL means a key line is not base64url: RFC 4648 §5 without
// padding, in canonical form, on one line.
var ErrNotBase64URL = errors.New("not one line of unpadded base64url")

// DecodeLine decodes one line of unpadded base64url, strictly (b64url: a
// line break inside is refused, so a line holds exactly one value, as the
// key file formats say). The error is ErrNotBase64URL and never quotes the
// line.
func DecodeLine(line string) ([]byte, error) {
	b, err := b64url.DecodeString(line)
	if err != nil {
		return nil, ErrNotBase64URL
	}
	return b, nil
}

// ReadSecret reads a shared secret: one line of base64url (no padding),
// with surrounding white space (a final newline) ignored. A file that is
// not that, or is empty, is an error naming the file and wrapping
// ErrNotBase64URL.
func ReadSecret(path string) ([]byte, error) {
	data, err := ReadPrivate(path)
	if err != nil {
		return nil, err
	}
	b, err := DecodeLine(strings.TrimSpace(string(data)))
	if err == nil && len(b) == 0 {
		err = ErrNotBase64URL // an empty file holds no secret
	}
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return b, nil
}

// WriteSecret writes n random bytes as a new secret file (mode 0600); it
// refuses to overwrite an existing file.
func WriteSecret(path string, n int) error {
	b := make([]byte, n)
	rand.Read(b)
	return writeNew(path, []byte(base64.RawURLEncoding.EncodeToString(b)+"\n"), 0o600)
}

// ReadEd25519Private reads a PKCS #8 PEM Ed25519 private key.
func ReadEd25519Private(path string) (ed25519.PrivateKey, error) {
	data, err := ReadPrivate(path)
	if err != nil {
		return nil, err
	}
	block, _ := pem.Decode(data)
	if block == nil || block.Type != "PRIVATE KEY" {
		return nil, fmt.Errorf("%s: not a PEM PRIVATE KEY", path)
	}
	k, err := x509.ParsePKCS8PrivateKey(block.Bytes)
	if err != nil {
		return nil, fmt.Errorf("%s: not a PKCS #8 key", path)
	}
	ek, ok := k.(ed25519.PrivateKey)
	if !ok {
		return nil, fmt.Errorf("%s: not an Ed25519 key", path)
	}
	return ek, nil
}

// ReadEd25519Public reads a PKIX PEM Ed25519 public key.
func ReadEd25519Public(path string) (ed25519.PublicKey, error) {
	data, err := ReadPublic(path)
	if err != nil {
		return nil, err
	}
	block, _ := pem.Decode(data)
	if block == nil || block.Type != "PUBLIC KEY" {
		return nil, fmt.Errorf("%s: not a PEM PUBLIC KEY", path)
	}
	k, err := x509.ParsePKIXPublicKey(block.Bytes)
	if err != nil {
		return nil, fmt.Errorf("%s: not a PKIX public key", path)
	}
	ek, ok := k.(ed25519.PublicKey)
	if !ok {
		return nil, fmt.Errorf("%s: not an Ed25519 key", path)
	}
	return ek, nil
}

// WriteEd25519 generates a key pair and writes it as base.key (0600) and
// base.pub; it refuses to overwrite existing files.
func WriteEd25519(base string) error {
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return err
	}
	privDER, err := x509.MarshalPKCS8PrivateKey(priv)
	if err != nil {
		return err
	}
	pubDER, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		return err
	}
	if err := writeNew(base+".key", pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: privDER}), 0o600); err != nil {
		return err
	}
	return writeNew(base+".pub", pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: pubDER}), 0o644)
}

// ErrExists means Write would overwrite a file without force.
var ErrExists = errors.New("file exists")

// Write creates path with data and mode (set on the file, whatever the
// umask); an existing file is ErrExists unless force, which truncates it.
func Write(path string, data []byte, mode os.FileMode, force bool) error {
	flags := os.O_WRONLY | os.O_CREATE | os.O_EXCL
	if force {
		flags = os.O_WRONLY | os.O_CREATE | os.O_TRUNC
	}
	f, err := os.OpenFile(path, flags, mode)
	if errors.Is(err, os.ErrExist) {
		return fmt.Errorf("%s: %w", path, ErrExists)
	}
	if err != nil {
		return err
	}
	if err := f.Chmod(mode); err != nil {
		f.Close()
		return err
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

func writeNew(path string, data []byte, mode os.FileMode) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, mode)
	if err != nil {
		return err
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}
