package mqttsec

import (
	"errors"
	"time"

	"github.com/mqttsec/mqttsec/envelope"
)

// Protection says how messages to one peer are sealed. At least one of
// HMAC, Signer and PSK must be set.
type Protection struct {
	HMAC   *envelope.HMACKey
	HOTP   *envelope.HOTPKey
	Signer envelope.Signer
	PSK    *envelope.AEADKey
	// Recipients are the peer's encryption keys; set them to encrypt with a
	// fresh content key wrapped to the peer (HPKE or RSA-OAEP).
	Recipients []envelope.Recipient
	// TTL is how long messages to the peer stay valid; zero means
	// envelope.DefaultTTL.
	TTL time.Duration
}

func (p *Protection) apply(params *envelope.Params) {
	params.HMAC, params.HOTP, params.Signer, params.PSK = p.HMAC, p.HOTP, p.Signer, p.PSK
	params.Recipients = p.Recipients
	params.TTL = p.TTL
}

// Peer is another party: how its messages are checked (the embedded
// envelope.Peer: its id, the policy it must meet and its keys) and how
// messages to it are sealed (Send).
type Peer struct {
	envelope.Peer
	Send Protection
}

// Keyring holds a party's own keys and its peers. It implements
// envelope.Keyring. It is immutable once built, so it is safe for
// concurrent use.
type Keyring struct {
	// Signer signs events (and is available to Protection values).
	signer     envelope.Signer
	identities []envelope.Identity
	peers      map[string]*Peer
	keys       *envelope.Keys
}

var _ envelope.Keyring = (*Keyring)(nil)

// Own is a party's own keys.
type Own struct {
	// Signer signs the party's events.
	Signer envelope.Signer
	// Identities decrypt messages encrypted to the party.
	Identities []envelope.Identity
}

// NewKeyring returns a keyring of own keys and peers. Peer ids must be
// valid envelope ids and distinct.
func NewKeyring(own Own, peers ...*Peer) (*Keyring, error) {
	k := &Keyring{signer: own.Signer, identities: own.Identities, peers: map[string]*Peer{}}
	var eps []*envelope.Peer
	for _, p := range peers {
		if p == nil {
			return nil, errors.New("mqttsec: nil peer")
		}
		if p.Send.HMAC == nil && p.Send.Signer == nil && p.Send.PSK == nil {
			return nil, errors.New("mqttsec: peer " + p.ID + ": Send needs HMAC, Signer or PSK")
		}
		k.peers[p.ID] = p
		eps = append(eps, &p.Peer)
	}
	keys, err := envelope.NewKeys(own.Identities, eps...)
	if err != nil {
		return nil, err
	}
	k.keys = keys
	return k, nil
}

// Peer implements envelope.Keyring.
func (k *Keyring) Peer(id string) *envelope.Peer { return k.keys.Peer(id) }

// Identity implements envelope.Keyring.
func (k *Keyring) Identity(kid string) envelope.Identity { return k.keys.Identity(kid) }

// sendTo returns how to seal for peer id.
func (k *Keyring) sendTo(id string) (*Protection, error) {
	p := k.peers[id]
	if p == nil {
		return nil, ErrUnknownPeer
	}
	return &p.Send, nil
}
