package envelope

import (
	"fmt"
	"time"
)

// Defaults for a zero Policy.
const (
	DefaultMaxClockSkew = 30 * time.Second
	DefaultMaxLifetime  = 5 * time.Minute
)

// Policy is what a receiver demands of one peer's messages. The zero Policy
// is usable: it requires sender authentication (always required, see below)
// and applies the default clock skew and lifetime.
//
// Independently of any Policy, Open refuses a message that carries no sender
// authentication (an HMAC, a signature or a pre-shared AEAD key): HOTP codes
// and HPKE/RSA-wrapped encryption do not prove who sent a message.
type Policy struct {
	// Require lists protections every message from the peer must carry,
	// for example HMAC|Signature. A message lacking one is refused with
	// ErrPolicy, so stripping a protection never downgrades a message.
	Require Protection

	// RequirePairwiseEncryption demands encryption under a pre-shared AEAD
	// key: a message in the clear or under a wrapped content key is
	// refused with ErrPolicy.
	RequirePairwiseEncryption bool

	// MaxClockSkew is the tolerance on "iat" and "exp" (default 30 s).
	MaxClockSkew time.Duration

	// MaxLifetime bounds exp - iat (default 5 min). It bounds how long a
	// captured message stays replayable to a receiver that lost its replay
	// state.
	MaxLifetime time.Duration

	// Clockless marks a peer without a real-time clock (SPEC.md §10): its
	// time requests (method TimeMethod) are accepted whatever their
	// timestamps, within MaxLifetime, so that it can learn the time from
	// the reply. Its other messages are checked as everyone's.
	Clockless bool
}

// TimeMethod is the method of the time request a device without a
// real-time clock sends to learn the time (SPEC.md §10): its reply's issue
// time is the responder's clock.
const TimeMethod = "mqttsec.time"

// ClockSkew is the tolerance on the peer's clock that the policy applies:
// MaxClockSkew, or DefaultMaxClockSkew when it is zero.
func (p *Policy) ClockSkew() time.Duration {
	if p.MaxClockSkew > 0 {
		return p.MaxClockSkew
	}
	return DefaultMaxClockSkew
}

func (p *Policy) lifetime() time.Duration {
	if p.MaxLifetime > 0 {
		return p.MaxLifetime
	}
	return DefaultMaxLifetime
}

// check applies the policy's protection rules (SPEC.md §9 step 5).
func (p *Policy) check(h *header) error {
	if h.prot&(HMAC|Signature) == 0 && !h.preShared() {
		return errorf(ErrPolicy, "no sender authentication")
	}
	if missing := p.Require &^ h.prot; missing != 0 {
		return errorf(ErrPolicy, "missing required protection "+missing.String())
	}
	if p.RequirePairwiseEncryption && !h.preShared() {
		return errorf(ErrPolicy, "pre-shared key encryption required")
	}
	return nil
}

// timeRequest reports whether h is a time request the policy accepts
// whatever its timestamps: a clockless peer's request for TimeMethod.
func (p *Policy) timeRequest(h *header) bool {
	return p.Clockless && h.kind == Request && h.topic == TimeMethod
}

// freshness applies the freshness rules (SPEC.md §7.4, §9 step 6, §10) as
// of now, and returns what the replay store is told of the message. A
// clockless receiver judges only replies, which their binding proves
// fresh, by their lifetime.
func (p *Policy) freshness(h *header, now time.Time, clockless bool) (Seen, error) {
	skew := p.ClockSkew()
	lifetime := h.expiresAt().Sub(h.issuedAt())
	seen := Seen{Sender: h.from, Counter: h.ctr, IssuedAt: h.issuedAt(), ExpiresAt: h.expiresAt().Add(skew), Skew: skew}
	switch {
	case lifetime > p.lifetime():
		return Seen{}, errorf(ErrExpired, "lifetime longer than policy allows")
	case clockless:
		if h.kind != Reply && h.kind != ErrorReply {
			return Seen{}, errorf(ErrExpired, "no clock to judge freshness by")
		}
		return seen, nil
	case p.timeRequest(h):
		// Recorded as issued now, so that a loss of replay state (SPEC.md
		// §7.3) does not refuse the time requests that follow it.
		seen.IssuedAt, seen.ExpiresAt = now, now.Add(lifetime+skew)
		return seen, nil
	case h.issuedAt().After(now.Add(skew)):
		return Seen{}, errorf(ErrExpired, "not yet valid")
	case !now.Before(h.expiresAt().Add(skew)):
		return Seen{}, errorf(ErrExpired, "expired")
	}
	return seen, nil
}

// Peer holds what a receiver knows of one sender: its policy and keys. A peer
// may have several keys of a kind (during rotation); the key id in the
// header selects one.
type Peer struct {
	ID        string
	Policy    Policy
	HMACKeys  []*HMACKey
	HOTPKeys  []*HOTPKey
	AEADKeys  []*AEADKey
	Verifiers []Verifier
}

func (p *Peer) hmacKey(kid KeyID) *HMACKey {
	for _, k := range p.HMACKeys {
		if k.id == kid {
			return k
		}
	}
	return nil
}

func (p *Peer) hotpKey(kid KeyID) *HOTPKey {
	for _, k := range p.HOTPKeys {
		if k.id == kid {
			return k
		}
	}
	return nil
}

func (p *Peer) aeadKey(kid KeyID) *AEADKey {
	for _, k := range p.AEADKeys {
		if k.id == kid {
			return k
		}
	}
	return nil
}

func (p *Peer) verifier(alg Algorithm, kid KeyID) Verifier {
	for _, v := range p.Verifiers {
		if v.KeyID() == kid && v.Algorithm() == alg {
			return v
		}
	}
	return nil
}

// Keyring is where Open finds peers and the receiver's own decryption keys.
// Implementations must be safe for concurrent use; one that reloads keys
// returns a consistent snapshot per call.
type Keyring interface {
	// Peer returns the peer with this id, or nil if it is unknown.
	Peer(id string) *Peer
	// Identity returns the receiver's own decryption key with this key id,
	// or nil.
	Identity(kid KeyID) Identity
}

// Keys is a fixed, in-memory Keyring indexed by peer id and key id.
type Keys struct {
	peers      map[string]*Peer
	identities map[KeyID]Identity
}

var _ Keyring = (*Keys)(nil)

// NewKeys returns a Keyring of the receiver's own identities and its peers.
// Peer ids must be valid and distinct.
func NewKeys(identities []Identity, peers ...*Peer) (*Keys, error) {
	k := &Keys{peers: make(map[string]*Peer, len(peers)), identities: make(map[KeyID]Identity, len(identities))}
	for _, p := range peers {
		if p == nil || !validID(p.ID) {
			return nil, fmt.Errorf("%w: invalid peer id", ErrInvalidConfig)
		}
		if _, dup := k.peers[p.ID]; dup {
			return nil, fmt.Errorf("%w: duplicate peer id %s", ErrInvalidConfig, p.ID)
		}
		k.peers[p.ID] = p
	}
	for _, i := range identities {
		k.identities[i.KeyID()] = i
	}
	return k, nil
}

// Peer implements Keyring.
func (k *Keys) Peer(id string) *Peer { return k.peers[id] }

// Identity implements Keyring.
func (k *Keys) Identity(kid KeyID) Identity { return k.identities[kid] }
