package enroll

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/rand"
	"crypto/subtle"
	"errors"
	"fmt"
	"io"
	"math"
	"sync"
	"time"

	"github.com/mqttsec/mqttsec/envelope"
)

// Defaults of RegistrarConfig.
const (
	// DefaultMaxApprovals is how many approvals a registrar holds at most.
	DefaultMaxApprovals = 1024
	// DefaultRate is how many hellos a second a registrar checks for one
	// id, in the long run (SPEC.md §14.4).
	DefaultRate = 5
	// DefaultBurst is how many hellos for one id a registrar checks at
	// once.
	DefaultBurst = 10
)

// RegistrarConfig configures a Registrar.
type RegistrarConfig struct {
	// ID is the gateway's id.
	ID string
	// Key is the gateway's ES256 key pair (skG, pkG): the key its
	// envelopes are signed with, which the welcome gives the device.
	Key *ecdsa.PrivateKey
	// Templates names the templates an approval may name: the policies a
	// new device may get. At least one; each a valid id (SPEC.md §3.2).
	Templates []string
	// MayApprove reports whether an operator, by its authenticated id,
	// may approve enrollments (SPEC.md §14.3: it is authorized for
	// mqttsec.enroll.approve). Required: the registrar checks it even if
	// the server's authorization did already, at the approval and again
	// when a hello completes it.
	MayApprove func(operatorID string) bool
	// Known reports whether the gateway's keyring already has an id (a
	// peer with any key or shared secret). An approval whose assigned id
	// is known is a re-enrollment (SPEC.md §14.6): it needs MayReenroll,
	// and it replaces the id's keys. Required.
	Known func(id string) bool
	// MayReenroll reports whether an operator may re-enroll the known id,
	// replacing its keys. It is checked at the approval and again when a
	// hello completes it. Nil: no operator may re-enroll any id.
	MayReenroll func(operatorID, id string) bool
	// Revoked reports whether a device key, by its fingerprint F, is
	// revoked: an approval naming it is refused (ErrForbidden), and so is
	// a hello that would complete one. The keys an Add with Replace
	// removes are revoked (SPEC.md §14.6): the caller records their
	// fingerprints (Fingerprint of the 65-byte point) for it to report.
	// Nil: no key is revoked.
	Revoked func(fingerprint [FingerprintSize]byte) bool
	// Add adds a device to the gateway's keyring (and key directory): its
	// key under Enrollment.ID, with the template's policy. When
	// Enrollment.Replace is set, the id was known: Add removes every key
	// the id held (signing keys and shared secrets) in the same change
	// that adds the new one, so that the old device is revoked. It must be
	// idempotent for the same id and key: a device that lost its welcome
	// once its code was no longer current needs a new approval, which adds
	// its key again. The registrar calls it once per completed approval,
	// never for a hello repeated after, and never with a secret. While it
	// runs, other hellos for the same approval wait; others are handled.
	// An error refuses the hello with ErrInternal and leaves the approval
	// pending, so that a later hello calls it again. It must not call the
	// Registrar. Required.
	Add func(Enrollment) error
	// HighestCounter returns the highest counter the gateway has accepted
	// from an id (0 if none), for the welcome's counter floor (SPEC.md
	// §14.5): the floor is one more. It is called once per completed
	// approval; a repeated welcome carries the same floor. An error
	// refuses the hello with ErrInternal; so does 2^64-1, which leaves no
	// floor: such an id cannot be re-enrolled (remove the peer and enroll
	// the device under a new id). It must not call the Registrar.
	// Required.
	HighestCounter func(id string) (uint64, error)
	// Clock returns the current time, for the approvals' expiry and the
	// rate; nil means time.Now. It must not step back (time.Now's
	// monotonic reading does not): the approvals' expiry and the rate
	// go by it.
	Clock func() time.Time
	// MaxApprovals bounds the approvals held, pending or completed, until
	// they expire; an approval for another id beyond it is ErrFull. Zero
	// means DefaultMaxApprovals.
	MaxApprovals int
	// Rate is how many hellos a second, per id, the registrar checks in
	// the long run, and Burst how many at once; hellos beyond are
	// ErrThrottled. Zero means DefaultRate and DefaultBurst.
	Rate  float64
	Burst int
}

