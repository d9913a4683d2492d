/*
 * header.c - reading and writing the header H (SPEC.md 3.1).
 *
 * The reader walks H front to back once, leaving every field where it is
 * (struct mqttsec_header holds views into H). It applies the rules that
 * belong to reading: a field cut short (hdr-cut), bytes after the last
 * field (hdr-trailing), and the closed tables of kind, prot and the
 * algorithm codes. The value rules of 3.2 are in rules.c.
 */
#include <string.h>

#include "mqttsec_internal.h"

/* A cursor over H. rule is the first rule that refused; once it is set,
 * every read returns zeros and moves nothing. */
struct reader {
    const uint8_t *p;
    size_t left;
    const char *rule;
};

/* fail records rule, unless an earlier one refused already. */
static void fail(struct reader *r, const char *rule)
{
    if (r->rule == NULL) {
        r->rule = rule;
    }
}

/* take reads n bytes, or refuses with hdr-cut. */
static struct mqttsec_bytes take(struct reader *r, size_t n)
{
    struct mqttsec_bytes b = {NULL, 0};

    if (r->rule != NULL) {
        return b;
    }
    if (n > r->left) {
        fail(r, "hdr-cut");
        return b;
    }
    b.p = r->p;
    b.len = n;
    r->p += n;
    r->left -= n;
    return b;
}

/* read_u8 reads a u8 (0 after a refusal). */
static uint8_t read_u8(struct reader *r)
{
    struct mqttsec_bytes b = take(r, 1);

    return b.p != NULL ? b.p[0] : 0;
}

/* read_u16 reads a big-endian u16 (0 after a refusal). */
static uint16_t read_u16(struct reader *r)
{
    struct mqttsec_bytes b = take(r, 2);

    return b.p != NULL ? (uint16_t)(b.p[0] << 8 | b.p[1]) : 0;
}

/* read_u64 reads a big-endian u64 (0 after a refusal). */
static uint64_t read_u64(struct reader *r)
{
    struct mqttsec_bytes b = take(r, 8);

    return b.p != NULL ? mqttsec_get_u64(b.p) : 0;
}

/* read_kid reads a 12-byte key id (NULL after a refusal). */
static const uint8_t *read_kid(struct reader *r)
{
    return take(r, MQTTSEC_KID_LEN).p;
}

/* read_str8 reads a str8: a u8 length and that many bytes. */
static struct mqttsec_bytes read_str8(struct reader *r)
{
    return take(r, read_u8(r));
}

/* read_str16 reads a str16: a u16 length and that many bytes. */
static struct mqttsec_bytes read_str16(struct reader *r)
{
    return take(r, read_u16(r));
}

/* read_kind_prot reads kind and prot, each against its closed table. */
static void read_kind_prot(struct reader *r, struct mqttsec_header *h)
{
    h->kind = read_u8(r);
    if (r->rule == NULL && h->kind != MQTTSEC_REQ && h->kind != MQTTSEC_REP &&
        h->kind != MQTTSEC_EVT && h->kind != MQTTSEC_ERR) {
        fail(r, "hdr-kind");
    }
    h->prot = read_u8(r);
    if (r->rule == NULL && h->prot == 0) {
        fail(r, "hdr-prot-none");
    }
    if ((h->prot & ~(MQTTSEC_ENC | MQTTSEC_HMAC | MQTTSEC_HOTP | MQTTSEC_SIG)) != 0) {
        fail(r, "hdr-prot-bits");
    }
}

/* read_to reads the recipients: a count and that many str8 ids, kept as
 * the run of entries they are in H. */
static void read_to(struct reader *r, struct mqttsec_header *h)
{
    const uint8_t *start;
    unsigned i;

    h->n_to = read_u8(r);
    start = r->p;
    for (i = 0; i < h->n_to && r->rule == NULL; i++) {
        (void)read_str8(r);
    }
    h->to.p = start;
    h->to.len = (size_t)(r->p - start);
}

