// Command vecflat flattens the test vectors of Envelope 1.0 (SPEC.md §11)
// into a line-based text that the C port's runner (tests/vectors.c) reads
// without a JSON parser:
//
//	go run ./tools/vecflat ../testdata/vectors > build/vectors.txt
//
// The output is a list of records separated by blank lines. Each line is a
// field name, one space and a value, or the field name alone for an empty
// value. Byte strings, ids and topics are lowercase hex (so any byte may
// appear in them), numbers are decimal, lists are space-separated, and
// lines starting with # are comments.
//
// The first record holds the keys of keys.json that the C profile uses
// (HMAC, HOTP, the pre-shared key and ES256), each as
//
//	key <name> <hex>
//	kid <name> <hex>
//
// and "hotp-digits <n>". Every vector then gives, in this order and only
// when the vector has them:
//
//	vector <file name>
//	name <name>
//	rule <rule id>
//	sender <hex>
//	receiver <hex>
//	now <ms>                     or: clockless
//	max-size <n>
//	replay-width <n>
//	trust <key names>
//	identities <key names>
//	require <protection names>
//	pairwise-enc
//	peer-clockless
//	skew <ms>
//	lifetime <ms>
//	kinds <kind names>
//	from <hex>
//	topic <hex>
//	request <hex>
//	replayed <counters>
//	envelope <hex>
//	result <class>
//	payload <hex>
//	digest <hex>
//
// vecflat fails on any field of a vector or of keys.json it does not know,
// so that a field added to the vectors is noticed, not dropped.
//
// With -c-keys it writes instead a C header of those keys, so that the C
// tests that need keys without the vectors (tests/unit.c, the fuzz
// harness, tools/stackmeter.c) take them from keys.json, never from a copy:
//
//	go run ./tools/vecflat -c-keys ../testdata/vectors > build/test_keys.h
//
// Each key is a macro that initializes a uint8_t array, such as
// TEST_KEY_HMAC and TEST_KID_HMAC.
package main

import (
	"bufio"
	"bytes"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
)

func main() {
	args := os.Args[1:]
	write := run
	if len(args) == 2 && args[0] == "-c-keys" {
		write, args = writeCKeys, args[1:]
	}
	if len(args) != 1 {
		fmt.Fprintln(os.Stderr, "usage: vecflat [-c-keys] <vectors directory>")
		os.Exit(2)
	}
	w := bufio.NewWriter(os.Stdout)
	if err := write(args[0], w); err != nil {
		fmt.Fprintln(os.Stderr, "vecflat:", err)
		os.Exit(1)
	}
	if err := w.Flush(); err != nil {
		fmt.Fprintln(os.Stderr, "vecflat:", err)
		os.Exit(1)
	}
}

// run writes the keys and then every vector of dir, in file name order.
func run(dir string, w io.Writer) error {
	fmt.Fprintln(w, "# Envelope 1.0 test vectors, flattened by tools/vecflat. Do not edit.")
	if err := writeKeys(filepath.Join(dir, "keys.json"), w); err != nil {
		return fmt.Errorf("keys.json: %w", err)
	}
	files, err := filepath.Glob(filepath.Join(dir, "*.json"))
	if err != nil {
		return err
	}
	n := 0
	for _, f := range files {
		if filepath.Base(f) == "keys.json" {
			continue
		}
		fmt.Fprintln(w)
		if err := writeVector(f, w); err != nil {
			return fmt.Errorf("%s: %w", filepath.Base(f), err)
		}
		n++
	}
	if n == 0 {
		return fmt.Errorf("no vectors in %s", dir)
	}
	return nil
}

// decodeStrict decodes the JSON object in data into v, refusing unknown
// fields and anything after the object.
func decodeStrict(data []byte, v any) error {
	d := json.NewDecoder(bytes.NewReader(data))
	d.DisallowUnknownFields()
	if err := d.Decode(v); err != nil {
		return err
	}
	if d.More() {
		return fmt.Errorf("data after the JSON object")
	}
	return nil
}

