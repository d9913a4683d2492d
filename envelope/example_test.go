package envelope_test

import (
	"context"
	"crypto/ecdh"
	"crypto/ed25519"
	"crypto/hpke"
	"errors"
	"fmt"

	"github.com/mqttsec/mqttsec/envelope"
)

// A request with an HMAC and its reply, bound to each other.
func Example() {
	ctx := context.Background()
	secret := make([]byte, 32) // in real use: 32 random bytes shared out of band
	copy(secret, "an example key, never use it!!!")
	key, _ := envelope.NewHMACKey(secret)

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
	// verify, and the counter must be new.
	gwStore, _ := envelope.NewMemoryStore(0)
	gwKeys, _ := envelope.NewKeys(nil, &envelope.Peer{
		ID: "client", HMACKeys: []*envelope.HMACKey{key}, Policy: envelope.Policy{Require: envelope.HMAC},
	})
	gateway := &envelope.Opener{ID: "gateway", Keys: gwKeys, Replay: gwStore}
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

	clStore, _ := envelope.NewMemoryStore(0)
	clKeys, _ := envelope.NewKeys(nil, &envelope.Peer{ID: "gateway", HMACKeys: []*envelope.HMACKey{key}})
	opener := &envelope.Opener{ID: "client", Keys: clKeys, Replay: clStore}
	out, err := opener.Open(ctx, rep.Bytes, &envelope.Expect{
		Kinds: envelope.Reply | envelope.ErrorReply, From: "gateway", InReplyTo: req.Digest[:],
	})
	if err != nil {
		panic(err)
	}
	fmt.Printf("client got %s: %s\n", out.Kind, out.Payload)
	// Output:
	// gateway got get-card from client: {"card":8165538}
	// again: true
	// client got rep: {"name":"Dana"}
}

// An event signed with Ed25519 and encrypted to two recipients with the
// post-quantum hybrid HPKE KEM.
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
		store, _ := envelope.NewMemoryStore(0)
		keys, _ := envelope.NewKeys([]envelope.Identity{identities[i]}, &envelope.Peer{
			ID: "door-controller", Verifiers: []envelope.Verifier{verifier},
			Policy: envelope.Policy{Require: envelope.Signature | envelope.Encryption},
		})
		o := &envelope.Opener{ID: name, Keys: keys, Replay: store}
		m, err := o.Open(context.Background(), ev.Bytes, &envelope.Expect{Kinds: envelope.Event, From: "door-controller"})
		fmt.Println(name, string(m.Payload), m.Protections, err)
	}
	// Output:
	// audit {"door":3} enc+sig <nil>
	// alarm {"door":3} enc+sig <nil>
}

// Class turns any Open error into one of the package's error classes, for
// counting and logging rejections without detail.
func ExampleClass() {
	o := &envelope.Opener{ID: "gateway"}
	_, err := o.Open(context.Background(), []byte(`{"v":1,"h":"not base64!"}`), nil)
	fmt.Println(envelope.Class(err))
	_, err = o.Open(context.Background(), []byte(`{"v":2,"h":""}`), nil)
	fmt.Println(envelope.Class(err))
	// Output:
	// envelope: malformed
	// envelope: unsupported version
}

// Receivers find their own key by the key id in each wrapped key.
func ExamplePublicKeyID() {
	k, _ := hpke.DHKEM(ecdh.X25519()).NewPrivateKey(make([]byte, 32))
	r, _ := envelope.NewHPKERecipient(k.PublicKey())
	fmt.Println(r.KeyID() == envelope.PublicKeyID(envelope.HPKEX25519, k.PublicKey().Bytes()))
	// Output: true
}

