package mqttsec_test

// What a real Mosquitto 2 does with what the ACL of Topics.MosquittoACL
// forbids, on MQTT 3.1.1 and 5, and what mqttsec makes of it. The same
// rules are loaded two ways:
//
//   - as an acl_file: Mosquitto grants every subscription, whatever the
//     ACL says, and checks each message against the reader's "read" rules
//     only when it delivers it, dropping what the reader may not read.
//     The client cannot tell: Start succeeds and nothing arrives;
//   - as roles of the dynamic security plugin, which checks a subscription
//     against "subscribePattern" rules and refuses it in the SUBACK (0x87
//     on MQTT 5, 0x80 on 3.1.1): Start fails with ErrSubscribeRefused.
//
// Both refuse a forbidden PUBLISH: in the PUBACK with reason code 0x87 on
// MQTT 5 (ErrPublishRefused, at once), and on MQTT 3.1.1, whose PUBACK has
// no code, by acknowledging and dropping it (a request then gets no reply).

import (
	"bufio"
	"bytes"
	"context"
	"crypto/pbkdf2"
	"crypto/rand"
	"crypto/sha512"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/eclipse/paho.golang/paho"
	mqtt "github.com/eclipse/paho.mqtt.golang"

	"github.com/mqttsec/mqttsec/envelope"
	"github.com/mqttsec/mqttsec/internal/mosquitto"
	"github.com/mqttsec/mqttsec/mqttsec"
)

// fast bounds how long a refusal the broker reports may take to surface:
// one round trip to a broker on loopback, far below the deadlines of the
// calls that report it.
const fast = 2 * time.Second

// aclKinds are the two ways a Mosquitto takes the generated rules.
var aclKinds = []struct {
	name  string
	start func(t *testing.T, ids []mqttsec.ACLIdentity) *aclBroker
	// refusesSubscriptions: the broker checks subscriptions and refuses
	// forbidden ones in the SUBACK.
	refusesSubscriptions bool
}{
	{"acl_file", aclMosquitto, false},
	{"dynsec", dynsecMosquitto, true},
}

