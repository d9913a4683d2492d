package mqttsec

import (
	"cmp"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/url"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/eclipse/paho.golang/autopaho"
	"github.com/eclipse/paho.golang/paho"
	mqtt "github.com/eclipse/paho.mqtt.golang"
)

// TransportOptions is what NewTransport needs besides the broker's URL.
// Only ClientID is required.
type TransportOptions struct {
	// ClientID is the MQTT client id. The broker keeps one connection per
	// id: a second connection with the same id ends the first, so every
	// process (and every transport in it) needs its own. UTF-8 without NUL,
	// at most 65535 bytes; brokers may accept less (MQTT 3.1.1 promises
	// only 23 letters and digits).
	ClientID string
	// Protocol is the MQTT version: 5 (MQTT 5, through autopaho; the
	// default when zero) or 3 (MQTT 3.1.1, through paho.mqtt.golang).
	Protocol int
	// TLS is the client TLS configuration for the TLS schemes (tls://,
	// ssl://, mqtts://, mqtt+ssl://, tcps://, wss://), such as TLSConfig
	// builds; it is copied. Nil means the system's root certificates and
	// TLS 1.2 or later. Giving one with a scheme that does not use TLS is
	// an error, rather than a connection in the clear.
	TLS *tls.Config
	// Username and Password are the MQTT credentials, for brokers that
	// require them: a Password needs a Username (MQTT 3.1.1 allows no
	// password alone). The password is copied; it is sent as it is, so
	// over a scheme without TLS the network can read it.
	Username string
	Password []byte
	// ConnectTimeout bounds each connection attempt; zero means 10 s.
	ConnectTimeout time.Duration
	// KeepAlive is the MQTT keep-alive interval, in whole seconds (rounded
	// up), at most 65535 s; zero means 30 s.
	KeepAlive time.Duration
	// ConnectRetry makes Start keep trying to connect, with back-off,
	// until its context ends (a broker still starting, say). Without it
	// Start fails at the first attempt that fails, at once and with its
	// cause (connection refused, a TLS or certificate error, a refused
	// CONNACK), on both MQTT versions. Either way, once connected the
	// transport reconnects by itself whenever the connection drops.
	ConnectRetry bool
}

// What zero means in TransportOptions.
const (
	defaultConnectTimeout = 10 * time.Second
	defaultKeepAlive      = 30 * time.Second
)

// maxMQTTString is the longest string (client id, user name) or binary
// field (password) an MQTT CONNECT packet carries: a two-byte length.
const maxMQTTString = 65535

// ErrCredentialsInURL is wrapped by the error of ParseBrokerURL and
// NewTransport for a broker URL with a user name or password in it
// (tcp://user:password@host). MQTT 5 would ignore them and MQTT 3.1.1 send
// them, and a password in a URL shows in process lists, shell histories
// and logs: credentials go in TransportOptions.Username and Password. It
// wraps ErrInvalidConfig.
var ErrCredentialsInURL = fmt.Errorf("%w: the broker URL holds a user name or password", ErrInvalidConfig)

// brokerSchemes are the URL schemes both transports dial, in the order
// errors list them.
var brokerSchemes = slices.Concat([]string{"tcp", "mqtt"}, tlsSchemes, wsSchemes, []string{"unix"})

// usesTLS reports whether connections to a URL with scheme are made over
// TLS.
func usesTLS(scheme string) bool { return slices.Contains(tlsSchemes, scheme) || scheme == "wss" }

// ParseBrokerURL reads a broker's address, for MQTT 3.1.1 and 5 alike:
//
//   - tcp://host:port or mqtt://host:port: plain TCP;
//   - tls://, ssl://, mqtts://, mqtt+ssl:// or tcps://host:port: TLS;
//   - ws://host:port/path, or wss:// over TLS: a WebSocket;
//   - unix:///absolute/path: a Unix socket;
//   - host:port without a scheme: tcp://host:port (and :port alone
//     tcp://127.0.0.1:port).
//
// A TCP or TLS URL without a port gets MQTT's registered one: 1883, or
// 8883 for TLS. The scheme is returned in lower case. Any other scheme is
// an error naming the accepted ones, as is a part the scheme does not use
// (a path on tcp://, a #fragment). A user name or password in the URL is
// refused (ErrCredentialsInURL). Errors wrap ErrInvalidConfig and never
// show what could be a password.
func ParseBrokerURL(s string) (*url.URL, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return nil, fmt.Errorf("%w: the broker URL is empty: give tcp://host:port or host:port", ErrInvalidConfig)
	}
	s = withScheme(s)
	u, err := parseURL(s)
	if err != nil {
		return nil, err
	}
	if err := checkParts(u, s); err != nil {
		return nil, err
	}
	setDefaultPort(u)
	// A host url.Parse lets through may still not survive being written
	// out and read again (a colon in it, say): Paho would read another.
	if again, err := url.Parse(u.String()); err != nil || again.String() != u.String() {
		return nil, fmt.Errorf("%w: broker URL %q: invalid host", ErrInvalidConfig, shownURL(s))
	}
	return u, nil
}

