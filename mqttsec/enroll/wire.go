package enroll

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/hmac"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/binary"
	"time"

	"golang.org/x/crypto/cryptobyte"

	"github.com/mqttsec/mqttsec/envelope"
)

// First bytes of the three messages (SPEC.md §14.4, §14.5).
const (
	challengeByte = 0xE0
	helloByte     = 0xE1
	welcomeByte   = 0xE2
)

// MaxMessageSize is the largest challenge, hello or welcome accepted
// (SPEC.md §14.4, §14.5). The longest well-formed hello has 484 bytes, the
// longest welcome 476 and the longest challenge 275, with ids of 128 bytes.
const MaxMessageSize = 512

// --- hello (SPEC.md §14.4) ---

// hello is a hello as read, its fields pointing into the input.
type hello struct {
	body           []byte // 0xE1 || G's id || id || pkD || nonceD || nonceG
	gateway, id    []byte
	pkD            []byte
	nonce          []byte
	nonceG         []byte
	tagW, tagPrior []byte
	sig            []byte
}

// parseHello applies check 1 of SPEC.md §14.4: the size, the layout and
// nothing after sigD, the first byte, the ids, and pkD's first byte.
func parseHello(b []byte) (*hello, error) {
	if len(b) > MaxMessageSize {
		return nil, errorf(ErrMalformed, "hello too long")
	}
	if len(b) == 0 || b[0] != helloByte {
		return nil, errorf(ErrMalformed, "not a hello")
	}
	var h hello
	s := cryptobyte.String(b[1:])
	if !s.ReadUint8LengthPrefixed((*cryptobyte.String)(&h.gateway)) ||
		!s.ReadUint8LengthPrefixed((*cryptobyte.String)(&h.id)) ||
		!s.ReadBytes(&h.pkD, PublicKeySize) ||
		!s.ReadBytes(&h.nonce, NonceSize) ||
		!s.ReadBytes(&h.nonceG, NonceSize) {
		return nil, errorf(ErrMalformed, "hello cut short")
	}
	h.body = b[:len(b)-len(s)]
	if !s.ReadBytes(&h.tagW, tagSize) || !s.ReadBytes(&h.tagPrior, tagSize) || !s.ReadBytes(&h.sig, sigSize) {
		return nil, errorf(ErrMalformed, "hello cut short")
	}
	if !s.Empty() {
		return nil, errorf(ErrMalformed, "bytes after the hello's signature")
	}
	if !validIDBytes(h.gateway) || !validIDBytes(h.id) {
		return nil, errorf(ErrMalformed, "hello's id is not valid")
	}
	if h.pkD[0] != 0x04 {
		return nil, errorf(ErrMalformed, "hello's key is not an uncompressed point")
	}
	return &h, nil
}

// helloBody returns 0xE1 || str8 gateway || str8 id || pkD || nonceD ||
// nonceG.
func helloBody(gateway, id string, pkD, nonce, nonceG []byte) []byte {
	b := make([]byte, 0, 1+1+len(gateway)+1+len(id)+PublicKeySize+2*NonceSize+2*tagSize+sigSize)
	b = append(b, helloByte, byte(len(gateway)))
	b = append(b, gateway...)
	b = append(b, byte(len(id)))
	b = append(b, id...)
	b = append(b, pkD...)
	b = append(b, nonce...)
	return append(b, nonceG...)
}

// --- challenge (SPEC.md §14.4) ---

// challenge is a challenge as read, its fields pointing into the input.
type challenge struct {
	gateway, id []byte
	nonceG      []byte
}

