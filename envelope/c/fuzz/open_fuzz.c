/*
 * open_fuzz.c - libFuzzer harness of the open path (mqttsec_open).
 *
 * Each input is opened as an envelope by four receivers, each with fresh
 * replay windows:
 *   A  "gateway", peer "client", expecting req or evt, at the vectors'
 *      clock, with the peer's HMAC, HOTP (6 digits), pre-shared and ES256
 *      keys;
 *   B  "client", peer "gateway", expecting rep or err bound to one of the
 *      vectors' pending requests (024, 025, 026, 027);
 *   C  as B, but clockless (MQTTSEC_NO_CLOCK);
 *   D  as A, but the peer is clockless and requires pairwise encryption,
 *      its HOTP key has 8 digits, the receiver noticed a loss of replay
 *      state and its size limit is 4096.
 * and checks, for each: the result is 0 or one of the eleven classes of
 * SPEC.md 9.1; on a refusal out.rule names a rule and the plaintext
 * buffer holds nothing decrypted (only what it held before, or zeros); on
 * success the header and payload lie within the input or the plaintext
 * buffer, the payload is no longer than the input, the sender is the one
 * peer, a reply answers one of the pending requests, the counter is
 * recorded, and opening the same bytes again gives replayed. A broken
 * invariant aborts (a crash for libFuzzer).
 *
 * The keys are the vectors' TEST KEYS (../testdata/vectors/keys.json).
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mqttsec.h"
#include "test_keys.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* TEST KEYS ONLY: hmac, hotp, psk and the public point of es256, from
 * build/test_keys.h, made from ../testdata/vectors/keys.json. */
static const uint8_t HMAC_K[32] = TEST_KEY_HMAC;
static const uint8_t HOTP_K[20] = TEST_KEY_HOTP;
static const uint8_t PSK_K[32] = TEST_KEY_PSK;
static const uint8_t ES256_PUB[65] = TEST_KEY_ES256;

/* What plain holds before each open: on a refusal it must hold only this
 * or zeros (nothing decrypted is released before the tag checks). */
#define PAINT 0xA5

/* The vectors' clock (SPEC.md 11). */
#define NOW UINT64_C(1795348801000)

/* The requests the vectors' replies answer: digest, corr, topic. */
struct pending_def {
    uint8_t digest[32];
    uint8_t corr[16];
    const char *topic;
};

static const struct pending_def PENDING_DEFS[] = {
    {{0xfe, 0xea, 0x9e, 0x65, 0xe2, 0x49, 0xd4, 0xac, 0xb4, 0x82, 0xa7,
      0xba, 0x17, 0xf8, 0x73, 0x43, 0xc7, 0xca, 0x72, 0xd0, 0x49, 0xc2,
      0xaf, 0xec, 0x91, 0x51, 0xe3, 0x3d, 0xf1, 0x0a, 0x2e, 0x9d},
     {0x4d, 0xa0, 0xf3, 0x8d, 0x5b, 0x5f, 0x02, 0x63, 0xc8, 0x8a, 0x88,
      0xf4, 0x48, 0xcc, 0x05, 0x2a},
     "get-card"},
    {{0x38, 0x17, 0x7d, 0x18, 0xf5, 0xdb, 0xb7, 0x18, 0x49, 0x25, 0x4d,
      0x77, 0x05, 0x93, 0x81, 0x1f, 0x73, 0x77, 0x3f, 0x87, 0xe3, 0xa2,
      0x5b, 0x80, 0x3a, 0x48, 0xcb, 0x0a, 0x6d, 0x76, 0xe6, 0x4a},
     {0x72, 0x2f, 0x5a, 0xd4, 0x5e, 0x41, 0x82, 0xe4, 0xf8, 0x31, 0x6b,
      0x9b, 0x95, 0x48, 0xca, 0x8a},
     "get-card"},
    {{0xcc, 0xe5, 0x0e, 0x6b, 0x2e, 0xfa, 0xeb, 0x8c, 0x45, 0x2f, 0xa5,
      0xb0, 0xd3, 0x89, 0x0d, 0x89, 0xd1, 0x37, 0x70, 0x63, 0xea, 0x3d,
      0x5d, 0x3d, 0x7f, 0x40, 0x04, 0xf4, 0xa1, 0xe7, 0x57, 0x30},
     {0x9d, 0x7a, 0x70, 0x12, 0x1e, 0xf0, 0x31, 0xd7, 0x53, 0xf3, 0xd2,
      0xba, 0x04, 0xe7, 0x84, 0xe5},
     "get-card"},
    {{0x76, 0xc8, 0x68, 0x75, 0x75, 0xe1, 0xba, 0x1a, 0xaf, 0x92, 0x7b,
      0x4e, 0x5a, 0x86, 0xde, 0xc3, 0xe8, 0x2a, 0xff, 0x08, 0xbc, 0xaa,
      0xf7, 0x59, 0xd6, 0x11, 0xe3, 0xb1, 0xe9, 0xa2, 0x35, 0x13},
     {0x5e, 0xce, 0x51, 0x9d, 0x8a, 0xdc, 0xab, 0x0e, 0xc8, 0x06, 0x78,
      0x94, 0x25, 0x1b, 0xa8, 0xb4},
     "mqttsec.time"},
};
#define N_PENDING (sizeof PENDING_DEFS / sizeof PENDING_DEFS[0])