// withScheme is s, or tcp://s if s has no scheme (and tcp://127.0.0.1:port
// for :port alone).
func withScheme(s string) string {
	if strings.Contains(s, "://") {
		return s
	}
	if strings.HasPrefix(s, ":") {
		s = "127.0.0.1" + s
	}
	return "tcp://" + s
}

// parseURL parses s, refusing a user name or password in it, and returns
// it with its scheme in lower case.
func parseURL(s string) (*url.URL, error) {
	u, err := url.Parse(s)
	if err != nil {
		if strings.Contains(s, "@") {
			// url.Parse's reason may quote part of what precedes the '@'.
			return nil, fmt.Errorf("%w: broker URL %q is not a valid URL (a user name or password does not belong in it)", ErrInvalidConfig, shownURL(s))
		}
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err // without the URL, which is quoted here
		}
		return nil, fmt.Errorf("%w: broker URL %q: %w", ErrInvalidConfig, s, err)
	}
	if u.User != nil {
		return nil, fmt.Errorf("%w: give them as TransportOptions.Username and Password instead (a password in a URL shows in process lists and logs)", ErrCredentialsInURL)
	}
	u.Scheme = strings.ToLower(u.Scheme)
	return u, nil
}

// checkParts checks that u, read from s, has a known scheme, a host (or
// for unix:// a path), and no part its scheme has no use for.
func checkParts(u *url.URL, s string) error {
	webSocket := slices.Contains(wsSchemes, u.Scheme)
	switch {
	case !slices.Contains(brokerSchemes, u.Scheme):
		return fmt.Errorf("%w: broker URL %q: unknown scheme %q; the accepted ones are %s:// (or host:port alone for tcp://)",
			ErrInvalidConfig, shownURL(s), u.Scheme, strings.Join(brokerSchemes, "://, "))
	case u.Scheme == "unix" && (u.Host == "") == (u.Path == ""):
		return fmt.Errorf("%w: broker URL %q: give unix:///absolute/path (three slashes)", ErrInvalidConfig, shownURL(s))
	case u.Scheme != "unix" && u.Host == "":
		return fmt.Errorf("%w: broker URL %q has no host", ErrInvalidConfig, shownURL(s))
	case strings.Contains(s, "#"),
		!webSocket && (u.RawQuery != "" || u.ForceQuery),
		!webSocket && u.Scheme != "unix" && u.Path != "" && u.Path != "/":
		// Paho would ignore these parts, and an '@' in them may be the end
		// of a password.
		return fmt.Errorf("%w: broker URL %q: %s:// takes no %s", ErrInvalidConfig, shownURL(s), u.Scheme, unusedParts(u.Scheme))
	}
	return nil
}

// setDefaultPort gives a TCP or TLS URL without a port MQTT's registered
// one, 1883 or 8883 for TLS, and drops its empty path ("/").
func setDefaultPort(u *url.URL) {
	if u.Scheme == "unix" || slices.Contains(wsSchemes, u.Scheme) {
		return
	}
	if u.Port() == "" {
		port := "1883"
		if usesTLS(u.Scheme) {
			port = "8883"
		}
		u.Host = net.JoinHostPort(u.Hostname(), port)
	}
	u.Path = ""
}

// unusedParts names the parts of a URL that scheme has no use for.
func unusedParts(scheme string) string {
	switch {
	case slices.Contains(wsSchemes, scheme):
		return "#fragment"
	case scheme == "unix":
		return "?query or #fragment"
	}
	return "path, ?query or #fragment"
}

// shownURL is s as an error may quote it: whatever precedes an '@' after
// the scheme, which could be a user name and password, is left out.
func shownURL(s string) string {
	at := strings.LastIndex(s, "@")
	if at < 0 {
		return s
	}
	scheme, _, _ := strings.Cut(s, "://")
	return scheme + "://…" + s[at:]
}

