package mqttsec_test

import (
	"context"
	"crypto/rand"
	"fmt"
	"net/url"
	"time"

	"github.com/eclipse/paho.golang/autopaho"
	"github.com/eclipse/paho.golang/paho"
	mqtt "github.com/eclipse/paho.mqtt.golang"

	"github.com/mqttsec/mqttsec/envelope"
	"github.com/mqttsec/mqttsec/internal/testbroker"
	"github.com/mqttsec/mqttsec/mqttsec"
)

// A gateway and a client sharing an HMAC key, over an embedded broker: the
// gateway over MQTT v5, the client over MQTT v3.1.1.
func Example() {
	broker, err := testbroker.Start("127.0.0.1:0", nil)
	if err != nil {
		panic(err)
	}
	defer broker.Close()
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

	// The gateway.
	gwKeys, _ := mqttsec.NewKeyring(mqttsec.Own{}, peer("client"))
	u, _ := url.Parse(broker.URL())
	gateway, _ := mqttsec.NewServer(mqttsec.ServerConfig{Config: mqttsec.Config{
		ID:      "gateway",
		Keyring: gwKeys,
		Transport: mqttsec.NewPahoV5(autopaho.ClientConfig{
			ServerUrls: []*url.URL{u}, KeepAlive: 30, ClientConfig: paho.ClientConfig{ClientID: "gateway"},
		}),
	}})
	gateway.HandleFunc("get-card", func(ctx context.Context, r *mqttsec.Request) ([]byte, error) {
		if string(r.Payload) != "8165538" {
			return nil, mqttsec.Errorf(mqttsec.CodeBadRequest, "no card %s", r.Payload)
		}
		return []byte(`{"card":8165538,"name":"Dana"}`), nil
	})
	if err := gateway.Start(ctx); err != nil {
		panic(err)
	}
	defer gateway.Close(context.Background())

	// The client.
	clKeys, _ := mqttsec.NewKeyring(mqttsec.Own{}, peer("gateway"))
	client, _ := mqttsec.NewClient(mqttsec.Config{
		ID:        "client",
		Keyring:   clKeys,
		Transport: mqttsec.NewPahoV3(mqtt.NewClientOptions().AddBroker(broker.URL()).SetClientID("client")),
	})
	if err := client.Start(ctx); err != nil {
		panic(err)
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
