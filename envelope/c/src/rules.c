/*
 * rules.c - the value rules of the header (SPEC.md 3.2) and the member
 * sizes (3.3), the rest of step 3; and mqttsec_parse, steps 2 and 3.
 *
 * Each check returns NULL or the rule id that refuses. They run in a fixed
 * order (parties, topics, correlation, times, HOTP code, wrapped keys,
 * then members); a header breaks one rule or several, and either way it
 * is malformed.
 */
#include <string.h>

#include "mqttsec_internal.h"

/* id_byte: ASCII letters, digits and - . _ : @ (SPEC.md 3.2). */
static int id_byte(uint8_t c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
           (c >= '0' && c <= '9') || c == '-' || c == '.' || c == '_' ||
           c == ':' || c == '@';
}

/* mqttsec_id_rule: 1 to 128 bytes (id-len) of id bytes (id-chars). */
const char *mqttsec_id_rule(const uint8_t *p, size_t len)
{
    size_t i;

    if (len == 0 || len > MQTTSEC_MAX_ID) {
        return "id-len";
    }
    for (i = 0; i < len; i++) {
        if (!id_byte(p[i])) {
            return "id-chars";
        }
    }
    return NULL;
}

/* utf8_next decodes the UTF-8 sequence at p[0:len] (RFC 3629) into *cp and
 * returns its length, or 0 when it is not UTF-8: a cut sequence, a stray
 * continuation byte, an overlong form, a surrogate, or above U+10FFFF. */
static size_t utf8_next(const uint8_t *p, size_t len, uint32_t *cp)
{
    static const uint32_t min[5] = {0, 0, 0x80, 0x800, 0x10000};
    size_t n, i;
    uint32_t v;

    if (p[0] < 0x80) {
        *cp = p[0];
        return 1;
    }
    if (p[0] >= 0xc0 && p[0] < 0xe0) {
        n = 2;
    } else if (p[0] >= 0xe0 && p[0] < 0xf0) {
        n = 3;
    } else if (p[0] >= 0xf0 && p[0] < 0xf8) {
        n = 4;
    } else {
        return 0; /* a continuation byte, or 0xf8 and above */
    }
    v = p[0] & (0x7fu >> n); /* the lead byte's value bits */
    if (n > len) {
        return 0;
    }
    for (i = 1; i < n; i++) {
        if ((p[i] & 0xc0) != 0x80) {
            return 0;
        }
        v = v << 6 | (p[i] & 0x3fu);
    }
    if (v < min[n] || v > 0x10ffff || (v >= 0xd800 && v <= 0xdfff)) {
        return 0;
    }
    *cp = v;
    return n;
}

/* topic_char_rule: the characters a topic may not hold (SPEC.md 3.2). */
static const char *topic_char_rule(uint32_t cp)
{
    if (cp < 0x20 || cp == 0x7f) {
        return "topic-ctl";
    }
    if (cp == '"' || cp == '\\') {
        return "topic-json";
    }
    if (cp == '+' || cp == '#') {
        return "topic-wild";
    }
    if (cp == 0x2028 || cp == 0x2029) {
        return "topic-sep";
    }
    return NULL;
}

/* mqttsec_topic_rule: 1 to 1024 bytes (topic-len) of UTF-8 (topic-utf8)
 * without the characters of topic_char_rule. */
const char *mqttsec_topic_rule(const uint8_t *p, size_t len)
{
    size_t i = 0;

    if (len == 0 || len > MQTTSEC_MAX_TOPIC) {
        return "topic-len";
    }
    while (i < len) {
        uint32_t cp = 0;
        size_t n = utf8_next(p + i, len - i, &cp);
        const char *rule;

        if (n == 0) {
            return "topic-utf8";
        }
        rule = topic_char_rule(cp);
        if (rule != NULL) {
            return rule;
        }
        i += n;
    }
    return NULL;
}

/* bytes_eq compares two byte strings (public values: not constant time). */
static int bytes_eq(const struct mqttsec_bytes *a, const struct mqttsec_bytes *b)
{
    return a->len == b->len && (a->len == 0 || memcmp(a->p, b->p, a->len) == 0);
}

/* is_pairwise: mac, hotp, or enc with n = 0 (SPEC.md 3.2). */
static int is_pairwise(const struct mqttsec_header *h)
{
    return (h->prot & (MQTTSEC_HMAC | MQTTSEC_HOTP)) != 0 ||
           ((h->prot & MQTTSEC_ENC) != 0 && h->n_enc == 0);
}

/* dup_before says whether the id at index i of the to run repeats one of
 * the ids before it (to-dup). */
static int dup_before(const struct mqttsec_header *h, unsigned i,
                      const struct mqttsec_bytes *id)
{
    struct mqttsec_bytes cur = h->to, prev;
    unsigned j;

    for (j = 0; j < i && mqttsec_to_next(&cur, &prev); j++) {
        if (bytes_eq(&prev, id)) {
            return 1;
        }
    }
    return 0;
}