// Enrollment is a device that a completed approval adds, as
// RegistrarConfig.Add receives it. It holds no secret.
type Enrollment struct {
	// ID is the id the device is known by: its key goes under it.
	ID string
	// RequestedID is the id the device proposed (its code's and hello's).
	RequestedID string
	// Key is the device's public key, pkD: an ES256 key that verifies its
	// envelopes (envelope.NewECDSAVerifier).
	Key *ecdsa.PublicKey
	// Template is the approval's template.
	Template string
	// Operator is the id of the operator who approved.
	Operator string
	// Replace is true when the id was known (RegistrarConfig.Known) when
	// the approval was completed: a re-enrollment (SPEC.md §14.6). The
	// caller removes every key it held for the id, signing keys and shared
	// secrets, in the same change that adds Key, and records the removed
	// keys' fingerprints as revoked (RegistrarConfig.Revoked): the device
	// that had the id before is revoked. The id's replay window is kept.
	Replace bool
}

// ApprovalRequest is an operator's approval as the gateway received it: the
// request's authenticated sender, its envelope counter, whether it was
// encrypted, and its opened payload (Approval.MarshalBinary).
type ApprovalRequest struct {
	// Operator is the authenticated sender of the request.
	Operator string
	// Counter is the request envelope's counter: of two approvals for one
	// id from one operator, the one with the higher counter wins.
	Counter uint64
	// Encrypted is whether the request carried enc.
	Encrypted bool
	// Payload is the request's opened payload.
	Payload []byte
}

// ReplyKind says what HandleHello's reply is.
type ReplyKind int

const (
	// NoReply: the hello was refused.
	NoReply ReplyKind = iota
	// ReplyChallenge: the reply is a challenge (0xE0, SPEC.md §14.4):
	// the hello did not carry the approval's nonceG.
	ReplyChallenge
	// ReplyWelcome: the reply is a welcome (0xE2, SPEC.md §14.5).
	ReplyWelcome
)

// String returns "none", "challenge" or "welcome".
func (k ReplyKind) String() string {
	switch k {
	case ReplyChallenge:
		return "challenge"
	case ReplyWelcome:
		return "welcome"
	}
	return "none"
}

// Registrar is the gateway's side of an enrollment (SPEC.md §14): it keeps
// the operators' approvals in memory until they expire, checks hellos
// against them and makes the welcomes. It is transport-agnostic: the
// caller opens the approval envelope and says whether it was encrypted,
// hands it hellos as they arrive and publishes the welcomes. A Registrar is
// safe for concurrent use.
//
// An approval holds its PoP until it expires, also once completed: a device
// that lost its welcome sends a new hello, with a new nonce, whose tags only
// the PoP checks and whose welcome only the PoP can tag. That recovers the
// welcome only while the device's code is still current (up to 2N): after,
// its hellos are tagged under later PoPs, and it needs a new approval (for
// which Add adds the same key again). The PoP is held nowhere else, is
// cleared when the approval expires or is replaced, and never reaches Add,
// an error or a String.
//
// Each approval holds a nonceG, drawn when it is taken: a hello that does
// not carry it is answered with a challenge (SPEC.md §14.4), so that a
// hello recorded under an earlier approval completes no later one.
type Registrar struct {
	id             string
	signer         envelope.Signer
	pkG            []byte
	templates      map[string]bool
	mayApprove     func(string) bool
	known          func(string) bool
	mayReenroll    func(string, string) bool
	revoked        func([FingerprintSize]byte) bool
	add            func(Enrollment) error
	highestCounter func(string) (uint64, error)
	clock          func() time.Time
	maxApprovals   int
	rate           float64
	burst          int

	mu        sync.Mutex
	approvals map[string]*approval
	stats     Stats // ByID, Approvals and Completed are filled in by Stats
}