// keyFile is keys.json. Every field is listed, those the C profile does
// not use too, so that an unknown one fails the decoding.
type keyFile struct {
	Comment          string            `json:"comment"`
	HMAC             string            `json:"hmac"`
	OtherHMAC        string            `json:"otherHmac"`
	HOTP             string            `json:"hotp"`
	HOTPDigits       int               `json:"hotpDigits"`
	PSK              string            `json:"psk"`
	Ed25519Seed      string            `json:"ed25519Seed"`
	OtherEd25519Seed string            `json:"otherEd25519Seed"`
	ES256Private     string            `json:"es256Private"`
	RSASignPrivate   string            `json:"rsaSignPrivate"`
	X25519Private    string            `json:"x25519Private"`
	XWingSeed        string            `json:"xwingSeed"`
	RSAOAEPPrivate   string            `json:"rsaOaepPrivate"`
	PublicKeys       map[string]string `json:"publicKeys"`
	KeyIDs           map[string]string `json:"keyIds"`
}

// Names of keys.json's publicKeys and keyIds, all known to vecflat; the
// profile's are written out.
var (
	publicKeyNames = []string{"ed25519", "es256", "other-ed25519", "ps256", "rsa-oaep", "x25519", "xwing"}
	keyIDNames     = []string{"ed25519", "es256", "hmac", "hotp", "hotp8", "other-ed25519", "other-hmac", "ps256", "psk", "rsa-oaep", "x25519", "xwing"}
	profileKeyIDs  = []string{"hmac", "other-hmac", "hotp", "hotp8", "psk", "es256"}
)

// profileKeys are the keys of the C profile in keys.json, decoded.
type profileKeys struct {
	keys       []namedBytes // secrets, the ES256 scalar and public key
	kids       []namedBytes // the key ids of profileKeyIDs
	hotpDigits int
}

// namedBytes is one key or key id.
type namedBytes struct {
	name string
	b    []byte
}

// readProfileKeys reads keys.json, refusing a field or name it does not
// know, and decodes the profile's keys.
func readProfileKeys(path string) (*profileKeys, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var k keyFile
	if err := decodeStrict(data, &k); err != nil {
		return nil, err
	}
	if err := knownNames("publicKeys", k.PublicKeys, publicKeyNames); err != nil {
		return nil, err
	}
	if err := knownNames("keyIds", k.KeyIDs, keyIDNames); err != nil {
		return nil, err
	}
	if k.HOTPDigits != 6 && k.HOTPDigits != 8 {
		return nil, fmt.Errorf("hotpDigits %d", k.HOTPDigits)
	}
	p := &profileKeys{hotpDigits: k.HOTPDigits}
	keys := []struct{ name, b64 string }{
		{"hmac", k.HMAC}, {"other-hmac", k.OtherHMAC}, {"hotp", k.HOTP}, {"psk", k.PSK},
		{"es256-private", k.ES256Private}, {"es256", k.PublicKeys["es256"]},
	}
	for _, key := range keys {
		b, err := unbase64(key.b64)
		if err != nil {
			return nil, fmt.Errorf("key %s: %w", key.name, err)
		}
		p.keys = append(p.keys, namedBytes{key.name, b})
	}
	for _, name := range profileKeyIDs {
		b, err := unbase64(k.KeyIDs[name])
		if err != nil || len(b) != 12 {
			return nil, fmt.Errorf("keyIds %s: not 12 bytes of base64url (%v)", name, err)
		}
		p.kids = append(p.kids, namedBytes{name, b})
	}
	return p, nil
}

// writeKeys writes the first record: the profile's keys and key ids.
func writeKeys(path string, w io.Writer) error {
	p, err := readProfileKeys(path)
	if err != nil {
		return err
	}
	for _, k := range p.keys {
		fmt.Fprintf(w, "key %s %x\n", k.name, k.b)
	}
	fmt.Fprintf(w, "hotp-digits %d\n", p.hotpDigits)
	for _, k := range p.kids {
		fmt.Fprintf(w, "kid %s %x\n", k.name, k.b)
	}
	return nil
}

