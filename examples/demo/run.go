package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	mqtt "github.com/eclipse/paho.mqtt.golang"

	"github.com/mqttsec/mqttsec/envelope"
	"github.com/mqttsec/mqttsec/internal/cli"
	"github.com/mqttsec/mqttsec/internal/testbroker"
	"github.com/mqttsec/mqttsec/mqttsec"
)

// transport makes a transport of the chosen protocol, with a unique
// client id.
func transport(brokerURL string, proto int, id string) (mqttsec.Transport, error) {
	return (&cli.Conn{Broker: brokerURL, Protocol: proto}).Transport(fmt.Sprintf("%s-%x", id, randomBytes(4)))
}

func randomBytes(n int) []byte {
	b := make([]byte, n)
	rand.Read(b)
	return b
}

type closer interface{ Close(context.Context) error }

func run(ctx context.Context, w io.Writer, brokerURL string, proto int) error {
	rep := &report{w: w}
	where := brokerURL
	if brokerURL == "" {
		b, err := testbroker.Start("127.0.0.1:0", nil)
		if err != nil {
			return fmt.Errorf("embedded broker: %w", err)
		}
		defer b.Close()
		brokerURL = b.URL()
		where = "embedded broker on " + b.Addr()
	}
	fmt.Fprintf(w, "mqttsec demo: %s, MQTT v%d; keys generated now\n", where, proto)

	gwKeys, err := generate()
	if err != nil {
		return err
	}
	clientKeys, err := generate() // one key set for every demo client, for speed
	if err != nil {
		return err
	}
	auditKeys, err := generate()
	if err != nil {
		return err
	}
	var toClose []closer
	defer func() {
		for i := len(toClose) - 1; i >= 0; i-- {
			c, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			toClose[i].Close(c)
			cancel()
		}
	}()

	// The gateway: one peer per client, each with its own protection set.
	var gwPeers []*mqttsec.Peer
	clientSecrets := map[string]*pairwise{}
	for _, s := range suites() {
		pw, err := newPairwise()
		if err != nil {
			return err
		}
		clientSecrets[s.client] = pw
		gwPeers = append(gwPeers, peer(s.client, clientKeys, pw, s.require, s.send(pw, gwKeys, clientKeys)))
	}
	gwPeers = append(gwPeers, peer("audit", auditKeys, nil, envelope.Signature,
		mqttsec.Protection{Signer: gwKeys.ed, Recipients: []envelope.Recipient{auditKeys.xwing}}))
	gwRing, err := mqttsec.NewKeyring(mqttsec.Own{Signer: gwKeys.ed, Identities: gwKeys.identities}, gwPeers...)
	if err != nil {
		return err
	}
	gwTransport, err := transport(brokerURL, proto, "gateway")
	if err != nil {
		return err
	}
	gateway, err := mqttsec.NewServer(mqttsec.ServerConfig{Config: mqttsec.Config{ID: "gateway", Transport: gwTransport, Keyring: gwRing}})
	if err != nil {
		return err
	}
	var calls sync.Map // caller+method -> *atomic.Int64
	count := func(caller, method string) *atomic.Int64 {
		v, _ := calls.LoadOrStore(caller+" "+method, new(atomic.Int64))
		return v.(*atomic.Int64)
	}
	gateway.HandleFunc("get-card", func(ctx context.Context, r *mqttsec.Request) ([]byte, error) {
		count(r.Caller, r.Method).Add(1)
		var in struct{ Card int }
		if err := json.Unmarshal(r.Payload, &in); err != nil {
			return nil, mqttsec.Errorf(mqttsec.CodeBadRequest, "not a card request")
		}
		return fmt.Appendf(nil, `{"card":%d,"name":"Dana"}`, in.Card), nil
	})
	gateway.HandleFunc("delete-card", func(ctx context.Context, r *mqttsec.Request) ([]byte, error) {
		count(r.Caller, r.Method).Add(1)
		return []byte(`{"deleted":true}`), nil
	})
	if err := gateway.Start(ctx); err != nil {
		return fmt.Errorf("gateway: %w", err)
	}
	toClose = append(toClose, gateway)

	// The hostile party: any client of the broker can read and publish.
	eve, err := newEavesdropper(ctx, brokerURL, "mqttsec/#")
	if err != nil {
		return err
	}
	defer eve.close()

	// One client per protection set.
	clients := map[string]*mqttsec.Client{}
	for _, s := range suites() {
		pw := clientSecrets[s.client]
		ring, err := mqttsec.NewKeyring(mqttsec.Own{Signer: clientKeys.ed, Identities: clientKeys.identities},
			peer("gateway", gwKeys, pw, s.require, s.send(pw, clientKeys, gwKeys)))
		if err != nil {
			return err
		}
		tr, err := transport(brokerURL, proto, s.client)
		if err != nil {
			return err
		}
		c, err := mqttsec.NewClient(mqttsec.Config{ID: s.client, Transport: tr, Keyring: ring})
		if err != nil {
			return err
		}
		if err := c.Start(ctx); err != nil {
			return fmt.Errorf("client %s: %w", s.client, err)
		}
		toClose = append(toClose, c)
		clients[s.client] = c
	}

	rep.section("request/reply under each protection set (get-card 8165538):")
	for _, s := range suites() {
		start := time.Now()
		out, err := clients[s.client].Request(ctx, "gateway", "get-card", []byte(`{"card":8165538}`))
		took := time.Since(start)
		ok := err == nil && string(out) == `{"card":8165538,"name":"Dana"}`
		detail := fmt.Sprintf("%-32s %6.1f ms", out, float64(took.Microseconds())/1000)
		if err != nil {
			detail = err.Error()
		}
		rep.check(ok, s.name, detail)
	}

	rep.section("event from the gateway to two recipients (Ed25519, encrypted with HPKE X25519 and MLKEM768X25519):")
	auditRing, err := mqttsec.NewKeyring(mqttsec.Own{Identities: auditKeys.identities},
		peer("gateway", gwKeys, nil, envelope.Signature|envelope.Encryption, mqttsec.Protection{Signer: auditKeys.ed}))
	if err != nil {
		return err
	}
	auditTr, err := transport(brokerURL, proto, "audit")
	if err != nil {
		return err
	}
	audit, err := mqttsec.NewClient(mqttsec.Config{ID: "audit", Transport: auditTr, Keyring: auditRing})
	if err != nil {
		return err
	}
	if err := audit.Start(ctx); err != nil {
		return err
	}
	toClose = append(toClose, audit)
	events := make(chan string, 2)
	for id, c := range map[string]*mqttsec.Client{"c-x25519": clients["c-x25519"], "audit": audit} {
		if err := c.SubscribeEvents(ctx, "gateway", func(ctx context.Context, ev *mqttsec.Event) {
			events <- fmt.Sprintf("%s got %s %s (%s)", id, ev.Topic, ev.Payload, ev.Protections)
		}); err != nil {
			return err
		}
	}
	if err := gateway.PublishEvent(ctx, "doors/3/forced", []byte(`{"door":3}`),
		mqttsec.EventOptions{To: []string{"c-x25519", "audit"}, Encrypt: true}); err != nil {
		return err
	}
	var got []string
	for range 2 {
		select {
		case e := <-events:
			got = append(got, e)
		case <-time.After(10 * time.Second):
		}
	}
	sort.Strings(got)
	for _, who := range []string{"audit", "c-x25519"} {
		line := ""
		for _, g := range got {
			if strings.HasPrefix(g, who+" ") {
				line = g
			}
		}
		rep.check(strings.Contains(line, `{"door":3}`), who+" received and verified it", strings.TrimPrefix(line, who+" got "))
	}
	evTopic := "mqttsec/gateway/evt/doors/3/forced"
	seen := eve.wait(evTopic, 1)
	rep.check(len(seen) == 1 && !bytes.Contains(seen[0], []byte(`door":3`)), "the broker saw only ciphertext", fmt.Sprintf("%d bytes on %s", len(firstOf(seen)), evTopic))

	rep.section("a hostile broker (or any client of it) injects captured messages:")
	if err := attacks(ctx, rep, eve, gateway, clients["c-ed25519"], count); err != nil {
		return err
	}

	st := gateway.Stats()
	var names []string
	for n, v := range st {
		if v > 0 {
			names = append(names, fmt.Sprintf("%s=%d", n, v))
		}
	}
	sort.Strings(names)
	fmt.Fprintf(w, "\ngateway counters: %s\n", strings.Join(names, " "))
	if rep.failures > 0 {
		return fmt.Errorf("%d of %d checks did not behave as expected", rep.failures, rep.checks)
	}
	fmt.Fprintf(w, "all %d checks behaved as expected\n", rep.checks)
	return nil
}