// A receiver with many requests pending looks at the unverified header to
// find which one a reply claims to answer, then opens it against exactly
// that request, parsing it only once.
func ExampleOpener_OpenInspected() {
	ctx := context.Background()
	secret := make([]byte, 32) // in real use: 32 random bytes shared out of band
	copy(secret, "an example key, never use it!!!")
	key, _ := envelope.NewHMACKey(secret)
	client := &envelope.Sealer{ID: "client", Counter: envelope.NewMemoryCounter(0)}
	gateway := &envelope.Sealer{ID: "gateway", Counter: envelope.NewMemoryCounter(0)}

	// Two requests are pending, by digest.
	pending := map[[32]byte]string{}
	var last *envelope.Sealed
	for _, method := range []string{"get-card", "get-door"} {
		req, err := client.Seal(&envelope.Params{Kind: envelope.Request, To: []string{"gateway"}, Topic: method,
			ReplyTo: "mqttsec/client/reply", HMAC: key}, nil)
		if err != nil {
			panic(err)
		}
		pending[req.Digest] = method
		last = req
	}
	// The gateway answers the second (its Open is in the package example).
	store, _ := envelope.NewMemoryStore(0)
	gwKeys, _ := envelope.NewKeys(nil, &envelope.Peer{ID: "client", HMACKeys: []*envelope.HMACKey{key}})
	in, err := (&envelope.Opener{ID: "gateway", Keys: gwKeys, Replay: store}).Open(ctx, last.Bytes, &envelope.Expect{Kinds: envelope.Request})
	if err != nil {
		panic(err)
	}
	rep, err := gateway.Seal(&envelope.Params{Kind: envelope.Reply, InReplyTo: in, HMAC: key}, []byte("door 3"))
	if err != nil {
		panic(err)
	}

	// The client routes by the unverified header, then opens.
	h, err := envelope.Inspect(rep.Bytes, 0)
	if err != nil {
		panic(err)
	}
	if len(h.InReplyTo) != 32 { // a request or event names no request
		panic("not a reply")
	}
	digest := [32]byte(h.InReplyTo)
	fmt.Println("claims to answer:", pending[digest])
	clKeys, _ := envelope.NewKeys(nil, &envelope.Peer{ID: "gateway", HMACKeys: []*envelope.HMACKey{key}})
	clStore, _ := envelope.NewMemoryStore(0)
	opener := &envelope.Opener{ID: "client", Keys: clKeys, Replay: clStore}
	m, err := opener.OpenInspected(ctx, h, &envelope.Expect{
		Kinds: envelope.Reply | envelope.ErrorReply, From: "gateway", InReplyTo: digest[:],
	})
	if err != nil {
		panic(err)
	}
	fmt.Printf("verified reply: %s\n", m.Payload)
	// Output:
	// claims to answer: get-door
	// verified reply: door 3
}

// The binary form (version 2): the same request, a quarter smaller, whose
// reply comes back in the same form.
func ExampleSealer_Seal_binary() {
	ctx := context.Background()
	secret := make([]byte, 32) // in real use: 32 random bytes shared out of band
	copy(secret, "an example key, never use it!!!")
	key, _ := envelope.NewHMACKey(secret)
	client := &envelope.Sealer{ID: "client", Counter: envelope.NewMemoryCounter(0)}
	params := func(version int) *envelope.Params {
		return &envelope.Params{Kind: envelope.Request, To: []string{"gateway"}, Topic: "get-card",
			ReplyTo: "mqttsec/client/reply", HMAC: key, CorrelationID: []byte("one"), Version: version}
	}
	payload := make([]byte, 256)
	text, err := client.Seal(params(envelope.Version1), payload)
	if err != nil {
		panic(err)
	}
	binary, err := client.Seal(params(envelope.Version2), payload)
	if err != nil {
		panic(err)
	}
	fmt.Printf("text %d bytes, starts %q; binary %d bytes, starts %#x\n", len(text.Bytes), text.Bytes[:5], len(binary.Bytes), binary.Bytes[0])

	// A receiver opens either; a reply takes its request's version.
	store, _ := envelope.NewMemoryStore(0)
	keys, _ := envelope.NewKeys(nil, &envelope.Peer{ID: "client", HMACKeys: []*envelope.HMACKey{key}})
	gateway := &envelope.Opener{ID: "gateway", Keys: keys, Replay: store}
	in, err := gateway.Open(ctx, binary.Bytes, &envelope.Expect{Kinds: envelope.Request})
	if err != nil {
		panic(err)
	}
	gwSealer := &envelope.Sealer{ID: "gateway", Counter: envelope.NewMemoryCounter(0)}
	rep, err := gwSealer.Seal(&envelope.Params{Kind: envelope.Reply, InReplyTo: in, HMAC: key}, nil)
	if err != nil {
		panic(err)
	}
	h, err := envelope.Inspect(rep.Bytes, 0)
	if err != nil {
		panic(err)
	}
	fmt.Printf("request version %d, reply version %d\n", in.Version, h.Version)
	// Output:
	// text 725 bytes, starts "{\"v\":"; binary 537 bytes, starts 0x2
	// request version 2, reply version 2
}

