package interop

import (
	"bufio"
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/rand"
	"crypto/x509"
	"encoding/binary"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	mqtt "github.com/eclipse/paho.mqtt.golang"

	"github.com/mqttsec/mqttsec/envelope"
	"github.com/mqttsec/mqttsec/mqttsec/keydir"
)

// The switches of the tests (see the package documentation).
const (
	mosquittoEnv = "MQTTSEC_TEST_MOSQUITTO"
	doorEnv      = "MQTTSEC_TEST_C_DOOR"
)

// wait bounds every wait of the tests: for a process to print a line, a
// command to finish, the broker to acknowledge.
const wait = 20 * time.Second

// suite is one set of protections, paired on both sides.
type suite struct {
	name string
	prot string   // what protects each message: hmac, hmac+hotp, psk or es256
	pair []string // the flags of keygen pair
	// tamperClass is how the door refuses the captured request with a
	// byte flipped: the counter was seen, and an HMAC (step 8) is
	// checked before the replay window (step 9), a signature or a
	// decryption after it (SPEC.md section 9).
	tamperClass string
	// forgedClass is how it refuses a fresh request altered in transit.
	forgedClass string
	// clockless runs the door with --clockless: it learns the time from
	// the gateway (SPEC.md section 10), whose peer.conf for it says
	// clockless.
	clockless bool
}

var suites = []suite{
	{name: "hmac", prot: "hmac", pair: []string{"--hmac", "--send", "hmac"},
		tamperClass: "authentication", forgedClass: "authentication"},
	{name: "hmac+hotp", prot: "hmac+hotp", pair: []string{"--hmac", "--hotp", "--send", "hmac hotp"},
		tamperClass: "authentication", forgedClass: "authentication"},
	{name: "psk", prot: "psk", pair: []string{"--psk", "--send", "enc"},
		tamperClass: "replayed", forgedClass: "decryption"},
	{name: "es256", prot: "es256", pair: []string{"--send", "sig", "--sign", "es256"},
		tamperClass: "replayed", forgedClass: "authentication"},
	{name: "es256-clockless", prot: "es256", pair: []string{"--send", "sig", "--sign", "es256"},
		tamperClass: "replayed", forgedClass: "authentication", clockless: true},
}

// commands are the binaries the tests run.
type commands struct {
	keygen, client, gateway, door string
}

// TestDoorInterop runs every suite between the C door and the Go side.
func TestDoorInterop(t *testing.T) {
	broker, door := os.Getenv(mosquittoEnv), os.Getenv(doorEnv)
	if broker == "" || door == "" {
		t.Skipf("the C interop tests need %s=host:port (a running Mosquitto) and %s=path of the door binary (make -C envelope/c door builds envelope/c/build/door)",
			mosquittoEnv, doorEnv)
	}
	if st, err := os.Stat(door); err != nil || st.IsDir() || st.Mode()&0o111 == 0 {
		t.Fatalf("%s=%s: not an executable file (%v); build it with make -C envelope/c door", doorEnv, door, err)
	}
	bin := build(t)
	bin.door = door
	for _, s := range suites {
		t.Run(s.name, func(t *testing.T) { runSuite(t, bin, "tcp://"+broker, s) })
	}
}

// build compiles the Go commands a user runs into a temporary directory.
func build(t *testing.T) commands {
	t.Helper()
	goCmd, err := exec.LookPath("go")
	if err != nil {
		t.Fatalf("go is not on PATH: %v", err)
	}
	dir := t.TempDir()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, goCmd, "build", "-o", dir+string(filepath.Separator),
		"github.com/mqttsec/mqttsec/examples/keygen",
		"github.com/mqttsec/mqttsec/examples/client",
		"github.com/mqttsec/mqttsec/examples/gateway")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return commands{
		keygen:  filepath.Join(dir, "keygen"),
		client:  filepath.Join(dir, "client"),
		gateway: filepath.Join(dir, "gateway"),
	}
}

// setup is a suite's parties: their ids, unique to the run, since other
// tests may use the same broker at the same time, and their key and
// state directories.
type setup struct {
	gw, cl, door          string // the ids of the gateway, the client, the door
	gwDir, clDir, doorDir string // their key directories
	state, execLog        string // the door's state directory and --exec-log
	clockless             bool   // the door runs with --clockless
}