// approval is an approval held, pending or completed.
type approval struct {
	fp        [FingerprintSize]byte
	pop       PoP
	nonceG    [NonceSize]byte
	template  string
	assign    string
	operator  string
	counter   uint64
	expires   time.Time
	completed bool
	floor     uint64 // the counter floor of its welcomes, once completed
	bucket    bucket
	refused   Refusals // checks 4 to 7

	// completing is held while a hello that passed is finished: hellos
	// for this approval wait, others do not.
	completing sync.Mutex
}

// NewRegistrar returns a Registrar holding no approval. Its errors wrap
// ErrInvalidConfig.
func NewRegistrar(cfg RegistrarConfig) (*Registrar, error) {
	if err := checkConfig(cfg); err != nil {
		return nil, fmt.Errorf("%w: %s", ErrInvalidConfig, err)
	}
	signer, err := envelope.NewECDSASigner(cfg.Key)
	if err != nil {
		return nil, fmt.Errorf("%w: gateway key is not an ECDSA P-256 key", ErrInvalidConfig)
	}
	pkG, err := cfg.Key.PublicKey.Bytes()
	if err != nil {
		return nil, fmt.Errorf("%w: gateway key is not an ECDSA P-256 key", ErrInvalidConfig)
	}
	templates := make(map[string]bool, len(cfg.Templates))
	for _, t := range cfg.Templates {
		templates[t] = true
	}
	r := &Registrar{
		id: cfg.ID, signer: signer, pkG: pkG, templates: templates,
		mayApprove: cfg.MayApprove, known: cfg.Known, mayReenroll: cfg.MayReenroll, revoked: cfg.Revoked,
		add: cfg.Add, highestCounter: cfg.HighestCounter,
		clock: cfg.Clock, maxApprovals: cfg.MaxApprovals, rate: cfg.Rate, burst: cfg.Burst,
		approvals: map[string]*approval{},
	}
	r.setDefaults()
	return r, nil
}

// checkConfig says what is wrong with cfg, if anything, in a few words.
func checkConfig(cfg RegistrarConfig) error {
	bad := errors.New
	if !envelope.ValidID(cfg.ID) {
		return bad("gateway id is not valid")
	}
	if cfg.Key == nil {
		return bad("no gateway key")
	}
	if len(cfg.Templates) == 0 {
		return bad("no template")
	}
	for _, t := range cfg.Templates {
		if !validTemplate(t) {
			return bad("a template name is not valid")
		}
	}
	switch {
	case cfg.MayApprove == nil:
		return bad("no MayApprove")
	case cfg.Known == nil:
		return bad("no Known")
	case cfg.Add == nil:
		return bad("no Add")
	case cfg.HighestCounter == nil:
		return bad("no HighestCounter")
	case cfg.MaxApprovals < 0:
		return bad("negative MaxApprovals")
	case cfg.Rate < 0 || math.IsNaN(cfg.Rate) || math.IsInf(cfg.Rate, 0):
		return bad("the Rate is not a positive number")
	case cfg.Burst < 0:
		return bad("negative Burst")
	}
	return nil
}

// setDefaults fills in what the configuration left zero.
func (r *Registrar) setDefaults() {
	if r.clock == nil {
		r.clock = time.Now
	}
	if r.maxApprovals == 0 {
		r.maxApprovals = DefaultMaxApprovals
	}
	if r.rate == 0 {
		r.rate = DefaultRate
	}
	if r.burst == 0 {
		r.burst = DefaultBurst
	}
	if r.mayReenroll == nil {
		r.mayReenroll = func(string, string) bool { return false }
	}
	if r.revoked == nil {
		r.revoked = func([FingerprintSize]byte) bool { return false }
	}
}

// ID returns the gateway's id.
func (r *Registrar) ID() string { return r.id }

// PublicKey returns pkG, the 65-byte uncompressed point.
func (r *Registrar) PublicKey() []byte { return append([]byte(nil), r.pkG...) }

