package envelope

import (
	"errors"
	"testing"
	"time"
)

// A device without a real-time clock: its clock starts at the epoch when it
// boots, so whatever it stamps is decades old.
var bootClock = func() time.Time { return time.UnixMilli(0) }

// TestOpenerClocklessAcceptsRepliesToPendingRequests: a clockless receiver
// accepts a reply or error to a pending request whatever its timestamps,
// within MaxLifetime; a request or event it cannot judge is ErrExpired.
func TestOpenerClocklessAcceptsRepliesToPendingRequests(t *testing.T) {
	tests := []struct {
		name    string
		kind    Kind
		gwClock time.Time // the gateway's clock when it seals the reply
		ttl     time.Duration
		policy  Policy // the device's policy for the gateway
		want    error
	}{
		{"a reply stamped by a clock decades ahead", Reply, testNow, 0, Policy{}, nil},
		{"an error reply", ErrorReply, testNow, 0, Policy{}, nil},
		{"a reply stamped long ago", Reply, time.Date(2001, 1, 1, 0, 0, 0, 0, time.UTC), 0, Policy{}, nil},
		{"a reply stamped far in the future", Reply, time.Date(2200, 1, 1, 0, 0, 0, 0, time.UTC), 0, Policy{}, nil},
		{"a reply living MaxLifetime", Reply, testNow, DefaultMaxLifetime, Policy{}, nil},
		{"a reply living MaxLifetime and a millisecond", Reply, testNow, DefaultMaxLifetime + time.Millisecond, Policy{}, ErrExpired},
		{"a reply living longer than the policy's MaxLifetime", Reply, testNow, 2 * time.Minute, Policy{MaxLifetime: time.Minute}, ErrExpired},
		{"a reply living the policy's MaxLifetime", Reply, testNow, time.Minute, Policy{MaxLifetime: time.Minute}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w := newWorld(t)
			// The request's own timestamps play no part: the gateway,
			// with a clock, opens it.
			req := sealRequestWith(t, w, withHMAC, nil)
			in := must[*Message](t)(w.opener().Open(ctx, req.Bytes, expectRequest))
			gw := &Sealer{ID: "gateway", Counter: NewMemoryCounter(0), Now: func() time.Time { return tt.gwClock }}
			rep := must[*Sealed](t)(gw.Seal(&Params{Kind: tt.kind, InReplyTo: in, HMAC: w.hmac, TTL: tt.ttl}, []byte("answer")))
			o := w.clientOpener()
			o.Now, o.Clockless = bootClock, true
			o.Keys.Peer("gateway").Policy = tt.policy
			m, err := o.Open(ctx, rep.Bytes, &Expect{Kinds: Reply | ErrorReply, Request: req})
			if !errors.Is(err, tt.want) || (tt.want == nil) != (m != nil) {
				t.Fatalf("Open = %v, %v; want %v", m, err, tt.want)
			}
			if m != nil && (!m.IssuedAt.Equal(tt.gwClock.Truncate(time.Millisecond)) || string(m.Payload) != "answer") {
				t.Fatalf("opened %+v", m)
			}
			if tt.want == nil {
				// The same reply again is a replay: the binding proves a
				// reply fresh once, the replay window does the rest.
				if _, err := o.Open(ctx, rep.Bytes, &Expect{Kinds: Reply | ErrorReply, Request: req}); !errors.Is(err, ErrReplayed) {
					t.Fatalf("the reply again: %v, want ErrReplayed", err)
				}
			}
		})
	}
}

// A clockless receiver accepts a reply only while its request is within
// its lifetime on the monotonic clock: a reply held back by the broker
// until after that, which would set the device's clock back, is
// ErrContext. A receiver with a clock judges the reply by its timestamps
// instead.
func TestOpenerClocklessStopsWaiting(t *testing.T) {
	for _, tt := range []struct {
		name      string
		clockless bool
		waited    time.Duration // how long ago the request was sealed
		want      error
	}{
		{"clockless, within the request's lifetime", true, DefaultTTL - time.Second, nil},
		{"clockless, at the end of it", true, DefaultTTL, ErrContext},
		{"clockless, long after", true, 365 * 24 * time.Hour, ErrContext},
		{"with a clock, long after", false, 365 * 24 * time.Hour, nil},
	} {
		t.Run(tt.name, func(t *testing.T) {
			w := newWorld(t)
			req := sealRequestWith(t, w, withHMAC, nil)
			in := must[*Message](t)(w.opener().Open(ctx, req.Bytes, expectRequest))
			rep := must[*Sealed](t)(w.gatewaySealer().Seal(&Params{Kind: Reply, InReplyTo: in, HMAC: w.hmac}, nil))
			// Seal started the wait at time.Now(); move its start back.
			req.waitUntil = req.waitUntil.Add(-tt.waited)
			o := w.clientOpener()
			o.Clockless = tt.clockless
			if _, err := o.Open(ctx, rep.Bytes, &Expect{Kinds: Reply, Request: req}); !errors.Is(err, tt.want) || (tt.want == nil) != (err == nil) {
				t.Fatalf("Open = %v, want %v", err, tt.want)
			}
		})
	}
}

