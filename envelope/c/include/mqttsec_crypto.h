/*
 * mqttsec_crypto.h - the seam between the envelope and its primitives.
 *
 * src/crypto_mbedtls.c implements it with Mbed TLS. To use a PSA driver,
 * a secure element or a hardware accelerator instead, link your own file
 * that defines these functions. Each returns 0 on success and nonzero on
 * failure, and none allocates from the library's side of the seam.
 *
 * Inputs given as a list of parts are hashed or MACed as their
 * concatenation, so the envelope is never copied to build its signing
 * input.
 */
#ifndef MQTTSEC_CRYPTO_H
#define MQTTSEC_CRYPTO_H

#include <stddef.h>
#include <stdint.h>

#include "mqttsec.h"

#ifdef __cplusplus
extern "C" {
#endif

/* SHA-256 of the concatenation of parts[0:n]. */
int mqttsec_sha256(const struct mqttsec_bytes *parts, size_t n,
                   uint8_t out[32]);

/* HMAC-SHA-256 under key of the concatenation of parts[0:n]. */
int mqttsec_hmac_sha256(const uint8_t *key, size_t key_len,
                        const struct mqttsec_bytes *parts, size_t n,
                        uint8_t out[32]);

/* HMAC-SHA-1 under key of msg (HOTP, RFC 4226). */
int mqttsec_hmac_sha1(const uint8_t *key, size_t key_len,
                      const uint8_t *msg, size_t msg_len, uint8_t out[20]);

/* AES-256-GCM with a 12-byte nonce and a 16-byte tag: encrypt in[0:len]
 * into out[0:len] and write the tag. */
int mqttsec_gcm_seal(const uint8_t key[32], const uint8_t nonce[12],
                     const uint8_t *aad, size_t aad_len,
                     const uint8_t *in, size_t len, uint8_t *out,
                     uint8_t tag[16]);

/* AES-256-GCM open: nonzero unless tag authenticates aad and in; out is
 * then written with nothing the caller may use. */
int mqttsec_gcm_open(const uint8_t key[32], const uint8_t nonce[12],
                     const uint8_t *aad, size_t aad_len,
                     const uint8_t *in, size_t len, const uint8_t tag[16],
                     uint8_t *out);

/* ECDSA P-256 over a 32-byte hash: sign with the private scalar d (random
 * nonce from mqttsec_random, or deterministic), writing r || s. */
int mqttsec_p256_sign(const uint8_t d[32], const uint8_t hash[32],
                      uint8_t sig[64]);

/* ECDSA P-256 verify of r || s over hash under pub (04 || X || Y). Zero
 * only for a valid signature; r or s of 0 or not below the group order
 * fail. */
int mqttsec_p256_verify(const uint8_t pub[65], const uint8_t hash[32],
                        const uint8_t sig[64]);

/* The public point of private scalar d; fails unless 1 <= d < n. */
int mqttsec_p256_public(const uint8_t d[32], uint8_t pub[65]);

/* Zero unless pub is an uncompressed point on P-256. */
int mqttsec_p256_check(const uint8_t pub[65]);

/* Constant-time comparison: 0 exactly when a[0:n] equals b[0:n]. */
int mqttsec_ct_compare(const uint8_t *a, const uint8_t *b, size_t n);

/* Zero n bytes in a way the compiler does not remove. */
void mqttsec_wipe(void *p, size_t n);

#ifdef __cplusplus
}
#endif

#endif /* MQTTSEC_CRYPTO_H */
