package keyfile

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestSecretRoundTripAndPermissions(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "hmac.key")
	if err := WriteSecret(path, 32); err != nil {
		t.Fatal(err)
	}
	if err := WriteSecret(path, 32); err == nil {
		t.Fatal("existing secret overwritten")
	}
	s, err := ReadSecret(path)
	if err != nil || len(s) != 32 {
		t.Fatalf("ReadSecret = %d bytes, %v", len(s), err)
	}
	if err := os.Chmod(path, 0o640); err != nil {
		t.Fatal(err)
	}
	if _, err := ReadSecret(path); !errors.Is(err, ErrPermissions) {
		t.Fatalf("group-readable secret: %v", err)
	}
}

// TestReadSecretFormats holds ReadSecret to one line of unpadded, canonical
// base64url: "c2VjcmV0IQ" is "secret!".
func TestReadSecretFormats(t *testing.T) {
	tests := []struct {
		name, content string
		ok            bool
	}{
		{"one line", "c2VjcmV0IQ", true},
		{"final newline", "c2VjcmV0IQ\n", true},
		{"final CRLF", "c2VjcmV0IQ\r\n", true},
		{"surrounding blanks", "  c2VjcmV0IQ \n", true},
		{"padding", "c2VjcmV0IQ==\n", false},
		{"standard alphabet", "c2VjcmV0I+/\n", false},
		{"line feed inside", "c2VjcmV0\nIQ\n", false},
		{"carriage return inside", "c2VjcmV0\rIQ\n", false},
		{"two lines", "c2VjcmV0IQ\nc2VjcmV0IQ\n", false},
		{"blank inside", "c2VjcmV0 IQ\n", false},
		{"non-zero unused bits", "c2VjcmV0IR\n", false},
		{"empty", "\n", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "secret.key")
			if err := os.WriteFile(path, []byte(tt.content), 0o600); err != nil {
				t.Fatal(err)
			}
			got, err := ReadSecret(path)
			if !tt.ok {
				if !errors.Is(err, ErrNotBase64URL) || strings.Contains(err.Error(), "c2Vj") {
					t.Fatalf("ReadSecret = %q, %v; want ErrNotBase64URL without the content", got, err)
				}
				return
			}
			if err != nil || string(got) != "secret!" {
				t.Fatalf("ReadSecret = %q, %v; want \"secret!\"", got, err)
			}
		})
	}
}

func TestEd25519Files(t *testing.T) {
	base := filepath.Join(t.TempDir(), "sign")
	if err := WriteEd25519(base); err != nil {
		t.Fatal(err)
	}
	priv, err := ReadEd25519Private(base + ".key")
	if err != nil {
		t.Fatal(err)
	}
	pub, err := ReadEd25519Public(base + ".pub")
	if err != nil {
		t.Fatal(err)
	}
	if !pub.Equal(priv.Public()) {
		t.Fatal("public key file does not match the private key")
	}
	if _, err := ReadEd25519Private(base + ".pub"); err == nil {
		t.Fatal("public key read as private")
	}
	if err := WriteEd25519(base); err == nil {
		t.Fatal("existing key overwritten")
	}
}

// ReadPrivate checks the file it opened: a link to a group-readable file is
// refused like the file itself, and so are directories and oversize files.
func TestReadPrivateChecksTheOpenedFile(t *testing.T) {
	dir := t.TempDir()
	write := func(name string, data []byte, mode os.FileMode) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, data, mode); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(p, mode); err != nil { // the umask may have narrowed it
			t.Fatal(err)
		}
		return p
	}
	private := write("private.key", []byte("k3y-m4t3rial\n"), 0o600)
	open := write("open.key", []byte("k3y-m4t3rial\n"), 0o644)
	link := filepath.Join(dir, "link.key")
	if err := os.Symlink(open, link); err != nil {
		t.Fatal(err)
	}
	big := write("big.key", make([]byte, MaxSize+1), 0o600)
	for _, tc := range []struct {
		name, path string
		private    error // what ReadPrivate must return (nil: the content)
		public     error // what ReadPublic must return
	}{
		{"private", private, nil, nil},
		{"group-readable", open, ErrPermissions, nil},
		{"link to group-readable", link, ErrPermissions, nil},
		{"directory", dir, ErrNotRegular, ErrNotRegular},
		{"too large", big, ErrTooLarge, ErrTooLarge},
		{"missing", filepath.Join(dir, "none"), fs.ErrNotExist, fs.ErrNotExist},
	} {
		for _, r := range []struct {
			name string
			read func(string) ([]byte, error)
			want error
		}{{"ReadPrivate", ReadPrivate, tc.private}, {"ReadPublic", ReadPublic, tc.public}} {
			t.Run(tc.name+"/"+r.name, func(t *testing.T) {
				data, err := r.read(tc.path)
				if r.want == nil {
					if err != nil || string(data) != "k3y-m4t3rial\n" {
						t.Fatalf("%s = %q, %v", r.name, data, err)
					}
					return
				}
				if !errors.Is(err, r.want) {
					t.Fatalf("%s(%s) = %d bytes, %v; want %v", r.name, tc.name, len(data), err, r.want)
				}
				if strings.Contains(err.Error(), "k3y") {
					t.Fatalf("error shows content: %v", err)
				}
			})
		}
	}
}

// Write creates a file with the mode asked for whatever the umask, refuses
// an existing one without force, and replaces it whole with force.
func TestWrite(t *testing.T) {
	path := filepath.Join(t.TempDir(), "f")
	for _, tt := range []struct {
		name  string
		data  string
		force bool
		want  error
		after string
	}{
		{"new", "first", false, nil, "first"},
		{"existing, without force", "second", false, ErrExists, "first"},
		{"existing, with force", "2nd", true, nil, "2nd"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			err := Write(path, []byte(tt.data), 0o640, tt.force)
			if !errors.Is(err, tt.want) || (tt.want == nil) != (err == nil) {
				t.Fatalf("Write = %v, want %v", err, tt.want)
			}
			got, err := os.ReadFile(path)
			if err != nil || string(got) != tt.after {
				t.Fatalf("file holds %q (%v), want %q", got, err, tt.after)
			}
			if st, err := os.Stat(path); err != nil || st.Mode().Perm() != 0o640 {
				t.Fatalf("mode %v (%v), want 0640", st.Mode().Perm(), err)
			}
		})
	}
}
