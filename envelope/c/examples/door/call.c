/*
 * call.c - the door as a client of the gateway: each --call METHOD[:PAYLOAD]
 * is a request to mqttsec/<gateway>/req/<METHOD> with replyTo
 * mqttsec/<door>/reply, sealed as peers/<gateway>/peer.conf says, issued
 * now and expiring after the peer's ttl or the wait (--timeout), whichever
 * comes first (SPEC.md 7.4). The door then waits, until that deadline on
 * the monotonic clock, for a reply or error reply bound to the request
 * (struct mqttsec_pending, SPEC.md 8); anything else on the reply topic
 * is refused and logged, and the wait goes on.
 *
 * The receiver used here declares no loss of state at boot (serve.c
 * does): it accepts only replies, and a reply is accepted only against a
 * request this process sent, whose digest covers a counter never used
 * before (SPEC.md 7.1). A reply captured before a restart names a digest
 * nobody waits for any more (ctx-re), so the loss has nothing to guard.
 *
 * With --clockless the door does not trust its real-time clock: it first
 * sends a time request (method mqttsec.time, iat 0, exp its wait, no
 * payload; SPEC.md 10) and takes the iat of the gateway's authenticated
 * reply as the time, advanced by the monotonic clock from then on
 * (struct mqttsec_clock). Until then it opens without a clock, which
 * accepts replies bound to its requests and nothing else. The gateway
 * must mark the door clockless in its peers/<door>/peer.conf.
 */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "door.h"
#include "mqttsec_crypto.h"

/* Room for a request: the payload comes from the command line. */
#define REQUEST_CAP 65536

/* The plaintext of an encrypted reply. */
static uint8_t plain[MQTTSEC_DEFAULT_MAX_SIZE];

/* A request in flight. */
struct call {
    const struct door_peer *gw;
    char method[MQTTSEC_MAX_TOPIC + 1];
    const char *payload;
    struct mqttsec_pending pending;
    char reply_topic[MQTTSEC_MAX_ID + 32];
    int time_request;   /* a time request of a clockless door */
    uint64_t sent_mono; /* when it was sealed, monotonic ms */
    uint64_t deadline;  /* monotonic ms */
};

/* door_time is the door's clock: the real-time clock, or with --clockless
 * the time learned (MQTTSEC_NO_CLOCK before it is). */
uint64_t door_time(const struct door *d)
{
    if (d->o->clockless)
        return mqttsec_clock_now(&d->clock, door_mono_ms());
    return door_now_ms();
}

/* lifetime is how long c's request lives and is waited for: the peer's
 * ttl or --timeout, whichever is shorter. */
static uint32_t lifetime(const struct door *d, const struct call *c)
{
    return d->o->timeout_ms < c->gw->conf.ttl_ms ? d->o->timeout_ms : c->gw->conf.ttl_ms;
}

/* parse_call splits "METHOD[:PAYLOAD]" into c. */
static int parse_call(const char *spec, struct call *c)
{
    const char *colon = strchr(spec, ':');
    size_t n = colon != NULL ? (size_t)(colon - spec) : strlen(spec);
    if (n == 0 || n > MQTTSEC_MAX_TOPIC) {
        door_log("--call %s: want METHOD[:PAYLOAD] with a method of 1 to %d bytes", spec,
                 MQTTSEC_MAX_TOPIC);
        return -1;
    }
    memcpy(c->method, spec, n);
    c->method[n] = '\0';
    c->payload = colon != NULL ? colon + 1 : "";
    return 0;
}

/* seal_request seals c's request into out[0:cap], its length in *len:
 * issued now (a time request: at 0) and living lifetime ms. Returns 0 or
 * an exit status. */
