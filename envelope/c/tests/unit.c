/*
 * unit.c - table-driven unit tests of the C port of Envelope 1.0.
 *
 * Everything goes through the public API of mqttsec.h: seal then open for
 * every protection set and kind of the profile, the refusals of
 * mqttsec_seal, the replay window, freshness and the clockless device, the
 * counter, the learned clock, key set-up, forgeries and mqttsec_strerror.
 * Each CHECK states what it asserts; a failure prints the file, line, the
 * expression and (for results) the class got and wanted. The program
 * prints a summary and exits 1 if any check failed.
 *
 * Keys are the vectors' TEST KEYS (../testdata/vectors/keys.json), plus a
 * fixed test scalar for the gateway's own ES256 key. Never use them for
 * anything else.
 *
 * mqttsec_random comes from tests/board_host.c.
 */
#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "mqttsec.h"
#include "test_keys.h"

/* ---- Checking ---------------------------------------------------------- */

static unsigned long g_checks;
static unsigned long g_failed;
static const char *g_test = "";

static int check_at(int ok, int line, const char *what)
{
    g_checks++;
    if (!ok) {
        g_failed++;
        printf("FAIL [%s] unit.c:%d: %s\n", g_test, line, what);
    }
    return ok;
}

static int check_rc_at(int got, int want, int line, const char *what)
{
    g_checks++;
    if (got != want) {
        g_failed++;
        printf("FAIL [%s] unit.c:%d: %s: got %d (%s), want %d (%s)\n", g_test,
               line, what, got, mqttsec_strerror(got), want,
               mqttsec_strerror(want));
        return 0;
    }
    return 1;
}

static int check_u64_at(uint64_t got, uint64_t want, int line,
                        const char *what)
{
    g_checks++;
    if (got != want) {
        g_failed++;
        printf("FAIL [%s] unit.c:%d: %s: got %llu, want %llu\n", g_test, line,
               what, (unsigned long long)got, (unsigned long long)want);
        return 0;
    }
    return 1;
}

/* check_refused_at asserts that an open was refused with class want and,
 * when rule is not NULL, by that rule; any refusal must name a rule. */
static int check_refused_at(int got, const struct mqttsec_message *m,
                            int want, const char *rule, int line,
                            const char *what)
{
    int ok = check_rc_at(got, want, line, what);

    g_checks++;
    if (got != 0 && (m->rule == NULL || m->rule[0] == '\0')) {
        g_failed++;
        ok = 0;
        printf("FAIL [%s] unit.c:%d: %s: refused without a rule\n", g_test,
               line, what);
    } else if (got == want && rule != NULL && strcmp(m->rule, rule) != 0) {
        g_failed++;
        ok = 0;
        printf("FAIL [%s] unit.c:%d: %s: rule %s, want %s\n", g_test, line,
               what, m->rule, rule);
    }
    return ok;
}