/* check_to: each recipient id, no recipient twice in an event. */
static const char *check_to(const struct mqttsec_header *h)
{
    struct mqttsec_bytes cur = h->to, id;
    unsigned i;

    for (i = 0; mqttsec_to_next(&cur, &id); i++) {
        const char *rule = mqttsec_id_rule(id.p, id.len);

        if (rule != NULL) {
            return rule;
        }
        if (h->kind == MQTTSEC_EVT && dup_before(h, i, &id)) {
            return "to-dup";
        }
    }
    return NULL;
}

/* check_parties: from, to, and the recipient counts. */
static const char *check_parties(const struct mqttsec_header *h)
{
    const char *rule = mqttsec_id_rule(h->from.p, h->from.len);

    if (rule != NULL) {
        return rule;
    }
    if (h->kind == MQTTSEC_EVT && h->n_to > MQTTSEC_MAX_TO) {
        return "to-max";
    }
    rule = check_to(h);
    if (rule != NULL) {
        return rule;
    }
    if (h->kind != MQTTSEC_EVT && h->n_to != 1) {
        return "to-one";
    }
    if (is_pairwise(h) && h->n_to != 1) {
        return "pairwise-to";
    }
    return NULL;
}

/* check_topics: the topic, and a replyTo on a request and only there. */
static const char *check_topics(const struct mqttsec_header *h)
{
    const char *rule = mqttsec_topic_rule(h->topic.p, h->topic.len);

    if (rule != NULL) {
        return rule;
    }
    if (h->kind == MQTTSEC_REQ) {
        return mqttsec_topic_rule(h->reply_to.p, h->reply_to.len);
    }
    return h->reply_to.len != 0 ? "replyto-extra" : NULL;
}

/* check_corr_re: corr on a req, rep or err (1 to 64 bytes) and not on an
 * evt; re of 32 bytes on a rep or err and on nothing else. */
static const char *check_corr_re(const struct mqttsec_header *h)
{
    int answers = h->kind == MQTTSEC_REP || h->kind == MQTTSEC_ERR;

    if (h->kind != MQTTSEC_EVT &&
        (h->corr.len == 0 || h->corr.len > MQTTSEC_MAX_CORR)) {
        return "corr-len";
    }
    if (h->kind == MQTTSEC_EVT && h->corr.len != 0) {
        return "corr-extra";
    }
    if (answers && h->re.len != MQTTSEC_DIGEST_LEN) {
        return "re-len";
    }
    if (!answers && h->re.len != 0) {
        return "re-extra";
    }
    return NULL;
}

/* check_times: ctr from 1, 0 <= iat < exp <= 2^63 - 1. */
static const char *check_times(const struct mqttsec_header *h)
{
    if (h->ctr == 0) {
        return "ctr-zero";
    }
    if (h->exp > MQTTSEC_TIME_MAX) {
        return "time-range";
    }
    if (h->exp <= h->iat) {
        return "exp-order";
    }
    return NULL;
}

/* check_hotp_code: 6 or 8 ASCII digits. */
static const char *check_hotp_code(const struct mqttsec_header *h)
{
    size_t i;

    if ((h->prot & MQTTSEC_HOTP) == 0) {
        return NULL;
    }
    if (h->hotp_code.len != 6 && h->hotp_code.len != 8) {
        return "hotp-len";
    }
    for (i = 0; i < h->hotp_code.len; i++) {
        if (h->hotp_code.p[i] < '0' || h->hotp_code.p[i] > '9') {
            return "hotp-chars";
        }
    }
    return NULL;
}

/* A wrapped-key entry of the header: its code, key id and wk. */
struct wrapped {
    uint8_t alg;
    const uint8_t *kid;
    size_t wk_len;
};

/* wrapped_next steps a cursor through the wrapped-key entries of a header
 * that reads; 0 at the end. */
static int wrapped_next(struct mqttsec_bytes *cur, struct wrapped *w)
{
    size_t n;

    if (cur->len < MQTTSEC_WRAPPED_MIN) {
        return 0;
    }
    w->alg = cur->p[0];
    w->kid = cur->p + 1;
    n = (size_t)cur->p[13] << 8 | cur->p[14];
    if (n > cur->len - MQTTSEC_WRAPPED_MIN) {
        return 0;
    }
    w->wk_len = n;
    cur->p += MQTTSEC_WRAPPED_MIN + n;
    cur->len -= MQTTSEC_WRAPPED_MIN + n;
    return 1;
}

/* wk_size_rule: the size each wrap algorithm gives wk (SPEC.md 4.6). */
static const char *wk_size_rule(const struct wrapped *w)
{
    switch (w->alg) {
    case MQTTSEC_WRAP_X25519:
        return w->wk_len == 80 ? NULL : "wk-x25519";
    case MQTTSEC_WRAP_XWING:
        return w->wk_len == 1168 ? NULL : "wk-xwing";
    default:
        return w->wk_len >= MQTTSEC_RSA_MIN && w->wk_len <= MQTTSEC_RSA_MAX
                   ? NULL : "wk-rsa";
    }
}

