package enroll

import (
	"errors"
	"strings"
)

// Error is the type of this package's error classes. Every error that
// ParseCode, ParseApproval, Registrar.Approve, Registrar.HandleHello,
// Device.AcceptChallenge and Device.AcceptWelcome return wraps exactly one
// of the values below, so
// callers branch with errors.Is and count and log the class (see [Class]).
// The text after the class is a short fixed reason: it never quotes the
// input, and never holds a PoP, a tag or a key.
type Error string

// Error returns the class's text: "enroll: " and its name.
func (e Error) Error() string { return string(e) }

// Name returns the class's name as SPEC.md §14.7 writes it ("malformed",
// "no-approval", "bad-request", ...): for metrics, logs and the error codes
// of an approval's reply.
func (e Error) Name() string { return strings.TrimPrefix(string(e), "enroll: ") }

// The classes of a refused hello (SPEC.md §14.4, checked in this order, a
// hello without the approval's nonceG getting a challenge after
// ErrThrottled; ErrForbidden when the approval is no longer allowed at
// completion), of a refused challenge (ErrMalformed, ErrContext) and of a
// refused welcome (§14.5: ErrMalformed, ErrContext, ErrPoP, ErrSignature).
const (
	// ErrMalformed: not a challenge, hello, welcome or code of this format: too
	// long, cut short, trailing bytes, the wrong first byte, an id that is
	// not valid (SPEC.md §3.2), a public key that does not begin 0x04.
	ErrMalformed Error = "enroll: malformed"
	// ErrContext: the hello names another gateway; the challenge or
	// welcome answers no hello the device is waiting for (another gateway
	// or device, T or nonce).
	ErrContext Error = "enroll: context"
	// ErrNoApproval: no approval, pending or completed and not expired,
	// for the hello's id.
	ErrNoApproval Error = "enroll: no-approval"
	// ErrThrottled: more hellos for the id than the registrar's rate
	// allows; refused before any hash or HMAC.
	ErrThrottled Error = "enroll: throttled"
	// ErrFingerprint: the hello's public key is not the one the approval's
	// fingerprint names.
	ErrFingerprint Error = "enroll: fingerprint"
	// ErrPoP: no tag is right under the PoP: the approval was made from a
	// code that is no longer current (or another device's), or the message
	// was changed by someone who does not know the PoP.
	ErrPoP Error = "enroll: pop"
	// ErrSignature: the signature does not verify under the key the
	// message carries (or that key is no point of P-256).
	ErrSignature Error = "enroll: signature"
)

// The classes of a refused approval (SPEC.md §14.3, §14.7), which a gateway
// answers with the error code of the same name (Error.Name).
const (
	// ErrForbidden: the approval was not encrypted, the operator may not
	// approve enrollments, it assigns the operator's own id, it names a
	// revoked key, or it assigns a known id the operator may not
	// re-enroll. Also a hello's, when one of these no longer holds as the
	// hello would complete the approval.
	ErrForbidden Error = "enroll: forbidden"
	// ErrBadRequest: the payload is not an approval of this layout, an id
	// or template is not valid, the template is unknown, it names the
	// gateway's own id, or it is stale (the approval held for the id is
	// from the same operator with a counter as high).
	ErrBadRequest Error = "enroll: bad-request"
	// ErrFull: the registrar already holds its maximum of approvals
	// (RegistrarConfig.MaxApprovals) that have not expired (SPEC.md
	// §14.7: "full").
	ErrFull Error = "enroll: full"
)

// ErrInternal is wrapped by HandleHello's error when a hello passed every
// check but the registrar could not finish: RegistrarConfig.Add or
// HighestCounter failed (their error is wrapped too), the counter of the
// assigned id is exhausted, or signing failed (SPEC.md §14.7: "internal").
// Nothing was enrolled, except where the error says the device was added.
// It says nothing about the hello.
const ErrInternal Error = "enroll: internal"

// ErrInvalidConfig is wrapped by the errors of this package's constructors
// and of the methods given arguments they cannot work with (an id that is
// not valid, a key that is not P-256). No peer's message causes it.
const ErrInvalidConfig Error = "enroll: invalid configuration"

var classes = []Error{
	ErrMalformed, ErrContext, ErrNoApproval, ErrThrottled, ErrFingerprint, ErrPoP, ErrSignature,
	ErrForbidden, ErrBadRequest, ErrFull, ErrInternal,
}

// Class returns the class of err (one of the Err values above other than
// ErrInvalidConfig), or nil if err is nil or wraps none of them.
func Class(err error) error {
	if err == nil {
		return nil
	}
	for _, c := range classes {
		if errors.Is(err, c) {
			return c
		}
	}
	return nil
}

// reasonError is a class with a short, fixed, non-secret reason.
type reasonError struct {
	class  Error
	reason string
}

func (e *reasonError) Error() string { return string(e.class) + ": " + e.reason }
func (e *reasonError) Unwrap() error { return e.class }

func errorf(class Error, reason string) error { return &reasonError{class, reason} }

// causeError is a class with a reason and the error that caused it (a
// callback's).
type causeError struct {
	class  Error
	reason string
	err    error
}

func (e *causeError) Error() string {
	return string(e.class) + ": " + e.reason + ": " + e.err.Error()
}
func (e *causeError) Unwrap() []error { return []error{e.class, e.err} }
