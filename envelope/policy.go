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
// is usable: it requires sender authentication (always required, see below),
// allows Ed25519, ES256 and PS256 signatures, and applies the default clock
// skew and lifetime.
//
// Independently of any Policy, Open refuses a message that carries no sender
// authentication (an HMAC, a signature or a pre-shared AEAD key): HOTP codes
// and HPKE/RSA-wrapped encryption do not prove who sent a message.
type Policy struct {
	// Require lists protections every message from the peer must carry,
	// for example HMAC|Signature. A message lacking one is refused with
	// ErrPolicy, so stripping a protection never downgrades a message.
	Require Protection

	// RequirePairwiseEncryption, with Require including Encryption, demands
	// a pre-shared AEAD key rather than a wrapped content key.
	RequirePairwiseEncryption bool

	// AllowLegacyRSAPKCS1v15 accepts RS256 (RSASSA-PKCS1-v1_5) signatures
	// from the peer. Leave it off unless the peer cannot sign with PSS.
	AllowLegacyRSAPKCS1v15 bool

	// MaxClockSkew is the tolerance on "iat" and "exp" (default 30 s).
	MaxClockSkew time.Duration

	// MaxLifetime bounds exp - iat (default 5 min). It bounds how long a
	// captured message stays replayable to a receiver that lost its replay
	// state.
	MaxLifetime time.Duration
}

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

// authenticators are the protections that prove the sender.
func authenticated(h *header) bool {
	return h.prot&(HMAC|Signature) != 0 || (h.wire.Enc != nil && h.wire.Enc.Kid != "")
}

// check applies the policy's protection rules to a structurally valid header.
func (p *Policy) check(h *header) error {
	if !authenticated(h) {
		return errorf(ErrPolicy, "no sender authentication")
	}
	if missing := p.Require &^ h.prot; missing != 0 {
		return errorf(ErrPolicy, "missing required protection "+missing.String())
	}
	if p.RequirePairwiseEncryption && (h.wire.Enc == nil || h.wire.Enc.Kid == "") {
		return errorf(ErrPolicy, "pre-shared key encryption required")
	}
	if h.wire.Sig != nil && h.wire.Sig.Alg == RS256 && !p.AllowLegacyRSAPKCS1v15 {
		return errorf(ErrPolicy, "legacy RS256 signature not allowed")
	}
	return nil
}

// checkTime applies the freshness rules (SPEC.md §7.4, §9 step 6).
func (p *Policy) checkTime(h *header, now time.Time) error {
	skew := p.ClockSkew()
	if h.expiresAt.Sub(h.issuedAt) > p.lifetime() {
		return errorf(ErrExpired, "lifetime longer than policy allows")
	}
	if h.issuedAt.After(now.Add(skew)) {
		return errorf(ErrExpired, "not yet valid")
	}
	if !now.Before(h.expiresAt.Add(skew)) {
		return errorf(ErrExpired, "expired")
	}
	return nil
}

// Expect is the context in which a receiver opens a message. Every set field
// must match the authenticated header, or Open fails with ErrContext.
type Expect struct {
	// Kinds accepted, e.g. Request, or Reply|ErrorReply. Zero accepts none.
	Kinds Kind
	// From, if set, is the only accepted sender.
	From string
	// Topic, if set, must equal the header's topic (the method of a
	// request, the topic of an event). Set it from the MQTT topic the
	// message arrived on, so a request re-published to another method is
	// refused.
	Topic string
	// InReplyTo is the digest of the request (Sealed.Digest) a reply or an
	// error must answer. Replies and errors are refused without it.
	InReplyTo []byte
	// CorrelationID, if set, must equal the reply's correlation id.
	CorrelationID []byte
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

func (p *Peer) hmacKey(kid string) *HMACKey {
	for _, k := range p.HMACKeys {
		if k.id == kid {
			return k
		}
	}
	return nil
}

func (p *Peer) hotpKey(kid string) *HOTPKey {
	for _, k := range p.HOTPKeys {
		if k.id == kid {
			return k
		}
	}
	return nil
}

func (p *Peer) aeadKey(kid string) *AEADKey {
	for _, k := range p.AEADKeys {
		if k.id == kid {
			return k
		}
	}
	return nil
}

func (p *Peer) verifier(alg Algorithm, kid string) Verifier {
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
	Identity(kid string) Identity
}

// Keys is a fixed, in-memory Keyring indexed by peer id and key id.
type Keys struct {
	peers      map[string]*Peer
	identities map[string]Identity
}

var _ Keyring = (*Keys)(nil)

// NewKeys returns a Keyring of the receiver's own identities and its peers.
// Peer ids must be valid and distinct.
func NewKeys(identities []Identity, peers ...*Peer) (*Keys, error) {
	k := &Keys{peers: make(map[string]*Peer, len(peers)), identities: make(map[string]Identity, len(identities))}
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
func (k *Keys) Identity(kid string) Identity { return k.identities[kid] }
