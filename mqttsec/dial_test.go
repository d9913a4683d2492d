package mqttsec_test

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	mochi "github.com/mochi-mqtt/server/v2"
	"github.com/mochi-mqtt/server/v2/listeners"
	"github.com/mochi-mqtt/server/v2/packets"

	"github.com/mqttsec/mqttsec/internal/testbroker"
	"github.com/mqttsec/mqttsec/mqttsec"
)

// ParseBrokerURL takes the same URLs for both MQTT versions, host:port
// alone as tcp://, fills in MQTT's ports, and refuses unknown schemes,
// parts the scheme does not use and credentials, never quoting a
// password.
func TestParseBrokerURL(t *testing.T) {
	for _, tt := range []struct {
		in, want string
		err      []string // in the error; nil for none
		creds    bool     // the error wraps ErrCredentialsInURL
	}{
		{in: "tcp://127.0.0.1:1883", want: "tcp://127.0.0.1:1883"},
		{in: "127.0.0.1:1883", want: "tcp://127.0.0.1:1883"},
		{in: "broker.example:1884", want: "tcp://broker.example:1884"},
		{in: "[::1]:1883", want: "tcp://[::1]:1883"},
		{in: ":1883", want: "tcp://127.0.0.1:1883"},
		{in: " tcp://h:1 ", want: "tcp://h:1"},
		{in: "tcp://h:1/", want: "tcp://h:1"},
		{in: "localhost", want: "tcp://localhost:1883"},
		{in: "mqtt://h", want: "mqtt://h:1883"},
		{in: "tcp://[::1]", want: "tcp://[::1]:1883"},
		{in: "tcp://h:", want: "tcp://h:1883"},
		{in: "TLS://h:8884", want: "tls://h:8884"},
		{in: "tls://h", want: "tls://h:8883"},
		{in: "ssl://h", want: "ssl://h:8883"},
		{in: "mqtts://h", want: "mqtts://h:8883"},
		{in: "mqtt+ssl://h", want: "mqtt+ssl://h:8883"},
		{in: "tcps://h:1", want: "tcps://h:1"},
		{in: "ws://h:8080/mqtt", want: "ws://h:8080/mqtt"},
		{in: "wss://h/mqtt?token=x", want: "wss://h/mqtt?token=x"},
		{in: "unix:///run/mosquitto.sock", want: "unix:///run/mosquitto.sock"},
		{in: "unix://mosquitto.sock", want: "unix://mosquitto.sock"},

		{in: "", err: []string{"empty"}},
		{in: "   ", err: []string{"empty"}},
		{in: "http://h:1883", err: []string{`"http"`, "tcp://", "mqtt://", "tls://", "mqtts://", "ws://", "wss://", "unix://", "host:port"}},
		{in: "redis://h:6379", err: []string{`"redis"`, "tcp://"}},
		{in: "tcp://", err: []string{"no host"}},
		{in: "tcp://h:port", err: []string{`"tcp://h:port"`, "invalid port"}},
		{in: "tcp://h:1883/mqtt", err: []string{"takes no path"}},
		{in: "tcp://h:1883?x=1", err: []string{"takes no path, ?query"}},
		{in: "tls://h:1883#x", err: []string{"#fragment"}},
		{in: "ws://h/mqtt#x", err: []string{"takes no #fragment"}},
		{in: "unix://", err: []string{"unix:///absolute/path"}},
		{in: "unix://run/mosquitto.sock", err: []string{"unix:///absolute/path"}},

		{in: "tcp://alice:s3cret@h:1883", err: []string{"Username", "Password"}, creds: true},
		{in: "alice:s3cret@h:1883", err: []string{"Username"}, creds: true},
		{in: "wss://alice:s3cret@h/mqtt", err: []string{"Username"}, creds: true},
		{in: "tcp://alice@h:1883", err: []string{"Username"}, creds: true},
		{in: "http://alice:s3cret@h", creds: true},
		// A password with characters a URL does not allow there: the
		// parser's reason would quote part of it.
		{in: "tcp://alice:s3cret/x@h:1883", err: []string{`"tcp://…@h:1883"`}},
		{in: "tcp://alice:s3cret#x@h:1883", err: []string{`"tcp://…@h:1883"`}},
		{in: "tcp://alice:1234/s3cret@h:1883", err: []string{`"tcp://…@h:1883"`, "takes no path"}},
		{in: "tcp://alice:1234?s3cret@h:1883", err: []string{`"tcp://…@h:1883"`, "?query"}},
		{in: "tcp://alice:1234#s3cret@h:1883", err: []string{`"tcp://…@h:1883"`, "#fragment"}},
	} {
		t.Run(tt.in, func(t *testing.T) {
			u, err := mqttsec.ParseBrokerURL(tt.in)
			if tt.want != "" {
				if err != nil || u.String() != tt.want {
					t.Fatalf("ParseBrokerURL = %v, %v; want %s", u, err, tt.want)
				}
				return
			}
			if err == nil {
				t.Fatalf("ParseBrokerURL = %v; want an error", u)
			}
			for _, s := range tt.err {
				if !strings.Contains(err.Error(), s) {
					t.Errorf("error %q does not say %s", err, s)
				}
			}
			if !errors.Is(err, mqttsec.ErrInvalidConfig) || errors.Is(err, mqttsec.ErrCredentialsInURL) != tt.creds {
				t.Errorf("error %v: wraps ErrInvalidConfig %v, ErrCredentialsInURL %v (want %v)",
					err, errors.Is(err, mqttsec.ErrInvalidConfig), !tt.creds, tt.creds)
			}
			if strings.Contains(err.Error(), "s3cret") || strings.Contains(err.Error(), "1234") {
				t.Errorf("error %q shows the password", err)
			}
		})
	}
}