// parseChallenge reads a challenge: the size, the first byte, the layout
// and nothing after nonceG, the ids.
func parseChallenge(b []byte) (*challenge, error) {
	if len(b) > MaxMessageSize {
		return nil, errorf(ErrMalformed, "challenge too long")
	}
	if len(b) == 0 || b[0] != challengeByte {
		return nil, errorf(ErrMalformed, "not a challenge")
	}
	var c challenge
	s := cryptobyte.String(b[1:])
	if !s.ReadUint8LengthPrefixed((*cryptobyte.String)(&c.gateway)) ||
		!s.ReadUint8LengthPrefixed((*cryptobyte.String)(&c.id)) ||
		!s.ReadBytes(&c.nonceG, NonceSize) {
		return nil, errorf(ErrMalformed, "challenge cut short")
	}
	if !s.Empty() {
		return nil, errorf(ErrMalformed, "bytes after the challenge's nonce")
	}
	if !validIDBytes(c.gateway) || !validIDBytes(c.id) {
		return nil, errorf(ErrMalformed, "challenge's id is not valid")
	}
	return &c, nil
}

// challengeBytes returns 0xE0 || str8 gateway || str8 id || nonceG. It
// carries no MAC: nonceG is public, and a forged one only makes the next
// hello fail.
func challengeBytes(gateway, id string, nonceG []byte) []byte {
	b := make([]byte, 0, 1+1+len(gateway)+1+len(id)+NonceSize)
	b = append(b, challengeByte, byte(len(gateway)))
	b = append(b, gateway...)
	b = append(b, byte(len(id)))
	b = append(b, id...)
	return append(b, nonceG...)
}

// --- welcome (SPEC.md §14.5) ---

// welcome is a welcome as read, its fields pointing into the input.
type welcome struct {
	body      []byte // 0xE2 ... ctrFloor
	gateway   []byte
	assigned  []byte
	t         []byte
	nonce     []byte
	pkG       []byte
	floor     uint64
	tag, sigG []byte
}

// parseWelcome applies the first check of SPEC.md §14.5: the size, the
// layout and nothing after sigG, the first byte, the ids (§3.2), pkG's
// first byte and a counter floor of at least 1.
func parseWelcome(b []byte) (*welcome, error) {
	if len(b) > MaxMessageSize {
		return nil, errorf(ErrMalformed, "welcome too long")
	}
	if len(b) == 0 || b[0] != welcomeByte {
		return nil, errorf(ErrMalformed, "not a welcome")
	}
	var w welcome
	s := cryptobyte.String(b[1:])
	if !s.ReadUint8LengthPrefixed((*cryptobyte.String)(&w.gateway)) ||
		!s.ReadUint8LengthPrefixed((*cryptobyte.String)(&w.assigned)) ||
		!s.ReadBytes(&w.t, sha256.Size) ||
		!s.ReadBytes(&w.nonce, NonceSize) ||
		!s.ReadBytes(&w.pkG, PublicKeySize) ||
		!s.ReadUint64(&w.floor) {
		return nil, errorf(ErrMalformed, "welcome cut short")
	}
	w.body = b[:len(b)-len(s)]
	if !s.ReadBytes(&w.tag, tagSize) || !s.ReadBytes(&w.sigG, sigSize) {
		return nil, errorf(ErrMalformed, "welcome cut short")
	}
	if !s.Empty() {
		return nil, errorf(ErrMalformed, "bytes after the welcome's signature")
	}
	if !validIDBytes(w.gateway) || !validIDBytes(w.assigned) {
		return nil, errorf(ErrMalformed, "welcome's id is not valid")
	}
	if w.pkG[0] != 0x04 {
		return nil, errorf(ErrMalformed, "welcome's key is not an uncompressed point")
	}
	if w.floor == 0 {
		return nil, errorf(ErrMalformed, "welcome's counter floor is 0")
	}
	return &w, nil
}

// welcomeBody returns 0xE2 || str8 gateway || str8 assigned || T || nonceD
// || pkG || u64 ctrFloor.
func welcomeBody(gateway, assigned string, t, nonce, pkG []byte, floor uint64) []byte {
	b := make([]byte, 0, 1+1+len(gateway)+1+len(assigned)+sha256.Size+NonceSize+PublicKeySize+8+tagSize+sigSize)
	b = append(b, welcomeByte, byte(len(gateway)))
	b = append(b, gateway...)
	b = append(b, byte(len(assigned)))
	b = append(b, assigned...)
	b = append(b, t...)
	b = append(b, nonce...)
	b = append(b, pkG...)
	return binary.BigEndian.AppendUint64(b, floor)
}