// TestMosquittoACLAnswers pins, packet by packet, what Mosquitto answers to
// a SUBSCRIBE and a PUBLISH that the generated rules allow or forbid, and
// what the transports make of the answer.
func TestMosquittoACLAnswers(t *testing.T) {
	ids := []mqttsec.ACLIdentity{
		{ID: "gateway", Serves: true},
		{ID: "alice", Calls: []string{"gateway"}},
		{ID: "bob", Calls: []string{"gateway"}},
	}
	rows := []struct {
		subscribe bool // a SUBSCRIBE, else a PUBLISH
		user      string
		topic     string
		allowed   bool
	}{
		{true, "alice", "mqttsec/alice/reply", true},
		{true, "alice", "mqttsec/bob/reply", false},         // another's replies
		{true, "alice", "mqttsec/gateway/req/#", false},     // a server's requests
		{true, "alice", "mqttsec/#", false},                 // wider than the grant
		{true, "gateway", "mqttsec/gateway/req/#", true},    // its own requests
		{false, "alice", "mqttsec/gateway/req/echo", true},  // a server it calls
		{false, "alice", "mqttsec/other/req/echo", false},   // a server it does not call
		{false, "alice", "mqttsec/bob/reply", false},        // a forged reply
		{false, "gateway", "mqttsec/alice/reply", true},     // a reply
		{false, "gateway", "mqttsec/gateway/req/x", false},  // a request to itself
		{false, "alice", "mqttsec/gateway/evt/x", false},    // another's event
		{false, "alice", "mqttsec/alice/evt/doors/3", true}, // its own event
	}
	for _, kind := range aclKinds {
		t.Run(kind.name, func(t *testing.T) {
			m := kind.start(t, ids)
			for _, proto := range protocols {
				for _, row := range rows {
					op := "publish"
					if row.subscribe {
						op = "subscribe"
					}
					t.Run(fmt.Sprintf("v%d/%s/%s/%s", proto, row.user, op, row.topic), func(t *testing.T) {
						ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
						defer cancel()
						// The broker's code, and the error the transport
						// returns for it.
						var wantCode byte
						var wantErr error
						switch {
						case row.subscribe && (row.allowed || !kind.refusesSubscriptions):
							wantCode = 1 // granted QoS 1
						case row.subscribe && proto == 5:
							wantCode, wantErr = 0x87, mqttsec.ErrSubscribeRefused // not authorized
						case row.subscribe:
							wantCode, wantErr = 0x80, mqttsec.ErrSubscribeRefused // failure
						case !row.allowed && proto == 5:
							wantCode, wantErr = 0x87, mqttsec.ErrPublishRefused
						}
						var code byte
						if row.subscribe {
							code = rawSubscribe(ctx, t, m, proto, row.user, row.topic)
						} else {
							code = rawPublish(ctx, t, m, proto, row.user, row.topic)
						}
						// On MQTT 5 dynsec acknowledges a message no
						// subscriber takes with 0x10 ("no matching
						// subscribers"), a success.
						if code != wantCode && !(code == 0x10 && wantCode == 0) {
							t.Errorf("broker answered %#x, want %#x", code, wantCode)
						}
						tr := m.transport(t, proto, row.user)
						if err := tr.Start(ctx, func(mqttsec.Inbound) {}); err != nil {
							t.Fatal(err)
						}
						defer tr.Close(context.Background())
						var err error
						if row.subscribe {
							err = tr.Subscribe(ctx, row.topic)
						} else {
							err = tr.Publish(ctx, mqttsec.Outbound{Topic: row.topic, Payload: []byte("x")})
						}
						if wantErr == nil && err != nil || wantErr != nil && !errors.Is(err, wantErr) {
							t.Errorf("transport: %v, want %v", err, wantErr)
						}
					})
				}
			}
		})
	}
}

// rawSubscribe subscribes to filter at QoS 1, as user, and returns the
// SUBACK's code.
func rawSubscribe(ctx context.Context, t *testing.T, m *aclBroker, proto int, user, filter string) byte {
	t.Helper()
	if proto == 5 {
		c := rawV5(ctx, t, m, user)
		ack, err := c.Subscribe(ctx, &paho.Subscribe{Subscriptions: []paho.SubscribeOptions{{Topic: filter, QoS: 1}}})
		if ack == nil || len(ack.Reasons) != 1 {
			t.Fatalf("SUBACK %v, %v", ack, err)
		}
		return ack.Reasons[0]
	}
	c := rawV3(t, m, user)
	tok := c.Subscribe(filter, 1, nil)
	if err := waitToken(ctx, tok); err != nil {
		t.Fatal(err)
	}
	codes := tok.(*mqtt.SubscribeToken).Result()
	if len(codes) != 1 {
		t.Fatalf("SUBACK %v", codes)
	}
	for _, code := range codes {
		return code
	}
	return 0
}

// rawPublish publishes to topic at QoS 1, as user, and returns the
// PUBACK's reason code; MQTT 3.1.1's PUBACK has none (0), and the
// connection must still be up after it.
func rawPublish(ctx context.Context, t *testing.T, m *aclBroker, proto int, user, topic string) byte {
	t.Helper()
	if proto == 5 {
		c := rawV5(ctx, t, m, user)
		resp, err := c.Publish(ctx, &paho.Publish{QoS: 1, Topic: topic, Payload: []byte("x")})
		if resp == nil {
			t.Fatalf("PUBACK: %v", err)
		}
		return resp.ReasonCode
	}
	c := rawV3(t, m, user)
	if err := waitToken(ctx, c.Publish(topic, 1, false, []byte("x"))); err != nil {
		t.Fatalf("PUBACK: %v", err)
	}
	// A round trip after it: the broker kept the connection.
	if err := waitToken(ctx, c.Subscribe(mqttsec.Topics{}.Reply(user), 1, nil)); err != nil || !c.IsConnectionOpen() {
		t.Fatalf("connection after the PUBACK: %v", err)
	}
	return 0
}