#define CHECK(cond) check_at((cond) != 0, __LINE__, #cond)
#define CHECK_RC(got, want) check_rc_at((got), (want), __LINE__, #got)
#define CHECK_U64(got, want) check_u64_at((got), (want), __LINE__, #got)
#define CHECK_REFUSED(got, m, want, rule) \
    check_refused_at((got), (m), (want), (rule), __LINE__, #got)

/* ---- Test keys and parties ------------------------------------------- */

/* TEST KEYS ONLY: build/test_keys.h, made from ../testdata/vectors/keys.json. */
static const uint8_t HMAC_K[32] = TEST_KEY_HMAC;
static const uint8_t HMAC_KID[12] = TEST_KID_HMAC;
static const uint8_t OTHER_HMAC_K[32] = TEST_KEY_OTHER_HMAC;
static const uint8_t HOTP_K[20] = TEST_KEY_HOTP;
static const uint8_t HOTP_KID[12] = TEST_KID_HOTP;
static const uint8_t PSK_K[32] = TEST_KEY_PSK;
static const uint8_t PSK_KID[12] = TEST_KID_PSK;
static const uint8_t ES256_D[32] = TEST_KEY_ES256_PRIVATE;
static const uint8_t ES256_PUB[65] = TEST_KEY_ES256;
static const uint8_t ES256_KID[12] = TEST_KID_ES256;

/* The order n of P-256, big-endian. */
static const uint8_t P256_N[32] = {
    0xff, 0xff, 0xff, 0xff, 0x00, 0x00, 0x00, 0x00, 0xff, 0xff, 0xff,
    0xff, 0xff, 0xff, 0xff, 0xff, 0xbc, 0xe6, 0xfa, 0xad, 0xa7, 0x17,
    0x9e, 0x84, 0xf3, 0xb9, 0xca, 0xc2, 0xfc, 0x63, 0x25, 0x51};

/* The vectors' clock: 2026-11-22T12:00:01Z in ms. */
#define T0 UINT64_C(1795348801000)
#define LIFE UINT64_C(60000)
#define MAX_TIME UINT64_C(0x7fffffffffffffff)
#define W ((uint64_t)MQTTSEC_WINDOW_BITS)
#define SKEW ((uint64_t)MQTTSEC_DEFAULT_SKEW_MS)

/* A client and a gateway, each with a receiver whose one peer is the
 * other. Both hold the same HMAC, HOTP and pre-shared keys; each has its
 * own ES256 key and holds the other's public key. */
struct party {
    struct mqttsec_signer signer;
    struct mqttsec_key keys[4]; /* hmac, hotp, psk, the peer's es256 */
    struct mqttsec_peer peer;
    struct mqttsec_receiver r;
    uint64_t ctr; /* the party's own sending counter */
};

static struct mqttsec_key k_hmac, k_hotp6, k_hotp8, k_psk;
static struct party client, gateway;
static uint8_t ENV[8192], ENV2[8192], PLAIN[8192];
static uint8_t PAYLOAD[4096];

static void party_reset(struct party *p)
{
    memset(&p->peer.window, 0, sizeof p->peer.window);
    p->peer.n_keys = 4;
    p->peer.require = 0;
    p->peer.flags = 0;
    p->peer.skew_ms = 0;
    p->peer.lifetime_ms = 0;
    p->r.max_size = 0;
    p->r.loss_ms = 0;
    p->r.has_loss = 0;
}

/* use_hotp sets which HOTP key (6 or 8 digits) both parties hold. */
static void use_hotp(unsigned digits)
{
    client.keys[1] = digits == 8 ? k_hotp8 : k_hotp6;
    gateway.keys[1] = digits == 8 ? k_hotp8 : k_hotp6;
}

static int setup(void)
{
    uint8_t gw_d[32];
    size_t i;
    int ok = 1;

    for (i = 0; i < sizeof gw_d; i++) {
        gw_d[i] = (uint8_t)(i + 1); /* a fixed test scalar, below n */
    }
    for (i = 0; i < sizeof PAYLOAD; i++) {
        PAYLOAD[i] = (uint8_t)(i * 7 + 3);
    }
    ok &= mqttsec_key_init(&k_hmac, MQTTSEC_KEY_HS256, HMAC_K, 32, 0) == 0;
    ok &= mqttsec_key_init(&k_hotp6, MQTTSEC_KEY_HOTP, HOTP_K, 20, 6) == 0;
    ok &= mqttsec_key_init(&k_hotp8, MQTTSEC_KEY_HOTP, HOTP_K, 20, 8) == 0;
    ok &= mqttsec_key_init(&k_psk, MQTTSEC_KEY_A256GCM, PSK_K, 32, 0) == 0;
    ok &= mqttsec_signer_init(&client.signer, ES256_D) == 0;
    ok &= mqttsec_signer_init(&gateway.signer, gw_d) == 0;
    if (!ok) {
        return 0;
    }
    client.keys[0] = gateway.keys[0] = k_hmac;
    client.keys[2] = gateway.keys[2] = k_psk;
    use_hotp(6);
    /* each holds the other's public key */
    ok &= mqttsec_key_init(&gateway.keys[3], MQTTSEC_KEY_ES256,
                           client.signer.pub, 65, 0) == 0;
    ok &= mqttsec_key_init(&client.keys[3], MQTTSEC_KEY_ES256,
                           gateway.signer.pub, 65, 0) == 0;

    gateway.peer.id = "client";
    gateway.peer.keys = gateway.keys;
    gateway.r.me = "gateway";
    gateway.r.peers = &gateway.peer;
    gateway.r.n_peers = 1;
    client.peer.id = "gateway";
    client.peer.keys = client.keys;
    client.r.me = "client";
    client.r.peers = &client.peer;
    client.r.n_peers = 1;
    party_reset(&client);
    party_reset(&gateway);
    client.ctr = 1000;
    gateway.ctr = 5000;
    return ok;
}

/* ---- Sealing helpers --------------------------------------------------- */

/* A protection set of the profile. */
struct protset {
    const char *name;
    int mac;         /* HMAC */
    unsigned hotp;   /* HOTP digits, 0 without */
    int psk;         /* pre-shared encryption */
    int sig;         /* ES256 */
};

static const struct protset SETS[] = {
    {"hmac", 1, 0, 0, 0},       {"hmac+hotp6", 1, 6, 0, 0},
    {"hmac+hotp8", 1, 8, 0, 0}, {"psk", 0, 0, 1, 0},
    {"hmac+psk", 1, 0, 1, 0},   {"es256", 0, 0, 0, 1},
    {"es256+hmac", 1, 0, 0, 1}, {"es256+psk", 0, 0, 1, 1},
    {"es256+hmac+hotp6+psk", 1, 6, 1, 1},
};
#define N_SETS (sizeof SETS / sizeof SETS[0])

static const uint8_t CORR[16] = {0xd6, 0x73, 0x95, 0x5c, 0xd5, 0x2c,
                                 0xcf, 0xde, 0xbb, 0x68, 0x7b, 0x3e,
                                 0x3c, 0x85, 0xf7, 0x26};

/* seal_init fills s for a message of kind from party p, protected by ps,
 * with the party's next counter and a 60 s lifetime from T0. */
static void seal_init(struct mqttsec_seal *s, struct party *p,
                      const struct protset *ps, uint8_t kind)
{
    int from_client = p == &client;

    memset(s, 0, sizeof *s);
    s->kind = kind;
    s->from = from_client ? "client" : "gateway";
    s->to = from_client ? "gateway" : "client";
    s->topic = "get-card";
    if (kind == MQTTSEC_REQ) {
        s->reply_to = "mqttsec/client/reply";
    }
    if (kind != MQTTSEC_EVT) {
        s->corr = CORR;
        s->corr_len = sizeof CORR;
    }
    s->ctr = ++p->ctr;
    s->iat = T0 - 1000;
    s->exp = T0 - 1000 + LIFE;
    s->mac = ps->mac ? &k_hmac : NULL;
    s->hotp = ps->hotp == 8 ? &k_hotp8 : ps->hotp == 6 ? &k_hotp6 : NULL;
    s->psk = ps->psk ? &k_psk : NULL;
    s->sig = ps->sig ? &p->signer : NULL;
}

static const struct protset HMAC_ONLY = {"hmac", 1, 0, 0, 0};
static const struct protset ES256_ONLY = {"es256", 0, 0, 0, 1};
static const struct protset PSK_ONLY = {"psk", 0, 0, 1, 0};

/* seal_ok seals s into buf, checking it succeeds and that
 * mqttsec_sealed_len agrees with the written length. */
static size_t seal_ok(const struct mqttsec_seal *s, uint8_t *buf, size_t cap,
                      uint8_t digest[MQTTSEC_DIGEST_LEN])
{
    size_t n = 0;
    int rc = mqttsec_seal(s, buf, cap, &n, digest);

    if (!CHECK_RC(rc, MQTTSEC_OK)) {
        return 0;
    }
    CHECK(n == mqttsec_sealed_len(s));
    return n;
}

/* seal_raw seals s into ENV[0:cap] and returns the result. */
static int seal_raw(const struct mqttsec_seal *s, size_t cap)
{
    size_t n = 0;

    return mqttsec_seal(s, ENV, cap, &n, NULL);
}

static struct mqttsec_expect expect_of(uint8_t kinds, const char *from,
                                       const char *topic)
{
    struct mqttsec_expect x;

    memset(&x, 0, sizeof x);
    x.kinds = kinds;
    x.from = from;
    x.topic = topic;
    return x;
}

static int bytes_eq(struct mqttsec_bytes b, const void *p, size_t n)
{
    return b.len == n && (n == 0 || (b.p != NULL && memcmp(b.p, p, n) == 0));
}

static int str_eq(struct mqttsec_bytes b, const char *s)
{
    return s == NULL ? b.len == 0 : bytes_eq(b, s, strlen(s));
}

/* check_opened asserts that an opened message has every header field that
 * s sealed, its payload and the digest seal gave. */
static void check_opened(const struct mqttsec_seal *s,
                         const struct mqttsec_message *m,
                         const uint8_t digest[32])
{
    const struct mqttsec_header *h = &m->h;
    uint8_t prot = 0;

    prot |= s->mac ? MQTTSEC_HMAC : 0;
    prot |= s->hotp ? MQTTSEC_HOTP : 0;
    prot |= s->psk ? MQTTSEC_ENC : 0;
    prot |= s->sig ? MQTTSEC_SIG : 0;
    CHECK(h->kind == s->kind);
    CHECK(h->prot == prot);
    CHECK(str_eq(h->from, s->from));
    if (s->to == NULL) {
        CHECK(h->n_to == 0 && h->to.len == 0);
    } else {
        size_t tl = strlen(s->to);
        CHECK(h->n_to == 1);
        CHECK(h->to.len == 1 + tl && h->to.p[0] == tl &&
              memcmp(h->to.p + 1, s->to, tl) == 0);
    }
    CHECK(str_eq(h->topic, s->topic));
    CHECK(str_eq(h->reply_to, s->reply_to));
    CHECK(bytes_eq(h->corr, s->corr, s->corr_len));
    CHECK(bytes_eq(h->re, s->re, s->re ? 32 : 0));
    CHECK_U64(h->ctr, s->ctr);
    CHECK_U64(h->iat, s->iat);
    CHECK_U64(h->exp, s->exp);
    if (s->mac) {
        CHECK(h->mac_kid && memcmp(h->mac_kid, s->mac->kid, 12) == 0);
    } else {
        CHECK(h->mac_kid == NULL);
    }
    if (s->hotp) {
        size_t i;

        CHECK(h->hotp_kid && memcmp(h->hotp_kid, s->hotp->kid, 12) == 0);
        CHECK(h->hotp_code.len == s->hotp->digits);
        for (i = 0; i < h->hotp_code.len; i++) {
            if (!CHECK(h->hotp_code.p[i] >= '0' && h->hotp_code.p[i] <= '9')) {
                break;
            }
        }
    } else {
        CHECK(h->hotp_kid == NULL && h->hotp_code.len == 0);
    }
    if (s->sig) {
        CHECK(h->sig_alg == MQTTSEC_SIG_ES256);
        CHECK(h->sig_kid && memcmp(h->sig_kid, s->sig->kid, 12) == 0);
    } else {
        CHECK(h->sig_alg == 0);
    }
    if (s->psk) {
        CHECK(h->psk_kid && memcmp(h->psk_kid, s->psk->kid, 12) == 0);
        CHECK(h->n_enc == 0 && h->wrapped.len == 0);
    } else {
        CHECK(h->psk_kid == NULL);
    }
    CHECK(m->payload_len == s->payload_len);
    CHECK(s->payload_len == 0 ||
          (m->payload && memcmp(m->payload, s->payload, s->payload_len) == 0));
    CHECK(memcmp(m->digest, digest, 32) == 0);
    CHECK(m->time_request == 0);
}

static int do_open(struct party *p, const struct mqttsec_expect *x,
                   uint64_t now, const uint8_t *env, size_t len,
                   struct mqttsec_message *m)
{
    memset(m, 0, sizeof *m);
    return mqttsec_open(&p->r, x, now, env, len, PLAIN, sizeof PLAIN, m);
}

/* ---- Round trips ------------------------------------------------------- */

/* roundtrip seals a message of kind with payload size plen under ps and
 * opens it: a req or evt from the client at the gateway; a rep or err from
 * the gateway at the client, bound to a request the client sealed before
 * (and the gateway opened). Then opens it again: replayed. */
static void roundtrip(const struct protset *ps, uint8_t kind, size_t plen,
                      int broadcast)
{
    struct mqttsec_seal s;
    struct mqttsec_message m;
    struct mqttsec_expect x;
    struct mqttsec_pending pend;
    uint8_t digest[32], req_digest[32];
    size_t n;
    int rc;

    use_hotp(ps->hotp ? ps->hotp : 6);
    if (kind == MQTTSEC_REQ || kind == MQTTSEC_EVT) {
        seal_init(&s, &client, ps, kind);
        if (broadcast) {
            s.to = NULL;
        }
        s.payload = PAYLOAD;
        s.payload_len = plen;
        n = seal_ok(&s, ENV, sizeof ENV, digest);
        if (n == 0) {
            return;
        }
        x = expect_of(kind, "client", "get-card");
        rc = do_open(&gateway, &x, T0, ENV, n, &m);
        if (CHECK_RC(rc, MQTTSEC_OK)) {
            check_opened(&s, &m, digest);
            CHECK(m.peer == &gateway.peer);
            CHECK(m.answers == NULL);
            CHECK_U64(gateway.peer.window.top, s.ctr);
        }
        rc = do_open(&gateway, &x, T0, ENV, n, &m);
        CHECK_REFUSED(rc, &m, MQTTSEC_E_REPLAYED, NULL);
        return;
    }

    /* the request the reply answers */
    seal_init(&s, &client, ps, MQTTSEC_REQ);
    n = seal_ok(&s, ENV, sizeof ENV, req_digest);
    if (n == 0) {
        return;
    }
    x = expect_of(MQTTSEC_REQ, "client", NULL);
    rc = do_open(&gateway, &x, T0, ENV, n, &m);
    CHECK_RC(rc, MQTTSEC_OK);
    CHECK(rc != 0 || memcmp(m.digest, req_digest, 32) == 0);

    memset(&pend, 0, sizeof pend);
    memcpy(pend.digest, req_digest, 32);
    memcpy(pend.corr, CORR, sizeof CORR);
    pend.corr_len = sizeof CORR;
    pend.topic = "get-card";
    pend.to = "gateway";

    seal_init(&s, &gateway, ps, kind);
    s.re = req_digest;
    s.payload = PAYLOAD;
    s.payload_len = plen;
    n = seal_ok(&s, ENV, sizeof ENV, digest);
    if (n == 0) {
        return;
    }
    x = expect_of(MQTTSEC_REP | MQTTSEC_ERR, "gateway", NULL);
    x.pending = &pend;
    x.n_pending = 1;
    rc = do_open(&client, &x, T0, ENV, n, &m);
    if (CHECK_RC(rc, MQTTSEC_OK)) {
        check_opened(&s, &m, digest);
        CHECK(m.peer == &client.peer);
        CHECK(m.answers == &pend);
    }
    rc = do_open(&client, &x, T0, ENV, n, &m);
    CHECK_REFUSED(rc, &m, MQTTSEC_E_REPLAYED, NULL);
}

static void test_roundtrips(void)
{
    static const uint8_t kinds[] = {MQTTSEC_REQ, MQTTSEC_REP, MQTTSEC_ERR,
                                    MQTTSEC_EVT};
    static const size_t sizes[] = {0, 1, 255, 4096};
    static const struct protset hmac_evt = {"hmac", 1, 0, 0, 0};
    size_t i, k, z;

    for (i = 0; i < N_SETS; i++) {
        for (k = 0; k < sizeof kinds; k++) {
            for (z = 0; z < sizeof sizes / sizeof sizes[0]; z++) {
                unsigned long before = g_failed;

                roundtrip(&SETS[i], kinds[k], sizes[z], 0);
                if (g_failed != before) {
                    printf("  ... in %s kind 0x%02x payload %u\n",
                           SETS[i].name, kinds[k], (unsigned)sizes[z]);
                }
            }
        }
    }
    /* events: signed to any subscriber; HMAC to one recipient */
    for (z = 0; z < sizeof sizes / sizeof sizes[0]; z++) {
        roundtrip(&ES256_ONLY, MQTTSEC_EVT, sizes[z], 1);
        roundtrip(&hmac_evt, MQTTSEC_EVT, sizes[z], 0);
    }
    use_hotp(6);
}

/* An event to any subscriber reaches a receiver with any id. */
static void test_broadcast_any_receiver(void)
{
    struct mqttsec_seal s;
    struct mqttsec_message m;
    struct mqttsec_expect x = expect_of(MQTTSEC_EVT, NULL, NULL);
    uint8_t d[32];
    size_t n;

    seal_init(&s, &client, &ES256_ONLY, MQTTSEC_EVT);
    s.to = NULL;
    n = seal_ok(&s, ENV, sizeof ENV, d);
    gateway.r.me = "anyone";
    CHECK_RC(do_open(&gateway, &x, T0, ENV, n, &m), MQTTSEC_OK);
    gateway.r.me = "gateway";
}

/* ---- mqttsec_seal refusals --------------------------------------------- */

static char ID_128[129], ID_129[130], TOPIC_1024[1025], TOPIC_1025[1026];
static uint8_t CORR_65[65];
static const uint8_t RE[32] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11,
                               12, 13, 14, 15, 16, 17, 18, 19, 20, 21, 22,
                               23, 24, 25, 26, 27, 28, 29, 30, 31, 32};