// --- the computations ---

// digest returns SHA-256(label || body): T of a hello, T2 of a welcome.
func digest(label string, body []byte) [sha256.Size]byte {
	h := sha256.New()
	h.Write([]byte(label))
	h.Write(body)
	return [sha256.Size]byte(h.Sum(nil))
}

// popTag returns HMAC-SHA-256(pop, label || t).
func popTag(pop *PoP, label string, t []byte) [tagSize]byte {
	m := hmac.New(sha256.New, pop[:])
	m.Write([]byte(label))
	m.Write(t)
	var sum [tagSize]byte
	m.Sum(sum[:0])
	return sum
}

// tagMatches reports, in constant time, whether x equals a or b: a hello's
// tag under the approval's PoP against its two tags, or a welcome's tag
// against the tags under the hello's two PoPs. Both are compared whatever
// the first gives.
func tagMatches(x, a, b []byte) bool {
	return subtle.ConstantTimeCompare(x, a)|subtle.ConstantTimeCompare(x, b) == 1
}

// sign returns ES256(key, label || t): r || s over SHA-256 of the message
// (SPEC.md §4.5).
func sign(s envelope.Signer, label string, t []byte) ([]byte, error) {
	msg := make([]byte, 0, len(label)+len(t))
	msg = append(append(msg, label...), t...)
	return s.Sign(msg)
}

// verify reports whether sig (r || s) is an ES256 signature of label || t
// under the point pub. A pub that is no point of P-256 verifies nothing.
func verify(pub []byte, label string, t, sig []byte) (*ecdsa.PublicKey, bool) {
	pk, err := ecdsa.ParseUncompressedPublicKey(elliptic.P256(), pub)
	if err != nil {
		return nil, false
	}
	v, err := envelope.NewECDSAVerifier(pk)
	if err != nil {
		return nil, false
	}
	msg := make([]byte, 0, len(label)+len(t))
	msg = append(append(msg, label...), t...)
	if v.Verify(msg, sig) != nil {
		return nil, false
	}
	return pk, true
}

// validIDBytes is envelope.ValidID for bytes (the conversion does not
// allocate).
func validIDBytes(b []byte) bool { return envelope.ValidID(string(b)) }

// --- the approval's payload (SPEC.md §14.3) ---

// TTL bounds of an approval (SPEC.md §14.3).
const (
	// DefaultTTL is how long an approval lasts when it says 0.
	DefaultTTL = 300 * time.Second
	// MinTTL and MaxTTL bound the TTL an approval may name.
	MinTTL = 1 * time.Second
	MaxTTL = 3600 * time.Second
)

const approvalVersion = 0x01

// Approval is the payload of an operator's approval (SPEC.md §14.3), which
// the operator sends the gateway as an encrypted Envelope 1.0 request,
// method mqttsec.enroll.approve. Its PoP never prints (see PoP).
type Approval struct {
	// ID is the id of the code: the id the device proposes and its hello
	// names.
	ID string
	// Fingerprint is F of the code.
	Fingerprint [FingerprintSize]byte
	// PoP is the PoP of the code.
	PoP PoP
	// Template names the policy the device gets (one the registrar knows:
	// RegistrarConfig.Templates).
	Template string
	// Assign is the id the device will have; empty means ID.
	Assign string
	// TTL is how long the approval lasts, in whole seconds from MinTTL to
	// MaxTTL; 0 means DefaultTTL.
	TTL time.Duration
}

// Method is the method of an approval request.
const Method = "mqttsec.enroll.approve"

// FromCode returns the approval of code c with template, the device
// keeping the id it proposes and the approval lasting DefaultTTL.
func FromCode(c Code, template string) *Approval {
	return &Approval{ID: c.ID, Fingerprint: c.Fingerprint, PoP: c.PoP, Template: template}
}