// writeCKeys writes the profile's keys and key ids as a C header of
// array initializers (see the package doc).
func writeCKeys(dir string, w io.Writer) error {
	p, err := readProfileKeys(filepath.Join(dir, "keys.json"))
	if err != nil {
		return fmt.Errorf("keys.json: %w", err)
	}
	fmt.Fprintln(w, "/* TEST KEYS ONLY, from ../testdata/vectors/keys.json by tools/vecflat -c-keys. Do not edit. */")
	fmt.Fprintln(w, "#ifndef TEST_KEYS_H\n#define TEST_KEYS_H")
	for _, k := range p.keys {
		fmt.Fprintf(w, "#define TEST_KEY_%s %s\n", cName(k.name), cBytes(k.b))
	}
	fmt.Fprintf(w, "#define TEST_HOTP_DIGITS %d\n", p.hotpDigits)
	for _, k := range p.kids {
		fmt.Fprintf(w, "#define TEST_KID_%s %s\n", cName(k.name), cBytes(k.b))
	}
	fmt.Fprintln(w, "#endif")
	return nil
}

// cName is a key's name as part of a C macro name: other-hmac is
// OTHER_HMAC.
func cName(name string) string {
	return strings.ToUpper(strings.ReplaceAll(name, "-", "_"))
}

// cBytes is b as a C array initializer.
func cBytes(b []byte) string {
	parts := make([]string, len(b))
	for i, c := range b {
		parts[i] = fmt.Sprintf("0x%02x", c)
	}
	return "{" + strings.Join(parts, ", ") + "}"
}

// knownNames fails on a name of m that is not in known.
func knownNames(field string, m map[string]string, known []string) error {
	for name := range m {
		if !slices.Contains(known, name) {
			return fmt.Errorf("%s: unknown name %q", field, name)
		}
	}
	return nil
}

// unbase64 decodes base64url without padding, strictly.
func unbase64(s string) ([]byte, error) {
	if s == "" {
		return nil, fmt.Errorf("missing")
	}
	return base64.RawURLEncoding.Strict().DecodeString(s)
}

// vector is one vector file (SPEC.md §11). Pointers tell an absent field
// from a zero one.
type vector struct {
	Name        string          `json:"name"`
	Description string          `json:"description"`
	Rule        string          `json:"rule"`
	Sender      *string         `json:"sender"`
	Receiver    *string         `json:"receiver"`
	Now         *uint64         `json:"now"`
	Clockless   bool            `json:"clockless"`
	MaxSize     *uint64         `json:"maxSize"`
	ReplayWidth *uint64         `json:"replayWidth"`
	Trust       []string        `json:"trust"`
	Identities  []string        `json:"identities"`
	Policy      *policy         `json:"policy"`
	Expect      *expect         `json:"expect"`
	Replayed    []string        `json:"replayed"`
	Envelope    *string         `json:"envelope"`
	Header      json.RawMessage `json:"header"` // for readers only
	Result      string          `json:"result"`
	Payload     *string         `json:"payload"`
	Digest      *string         `json:"digest"`
}

type policy struct {
	Require                   []string `json:"require"`
	RequirePairwiseEncryption bool     `json:"requirePairwiseEncryption"`
	Clockless                 bool     `json:"clockless"`
	MaxClockSkewMs            uint64   `json:"maxClockSkewMs"`
	MaxLifetimeMs             uint64   `json:"maxLifetimeMs"`
}

type expect struct {
	Kinds   []string `json:"kinds"`
	From    *string  `json:"from"`
	Topic   *string  `json:"topic"`
	Request *string  `json:"request"`
}

