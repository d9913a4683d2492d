package keydir

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// FuzzPeerConf: the peer.conf parser never panics and reports every
// problem as a FileError.
func FuzzPeerConf(f *testing.F) {
	f.Add("send hmac sig\nrequire hmac\nsign ed25519\nhotp-digits 8\nttl 30s\n")
	f.Add("send hmac\nenvelope 3\n") // a directive of earlier releases
	f.Add("send enc # comment\n")
	f.Add("ttl\n")
	f.Fuzz(func(t *testing.T, conf string) {
		c, err := parsePeerConfData("peer.conf", []byte(conf))
		if err != nil {
			var fe *FileError
			if !errors.As(err, &fe) {
				t.Fatalf("error %v is not a FileError", err)
			}
			return
		}
		if c.send == 0 || (c.hotpDigits != 6 && c.hotpDigits != 8) || c.ttl < 0 {
			t.Fatalf("accepted an impossible configuration: %+v", c)
		}
	})
}

// keyFiles are the files of a party directory that Load parses, relative
// to it; fuzzKeyFiles writes into one of them at a time.
var keyFiles = []string{
	"self/id",
	"self/ed25519.key", "self/es256.key", "self/rsa-sign.key",
	"self/x25519.key", "self/xwing.key", "self/rsa-oaep.key",
	"peers/client/peer.conf",
	"peers/client/hmac.key", "peers/client/hotp.key", "peers/client/psk.key",
	"peers/client/ed25519.pub", "peers/client/es256.pub", "peers/client/rsa-sign.pub",
	"peers/client/x25519.pub", "peers/client/xwing.pub", "peers/client/rsa-oaep.pub",
}

// FuzzKeyFiles: whatever one key file of a valid directory holds, Load
// never panics, and a refusal is a FileError naming that file and showing
// none of the secrets the directory holds.
func FuzzKeyFiles(f *testing.F) {
	dir := filepath.Join(f.TempDir(), "gateway")
	if err := Init(dir, "gateway", InitOptions{}); err != nil {
		f.Fatal(err)
	}
	cl := filepath.Join(f.TempDir(), "client")
	if err := Init(cl, "client", InitOptions{}); err != nil {
		f.Fatal(err)
	}
	if err := Pair(dir, cl, PairOptions{HMAC: true, HOTP: true, PSK: true, Send: "hmac hotp"}); err != nil {
		f.Fatal(err)
	}
	if err := Export(cl, filepath.Join(dir, "peers", "client"), false); err != nil {
		f.Fatal(err)
	}
	if _, err := Load(dir); err != nil {
		f.Fatal(err)
	}
	original := make(map[string][]byte)
	var secrets []string
	for i, name := range keyFiles {
		data, err := os.ReadFile(filepath.Join(dir, name))
		switch {
		case err == nil:
			original[name] = data
			f.Add(uint8(i), data)
			if strings.HasSuffix(name, ".key") {
				secrets = append(secrets, secretText(data)...)
			}
		case !errors.Is(err, fs.ErrNotExist):
			f.Fatal(err)
		}
	}
	f.Add(uint8(11), original["peers/client/es256.pub"])
	f.Add(uint8(5), []byte("AAAA\nAA\r\nAAAA\n"))
	f.Fuzz(func(t *testing.T, which uint8, content []byte) {
		name := keyFiles[int(which)%len(keyFiles)]
		path := filepath.Join(dir, name)
		if err := os.WriteFile(path, content, 0o600); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() {
			if data, ok := original[name]; ok {
				if err := os.WriteFile(path, data, 0o600); err != nil {
					t.Fatal(err)
				}
			} else if err := os.Remove(path); err != nil {
				t.Fatal(err)
			}
		})
		_, err := Load(dir)
		if err == nil {
			return
		}
		var fe *FileError
		if !errors.As(err, &fe) {
			t.Fatalf("%s: error %v is not a FileError", name, err)
		}
		if fe.Path != path && fe.Path != filepath.Dir(path) {
			t.Fatalf("%s: error names %s: %v", name, fe.Path, err)
		}
		for _, s := range secrets {
			if strings.Contains(err.Error(), s) {
				t.Fatalf("%s: error shows a secret: %v", name, err)
			}
		}
	})
}

// secretText returns the pieces of a secret file an error must not show:
// each base64url line, and each PEM block's body line.
func secretText(data []byte) []string {
	var out []string
	for _, l := range strings.Split(string(data), "\n") {
		if l = strings.TrimSpace(l); len(l) >= 16 && !strings.HasPrefix(l, "-----") {
			out = append(out, l)
		}
	}
	return out
}
