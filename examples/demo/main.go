// Command demo shows the mqttsec envelope end to end in one process: a
// client and a gateway with freshly generated keys exchange a request and
// its reply under every protection set, then captured messages are tampered
// with, replayed, stripped, downgraded, reflected and re-addressed the way a
// hostile broker would, and each is refused with its error class.
//
// It exits with status 1 if anything does not behave as expected.
package main

import (
	"bytes"
	"context"
	"crypto/ecdh"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/hpke"
	"crypto/rand"
	"crypto/rsa"
	"errors"
	"fmt"
	"os"
	"strings"

	"github.com/mqttsec/mqttsec/envelope"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "demo:", err)
		os.Exit(1)
	}
}

// party is one side with a full set of keys.
type party struct {
	id       string
	ed       envelope.Signer
	es       envelope.Signer
	ps       envelope.Signer
	verifier map[envelope.Algorithm]envelope.Verifier // what others use to check this party
	x25519   envelope.Recipient
	xwing    envelope.Recipient
	oaep     envelope.Recipient
	ids      []envelope.Identity
	sealer   *envelope.Sealer
	store    *envelope.MemoryStore
}

func newParty(id string) (*party, error) {
	p := &party{id: id, verifier: map[envelope.Algorithm]envelope.Verifier{}}
	edPub, edPriv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return nil, err
	}
	esKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	rsaSign, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		return nil, err
	}
	rsaEnc, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		return nil, err
	}
	xKey, err := hpke.DHKEM(ecdh.X25519()).GenerateKey()
	if err != nil {
		return nil, err
	}
	xwKey, err := hpke.MLKEM768X25519().GenerateKey()
	if err != nil {
		return nil, err
	}
	steps := []func() error{
		func() (err error) { p.ed, err = envelope.NewEd25519Signer(edPriv); return },
		func() (err error) { p.es, err = envelope.NewECDSASigner(esKey); return },
		func() (err error) { p.ps, err = envelope.NewRSASigner(rsaSign); return },
		func() (err error) { p.verifier[envelope.Ed25519], err = envelope.NewEd25519Verifier(edPub); return },
		func() (err error) {
			p.verifier[envelope.ES256], err = envelope.NewECDSAVerifier(&esKey.PublicKey)
			return
		},
		func() (err error) {
			p.verifier[envelope.PS256], err = envelope.NewRSAVerifier(&rsaSign.PublicKey)
			return
		},
		func() (err error) { p.x25519, err = envelope.NewHPKERecipient(xKey.PublicKey()); return },
		func() (err error) { p.xwing, err = envelope.NewHPKERecipient(xwKey.PublicKey()); return },
		func() (err error) { p.oaep, err = envelope.NewRSARecipient(&rsaEnc.PublicKey); return },
		func() error {
			for _, make := range []func() (envelope.Identity, error){
				func() (envelope.Identity, error) { return envelope.NewHPKEIdentity(xKey) },
				func() (envelope.Identity, error) { return envelope.NewHPKEIdentity(xwKey) },
				func() (envelope.Identity, error) { return envelope.NewRSAIdentity(rsaEnc) },
			} {
				id, err := make()
				if err != nil {
					return err
				}
				p.ids = append(p.ids, id)
			}
			return nil
		},
		func() (err error) { p.store, err = envelope.NewMemoryStore(0); return },
	}
	for _, step := range steps {
		if err := step(); err != nil {
			return nil, err
		}
	}
	p.sealer = &envelope.Sealer{ID: id, Counter: envelope.NewMemoryCounter(0)}
	return p, nil
}

// suite is one protection set, applied by the sender s for the receiver r.
type suite struct {
	name    string
	require envelope.Protection
	apply   func(k *shared, s, r *party, p *envelope.Params)
}

// shared holds the pairwise secrets of the client and the gateway.
type shared struct {
	hmac *envelope.HMACKey
	hotp *envelope.HOTPKey
	psk  *envelope.AEADKey
}