// writeVector checks one vector file and writes its record.
func writeVector(path string, w io.Writer) error {
	data, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	var v vector
	if err := decodeStrict(data, &v); err != nil {
		return err
	}
	if err := v.check(); err != nil {
		return err
	}
	r := record{w: w}
	r.line("vector", filepath.Base(path))
	r.line("name", v.Name)
	if v.Rule != "" {
		r.line("rule", v.Rule)
	}
	r.line("sender", hex.EncodeToString([]byte(*v.Sender)))
	r.line("receiver", hex.EncodeToString([]byte(*v.Receiver)))
	if v.Clockless {
		r.line("clockless", "")
	} else {
		r.line("now", strconv.FormatUint(*v.Now, 10))
	}
	r.line("max-size", strconv.FormatUint(*v.MaxSize, 10))
	r.line("replay-width", strconv.FormatUint(*v.ReplayWidth, 10))
	r.line("trust", strings.Join(v.Trust, " "))
	r.line("identities", strings.Join(v.Identities, " "))
	r.policy(v.Policy)
	r.expect(v.Expect)
	if len(v.Replayed) > 0 {
		r.line("replayed", strings.Join(v.Replayed, " "))
	}
	r.hexLine("envelope", *v.Envelope)
	r.line("result", v.Result)
	if v.Payload != nil {
		r.hexLine("payload", *v.Payload)
	}
	if v.Digest != nil {
		r.hexLine("digest", *v.Digest)
	}
	return r.err
}

// check refuses a vector without the fields every vector has, or with
// fields that contradict each other.
func (v *vector) check() error {
	switch {
	case v.Name == "" || strings.ContainsAny(v.Name, " \t\n"):
		return fmt.Errorf("name %q", v.Name)
	case v.Sender == nil || v.Receiver == nil || v.MaxSize == nil || v.ReplayWidth == nil:
		return fmt.Errorf("sender, receiver, maxSize or replayWidth missing")
	case v.Policy == nil || v.Expect == nil || v.Envelope == nil || v.Result == "":
		return fmt.Errorf("policy, expect, envelope or result missing")
	case v.Clockless == (v.Now != nil):
		return fmt.Errorf("exactly one of now and clockless: true")
	case (v.Result == "ok") != (v.Rule == ""):
		return fmt.Errorf("result %q with rule %q", v.Result, v.Rule)
	}
	for _, s := range [][]string{v.Trust, v.Identities, v.Policy.Require, v.Expect.Kinds} {
		for _, name := range s {
			if name == "" || strings.ContainsAny(name, " \t\n") {
				return fmt.Errorf("list entry %q", name)
			}
		}
	}
	for _, c := range v.Replayed {
		if _, err := strconv.ParseUint(c, 10, 64); err != nil {
			return fmt.Errorf("replayed: %w", err)
		}
	}
	return nil
}

// record writes the lines of one record; the first error sticks.
type record struct {
	w   io.Writer
	err error
}

func (r *record) line(field, value string) {
	if r.err != nil {
		return
	}
	if value == "" {
		_, r.err = fmt.Fprintln(r.w, field)
		return
	}
	if strings.ContainsAny(value, "\n\r") {
		r.err = fmt.Errorf("%s: a line break in the value", field)
		return
	}
	_, r.err = fmt.Fprintf(r.w, "%s %s\n", field, value)
}

// hexLine writes a field given in hex, checked and in lowercase.
func (r *record) hexLine(field, h string) {
	b, err := hex.DecodeString(h)
	if err != nil && r.err == nil {
		r.err = fmt.Errorf("%s: %w", field, err)
	}
	r.line(field, hex.EncodeToString(b))
}

func (r *record) policy(p *policy) {
	if len(p.Require) > 0 {
		r.line("require", strings.Join(p.Require, " "))
	}
	if p.RequirePairwiseEncryption {
		r.line("pairwise-enc", "")
	}
	if p.Clockless {
		r.line("peer-clockless", "")
	}
	r.line("skew", strconv.FormatUint(p.MaxClockSkewMs, 10))
	r.line("lifetime", strconv.FormatUint(p.MaxLifetimeMs, 10))
}

func (r *record) expect(x *expect) {
	r.line("kinds", strings.Join(x.Kinds, " "))
	if x.From != nil {
		r.line("from", hex.EncodeToString([]byte(*x.From)))
	}
	if x.Topic != nil {
		r.line("topic", hex.EncodeToString([]byte(*x.Topic)))
	}
	if x.Request != nil {
		r.hexLine("request", *x.Request)
	}
}