// AssignedID returns the id the device will have: Assign, or ID if Assign
// is empty.
func (a *Approval) AssignedID() string {
	if a.Assign == "" {
		return a.ID
	}
	return a.Assign
}

// check returns what is wrong with a, as ErrBadRequest.
func (a *Approval) check() error {
	switch {
	case !envelope.ValidID(a.ID):
		return errorf(ErrBadRequest, "approval's id is not valid")
	case a.Assign != "" && !envelope.ValidID(a.Assign):
		return errorf(ErrBadRequest, "approval's assigned id is not valid")
	case !validTemplate(a.Template):
		return errorf(ErrBadRequest, "approval's template is not valid")
	case a.TTL != 0 && (a.TTL < MinTTL || a.TTL > MaxTTL || a.TTL%time.Second != 0):
		return errorf(ErrBadRequest, "approval's ttl is not whole seconds from 1 to 3600")
	}
	return nil
}

// validTemplate reports whether name may name a template: a template's name
// is an id (SPEC.md §14.3, §3.2).
func validTemplate(name string) bool { return envelope.ValidID(name) }

// MarshalBinary returns the payload: 0x01 || str8 id || F || PoP || str8
// template || str8 assign || u32 ttl_s. An approval the registrar would
// refuse as bad-request (an id or template that is not valid, a TTL out of
// bounds or not whole seconds) is an error wrapping ErrBadRequest.
func (a *Approval) MarshalBinary() ([]byte, error) {
	if err := a.check(); err != nil {
		return nil, err
	}
	b := make([]byte, 0, 1+1+len(a.ID)+FingerprintSize+PoPSize+1+len(a.Template)+1+len(a.Assign)+4)
	b = append(b, approvalVersion, byte(len(a.ID)))
	b = append(b, a.ID...)
	b = append(b, a.Fingerprint[:]...)
	b = append(b, a.PoP[:]...)
	b = append(b, byte(len(a.Template)))
	b = append(b, a.Template...)
	b = append(b, byte(len(a.Assign)))
	b = append(b, a.Assign...)
	return binary.BigEndian.AppendUint32(b, uint32(a.TTL/time.Second)), nil
}

// ParseApproval reads an approval's payload. Every error wraps
// ErrBadRequest: another first byte, a payload cut short or with bytes
// after ttl_s, an id, assigned id or template that is not valid, a TTL above
// 3600 s. Whether the template is known is for the registrar to say.
func ParseApproval(payload []byte) (*Approval, error) {
	s := cryptobyte.String(payload)
	var version uint8
	if !s.ReadUint8(&version) || version != approvalVersion {
		return nil, errorf(ErrBadRequest, "not an approval of version 1")
	}
	var id, fp, pop, template, assign []byte
	var ttl uint32
	if !s.ReadUint8LengthPrefixed((*cryptobyte.String)(&id)) ||
		!s.ReadBytes(&fp, FingerprintSize) ||
		!s.ReadBytes(&pop, PoPSize) ||
		!s.ReadUint8LengthPrefixed((*cryptobyte.String)(&template)) ||
		!s.ReadUint8LengthPrefixed((*cryptobyte.String)(&assign)) ||
		!s.ReadUint32(&ttl) {
		return nil, errorf(ErrBadRequest, "approval cut short")
	}
	if !s.Empty() {
		return nil, errorf(ErrBadRequest, "bytes after the approval's ttl")
	}
	if ttl > uint32(MaxTTL/time.Second) {
		return nil, errorf(ErrBadRequest, "approval's ttl is not whole seconds from 1 to 3600")
	}
	a := &Approval{
		ID: string(id), Fingerprint: [FingerprintSize]byte(fp), PoP: PoP(pop),
		Template: string(template), Assign: string(assign), TTL: time.Duration(ttl) * time.Second,
	}
	if err := a.check(); err != nil {
		clear(a.PoP[:])
		return nil, err
	}
	return a, nil
}