/* kid_before says whether an entry before index i has key id kid. */
static int kid_before(const struct mqttsec_header *h, unsigned i,
                      const uint8_t *kid)
{
    struct mqttsec_bytes cur = h->wrapped;
    struct wrapped prev;
    unsigned j;

    for (j = 0; j < i && wrapped_next(&cur, &prev); j++) {
        if (memcmp(prev.kid, kid, MQTTSEC_KID_LEN) == 0) {
            return 1;
        }
    }
    return 0;
}

/* check_wrapped: each wk's size, and no key id twice (rcpt-dup). */
static const char *check_wrapped(const struct mqttsec_header *h)
{
    struct mqttsec_bytes cur = h->wrapped;
    struct wrapped w;
    unsigned i;

    for (i = 0; wrapped_next(&cur, &w); i++) {
        const char *rule = wk_size_rule(&w);

        if (rule != NULL) {
            return rule;
        }
        if (kid_before(h, i, w.kid)) {
            return "rcpt-dup";
        }
    }
    return NULL;
}

/* mqttsec_header_check: the rules of SPEC.md 3.2, in a fixed order. */
const char *mqttsec_header_check(const struct mqttsec_header *h)
{
    const char *rule = check_parties(h);

    if (rule == NULL) {
        rule = check_topics(h);
    }
    if (rule == NULL) {
        rule = check_corr_re(h);
    }
    if (rule == NULL) {
        rule = check_times(h);
    }
    if (rule == NULL) {
        rule = check_hotp_code(h);
    }
    if (rule == NULL) {
        rule = check_wrapped(h);
    }
    return rule;
}

/* sig_len_rule: the size of S its algorithm gives it (SPEC.md 3.3). */
static const char *sig_len_rule(uint8_t alg, size_t len)
{
    switch (alg) {
    case MQTTSEC_SIG_ED25519:
        return len == MQTTSEC_SIG_LEN ? NULL : "sig-len-ed25519";
    case MQTTSEC_SIG_ES256:
        return len == MQTTSEC_SIG_LEN ? NULL : "sig-len-es256";
    case MQTTSEC_SIG_PS256:
        return len >= MQTTSEC_RSA_MIN && len <= MQTTSEC_RSA_MAX
                   ? NULL : "sig-len-ps256";
    default:
        return len == 0 ? NULL : "sig-extra";
    }
}

/* mqttsec_members_check: SPEC.md 3.3. */
const char *mqttsec_members_check(const struct mqttsec_header *h,
                                  const struct mqttsec_frame *f)
{
    if ((h->prot & MQTTSEC_HMAC) != 0 && f->m.len != MQTTSEC_MAC_LEN) {
        return "mac-len";
    }
    if ((h->prot & MQTTSEC_HMAC) == 0 && f->m.len != 0) {
        return "mac-extra";
    }
    if ((h->prot & MQTTSEC_SIG) != 0 || f->s.len != 0) {
        const char *rule = sig_len_rule(h->sig_alg, f->s.len);

        if (rule != NULL) {
            return rule;
        }
    }
    if ((h->prot & MQTTSEC_ENC) != 0 && f->p.len < MQTTSEC_GCM_OVERHEAD) {
        return "enc-short";
    }
    return NULL;
}

/* mqttsec_parse: step 2, then step 3. */
int mqttsec_parse(const uint8_t *env, size_t len, struct mqttsec_frame *f,
                  struct mqttsec_header *h, const char **rule)
{
    int rc = mqttsec_frame_read(env, len, f, rule);

    if (rc != MQTTSEC_OK) {
        return rc;
    }
    *rule = mqttsec_header_read(&f->h, h);
    if (*rule == NULL) {
        *rule = mqttsec_header_check(h);
    }
    if (*rule == NULL) {
        *rule = mqttsec_members_check(h, f);
    }
    return *rule == NULL ? MQTTSEC_OK : MQTTSEC_E_MALFORMED;
}

/* mqttsec_bytes_eq_str: b equals the NUL-terminated s. */
int mqttsec_bytes_eq_str(const struct mqttsec_bytes *b, const char *s)
{
    size_t i;

    for (i = 0; i < b->len; i++) {
        if (s[i] == '\0' || (uint8_t)s[i] != b->p[i]) {
            return 0;
        }
    }
    return s[b->len] == '\0';
}

/* mqttsec_strnlen: strlen that reads at most max + 1 bytes. */
size_t mqttsec_strnlen(const char *s, size_t max)
{
    size_t n = 0;

    while (n <= max && s[n] != '\0') {
        n++;
    }
    return n;
}
