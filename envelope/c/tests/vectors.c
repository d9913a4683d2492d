/*
 * vectors.c - runs the Envelope 1.0 vectors (SPEC.md 11) against the C
 * port:
 *
 *   build/vectors build/vectors.txt tests/skipped.txt
 *
 * vectors.txt is ../testdata/vectors flattened by tools/vecflat (its doc
 * comment describes the format). For each vector the runner sets up a
 * receiver as the vector says (its id, one peer with the keys of trust
 * that this profile holds, the peer's policy, its window filled with the
 * replayed counters, the expectation and the pending request), opens the
 * envelope and compares the result class and, for a refusal, the rule id.
 * An accepted vector must give its payload (and digest), be refused as
 * replayed when opened again, be refused after any single bit flip, and be
 * sealed again by mqttsec_seal: byte for byte where sealing is
 * deterministic, and opened where it is not.
 *
 * skipped.txt lists, by name, the vectors this profile cannot take, one a
 * line: "name  no-key  why" for a vector whose documented result needs a
 * key of an algorithm the port does not implement (it must end in
 * unknown-key instead). A skipped vector still runs, and must neither pass
 * as documented nor end with another class than unknown-key; a listed name
 * that is no vector fails, as does any vector not listed that fails.
 *
 * The window width W is fixed when the library is built
 * (MQTTSEC_WINDOW_BITS): a vector whose replayWidth is another W is left to
 * the build with that W, and counted. The Makefile builds the runner for
 * every W the vectors use, so that each vector runs in one of them.
 */
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mqttsec.h"
#include "mqttsec_internal.h"
#include "testutil.h"

#define LINE_CAP (1u << 17) /* the longest line of vectors.txt, and more */
#define ENV_CAP (1u << 16)  /* the longest envelope */
#define STR_CAP 2048        /* ids and topics, NUL-terminated */
#define LIST_CAP 16         /* entries of a list */
#define WORD_CAP 32         /* bytes of a list entry */
#define SKIP_CAP 128        /* names in skipped.txt */
#define KEY_CAP 8           /* keys held for a peer */

/* ---- The keys of keys.json ------------------------------------------------- */

/* A raw key of the first record: "key name hex". */
struct raw_key {
    const char *name;
    uint8_t b[65];
    size_t len;
    int seen;
};

static struct raw_key raw_keys[] = {
    {"hmac", {0}, 0, 0},  {"other-hmac", {0}, 0, 0},    {"hotp", {0}, 0, 0},
    {"psk", {0}, 0, 0},   {"es256-private", {0}, 0, 0}, {"es256", {0}, 0, 0},
};

/* A key id of the first record: "kid name hex". */
struct raw_kid {
    const char *name;
    uint8_t b[MQTTSEC_KID_LEN];
    int seen;
};

static struct raw_kid raw_kids[] = {
    {"hmac", {0}, 0}, {"other-hmac", {0}, 0}, {"hotp", {0}, 0},
    {"hotp8", {0}, 0}, {"psk", {0}, 0},       {"es256", {0}, 0},
};

static unsigned hotp_digits;

/* The profile's keys, made from the raw ones, and the ES256 signer. */
struct profile_keys {
    struct mqttsec_key hmac, other_hmac, hotp, hotp8, psk, es256;
    struct mqttsec_signer signer;
};

static struct profile_keys pk;

/* ---- A vector ------------------------------------------------------------- */

struct vector {
    char file[96], name[96], rule[32], result[32];
    char sender[STR_CAP], receiver[STR_CAP];
    int clockless;
    uint64_t now;
    uint64_t max_size, width;
    char trust[LIST_CAP][WORD_CAP];
    size_t n_trust;
    char identities[LIST_CAP][WORD_CAP];
    size_t n_identities;
    uint8_t require;
    int pairwise_enc, peer_clockless;
    uint64_t skew, lifetime;
    uint8_t kinds;
    int has_from, has_topic, has_request, has_payload, has_digest;
    char from[STR_CAP], topic[STR_CAP];
    uint8_t request[ENV_CAP];
    size_t request_len;
    uint64_t replayed[LIST_CAP];
    size_t n_replayed;
    uint8_t env[ENV_CAP];
    size_t env_len;
    uint8_t payload[ENV_CAP];
    size_t payload_len;
    uint8_t digest[MQTTSEC_DIGEST_LEN];
};

/* A receiver set up for a vector. */
struct setup {
    struct mqttsec_key keys[KEY_CAP];
    size_t n_keys;
    struct mqttsec_peer peer;
    struct mqttsec_receiver rx;
    struct mqttsec_expect x;
    struct mqttsec_pending pending;
    char pending_topic[STR_CAP], pending_to[STR_CAP];
};