enum mutation {
    M_FROM_NULL, M_FROM_EMPTY, M_FROM_SLASH, M_FROM_SPACE, M_FROM_NONASCII,
    M_FROM_129, M_TO_EMPTY, M_TO_PLUS, M_TO_129, M_TOPIC_NULL, M_TOPIC_EMPTY,
    M_TOPIC_PLUS, M_TOPIC_HASH, M_TOPIC_1025, M_TOPIC_NEWLINE, M_TOPIC_DEL,
    M_TOPIC_QUOTE, M_TOPIC_BACKSLASH, M_TOPIC_FF, M_TOPIC_OVERLONG,
    M_TOPIC_SURROGATE, M_TOPIC_CUT, M_TOPIC_2028, M_REPLYTO_NULL,
    M_REPLYTO_EMPTY, M_REPLYTO_WILD, M_REP_REPLYTO, M_EVT_REPLYTO,
    M_CORR_EMPTY, M_CORR_65, M_EVT_CORR, M_REP_NO_RE, M_REQ_RE, M_EVT_RE,
    M_NO_AUTH, M_HOTP_ONLY, M_MAC_NO_TO, M_HOTP_NO_TO, M_PSK_NO_TO,
    M_REQ_NO_TO, M_EXP_EQ_IAT, M_EXP_BEFORE_IAT, M_EXP_ABOVE_MAX,
    M_EXP_U64_MAX, M_CTR_ZERO, M_KIND_0, M_KIND_3, M_KIND_10, M_MAC_IS_HOTP,
    M_PSK_IS_HMAC, M_PAYLOAD_NULL, N_MUTATIONS
};

static const char *const MUTATION_NAMES[N_MUTATIONS] = {
    "from NULL", "from empty", "from with /", "from with space",
    "from non-ASCII", "from 129 bytes", "to empty", "to with +",
    "to 129 bytes", "topic NULL", "topic empty", "topic with +",
    "topic with #", "topic 1025 bytes", "topic with newline",
    "topic with DEL", "topic with quote", "topic with backslash",
    "topic with byte ff", "topic overlong UTF-8", "topic surrogate",
    "topic cut UTF-8", "topic U+2028", "req without replyTo",
    "req with empty replyTo", "replyTo with #", "rep with replyTo",
    "evt with replyTo", "req corr empty", "req corr 65 bytes",
    "evt with corr", "rep without re", "req with re", "evt with re",
    "no key at all", "hotp alone", "hmac event to any subscriber",
    "hotp event to any subscriber", "psk event to any subscriber",
    "req with no recipient", "exp == iat", "exp < iat", "exp 2^63",
    "exp 2^64-1", "ctr 0", "kind 0", "kind 3", "kind 0x10",
    "hotp key as mac", "hmac key as psk", "payload NULL with length 1",
};

static void mutate(struct mqttsec_seal *s, enum mutation mu)
{
    switch (mu) {
    case M_FROM_NULL: s->from = NULL; break;
    case M_FROM_EMPTY: s->from = ""; break;
    case M_FROM_SLASH: s->from = "cli/ent"; break;
    case M_FROM_SPACE: s->from = "cli ent"; break;
    case M_FROM_NONASCII: s->from = "client\xc3\xa9"; break;
    case M_FROM_129: s->from = ID_129; break;
    case M_TO_EMPTY: s->to = ""; break;
    case M_TO_PLUS: s->to = "gateway+"; break;
    case M_TO_129: s->to = ID_129; break;
    case M_TOPIC_NULL: s->topic = NULL; break;
    case M_TOPIC_EMPTY: s->topic = ""; break;
    case M_TOPIC_PLUS: s->topic = "a/+/b"; break;
    case M_TOPIC_HASH: s->topic = "a/#"; break;
    case M_TOPIC_1025: s->topic = TOPIC_1025; break;
    case M_TOPIC_NEWLINE: s->topic = "get\ncard"; break;
    case M_TOPIC_DEL: s->topic = "get\x7f" "card"; break;
    case M_TOPIC_QUOTE: s->topic = "get\"card"; break;
    case M_TOPIC_BACKSLASH: s->topic = "get\\card"; break;
    case M_TOPIC_FF: s->topic = "get\xff"; break;
    case M_TOPIC_OVERLONG: s->topic = "get\xc0\xaf"; break;
    case M_TOPIC_SURROGATE: s->topic = "get\xed\xa0\x80"; break;
    case M_TOPIC_CUT: s->topic = "get\xe2\x82"; break;
    case M_TOPIC_2028: s->topic = "get\xe2\x80\xa8"; break;
    case M_REPLYTO_NULL: s->reply_to = NULL; break;
    case M_REPLYTO_EMPTY: s->reply_to = ""; break;
    case M_REPLYTO_WILD: s->reply_to = "reply/#"; break;
    case M_REP_REPLYTO:
        s->kind = MQTTSEC_REP;
        s->re = RE;
        break; /* reply_to stays set */
    case M_EVT_REPLYTO:
        s->kind = MQTTSEC_EVT;
        s->corr = NULL;
        s->corr_len = 0;
        break;
    case M_CORR_EMPTY: s->corr_len = 0; break;
    case M_CORR_65:
        s->corr = CORR_65;
        s->corr_len = 65;
        break;
    case M_EVT_CORR:
        s->kind = MQTTSEC_EVT;
        s->reply_to = NULL;
        break;
    case M_REP_NO_RE:
        s->kind = MQTTSEC_REP;
        s->reply_to = NULL;
        break;
    case M_REQ_RE: s->re = RE; break;
    case M_EVT_RE:
        s->kind = MQTTSEC_EVT;
        s->reply_to = NULL;
        s->corr = NULL;
        s->corr_len = 0;
        s->re = RE;
        break;
    case M_NO_AUTH: s->mac = NULL; break;
    case M_HOTP_ONLY:
        s->mac = NULL;
        s->hotp = &k_hotp6;
        break;
    case M_MAC_NO_TO:
    case M_HOTP_NO_TO:
    case M_PSK_NO_TO:
        s->kind = MQTTSEC_EVT;
        s->reply_to = NULL;
        s->corr = NULL;
        s->corr_len = 0;
        s->to = NULL;
        s->sig = &client.signer; /* the event is authenticated anyway */
        s->mac = mu == M_MAC_NO_TO ? &k_hmac : NULL;
        s->hotp = mu == M_HOTP_NO_TO ? &k_hotp6 : NULL;
        s->psk = mu == M_PSK_NO_TO ? &k_psk : NULL;
        break;
    case M_REQ_NO_TO:
        s->to = NULL;
        s->mac = NULL;
        s->sig = &client.signer;
        break;
    case M_EXP_EQ_IAT: s->exp = s->iat; break;
    case M_EXP_BEFORE_IAT: s->exp = s->iat - 1; break;
    case M_EXP_ABOVE_MAX: s->exp = MAX_TIME + 1; break;
    case M_EXP_U64_MAX: s->exp = UINT64_MAX; break;
    case M_CTR_ZERO: s->ctr = 0; break;
    case M_KIND_0: s->kind = 0; break;
    case M_KIND_3: s->kind = 3; break;
    case M_KIND_10: s->kind = 0x10; break;
    case M_MAC_IS_HOTP: s->mac = &k_hotp6; break;
    case M_PSK_IS_HMAC: s->psk = &k_hmac; break;
    case M_PAYLOAD_NULL:
        s->payload = NULL;
        s->payload_len = 1;
        break;
    case N_MUTATIONS: break;
    }
}

static void test_seal_refusals(void)
{
    struct mqttsec_seal base, s;
    int i;

    memset(ID_128, 'c', 128);
    memset(ID_129, 'c', 129);
    memset(TOPIC_1024, 't', 1024);
    memset(TOPIC_1025, 't', 1025);
    memset(CORR_65, 0x55, sizeof CORR_65);

    seal_init(&base, &client, &HMAC_ONLY, MQTTSEC_REQ);
    base.payload = PAYLOAD;
    base.payload_len = 3;
    for (i = 0; i < N_MUTATIONS; i++) {
        s = base;
        mutate(&s, (enum mutation)i);
        if (!CHECK_RC(seal_raw(&s, sizeof ENV), MQTTSEC_E_ARGUMENT)) {
            printf("  ... mutation: %s\n", MUTATION_NAMES[i]);
        }
    }

    /* the limits themselves are sealable */
    {
        struct mqttsec_seal ok = base;
        uint8_t corr1 = 0x42;

        ok.from = ID_128;
        ok.to = ID_128;
        ok.topic = TOPIC_1024;
        ok.reply_to = TOPIC_1024;
        ok.corr = CORR_65;
        ok.corr_len = 64;
        CHECK(seal_ok(&ok, ENV, sizeof ENV, NULL) != 0);
        ok = base;
        ok.corr = &corr1;
        ok.corr_len = 1;
        ok.topic = "caf\xc3\xa9/\xc2\x85/\xf0\x9f\x94\x91"; /* C1 allowed */
        ok.exp = ok.iat + 1;
        ok.ctr = UINT64_MAX;
        CHECK(seal_ok(&ok, ENV, sizeof ENV, NULL) != 0);
        ok = base;
        ok.iat = MAX_TIME - 1;
        ok.exp = MAX_TIME;
        CHECK(seal_ok(&ok, ENV, sizeof ENV, NULL) != 0);
        ok = base;
        ok.from = "A-Z.a_z:0@9";
        CHECK(seal_ok(&ok, ENV, sizeof ENV, NULL) != 0);
    }
}

/* cap one byte short is BUFFER for every protection set; exactly
 * mqttsec_sealed_len is enough. */