enum { N_KEYS = 4 };

struct config {
    struct mqttsec_key keys[N_KEYS];
    struct mqttsec_peer peer;
    struct mqttsec_receiver r;
    struct mqttsec_expect x;
    uint64_t now;
};

static struct mqttsec_pending pending[N_PENDING];
static struct config configs[4];
static int ready;

static void die(const char *what, int rc, const struct mqttsec_message *m)
{
    fprintf(stderr, "open_fuzz: invariant broken: %s (result %d %s, rule %s)\n",
            what, rc, mqttsec_strerror(rc),
            m != NULL && m->rule != NULL ? m->rule : "(none)");
    abort();
}

static void load_keys(struct mqttsec_key keys[N_KEYS], unsigned hotp_digits)
{
    if (mqttsec_key_init(&keys[0], MQTTSEC_KEY_HS256, HMAC_K, 32, 0) != 0 ||
        mqttsec_key_init(&keys[1], MQTTSEC_KEY_HOTP, HOTP_K, 20,
                         hotp_digits) != 0 ||
        mqttsec_key_init(&keys[2], MQTTSEC_KEY_A256GCM, PSK_K, 32, 0) != 0 ||
        mqttsec_key_init(&keys[3], MQTTSEC_KEY_ES256, ES256_PUB, 65, 0) != 0) {
        die("the test keys do not load", 0, NULL);
    }
}

static void setup(void)
{
    size_t i;

    for (i = 0; i < N_PENDING; i++) {
        memcpy(pending[i].digest, PENDING_DEFS[i].digest, 32);
        memcpy(pending[i].corr, PENDING_DEFS[i].corr, 16);
        pending[i].corr_len = 16;
        pending[i].topic = PENDING_DEFS[i].topic;
        pending[i].to = "gateway";
    }
    for (i = 0; i < 4; i++) {
        struct config *c = &configs[i];
        int requester = i == 1 || i == 2;

        load_keys(c->keys, i == 3 ? 8 : 6);
        c->peer.id = requester ? "gateway" : "client";
        c->peer.keys = c->keys;
        c->peer.n_keys = N_KEYS;
        c->r.me = requester ? "client" : "gateway";
        c->r.peers = &c->peer;
        c->r.n_peers = 1;
        c->now = i == 2 ? MQTTSEC_NO_CLOCK : NOW;
        if (requester) {
            c->x.kinds = MQTTSEC_REP | MQTTSEC_ERR;
            c->x.pending = pending;
            c->x.n_pending = N_PENDING;
        } else {
            c->x.kinds = MQTTSEC_REQ | MQTTSEC_EVT;
        }
    }
    configs[3].peer.flags = MQTTSEC_PEER_CLOCKLESS | MQTTSEC_PEER_PAIRWISE_ENC;
    configs[3].r.has_loss = 1;
    configs[3].r.loss_ms = NOW - 60000;
    configs[3].r.max_size = 4096;
    configs[3].x.from = "client";
    ready = 1;
}

static int within(const uint8_t *p, size_t n, const uint8_t *base,
                  size_t len)
{
    uintptr_t a = (uintptr_t)p, b = (uintptr_t)base;

    if (n == 0) {
        return 1;
    }
    return p != NULL && a >= b && a - b <= len && n <= len - (a - b);
}

/* check_open opens data as configuration c into plain, which holds the
 * bytes of painted (plain_cap of them) before the open, and checks the
 * invariants. */
