package authz_test

import (
	"context"
	"crypto/rand"
	"fmt"
	"log"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"time"

	mochi "github.com/mochi-mqtt/server/v2"
	"github.com/mochi-mqtt/server/v2/hooks/auth"
	"github.com/mochi-mqtt/server/v2/listeners"

	"github.com/mqttsec/mqttsec/envelope"
	"github.com/mqttsec/mqttsec/mqttsec"
	"github.com/mqttsec/mqttsec/mqttsec/authz"
)

// Rules are two texts: callers to groups, and groups to the method patterns
// they are granted ('!' denies, and a deny always wins). Servers take
// Allowed as ServerConfig.Authorize; authz.Load reads the same from files
// and can Watch them.
func ExampleParse() {
	users := `
door-controller-7   doors
ops-console         operators
`
	groups := `
doors       doors/*, get-card
operators   *, !admin/*
`
	rules, err := authz.Parse("users", strings.NewReader(users), "groups", strings.NewReader(groups))
	if err != nil {
		fmt.Println(err)
		return
	}
	for _, c := range []struct{ caller, method string }{
		{"door-controller-7", "doors/open"},
		{"door-controller-7", "admin/reset"},
		{"ops-console", "doors/open"},
		{"ops-console", "admin/reset"},
		{"someone-else", "get-card"},
	} {
		fmt.Println(c.caller, c.method, rules.Allowed(c.caller, c.method))
	}
	// Output:
	// door-controller-7 doors/open true
	// door-controller-7 admin/reset false
	// ops-console doors/open true
	// ops-console admin/reset false
	// someone-else get-card false
}

// A syntax error names the file and the line, and refuses the whole file.
func ExampleParse_syntaxError() {
	_, err := authz.Parse("users", strings.NewReader("ops-console\n"), "groups", strings.NewReader(""))
	fmt.Println(err != nil, strings.HasPrefix(err.Error(), "users:1:"))
	// Output:
	// true true
}

// A gateway that lets each caller call only the methods its group is
// granted: the rules are read from two files (Load), and Allowed is the
// server's ServerConfig.Authorize. A forbidden call gets a sealed
// "forbidden" error reply, and its handler does not run. Authorizer.Watch
// reloads the files when they change. The broker is an embedded one
// (github.com/mochi-mqtt/server/v2) on a free port; with a broker of your
// own, broker is its URL.
func ExampleLoad() {
	dir, err := os.MkdirTemp("", "authz-example")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)
	users, groups := filepath.Join(dir, "users"), filepath.Join(dir, "groups")
	_ = os.WriteFile(users, []byte("door-controller-7  doors\n"), 0o644)
	_ = os.WriteFile(groups, []byte("doors  doors/*, get-card\n"), 0o644)
	rules, err := authz.Load(users, groups)
	if err != nil {
		log.Fatal(err)
	}

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
	keyring := func(peer string) *mqttsec.Keyring {
		k, _ := mqttsec.NewKeyring(mqttsec.Own{}, &mqttsec.Peer{
			Peer: envelope.Peer{ID: peer, HMACKeys: []*envelope.HMACKey{key}, Policy: envelope.Policy{Require: envelope.HMAC}},
			Send: mqttsec.Protection{HMAC: key},
		})
		return k
	}

	gwTransport, err := mqttsec.NewTransport(broker, mqttsec.TransportOptions{ClientID: "gateway"})
	if err != nil {
		log.Fatal(err)
	}
	gateway, _ := mqttsec.NewServer(mqttsec.ServerConfig{
		Config:    mqttsec.Config{ID: "gateway", Keyring: keyring("door-controller-7"), Transport: gwTransport},
		Authorize: rules.Allowed,
	})
	handler := func(ctx context.Context, r *mqttsec.Request) ([]byte, error) { return []byte("done"), nil }
	gateway.HandleFunc("doors/open", handler)
	gateway.HandleFunc("admin/reset", handler)
	if err := gateway.Start(ctx); err != nil {
		log.Fatal(err)
	}
	defer gateway.Close(context.Background())

	clTransport, err := mqttsec.NewTransport(broker, mqttsec.TransportOptions{ClientID: "door-controller-7"})
	if err != nil {
		log.Fatal(err)
	}
	client, _ := mqttsec.NewClient(mqttsec.Config{ID: "door-controller-7", Keyring: keyring("gateway"), Transport: clTransport})
	if err := client.Start(ctx); err != nil {
		log.Fatal(err)
	}
	defer client.Close(context.Background())

	for _, method := range []string{"doors/open", "admin/reset"} {
		reply, err := client.Request(ctx, "gateway", method, nil)
		fmt.Printf("%s: %q %v\n", method, reply, err)
	}
	// Output:
	// doors/open: "done" <nil>
	// admin/reset: "" mqttsec: remote error: forbidden
}
