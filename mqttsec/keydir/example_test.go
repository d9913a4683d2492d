package keydir_test

import (
	"context"
	"fmt"
	"log"
	"os"
	"path/filepath"
	"time"

	"github.com/mqttsec/mqttsec/mqttsec/keydir"
)

// Two parties get their own keys (Init), are introduced to each other with
// a shared HMAC secret and each other's public keys (Pair), and load what
// they hold into a keyring for mqttsec.Config.Keyring (Load). The
// commands in examples/keygen do the same from a shell.
func ExampleLoad() {
	base, err := os.MkdirTemp("", "keydir-example")
	if err != nil {
		fmt.Println(err)
		return
	}
	defer os.RemoveAll(base)
	gateway, client := filepath.Join(base, "gateway"), filepath.Join(base, "client")
	for dir, id := range map[string]string{gateway: "gateway", client: "client"} {
		if err := keydir.Init(dir, id, keydir.InitOptions{}); err != nil {
			fmt.Println(err)
			return
		}
	}
	if err := keydir.Pair(gateway, client, keydir.PairOptions{HMAC: true, Send: "hmac sig"}); err != nil {
		fmt.Println(err)
		return
	}
	p, err := keydir.Load(gateway)
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(p.ID, "knows", p.Keyring.PeerIDs())
	// Output:
	// gateway knows [client]
}

// Keys are reloaded while a party runs: the gateway's keyring, loaded at
// start with no peer, gains door-7 once the two are paired, with no
// restart. Watch swaps what it reloads into the keyring itself, so a
// Client or Server given p.Keyring (mqttsec.Config.Keyring) seals and
// opens with the new keys from then on. A reload that fails (a file with
// loose permissions, a bad line) keeps the keys in force and is reported;
// the next change is tried again.
func ExampleWatch() {
	base, err := os.MkdirTemp("", "keydir-watch")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(base)
	gateway, door := filepath.Join(base, "gateway"), filepath.Join(base, "door-7")
	for dir, id := range map[string]string{gateway: "gateway", door: "door-7"} {
		if err := keydir.Init(dir, id, keydir.InitOptions{}); err != nil {
			log.Fatal(err)
		}
	}
	p, err := keydir.Load(gateway)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("at start:", p.Keyring.PeerIDs())

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	watching := make(chan struct{})
	go func() {
		defer close(watching)
		keydir.Watch(ctx, gateway, p.Keyring, 20*time.Millisecond, nil, func(err error) {
			log.Printf("keys not reloaded, the previous ones stay: %v", err)
		})
	}()

	if err := keydir.Pair(gateway, door, keydir.PairOptions{HMAC: true}); err != nil {
		log.Fatal(err)
	}
	for p.Keyring.Peer("door-7") == nil && ctx.Err() == nil {
		time.Sleep(10 * time.Millisecond)
	}
	fmt.Println("after pairing:", p.Keyring.PeerIDs())
	cancel()
	<-watching
	// Output:
	// at start: []
	// after pairing: [door-7]
}