/* read_sig reads the sig field: an algorithm code of its table (SPEC.md
 * 3.1; 1 to 3, sig-alg) and a key id. */
static void read_sig(struct reader *r, struct mqttsec_header *h)
{
    h->sig_alg = read_u8(r);
    if (r->rule == NULL && (h->sig_alg < MQTTSEC_SIG_ED25519 ||
                            h->sig_alg > MQTTSEC_SIG_PS256)) {
        fail(r, "sig-alg");
    }
    h->sig_kid = read_kid(r);
}

/* read_wrapped reads n wrapped-key entries: algorithm code (rcpt-alg),
 * key id and str16 wk each, kept as the run of entries they are in H. */
static void read_wrapped(struct reader *r, struct mqttsec_header *h)
{
    const uint8_t *start = r->p;
    unsigned i;

    if (h->n_enc > MQTTSEC_MAX_WRAPPED) {
        fail(r, "rcpt-max");
        return;
    }
    /* The count against the bytes left, before reading the entries. */
    if ((size_t)h->n_enc * MQTTSEC_WRAPPED_MIN > r->left) {
        fail(r, "hdr-cut");
        return;
    }
    for (i = 0; i < h->n_enc && r->rule == NULL; i++) {
        uint8_t alg = read_u8(r);

        if (r->rule == NULL && (alg < MQTTSEC_WRAP_X25519 || alg > MQTTSEC_WRAP_RSA)) {
            fail(r, "rcpt-alg");
        }
        (void)read_kid(r);
        (void)read_str16(r);
    }
    h->wrapped.p = start;
    h->wrapped.len = (size_t)(r->p - start);
}

/* read_enc reads the enc field: n = 0 and a pre-shared key's id, or n
 * wrapped keys. */
static void read_enc(struct reader *r, struct mqttsec_header *h)
{
    h->n_enc = read_u8(r);
    if (r->rule != NULL) {
        return;
    }
    if (h->n_enc == 0) {
        h->psk_kid = read_kid(r);
    } else {
        read_wrapped(r, h);
    }
}

/* read_protections reads the fields that prot's bits say are present, in
 * the order of the table of SPEC.md 3.1. */
static void read_protections(struct reader *r, struct mqttsec_header *h)
{
    if ((h->prot & MQTTSEC_HMAC) != 0) {
        h->mac_kid = read_kid(r);
    }
    if ((h->prot & MQTTSEC_HOTP) != 0) {
        h->hotp_kid = read_kid(r);
        h->hotp_code = read_str8(r);
    }
    if ((h->prot & MQTTSEC_SIG) != 0) {
        read_sig(r, h);
    }
    if ((h->prot & MQTTSEC_ENC) != 0) {
        read_enc(r, h);
    }
}

/* mqttsec_header_read: the fields of SPEC.md 3.1, in order. */
const char *mqttsec_header_read(const struct mqttsec_bytes *hb,
                                struct mqttsec_header *h)
{
    struct reader r;

    memset(h, 0, sizeof *h);
    r.p = hb->p;
    r.left = hb->len;
    r.rule = NULL;
    read_kind_prot(&r, h);
    h->from = read_str8(&r);
    read_to(&r, h);
    h->topic = read_str16(&r);
    h->reply_to = read_str16(&r);
    h->corr = read_str8(&r);
    h->re = read_str8(&r);
    h->ctr = read_u64(&r);
    h->iat = read_u64(&r);
    h->exp = read_u64(&r);
    read_protections(&r, h);
    if (r.rule == NULL && r.left != 0) {
        fail(&r, "hdr-trailing");
    }
    return r.rule;
}

/* mqttsec_to_next: the next str8 of a run that reads (the header reader
 * has checked it), or 0 at its end. */