static void test_seal_buffer(void)
{
    static const uint8_t kinds[] = {MQTTSEC_REQ, MQTTSEC_REP, MQTTSEC_EVT};
    static const size_t sizes[] = {0, 1, 255, 4096};
    struct mqttsec_seal s;
    size_t i, k, z, want, n;
    int rc;

    for (i = 0; i < N_SETS; i++) {
        for (k = 0; k < sizeof kinds; k++) {
            for (z = 0; z < sizeof sizes / sizeof sizes[0]; z++) {
                seal_init(&s, &client, &SETS[i], kinds[k]);
                if (kinds[k] == MQTTSEC_REP) {
                    s.reply_to = NULL;
                    s.re = RE;
                }
                s.payload = PAYLOAD;
                s.payload_len = sizes[z];
                want = mqttsec_sealed_len(&s);
                CHECK(want > 17 + sizes[z]);
                n = 0;
                rc = mqttsec_seal(&s, ENV, want - 1, &n, NULL);
                CHECK_RC(rc, MQTTSEC_E_BUFFER);
                rc = mqttsec_seal(&s, ENV, 0, &n, NULL);
                CHECK_RC(rc, MQTTSEC_E_BUFFER);
                n = 0;
                rc = mqttsec_seal(&s, ENV, want, &n, NULL);
                CHECK_RC(rc, MQTTSEC_OK);
                CHECK(n == want);
            }
        }
    }
}

/* ---- The replay window ------------------------------------------------- */

/* open_ctr seals an HMAC request from the client with counter ctr and
 * opens it at the gateway; m gets the result. */
static int open_ctr(uint64_t ctr, struct mqttsec_message *m)
{
    struct mqttsec_seal s;
    struct mqttsec_expect x = expect_of(MQTTSEC_REQ, "client", NULL);
    size_t n;

    seal_init(&s, &client, &HMAC_ONLY, MQTTSEC_REQ);
    s.ctr = ctr;
    n = seal_ok(&s, ENV, sizeof ENV, NULL);
    if (n == 0) {
        memset(m, 0, sizeof *m);
        return 99;
    }
    return do_open(&gateway, &x, T0, ENV, n, m);
}

static unsigned window_marks(const struct mqttsec_window *w)
{
    unsigned i, c = 0;

    for (i = 0; i < MQTTSEC_WINDOW_BITS; i++) {
        c += (unsigned)((w->bits[i / 64] >> (i % 64)) & 1u);
    }
    return c;
}

#define OPEN_OK(c) CHECK_RC(open_ctr((c), &m), MQTTSEC_OK)
#define OPEN_SEEN(c) \
    CHECK_REFUSED(open_ctr((c), &m), &m, MQTTSEC_E_REPLAYED, "replay-seen")
#define OPEN_OLD(c) \
    CHECK_REFUSED(open_ctr((c), &m), &m, MQTTSEC_E_REPLAYED, "replay-old")

static void test_window(void)
{
    struct mqttsec_message m;
    struct mqttsec_window *w = &gateway.peer.window;
    uint64_t c;

    /* in order */
    party_reset(&gateway);
    OPEN_OK(1);
    OPEN_OK(2);
    OPEN_OK(3);
    CHECK_U64(w->top, 3);
    CHECK(window_marks(w) == 3);
    OPEN_SEEN(1);
    OPEN_SEEN(3);

    /* out of order within W, then duplicates */
    party_reset(&gateway);
    OPEN_OK(1000);
    OPEN_OK(990);
    OPEN_OK(1000 - W + 1); /* T - c = W - 1: the oldest in the window */
    OPEN_OK(999);
    OPEN_SEEN(1000 - W + 1);
    OPEN_OK(1001);
    CHECK_U64(w->top, 1001);
    OPEN_SEEN(990);
    OPEN_SEEN(999);
    OPEN_SEEN(1000);
    OPEN_SEEN(1001);
    OPEN_OLD(1000 - W + 1); /* now T - c = W */
    OPEN_OK(995);

    /* too old: T - c >= W */
    party_reset(&gateway);
    OPEN_OK(1000);
    OPEN_OLD(1000 - W);
    OPEN_OLD(1000 - W - 1);
    OPEN_OLD(1);
    OPEN_OK(1000 - W + 1);
    CHECK_U64(w->top, 1000);

    /* below T with no window yet: fresh */
    party_reset(&gateway);
    OPEN_OK(5);
    OPEN_OK(1);
    OPEN_OK(4);

    /* a jump of W - 1 keeps the marks; a jump of exactly W (and more)
     * clears them */
    party_reset(&gateway);
    OPEN_OK(200);
    OPEN_OK(199);
    OPEN_OK(200 + W - 1);
    OPEN_SEEN(200);
    OPEN_OLD(199);
    party_reset(&gateway);
    OPEN_OK(200);
    OPEN_OK(199);
    OPEN_OK(198);
    OPEN_OK(200 + W);
    CHECK_U64(w->top, 200 + W);
    CHECK(window_marks(w) == 1);
    OPEN_OK(200 + W - 1); /* would be seen if 199's mark survived */
    OPEN_OK(200 + W - 2);
    OPEN_OK(201);
    OPEN_OLD(200);
    party_reset(&gateway);
    OPEN_OK(300);
    OPEN_OK(299);
    OPEN_OK(300 + W + 1);
    CHECK(window_marks(w) == 1);
    OPEN_OK(300 + W);
    OPEN_OK(300 + 2);
    party_reset(&gateway);
    OPEN_OK(7);
    OPEN_OK(6);
    OPEN_OK(7 + 64 * W + 5); /* a shift of many words */
    CHECK(window_marks(w) == 1);
    OPEN_OK(7 + 64 * W + 4);
    CHECK(window_marks(w) == 2);
    /* shift by every amount below W keeps exactly the marks in range */
    party_reset(&gateway);
    c = 1000;
    OPEN_OK(c);
    {
        uint64_t d;
        for (d = 1; d < W; d++) {
            c += d;
            if (!OPEN_OK(c) || !CHECK_U64(w->top, c)) {
                break;
            }
        }
    }
    OPEN_SEEN(c);
    /* a mark at p below T, moved by d: still seen while p + d < W (across
     * the bitmap's words too, when W > 64), then too old */
    {
        static const uint64_t marks[] = {1, 2, 31, 32, 62, 63, 64, 65, 100,
                                         127, 200, 255};
        static const uint64_t moves[] = {1, 2, 3, 31, 32, 33, 63, 64,
                                         65, 100, 127, 128, 129, 255};
        size_t pi, di;

        for (pi = 0; pi < sizeof marks / sizeof marks[0]; pi++) {
            for (di = 0; di < sizeof moves / sizeof moves[0]; di++) {
                const uint64_t t = 10000, p = marks[pi], d = moves[di];
                int ok;

                if (p >= W) {
                    continue;
                }
                party_reset(&gateway);
                ok = OPEN_OK(t) && OPEN_OK(t - p) && OPEN_OK(t + d);
                if (p + d < W) {
                    ok = ok && OPEN_SEEN(t - p) && OPEN_SEEN(t);
                    ok = ok && (p + d + 1 >= W || OPEN_OK(t - p - 1));
                } else {
                    ok = ok && OPEN_OLD(t - p);
                }
                if (!ok) {
                    printf("  ... mark %u below T moved by %u\n",
                           (unsigned)p, (unsigned)d);
                }
            }
        }
    }

    /* counter 2^64 - 1 */
    party_reset(&gateway);
    OPEN_OK(UINT64_MAX);
    CHECK_U64(w->top, UINT64_MAX);
    OPEN_SEEN(UINT64_MAX);
    OPEN_OK(UINT64_MAX - 1);
    OPEN_OK(UINT64_MAX - W + 1);
    OPEN_OLD(UINT64_MAX - W);
    OPEN_OLD(1);
    party_reset(&gateway);
    OPEN_OK(1);
    OPEN_OK(UINT64_MAX); /* a jump of 2^64 - 2 */
    CHECK(window_marks(w) == 1);
    OPEN_OLD(1);
    OPEN_OK(UINT64_MAX - 2);
    party_reset(&gateway);
    OPEN_OK(UINT64_MAX - W);
    OPEN_OK(UINT64_MAX); /* a jump of exactly W up to 2^64 - 1 */
    CHECK(window_marks(w) == 1);
    OPEN_OK(UINT64_MAX - 1);
    OPEN_OLD(UINT64_MAX - W);

    /* a refused message records nothing */
    party_reset(&gateway);
    OPEN_OK(50);
    {
        struct mqttsec_seal s;
        struct mqttsec_expect x = expect_of(MQTTSEC_REQ, "client", NULL);
        size_t n;

        seal_init(&s, &client, &HMAC_ONLY, MQTTSEC_REQ);
        s.ctr = 60;
        n = seal_ok(&s, ENV, sizeof ENV, NULL);
        ENV[n - 5] ^= 0x01; /* the last byte of M (S is empty) */
        CHECK_REFUSED(do_open(&gateway, &x, T0, ENV, n, &m), &m,
                      MQTTSEC_E_AUTHENTICATION, "auth-hmac");
        CHECK_U64(w->top, 50);
        ENV[n - 5] ^= 0x01;
        CHECK_RC(do_open(&gateway, &x, T0, ENV, n, &m), MQTTSEC_OK);
        CHECK_U64(w->top, 60);
    }
    party_reset(&gateway);
}

/* ---- Freshness --------------------------------------------------------- */

/* open_at seals an HMAC request with iat and exp and opens it at the
 * gateway at now, with the peer's skew and lifetime. */
static int open_at(uint64_t iat, uint64_t exp, uint64_t now, uint32_t skew,
                   uint32_t life, struct mqttsec_message *m)
{
    struct mqttsec_seal s;
    struct mqttsec_expect x = expect_of(MQTTSEC_REQ, "client", NULL);
    size_t n;

    seal_init(&s, &client, &HMAC_ONLY, MQTTSEC_REQ);
    s.iat = iat;
    s.exp = exp;
    n = seal_ok(&s, ENV, sizeof ENV, NULL);
    if (n == 0) {
        memset(m, 0, sizeof *m);
        return 99;
    }
    gateway.peer.skew_ms = skew;
    gateway.peer.lifetime_ms = life;
    return do_open(&gateway, &x, now, ENV, n, m);
}

struct fresh_case {
    const char *name;
    uint64_t iat, exp, now;
    uint32_t skew, life;
    const char *rule; /* NULL: accepted */
};

