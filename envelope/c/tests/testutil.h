/*
 * testutil.h - small helpers the host tests share: hex, and a failure
 * count with a message for each failure.
 */
#ifndef MQTTSEC_TESTUTIL_H
#define MQTTSEC_TESTUTIL_H

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

/* tu_hexval is the value of a hex digit, or -1. */
static inline int tu_hexval(char c)
{
    if (c >= '0' && c <= '9') {
        return c - '0';
    }
    if (c >= 'a' && c <= 'f') {
        return c - 'a' + 10;
    }
    if (c >= 'A' && c <= 'F') {
        return c - 'A' + 10;
    }
    return -1;
}

/* tu_unhex decodes the hex of s (NUL-terminated) into out[0:cap] and sets
 * *len; 0 on success, -1 for an odd length, a non-hex digit or too little
 * room. */
static inline int tu_unhex(const char *s, uint8_t *out, size_t cap, size_t *len)
{
    size_t n = 0;

    while (s[0] != '\0') {
        int hi = tu_hexval(s[0]), lo;

        if (hi < 0 || s[1] == '\0' || (lo = tu_hexval(s[1])) < 0 || n >= cap) {
            return -1;
        }
        out[n++] = (uint8_t)(hi << 4 | lo);
        s += 2;
    }
    *len = n;
    return 0;
}

/* tu_failures is the number of failures reported with tu_fail. */
static inline int *tu_failures(void)
{
    static int n;

    return &n;
}

/* tu_fail reports one failure of what (a vector's name, say): why is a
 * printf format and its arguments follow. */
static inline void tu_fail(const char *what, const char *why, ...)
{
    va_list ap;

    (*tu_failures())++;
    fprintf(stderr, "FAIL %s: ", what);
    va_start(ap, why);
    vfprintf(stderr, why, ap);
    va_end(ap);
    fputc('\n', stderr);
}

#endif /* MQTTSEC_TESTUTIL_H */
