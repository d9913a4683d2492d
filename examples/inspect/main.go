// Command inspect shows what an envelope says and, given the receiving
// party's key directory, whether that party would accept it.
//
//	mosquitto_sub -h broker -t 'mqttsec/gateway/req/#' -C 1 > captured.env
//	go run ./examples/inspect captured.env
//	go run ./examples/inspect --keys keys/gateway captured.env
//	go run ./examples/inspect --keys keys/gateway --at-issue captured.env
//	echo "$ARMORED_ENVELOPE_FROM_A_LOG" | go run ./examples/inspect --keys keys/gateway
//
// The envelope is read as its bytes, or as their text armor: the same
// bytes in unpadded base64url, as logs and text-only transports carry
// them (surrounding white space, such as a line end, is ignored).
//
// The header is shown as the sender — or the broker — wrote it
// (envelope.Peek): kind, sender, recipients, topic, reply-to, correlation
// id, counter, times, protections and the ids of the keys they name.
// Without --keys it is marked UNVERIFIED and the payload is not shown,
// since only opening the envelope tells it. With --keys (a directory made
// by examples/keygen), the envelope is opened as that party opens it:
// sender authentication, recipient, policy, freshness and decryption; the
// verdict and the opened payload are printed, and a refused envelope makes
// the command exit with status 1. --at-issue opens the envelope as of the
// time it claims to have been sent, to check the authenticity of a
// captured message after it expired; its freshness is then not checked.
//
// A reply opens only against the request it answers, which this command
// does not have: replies are always shown unverified. Nothing is recorded:
// a message opened here still opens at its receiver.
package main

import (
	"bytes"
	"context"
	"encoding/base64"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/mqttsec/mqttsec/envelope"
	"github.com/mqttsec/mqttsec/internal/b64url"
	"github.com/mqttsec/mqttsec/internal/cli"
	"github.com/mqttsec/mqttsec/mqttsec/keydir"
	"github.com/mqttsec/mqttsec/mqttsec/replay"
)

// errRefused is returned (after the report is printed) when the party
// whose keys were given would refuse the envelope.
var errRefused = errors.New("refused")

func main() {
	if err := run(os.Args[1:], os.Stdin, os.Stdout, os.Stderr, time.Now); err != nil {
		if !errors.Is(err, errRefused) {
			fmt.Fprintln(os.Stderr, "inspect:", err)
		}
		os.Exit(1)
	}
}

func run(args []string, stdin io.Reader, stdout, stderr io.Writer, now func() time.Time) error {
	fs := flag.NewFlagSet("inspect", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprintln(fs.Output(), "usage: inspect [--keys DIR [--at-issue]] [--max-size N] [FILE]  (no FILE: standard input)")
		fs.PrintDefaults()
	}
	keysDir := fs.String("keys", "", "the receiving party's key directory: open the envelope as it would")
	atIssue := fs.Bool("at-issue", false, "with --keys: open as of the envelope's issue time (freshness not checked)")
	maxSize := fs.Int("max-size", envelope.DefaultMaxSize, "largest envelope read, in bytes (before any base64url armor)")
	if help, err := cli.Parse(fs, args, stdout); help || err != nil {
		return err
	}
	if fs.NArg() > 1 || (*atIssue && *keysDir == "") || *maxSize <= 0 {
		fs.Usage()
		return errors.New("one FILE at most; --at-issue needs --keys; --max-size must be positive")
	}
	// The keys first: a directory that does not load stops the command
	// before it prints anything.
	var party *keydir.Party
	if *keysDir != "" {
		var err error
		if party, err = keydir.Load(*keysDir); err != nil {
			return err
		}
	}
	in := stdin
	if fs.NArg() == 1 {
		f, err := os.Open(fs.Arg(0))
		if err != nil {
			return err
		}
		defer f.Close()
		in = f
	}
	// Read up to the armor of the largest envelope, a line end and one
	// byte more, which tells a larger input.
	limit := base64.RawURLEncoding.EncodedLen(*maxSize) + 2
	data, err := io.ReadAll(io.LimitReader(in, int64(limit)+1))
	if err != nil {
		return err
	}
	if len(data) > limit {
		fmt.Fprintf(stdout, "not an envelope: %v\n", envelope.ErrTooLarge)
		return errRefused
	}
	h, data, armored, err := readCaptured(data, *maxSize)
	if err != nil {
		fmt.Fprintf(stdout, "not an envelope: %v\n", err)
		return errRefused
	}
	r := report{w: stdout, now: now()}
	r.header(len(data), armored, h)
	if party == nil {
		r.unopened("UNVERIFIED: no --keys given")
		return nil
	}
	if h.Kind == envelope.Reply || h.Kind == envelope.ErrorReply {
		r.unopened("UNVERIFIED: a reply opens only against the request it answers")
		return nil
	}
	store, err := replay.NewMemoryStore(replay.DefaultWindow)
	if err != nil {
		return err
	}
	o := &envelope.Opener{ID: party.ID, Keys: party.Keyring, Replay: store, MaxSize: *maxSize, Now: now}
	if *atIssue {
		o.Now = func() time.Time { return h.IssuedAt }
	}
	m, err := o.Open(context.Background(), data, &envelope.Expect{Kinds: h.Kind})
	if err != nil {
		r.line("verdict", fmt.Sprintf("REFUSED by %s: %v", show(party.ID), err))
		return errRefused
	}
	verdict := fmt.Sprintf("ACCEPTED by %s: from %s, %s", show(party.ID), show(m.From), m.Protections)
	if *atIssue {
		verdict += " (as of its issue time; freshness not checked)"
	}
	r.line("verdict", verdict)
	r.payload(m.Payload)
	return nil
}