static void test_freshness(void)
{
    const uint64_t L = MQTTSEC_DEFAULT_LIFETIME_MS;
    const struct fresh_case cases[] = {
        {"now", T0, T0 + LIFE, T0, 0, 0, NULL},
        {"iat = now + S", T0 + SKEW, T0 + SKEW + LIFE, T0, 0, 0, NULL},
        {"iat = now + S + 1", T0 + SKEW + 1, T0 + SKEW + 1 + LIFE, T0, 0, 0,
         "fresh-early"},
        {"now = exp + S - 1", T0 - LIFE, T0, T0 + SKEW - 1, 0, 0, NULL},
        {"now = exp + S", T0 - LIFE, T0, T0 + SKEW, 0, 0, "fresh-late"},
        {"exp - iat = L", T0, T0 + L, T0, 0, 0, NULL},
        {"exp - iat = L + 1", T0, T0 + L + 1, T0, 0, 0, "fresh-lifetime"},
        {"custom S, early edge", T0 + 5, T0 + 100, T0, 5, 0, NULL},
        {"custom S, early", T0 + 6, T0 + 100, T0, 5, 0, "fresh-early"},
        {"custom S, late", T0 - 100, T0 - 5, T0, 5, 0, "fresh-late"},
        {"custom L edge", T0, T0 + 10, T0, 0, 10, NULL},
        {"custom L", T0, T0 + 11, T0, 0, 10, "fresh-lifetime"},
        {"max S and L", T0, T0 + UINT32_MAX, T0, UINT32_MAX, UINT32_MAX,
         NULL},
        {"max L + 1", T0, T0 + UINT32_MAX + UINT64_C(1), T0, 0, UINT32_MAX,
         "fresh-lifetime"},
        {"lifetime 2^63-1", 0, MAX_TIME, T0, 0, 0, "fresh-lifetime"},
        /* overflow: now + S and exp + S past 2^63 - 1 and 2^64 - 1 */
        {"exp 2^63-1, now there", MAX_TIME - 1000, MAX_TIME, MAX_TIME, 0, 0,
         NULL},
        {"exp 2^63-1, now exp + S - 1", MAX_TIME - 1000, MAX_TIME,
         MAX_TIME + SKEW - 1, 0, 0, NULL},
        {"exp 2^63-1, now exp + S", MAX_TIME - 1000, MAX_TIME,
         MAX_TIME + SKEW, 0, 0, "fresh-late"},
        {"exp 2^63-1, max S, now 2^64-2", MAX_TIME - 1000, MAX_TIME,
         UINT64_MAX - 1, UINT32_MAX, 0, "fresh-late"},
        {"now 2^64-2 (now + S wraps)", T0, T0 + LIFE, UINT64_MAX - 1, 0, 0,
         "fresh-late"},
        {"now 2^64-2, max S", T0, T0 + LIFE, UINT64_MAX - 1, UINT32_MAX, 0,
         "fresh-late"},
        {"iat 2^63-2 = now + S", MAX_TIME - 1, MAX_TIME, MAX_TIME - 1 - SKEW,
         0, 0, NULL},
        {"iat 2^63-2 > now + S", MAX_TIME - 1, MAX_TIME, MAX_TIME - 2 - SKEW,
         0, 0, "fresh-early"},
        /* underflow: now and iat below S */
        {"now 0, iat 0", 0, 1000, 0, 0, 0, NULL},
        {"now < S, exp < now", 0, 500, 1000, 0, 0, NULL},
        {"now 0, iat S", SKEW, SKEW + 1000, 0, 0, 0, NULL},
        {"now 0, iat S + 1", SKEW + 1, SKEW + 1000, 0, 0, 0, "fresh-early"},
        {"now 0, max S", UINT32_MAX, UINT64_C(2) * UINT32_MAX, 0, UINT32_MAX,
         UINT32_MAX, NULL},
    };
    struct mqttsec_message m;
    size_t i;

    party_reset(&gateway);
    for (i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        const struct fresh_case *fc = &cases[i];
        int ok, rc;

        rc = open_at(fc->iat, fc->exp, fc->now, fc->skew, fc->life, &m);
        if (fc->rule == NULL) {
            ok = CHECK_RC(rc, MQTTSEC_OK);
        } else {
            ok = CHECK_REFUSED(rc, &m, MQTTSEC_E_EXPIRED, fc->rule);
        }
        if (!ok) {
            printf("  ... case: %s\n", fc->name);
        }
    }
    party_reset(&gateway);
}

/* ---- Clockless device and time requests -------------------------------- */

static void test_clockless(void)
{
    struct mqttsec_seal s;
    struct mqttsec_message m;
    struct mqttsec_expect x;
    struct mqttsec_pending pend;
    uint8_t d[32];
    size_t n;
    int rc;

    party_reset(&client);
    memset(&pend, 0, sizeof pend);
    memcpy(pend.digest, RE, 32);
    memcpy(pend.corr, CORR, sizeof CORR);
    pend.corr_len = sizeof CORR;
    pend.topic = MQTTSEC_TIME_METHOD;
    pend.to = "gateway";
    x = expect_of(MQTTSEC_REP | MQTTSEC_ERR, "gateway", NULL);
    x.pending = &pend;
    x.n_pending = 1;

    /* a reply bound to a pending request: only its lifetime is checked */
    seal_init(&s, &gateway, &HMAC_ONLY, MQTTSEC_REP);
    s.topic = MQTTSEC_TIME_METHOD;
    s.re = RE;
    s.iat = 5; /* any time at all */
    s.exp = 5 + LIFE;
    n = seal_ok(&s, ENV, sizeof ENV, d);
    rc = do_open(&client, &x, MQTTSEC_NO_CLOCK, ENV, n, &m);
    if (CHECK_RC(rc, MQTTSEC_OK)) {
        CHECK_U64(m.h.iat, 5);
        CHECK(m.answers == &pend);
    }
    CHECK_REFUSED(do_open(&client, &x, MQTTSEC_NO_CLOCK, ENV, n, &m), &m,
                  MQTTSEC_E_REPLAYED, "replay-seen");

    seal_init(&s, &gateway, &HMAC_ONLY, MQTTSEC_ERR);
    s.topic = MQTTSEC_TIME_METHOD;
    s.re = RE;
    s.iat = MAX_TIME - 2 * LIFE;
    s.exp = MAX_TIME - LIFE;
    n = seal_ok(&s, ENV, sizeof ENV, d);
    CHECK_RC(do_open(&client, &x, MQTTSEC_NO_CLOCK, ENV, n, &m), MQTTSEC_OK);

    /* ... and a reply whose lifetime is above L is refused */
    seal_init(&s, &gateway, &HMAC_ONLY, MQTTSEC_REP);
    s.topic = MQTTSEC_TIME_METHOD;
    s.re = RE;
    s.iat = T0;
    s.exp = T0 + MQTTSEC_DEFAULT_LIFETIME_MS + 1;
    n = seal_ok(&s, ENV, sizeof ENV, d);
    CHECK_REFUSED(do_open(&client, &x, MQTTSEC_NO_CLOCK, ENV, n, &m), &m,
                  MQTTSEC_E_EXPIRED, "fresh-lifetime");

    /* a request or an event cannot be judged: refused */
    x = expect_of(MQTTSEC_REQ | MQTTSEC_EVT, "gateway", NULL);
    seal_init(&s, &gateway, &HMAC_ONLY, MQTTSEC_REQ);
    n = seal_ok(&s, ENV, sizeof ENV, d);
    CHECK_REFUSED(do_open(&client, &x, MQTTSEC_NO_CLOCK, ENV, n, &m), &m,
                  MQTTSEC_E_EXPIRED, "fresh-clockless");
    seal_init(&s, &gateway, &ES256_ONLY, MQTTSEC_EVT);
    s.to = NULL;
    n = seal_ok(&s, ENV, sizeof ENV, d);
    CHECK_REFUSED(do_open(&client, &x, MQTTSEC_NO_CLOCK, ENV, n, &m), &m,
                  MQTTSEC_E_EXPIRED, "fresh-clockless");
    /* ... and with a clock, they are fine */
    CHECK_RC(do_open(&client, &x, T0, ENV, n, &m), MQTTSEC_OK);
    party_reset(&client);
}

/* seal_time_request seals the time request of a clockless device: iat 0,
 * exp its wait, an empty payload. */
static size_t seal_time_request(uint64_t iat, uint64_t exp, uint8_t kind,
                                const char *topic)
{
    struct mqttsec_seal s;

    seal_init(&s, &client, &HMAC_ONLY, kind);
    s.topic = topic;
    s.iat = iat;
    s.exp = exp;
    return seal_ok(&s, ENV, sizeof ENV, NULL);
}

static void test_time_request(void)
{
    struct mqttsec_message m;
    struct mqttsec_expect x = expect_of(MQTTSEC_REQ | MQTTSEC_EVT, "client",
                                        NULL);
    size_t n;
    int rc;

    party_reset(&gateway);
    gateway.peer.flags = MQTTSEC_PEER_CLOCKLESS;

    n = seal_time_request(0, 10000, MQTTSEC_REQ, MQTTSEC_TIME_METHOD);
    rc = do_open(&gateway, &x, T0, ENV, n, &m);
    if (CHECK_RC(rc, MQTTSEC_OK)) {
        CHECK(m.time_request == 1);
        CHECK(m.payload_len == 0);
    }
    CHECK_REFUSED(do_open(&gateway, &x, T0, ENV, n, &m), &m,
                  MQTTSEC_E_REPLAYED, NULL);

    /* whatever its iat */
    n = seal_time_request(T0, T0 + 10000, MQTTSEC_REQ, MQTTSEC_TIME_METHOD);
    rc = do_open(&gateway, &x, T0, ENV, n, &m);
    CHECK_RC(rc, MQTTSEC_OK);
    CHECK(rc != 0 || m.time_request == 1);

    /* its lifetime is still checked */
    n = seal_time_request(0, MQTTSEC_DEFAULT_LIFETIME_MS + 1, MQTTSEC_REQ,
                          MQTTSEC_TIME_METHOD);
    CHECK_REFUSED(do_open(&gateway, &x, T0, ENV, n, &m), &m,
                  MQTTSEC_E_EXPIRED, "fresh-lifetime");

    /* another method from the clockless peer: step 6 as usual */
    n = seal_time_request(0, 10000, MQTTSEC_REQ, "get-card");
    CHECK_REFUSED(do_open(&gateway, &x, T0, ENV, n, &m), &m,
                  MQTTSEC_E_EXPIRED, "fresh-late");
    /* an event on mqttsec.time is not a time request */
    n = seal_time_request(0, 10000, MQTTSEC_EVT, MQTTSEC_TIME_METHOD);
    CHECK_REFUSED(do_open(&gateway, &x, T0, ENV, n, &m), &m,
                  MQTTSEC_E_EXPIRED, "fresh-late");
    /* a normal request from the clockless peer is not a time request */
    n = seal_time_request(T0, T0 + 1000, MQTTSEC_REQ, "get-card");
    rc = do_open(&gateway, &x, T0, ENV, n, &m);
    CHECK_RC(rc, MQTTSEC_OK);
    CHECK(rc != 0 || m.time_request == 0);

    /* a peer not marked clockless: the time request is stale */
    gateway.peer.flags = 0;
    n = seal_time_request(0, 10000, MQTTSEC_REQ, MQTTSEC_TIME_METHOD);
    CHECK_REFUSED(do_open(&gateway, &x, T0, ENV, n, &m), &m,
                  MQTTSEC_E_EXPIRED, "fresh-late");

    /* after a loss, the responder's clock stands in for the time
     * request's iat (SPEC 7.3): refused until now > loss + S */
    party_reset(&gateway);
    gateway.peer.flags = MQTTSEC_PEER_CLOCKLESS;
    gateway.r.has_loss = 1;
    gateway.r.loss_ms = T0;
    n = seal_time_request(0, 10000, MQTTSEC_REQ, MQTTSEC_TIME_METHOD);
    CHECK_REFUSED(do_open(&gateway, &x, T0 + 1000, ENV, n, &m), &m,
                  MQTTSEC_E_REPLAYED, "replay-loss");
    CHECK_REFUSED(do_open(&gateway, &x, T0 + SKEW, ENV, n, &m), &m,
                  MQTTSEC_E_REPLAYED, "replay-loss");
    rc = do_open(&gateway, &x, T0 + SKEW + 1, ENV, n, &m);
    CHECK_RC(rc, MQTTSEC_OK);
    CHECK(rc != 0 || m.time_request == 1);
    party_reset(&gateway);
}