func rawV5(ctx context.Context, t *testing.T, m *aclBroker, user string) *paho.Client {
	t.Helper()
	conn, err := (&net.Dialer{}).DialContext(ctx, "tcp", m.Addr())
	if err != nil {
		t.Fatal(err)
	}
	id := fmt.Sprintf("%s-raw-%d", user, time.Now().UnixNano())
	c := paho.NewClient(paho.ClientConfig{Conn: conn, ClientID: id})
	ack, err := c.Connect(ctx, &paho.Connect{KeepAlive: 30, ClientID: id, CleanStart: true,
		Username: user, UsernameFlag: true, Password: []byte("pw-" + user), PasswordFlag: true})
	if err != nil || ack.ReasonCode != 0 {
		t.Fatalf("connect: %v, %v", ack, err)
	}
	t.Cleanup(func() { c.Disconnect(&paho.Disconnect{}) })
	return c
}

func rawV3(t *testing.T, m *aclBroker, user string) mqtt.Client {
	t.Helper()
	c := mqtt.NewClient(mqtt.NewClientOptions().AddBroker(m.URL()).
		SetClientID(fmt.Sprintf("%s-raw-%d", user, time.Now().UnixNano())).
		SetUsername(user).SetPassword("pw-" + user).SetAutoReconnect(false))
	if tok := c.Connect(); !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
		t.Fatalf("connect: %v", tok.Error())
	}
	t.Cleanup(func() { c.Disconnect(50) })
	return c
}

func waitToken(ctx context.Context, tok mqtt.Token) error {
	select {
	case <-tok.Done():
		return tok.Error()
	case <-ctx.Done():
		return ctx.Err()
	}
}