func suites() []suite {
	return []suite{
		{"HMAC-SHA256", envelope.HMAC, func(k *shared, s, r *party, p *envelope.Params) { p.HMAC = k.hmac }},
		{"HMAC + HOTP", envelope.HMAC | envelope.HOTPCode, func(k *shared, s, r *party, p *envelope.Params) { p.HMAC, p.HOTP = k.hmac, k.hotp }},
		{"Ed25519", envelope.Signature, func(k *shared, s, r *party, p *envelope.Params) { p.Signer = s.ed }},
		{"ECDSA P-256", envelope.Signature, func(k *shared, s, r *party, p *envelope.Params) { p.Signer = s.es }},
		{"RSA-PSS 2048", envelope.Signature, func(k *shared, s, r *party, p *envelope.Params) { p.Signer = s.ps }},
		{"AES-256-GCM, pre-shared key", envelope.Encryption, func(k *shared, s, r *party, p *envelope.Params) { p.PSK = k.psk }},
		{"Ed25519 + AES-GCM, HPKE X25519", envelope.Signature | envelope.Encryption, func(k *shared, s, r *party, p *envelope.Params) {
			p.Signer, p.Recipients = s.ed, []envelope.Recipient{r.x25519}
		}},
		{"Ed25519 + AES-GCM, HPKE MLKEM768X25519", envelope.Signature | envelope.Encryption, func(k *shared, s, r *party, p *envelope.Params) {
			p.Signer, p.Recipients = s.ed, []envelope.Recipient{r.xwing}
		}},
		{"RSA-PSS + AES-GCM, RSA-OAEP", envelope.Signature | envelope.Encryption, func(k *shared, s, r *party, p *envelope.Params) {
			p.Signer, p.Recipients = s.ps, []envelope.Recipient{r.oaep}
		}},
	}
}

// opener returns r's opener for messages from s, with s's keys and policy.
func opener(k *shared, r, s *party, policy envelope.Policy) (*envelope.Opener, error) {
	var verifiers []envelope.Verifier
	for _, v := range s.verifier {
		verifiers = append(verifiers, v)
	}
	keys, err := envelope.NewKeys(r.ids, &envelope.Peer{
		ID: s.id, Policy: policy, Verifiers: verifiers,
		HMACKeys: []*envelope.HMACKey{k.hmac}, HOTPKeys: []*envelope.HOTPKey{k.hotp}, AEADKeys: []*envelope.AEADKey{k.psk},
	})
	if err != nil {
		return nil, err
	}
	return &envelope.Opener{ID: r.id, Keys: keys, Replay: r.store}, nil
}

type report struct{ failures, checks int }

func (r *report) line(ok bool, what, detail string) {
	r.checks++
	mark := "ok  "
	if !ok {
		mark = "FAIL"
		r.failures++
	}
	fmt.Printf("  %s %-44s %s\n", mark, what, detail)
}

