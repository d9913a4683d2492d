package mqttsec_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	mqtt "github.com/eclipse/paho.mqtt.golang"

	"github.com/mqttsec/mqttsec/envelope"
	"github.com/mqttsec/mqttsec/internal/mosquitto"
	"github.com/mqttsec/mqttsec/internal/testbroker"
	"github.com/mqttsec/mqttsec/mqttsec"
	"github.com/mqttsec/mqttsec/mqttsec/replay"
)

func TestMosquittoACLText(t *testing.T) {
	acl, err := mqttsec.Topics{}.MosquittoACL([]mqttsec.ACLIdentity{
		{ID: "gateway", Serves: true},
		{ID: "alice", Calls: []string{"gateway"}, EventsFrom: []string{"gateway"}},
	})
	if err != nil {
		t.Fatal(err)
	}
	want := `# mqttsec topic scheme under "mqttsec"; generated, one block per identity.

user alice
topic read mqttsec/alice/reply
topic write mqttsec/gateway/req/#
topic write mqttsec/alice/evt/#
topic read mqttsec/gateway/evt/#

user gateway
topic read mqttsec/gateway/reply
topic read mqttsec/gateway/req/#
topic write mqttsec/+/reply
topic write mqttsec/gateway/evt/#
`
	if string(acl) != want {
		t.Fatalf("ACL:\n%s\nwant:\n%s", acl, want)
	}
	for _, bad := range [][]mqttsec.ACLIdentity{
		{{ID: "a/b"}},
		{{ID: "a"}, {ID: "a"}},
		{{ID: "a", Calls: []string{"#"}}},
	} {
		if _, err := (mqttsec.Topics{}).MosquittoACL(bad); err == nil {
			t.Errorf("MosquittoACL(%v) accepted", bad)
		}
	}
}

// TestMosquittoACLKeepsRepliesPrivate loads a generated ACL into a real
// Mosquitto with passwords: bob's requests and replies work, while alice,
// a legitimate client of the same broker, neither reads bob's replies nor
// can publish on bob's reply topic.
func TestMosquittoACLKeepsRepliesPrivate(t *testing.T) {
	m := aclMosquitto(t, []mqttsec.ACLIdentity{
		{ID: "gateway", Serves: true},
		{ID: "alice", Calls: []string{"gateway"}},
		{ID: "bob", Calls: []string{"gateway"}},
	})
	for _, proto := range protocols {
		t.Run(fmt.Sprintf("v%d", proto), func(t *testing.T) {
			k := getKeys()
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()
			authTransport := func(user string) mqttsec.Transport { return m.transport(t, proto, user) }
			gwRing := mustT(mqttsec.NewKeyring(mqttsec.Own{},
				peerOf(k, "alice", k.client, envelope.HMAC, mqttsec.Protection{HMAC: k.hmac}),
				peerOf(k, "bob", k.client, envelope.HMAC, mqttsec.Protection{HMAC: k.hmac})))
			gw := mustT(mqttsec.NewServer(mqttsec.ServerConfig{Config: mqttsec.Config{ID: "gateway", Keyring: gwRing, Transport: authTransport("gateway")}}))
			gw.HandleFunc("echo", echo)
			if err := gw.Start(ctx); err != nil {
				t.Fatal(err)
			}
			defer gw.Close(context.Background())
			clients := map[string]*mqttsec.Client{}
			for _, id := range []string{"alice", "bob"} {
				ring := mustT(mqttsec.NewKeyring(mqttsec.Own{}, peerOf(k, "gateway", k.gateway, envelope.HMAC, mqttsec.Protection{HMAC: k.hmac})))
				c := mustT(mqttsec.NewClient(mqttsec.Config{ID: id, Keyring: ring, Transport: authTransport(id)}))
				if err := c.Start(ctx); err != nil {
					t.Fatal(err)
				}
				defer c.Close(context.Background())
				clients[id] = c
			}
			// Alice, with her own credentials, snoops on bob's replies and
			// tries to publish a forged one.
			var mu sync.Mutex
			var snooped [][]byte
			spy := mqtt.NewClient(mqtt.NewClientOptions().AddBroker(m.URL()).SetClientID(fmt.Sprint("alice-spy-", proto)).
				SetUsername("alice").SetPassword("pw-alice"))
			if tok := spy.Connect(); !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
				t.Fatalf("spy connect: %v", tok.Error())
			}
			defer spy.Disconnect(50)
			// Both reach the broker (it acknowledges them), so what follows
			// shows what its ACL does with them.
			sub := spy.Subscribe("mqttsec/bob/reply", 1, func(_ mqtt.Client, msg mqtt.Message) {
				mu.Lock()
				snooped = append(snooped, bytes.Clone(msg.Payload()))
				mu.Unlock()
			})
			if !sub.WaitTimeout(10 * time.Second) {
				t.Fatal("spy subscription: no SUBACK")
			}
			if pub := spy.Publish("mqttsec/bob/reply", 1, false, []byte("forged")); !pub.WaitTimeout(10 * time.Second) {
				t.Fatal("spy publish: no PUBACK")
			}

			if out, err := clients["bob"].Request(ctx, "gateway", "echo", []byte("secret")); err != nil || string(out) != "bob echo secret" {
				t.Fatalf("bob: %q, %v", out, err)
			}
			// Alice's own request comes after bob's reply was delivered; the
			// broker delivers to a session in order, so had the snooping
			// subscription been granted, bob's reply would be there by now.
			if out, err := clients["alice"].Request(ctx, "gateway", "echo", []byte("mine")); err != nil || string(out) != "alice echo mine" {
				t.Fatalf("alice: %q, %v", out, err)
			}
			mu.Lock()
			defer mu.Unlock()
			if len(snooped) != 0 {
				t.Fatalf("alice read %d messages on bob's reply topic", len(snooped))
			}
			if st := clients["bob"].Stats(); st[mqttsec.StatMalformed] != 0 {
				t.Fatalf("alice's forged reply reached bob: %v", st)
			}
		})
	}
}