// doorArgs are the door's arguments: its keys, state and gateway,
// --clockless if the suite says so, and more.
func (u *setup) doorArgs(more ...string) []string {
	args := []string{"--keys", u.doorDir, "--state", u.state, "--gateway", u.gw}
	if u.clockless {
		args = append(args, "--clockless")
	}
	return append(args, more...)
}

// runSuite runs every check of one suite with fresh keys.
func runSuite(t *testing.T, bin commands, broker string, s suite) {
	u := makeKeys(t, bin, s)
	startGateway(t, bin, u, broker)

	// device -> gateway: the door's request gets the gateway's reply,
	// and an error reply is told apart.
	out, errOut, code := runCmd(t, bin.door, u.doorArgs("--init", "--broker", broker, "--call", "echo:hello")...)
	if code != 0 || out != "hello\n" {
		t.Fatalf("door --call echo:hello: exit %d, stdout %q; want 0 and \"hello\"\nstderr:\n%s", code, out, errOut)
	}
	if s.clockless && !strings.Contains(errOut, "door: learned the time from "+u.gw+": ") {
		t.Fatalf("door --clockless --call echo:hello did not say it learned the time:\n%s", errOut)
	}
	_, errOut, code = runCmd(t, bin.door, u.doorArgs("--broker", broker, "--call", "no-such-method")...)
	if code != 6 || !strings.Contains(errOut, `"code":"not-found"`) {
		t.Fatalf("door --call no-such-method: exit %d; want 6 and a not-found error reply\nstderr:\n%s", code, errOut)
	}

	// client -> device, watched by an attacker on the broker. Every
	// refusal is logged, so that each attack below shows.
	dp := startDoor(t, bin, u, broker, "--reject-log-interval", "0")
	spy := newAttacker(t, broker, u)
	out, errOut, code = runCmd(t, bin.client, "--keys", u.clDir, "--server", u.door, "--broker", broker,
		"--timeout", "10s", "open-door", "front")
	if code != 0 || !strings.Contains(out, `"state":"opened"`) {
		t.Fatalf("client open-door: exit %d, stdout %q\nstderr:\n%s", code, out, errOut)
	}
	dp.waitLine(t, "stdout", regexp.MustCompile(`^door: opened for `+regexp.QuoteMeta(u.cl)+` \(ctr \d+\)$`), 0)
	execLines(t, u, 1)
	captured := spy.request(t)

	// The attacks: each refused with the class named, none executed.
	from := dp.lineCount()
	for _, attack := range []struct {
		what  string
		env   []byte
		class string
	}{
		{"replayed", captured, "replayed"},
		{"tampered", flipPayloadByte(t, captured), s.tamperClass},
		{"forged", forge(t, u, s), s.forgedClass},
	} {
		spy.publish(t, attack.env)
		i := dp.waitLine(t, "stderr", refusedAs(u, attack.class), from)
		t.Logf("%s request: %s", attack.what, dp.line(i))
		from = i + 1
	}
	execLines(t, u, 1)

	// An authentic request whose reply would go to another party's topic
	// is not executed; its error reply goes to the caller's own topic.
	spy.publish(t, sealAsClient(t, u, s, "mqttsec/"+u.door+"/reply"))
	dp.waitLine(t, "stderr", regexp.MustCompile(`reply-to refused: caller `+regexp.QuoteMeta(u.cl)+`, method open-door$`), from)
	execLines(t, u, 1)

	// No refused message was answered: the replies on the client's reply
	// topic are those of its two genuine requests and the bad-reply-to
	// error.
	out, errOut, code = runCmd(t, bin.client, "--keys", u.clDir, "--server", u.door, "--broker", broker,
		"--timeout", "10s", "status")
	if code != 0 || !strings.Contains(out, `"opened":1`) {
		t.Fatalf("client status: exit %d, stdout %q\nstderr:\n%s", code, out, errOut)
	}
	if got := spy.repliesUntil(t, "status"); strings.Join(got, ",") != "rep open-door,err open-door,rep status" {
		t.Fatalf("replies on the client's reply topic: %q; want the reply to open-door, the bad-reply-to error, the reply to status", got)
	}

	// After a restart the door has no replay window (it lives in RAM):
	// the captured request is refused as issued before the loss.
	dp.stop(t)
	dp = startDoor(t, bin, u, broker)
	from = dp.lineCount()
	spy.publish(t, captured)
	i := dp.waitLine(t, "stderr", regexp.MustCompile(`: replayed \(rule replay-loss\)`), from)
	t.Logf("replayed after a restart: %s", dp.line(i))
	execLines(t, u, 1)

	// With the default --reject-log-interval (10 s), a flood of junk
	// makes one log line: the door opens messages in order, so once the
	// client's next request is answered, all the junk sent before it was
	// refused.
	from = i + 1
	for range 5 {
		spy.publish(t, []byte("junk"))
	}
	if out, errOut, code := runCmd(t, bin.client, "--keys", u.clDir, "--server", u.door, "--broker", broker,
		"--timeout", "10s", "status"); code != 0 {
		t.Fatalf("client status: exit %d, stdout %q\nstderr:\n%s", code, out, errOut)
	}
	if n := dp.countLines("stderr", refusedAs(u, "malformed"), from); n != 1 {
		t.Fatalf("five malformed messages made %d log lines, want 1 (its output follows)", n)
	}
}

