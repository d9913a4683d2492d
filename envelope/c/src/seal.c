/*
 * seal.c - mqttsec_seal (SPEC.md 5): the header from struct mqttsec_seal,
 * checked with the receiver's own step-3 rules, then the payload (or its
 * AES-256-GCM encryption under the pre-shared key), D and A, the HMAC tag
 * and the ES256 signature over A.
 */
#include <string.h>

#include "mqttsec_crypto.h"
#include "mqttsec_internal.h"

/* A header being sealed, with room for what it views that the caller does
 * not hold in wire form: the one recipient as a str8, and the HOTP code. */
struct sealing {
    struct mqttsec_header h;
    uint8_t to[1 + MQTTSEC_MAX_ID];
    uint8_t code[8];
    size_t h_len, p_len, m_len, s_len, total;
};

/* text views a NUL-terminated string, NULL as empty, of at most max + 1
 * bytes: one more than max lets the header check refuse it. */
static struct mqttsec_bytes text(const char *s, size_t max)
{
    struct mqttsec_bytes b = {NULL, 0};

    if (s != NULL) {
        b.p = (const uint8_t *)s;
        b.len = mqttsec_strnlen(s, max);
    }
    return b;
}

/* kind_fits: one of the four kinds (hdr-kind; the header check assumes
 * a known kind). */
static int kind_fits(uint8_t kind)
{
    return kind == MQTTSEC_REQ || kind == MQTTSEC_REP || kind == MQTTSEC_EVT ||
           kind == MQTTSEC_ERR;
}

/* keys_fit: the keys given are of their uses, and one of them
 * authenticates the sender (SPEC.md 5). */
static int keys_fit(const struct mqttsec_seal *s)
{
    if (s->mac == NULL && s->psk == NULL && s->sig == NULL) {
        return 0;
    }
    return (s->mac == NULL || s->mac->use == MQTTSEC_KEY_HS256) &&
           (s->hotp == NULL || (s->hotp->use == MQTTSEC_KEY_HOTP &&
                                (s->hotp->digits == 6 || s->hotp->digits == 8))) &&
           (s->psk == NULL || s->psk->use == MQTTSEC_KEY_A256GCM);
}

/* set_to puts the one recipient, if any, into z as the run of str8 ids
 * of the header. */
static int set_to(const struct mqttsec_seal *s, struct sealing *z)
{
    size_t n;

    if (s->to == NULL) {
        return MQTTSEC_OK; /* an event to any subscriber */
    }
    n = mqttsec_strnlen(s->to, MQTTSEC_MAX_ID);
    if (n > MQTTSEC_MAX_ID) {
        return MQTTSEC_E_ARGUMENT;
    }
    z->to[0] = (uint8_t)n;
    memcpy(z->to + 1, s->to, n);
    z->h.n_to = 1;
    z->h.to.p = z->to;
    z->h.to.len = 1 + n;
    return MQTTSEC_OK;
}

/* set_protections sets prot and the key ids from the keys given, and
 * computes the HOTP code for the counter. */
static int set_protections(const struct mqttsec_seal *s, struct sealing *z)
{
    struct mqttsec_header *h = &z->h;

    if (s->psk != NULL) {
        h->prot |= MQTTSEC_ENC;
        h->psk_kid = s->psk->kid;
    }
    if (s->mac != NULL) {
        h->prot |= MQTTSEC_HMAC;
        h->mac_kid = s->mac->kid;
    }
    if (s->sig != NULL) {
        h->prot |= MQTTSEC_SIG;
        h->sig_alg = MQTTSEC_SIG_ES256;
        h->sig_kid = s->sig->kid;
    }
    if (s->hotp != NULL) {
        h->prot |= MQTTSEC_HOTP;
        h->hotp_kid = s->hotp->kid;
        h->hotp_code.p = z->code;
        h->hotp_code.len = s->hotp->digits;
        if (mqttsec_hotp(s->hotp, s->ctr, z->code) != 0) {
            return MQTTSEC_E_CRYPTO;
        }
    }
    return MQTTSEC_OK;
}

/* set_context copies the parties, topics, ids, counter and times. */
static int set_context(const struct mqttsec_seal *s, struct sealing *z)
{
    struct mqttsec_header *h = &z->h;

    if (s->from == NULL || s->topic == NULL ||
        (s->corr == NULL && s->corr_len > 0)) {
        return MQTTSEC_E_ARGUMENT;
    }
    h->kind = s->kind;
    h->from = text(s->from, MQTTSEC_MAX_ID);
    h->topic = text(s->topic, MQTTSEC_MAX_TOPIC);
    h->reply_to = text(s->reply_to, MQTTSEC_MAX_TOPIC);
    h->corr.p = s->corr;
    h->corr.len = s->corr_len;
    if (s->re != NULL) {
        h->re.p = s->re;
        h->re.len = MQTTSEC_DIGEST_LEN;
    }
    h->ctr = s->ctr;
    h->iat = s->iat;
    h->exp = s->exp;
    return set_to(s, z);
}

/* set_sizes works out the members' lengths and the envelope's; every
 * member length must fit its u32. */
static int set_sizes(const struct mqttsec_seal *s, struct sealing *z)
{
    uint64_t total;

    if (s->payload_len > UINT32_MAX - MQTTSEC_GCM_OVERHEAD) {
        return MQTTSEC_E_ARGUMENT;
    }
    z->h_len = mqttsec_header_len(&z->h);
    z->p_len = s->payload_len + (s->psk != NULL ? MQTTSEC_GCM_OVERHEAD : 0);
    z->m_len = s->mac != NULL ? MQTTSEC_MAC_LEN : 0;
    z->s_len = s->sig != NULL ? MQTTSEC_SIG_LEN : 0;
    total = (uint64_t)MQTTSEC_FRAME_MIN + z->h_len + z->p_len + z->m_len + z->s_len;
    if (total > SIZE_MAX) {
        return MQTTSEC_E_ARGUMENT;
    }
    z->total = (size_t)total;
    return MQTTSEC_OK;
}