/* A name of skipped.txt and its reason. */
struct skip {
    char name[96];
    char reason[16]; /* "no-key" */
    int found;
};

static struct skip skips[SKIP_CAP];
static size_t n_skips;

/* Totals for the summary line. */
static int kids_differ;
static unsigned n_passed, n_skipped, n_other_width, n_flips, n_flips_accepted, n_resealed, n_identical;

static struct vector vec;   /* the vector being read and run */
static struct setup su;     /* its receiver */
static char line[LINE_CAP];
static uint8_t plain[ENV_CAP], work[ENV_CAP], sealed[ENV_CAP];

/* ---- Reading --------------------------------------------------------------- */

/* read_line reads one line of f into line, without its end: 1, or 0 at the
 * end of the file. A line too long for line exits. */
static int read_line(FILE *f)
{
    size_t n;

    if (fgets(line, sizeof line, f) == NULL) {
        return 0;
    }
    n = strlen(line);
    if (n > 0 && line[n - 1] == '\n') {
        line[--n] = '\0';
    } else if (!feof(f)) {
        fprintf(stderr, "vectors: a line longer than %u bytes\n", LINE_CAP);
        exit(2);
    }
    return 1;
}

/* split cuts line at its first space into field and value ("" if none). */
static const char *split(char *s)
{
    char *sp = strchr(s, ' ');

    if (sp == NULL) {
        return s + strlen(s);
    }
    *sp = '\0';
    return sp + 1;
}

/* parse_u64 reads a decimal u64; -1 unless s is exactly one. */
static int parse_u64(const char *s, uint64_t *v)
{
    char *end;
    unsigned long long x;

    if (s[0] < '0' || s[0] > '9') {
        return -1;
    }
    x = strtoull(s, &end, 10);
    if (*end != '\0' || (x == ULLONG_MAX && strcmp(s, "18446744073709551615") != 0)) {
        return -1;
    }
    *v = (uint64_t)x;
    return 0;
}

/* parse_hex_str decodes hex into a NUL-terminated string; a NUL inside it
 * fails, since ids and topics reach the API as C strings. */
static int parse_hex_str(const char *s, char *out)
{
    size_t n;

    if (tu_unhex(s, (uint8_t *)out, STR_CAP - 1, &n) != 0 || memchr(out, 0, n) != NULL) {
        return -1;
    }
    out[n] = '\0';
    return 0;
}

/* parse_list splits value into words of at most WORD_CAP - 1 bytes. */
static int parse_list(const char *value, char words[][WORD_CAP], size_t *n)
{
    *n = 0;
    while (*value != '\0') {
        size_t len = strcspn(value, " ");

        if (len == 0 || len >= WORD_CAP || *n >= LIST_CAP) {
            return -1;
        }
        memcpy(words[*n], value, len);
        words[(*n)++][len] = '\0';
        value += len;
        value += *value == ' ';
    }
    return 0;
}

/* bits_of turns a list of names into the bits of table (names[i] is bit
 * 1 << i); -1 for a name not in the table. */
static int bits_of(const char *value, const char *const names[4], uint8_t *bits)
{
    char words[LIST_CAP][WORD_CAP];
    size_t n, i, j;

    *bits = 0;
    if (parse_list(value, words, &n) != 0) {
        return -1;
    }
    for (i = 0; i < n; i++) {
        for (j = 0; j < 4 && strcmp(words[i], names[j]) != 0; j++) {
        }
        if (j == 4) {
            return -1;
        }
        *bits |= (uint8_t)(1u << j);
    }
    return 0;
}

static const char *const kind_names[4] = {"req", "rep", "evt", "err"};
static const char *const prot_names[4] = {"enc", "hmac", "hotp", "sig"};

/* parse_replayed reads the list of counters already accepted. */
static int parse_replayed(const char *value, struct vector *v)
{
    char words[LIST_CAP][WORD_CAP];
    size_t i;

    if (parse_list(value, words, &v->n_replayed) != 0) {
        return -1;
    }
    for (i = 0; i < v->n_replayed; i++) {
        if (parse_u64(words[i], &v->replayed[i]) != 0) {
            return -1;
        }
    }
    return 0;
}

/* copy_word copies value into a fixed field; -1 if it does not fit. */
static int copy_word(char *dst, size_t cap, const char *value)
{
    size_t n = strlen(value);

    if (n >= cap) {
        return -1;
    }
    memcpy(dst, value, n + 1);
    return 0;
}

