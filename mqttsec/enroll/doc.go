// Package enroll is Enrollment 1 (envelope/SPEC.md §14): how a device that
// no gateway knows yet gets into a gateway's keyring over the same untrusted
// broker, approved by an operator, with no step by hand on the gateway's
// machine. Both sides are here, transport-agnostic: bytes in, bytes out.
//
// # The flow
//
//  1. The device ([Device], one per boot) has its ES256 key pair and a fresh
//     PoP seed, and shows a [Code] (Device.Code, shown as Code.Text): its
//     proposed id, the [Fingerprint] of its public key and the current PoP,
//     which changes every N seconds (default 30):
//     mqttsec-enroll:1:<id>:<base64url(F)>:<base64url(PoP)>.
//  2. The operator reads the code ([ParseCode]) and sends the gateway an
//     [Approval] (Approval.MarshalBinary; [FromCode]) as an encrypted
//     Envelope 1.0 request, method mqttsec.enroll.approve ([Method]). The
//     gateway's [Registrar] takes it with Registrar.Approve
//     ([ApprovalRequest]), which refuses an approval that was not
//     encrypted, comes from an operator that may not approve, assigns the
//     operator's own id, names a revoked key, re-enrolls a known id without
//     the permission to, or is older than the one held (by the envelope's
//     counter, from the same operator). It draws a gateway nonce, nonceG,
//     for the approval.
//  3. The device publishes hellos (Device.Hello): its id, its public key, a
//     fresh nonce, the gateway's nonceG once it has it (zeros before), tags
//     under the PoPs of the present and the previous window, and its
//     signature.
//  4. The registrar matches a hello to the approval (Registrar.HandleHello):
//     after a per-id rate, a hello whose nonceG is not the approval's gets
//     a challenge carrying it (Device.AcceptChallenge takes it, and the
//     device's next hello carries it); then the fingerprint, the PoP, the
//     signature, in that order. The first hello that passes completes the
//     approval: the operator's permissions and the key are checked again,
//     and RegistrarConfig.Add adds the device (replacing the id's keys if
//     it was known); every hello that passes gets a welcome: the gateway's
//     public key, the id the device is known by, a counter floor, a tag
//     under the PoP and the gateway's signature.
//  5. The device checks the welcome against its hello and its PoPs
//     (Device.AcceptWelcome) and from then on talks to the gateway with
//     ordinary envelopes signed with its key and verified with the
//     gateway's, its counter starting at the floor.
//
// The PoP binds the approval to the device showing the code now: a photo of
// the code is good for at most 2N, and an approval made from an older one
// enrolls nothing. The fingerprint binds it to the device's key, and only
// the device can sign with it. The broker cannot put its key in the
// device's place (the fingerprint and the tags cover it) nor in the
// gateway's (the welcome's tag covers it, and the PoP never crosses the
// broker in clear), nor replay a hello or a welcome to any effect: a hello
// carries the nonceG of one approval, so a hello recorded under an earlier
// approval gets a challenge from a later one, never a welcome. SPEC.md
// §14.8 says what is not protected.
//
// # Errors
//
// Every refusal wraps one class ([ErrMalformed], [ErrContext],
// [ErrNoApproval], [ErrThrottled], [ErrFingerprint], [ErrPoP],
// [ErrSignature] for hellos, challenges and welcomes; [ErrForbidden],
// [ErrBadRequest], [ErrFull] for approvals, [ErrForbidden] and
// [ErrInternal] also for a hello that cannot complete its approval);
// [Class] returns it and Error.Name its name in SPEC.md. Neither side tells
// the other why it refused. No error, String or fmt verb shows a PoP, a
// seed or a private key (Code.String redacts the PoP); only Code.Text and
// the approval's payload hold a PoP, because they carry it.
//
// # What is kept
//
// A Device keeps its seed, the PoPs of its latest hello, the nonceG of the
// challenge it accepted and the highest window it used (its codes never go
// back with its clock), in memory. A Registrar keeps each approval, PoP and
// nonceG included, in memory until it expires (RegistrarConfig.MaxApprovals
// at most), including after it completed: a device that lost its welcome
// sends a new hello with a new nonce, which only the PoP checks and whose
// welcome only the PoP can tag, and which gets the same counter floor. That
// recovers it only while its code is current (up to 2N): after, its hellos
// are tagged under later PoPs and it needs a new approval, for which Add
// adds the same key again (Add must be idempotent for it). Nothing about a
// refused hello is kept but counts ([Registrar.Stats]) and the id's rate.
// The registrar's clock (RegistrarConfig.Clock) must not step back.
//
// The MQTT topics (<prefix>/<gateway>/enroll for hellos,
// <prefix>/<id>/enroll for challenges and welcomes), the approval's
// envelope and the keyring files are the caller's.
package enroll
