package replay_test

// Simulations of a full MemoryStore behind a receiver, with a fake clock:
// how many legitimate messages it refuses when it must forget senders, and
// that it refuses every replay meanwhile.

import (
	"errors"
	"math/rand/v2"
	"strconv"
	"testing"
	"time"

	"github.com/mqttsec/mqttsec/envelope"
	"github.com/mqttsec/mqttsec/mqttsec/replay"
)

const (
	simCap      = 1000                   // the store's MaxSenders
	simLifetime = 30 * time.Second       // the receiver's Policy.MaxLifetime
	simSkew     = 30 * time.Second       // the receiver's Policy.MaxClockSkew
	simSpread   = 100 * time.Millisecond // senders' clocks are within ±simSpread of the receiver's
)

// errSimExpired is the receiver's refusal of a message outside its
// lifetime, before the replay store is asked.
var errSimExpired = errors.New("expired or not yet valid")

// simSender is a sender whose clock is offset from the receiver's.
type simSender struct {
	id     string
	offset time.Duration
	ctr    uint64
}

// next returns the sender's next message, sent at the receiver's time now:
// issued now by the sender's clock, in whole milliseconds as on the wire,
// for the longest lifetime the receiver accepts.
func (snd *simSender) next(now time.Time) envelope.Seen {
	snd.ctr++
	iat := now.Add(snd.offset).Truncate(time.Millisecond)
	return envelope.Seen{Sender: snd.id, Counter: snd.ctr, IssuedAt: iat,
		ExpiresAt: iat.Add(simLifetime + simSkew), Skew: simSkew}
}

// simSenders returns n senders, sender i's clock offset by offset(i).
func simSenders(n int, offset func(i int) time.Duration) []*simSender {
	out := make([]*simSender, n)
	for i := range out {
		out[i] = &simSender{id: "sender-" + strconv.Itoa(i), offset: offset(i)}
	}
	return out
}

// spreadEvenly returns clock offsets drawn uniformly within ±simSpread.
func spreadEvenly(seed uint64) func(int) time.Duration {
	r := rand.New(rand.NewPCG(seed, 1))
	return func(int) time.Duration {
		return time.Duration(r.Int64N(int64(2*simSpread)+1)) - simSpread
	}
}

// twoCamps returns clock offsets of +simSpread and −simSpread in turn:
// the worst case for a floor, which one camp raises and the other meets.
func twoCamps(i int) time.Duration {
	if i%2 == 0 {
		return simSpread
	}
	return -simSpread
}

// simReceiver is a receiver with a fake clock: the Opener's freshness
// rules (envelope.Policy) in front of a MemoryStore on the same clock.
type simReceiver struct {
	t        *testing.T
	store    *replay.MemoryStore
	now      time.Time
	admitted []envelope.Seen
	sent     int // legitimate messages
	refused  int // legitimate messages refused as replays
}

func newSimReceiver(t *testing.T) *simReceiver {
	r := &simReceiver{t: t, now: testNow}
	r.store = must[*replay.MemoryStore](t)(replay.NewMemoryStoreWith(replay.MemoryStoreOptions{
		MaxSenders: simCap, Now: func() time.Time { return r.now }}))
	return r
}

// receive applies the freshness rules to m, then the replay store.
func (r *simReceiver) receive(m envelope.Seen) error {
	if m.IssuedAt.After(r.now.Add(m.Skew)) || !r.now.Before(m.ExpiresAt) {
		return errSimExpired
	}
	return r.store.Admit(ctx, m)
}

// send delivers snd's next message, which is legitimate: the store may
// refuse it only as a replay, and that is counted.
func (r *simReceiver) send(snd *simSender) {
	r.t.Helper()
	m := snd.next(r.now)
	r.sent++
	switch err := r.receive(m); {
	case err == nil:
		r.admitted = append(r.admitted, m)
	case errors.Is(err, envelope.ErrReplayed):
		r.refused++
	default:
		r.t.Fatalf("%s's message %d: %v", m.Sender, m.Counter, err)
	}
}

// replayAdmitted delivers again every message admitted since index from:
// each must be refused, and by the store itself while it is unexpired.
func (r *simReceiver) replayAdmitted(from int) {
	r.t.Helper()
	for _, m := range r.admitted[from:] {
		err := r.receive(m)
		if r.now.Before(m.ExpiresAt) && !errors.Is(err, envelope.ErrReplayed) {
			r.t.Fatalf("replay of %s's unexpired message %d: %v", m.Sender, m.Counter, err)
		}
		if err == nil {
			r.t.Fatalf("replay of %s's message %d admitted", m.Sender, m.Counter)
		}
	}
}

