package envelope_test

import (
	"context"
	"crypto/ecdh"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/hpke"
	"crypto/rand"
	"errors"
	"fmt"
	"time"

	"github.com/mqttsec/mqttsec/envelope"
	"github.com/mqttsec/mqttsec/mqttsec/replay"
)

// exampleKey is an HMAC key both sides of the examples share.
func exampleKey() *envelope.HMACKey {
	secret := make([]byte, 32) // in real use: 32 random bytes shared out of band
	copy(secret, "an example key, never use it!!!")
	key, err := envelope.NewHMACKey(secret)
	if err != nil {
		panic(err)
	}
	return key
}

// exampleStore is a replay store of its own for each receiver.
func exampleStore() envelope.ReplayStore {
	store, err := replay.NewMemoryStore(0)
	if err != nil {
		panic(err)
	}
	return store
}

// A request with an HMAC, and its reply bound to it.
func Example() {
	ctx := context.Background()
	key := exampleKey()

	// The client seals a request to the gateway.
	client := &envelope.Sealer{ID: "client", Counter: envelope.NewMemoryCounter(0)}
	req, err := client.Seal(&envelope.Params{
		Kind: envelope.Request, To: []string{"gateway"}, Topic: "get-card",
		ReplyTo: "mqttsec/client/reply", HMAC: key,
	}, []byte(`{"card":8165538}`))
	if err != nil {
		panic(err)
	}

	// The gateway opens it: the sender must be a known peer, the HMAC must
	// verify, the message must be fresh and its counter new.
	gwKeys, _ := envelope.NewKeys(nil, &envelope.Peer{
		ID: "client", HMACKeys: []*envelope.HMACKey{key}, Policy: envelope.Policy{Require: envelope.HMAC},
	})
	gateway := &envelope.Opener{ID: "gateway", Keys: gwKeys, Replay: exampleStore()}
	in, err := gateway.Open(ctx, req.Bytes, &envelope.Expect{Kinds: envelope.Request, Topic: "get-card"})
	if err != nil {
		panic(err)
	}
	fmt.Printf("gateway got %s from %s: %s\n", in.Topic, in.From, in.Payload)

	// The same bytes again are a replay.
	_, err = gateway.Open(ctx, req.Bytes, &envelope.Expect{Kinds: envelope.Request})
	fmt.Println("again:", errors.Is(err, envelope.ErrReplayed))

	// The reply names the request it answers.
	gwSealer := &envelope.Sealer{ID: "gateway", Counter: envelope.NewMemoryCounter(0)}
	rep, err := gwSealer.Seal(&envelope.Params{Kind: envelope.Reply, InReplyTo: in, HMAC: key}, []byte(`{"name":"Dana"}`))
	if err != nil {
		panic(err)
	}

	// The client opens it against its pending request: a reply to any
	// other request, or the request itself sent back, is refused.
	clKeys, _ := envelope.NewKeys(nil, &envelope.Peer{ID: "gateway", HMACKeys: []*envelope.HMACKey{key}})
	opener := &envelope.Opener{ID: "client", Keys: clKeys, Replay: exampleStore()}
	pending := &envelope.Expect{Kinds: envelope.Reply | envelope.ErrorReply, From: "gateway", Request: req}
	_, err = opener.Open(ctx, req.Bytes, pending)
	fmt.Println("the request as its own reply:", envelope.Class(err))
	out, err := opener.Open(ctx, rep.Bytes, pending)
	if err != nil {
		panic(err)
	}
	fmt.Printf("client got %s: %s\n", out.Kind, out.Payload)
	// Output:
	// gateway got get-card from client: {"card":8165538}
	// again: true
	// the request as its own reply: envelope: wrong context
	// client got rep: {"name":"Dana"}
}

// A request signed with ECDSA P-256: the receiver needs only the sender's
// public key, and a policy that requires the signature refuses the same
// request with an HMAC alone.
func ExampleSealer_Seal_signature() {
	priv, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	signer, _ := envelope.NewECDSASigner(priv)
	verifier, _ := envelope.NewECDSAVerifier(&priv.PublicKey)
	key := exampleKey()

	client := &envelope.Sealer{ID: "door-7", Counter: envelope.NewMemoryCounter(0)}
	params := func(signed bool) *envelope.Params {
		p := &envelope.Params{Kind: envelope.Request, To: []string{"gateway"}, Topic: "open-door",
			ReplyTo: "mqttsec/door-7/reply", HMAC: key}
		if signed {
			p.Signer = signer
		}
		return p
	}
	keys, _ := envelope.NewKeys(nil, &envelope.Peer{
		ID: "door-7", HMACKeys: []*envelope.HMACKey{key}, Verifiers: []envelope.Verifier{verifier},
		Policy: envelope.Policy{Require: envelope.Signature},
	})
	gateway := &envelope.Opener{ID: "gateway", Keys: keys, Replay: exampleStore()}
	for _, signed := range []bool{true, false} {
		req, err := client.Seal(params(signed), []byte("door 3"))
		if err != nil {
			panic(err)
		}
		m, err := gateway.Open(context.Background(), req.Bytes, &envelope.Expect{Kinds: envelope.Request, From: "door-7"})
		if err != nil {
			fmt.Println("refused:", envelope.Class(err))
			continue
		}
		fmt.Printf("%s %s, protected by %v\n", m.Topic, m.Payload, m.Protections)
	}
	// Output:
	// open-door door 3, protected by hmac+sig
	// refused: envelope: refused by policy
}