/* parse_flag reads a field that has no value. */
static int parse_flag(const char *value, int *flag)
{
    *flag = 1;
    return value[0] == '\0' ? 0 : -1;
}

/* parse_numbers reads the fields that are numbers; 1 if field is none. */
static int parse_numbers(struct vector *v, const char *field, const char *value)
{
    if (strcmp(field, "now") == 0) {
        return parse_u64(value, &v->now);
    }
    if (strcmp(field, "max-size") == 0) {
        return parse_u64(value, &v->max_size);
    }
    if (strcmp(field, "replay-width") == 0) {
        return parse_u64(value, &v->width);
    }
    if (strcmp(field, "skew") == 0) {
        return parse_u64(value, &v->skew);
    }
    if (strcmp(field, "lifetime") == 0) {
        return parse_u64(value, &v->lifetime);
    }
    if (strcmp(field, "replayed") == 0) {
        return parse_replayed(value, v);
    }
    return 1;
}

/* parse_bytes reads the fields that are hex byte strings; 1 if none. */
static int parse_bytes(struct vector *v, const char *field, const char *value)
{
    size_t n;

    if (strcmp(field, "envelope") == 0) {
        return tu_unhex(value, v->env, sizeof v->env, &v->env_len);
    }
    if (strcmp(field, "request") == 0) {
        v->has_request = 1;
        return tu_unhex(value, v->request, sizeof v->request, &v->request_len);
    }
    if (strcmp(field, "payload") == 0) {
        v->has_payload = 1;
        return tu_unhex(value, v->payload, sizeof v->payload, &v->payload_len);
    }
    if (strcmp(field, "digest") == 0) {
        v->has_digest = 1;
        return tu_unhex(value, v->digest, sizeof v->digest, &n) != 0 ||
                       n != sizeof v->digest ? -1 : 0;
    }
    return 1;
}

/* parse_text reads the fields that are names and strings; 1 if none. */
static int parse_text(struct vector *v, const char *field, const char *value)
{
    if (strcmp(field, "vector") == 0) {
        return copy_word(v->file, sizeof v->file, value);
    }
    if (strcmp(field, "name") == 0) {
        return copy_word(v->name, sizeof v->name, value);
    }
    if (strcmp(field, "rule") == 0) {
        return copy_word(v->rule, sizeof v->rule, value);
    }
    if (strcmp(field, "result") == 0) {
        return copy_word(v->result, sizeof v->result, value);
    }
    if (strcmp(field, "sender") == 0) {
        return parse_hex_str(value, v->sender);
    }
    if (strcmp(field, "receiver") == 0) {
        return parse_hex_str(value, v->receiver);
    }
    if (strcmp(field, "from") == 0) {
        v->has_from = 1;
        return parse_hex_str(value, v->from);
    }
    if (strcmp(field, "topic") == 0) {
        v->has_topic = 1;
        return parse_hex_str(value, v->topic);
    }
    return 1;
}

/* parse_lists reads the fields that are lists and flags; 1 if none. */
static int parse_lists(struct vector *v, const char *field, const char *value)
{
    if (strcmp(field, "trust") == 0) {
        return parse_list(value, v->trust, &v->n_trust);
    }
    if (strcmp(field, "identities") == 0) {
        return parse_list(value, v->identities, &v->n_identities);
    }
    if (strcmp(field, "require") == 0) {
        return bits_of(value, prot_names, &v->require);
    }
    if (strcmp(field, "kinds") == 0) {
        return bits_of(value, kind_names, &v->kinds);
    }
    if (strcmp(field, "clockless") == 0) {
        return parse_flag(value, &v->clockless);
    }
    if (strcmp(field, "pairwise-enc") == 0) {
        return parse_flag(value, &v->pairwise_enc);
    }
    if (strcmp(field, "peer-clockless") == 0) {
        return parse_flag(value, &v->peer_clockless);
    }
    return 1;
}

/* parse_field reads one line of a vector; an unknown field exits. */
static void parse_field(struct vector *v, char *text)
{
    const char *value = split(text);
    int rc = parse_text(v, text, value);

    if (rc == 1) {
        rc = parse_numbers(v, text, value);
    }
    if (rc == 1) {
        rc = parse_bytes(v, text, value);
    }
    if (rc == 1) {
        rc = parse_lists(v, text, value);
    }
    if (rc != 0) {
        fprintf(stderr, "vectors: %s: %s field \"%s\"\n", v->file,
                rc == 1 ? "unknown" : "bad", text);
        exit(2);
    }
}

/* find_raw_key is the raw key called name, or NULL. */
static struct raw_key *find_raw_key(const char *name)
{
    size_t i;

