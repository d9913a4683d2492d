/*
 * board.c - the hooks a board provides (mqttsec.h), for Linux: random
 * bytes from getrandom(2), the real-time and monotonic clocks, and the
 * log on stderr.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <sys/random.h>
#include <time.h>

#include "door.h"

/* mqttsec_random fills buf from the kernel's CSPRNG, which blocks only
 * until it is seeded at boot. */
int mqttsec_random(uint8_t *buf, size_t n)
{
    while (n > 0) {
        ssize_t got = getrandom(buf, n, 0);
        if (got < 0) {
            if (errno == EINTR)
                continue;
            return -1;
        }
        buf += got;
        n -= (size_t)got;
    }
    return 0;
}

/* ms_of converts a timespec to milliseconds. */
static uint64_t ms_of(const struct timespec *ts)
{
    return (uint64_t)ts->tv_sec * 1000u + (uint64_t)ts->tv_nsec / 1000000u;
}

/* door_now_ms is the real-time clock in ms since the Unix epoch. */
uint64_t door_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return ms_of(&ts);
}

/* door_mono_ms is the monotonic clock in ms: every deadline uses it. */
uint64_t door_mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ms_of(&ts);
}

/* door_log writes one line "door: ..." to stderr. */
void door_log(const char *fmt, ...)
{
    va_list ap;
    fputs("door: ", stderr);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    fflush(stderr);
}

/* door_quote copies s[0:n] into out for a log line,
 * writing bytes outside printable ASCII as \xNN and cutting
 * it short with "..." when out is full. Untrusted text (an MQTT topic)
 * goes through it so that it cannot forge log lines or drive a terminal. */
const char *door_quote(const char *s, size_t n, char *out, size_t cap)
{
    size_t i, o = 0;
    for (i = 0; i < n && o + 8 < cap; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c >= 0x20 && c < 0x7f)
            out[o++] = (char)c;
        else
            o += (size_t)snprintf(out + o, cap - o, "\\x%02x", c);
    }
    if (i < n && o + 4 <= cap) {
        out[o++] = '.';
        out[o++] = '.';
        out[o++] = '.';
    }
    out[o] = '\0';
    return out;
}
