package mqttsec_test

import (
	"context"
	"crypto/ecdh"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/hpke"
	"crypto/rand"
	"crypto/rsa"
	"crypto/tls"
	"fmt"
	"net/url"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/eclipse/paho.golang/autopaho"
	"github.com/eclipse/paho.golang/paho"
	mqtt "github.com/eclipse/paho.mqtt.golang"

	"github.com/mqttsec/mqttsec/envelope"
	"github.com/mqttsec/mqttsec/internal/testbroker"
	"github.com/mqttsec/mqttsec/internal/testwait"
	"github.com/mqttsec/mqttsec/mqttsec"
)

// MosquittoEnv names the environment variable that points the tests at a
// real Mosquitto (host:port). Without it those tests skip.
const MosquittoEnv = "MQTTSEC_TEST_MOSQUITTO"

// partyKeys is one side's asymmetric keys.
type partyKeys struct {
	ed, es, ps envelope.Signer
	verifiers  []envelope.Verifier
	x25519     envelope.Recipient
	xwing      envelope.Recipient
	oaep       envelope.Recipient
	ids        []envelope.Identity
}

type testKeys struct {
	hmac            *envelope.HMACKey
	hotp            *envelope.HOTPKey
	psk             *envelope.AEADKey
	client, gateway *partyKeys
	other           *partyKeys // a third party, for events
}

var (
	keysOnce sync.Once
	keysVal  *testKeys
)

func mustT[T any](v T, err error) T {
	if err != nil {
		panic(err)
	}
	return v
}

func newPartyKeys() *partyKeys {
	edPub, edPriv := mustT2(ed25519.GenerateKey(rand.Reader))
	es := mustT(ecdsa.GenerateKey(elliptic.P256(), rand.Reader))
	rs := mustT(rsa.GenerateKey(rand.Reader, 2048))
	ro := mustT(rsa.GenerateKey(rand.Reader, 2048))
	x := mustT(hpke.DHKEM(ecdh.X25519()).GenerateKey())
	xw := mustT(hpke.MLKEM768X25519().GenerateKey())
	return &partyKeys{
		ed: mustT(envelope.NewEd25519Signer(edPriv)),
		es: mustT(envelope.NewECDSASigner(es)),
		ps: mustT(envelope.NewRSASigner(rs)),
		verifiers: []envelope.Verifier{
			mustT(envelope.NewEd25519Verifier(edPub)),
			mustT(envelope.NewECDSAVerifier(&es.PublicKey)),
			mustT(envelope.NewRSAVerifier(&rs.PublicKey)),
		},
		x25519: mustT(envelope.NewHPKERecipient(x.PublicKey())),
		xwing:  mustT(envelope.NewHPKERecipient(xw.PublicKey())),
		oaep:   mustT(envelope.NewRSARecipient(&ro.PublicKey)),
		ids: []envelope.Identity{
			mustT(envelope.NewHPKEIdentity(x)),
			mustT(envelope.NewHPKEIdentity(xw)),
			mustT(envelope.NewRSAIdentity(ro)),
		},
	}
}

func mustT2[A, B any](a A, b B, err error) (A, B) {
	if err != nil {
		panic(err)
	}
	return a, b
}

func getKeys() *testKeys {
	keysOnce.Do(func() {
		secret := func(n int) []byte { b := make([]byte, n); rand.Read(b); return b }
		keysVal = &testKeys{
			hmac:    mustT(envelope.NewHMACKey(secret(32))),
			hotp:    mustT(envelope.NewHOTPKey(secret(20), 6)),
			psk:     mustT(envelope.NewAEADKey(secret(32))),
			client:  newPartyKeys(),
			gateway: newPartyKeys(),
			other:   newPartyKeys(),
		}
	})
	return keysVal
}

// suite is a protection set; send fills the protection for messages from
// "from" to "to".
type suite struct {
	name    string
	require envelope.Protection
	send    func(k *testKeys, from, to *partyKeys) mqttsec.Protection
}

