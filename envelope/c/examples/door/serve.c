/*
 * serve.c - the door as a server: requests on mqttsec/<door>/req/<method>
 * are opened with mqttsec_open (kind req, topic the method of the MQTT
 * topic), and answered with a reply sealed for the caller as its
 * peer.conf's send line says, on the caller's reply topic:
 *
 *   open-door   opens the door (one line on stdout, one in --exec-log)
 *               for a caller --allow permits (every peer without --allow)
 *   status      the door's state
 *   other       an error reply {"code":"not-found"}
 *
 * as mqttsec.Server does (mqttsec/server.go): a refused message is logged
 * with its class and rule and never answered; a reply-to other than the
 * caller's own reply topic (or one below it) gets a "bad-reply-to" error
 * on the caller's own reply topic; a forbidden caller gets "forbidden";
 * a clockless peer's time request (SPEC.md 10) an empty reply. The
 * counter of the reply is drawn before anything is done: a request that
 * could not be answered is not acted on.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "door.h"
#include "mqttsec_crypto.h"

/* Room for a reply: the payloads here are short JSON documents. */
#define REPLY_CAP 4096

/* The plaintext of an encrypted request. */
static uint8_t plain[MQTTSEC_DEFAULT_MAX_SIZE];

/* What a request gets back: a reply or an error reply, its payload. */
struct answer {
    uint8_t kind; /* MQTTSEC_REP or MQTTSEC_ERR */
    char payload[MQTTSEC_MAX_TOPIC + 64]; /* room for a method in an error */
};

/* door_receiver_init makes d's receiver from its keys, with no loss of
 * state declared (door_serve declares one). */
void door_receiver_init(struct door *d)
{
    size_t i;
    memset(d->peers, 0, sizeof d->peers);
    for (i = 0; i < d->keys->n_peers; i++) {
        const struct door_peer *p = &d->keys->peers[i];
        d->peers[i].id = p->id;
        d->peers[i].keys = p->keys;
        d->peers[i].n_keys = p->n_keys;
        d->peers[i].require = p->conf.require;
        d->peers[i].flags = p->conf.clockless ? MQTTSEC_PEER_CLOCKLESS : 0;
        d->peers[i].skew_ms = d->o->skew_ms;
    }
    memset(&d->rx, 0, sizeof d->rx);
    d->rx.me = d->keys->me;
    d->rx.peers = d->peers;
    d->rx.n_peers = d->keys->n_peers;
}

/* declare_loss declares the replay windows lost, now. They live in RAM,
 * so the last power-off or restart lost them (SPEC.md 7.3): with loss_ms
 * the time at boot, every message issued up to then plus the skew is
 * refused (replay-loss), and a request captured before the restart is
 * never accepted again, however fresh its timestamps. The price: for one
 * skew after boot the door refuses every request; it says on stdout when
 * it starts accepting. A door that only calls does without (call.c says
 * why). */
static void declare_loss(struct door *d)
{
    d->rx.loss_ms = door_time(d);
    d->rx.has_loss = 1;
}

/* door_protect fills in who seals s for p and with which keys: p's
 * peer.conf send line, the primary key of each protection. */
void door_protect(const struct door *d, const struct door_peer *p,
                  struct mqttsec_seal *s)
{
    s->from = d->keys->me;
    s->to = p->id;
    s->mac = p->mac;
    s->hotp = p->hotp;
    s->psk = p->psk;
    s->sig = p->sign ? &d->keys->signer : NULL;
}

/* The refusals of each class (index -rc for the eleven classes of
 * SPEC.md 9.1, 0 for the rest): when one was last logged, and how many
 * have been left out since. */
static struct {
    int logged;
    uint64_t last_ms;
    unsigned long left_out;
} refusals[12];

/* door_log_refusal logs a message mqttsec_open refused: its MQTT topic,
 * its class and the rule (for the log only; nothing goes back). Per
 * class it logs the first refusal, then at most one a interval_ms (0:
 * every one) with how many it left out, as the Go SDK's reject log does:
 * whoever may publish on the door's topics cannot flood its log. */