// refusedAs matches the door's log line for an open-door request refused
// with class.
func refusedAs(u *setup, class string) *regexp.Regexp {
	return regexp.MustCompile(`refused a message on mqttsec/` + regexp.QuoteMeta(u.door) + `/req/open-door: ` + regexp.QuoteMeta(class) + ` `)
}

// makeKeys makes key directories for a gateway, a client and a door with
// keygen, pairs the door with both as the suite says, and exports each
// side's public keys to the other.
func makeKeys(t *testing.T, bin commands, s suite) *setup {
	t.Helper()
	root := t.TempDir()
	run := rand.Text()[:8]
	u := &setup{gw: "gateway-" + run, cl: "client-" + run, door: "door-7-" + run, clockless: s.clockless}
	u.gwDir, u.clDir, u.doorDir = filepath.Join(root, u.gw), filepath.Join(root, u.cl), filepath.Join(root, u.door)
	u.state, u.execLog = filepath.Join(root, "state", u.door), filepath.Join(root, "opened.log")
	steps := [][]string{
		{"init", "--dir", u.gwDir, "--id", u.gw},
		{"init", "--dir", u.clDir, "--id", u.cl},
		{"init", "--dir", u.doorDir, "--id", u.door},
		append([]string{"pair", "--dir", u.gwDir, "--peer-dir", u.doorDir}, s.pair...),
		append([]string{"pair", "--dir", u.clDir, "--peer-dir", u.doorDir}, s.pair...),
		{"export", "--dir", u.gwDir, "--to", filepath.Join(u.doorDir, "peers", u.gw)},
		{"export", "--dir", u.doorDir, "--to", filepath.Join(u.gwDir, "peers", u.door)},
		{"export", "--dir", u.clDir, "--to", filepath.Join(u.doorDir, "peers", u.cl)},
		{"export", "--dir", u.doorDir, "--to", filepath.Join(u.clDir, "peers", u.door)},
	}
	for _, args := range steps {
		if _, errOut, code := runCmd(t, bin.keygen, args...); code != 0 {
			t.Fatalf("keygen %q: exit %d\n%s", args, code, errOut)
		}
	}
	if s.clockless {
		// The gateway answers the door's time requests.
		appendLine(t, filepath.Join(u.gwDir, "peers", u.door, "peer.conf"), "clockless")
	}
	return u
}

// appendLine appends a line to a file.
func appendLine(t *testing.T, path, line string) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		t.Fatal(err)
	}
	_, err = f.WriteString(line + "\n")
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		t.Fatal(err)
	}
}

// startGateway runs examples/gateway on the gateway's key directory until
// the test ends, and waits until it listens.
func startGateway(t *testing.T, bin commands, u *setup, broker string) {
	t.Helper()
	p := start(t, "gateway", bin.gateway, "--keys", u.gwDir, "--broker", broker)
	p.waitLine(t, "stdout", regexp.MustCompile(`^gateway `+regexp.QuoteMeta(u.gw)+` listening on `), 0)
}