// falseRefusals returns the share of legitimate messages refused.
func (r *simReceiver) falseRefusals() float64 { return float64(r.refused) / float64(r.sent) }

// Twice the cap, in two waves of simCap senders, each sender idle for
// longer than lifetime plus skew before the next wave needs its room (a
// fleet that reconnects in bursts): within a wave all senders send five
// messages each, 20 µs apart, in rounds 30 ms apart. Every sender the
// store forgets has expired, so no legitimate message is refused, and
// every replay is.
func TestMemoryStoreIdleSendersNoFalseRefusal(t *testing.T) {
	r := newSimReceiver(t)
	senders := simSenders(2*simCap, spreadEvenly(1))
	waveGap := simLifetime + simSkew + 2*time.Second
	for wave := range 2 {
		r.now = testNow.Add(time.Duration(wave) * waveGap)
		group := senders[wave*simCap : (wave+1)*simCap]
		first := len(r.admitted)
		for range 5 {
			for _, snd := range group {
				r.send(snd)
				r.now = r.now.Add(20 * time.Microsecond)
			}
			r.now = r.now.Add(30 * time.Millisecond)
			r.replayAdmitted(0)
		}
		if wave > 0 && len(r.admitted) == first {
			t.Fatal("the wave admitted nothing")
		}
	}
	st := r.store.Stats()
	t.Logf("%d of %d legitimate messages refused (%.2f %%); %+v", r.refused, r.sent, 100*r.falseRefusals(), st)
	if r.refused != 0 {
		t.Errorf("%d legitimate messages refused, want 0", r.refused)
	}
	if st.ForgottenExpired != simCap || st.ForgottenLive != 0 {
		t.Errorf("Stats = %+v, want %d senders forgotten, all expired", st, simCap)
	}
}

// Overloaded: twice the cap, all senders sending in turn, each every
// period, far within one lifetime, so that every sender forgotten is
// live; clocks spread evenly, or in the two camps that make a floor do
// the most harm. The share of legitimate messages refused stays within the bound
// MemoryStore documents, and every replay is refused.
func TestMemoryStoreOverloadedFalseRefusalBound(t *testing.T) {
	tests := []struct {
		name   string
		period time.Duration
		clocks func(int) time.Duration
	}{
		{"each every 1s", time.Second, spreadEvenly(2)},
		{"each every 300ms", 300 * time.Millisecond, spreadEvenly(3)},
		{"each every 200ms", 200 * time.Millisecond, spreadEvenly(4)},
		{"each every 100ms", 100 * time.Millisecond, spreadEvenly(5)},
		{"each every 1s, two camps", time.Second, twoCamps},
		{"each every 300ms, two camps", 300 * time.Millisecond, twoCamps},
		{"each every 200ms, two camps", 200 * time.Millisecond, twoCamps},
		{"each every 100ms, two camps", 100 * time.Millisecond, twoCamps},
	}
	const senders, rounds = 2 * simCap, 6
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := newSimReceiver(t)
			group := simSenders(senders, tt.clocks)
			step := tt.period / senders
			for range rounds {
				for _, snd := range group {
					r.send(snd)
					r.now = r.now.Add(step)
				}
			}
			r.replayAdmitted(0)
			st := r.store.Stats()
			bound := overloadBound(step, st.Buckets)
			t.Logf("%d of %d legitimate messages refused (%.2f %%), bound %.2f %%; %+v",
				r.refused, r.sent, 100*r.falseRefusals(), 100*bound, st)
			if st.ForgottenLive == 0 || st.ForgottenExpired != 0 {
				t.Fatalf("Stats = %+v: the simulation does not overload the store", st)
			}
			if r.falseRefusals() > bound {
				t.Errorf("%.2f %% of legitimate messages refused, above the bound %.2f %%", 100*r.falseRefusals(), 100*bound)
			}
		})
	}
}

// overloadBound is MemoryStore's bound on the share of messages refused
// from senders it does not track, F/B, for senders that send in turn one
// every step, with clocks within ±simSpread, issue times truncated to
// milliseconds, and no time in transit: F counts the live forgets in the
// 2Δ+ℓ before a message whose sender sent after MaxSenders−8 others.
func overloadBound(step time.Duration, buckets int) float64 {
	window := 2*simSpread + time.Millisecond
	f := int(window/step) - (simCap - 8)
	return min(1, float64(max(0, f))/float64(buckets))
}
