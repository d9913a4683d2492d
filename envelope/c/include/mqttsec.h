/*
 * mqttsec.h - Envelope 1.0 (../../SPEC.md) for devices, in C99.
 *
 * The device profile: HMAC-SHA-256, HOTP, AES-256-GCM under a pre-shared
 * key, and ECDSA P-256 (ES256) signatures. No heap: every buffer is the
 * caller's, every size a compile-time bound. Crypto comes through the seam
 * of mqttsec_crypto.h (Mbed TLS by default).
 *
 * Receiving:  mqttsec_open() runs the twelve steps of SPEC.md section 9 in
 *             order and returns 0 or one error class; on success it has
 *             recorded the counter in the sender's replay window.
 * Sending:    mqttsec_seal() writes an envelope; take its counter from a
 *             struct mqttsec_counter, whose persistence hook you write.
 *
 * Hooks you write for a board:
 *   - mqttsec_random(): fresh random bytes (nonces, ECDSA).
 *   - the counter's persist function (struct mqttsec_counter).
 *   - the clock: pass now_ms to mqttsec_open(), or MQTTSEC_NO_CLOCK on a
 *     device that has not learned the time (struct mqttsec_clock).
 *
 * Nothing here is thread-safe: one receiver is used by one thread.
 */
#ifndef MQTTSEC_H
#define MQTTSEC_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* ---- Compile-time bounds (override with -D) ---------------------------- */

/* Replay window width W of SPEC.md section 7.2: a multiple of 64. */
#ifndef MQTTSEC_WINDOW_BITS
#define MQTTSEC_WINDOW_BITS 64
#endif

/* Size limit when struct mqttsec_receiver.max_size is 0 (SPEC.md 9.2). */
#define MQTTSEC_DEFAULT_MAX_SIZE 262144u

/* Defaults of a peer's policy when its fields are 0 (SPEC.md 7.4). */
#define MQTTSEC_DEFAULT_SKEW_MS 30000u
#define MQTTSEC_DEFAULT_LIFETIME_MS 300000u

/* now_ms of a receiver that has not learned the time (SPEC.md 10). */
#define MQTTSEC_NO_CLOCK UINT64_MAX

#define MQTTSEC_KID_LEN 12     /* key id, SPEC.md 6 */
#define MQTTSEC_DIGEST_LEN 32  /* D, SPEC.md 4.1 */
#define MQTTSEC_MAX_ID 128     /* bytes of an id */
#define MQTTSEC_MAX_CORR 64    /* bytes of a corr */
#define MQTTSEC_MAX_TOPIC 1024 /* bytes of a topic or replyTo */
#define MQTTSEC_GCM_OVERHEAD 28 /* nonce 12 + tag 16 */
#define MQTTSEC_MAX_KEY 65     /* largest key material: an ES256 point */

/* The method of a time request (SPEC.md 10). */
#define MQTTSEC_TIME_METHOD "mqttsec.time"

/* ---- Results ----------------------------------------------------------- */

/* mqttsec_open() and mqttsec_seal() return 0 or one of these. The first
 * eleven are the error classes of SPEC.md 9.1; the rest are the caller's
 * mistakes or the board's failures, never a property of an envelope. */
enum mqttsec_result {
    MQTTSEC_OK = 0,
    MQTTSEC_E_TOO_LARGE = -1,
    MQTTSEC_E_MALFORMED = -2,
    MQTTSEC_E_UNSUPPORTED_VERSION = -3,
    MQTTSEC_E_POLICY = -4,
    MQTTSEC_E_CONTEXT = -5,
    MQTTSEC_E_UNKNOWN_KEY = -6,
    MQTTSEC_E_AUTHENTICATION = -7,
    MQTTSEC_E_REPLAYED = -8,
    MQTTSEC_E_REPLAY_STORE = -9,
    MQTTSEC_E_EXPIRED = -10,
    MQTTSEC_E_DECRYPTION = -11,
    MQTTSEC_E_ARGUMENT = -20, /* a parameter the caller got wrong */
    MQTTSEC_E_BUFFER = -21,   /* an output buffer too small */
    MQTTSEC_E_CRYPTO = -22,   /* the crypto backend or mqttsec_random failed */
    MQTTSEC_E_COUNTER = -23   /* counter exhausted, or its persist hook failed */
};

