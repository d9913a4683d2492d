/*
 * open.c - mqttsec_open: the twelve steps of SPEC.md 9.1, in order, each
 * a function of its own that stops the opening at the first failure.
 *
 * Local checks (steps 1 to 8) come before the replay window is looked at
 * (9), and both before the signature (10) and decryption (11); the window
 * is updated last (12), only for a message that passed everything else.
 * Every refusal names its SPEC.md rule in out->rule; a failure that is no
 * property of the envelope (plain too small, the crypto backend failing)
 * leaves out->rule "".
 *
 * Step 9 looks at the window for every message (SPEC.md lets a receiver
 * skip it for one with neither sig nor enc). For a message with sig or enc
 * a refusal there is replay-look, the look that must come before steps 10
 * and 11; otherwise it is replay-seen or replay-old. Step 12 checks again
 * as it records: with step 9 passed, a refusal there is replay-admit.
 *
 * Deadlines are the caller's: a device stops waiting for a reply by taking
 * its request out of expect->pending, after which the reply is ctx-re
 * (SPEC.md 8 and 10).
 */
#include <string.h>

#include "mqttsec_crypto.h"
#include "mqttsec_internal.h"

/* The state of one opening, handed from step to step. */
struct opening {
    struct mqttsec_receiver *r;
    const struct mqttsec_expect *x;
    uint64_t now;                 /* MQTTSEC_NO_CLOCK: clockless (SPEC 10) */
    const uint8_t *env;
    size_t len;
    uint8_t *plain;
    size_t plain_cap;
    struct mqttsec_message *m;    /* out; m->h is the header */
    struct mqttsec_frame f;
    struct mqttsec_peer *peer;    /* step 5 */
    uint32_t skew;                /* the peer's S */
    uint64_t replay_iat;          /* the iat of SPEC 7.3 (step 6) */
    const struct mqttsec_key *mac, *hotp, *sig, *psk; /* step 7 */
    uint8_t a[MQTTSEC_A_LEN];     /* A (step 8) */
    size_t plain_len;             /* bytes decrypted into plain (step 11) */
};

/* refuse names the rule that refused and returns its class. */
static int refuse(struct opening *o, int result, const char *rule)
{
    o->m->rule = rule;
    return result;
}

/* is_answer: a rep or an err. */
static int is_answer(const struct mqttsec_header *h)
{
    return h->kind == MQTTSEC_REP || h->kind == MQTTSEC_ERR;
}

/* Step 1: the size, before anything is read. */
static int step_size(struct opening *o)
{
    size_t max = o->r->max_size != 0 ? o->r->max_size : MQTTSEC_DEFAULT_MAX_SIZE;

    if (o->len > max) {
        return refuse(o, MQTTSEC_E_TOO_LARGE, "size-limit");
    }
    return MQTTSEC_OK;
}

/* Steps 2 and 3: the frame, the header and the member sizes. */
static int step_parse(struct opening *o)
{
    const char *rule = NULL;
    int rc = mqttsec_parse(o->env, o->len, &o->f, &o->m->h, &rule);

    return rc == MQTTSEC_OK ? rc : refuse(o, rc, rule);
}

/* addressed_to_me: me is in to, or to is the empty to of an event (step 3
 * allows an empty to to events only). */
static int addressed_to_me(const struct mqttsec_header *h, const char *me)
{
    struct mqttsec_bytes cur = h->to, id;

    if (h->n_to == 0) {
        return 1;
    }
    while (mqttsec_to_next(&cur, &id)) {
        if (mqttsec_bytes_eq_str(&id, me)) {
            return 1;
        }
    }
    return 0;
}

/* find_pending returns the pending request whose digest is re, comparing
 * every digest in constant time, or NULL. */
static const struct mqttsec_pending *find_pending(const struct mqttsec_expect *x,
                                                  const uint8_t *re)
{
    const struct mqttsec_pending *found = NULL;
    size_t i;

    for (i = 0; i < x->n_pending; i++) {
        int differ = mqttsec_ct_compare(x->pending[i].digest, re,
                                        MQTTSEC_DIGEST_LEN);

        if (differ == 0 && found == NULL) {
            found = &x->pending[i];
        }
    }
    return found;
}

