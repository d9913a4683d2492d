//go:build linux

package main

import (
	"os"
	"regexp"
	"time"
)

// An expectation says what one README command must do. Every command of
// README.md's sh blocks needs one (or a readme-run: ci marker on its
// block), so that a new command states what it prints.
type expectation struct {
	cmd      string    // the command as README.md writes it, without its comment (see key)
	outcomes []outcome // how it may end; the first applies to a job stopped with kill %N
	timeout  time.Duration

	// ready says when a background job is ready for the next command.
	ready readiness
	// endsAfterNext: a background job that exits by itself once the next
	// command has run (mosquitto_sub -C 1 after the message it sends).
	endsAfterNext bool

	uses  []service // services it must be seen to use (connections made)
	files []file    // files it must leave in the working directory

	// For the commands of a readme-run: services block, which the runner
	// does not run: packages the command installs (checked installed),
	// tools they provide (checked on PATH), and the service the runner
	// starts in the command's place.
	packages []string
	tools    []string
	provides service
}

// An outcome is an exit status and a regexp that the command's combined
// output must match.
type outcome struct {
	exit   int
	output *regexp.Regexp
}

// A file is a path that a command creates and, if mode is not zero, its
// permission bits.
type file struct {
	path string
	mode os.FileMode
}

// readiness is when a background job counts as started: when its output
// matches output, or when the broker's log shows a subscription to the
// topic filter subscribed, made after the job started.
type readiness struct {
	output     *regexp.Regexp
	subscribed string
}

// prints is the usual outcome: exit status 0 and output matching re.
func prints(re string) []outcome {
	return []outcome{{exit: 0, output: regexp.MustCompile(re)}}
}

// rejected matches output that fails any command: a panic or a race.
var rejected = regexp.MustCompile(`(?m)^(panic: |WARNING: DATA RACE)`)

const (
	defaultTimeout = 3 * time.Minute
	testTimeout    = 10 * time.Minute
	readyTimeout   = 3 * time.Minute // a go run compiles first
	stopTimeout    = 30 * time.Second
)

const (
	gatewayKeysListening = `(?m)^gateway gateway listening on tcp://127\.0\.0\.1:1883 for every peer of keys/gateway \(now: door-7\) `
	servedOne            = `(?m)^accepted=1$`
	sdkTestsPassed       = `(?m)^ok\s+github\.com/mqttsec/mqttsec/mqttsec\s`
	inspectHeader        = `(?m)^envelope +\d+ bytes\nkind +request \(req\)\nfrom +door-7\nto +gateway\ntopic +echo\n`
)