// Approve takes an operator's approval (SPEC.md §14.3). It refuses, in
// this order: an approval that was not encrypted, or from an operator
// MayApprove refuses (ErrForbidden); a payload that is not an approval, that
// names an id or template that is not valid or an unknown template, or that
// names the gateway's own id as the device's or as the one to assign
// (ErrBadRequest); one that assigns the operator's own id, names a revoked
// key (RegistrarConfig.Revoked), or assigns a known id (a re-enrollment)
// that MayReenroll does not allow the operator (ErrForbidden); one for an
// id whose approval held is from the same operator with a counter as high
// or higher, that is stale (ErrBadRequest); and one for an id without an
// approval held when the registrar holds MaxApprovals (ErrFull).
//
// An approval replaces any the id had, pending or completed, with a new
// nonceG: a hello made for the earlier one gets a challenge.
func (r *Registrar) Approve(req ApprovalRequest) error {
	ap, err := r.checkApproval(req)
	if err != nil {
		r.countApproval(Class(err))
		return err
	}
	defer clear(ap.PoP[:])
	return r.hold(ap, req)
}

// checkApproval runs the checks of an approval that need no approval
// held: encryption and the operator's permission, the payload, and the
// ids and key it names.
func (r *Registrar) checkApproval(req ApprovalRequest) (*Approval, error) {
	if !req.Encrypted {
		return nil, errorf(ErrForbidden, "approval not encrypted")
	}
	if !envelope.ValidID(req.Operator) || !r.mayApprove(req.Operator) {
		return nil, errorf(ErrForbidden, "operator may not approve enrollments")
	}
	ap, err := ParseApproval(req.Payload)
	if err != nil {
		return nil, err
	}
	if err := r.checkNames(ap, req.Operator); err != nil {
		clear(ap.PoP[:])
		return nil, err
	}
	return ap, nil
}

// checkNames checks what an approval names against the registrar: a
// template it has, ids other than its own and the operator's, a key not
// revoked, and the permission to re-enroll a known id.
func (r *Registrar) checkNames(ap *Approval, operatorID string) error {
	assign := ap.AssignedID()
	switch {
	case !r.templates[ap.Template]:
		return errorf(ErrBadRequest, "approval's template is unknown")
	case ap.ID == r.id || assign == r.id:
		return errorf(ErrBadRequest, "approval names the gateway's own id")
	case assign == operatorID:
		return errorf(ErrForbidden, "approval assigns the operator's own id")
	case r.revoked(ap.Fingerprint):
		return errorf(ErrForbidden, "approval names a revoked key")
	case r.known(assign) && !r.mayReenroll(operatorID, assign):
		return errorf(ErrForbidden, "operator may not re-enroll the assigned id")
	}
	return nil
}

// hold keeps a checked approval, with a new nonceG, in place of the one
// its id had; it refuses one older than that from the same operator
// (ErrBadRequest), and a new id when MaxApprovals are held (ErrFull).
func (r *Registrar) hold(ap *Approval, req ApprovalRequest) error {
	ttl := ap.TTL
	if ttl == 0 {
		ttl = DefaultTTL
	}
	a := &approval{
		fp: ap.Fingerprint, pop: ap.PoP, template: ap.Template, assign: ap.AssignedID(),
		operator: req.Operator, counter: req.Counter,
	}
	drawNonceG(&a.nonceG)
	now := r.clock()
	a.expires = now.Add(ttl)
	r.mu.Lock()
	defer r.mu.Unlock()
	old := r.lookup([]byte(ap.ID), now)
	if old != nil && old.operator == req.Operator && req.Counter <= old.counter {
		clear(a.pop[:])
		r.stats.ApprovalsRefused.BadRequest++
		return errorf(ErrBadRequest, "approval is stale: the one held from the operator has a counter as high")
	}
	if old == nil && len(r.approvals) >= r.maxApprovals {
		r.sweep(now)
		if len(r.approvals) >= r.maxApprovals {
			clear(a.pop[:])
			r.stats.ApprovalsRefused.Full++
			return errorf(ErrFull, "too many approvals held")
		}
	}
	if old != nil {
		// The id's rate and counts go on; the old PoP goes.
		a.bucket, a.refused = old.bucket, old.refused
		clear(old.pop[:])
	}
	r.approvals[ap.ID] = a
	r.stats.Approved++
	return nil
}