// startDoor runs the door as a server until the test ends (or stop), and
// waits until it accepts requests: it refuses every request issued
// before its start plus its skew, 1 s here. more are further flags.
func startDoor(t *testing.T, bin commands, u *setup, broker string, more ...string) *proc {
	t.Helper()
	args := append([]string{"--broker", broker, "--skew", "1s", "--exec-log", u.execLog}, more...)
	p := start(t, "door", bin.door, u.doorArgs(args...)...)
	p.waitLine(t, "stdout", regexp.MustCompile(`^door `+regexp.QuoteMeta(u.door)+` ready: `), 0)
	if u.clockless {
		p.waitLine(t, "stderr", regexp.MustCompile(`^door: learned the time from `+regexp.QuoteMeta(u.gw)+`: `), 0)
	}
	return p
}

// execLines checks that the door's execution log has n lines.
func execLines(t *testing.T, u *setup, n int) {
	t.Helper()
	data, err := os.ReadFile(u.execLog)
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.Count(string(data), "\n"); got != n {
		t.Fatalf("%s has %d lines, want %d:\n%s", u.execLog, got, n, data)
	}
}

// flipPayloadByte returns a copy of the envelope env with one byte of its
// payload P (SPEC.md section 2) flipped.
func flipPayloadByte(t *testing.T, env []byte) []byte {
	t.Helper()
	out := bytes.Clone(env)
	if len(out) < 9 {
		t.Fatalf("envelope of %d bytes", len(out))
	}
	lenH := int(binary.BigEndian.Uint32(out[1:5]))
	at := 5 + lenH
	if at+4 > len(out) {
		t.Fatalf("envelope cut in its header")
	}
	lenP := int(binary.BigEndian.Uint32(out[at : at+4]))
	if lenP == 0 || at+4+lenP > len(out) {
		t.Fatalf("envelope with a payload of %d bytes", lenP)
	}
	out[at+4+lenP/2] ^= 0x01
	return out
}

// forge seals a fresh open-door request with the client's keys and flips
// one byte of its payload: a request altered in transit, whose counter
// the door has never seen.
func forge(t *testing.T, u *setup, s suite) []byte {
	t.Helper()
	return flipPayloadByte(t, sealAsClient(t, u, s, "mqttsec/"+u.cl+"/reply"))
}

// sealAsClient seals an open-door request from the client to the door, as
// the suite protects it, asking for the reply on replyTo.
func sealAsClient(t *testing.T, u *setup, s suite, replyTo string) []byte {
	t.Helper()
	party, err := keydir.Load(u.clDir)
	if err != nil {
		t.Fatal(err)
	}
	peer := party.Keyring.Peer(u.door)
	p := &envelope.Params{Kind: envelope.Request, To: []string{u.door}, Topic: "open-door",
		ReplyTo: replyTo, TTL: 10 * time.Second}
	switch s.prot {
	case "hmac":
		p.HMAC = peer.HMACKeys[0]
	case "hmac+hotp":
		p.HMAC, p.HOTP = peer.HMACKeys[0], peer.HOTPKeys[0]
	case "psk":
		p.PSK = peer.AEADKeys[0]
	case "es256":
		p.Signer = es256Signer(t, filepath.Join(u.clDir, "self", "es256.key"))
	default:
		t.Fatalf("no keys for protection %s", s.prot)
	}
	sealer := &envelope.Sealer{ID: u.cl, Counter: envelope.NewClockCounter()}
	sealed, err := sealer.Seal(p, []byte("front"))
	if err != nil {
		t.Fatal(err)
	}
	return sealed.Bytes
}