/* ---- Loss of replay state ---------------------------------------------- */

static void test_loss(void)
{
    struct mqttsec_message m;
    size_t i;
    const struct {
        uint64_t iat, now;
        int has_loss;
        const char *rule;
    } cases[] = {
        {T0 - 1000, T0, 1, "replay-loss"},       /* sent before the loss */
        {T0, T0, 1, "replay-loss"},              /* at it */
        {T0 + SKEW, T0 + SKEW, 1, "replay-loss"}, /* at loss + S */
        {T0 + SKEW + 1, T0 + SKEW + 1, 1, NULL},  /* after: accepted */
        {T0 + SKEW + 1, T0 + 2 * SKEW, 1, NULL},
        {T0 - 1000, T0, 0, NULL},                /* has_loss 0: no loss */
    };

    for (i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        int rc, ok;

        party_reset(&gateway);
        gateway.r.has_loss = cases[i].has_loss;
        gateway.r.loss_ms = T0;
        rc = open_at(cases[i].iat, cases[i].iat + LIFE, cases[i].now, 0, 0,
                     &m);
        if (cases[i].rule == NULL) {
            ok = CHECK_RC(rc, MQTTSEC_OK);
        } else {
            ok = CHECK_REFUSED(rc, &m, MQTTSEC_E_REPLAYED, cases[i].rule);
        }
        if (!ok) {
            printf("  ... case %u\n", (unsigned)i);
        }
    }
    /* loss at the far end of time does not overflow loss + S */
    party_reset(&gateway);
    gateway.r.has_loss = 1;
    gateway.r.loss_ms = UINT64_MAX - 10;
    CHECK_REFUSED(open_at(T0, T0 + LIFE, T0, 0, 0, &m), &m,
                  MQTTSEC_E_REPLAYED, "replay-loss");
    party_reset(&gateway);
}

/* ---- Context, policy, size --------------------------------------------- */

static void test_context_policy(void)
{
    struct mqttsec_seal s;
    struct mqttsec_message m;
    struct mqttsec_expect x = expect_of(MQTTSEC_REQ, "client", "get-card");
    size_t n;

    party_reset(&gateway);
    seal_init(&s, &client, &HMAC_ONLY, MQTTSEC_REQ);
    s.to = "gateway-2";
    n = seal_ok(&s, ENV, sizeof ENV, NULL);
    CHECK_REFUSED(do_open(&gateway, &x, T0, ENV, n, &m), &m,
                  MQTTSEC_E_CONTEXT, "ctx-recipient");

    seal_init(&s, &client, &HMAC_ONLY, MQTTSEC_REQ);
    n = seal_ok(&s, ENV, sizeof ENV, NULL);
    x.kinds = MQTTSEC_EVT;
    CHECK_REFUSED(do_open(&gateway, &x, T0, ENV, n, &m), &m,
                  MQTTSEC_E_CONTEXT, "ctx-kind");
    x.kinds = MQTTSEC_REQ;
    x.topic = "put-card";
    CHECK_REFUSED(do_open(&gateway, &x, T0, ENV, n, &m), &m,
                  MQTTSEC_E_CONTEXT, "ctx-topic");
    x.topic = NULL;
    x.from = "someone";
    CHECK_REFUSED(do_open(&gateway, &x, T0, ENV, n, &m), &m,
                  MQTTSEC_E_CONTEXT, "ctx-from");
    x.from = NULL;

    /* a reply with nothing pending */
    seal_init(&s, &gateway, &HMAC_ONLY, MQTTSEC_REP);
    s.re = RE;
    n = seal_ok(&s, ENV2, sizeof ENV2, NULL);
    {
        struct mqttsec_expect xr = expect_of(MQTTSEC_REP, NULL, NULL);
        CHECK_REFUSED(do_open(&client, &xr, T0, ENV2, n, &m), &m,
                      MQTTSEC_E_CONTEXT, "ctx-re");
    }

    /* unknown sender */
    seal_init(&s, &client, &HMAC_ONLY, MQTTSEC_REQ);
    n = seal_ok(&s, ENV, sizeof ENV, NULL);
    gateway.peer.id = "stranger";
    CHECK_REFUSED(do_open(&gateway, &x, T0, ENV, n, &m), &m,
                  MQTTSEC_E_UNKNOWN_KEY, "key-sender");
    gateway.peer.id = "client";

    /* policy */
    gateway.peer.require = MQTTSEC_SIG;
    CHECK_REFUSED(do_open(&gateway, &x, T0, ENV, n, &m), &m,
                  MQTTSEC_E_POLICY, "pol-require");
    gateway.peer.require = MQTTSEC_HMAC | MQTTSEC_HOTP;
    CHECK_REFUSED(do_open(&gateway, &x, T0, ENV, n, &m), &m,
                  MQTTSEC_E_POLICY, "pol-require");
    gateway.peer.require = 0;
    gateway.peer.flags = MQTTSEC_PEER_PAIRWISE_ENC;
    CHECK_REFUSED(do_open(&gateway, &x, T0, ENV, n, &m), &m,
                  MQTTSEC_E_POLICY, "pol-pairwise-enc");
    gateway.peer.flags = 0;

    /* unknown HMAC key */
    {
        struct mqttsec_key other;
        CHECK_RC(mqttsec_key_init(&other, MQTTSEC_KEY_HS256, OTHER_HMAC_K, 32,
                                  0),
                 MQTTSEC_OK);
        seal_init(&s, &client, &HMAC_ONLY, MQTTSEC_REQ);
        s.mac = &other;
        n = seal_ok(&s, ENV2, sizeof ENV2, NULL);
        CHECK_REFUSED(do_open(&gateway, &x, T0, ENV2, n, &m), &m,
                      MQTTSEC_E_UNKNOWN_KEY, "key-mac");
    }

    /* the size limit */
    party_reset(&gateway);
    seal_init(&s, &client, &HMAC_ONLY, MQTTSEC_REQ);
    n = seal_ok(&s, ENV, sizeof ENV, NULL);
    gateway.r.max_size = n - 1;
    CHECK_REFUSED(do_open(&gateway, &x, T0, ENV, n, &m), &m,
                  MQTTSEC_E_TOO_LARGE, "size-limit");
    gateway.r.max_size = n;
    CHECK_RC(do_open(&gateway, &x, T0, ENV, n, &m), MQTTSEC_OK);
    party_reset(&gateway);
}

/* ---- Forgeries --------------------------------------------------------- */

struct frame {
    size_t h_off, h_len, p_off, p_len, m_off, m_len, s_off, s_len;
};

static uint32_t be32(const uint8_t *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 |
           (uint32_t)p[2] << 8 | (uint32_t)p[3];
}

static void frame_of(const uint8_t *e, struct frame *f)
{
    f->h_off = 5;
    f->h_len = be32(e + 1);
    f->p_off = f->h_off + f->h_len + 4;
    f->p_len = be32(e + f->p_off - 4);
    f->m_off = f->p_off + f->p_len + 4;
    f->m_len = be32(e + f->m_off - 4);
    f->s_off = f->m_off + f->m_len + 4;
    f->s_len = be32(e + f->s_off - 4);
}