// expectations holds an entry for every command of README.md's sh blocks
// outside readme-run: ci blocks.
var expectations = []expectation{
	// Quick start. These run before the README starts a broker: the demo
	// brings its own, and the tests need none.
	{cmd: "go run ./examples/demo", outcomes: prints(`(?m)^all \d+ checks behaved as expected$`)},
	{cmd: "go test ./...", outcomes: prints(sdkTestsPassed), timeout: testTimeout},

	// The broker, provided by the runner: a Mosquitto with no listener
	// configured, as mosquitto -d starts it (Mosquitto 2 then listens on
	// port 1883 of the loopback interfaces), logging to the runner.
	{cmd: "apt-get install -y mosquitto mosquitto-clients", packages: []string{"mosquitto", "mosquitto-clients"}, tools: []string{"mosquitto", "mosquitto_sub"}},
	{cmd: "mosquitto -d", provides: mosquitto},
	{cmd: "go run ./examples/demo --broker tcp://127.0.0.1:1883 --protocol 3", outcomes: prints(`(?m)^all \d+ checks behaved as expected$`), uses: []service{mosquitto}},

	// Key directories.
	{cmd: "go run ./examples/keygen init --dir keys/gateway --id gateway", outcomes: prints(`(?m)^id gateway\n(.|\n)*^public ed25519 \S+$`), files: []file{{"keys/gateway/self/ed25519.key", 0o600}}},
	{cmd: "go run ./examples/keygen init --dir keys/door-7 --id door-7", outcomes: prints(`(?m)^id door-7\n(.|\n)*^public ed25519 \S+$`)},
	{cmd: `go run ./examples/keygen pair --dir keys/gateway --peer-dir keys/door-7 --hmac --send "hmac sig"`, outcomes: prints(`(?m)^keys/gateway and keys/door-7 now share the requested secrets`)},
	{cmd: "go run ./examples/keygen export --dir keys/gateway --to keys/door-7/peers/gateway", outcomes: prints(`(?m)^public keys of keys/gateway written to keys/door-7/peers/gateway$`)},
	{cmd: "go run ./examples/keygen export --dir keys/door-7 --to keys/gateway/peers/door-7", outcomes: prints(`(?m)^public keys of keys/door-7 written to keys/gateway/peers/door-7$`)},
	{cmd: "go run ./examples/keygen acl --dir keys/gateway --out keys/mqttsec.acl", outcomes: prints(`(?m)^Mosquitto ACL for keys/gateway written to keys/mqttsec.acl$`), files: []file{{"keys/mqttsec.acl", 0}}},
	{cmd: "go run ./examples/gateway --keys keys/gateway &", ready: readiness{output: regexp.MustCompile(gatewayKeysListening)}, outcomes: prints(servedOne), uses: []service{mosquitto}},
	{cmd: "go run ./examples/client --keys keys/door-7 echo hello", outcomes: prints(`\Ahello\n\z`), uses: []service{mosquitto}},

	// Two processes, keys in files.
	{cmd: "go run ./examples/client --gen-hmac shared.hmac", outcomes: prints(`\A\z`), files: []file{{"shared.hmac", 0o600}}},
	{cmd: "go run ./examples/client --gen-ed25519 client", outcomes: prints(`\A\z`), files: []file{{"client.key", 0o600}, {"client.pub", 0}}},
	{cmd: "go run ./examples/gateway --broker tcp://127.0.0.1:1883 --peer client --hmac-key shared.hmac &", ready: readiness{output: regexp.MustCompile(`(?m)^gateway gateway listening on tcp://127\.0\.0\.1:1883 for client `)}, outcomes: prints(servedOne), uses: []service{mosquitto}},
	{cmd: "go run ./examples/client --broker tcp://127.0.0.1:1883 --hmac-key shared.hmac echo hello", outcomes: prints(`\Ahello\n\z`), uses: []service{mosquitto}},

	// Inspecting an envelope. The capture expires 10 s after it is sent,
	// and a receiver allows 30 s of clock skew: --keys shows ACCEPTED
	// until then, and REFUSED (exit status 1) after, as README.md says.
	{cmd: "mosquitto_sub -h 127.0.0.1 -t 'mqttsec/gateway/req/#' -C 1 -N > captured.env &", ready: readiness{subscribed: "mqttsec/gateway/req/#"}, endsAfterNext: true, outcomes: prints(`\A\z`), uses: []service{mosquitto}, files: []file{{"captured.env", 0}}},
	{cmd: "go run ./examples/inspect captured.env", outcomes: prints(inspectHeader + `(.|\n)*^verdict +UNVERIFIED: no --keys given$`)},
	{cmd: "go run ./examples/inspect --keys keys/gateway captured.env", outcomes: []outcome{
		{exit: 0, output: regexp.MustCompile(inspectHeader + `(.|\n)*^verdict +ACCEPTED by gateway: from door-7, hmac\+sig\npayload +5 bytes: hello$`)},
		{exit: 1, output: regexp.MustCompile(inspectHeader + `(.|\n)*^verdict +REFUSED by gateway: envelope: expired or not yet valid: expired$`)},
	}},
	{cmd: "go run ./examples/inspect --keys keys/gateway --at-issue captured.env", outcomes: prints(inspectHeader + `(.|\n)*^verdict +ACCEPTED by gateway: from door-7, hmac\+sig \(as of its issue time; freshness not checked\)\npayload +5 bytes: hello$`)},

	// Operating a gateway: its metrics and health over HTTP.
	{cmd: "go run ./examples/gateway --keys keys/gateway --metrics 127.0.0.1:9464 &", ready: readiness{output: regexp.MustCompile(gatewayKeysListening)}, outcomes: prints(`(?m)^metrics on http://127\.0\.0\.1:9464/metrics, health on /healthz and /readyz\n(.|\n)*` + servedOne), uses: []service{mosquitto}},
	{cmd: "curl -s 127.0.0.1:9464/readyz", outcomes: prints(`\Aready\n\z`)},
	{cmd: "curl -s 127.0.0.1:9464/metrics | grep '^mqttsec_messages_total'", outcomes: prints(`\Amqttsec_messages_total\{mqttsec_id="gateway",mqttsec_outcome="accepted",mqttsec_peer="door-7",[^}\n]*\} 1\n\z`)},

	// Development. The runner starts a Redis and a SOCKS5 proxy on their
	// default ports for the first command that uses them.
	{cmd: "MQTTSEC_TEST_MOSQUITTO=127.0.0.1:1883 MQTTSEC_TEST_REDIS=127.0.0.1:6379 MQTTSEC_TEST_SOCKS=127.0.0.1:1080 go test ./...", outcomes: prints(sdkTestsPassed), uses: []service{mosquitto, redis, socks}, timeout: testTimeout},
	{cmd: "go test ./envelope -run XXX -bench Envelope -benchtime 100ms", outcomes: prints(`(?m)^BenchmarkEnvelope/hmac/\S+\s+\d+\s+[\d.]+ ns/op(.|\n)*^ok\s+github\.com/mqttsec/mqttsec/envelope\s`), timeout: testTimeout},
	{cmd: "go test ./mqttsec -run XXX -bench RoundTrip -benchtime 100ms", outcomes: prints(`(?m)^BenchmarkRoundTrip/v5/\S+\s+\d+\s+[\d.]+ ns/op(.|\n)*^ok\s+github\.com/mqttsec/mqttsec/mqttsec\s`), timeout: testTimeout},
	{cmd: "go run ./examples/bench --duration 300ms", outcomes: prints(`(?m)\Amqttsec bench: go\S+, \S+, \d+ CPUs, 300ms per row\n(.|\n)*^envelope/hmac/256/seal +\d+(.|\n)*^roundtrip/v5/plain +\d+(.|\n)*^replay/file +\d+`), timeout: testTimeout},
	{cmd: "go test ./envelope -run XXX -fuzz FuzzOpen -fuzztime 200000x", outcomes: prints(`(?m)^fuzz: elapsed: \S+, execs: 200000 (.|\n)*^ok\s+github\.com/mqttsec/mqttsec/envelope\s`), timeout: testTimeout},
}

// lookup returns the expectation for a command, or nil.
func lookup(cmd string) *expectation {
	k := key(cmd)
	for i := range expectations {
		if key(expectations[i].cmd) == k {
			return &expectations[i]
		}
	}
	return nil
}

// limit is how long e's command may run.
func (e *expectation) limit() time.Duration {
	if e.timeout > 0 {
		return e.timeout
	}
	return defaultTimeout
}