/* check_binding: a reply or error answers a pending request (SPEC.md 8):
 * its digest, corr, topic, and from its recipient. */
static int check_binding(struct opening *o)
{
    const struct mqttsec_header *h = &o->m->h;
    const struct mqttsec_pending *req = NULL;

    if (o->x->pending != NULL) {
        req = find_pending(o->x, h->re.p);
    }
    if (req == NULL) {
        return refuse(o, MQTTSEC_E_CONTEXT, "ctx-re");
    }
    if (req->corr_len != h->corr.len ||
        memcmp(req->corr, h->corr.p, h->corr.len) != 0) {
        return refuse(o, MQTTSEC_E_CONTEXT, "ctx-corr");
    }
    if (req->topic == NULL || !mqttsec_bytes_eq_str(&h->topic, req->topic)) {
        return refuse(o, MQTTSEC_E_CONTEXT, "ctx-reply-topic");
    }
    if (req->to == NULL || !mqttsec_bytes_eq_str(&h->from, req->to)) {
        return refuse(o, MQTTSEC_E_CONTEXT, "ctx-reply-from");
    }
    o->m->answers = req;
    return MQTTSEC_OK;
}

/* Step 4: the message is for me, of a kind, sender and topic I expect,
 * and a reply is bound to its request. */
static int step_context(struct opening *o)
{
    const struct mqttsec_header *h = &o->m->h;

    if (!addressed_to_me(h, o->r->me)) {
        return refuse(o, MQTTSEC_E_CONTEXT, "ctx-recipient");
    }
    if (o->x == NULL || (o->x->kinds & h->kind) == 0) {
        return refuse(o, MQTTSEC_E_CONTEXT, "ctx-kind");
    }
    if (o->x->from != NULL && !mqttsec_bytes_eq_str(&h->from, o->x->from)) {
        return refuse(o, MQTTSEC_E_CONTEXT, "ctx-from");
    }
    if (o->x->topic != NULL && !mqttsec_bytes_eq_str(&h->topic, o->x->topic)) {
        return refuse(o, MQTTSEC_E_CONTEXT, "ctx-topic");
    }
    return is_answer(h) ? check_binding(o) : MQTTSEC_OK;
}

/* is_psk: enc with n = 0, the pre-shared key. */
static int is_psk(const struct mqttsec_header *h)
{
    return (h->prot & MQTTSEC_ENC) != 0 && h->n_enc == 0;
}

/* Step 5: a known sender, then its policy: sender authentication, the
 * protections it requires, pre-shared encryption where required. */
static int step_policy(struct opening *o)
{
    const struct mqttsec_header *h = &o->m->h;
    size_t i;

    for (i = 0; i < o->r->n_peers && o->peer == NULL; i++) {
        const char *id = o->r->peers[i].id;

        if (id != NULL && mqttsec_bytes_eq_str(&h->from, id)) {
            o->peer = &o->r->peers[i];
        }
    }
    if (o->peer == NULL) {
        return refuse(o, MQTTSEC_E_UNKNOWN_KEY, "key-sender");
    }
    if ((h->prot & (MQTTSEC_HMAC | MQTTSEC_SIG)) == 0 && !is_psk(h)) {
        return refuse(o, MQTTSEC_E_POLICY, "pol-no-auth");
    }
    if ((o->peer->require & ~h->prot) != 0) {
        return refuse(o, MQTTSEC_E_POLICY, "pol-require");
    }
    if ((o->peer->flags & MQTTSEC_PEER_PAIRWISE_ENC) != 0 && !is_psk(h)) {
        return refuse(o, MQTTSEC_E_POLICY, "pol-pairwise-enc");
    }
    o->m->peer = o->peer;
    return MQTTSEC_OK;
}

/* is_time_request: a req for mqttsec.time from a peer whose policy marks
 * it clockless (SPEC.md 10). */
static int is_time_request(const struct mqttsec_peer *peer,
                           const struct mqttsec_header *h)
{
    return (peer->flags & MQTTSEC_PEER_CLOCKLESS) != 0 &&
           h->kind == MQTTSEC_REQ &&
           mqttsec_bytes_eq_str(&h->topic, MQTTSEC_TIME_METHOD);
}