static void test_forgeries(void)
{
    struct mqttsec_seal s;
    struct mqttsec_message m;
    struct mqttsec_expect x = expect_of(MQTTSEC_REQ, "client", NULL);
    struct frame f;
    size_t n;
    int i;

    party_reset(&gateway);

    /* ES256: a changed signature, r = 0, s = 0, a changed payload, a
     * changed header; then the genuine message is still accepted */
    seal_init(&s, &client, &ES256_ONLY, MQTTSEC_REQ);
    s.payload = PAYLOAD;
    s.payload_len = 20;
    n = seal_ok(&s, ENV, sizeof ENV, NULL);
    frame_of(ENV, &f);
    CHECK(f.s_len == 64 && f.s_off + 64 == n && f.m_len == 0);
    for (i = 0; i < 5; i++) {
        memcpy(ENV2, ENV, n);
        switch (i) {
        case 0: ENV2[n - 1] ^= 0x01; break;
        case 1: memset(ENV2 + f.s_off, 0, 32); break;
        case 2: memset(ENV2 + f.s_off + 32, 0, 32); break;
        case 3: ENV2[f.p_off] ^= 0x80; break;
        default: memcpy(ENV2 + f.s_off + 32, P256_N, 32); break;
        }
        if (!CHECK_REFUSED(do_open(&gateway, &x, T0, ENV2, n, &m), &m,
                           MQTTSEC_E_AUTHENTICATION, "auth-sig")) {
            printf("  ... es256 forgery %d\n", i);
        }
    }
    CHECK_RC(do_open(&gateway, &x, T0, ENV, n, &m), MQTTSEC_OK);
    /* the genuine message again, with a changed signature: replayed is
     * decided before the signature is checked */
    memcpy(ENV2, ENV, n);
    ENV2[n - 1] ^= 0x01;
    CHECK_REFUSED(do_open(&gateway, &x, T0, ENV2, n, &m), &m,
                  MQTTSEC_E_REPLAYED, NULL);

    /* psk: a changed ciphertext byte, tag byte or nonce byte */
    seal_init(&s, &client, &PSK_ONLY, MQTTSEC_REQ);
    s.payload = PAYLOAD;
    s.payload_len = 40;
    n = seal_ok(&s, ENV, sizeof ENV, NULL);
    frame_of(ENV, &f);
    CHECK(f.p_len == 40 + MQTTSEC_GCM_OVERHEAD);
    for (i = 0; i < 3; i++) {
        size_t at = i == 0   ? f.p_off + 12
                    : i == 1 ? f.p_off + f.p_len - 1
                             : f.p_off;
        memcpy(ENV2, ENV, n);
        ENV2[at] ^= 0x01;
        if (!CHECK_REFUSED(do_open(&gateway, &x, T0, ENV2, n, &m), &m,
                           MQTTSEC_E_DECRYPTION, "dec-tag")) {
            printf("  ... psk forgery %d\n", i);
        }
    }
    /* the plaintext does not fit: BUFFER, and nothing recorded */
    memset(&m, 0, sizeof m);
    CHECK_RC(mqttsec_open(&gateway.r, &x, T0, ENV, n, PLAIN, 39, &m),
             MQTTSEC_E_BUFFER);
    {
        int rc = do_open(&gateway, &x, T0, ENV, n, &m);
        CHECK_RC(rc, MQTTSEC_OK);
        CHECK(rc != 0 || (m.payload_len == 40 &&
                          memcmp(m.payload, PAYLOAD, 40) == 0));
    }
    /* a changed header is refused by the AEAD too */
    seal_init(&s, &client, &PSK_ONLY, MQTTSEC_REQ);
    s.payload = PAYLOAD;
    s.payload_len = 1;
    s.topic = "get-cart";
    n = seal_ok(&s, ENV, sizeof ENV, NULL);
    frame_of(ENV, &f);
    for (i = 0; (size_t)i + 8 <= f.h_len; i++) {
        if (memcmp(ENV + f.h_off + i, "get-cart", 8) == 0) {
            ENV[f.h_off + i + 7] = 'd';
            break;
        }
    }
    CHECK_REFUSED(do_open(&gateway, &x, T0, ENV, n, &m), &m,
                  MQTTSEC_E_DECRYPTION, "dec-tag");

    /* HMAC: a changed payload */
    seal_init(&s, &client, &HMAC_ONLY, MQTTSEC_REQ);
    s.payload = PAYLOAD;
    s.payload_len = 5;
    n = seal_ok(&s, ENV, sizeof ENV, NULL);
    frame_of(ENV, &f);
    ENV[f.p_off] ^= 0x01;
    CHECK_REFUSED(do_open(&gateway, &x, T0, ENV, n, &m), &m,
                  MQTTSEC_E_AUTHENTICATION, "auth-hmac");

    /* HOTP: a wrong code under a right HMAC is still a wrong code */
    {
        static const struct protset hh = {"hmac+hotp6", 1, 6, 0, 0};
        use_hotp(8);
        seal_init(&s, &client, &hh, MQTTSEC_REQ);
        n = seal_ok(&s, ENV, sizeof ENV, NULL);
        CHECK_REFUSED(do_open(&gateway, &x, T0, ENV, n, &m), &m,
                      MQTTSEC_E_AUTHENTICATION, "auth-hotp-digits");
        use_hotp(6);
    }
    party_reset(&gateway);
}

/* ---- Counter ----------------------------------------------------------- */

struct store {
    uint64_t stored;
    unsigned calls;
    int fail;
};

/* set_failing makes the store's persist fail (1) or work (0). */
static void set_failing(struct store *st, int fail)
{
    st->fail = fail;
}

static int persist(void *ctx, uint64_t upto)
{
    struct store *st = ctx;

    st->calls++;
    if (st->fail) {
        return -1;
    }
    st->stored = upto;
    return 0;
}

static void test_counter(void)
{
    struct mqttsec_counter c;
    struct store st;
    uint64_t v, prev = 0, sentinel = UINT64_C(0xdeadbeef);
    unsigned i, given;
    int rc;

    /* first boot, blocks of 16: one persist per 16 counters, each
     * counter stored before it is given out */
    memset(&st, 0, sizeof st);
    mqttsec_counter_start(&c, 0, 16, persist, &st);
    for (i = 0; i < 48; i++) {
        rc = mqttsec_counter_next(&c, &v);
        if (!CHECK_RC(rc, MQTTSEC_OK) || !CHECK(v > prev) ||
            !CHECK(v <= st.stored)) {
            break;
        }
        prev = v;
        if (i == 0) {
            CHECK_U64(v, 1);
            CHECK(st.calls == 1);
        }
    }
    CHECK(st.calls == 3);
    CHECK(st.stored >= prev && st.stored - prev < 16);

    /* reboot: resume after what was stored; above every counter given */
    {
        uint64_t last = st.stored;
        mqttsec_counter_start(&c, last, 16, persist, &st);
        rc = mqttsec_counter_next(&c, &v);
        CHECK_RC(rc, MQTTSEC_OK);
        CHECK(v > last && v > prev);
        CHECK(v <= st.stored);
        CHECK(st.stored > last);
    }
    memset(&st, 0, sizeof st);
    mqttsec_counter_start(&c, 1000, 1, persist, &st);
    for (i = 0; i < 3; i++) {
        rc = mqttsec_counter_next(&c, &v);
        CHECK_RC(rc, MQTTSEC_OK);
        CHECK_U64(v, 1001 + i);
        CHECK_U64(st.stored, v);
    }
    CHECK(st.calls == 3);

    /* a failing persist: COUNTER and no counter; then recovery */
    memset(&st, 0, sizeof st);
    set_failing(&st, 1);
    mqttsec_counter_start(&c, 500, 8, persist, &st);
    v = sentinel;
    CHECK_RC(mqttsec_counter_next(&c, &v), MQTTSEC_E_COUNTER);
    CHECK_U64(v, sentinel);
    CHECK_RC(mqttsec_counter_next(&c, &v), MQTTSEC_E_COUNTER);
    CHECK_U64(v, sentinel);
    set_failing(&st, 0);
    rc = mqttsec_counter_next(&c, &v);
    CHECK_RC(rc, MQTTSEC_OK);
    CHECK(v > 500 && v <= st.stored);
    /* fails at the next block boundary, not inside a block */
    prev = v;
    given = 0;
    while (given < 32) {
        if (v == st.stored) {
            set_failing(&st, 1);
        }
        rc = mqttsec_counter_next(&c, &v);
        if (rc != 0) {
            break;
        }
        CHECK(v > prev && v <= st.stored);
        prev = v;
        given++;
    }
    CHECK_RC(rc, MQTTSEC_E_COUNTER);
    CHECK(given < 8);
    set_failing(&st, 0);
    rc = mqttsec_counter_next(&c, &v);
    CHECK_RC(rc, MQTTSEC_OK);
    CHECK(v > prev && v <= st.stored);

    /* exhaustion at 2^64 - 1: strictly increasing up to the end, never
     * wrapping; then COUNTER for good */
    memset(&st, 0, sizeof st);
    mqttsec_counter_start(&c, UINT64_MAX - 3, 16, persist, &st);
    prev = UINT64_MAX - 3;
    given = 0;
    for (i = 0; i < 10; i++) {
        v = sentinel;
        rc = mqttsec_counter_next(&c, &v);
        if (rc != 0) {
            CHECK_U64(v, sentinel);
            break;
        }
        CHECK(v > prev);
        CHECK(v <= st.stored && st.stored >= UINT64_MAX - 3);
        prev = v;
        given++;
    }
    CHECK_RC(rc, MQTTSEC_E_COUNTER);
    CHECK(given >= 2 && given <= 3);
    CHECK(prev >= UINT64_MAX - 1);
    CHECK_RC(mqttsec_counter_next(&c, &v), MQTTSEC_E_COUNTER);
    mqttsec_counter_start(&c, UINT64_MAX, 16, persist, &st);
    CHECK_RC(mqttsec_counter_next(&c, &v), MQTTSEC_E_COUNTER);

    /* a block that would carry upto past 2^64 - 1 */
    memset(&st, 0, sizeof st);
    mqttsec_counter_start(&c, UINT64_MAX - 5, UINT32_MAX, persist, &st);
    rc = mqttsec_counter_next(&c, &v);
    CHECK_RC(rc, MQTTSEC_OK);
    CHECK(v > UINT64_MAX - 5 && v <= st.stored);
}

/* ---- Clock ------------------------------------------------------------- */

static void test_clock(void)
{
    struct mqttsec_clock c;
    const uint32_t S = MQTTSEC_DEFAULT_SKEW_MS;

    memset(&c, 0, sizeof c);
    CHECK_U64(mqttsec_clock_now(&c, 1234), MQTTSEC_NO_CLOCK);

    /* a slow sample (round trip above S/2) is not taken */
    CHECK(mqttsec_clock_learn(&c, T0, 1000, 1000 + S / 2 + 1, S) == 0);
    CHECK_U64(mqttsec_clock_now(&c, 20000), MQTTSEC_NO_CLOCK);

    /* a round trip of exactly S/2 is taken */
    CHECK(mqttsec_clock_learn(&c, T0, 1000, 1000 + S / 2, S) == 1);
    CHECK_U64(mqttsec_clock_now(&c, 1000 + S / 2), T0);
    CHECK_U64(mqttsec_clock_now(&c, 1000 + S / 2 + 5000), T0 + 5000);

    /* a later sample moves the estimate ahead */
    CHECK(mqttsec_clock_learn(&c, T0 + 60000, 40000, 40100, S) == 1);
    CHECK_U64(mqttsec_clock_now(&c, 40100), T0 + 60000);

    /* never backward: a sample behind the estimate is ignored */
    CHECK(mqttsec_clock_learn(&c, T0 + 60000, 50000, 50100, S) == 0);
    CHECK_U64(mqttsec_clock_now(&c, 50100), T0 + 70000);
    /* ... and a slow one that would move it ahead too */
    CHECK(mqttsec_clock_learn(&c, T0 + 999999, 50000, 70000, S) == 0);
    CHECK_U64(mqttsec_clock_now(&c, 70000), T0 + 60000 + (70000 - 40100));

    /* a smaller skew halves the allowed round trip */
    memset(&c, 0, sizeof c);
    CHECK(mqttsec_clock_learn(&c, T0, 0, 101, 200) == 0);
    CHECK(mqttsec_clock_learn(&c, T0, 0, 100, 200) == 1);
    CHECK_U64(mqttsec_clock_now(&c, 100), T0);
}

/* ---- Key set-up -------------------------------------------------------- */