// An event signed with Ed25519 and encrypted to two recipients with the
// post-quantum hybrid HPKE KEM (X-Wing): each recipient finds its wrapped
// key by its key id; a third party named nowhere learns nothing.
func ExampleSealer_Seal_event() {
	pub, priv, _ := ed25519.GenerateKey(nil)
	signer, _ := envelope.NewEd25519Signer(priv)
	verifier, _ := envelope.NewEd25519Verifier(pub)

	var recipients []envelope.Recipient
	var identities []envelope.Identity
	for range 2 {
		k, _ := hpke.MLKEM768X25519().GenerateKey()
		r, _ := envelope.NewHPKERecipient(k.PublicKey())
		id, _ := envelope.NewHPKEIdentity(k)
		recipients = append(recipients, r)
		identities = append(identities, id)
	}
	sender := &envelope.Sealer{ID: "door-controller", Counter: envelope.NewMemoryCounter(0)}
	ev, err := sender.Seal(&envelope.Params{
		Kind: envelope.Event, To: []string{"audit", "alarm"}, Topic: "doors/3/forced",
		Signer: signer, Recipients: recipients,
	}, []byte(`{"door":3}`))
	if err != nil {
		panic(err)
	}
	for i, name := range []string{"audit", "alarm"} {
		keys, _ := envelope.NewKeys([]envelope.Identity{identities[i]}, &envelope.Peer{
			ID: "door-controller", Verifiers: []envelope.Verifier{verifier},
			Policy: envelope.Policy{Require: envelope.Signature | envelope.Encryption},
		})
		o := &envelope.Opener{ID: name, Keys: keys, Replay: exampleStore()}
		m, err := o.Open(context.Background(), ev.Bytes, &envelope.Expect{Kinds: envelope.Event, From: "door-controller"})
		fmt.Println(name, string(m.Payload), m.Protections, err)
	}
	other, _ := hpke.MLKEM768X25519().GenerateKey()
	otherID, _ := envelope.NewHPKEIdentity(other)
	keys, _ := envelope.NewKeys([]envelope.Identity{otherID}, &envelope.Peer{ID: "door-controller", Verifiers: []envelope.Verifier{verifier}})
	o := &envelope.Opener{ID: "audit", Keys: keys, Replay: exampleStore()}
	_, err = o.Open(context.Background(), ev.Bytes, &envelope.Expect{Kinds: envelope.Event})
	fmt.Println("a receiver without the key:", envelope.Class(err))
	// Output:
	// audit {"door":3} enc+sig <nil>
	// alarm {"door":3} enc+sig <nil>
	// a receiver without the key: envelope: unknown key
}

// Class turns any Open error into one of the package's error classes, for
// counting and logging rejections without detail. The first byte of an
// envelope is its format's version: a later version is
// ErrUnsupportedVersion, anything else that is not an envelope (text, an
// armored envelope that was not decoded) ErrMalformed.
func ExampleClass() {
	o := &envelope.Opener{ID: "gateway"}
	for _, data := range [][]byte{
		[]byte(`{"v":1,"h":"e30"}`),
		[]byte("AQAAAE8BAgZjbGllbnQB"),
		{0x02, 0, 0, 0, 0},
		{},
	} {
		_, err := o.Open(context.Background(), data, nil)
		fmt.Println(envelope.Class(err))
	}
	// Output:
	// envelope: malformed
	// envelope: malformed
	// envelope: unsupported version
	// envelope: malformed
}

// Receivers find their own key by the key id of each wrapped key, derived
// from the public key (SPEC.md §6).
func ExamplePublicKeyID() {
	k, _ := hpke.DHKEM(ecdh.X25519()).NewPrivateKey(make([]byte, 32))
	r, _ := envelope.NewHPKERecipient(k.PublicKey())
	id, _ := envelope.NewHPKEIdentity(k)
	fmt.Println(r.KeyID() == envelope.PublicKeyID(envelope.HPKEX25519, k.PublicKey().Bytes()), r.KeyID() == id.KeyID())
	// Output: true true
}