// TestMosquittoForbiddenSubscription: a subscription mqttsec makes that the
// rules forbid. Under dynsec, Start (or SubscribeEvents) fails at once with
// ErrSubscribeRefused. Under an acl_file, Mosquitto grants it, so it
// succeeds, and what the subscription should bring is dropped: a request
// waits for its deadline (ErrNoReply), an event never comes.
func TestMosquittoForbiddenSubscription(t *testing.T) {
	cases := []struct {
		name string
		ids  []mqttsec.ACLIdentity
		// subscribe makes the forbidden subscription, as mqttsec does it,
		// and returns its error.
		subscribe func(ctx context.Context, w *aclWorld) error
		// dropped runs when the broker granted the subscription: it shows
		// that what it should bring does not arrive.
		dropped func(ctx context.Context, t *testing.T, w *aclWorld)
	}{{
		// The identity was not marked Serves.
		name: "a server's requests",
		ids:  []mqttsec.ACLIdentity{{ID: "gateway"}, {ID: "bob", Calls: []string{"gateway"}}},
		subscribe: func(ctx context.Context, w *aclWorld) error {
			return w.server(ctx, "gateway", "gateway")
		},
		dropped: func(ctx context.Context, t *testing.T, w *aclWorld) {
			bob := w.client(ctx, t, "bob", "bob")
			w.noReply(ctx, t, bob, "gateway")
			if n := w.handled["gateway"].Load(); n != 0 {
				t.Fatalf("the gateway handled %d requests", n)
			}
			if got := w.recorded["gateway"].get(); len(got) != 0 {
				t.Fatalf("the gateway received %q", got)
			}
		},
	}, {
		// A client whose id is not its MQTT user name.
		name: "a client's replies",
		ids:  []mqttsec.ACLIdentity{{ID: "gateway", Serves: true}, {ID: "alice", Calls: []string{"gateway"}}, {ID: "bob", Calls: []string{"gateway"}}},
		subscribe: func(ctx context.Context, w *aclWorld) error {
			_, err := w.startClient(ctx, "bob", "alice")
			return err
		},
		dropped: func(ctx context.Context, t *testing.T, w *aclWorld) {
			if err := w.server(ctx, "gateway", "gateway"); err != nil {
				t.Fatal(err)
			}
			w.noReply(ctx, t, w.clients["bob"], "gateway")
			// The gateway answered; the broker dropped the reply.
			waitFor(t, "the gateway to handle the request", func() bool { return w.handled["gateway"].Load() == 1 })
			if got := w.recorded["bob"].get(); len(got) != 0 {
				t.Fatalf("bob received %q", got)
			}
		},
	}, {
		// The identity lacks EventsFrom.
		name: "another's events",
		ids:  []mqttsec.ACLIdentity{{ID: "gateway", Serves: true}, {ID: "alice", Calls: []string{"gateway"}}},
		subscribe: func(ctx context.Context, w *aclWorld) error {
			alice, err := w.startClient(ctx, "alice", "alice")
			if err != nil {
				return err
			}
			return alice.SubscribeEvents(ctx, "gateway", func(context.Context, *mqttsec.Event) {
				w.events.Add(1)
			})
		},
		dropped: func(ctx context.Context, t *testing.T, w *aclWorld) {
			if err := w.server(ctx, "gateway", "gateway"); err != nil {
				t.Fatal(err)
			}
			if err := w.servers["gateway"].PublishEvent(ctx, "doors/3", []byte("open"), mqttsec.EventOptions{To: []string{"alice"}}); err != nil {
				t.Fatal(err)
			}
			// The event was acknowledged, so routed, before the request
			// was sent: its reply comes after it, had it been delivered.
			if out, err := w.clients["alice"].Request(ctx, "gateway", "echo", nil); err != nil || string(out) != "alice echo " {
				t.Fatalf("request: %q, %v", out, err)
			}
			if got := w.recorded["alice"].get(); !slices.Equal(got, []string{mqttsec.Topics{}.Reply("alice")}) {
				t.Fatalf("alice received on %q, want only her reply", got)
			}
			if n := w.events.Load(); n != 0 {
				t.Fatalf("%d events handled", n)
			}
		},
	}}
	for _, kind := range aclKinds {
		t.Run(kind.name, func(t *testing.T) {
			for _, c := range cases {
				m := kind.start(t, c.ids)
				for _, proto := range protocols {
					t.Run(fmt.Sprintf("%s/v%d", c.name, proto), func(t *testing.T) {
						checkNoLeaks(t)
						ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
						defer cancel()
						w := newACLWorld(t, m, proto, c.ids)
						began := time.Now()
						err := c.subscribe(ctx, w)
						took := time.Since(began)
						if !kind.refusesSubscriptions {
							if err != nil {
								t.Fatalf("subscription: %v; Mosquitto with an acl_file grants every one", err)
							}
							c.dropped(ctx, t, w)
							return
						}
						if !errors.Is(err, mqttsec.ErrSubscribeRefused) {
							t.Fatalf("subscription: %v, want an error wrapping ErrSubscribeRefused", err)
						}
						if took > fast {
							t.Fatalf("refusal reported after %v", took)
						}
						t.Logf("refused in %v: %v", took.Round(time.Millisecond), err)
					})
				}
			}
		})
	}
}

