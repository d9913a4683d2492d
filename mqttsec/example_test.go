package mqttsec_test

import (
	"context"
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

// A gateway and a client sharing an HMAC key: the gateway over MQTT 5, the
// client over MQTT 3.1.1. So that the example runs by itself, the broker
// is an embedded one (github.com/mochi-mqtt/server/v2) on a free port;
// with a broker of your own, set broker to its URL instead, for example
// "tcp://broker.example:1883", or "tls://broker.example:8883" with
// TransportOptions.TLS (see ExampleNewTransport_tls).
func Example() {
	mq := mochi.New(&mochi.Options{Logger: slog.New(slog.DiscardHandler)})
	if err := mq.AddHook(new(auth.AllowHook), nil); err != nil { // admits every client
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

	secret := make([]byte, 32)
	rand.Read(secret) // in real use: generated once, shared out of band
	key, _ := envelope.NewHMACKey(secret)
	peer := func(id string) *mqttsec.Peer {
		return &mqttsec.Peer{
			Peer: envelope.Peer{ID: id, HMACKeys: []*envelope.HMACKey{key}, Policy: envelope.Policy{Require: envelope.HMAC}},
			Send: mqttsec.Protection{HMAC: key},
		}
	}

	// The gateway, over MQTT 5 (the default).
	gwTransport, err := mqttsec.NewTransport(broker, mqttsec.TransportOptions{ClientID: "gateway"})
	if err != nil {
		log.Fatal(err)
	}
	gwKeys, _ := mqttsec.NewKeyring(mqttsec.Own{}, peer("client"))
	gateway, _ := mqttsec.NewServer(mqttsec.ServerConfig{Config: mqttsec.Config{
		ID: "gateway", Keyring: gwKeys, Transport: gwTransport,
	}})
	gateway.HandleFunc("get-card", func(ctx context.Context, r *mqttsec.Request) ([]byte, error) {
		// r.Caller is authenticated; r.Payload is authentic and fresh.
		if string(r.Payload) != "8165538" {
			return nil, mqttsec.Errorf(mqttsec.CodeBadRequest, "no card %s", r.Payload)
		}
		return []byte(`{"card":8165538,"name":"Dana"}`), nil
	})
	if err := gateway.Start(ctx); err != nil {
		log.Fatal(err)
	}
	defer gateway.Close(context.Background())

	// The client, over MQTT 3.1.1.
	clTransport, err := mqttsec.NewTransport(broker, mqttsec.TransportOptions{ClientID: "client-1", Protocol: 3})
	if err != nil {
		log.Fatal(err)
	}
	clKeys, _ := mqttsec.NewKeyring(mqttsec.Own{}, peer("gateway"))
	client, _ := mqttsec.NewClient(mqttsec.Config{ID: "client", Keyring: clKeys, Transport: clTransport})
	if err := client.Start(ctx); err != nil {
		log.Fatal(err)
	}
	defer client.Close(context.Background())

	reply, err := client.Request(ctx, "gateway", "get-card", []byte("8165538"))
	fmt.Println(string(reply), err)
	_, err = client.Request(ctx, "gateway", "get-card", []byte("42"))
	fmt.Println(err)
	_, err = client.Request(ctx, "gateway", "delete-card", []byte("42"))
	fmt.Println(err)
	// Output:
	// {"card":8165538,"name":"Dana"} <nil>
	// mqttsec: remote error: bad-request: no card 42
	// mqttsec: remote error: not-found: delete-card
}

// The default topic scheme.
func ExampleTopics() {
	var t mqttsec.Topics
	fmt.Println(t.Request("gateway", "doors/open"))
	fmt.Println(t.Reply("client-7"))
	fmt.Println(t.Event("gateway", "doors/3/forced"))
	fmt.Println(t.RequestFilter("gateway"))
	// Output:
	// mqttsec/gateway/req/doors/open
	// mqttsec/client-7/reply
	// mqttsec/gateway/evt/doors/3/forced
	// mqttsec/gateway/req/#
}
