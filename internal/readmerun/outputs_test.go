//go:build linux

package main

import (
	"testing"
)

// A sample is an exit status and output recorded from a README command
// (shortened), and whether its expectation must accept it.
type sample struct {
	exit int
	out  string
	ok   bool
}

const inspectHead = `envelope    231 bytes
kind        request (req)
from        door-7
to          gateway
topic       echo
reply-to    mqttsec/door-7/reply
correlation urk8NhIxUYtlnR36Uv3H2g
counter     1796681986151460940
issued      2026-12-07T22:19:46.152Z (735ms ago)
expires     2026-12-07T22:19:56.151Z (in 9.264s)
protection  hmac+sig
key         HS256 AH7Digp1YTr58iIE
key         Ed25519 pCRWdTtTmZdgjW2c
`

const gatewayKeysOut = `time=2026-12-07T22:18:54.762Z level=INFO msg="mqttsec: connected to the broker"
gateway gateway listening on tcp://127.0.0.1:1883 for every peer of keys/gateway (now: door-7) (methods: echo, time); Ctrl-C stops
`

const demoOut = `  ok   no handler ran for any of them             get-card 0, delete-card 0

gateway counters: accepted=9 authentication=1 context=1 malformed=1 replayed=1 too-large=1 unknown-key=1
all 20 checks behaved as expected
`

