/*
 * mqttsec_internal.h - what the library's files share, and what the tests
 * reach past the public API for (the frame and header readers, the replay
 * window). Not part of the API: it may change with any release.
 *
 * Every reader and check returns NULL when its input passes, or the
 * SPEC.md rule id (a static string, such as "hdr-cut") that refuses it.
 */
#ifndef MQTTSEC_INTERNAL_H
#define MQTTSEC_INTERNAL_H

#include <stddef.h>
#include <stdint.h>

#include "mqttsec.h"

/* ---- Sizes of SPEC.md ---------------------------------------------------- */

#define MQTTSEC_VERSION 0x01      /* the first byte of Envelope 1.0 */
#define MQTTSEC_LAST_RESERVED 0x1f /* 0x02..0x1f: later versions */
#define MQTTSEC_FRAME_MIN 17      /* version byte and four u32 lengths */
#define MQTTSEC_MAX_TO 64         /* recipients of an event */
#define MQTTSEC_MAX_WRAPPED 64    /* wrapped keys of enc */
#define MQTTSEC_WRAPPED_MIN 15    /* u8 alg, 12-byte kid, u16 length */
#define MQTTSEC_MAC_LEN 32        /* an HMAC-SHA-256 tag */
#define MQTTSEC_SIG_LEN 64        /* an Ed25519 or ES256 signature */
#define MQTTSEC_RSA_MIN 256       /* 2048-bit modulus */
#define MQTTSEC_RSA_MAX 1024      /* 8192-bit modulus */
#define MQTTSEC_NONCE_LEN 12
#define MQTTSEC_TAG_LEN 16
#define MQTTSEC_TIME_MAX 0x7fffffffffffffffu /* 2^63 - 1 */

/* The prefixes of SPEC.md 4.1, and the length of A. */
#define MQTTSEC_SI_PREFIX "mqttsec.v1."
#define MQTTSEC_SI_PREFIX_LEN 11
#define MQTTSEC_A_PREFIX "mqttsec.v1.digest."
#define MQTTSEC_A_PREFIX_LEN 18
#define MQTTSEC_A_LEN (MQTTSEC_A_PREFIX_LEN + MQTTSEC_DIGEST_LEN)

/* Wrapped-key algorithm codes (SPEC.md 3.1); none is in the profile. */
enum mqttsec_wrap_alg {
    MQTTSEC_WRAP_X25519 = 1,
    MQTTSEC_WRAP_XWING = 2,
    MQTTSEC_WRAP_RSA = 3
};

/* ---- Byte order ----------------------------------------------------------- */

uint32_t mqttsec_get_u32(const uint8_t *p);
uint64_t mqttsec_get_u64(const uint8_t *p);
void mqttsec_put_u16(uint8_t *p, uint16_t v);
void mqttsec_put_u32(uint8_t *p, uint32_t v);
void mqttsec_put_u64(uint8_t *p, uint64_t v);

/* ---- The frame (SPEC.md 2; step 2) ---------------------------------------- */

/* An envelope cut into its members, which point into the envelope. */
struct mqttsec_frame {
    const uint8_t *env;          /* E */
    struct mqttsec_bytes h, p, m, s;
    size_t signed_len;           /* 9 + len(H) + len(P): E's bytes in SI */
    size_t aad_len;              /* 5 + len(H): the AEAD's associated data */
};

/* mqttsec_frame_read checks env[0:len] as step 2 does and cuts it. The
 * class of a refusal is MQTTSEC_E_UNSUPPORTED_VERSION for frame-future,
 * MQTTSEC_E_MALFORMED otherwise. */
int mqttsec_frame_read(const uint8_t *env, size_t len,
                       struct mqttsec_frame *f, const char **rule);

/* mqttsec_digest computes D of a frame (SPEC.md 4.1); nonzero when the
 * crypto backend fails. */
int mqttsec_digest(const struct mqttsec_frame *f,
                   uint8_t d[MQTTSEC_DIGEST_LEN]);