/* Step 6: freshness (SPEC.md 7.4 and 10). now + S and exp + S are never
 * computed: they could pass 2^64 - 1. */
static int step_freshness(struct opening *o)
{
    const struct mqttsec_header *h = &o->m->h;
    uint32_t life = o->peer->lifetime_ms != 0 ? o->peer->lifetime_ms
                                              : MQTTSEC_DEFAULT_LIFETIME_MS;

    o->skew = o->peer->skew_ms != 0 ? o->peer->skew_ms : MQTTSEC_DEFAULT_SKEW_MS;
    o->replay_iat = h->iat;
    if (h->exp - h->iat > life) { /* step 3: exp > iat */
        return refuse(o, MQTTSEC_E_EXPIRED, "fresh-lifetime");
    }
    if (o->now == MQTTSEC_NO_CLOCK) {
        return is_answer(h) ? MQTTSEC_OK
                            : refuse(o, MQTTSEC_E_EXPIRED, "fresh-clockless");
    }
    o->m->time_request = is_time_request(o->peer, h);
    if (o->m->time_request) {
        o->replay_iat = o->now; /* my clock stands in for its iat */
        return MQTTSEC_OK;
    }
    if (h->iat > o->now && h->iat - o->now > o->skew) {
        return refuse(o, MQTTSEC_E_EXPIRED, "fresh-early");
    }
    if (o->now >= h->exp && o->now - h->exp >= o->skew) {
        return refuse(o, MQTTSEC_E_EXPIRED, "fresh-late");
    }
    return MQTTSEC_OK;
}

/* find_key returns the sender's key of use whose id is kid, or NULL. */
static const struct mqttsec_key *find_key(const struct mqttsec_peer *peer,
                                          enum mqttsec_key_use use,
                                          const uint8_t *kid)
{
    size_t i;

    for (i = 0; i < peer->n_keys; i++) {
        const struct mqttsec_key *k = &peer->keys[i];

        if (k->use == use && memcmp(k->kid, kid, MQTTSEC_KID_LEN) == 0) {
            return k;
        }
    }
    return NULL;
}

/* find_signer is the sender's key for the header's sig: an ES256 key
 * with its id. This port implements no other signature algorithm, so it
 * holds no Ed25519 or PS256 key. */
static const struct mqttsec_key *find_signer(const struct mqttsec_peer *peer,
                                             const struct mqttsec_header *h)
{
    if (h->sig_alg != MQTTSEC_SIG_ES256) {
        return NULL;
    }
    return find_key(peer, MQTTSEC_KEY_ES256, h->sig_kid);
}

/* Step 7: every key the header names is one I hold (SPEC.md 6). Wrapped
 * keys name none: the device has no decryption key of its own. */
static int step_keys(struct opening *o)
{
    const struct mqttsec_header *h = &o->m->h;

    if (h->mac_kid != NULL) {
        o->mac = find_key(o->peer, MQTTSEC_KEY_HS256, h->mac_kid);
        if (o->mac == NULL) {
            return refuse(o, MQTTSEC_E_UNKNOWN_KEY, "key-mac");
        }
    }
    if (h->hotp_kid != NULL) {
        o->hotp = find_key(o->peer, MQTTSEC_KEY_HOTP, h->hotp_kid);
        if (o->hotp == NULL) {
            return refuse(o, MQTTSEC_E_UNKNOWN_KEY, "key-hotp");
        }
    }
    if (h->sig_alg != 0) {
        o->sig = find_signer(o->peer, h);
        if (o->sig == NULL) {
            return refuse(o, MQTTSEC_E_UNKNOWN_KEY, "key-sig");
        }
    }
    if (is_psk(h)) {
        o->psk = find_key(o->peer, MQTTSEC_KEY_A256GCM, h->psk_kid);
        if (o->psk == NULL) {
            return refuse(o, MQTTSEC_E_UNKNOWN_KEY, "key-psk");
        }
    }
    if (h->n_enc > 0) {
        return refuse(o, MQTTSEC_E_UNKNOWN_KEY, "key-rcpt");
    }
    return MQTTSEC_OK;
}