// drawNonceG draws a nonceG that is not all zero (which a hello uses to
// say it has none yet).
func drawNonceG(n *[NonceSize]byte) {
	for *n == ([NonceSize]byte{}) {
		rand.Read(n[:])
	}
}

// countApproval counts an approval refused with class.
func (r *Registrar) countApproval(class error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	switch class {
	case ErrForbidden:
		r.stats.ApprovalsRefused.Forbidden++
	case ErrBadRequest:
		r.stats.ApprovalsRefused.BadRequest++
	}
}

// HandleHello checks a hello (SPEC.md §14.4) and returns the reply to
// publish to the device (to <prefix>/<id>/enroll, id the hello's): a
// challenge (ReplyChallenge) or a welcome (ReplyWelcome, §14.5). It
// refuses, in this order, stopping at the first failure: a hello that is
// not well formed (ErrMalformed), one to another gateway (ErrContext), one
// for an id without an approval held that has not expired (ErrNoApproval),
// one beyond the id's rate (ErrThrottled); then a hello whose nonceG is not
// the approval's gets a challenge carrying it, and no error; then it
// refuses one whose key is not the approval's (ErrFingerprint), one with
// neither tag right under the approval's PoP (ErrPoP), and one whose
// signature does not verify (ErrSignature). A refused or challenged hello
// changes no approval; refusals 4 to 7 are counted per id (Stats).
//
// The first hello that passes completes the approval: the registrar checks
// again that MayApprove (and, for a known id, MayReenroll) allows the
// operator and that the key is not revoked (ErrForbidden: the approval is
// dropped, nothing is added), asks HighestCounter for the floor and calls
// Add. A hello that passes a completed approval (the device lost its
// welcome, or the broker replays a hello) gets a welcome again with the
// same floor, and calls nothing. An error from Add or HighestCounter, or a
// highest counter of 2^64-1, is ErrInternal and leaves the approval as it
// was.
func (r *Registrar) HandleHello(b []byte) ([]byte, ReplyKind, error) {
	h, err := parseHello(b)
	if err != nil {
		r.bump(&r.stats.Refused.Malformed)
		return nil, NoReply, err
	}
	if string(h.gateway) != r.id {
		r.bump(&r.stats.Refused.Context)
		return nil, NoReply, errorf(ErrContext, "hello to another gateway")
	}
	now := r.clock()
	r.mu.Lock()
	a := r.lookup(h.id, now)
	if a == nil {
		r.stats.Refused.NoApproval++
		r.mu.Unlock()
		return nil, NoReply, errorf(ErrNoApproval, "no approval for the hello's id")
	}
	if !a.bucket.take(now, r.rate, r.burst) {
		a.refused.Throttled++
		r.stats.Refused.Throttled++
		r.mu.Unlock()
		return nil, NoReply, errorf(ErrThrottled, "too many hellos for the id")
	}
	if !bytes.Equal(h.nonceG, a.nonceG[:]) {
		// nonceG is public: no constant-time compare.
		r.stats.Challenged++
		c := challengeBytes(r.id, string(h.id), a.nonceG[:])
		r.mu.Unlock()
		return c, ReplyChallenge, nil
	}
	if fp := Fingerprint(h.pkD); subtle.ConstantTimeCompare(fp[:], a.fp[:]) != 1 {
		a.refused.Fingerprint++
		r.stats.Refused.Fingerprint++
		r.mu.Unlock()
		return nil, NoReply, errorf(ErrFingerprint, "hello's key is not the approved one")
	}
	t := digest(helloLabel, h.body)
	want := popTag(&a.pop, helloPoPLabel, t[:])
	if !tagMatches(want[:], h.tagW, h.tagPrior) {
		a.refused.PoP++
		r.stats.Refused.PoP++
		r.mu.Unlock()
		return nil, NoReply, errorf(ErrPoP, "neither of the hello's tags is right under the approval's PoP")
	}
	// The welcome's tag needs the PoP after the approval may have been
	// replaced (which clears it): this copy lives until the call returns.
	pop := a.pop
	defer clear(pop[:])
	r.mu.Unlock()

	pkD, ok := verify(h.pkD, helloSigLabel, t[:], h.sig)
	if !ok {
		r.mu.Lock()
		a.refused.Signature++
		r.stats.Refused.Signature++
		r.mu.Unlock()
		return nil, NoReply, errorf(ErrSignature, "hello's signature does not verify")
	}
	body, err := r.complete(a, h, t[:], pkD)
	if err != nil {
		return nil, NoReply, err
	}
	t2 := digest(welcomeLabel, body)
	tag := popTag(&pop, welcomePoPLabel, t2[:])
	sig, err := sign(r.signer, welcomeSigLabel, t2[:])
	if err != nil {
		r.bump(&r.stats.Internal)
		return nil, NoReply, &causeError{ErrInternal, "signing the welcome (the device was added)", err}
	}
	return append(append(body, tag[:]...), sig...), ReplyWelcome, nil
}