// TestMosquittoRefusedRequest: a request to a server the caller may not
// call. On MQTT 5 the broker refuses it in its PUBACK (0x87) and Request
// returns ErrPublishRefused at once; on MQTT 3.1.1 it acknowledges the
// request and drops it, and Request waits for its deadline (ErrNoReply).
// Either way the server never sees it, and the connection stays up.
func TestMosquittoRefusedRequest(t *testing.T) {
	ids := []mqttsec.ACLIdentity{{ID: "gateway", Serves: true}, {ID: "other", Serves: true}, {ID: "bob", Calls: []string{"gateway"}}}
	for _, kind := range aclKinds {
		t.Run(kind.name, func(t *testing.T) {
			m := kind.start(t, ids)
			for _, proto := range protocols {
				t.Run(fmt.Sprintf("v%d", proto), func(t *testing.T) {
					checkNoLeaks(t)
					ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
					defer cancel()
					w := newACLWorld(t, m, proto, ids)
					for _, id := range []string{"gateway", "other"} {
						if err := w.server(ctx, id, id); err != nil {
							t.Fatal(err)
						}
					}
					bob := w.client(ctx, t, "bob", "bob")
					if proto == 5 {
						began := time.Now()
						_, err := bob.Request(ctx, "other", "echo", nil)
						if !errors.Is(err, mqttsec.ErrPublishRefused) {
							t.Fatalf("Request = %v, want an error wrapping ErrPublishRefused", err)
						}
						if took := time.Since(began); took > fast {
							t.Fatalf("refusal reported after %v", took)
						} else {
							t.Logf("refused in %v: %v", took.Round(time.Millisecond), err)
						}
					} else {
						w.noReply(ctx, t, bob, "other")
					}
					if out, err := bob.Request(ctx, "gateway", "echo", nil); err != nil || string(out) != "bob echo " {
						t.Fatalf("a request allowed afterwards: %q, %v", out, err)
					}
					if got := w.recorded["other"].get(); len(got) != 0 {
						t.Fatalf("the refused request reached the server: %q", got)
					}
				})
			}
		})
	}
}

// aclWorld is the parties of one test on a broker with ACLs: every party
// holds the others as HMAC peers.
type aclWorld struct {
	t     *testing.T
	m     *aclBroker
	proto int
	ids   []mqttsec.ACLIdentity

	servers  map[string]*mqttsec.Server
	clients  map[string]*mqttsec.Client
	handled  map[string]*atomic.Int64 // requests each server handled
	recorded map[string]*recorder     // each party's transport
	events   atomic.Int64             // events handled
}

func newACLWorld(t *testing.T, m *aclBroker, proto int, ids []mqttsec.ACLIdentity) *aclWorld {
	return &aclWorld{t: t, m: m, proto: proto, ids: ids, servers: map[string]*mqttsec.Server{},
		clients: map[string]*mqttsec.Client{}, handled: map[string]*atomic.Int64{}, recorded: map[string]*recorder{}}
}

// config is the configuration of party id, connecting as user.
func (w *aclWorld) config(id, user string) mqttsec.Config {
	k := getKeys()
	var peers []*mqttsec.Peer
	for _, other := range w.ids {
		if other.ID != id {
			peers = append(peers, peerOf(k, other.ID, k.client, envelope.HMAC, mqttsec.Protection{HMAC: k.hmac}))
		}
	}
	if !slices.ContainsFunc(w.ids, func(i mqttsec.ACLIdentity) bool { return i.ID == id }) {
		w.t.Fatalf("%s is not in the ACL", id)
	}
	r := &recorder{Transport: w.m.transport(w.t, w.proto, user)}
	w.recorded[id] = r
	return mqttsec.Config{ID: id, Keyring: mustT(mqttsec.NewKeyring(mqttsec.Own{}, peers...)), Transport: r}
}

// server starts server id, connecting as user, with an echo method.
func (w *aclWorld) server(ctx context.Context, id, user string) error {
	s := mustT(mqttsec.NewServer(mqttsec.ServerConfig{Config: w.config(id, user)}))
	handled := new(atomic.Int64)
	s.HandleFunc("echo", func(ctx context.Context, r *mqttsec.Request) ([]byte, error) {
		handled.Add(1)
		return echo(ctx, r)
	})
	w.handled[id], w.servers[id] = handled, s
	w.t.Cleanup(func() { s.Close(context.Background()) })
	return s.Start(ctx)
}

// startClient starts client id, connecting as user.
func (w *aclWorld) startClient(ctx context.Context, id, user string) (*mqttsec.Client, error) {
	c := mustT(mqttsec.NewClient(w.config(id, user)))
	w.clients[id] = c
	w.t.Cleanup(func() { c.Close(context.Background()) })
	return c, c.Start(ctx)
}

