/*
 * keys.c - keys and their ids (SPEC.md 6), and HOTP codes (SPEC.md 4.4).
 */
#include <string.h>

#include "mqttsec_crypto.h"
#include "mqttsec_internal.h"

/* The label every key id derivation begins with, and its length with the
 * 0x00 after it. */
#define KID_LABEL "mqttsec kid v1"
#define KID_LABEL_LEN 15

/* mqttsec_secret_kid: the first 12 bytes of
 * HMAC-SHA-256(secret, "mqttsec kid v1" || 0x00 || alg). */
int mqttsec_secret_kid(const char *alg, const uint8_t *secret, size_t len,
                       uint8_t kid[MQTTSEC_KID_LEN])
{
    struct mqttsec_bytes parts[2];
    uint8_t mac[32];
    int err;

    parts[0].p = (const uint8_t *)KID_LABEL; /* its NUL is the 0x00 */
    parts[0].len = KID_LABEL_LEN;
    parts[1].p = (const uint8_t *)alg;
    parts[1].len = strlen(alg);
    err = mqttsec_hmac_sha256(secret, len, parts, 2, mac);
    memcpy(kid, mac, MQTTSEC_KID_LEN);
    mqttsec_wipe(mac, sizeof mac);
    return err;
}

/* mqttsec_public_kid: the first 12 bytes of
 * SHA-256("mqttsec kid v1" || 0x00 || alg || 0x00 || pub). */
int mqttsec_public_kid(const char *alg, const uint8_t *pub, size_t len,
                       uint8_t kid[MQTTSEC_KID_LEN])
{
    struct mqttsec_bytes parts[3];
    uint8_t d[32];
    int err;

    parts[0].p = (const uint8_t *)KID_LABEL;
    parts[0].len = KID_LABEL_LEN;
    parts[1].p = (const uint8_t *)alg;
    parts[1].len = strlen(alg) + 1; /* with its NUL: the second 0x00 */
    parts[2].p = pub;
    parts[2].len = len;
    err = mqttsec_sha256(parts, 3, d);
    memcpy(kid, d, MQTTSEC_KID_LEN);
    return err;
}

/* size_fits says whether len bytes of material suit use (SPEC.md 4.2),
 * and digits the HOTP digit count (0 for the other uses). */
static int size_fits(enum mqttsec_key_use use, size_t len, unsigned digits)
{
    switch (use) {
    case MQTTSEC_KEY_HS256:
        return len >= 32 && len <= 64 && digits == 0;
    case MQTTSEC_KEY_HOTP:
        return len >= 16 && len <= 64 && (digits == 6 || digits == 8);
    case MQTTSEC_KEY_A256GCM:
        return len == 32 && digits == 0;
    case MQTTSEC_KEY_ES256:
        return len == 65 && digits == 0;
    default:
        return 0;
    }
}

/* derive_kid derives the id of a key whose material is in place. */
static int derive_kid(struct mqttsec_key *key)
{
    switch (key->use) {
    case MQTTSEC_KEY_HS256:
        return mqttsec_secret_kid("HS256", key->k, key->len, key->kid);
    case MQTTSEC_KEY_HOTP:
        return mqttsec_secret_kid("HOTP", key->k, key->len, key->kid);
    case MQTTSEC_KEY_A256GCM:
        return mqttsec_secret_kid("A256GCM", key->k, key->len, key->kid);
    default:
        return mqttsec_public_kid("ES256", key->k, key->len, key->kid);
    }
}

/* mqttsec_key_init: check the size (and an ES256 point), copy, derive the
 * id. On failure key holds nothing. */
int mqttsec_key_init(struct mqttsec_key *key, enum mqttsec_key_use use,
                     const uint8_t *material, size_t len, unsigned digits)
{
    memset(key, 0, sizeof *key);
    if (material == NULL || !size_fits(use, len, digits)) {
        return MQTTSEC_E_ARGUMENT;
    }
    if (use == MQTTSEC_KEY_ES256 && mqttsec_p256_check(material) != 0) {
        return MQTTSEC_E_ARGUMENT;
    }
    key->use = (uint8_t)use;
    key->digits = (uint8_t)digits;
    key->len = (uint8_t)len;
    memcpy(key->k, material, len);
    if (derive_kid(key) != 0) {
        mqttsec_wipe(key, sizeof *key);
        return MQTTSEC_E_CRYPTO;
    }
    return MQTTSEC_OK;
}

/* mqttsec_signer_init: the public point of d (which checks 1 <= d < n)
 * and its key id. */
int mqttsec_signer_init(struct mqttsec_signer *s, const uint8_t d[32])
{
    memset(s, 0, sizeof *s);
    if (d == NULL || mqttsec_p256_public(d, s->pub) != 0) {
        memset(s, 0, sizeof *s);
        return MQTTSEC_E_ARGUMENT;
    }
    if (mqttsec_public_kid("ES256", s->pub, sizeof s->pub, s->kid) != 0) {
        memset(s, 0, sizeof *s);
        return MQTTSEC_E_CRYPTO;
    }
    memcpy(s->d, d, sizeof s->d);
    return MQTTSEC_OK;
}

/* mqttsec_hotp: RFC 4226 5.3. HMAC-SHA-1 over the u64 counter, dynamic
 * truncation to 31 bits, modulo 10^digits, written with leading zeros. */
int mqttsec_hotp(const struct mqttsec_key *key, uint64_t ctr, uint8_t code[8])
{
    uint8_t msg[8], mac[20] = {0};
    uint32_t bin;
    unsigned i, off;
    int err;

    mqttsec_put_u64(msg, ctr);
    err = mqttsec_hmac_sha1(key->k, key->len, msg, sizeof msg, mac);
    off = mac[19] & 0x0fu;
    bin = (uint32_t)(mac[off] & 0x7f) << 24 | (uint32_t)mac[off + 1] << 16 |
          (uint32_t)mac[off + 2] << 8 | (uint32_t)mac[off + 3];
    for (i = key->digits; i > 0; i--) {
        code[i - 1] = (uint8_t)('0' + bin % 10);
        bin /= 10;
    }
    mqttsec_wipe(mac, sizeof mac);
    return err;
}