void door_log_refusal(uint32_t interval_ms, const char *topic, int rc,
                      const struct mqttsec_message *m)
{
    size_t k = rc <= MQTTSEC_E_TOO_LARGE && rc >= MQTTSEC_E_DECRYPTION ? (size_t)-rc : 0;
    uint64_t now = door_mono_ms();
    char q[256];
    if (interval_ms != 0 && refusals[k].logged && now - refusals[k].last_ms < interval_ms) {
        refusals[k].left_out++;
        return;
    }
    door_quote(topic, strlen(topic), q, sizeof q);
    if (refusals[k].left_out == 0)
        door_log("refused a message on %s: %s (rule %s)", q, mqttsec_strerror(rc),
                 m->rule != NULL ? m->rule : "-");
    else
        door_log("refused a message on %s: %s (rule %s); %lu more of this class left out before it",
                 q, mqttsec_strerror(rc), m->rule != NULL ? m->rule : "-", refusals[k].left_out);
    refusals[k].logged = 1;
    refusals[k].last_ms = now;
    refusals[k].left_out = 0;
}

/* method_of is the method of a request topic of the door, or NULL. */
static const char *method_of(const struct door *d, const char *topic)
{
    char prefix[MQTTSEC_MAX_ID + 32];
    size_t n;
    snprintf(prefix, sizeof prefix, "%s/%s/req/", DOOR_PREFIX, d->keys->me);
    n = strlen(prefix);
    if (strncmp(topic, prefix, n) != 0 || topic[n] == '\0')
        return NULL;
    return topic + n;
}

/* reply_to_allowed says whether a reply may go to the request's replyTo:
 * the caller's own reply topic (own) or a topic below it. */
static int reply_to_allowed(const struct mqttsec_bytes *rt, const char *own)
{
    size_t n = strlen(own);
    return rt->len >= n && memcmp(rt->p, own, n) == 0 &&
           (rt->len == n || rt->p[n] == '/');
}

/* allowed says whether --allow lets caller open the door. */
static int allowed(const struct door *d, const char *caller)
{
    size_t i;
    if (d->o->n_allow == 0)
        return 1;
    for (i = 0; i < d->o->n_allow; i++)
        if (strcmp(d->o->allow[i], caller) == 0)
            return 1;
    return 0;
}

/* record appends the execution of an open-door request to --exec-log,
 * fsynced, so that a test (or an audit) can count executions. */
static int record(const struct door *d, const char *caller, uint64_t ctr)
{
    char line[MQTTSEC_MAX_ID + 96];
    int fd, n, ok;
    if (d->o->exec_log == NULL)
        return 0;
    n = snprintf(line, sizeof line, "%" PRIu64 " open-door %s ctr %" PRIu64 "\n",
                 door_time(d), caller, ctr);
    fd = open(d->o->exec_log, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0600);
    if (fd < 0) {
        door_log("%s: %s", d->o->exec_log, strerror(errno));
        return -1;
    }
    ok = write(fd, line, (size_t)n) == n && fsync(fd) == 0;
    if (!ok)
        door_log("%s: %s", d->o->exec_log, strerror(errno));
    close(fd);
    return ok ? 0 : -1;
}

/* set_error makes a an error reply with code (and message, if any: a
 * method, which holds no '"', '\' or control character, SPEC.md 3.2, so it
 * goes into JSON as is, and whole: payload has room for the longest). */
static void set_error(struct answer *a, const char *code, const char *message)
{
    a->kind = MQTTSEC_ERR;
    if (message == NULL)
        snprintf(a->payload, sizeof a->payload, "{\"code\":\"%s\"}", code);
    else
        snprintf(a->payload, sizeof a->payload, "{\"code\":\"%s\",\"message\":\"%s\"}",
                 code, message);
}