// samples holds outputs of the README's commands as they printed them, so
// that each expectation is shown to accept real output and to refuse
// output that differs in what matters.
var samples = map[string][]sample{
	"go run ./examples/demo": {
		{0, demoOut, true},
		{1, "  FAIL replay accepted\n", false},
	},
	"go test ./...": {
		{0, "ok  \tgithub.com/mqttsec/mqttsec/envelope\t10.267s\nok  \tgithub.com/mqttsec/mqttsec/mqttsec\t53.804s\n", true},
		{0, "ok  \tgithub.com/mqttsec/mqttsec/mqttsec/replay\t2.0s\n", false},
	},
	"go run ./examples/demo --broker tcp://127.0.0.1:1883 --protocol 3": {{0, demoOut, true}},
	"go run ./examples/keygen init --dir keys/gateway --id gateway": {
		{0, "id gateway\nsigning    Ed25519              key id 2K3rqJ297f3qoMBp\npublic ed25519 6jQGlStXDCP1xyKkvuXTtAdEze4nseRgW0r4b0HDPsI\npublic es256 BDrw\n", true},
		{0, "id door-7\npublic ed25519 6jQG\n", false},
	},
	"go run ./examples/keygen init --dir keys/door-7 --id door-7": {
		{0, "id door-7\nsigning    Ed25519              key id pCRWdTtTmZdgjW2c\npublic ed25519 Jfp-5h37ISMQgMK2zNVQTWse_-YlFZB-2QgeGsLiM-w\n", true},
	},
	`go run ./examples/keygen pair --dir keys/gateway --peer-dir keys/door-7 --hmac --send "hmac sig"`: {
		{0, "keys/gateway and keys/door-7 now share the requested secrets (files mode 600)\n", true},
	},
	"go run ./examples/keygen export --dir keys/gateway --to keys/door-7/peers/gateway": {
		{0, "public keys of keys/gateway written to keys/door-7/peers/gateway\n", true},
	},
	"go run ./examples/keygen export --dir keys/door-7 --to keys/gateway/peers/door-7": {
		{0, "public keys of keys/door-7 written to keys/gateway/peers/door-7\n", true},
	},
	"go run ./examples/keygen acl --dir keys/gateway --out keys/mqttsec.acl": {
		{0, "Mosquitto ACL for keys/gateway written to keys/mqttsec.acl\n", true},
	},
	"go run ./examples/gateway --keys keys/gateway &": {
		{0, gatewayKeysOut + "accepted=1\n", true},
		{0, gatewayKeysOut + "accepted=2\n", false},
		{0, gatewayKeysOut, false},
	},
	"go run ./examples/client --keys keys/door-7 echo hello": {
		{0, "hello\n", true},
		{5, "client: no reply from gateway within 10s\n", false},
		{0, "hello\nhello\n", false},
	},
	"go run ./examples/client --gen-hmac shared.hmac": {{0, "", true}, {1, "client: shared.hmac exists\n", false}},
	"go run ./examples/client --gen-ed25519 client":   {{0, "", true}},
	"go run ./examples/gateway --broker tcp://127.0.0.1:1883 --peer client --hmac-key shared.hmac &": {
		{0, "time=2026-12-07T22:20:38.139Z level=INFO msg=\"mqttsec: connected to the broker\"\ngateway gateway listening on tcp://127.0.0.1:1883 for client (methods: echo, time); Ctrl-C stops\naccepted=1\n", true},
	},
	"go run ./examples/client --broker tcp://127.0.0.1:1883 --hmac-key shared.hmac echo hello": {{0, "hello\n", true}},
	"mosquitto_sub -h 127.0.0.1 -t 'mqttsec/gateway/req/#' -C 1 -N > captured.env &": {
		{0, "", true},
		{1, "Error: Connection refused\n", false},
	},
	"go run ./examples/inspect captured.env": {
		{0, inspectHead + "verdict     UNVERIFIED: no --keys given\npayload     (not opened)\n", true},
	},
	"go run ./examples/inspect --keys keys/gateway captured.env": {
		{0, inspectHead + "verdict     ACCEPTED by gateway: from door-7, hmac+sig\npayload     5 bytes: hello\n", true},
		{1, inspectHead + "verdict     REFUSED by gateway: envelope: expired or not yet valid: expired\n", true},
		{1, inspectHead + "verdict     REFUSED by gateway: envelope: authentication failed\n", false},
		{0, inspectHead + "verdict     REFUSED by gateway: envelope: expired or not yet valid: expired\n", false},
	},
	"go run ./examples/inspect --keys keys/gateway --at-issue captured.env": {
		{0, inspectHead + "verdict     ACCEPTED by gateway: from door-7, hmac+sig (as of its issue time; freshness not checked)\npayload     5 bytes: hello\n", true},
		{0, inspectHead + "verdict     ACCEPTED by gateway: from door-7, hmac+sig\npayload     5 bytes: hello\n", false},
	},
	"go run ./examples/gateway --keys keys/gateway --metrics 127.0.0.1:9464 &": {
		{0, "metrics on http://127.0.0.1:9464/metrics, health on /healthz and /readyz\n" + gatewayKeysOut + "accepted=1\n", true},
		{0, gatewayKeysOut + "accepted=1\n", false},
	},
	"curl -s 127.0.0.1:9464/readyz": {
		{0, "ready\n", true},
		{0, "not ready: mqttsec: not connected to the broker: the connection to the broker is down\n", false},
	},
	"curl -s 127.0.0.1:9464/metrics | grep '^mqttsec_messages_total'": {
		{0, `mqttsec_messages_total{mqttsec_id="gateway",mqttsec_outcome="accepted",mqttsec_peer="door-7",otel_scope_name="github.com/mqttsec/mqttsec/mqttsec",otel_scope_schema_url="",otel_scope_version=""} 1` + "\n", true},
		{0, `mqttsec_messages_total{mqttsec_id="gateway",mqttsec_outcome="accepted",mqttsec_peer="door-7",otel_scope_name="github.com/mqttsec/mqttsec/mqttsec",otel_scope_schema_url="",otel_scope_version=""} 2` + "\n", false},
		{1, "", false},
	},
	"MQTTSEC_TEST_MOSQUITTO=127.0.0.1:1883 MQTTSEC_TEST_REDIS=127.0.0.1:6379 MQTTSEC_TEST_SOCKS=127.0.0.1:1080 go test ./...": {
		{0, "ok  \tgithub.com/mqttsec/mqttsec/examples/gateway\t3.838s\nok  \tgithub.com/mqttsec/mqttsec/mqttsec\t92.394s\n", true},
	},
	"go test ./envelope -run XXX -bench Envelope -benchtime 100ms": {
		{0, "goos: linux\nBenchmarkEnvelope/hmac/256/seal-2         \t  948696\t      1267 ns/op\t     592 B/op\t       3 allocs/op\nPASS\nok  \tgithub.com/mqttsec/mqttsec/envelope\t29.019s\n", true},
		{0, "PASS\nok  \tgithub.com/mqttsec/mqttsec/envelope\t0.010s\n", false},
	},
	"go test ./mqttsec -run XXX -bench RoundTrip -benchtime 100ms": {
		{0, "BenchmarkRoundTrip/v5/ed25519/inflight64-2                     \t    4020\t    284580 ns/op\t   43592 B/op\t     301 allocs/op\nPASS\nok  \tgithub.com/mqttsec/mqttsec/mqttsec\t12.943s\n", true},
	},
	"go run ./examples/bench --duration 300ms": {
		{0, "mqttsec bench: go1.26.8, linux/amd64, 2 CPUs, 300ms per row\n\nrow    ns/op\nenvelope/hmac/256/seal                                       1397                    3\nroundtrip/v5/plain                                                       16166\nreplay/file                                                 13539        73859\n", true},
		{0, "mqttsec bench: go1.26.8, linux/amd64, 2 CPUs, 1s per row\n\nenvelope/hmac/256/seal   1397\nroundtrip/v5/plain   16166\nreplay/file   13539\n", false},
	},
	"go test ./envelope -run XXX -fuzz FuzzOpen -fuzztime 200000x": {
		{0, "fuzz: elapsed: 6s, execs: 130111 (39967/sec), new interesting: 1 (total: 422)\nfuzz: elapsed: 9s, execs: 200000 (28413/sec), new interesting: 3 (total: 424)\nPASS\nok  \tgithub.com/mqttsec/mqttsec/envelope\t8.561s\n", true},
		{1, "fuzz: elapsed: 3s, execs: 10231 (3409/sec)\n--- FAIL: FuzzOpen (3.01s)\n    context deadline exceeded\nFAIL\n", false},
	},
}

// TestExpectationsAgainstSamples runs every expectation of a command that
// runs against recorded outputs of it; each needs one that it accepts.
func TestExpectationsAgainstSamples(t *testing.T) {
	for _, e := range expectations {
		if len(e.outcomes) == 0 {
			continue
		}
		ss := samples[key(e.cmd)]
		accepted := false
		for i, s := range ss {
			err := checkOutcome(e.outcomes, s.exit, s.out)
			if (err == nil) != s.ok {
				t.Errorf("%s: sample %d: checkOutcome = %v, want ok %v", e.cmd, i, err, s.ok)
			}
			accepted = accepted || s.ok
		}
		if !accepted {
			t.Errorf("%s: no recorded output that its expectation accepts", e.cmd)
		}
	}
}