/* mqttsec_strerror returns the class name of SPEC.md ("malformed",
 * "replayed", ...) or a short phrase for the caller errors. Never NULL. */
const char *mqttsec_strerror(int result);

/* ---- Header values ----------------------------------------------------- */

enum mqttsec_kind { /* header kind, SPEC.md 3.1 */
    MQTTSEC_REQ = 0x01,
    MQTTSEC_REP = 0x02,
    MQTTSEC_EVT = 0x04,
    MQTTSEC_ERR = 0x08
};

enum mqttsec_prot { /* header prot bits, SPEC.md 3.1 */
    MQTTSEC_ENC = 0x01,
    MQTTSEC_HMAC = 0x02,
    MQTTSEC_HOTP = 0x04,
    MQTTSEC_SIG = 0x08
};

enum mqttsec_sig_alg { /* sig algorithm codes; only ES256 is in the profile */
    MQTTSEC_SIG_ED25519 = 1,
    MQTTSEC_SIG_ES256 = 2,
    MQTTSEC_SIG_PS256 = 3
};

/* A byte string inside a caller's buffer (not NUL-terminated). */
struct mqttsec_bytes {
    const uint8_t *p;
    size_t len;
};

/* The header of an envelope that passed step 3, as views into the
 * envelope's bytes: valid while those bytes are. */
struct mqttsec_header {
    uint8_t kind, prot;
    struct mqttsec_bytes from;
    uint8_t n_to;               /* recipients */
    struct mqttsec_bytes to;    /* the n_to str8 entries, as they are in H */
    struct mqttsec_bytes topic, reply_to, corr, re;
    uint64_t ctr, iat, exp;
    const uint8_t *mac_kid;     /* 12 bytes, or NULL without hmac */
    const uint8_t *hotp_kid;    /* 12 bytes, or NULL without hotp */
    struct mqttsec_bytes hotp_code;
    uint8_t sig_alg;            /* 0 without sig */
    const uint8_t *sig_kid;
    uint8_t n_enc;              /* wrapped keys; 0 with a pre-shared key */
    const uint8_t *psk_kid;     /* 12 bytes when enc has n = 0, else NULL */
    struct mqttsec_bytes wrapped; /* the n_enc entries, as they are in H */
};

/* ---- Keys -------------------------------------------------------------- */

enum mqttsec_key_use { /* SPEC.md 6; the profile's four uses */
    MQTTSEC_KEY_HS256 = 1,   /* HMAC secret, 32-64 bytes */
    MQTTSEC_KEY_HOTP = 2,    /* HOTP secret, 16-64 bytes, 6 or 8 digits */
    MQTTSEC_KEY_A256GCM = 3, /* pre-shared AES-256-GCM key, 32 bytes */
    MQTTSEC_KEY_ES256 = 4    /* a peer's ECDSA P-256 public key, 04||X||Y */
};

/* A key a device holds for a peer (or shares with it), with its key id.
 * Fill it with mqttsec_key_init(), which checks the size and derives the
 * id. */
struct mqttsec_key {
    uint8_t use;     /* enum mqttsec_key_use */
    uint8_t digits;  /* HOTP: 6 or 8; otherwise 0 */
    uint8_t len;
    uint8_t kid[MQTTSEC_KID_LEN];
    uint8_t k[MQTTSEC_MAX_KEY];
};

/* mqttsec_key_init checks material's size for use (and digits, for HOTP:
 * 6 or 8; pass 0 otherwise), copies it and derives the key id. An ES256
 * key must be an uncompressed point on the curve. MQTTSEC_E_ARGUMENT
 * otherwise. */
int mqttsec_key_init(struct mqttsec_key *key, enum mqttsec_key_use use,
                     const uint8_t *material, size_t len, unsigned digits);

/* A device's own ES256 signing key: the 32-byte private scalar, its
 * 65-byte public point and key id. */