// Whatever the input, ParseBrokerURL returns an error wrapping
// ErrInvalidConfig or a URL without user info, with an accepted scheme,
// that it reads back unchanged; and an error never quotes what comes
// before an '@', where a password would be.
func FuzzParseBrokerURL(f *testing.F) {
	for _, s := range []string{"tcp://h:1883", "h:1", ":1", "wss://h/p?q", "unix:///x", "tcp://a:b@h", "tcp://a:b/c@h", "TLS://[::1]", "ws://h/@x", "tcp://h#x@y"} {
		f.Add(s, "")
	}
	f.Fuzz(func(t *testing.T, before, after string) {
		const marker = "Zq9sEcReTzq9"
		in := before + marker + after
		u, err := mqttsec.ParseBrokerURL(in)
		if err != nil {
			if !errors.Is(err, mqttsec.ErrInvalidConfig) {
				t.Fatalf("error %v does not wrap ErrInvalidConfig", err)
			}
			if strings.Contains(after, "@") && strings.Contains(err.Error(), marker) {
				t.Fatalf("ParseBrokerURL(%q): error %q quotes what precedes the '@'", in, err)
			}
			return
		}
		if u.User != nil {
			t.Fatalf("ParseBrokerURL(%q) = %v, with user info", in, u)
		}
		again, err := mqttsec.ParseBrokerURL(u.String())
		if err != nil || again.String() != u.String() {
			t.Fatalf("ParseBrokerURL(%q) = %v, which reads back as %v, %v", in, u, again, err)
		}
	})
}

