/*
 * crypto_mbedtls.c - the seam of mqttsec_crypto.h on Mbed TLS 2.28.
 *
 * Mbed TLS's bignum code (ECDSA) allocates through its own calloc; on a
 * device, build Mbed TLS with MBEDTLS_MEMORY_BUFFER_ALLOC_C and give it a
 * static pool (see the port's README).
 */
#include "mqttsec_crypto.h"

#include <mbedtls/constant_time.h>
#include <mbedtls/ecdsa.h>
#include <mbedtls/ecp.h>
#include <mbedtls/gcm.h>
#include <mbedtls/md.h>
#include <mbedtls/platform_util.h>
#include <mbedtls/sha256.h>

int mqttsec_sha256(const struct mqttsec_bytes *parts, size_t n,
                   uint8_t out[32])
{
    mbedtls_sha256_context ctx;
    int err;
    size_t i;

    mbedtls_sha256_init(&ctx);
    err = mbedtls_sha256_starts_ret(&ctx, 0);
    for (i = 0; err == 0 && i < n; i++) {
        err = mbedtls_sha256_update_ret(&ctx, parts[i].p, parts[i].len);
    }
    if (err == 0) {
        err = mbedtls_sha256_finish_ret(&ctx, out);
    }
    mbedtls_sha256_free(&ctx);
    return err != 0;
}

/* hmac runs HMAC with the digest md over the parts. */
static int hmac(mbedtls_md_type_t md, const uint8_t *key, size_t key_len,
                const struct mqttsec_bytes *parts, size_t n, uint8_t *out)
{
    mbedtls_md_context_t ctx;
    int err;
    size_t i;

    mbedtls_md_init(&ctx);
    err = mbedtls_md_setup(&ctx, mbedtls_md_info_from_type(md), 1);
    if (err == 0) {
        err = mbedtls_md_hmac_starts(&ctx, key, key_len);
    }
    for (i = 0; err == 0 && i < n; i++) {
        err = mbedtls_md_hmac_update(&ctx, parts[i].p, parts[i].len);
    }
    if (err == 0) {
        err = mbedtls_md_hmac_finish(&ctx, out);
    }
    mbedtls_md_free(&ctx);
    return err != 0;
}

int mqttsec_hmac_sha256(const uint8_t *key, size_t key_len,
                        const struct mqttsec_bytes *parts, size_t n,
                        uint8_t out[32])
{
    return hmac(MBEDTLS_MD_SHA256, key, key_len, parts, n, out);
}

int mqttsec_hmac_sha1(const uint8_t *key, size_t key_len,
                      const uint8_t *msg, size_t msg_len, uint8_t out[20])
{
    struct mqttsec_bytes part;

    part.p = msg;
    part.len = msg_len;
    return hmac(MBEDTLS_MD_SHA1, key, key_len, &part, 1, out);
}

int mqttsec_gcm_seal(const uint8_t key[32], const uint8_t nonce[12],
                     const uint8_t *aad, size_t aad_len,
                     const uint8_t *in, size_t len, uint8_t *out,
                     uint8_t tag[16])
{
    mbedtls_gcm_context ctx;
    int err;

    mbedtls_gcm_init(&ctx);
    err = mbedtls_gcm_setkey(&ctx, MBEDTLS_CIPHER_ID_AES, key, 256);
    if (err == 0) {
        err = mbedtls_gcm_crypt_and_tag(&ctx, MBEDTLS_GCM_ENCRYPT, len, nonce,
                                        12, aad, aad_len, in, out, 16, tag);
    }
    mbedtls_gcm_free(&ctx);
    return err != 0;
}

int mqttsec_gcm_open(const uint8_t key[32], const uint8_t nonce[12],
                     const uint8_t *aad, size_t aad_len,
                     const uint8_t *in, size_t len, const uint8_t tag[16],
                     uint8_t *out)
{
    mbedtls_gcm_context ctx;
    int err;

    mbedtls_gcm_init(&ctx);
    err = mbedtls_gcm_setkey(&ctx, MBEDTLS_CIPHER_ID_AES, key, 256);
    if (err == 0) {
        /* Mbed TLS checks the tag in constant time and zeroes out when
         * it does not match. */
        err = mbedtls_gcm_auth_decrypt(&ctx, len, nonce, 12, aad, aad_len,
                                       tag, 16, in, out);
    }
    mbedtls_gcm_free(&ctx);
    return err != 0;
}

/* rng adapts mqttsec_random to Mbed TLS's f_rng. */
static int rng(void *unused, unsigned char *buf, size_t n)
{
    (void)unused;
    return mqttsec_random(buf, n) != 0 ? MBEDTLS_ERR_ECP_RANDOM_FAILED : 0;
}

/* load_private loads P-256 into grp and the scalar d into priv, checking
 * 1 <= d < n. */