struct mqttsec_signer {
    uint8_t d[32];
    uint8_t pub[65];
    uint8_t kid[MQTTSEC_KID_LEN];
};

/* mqttsec_signer_init checks the scalar (1 <= d < n), derives the public
 * point and the key id. */
int mqttsec_signer_init(struct mqttsec_signer *s, const uint8_t d[32]);

/* ---- Peers and the replay window --------------------------------------- */

/* One sender's replay window (SPEC.md 7.2): top is T, the highest counter
 * accepted (0: no message yet); bit i of bits means T - i was accepted. */
struct mqttsec_window {
    uint64_t top;
    uint64_t bits[MQTTSEC_WINDOW_BITS / 64];
};

enum mqttsec_peer_flags {
    MQTTSEC_PEER_PAIRWISE_ENC = 0x01, /* requirePairwiseEncryption */
    MQTTSEC_PEER_CLOCKLESS = 0x02     /* answer its time requests (SPEC 10) */
};

/* A peer: its id, the keys held for it, its policy and its window. The
 * device owns the memory; the library reads it and updates window. */
struct mqttsec_peer {
    const char *id;                 /* NUL-terminated */
    const struct mqttsec_key *keys; /* HMAC, HOTP, PSK and ES256 keys */
    size_t n_keys;
    uint8_t require;                /* MQTTSEC_ENC|HMAC|HOTP|SIG bits */
    uint8_t flags;                  /* enum mqttsec_peer_flags */
    uint32_t skew_ms;               /* 0: MQTTSEC_DEFAULT_SKEW_MS */
    uint32_t lifetime_ms;           /* 0: MQTTSEC_DEFAULT_LIFETIME_MS */
    struct mqttsec_window window;   /* zero at start */
};

/* A receiver: its id and peers. loss_ms (when has_loss is 1) is the
 * moment, on the receiver's clock, that it noticed it lost replay state
 * (SPEC.md 7.3): a device that keeps its windows in RAM sets it at boot to
 * the time it learned (replay-loss), so nothing sent before the reboot is
 * accepted again. */
struct mqttsec_receiver {
    const char *me;              /* NUL-terminated */
    struct mqttsec_peer *peers;
    size_t n_peers;
    size_t max_size;             /* 0: MQTTSEC_DEFAULT_MAX_SIZE */
    uint64_t loss_ms;
    int has_loss;
};

/* A request the device waits for a reply to (SPEC.md 8). */
struct mqttsec_pending {
    uint8_t digest[MQTTSEC_DIGEST_LEN];
    uint8_t corr[MQTTSEC_MAX_CORR];
    size_t corr_len;
    const char *topic;           /* the request's method, NUL-terminated */
    const char *to;              /* the request's recipient, NUL-terminated */
};

/* What the receiver expects of the next message (step 4). */
struct mqttsec_expect {
    uint8_t kinds;               /* enum mqttsec_kind bits */
    const char *from;            /* NULL: any sender */
    const char *topic;           /* NULL: any topic */
    const struct mqttsec_pending *pending; /* for rep and err */
    size_t n_pending;
};

/* An opened message: views into the envelope, and the plaintext. */
struct mqttsec_message {
    struct mqttsec_header h;
    struct mqttsec_peer *peer;   /* the sender */
    uint8_t digest[MQTTSEC_DIGEST_LEN];      /* D */
    const struct mqttsec_pending *answers;   /* rep/err: the request */
    const uint8_t *payload;      /* into the envelope, or into plain */
    size_t payload_len;
    int time_request;            /* a time request of a clockless peer */
    const char *rule;            /* on refusal: the rule id, for logs only */
};

/* mqttsec_open opens env[0:len] as receiver r, expecting x, at now_ms on
 * the receiver's clock (MQTTSEC_NO_CLOCK before it learned the time). An
 * encrypted payload is decrypted into plain (plain_cap >= len(P) - 28).
 * Returns 0, with out filled and the counter recorded, or one class of
 * SPEC.md 9.1, with out->rule naming the rule that refused. Report only
 * the class; never send it to the sender. */