func firstOf(b [][]byte) []byte {
	if len(b) == 0 {
		return nil
	}
	return b[0]
}

func attacks(ctx context.Context, rep *report, eve *eavesdropper, gateway *mqttsec.Server, victim *mqttsec.Client, count func(string, string) *atomic.Int64) error {
	reqTopic := "mqttsec/gateway/req/get-card"
	var captured []byte
	for _, m := range eve.wait(reqTopic, len(suites())) {
		if h, err := envelope.Peek(m, 0); err == nil && h.From == "c-ed25519" {
			captured = m
		}
	}
	if captured == nil {
		return errors.New("the request of c-ed25519 was not seen on the broker")
	}
	runsBefore := count("c-ed25519", "get-card").Load()
	statOf := func(s interface{ Stats() map[string]uint64 }, name string) func() uint64 {
		return func() uint64 { return s.Stats()[name] }
	}
	inject := func(what, topic string, payload []byte, stat func() uint64, class string) {
		before := stat()
		err := eve.publish(topic, payload)
		ok := err == nil && waitUntil(ctx, func() bool { return stat() > before })
		detail := "refused: " + class
		if !ok {
			detail = fmt.Sprintf("not refused as %s (err %v)", class, err)
		}
		rep.check(ok, what, detail)
	}
	// A copy is refused as a replay before its signature is checked; so the
	// broker also moves the counter forward, which the signature covers.
	tampered, err := tamper(captured)
	if err != nil {
		return err
	}
	inject("payload changed, counter moved on", reqTopic, tampered, statOf(gateway, mqttsec.StatAuthentication), mqttsec.StatAuthentication)
	inject("request replayed", reqTopic, captured, statOf(gateway, mqttsec.StatReplayed), mqttsec.StatReplayed)
	inject("get-card re-published as delete-card", "mqttsec/gateway/req/delete-card", captured, statOf(gateway, mqttsec.StatContext), mqttsec.StatContext)
	inject("request reflected to c-ed25519 as a reply", "mqttsec/c-ed25519/reply", captured, statOf(victim, mqttsec.StatContext), mqttsec.StatContext)
	forger := &envelope.Sealer{ID: "mallory", Counter: envelope.NewClockCounter()}
	key, _ := envelope.NewHMACKey(randomBytes(32))
	forged, err := forger.Seal(&envelope.Params{Kind: envelope.Request, To: []string{"gateway"}, Topic: "delete-card",
		ReplyTo: "mqttsec/mallory/reply", HMAC: key}, []byte(`{"card":8165538}`))
	if err != nil {
		return err
	}
	inject("request from an unknown sender", "mqttsec/gateway/req/delete-card", forged.Bytes, statOf(gateway, mqttsec.StatUnknownKey), mqttsec.StatUnknownKey)
	inject("junk", reqTopic, []byte(`{"message":{"request":{"card":1}}}`), statOf(gateway, mqttsec.StatMalformed), mqttsec.StatMalformed)
	// Refused unread: the gateway's transport drops the payload as it arrives
	// instead of allocating it.
	inject("a 16 MiB message", reqTopic, make([]byte, 16<<20), statOf(gateway, mqttsec.StatTooLarge), mqttsec.StatTooLarge)
	runs := count("c-ed25519", "get-card").Load() - runsBefore
	deletes := count("c-ed25519", "delete-card").Load() + count("mallory", "delete-card").Load()
	rep.check(runs == 0 && deletes == 0, "no handler ran for any of them", fmt.Sprintf("get-card %d, delete-card %d", runs, deletes))
	return nil
}