    for (i = 0; i < sizeof raw_keys / sizeof raw_keys[0]; i++) {
        if (strcmp(raw_keys[i].name, name) == 0) {
            return &raw_keys[i];
        }
    }
    return NULL;
}

/* find_raw_kid is the key id called name, or NULL. */
static struct raw_kid *find_raw_kid(const char *name)
{
    size_t i;

    for (i = 0; i < sizeof raw_kids / sizeof raw_kids[0]; i++) {
        if (strcmp(raw_kids[i].name, name) == 0) {
            return &raw_kids[i];
        }
    }
    return NULL;
}

/* parse_key_line reads one line of the first record; -1 when it is not
 * one of its known lines. */
static int parse_key_line(char *text)
{
    const char *value = split(text), *hex;
    char name[WORD_CAP];
    size_t n = strcspn(value, " ");
    uint64_t digits;

    if (strcmp(text, "hotp-digits") == 0) {
        if (parse_u64(value, &digits) != 0 || (digits != 6 && digits != 8)) {
            return -1;
        }
        hotp_digits = (unsigned)digits;
        return 0;
    }
    if (n == 0 || n >= sizeof name || value[n] != ' ') {
        return -1;
    }
    memcpy(name, value, n);
    name[n] = '\0';
    hex = value + n + 1;
    if (strcmp(text, "key") == 0 && find_raw_key(name) != NULL) {
        struct raw_key *k = find_raw_key(name);

        k->seen = 1;
        return tu_unhex(hex, k->b, sizeof k->b, &k->len);
    }
    if (strcmp(text, "kid") == 0 && find_raw_kid(name) != NULL) {
        struct raw_kid *k = find_raw_kid(name);

        k->seen = 1;
        return tu_unhex(hex, k->b, sizeof k->b, &n) != 0 || n != MQTTSEC_KID_LEN ? -1 : 0;
    }
    return -1;
}

/* read_keys reads the first record, up to its blank line. */
static void read_keys(FILE *f)
{
    size_t i;

    while (read_line(f) && line[0] != '\0') {
        if (line[0] != '#' && parse_key_line(line) != 0) {
            fprintf(stderr, "vectors: bad key line \"%s\"\n", line);
            exit(2);
        }
    }
    for (i = 0; i < sizeof raw_keys / sizeof raw_keys[0]; i++) {
        if (!raw_keys[i].seen) {
            fprintf(stderr, "vectors: no key %s\n", raw_keys[i].name);
            exit(2);
        }
    }
    for (i = 0; i < sizeof raw_kids / sizeof raw_kids[0]; i++) {
        if (!raw_kids[i].seen || hotp_digits == 0) {
            fprintf(stderr, "vectors: no key id %s, or no hotp-digits\n", raw_kids[i].name);
            exit(2);
        }
    }
}

/* read_vector reads the next vector into vec: 1, or 0 when none is left. */
static int read_vector(FILE *f)
{
    int any = 0;

    memset(&vec, 0, sizeof vec);
    while (read_line(f)) {
        if (line[0] == '\0') {
            if (any) {
                break;
            }
            continue;
        }
        if (line[0] != '#') {
            any = 1;
            parse_field(&vec, line);
        }
    }
    if (any && (vec.name[0] == '\0' || vec.result[0] == '\0')) {
        fprintf(stderr, "vectors: %s: no name or result\n", vec.file);
        exit(2);
    }
    return any;
}

/* ---- Keys ------------------------------------------------------------------ */

/* init_key makes a key from a raw one, or exits. */
static void init_key(struct mqttsec_key *key, enum mqttsec_key_use use,
                     const char *raw, unsigned digits)
{
    const struct raw_key *k = find_raw_key(raw);

    if (mqttsec_key_init(key, use, k->b, k->len, digits) != MQTTSEC_OK) {
        fprintf(stderr, "vectors: key %s does not set up\n", raw);
        exit(2);
    }
}

/* check_kid compares a derived key id with keys.json's. */
static void check_kid(const char *name, const uint8_t kid[MQTTSEC_KID_LEN])
{
    if (memcmp(find_raw_kid(name)->b, kid, MQTTSEC_KID_LEN) != 0) {
        tu_fail(name, "key id is not keys.json's");
        kids_differ = 1;
    }
}

/* init_profile_keys sets up the profile's keys and signer, and checks
 * their ids (SPEC.md 6) against keys.json. */
