// Package interop holds only tests: the C port of Envelope 1.0
// (envelope/c), as its door program (envelope/c/examples/door) runs it,
// against the Go side, as a user runs it — examples/keygen making and
// pairing the key directories, examples/gateway and examples/client — over
// a real Mosquitto.
//
// For each protection suite the device profile has (HMAC, HMAC with
// HOTP, a pre-shared AES-256-GCM key, ECDSA P-256 signatures) the tests
// show that the Go client's open-door request reaches the door and is
// executed once, that the door's own request gets the gateway's reply
// (and its error reply), and that the door refuses, without acting or
// answering, what an attacker on the broker republishes: the client's
// captured request sent again, the same with one byte flipped, a fresh
// request altered in transit, and the captured request once more after
// the door restarted. A request that asks for its reply on another
// party's topic is not acted on either. One suite runs the door without
// trusting its real-time clock: it learns the time from the gateway
// (SPEC.md section 10).
//
// The tests run when MQTTSEC_TEST_MOSQUITTO is host:port of a Mosquitto
// and MQTTSEC_TEST_C_DOOR the path of the door binary (make -C envelope/c
// door builds envelope/c/build/door); otherwise they skip and say so.
// .ci/run sets both.
package interop
