package mqttsec_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/mqttsec/mqttsec/mqttsec"
)

func TestInvalidConfigurationIsTyped(t *testing.T) {
	k := getKeys()
	s := suites()[0]
	gateway := func() *mqttsec.Peer {
		return peerOf(k, "gateway", k.gateway, s.require, s.send(k, k.client, k.gateway))
	}
	ring := mustT(mqttsec.NewKeyring(mqttsec.Own{}, gateway()))
	tr := transport(t, 5, "tcp://127.0.0.1:1", "client", nil)
	noSend := gateway()
	noSend.Send = mqttsec.Protection{}
	badID := gateway()
	badID.ID = "no spaces"
	tests := []struct {
		name string
		err  func() error
		also error // another error it must wrap, if any
	}{
		{"client without transport", func() error { _, err := mqttsec.NewClient(mqttsec.Config{ID: "c", Keyring: ring}); return err }, nil},
		{"client without keyring", func() error { _, err := mqttsec.NewClient(mqttsec.Config{ID: "c", Transport: tr}); return err }, nil},
		{"client with an invalid id", func() error {
			_, err := mqttsec.NewClient(mqttsec.Config{ID: "a/b", Transport: tr, Keyring: ring})
			return err
		}, nil},
		{"server with an invalid share group", func() error {
			_, err := mqttsec.NewServer(mqttsec.ServerConfig{Config: mqttsec.Config{ID: "g", Transport: tr, Keyring: ring}, ShareGroup: "a/b"})
			return err
		}, nil},
		{"replicas without shared state", func() error {
			_, err := mqttsec.NewServer(mqttsec.ServerConfig{Config: mqttsec.Config{ID: "g", Transport: tr, Keyring: ring}, ShareGroup: "gateways"})
			return err
		}, mqttsec.ErrReplicaState},
		{"nil peer", func() error { _, err := mqttsec.NewKeyring(mqttsec.Own{}, nil); return err }, nil},
		{"peer listed twice", func() error { _, err := mqttsec.NewKeyring(mqttsec.Own{}, gateway(), gateway()); return err }, nil},
		{"peer with an invalid id", func() error { _, err := mqttsec.NewKeyring(mqttsec.Own{}, badID); return err }, nil},
		{"peer with nothing to send with", func() error { _, err := mqttsec.NewKeyring(mqttsec.Own{}, noSend); return err }, nil},
		{"ACL identity listed twice", func() error {
			_, err := mqttsec.Topics{}.MosquittoACL([]mqttsec.ACLIdentity{{ID: "a"}, {ID: "a"}})
			return err
		}, nil},
		{"ACL identity with an invalid id", func() error {
			_, err := mqttsec.Topics{}.MosquittoACL([]mqttsec.ACLIdentity{{ID: "a#"}})
			return err
		}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.err()
			if !errors.Is(err, mqttsec.ErrInvalidConfig) {
				t.Fatalf("error %v does not wrap ErrInvalidConfig", err)
			}
			if tt.also != nil && !errors.Is(err, tt.also) {
				t.Fatalf("error %v does not wrap %v", err, tt.also)
			}
		})
	}
}

func TestLifecycleAndEventErrorsAreTyped(t *testing.T) {
	checkNoLeaks(t)
	b := embeddedBroker(t)
	k := getKeys()
	s := suites()[0]
	// No Own.Signer: events only to exactly one peer.
	ring := mustT(mqttsec.NewKeyring(mqttsec.Own{},
		peerOf(k, "gateway", k.gateway, s.require, s.send(k, k.client, k.gateway)),
		peerOf(k, "audit", k.gateway, s.require, s.send(k, k.client, k.gateway))))
	c := mustT(mqttsec.NewClient(mqttsec.Config{ID: "client", Transport: transport(t, 5, b.url, "client", nil), Keyring: ring}))
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := c.Request(ctx, "gateway", "echo", nil); !errors.Is(err, mqttsec.ErrNotStarted) {
		t.Errorf("Request before Start = %v, want ErrNotStarted", err)
	}
	if err := c.Start(ctx); err != nil {
		t.Fatal(err)
	}
	if err := c.Start(ctx); !errors.Is(err, mqttsec.ErrAlreadyStarted) {
		t.Errorf("second Start = %v, want ErrAlreadyStarted", err)
	}
	events := []struct {
		name string
		opt  mqttsec.EventOptions
	}{
		{"event to two peers without a signer", mqttsec.EventOptions{To: []string{"gateway", "audit"}}},
		{"event to anyone without a signer", mqttsec.EventOptions{}},
	}
	for _, e := range events {
		if err := c.PublishEvent(ctx, "doors/1", nil, e.opt); !errors.Is(err, mqttsec.ErrInvalidEvent) {
			t.Errorf("%s: PublishEvent = %v, want ErrInvalidEvent", e.name, err)
		}
	}
	// With a signer, an encrypted event still needs recipients.
	signing := newPair(t, b, pairOptions{proto: 5})
	if err := signing.client.PublishEvent(ctx, "doors/1", nil, mqttsec.EventOptions{Encrypt: true}); !errors.Is(err, mqttsec.ErrInvalidEvent) {
		t.Errorf("encrypted event without recipients: PublishEvent = %v, want ErrInvalidEvent", err)
	}
	if err := c.Close(ctx); err != nil {
		t.Fatal(err)
	}
	if err := c.Start(ctx); !errors.Is(err, mqttsec.ErrClosed) {
		t.Errorf("Start after Close = %v, want ErrClosed", err)
	}
}