// A key id is 12 bytes, shown to people as 16 base64url characters. A
// shared secret's id is derived from the secret, so both holders compute
// the same one.
func ExampleKeyID_String() {
	key := exampleKey()
	fmt.Println(key.KeyID(), key)
	// Output: q7TwuPm1np9pGV03 HMACKey(q7TwuPm1np9pGV03)
}

// A requester with many requests pending routes each reply, by its
// unverified header, to the request it claims to answer, and opens it
// there against exactly that request.
func ExamplePeek() {
	ctx := context.Background()
	key := exampleKey()
	client := &envelope.Sealer{ID: "client", Counter: envelope.NewMemoryCounter(0)}

	// Two requests are pending, by digest.
	pending := map[[32]byte]*envelope.Sealed{}
	var last *envelope.Sealed
	for _, method := range []string{"get-card", "get-door"} {
		req, err := client.Seal(&envelope.Params{Kind: envelope.Request, To: []string{"gateway"}, Topic: method,
			ReplyTo: "mqttsec/client/reply", HMAC: key}, nil)
		if err != nil {
			panic(err)
		}
		pending[req.Digest] = req
		last = req
	}

	// The gateway answers the second (see the package example).
	gwKeys, _ := envelope.NewKeys(nil, &envelope.Peer{ID: "client", HMACKeys: []*envelope.HMACKey{key}})
	in, err := (&envelope.Opener{ID: "gateway", Keys: gwKeys, Replay: exampleStore()}).Open(ctx, last.Bytes, &envelope.Expect{Kinds: envelope.Request})
	if err != nil {
		panic(err)
	}
	gateway := &envelope.Sealer{ID: "gateway", Counter: envelope.NewMemoryCounter(0)}
	rep, err := gateway.Seal(&envelope.Params{Kind: envelope.Reply, InReplyTo: in, HMAC: key}, []byte("door 3"))
	if err != nil {
		panic(err)
	}

	// The client routes by the unverified header, then opens.
	h, err := envelope.Peek(rep.Bytes, 0)
	if err != nil {
		panic(err)
	}
	req, ok := pending[h.InReplyTo]
	if !ok {
		panic("no such pending request")
	}
	fmt.Printf("a %s from %s claims to answer %s, with %v under key %v\n", h.Kind, h.From, h.Topic, h.Keys[0].Algorithm, h.Keys[0].ID == key.KeyID())
	clKeys, _ := envelope.NewKeys(nil, &envelope.Peer{ID: "gateway", HMACKeys: []*envelope.HMACKey{key}})
	opener := &envelope.Opener{ID: "client", Keys: clKeys, Replay: exampleStore()}
	m, err := opener.Open(ctx, rep.Bytes, &envelope.Expect{Kinds: envelope.Reply | envelope.ErrorReply, From: "gateway", Request: req})
	if err != nil {
		panic(err)
	}
	fmt.Printf("verified reply: %s\n", m.Payload)
	// Output:
	// a rep from gateway claims to answer get-door, with HS256 under key true
	// verified reply: door 3
}

// A gateway routes each request to the queue of the sender it claims,
// reading the envelope once: a worker then opens what Route read.
func ExampleRoute() {
	ctx := context.Background()
	key := exampleKey()
	client := &envelope.Sealer{ID: "client", Counter: envelope.NewMemoryCounter(41)}
	req, err := client.Seal(&envelope.Params{Kind: envelope.Request, To: []string{"gateway"}, Topic: "get-card",
		ReplyTo: "mqttsec/client/reply", HMAC: key}, []byte("card 8165538"))
	if err != nil {
		panic(err)
	}

	// On the connection's goroutine: read, route by the unverified claims.
	queues := map[string]chan *envelope.Routed{"client": make(chan *envelope.Routed, 1)}
	r, err := envelope.Route(req.Bytes, 0)
	if err != nil {
		panic(err)
	}
	queue, ok := queues[r.From()]
	if !ok {
		panic("no queue for that sender")
	}
	fmt.Printf("a %s claiming %s, counter %d\n", r.Kind(), r.From(), r.Counter())
	queue <- r

	// On a worker: open, with every check of SPEC.md §9 from step 4 on.
	keys, _ := envelope.NewKeys(nil, &envelope.Peer{ID: "client", HMACKeys: []*envelope.HMACKey{key}})
	opener := &envelope.Opener{ID: "gateway", Keys: keys, Replay: exampleStore()}
	m, err := opener.OpenRouted(ctx, <-queue, &envelope.Expect{Kinds: envelope.Request, Topic: "get-card"})
	if err != nil {
		panic(err)
	}
	fmt.Printf("verified request from %s: %s\n", m.From, m.Payload)
	// Output:
	// a req claiming client, counter 42
	// verified request from client: card 8165538
}

