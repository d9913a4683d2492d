// Package envelope seals and opens mqttsec messages: the end-to-end security
// layer that lets two programs trust what they exchange through an MQTT
// broker they do not trust.
//
// An envelope carries an authenticated header (sender, recipients, kind,
// method or topic, reply-to, correlation id, counter, timestamps, the request
// a reply answers, and the protections applied with their key ids) and a
// payload. The wire format is specified byte by byte in SPEC.md, with test
// vectors in testdata/vectors. It comes in three forms of the same header
// value and protections: [Version1], a JSON text with base64url members;
// [Version2], the same members as bytes after their lengths, smaller and
// with no base64url coding of the payload on either side; and [Version3],
// version 2's frame with the header written as bytes instead of JSON, the
// smallest and quickest to read, which a receiver reads with no JSON parser.
//
// # Protections
//
// Each message carries any combination of:
//   - an HMAC-SHA-256 tag under a per-peer key ([NewHMACKey]);
//   - an RFC 4226 HOTP code for the message counter ([NewHOTPKey]), only
//     beside real authentication;
//   - a signature: Ed25519, ECDSA P-256 or RSA-PSS ([NewEd25519Signer],
//     [NewECDSASigner], [NewRSASigner]);
//   - AES-256-GCM encryption under a pre-shared key ([NewAEADKey]) or a
//     per-message key wrapped to each recipient with HPKE X25519, HPKE
//     MLKEM768-X25519 or RSA-OAEP ([NewHPKERecipient], [NewRSARecipient]).
//
// Each message is hashed once with SHA-256; its MAC and signature cover that
// digest (SPEC.md §4.1), which is also what binds a reply to its request.
//
// Every message must authenticate its sender with an HMAC, a signature or a
// pre-shared key. A receiver's [Policy] per peer says which protections it
// requires, so a message stripped of one is refused.
//
// # Opening
//
// [Opener.Open] runs the checks of SPEC.md §9 in order, cheapest first: size,
// format, header, context ([Expect]), policy, freshness, HMAC and HOTP,
// replay pre-check (when a signature or decryption follows), signature,
// decryption, and finally the atomic update of the sender's replay window
// in the [ReplayStore]. So a forged message an HMAC refuses never reaches
// the store, and a replay is refused before any public-key work or
// decryption. Each failure wraps one error
// class ([ErrMalformed], [ErrAuthentication], [ErrReplayed], ...; see
// [Class]) and never says more about the message than its class
// ([ErrReplayStore] also carries the replay store's own error, which is
// about the receiver). A receiver that must route
// by the unverified header first uses [Inspect], then
// [Opener.OpenInspected], which does not parse the envelope again; or
// [Peek], which reads only the kind and request digest and keeps nothing,
// then [Opener.Open] wherever the message was routed.
//
// # Request and reply
//
// [Sealer.Seal] returns the request's digest; a reply sealed with
// Params.InReplyTo carries it, and the requester opens replies with
// Expect.InReplyTo set to it, so a reply cannot answer another request and a
// request cannot come back as a reply.
//
// # Key management
//
// Key ids are derived from the keys (SPEC.md §6) and carried in every
// envelope; a [Peer] may hold several keys of each kind, so keys rotate by
// adding the new key on receivers, switching senders to it, then removing
// the old one. Keys print as their id only.
//
// # Backwards compatibility
//
// The format is versioned. This package reads versions 1, 2 and 3 and
// refuses others with [ErrUnsupportedVersion]. It writes version 3 (the
// constant [Version]) unless Params.Version asks for another, and seals a
// reply in its request's version, so a peer that speaks only version 1
// gets its replies in version 1. Set Params.Version to [Version1] for
// requests and events to a peer that reads only the text form.
package envelope
