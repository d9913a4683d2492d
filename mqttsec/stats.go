package mqttsec

import (
	"sync/atomic"

	"github.com/mqttsec/mqttsec/envelope"
)

// Counter names reported by Stats. The first group are envelope error
// classes (see envelope.Class); the rest are the SDK's own outcomes.
const (
	StatTooLarge           = "too-large"
	StatMalformed          = "malformed"
	StatUnsupportedVersion = "unsupported-version"
	StatPolicy             = "policy"
	StatContext            = "context"
	StatUnknownKey         = "unknown-key"
	StatAuthentication     = "authentication"
	StatReplayed           = "replayed"
	StatReplayStore        = "replay-store" // the replay store could not answer; the message was refused
	StatExpired            = "expired"
	StatDecryption         = "decryption"

	StatAccepted       = "accepted"        // messages that opened and were handled
	StatOverload       = "overload"        // dropped because the worker queue was full
	StatUnroutable     = "unroutable"      // arrived on a topic nothing here handles
	StatUnmatchedReply = "unmatched-reply" // a reply for no pending request (late, or forged)
	StatBadReplyTo     = "bad-reply-to"    // authenticated request with a reply-to the policy refuses
	StatForbidden      = "forbidden"       // authenticated caller not allowed the method
	StatNotFound       = "not-found"       // no handler for the method
	StatHandlerError   = "handler-error"   // the handler returned an error
	StatPublishError   = "publish-error"   // a reply or error reply could not be published
	StatReplyTooLarge  = "reply-too-large" // a handler's reply was too large to send; the caller got CodeReplyTooLarge
	// StatPublishUnconfirmed counts replies the broker took but did not
	// acknowledge within Config.PublishTimeout: they may have arrived.
	StatPublishUnconfirmed = "publish-unconfirmed"
	// StatNoCounter counts requests refused before their handler because
	// no counter could be drawn for the reply (the Counter failed).
	StatNoCounter = "no-counter"
	// StatStateLost counts losses of its own records the replay store
	// reported (see Config.Replay).
	StatStateLost = "state-lost"
	// StatClockSkew counts authentic replies refused because the server's
	// clock and this one disagree by more than the allowed skew; Request
	// returned a *ClockSkewError for each.
	StatClockSkew = "clock-skew"
)

var statNames = []string{
	StatTooLarge, StatMalformed, StatUnsupportedVersion, StatPolicy, StatContext, StatUnknownKey,
	StatAuthentication, StatReplayed, StatReplayStore, StatExpired, StatDecryption,
	StatAccepted, StatOverload, StatUnroutable, StatUnmatchedReply, StatBadReplyTo, StatForbidden,
	StatNotFound, StatHandlerError, StatPublishError, StatReplyTooLarge,
	StatPublishUnconfirmed, StatNoCounter, StatStateLost, StatClockSkew,
}

var classStat = map[error]string{
	envelope.ErrTooLarge: StatTooLarge, envelope.ErrMalformed: StatMalformed,
	envelope.ErrUnsupportedVersion: StatUnsupportedVersion, envelope.ErrPolicy: StatPolicy,
	envelope.ErrContext: StatContext, envelope.ErrUnknownKey: StatUnknownKey,
	envelope.ErrAuthentication: StatAuthentication, envelope.ErrReplayed: StatReplayed,
	envelope.ErrReplayStore: StatReplayStore, envelope.ErrExpired: StatExpired,
	envelope.ErrDecryption: StatDecryption,
}

// stats is a fixed set of counters; the map is never written after
// creation, so reads need no lock.
type stats map[string]*atomic.Uint64

func newStats() stats {
	s := stats{}
	for _, n := range statNames {
		s[n] = new(atomic.Uint64)
	}
	return s
}

func (s stats) add(name string) { s[name].Add(1) }

func (s stats) snapshot() map[string]uint64 {
	out := make(map[string]uint64, len(s))
	for n, c := range s {
		out[n] = c.Load()
	}
	return out
}
