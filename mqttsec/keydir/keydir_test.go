package keydir

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/eclipse/paho.golang/autopaho"
	"github.com/eclipse/paho.golang/paho"

	"github.com/mqttsec/mqttsec/envelope"
	"github.com/mqttsec/mqttsec/internal/keyfile"
	"github.com/mqttsec/mqttsec/internal/testbroker"
	"github.com/mqttsec/mqttsec/internal/testwait"
	"github.com/mqttsec/mqttsec/mqttsec"
)

// setup makes a gateway and a client directory that know each other.
func setup(t *testing.T, send string, pair PairOptions) (gw, cl string) {
	t.Helper()
	root := t.TempDir()
	gw, cl = filepath.Join(root, "gateway"), filepath.Join(root, "client")
	if err := Init(gw, "gateway", InitOptions{}); err != nil {
		t.Fatal(err)
	}
	if err := Init(cl, "client", InitOptions{}); err != nil {
		t.Fatal(err)
	}
	pair.Send = send
	if err := Pair(gw, cl, pair); err != nil {
		t.Fatal(err)
	}
	if err := Export(gw, filepath.Join(cl, "peers", "gateway"), false); err != nil {
		t.Fatal(err)
	}
	if err := Export(cl, filepath.Join(gw, "peers", "client"), false); err != nil {
		t.Fatal(err)
	}
	return gw, cl
}

// pairOver starts a gateway and a client on an embedded broker with the
// keyrings loaded from their directories.
func pairOver(t *testing.T, gwRing, clRing *mqttsec.Keyring) *mqttsec.Client {
	t.Helper()
	b, err := testbroker.Start("127.0.0.1:0", nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Close() })
	u, err := url.Parse(b.URL())
	if err != nil {
		t.Fatal(err)
	}
	tr := func(id string) mqttsec.Transport {
		return mqttsec.NewPahoV5(autopaho.ClientConfig{ServerUrls: []*url.URL{u}, KeepAlive: 30,
			ClientConfig: paho.ClientConfig{ClientID: fmt.Sprint(id, time.Now().UnixNano())}})
	}
	srv, err := mqttsec.NewServer(mqttsec.ServerConfig{Config: mqttsec.Config{ID: "gateway", Keyring: gwRing, Transport: tr("gw")}})
	if err != nil {
		t.Fatal(err)
	}
	srv.HandleFunc("echo", func(ctx context.Context, r *mqttsec.Request) ([]byte, error) {
		return []byte(r.Caller + " " + r.Protections.String() + " " + string(r.Payload)), nil
	})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := srv.Start(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Close(context.Background()) })
	c, err := mqttsec.NewClient(mqttsec.Config{ID: "client", Keyring: clRing, Transport: tr("cl")})
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Start(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close(context.Background()) })
	return c
}

func request(t *testing.T, c *mqttsec.Client, payload string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	out, err := c.Request(ctx, "gateway", "echo", []byte(payload))
	if err != nil {
		t.Fatalf("request %q: %v", payload, err)
	}
	return string(out)
}

func TestLayoutRoundTrip(t *testing.T) {
	for _, tc := range []struct {
		send string
		pair PairOptions
		want envelope.Protection
	}{
		{"hmac", PairOptions{HMAC: true}, envelope.HMAC},
		{"hmac hotp", PairOptions{HMAC: true, HOTP: true}, envelope.HMAC | envelope.HOTPCode},
		{"sig enc", PairOptions{}, envelope.Signature | envelope.Encryption},
		{"enc", PairOptions{PSK: true}, envelope.Encryption},
	} {
		t.Run(tc.send, func(t *testing.T) {
			gwDir, clDir := setup(t, tc.send, tc.pair)
			gw, err := Load(gwDir)
			if err != nil {
				t.Fatal(err)
			}
			cl, err := Load(clDir)
			if err != nil {
				t.Fatal(err)
			}
			if gw.ID != "gateway" || cl.ID != "client" {
				t.Fatalf("ids %q %q", gw.ID, cl.ID)
			}
			c := pairOver(t, gw.Keyring, cl.Keyring)
			if got, want := request(t, c, "hi"), "client "+tc.want.String()+" hi"; got != want {
				t.Fatalf("reply %q, want %q", got, want)
			}
		})
	}
}