/* open_door executes an open-door request of caller. */
static void open_door(struct door *d, const char *caller, uint64_t ctr,
                      struct answer *a)
{
    if (!allowed(d, caller)) {
        door_log("forbidden: %s may not open-door", caller);
        set_error(a, "forbidden", NULL);
        return;
    }
    if (record(d, caller, ctr) != 0) {
        set_error(a, "internal", NULL);
        return;
    }
    d->opened++;
    printf("door: opened for %s (ctr %" PRIu64 ")\n", caller, ctr);
    fflush(stdout);
    a->kind = MQTTSEC_REP;
    snprintf(a->payload, sizeof a->payload, "{\"door\":\"%s\",\"state\":\"opened\",\"ctr\":%" PRIu64 "}",
             d->keys->me, ctr);
}

/* handle decides what the opened request m of method gets back. */
static void handle(struct door *d, const struct mqttsec_message *m,
                   const char *method, struct answer *a)
{
    const char *caller = m->peer->id;
    a->kind = MQTTSEC_REP;
    a->payload[0] = '\0';
    if (m->time_request)
        return; /* the reply's iat is the answer */
    if (strcmp(method, "open-door") == 0)
        open_door(d, caller, m->h.ctr, a);
    else if (strcmp(method, "status") == 0)
        snprintf(a->payload, sizeof a->payload,
                 "{\"door\":\"%s\",\"state\":\"closed\",\"opened\":%lu}", d->keys->me, d->opened);
    else
        set_error(a, "not-found", method);
}

/* send_answer seals a as the answer to m (counter ctr, drawn already)
 * for peer p and publishes it on topic. */
static void send_answer(struct door *d, const struct door_peer *p,
                        const struct mqttsec_message *m, const char *method,
                        uint64_t ctr, const struct answer *a, const char *topic)
{
    static uint8_t out[REPLY_CAP];
    struct mqttsec_seal s;
    size_t len;
    int rc;
    memset(&s, 0, sizeof s);
    door_protect(d, p, &s);
    s.kind = a->kind;
    s.topic = method;
    s.corr = m->h.corr.p;
    s.corr_len = m->h.corr.len;
    s.re = m->digest;
    s.ctr = ctr;
    s.iat = door_time(d);
    s.exp = s.iat + p->conf.ttl_ms;
    s.payload = (const uint8_t *)a->payload;
    s.payload_len = strlen(a->payload);
    rc = mqttsec_seal(&s, out, sizeof out, &len, NULL);
    if (rc != MQTTSEC_OK) {
        door_log("reply to %s not sealed: %s", p->id, mqttsec_strerror(rc));
        return;
    }
    door_net_publish(d->net, topic, out, len);
}

/* answer draws the reply's counter, checks the reply-to, acts on the
 * request m of method and sends what it gets back. */
static void answer(struct door *d, const struct mqttsec_message *m,
                   const char *method)
{
    const struct door_peer *p = door_keys_peer(d->keys, m->peer->id);
    char own[MQTTSEC_MAX_ID + 32], reply_to[MQTTSEC_MAX_TOPIC + 1];
    struct answer a;
    uint64_t ctr;
    if (p == NULL)
        return; /* cannot be: the receiver's peers are the keys' */
    if (mqttsec_counter_next(&d->state->counter, &ctr) != MQTTSEC_OK) {
        door_log("no counter for the reply: request of %s refused before its handler", p->id);
        return;
    }
    snprintf(own, sizeof own, "%s/%s/reply", DOOR_PREFIX, p->id);
    if (!reply_to_allowed(&m->h.reply_to, own)) {
        door_log("reply-to refused: caller %s, method %s", p->id, method);
        set_error(&a, "bad-reply-to", NULL);
        send_answer(d, p, m, method, ctr, &a, own);
        return;
    }
    memcpy(reply_to, m->h.reply_to.p, m->h.reply_to.len);
    reply_to[m->h.reply_to.len] = '\0';
    handle(d, m, method, &a);
    send_answer(d, p, m, method, ctr, &a, reply_to);
}