// complete finishes a hello that passed every check: unless the approval
// was completed before, it checks the operator's permissions and the key
// again, takes the floor and adds the device; it returns the welcome's
// body. It holds the approval's lock, never r.mu, while it calls out.
func (r *Registrar) complete(a *approval, h *hello, t []byte, pkD *ecdsa.PublicKey) ([]byte, error) {
	a.completing.Lock()
	defer a.completing.Unlock()
	now := r.clock()
	r.mu.Lock()
	if r.approvals[string(h.id)] != a || !now.Before(a.expires) {
		// Replaced or expired while the signature was checked.
		r.stats.Refused.NoApproval++
		r.mu.Unlock()
		return nil, errorf(ErrNoApproval, "no approval for the hello's id")
	}
	if a.completed {
		// A repeat: the same floor, nothing called.
		floor := a.floor
		r.stats.Welcomes++
		r.mu.Unlock()
		return welcomeBody(r.id, a.assign, t, h.nonce, r.pkG, floor), nil
	}
	e := Enrollment{ID: a.assign, RequestedID: string(h.id), Key: pkD, Template: a.template, Operator: a.operator}
	fp := a.fp
	r.mu.Unlock()

	e.Replace = r.known(e.ID)
	if !r.mayApprove(e.Operator) || (e.Replace && !r.mayReenroll(e.Operator, e.ID)) || r.revoked(fp) {
		r.mu.Lock()
		if r.approvals[string(h.id)] == a {
			r.drop(string(h.id), a)
		}
		r.stats.Refused.Forbidden++
		r.mu.Unlock()
		return nil, errorf(ErrForbidden, "the approval is no longer allowed")
	}
	highest, err := r.highestCounter(e.ID)
	if err != nil {
		r.bump(&r.stats.Internal)
		return nil, &causeError{ErrInternal, "asking the highest counter accepted", err}
	}
	if highest == math.MaxUint64 {
		r.bump(&r.stats.Internal)
		return nil, errorf(ErrInternal, "the assigned id's counter is exhausted")
	}
	floor := highest + 1
	if err := r.add(e); err != nil {
		r.bump(&r.stats.Internal)
		return nil, &causeError{ErrInternal, "adding the device", err}
	}
	r.mu.Lock()
	a.completed = true
	a.floor = floor
	r.stats.Enrolled++
	r.stats.Welcomes++
	r.mu.Unlock()
	return welcomeBody(r.id, e.ID, t, h.nonce, r.pkG, floor), nil
}