// TestOpenerClocklessRefusesWhatItCannotJudge: requests and events, fresh
// by any clock, are ErrExpired to a clockless receiver, and a reply still
// needs its pending request (ErrContext, checked first).
func TestOpenerClocklessRefusesWhatItCannotJudge(t *testing.T) {
	w := newWorld(t)
	o := w.opener()
	o.Clockless = true
	for _, tt := range []struct {
		name   string
		params *Params
		expect *Expect
		want   error
	}{
		{"a request", &Params{Kind: Request, To: []string{"gateway"}, Topic: "get-card", ReplyTo: "r", HMAC: w.hmac}, expectRequest, ErrExpired},
		{"an event", &Params{Kind: Event, Topic: "status", Signer: w.ed}, &Expect{Kinds: Event}, ErrExpired},
		{"an event to the receiver", &Params{Kind: Event, To: []string{"gateway"}, Topic: "status", HMAC: w.hmac}, &Expect{Kinds: Event}, ErrExpired},
		{"a time request", &Params{Kind: Request, To: []string{"gateway"}, Topic: TimeMethod, ReplyTo: "r", HMAC: w.hmac}, expectRequest, ErrExpired},
	} {
		t.Run(tt.name, func(t *testing.T) {
			s := must[*Sealed](t)(w.sealer().Seal(tt.params, nil))
			// The same receiver with its clock opens it: only the lack of
			// a clock refuses it.
			withClock := w.opener()
			withClock.Replay = newTestStore()
			if _, err := withClock.Open(ctx, s.Bytes, tt.expect); err != nil {
				t.Fatalf("with a clock: %v", err)
			}
			if _, err := o.Open(ctx, s.Bytes, tt.expect); !errors.Is(err, tt.want) {
				t.Fatalf("clockless: %v, want %v", err, tt.want)
			}
		})
	}
	// A reply without its pending request.
	req := sealRequestWith(t, w, withHMAC, nil)
	in := must[*Message](t)(w.opener().Open(ctx, req.Bytes, expectRequest))
	rep := must[*Sealed](t)(w.gatewaySealer().Seal(&Params{Kind: Reply, InReplyTo: in, HMAC: w.hmac}, nil))
	client := w.clientOpener()
	client.Clockless = true
	if _, err := client.Open(ctx, rep.Bytes, &Expect{Kinds: Reply}); !errors.Is(err, ErrContext) {
		t.Fatalf("a reply without its request: %v, want ErrContext", err)
	}
	if _, err := client.Open(ctx, rep.Bytes, &Expect{Kinds: Reply, Request: req}); err != nil {
		t.Fatalf("the reply with its request: %v", err)
	}
}

