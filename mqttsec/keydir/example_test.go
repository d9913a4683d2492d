package keydir_test

import (
	"fmt"
	"os"
	"path/filepath"

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