static void test_keys(void)
{
    struct mqttsec_key k;
    struct mqttsec_signer sg;
    uint8_t buf[80], d[32];
    size_t i;
    const struct {
        enum mqttsec_key_use use;
        size_t len;
        unsigned digits;
        int want;
    } sizes[] = {
        {MQTTSEC_KEY_HS256, 31, 0, MQTTSEC_E_ARGUMENT},
        {MQTTSEC_KEY_HS256, 32, 0, MQTTSEC_OK},
        {MQTTSEC_KEY_HS256, 64, 0, MQTTSEC_OK},
        {MQTTSEC_KEY_HS256, 65, 0, MQTTSEC_E_ARGUMENT},
        {MQTTSEC_KEY_HS256, 0, 0, MQTTSEC_E_ARGUMENT},
        {MQTTSEC_KEY_HOTP, 15, 6, MQTTSEC_E_ARGUMENT},
        {MQTTSEC_KEY_HOTP, 16, 6, MQTTSEC_OK},
        {MQTTSEC_KEY_HOTP, 64, 8, MQTTSEC_OK},
        {MQTTSEC_KEY_HOTP, 65, 6, MQTTSEC_E_ARGUMENT},
        {MQTTSEC_KEY_HOTP, 20, 0, MQTTSEC_E_ARGUMENT},
        {MQTTSEC_KEY_HOTP, 20, 5, MQTTSEC_E_ARGUMENT},
        {MQTTSEC_KEY_HOTP, 20, 7, MQTTSEC_E_ARGUMENT},
        {MQTTSEC_KEY_HOTP, 20, 9, MQTTSEC_E_ARGUMENT},
        {MQTTSEC_KEY_A256GCM, 31, 0, MQTTSEC_E_ARGUMENT},
        {MQTTSEC_KEY_A256GCM, 32, 0, MQTTSEC_OK},
        {MQTTSEC_KEY_A256GCM, 33, 0, MQTTSEC_E_ARGUMENT},
        {MQTTSEC_KEY_A256GCM, 16, 0, MQTTSEC_E_ARGUMENT},
        {MQTTSEC_KEY_ES256, 64, 0, MQTTSEC_E_ARGUMENT},
        {MQTTSEC_KEY_ES256, 66, 0, MQTTSEC_E_ARGUMENT},
        {MQTTSEC_KEY_ES256, 33, 0, MQTTSEC_E_ARGUMENT},
        {(enum mqttsec_key_use)0, 32, 0, MQTTSEC_E_ARGUMENT},
        {(enum mqttsec_key_use)5, 32, 0, MQTTSEC_E_ARGUMENT},
    };

    memset(buf, 0x5a, sizeof buf);
    for (i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
        int rc = mqttsec_key_init(&k, sizes[i].use, buf, sizes[i].len,
                                  sizes[i].digits);
        if (!CHECK_RC(rc, sizes[i].want)) {
            printf("  ... use %d len %u digits %u\n", (int)sizes[i].use,
                   (unsigned)sizes[i].len, sizes[i].digits);
        }
    }
    CHECK_RC(mqttsec_key_init(&k, MQTTSEC_KEY_HS256, NULL, 32, 0),
             MQTTSEC_E_ARGUMENT);

    /* the key ids of keys.json (SPEC 6) */
    CHECK_RC(mqttsec_key_init(&k, MQTTSEC_KEY_HS256, HMAC_K, 32, 0), 0);
    CHECK(memcmp(k.kid, HMAC_KID, 12) == 0 && k.len == 32 &&
          k.use == MQTTSEC_KEY_HS256 && memcmp(k.k, HMAC_K, 32) == 0);
    CHECK_RC(mqttsec_key_init(&k, MQTTSEC_KEY_HOTP, HOTP_K, 20, 8), 0);
    CHECK(memcmp(k.kid, HOTP_KID, 12) == 0 && k.digits == 8);
    CHECK(memcmp(k_hotp6.kid, HOTP_KID, 12) == 0 && k_hotp6.digits == 6);
    CHECK_RC(mqttsec_key_init(&k, MQTTSEC_KEY_A256GCM, PSK_K, 32, 0), 0);
    CHECK(memcmp(k.kid, PSK_KID, 12) == 0);
    CHECK_RC(mqttsec_key_init(&k, MQTTSEC_KEY_ES256, ES256_PUB, 65, 0), 0);
    CHECK(memcmp(k.kid, ES256_KID, 12) == 0 && k.len == 65);

    /* ES256 points: on the curve and uncompressed only */
    memcpy(buf, ES256_PUB, 65);
    buf[64] ^= 0x01; /* y changed: off the curve */
    CHECK_RC(mqttsec_key_init(&k, MQTTSEC_KEY_ES256, buf, 65, 0),
             MQTTSEC_E_ARGUMENT);
    memcpy(buf, ES256_PUB, 65);
    buf[0] = 0x02;
    CHECK_RC(mqttsec_key_init(&k, MQTTSEC_KEY_ES256, buf, 65, 0),
             MQTTSEC_E_ARGUMENT);
    memset(buf, 0, 65);
    buf[0] = 0x04; /* (0, 0) */
    CHECK_RC(mqttsec_key_init(&k, MQTTSEC_KEY_ES256, buf, 65, 0),
             MQTTSEC_E_ARGUMENT);
    memset(buf, 0xff, 65);
    buf[0] = 0x04; /* coordinates above p */
    CHECK_RC(mqttsec_key_init(&k, MQTTSEC_KEY_ES256, buf, 65, 0),
             MQTTSEC_E_ARGUMENT);
    memset(buf, 0, 65); /* the point at infinity's encoding, padded */
    CHECK_RC(mqttsec_key_init(&k, MQTTSEC_KEY_ES256, buf, 1, 0),
             MQTTSEC_E_ARGUMENT);

    /* signers: 1 <= d < n */
    CHECK_RC(mqttsec_signer_init(&sg, ES256_D), MQTTSEC_OK);
    CHECK(memcmp(sg.pub, ES256_PUB, 65) == 0);
    CHECK(memcmp(sg.kid, ES256_KID, 12) == 0);
    memset(d, 0, 32);
    CHECK_RC(mqttsec_signer_init(&sg, d), MQTTSEC_E_ARGUMENT);
    memcpy(d, P256_N, 32);
    CHECK_RC(mqttsec_signer_init(&sg, d), MQTTSEC_E_ARGUMENT);
    d[31]++; /* n + 1 */
    CHECK_RC(mqttsec_signer_init(&sg, d), MQTTSEC_E_ARGUMENT);
    memset(d, 0xff, 32);
    CHECK_RC(mqttsec_signer_init(&sg, d), MQTTSEC_E_ARGUMENT);
    memcpy(d, P256_N, 32);
    d[31]--; /* n - 1 */
    CHECK_RC(mqttsec_signer_init(&sg, d), MQTTSEC_OK);
    CHECK_RC(mqttsec_key_init(&k, MQTTSEC_KEY_ES256, sg.pub, 65, 0), 0);
    memset(d, 0, 32);
    d[31] = 1; /* d = 1: the public point is G */
    CHECK_RC(mqttsec_signer_init(&sg, d), MQTTSEC_OK);
    CHECK(sg.pub[0] == 0x04 && sg.pub[1] == 0x6b && sg.pub[2] == 0x17 &&
          sg.pub[64] == 0xf5);
}

/* ---- mqttsec_strerror -------------------------------------------------- */

static void test_strerror(void)
{
    static const struct {
        int rc;
        const char *name;
    } names[] = {
        {MQTTSEC_E_TOO_LARGE, "too-large"},
        {MQTTSEC_E_MALFORMED, "malformed"},
        {MQTTSEC_E_UNSUPPORTED_VERSION, "unsupported-version"},
        {MQTTSEC_E_POLICY, "policy"},
        {MQTTSEC_E_CONTEXT, "context"},
        {MQTTSEC_E_UNKNOWN_KEY, "unknown-key"},
        {MQTTSEC_E_AUTHENTICATION, "authentication"},
        {MQTTSEC_E_REPLAYED, "replayed"},
        {MQTTSEC_E_REPLAY_STORE, "replay-store"},
        {MQTTSEC_E_EXPIRED, "expired"},
        {MQTTSEC_E_DECRYPTION, "decryption"},
    };
    size_t i;
    long long v;
    unsigned long nulls = 0, empties = 0;

    for (i = 0; i < sizeof names / sizeof names[0]; i++) {
        const char *got = mqttsec_strerror(names[i].rc);
        if (!CHECK(got != NULL && strcmp(got, names[i].name) == 0)) {
            printf("  ... %d: %s, want %s\n", names[i].rc,
                   got ? got : "(null)", names[i].name);
        }
    }
    for (v = -70000; v <= 70000; v++) {
        const char *got = mqttsec_strerror((int)v);
        nulls += got == NULL;
        empties += got != NULL && got[0] == '\0';
    }
    for (v = INT_MIN; v <= INT_MAX; v += 65521) {
        const char *got = mqttsec_strerror((int)v);
        nulls += got == NULL;
        empties += got != NULL && got[0] == '\0';
    }
    nulls += mqttsec_strerror(INT_MIN) == NULL;
    nulls += mqttsec_strerror(INT_MAX) == NULL;
    CHECK(nulls == 0);
    CHECK(empties == 0);
    for (v = MQTTSEC_E_COUNTER; v <= MQTTSEC_E_ARGUMENT; v++) {
        const char *got = mqttsec_strerror((int)v);
        CHECK(got != NULL && got[0] != '\0');
    }
}

/* ---- Main -------------------------------------------------------------- */

struct test {
    const char *name;
    void (*run)(void);
};

static const struct test TESTS[] = {
    {"keys", test_keys},
    {"roundtrips", test_roundtrips},
    {"broadcast", test_broadcast_any_receiver},
    {"seal-refusals", test_seal_refusals},
    {"seal-buffer", test_seal_buffer},
    {"window", test_window},
    {"freshness", test_freshness},
    {"clockless", test_clockless},
    {"time-request", test_time_request},
    {"loss", test_loss},
    {"context-policy", test_context_policy},
    {"forgeries", test_forgeries},
    {"counter", test_counter},
    {"clock", test_clock},
    {"strerror", test_strerror},
};

int main(void)
{
    size_t i;
    unsigned failed_tests = 0;

    if (!setup()) {
        printf("FAIL setup: the test keys do not load\n");
        return 1;
    }
    for (i = 0; i < sizeof TESTS / sizeof TESTS[0]; i++) {
        unsigned long c0 = g_checks, f0 = g_failed;

        g_test = TESTS[i].name;
        TESTS[i].run();
        printf("%s %-15s %lu checks", g_failed == f0 ? "ok  " : "FAIL",
               TESTS[i].name, g_checks - c0);
        if (g_failed != f0) {
            printf(", %lu failed", g_failed - f0);
            failed_tests++;
        }
        printf("\n");
    }
    printf("unit: %u tests, %lu checks, %lu failed\n",
           (unsigned)(sizeof TESTS / sizeof TESTS[0]), g_checks, g_failed);
    return g_failed == 0 ? 0 : 1;
}