// bump adds one to c, a count of r.stats.
func (r *Registrar) bump(c *uint64) {
	r.mu.Lock()
	*c++
	r.mu.Unlock()
}

// lookup returns the approval held for id, or nil; an expired one is
// dropped. r.mu is held.
func (r *Registrar) lookup(id []byte, now time.Time) *approval {
	a := r.approvals[string(id)]
	if a != nil && !now.Before(a.expires) {
		r.drop(string(id), a)
		return nil
	}
	return a
}

// drop forgets an approval and clears its PoP. r.mu is held.
func (r *Registrar) drop(id string, a *approval) {
	clear(a.pop[:])
	delete(r.approvals, id)
}

// sweep drops every expired approval. r.mu is held.
func (r *Registrar) sweep(now time.Time) {
	for id, a := range r.approvals {
		if !now.Before(a.expires) {
			r.drop(id, a)
		}
	}
}

// Refusals counts refused hellos by class. Forbidden counts hellos that
// passed every check but whose approval was no longer allowed when they
// would complete it.
type Refusals struct {
	Malformed, Context, NoApproval, Throttled, Fingerprint, PoP, Signature, Forbidden uint64
}

// ApprovalRefusals counts refused approvals by class.
type ApprovalRefusals struct {
	Forbidden, BadRequest, Full uint64
}

// Stats is what a Registrar counted, for metrics. Counts are since the
// registrar was made, except ByID's.
type Stats struct {
	// Approvals is how many approvals are held now (not expired), pending
	// or completed, and Completed how many of them are completed.
	Approvals, Completed int
	// Approved counts the approvals taken (replacements too), and
	// ApprovalsRefused those refused.
	Approved         uint64
	ApprovalsRefused ApprovalRefusals
	// Enrolled counts the devices added (calls of Add that succeeded), and
	// Welcomes the welcomes made, repeats included.
	Enrolled, Welcomes uint64
	// Challenged counts the hellos answered with a challenge: their nonceG
	// was not the approval's.
	Challenged uint64
	// Internal counts hellos that passed every check but could not be
	// finished (ErrInternal).
	Internal uint64
	// Refused counts the hellos refused, by class. A hello for an id
	// without an approval is counted only here.
	Refused Refusals
	// ByID counts, per id with an approval held, the hellos refused at
	// checks 4 to 7 (throttled, fingerprint, pop, signature): what a
	// deployment watches for guessing. An id's counts go with its last
	// approval.
	ByID map[string]Refusals
}

// Stats returns the registrar's counts, dropping expired approvals first.
func (r *Registrar) Stats() Stats {
	now := r.clock()
	r.mu.Lock()
	defer r.mu.Unlock()
	r.sweep(now)
	s := r.stats
	s.Approvals = len(r.approvals)
	s.ByID = make(map[string]Refusals, len(r.approvals))
	for id, a := range r.approvals {
		if a.completed {
			s.Completed++
		}
		s.ByID[id] = a.refused
	}
	return s
}

// String describes the registrar by its gateway's id; it never shows an
// approval.
func (r *Registrar) String() string { return "enroll.Registrar(" + r.id + ")" }

// GoString is String, for %#v.
func (r *Registrar) GoString() string { return r.String() }

// Format writes String whatever the verb, so that no verb prints the
// registrar's fields.
func (r *Registrar) Format(f fmt.State, _ rune) { io.WriteString(f, r.String()) }

// bucket is a token bucket: the rate of hellos for one id.
type bucket struct {
	tokens  float64
	last    time.Time
	started bool
}

// take takes a token at now if there is one, refilling at rate a second up
// to burst. A clock that goes back refills nothing.
func (b *bucket) take(now time.Time, rate float64, burst int) bool {
	if !b.started {
		b.tokens, b.last, b.started = float64(burst), now, true
	} else if d := now.Sub(b.last); d > 0 {
		b.tokens = min(float64(burst), b.tokens+d.Seconds()*rate)
		b.last = now
	}
	if b.tokens < 1 {
		return false
	}
	b.tokens--
	return true
}