func suites() []suite {
	return []suite{
		{"hmac", envelope.HMAC, func(k *testKeys, f, t *partyKeys) mqttsec.Protection { return mqttsec.Protection{HMAC: k.hmac} }},
		{"hmac+hotp", envelope.HMAC | envelope.HOTPCode, func(k *testKeys, f, t *partyKeys) mqttsec.Protection {
			return mqttsec.Protection{HMAC: k.hmac, HOTP: k.hotp}
		}},
		{"ed25519", envelope.Signature, func(k *testKeys, f, t *partyKeys) mqttsec.Protection { return mqttsec.Protection{Signer: f.ed} }},
		{"es256", envelope.Signature, func(k *testKeys, f, t *partyKeys) mqttsec.Protection { return mqttsec.Protection{Signer: f.es} }},
		{"ps256", envelope.Signature, func(k *testKeys, f, t *partyKeys) mqttsec.Protection { return mqttsec.Protection{Signer: f.ps} }},
		{"psk", envelope.Encryption, func(k *testKeys, f, t *partyKeys) mqttsec.Protection { return mqttsec.Protection{PSK: k.psk} }},
		{"ed25519+hpke-x25519", envelope.Signature | envelope.Encryption, func(k *testKeys, f, t *partyKeys) mqttsec.Protection {
			return mqttsec.Protection{Signer: f.ed, Recipients: []envelope.Recipient{t.x25519}}
		}},
		{"ed25519+hpke-xwing", envelope.Signature | envelope.Encryption, func(k *testKeys, f, t *partyKeys) mqttsec.Protection {
			return mqttsec.Protection{Signer: f.ed, Recipients: []envelope.Recipient{t.xwing}}
		}},
		{"ps256+rsa-oaep", envelope.Signature | envelope.Encryption, func(k *testKeys, f, t *partyKeys) mqttsec.Protection {
			return mqttsec.Protection{Signer: f.ps, Recipients: []envelope.Recipient{t.oaep}}
		}},
	}
}

// peerOf describes party pk (with id) as seen by others, requiring req.
func peerOf(k *testKeys, id string, pk *partyKeys, req envelope.Protection, send mqttsec.Protection) *mqttsec.Peer {
	return &mqttsec.Peer{
		Peer: envelope.Peer{
			ID: id, Policy: envelope.Policy{Require: req}, Verifiers: pk.verifiers,
			HMACKeys: []*envelope.HMACKey{k.hmac}, HOTPKeys: []*envelope.HOTPKey{k.hotp}, AEADKeys: []*envelope.AEADKey{k.psk},
		},
		Send: send,
	}
}

// broker is where a test's MQTT traffic goes: the embedded broker, or a
// real Mosquitto.
type broker struct {
	url      string
	embedded *testbroker.Broker
}

func embeddedBroker(t testing.TB) *broker {
	t.Helper()
	b, err := testbroker.Start("127.0.0.1:0", nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Close() })
	return &broker{url: b.URL(), embedded: b}
}

func mosquittoBroker(t testing.TB) *broker {
	t.Helper()
	addr := os.Getenv(MosquittoEnv)
	if addr == "" {
		t.Skipf("set %s=host:port to run this test against a real Mosquitto", MosquittoEnv)
	}
	return &broker{url: "tcp://" + addr}
}

// notConnected checks that tr does not get connected within d, for the
// reason why names.
func notConnected(t *testing.T, tr mqttsec.Transport, d time.Duration, why string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	if err := tr.Start(ctx, func(mqttsec.Inbound) {}); err == nil {
		tr.Close(context.Background())
		t.Fatalf("connected %s", why)
	}
}

// transport returns a fresh, unstarted transport of protocol 3 or 5.
func transport(t testing.TB, proto int, brokerURL, id string, tlsCfg *tls.Config) mqttsec.Transport {
	t.Helper()
	return transportAs(t, proto, brokerURL, id, tlsCfg, "", "")
}

// transportAs is transport connecting with a user name and password (none
// if user is empty).
func transportAs(t testing.TB, proto int, brokerURL, id string, tlsCfg *tls.Config, user, password string) mqttsec.Transport {
	t.Helper()
	cid := fmt.Sprintf("%s-%s-%d", id, strings.ReplaceAll(t.Name(), "/", "_"), time.Now().UnixNano())
	if len(cid) > 200 {
		cid = cid[len(cid)-200:]
	}
	switch proto {
	case 5:
		u, err := url.Parse(brokerURL)
		if err != nil {
			t.Fatal(err)
		}
		cfg := autopaho.ClientConfig{
			ServerUrls:       []*url.URL{u},
			TlsCfg:           tlsCfg,
			KeepAlive:        20,
			ReconnectBackoff: autopaho.NewConstantBackoff(50 * time.Millisecond),
			ConnectTimeout:   5 * time.Second,
			ClientConfig:     paho.ClientConfig{ClientID: cid},
		}
		if user != "" {
			cfg.ConnectUsername, cfg.ConnectPassword = user, []byte(password)
		}
		return mqttsec.NewPahoV5(cfg)
	case 3:
		o := mqtt.NewClientOptions().AddBroker(brokerURL).SetClientID(cid).
			SetConnectRetry(true).SetConnectRetryInterval(50 * time.Millisecond).
			SetMaxReconnectInterval(200 * time.Millisecond).SetConnectTimeout(5 * time.Second)
		if tlsCfg != nil {
			o.SetTLSConfig(tlsCfg)
		}
		if user != "" {
			o.SetUsername(user).SetPassword(password)
		}
		return mqttsec.NewPahoV3(o)
	}
	t.Fatalf("protocol %d", proto)
	return nil
}