static void init_profile_keys(void)
{
    const struct raw_key *pub = find_raw_key("es256");

    init_key(&pk.hmac, MQTTSEC_KEY_HS256, "hmac", 0);
    init_key(&pk.other_hmac, MQTTSEC_KEY_HS256, "other-hmac", 0);
    init_key(&pk.hotp, MQTTSEC_KEY_HOTP, "hotp", hotp_digits);
    init_key(&pk.hotp8, MQTTSEC_KEY_HOTP, "hotp", 8);
    init_key(&pk.psk, MQTTSEC_KEY_A256GCM, "psk", 0);
    init_key(&pk.es256, MQTTSEC_KEY_ES256, "es256", 0);
    if (mqttsec_signer_init(&pk.signer, find_raw_key("es256-private")->b) != MQTTSEC_OK) {
        fprintf(stderr, "vectors: the ES256 private key does not set up\n");
        exit(2);
    }
    check_kid("hmac", pk.hmac.kid);
    check_kid("other-hmac", pk.other_hmac.kid);
    check_kid("hotp", pk.hotp.kid);
    check_kid("hotp8", pk.hotp8.kid);
    check_kid("psk", pk.psk.kid);
    check_kid("es256", pk.es256.kid);
    check_kid("es256", pk.signer.kid);
    if (pub->len != sizeof pk.signer.pub || memcmp(pub->b, pk.signer.pub, pub->len) != 0) {
        tu_fail("es256", "the signer's public key is not keys.json's");
        kids_differ = 1;
    }
}

/* trusted_key is the profile's key named in trust, NULL for a name the
 * profile holds no key for (Ed25519, PS256); an unknown name exits. */
static const struct mqttsec_key *trusted_key(const char *name)
{
    static const char *const not_held[] = {"ed25519", "other-ed25519", "ps256"};
    size_t i;

    if (strcmp(name, "hmac") == 0) {
        return &pk.hmac;
    }
    if (strcmp(name, "other-hmac") == 0) {
        return &pk.other_hmac;
    }
    if (strcmp(name, "hotp") == 0) {
        return &pk.hotp;
    }
    if (strcmp(name, "hotp8") == 0) {
        return &pk.hotp8;
    }
    if (strcmp(name, "psk") == 0) {
        return &pk.psk;
    }
    if (strcmp(name, "es256") == 0) {
        return &pk.es256;
    }
    for (i = 0; i < sizeof not_held / sizeof not_held[0]; i++) {
        if (strcmp(name, not_held[i]) == 0) {
            return NULL;
        }
    }
    fprintf(stderr, "vectors: %s: unknown trust name %s\n", vec.file, name);
    exit(2);
}

/* check_identities: the receiver's own decryption keys are all of
 * algorithms the profile does not implement, so none is held. */
static void check_identities(const struct vector *v)
{
    size_t i;

    for (i = 0; i < v->n_identities; i++) {
        const char *id = v->identities[i];

        if (strcmp(id, "x25519") != 0 && strcmp(id, "xwing") != 0 &&
            strcmp(id, "rsa-oaep") != 0) {
            fprintf(stderr, "vectors: %s: unknown identity %s\n", v->file, id);
            exit(2);
        }
    }
}

/* ---- Setting up a receiver --------------------------------------------------- */

/* reset_window empties the peer's window and records the replayed
 * counters; 0, or -1 if the window refuses one. */
static int reset_window(struct setup *s, const struct vector *v)
{
    size_t i;

    memset(&s->peer.window, 0, sizeof s->peer.window);
    for (i = 0; i < v->n_replayed; i++) {
        if (mqttsec_window_admit(&s->peer.window, v->replayed[i]) != NULL) {
            return -1;
        }
    }
    return 0;
}

/* copy_id copies a str8 view into a NUL-terminated buffer. */
static void copy_id(char *dst, const struct mqttsec_bytes *b)
{
    memcpy(dst, b->p, b->len);
    dst[b->len] = '\0';
}

/* set_pending parses the vector's request with the library: the digest,
 * corr, topic and recipient a reply must match. */
static int set_pending(struct setup *s, const struct vector *v)
{
    struct mqttsec_frame f;
    struct mqttsec_header h;
    struct mqttsec_bytes cur, to;
    const char *rule;

    if (mqttsec_parse(v->request, v->request_len, &f, &h, &rule) != MQTTSEC_OK ||
        h.kind != MQTTSEC_REQ || mqttsec_digest(&f, s->pending.digest) != 0) {
        return -1;
    }
    cur = h.to;
    if (!mqttsec_to_next(&cur, &to)) {
        return -1;
    }
    memcpy(s->pending.corr, h.corr.p, h.corr.len);
    s->pending.corr_len = h.corr.len;
    copy_id(s->pending_topic, &h.topic);
    copy_id(s->pending_to, &to);
    s->pending.topic = s->pending_topic;
    s->pending.to = s->pending_to;
    s->x.pending = &s->pending;
    s->x.n_pending = 1;
    return 0;
}