// Protocol chooses the transport: 5 (autopaho) by default, 3 for MQTT
// 3.1.1; options that cannot work are refused before any connection,
// without quoting the password.
func TestNewTransportOptions(t *testing.T) {
	pw := []byte("s3cret")
	for _, tt := range []struct {
		name   string
		broker string
		opt    mqttsec.TransportOptions
		v3     bool
		err    string // in the error; "" for none
	}{
		{name: "default v5", opt: mqttsec.TransportOptions{ClientID: "a"}},
		{name: "v5", opt: mqttsec.TransportOptions{ClientID: "a", Protocol: 5}},
		{name: "v3", opt: mqttsec.TransportOptions{ClientID: "a", Protocol: 3}, v3: true},
		{name: "v4", opt: mqttsec.TransportOptions{ClientID: "a", Protocol: 4}, err: "protocol 4"},
		{name: "bad URL", broker: "http://h", opt: mqttsec.TransportOptions{ClientID: "a"}, err: `"http"`},
		{name: "credentials in URL", broker: "tcp://alice:s3cret@h", opt: mqttsec.TransportOptions{ClientID: "a"}, err: "Username"},
		{name: "no client id", opt: mqttsec.TransportOptions{}, err: "client id is empty"},
		{name: "client id with NUL", opt: mqttsec.TransportOptions{ClientID: "a\x00b"}, err: "client id must be UTF-8"},
		{name: "client id too long", opt: mqttsec.TransportOptions{ClientID: strings.Repeat("a", 65536)}, err: "at most 65535 bytes"},
		{name: "user name not UTF-8", opt: mqttsec.TransportOptions{ClientID: "a", Username: "al\xffice", Password: pw}, err: "user name must be UTF-8"},
		{name: "password alone", opt: mqttsec.TransportOptions{ClientID: "a", Password: pw}, err: "password needs a user name"},
		{name: "password too long", opt: mqttsec.TransportOptions{ClientID: "a", Username: "alice", Password: bytes.Repeat(pw, 11000)}, err: "longer than 65535 bytes"},
		{name: "user name alone", opt: mqttsec.TransportOptions{ClientID: "a", Username: "alice"}},
		{name: "TLS over tcp", opt: mqttsec.TransportOptions{ClientID: "a", TLS: &tls.Config{}}, err: "tcp:// does not use TLS"},
		{name: "TLS over ws", broker: "ws://h/mqtt", opt: mqttsec.TransportOptions{ClientID: "a", TLS: &tls.Config{}}, err: "wss://"},
		{name: "TLS over unix", broker: "unix:///s", opt: mqttsec.TransportOptions{ClientID: "a", Protocol: 3, TLS: &tls.Config{}}, err: "unix:// does not use TLS"},
		{name: "TLS over tls", broker: "tls://h", opt: mqttsec.TransportOptions{ClientID: "a", TLS: &tls.Config{}}},
		{name: "TLS over wss", broker: "wss://h/mqtt", opt: mqttsec.TransportOptions{ClientID: "a", Protocol: 3, TLS: &tls.Config{}}, v3: true},
		{name: "negative timeout", opt: mqttsec.TransportOptions{ClientID: "a", ConnectTimeout: -1}, err: "connect timeout"},
		{name: "negative keep-alive", opt: mqttsec.TransportOptions{ClientID: "a", KeepAlive: -time.Second}, err: "keep-alive"},
		{name: "keep-alive too long", opt: mqttsec.TransportOptions{ClientID: "a", KeepAlive: 65536 * time.Second}, err: "keep-alive"},
		{name: "longest keep-alive", opt: mqttsec.TransportOptions{ClientID: "a", KeepAlive: 65535 * time.Second}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			broker := tt.broker
			if broker == "" {
				broker = "127.0.0.1:1883"
			}
			tr, err := mqttsec.NewTransport(broker, tt.opt)
			if tt.err != "" {
				if err == nil || !strings.Contains(err.Error(), tt.err) || !errors.Is(err, mqttsec.ErrInvalidConfig) {
					t.Fatalf("NewTransport = %v, %v; want an ErrInvalidConfig saying %q", tr, err, tt.err)
				}
				if strings.Contains(err.Error(), "s3cret") {
					t.Fatalf("error %q shows the password", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			_, v3 := tr.(*mqttsec.PahoV3)
			_, v5 := tr.(*mqttsec.PahoV5)
			if v3 != tt.v3 || v5 == tt.v3 {
				t.Fatalf("NewTransport = %T; want MQTT 3.1.1 %v", tr, tt.v3)
			}
		})
	}
}

// connectRecorder is a broker hook that admits only alice with password
// pw (or, with anyone set, every client) and keeps the CONNECT packets it
// was shown.
type connectRecorder struct {
	mochi.HookBase
	anyone bool

	mu       sync.Mutex
	connects []packets.Packet
}

func (*connectRecorder) ID() string { return "connect-recorder" }

func (*connectRecorder) Provides(b byte) bool {
	return b == mochi.OnConnectAuthenticate || b == mochi.OnACLCheck
}

func (r *connectRecorder) OnConnectAuthenticate(_ *mochi.Client, pk packets.Packet) bool {
	r.mu.Lock()
	r.connects = append(r.connects, pk)
	r.mu.Unlock()
	return r.anyone || string(pk.Connect.Username) == "alice" && string(pk.Connect.Password) == "pw"
}

func (*connectRecorder) OnACLCheck(*mochi.Client, string, bool) bool { return true }

// last returns the latest CONNECT packet.
func (r *connectRecorder) last(t *testing.T) packets.Packet {
	t.Helper()
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(r.connects) == 0 {
		t.Fatal("the broker saw no CONNECT")
	}
	return r.connects[len(r.connects)-1]
}

// startRecordingBroker runs a mochi broker on a free loopback port,
// speaking TLS with tlsCfg unless it is nil, that authenticates with rec.
// It returns the broker's host:port.
func startRecordingBroker(t *testing.T, tlsCfg *tls.Config, rec *connectRecorder) string {
	t.Helper()
	srv := mochi.New(&mochi.Options{Logger: slog.New(slog.DiscardHandler)})
	if err := srv.AddHook(rec, nil); err != nil {
		t.Fatal(err)
	}
	l := listeners.NewTCP(listeners.Config{ID: "t", Address: "127.0.0.1:0", TLSConfig: tlsCfg})
	if err := srv.AddListener(l); err != nil {
		t.Fatal(err)
	}
	if err := srv.Serve(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Close() })
	return l.Address()
}

// startTransport starts tr within d and closes it again, returning Start's error.
func startTransport(t *testing.T, tr mqttsec.Transport, d time.Duration) error {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	err := tr.Start(ctx, func(mqttsec.Inbound) {})
	closeCtx, closeCancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer closeCancel()
	if err := tr.Close(closeCtx); err != nil {
		t.Errorf("Close: %v", err)
	}
	return err
}

// The user name and password reach the broker on both MQTT versions,
// with the client id, the protocol version and the keep-alive; a wrong
// password or none is refused.
func TestNewTransportSendsCredentials(t *testing.T) {
	rec := new(connectRecorder)
	addr := startRecordingBroker(t, nil, rec)
	for _, proto := range protocols {
		for _, tt := range []struct {
			name      string
			user      string
			password  string
			keepAlive time.Duration
			wantKeep  uint16
			ok        bool
		}{
			{name: "right", user: "alice", password: "pw", wantKeep: 30, ok: true},
			{name: "keep-alive rounded up", user: "alice", password: "pw", keepAlive: 1500 * time.Millisecond, wantKeep: 2, ok: true},
			{name: "wrong password", user: "alice", password: "not-pw"},
			{name: "no password", user: "alice"},
			{name: "nothing"},
		} {
			t.Run(fmt.Sprintf("v%d/%s", proto, tt.name), func(t *testing.T) {
				checkNoLeaks(t)
				id := fmt.Sprintf("creds-%d-%d", proto, time.Now().UnixNano())
				password := []byte(tt.password)
				tr, err := mqttsec.NewTransport(addr, mqttsec.TransportOptions{
					ClientID: id, Protocol: proto, Username: tt.user, Password: password, KeepAlive: tt.keepAlive,
				})
				if err != nil {
					t.Fatal(err)
				}
				clear(password) // the transport keeps its own copy
				timeout := 10 * time.Second
				if !tt.ok {
					timeout = time.Second
				}
				if err := startTransport(t, tr, timeout); (err == nil) != tt.ok {
					t.Fatalf("Start = %v; want success %v", err, tt.ok)
				}
				pk := rec.last(t)
				c := pk.Connect
				wantVersion := byte(proto)
				if proto == 3 {
					wantVersion = 4 // MQTT 3.1.1's protocol level
				}
				if c.ClientIdentifier != id || pk.ProtocolVersion != wantVersion ||
					string(c.Username) != tt.user || c.UsernameFlag != (tt.user != "") ||
					string(c.Password) != tt.password || c.PasswordFlag != (tt.password != "") {
					t.Fatalf("CONNECT: client id %q, version %d, user %q (%v), password %q (%v); want %q, %d, %q, %q",
						c.ClientIdentifier, pk.ProtocolVersion, c.Username, c.UsernameFlag, c.Password, c.PasswordFlag, id, wantVersion, tt.user, tt.password)
				}
				if tt.ok && c.Keepalive != tt.wantKeep {
					t.Fatalf("CONNECT keep-alive %d s, want %d", c.Keepalive, tt.wantKeep)
				}
			})
		}
	}
}

// Over every TLS scheme, on both MQTT versions, a transport trusts the
// CA it is given (as TLSConfig builds it from files) and, given none, the
// system's roots, which refuse the test CA; a broker that requires a
// client certificate admits only a transport that has one.
func TestNewTransportTLS(t *testing.T) {
	certs, files := newTestCerts(t)
	caOnly, err := mqttsec.TLSConfig(mqttsec.TLSFiles{CAFile: files.CA})
	if err != nil {
		t.Fatal(err)
	}
	withCert, err := mqttsec.TLSConfig(mqttsec.TLSFiles{CAFile: files.CA, CertFile: files.ClientCert, KeyFile: files.ClientKey})
	if err != nil {
		t.Fatal(err)
	}
	anyone := &connectRecorder{anyone: true}
	tlsAddr := startRecordingBroker(t, certs.ServerTLS(false), anyone)
	mtlsAddr := startRecordingBroker(t, certs.ServerTLS(true), anyone)
	for _, proto := range protocols {
		for _, tt := range []struct {
			name   string
			broker string
			tls    *tls.Config
			ok     bool
			unkCA  bool // refused as signed by an unknown authority
		}{
			{name: "tls", broker: "tls://" + tlsAddr, tls: caOnly, ok: true},
			{name: "mqtts", broker: "mqtts://" + tlsAddr, tls: caOnly, ok: true},
			{name: "ssl localhost", broker: "ssl://" + strings.Replace(tlsAddr, "127.0.0.1", "localhost", 1), tls: caOnly, ok: true},
			{name: "system roots", broker: "tls://" + tlsAddr, unkCA: true},
			{name: "mtls", broker: "tls://" + mtlsAddr, tls: withCert, ok: true},
			{name: "mtls without certificate", broker: "tls://" + mtlsAddr, tls: caOnly},
		} {
			t.Run(fmt.Sprintf("v%d/%s", proto, tt.name), func(t *testing.T) {
				checkNoLeaks(t)
				tr, err := mqttsec.NewTransport(tt.broker, mqttsec.TransportOptions{
					ClientID: fmt.Sprintf("tls-%d-%d", proto, time.Now().UnixNano()), Protocol: proto, TLS: tt.tls,
				})
				if err != nil {
					t.Fatal(err)
				}
				timeout := 10 * time.Second
				if !tt.ok {
					timeout = time.Second
				}
				err = startTransport(t, tr, timeout)
				if (err == nil) != tt.ok {
					t.Fatalf("Start = %v; want success %v", err, tt.ok)
				}
				var unknown x509.UnknownAuthorityError
				if tt.unkCA && !errors.As(err, &unknown) && !strings.Contains(fmt.Sprint(err), "certificate signed by unknown authority") {
					t.Fatalf("Start = %v; want a refusal of the broker's certificate", err)
				}
			})
		}
	}
	// NewTransport copies the configuration: a change made afterwards does
	// not reach the connection.
	cfg := caOnly.Clone()
	tr, err := mqttsec.NewTransport("tls://"+tlsAddr, mqttsec.TransportOptions{ClientID: "tls-copied", TLS: cfg})
	if err != nil {
		t.Fatal(err)
	}
	cfg.RootCAs = x509.NewCertPool()
	if err := startTransport(t, tr, 10*time.Second); err != nil {
		t.Fatalf("Start after the caller changed its TLS configuration: %v", err)
	}
}

// closedPort returns a loopback address nothing listens on (one that was
// just free).
func closedPort(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	return addr
}

// Without ConnectRetry, Start fails at the first failed attempt with its
// cause, on both versions, long before its context ends; with it, Start
// waits for the broker to come up.
func TestNewTransportConnectRetry(t *testing.T) {
	for _, proto := range []int{3, 5} {
		t.Run(fmt.Sprintf("v%d", proto), func(t *testing.T) {
			addr := closedPort(t)
			tr, err := mqttsec.NewTransport("tcp://"+addr, mqttsec.TransportOptions{ClientID: "at-once", Protocol: proto})
			if err != nil {
				t.Fatal(err)
			}
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			err = tr.Start(ctx, func(mqttsec.Inbound) {})
			if err == nil || ctx.Err() != nil || !strings.Contains(err.Error(), "connection refused") {
				t.Fatalf("Start = %v (context: %v); want the refused connection, before the context ended", err, ctx.Err())
			}

			tr, err = mqttsec.NewTransport("tcp://"+addr, mqttsec.TransportOptions{ClientID: "retrying", Protocol: proto, ConnectRetry: true})
			if err != nil {
				t.Fatal(err)
			}
			started := make(chan error, 1)
			go func() { started <- tr.Start(ctx, func(mqttsec.Inbound) {}) }()
			b, err := testbroker.Start(addr, nil)
			if err != nil {
				t.Fatal(err)
			}
			defer b.Close()
			select {
			case err := <-started:
				if err != nil {
					t.Fatalf("Start with ConnectRetry = %v; want it connected once the broker came up", err)
				}
			case <-ctx.Done():
				t.Fatal("Start with ConnectRetry did not return")
			}
			tr.Close(context.Background())
		})
	}
}
