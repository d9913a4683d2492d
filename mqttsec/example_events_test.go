package mqttsec_test

import (
	"context"
	"crypto/ecdh"
	"crypto/ed25519"
	"crypto/hpke"
	"crypto/rand"
	"fmt"
	"log"
	"log/slog"
	"time"

	mochi "github.com/mochi-mqtt/server/v2"
	"github.com/mochi-mqtt/server/v2/hooks/auth"
	"github.com/mochi-mqtt/server/v2/listeners"

	"github.com/mqttsec/mqttsec/envelope"
	"github.com/mqttsec/mqttsec/mqttsec"
)

// A door controller publishes events: one signed, which any subscriber
// that has the controller's public key can verify, and one also encrypted
// to the monitor, which only the monitor can read. The monitor subscribes
// to the controller's events and gets each one verified and opened, with
// the protections it carried. The broker is an embedded one, as in
// Example.
func ExampleClient_PublishEvent() {
	mq := mochi.New(&mochi.Options{Logger: slog.New(slog.DiscardHandler)})
	if err := mq.AddHook(new(auth.AllowHook), nil); err != nil {
		log.Fatal(err)
	}
	tcp := listeners.NewTCP(listeners.Config{ID: "tcp", Address: "127.0.0.1:0"})
	if err := mq.AddListener(tcp); err != nil {
		log.Fatal(err)
	}
	if err := mq.Serve(); err != nil {
		log.Fatal(err)
	}
	defer mq.Close()
	broker := "tcp://" + tcp.Address()

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()

	// The controller's signing key, the monitor's decryption key, and an
	// HMAC key the two share for what the monitor sends the controller.
	edPub, edPriv, _ := ed25519.GenerateKey(rand.Reader)
	signer, _ := envelope.NewEd25519Signer(edPriv)
	verifier, _ := envelope.NewEd25519Verifier(edPub)
	xPriv, _ := hpke.DHKEM(ecdh.X25519()).GenerateKey()
	identity, _ := envelope.NewHPKEIdentity(xPriv)
	recipient, _ := envelope.NewHPKERecipient(xPriv.PublicKey())
	secret := make([]byte, 32)
	rand.Read(secret)
	pairwise, _ := envelope.NewHMACKey(secret)

	doorKeys, _ := mqttsec.NewKeyring(mqttsec.Own{Signer: signer}, &mqttsec.Peer{
		Peer: envelope.Peer{ID: "monitor", HMACKeys: []*envelope.HMACKey{pairwise}, Policy: envelope.Policy{Require: envelope.HMAC}},
		Send: mqttsec.Protection{Signer: signer, Recipients: []envelope.Recipient{recipient}},
	})
	monitorKeys, _ := mqttsec.NewKeyring(mqttsec.Own{Identities: []envelope.Identity{identity}}, &mqttsec.Peer{
		Peer: envelope.Peer{ID: "door-7", Verifiers: []envelope.Verifier{verifier}, Policy: envelope.Policy{Require: envelope.Signature}},
		Send: mqttsec.Protection{HMAC: pairwise},
	})

	start := func(id string, keys *mqttsec.Keyring) *mqttsec.Client {
		tr, err := mqttsec.NewTransport(broker, mqttsec.TransportOptions{ClientID: id})
		if err != nil {
			log.Fatal(err)
		}
		c, _ := mqttsec.NewClient(mqttsec.Config{ID: id, Keyring: keys, Transport: tr})
		if err := c.Start(ctx); err != nil {
			log.Fatal(err)
		}
		return c
	}
	door, monitor := start("door-7", doorKeys), start("monitor", monitorKeys)
	defer door.Close(context.Background())
	defer monitor.Close(context.Background())

	events := make(chan *mqttsec.Event)
	err := monitor.SubscribeEvents(ctx, "door-7", func(ctx context.Context, ev *mqttsec.Event) {
		select {
		case events <- ev:
		case <-ctx.Done():
		}
	})
	if err != nil {
		log.Fatal(err)
	}
	for _, e := range []struct {
		topic, payload string
		opt            mqttsec.EventOptions
	}{
		{"doors/3/forced", "at 03:12", mqttsec.EventOptions{}},
		{"doors/3/badge", "card 8165538", mqttsec.EventOptions{To: []string{"monitor"}, Encrypt: true}},
	} {
		if err := door.PublishEvent(ctx, e.topic, []byte(e.payload), e.opt); err != nil {
			log.Fatal(err)
		}
		select {
		case ev := <-events:
			fmt.Println(ev.From, ev.Topic, string(ev.Payload), ev.Protections)
		case <-ctx.Done():
			log.Fatal("no event")
		}
	}
	// Output:
	// door-7 doors/3/forced at 03:12 sig
	// door-7 doors/3/badge card 8165538 enc+sig
}
