package mqttsec

import (
	"encoding/json"
	"errors"
	"fmt"
	"time"
)

// Error codes a server sends in sealed error replies.
const (
	CodeForbidden  = "forbidden"    // the caller may not call this method
	CodeNotFound   = "not-found"    // no handler for the method
	CodeBadRequest = "bad-request"  // the handler refused the request
	CodeBadReplyTo = "bad-reply-to" // the request's reply-to is not allowed for the caller
	CodeInternal   = "internal"     // the handler failed; details stay on the server
	// CodeReplyTooLarge: the handler's reply (or error reply) sealed to
	// more than the server's MaxSize, so it was not sent.
	CodeReplyTooLarge = "reply-too-large"
)

// Error is an error a server returns to its caller in a sealed error reply.
// Handlers return it (or wrap it) to send a code and a message; any other
// handler error reaches the caller as CodeInternal with no detail. On the
// client side, Request returns it when the server answered with an error.
type Error struct {
	Code    string `json:"code"`
	Message string `json:"message,omitempty"`
}

func (e *Error) Error() string {
	if e.Message == "" {
		return "mqttsec: remote error: " + e.Code
	}
	return fmt.Sprintf("mqttsec: remote error: %s: %s", e.Code, e.Message)
}

// Errorf returns an *Error with code and a formatted message.
func Errorf(code, format string, args ...any) *Error {
	return &Error{Code: code, Message: fmt.Sprintf(format, args...)}
}

// Errors of the SDK itself.
var (
	// ErrInvalidConfig is wrapped by every error of a constructor or
	// helper given a configuration it cannot work with (NewClient,
	// NewServer, NewKeyring, NewTransport, ParseBrokerURL, TLSConfig,
	// Topics.MosquittoACL, keydir.Init);
	// the text after it says what is wrong.
	ErrInvalidConfig = errors.New("mqttsec: invalid configuration")
	// ErrNotStarted: the Client or Server was used before Start.
	ErrNotStarted = errors.New("mqttsec: not started")
	// ErrAlreadyStarted: Start was called a second time (on a Client,
	// Server or Transport).
	ErrAlreadyStarted = errors.New("mqttsec: already started")
	// ErrSubscribeRefused: the broker refused a subscription (its ACL, or
	// a filter it does not support): nothing would arrive on it. A broker
	// may instead grant a subscription and drop, as it delivers them, the
	// messages the client may not read, and then nothing reports it:
	// Mosquitto does so with an acl_file; its dynamic security plugin
	// refuses in the SUBACK.
	ErrSubscribeRefused = errors.New("mqttsec: subscription refused by the broker")
	// ErrUnacknowledged: a message was handed to the connection, but the
	// broker's acknowledgement did not come before the deadline (or the
	// connection closed first). It may or may not have been delivered;
	// MQTT's session may still deliver it after a reconnect.
	ErrUnacknowledged = errors.New("mqttsec: publish not acknowledged by the broker in time")
	// ErrClockSkew is wrapped by the *ClockSkewError Request returns when
	// the server's authentic reply is refused as not yet valid or expired:
	// the two clocks disagree by more than the receiver's
	// Policy.MaxClockSkew (SPEC.md §7.4).
	ErrClockSkew = errors.New("mqttsec: clocks too far apart")
	// ErrNoReply is wrapped by the *NoReplyError Request returns when its
	// context ends (deadline or cancel) before a reply came: the server is
	// not running or not subscribed, the broker did not pass the request
	// on, or the handler did not answer in time. The request may or may
	// not have run.
	ErrNoReply = errors.New("mqttsec: no reply")
	// ErrPublishRefused: the broker refused a message with an MQTT 5
	// PUBACK reason code (its ACL, a quota): it was not delivered. MQTT
	// 3.1.1 cannot say so; a broker drops the message or the connection
	// (Mosquitto acknowledges it and drops it).
	ErrPublishRefused = errors.New("mqttsec: publish refused by the broker")
	// ErrInvalidEvent: PublishEvent's options do not fit the keyring (an
	// encrypted event without recipients, or an event for other than
	// exactly one peer without Own.Signer), or are not what Seal takes (a
	// TTL it refuses; the error then wraps envelope.ErrInvalidParams too).
	ErrInvalidEvent = errors.New("mqttsec: invalid event options")
	// ErrClosed: the Client or Server was closed.
	ErrClosed = errors.New("mqttsec: closed")
	// ErrNotConnected is wrapped by Ready's error while the connection to
	// the broker is down or its subscriptions are being renewed.
	ErrNotConnected = errors.New("mqttsec: not connected to the broker")
	// ErrUnknownPeer: no peer with this id in the keyring.
	ErrUnknownPeer = errors.New("mqttsec: unknown peer")
	// ErrNoEncryptionKey: encryption to a peer was asked for, but the
	// keyring has no key to encrypt to it.
	ErrNoEncryptionKey = errors.New("mqttsec: no encryption key for peer")
	// ErrBadErrorReply: an authenticated error reply whose payload is not a
	// valid error document.
	ErrBadErrorReply = errors.New("mqttsec: malformed error reply")
	// ErrReplicaState: a Server with a ShareGroup was configured without
	// its own Config.Counter or Config.Replay. Replicas answer as one id,
	// so they must draw counters from one sequence and keep one replay
	// state (replay.NewRedisCounter, replay.NewRedisStore): with a counter
	// each, clients refuse the replies of whichever replica is behind; with
	// a replay store each, a request replayed to another replica runs
	// again.
	// It wraps ErrInvalidConfig.
	ErrReplicaState = fmt.Errorf("%w: ShareGroup replicas need a Counter and a Replay store shared by all of them", ErrInvalidConfig)
)

