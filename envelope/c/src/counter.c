/*
 * counter.c - the sender's counter (SPEC.md 7.1): strictly increasing
 * across restarts, never reused.
 *
 * The counter reserves a block of values ahead and has the board store the
 * end of the block (persist) before it hands out any value in it; after a
 * restart it resumes above the last value stored, skipping what was left
 * of the block (gaps are allowed). next == 0 marks an exhausted counter:
 * 2^64 - 1 was handed out, or the stored value was 2^64 - 1.
 */
#include "mqttsec_internal.h"

/* mqttsec_counter_start: the first value is last_stored + 1, and nothing
 * above last_stored is reserved yet. */
void mqttsec_counter_start(struct mqttsec_counter *c, uint64_t last_stored,
                           uint32_t block,
                           int (*persist)(void *ctx, uint64_t upto),
                           void *ctx)
{
    c->next = last_stored + 1; /* 0 when last_stored is 2^64 - 1 */
    c->reserved = last_stored;
    c->block = block > 0 ? block : 1;
    c->persist = persist;
    c->ctx = ctx;
}

/* reserve stores the end of the next block, at most 2^64 - 1. */
static int reserve(struct mqttsec_counter *c)
{
    uint64_t upto = c->reserved + c->block;

    if (upto < c->reserved) {
        upto = UINT64_MAX;
    }
    if (c->persist == NULL || c->persist(c->ctx, upto) != 0) {
        return MQTTSEC_E_COUNTER;
    }
    c->reserved = upto;
    return MQTTSEC_OK;
}

/* mqttsec_counter_next: the next value, from a stored block. A counter
 * without a persist hook gives none: it could not survive a restart. */
int mqttsec_counter_next(struct mqttsec_counter *c, uint64_t *ctr)
{
    if (c->next == 0) {
        return MQTTSEC_E_COUNTER;
    }
    if (c->next > c->reserved && reserve(c) != MQTTSEC_OK) {
        return MQTTSEC_E_COUNTER;
    }
    *ctr = c->next;
    c->next = c->next == UINT64_MAX ? 0 : c->next + 1;
    return MQTTSEC_OK;
}