func TestLoadErrorsNameFileAndLineWithoutSecrets(t *testing.T) {
	must := func(t *testing.T, err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	read := func(t *testing.T, path string) []byte {
		t.Helper()
		data, err := os.ReadFile(path)
		must(t, err)
		return data
	}
	write := func(t *testing.T, path string, data []byte) {
		t.Helper()
		must(t, os.WriteFile(path, data, 0o600))
	}
	// Each change gets a fresh gateway directory and its peer directory for
	// the client.
	tests := []struct {
		name   string
		change func(t *testing.T, gw, peer string)
		file   string
		line   int
		is     error
	}{
		{"group-readable secret", func(t *testing.T, gw, peer string) { must(t, os.Chmod(filepath.Join(peer, "hmac.key"), 0o640)) }, "hmac.key", 0, ErrPermissions},
		{"bad secret line", func(t *testing.T, gw, peer string) {
			path := filepath.Join(peer, "hmac.key")
			write(t, path, append(read(t, path), "# second key\nnot!base64\n"...))
		}, "hmac.key", 3, nil},
		{"carriage return inside a secret line", func(t *testing.T, gw, peer string) {
			path := filepath.Join(peer, "hmac.key")
			line := strings.TrimSpace(string(read(t, path)))
			write(t, path, []byte(line[:20]+"\r"+line[20:]+"\n"))
		}, "hmac.key", 1, nil},
		{"carriage return inside a public key line", func(t *testing.T, gw, peer string) {
			path := filepath.Join(peer, "xwing.pub")
			line := strings.TrimSpace(string(read(t, path)))
			write(t, path, []byte(line[:40]+"\r"+line[40:]+"\n"))
		}, "xwing.pub", 1, nil},
		{"short HMAC key", func(t *testing.T, gw, peer string) { write(t, filepath.Join(peer, "hmac.key"), []byte("AAAA\n")) }, "hmac.key", 0, nil},
		{"unknown directive", func(t *testing.T, gw, peer string) {
			write(t, filepath.Join(peer, "peer.conf"), []byte("send hmac\nallow everything\n"))
		}, "peer.conf", 2, nil},
		{"envelope directive of earlier releases", func(t *testing.T, gw, peer string) {
			write(t, filepath.Join(peer, "peer.conf"), []byte("send hmac\n\nenvelope 1\n"))
		}, "peer.conf", 3, nil},
		{"clockless with an argument", func(t *testing.T, gw, peer string) {
			write(t, filepath.Join(peer, "peer.conf"), []byte("send hmac\nclockless yes\n"))
		}, "peer.conf", 2, nil},
		{"unknown protection", func(t *testing.T, gw, peer string) {
			write(t, filepath.Join(peer, "peer.conf"), []byte("send hmac rot13\n"))
		}, "peer.conf", 1, nil},
		{"send without key", func(t *testing.T, gw, peer string) {
			write(t, filepath.Join(peer, "peer.conf"), []byte("send hotp hmac\n"))
		}, "peer.conf", 0, nil},
		{"signing key of the wrong kind", func(t *testing.T, gw, peer string) {
			write(t, filepath.Join(gw, "self", "ed25519.key"), read(t, filepath.Join(gw, "self", "es256.key")))
		}, "ed25519.key", 0, nil},
		{"public key of the wrong kind", func(t *testing.T, gw, peer string) {
			write(t, filepath.Join(peer, "ed25519.pub"), read(t, filepath.Join(peer, "es256.pub")))
		}, "ed25519.pub", 0, nil},
		{"public key file too large", func(t *testing.T, gw, peer string) {
			write(t, filepath.Join(peer, "ed25519.pub"), make([]byte, keyfile.MaxSize+1))
		}, "ed25519.pub", 0, ErrTooLarge},
		{"peer.conf too large", func(t *testing.T, gw, peer string) {
			write(t, filepath.Join(peer, "peer.conf"), bytes.Repeat([]byte("# padding\n"), keyfile.MaxSize))
		}, "peer.conf", 0, ErrTooLarge},
		{"secret file is a directory", func(t *testing.T, gw, peer string) {
			must(t, os.Remove(filepath.Join(peer, "hmac.key")))
			must(t, os.Mkdir(filepath.Join(peer, "hmac.key"), 0o700))
		}, "hmac.key", 0, ErrNotRegular},
		{"missing peer.conf", func(t *testing.T, gw, peer string) { must(t, os.Remove(filepath.Join(peer, "peer.conf"))) }, "peer.conf", 0, fs.ErrNotExist},
		{"bad peer directory name", func(t *testing.T, gw, peer string) { must(t, os.MkdirAll(filepath.Join(gw, "peers", "a b"), 0o700)) }, "a b", 0, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			gw, _ := setup(t, "hmac sig", PairOptions{HMAC: true})
			peer := filepath.Join(gw, "peers", "client")
			secret := strings.TrimSpace(string(read(t, filepath.Join(peer, "hmac.key"))))
			tt.change(t, gw, peer)
			_, err := Load(gw)
			var fe *FileError
			if !errors.As(err, &fe) || !strings.HasSuffix(fe.Path, tt.file) || fe.Line != tt.line {
				t.Fatalf("Load = %v; want an error for %s line %d", err, tt.file, tt.line)
			}
			if tt.is != nil && !errors.Is(err, tt.is) {
				t.Fatalf("Load = %v, want it to wrap %v", err, tt.is)
			}
			if strings.Contains(err.Error(), secret) {
				t.Fatalf("error shows a secret: %v", err)
			}
		})
	}
}

