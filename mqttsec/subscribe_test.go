package mqttsec_test

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	mochi "github.com/mochi-mqtt/server/v2"

	"github.com/mqttsec/mqttsec/internal/testbroker"
	"github.com/mqttsec/mqttsec/mqttsec"
)

// refuseReading is a broker ACL that lets clients publish anywhere but
// refuses every subscription to filter.
type refuseReading struct {
	mochi.HookBase
	filter string
}

func (*refuseReading) ID() string { return "refuse-reading" }

func (*refuseReading) Provides(b byte) bool { return b == mochi.OnACLCheck }

func (h *refuseReading) OnACLCheck(_ *mochi.Client, topic string, write bool) bool {
	return write || topic != h.filter
}

// A subscription the broker refuses fails Start with ErrSubscribeRefused on
// both transports: MQTT 3.1.1 reports the refusal only as return code 0x80
// in the SUBACK, which must not pass for a granted subscription. (Mosquitto
// with an acl_file grants every subscription and filters at delivery, so
// the refusing broker is the embedded one with an ACL hook.)
func TestStartFailsWhenBrokerRefusesSubscription(t *testing.T) {
	for _, proto := range protocols {
		t.Run(fmt.Sprintf("v%d", proto), func(t *testing.T) {
			checkNoLeaks(t)
			b, err := testbroker.Start("127.0.0.1:0", nil, &refuseReading{filter: mqttsec.Topics{}.Reply("bob")})
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { b.Close() })
			k := getKeys()
			s := suites()[0]
			keys := mustT(mqttsec.NewKeyring(mqttsec.Own{Signer: k.client.ed, Identities: k.client.ids},
				peerOf(k, "gateway", k.gateway, s.require, s.send(k, k.client, k.gateway))))
			client := mustT(mqttsec.NewClient(mqttsec.Config{ID: "bob", Transport: transport(t, proto, b.URL(), "bob", nil), Keyring: keys}))
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			if err := client.Start(ctx); !errors.Is(err, mqttsec.ErrSubscribeRefused) {
				t.Errorf("Start = %v, want an error wrapping ErrSubscribeRefused", err)
			}
			if err := client.Close(ctx); err != nil {
				t.Errorf("Close: %v", err)
			}
		})
	}
}
