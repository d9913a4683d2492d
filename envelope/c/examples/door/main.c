/*
 * door - a door controller on the Envelope 1.0 device profile: the C port
 * (libmqttsec) over MQTT 3.1.1 with Eclipse Paho's synchronous C client.
 *
 *   door --keys keys/door-7 --state state/door-7 --init        first start
 *   door --keys keys/door-7 --state state/door-7 --exec-log opened.log
 *   door --keys keys/door-7 --state state/door-7 --call echo:hello
 *
 * Without --call it serves requests on mqttsec/<id>/req/# (serve.c:
 * open-door, status) until SIGINT or SIGTERM. With --call it sends each
 * request to the gateway in turn, prints each reply's payload on stdout
 * and exits (call.c). Its clock is CLOCK_REALTIME, or with --clockless
 * the time it learns from the gateway (call.c). Keys come from a directory made by examples/keygen
 * (keys.c), the message counter from --state (state.c). Replay windows
 * live in RAM; see door_receiver_init in serve.c for what that costs at
 * boot.
 *
 * Messages on stdout: "door <id> listening on ...", "door <id> ready:
 * ...", "door: opened for <caller> (ctr N)", and the replies of --call.
 * Everything else (refusals with their class and rule, errors) goes to
 * stderr, one line each, prefixed "door: ".
 *
 * Exit statuses:
 *   0  ok: served until a signal, or every --call got a reply
 *   1  anything else (no random bytes, a signal during --call)
 *   2  usage: a flag that does not parse, a --call that cannot be sealed
 *   3  configuration: the key directory, the state directory, the
 *      --gateway peer
 *   4  cannot connect to the broker, subscribe, or publish; the
 *      connection lost during --call
 *   5  no valid reply to a --call before its deadline
 *   6  the gateway answered a --call with an error reply
 *   8  a --call request not acknowledged by the broker in --timeout
 */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "door.h"

volatile sig_atomic_t door_stop;

/* The key directory; static, as it is large and lives as long as main. */
static struct door_keys keys;

static const char usage[] =
    "usage: door --keys DIR --state DIR [--init] [--broker URL] [--exec-log FILE]\n"
    "            [--allow ID]... [--skew DURATION] [--timeout DURATION]\n"
    "       door --keys DIR --state DIR --call METHOD[:PAYLOAD]... [--gateway ID]\n"
    "       (both: [--clockless] [--client-id ID] [--reject-log-interval DURATION])\n"
    "\n"
    "  --keys DIR        key directory made by examples/keygen (own id, ES256 key, peers)\n"
    "  --state DIR       state directory: the message counter (locked while in use)\n"
    "  --init            create the state directory's counter (first start only)\n"
    "  --broker URL      tcp://host:port or host:port (default tcp://127.0.0.1:1883)\n"
    "  --call M[:P]      send method M with payload P to the gateway, print the reply,\n"
    "                    exit; repeatable (the calls are made in order)\n"
    "  --gateway ID      the peer --call sends to (default gateway)\n"
    "  --timeout D       wait for each reply, broker acknowledgement and connection\n"
    "                    (default 10s; Go durations: 500ms, 10s, 1m)\n"
    "  --reject-log-interval D\n"
    "                    log at most one refused message of a class per D, with how\n"
    "                    many were left out (default 10s; 0: every one)\n"
    "  --skew D          clock skew allowed to peers (default 30s); the door refuses\n"
    "                    requests for this long after it starts (replay windows in RAM)\n"
    "  --exec-log FILE   append a line for each open-door executed\n"
    "  --allow ID        only these peers may open-door (default: every peer)\n"
    "  --client-id ID    MQTT client id (default <id>-<random>)\n"
    "  --clockless       do not trust the real-time clock: learn the time from the\n"
    "                    gateway (mqttsec.time, SPEC.md 10) first; the gateway's\n"
    "                    peer.conf for the door must say clockless\n"
    "  -h, --help        this message\n"
    "\n"
    "exit status: 0 ok, 1 other, 2 usage, 3 configuration, 4 broker, 5 no reply,\n"
    "             6 error reply, 8 request not acknowledged\n";

/* on_signal asks the door to stop (SIGINT, SIGTERM). */
static void on_signal(int sig)
{
    (void)sig;
    door_stop = 1;
}

/* install_signals makes SIGINT and SIGTERM stop the door cleanly and a
 * closed socket an error instead of SIGPIPE. */
static void install_signals(void)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    sa.sa_handler = SIG_IGN;
    sigaction(SIGPIPE, &sa, NULL);
}

/* duration_flag parses the duration of a flag into *ms. */
static int duration_flag(const char *name, const char *v, uint32_t *ms)
{
    if (door_parse_duration(v, ms) != 0) {
        door_log("--%s %s: want a positive duration such as 10s or 500ms", name, v);
        return -1;
    }
    return 0;
}