func run() error {
	ctx := context.Background()
	fmt.Println("mqttsec envelope demo: a client and a gateway, keys generated now")
	client, err := newParty("client")
	if err != nil {
		return err
	}
	gateway, err := newParty("gateway")
	if err != nil {
		return err
	}
	k := &shared{}
	if k.hmac, err = envelope.NewHMACKey(randomBytes(32)); err != nil {
		return err
	}
	if k.hotp, err = envelope.NewHOTPKey(randomBytes(20), 6); err != nil {
		return err
	}
	if k.psk, err = envelope.NewAEADKey(randomBytes(32)); err != nil {
		return err
	}
	rep := &report{}

	fmt.Println("\nrequest and reply under each protection set:")
	captured := map[string]*envelope.Sealed{}
	for _, s := range suites() {
		policy := envelope.Policy{Require: s.require}
		gwOpen, err := opener(k, gateway, client, policy)
		if err != nil {
			return err
		}
		clOpen, err := opener(k, client, gateway, policy)
		if err != nil {
			return err
		}
		p := &envelope.Params{Kind: envelope.Request, To: []string{"gateway"}, Topic: "get-card", ReplyTo: "mqttsec/client/reply"}
		s.apply(k, client, gateway, p)
		req, err := client.sealer.Seal(p, []byte(`{"card":8165538}`))
		if err != nil {
			return fmt.Errorf("%s: seal request: %w", s.name, err)
		}
		captured[s.name] = req
		in, err := gwOpen.Open(ctx, req.Bytes, &envelope.Expect{Kinds: envelope.Request, Topic: "get-card"})
		if err != nil {
			rep.line(false, s.name, "request refused: "+err.Error())
			continue
		}
		rp := &envelope.Params{Kind: envelope.Reply, InReplyTo: in}
		s.apply(k, gateway, client, rp)
		reply, err := gateway.sealer.Seal(rp, []byte(`{"card":8165538,"name":"Dana"}`))
		if err != nil {
			return fmt.Errorf("%s: seal reply: %w", s.name, err)
		}
		out, err := clOpen.Open(ctx, reply.Bytes, &envelope.Expect{
			Kinds: envelope.Reply | envelope.ErrorReply, From: "gateway", InReplyTo: req.Digest[:],
		})
		ok := err == nil && string(out.Payload) == `{"card":8165538,"name":"Dana"}` && out.Protections == s.require
		detail := fmt.Sprintf("request %5d B, reply %5d B", len(req.Bytes), len(reply.Bytes))
		if err != nil {
			detail = "reply refused: " + err.Error()
		}
		rep.line(ok, s.name, detail)
	}

	fmt.Println("\nwhat a hostile broker tries, refused by the gateway:")
	attack := func(what string, want error, data []byte, expect *envelope.Expect, policy envelope.Policy, o func(*envelope.Opener)) error {
		gwOpen, err := opener(k, gateway, client, policy)
		if err != nil {
			return err
		}
		if o != nil {
			o(gwOpen)
		}
		if expect == nil {
			expect = &envelope.Expect{Kinds: envelope.Request, Topic: "get-card"}
		}
		_, err = gwOpen.Open(ctx, data, expect)
		ok := errors.Is(err, want)
		detail := "refused: " + fmt.Sprint(envelope.Class(err))
		if err == nil {
			detail = "ACCEPTED"
		} else if !ok {
			detail = fmt.Sprintf("refused with %v, want %v", envelope.Class(err), want)
		}
		rep.line(ok, what, detail)
		return nil
	}
	fresh := func(apply func(p *envelope.Params)) ([]byte, error) {
		p := &envelope.Params{Kind: envelope.Request, To: []string{"gateway"}, Topic: "get-card", ReplyTo: "mqttsec/client/reply"}
		apply(p)
		s, err := client.sealer.Seal(p, []byte(`{"card":8165538}`))
		if err != nil {
			return nil, err
		}
		return s.Bytes, nil
	}
	signed, err := fresh(func(p *envelope.Params) { p.Signer = client.ed })
	if err != nil {
		return err
	}
	macOnly, err := fresh(func(p *envelope.Params) { p.HMAC = k.hmac })
	if err != nil {
		return err
	}
	sigPolicy := envelope.Policy{Require: envelope.Signature}
	steps := []struct {
		what   string
		want   error
		data   []byte
		expect *envelope.Expect
		policy envelope.Policy
		o      func(*envelope.Opener)
	}{
		{"payload byte changed", envelope.ErrAuthentication, tamperPayload(signed), nil, sigPolicy, nil},
		{"signature removed", envelope.ErrAuthentication, stripMember(signed, "sig"), nil, sigPolicy, nil},
		{"downgraded to HMAC where a signature is due", envelope.ErrPolicy, macOnly, nil, sigPolicy, nil},
		{"captured request replayed", envelope.ErrReplayed, captured["Ed25519"].Bytes, nil, sigPolicy, nil},
		{"get-card re-published as delete-card", envelope.ErrContext, signed,
			&envelope.Expect{Kinds: envelope.Request, Topic: "delete-card"}, sigPolicy, nil},
		{"request re-addressed to gateway-2", envelope.ErrContext, signed, nil, sigPolicy,
			func(o *envelope.Opener) { o.ID = "gateway-2" }},
		{"oversized junk", envelope.ErrTooLarge, bytes.Repeat([]byte("x"), envelope.DefaultMaxSize+1), nil, sigPolicy, nil},
		{"not an envelope", envelope.ErrMalformed, []byte(`{"message":{"request":{}}}`), nil, sigPolicy, nil},
	}
	for _, s := range steps {
		if err := attack(s.what, s.want, s.data, s.expect, s.policy, s.o); err != nil {
			return err
		}
	}

	// A request reflected back to the client as if it were the reply.
	clOpen, err := opener(k, client, gateway, envelope.Policy{})
	if err != nil {
		return err
	}
	refl := captured["HMAC-SHA256"]
	_, err = clOpen.Open(ctx, refl.Bytes, &envelope.Expect{Kinds: envelope.Reply | envelope.ErrorReply, From: "gateway", InReplyTo: refl.Digest[:]})
	rep.line(errors.Is(err, envelope.ErrContext), "request reflected to the client as a reply", "refused: "+fmt.Sprint(envelope.Class(err)))

	fmt.Println()
	if rep.failures > 0 {
		return fmt.Errorf("%d of %d checks did not behave as expected", rep.failures, rep.checks)
	}
	fmt.Printf("all %d checks behaved as expected\n", rep.checks)
	return nil
}

func randomBytes(n int) []byte {
	b := make([]byte, n)
	rand.Read(b)
	return b
}

// tamperPayload changes one character of the payload member.
func tamperPayload(env []byte) []byte {
	out := bytes.Clone(env)
	i := bytes.Index(out, []byte(`"p":"`)) + len(`"p":"`)
	if out[i] == 'A' {
		out[i] = 'B'
	} else {
		out[i] = 'A'
	}
	return out
}

// stripMember removes an outer member such as "sig" from an envelope.
func stripMember(env []byte, name string) []byte {
	s := string(env)
	start := strings.Index(s, `,"`+name+`":"`)
	if start < 0 {
		return env
	}
	end := start + len(`,"`+name+`":"`) + strings.IndexByte(s[start+len(`,"`+name+`":"`):], '"') + 1
	return []byte(s[:start] + s[end:])
}
