package main

import (
	"crypto/ecdh"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/hpke"
	"crypto/rand"
	"crypto/rsa"

	"github.com/mqttsec/mqttsec/envelope"
	"github.com/mqttsec/mqttsec/mqttsec"
)

// keys is one party's generated key set.
type keys struct {
	ed, es, ps envelope.Signer
	verifiers  []envelope.Verifier
	x25519     envelope.Recipient
	xwing      envelope.Recipient
	oaep       envelope.Recipient
	identities []envelope.Identity
}

func generate() (*keys, error) {
	edPub, edPriv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return nil, err
	}
	es, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
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
	x, err := hpke.DHKEM(ecdh.X25519()).GenerateKey()
	if err != nil {
		return nil, err
	}
	xw, err := hpke.MLKEM768X25519().GenerateKey()
	if err != nil {
		return nil, err
	}
	k := &keys{}
	var errs []error
	keep := func(err error) { errs = append(errs, err) }
	k.ed, err = envelope.NewEd25519Signer(edPriv)
	keep(err)
	k.es, err = envelope.NewECDSASigner(es)
	keep(err)
	k.ps, err = envelope.NewRSASigner(rsaSign)
	keep(err)
	for _, v := range []func() (envelope.Verifier, error){
		func() (envelope.Verifier, error) { return envelope.NewEd25519Verifier(edPub) },
		func() (envelope.Verifier, error) { return envelope.NewECDSAVerifier(&es.PublicKey) },
		func() (envelope.Verifier, error) { return envelope.NewRSAVerifier(&rsaSign.PublicKey) },
	} {
		ver, err := v()
		keep(err)
		k.verifiers = append(k.verifiers, ver)
	}
	k.x25519, err = envelope.NewHPKERecipient(x.PublicKey())
	keep(err)
	k.xwing, err = envelope.NewHPKERecipient(xw.PublicKey())
	keep(err)
	k.oaep, err = envelope.NewRSARecipient(&rsaEnc.PublicKey)
	keep(err)
	for _, i := range []func() (envelope.Identity, error){
		func() (envelope.Identity, error) { return envelope.NewHPKEIdentity(x) },
		func() (envelope.Identity, error) { return envelope.NewHPKEIdentity(xw) },
		func() (envelope.Identity, error) { return envelope.NewRSAIdentity(rsaEnc) },
	} {
		id, err := i()
		keep(err)
		k.identities = append(k.identities, id)
	}
	for _, err := range errs {
		if err != nil {
			return nil, err
		}
	}
	return k, nil
}

// pairwise is the secrets one client shares with the gateway.
type pairwise struct {
	hmac *envelope.HMACKey
	hotp *envelope.HOTPKey
	psk  *envelope.AEADKey
}

func newPairwise() (*pairwise, error) {
	secret := func(n int) []byte { b := make([]byte, n); rand.Read(b); return b }
	h, err := envelope.NewHMACKey(secret(32))
	if err != nil {
		return nil, err
	}
	o, err := envelope.NewHOTPKey(secret(20), 6)
	if err != nil {
		return nil, err
	}
	p, err := envelope.NewAEADKey(secret(32))
	if err != nil {
		return nil, err
	}
	return &pairwise{h, o, p}, nil
}

// suite is a protection set; send returns how "from" seals for "to".
type suite struct {
	client  string // the client id that uses it
	name    string
	require envelope.Protection
	send    func(s *pairwise, from, to *keys) mqttsec.Protection
}

func suites() []suite {
	return []suite{
		{"c-hmac", "HMAC-SHA256", envelope.HMAC, func(s *pairwise, f, t *keys) mqttsec.Protection { return mqttsec.Protection{HMAC: s.hmac} }},
		{"c-hotp", "HMAC + HOTP", envelope.HMAC | envelope.HOTPCode, func(s *pairwise, f, t *keys) mqttsec.Protection {
			return mqttsec.Protection{HMAC: s.hmac, HOTP: s.hotp}
		}},
		{"c-ed25519", "Ed25519", envelope.Signature, func(s *pairwise, f, t *keys) mqttsec.Protection { return mqttsec.Protection{Signer: f.ed} }},
		{"c-es256", "ECDSA P-256", envelope.Signature, func(s *pairwise, f, t *keys) mqttsec.Protection { return mqttsec.Protection{Signer: f.es} }},
		{"c-ps256", "RSA-PSS 2048", envelope.Signature, func(s *pairwise, f, t *keys) mqttsec.Protection { return mqttsec.Protection{Signer: f.ps} }},
		{"c-psk", "AES-256-GCM, pre-shared key", envelope.Encryption, func(s *pairwise, f, t *keys) mqttsec.Protection { return mqttsec.Protection{PSK: s.psk} }},
		{"c-x25519", "Ed25519 + AES-GCM, HPKE X25519", envelope.Signature | envelope.Encryption, func(s *pairwise, f, t *keys) mqttsec.Protection {
			return mqttsec.Protection{Signer: f.ed, Recipients: []envelope.Recipient{t.x25519}}
		}},
		{"c-xwing", "Ed25519 + AES-GCM, HPKE MLKEM768X25519", envelope.Signature | envelope.Encryption, func(s *pairwise, f, t *keys) mqttsec.Protection {
			return mqttsec.Protection{Signer: f.ed, Recipients: []envelope.Recipient{t.xwing}}
		}},
		{"c-oaep", "RSA-PSS + AES-GCM, RSA-OAEP", envelope.Signature | envelope.Encryption, func(s *pairwise, f, t *keys) mqttsec.Protection {
			return mqttsec.Protection{Signer: f.ps, Recipients: []envelope.Recipient{t.oaep}}
		}},
	}
}

// peer describes a party with keys k and pairwise secrets s, whose messages
// must carry require, and to which messages are sealed with send.
func peer(id string, k *keys, s *pairwise, require envelope.Protection, send mqttsec.Protection) *mqttsec.Peer {
	p := &mqttsec.Peer{
		Peer: envelope.Peer{ID: id, Policy: envelope.Policy{Require: require}, Verifiers: k.verifiers},
		Send: send,
	}
	if s != nil {
		p.HMACKeys = []*envelope.HMACKey{s.hmac}
		p.HOTPKeys = []*envelope.HOTPKey{s.hotp}
		p.AEADKeys = []*envelope.AEADKey{s.psk}
	}
	return p
}
