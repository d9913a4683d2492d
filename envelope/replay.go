package envelope

import (
	"context"
	"time"
)

// Seen identifies one message to a ReplayStore: its sender, its counter and
// when it claims to have been issued (authenticated by the time Admit runs).
type Seen struct {
	Sender  string
	Counter uint64
	// IssuedAt is the message's "iat"; for the time request of a clockless
	// peer (Message.TimeRequest), whose "iat" is no clock's, it is the
	// receiver's clock when it opened the request.
	IssuedAt time.Time
	// ExpiresAt is when the receiver stops accepting the message as fresh:
	// its "exp" plus the receiver's MaxClockSkew, in the Opener's clock
	// (Opener.Now). A store that forgets senders after a time must keep
	// a sender at least until the latest ExpiresAt it admitted; after
	// that every message it admitted is refused as expired anyway. Zero
	// when the caller does not know it.
	ExpiresAt time.Time
	// Skew is the receiver's tolerance for the sender's clock
	// (Policy.MaxClockSkew): a message it accepted may claim an issue time
	// up to Skew after the moment it was accepted. A store that lost its
	// records refuses every message issued up to Skew after it noticed
	// the loss (SPEC.md §7.3). Zero means DefaultMaxClockSkew.
	Skew time.Duration
}

// SkewOrDefault returns m.Skew, or DefaultMaxClockSkew when it is zero.
func (m Seen) SkewOrDefault() time.Duration {
	if m.Skew > 0 {
		return m.Skew
	}
	return DefaultMaxClockSkew
}

// A ReplayStore keeps, per sender, the window of counters already accepted
// (SPEC.md §7). Implementations must be safe for concurrent use, and Admit
// must be atomic per sender: of two concurrent Admit calls with the same
// sender and counter, exactly one succeeds. A store that forgets a sender
// (to bound its memory) must afterwards refuse every message of that sender
// issued at or before the newest one it had accepted (SPEC.md §7.3), so that
// forgetting never re-admits a message.
type ReplayStore interface {
	// Check returns ErrReplayed if the message would be refused now. It
	// changes nothing; Open calls it after the HMAC and HOTP checks, for
	// a message with a signature or encryption, to shed replays before
	// public-key work and decryption.
	Check(ctx context.Context, m Seen) error
	// Admit atomically checks the message and records it as accepted,
	// returning ErrReplayed if it was already accepted or is below the
	// window. Once Admit returns nil the acceptance is as durable as the
	// store promises.
	Admit(ctx context.Context, m Seen) error
}