static int seal_request(struct door *d, struct call *c, uint8_t *out,
                        size_t cap, size_t *len)
{
    struct mqttsec_seal s;
    uint64_t now = door_time(d);
    int rc;
    if (now == MQTTSEC_NO_CLOCK && !c->time_request) {
        door_log("--call %s: the time is not known yet", c->method);
        return DOOR_EXIT_OTHER;
    }
    memset(&s, 0, sizeof s);
    door_protect(d, c->gw, &s);
    c->pending.corr_len = 16;
    if (mqttsec_random(c->pending.corr, c->pending.corr_len) != 0 ||
        mqttsec_counter_next(&d->state->counter, &s.ctr) != MQTTSEC_OK) {
        door_log("--call %s: no random bytes or no counter", c->method);
        return DOOR_EXIT_OTHER;
    }
    s.kind = MQTTSEC_REQ;
    s.topic = c->method;
    s.reply_to = c->reply_topic;
    s.corr = c->pending.corr;
    s.corr_len = c->pending.corr_len;
    s.iat = c->time_request ? 0 : now; /* SPEC.md 10: iat 0, exp the wait */
    s.exp = s.iat + lifetime(d, c);
    s.payload = (const uint8_t *)c->payload;
    s.payload_len = strlen(c->payload);
    rc = mqttsec_seal(&s, out, cap, len, c->pending.digest);
    if (rc != MQTTSEC_OK) {
        door_log("--call %s: request not sealed: %s", c->method, mqttsec_strerror(rc));
        return rc == MQTTSEC_E_ARGUMENT || rc == MQTTSEC_E_BUFFER ? DOOR_EXIT_USAGE : DOOR_EXIT_OTHER;
    }
    c->pending.topic = c->method;
    c->pending.to = c->gw->id;
    return 0;
}

/* send_request seals c's request, publishes it and starts the wait for
 * its reply. Returns 0 or an exit status. */
static int send_request(struct door *d, struct call *c)
{
    static uint8_t out[REQUEST_CAP];
    char topic[MQTTSEC_MAX_ID + MQTTSEC_MAX_TOPIC + 16];
    size_t len;
    int rc;
    c->sent_mono = door_mono_ms();
    c->deadline = c->sent_mono + lifetime(d, c);
    rc = seal_request(d, c, out, sizeof out, &len);
    if (rc != 0)
        return rc;
    snprintf(topic, sizeof topic, "%s/%s/req/%s", DOOR_PREFIX, c->gw->id, c->method);
    rc = door_net_publish(d->net, topic, out, len);
    if (rc == DOOR_NET_UNACKED)
        return DOOR_EXIT_UNACKED;
    return rc == 0 ? 0 : DOOR_EXIT_CONNECT;
}

/* learn takes the time from the reply m to the time request c. */
static int learn(struct door *d, const struct call *c,
                 const struct mqttsec_message *m)
{
    uint64_t now = door_mono_ms();
    if (!mqttsec_clock_learn(&d->clock, m->h.iat, c->sent_mono, now, d->o->skew_ms)) {
        door_log("time from %s not taken: round trip %" PRIu64 " ms, over half the skew, or behind the time known",
                 c->gw->id, now - c->sent_mono);
        return DOOR_EXIT_OTHER;
    }
    door_log("learned the time from %s: %" PRIu64 " (round trip %" PRIu64 " ms)", c->gw->id,
             m->h.iat, now - c->sent_mono);
    return DOOR_EXIT_OK;
}

/* accepted acts on an accepted reply m: takes the time from a time
 * request's reply, prints a reply's payload on stdout and an error
 * reply's on stderr. Returns the exit status. */
static int accepted(struct door *d, const struct call *c,
                    const struct mqttsec_message *m)
{
    char q[1024];
    if (c->time_request && m->h.kind == MQTTSEC_REP)
        return learn(d, c, m);
    if (m->h.kind == MQTTSEC_REP) {
        fwrite(m->payload, 1, m->payload_len, stdout);
        fputc('\n', stdout);
        fflush(stdout);
        return DOOR_EXIT_OK;
    }
    door_log("%s answered %s with error %s", c->gw->id, c->method,
             door_quote((const char *)m->payload, m->payload_len, q, sizeof q));
    return DOOR_EXIT_ERROR_REPLY;
}

