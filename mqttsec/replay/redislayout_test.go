package replay

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/redis/go-redis/v9"

	"github.com/mqttsec/mqttsec/envelope"
)

// keySlot is the Redis Cluster hash slot of key, written from the cluster
// specification for these tests: CRC16 (XMODEM) of the text between the
// first '{' and the first '}' after it when that is not empty, else of
// the whole key, mod 16384.
func keySlot(key string) int {
	if i := strings.IndexByte(key, '{'); i >= 0 {
		if j := strings.IndexByte(key[i+1:], '}'); j > 0 {
			key = key[i+1 : i+1+j]
		}
	}
	var crc uint16
	for _, b := range []byte(key) {
		crc ^= uint16(b) << 8
		for range 8 {
			if crc&0x8000 != 0 {
				crc = crc<<1 ^ 0x1021
			} else {
				crc <<= 1
			}
		}
	}
	return int(crc) % 16384
}

// keySlot agrees with the specification's CRC16 check value and with
// what Redis 7's CLUSTER KEYSLOT answers.
func TestKeySlot(t *testing.T) {
	for key, want := range map[string]int{
		"123456789":            0x31c3, // the check value of CRC16/XMODEM
		"foo":                  12182,
		"somekey":              11058,
		"{user1000}.following": 3443,
		"{}user1000":           7326, // an empty tag: the whole key
		"a{b}c":                3300, // the slot of "b"
		"a{b":                  13340,
		"{a{b}#run_id":         13340, // the tag is "a{b"
	} {
		if got := keySlot(key); got != want {
			t.Errorf("keySlot(%q) = %d, want %d", key, got, want)
		}
	}
}

// The shard of a sender is FNV-1a (32 bits) of its id, mod the number of
// shards, and a shard's keys carry "{k/N}": the stored format, which a
// change to the hash or to the layout would break (senders moved to empty
// windows). These vectors pin both.
func TestRedisStoreShardLayout(t *testing.T) {
	// FNV-1a 32 of "", "a" and "foobar" is 0x811c9dc5, 0xe40c292c and
	// 0xbf9cf968 (the FNV reference test vectors).
	for sender, hash := range map[string]uint32{"": 0x811c9dc5, "a": 0xe40c292c, "foobar": 0xbf9cf968} {
		if got, want := shardOf(sender, MaxRedisShards), int(hash%MaxRedisShards); got != want {
			t.Errorf("shardOf(%q, %d) = %d, want %d (FNV-1a 32)", sender, MaxRedisShards, got, want)
		}
	}
	rdb := redis.NewClient(&redis.Options{Addr: "127.0.0.1:1"}) // never dialled
	t.Cleanup(func() { rdb.Close() })
	for _, tc := range []struct {
		shards         int
		sender         string
		window, marker string
	}{
		{0, "client", "p:client", "p:#state"},
		{1, "client", "p:client", "p:#state"},
		{16, "client", "p:{14/16}client", "p:{14/16}#state"},
		{16, "gateway", "p:{9/16}gateway", "p:{9/16}#state"},
		{16, "sensor-0042", "p:{0/16}sensor-0042", "p:{0/16}#state"},
		{3, "client-a", "p:{2/3}client-a", "p:{2/3}#state"},
		{1000, "a", "p:{220/1000}a", "p:{220/1000}#state"},
		{MaxRedisShards, "foobar", "p:{14696/16384}foobar", "p:{14696/16384}#state"},
	} {
		s, err := NewRedisStore(rdb, RedisStoreOptions{Prefix: "p:", Shards: tc.shards})
		if err != nil {
			t.Fatal(err)
		}
		window, marker := s.keys(tc.sender)
		if window != tc.window || marker != tc.marker {
			t.Errorf("shards %d, sender %q: keys %q and %q, want %q and %q", tc.shards, tc.sender, window, marker, tc.window, tc.marker)
		}
		if tc.shards > 1 && keySlot(window) != keySlot(marker) {
			t.Errorf("shards %d, sender %q: window in slot %d, marker in %d", tc.shards, tc.sender, keySlot(window), keySlot(marker))
		}
		if !slices.Contains(s.markers(), marker) {
			t.Errorf("shards %d: %q is not among the markers InitRedisStore creates", tc.shards, marker)
		}
	}
	s, err := NewRedisStore(rdb, RedisStoreOptions{Prefix: "p:", Shards: 4})
	if err != nil {
		t.Fatal(err)
	}
	if got, want := s.markers(), []string{"p:{0/4}#state", "p:{1/4}#state", "p:{2/4}#state", "p:{3/4}#state"}; !slices.Equal(got, want) {
		t.Fatalf("markers %q, want %q", got, want)
	}
	// Every sender of every shard shares its marker's slot, and the
	// shards' slots are not all one.
	slots := map[int]bool{}
	for i := range 200 {
		window, marker := s.keys(fmt.Sprint("client-", i))
		if keySlot(window) != keySlot(marker) {
			t.Fatalf("%s in slot %d, its marker %s in %d", window, keySlot(window), marker, keySlot(marker))
		}
		slots[keySlot(marker)] = true
	}
	if len(slots) != 4 {
		t.Fatalf("200 senders in %d slots, want the 4 shards'", len(slots))
	}
}