/* serve_one opens and answers one message of the request filter. */
static void serve_one(struct door *d, const struct door_inbound *in)
{
    struct mqttsec_expect x;
    struct mqttsec_message m;
    const char *method = method_of(d, in->topic);
    int rc;
    if (method == NULL) {
        char q[256];
        door_log("ignored a message on %s: not a request topic of %s",
                 door_quote(in->topic, strlen(in->topic), q, sizeof q), d->keys->me);
        return;
    }
    memset(&x, 0, sizeof x);
    memset(&m, 0, sizeof m);
    x.kinds = MQTTSEC_REQ;
    x.topic = method;
    rc = mqttsec_open(&d->rx, &x, door_time(d), in->payload, in->len, plain, sizeof plain, &m);
    if (rc != MQTTSEC_OK) {
        door_log_refusal(d->o->reject_log_ms, in->topic, rc, &m);
        return;
    }
    answer(d, &m, method);
    mqttsec_wipe(plain, m.payload == plain ? m.payload_len : 0);
}

/* pause_ms sleeps up to ms, less if a signal comes (the back-off between
 * reconnection attempts). */
static void pause_ms(uint32_t ms)
{
    struct timespec ts;
    ts.tv_sec = (time_t)(ms / 1000u);
    ts.tv_nsec = (long)(ms % 1000u) * 1000000L;
    nanosleep(&ts, NULL);
}

/* reconnect tries once a second, until it succeeds or a signal stops the
 * door, to connect and subscribe to filter again. */
static void reconnect(struct door *d, const char *filter)
{
    door_log("connection to the broker lost; reconnecting");
    while (!door_stop) {
        pause_ms(1000);
        if (door_stop)
            return;
        if (door_net_reconnect(d->net) == 0 && door_net_subscribe(d->net, filter) == 0) {
            door_log("connection to the broker back, subscribed to %s", filter);
            return;
        }
    }
}

/* learn_time asks the gateway for the time (--clockless) until it has
 * it, a signal stops the door or the configuration rules it out (no such
 * gateway), each attempt bounded by --timeout, one a second. */
static int learn_time(struct door *d)
{
    int rc = door_subscribe_replies(d);
    while (rc == DOOR_EXIT_OK && !door_stop) {
        int got = door_call(d, NULL, 1);
        if (got == DOOR_EXIT_OK || got == DOOR_EXIT_CONFIG || got == DOOR_EXIT_USAGE)
            return got;
        pause_ms(1000);
    }
    return door_stop ? DOOR_EXIT_OK : rc;
}

/* door_serve answers requests until SIGINT or SIGTERM, after learning
 * the time with --clockless. */
int door_serve(struct door *d)
{
    char filter[MQTTSEC_MAX_ID + 32];
    uint64_t ready_at;
    int ready = 0;
    if (d->o->clockless) {
        int rc = learn_time(d);
        if (rc != DOOR_EXIT_OK || door_stop)
            return rc;
    }
    declare_loss(d);
    ready_at = d->rx.loss_ms + d->o->skew_ms;
    snprintf(filter, sizeof filter, "%s/%s/req/#", DOOR_PREFIX, d->keys->me);
    if (door_net_subscribe(d->net, filter) != 0)
        return DOOR_EXIT_CONNECT;
    printf("door %s listening on %s (methods: open-door, status)\n", d->keys->me, filter);
    fflush(stdout);
    while (!door_stop) {
        struct door_inbound in;
        int rc;
        if (!ready && door_time(d) > ready_at) {
            printf("door %s ready: accepting requests issued after %" PRIu64 " (boot + skew)\n",
                   d->keys->me, ready_at);
            fflush(stdout);
            ready = 1;
        }
        rc = door_net_receive(d->net, 200, &in);
        if (rc > 0) {
            serve_one(d, &in);
            door_net_release(&in);
        } else if (rc < 0 && !door_stop) {
            reconnect(d, filter);
        }
    }
    return DOOR_EXIT_OK;
}