// tamper changes one byte of an envelope's payload and moves its counter
// forward, as a broker that knows the format can: the envelope stays well
// formed, but its MAC or signature no longer matches.
func tamper(env []byte) ([]byte, error) {
	h, err := envelope.Peek(env, 0)
	if err != nil {
		return nil, err
	}
	// E = 0x01 || len(H) || H || len(P) || P || ... (SPEC.md §2); the
	// counter is 8 big-endian bytes of H (§3.1), found by its value.
	out := bytes.Clone(env)
	hl := int(binary.BigEndian.Uint32(out[1:5]))
	if binary.BigEndian.Uint32(out[5+hl:]) == 0 {
		return nil, errors.New("tamper: an envelope without payload")
	}
	at := bytes.Index(out[5:5+hl], binary.BigEndian.AppendUint64(nil, h.Counter))
	if at < 0 {
		return nil, errors.New("tamper: no counter in the header")
	}
	binary.BigEndian.PutUint64(out[5+at:], h.Counter+1000)
	out[5+hl+4] ^= 1 // the payload's first byte
	return out, nil
}

// waitUntil polls cond for up to 10 seconds: the refusal of an injected
// message has no reply to wait for, only a counter.
func waitUntil(ctx context.Context, cond func() bool) bool {
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) || ctx.Err() != nil {
			return false
		}
		time.Sleep(5 * time.Millisecond)
	}
	return true
}

