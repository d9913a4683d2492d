package envelope

import "errors"

// Error is the type of this package's error classes. Every error that Open
// returns wraps exactly one of the class values below, so callers branch with
// errors.Is and log the class (see [Class]); the wrapped text adds at most a
// short reason that names no key material and no byte position.
type Error string

// Error returns the class's text, "envelope: " and its name.
func (e Error) Error() string { return string(e) }

// The error classes. Seal reports programmer mistakes with ErrInvalidParams.
const (
	// ErrTooLarge: the envelope is longer than the receiver's MaxSize.
	ErrTooLarge Error = "envelope: too large"
	// ErrMalformed: not an envelope of this format: a length that runs
	// past the end, trailing bytes, an unknown code, a header field that
	// breaks its rule (SPEC.md §3), a tag of the wrong size.
	ErrMalformed Error = "envelope: malformed"
	// ErrUnsupportedVersion: the first byte names a later format (0x02
	// to 0x1F), which this package does not speak.
	ErrUnsupportedVersion Error = "envelope: unsupported version"
	// ErrPolicy: the message is weaker than the receiver's policy for the
	// sender requires, or carries no sender authentication at all.
	ErrPolicy Error = "envelope: refused by policy"
	// ErrContext: the message is not meant for this receiver in this
	// context: another recipient, kind, sender, topic, or a reply bound to
	// another request.
	ErrContext Error = "envelope: wrong context"
	// ErrUnknownKey: the sender is unknown, or a key id names no key the
	// receiver holds for that sender.
	ErrUnknownKey Error = "envelope: unknown key"
	// ErrAuthentication: an HMAC, HOTP code or signature did not verify.
	ErrAuthentication Error = "envelope: authentication failed"
	// ErrReplayed: the counter was already accepted from this sender, or is
	// older than the receiver's replay window.
	ErrReplayed Error = "envelope: replayed"
	// ErrReplayStore: the replay store could not answer (an I/O error, a
	// closed store, an unreachable Redis). The message is refused, because
	// a store that cannot answer must not admit, but it was not found to be
	// a replay: the error also wraps the store's own error.
	ErrReplayStore Error = "envelope: replay store unavailable"
	// ErrExpired: the message has expired, is not yet valid, or claims a
	// lifetime longer than the policy allows.
	ErrExpired Error = "envelope: expired or not yet valid"
	// ErrDecryption: the content key could not be unwrapped or the payload
	// did not decrypt and authenticate.
	ErrDecryption Error = "envelope: decryption failed"
	// ErrInvalidParams: Seal was called with parameters that cannot make a
	// valid envelope (a programming error, never caused by a peer).
	ErrInvalidParams Error = "envelope: invalid seal parameters"
)

// ErrInvalidConfig is wrapped by the errors of this package's constructors
// (NewKeys here, and the replay stores of mqttsec/replay) for arguments
// they cannot work with. It is not an error class: no message causes it.
const ErrInvalidConfig Error = "envelope: invalid configuration"

var classes = []Error{
	ErrTooLarge, ErrMalformed, ErrUnsupportedVersion, ErrPolicy, ErrContext,
	ErrUnknownKey, ErrAuthentication, ErrReplayed, ErrReplayStore, ErrExpired, ErrDecryption,
	ErrInvalidParams,
}

// Class returns the class of err (one of the Err values of this package), or
// nil if err is nil or wraps none of them. Use it to count and log
// rejections without their detail.
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

// reason wraps a class with a short, non-secret explanation.
type reasonError struct {
	class  Error
	reason string
}

func (e *reasonError) Error() string { return string(e.class) + ": " + e.reason }
func (e *reasonError) Unwrap() error { return e.class }

func errorf(class Error, reason string) error { return &reasonError{class, reason} }

// storeError is ErrReplayStore with the store's error behind it.
type storeError struct{ err error }

func (e *storeError) Error() string   { return string(ErrReplayStore) + ": " + e.err.Error() }
func (e *storeError) Unwrap() []error { return []error{ErrReplayStore, e.err} }
