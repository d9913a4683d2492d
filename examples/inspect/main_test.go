package main

import (
	"bytes"
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/mqttsec/mqttsec/envelope"
	"github.com/mqttsec/mqttsec/internal/keyfile"
	"github.com/mqttsec/mqttsec/mqttsec/keydir"
	"github.com/mqttsec/mqttsec/mqttsec/replay"
)

// parties makes a gateway and a client key directory that share HMAC and
// PSK keys, and returns them with the client's keys for sealing.
func parties(t *testing.T) (gw, cl string, hmacKey *envelope.HMACKey, psk *envelope.AEADKey) {
	t.Helper()
	root := t.TempDir()
	gw, cl = filepath.Join(root, "gateway"), filepath.Join(root, "client")
	for _, p := range []struct{ dir, id string }{{gw, "gateway"}, {cl, "client"}} {
		if err := keydir.Init(p.dir, p.id, keydir.InitOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	if err := keydir.Pair(gw, cl, keydir.PairOptions{HMAC: true, PSK: true, Send: "hmac"}); err != nil {
		t.Fatal(err)
	}
	secret := func(name string) []byte {
		data, err := os.ReadFile(filepath.Join(cl, "peers", "gateway", name))
		if err != nil {
			t.Fatal(err)
		}
		b, err := base64.RawURLEncoding.DecodeString(strings.TrimSpace(string(data)))
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	hmacKey, err := envelope.NewHMACKey(secret("hmac.key"))
	if err != nil {
		t.Fatal(err)
	}
	psk, err = envelope.NewAEADKey(secret("psk.key"))
	if err != nil {
		t.Fatal(err)
	}
	return gw, cl, hmacKey, psk
}

func TestInspect(t *testing.T) {
	gw, cl, hmacKey, psk := parties(t)
	now := time.Now()
	seal := func(p *envelope.Params, payload string, at time.Time) []byte {
		t.Helper()
		s := &envelope.Sealer{ID: "client", Counter: envelope.NewClockCounter(), Now: func() time.Time { return at }}
		sealed, err := s.Seal(p, []byte(payload))
		if err != nil {
			t.Fatal(err)
		}
		return sealed.Bytes
	}
	request := func(enc bool) *envelope.Params {
		p := &envelope.Params{Kind: envelope.Request, To: []string{"gateway"}, Topic: "get-card", ReplyTo: "mqttsec/client/reply", HMAC: hmacKey}
		if enc {
			p.PSK = psk
		}
		return p
	}
	plain := seal(request(false), "card 42", now)
	secret := seal(request(true), "the vault code", now)
	old := seal(request(false), "card 42", now.Add(-2*time.Hour))
	escape := seal(request(false), "\x1b[2Jgone", now)
	armor := func(b []byte) []byte { return []byte(base64.RawURLEncoding.EncodeToString(b)) }
	// One byte in the middle of the HMAC tag (the member before the empty
	// signature's 4-byte length) changed: well formed, not authentic.
	tampered := bytes.Clone(plain)
	tampered[len(tampered)-4-10] ^= 0x01
	// The first byte of a later envelope format.
	later := bytes.Clone(plain)
	later[0] = 0x02
	// An envelope may end with a line feed: its signature's last byte
	// (Ed25519 signatures differ by message; the counter moves). The
	// client signs with its own key, which the gateway learns.
	if err := keydir.Export(cl, filepath.Join(gw, "peers", "client"), false); err != nil {
		t.Fatal(err)
	}
	edKey, err := keyfile.ReadEd25519Private(filepath.Join(cl, "self", "ed25519.key"))
	if err != nil {
		t.Fatal(err)
	}
	signer, err := envelope.NewEd25519Signer(edKey)
	if err != nil {
		t.Fatal(err)
	}
	var endsInLF []byte
	for i := 0; endsInLF == nil || endsInLF[len(endsInLF)-1] != '\n'; i++ {
		if i == 1<<16 {
			t.Fatal("no signature ending in 0x0A in 65536 tries")
		}
		p := request(false)
		p.Signer = signer
		endsInLF = seal(p, "card 42", now)
	}
	h, err := envelope.Peek(plain, 0)
	if err != nil {
		t.Fatal(err)
	}

	// A reply of the gateway to the plain request.
	party, err := keydir.Load(gw)
	if err != nil {
		t.Fatal(err)
	}
	store, err := replay.NewMemoryStore(0)
	if err != nil {
		t.Fatal(err)
	}
	req, err := (&envelope.Opener{ID: "gateway", Keys: party.Keyring, Replay: store}).Open(context.Background(), plain, &envelope.Expect{Kinds: envelope.Request})
	if err != nil {
		t.Fatal(err)
	}
	gwHMAC := party.Keyring.Peer("client").HMACKeys[0]
	reply, err := (&envelope.Sealer{ID: "gateway", Counter: envelope.NewClockCounter()}).Seal(&envelope.Params{Kind: envelope.Reply, InReplyTo: req, HMAC: gwHMAC}, []byte("ok"))
	if err != nil {
		t.Fatal(err)
	}

	size := func(b []byte) string { return fmt.Sprintf("envelope    %d bytes\n", len(b)) }
	armored := func(b []byte) string { return fmt.Sprintf("envelope    %d bytes, read from base64url armor\n", len(b)) }
	tests := []struct {
		name    string
		args    []string
		input   []byte
		refused bool     // the command reports a refusal (exit status 1)
		want    []string // in the output
		not     []string // not in the output
	}{
		{"header only", nil, plain, false,
			[]string{size(plain), "kind        request", "from        client", "to          gateway", "topic       get-card", "reply-to    mqttsec/client/reply",
				"correlation " + base64.RawURLEncoding.EncodeToString(h.CorrelationID), fmt.Sprintf("counter     %d", h.Counter), "issued      ", "expires     ",
				"protection  hmac", "key         HS256 " + hmacKey.KeyID().String(), "UNVERIFIED: no --keys", "payload     (not opened)"},
			[]string{"card 42", "in-reply-to"}},
		{"trailing newline", nil, append(bytes.Clone(plain), '\n'), false, []string{size(plain), "UNVERIFIED"}, nil},
		{"cut short", nil, plain[:len(plain)-1], true, []string{"not an envelope", "malformed"}, nil},
		{"later format", nil, later, true, []string{"not an envelope", "unsupported version"}, nil},
		{"ending in a line feed", nil, endsInLF, false, []string{size(endsInLF), "protection  hmac+sig", "key         Ed25519 "}, nil},
		{"ending in a line feed, trailing newline", nil, append(bytes.Clone(endsInLF), '\n'), false, []string{size(endsInLF), "protection  hmac+sig"}, nil},
		{"ending in a line feed, opened", []string{"--keys", gw}, append(bytes.Clone(endsInLF), '\n'), false, []string{size(endsInLF), "ACCEPTED by gateway: from client, hmac+sig", "card 42"}, nil},
		{"armored", nil, armor(plain), false, []string{armored(plain), "from        client", "UNVERIFIED: no --keys"}, nil},
		{"armored, opened", []string{"--keys", gw}, append(armor(plain), '\n'), false, []string{armored(plain), "ACCEPTED by gateway: from client, hmac", "payload     7 bytes: card 42"}, nil},
		{"armored, CRLF", []string{"--keys", gw}, append(armor(plain), "\r\n"...), false, []string{armored(plain), "ACCEPTED"}, nil},
		{"armored, cut short", nil, armor(plain)[:len(armor(plain))-3], true, []string{"not an envelope", "malformed"}, nil},
		{"armored, tampered", []string{"--keys", gw}, armor(tampered), true, []string{armored(tampered), "REFUSED by gateway", "authentication"}, []string{"ACCEPTED", "card 42"}},
		{"opened", []string{"--keys", gw}, plain, false, []string{"ACCEPTED by gateway: from client, hmac", "payload     7 bytes: card 42"}, []string{"UNVERIFIED"}},
		{"encrypted, not opened", nil, secret, false, []string{"protection  enc+hmac", "key         A256GCM ", "payload     (not opened)"}, []string{"vault"}},
		{"encrypted, opened", []string{"--keys", gw}, secret, false, []string{"ACCEPTED by gateway: from client, enc+hmac", "the vault code"}, nil},
		{"tampered", []string{"--keys", gw}, tampered, true, []string{"REFUSED by gateway", "authentication"}, []string{"ACCEPTED", "card 42"}},
		{"expired", []string{"--keys", gw}, old, true, []string{"REFUSED by gateway", "expired", " ago)"}, []string{"ACCEPTED"}},
		{"expired, at issue time", []string{"--keys", gw, "--at-issue"}, old, false, []string{"ACCEPTED by gateway", "freshness not checked", "card 42"}, nil},
		{"another party's keys", []string{"--keys", cl}, plain, true, []string{"REFUSED by client"}, []string{"ACCEPTED"}},
		{"reply", []string{"--keys", gw}, reply.Bytes, false, []string{"kind        reply", "in-reply-to " + base64.RawURLEncoding.EncodeToString(req.Digest[:]), "a reply opens only against the request it answers", "payload     (not opened)"}, []string{"ACCEPTED"}},
		{"control characters", []string{"--keys", gw}, escape, false, []string{"ACCEPTED", "base64url: "}, []string{"\x1b"}},
		{"junk", nil, []byte("hello"), true, []string{"not an envelope", "malformed"}, nil},
		{"junk bytes", nil, []byte{0xff, 0x01, 0x02}, true, []string{"not an envelope", "malformed"}, nil},
		{"empty", nil, nil, true, []string{"not an envelope", "malformed"}, nil},
		{"too large", []string{"--max-size", "100"}, plain, true, []string{"not an envelope", "too large"}, nil},
		{"too large, armored", []string{"--max-size", "100"}, armor(plain), true, []string{"not an envelope", "too large"}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var out, errOut bytes.Buffer
			err := run(tt.args, bytes.NewReader(tt.input), &out, &errOut, func() time.Time { return now })
			if tt.refused != errors.Is(err, errRefused) || (!tt.refused && err != nil) {
				t.Fatalf("run = %v, want refused %v\n%s%s", err, tt.refused, out.String(), errOut.String())
			}
			for _, w := range tt.want {
				if !strings.Contains(out.String(), w) {
					t.Errorf("output lacks %q:\n%s", w, out.String())
				}
			}
			for _, n := range tt.not {
				if strings.Contains(out.String(), n) {
					t.Errorf("output has %q:\n%s", n, out.String())
				}
			}
		})
	}
}

// An envelope opened here still opens at its receiver: nothing is kept,
// and the file argument reads like standard input.
func TestInspectKeepsNoState(t *testing.T) {
	gw, _, hmacKey, _ := parties(t)
	s := &envelope.Sealer{ID: "client", Counter: envelope.NewClockCounter()}
	sealed, err := s.Seal(&envelope.Params{Kind: envelope.Event, Topic: "door/opened", HMAC: hmacKey, To: []string{"gateway"}}, []byte("door 7"))
	if err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(t.TempDir(), "captured.env")
	if err := os.WriteFile(file, sealed.Bytes, 0o600); err != nil {
		t.Fatal(err)
	}
	for range 2 {
		var out bytes.Buffer
		if err := run([]string{"--keys", gw, file}, strings.NewReader(""), &out, &out, time.Now); err != nil {
			t.Fatalf("run = %v\n%s", err, out.String())
		}
		if !strings.Contains(out.String(), "ACCEPTED by gateway: from client, hmac") || !strings.Contains(out.String(), "door 7") {
			t.Fatalf("event not opened:\n%s", out.String())
		}
	}
}

func TestInspectUsage(t *testing.T) {
	for _, args := range [][]string{
		{"--at-issue"},
		{"a.env", "b.env"},
		{"--max-size", "0"},
		{"--no-such-flag"},
	} {
		var out, errOut bytes.Buffer
		err := run(args, strings.NewReader(""), &out, &errOut, time.Now)
		if err == nil || errors.Is(err, errRefused) {
			t.Errorf("run(%q) = %v, want a usage error", args, err)
		}
	}
	var out bytes.Buffer
	if err := run([]string{filepath.Join(t.TempDir(), "missing.env")}, strings.NewReader(""), &out, &out, time.Now); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("missing file: %v", err)
	}
	// A key directory that does not load stops the command before it
	// prints anything.
	out.Reset()
	err := run([]string{"--keys", filepath.Join(t.TempDir(), "no-keys")}, strings.NewReader("{}"), &out, &out, time.Now)
	if !errors.Is(err, os.ErrNotExist) || out.Len() != 0 {
		t.Errorf("missing key directory: %v, printed %q", err, out.String())
	}
}

func TestInspectHelp(t *testing.T) {
	for _, args := range [][]string{{"-h"}, {"--help"}} {
		var out, errOut bytes.Buffer
		if err := run(args, strings.NewReader(""), &out, &errOut, time.Now); err != nil || !strings.HasPrefix(out.String(), "usage: inspect") || !strings.Contains(out.String(), "-keys") || errOut.Len() != 0 {
			t.Errorf("inspect %q = %v; stdout %q, stderr %q; want usage on stdout and no error", args, err, out.String(), errOut.String())
		}
	}
}
