// Package envelope seals and opens mqttsec messages: the end-to-end security
// layer that lets two programs trust what they exchange through an MQTT
// broker they do not trust.
//
// An envelope carries an authenticated header (sender, recipients, kind,
// method or topic, reply-to, correlation id, counter, timestamps, the
// request a reply answers, and the protections applied with their key ids)
// and a payload. The wire format, Envelope 1.0, is one binary format
// specified byte by byte in SPEC.md, with test vectors in testdata/vectors.
// Where only text can be carried or shown, an envelope travels as the
// base64url of its bytes (an armor, not a second format).
//
// # Protections
//
// Each message carries any combination of:
//   - an HMAC-SHA-256 tag under a per-peer key (NewHMACKey);
//   - an RFC 4226 HOTP code for the message counter (NewHOTPKey), only beside real
//     authentication;
//   - a signature: Ed25519, ECDSA P-256 or RSA-PSS (NewEd25519Signer,
//     NewECDSASigner, NewRSASigner);
//   - AES-256-GCM encryption under a pre-shared key (NewAEADKey) or a per-message
//     key wrapped to each recipient with HPKE X25519, HPKE MLKEM768-X25519 or
//     RSA-OAEP (NewHPKERecipient, NewRSARecipient).
//
// Each message is hashed once with SHA-256; its MAC and signature cover that
// digest (SPEC.md §4.1), which is also what binds a reply to its request.
//
// Every message must authenticate its sender with an HMAC, a signature or a
// pre-shared key. A receiver's Policy per peer says which protections it
// requires, so a message stripped of one is refused.
//
// # Opening
//
// Opener.Open runs the checks of SPEC.md §9 in order, cheapest first: size,
// frame, header, context (Expect), policy, freshness, HMAC and HOTP, replay
// pre-check (when a signature or decryption follows), signature,
// decryption, and finally the atomic update of the sender's replay window
// in the ReplayStore. So a forged message an HMAC refuses never reaches the
// store, and a replay is refused before any public-key work or decryption.
// Each failure wraps one error class (ErrMalformed, ErrAuthentication,
// ErrReplayed, ...; see Class) and never says more about the message than
// its class (ErrReplayStore also carries the replay store's own error,
// which is about the receiver).
//
// A receiver that must route a message before opening it (to the request a
// reply claims to answer, or to its sender's queue) reads it with Route,
// whose unverified claims (Routed.From, Routed.InReplyTo, ...) route it,
// and opens it where it was routed with Opener.OpenRouted, which does not
// read it again. Peek returns the same claims as a Header and keeps
// nothing of the message.
//
// # Request and reply
//
// Sealer.Seal returns the request as Sealed; a reply sealed with
// Params.InReplyTo carries the request's digest, and the requester opens
// replies with Expect.Request set to the Sealed request, so a reply cannot
// answer another request and a request cannot come back as a reply.
//
// # Devices without a clock
//
// A receiver without a real-time clock (Opener.Clockless) accepts replies
// to its pending requests, which their binding proves fresh, and learns the
// time from them; a responder answers such a peer's time request
// (TimeMethod, Policy.Clockless) whatever its timestamps. SPEC.md §10 says
// how a device keeps and uses the time it learns.
//
// # Key management
//
// Key ids are derived from the keys (SPEC.md §6) and carried in every
// envelope; a Peer may hold several keys of each kind, so keys rotate by
// adding the new key on receivers, switching senders to it, then removing
// the old one. Keys print as their id only.
//
// # Replay state
//
// Open keeps each sender's replay window in a ReplayStore; the stores (in
// memory, in a crash-safe file, in Redis) are in package
// github.com/mqttsec/mqttsec/mqttsec/replay.
//
// # Versions
//
// This package reads and writes Envelope 1.0, whose first byte is 0x01
// (Version). A later format will begin with another byte; this package
// refuses it with ErrUnsupportedVersion.
package envelope
