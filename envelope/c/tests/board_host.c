/*
 * board_host.c - the board hooks of mqttsec.h for a Linux host (the tests,
 * the fuzzer, the door example): mqttsec_random from getrandom(2).
 */
#include <errno.h>
#include <sys/random.h>

#include "mqttsec.h"

/* mqttsec_random fills buf from the kernel's CSPRNG, retrying short reads
 * and interruptions. */
int mqttsec_random(uint8_t *buf, size_t n)
{
    while (n > 0) {
        ssize_t got = getrandom(buf, n, 0);

        if (got < 0) {
            if (errno == EINTR) {
                continue;
            }
            return -1;
        }
        buf += got;
        n -= (size_t)got;
    }
    return 0;
}