/* check_hmac: M = HMAC-SHA-256(K, A), compared in constant time. */
static int check_hmac(struct opening *o)
{
    struct mqttsec_bytes part;
    uint8_t tag[MQTTSEC_MAC_LEN];
    int bad;

    part.p = o->a;
    part.len = sizeof o->a;
    if (mqttsec_hmac_sha256(o->mac->k, o->mac->len, &part, 1, tag) != 0) {
        mqttsec_wipe(tag, sizeof tag);
        return refuse(o, MQTTSEC_E_CRYPTO, "");
    }
    bad = mqttsec_ct_compare(tag, o->f.m.p, MQTTSEC_MAC_LEN);
    mqttsec_wipe(tag, sizeof tag);
    return bad ? refuse(o, MQTTSEC_E_AUTHENTICATION, "auth-hmac") : MQTTSEC_OK;
}

/* check_hotp: the code has the key's digit count and value (SPEC.md 4.4),
 * compared in constant time. */
static int check_hotp(struct opening *o)
{
    const struct mqttsec_header *h = &o->m->h;
    uint8_t code[8];
    int bad;

    if (h->hotp_code.len != o->hotp->digits) {
        return refuse(o, MQTTSEC_E_AUTHENTICATION, "auth-hotp-digits");
    }
    if (mqttsec_hotp(o->hotp, h->ctr, code) != 0) {
        mqttsec_wipe(code, sizeof code);
        return refuse(o, MQTTSEC_E_CRYPTO, "");
    }
    bad = mqttsec_ct_compare(code, h->hotp_code.p, h->hotp_code.len);
    mqttsec_wipe(code, sizeof code);
    return bad ? refuse(o, MQTTSEC_E_AUTHENTICATION, "auth-hotp") : MQTTSEC_OK;
}

/* Step 8: D and A, then the HMAC and the HOTP code. */
static int step_symmetric(struct opening *o)
{
    int rc = MQTTSEC_OK;

    if (mqttsec_digest(&o->f, o->m->digest) != 0) {
        return refuse(o, MQTTSEC_E_CRYPTO, "");
    }
    mqttsec_auth_block(o->m->digest, o->a);
    if (o->mac != NULL) {
        rc = check_hmac(o);
    }
    if (rc == MQTTSEC_OK && o->hotp != NULL) {
        rc = check_hotp(o);
    }
    return rc;
}

/* lost_rule: replay-loss when the receiver lost replay state and the
 * message's iat is at or before the moment it noticed plus S (SPEC.md
 * 7.3). */
static const char *lost_rule(const struct opening *o)
{
    if (o->r->has_loss && (o->replay_iat <= o->r->loss_ms ||
                           o->replay_iat - o->r->loss_ms <= o->skew)) {
        return "replay-loss";
    }
    return NULL;
}

/* Step 9: a read-only look at the replay state. For a message with a
 * signature or encryption a refusal by the window here is replay-look:
 * it comes before the public-key work and the decryption. */
static int step_replay_look(struct opening *o)
{
    const struct mqttsec_header *h = &o->m->h;
    const char *rule = lost_rule(o);

    if (rule == NULL) {
        rule = mqttsec_window_check(&o->peer->window, h->ctr);
        if (rule != NULL && (h->prot & (MQTTSEC_SIG | MQTTSEC_ENC)) != 0) {
            rule = "replay-look";
        }
    }
    return rule == NULL ? MQTTSEC_OK : refuse(o, MQTTSEC_E_REPLAYED, rule);
}

/* Step 10: the ES256 signature over A (SHA-256 of A, as ES256 hashes its
 * message). Step 7 found no other signing key. */
static int step_signature(struct opening *o)
{
    struct mqttsec_bytes part;
    uint8_t hash[32];

    if (o->sig == NULL) {
        return MQTTSEC_OK;
    }
    part.p = o->a;
    part.len = sizeof o->a;
    if (mqttsec_sha256(&part, 1, hash) != 0) {
        return refuse(o, MQTTSEC_E_CRYPTO, "");
    }
    if (mqttsec_p256_verify(o->sig->k, hash, o->f.s.p) != 0) {
        return refuse(o, MQTTSEC_E_AUTHENTICATION, "auth-sig");
    }
    return MQTTSEC_OK;
}