// client is startClient, failing t on an error.
func (w *aclWorld) client(ctx context.Context, t *testing.T, id, user string) *mqttsec.Client {
	t.Helper()
	c, err := w.startClient(ctx, id, user)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// noReply checks that c's request to server gets no reply within a
// second: Request returns ErrNoReply at that deadline.
func (w *aclWorld) noReply(ctx context.Context, t *testing.T, c *mqttsec.Client, server string) {
	t.Helper()
	const deadline = time.Second
	ctx, cancel := context.WithTimeout(ctx, deadline)
	defer cancel()
	began := time.Now()
	_, err := c.Request(ctx, server, "echo", nil)
	if !errors.Is(err, mqttsec.ErrNoReply) {
		t.Fatalf("Request = %v, want an error wrapping ErrNoReply", err)
	}
	if took := time.Since(began); took < deadline {
		t.Fatalf("ErrNoReply after %v, before the deadline", took)
	}
}

// recorder is a Transport that notes the topic of every message its
// connection delivers, before the Client or Server sees it.
type recorder struct {
	mqttsec.Transport
	mu     sync.Mutex
	topics []string
}

func (r *recorder) Start(ctx context.Context, deliver func(mqttsec.Inbound)) error {
	return r.Transport.Start(ctx, func(in mqttsec.Inbound) {
		r.mu.Lock()
		r.topics = append(r.topics, in.Topic)
		r.mu.Unlock()
		deliver(in)
	})
}

func (r *recorder) get() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.topics)
}

// dynsecMosquitto starts Mosquitto with the rules MosquittoACL generates
// for ids loaded into the dynamic security plugin (see dynsecConfig),
// passwords required. It skips if the plugin is not installed.
func dynsecMosquitto(t *testing.T, ids []mqttsec.ACLIdentity) *aclBroker {
	t.Helper()
	realMosquitto(t)
	plugin := dynsecPlugin()
	if plugin == "" {
		t.Skip("Mosquitto's dynamic security plugin (mosquitto_dynamic_security.so) is not installed")
	}
	acl, err := mqttsec.Topics{}.MosquittoACL(ids)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	file := filepath.Join(dir, "dynamic-security.json")
	if err := os.WriteFile(file, dynsecConfig(t, acl), 0o600); err != nil {
		t.Fatal(err)
	}
	m, err := mosquitto.StartWith(dir, fmt.Sprintf("allow_anonymous false\nplugin %s\nplugin_opt_config_file %s\n", plugin, file))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(m.Stop)
	return &aclBroker{m}
}

// dynsecPlugin returns the path of Mosquitto's dynamic security plugin, or
// "" if none is installed.
func dynsecPlugin() string {
	for _, pattern := range []string{
		"/usr/lib/*/mosquitto_dynamic_security.so",
		"/usr/lib/mosquitto_dynamic_security.so",
		"/usr/local/lib/mosquitto_dynamic_security.so",
		"/usr/local/lib/*/mosquitto_dynamic_security.so",
	} {
		if m, _ := filepath.Glob(pattern); len(m) > 0 {
			return m[0]
		}
	}
	return ""
}