// readCaptured reads the header of a captured envelope: its bytes, or
// their base64url armor. An envelope begins with a byte below 0x20, which
// is no base64url character, so an input that is base64url text once
// white space is trimmed is armor. A captured message often ends with the
// line end of the tool that printed it; the bytes of an envelope may end
// with 0x0A, so they are read as they are first, and without the line end
// only if they are malformed as they are. It returns the envelope's bytes
// and whether they came armored.
func readCaptured(data []byte, maxSize int) (h *envelope.Header, env []byte, armored bool, err error) {
	if text := bytes.TrimSpace(data); len(text) > 0 && armor(text) {
		env, err := b64url.DecodeString(string(text))
		if err != nil {
			return nil, nil, true, fmt.Errorf("%w: base64url armor: %v", envelope.ErrMalformed, err)
		}
		h, err := envelope.Peek(env, maxSize)
		return h, env, true, err
	}
	h, err = envelope.Peek(data, maxSize)
	if err == nil || !errors.Is(err, envelope.ErrMalformed) {
		return h, data, false, err
	}
	trimmed := bytes.TrimSuffix(bytes.TrimSuffix(data, []byte("\n")), []byte("\r"))
	if len(trimmed) == len(data) {
		return nil, data, false, err
	}
	h, err = envelope.Peek(trimmed, maxSize)
	return h, trimmed, false, err
}

// armor reports whether text is made of base64url characters only.
func armor(text []byte) bool {
	for _, c := range text {
		if !b64url.IsChar(c) {
			return false
		}
	}
	return true
}

var kindNames = map[envelope.Kind]string{
	envelope.Request: "request", envelope.Reply: "reply", envelope.ErrorReply: "error reply", envelope.Event: "event",
}

// report prints the fields of an envelope, one per line.
type report struct {
	w   io.Writer
	now time.Time
}

func (r report) line(name, value string) {
	fmt.Fprintf(r.w, "%-11s %s\n", name, value)
}

func (r report) header(size int, armored bool, h *envelope.Header) {
	from := ""
	if armored {
		from = ", read from base64url armor"
	}
	r.line("envelope", fmt.Sprintf("%d bytes%s", size, from))
	r.line("kind", fmt.Sprintf("%s (%s)", kindNames[h.Kind], h.Kind))
	r.line("from", show(h.From))
	to := make([]string, len(h.To))
	for i, id := range h.To {
		to[i] = show(id)
	}
	if len(to) == 0 {
		to = []string{"(any subscriber)"}
	}
	r.line("to", strings.Join(to, ", "))
	if h.Topic != "" {
		r.line("topic", show(h.Topic))
	}
	if h.ReplyTo != "" {
		r.line("reply-to", show(h.ReplyTo))
	}
	if h.CorrelationID != nil {
		r.line("correlation", base64.RawURLEncoding.EncodeToString(h.CorrelationID))
	}
	if h.Kind == envelope.Reply || h.Kind == envelope.ErrorReply {
		r.line("in-reply-to", base64.RawURLEncoding.EncodeToString(h.InReplyTo[:]))
	}
	r.line("counter", strconv.FormatUint(h.Counter, 10))
	r.line("issued", r.when(h.IssuedAt))
	r.line("expires", r.when(h.ExpiresAt))
	r.line("protection", h.Protections.String())
	for _, k := range h.Keys {
		r.line("key", fmt.Sprintf("%s %s", k.Algorithm, k.ID))
	}
}

// unopened reports an envelope that was not opened: its payload is shown
// only by opening it.
func (r report) unopened(why string) {
	r.line("verdict", why)
	r.line("payload", "(not opened)")
}

func (r report) payload(p []byte) {
	if utf8.Valid(p) && printable(string(p)) {
		r.line("payload", fmt.Sprintf("%d bytes: %s", len(p), p))
		return
	}
	r.line("payload", fmt.Sprintf("%d bytes, base64url: %s", len(p), base64.RawURLEncoding.EncodeToString(p)))
}

// when shows a time in UTC and how far it is from now.
func (r report) when(t time.Time) string {
	d := t.Sub(r.now).Round(time.Millisecond)
	rel := "in " + d.String()
	if d < 0 {
		rel = (-d).String() + " ago"
	}
	return fmt.Sprintf("%s (%s)", t.UTC().Format(time.RFC3339Nano), rel)
}

// show returns s as it is if every character is printable, and quoted
// otherwise, so that nothing in an envelope can drive the terminal.
func show(s string) string {
	if printable(s) {
		return s
	}
	return strconv.Quote(s)
}

func printable(s string) bool {
	for _, c := range s {
		if !unicode.IsPrint(c) {
			return false
		}
	}
	return true
}
