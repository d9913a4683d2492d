/*
 * clock.c - the time a device without a real-time clock learns from the
 * replies to its requests (SPEC.md 10), kept as an offset to its
 * monotonic clock. Arithmetic is modulo 2^64, so the offset may "wrap"
 * (a monotonic clock ahead of the real one) and still add up.
 */
#include "mqttsec_internal.h"

/* mqttsec_clock_learn: take reply_iat as the time at now_mono, unless the
 * round trip exceeded skew_ms / 2 or the estimate would move back. */
int mqttsec_clock_learn(struct mqttsec_clock *c, uint64_t reply_iat,
                        uint64_t sent_mono, uint64_t now_mono,
                        uint32_t skew_ms)
{
    if (now_mono < sent_mono || now_mono - sent_mono > skew_ms / 2) {
        return 0;
    }
    if (reply_iat > MQTTSEC_TIME_MAX) {
        return 0; /* no accepted envelope has one */
    }
    if (c->learned && reply_iat < mqttsec_clock_now(c, now_mono)) {
        return 0;
    }
    c->offset = reply_iat - now_mono;
    c->learned = 1;
    return 1;
}

/* mqttsec_clock_now: the estimate, or MQTTSEC_NO_CLOCK before learning. */
uint64_t mqttsec_clock_now(const struct mqttsec_clock *c, uint64_t now_mono)
{
    if (!c->learned) {
        return MQTTSEC_NO_CLOCK;
    }
    return now_mono + c->offset;
}