int mqttsec_to_next(struct mqttsec_bytes *cursor, struct mqttsec_bytes *id)
{
    size_t n;

    if (cursor->len == 0) {
        return 0;
    }
    n = cursor->p[0];
    if (n > cursor->len - 1) {
        return 0; /* not a run that reads: end it */
    }
    id->p = cursor->p + 1;
    id->len = n;
    cursor->p += 1 + n;
    cursor->len -= 1 + n;
    return 1;
}

/* ---- Writing -------------------------------------------------------------- */

/* mqttsec_header_len: the bytes of SPEC.md 3.1 for h; h's wrapped keys
 * are not written (a device seals none), so n_enc must be 0. */
size_t mqttsec_header_len(const struct mqttsec_header *h)
{
    size_t n = 2 + 1 + h->from.len + 1 + h->to.len + 2 + h->topic.len + 2 +
               h->reply_to.len + 1 + h->corr.len + 1 + h->re.len + 3 * 8;

    if ((h->prot & MQTTSEC_HMAC) != 0) {
        n += MQTTSEC_KID_LEN;
    }
    if ((h->prot & MQTTSEC_HOTP) != 0) {
        n += MQTTSEC_KID_LEN + 1 + h->hotp_code.len;
    }
    if ((h->prot & MQTTSEC_SIG) != 0) {
        n += 1 + MQTTSEC_KID_LEN;
    }
    if ((h->prot & MQTTSEC_ENC) != 0) {
        n += 1 + MQTTSEC_KID_LEN;
    }
    return n;
}

/* put_bytes copies b to *out and moves *out past it. */
static void put_bytes(uint8_t **out, const uint8_t *p, size_t len)
{
    if (len > 0) {
        memcpy(*out, p, len);
    }
    *out += len;
}

/* put_str8 writes a str8; the header check bounds b to 255 bytes. */
static void put_str8(uint8_t **out, const struct mqttsec_bytes *b)
{
    **out = (uint8_t)b->len;
    *out += 1;
    put_bytes(out, b->p, b->len);
}

/* put_str16 writes a str16; the header check bounds b to 65535 bytes. */
static void put_str16(uint8_t **out, const struct mqttsec_bytes *b)
{
    mqttsec_put_u16(*out, (uint16_t)b->len);
    *out += 2;
    put_bytes(out, b->p, b->len);
}

/* put_u64 writes a big-endian u64. */
static void put_u64(uint8_t **out, uint64_t v)
{
    mqttsec_put_u64(*out, v);
    *out += 8;
}

/* put_protections writes the fields of prot's bits, in order. */
static void put_protections(uint8_t **out, const struct mqttsec_header *h)
{
    if ((h->prot & MQTTSEC_HMAC) != 0) {
        put_bytes(out, h->mac_kid, MQTTSEC_KID_LEN);
    }
    if ((h->prot & MQTTSEC_HOTP) != 0) {
        put_bytes(out, h->hotp_kid, MQTTSEC_KID_LEN);
        put_str8(out, &h->hotp_code);
    }
    if ((h->prot & MQTTSEC_SIG) != 0) {
        **out = h->sig_alg;
        *out += 1;
        put_bytes(out, h->sig_kid, MQTTSEC_KID_LEN);
    }
    if ((h->prot & MQTTSEC_ENC) != 0) {
        **out = 0; /* n = 0: a pre-shared key */
        *out += 1;
        put_bytes(out, h->psk_kid, MQTTSEC_KID_LEN);
    }
}

/* mqttsec_header_write: h, checked, in the form of SPEC.md 3.1. */
void mqttsec_header_write(const struct mqttsec_header *h, uint8_t *out)
{
    out[0] = h->kind;
    out[1] = h->prot;
    out += 2;
    put_str8(&out, &h->from);
    *out++ = h->n_to;
    put_bytes(&out, h->to.p, h->to.len);
    put_str16(&out, &h->topic);
    put_str16(&out, &h->reply_to);
    put_str8(&out, &h->corr);
    put_str8(&out, &h->re);
    put_u64(&out, h->ctr);
    put_u64(&out, h->iat);
    put_u64(&out, h->exp);
    put_protections(&out, h);
}
