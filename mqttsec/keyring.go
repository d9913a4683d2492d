package mqttsec

import (
	"fmt"
	"sort"
	"sync/atomic"
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

// apply sets the protections.
func (p *Protection) apply(params *envelope.Params) {
	params.HMAC, params.HOTP, params.Signer, params.PSK = p.HMAC, p.HOTP, p.Signer, p.PSK
	params.Recipients = p.Recipients
	params.TTL = p.TTL
}

// Peer is another party: how its messages are checked (the embedded
// envelope.Peer: its id, the policy it must meet and its keys) and how
// messages to it are sealed (Send).
//
// Set Policy.Clockless for a device without a real-time clock: a Server
// then answers its time requests (method envelope.TimeMethod) itself,
// whatever their timestamps, and the device learns the time from the
// reply (see Server).
type Peer struct {
	envelope.Peer
	Send Protection
}

// Keyring holds a party's own keys and its peers. It implements
// envelope.Keyring. Its contents can be replaced as a whole at any time
// ([Keyring.Replace], used for hot reload); every lookup sees one
// consistent set, so it is safe for concurrent use.
type Keyring struct {
	state atomic.Pointer[keyringState]
}

type keyringState struct {
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
	st, err := newKeyringState(own, peers)
	if err != nil {
		return nil, err
	}
	k := &Keyring{}
	k.state.Store(st)
	return k, nil
}

func newKeyringState(own Own, peers []*Peer) (*keyringState, error) {
	st := &keyringState{signer: own.Signer, identities: own.Identities, peers: map[string]*Peer{}}
	var eps []*envelope.Peer
	for _, p := range peers {
		if p == nil {
			return nil, fmt.Errorf("%w: nil peer", ErrInvalidConfig)
		}
		if err := validID(p.ID); err != nil {
			return nil, err
		}
		if _, dup := st.peers[p.ID]; dup {
			return nil, fmt.Errorf("%w: peer %q listed twice", ErrInvalidConfig, p.ID)
		}
		if p.Send.HMAC == nil && p.Send.Signer == nil && p.Send.PSK == nil {
			return nil, fmt.Errorf("%w: peer %q: Send needs HMAC, Signer or PSK", ErrInvalidConfig, p.ID)
		}
		st.peers[p.ID] = p
		eps = append(eps, &p.Peer)
	}
	keys, err := envelope.NewKeys(own.Identities, eps...)
	if err != nil {
		return nil, err
	}
	st.keys = keys
	return st, nil
}

// Replace swaps in the keys and peers of other (a keyring built from
// reloaded files, say). Messages opened or sealed after Replace returns use
// the new keys; those in progress finish with the old ones.
func (k *Keyring) Replace(other *Keyring) {
	k.state.Store(other.state.Load())
}

// Peer implements envelope.Keyring.
func (k *Keyring) Peer(id string) *envelope.Peer { return k.state.Load().keys.Peer(id) }

// Identity implements envelope.Keyring.
func (k *Keyring) Identity(kid envelope.KeyID) envelope.Identity {
	return k.state.Load().keys.Identity(kid)
}

// PeerIDs returns the ids of the peers, sorted.
func (k *Keyring) PeerIDs() []string {
	st := k.state.Load()
	ids := make([]string, 0, len(st.peers))
	for id := range st.peers {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	return ids
}

// signer returns the party's own signer.
func (k *Keyring) signer() envelope.Signer { return k.state.Load().signer }

// sendTo returns how to seal for peer id.
func (k *Keyring) sendTo(id string) (*Protection, error) {
	p := k.state.Load().peers[id]
	if p == nil {
		return nil, ErrUnknownPeer
	}
	return &p.Send, nil
}