/* set_up builds the receiver of v in s; 0, or -1 with a failure
 * reported. */
static int set_up(struct setup *s, const struct vector *v)
{
    size_t i;

    memset(s, 0, sizeof *s);
    for (i = 0; i < v->n_trust; i++) {
        const struct mqttsec_key *k = trusted_key(v->trust[i]);

        if (k != NULL && s->n_keys < KEY_CAP) {
            s->keys[s->n_keys++] = *k;
        }
    }
    check_identities(v);
    s->peer.id = v->sender;
    s->peer.keys = s->keys;
    s->peer.n_keys = s->n_keys;
    s->peer.require = v->require;
    s->peer.flags = (uint8_t)((v->pairwise_enc ? MQTTSEC_PEER_PAIRWISE_ENC : 0) |
                              (v->peer_clockless ? MQTTSEC_PEER_CLOCKLESS : 0));
    s->peer.skew_ms = (uint32_t)v->skew;
    s->peer.lifetime_ms = (uint32_t)v->lifetime;
    s->rx.me = v->receiver;
    s->rx.peers = &s->peer;
    s->rx.n_peers = 1;
    s->rx.max_size = (size_t)v->max_size;
    s->x.kinds = v->kinds;
    s->x.from = v->has_from ? v->from : NULL;
    s->x.topic = v->has_topic ? v->topic : NULL;
    if (reset_window(s, v) != 0 || v->skew > UINT32_MAX || v->lifetime > UINT32_MAX) {
        tu_fail(v->name, "replayed, skew or lifetime the receiver cannot take");
        return -1;
    }
    if (v->has_request && set_pending(s, v) != 0) {
        tu_fail(v->name, "the pending request does not parse");
        return -1;
    }
    return 0;
}

/* open_env opens env[0:len] as the receiver of s. */
static int open_env(struct setup *s, const struct vector *v, const uint8_t *env,
                    size_t len, struct mqttsec_message *m)
{
    uint64_t now = v->clockless ? MQTTSEC_NO_CLOCK : v->now;

    return mqttsec_open(&s->rx, &s->x, now, env, len, plain, sizeof plain, m);
}

/* ---- Checking a vector --------------------------------------------------------- */

/* documented says whether rc and m are the vector's result (and rule). */
static int documented(const struct vector *v, int rc, const struct mqttsec_message *m)
{
    if (strcmp(mqttsec_strerror(rc), v->result) != 0) {
        return 0;
    }
    return rc == MQTTSEC_OK || (m->rule != NULL && strcmp(m->rule, v->rule) == 0);
}

/* check_accepted checks what an accepted vector gave: payload, digest,
 * the binding of a reply, the time request mark; then the replay. */
static void check_accepted(struct setup *s, const struct vector *v,
                           const struct mqttsec_message *m)
{
    struct mqttsec_message again;
    int time_request = v->peer_clockless && m->h.kind == MQTTSEC_REQ &&
                       mqttsec_bytes_eq_str(&m->h.topic, MQTTSEC_TIME_METHOD);

    if (m->payload_len != v->payload_len || !v->has_payload ||
        (v->payload_len > 0 && memcmp(m->payload, v->payload, v->payload_len) != 0)) {
        tu_fail(v->name, "payload is not the vector's");
    }
    if (v->has_digest && memcmp(m->digest, v->digest, sizeof v->digest) != 0) {
        tu_fail(v->name, "digest is not the vector's");
    }
    if (m->time_request != time_request || m->peer != &s->peer) {
        tu_fail(v->name, "time request mark or peer");
    }
    if ((m->h.kind == MQTTSEC_REP || m->h.kind == MQTTSEC_ERR) != (m->answers == &s->pending)) {
        tu_fail(v->name, "the reply is not bound to its request");
    }
    if (open_env(s, v, v->env, v->env_len, &again) != MQTTSEC_E_REPLAYED) {
        tu_fail(v->name, "opened a second time, it is not replayed");
    }
}

/* flip_bits opens every one-bit change of the envelope, each with a fresh
 * window, and requires a refusal (SPEC.md 11). */