func TestInitRefusesToOverwrite(t *testing.T) {
	dir := t.TempDir()
	if err := Init(dir, "gw", InitOptions{}); err != nil {
		t.Fatal(err)
	}
	before, _ := os.ReadFile(filepath.Join(dir, "self", "ed25519.key"))
	if err := Init(dir, "gw", InitOptions{}); !errors.Is(err, ErrExists) {
		t.Fatalf("second Init = %v, want ErrExists", err)
	}
	after, _ := os.ReadFile(filepath.Join(dir, "self", "ed25519.key"))
	if string(before) != string(after) {
		t.Fatal("a key was overwritten")
	}
	if err := Init(dir, "gw", InitOptions{Force: true}); err != nil {
		t.Fatalf("Init with Force: %v", err)
	}
	for _, name := range []string{"ed25519.key", "es256.key", "x25519.key", "xwing.key"} {
		st, err := os.Stat(filepath.Join(dir, "self", name))
		if err != nil || st.Mode().Perm() != 0o600 {
			t.Fatalf("%s: %v, mode %v", name, err, st.Mode())
		}
	}
	if err := Init(t.TempDir(), "no/slash", InitOptions{}); !errors.Is(err, mqttsec.ErrInvalidConfig) {
		t.Fatalf("Init with an invalid id = %v, want mqttsec.ErrInvalidConfig", err)
	}
}

// TestRotationLosesNoMessage rotates the shared HMAC key while requests
// flow: add the new key on both sides, make it primary on the client, then
// on the gateway, then remove the old one; every request succeeds.
func TestRotationLosesNoMessage(t *testing.T) {
	gwDir, clDir := setup(t, "hmac", PairOptions{HMAC: true})
	gw, err := Load(gwDir)
	if err != nil {
		t.Fatal(err)
	}
	cl, err := Load(clDir)
	if err != nil {
		t.Fatal(err)
	}
	c := pairOver(t, gw.Keyring, cl.Keyring)
	gwKey, clKey := filepath.Join(gwDir, "peers", "client", "hmac.key"), filepath.Join(clDir, "peers", "gateway", "hmac.key")
	old, _ := os.ReadFile(gwKey)
	fresh := []byte(b64.EncodeToString([]byte("a new 32-byte key for rotation!!")) + "\n")
	kidOf := func(line []byte) envelope.KeyID {
		s, _ := b64.DecodeString(strings.TrimSpace(string(line)))
		k, _ := envelope.NewHMACKey(s)
		return k.KeyID()
	}
	steps := []struct {
		name       string
		gwFile     []byte
		clFile     []byte
		clientSent envelope.KeyID // key id the client seals with after the step
	}{
		{"new key accepted everywhere", append(append([]byte{}, old...), fresh...), append(append([]byte{}, old...), fresh...), kidOf(old)},
		{"client switches primary", append(append([]byte{}, old...), fresh...), append(append([]byte{}, fresh...), old...), kidOf(fresh)},
		{"gateway switches primary", append(append([]byte{}, fresh...), old...), append(append([]byte{}, fresh...), old...), kidOf(fresh)},
		{"old key removed", fresh, fresh, kidOf(fresh)},
	}
	var wg sync.WaitGroup
	stop := make(chan struct{})
	var failures []error
	var mu sync.Mutex
	wg.Go(func() { // traffic throughout
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			default:
			}
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			_, err := c.Request(ctx, "gateway", "echo", fmt.Appendf(nil, "%d", i))
			cancel()
			if err != nil {
				mu.Lock()
				failures = append(failures, err)
				mu.Unlock()
			}
		}
	})
	for _, s := range steps {
		if err := os.WriteFile(gwKey, s.gwFile, 0o600); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(clKey, s.clFile, 0o600); err != nil {
			t.Fatal(err)
		}
		// The side that stops accepting the old key reloads last.
		if err := Reload(clDir, cl.Keyring); err != nil {
			t.Fatalf("%s: client reload: %v", s.name, err)
		}
		if err := Reload(gwDir, gw.Keyring); err != nil {
			t.Fatalf("%s: gateway reload: %v", s.name, err)
		}
		if got := request(t, c, "step"); !strings.HasSuffix(got, "step") {
			t.Fatalf("%s: %q", s.name, got)
		}
		if peer := cl.Keyring.Peer("gateway"); peer.HMACKeys[0].KeyID() != s.clientSent {
			t.Fatalf("%s: client's primary key is %s, want %s", s.name, peer.HMACKeys[0].KeyID(), s.clientSent)
		}
	}
	close(stop)
	wg.Wait()
	if len(failures) > 0 {
		t.Fatalf("%d requests failed during rotation, first: %v", len(failures), failures[0])
	}
}