// pair is a started client and server.
type pair struct {
	client *mqttsec.Client
	server *mqttsec.Server
}

type pairOptions struct {
	proto     int
	suite     suite
	tls       *tls.Config
	configure func(*mqttsec.ServerConfig)
	// configureClient, if set, changes the client's Config.
	configureClient func(*mqttsec.Config)
	handlers        map[string]mqttsec.HandlerFunc
	noCleanup       bool
	// clientReplay, if set, is the client's replay store.
	clientReplay envelope.ReplayStore
}

func echo(ctx context.Context, req *mqttsec.Request) ([]byte, error) {
	return append([]byte(req.Caller+" "+req.Method+" "), req.Payload...), nil
}

func newPair(t testing.TB, b *broker, o pairOptions) *pair {
	t.Helper()
	k := getKeys()
	s := o.suite
	if s.send == nil {
		s = suites()[0]
	}
	clientKeys := mustT(mqttsec.NewKeyring(mqttsec.Own{Signer: k.client.ed, Identities: k.client.ids},
		peerOf(k, "gateway", k.gateway, s.require, s.send(k, k.client, k.gateway))))
	gatewayKeys := mustT(mqttsec.NewKeyring(mqttsec.Own{Signer: k.gateway.ed, Identities: k.gateway.ids},
		peerOf(k, "client", k.client, s.require, s.send(k, k.gateway, k.client))))
	scfg := mqttsec.ServerConfig{Config: mqttsec.Config{
		ID: "gateway", Transport: transport(t, o.proto, b.url, "gateway", o.tls), Keyring: gatewayKeys,
	}}
	if o.configure != nil {
		o.configure(&scfg)
	}
	server := mustT(mqttsec.NewServer(scfg))
	server.HandleFunc("echo", echo)
	for m, h := range o.handlers {
		server.HandleFunc(m, h)
	}
	ccfg := mqttsec.Config{
		ID: "client", Transport: transport(t, o.proto, b.url, "client", o.tls), Keyring: clientKeys, Replay: o.clientReplay,
	}
	if o.configureClient != nil {
		o.configureClient(&ccfg)
	}
	client := mustT(mqttsec.NewClient(ccfg))
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := server.Start(ctx); err != nil {
		t.Fatalf("server start: %v", err)
	}
	if err := client.Start(ctx); err != nil {
		server.Close(context.Background())
		t.Fatalf("client start: %v", err)
	}
	p := &pair{client: client, server: server}
	if !o.noCleanup {
		t.Cleanup(func() { p.close(t) })
	}
	return p
}

func (p *pair) close(t testing.TB) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := p.client.Close(ctx); err != nil {
		t.Errorf("client close: %v", err)
	}
	if err := p.server.Close(ctx); err != nil {
		t.Errorf("server close: %v", err)
	}
}

// heldHandler counts each call in started and holds it until release is
// closed (then it answers "late") or its context ends.
func heldHandler(started *atomic.Int64, release <-chan struct{}) mqttsec.HandlerFunc {
	return func(ctx context.Context, r *mqttsec.Request) ([]byte, error) {
		started.Add(1)
		select {
		case <-release:
			return []byte("late"), nil
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
}

// requestsInFlight calls req(i) for i in [0, total), at most inFlight at
// once, and returns how many returned an error; the first error is
// reported through t.
func requestsInFlight(t testing.TB, total, inFlight int, req func(i int) error) int64 {
	t.Helper()
	sem := make(chan struct{}, inFlight)
	var wg sync.WaitGroup
	var failed atomic.Int64
	for i := range total {
		sem <- struct{}{}
		wg.Go(func() {
			defer func() { <-sem }()
			if err := req(i); err != nil && failed.Add(1) == 1 {
				t.Errorf("request %d: %v", i, err)
			}
		})
	}
	wg.Wait()
	return failed.Load()
}

// waitFor polls cond until it holds or 10 s pass (testwait.Until).
var waitFor = testwait.Until

// returned waits up to 10 s for the error a goroutine sends on done when
// what returns, and fails t if none comes.
func returned(t testing.TB, what string, done <-chan error) error {
	t.Helper()
	select {
	case err := <-done:
		return err
	case <-time.After(10 * time.Second):
		t.Fatalf("%s did not return within 10 s", what)
		return nil
	}
}

// checkNoLeaks fails t if goroutines started during the test are still
// running 10 s after it (and its Close calls) ended (testwait.NoneLeft).
func checkNoLeaks(t *testing.T) {
	before := testwait.Goroutines()
	t.Cleanup(func() { testwait.NoneLeft(t, before) })
}

var protocols = []int{3, 5}

func chmod(path string, mode os.FileMode) error { return os.Chmod(path, mode) }