// es256Signer reads a PEM PKCS #8 ECDSA P-256 key.
func es256Signer(t *testing.T, path string) envelope.Signer {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := pem.Decode(data)
	if b == nil {
		t.Fatalf("%s: no PEM block", path)
	}
	k, err := x509.ParsePKCS8PrivateKey(b.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	ek, ok := k.(*ecdsa.PrivateKey)
	if !ok {
		t.Fatalf("%s: not an ECDSA key", path)
	}
	s, err := envelope.NewECDSASigner(ek)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// runCmd runs a command to its end (at most wait) and returns its
// stdout, stderr and exit status.
func runCmd(t *testing.T, name string, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	var out, errOut bytes.Buffer
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Stdout, cmd.Stderr = &out, &errOut
	err := cmd.Run()
	var exit *exec.ExitError
	switch {
	case ctx.Err() != nil:
		t.Fatalf("%s %q did not finish within %v\nstdout:\n%s\nstderr:\n%s", filepath.Base(name), args, wait, out.String(), errOut.String())
	case errors.As(err, &exit):
		code = exit.ExitCode()
	case err != nil:
		t.Fatalf("%s %q: %v", filepath.Base(name), args, err)
	}
	return out.String(), errOut.String(), code
}

// proc is a process running beside the test, whose output lines are kept
// as they come so that the test can wait for one.
type proc struct {
	name string
	cmd  *exec.Cmd
	done chan struct{} // closed when the process has exited
	mu   sync.Mutex
	out  []outLine
	more chan struct{} // closed (and replaced) at each new line
}

// outLine is a line the process wrote on stream ("stdout" or "stderr").
type outLine struct{ stream, text string }

// start starts a process that the test stops when it ends (SIGTERM, then
// SIGKILL if it is not gone within wait). Its output is shown if the test
// failed.
func start(t *testing.T, name, path string, args ...string) *proc {
	t.Helper()
	p := &proc{name: name, cmd: exec.Command(path, args...), done: make(chan struct{}), more: make(chan struct{})}
	stdout, err := p.cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	stderr, err := p.cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := p.cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", name, err)
	}
	var readers sync.WaitGroup
	for stream, r := range map[string]io.Reader{"stdout": stdout, "stderr": stderr} {
		readers.Go(func() { p.read(stream, r) })
	}
	go func() {
		readers.Wait()
		p.cmd.Wait()
		close(p.done)
	}()
	t.Cleanup(func() {
		p.stop(t)
		if t.Failed() {
			t.Logf("output of %s:\n%s", name, p.dump())
		}
	})
	return p
}

// read keeps the lines of one stream.
func (p *proc) read(stream string, r io.Reader) {
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		p.mu.Lock()
		p.out = append(p.out, outLine{stream, sc.Text()})
		close(p.more)
		p.more = make(chan struct{})
		p.mu.Unlock()
	}
}

// lineCount is how many lines the process wrote so far.
func (p *proc) lineCount() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.out)
}

// waitLine waits (at most wait) for a line on stream matching re, at
// index from or later, and returns its index.
func (p *proc) waitLine(t *testing.T, stream string, re *regexp.Regexp, from int) int {
	t.Helper()
	timer := time.NewTimer(wait)
	defer timer.Stop()
	for exited := false; ; {
		p.mu.Lock()
		for i := from; i < len(p.out); i++ {
			if l := p.out[i]; l.stream == stream && re.MatchString(l.text) {
				p.mu.Unlock()
				return i
			}
		}
		more := p.more
		p.mu.Unlock()
		if exited {
			// Every line was read before done was closed.
			t.Fatalf("%s exited (%v) without a line on %s matching %q (its output follows)", p.name, p.cmd.ProcessState, stream, re)
		}
		select {
		case <-more:
		case <-p.done:
			exited = true
		case <-timer.C:
			t.Fatalf("no line on %s of %s matching %q within %v (its output follows)", stream, p.name, re, wait)
		}
	}
}

// countLines is how many lines on stream from index from on match re.
func (p *proc) countLines(stream string, re *regexp.Regexp, from int) int {
	p.mu.Lock()
	defer p.mu.Unlock()
	n := 0
	for _, l := range p.out[from:] {
		if l.stream == stream && re.MatchString(l.text) {
			n++
		}
	}
	return n
}

// line is the text of line i.
func (p *proc) line(i int) string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.out[i].text
}

// dump is the process's output so far.
func (p *proc) dump() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	var b strings.Builder
	for _, l := range p.out {
		fmt.Fprintf(&b, "  %s: %s\n", l.stream, l.text)
	}
	return b.String()
}

