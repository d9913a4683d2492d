/*
 * conf.c - peers/<id>/peer.conf, read as mqttsec/keydir reads it:
 *
 *   send hmac sig enc   protections for messages to the peer
 *   require hmac sig    protections its messages must carry (default: send)
 *   sign es256          own key that signs for it (the device has only ES256)
 *   hotp-digits 8       HOTP code length (default 6)
 *   ttl 30s             lifetime of messages to it (default 60s)
 *   clockless           the peer has no real-time clock (SPEC.md section 10)
 *
 * '#' starts a comment. An unknown directive or word is an error naming
 * the file and line, as on the Go side. Durations are written as Go's
 * time.ParseDuration takes them ("30s", "1m30s", "1.5s", "500ms").
 */
#include <string.h>

#include "door.h"

#define MAX_FIELDS 8

/* A word of a line. */
struct field {
    const char *p;
    size_t n;
};

/* split cuts line[0:n] at white space into at most MAX_FIELDS fields;
 * returns their count, or MAX_FIELDS + 1 when there are more. */
static size_t split(const char *line, size_t n, struct field *f)
{
    size_t i = 0, count = 0;
    while (i < n) {
        size_t start;
        while (i < n && (line[i] == ' ' || line[i] == '\t' || line[i] == '\r'))
            i++;
        if (i == n)
            break;
        if (count == MAX_FIELDS)
            return MAX_FIELDS + 1;
        start = i;
        while (i < n && line[i] != ' ' && line[i] != '\t' && line[i] != '\r')
            i++;
        f[count].p = line + start;
        f[count].n = i - start;
        count++;
    }
    return count;
}

/* is reports whether field f is the word w. */
static int is(const struct field *f, const char *w)
{
    return f->n == strlen(w) && memcmp(f->p, w, f->n) == 0;
}

/* protection is the prot bit a word of send or require names, or 0. */
static uint8_t protection(const struct field *f)
{
    if (is(f, "hmac"))
        return MQTTSEC_HMAC;
    if (is(f, "hotp"))
        return MQTTSEC_HOTP;
    if (is(f, "sig"))
        return MQTTSEC_SIG;
    if (is(f, "enc"))
        return MQTTSEC_ENC;
    return 0;
}

/* A directive's handler: applies the fields f[0:n] of its line to c, or
 * returns the usage to show. */
typedef const char *(*handler)(const struct field *f, size_t n,
                               struct door_conf *c);

/* protections reads the words f[1:n] of send or require into *p. */
static const char *protections(const struct field *f, size_t n, uint8_t *p)
{
    size_t i;
    *p = 0;
    for (i = 1; i < n; i++) {
        uint8_t bit = protection(&f[i]);
        if (bit == 0)
            return "unknown protection (hmac, hotp, sig, enc)";
        *p |= bit;
    }
    return NULL;
}

/* send: send hmac hotp sig enc */
static const char *do_send(const struct field *f, size_t n, struct door_conf *c)
{
    return protections(f, n, &c->send);
}

/* require: require hmac hotp sig enc */
static const char *do_require(const struct field *f, size_t n, struct door_conf *c)
{
    c->require_set = 1;
    return protections(f, n, &c->require);
}

/* sign: sign ed25519|es256|rsa (the door has only es256) */
static const char *do_sign(const struct field *f, size_t n, struct door_conf *c)
{
    if (n != 2 || !(is(&f[1], "ed25519") || is(&f[1], "es256") || is(&f[1], "rsa")))
        return "want: sign ed25519|es256|rsa";
    c->sign_es256 = is(&f[1], "es256");
    c->sign_other = !c->sign_es256;
    return NULL;
}

/* hotp-digits: hotp-digits 6|8 */
static const char *do_hotp_digits(const struct field *f, size_t n, struct door_conf *c)
{
    if (n != 2 || !(is(&f[1], "6") || is(&f[1], "8")))
        return "want: hotp-digits 6|8";
    c->hotp_digits = (unsigned)(f[1].p[0] - '0');
    return NULL;
}

/* ttl: ttl <duration> */
static const char *do_ttl(const struct field *f, size_t n, struct door_conf *c)
{
    char d[32];
    if (n != 2 || f[1].n >= sizeof d)
        return "want: ttl <duration>, e.g. ttl 30s";
    memcpy(d, f[1].p, f[1].n);
    d[f[1].n] = '\0';
    return door_parse_duration(d, &c->ttl_ms) == 0 ? NULL : "want: ttl <duration>, e.g. ttl 30s";
}

