/*
 * strerror.c - the names of results: the error classes of SPEC.md 9.1,
 * and short phrases for the caller's and the board's failures.
 */
#include "mqttsec_internal.h"

/* mqttsec_strerror: never NULL. */
const char *mqttsec_strerror(int result)
{
    switch (result) {
    case MQTTSEC_OK:
        return "ok";
    case MQTTSEC_E_TOO_LARGE:
        return "too-large";
    case MQTTSEC_E_MALFORMED:
        return "malformed";
    case MQTTSEC_E_UNSUPPORTED_VERSION:
        return "unsupported-version";
    case MQTTSEC_E_POLICY:
        return "policy";
    case MQTTSEC_E_CONTEXT:
        return "context";
    case MQTTSEC_E_UNKNOWN_KEY:
        return "unknown-key";
    case MQTTSEC_E_AUTHENTICATION:
        return "authentication";
    case MQTTSEC_E_REPLAYED:
        return "replayed";
    case MQTTSEC_E_REPLAY_STORE:
        return "replay-store";
    case MQTTSEC_E_EXPIRED:
        return "expired";
    case MQTTSEC_E_DECRYPTION:
        return "decryption";
    case MQTTSEC_E_ARGUMENT:
        return "invalid argument";
    case MQTTSEC_E_BUFFER:
        return "buffer too small";
    case MQTTSEC_E_CRYPTO:
        return "crypto failure";
    case MQTTSEC_E_COUNTER:
        return "counter failure";
    default:
        return "unknown result";
    }
}
