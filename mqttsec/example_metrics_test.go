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
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"

	"github.com/mqttsec/mqttsec/envelope"
	"github.com/mqttsec/mqttsec/mqttsec"
)

// A gateway's metrics, through the OpenTelemetry SDK. Here a manual reader
// collects them once; in a service, give the MeterProvider the exporter
// you use instead: go.opentelemetry.io/otel/exporters/prometheus for a
// /metrics page (as examples/gateway's --metrics flag does), or OTLP.
// Config.TracerProvider takes a tracer provider the same way; without
// either, the global providers (otel.SetMeterProvider) are used.
func ExampleConfig_metrics() {
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

	secret := make([]byte, 32)
	rand.Read(secret)
	key, _ := envelope.NewHMACKey(secret)
	peer := func(id string) *mqttsec.Peer {
		return &mqttsec.Peer{
			Peer: envelope.Peer{ID: id, HMACKeys: []*envelope.HMACKey{key}, Policy: envelope.Policy{Require: envelope.HMAC}},
			Send: mqttsec.Protection{HMAC: key},
		}
	}

	reader := sdkmetric.NewManualReader()
	meters := sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader))
	defer meters.Shutdown(context.Background())

	gwTransport, _ := mqttsec.NewTransport(broker, mqttsec.TransportOptions{ClientID: "gateway"})
	gwKeys, _ := mqttsec.NewKeyring(mqttsec.Own{}, peer("client"))
	gateway, _ := mqttsec.NewServer(mqttsec.ServerConfig{Config: mqttsec.Config{
		ID: "gateway", Keyring: gwKeys, Transport: gwTransport, MeterProvider: meters,
	}})
	gateway.HandleFunc("echo", func(ctx context.Context, r *mqttsec.Request) ([]byte, error) { return r.Payload, nil })
	if err := gateway.Start(ctx); err != nil {
		log.Fatal(err)
	}
	defer gateway.Close(context.Background())
	fmt.Println("ready:", gateway.Ready()) // for a readiness check

	clTransport, _ := mqttsec.NewTransport(broker, mqttsec.TransportOptions{ClientID: "client-1"})
	clKeys, _ := mqttsec.NewKeyring(mqttsec.Own{}, peer("gateway"))
	client, _ := mqttsec.NewClient(mqttsec.Config{ID: "client", Keyring: clKeys, Transport: clTransport})
	if err := client.Start(ctx); err != nil {
		log.Fatal(err)
	}
	defer client.Close(context.Background())
	for range 3 {
		if _, err := client.Request(ctx, "gateway", "echo", []byte("hi")); err != nil {
			log.Fatal(err)
		}
	}

	var rm metricdata.ResourceMetrics
	if err := reader.Collect(ctx, &rm); err != nil {
		log.Fatal(err)
	}
	for _, scope := range rm.ScopeMetrics {
		for _, m := range scope.Metrics {
			switch data := m.Data.(type) {
			case metricdata.Sum[int64]:
				if m.Name == "mqttsec.messages" {
					for _, p := range data.DataPoints {
						outcome, _ := p.Attributes.Value("mqttsec.outcome")
						from, _ := p.Attributes.Value("mqttsec.peer")
						fmt.Printf("%s outcome=%s peer=%s: %d\n", m.Name, outcome.AsString(), from.AsString(), p.Value)
					}
				}
			case metricdata.Histogram[float64]:
				if m.Name == "mqttsec.server.handler.duration" {
					for _, p := range data.DataPoints {
						method, _ := p.Attributes.Value("mqttsec.method")
						fmt.Printf("%s method=%s: %d handled\n", m.Name, method.AsString(), p.Count)
					}
				}
			}
		}
	}
	// Output:
	// ready: <nil>
	// mqttsec.messages outcome=accepted peer=client: 3
	// mqttsec.server.handler.duration method=echo: 3 handled
}