// stop ends the process: SIGTERM, and SIGKILL if it has not exited within
// wait. Stopping a process that has exited does nothing.
func (p *proc) stop(t *testing.T) {
	t.Helper()
	select {
	case <-p.done:
		return
	default:
	}
	p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(wait):
		p.cmd.Process.Kill()
		<-p.done
		t.Errorf("%s did not stop within %v of SIGTERM", p.name, wait)
	}
}

// attacker is an MQTT client on the broker that watches the door's
// requests and the client's replies, and republishes what it likes.
type attacker struct {
	u        *setup
	c        mqtt.Client
	requests chan []byte
	mu       sync.Mutex
	replies  []string // "rep METHOD" or "err METHOD" for each reply, from its header
	more     chan struct{}
}

// newAttacker connects and subscribes to the door's requests and the
// client's replies.
func newAttacker(t *testing.T, broker string, u *setup) *attacker {
	t.Helper()
	a := &attacker{u: u, requests: make(chan []byte, 16), more: make(chan struct{})}
	o := mqtt.NewClientOptions().AddBroker(broker).SetClientID(fmt.Sprintf("attacker-%d", time.Now().UnixNano())).
		SetCleanSession(true).SetAutoReconnect(false).SetConnectTimeout(wait)
	a.c = mqtt.NewClient(o)
	await(t, "connect", a.c.Connect())
	t.Cleanup(func() { a.c.Disconnect(250) })
	await(t, "subscribe", a.c.Subscribe("mqttsec/"+u.door+"/req/#", 1, func(_ mqtt.Client, m mqtt.Message) {
		select {
		case a.requests <- bytes.Clone(m.Payload()):
		default:
		}
	}))
	await(t, "subscribe", a.c.Subscribe("mqttsec/"+u.cl+"/reply", 1, func(_ mqtt.Client, m mqtt.Message) {
		reply := "?"
		if h, err := envelope.Peek(m.Payload(), 0); err == nil {
			reply = map[envelope.Kind]string{envelope.Reply: "rep", envelope.ErrorReply: "err"}[h.Kind] + " " + h.Topic
		}
		a.mu.Lock()
		a.replies = append(a.replies, reply)
		close(a.more)
		a.more = make(chan struct{})
		a.mu.Unlock()
	}))
	return a
}

// await waits for tok (at most wait) and fails the test on its error.
func await(t *testing.T, what string, tok mqtt.Token) {
	t.Helper()
	if !tok.WaitTimeout(wait) {
		t.Fatalf("attacker: %s not done within %v", what, wait)
	}
	if err := tok.Error(); err != nil {
		t.Fatalf("attacker: %s: %v", what, err)
	}
}

// request returns the first request the attacker saw, which must be the
// client's open-door.
func (a *attacker) request(t *testing.T) []byte {
	t.Helper()
	select {
	case env := <-a.requests:
		h, err := envelope.Peek(env, 0)
		if err != nil || h.From != a.u.cl || h.Topic != "open-door" {
			t.Fatalf("captured request: %+v, %v; want the client's open-door", h, err)
		}
		return env
	case <-time.After(wait):
		t.Fatalf("the attacker saw no request within %v", wait)
	}
	return nil
}

// publish sends env as a request to the door's open-door topic.
func (a *attacker) publish(t *testing.T, env []byte) {
	t.Helper()
	await(t, "publish", a.c.Publish("mqttsec/"+a.u.door+"/req/open-door", 1, false, env))
}

// repliesUntil waits (at most wait) for a reply to method and returns the
// replies seen up to then.
func (a *attacker) repliesUntil(t *testing.T, method string) []string {
	t.Helper()
	timer := time.NewTimer(wait)
	defer timer.Stop()
	for {
		a.mu.Lock()
		for i, r := range a.replies {
			if r == "rep "+method {
				got := append([]string(nil), a.replies[:i+1]...)
				a.mu.Unlock()
				return got
			}
		}
		more := a.more
		a.mu.Unlock()
		select {
		case <-more:
		case <-timer.C:
			t.Fatalf("the attacker saw no reply to %s within %v", method, wait)
		}
	}
}