/* mqttsec_auth_block writes A = "mqttsec.v1.digest." || D. */
void mqttsec_auth_block(const uint8_t d[MQTTSEC_DIGEST_LEN],
                        uint8_t a[MQTTSEC_A_LEN]);

/* ---- The header (SPEC.md 3; step 3) --------------------------------------- */

/* mqttsec_header_read reads the fields of H in order (SPEC.md 3.1): the
 * rules hdr-cut, hdr-trailing, hdr-kind, hdr-prot-*, sig-alg, rcpt-alg and
 * rcpt-max. */
const char *mqttsec_header_read(const struct mqttsec_bytes *hb,
                                struct mqttsec_header *h);

/* mqttsec_header_check applies the value rules of SPEC.md 3.2 to a header
 * that reads. Sealing checks the headers it writes with it too. */
const char *mqttsec_header_check(const struct mqttsec_header *h);

/* mqttsec_members_check applies SPEC.md 3.3: M, S and P have the sizes
 * the header gives them. */
const char *mqttsec_members_check(const struct mqttsec_header *h,
                                  const struct mqttsec_frame *f);

/* mqttsec_parse runs steps 2 and 3 on env[0:len]: 0 or a class, with the
 * rule in *rule. */
int mqttsec_parse(const uint8_t *env, size_t len, struct mqttsec_frame *f,
                  struct mqttsec_header *h, const char **rule);

/* mqttsec_id_rule checks an id (id-len, id-chars). */
const char *mqttsec_id_rule(const uint8_t *p, size_t len);

/* mqttsec_topic_rule checks a topic or replyTo (topic-*). */
const char *mqttsec_topic_rule(const uint8_t *p, size_t len);

/* mqttsec_to_next steps a cursor through the str8 ids of a header's to
 * (or any run of str8 fields that reads): the next id into *id, and 0 at
 * the end. */
int mqttsec_to_next(struct mqttsec_bytes *cursor, struct mqttsec_bytes *id);

/* mqttsec_bytes_eq_str compares a byte string with a NUL-terminated one. */
int mqttsec_bytes_eq_str(const struct mqttsec_bytes *b, const char *s);

/* mqttsec_strnlen is the length of s, or max + 1 when it is longer than
 * max (it reads at most max + 1 bytes). */
size_t mqttsec_strnlen(const char *s, size_t max);

/* mqttsec_header_len is the length of the header h is written as. */
size_t mqttsec_header_len(const struct mqttsec_header *h);

/* mqttsec_header_write writes a checked header, mqttsec_header_len(h)
 * bytes, to out. */
void mqttsec_header_write(const struct mqttsec_header *h, uint8_t *out);

/* ---- Keys (SPEC.md 6) ------------------------------------------------------ */

/* mqttsec_secret_kid derives the key id of a shared secret. */
int mqttsec_secret_kid(const char *alg, const uint8_t *secret, size_t len,
                       uint8_t kid[MQTTSEC_KID_LEN]);

/* mqttsec_public_kid derives the key id of a public key. */
int mqttsec_public_kid(const char *alg, const uint8_t *pub, size_t len,
                       uint8_t kid[MQTTSEC_KID_LEN]);

/* mqttsec_hotp writes the HOTP code of key for ctr (SPEC.md 4.4),
 * key->digits ASCII digits, to code. */
int mqttsec_hotp(const struct mqttsec_key *key, uint64_t ctr, uint8_t code[8]);

/* ---- The replay window (SPEC.md 7.2) --------------------------------------- */

/* mqttsec_window_check says whether ctr is fresh (NULL) or which rule
 * refuses it (replay-seen, replay-old). It changes nothing. */
const char *mqttsec_window_check(const struct mqttsec_window *w, uint64_t ctr);

/* mqttsec_window_admit is the check and, when it passes, records ctr. */
const char *mqttsec_window_admit(struct mqttsec_window *w, uint64_t ctr);

#endif /* MQTTSEC_INTERNAL_H */