// aclBroker is a real Mosquitto that runs a generated ACL, with one
// password ("pw-" + id) per identity.
type aclBroker struct{ *mosquitto.Broker }

// aclMosquitto starts Mosquitto with the ACL MosquittoACL generates for ids,
// passwords required.
func aclMosquitto(t *testing.T, ids []mqttsec.ACLIdentity) *aclBroker {
	t.Helper()
	realMosquitto(t)
	dir := t.TempDir()
	acl, err := mqttsec.Topics{}.MosquittoACL(ids)
	if err != nil {
		t.Fatal(err)
	}
	aclFile, pwFile := filepath.Join(dir, "acl"), filepath.Join(dir, "passwords")
	if err := os.WriteFile(aclFile, acl, 0o644); err != nil {
		t.Fatal(err)
	}
	for i, id := range ids {
		args := []string{"-b", pwFile, id.ID, "pw-" + id.ID}
		if i == 0 {
			args = append([]string{"-c"}, args...)
		}
		if out, err := exec.Command("mosquitto_passwd", args...).CombinedOutput(); err != nil {
			t.Fatalf("mosquitto_passwd: %v\n%s", err, out)
		}
	}
	m, err := mosquitto.StartWith(dir, fmt.Sprintf("allow_anonymous false\npassword_file %s\nacl_file %s\n", pwFile, aclFile))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(m.Stop)
	return &aclBroker{m}
}

// transport connects as user with its password and a fresh client id.
func (m *aclBroker) transport(t testing.TB, proto int, user string) mqttsec.Transport {
	t.Helper()
	return transportAs(t, proto, m.URL(), user, nil, user, "pw-"+user)
}