// The compact form (version 3): the binary frame with the header written as
// bytes too, the smallest of the three; a receiver reads it with no JSON
// parser, and a reply comes back in the same form.
func ExampleSealer_Seal_compact() {
	ctx := context.Background()
	secret := make([]byte, 32) // in real use: 32 random bytes shared out of band
	copy(secret, "an example key, never use it!!!")
	key, _ := envelope.NewHMACKey(secret)
	client := &envelope.Sealer{ID: "client", Counter: envelope.NewMemoryCounter(0)}
	params := func(version int) *envelope.Params {
		return &envelope.Params{Kind: envelope.Request, To: []string{"gateway"}, Topic: "get-card",
			ReplyTo: "mqttsec/client/reply", HMAC: key, CorrelationID: []byte("one"), Version: version}
	}
	payload := make([]byte, 256)
	for _, v := range []int{envelope.Version1, envelope.Version2, envelope.Version3} {
		s, err := client.Seal(params(v), payload)
		if err != nil {
			panic(err)
		}
		fmt.Printf("version %d: %d bytes\n", v, len(s.Bytes))
	}

	compact, err := client.Seal(params(envelope.Version3), payload)
	if err != nil {
		panic(err)
	}
	store, _ := envelope.NewMemoryStore(0)
	keys, _ := envelope.NewKeys(nil, &envelope.Peer{ID: "client", HMACKeys: []*envelope.HMACKey{key}})
	gateway := &envelope.Opener{ID: "gateway", Keys: keys, Replay: store}
	in, err := gateway.Open(ctx, compact.Bytes, &envelope.Expect{Kinds: envelope.Request})
	if err != nil {
		panic(err)
	}
	gwSealer := &envelope.Sealer{ID: "gateway", Counter: envelope.NewMemoryCounter(0)}
	rep, err := gwSealer.Seal(&envelope.Params{Kind: envelope.Reply, InReplyTo: in, HMAC: key}, nil)
	if err != nil {
		panic(err)
	}
	h, err := envelope.Inspect(rep.Bytes, 0)
	if err != nil {
		panic(err)
	}
	fmt.Printf("request version %d, reply version %d, first byte %#x\n", in.Version, h.Version, rep.Bytes[0])
	// Output:
	// version 1: 725 bytes
	// version 2: 537 bytes
	// version 3: 398 bytes
	// request version 3, reply version 3, first byte 0x3
}

// A sender that publishes one message at a time seals into one buffer,
// reused once the publish is done with it.
func ExampleSealer_SealInto() {
	secret := make([]byte, 32) // in real use: 32 random bytes shared out of band
	copy(secret, "an example key, never use it!!!")
	key, _ := envelope.NewHMACKey(secret)
	client := &envelope.Sealer{ID: "client", Counter: envelope.NewMemoryCounter(0)}
	buf := make([]byte, 0, 1024)
	for _, reading := range []string{"21.5", "21.7"} {
		s, err := client.SealInto(buf, &envelope.Params{Kind: envelope.Event, Topic: "temperature", HMAC: key,
			To: []string{"gateway"}, Version: envelope.Version3}, []byte(reading))
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

// A requester routes each reply to the request it claims to answer with
// Peek, and opens it there against that request.
func ExamplePeek() {
	ctx := context.Background()
	secret := make([]byte, 32) // in real use: 32 random bytes shared out of band
	copy(secret, "an example key, never use it!!!")
	key, _ := envelope.NewHMACKey(secret)
	client := &envelope.Sealer{ID: "client", Counter: envelope.NewMemoryCounter(0)}
	req, err := client.Seal(&envelope.Params{Kind: envelope.Request, To: []string{"gateway"}, Topic: "get-card",
		ReplyTo: "mqttsec/client/reply", HMAC: key}, []byte(`{"card":42}`))
	if err != nil {
		panic(err)
	}
	waiting := map[[32]byte]string{req.Digest: "get-card #1"}

	// The gateway's side: open the request, answer it.
	store, _ := envelope.NewMemoryStore(0)
	gwKeys, _ := envelope.NewKeys(nil, &envelope.Peer{ID: "client", HMACKeys: []*envelope.HMACKey{key}})
	gateway := &envelope.Opener{ID: "gateway", Keys: gwKeys, Replay: store}
	in, err := gateway.Open(ctx, req.Bytes, &envelope.Expect{Kinds: envelope.Request})
	if err != nil {
		panic(err)
	}
	gwSealer := &envelope.Sealer{ID: "gateway", Counter: envelope.NewMemoryCounter(0)}
	reply, err := gwSealer.Seal(&envelope.Params{Kind: envelope.Reply, InReplyTo: in, HMAC: key}, []byte(`{"name":"Ada"}`))
	if err != nil {
		panic(err)
	}

	// The client's side: route the reply, then open it against its request.
	route, err := envelope.Peek(reply.Bytes, 0)
	if err != nil {
		panic(err)
	}
	fmt.Println(route.Kind == envelope.Reply, waiting[route.InReplyTo])
	clStore, _ := envelope.NewMemoryStore(0)
	clKeys, _ := envelope.NewKeys(nil, &envelope.Peer{ID: "gateway", HMACKeys: []*envelope.HMACKey{key}})
	opener := &envelope.Opener{ID: "client", Keys: clKeys, Replay: clStore}
	m, err := opener.Open(ctx, reply.Bytes, &envelope.Expect{Kinds: envelope.Reply, From: "gateway", InReplyTo: req.Digest[:], CorrelationID: req.CorrelationID})
	if err != nil {
		panic(err)
	}
	fmt.Printf("%s\n", m.Payload)
	// Output:
	// true get-card #1
	// {"name":"Ada"}
}