static void flip_bits(struct setup *s, const struct vector *v)
{
    struct mqttsec_message m;
    size_t i;
    unsigned bit;

    memcpy(work, v->env, v->env_len);
    for (i = 0; i < v->env_len; i++) {
        for (bit = 0; bit < 8; bit++) {
            int rc;

            work[i] ^= (uint8_t)(1u << bit);
            (void)reset_window(s, v);
            rc = open_env(s, v, work, v->env_len, &m);
            work[i] ^= (uint8_t)(1u << bit);
            n_flips++;
            if (rc == MQTTSEC_OK) {
                n_flips_accepted++;
                tu_fail(v->name, "bit %u of byte %lu flipped is accepted", bit,
                        (unsigned long)i);
            }
        }
    }
}

/* find_held is the key of use with id kid among those set up, or NULL. */
static const struct mqttsec_key *find_held(const struct setup *s, uint8_t use,
                                           const uint8_t *kid)
{
    size_t i;

    for (i = 0; kid != NULL && i < s->n_keys; i++) {
        if (s->keys[i].use == use && memcmp(s->keys[i].kid, kid, MQTTSEC_KID_LEN) == 0) {
            return &s->keys[i];
        }
    }
    return NULL;
}

/* Strings of a header being sealed again, NUL-terminated. */
static char rs_from[STR_CAP], rs_to[STR_CAP], rs_topic[STR_CAP], rs_reply_to[STR_CAP];
static uint8_t rs_payload[ENV_CAP];

/* reseal_params fills p from the accepted message m; 0, or -1 when the
 * API cannot express m (several recipients). */
static int reseal_params(const struct setup *s, const struct vector *v,
                         const struct mqttsec_message *m, struct mqttsec_seal *p)
{
    const struct mqttsec_header *h = &m->h;
    struct mqttsec_bytes cur = h->to, to;

    memset(p, 0, sizeof *p);
    if (h->n_to > 1) {
        return -1;
    }
    p->kind = h->kind;
    copy_id(rs_from, &h->from);
    copy_id(rs_topic, &h->topic);
    copy_id(rs_reply_to, &h->reply_to);
    p->from = rs_from;
    p->topic = rs_topic;
    p->reply_to = h->reply_to.len > 0 ? rs_reply_to : NULL;
    if (mqttsec_to_next(&cur, &to)) {
        copy_id(rs_to, &to);
        p->to = rs_to;
    }
    p->corr = h->corr.p;
    p->corr_len = h->corr.len;
    p->re = h->re.len > 0 ? h->re.p : NULL;
    p->ctr = h->ctr;
    p->iat = h->iat;
    p->exp = h->exp;
    p->mac = find_held(s, MQTTSEC_KEY_HS256, h->mac_kid);
    p->hotp = find_held(s, MQTTSEC_KEY_HOTP, h->hotp_kid);
    p->psk = find_held(s, MQTTSEC_KEY_A256GCM, h->psk_kid);
    p->sig = h->sig_alg != 0 ? &pk.signer : NULL;
    /* The vector's payload, which m's equals: m's may lie in plain,
     * which later openings reuse. */
    memcpy(rs_payload, v->payload, v->payload_len);
    p->payload = rs_payload;
    p->payload_len = v->payload_len;
    return 0;
}

/* reseal seals the accepted message m again with mqttsec_seal: without a
 * signature or encryption it must be the vector's envelope byte for byte;
 * otherwise it must open to the same payload. */
static void reseal(struct setup *s, const struct vector *v, const struct mqttsec_message *m)
{
    struct mqttsec_seal p;
    struct mqttsec_message back;
    uint8_t digest[MQTTSEC_DIGEST_LEN], want[MQTTSEC_DIGEST_LEN];
    size_t len = 0;
    int deterministic = (m->h.prot & (MQTTSEC_SIG | MQTTSEC_ENC)) == 0;

    if (reseal_params(s, v, m, &p) != 0) {
        return;
    }
    memcpy(want, m->digest, sizeof want);
    if (mqttsec_seal(&p, sealed, sizeof sealed, &len, digest) != MQTTSEC_OK ||
        mqttsec_sealed_len(&p) != len) {
        tu_fail(v->name, "does not seal again");
        return;
    }
    n_resealed++;
    if (deterministic) {
        if (len != v->env_len || memcmp(sealed, v->env, len) != 0 ||
            memcmp(digest, want, sizeof digest) != 0) {
            tu_fail(v->name, "sealed again, it is not the same envelope");
        } else {
            n_identical++;
        }
        return;
    }
    (void)reset_window(s, v);
    if (open_env(s, v, sealed, len, &back) != MQTTSEC_OK ||
        back.payload_len != p.payload_len ||
        (p.payload_len > 0 && memcmp(back.payload, rs_payload, p.payload_len) != 0)) {
        tu_fail(v->name, "sealed again, it does not open to its payload");
    }
}

/* ---- Skips ----------------------------------------------------------------------- */