// TestMosquittoACLAllowsSharedReplicas: gateway replicas that read their
// requests through a shared subscription ($share/<group>/...) are served
// by the generated ACL; every request is answered by exactly one of them.
func TestMosquittoACLAllowsSharedReplicas(t *testing.T) {
	m := aclMosquitto(t, []mqttsec.ACLIdentity{{ID: "gateway", Serves: true}, {ID: "bob", Calls: []string{"gateway"}}})
	for _, proto := range protocols {
		t.Run(fmt.Sprintf("v%d", proto), func(t *testing.T) {
			k := getKeys()
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			var handled [2]atomic.Int64
			// One process holds both replicas, so in-memory state stands in
			// for the Redis counter and store that separate hosts share.
			counter := envelope.NewClockCounter()
			store := mustT(replay.NewMemoryStore(mqttsec.DefaultReplayWindow))
			for i := range 2 {
				ring := mustT(mqttsec.NewKeyring(mqttsec.Own{}, peerOf(k, "bob", k.client, envelope.HMAC, mqttsec.Protection{HMAC: k.hmac})))
				s := mustT(mqttsec.NewServer(mqttsec.ServerConfig{ShareGroup: "gateways", Config: mqttsec.Config{
					ID: "gateway", Keyring: ring, Counter: counter, Replay: store, Transport: m.transport(t, proto, "gateway")}}))
				s.HandleFunc("echo", func(ctx context.Context, r *mqttsec.Request) ([]byte, error) {
					handled[i].Add(1)
					return echo(ctx, r)
				})
				if err := s.Start(ctx); err != nil {
					t.Fatal(err)
				}
				defer s.Close(context.Background())
			}
			ring := mustT(mqttsec.NewKeyring(mqttsec.Own{}, peerOf(k, "gateway", k.gateway, envelope.HMAC, mqttsec.Protection{HMAC: k.hmac})))
			bob := mustT(mqttsec.NewClient(mqttsec.Config{ID: "bob", Keyring: ring, Transport: m.transport(t, proto, "bob")}))
			if err := bob.Start(ctx); err != nil {
				t.Fatal(err)
			}
			defer bob.Close(context.Background())
			const n = 20
			for i := range n {
				want := fmt.Sprintf("bob echo %d", i)
				if out, err := bob.Request(ctx, "gateway", "echo", []byte(fmt.Sprint(i))); err != nil || string(out) != want {
					t.Fatalf("request %d: %q, %v", i, out, err)
				}
			}
			if a, b := handled[0].Load(), handled[1].Load(); a+b != n {
				t.Fatalf("replicas handled %d + %d requests, want %d in all", a, b, n)
			}
		})
	}
}

// A subscription the broker refused when it was made is not renewed after a
// reconnect, where retrying it would hold up the renewal of those made
// after it: here the client's events from carol are refused, and the
// gateway's events, subscribed next, still come after the broker restarts.
// (TestMosquittoRefusedEventsDoNotHoldUpRenewal is the same on Mosquitto.)
func TestRefusedSubscriptionIsNotRenewed(t *testing.T) {
	for _, proto := range protocols {
		t.Run(fmt.Sprintf("v%d", proto), func(t *testing.T) {
			checkNoLeaks(t)
			b, err := testbroker.Start("127.0.0.1:0", nil, &refuse{reading: mqttsec.Topics{}.EventFilter("carol")})
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { b.Close() })
			k, s := getKeys(), suiteNamed(t, "ed25519")
			clientKeys := mustT(mqttsec.NewKeyring(mqttsec.Own{Signer: k.client.ed, Identities: k.client.ids},
				peerOf(k, "gateway", k.gateway, s.require, s.send(k, k.client, k.gateway)),
				peerOf(k, "carol", k.other, s.require, s.send(k, k.client, k.other))))
			p := newPair(t, &broker{url: b.URL(), embedded: b}, pairOptions{proto: proto, suite: s})
			client := mustT(mqttsec.NewClient(mqttsec.Config{ID: "client", Keyring: clientKeys, Transport: transport(t, proto, b.URL(), "client", nil)}))
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()
			if err := client.Start(ctx); err != nil {
				t.Fatal(err)
			}
			defer client.Close(context.Background())
			if err := client.SubscribeEvents(ctx, "carol", func(context.Context, *mqttsec.Event) {}); !errors.Is(err, mqttsec.ErrSubscribeRefused) {
				t.Fatalf("SubscribeEvents(carol) = %v, want an error wrapping ErrSubscribeRefused", err)
			}
			var got atomic.Int64
			if err := client.SubscribeEvents(ctx, "gateway", func(context.Context, *mqttsec.Event) { got.Add(1) }); err != nil {
				t.Fatal(err)
			}
			// Each poll publishes an event, acknowledged (hence routed)
			// before the next; one caught by the restart is given up
			// after a while.
			arrives := func() bool {
				ctx, cancel := context.WithTimeout(ctx, 500*time.Millisecond)
				defer cancel()
				err := p.server.PublishEvent(ctx, "news", []byte("x"), mqttsec.EventOptions{To: []string{"client"}})
				return err == nil && got.Load() > 0
			}
			waitFor(t, "the gateway's events", arrives)
			if err := b.Restart(); err != nil {
				t.Fatal(err)
			}
			// Both on the new broker: none of the old one's subscriptions
			// are left.
			waitFor(t, "the client and the gateway to reconnect", func() bool {
				ids := b.ClientIDs()
				on := func(prefix string) bool {
					return slices.ContainsFunc(ids, func(id string) bool { return strings.HasPrefix(id, prefix) })
				}
				return on("client-") && on("gateway-")
			})
			got.Store(0)
			waitFor(t, "the gateway's events after the broker restarted", arrives)
		})
	}
}