/* The long options; each has its own short value for getopt_long. */
static const struct option long_opts[] = {
    {"keys", required_argument, NULL, 'k'},     {"state", required_argument, NULL, 's'},
    {"init", no_argument, NULL, 'I'},           {"broker", required_argument, NULL, 'b'},
    {"call", required_argument, NULL, 'c'},     {"gateway", required_argument, NULL, 'g'},
    {"timeout", required_argument, NULL, 't'},  {"skew", required_argument, NULL, 'S'},
    {"exec-log", required_argument, NULL, 'e'}, {"allow", required_argument, NULL, 'a'},
    {"client-id", required_argument, NULL, 'C'}, {"clockless", no_argument, NULL, 'L'},
    {"reject-log-interval", required_argument, NULL, 'R'},
    {"help", no_argument, NULL, 'h'},           {NULL, 0, NULL, 0}};

/* append adds v to list[0:*n] of at most max entries. */
static int append(const char *name, const char **list, size_t *n, size_t max,
                  const char *v)
{
    if (*n == max) {
        door_log("--%s: at most %lu", name, (unsigned long)max);
        return -1;
    }
    list[(*n)++] = v;
    return 0;
}

/* option applies one parsed option c with argument v to o. Returns 0,
 * 1 for --help, or -1. */
static int option(int c, const char *v, struct door_opts *o)
{
    switch (c) {
    case 'k': o->keys_dir = v; return 0;
    case 's': o->state_dir = v; return 0;
    case 'I': o->init_state = 1; return 0;
    case 'L': o->clockless = 1; return 0;
    case 'b': o->broker = v; return 0;
    case 'g': o->gateway = v; return 0;
    case 'e': o->exec_log = v; return 0;
    case 'C': o->client_id = v; return 0;
    case 'c': return append("call", o->calls, &o->n_calls, DOOR_MAX_CALLS, v);
    case 'a': return append("allow", o->allow, &o->n_allow, DOOR_MAX_ALLOW, v);
    case 't': return duration_flag("timeout", v, &o->timeout_ms);
    case 'S': return duration_flag("skew", v, &o->skew_ms);
    case 'R':
        if (strcmp(v, "0") == 0) {
            o->reject_log_ms = 0;
            return 0;
        }
        return duration_flag("reject-log-interval", v, &o->reject_log_ms);
    case 'h': return 1;
    default: return -1; /* getopt_long has said what is wrong */
    }
}

/* parse_flags reads argv into o. Returns 0, 1 for --help, or -1. */
static int parse_flags(int argc, char **argv, struct door_opts *o)
{
    int c;
    memset(o, 0, sizeof *o);
    o->broker = "tcp://127.0.0.1:1883";
    o->gateway = "gateway";
    o->timeout_ms = 10000;
    o->skew_ms = 30000;
    o->reject_log_ms = 10000;
    while ((c = getopt_long(argc, argv, "h", long_opts, NULL)) != -1) {
        int rc = option(c, optarg, o);
        if (rc != 0)
            return rc;
    }
    if (optind < argc) {
        door_log("unexpected argument %s", argv[optind]);
        return -1;
    }
    if (o->keys_dir == NULL || o->state_dir == NULL) {
        door_log("--keys and --state are required");
        return -1;
    }
    return 0;
}

/* connect_broker connects d to the broker, as --client-id or
 * <id>-<8 random hex digits> (a fixed id would have a second door, or a
 * --call run beside the server, take the first one's place). */
static int connect_broker(struct door *d, struct door_net *net)
{
    char id[MQTTSEC_MAX_ID + 16];
    uint8_t r[4];
    if (d->o->client_id != NULL)
        snprintf(id, sizeof id, "%s", d->o->client_id);
    else if (mqttsec_random(r, sizeof r) == 0)
        snprintf(id, sizeof id, "%s-%02x%02x%02x%02x", d->keys->me, r[0], r[1], r[2], r[3]);
    else
        return DOOR_EXIT_OTHER;
    d->net = net;
    return door_net_open(net, d->o->broker, id, d->o->timeout_ms) == 0 ? DOOR_EXIT_OK
                                                                        : DOOR_EXIT_CONNECT;
}

/* run loads the keys and state of o and serves or calls. */
static int run(const struct door_opts *o)
{
    static struct door_state state;
    static struct door_net net;
    static struct door d;
    int rc;
    memset(&d, 0, sizeof d);
    d.o = o;
    d.keys = &keys;
    d.state = &state;
    if (door_keys_load(&keys, o->keys_dir) != 0)
        return DOOR_EXIT_CONFIG;
    if (door_state_open(&state, o->state_dir, o->init_state) != 0) {
        door_keys_wipe(&keys);
        return DOOR_EXIT_CONFIG;
    }
    door_receiver_init(&d);
    rc = connect_broker(&d, &net);
    if (rc == DOOR_EXIT_OK)
        rc = o->n_calls > 0 ? door_calls(&d) : door_serve(&d);
    door_net_close(&net);
    door_state_close(&state);
    door_keys_wipe(&keys);
    return rc;
}

int main(int argc, char **argv)
{
    struct door_opts o;
    int rc = parse_flags(argc, argv, &o);
    if (rc != 0) {
        fputs(usage, rc > 0 ? stdout : stderr);
        return rc > 0 ? DOOR_EXIT_OK : DOOR_EXIT_USAGE;
    }
    install_signals();
    return run(&o);
}
