package benchsuite

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/mqttsec/mqttsec/envelope"
	"github.com/mqttsec/mqttsec/mqttsec"
)

// Dial returns a transport, not yet started, for a client id: how a pair
// reaches its broker (cli.Conn.Transport for a real one, MemoryBus.Dial
// for none).
type Dial func(clientID string) (mqttsec.Transport, error)

// Requester sends one request and returns once its reply arrived.
type Requester func(ctx context.Context, payload []byte) error

// Pair is a running requester and responder.
type Pair struct {
	Request Requester
	Close   func()
}

var seq atomic.Uint64

func clientID(role string) string {
	return fmt.Sprintf("bench-%s-%d-%d", role, time.Now().UnixNano(), seq.Add(1))
}

// SecuredPair starts an mqttsec gateway that echoes and a client, both
// sealing with suite s.
func SecuredPair(ctx context.Context, dial Dial, s Suite, gwKeys, clKeys *Keys) (*Pair, error) {
	return SecuredPairWith(ctx, dial, s, gwKeys, clKeys, nil)
}

// SecuredPairWith is SecuredPair with configure (if not nil) applied to
// the Config of both the gateway and the client (to set their meter and
// tracer providers, say).
func SecuredPairWith(ctx context.Context, dial Dial, s Suite, gwKeys, clKeys *Keys, configure func(*mqttsec.Config)) (*Pair, error) {
	// Unique ids per pair, so that pairs never read each other's topics.
	n := seq.Add(1)
	gwID, clID := fmt.Sprintf("bench-gw-%d", n), fmt.Sprintf("bench-cl-%d", n)
	send := func(from, to *Keys) mqttsec.Protection {
		p := &envelope.Params{}
		s.Apply(from, to, p)
		return mqttsec.Protection{HMAC: p.HMAC, HOTP: p.HOTP, Signer: p.Signer, PSK: p.PSK, Recipients: p.Recipients}
	}
	gwRing, err := mqttsec.NewKeyring(mqttsec.Own{Identities: gwKeys.Identities},
		&mqttsec.Peer{Peer: *s.Peer(clID, clKeys), Send: send(gwKeys, clKeys)})
	if err != nil {
		return nil, err
	}
	clRing, err := mqttsec.NewKeyring(mqttsec.Own{Identities: clKeys.Identities},
		&mqttsec.Peer{Peer: *s.Peer(gwID, gwKeys), Send: send(clKeys, gwKeys)})
	if err != nil {
		return nil, err
	}
	gwTr, err := dial(clientID("gw"))
	if err != nil {
		return nil, err
	}
	clTr, err := dial(clientID("cl"))
	if err != nil {
		return nil, err
	}
	gwCfg := mqttsec.Config{ID: gwID, Transport: gwTr, Keyring: gwRing}
	clCfg := mqttsec.Config{ID: clID, Transport: clTr, Keyring: clRing}
	if configure != nil {
		configure(&gwCfg)
		configure(&clCfg)
	}
	gw, err := mqttsec.NewServer(mqttsec.ServerConfig{Config: gwCfg})
	if err != nil {
		return nil, err
	}
	gw.HandleFunc("echo", func(ctx context.Context, r *mqttsec.Request) ([]byte, error) { return r.Payload, nil })
	if err := gw.Start(ctx); err != nil {
		return nil, err
	}
	c, err := mqttsec.NewClient(clCfg)
	if err != nil {
		gw.Close(context.Background())
		return nil, err
	}
	if err := c.Start(ctx); err != nil {
		gw.Close(context.Background())
		return nil, err
	}
	return &Pair{
		Request: func(ctx context.Context, payload []byte) error {
			_, err := c.Request(ctx, gwID, "echo", payload)
			return err
		},
		Close: func() {
			cctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			c.Close(cctx)
			gw.Close(cctx)
		},
	}, nil
}

// PlainPair starts the same request/reply with no security: the same Paho
// client, QoS 1, topics and payload; the responder echoes each request to
// the reply topic and the requester matches replies by an 8-byte id that
// prefixes the payload.
func PlainPair(ctx context.Context, dial Dial) (*Pair, error) {
	return plainPair(ctx, dial, nil)
}

// plainPair is PlainPair whose responder, when respond is not nil, calls
// it for each request before it publishes the reply.
func plainPair(ctx context.Context, dial Dial, respond func()) (*Pair, error) {
	n := seq.Add(1)
	reqTopic, replyTopic := fmt.Sprintf("bench/plain-%d/req", n), fmt.Sprintf("bench/plain-%d/reply", n)
	srv, err := dial(clientID("plain-gw"))
	if err != nil {
		return nil, err
	}
	cl, err := dial(clientID("plain-cl"))
	if err != nil {
		return nil, err
	}
	// The responder replies off the transport's goroutine, as mqttsec does.
	work := make(chan []byte, 1024)
	var wg sync.WaitGroup
	stop := make(chan struct{})
	closeAll := func() {
		cctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		cl.Close(cctx)
		srv.Close(cctx)
		close(stop)
		wg.Wait()
	}
	started := false
	defer func() {
		if !started {
			closeAll()
		}
	}()
	for range 8 {
		wg.Go(func() {
			for {
				select {
				case <-stop:
					return
				case p := <-work:
					if respond != nil {
						respond()
					}
					srv.Publish(context.Background(), mqttsec.Outbound{Topic: replyTopic, Payload: p})
				}
			}
		})
	}
	if err := srv.Start(ctx, func(in mqttsec.Inbound) {
		select {
		case work <- in.Payload:
		default:
		}
	}); err != nil {
		return nil, err
	}
	if err := srv.Subscribe(ctx, reqTopic); err != nil {
		return nil, err
	}
	var mu sync.Mutex
	pending := map[uint64]chan struct{}{}
	if err := cl.Start(ctx, func(in mqttsec.Inbound) {
		if len(in.Payload) < 8 {
			return
		}
		id := binary.BigEndian.Uint64(in.Payload)
		mu.Lock()
		ch := pending[id]
		delete(pending, id)
		mu.Unlock()
		if ch != nil {
			close(ch)
		}
	}); err != nil {
		return nil, err
	}
	if err := cl.Subscribe(ctx, replyTopic); err != nil {
		return nil, err
	}
	var ids atomic.Uint64
	started = true
	return &Pair{
		Request: func(ctx context.Context, payload []byte) error {
			id := ids.Add(1)
			msg := binary.BigEndian.AppendUint64(make([]byte, 0, 8+len(payload)), id)
			msg = append(msg, payload...)
			ch := make(chan struct{})
			mu.Lock()
			pending[id] = ch
			mu.Unlock()
			defer func() { mu.Lock(); delete(pending, id); mu.Unlock() }()
			if err := cl.Publish(ctx, mqttsec.Outbound{Topic: reqTopic, Payload: msg}); err != nil {
				return err
			}
			select {
			case <-ch:
				return nil
			case <-ctx.Done():
				return ctx.Err()
			}
		},
		Close: closeAll,
	}, nil
}

