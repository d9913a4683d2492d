/*
 * replay.c - one sender's replay window (SPEC.md 7.2).
 *
 * top is T, the highest counter accepted (0 before the first message:
 * counters start at 1). Bit i of the bitmap, bit i % 64 of word i / 64,
 * means that T - i was accepted; W = MQTTSEC_WINDOW_BITS.
 */
#include "mqttsec_internal.h"

#define WORDS (MQTTSEC_WINDOW_BITS / 64)

#if MQTTSEC_WINDOW_BITS < 64 || MQTTSEC_WINDOW_BITS % 64 != 0
#error "MQTTSEC_WINDOW_BITS must be a multiple of 64"
#endif

/* bit_is_set reads bit i (i < W) of the window. */
static int bit_is_set(const struct mqttsec_window *w, uint64_t i)
{
    return (int)((w->bits[i / 64] >> (i % 64)) & 1u);
}

/* shift moves the marks s places up (0 < s < W), so that each keeps its
 * counter when T grows by s; marks past bit W - 1 fall off. */
static void shift(struct mqttsec_window *w, uint64_t s)
{
    unsigned words = (unsigned)(s / 64), bits = (unsigned)(s % 64), i;

    for (i = WORDS; i-- > 0;) {
        uint64_t v = 0;

        if (i >= words) {
            v = w->bits[i - words] << bits;
        }
        if (bits != 0 && i >= words + 1) {
            v |= w->bits[i - words - 1] >> (64 - bits);
        }
        w->bits[i] = v;
    }
}

/* clear_all forgets every mark. */
static void clear_all(struct mqttsec_window *w)
{
    unsigned i;

    for (i = 0; i < WORDS; i++) {
        w->bits[i] = 0;
    }
}

/* mqttsec_window_check: fresh above T (or in an empty window), too old at
 * W or more below it, a replay when marked. */
const char *mqttsec_window_check(const struct mqttsec_window *w, uint64_t ctr)
{
    uint64_t d;

    if (w->top == 0 || ctr > w->top) {
        return NULL;
    }
    d = w->top - ctr;
    if (d >= MQTTSEC_WINDOW_BITS) {
        return "replay-old";
    }
    return bit_is_set(w, d) ? "replay-seen" : NULL;
}

/* mqttsec_window_admit: the check, then the mark; a counter above T moves
 * the window up to it. */
const char *mqttsec_window_admit(struct mqttsec_window *w, uint64_t ctr)
{
    const char *rule = mqttsec_window_check(w, ctr);
    uint64_t d;

    if (rule != NULL) {
        return rule;
    }
    if (ctr > w->top) {
        if (w->top == 0 || ctr - w->top >= MQTTSEC_WINDOW_BITS) {
            clear_all(w);
        } else {
            shift(w, ctr - w->top);
        }
        w->top = ctr;
    }
    d = w->top - ctr;
    w->bits[d / 64] |= (uint64_t)1 << (d % 64);
    return NULL;
}