// Which prefix and Shards each kind of client takes. A ClusterClient
// needs the keys a script touches in one slot: without shards, a tag in
// the prefix; with shards, no brace in it, since its tag would put every
// shard in one slot. A Client takes any prefix without shards, and the
// same as the cluster with them (one layout wherever the store's keys
// go). A Ring, which moves keys between shards as each client sees them
// fail, is refused whatever the options.
func TestNewRedisStoreLayoutPerClient(t *testing.T) {
	// No server is needed: the options are checked before any command.
	cluster := redis.NewClusterClient(&redis.ClusterOptions{Addrs: []string{"127.0.0.1:1"}})
	ring := redis.NewRing(&redis.RingOptions{Addrs: map[string]string{"a": "127.0.0.1:1"}})
	plain := redis.NewClient(&redis.Options{Addr: "127.0.0.1:1"})
	t.Cleanup(func() { cluster.Close(); ring.Close(); plain.Close() })
	for _, tc := range []struct {
		prefix         string
		shards         int
		slotted, plain bool   // accepted on a ClusterClient; on a Client
		why            string // in the error, where refused
	}{
		{"", 0, false, true, "has no {hash tag}"}, // the default, "mqttsec:replay:"
		{"mqttsec:replay:", 0, false, true, "has no {hash tag}"},
		{"mqttsec:replay:", 1, false, true, "has no {hash tag}"},
		{"{gateway}:replay:", 0, true, true, ""},
		{"replay:{gateway}:", 1, true, true, ""},
		{"replay:{}:", 0, false, true, "has no {hash tag}"},
		{"replay:{gateway:", 0, false, true, "has no {hash tag}"},
		{"replay}{gateway:", 0, false, true, "has no {hash tag}"},
		{"", 16, true, true, ""},
		{"mqttsec:replay:", 2, true, true, ""},
		{"mqttsec:replay:", MaxRedisShards, true, true, ""},
		{"{gateway}:replay:", 16, false, false, "would put every shard in one cluster slot"},
		{"replay:{gateway}:", 2, false, false, "would put every shard in one cluster slot"},
		{"replay:{}:", 16, false, false, "holds a brace"},
		{"replay:{gateway:", 16, false, false, "holds a brace"},
		{"replay}gateway:", 16, false, false, "holds a brace"},
		{"mqttsec:replay:", -1, false, false, "redis shards -1"},
		{"mqttsec:replay:", MaxRedisShards + 1, false, false, "redis shards 16385"},
	} {
		for name, rdb := range map[string]redis.UniversalClient{"cluster": cluster, "ring": ring, "client": plain} {
			want, why := tc.slotted, tc.why
			switch name {
			case "client":
				want = tc.plain
			case "ring":
				want, why = false, "redis.Ring"
			}
			_, err := NewRedisStore(rdb, RedisStoreOptions{Prefix: tc.prefix, Shards: tc.shards})
			if (err == nil) != want {
				t.Errorf("%s, prefix %q, shards %d: %v, want accepted: %v", name, tc.prefix, tc.shards, err, want)
				continue
			}
			if err != nil && (!errors.Is(err, envelope.ErrInvalidConfig) || !strings.Contains(err.Error(), why)) {
				t.Errorf("%s, prefix %q, shards %d: %v, want ErrInvalidConfig saying %q", name, tc.prefix, tc.shards, err, why)
			}
		}
	}
}

// A RedisCounter's two keys share a slot on a ClusterClient: a key with a
// hash tag keeps "<key>#run_id"; one without has its run_id in
// "{<key>}#run_id", which hashes as the key when the key holds no '}'; any
// other key is refused, by Next, before any command. A Client keeps
// "<key>#run_id" for every key; a Ring is refused for every key.
func TestRedisCounterRunIDKey(t *testing.T) {
	cluster := redis.NewClusterClient(&redis.ClusterOptions{Addrs: []string{"127.0.0.1:1"}})
	ring := redis.NewRing(&redis.RingOptions{Addrs: map[string]string{"a": "127.0.0.1:1"}})
	plain := redis.NewClient(&redis.Options{Addr: "127.0.0.1:1"})
	t.Cleanup(func() { cluster.Close(); ring.Close(); plain.Close() })
	for _, tc := range []struct {
		key     string
		slotted string // the run_id key on a ClusterClient; "": refused
	}{
		{"mqttsec:counter:gateway", "{mqttsec:counter:gateway}#run_id"},
		{"{gateway}:counter", "{gateway}:counter#run_id"},
		{"counter:{gateway}", "counter:{gateway}#run_id"},
		{"a{b", "{a{b}#run_id"}, // no '}': the whole key is hashed, as is the tag
		{"a}b", ""},
		{"a{}b", ""},
		{"}{", ""},
		{"", ""},
	} {
		for name, rdb := range map[string]redis.UniversalClient{"cluster": cluster, "ring": ring, "client": plain} {
			c := NewRedisCounter(rdb, tc.key)
			want := tc.slotted
			switch name {
			case "client":
				want = tc.key + "#run_id"
			case "ring":
				want = ""
			}
			if want == "" {
				if _, err := c.Next(); !errors.Is(err, envelope.ErrInvalidConfig) {
					t.Errorf("%s, key %q: Next = %v, want ErrInvalidConfig", name, tc.key, err)
				}
				continue
			}
			if c.err != nil || c.runKey != want {
				t.Errorf("%s, key %q: run_id key %q (%v), want %q", name, tc.key, c.runKey, c.err, want)
			}
			if name != "client" && keySlot(c.runKey) != keySlot(tc.key) {
				t.Errorf("%s, key %q: slot %d, its run_id key's %d", name, tc.key, keySlot(tc.key), keySlot(c.runKey))
			}
		}
	}
}