// NewTransport returns an unstarted transport to the broker at brokerURL
// (see ParseBrokerURL for the forms it takes): NewPahoV5 for MQTT 5, the
// default, or NewPahoV3 for MQTT 3.1.1, configured from opt. For what
// TransportOptions does not cover (several broker URLs, a session kept
// across restarts, WebSocket headers, back-off), fill in an
// autopaho.ClientConfig or mqtt.ClientOptions and call NewPahoV5 or
// NewPahoV3 directly.
//
// Errors wrap ErrInvalidConfig; none of them shows the password.
func NewTransport(brokerURL string, opt TransportOptions) (Transport, error) {
	u, err := ParseBrokerURL(brokerURL)
	if err != nil {
		return nil, err
	}
	if err := opt.check(u); err != nil {
		return nil, err
	}
	tlsCfg := opt.TLS.Clone()
	if tlsCfg == nil && usesTLS(u.Scheme) {
		tlsCfg = &tls.Config{MinVersion: tls.VersionTLS12}
	}
	var password []byte // nil for none: an empty one would still be sent
	if len(opt.Password) > 0 {
		password = slices.Clone(opt.Password)
	}
	connectTimeout := cmp.Or(opt.ConnectTimeout, defaultConnectTimeout)
	keepAlive := uint16((cmp.Or(opt.KeepAlive, defaultKeepAlive) + time.Second - 1) / time.Second) // in seconds, rounded up
	if opt.Protocol == 3 {
		// Protocol level 4 is MQTT 3.1.1: without it, Paho tries MQTT 3.1
		// again after every refusal, a wrong password included.
		o := mqtt.NewClientOptions().AddBroker(u.String()).SetClientID(opt.ClientID).SetProtocolVersion(4).
			SetConnectTimeout(connectTimeout).SetKeepAlive(time.Duration(keepAlive) * time.Second).
			SetConnectRetry(opt.ConnectRetry)
		if tlsCfg != nil {
			o.SetTLSConfig(tlsCfg)
		}
		if opt.Username != "" {
			o.SetUsername(opt.Username).SetPassword(string(password))
		}
		return NewPahoV3(o), nil
	}
	t := NewPahoV5(autopaho.ClientConfig{
		ServerUrls:      []*url.URL{u},
		TlsCfg:          tlsCfg,
		KeepAlive:       keepAlive,
		ConnectTimeout:  connectTimeout,
		ConnectUsername: opt.Username,
		ConnectPassword: password,
		ClientConfig:    paho.ClientConfig{ClientID: opt.ClientID},
	})
	t.failFirst = !opt.ConnectRetry
	return t, nil
}

// check refuses options NewTransport cannot turn into a working
// connection to u, one problem at a time, never quoting the password.
func (opt *TransportOptions) check(u *url.URL) error {
	switch {
	case opt.Protocol != 0 && opt.Protocol != 3 && opt.Protocol != 5:
		return fmt.Errorf("%w: MQTT protocol %d: give 5 (or 0 for 5) or 3 (for 3.1.1)", ErrInvalidConfig, opt.Protocol)
	case opt.ClientID == "":
		return fmt.Errorf("%w: the MQTT client id is empty: each connection to a broker needs its own", ErrInvalidConfig)
	case !validMQTTString(opt.ClientID):
		return fmt.Errorf("%w: the MQTT client id must be UTF-8 without NUL, at most %d bytes", ErrInvalidConfig, maxMQTTString)
	case opt.Username != "" && !validMQTTString(opt.Username):
		return fmt.Errorf("%w: the MQTT user name must be UTF-8 without NUL, at most %d bytes", ErrInvalidConfig, maxMQTTString)
	case len(opt.Password) > 0 && opt.Username == "":
		return fmt.Errorf("%w: a password needs a user name (MQTT 3.1.1 allows no password alone)", ErrInvalidConfig)
	case len(opt.Password) > maxMQTTString:
		return fmt.Errorf("%w: the password is longer than %d bytes", ErrInvalidConfig, maxMQTTString)
	case opt.TLS != nil && !usesTLS(u.Scheme):
		return fmt.Errorf("%w: a TLS configuration is given, but %s:// does not use TLS: give a URL with a TLS scheme (%s://), or no TLS configuration",
			ErrInvalidConfig, u.Scheme, strings.Join(append(slices.Clone(tlsSchemes), "wss"), "://, "))
	case opt.ConnectTimeout < 0:
		return fmt.Errorf("%w: negative connect timeout %v", ErrInvalidConfig, opt.ConnectTimeout)
	case opt.KeepAlive < 0 || opt.KeepAlive > maxMQTTString*time.Second:
		return fmt.Errorf("%w: keep-alive %v: give 1 s to %v (or zero for %v)", ErrInvalidConfig, opt.KeepAlive, maxMQTTString*time.Second, defaultKeepAlive)
	}
	return nil
}

// validMQTTString reports whether s can be an MQTT UTF-8 string: valid
// UTF-8, without NUL, at most 65535 bytes.
func validMQTTString(s string) bool {
	return len(s) <= maxMQTTString && utf8.ValidString(s) && !strings.ContainsRune(s, 0)
}