// ClockSkewError is Request's error for an authentic reply refused for
// its timestamps: the server answered, but its clock and this one are
// further apart than the allowed skew, so the reply cannot be accepted.
// The request may well have run. errors.Is finds ErrClockSkew and
// envelope.ErrExpired in it.
type ClockSkewError struct {
	// Server is the server that answered.
	Server string
	// Offset is how far the server's clock is ahead of this one, as far as
	// the reply shows (its issue time against the local clock when it was
	// refused); negative when it is behind.
	Offset time.Duration
	// Err is the refusal (envelope.ErrExpired with its reason).
	Err error
}

func (e *ClockSkewError) Error() string {
	return fmt.Sprintf("mqttsec: reply from %s refused, the clocks are %v apart (server %s): %v",
		e.Server, e.Offset.Abs().Round(time.Millisecond), aheadOrBehind(e.Offset), e.Err)
}

// Unwrap returns ErrClockSkew and the refusal.
func (e *ClockSkewError) Unwrap() []error { return []error{ErrClockSkew, e.Err} }

// NoReplyError is Request's error when its context ends before a reply
// came. errors.Is finds ErrNoReply and the context's error
// (context.DeadlineExceeded or context.Canceled) in it.
type NoReplyError struct {
	// Server and Method are those of the request.
	Server, Method string
	// Waited is how long Request waited, from its call to its giving up.
	Waited time.Duration
	// Cause is the context's error; when the context was given a cause of
	// its own (context.WithTimeoutCause, WithCancelCause), it wraps that
	// cause too.
	Cause error
}

func (e *NoReplyError) Error() string {
	waited := e.Waited
	if waited >= time.Millisecond {
		waited = waited.Round(time.Millisecond)
	}
	return fmt.Sprintf("mqttsec: no reply from %q to %q in %v: %v", e.Server, e.Method, waited, e.Cause)
}

// Unwrap returns ErrNoReply and the cause.
func (e *NoReplyError) Unwrap() []error { return []error{ErrNoReply, e.Cause} }

func aheadOrBehind(d time.Duration) string {
	if d < 0 {
		return "behind"
	}
	return "ahead"
}

func decodeError(payload []byte) error {
	var e Error
	if err := json.Unmarshal(payload, &e); err != nil || e.Code == "" {
		return ErrBadErrorReply
	}
	return &e
}