/* clockless: clockless */
static const char *do_clockless(const struct field *f, size_t n, struct door_conf *c)
{
    (void)f;
    if (n != 1)
        return "want: clockless";
    c->clockless = 1;
    return NULL;
}

/* removed: directives of drafts before Envelope 1.0. */
static const char *do_removed(const struct field *f, size_t n, struct door_conf *c)
{
    (void)f;
    (void)n;
    (void)c;
    return "directive was removed: envelope 1.0 has one format, without RS256";
}

/* The directives and their handlers. */
static const struct {
    const char *name;
    handler fn;
} directives[] = {
    {"send", do_send},           {"require", do_require}, {"sign", do_sign},
    {"hotp-digits", do_hotp_digits}, {"ttl", do_ttl},     {"clockless", do_clockless},
    {"envelope", do_removed},    {"legacy-rs256", do_removed},
};

/* directive applies one line's fields f[0:n] to c, or returns why not. */
static const char *directive(const struct field *f, size_t n, struct door_conf *c)
{
    size_t i;
    for (i = 0; i < sizeof directives / sizeof directives[0]; i++)
        if (is(&f[0], directives[i].name))
            return directives[i].fn(f, n, c);
    return "unknown directive";
}

/* door_conf_parse reads peer.conf's text data[0:len] (path names it in
 * errors) into c. Returns 0, or -1 after logging the file, line and why. */
int door_conf_parse(const char *path, const char *data, size_t len,
                    struct door_conf *c)
{
    struct door_lines l;
    const char *line;
    size_t n;
    int number;
    memset(c, 0, sizeof *c);
    c->hotp_digits = 6;
    c->ttl_ms = 60000;
    l.p = data;
    l.end = data + len;
    l.number = 0;
    while ((number = door_next_line(&l, &line, &n)) != 0) {
        struct field f[MAX_FIELDS];
        size_t count = split(line, n, f);
        const char *why = count > MAX_FIELDS ? "too many words" : directive(f, count, c);
        if (why != NULL) {
            door_log("%s:%d: %s", path, number, why);
            return -1;
        }
    }
    if (c->send == 0) {
        door_log("%s: no send directive", path);
        return -1;
    }
    if (!c->require_set)
        c->require = c->send;
    return 0;
}

/* unit_ns is the length in ns of a unit of Go's time.ParseDuration, or 0;
 * *n is set to the unit's length in bytes. */
static uint64_t unit_ns(const char *s, size_t *n)
{
    static const struct {
        const char *name;
        uint64_t ns;
    } units[] = {
        {"ns", 1u}, {"us", 1000u}, {"\xc2\xb5s", 1000u}, {"\xce\xbcs", 1000u},
        {"ms", 1000000u}, {"s", 1000000000u}, {"m", 60000000000u},
        {"h", 3600000000000u},
    };
    size_t i, len = 0;
    while (s[len] != '\0' && s[len] != '.' && (s[len] < '0' || s[len] > '9'))
        len++;
    for (i = 0; i < sizeof units / sizeof units[0]; i++)
        if (strlen(units[i].name) == len && memcmp(s, units[i].name, len) == 0) {
            *n = len;
            return units[i].ns;
        }
    return 0;
}

/* door_parse_duration reads a positive duration as Go writes it ("30s",
 * "1m30s", "1.5s", "250ms") into whole ms, rounded down but at least 1,
 * and at most 2^32-1 ms. Returns 0, or -1 for anything else. */
int door_parse_duration(const char *s, uint32_t *ms)
{
    const uint64_t max_ns = (uint64_t)UINT32_MAX * 1000000u;
    uint64_t total = 0;
    if (*s == '\0')
        return -1;
    while (*s != '\0') {
        uint64_t whole = 0, unit;
        double frac = 0;
        int digits = 0;
        size_t un;
        for (; *s >= '0' && *s <= '9'; s++, digits++) {
            if (whole > max_ns)
                return -1;
            whole = whole * 10u + (uint64_t)(*s - '0');
        }
        if (*s == '.') {
            double scale = 1;
            for (s++; *s >= '0' && *s <= '9'; s++, digits++)
                frac += (double)(*s - '0') / (scale *= 10);
        }
        if (digits == 0 || (unit = unit_ns(s, &un)) == 0)
            return -1;
        s += un;
        if (whole > max_ns / unit)
            return -1;
        total += whole * unit + (uint64_t)(frac * (double)unit);
        if (total > max_ns)
            return -1;
    }
    if (total == 0)
        return -1;
    *ms = total < 1000000u ? 1u : (uint32_t)(total / 1000000u);
    return 0;
}