// dynsecConfig translates an acl_file into the dynamic security plugin's
// configuration: a client per user (password "pw-" + user) with a role of
// its own. "topic read T" allows subscribing to filters within T and
// receiving messages on T; "topic write T" allows sending on T; nothing
// else is allowed.
func dynsecConfig(t *testing.T, acl []byte) []byte {
	t.Helper()
	type rule struct {
		Type  string `json:"acltype"`
		Topic string `json:"topic"`
		Allow bool   `json:"allow"`
	}
	type role struct {
		Name string `json:"rolename"`
		ACLs []rule `json:"acls"`
	}
	type roleRef struct {
		Name string `json:"rolename"`
	}
	type client struct {
		Username string `json:"username"`
		// Password is PBKDF2-SHA512 of the password and Salt.
		Password   string    `json:"password"`
		Salt       string    `json:"salt"`
		Iterations int       `json:"iterations"`
		Roles      []roleRef `json:"roles"`
	}
	var conf struct {
		Clients  []client        `json:"clients"`
		Roles    []*role         `json:"roles"`
		Defaults map[string]bool `json:"defaultACLAccess"`
	}
	conf.Defaults = map[string]bool{"publishClientSend": false, "publishClientReceive": false, "subscribe": false, "unsubscribe": true}
	b64 := base64.StdEncoding.EncodeToString
	var cur *role
	lines := bufio.NewScanner(bytes.NewReader(acl))
	for lines.Scan() {
		f := strings.Fields(lines.Text())
		switch {
		case len(f) == 0 || strings.HasPrefix(f[0], "#"):
		case len(f) == 2 && f[0] == "user":
			const iterations = 101
			salt := make([]byte, 12)
			rand.Read(salt)
			hash, err := pbkdf2.Key(sha512.New, "pw-"+f[1], salt, iterations, 64)
			if err != nil {
				t.Fatal(err)
			}
			conf.Clients = append(conf.Clients, client{Username: f[1], Password: b64(hash), Salt: b64(salt), Iterations: iterations, Roles: []roleRef{{f[1]}}})
			cur = &role{Name: f[1]}
			conf.Roles = append(conf.Roles, cur)
		case len(f) == 3 && f[0] == "topic" && f[1] == "read" && cur != nil:
			cur.ACLs = append(cur.ACLs, rule{"subscribePattern", f[2], true}, rule{"publishClientReceive", f[2], true})
		case len(f) == 3 && f[0] == "topic" && f[1] == "write" && cur != nil:
			cur.ACLs = append(cur.ACLs, rule{"publishClientSend", f[2], true})
		default:
			t.Fatalf("ACL line %q", lines.Text())
		}
	}
	out, err := json.MarshalIndent(conf, "", "\t")
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// TestMosquittoRefusedEventsDoNotHoldUpRenewal: events SubscribeEvents was
// refused (under dynsec) are not subscribed again after a reconnect, so
// they do not hold up the renewal of the subscriptions that were granted:
// after the broker restarts, the events the client may read come again.
func TestMosquittoRefusedEventsDoNotHoldUpRenewal(t *testing.T) {
	ids := []mqttsec.ACLIdentity{{ID: "gateway", Serves: true}, {ID: "carol"}, {ID: "alice", EventsFrom: []string{"carol"}}}
	for _, proto := range protocols {
		t.Run(fmt.Sprintf("v%d", proto), func(t *testing.T) {
			checkNoLeaks(t)
			m := dynsecMosquitto(t, ids) // restarted below: one for each
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			w := newACLWorld(t, m, proto, ids)
			alice := w.client(ctx, t, "alice", "alice")
			carol := w.client(ctx, t, "carol", "carol")
			if err := alice.SubscribeEvents(ctx, "gateway", func(context.Context, *mqttsec.Event) {}); !errors.Is(err, mqttsec.ErrSubscribeRefused) {
				t.Fatalf("SubscribeEvents(gateway) = %v, want an error wrapping ErrSubscribeRefused", err)
			}
			var got atomic.Int64
			if err := alice.SubscribeEvents(ctx, "carol", func(context.Context, *mqttsec.Event) { got.Add(1) }); err != nil {
				t.Fatal(err)
			}
			// Each poll publishes an event, acknowledged (hence routed)
			// before the next; one caught by the restart is given up
			// after a while.
			arrives := func() bool {
				ctx, cancel := context.WithTimeout(ctx, 500*time.Millisecond)
				defer cancel()
				err := carol.PublishEvent(ctx, "news", []byte("x"), mqttsec.EventOptions{To: []string{"alice"}})
				return err == nil && got.Load() > 0
			}
			waitFor(t, "carol's events to reach alice", arrives)
			if err := m.Restart(); err != nil {
				t.Fatal(err)
			}
			got.Store(0)
			waitFor(t, "carol's events to reach alice after the broker restarted", arrives)
		})
	}
}