// TestPolicyClocklessTimeRequest: a responder whose policy marks a peer
// clockless accepts that peer's time requests (method TimeMethod) whatever
// their timestamps, within MaxLifetime, and records them as issued at its
// own clock; every other message of the peer is checked as usual.
func TestPolicyClocklessTimeRequest(t *testing.T) {
	const wait = 10 * time.Second
	tests := []struct {
		name      string
		clockless bool
		kind      Kind
		method    string
		clock     func() time.Time // the device's
		ttl       time.Duration
		lifetime  time.Duration // the policy's MaxLifetime
		want      error
	}{
		{"time request at boot", true, Request, TimeMethod, bootClock, wait, 0, nil},
		{"time request living MaxLifetime", true, Request, TimeMethod, bootClock, DefaultMaxLifetime, 0, nil},
		{"time request living MaxLifetime and a millisecond", true, Request, TimeMethod, bootClock, DefaultMaxLifetime + time.Millisecond, 0, ErrExpired},
		{"time request over the policy's MaxLifetime", true, Request, TimeMethod, bootClock, 2 * time.Minute, time.Minute, ErrExpired},
		{"time request stamped ahead of the responder", true, Request, TimeMethod, func() time.Time { return testNow.Add(time.Hour) }, wait, 0, nil},
		{"time request with a good clock", true, Request, TimeMethod, func() time.Time { return testNow }, wait, 0, nil},
		{"another method at boot", true, Request, "get-card", bootClock, wait, 0, ErrExpired},
		{"an event on the time method at boot", true, Event, TimeMethod, bootClock, wait, 0, ErrExpired},
		{"time request at boot, peer not clockless", false, Request, TimeMethod, bootClock, wait, 0, ErrExpired},
		{"another method with a good clock", true, Request, "get-card", func() time.Time { return testNow }, wait, 0, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w := newWorld(t)
			w.peer.Policy = Policy{Clockless: tt.clockless, MaxLifetime: tt.lifetime}
			device := &Sealer{ID: "client", Counter: NewMemoryCounter(0), Now: tt.clock}
			p := &Params{Kind: tt.kind, To: []string{"gateway"}, Topic: tt.method, HMAC: w.hmac, Signer: w.ed, TTL: tt.ttl}
			if tt.kind == Request {
				p.ReplyTo = "mqttsec/client/reply"
			}
			req := must[*Sealed](t)(device.Seal(p, nil))
			store := &recordingStore{}
			o := w.opener()
			o.Replay = store
			m, err := o.Open(ctx, req.Bytes, &Expect{Kinds: Request | Event})
			if !errors.Is(err, tt.want) || (tt.want == nil) != (m != nil) {
				t.Fatalf("Open = %v, %v; want %v", m, err, tt.want)
			}
			if err != nil {
				if len(store.checked)+len(store.admitted) != 0 {
					t.Fatal("the store was asked about a refused message")
				}
				return
			}
			// The store is told the responder's clock for a time request,
			// the message's own issue time otherwise; and when the
			// message stops being fresh by that clock.
			issued := tt.clock().Truncate(time.Millisecond)
			if tt.method == TimeMethod {
				issued = testNow
			}
			expires := issued.Add(tt.ttl).Add(DefaultMaxClockSkew)
			if len(store.checked) != 1 || len(store.admitted) != 1 {
				t.Fatalf("store checked %d and admitted %d, want 1 and 1", len(store.checked), len(store.admitted))
			}
			for _, seen := range append(store.checked, store.admitted...) {
				if !seen.IssuedAt.Equal(issued) || !seen.ExpiresAt.Equal(expires) || seen.Counter != req.Counter || seen.Sender != "client" {
					t.Fatalf("store saw %+v, want issued %v, expiring %v", seen, issued, expires)
				}
			}
			// What the message says is what the device wrote.
			if !m.IssuedAt.Equal(tt.clock().Truncate(time.Millisecond)) {
				t.Fatalf("message issued %v, want the device's %v", m.IssuedAt, tt.clock())
			}
		})
	}
}

// TestClocklessDeviceLearnsTheTime: the whole exchange of SPEC.md §10. A
// device at boot sends the time request (iat 0, exp its wait), the
// gateway (whose policy marks the device clockless) answers with an empty
// reply, and the clockless device accepts the reply and reads the time
// from it; the same time request again is a replay.
func TestClocklessDeviceLearnsTheTime(t *testing.T) {
	w := newWorld(t)
	w.peer.Policy = Policy{Clockless: true, Require: HMAC}
	device := &Sealer{ID: "client", Counter: NewMemoryCounter(0), Now: bootClock}
	req := must[*Sealed](t)(device.Seal(&Params{Kind: Request, To: []string{"gateway"}, Topic: TimeMethod,
		ReplyTo: "mqttsec/client/reply", HMAC: w.hmac, TTL: 10 * time.Second}, nil))
	h := must[*Header](t)(Peek(req.Bytes, 0))
	if h.IssuedAt.UnixMilli() != 0 || h.ExpiresAt.UnixMilli() != 10_000 {
		t.Fatalf("time request issued %v, expiring %v; want 0 and 10 s", h.IssuedAt.UnixMilli(), h.ExpiresAt.UnixMilli())
	}
	gateway := w.opener()
	in, err := gateway.Open(ctx, req.Bytes, &Expect{Kinds: Request, Topic: TimeMethod})
	if err != nil {
		t.Fatalf("gateway: %v", err)
	}
	if _, err := gateway.Open(ctx, req.Bytes, &Expect{Kinds: Request, Topic: TimeMethod}); !errors.Is(err, ErrReplayed) {
		t.Fatalf("the time request again: %v, want ErrReplayed", err)
	}
	w.now = testNow.Add(1234 * time.Millisecond)
	rep := must[*Sealed](t)(w.gatewaySealer().Seal(&Params{Kind: Reply, InReplyTo: in, HMAC: w.hmac}, nil))
	o := w.clientOpener()
	o.Now, o.Clockless = bootClock, true
	m, err := o.Open(ctx, rep.Bytes, &Expect{Kinds: Reply | ErrorReply, From: "gateway", Request: req})
	if err != nil {
		t.Fatalf("device: %v", err)
	}
	if !m.IssuedAt.Equal(w.now) || len(m.Payload) != 0 {
		t.Fatalf("the device learned %v, want %v", m.IssuedAt, w.now)
	}
}