/* build makes the checked header of s and the sizes: ARGUMENT for
 * anything a receiver's step 3 would refuse, or no sender
 * authentication. */
static int build(const struct mqttsec_seal *s, struct sealing *z)
{
    int rc;

    memset(z, 0, sizeof *z);
    if (s == NULL || !kind_fits(s->kind) || !keys_fit(s) ||
        (s->payload == NULL && s->payload_len > 0)) {
        return MQTTSEC_E_ARGUMENT;
    }
    rc = set_context(s, z);
    if (rc == MQTTSEC_OK) {
        rc = set_protections(s, z);
    }
    if (rc == MQTTSEC_OK && mqttsec_header_check(&z->h) != NULL) {
        rc = MQTTSEC_E_ARGUMENT;
    }
    if (rc == MQTTSEC_OK) {
        rc = set_sizes(s, z);
    }
    return rc;
}

/* put_member_len writes a member's u32 length at *pos and moves past it. */
static void put_member_len(uint8_t *out, size_t *pos, size_t len)
{
    mqttsec_put_u32(out + *pos, (uint32_t)len);
    *pos += 4;
}

/* write_payload writes P at out + pos: the payload, or nonce || ciphertext
 * || tag under the pre-shared key with E[0 : 5 + len(H)] as associated
 * data. */
static int write_payload(const struct mqttsec_seal *s, const struct sealing *z,
                         uint8_t *out, size_t pos)
{
    uint8_t *nonce = out + pos;

    if (s->psk == NULL) {
        if (s->payload_len > 0) {
            memmove(out + pos, s->payload, s->payload_len);
        }
        return MQTTSEC_OK;
    }
    if (mqttsec_random(nonce, MQTTSEC_NONCE_LEN) != 0 ||
        mqttsec_gcm_seal(s->psk->k, nonce, out, 5 + z->h_len, s->payload,
                         s->payload_len, nonce + MQTTSEC_NONCE_LEN,
                         nonce + MQTTSEC_NONCE_LEN + s->payload_len) != 0) {
        return MQTTSEC_E_CRYPTO;
    }
    return MQTTSEC_OK;
}

/* write_tags writes len(M) || M || len(S) || S at out + pos over A. */
static int write_tags(const struct mqttsec_seal *s, const struct sealing *z,
                      const uint8_t a[MQTTSEC_A_LEN], uint8_t *out, size_t pos)
{
    struct mqttsec_bytes part;
    uint8_t hash[32];

    part.p = a;
    part.len = MQTTSEC_A_LEN;
    put_member_len(out, &pos, z->m_len);
    if (s->mac != NULL &&
        mqttsec_hmac_sha256(s->mac->k, s->mac->len, &part, 1, out + pos) != 0) {
        return MQTTSEC_E_CRYPTO;
    }
    pos += z->m_len;
    put_member_len(out, &pos, z->s_len);
    if (s->sig != NULL && (mqttsec_sha256(&part, 1, hash) != 0 ||
                           mqttsec_p256_sign(s->sig->d, hash, out + pos) != 0)) {
        return MQTTSEC_E_CRYPTO;
    }
    return MQTTSEC_OK;
}

/* write_envelope writes the envelope of the built z into out and D into
 * d (SPEC.md 5). */
static int write_envelope(const struct mqttsec_seal *s, const struct sealing *z,
                          uint8_t *out, uint8_t d[MQTTSEC_DIGEST_LEN])
{
    struct mqttsec_frame f;
    uint8_t a[MQTTSEC_A_LEN];
    size_t pos = 1;
    int rc;

    out[0] = MQTTSEC_VERSION;
    put_member_len(out, &pos, z->h_len);
    mqttsec_header_write(&z->h, out + pos);
    pos += z->h_len;
    put_member_len(out, &pos, z->p_len);
    rc = write_payload(s, z, out, pos);
    if (rc != MQTTSEC_OK) {
        return rc;
    }
    pos += z->p_len;
    memset(&f, 0, sizeof f);
    f.env = out;
    f.signed_len = pos;
    if (mqttsec_digest(&f, d) != 0) {
        return MQTTSEC_E_CRYPTO;
    }
    mqttsec_auth_block(d, a);
    return write_tags(s, z, a, out, pos);
}

/* mqttsec_seal: build and check, then write. On failure out holds no part
 * of an envelope. */
int mqttsec_seal(const struct mqttsec_seal *s, uint8_t *out, size_t cap,
                 size_t *out_len, uint8_t digest[MQTTSEC_DIGEST_LEN])
{
    struct sealing z;
    uint8_t d[MQTTSEC_DIGEST_LEN];
    int rc = build(s, &z);

    if (rc != MQTTSEC_OK) {
        return rc;
    }
    if (out == NULL || out_len == NULL) {
        return MQTTSEC_E_ARGUMENT;
    }
    if (cap < z.total) {
        return MQTTSEC_E_BUFFER;
    }
    rc = write_envelope(s, &z, out, d);
    if (rc != MQTTSEC_OK) {
        mqttsec_wipe(out, z.total);
        return rc;
    }
    *out_len = z.total;
    if (digest != NULL) {
        memcpy(digest, d, sizeof d);
    }
    return MQTTSEC_OK;
}

/* mqttsec_sealed_len: the length mqttsec_seal writes for s, or 0 when it
 * would refuse s. */
size_t mqttsec_sealed_len(const struct mqttsec_seal *s)
{
    struct sealing z;

    return build(s, &z) == MQTTSEC_OK ? z.total : 0;
}
