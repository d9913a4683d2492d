/*
 * stackmeter.c - the peak stack of one mqttsec_open and one mqttsec_seal
 * on the host, Mbed TLS and libc included. Run by tools/sizes.sh.
 *
 * Method: stack painting. Each measured call runs on a stack of its own
 * (a static 512 KiB array, entered with makecontext/swapcontext), which is
 * first filled with the byte 0xA5. When the call has returned, the lowest
 * address that no longer holds 0xA5 is the deepest the stack went: the
 * figure is the top of the array minus that address, less the same figure
 * for an empty function run the same way (the context trampoline).
 * Everything the call runs on that stack counts: the library, Mbed TLS,
 * libc. A frame that reserves bytes it never writes, or that writes 0xA5
 * at its lowest bytes, is undercounted by those bytes (a few bytes; the
 * figure is a measurement, not a bound). Heap is not counted: Mbed TLS's
 * bignum code (ECDSA) allocates its numbers from the heap.
 *
 * The messages: an HMAC request and an ES256 request of 16 bytes of
 * payload, client to gateway, under the vectors' TEST KEYS
 * (../testdata/vectors/keys.json). The seal of each is measured, then
 * the open. Output: one "name bytes" line per figure.
 */
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <ucontext.h>

#include "mqttsec.h"
#include "test_keys.h"

#define STACK_SIZE (512u * 1024u)
#define PAINT 0xA5

/* TEST KEYS ONLY: build/test_keys.h, made from ../testdata/vectors/keys.json. */
static const uint8_t HMAC_K[32] = TEST_KEY_HMAC;
static const uint8_t ES256_D[32] = TEST_KEY_ES256_PRIVATE;

static uint8_t stack_area[STACK_SIZE] __attribute__((aligned(64)));
static ucontext_t main_ctx, run_ctx;
static void (*measured)(void);

static struct mqttsec_key k_hmac, k_es256;
static struct mqttsec_signer signer;
static struct mqttsec_peer peer;
static struct mqttsec_receiver rcv;
static struct mqttsec_expect expect;
static struct mqttsec_seal seal;
static uint8_t env[1024], plain[1024];
static size_t env_len;
static int result;

static void trampoline(void)
{
    measured();
}

/* peak runs f on the painted stack and returns the bytes it used. */
static size_t peak(void (*f)(void))
{
    size_t i;

    memset(stack_area, PAINT, sizeof stack_area);
    measured = f;
    if (getcontext(&run_ctx) != 0) {
        perror("getcontext");
        return 0;
    }
    run_ctx.uc_stack.ss_sp = stack_area;
    run_ctx.uc_stack.ss_size = sizeof stack_area;
    run_ctx.uc_link = &main_ctx;
    makecontext(&run_ctx, trampoline, 0);
    if (swapcontext(&main_ctx, &run_ctx) != 0) {
        perror("swapcontext");
        return 0;
    }
    for (i = 0; i < sizeof stack_area && stack_area[i] == PAINT; i++) {
    }
    return sizeof stack_area - i;
}

static void nothing(void)
{
}

static void do_seal(void)
{
    result = mqttsec_seal(&seal, env, sizeof env, &env_len, NULL);
}

static void do_open(void)
{
    struct mqttsec_message m;

    result = mqttsec_open(&rcv, &expect, UINT64_C(1795348801000), env,
                          env_len, plain, sizeof plain, &m);
}

static int measure(const char *name, int with_sig, size_t base)
{
    static const uint8_t corr[16] = {1, 2, 3, 4, 5, 6, 7, 8,
                                     9, 10, 11, 12, 13, 14, 15, 16};
    static const uint8_t payload[16] = "{\"card\":8165538}";
    static uint64_t ctr = 1000;
    size_t s, o;

    memset(&seal, 0, sizeof seal);
    seal.kind = MQTTSEC_REQ;
    seal.from = "client";
    seal.to = "gateway";
    seal.topic = "get-card";
    seal.reply_to = "mqttsec/client/reply";
    seal.corr = corr;
    seal.corr_len = sizeof corr;
    seal.ctr = ++ctr;
    seal.iat = UINT64_C(1795348800000);
    seal.exp = UINT64_C(1795348860000);
    seal.mac = with_sig ? NULL : &k_hmac;
    seal.sig = with_sig ? &signer : NULL;
    seal.payload = payload;
    seal.payload_len = sizeof payload;

    s = peak(do_seal);
    if (result != 0) {
        fprintf(stderr, "stackmeter: seal %s: %s\n", name,
                mqttsec_strerror(result));
        return 1;
    }
    o = peak(do_open);
    if (result != 0) {
        fprintf(stderr, "stackmeter: open %s: %s\n", name,
                mqttsec_strerror(result));
        return 1;
    }
    printf("host_seal_%s_stack %u\n", name, (unsigned)(s - base));
    printf("host_open_%s_stack %u\n", name, (unsigned)(o - base));
    return 0;
}

int main(void)
{
    size_t base;

    if (mqttsec_key_init(&k_hmac, MQTTSEC_KEY_HS256, HMAC_K, 32, 0) != 0 ||
        mqttsec_signer_init(&signer, ES256_D) != 0 ||
        mqttsec_key_init(&k_es256, MQTTSEC_KEY_ES256, signer.pub, 65, 0) !=
            0) {
        fprintf(stderr, "stackmeter: the test keys do not load\n");
        return 1;
    }
    {
        static struct mqttsec_key keys[2];
        keys[0] = k_hmac;
        keys[1] = k_es256;
        peer.id = "client";
        peer.keys = keys;
        peer.n_keys = 2;
    }
    rcv.me = "gateway";
    rcv.peers = &peer;
    rcv.n_peers = 1;
    expect.kinds = MQTTSEC_REQ;

    base = peak(nothing);
    if (measure("hmac", 0, base) != 0 || measure("es256", 1, base) != 0) {
        return 1;
    }
    return 0;
}