static void check_open(struct config *c, const uint8_t *data, size_t size,
                       uint8_t *plain, const uint8_t *painted,
                       size_t plain_cap)
{
    struct mqttsec_message m;
    const struct mqttsec_header *h = &m.h;
    int rc;

    memset(&c->peer.window, 0, sizeof c->peer.window);
    memset(&m, 0, sizeof m);
    memcpy(plain, painted, plain_cap);
    rc = mqttsec_open(&c->r, &c->x, c->now, data, size, plain, plain_cap,
                      &m);
    if (mqttsec_strerror(rc) == NULL) {
        die("strerror gave NULL", rc, &m);
    }
    if (rc != 0) {
        if (rc > 0 || rc < MQTTSEC_E_DECRYPTION) {
            die("result is not a class of SPEC.md 9.1", rc, &m);
        }
        if (m.rule == NULL || m.rule[0] == '\0') {
            die("refused without a rule", rc, &m);
        }
        if (memcmp(plain, painted, plain_cap) != 0) {
            size_t i;

            for (i = 0; i < plain_cap; i++) {
                if (plain[i] != PAINT && plain[i] != 0) {
                    die("refused, but plain holds what was decrypted", rc,
                        &m);
                }
            }
        }
        return;
    }

    /* accepted */
    if (m.peer != &c->peer) {
        die("sender is not the peer", rc, &m);
    }
    if ((h->kind & c->x.kinds) == 0) {
        die("kind not expected", rc, &m);
    }
    if (m.payload_len > size ||
        !(within(m.payload, m.payload_len, data, size) ||
          within(m.payload, m.payload_len, plain, plain_cap))) {
        die("payload out of bounds", rc, &m);
    }
    if (!within(h->from.p, h->from.len, data, size) ||
        !within(h->to.p, h->to.len, data, size) ||
        !within(h->topic.p, h->topic.len, data, size) ||
        !within(h->reply_to.p, h->reply_to.len, data, size) ||
        !within(h->corr.p, h->corr.len, data, size) ||
        !within(h->re.p, h->re.len, data, size) ||
        !within(h->hotp_code.p, h->hotp_code.len, data, size) ||
        !within(h->wrapped.p, h->wrapped.len, data, size) ||
        (h->mac_kid != NULL && !within(h->mac_kid, 12, data, size)) ||
        (h->hotp_kid != NULL && !within(h->hotp_kid, 12, data, size)) ||
        (h->sig_kid != NULL && !within(h->sig_kid, 12, data, size)) ||
        (h->psk_kid != NULL && !within(h->psk_kid, 12, data, size))) {
        die("header view out of bounds", rc, &m);
    }
    if (h->from.len == 0 || h->topic.len == 0 || h->ctr == 0 ||
        h->exp <= h->iat) {
        die("accepted a header step 3 refuses", rc, &m);
    }
    if (h->kind == MQTTSEC_REP || h->kind == MQTTSEC_ERR) {
        if (m.answers == NULL || m.answers < pending ||
            m.answers >= pending + N_PENDING) {
            die("reply answers no pending request", rc, &m);
        }
    } else if (m.answers != NULL) {
        die("a req or evt answers a request", rc, &m);
    }
    if (c->peer.window.top == 0) {
        die("accepted without recording the counter", rc, &m);
    }

    /* the same bytes again: replayed */
    memset(&m, 0, sizeof m);
    rc = mqttsec_open(&c->r, &c->x, c->now, data, size, plain, plain_cap,
                      &m);
    if (rc != MQTTSEC_E_REPLAYED) {
        die("opened twice, not replayed", rc, &m);
    }
    if (m.rule == NULL || strncmp(m.rule, "replay-", 7) != 0) {
        die("replayed without a replay rule", rc, &m);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    uint8_t *plain, *painted;
    size_t i, cap = size == 0 ? 1 : size;

    if (!ready) {
        setup();
    }
    /* exactly as large as SPEC.md asks (len(P) - 28 <= size), so that
     * AddressSanitizer sees a write past it */
    plain = malloc(cap);
    painted = malloc(cap);
    if (plain == NULL || painted == NULL) {
        free(plain);
        free(painted);
        return 0;
    }
    memset(painted, PAINT, cap);
    for (i = 0; i < sizeof configs / sizeof configs[0]; i++) {
        check_open(&configs[i], data, size, plain, painted, size);
    }
    free(painted);
    free(plain);
    return 0;
}