// eavesdropper is a plain MQTT client that records what it sees.
type eavesdropper struct {
	c    mqtt.Client
	mu   sync.Mutex
	seen map[string][][]byte
}

func newEavesdropper(ctx context.Context, brokerURL, filter string) (*eavesdropper, error) {
	e := &eavesdropper{seen: map[string][][]byte{}}
	e.c = mqtt.NewClient(mqtt.NewClientOptions().AddBroker(brokerURL).SetClientID(fmt.Sprintf("eve-%x", randomBytes(4))))
	if err := waitToken(ctx, e.c.Connect()); err != nil {
		return nil, fmt.Errorf("eavesdropper: %w", err)
	}
	err := waitToken(ctx, e.c.Subscribe(filter, 1, func(_ mqtt.Client, m mqtt.Message) {
		e.mu.Lock()
		e.seen[m.Topic()] = append(e.seen[m.Topic()], bytes.Clone(m.Payload()))
		e.mu.Unlock()
	}))
	if err != nil {
		e.close()
		return nil, err
	}
	return e, nil
}

func (e *eavesdropper) wait(topic string, n int) [][]byte {
	var out [][]byte
	waitUntil(context.Background(), func() bool {
		e.mu.Lock()
		defer e.mu.Unlock()
		out = append([][]byte(nil), e.seen[topic]...)
		return len(out) >= n
	})
	return out
}

func (e *eavesdropper) publish(topic string, payload []byte) error {
	return waitToken(context.Background(), e.c.Publish(topic, 1, false, payload))
}

func (e *eavesdropper) close() { e.c.Disconnect(50) }

func waitToken(ctx context.Context, tok mqtt.Token) error {
	select {
	case <-tok.Done():
		return tok.Error()
	case <-ctx.Done():
		return ctx.Err()
	}
}