func TestWatchReloadsAndKeepsKeysOnBadFiles(t *testing.T) {
	gwDir, _ := setup(t, "hmac", PairOptions{HMAC: true})
	p, err := Load(gwDir)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	errs := make(chan error, 10)
	report := func(err error) {
		select {
		case errs <- err:
		case <-ctx.Done():
		}
	}
	var reloads atomic.Int64
	wg.Go(func() { Watch(ctx, gwDir, p.Keyring, 5*time.Millisecond, func() { reloads.Add(1) }, report) })
	defer func() { cancel(); wg.Wait() }()
	// A new peer appears, whole: made outside peers/ and renamed into it,
	// so that no reload sees it half written.
	staged := filepath.Join(gwDir, "door-9.new")
	if err := os.Mkdir(staged, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(staged, "hmac.key"), []byte(b64.EncodeToString(make([]byte, 32))+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(staged, "peer.conf"), []byte("send hmac\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(staged, filepath.Join(gwDir, "peers", "door-9")); err != nil {
		t.Fatal(err)
	}
	testwait.Until(t, "Watch to load the new peer", func() bool { return p.Keyring.Peer("door-9") != nil })
	// Watch is running now (the peer may have come with its first reload,
	// which is not reported): a change is reported as a reload.
	if err := os.WriteFile(filepath.Join(gwDir, "peers", "door-9", "hmac.key"), []byte(b64.EncodeToString(bytes.Repeat([]byte{1}, 32))+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	testwait.Until(t, "the reload to be reported", func() bool { return reloads.Load() > 0 })
	select {
	case err := <-errs:
		t.Fatalf("a valid directory was reported as an error: %v", err)
	default:
	}
	// A broken file is reported, and the keys in force stay.
	if err := os.WriteFile(filepath.Join(gwDir, "peers", "door-9", "peer.conf"), []byte("send nothing\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-errs:
		var fe *FileError
		if !errors.As(err, &fe) || !strings.HasSuffix(fe.Path, "peer.conf") {
			t.Fatalf("reported %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the broken file was not reported")
	}
	if p.Keyring.Peer("door-9") == nil || p.Keyring.Peer("client") == nil {
		t.Fatal("a failed reload dropped keys in force")
	}
}

func TestDescribe(t *testing.T) {
	gwDir, _ := setup(t, "hmac sig", PairOptions{HMAC: true})
	out, err := Describe(gwDir)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"id gateway", "signing    Ed25519", "decryption HPKE-MLKEM768X25519", "peer client: requires hmac+sig", "public ed25519 ", "public xwing "} {
		if !strings.Contains(out, want) {
			t.Fatalf("Describe lacks %q:\n%s", want, out)
		}
	}
	secret, _ := os.ReadFile(filepath.Join(gwDir, "peers", "client", "hmac.key"))
	if strings.Contains(out, strings.TrimSpace(string(secret))) {
		t.Fatal("Describe shows a secret")
	}
}

// PairOptions.Sign writes a sign line on both sides: with "es256" each
// side signs for the other with its ECDSA P-256 key, which is what a
// device of the C port's profile verifies (it holds no Ed25519 keys).
func TestPairSign(t *testing.T) {
	gwDir, clDir := setup(t, "sig", PairOptions{Sign: "es256"})
	for _, conf := range []string{filepath.Join(gwDir, "peers", "client", "peer.conf"), filepath.Join(clDir, "peers", "gateway", "peer.conf")} {
		data, err := os.ReadFile(conf)
		if err != nil {
			t.Fatal(err)
		}
		if string(data) != "send sig\nsign es256\n" {
			t.Fatalf("%s: %q", conf, data)
		}
	}
	// Each side can verify only the other's ES256 key: a round trip works
	// only if both sign with it.
	for _, dir := range []string{filepath.Join(gwDir, "peers", "client"), filepath.Join(clDir, "peers", "gateway")} {
		if err := os.Remove(filepath.Join(dir, "ed25519.pub")); err != nil {
			t.Fatal(err)
		}
	}
	gw, err := Load(gwDir)
	if err != nil {
		t.Fatal(err)
	}
	cl, err := Load(clDir)
	if err != nil {
		t.Fatal(err)
	}
	c := pairOver(t, gw.Keyring, cl.Keyring)
	if got, want := request(t, c, "hi"), "client "+envelope.Signature.String()+" hi"; got != want {
		t.Fatalf("reply %q, want %q", got, want)
	}
	// A key kind peer.conf does not know is refused before anything is
	// written.
	other := filepath.Join(t.TempDir(), "other")
	if err := Init(other, "other", InitOptions{}); err != nil {
		t.Fatal(err)
	}
	err = Pair(gwDir, other, PairOptions{Send: "sig", Sign: "dsa"})
	if err == nil || !strings.Contains(err.Error(), "sign ed25519|es256|rsa") {
		t.Fatalf("Pair with Sign dsa: %v", err)
	}
	if _, err := os.Stat(filepath.Join(gwDir, "peers", "other")); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("Pair with a bad Sign wrote peers/other: %v", err)
	}
}

func TestPeerConfClockless(t *testing.T) {
	for _, tc := range []struct {
		conf string
		want bool
	}{
		{"send hmac\n", false},
		{"send hmac\nclockless\n", true},
	} {
		gwDir, _ := setup(t, "hmac", PairOptions{HMAC: true})
		if err := os.WriteFile(filepath.Join(gwDir, "peers", "client", "peer.conf"), []byte(tc.conf), 0o644); err != nil {
			t.Fatal(err)
		}
		gw, err := Load(gwDir)
		if err != nil {
			t.Fatal(err)
		}
		if got := gw.Keyring.Peer("client").Policy.Clockless; got != tc.want {
			t.Errorf("peer.conf %q: Policy.Clockless = %v, want %v", tc.conf, got, tc.want)
		}
	}
}

// A peer's public key file that group or others may write is refused like
// a secret file others may read: the error names the file and the fix.
// Files that only others may read load.
func TestPeerPublicKeyWritableByOthers(t *testing.T) {
	for _, tt := range []struct {
		file string
		mode os.FileMode
		ok   bool
	}{
		{"ed25519.pub", 0o664, false},
		{"es256.pub", 0o646, false},
		{"x25519.pub", 0o620, false},
		{"xwing.pub", 0o666, false},
		{"ed25519.pub", 0o644, true},
		{"xwing.pub", 0o444, true},
		{"es256.pub", 0o600, true},
		{"peer.conf", 0o664, false},
		{"peer.conf", 0o644, true},
	} {
		t.Run(fmt.Sprintf("%s %v", tt.file, tt.mode), func(t *testing.T) {
			gw, _ := setup(t, "hmac sig", PairOptions{HMAC: true})
			path := filepath.Join(gw, "peers", "client", tt.file)
			if err := os.Chmod(path, tt.mode); err != nil {
				t.Fatal(err)
			}
			_, err := Load(gw)
			if tt.ok {
				if err != nil {
					t.Fatalf("Load = %v", err)
				}
				return
			}
			var fe *FileError
			if !errors.As(err, &fe) || fe.Path != path || !errors.Is(err, ErrWritable) || !strings.Contains(err.Error(), "chmod go-w") {
				t.Fatalf("Load = %v; want an error naming %s and chmod go-w", err, path)
			}
		})
	}
}

// Init, Pair and Export write no file that group or others may write (nor
// read, if it is secret): what they make loads.
func TestWrittenFilesAreNotWritableByOthers(t *testing.T) {
	gw, cl := setup(t, "hmac sig", PairOptions{HMAC: true, HOTP: true, PSK: true})
	for _, dir := range []string{gw, cl} {
		err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
			if err != nil || d.IsDir() {
				return err
			}
			st, err := os.Stat(path)
			if err != nil {
				return err
			}
			mask := os.FileMode(0o022)
			if strings.HasSuffix(path, ".key") {
				mask = 0o077
			}
			if st.Mode().Perm()&mask != 0 {
				t.Errorf("%s: mode %v", path, st.Mode().Perm())
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
}