static int load_private(mbedtls_ecp_group *grp, mbedtls_mpi *priv,
                        const uint8_t d[32])
{
    int err = mbedtls_ecp_group_load(grp, MBEDTLS_ECP_DP_SECP256R1);

    if (err == 0) {
        err = mbedtls_mpi_read_binary(priv, d, 32);
    }
    if (err == 0) {
        err = mbedtls_ecp_check_privkey(grp, priv);
    }
    return err;
}

/* load_public loads P-256 into grp and the point pub into q, checking it
 * is on the curve. */
static int load_public(mbedtls_ecp_group *grp, mbedtls_ecp_point *q,
                       const uint8_t pub[65])
{
    int err = mbedtls_ecp_group_load(grp, MBEDTLS_ECP_DP_SECP256R1);

    if (err == 0) {
        err = mbedtls_ecp_point_read_binary(grp, q, pub, 65);
    }
    if (err == 0) {
        err = mbedtls_ecp_check_pubkey(grp, q);
    }
    return err;
}

int mqttsec_p256_sign(const uint8_t d[32], const uint8_t hash[32],
                      uint8_t sig[64])
{
    mbedtls_ecp_group grp;
    mbedtls_mpi priv, r, s;
    int err;

    mbedtls_ecp_group_init(&grp);
    mbedtls_mpi_init(&priv);
    mbedtls_mpi_init(&r);
    mbedtls_mpi_init(&s);
    err = load_private(&grp, &priv, d);
    if (err == 0) {
        err = mbedtls_ecdsa_sign(&grp, &r, &s, &priv, hash, 32, rng, NULL);
    }
    if (err == 0) {
        err = mbedtls_mpi_write_binary(&r, sig, 32);
    }
    if (err == 0) {
        err = mbedtls_mpi_write_binary(&s, sig + 32, 32);
    }
    mbedtls_mpi_free(&s);
    mbedtls_mpi_free(&r);
    mbedtls_mpi_free(&priv);
    mbedtls_ecp_group_free(&grp);
    return err != 0;
}

int mqttsec_p256_verify(const uint8_t pub[65], const uint8_t hash[32],
                        const uint8_t sig[64])
{
    mbedtls_ecp_group grp;
    mbedtls_ecp_point q;
    mbedtls_mpi r, s;
    int err;

    mbedtls_ecp_group_init(&grp);
    mbedtls_ecp_point_init(&q);
    mbedtls_mpi_init(&r);
    mbedtls_mpi_init(&s);
    err = load_public(&grp, &q, pub);
    if (err == 0) {
        err = mbedtls_mpi_read_binary(&r, sig, 32);
    }
    if (err == 0) {
        err = mbedtls_mpi_read_binary(&s, sig + 32, 32);
    }
    if (err == 0) {
        /* Refuses r or s of 0 or not below the order (SEC 1, 4.1.4). */
        err = mbedtls_ecdsa_verify(&grp, hash, 32, &q, &r, &s);
    }
    mbedtls_mpi_free(&s);
    mbedtls_mpi_free(&r);
    mbedtls_ecp_point_free(&q);
    mbedtls_ecp_group_free(&grp);
    return err != 0;
}

int mqttsec_p256_public(const uint8_t d[32], uint8_t pub[65])
{
    mbedtls_ecp_group grp;
    mbedtls_ecp_point q;
    mbedtls_mpi priv;
    size_t olen = 0;
    int err;

    mbedtls_ecp_group_init(&grp);
    mbedtls_ecp_point_init(&q);
    mbedtls_mpi_init(&priv);
    err = load_private(&grp, &priv, d);
    if (err == 0) {
        err = mbedtls_ecp_mul(&grp, &q, &priv, &grp.G, rng, NULL);
    }
    if (err == 0) {
        err = mbedtls_ecp_point_write_binary(
            &grp, &q, MBEDTLS_ECP_PF_UNCOMPRESSED, &olen, pub, 65);
    }
    mbedtls_mpi_free(&priv);
    mbedtls_ecp_point_free(&q);
    mbedtls_ecp_group_free(&grp);
    return err != 0 || olen != 65;
}

int mqttsec_p256_check(const uint8_t pub[65])
{
    mbedtls_ecp_group grp;
    mbedtls_ecp_point q;
    int err;

    if (pub[0] != 0x04) {
        return 1;
    }
    mbedtls_ecp_group_init(&grp);
    mbedtls_ecp_point_init(&q);
    err = load_public(&grp, &q, pub);
    mbedtls_ecp_point_free(&q);
    mbedtls_ecp_group_free(&grp);
    return err != 0;
}

int mqttsec_ct_compare(const uint8_t *a, const uint8_t *b, size_t n)
{
    return mbedtls_ct_memcmp(a, b, n);
}

void mqttsec_wipe(void *p, size_t n)
{
    mbedtls_platform_zeroize(p, n);
}