int mqttsec_open(struct mqttsec_receiver *r, const struct mqttsec_expect *x,
                 uint64_t now_ms, const uint8_t *env, size_t len,
                 uint8_t *plain, size_t plain_cap,
                 struct mqttsec_message *out);

/* ---- Sealing ----------------------------------------------------------- */

/* What to seal. prot is made of the keys given: mac (HMAC), hotp, psk
 * (pre-shared encryption) and sig (ES256); at least one of mac, psk and
 * sig authenticates the sender. to is the one recipient, or NULL for an
 * event to any subscriber (signed events only: pairwise keys need one). */
struct mqttsec_seal {
    uint8_t kind;
    const char *from, *to, *topic;
    const char *reply_to;        /* req: the reply topic; others NULL */
    const uint8_t *corr;         /* req, rep, err */
    size_t corr_len;
    const uint8_t *re;           /* rep, err: the request's digest (32) */
    uint64_t ctr, iat, exp;
    const struct mqttsec_key *mac, *hotp, *psk;
    const struct mqttsec_signer *sig;
    const uint8_t *payload;
    size_t payload_len;
};

/* mqttsec_seal writes the envelope of s into out[0:cap], its length to
 * *out_len and, if digest is not NULL, its D. It refuses (ARGUMENT) what
 * step 3 of a receiver would refuse, and BUFFER when cap is too small. */
int mqttsec_seal(const struct mqttsec_seal *s, uint8_t *out, size_t cap,
                 size_t *out_len, uint8_t digest[MQTTSEC_DIGEST_LEN]);

/* mqttsec_sealed_len is the length mqttsec_seal would write for s. */
size_t mqttsec_sealed_len(const struct mqttsec_seal *s);

/* ---- Counter ----------------------------------------------------------- */

/* The sender's counter (SPEC.md 7.1): strictly increasing across restarts.
 * It reserves blocks ahead: persist(ctx, upto) must store upto durably
 * before it returns 0; at boot, start from the last value stored. */
struct mqttsec_counter {
    uint64_t next, reserved;
    uint32_t block;
    int (*persist)(void *ctx, uint64_t upto);
    void *ctx;
};

/* mqttsec_counter_start resumes after last_stored (0 on first boot). */
void mqttsec_counter_start(struct mqttsec_counter *c, uint64_t last_stored,
                           uint32_t block,
                           int (*persist)(void *ctx, uint64_t upto),
                           void *ctx);

/* mqttsec_counter_next gives the next counter; MQTTSEC_E_COUNTER when the
 * persist hook fails (no counter is given out unstored) or at 2^64 - 1. */
int mqttsec_counter_next(struct mqttsec_counter *c, uint64_t *ctr);

/* ---- Clock without a real-time clock (SPEC.md 10) ----------------------- */

/* The time learned from replies, kept as an offset to a monotonic clock. */
struct mqttsec_clock {
    uint64_t offset;             /* real ms - monotonic ms */
    int learned;
};

/* mqttsec_clock_learn takes the iat of an accepted reply to a request sent
 * at sent_mono and received at now_mono (monotonic ms). A sample whose
 * round trip exceeds skew_ms / 2 is discarded, and the estimate never
 * moves back. Returns 1 if the sample was taken. */
int mqttsec_clock_learn(struct mqttsec_clock *c, uint64_t reply_iat,
                        uint64_t sent_mono, uint64_t now_mono,
                        uint32_t skew_ms);

/* mqttsec_clock_now is the estimate at now_mono, or MQTTSEC_NO_CLOCK. */
uint64_t mqttsec_clock_now(const struct mqttsec_clock *c, uint64_t now_mono);

/* ---- Hooks the board provides -------------------------------------------- */

/* mqttsec_random fills buf with n bytes from a cryptographic RNG and
 * returns 0, or nonzero on failure (sealing then fails, MQTTSEC_E_CRYPTO). */
int mqttsec_random(uint8_t *buf, size_t n);

#ifdef __cplusplus
}
#endif

#endif /* MQTTSEC_H */
