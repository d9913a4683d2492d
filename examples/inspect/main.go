// Command inspect shows what an envelope says and, given the receiving
// party's key directory, whether that party would accept it.
//
//	mosquitto_sub -h broker -t 'mqttsec/gateway/req/#' -C 1 > captured.env
//	go run ./examples/inspect captured.env
//	go run ./examples/inspect --keys keys/gateway captured.env
//	go run ./examples/inspect --keys keys/gateway --at-issue captured.env
//
// Without --keys, every field is shown as the sender — or the broker —
// wrote it, marked UNVERIFIED. With --keys (a directory made by
// examples/keygen), the envelope is opened as that party opens it: sender
// authentication, recipient, policy, freshness and decryption; the verdict
// and the opened payload are printed, and a refused envelope makes the
// command exit with status 1. --at-issue opens the envelope as of the time
// it claims to have been sent, to check the authenticity of a captured
// message after it expired; its freshness is then not checked.
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
	"github.com/mqttsec/mqttsec/mqttsec/keydir"
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
		fmt.Fprintln(stderr, "usage: inspect [--keys DIR [--at-issue]] [--max-size N] [FILE]  (no FILE: standard input)")
		fs.PrintDefaults()
	}
	keysDir := fs.String("keys", "", "the receiving party's key directory: open the envelope as it would")
	atIssue := fs.Bool("at-issue", false, "with --keys: open as of the envelope's issue time (freshness not checked)")
	maxSize := fs.Int("max-size", envelope.DefaultMaxSize, "largest envelope read, in bytes")
	if err := fs.Parse(args); err != nil {
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
	data, err := io.ReadAll(io.LimitReader(in, int64(*maxSize)+1))
	if err != nil {
		return err
	}
	h, data, err := inspectCaptured(data, *maxSize)
	if err != nil {
		fmt.Fprintf(stdout, "not an envelope: %v\n", err)
		return errRefused
	}
	r := report{w: stdout, now: now()}
	r.header(len(data), h)
	if party == nil {
		r.unopened(data, h, "UNVERIFIED: no --keys given")
		return nil
	}
	if h.Kind == envelope.Reply || h.Kind == envelope.ErrorReply {
		r.unopened(data, h, "UNVERIFIED: a reply opens only against the request it answers")
		return nil
	}
	replay, err := envelope.NewMemoryStore(envelope.DefaultWindow)
	if err != nil {
		return err
	}
	o := &envelope.Opener{ID: party.ID, Keys: party.Keyring, Replay: replay, MaxSize: *maxSize, Now: now}
	if *atIssue {
		o.Now = func() time.Time { return h.IssuedAt }
	}
	m, err := o.OpenInspected(context.Background(), h, &envelope.Expect{Kinds: h.Kind})
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

// inspectCaptured inspects a captured message, which often ends with the
// newline of the tool that printed it. A text envelope never contains one;
// a binary envelope may end with the byte 0x0A, so it is read as it is
// first, and without the line end only if it is malformed as it is. It
// returns the bytes it inspected.
func inspectCaptured(data []byte, maxSize int) (*envelope.Header, []byte, error) {
	h, err := envelope.Inspect(data, maxSize)
	if err == nil || !errors.Is(err, envelope.ErrMalformed) {
		return h, data, err
	}
	trimmed := bytes.TrimSuffix(bytes.TrimSuffix(data, []byte("\n")), []byte("\r"))
	if len(trimmed) == len(data) {
		return nil, data, err
	}
	h, err = envelope.Inspect(trimmed, maxSize)
	return h, trimmed, err
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

func (r report) header(size int, h *envelope.Header) {
	form := map[int]string{envelope.Version1: "JSON text", envelope.Version2: "binary", envelope.Version3: "compact"}[h.Version]
	r.line("envelope", fmt.Sprintf("%d bytes, version %d (%s)", size, h.Version, form))
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
	if h.InReplyTo != nil {
		r.line("in-reply-to", base64.RawURLEncoding.EncodeToString(h.InReplyTo))
	}
	r.line("counter", strconv.FormatUint(h.Counter, 10))
	r.line("issued", r.when(h.IssuedAt))
	r.line("expires", r.when(h.ExpiresAt))
	r.line("protection", h.Protections.String())
	for i, alg := range h.Algorithms {
		r.line("key", fmt.Sprintf("%s %s", alg, show(h.KeyIDs[i])))
	}
}

// unopened reports an envelope that was not opened, and its payload if it
// is not encrypted.
func (r report) unopened(data []byte, h *envelope.Header, why string) {
	r.line("verdict", why)
	if h.Protections&envelope.Encryption != 0 {
		r.line("payload", "(encrypted)")
		return
	}
	// Inspect has checked every member's encoding; Parse decodes them.
	e, err := envelope.Parse(data)
	if err != nil {
		r.line("payload", fmt.Sprintf("(unreadable: %v)", err))
		return
	}
	r.payload(e.Payload)
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