/* open_reply opens a message of the reply topic against c's request.
 * Returns an exit status for a reply it accepted, or -1 to wait on. */
static int open_reply(struct door *d, const struct call *c,
                      const struct door_inbound *in)
{
    struct mqttsec_expect x;
    struct mqttsec_message m;
    int rc;
    if (strcmp(in->topic, c->reply_topic) != 0)
        return -1;
    memset(&x, 0, sizeof x);
    memset(&m, 0, sizeof m);
    x.kinds = MQTTSEC_REP | MQTTSEC_ERR;
    x.pending = &c->pending;
    x.n_pending = 1;
    rc = mqttsec_open(&d->rx, &x, door_time(d), in->payload, in->len, plain, sizeof plain, &m);
    if (rc != MQTTSEC_OK) {
        door_log_refusal(d->o->reject_log_ms, in->topic, rc, &m);
        return -1;
    }
    rc = accepted(d, c, &m);
    mqttsec_wipe(plain, m.payload == plain ? m.payload_len : 0);
    return rc;
}

/* wait_reply waits until c's deadline for its reply. */
static int wait_reply(struct door *d, const struct call *c)
{
    uint64_t now;
    while (!door_stop && (now = door_mono_ms()) < c->deadline) {
        struct door_inbound in;
        uint64_t left = c->deadline - now;
        int rc = door_net_receive(d->net, left < 200 ? (uint32_t)left : 200u, &in);
        if (rc < 0) {
            door_log("connection to the broker lost while waiting for the reply to %s", c->method);
            return DOOR_EXIT_CONNECT;
        }
        if (rc == 0)
            continue;
        rc = open_reply(d, c, &in);
        door_net_release(&in);
        if (rc >= 0)
            return rc;
    }
    door_log("no reply from %s to %s in %" PRIu32 " ms%s", c->gw->id, c->method, lifetime(d, c),
             c->time_request ? " (does its peer.conf for the door say clockless?)" : "");
    return DOOR_EXIT_NO_REPLY;
}

/* door_call makes the request spec (METHOD[:PAYLOAD]) to the gateway, or
 * with time_request a time request, and waits for its reply. Returns the
 * exit status. */
int door_call(struct door *d, const char *spec, int time_request)
{
    static struct call c;
    int rc;
    memset(&c, 0, sizeof c);
    c.gw = door_keys_peer(d->keys, d->o->gateway);
    if (c.gw == NULL) {
        door_log("%s: no peers/%s in the key directory", d->o->keys_dir, d->o->gateway);
        return DOOR_EXIT_CONFIG;
    }
    c.time_request = time_request;
    snprintf(c.reply_topic, sizeof c.reply_topic, "%s/%s/reply", DOOR_PREFIX, d->keys->me);
    if (parse_call(time_request ? MQTTSEC_TIME_METHOD : spec, &c) != 0)
        return DOOR_EXIT_USAGE;
    rc = send_request(d, &c);
    return rc != 0 ? rc : wait_reply(d, &c);
}

/* door_subscribe_replies subscribes to the door's reply topic. */
int door_subscribe_replies(struct door *d)
{
    char filter[MQTTSEC_MAX_ID + 32];
    snprintf(filter, sizeof filter, "%s/%s/reply", DOOR_PREFIX, d->keys->me);
    return door_net_subscribe(d->net, filter) == 0 ? DOOR_EXIT_OK : DOOR_EXIT_CONNECT;
}

/* door_calls makes every --call in turn, after learning the time with
 * --clockless, stopping at the first that fails; the exit status is that
 * call's. */
int door_calls(struct door *d)
{
    size_t i;
    int rc = door_subscribe_replies(d);
    if (rc == DOOR_EXIT_OK && d->o->clockless)
        rc = door_call(d, NULL, 1);
    for (i = 0; rc == DOOR_EXIT_OK && i < d->o->n_calls && !door_stop; i++)
        rc = door_call(d, d->o->calls[i], 0);
    return rc == DOOR_EXIT_OK && door_stop ? DOOR_EXIT_OTHER : rc;
}