// A sender that publishes one message at a time seals into one buffer,
// reused once the publish is done with it. The size follows from SPEC.md:
// the version byte, four 4-byte lengths, a 73-byte header (kind,
// protections, "sensor-7" and "gateway" after their lengths, the topic
// "temperature", empty reply-to, correlation id and request digest, three
// 8-byte numbers, the 12-byte HMAC key id), the 4-byte payload and the
// 32-byte HMAC tag: 1 + 16 + 73 + 4 + 32 = 126.
func ExampleSealer_SealInto() {
	key := exampleKey()
	sensor := &envelope.Sealer{ID: "sensor-7", Counter: envelope.NewMemoryCounter(0)}
	buf := make([]byte, 0, 1024)
	for _, reading := range []string{"21.5", "21.7"} {
		s, err := sensor.SealInto(buf, &envelope.Params{Kind: envelope.Event, To: []string{"gateway"},
			Topic: "temperature", HMAC: key}, []byte(reading))
		if err != nil {
			panic(err)
		}
		// Publish s.Bytes here; buf is free again once the publish returned.
		fmt.Printf("%d bytes, in buf: %v\n", len(s.Bytes), &s.Bytes[0] == &buf[:1][0])
	}
	// Output:
	// 126 bytes, in buf: true
	// 126 bytes, in buf: true
}

// A device without a real-time clock learns the time (SPEC.md §10): at
// boot its clock says 1970, so it sends the time request (iat 0, exp its
// wait) to a gateway whose policy marks it clockless, and accepts the
// reply, bound to its request, whatever the reply's timestamps; the
// reply's issue time is the gateway's clock.
func ExampleOpener_clockless() {
	ctx := context.Background()
	key := exampleKey()
	boot := func() time.Time { return time.UnixMilli(0) }
	gatewayClock := func() time.Time { return time.Date(2030, 5, 1, 12, 0, 0, 0, time.UTC) }

	device := &envelope.Sealer{ID: "device", Counter: envelope.NewMemoryCounter(0), Now: boot}
	req, err := device.Seal(&envelope.Params{Kind: envelope.Request, To: []string{"gateway"}, Topic: envelope.TimeMethod,
		ReplyTo: "mqttsec/device/reply", HMAC: key, TTL: 10 * time.Second}, nil)
	if err != nil {
		panic(err)
	}

	gwKeys, _ := envelope.NewKeys(nil, &envelope.Peer{ID: "device", HMACKeys: []*envelope.HMACKey{key},
		Policy: envelope.Policy{Clockless: true}})
	gateway := &envelope.Opener{ID: "gateway", Keys: gwKeys, Replay: exampleStore(), Now: gatewayClock}
	in, err := gateway.Open(ctx, req.Bytes, &envelope.Expect{Kinds: envelope.Request, Topic: envelope.TimeMethod})
	if err != nil {
		panic(err)
	}
	gwSealer := &envelope.Sealer{ID: "gateway", Counter: envelope.NewMemoryCounter(0), Now: gatewayClock}
	rep, err := gwSealer.Seal(&envelope.Params{Kind: envelope.Reply, InReplyTo: in, HMAC: key}, nil)
	if err != nil {
		panic(err)
	}

	devKeys, _ := envelope.NewKeys(nil, &envelope.Peer{ID: "gateway", HMACKeys: []*envelope.HMACKey{key}})
	opener := &envelope.Opener{ID: "device", Keys: devKeys, Replay: exampleStore(), Now: boot, Clockless: true}
	m, err := opener.Open(ctx, rep.Bytes, &envelope.Expect{Kinds: envelope.Reply | envelope.ErrorReply, From: "gateway", Request: req})
	if err != nil {
		panic(err)
	}
	fmt.Println("the time is", m.IssuedAt.UTC())

	// Until it has set its clock, the device can judge nothing else.
	ev, _ := gwSealer.Seal(&envelope.Params{Kind: envelope.Event, To: []string{"device"}, Topic: "news", HMAC: key}, nil)
	_, err = opener.Open(ctx, ev.Bytes, &envelope.Expect{Kinds: envelope.Event})
	fmt.Println("an event:", envelope.Class(err))
	// Output:
	// the time is 2030-05-01 12:00:00 +0000 UTC
	// an event: envelope: expired or not yet valid
}