/* Step 11: P = nonce || ciphertext || tag under the pre-shared key, with
 * E[0 : 5 + len(H)] as associated data, opened into plain. Nothing
 * decrypted is left in plain when the tag does not check. */
static int step_decrypt(struct opening *o)
{
    const struct mqttsec_bytes *p = &o->f.p;
    uint8_t none[1];
    uint8_t *out = o->plain;
    size_t n;

    o->m->payload = p->p;
    o->m->payload_len = p->len;
    if (o->psk == NULL) {
        return MQTTSEC_OK;
    }
    n = p->len - MQTTSEC_GCM_OVERHEAD; /* step 3: len(P) >= 28 */
    if (n > o->plain_cap || (n > 0 && out == NULL)) {
        return refuse(o, MQTTSEC_E_BUFFER, "");
    }
    if (n == 0) {
        out = none; /* a backend may not take NULL */
    }
    o->plain_len = n;
    if (mqttsec_gcm_open(o->psk->k, p->p, o->env, o->f.aad_len,
                         p->p + MQTTSEC_NONCE_LEN, n,
                         p->p + MQTTSEC_NONCE_LEN + n, out) != 0) {
        return refuse(o, MQTTSEC_E_DECRYPTION, "dec-tag");
    }
    o->m->payload = o->plain;
    o->m->payload_len = n;
    return MQTTSEC_OK;
}

/* Step 12: check and record the counter, as one operation. Step 9 passed,
 * so a refusal here is a copy accepted since (replay-admit). */
static int step_admit(struct opening *o)
{
    const char *rule = lost_rule(o);

    if (rule == NULL) {
        rule = mqttsec_window_admit(&o->peer->window, o->m->h.ctr);
    }
    return rule == NULL ? MQTTSEC_OK
                        : refuse(o, MQTTSEC_E_REPLAYED, "replay-admit");
}

/* The steps of SPEC.md 9.1 in order (2 and 3 are one function). */
static int (*const steps[])(struct opening *) = {
    step_size,        /* 1 */
    step_parse,       /* 2, 3 */
    step_context,     /* 4 */
    step_policy,      /* 5 */
    step_freshness,   /* 6 */
    step_keys,        /* 7 */
    step_symmetric,   /* 8 */
    step_replay_look, /* 9 */
    step_signature,   /* 10 */
    step_decrypt,     /* 11 */
    step_admit,       /* 12 */
};

/* mqttsec_open runs the steps. On a refusal out holds only the rule, and
 * plain nothing decrypted. */
int mqttsec_open(struct mqttsec_receiver *r, const struct mqttsec_expect *x,
                 uint64_t now_ms, const uint8_t *env, size_t len,
                 uint8_t *plain, size_t plain_cap,
                 struct mqttsec_message *out)
{
    struct opening o;
    const char *rule;
    size_t i;
    int rc = MQTTSEC_OK;

    if (out == NULL) {
        return MQTTSEC_E_ARGUMENT;
    }
    memset(out, 0, sizeof *out);
    if (r == NULL || r->me == NULL || (env == NULL && len > 0) ||
        (r->peers == NULL && r->n_peers > 0)) {
        out->rule = "";
        return MQTTSEC_E_ARGUMENT;
    }
    memset(&o, 0, sizeof o);
    o.r = r;
    o.x = x;
    o.now = now_ms;
    o.env = env;
    o.len = len;
    o.plain = plain;
    o.plain_cap = plain_cap;
    o.m = out;
    for (i = 0; i < sizeof steps / sizeof steps[0] && rc == MQTTSEC_OK; i++) {
        rc = steps[i](&o);
    }
    mqttsec_wipe(o.a, sizeof o.a);
    if (rc != MQTTSEC_OK) {
        if (o.plain_len > 0) {
            mqttsec_wipe(plain, o.plain_len);
        }
        rule = out->rule;
        memset(out, 0, sizeof *out);
        out->rule = rule;
    }
    return rc;
}