/* read_skips reads skipped.txt: "name  reason  why", # comments. */
static void read_skips(const char *path)
{
    FILE *f = fopen(path, "r");

    if (f == NULL) {
        perror(path);
        exit(2);
    }
    while (read_line(f)) {
        struct skip *k = &skips[n_skips];

        if (line[0] == '#' || line[strspn(line, " \t")] == '\0') {
            continue;
        }
        if (n_skips >= SKIP_CAP || sscanf(line, "%95s %15s", k->name, k->reason) != 2 ||
            strcmp(k->reason, "no-key") != 0) {
            fprintf(stderr, "%s: bad line \"%s\" (want: name no-key why)\n", path, line);
            exit(2);
        }
        n_skips++;
    }
    fclose(f);
}

/* find_skip is the entry of skipped.txt for name, or NULL. */
static struct skip *find_skip(const char *name)
{
    size_t i;

    for (i = 0; i < n_skips; i++) {
        if (strcmp(skips[i].name, name) == 0) {
            return &skips[i];
        }
    }
    return NULL;
}

/* check_skipped runs a skipped vector: it must not pass as documented (or
 * it need not be skipped), and must end as its reason says. */
static void check_skipped(const struct vector *v, const struct skip *k, int rc,
                          const struct mqttsec_message *m)
{
    if (documented(v, rc, m)) {
        tu_fail(v->name, "is skipped but passes: remove it from skipped.txt");
    } else if (strcmp(k->reason, "no-key") == 0 && rc != MQTTSEC_E_UNKNOWN_KEY) {
        tu_fail(v->name, "skipped for want of a key, but does not end in unknown-key");
    } else {
        n_skipped++;
    }
}

/* ---- Running ---------------------------------------------------------------------- */

/* run_vector runs vec. */
static void run_vector(void)
{
    const struct vector *v = &vec;
    struct skip *k = find_skip(v->name);
    struct mqttsec_message m;
    int rc;

    if (v->width != MQTTSEC_WINDOW_BITS) {
        if (v->width != 64 && v->width != 128) {
            tu_fail(v->name, "replay width %llu: the Makefile builds the runner for 64 and 128 only",
                    (unsigned long long)v->width);
        }
        if (k != NULL) {
            k->found = 1; /* the build of its width checks the skip */
        }
        n_other_width++;
        return;
    }
    if (set_up(&su, v) != 0) {
        return;
    }
    rc = open_env(&su, v, v->env, v->env_len, &m);
    if (k != NULL) {
        k->found = 1;
        check_skipped(v, k, rc, &m);
        return;
    }
    if (!documented(v, rc, &m)) {
        tu_fail(v->name, "got %s (%s), want %s (%s)", mqttsec_strerror(rc),
                m.rule != NULL ? m.rule : "", v->result, v->rule);
        return;
    }
    n_passed++;
    if (rc == MQTTSEC_OK) {
        check_accepted(&su, v, &m);
        reseal(&su, v, &m);
        flip_bits(&su, v);
    }
}

/* main runs every vector, then checks the skip list. */
int main(int argc, char **argv)
{
    FILE *f;
    size_t i;

    if (argc != 3) {
        fprintf(stderr, "usage: vectors vectors.txt skipped.txt\n");
        return 2;
    }
    read_skips(argv[2]);
    f = fopen(argv[1], "r");
    if (f == NULL) {
        perror(argv[1]);
        return 2;
    }
    read_keys(f);
    init_profile_keys();
    while (read_vector(f)) {
        run_vector();
    }
    fclose(f);
    for (i = 0; i < n_skips; i++) {
        if (!skips[i].found) {
            tu_fail(skips[i].name, "listed in skipped.txt, but no vector has this name");
        }
    }
    if (n_flips_accepted == 0) {
        printf("vectors (W=%d): passed %u, skipped %u (by name), other widths %u, bit flips %u all refused\n",
               MQTTSEC_WINDOW_BITS, n_passed, n_skipped, n_other_width, n_flips);
    } else {
        printf("vectors (W=%d): passed %u, skipped %u (by name), other widths %u, bit flips %u, %u ACCEPTED\n",
               MQTTSEC_WINDOW_BITS, n_passed, n_skipped, n_other_width, n_flips, n_flips_accepted);
    }
    printf("vectors: sealed again %u (%u byte for byte); key ids %s keys.json\n",
           n_resealed, n_identical, kids_differ ? "DIFFER FROM" : "match");
    if (*tu_failures() != 0) {
        printf("vectors: %d FAILURES\n", *tu_failures());
        return 1;
    }
    return 0;
}
