/*
 * frame.c - the frame of SPEC.md section 2 (step 2 of opening), the digest
 * D and the authenticated block A of section 4.1, and big-endian integers.
 */
#include <string.h>

#include "mqttsec_crypto.h"
#include "mqttsec_internal.h"

/* mqttsec_get_u32 reads a big-endian u32. */
uint32_t mqttsec_get_u32(const uint8_t *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 |
           (uint32_t)p[2] << 8 | (uint32_t)p[3];
}

/* mqttsec_get_u64 reads a big-endian u64. */
uint64_t mqttsec_get_u64(const uint8_t *p)
{
    return (uint64_t)mqttsec_get_u32(p) << 32 | mqttsec_get_u32(p + 4);
}

/* mqttsec_put_u16 writes a big-endian u16. */
void mqttsec_put_u16(uint8_t *p, uint16_t v)
{
    p[0] = (uint8_t)(v >> 8);
    p[1] = (uint8_t)v;
}

/* mqttsec_put_u32 writes a big-endian u32. */
void mqttsec_put_u32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)(v >> 24);
    p[1] = (uint8_t)(v >> 16);
    p[2] = (uint8_t)(v >> 8);
    p[3] = (uint8_t)v;
}

/* mqttsec_put_u64 writes a big-endian u64. */
void mqttsec_put_u64(uint8_t *p, uint64_t v)
{
    mqttsec_put_u32(p, (uint32_t)(v >> 32));
    mqttsec_put_u32(p + 4, (uint32_t)v);
}

/* read_member reads one member of the frame at *pos: its u32 length, then
 * that many bytes. A length field cut short is frame-cut, a member that
 * runs past the end frame-len. */
static const char *read_member(const uint8_t *env, size_t len, size_t *pos,
                               struct mqttsec_bytes *member)
{
    uint32_t n;

    if (len - *pos < 4) {
        return "frame-cut";
    }
    n = mqttsec_get_u32(env + *pos);
    *pos += 4;
    if (n > len - *pos) {
        return "frame-len";
    }
    member->p = env + *pos;
    member->len = n;
    *pos += n;
    return NULL;
}

/* first_byte judges the version byte alone (SPEC.md 2). */
static int first_byte(uint8_t b, const char **rule)
{
    if (b == MQTTSEC_VERSION) {
        return MQTTSEC_OK;
    }
    if (b > MQTTSEC_VERSION && b <= MQTTSEC_LAST_RESERVED) {
        *rule = "frame-future";
        return MQTTSEC_E_UNSUPPORTED_VERSION;
    }
    *rule = "frame-version";
    return MQTTSEC_E_MALFORMED;
}

/* mqttsec_frame_read: step 2. The first byte first and alone, then the
 * four lengths, then nothing may follow S. */
int mqttsec_frame_read(const uint8_t *env, size_t len,
                       struct mqttsec_frame *f, const char **rule)
{
    size_t pos = 1;
    int rc;

    memset(f, 0, sizeof *f);
    *rule = NULL;
    if (len == 0) {
        *rule = "frame-cut";
        return MQTTSEC_E_MALFORMED;
    }
    rc = first_byte(env[0], rule);
    if (rc != MQTTSEC_OK) {
        return rc;
    }
    if (len < MQTTSEC_FRAME_MIN) {
        *rule = "frame-cut";
        return MQTTSEC_E_MALFORMED;
    }
    f->env = env;
    *rule = read_member(env, len, &pos, &f->h);
    if (*rule == NULL) {
        *rule = read_member(env, len, &pos, &f->p);
    }
    f->signed_len = pos;
    if (*rule == NULL) {
        *rule = read_member(env, len, &pos, &f->m);
    }
    if (*rule == NULL) {
        *rule = read_member(env, len, &pos, &f->s);
    }
    if (*rule == NULL && pos != len) {
        *rule = "frame-trailing";
    }
    f->aad_len = 5 + f->h.len;
    return *rule == NULL ? MQTTSEC_OK : MQTTSEC_E_MALFORMED;
}

/* mqttsec_digest: D = SHA-256("mqttsec.v1." || E[0 : 9 + len(H) + len(P)]),
 * hashed in two parts so the envelope is never copied. */
int mqttsec_digest(const struct mqttsec_frame *f,
                   uint8_t d[MQTTSEC_DIGEST_LEN])
{
    struct mqttsec_bytes parts[2];

    parts[0].p = (const uint8_t *)MQTTSEC_SI_PREFIX;
    parts[0].len = MQTTSEC_SI_PREFIX_LEN;
    parts[1].p = f->env;
    parts[1].len = f->signed_len;
    return mqttsec_sha256(parts, 2, d);
}

/* mqttsec_auth_block: A = "mqttsec.v1.digest." || D, 50 bytes. */
void mqttsec_auth_block(const uint8_t d[MQTTSEC_DIGEST_LEN],
                        uint8_t a[MQTTSEC_A_LEN])
{
    memcpy(a, MQTTSEC_A_PREFIX, MQTTSEC_A_PREFIX_LEN);
    memcpy(a + MQTTSEC_A_PREFIX_LEN, d, MQTTSEC_DIGEST_LEN);
}