// Latencies sends requests one after another for d, taking turns between
// the requesters given (a, b, a, b, ...), so that each sees the same state
// of a shared machine; it returns each one's latencies, sorted. With one
// requester it is a plain sequential run. Each gets at least 20 requests.
func Latencies(ctx context.Context, payload []byte, d time.Duration, reqs ...Requester) ([][]time.Duration, error) {
	lat := make([][]time.Duration, len(reqs))
	end := time.Now().Add(d)
	for time.Now().Before(end) || len(lat[0]) < 20 {
		for i, req := range reqs {
			start := time.Now()
			if err := req(ctx, payload); err != nil {
				return nil, err
			}
			lat[i] = append(lat[i], time.Since(start))
		}
	}
	for _, l := range lat {
		slices.Sort(l)
	}
	return lat, nil
}

// Percentile returns the p-th quantile (0 < p < 1) of sorted latencies.
func Percentile(sorted []time.Duration, p float64) time.Duration {
	return sorted[min(len(sorted)-1, int(float64(len(sorted))*p))]
}

// Throughput keeps inFlight requests outstanding for d (each of the
// inFlight senders makes at least one) and returns completed requests per
// second.
func Throughput(ctx context.Context, req Requester, payload []byte, inFlight int, d time.Duration) (float64, error) {
	var done atomic.Int64
	var mu sync.Mutex
	var firstErr error
	end := time.Now().Add(d)
	start := time.Now()
	var wg sync.WaitGroup
	for range inFlight {
		wg.Go(func() {
			// At least one request each, however late the goroutine
			// starts: on a loaded machine a short round may end before
			// some of them run.
			for first := true; first || time.Now().Before(end); first = false {
				if err := req(ctx, payload); err != nil {
					mu.Lock()
					if firstErr == nil {
						firstErr = err
					}
					mu.Unlock()
					return
				}
				done.Add(1)
			}
		})
	}
	wg.Wait()
	if firstErr != nil {
		return 0, firstErr
	}
	if done.Load() == 0 {
		return 0, errors.New("no request completed")
	}
	return float64(done.Load()) / time.Since(start).Seconds(), nil
}

// FloorPair starts a plain pair (see PlainPair) that does the work no
// implementation of suite s can avoid, and nothing else: its requests and
// replies are as long as s's request envelope carrying payload (the pair's
// 8-byte id included), and s's bare primitives (see Primitives) run where a
// round trip of s runs them. The requester seals before it publishes and
// opens the reply; the responder opens the request and seals the reply
// before it answers. There is no header to write or read, no replay window
// and no SDK: the pair is the floor under s over this broker and client,
// and its distance from plain Paho is the cost of s's format. The length
// is returned too.
func FloorPair(ctx context.Context, dial Dial, s Suite, from, to *Keys, payload []byte) (*Pair, int, error) {
	c, err := NewCase(s, from, to, payload)
	if err != nil {
		return nil, 0, err
	}
	pair, err := plainPair(ctx, dial, func() { c.PrimOpen(); c.PrimSeal() })
	if err != nil {
		return nil, 0, err
	}
	sized := sizedRequests(pair.Request, c.EnvelopeSize)
	pair.Request = func(ctx context.Context, payload []byte) error {
		c.PrimSeal()
		if err := sized(ctx, payload); err != nil {
			return err
		}
		c.PrimOpen()
		return nil
	}
	return pair, c.EnvelopeSize, nil
}

// EnvelopeSized returns a requester for a plain pair (see PlainPair) that
// sends, whatever payload it is given, requests as long as the sealed
// request of suite s carrying payload, the pair's 8-byte id included, and
// that length. Plain Paho carrying as many bytes as mqttsec tells what the
// size of the envelope costs apart from its crypto and the SDK.
func EnvelopeSized(plain Requester, s Suite, from, to *Keys, payload []byte) (Requester, int, error) {
	c, err := NewCase(s, from, to, payload)
	if err != nil {
		return nil, 0, err
	}
	return sizedRequests(plain, c.EnvelopeSize), c.EnvelopeSize, nil
}

// sizedRequests returns a requester for a plain pair that sends, whatever
// payload it is given, requests of size bytes, the pair's 8-byte id
// included.
func sizedRequests(plain Requester, size int) Requester {
	body := make([]byte, size-8)
	return func(ctx context.Context, _ []byte) error { return plain(ctx, body) }
}
