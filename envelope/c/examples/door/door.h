/*
 * door.h - what the files of the door program share.
 *
 * The door is a device of the Envelope 1.0 device profile (../../include/
 * mqttsec.h) that talks MQTT 3.1.1 through Eclipse Paho's synchronous C
 * client. main.c has the command line and the exit statuses; keys.c and
 * conf.c read a key directory of examples/keygen; files.c reads files
 * with their permissions checked; state.c keeps the message counter;
 * net.c wraps Paho; serve.c answers requests; call.c makes them; board.c
 * has the board's hooks (random bytes, clocks) and the log.
 */
#ifndef DOOR_H
#define DOOR_H

#include <signal.h>
#include <stddef.h>
#include <stdint.h>

#include "mqttsec.h"

/* ---- Exit statuses (main.c's file comment lists them) ----------------- */

enum door_exit {
    DOOR_EXIT_OK = 0,
    DOOR_EXIT_OTHER = 1,
    DOOR_EXIT_USAGE = 2,
    DOOR_EXIT_CONFIG = 3,
    DOOR_EXIT_CONNECT = 4,
    DOOR_EXIT_NO_REPLY = 5,
    DOOR_EXIT_ERROR_REPLY = 6,
    DOOR_EXIT_UNACKED = 8
};

/* ---- Bounds ------------------------------------------------------------ */

#define DOOR_MAX_PEERS 32     /* peers in a key directory */
#define DOOR_MAX_PEER_KEYS 16 /* keys held for one peer, all kinds */
#define DOOR_MAX_FILE (1024 * 1024) /* a key file, as the Go side bounds it */
#define DOOR_MAX_CALLS 16     /* --call flags */
#define DOOR_MAX_ALLOW 32     /* --allow flags */
#define DOOR_PREFIX "mqttsec" /* first topic level (mqttsec.DefaultTopicPrefix) */

/* ---- Keys (keys.c, conf.c) --------------------------------------------- */

/* What peers/<id>/peer.conf says. */
struct door_conf {
    uint8_t send;        /* MQTTSEC_HMAC|HOTP|SIG|ENC to seal with */
    uint8_t require;     /* what the peer's messages must carry */
    unsigned hotp_digits; /* 6 or 8 */
    uint32_t ttl_ms;     /* lifetime of messages to the peer */
    int clockless;       /* the peer has no real-time clock (SPEC 10) */
    int sign_es256;      /* "sign es256" */
    int sign_other;      /* "sign" names a key the device does not have */
    int require_set;     /* a require line was given */
};

/* One peer: the keys held for it and how to seal for it. */
struct door_peer {
    char id[MQTTSEC_MAX_ID + 1];
    struct mqttsec_key keys[DOOR_MAX_PEER_KEYS];
    size_t n_keys;
    struct door_conf conf;
    /* The primary key of each protection sent (first line), or NULL. */
    const struct mqttsec_key *mac, *hotp, *psk;
    int sign; /* sign with the own ES256 key */
};

/* A key directory, as the device profile sees it. */
struct door_keys {
    char me[MQTTSEC_MAX_ID + 1];
    struct mqttsec_signer signer;
    int has_signer;
    struct door_peer peers[DOOR_MAX_PEERS];
    size_t n_peers;
};

int door_keys_load(struct door_keys *k, const char *dir);
void door_keys_wipe(struct door_keys *k);
struct door_peer *door_keys_peer(struct door_keys *k, const char *id);

int door_conf_parse(const char *path, const char *data, size_t len,
                    struct door_conf *c);
int door_parse_duration(const char *s, uint32_t *ms);

/* ---- Files (files.c) ---------------------------------------------------- */

enum door_file_kind {
    DOOR_FILE_PUBLIC,  /* any mode: self/id */
    DOOR_FILE_PEER,    /* not writable by group or others: .pub, peer.conf */
    DOOR_FILE_SECRET   /* not readable by group or others: keys */
};

/* A file read into memory, NUL-terminated after len bytes. */
struct door_file {
    char *data;
    size_t len;
    int secret;
};

int door_file_read(const char *path, enum door_file_kind kind,
                   struct door_file *f);
void door_file_free(struct door_file *f);
int door_file_exists(const char *path);
/* A cursor over the lines of a file's text. */
struct door_lines {
    const char *p, *end;
    int number; /* of the line last given */
};

int door_next_line(struct door_lines *l, const char **line, size_t *len);
int door_b64url_decode(const char *s, size_t n, uint8_t *out, size_t cap,
                       size_t *out_len);
int door_path(char *out, size_t cap, const char *a, const char *b,
              const char *c);

/* ---- Counter (state.c) --------------------------------------------------- */

/* The state directory: the message counter's file and the lock. */
struct door_state {
    int dirfd, lockfd;
    struct mqttsec_counter counter;
};

int door_state_open(struct door_state *s, const char *dir, int init);
void door_state_close(struct door_state *s);

/* ---- Board (board.c) ---------------------------------------------------- */

uint64_t door_now_ms(void);  /* CLOCK_REALTIME, ms since the epoch */
uint64_t door_mono_ms(void); /* CLOCK_MONOTONIC, ms */

#if defined(__GNUC__)
#define DOOR_PRINTF(a, b) __attribute__((format(printf, a, b)))
#else
#define DOOR_PRINTF(a, b)
#endif

void door_log(const char *fmt, ...) DOOR_PRINTF(1, 2);
const char *door_quote(const char *s, size_t n, char *out, size_t cap);

/* ---- MQTT (net.c) -------------------------------------------------------- */

struct door_net {
    void *client; /* MQTTClient */
    int created;
    char broker[512];
    char client_id[64 + MQTTSEC_MAX_ID];
    uint32_t timeout_ms;
};

/* A message received: topic (NUL-terminated) and payload, owned by Paho
 * until door_net_release. */
struct door_inbound {
    char *topic;
    const uint8_t *payload;
    size_t len;
    void *msg; /* MQTTClient_message */
};

int door_net_open(struct door_net *n, const char *broker,
                  const char *client_id, uint32_t timeout_ms);
int door_net_subscribe(struct door_net *n, const char *filter);
int door_net_publish(struct door_net *n, const char *topic, uint8_t *p,
                     size_t len);
int door_net_receive(struct door_net *n, uint32_t wait_ms,
                     struct door_inbound *in);
void door_net_release(struct door_inbound *in);
int door_net_reconnect(struct door_net *n);
void door_net_close(struct door_net *n);

/* door_net_publish's results besides 0. */
#define DOOR_NET_NOT_SENT (-1)
#define DOOR_NET_UNACKED (-2)

/* ---- The program (main.c, serve.c, call.c) ------------------------------ */

struct door_opts {
    const char *keys_dir, *state_dir, *broker, *gateway, *exec_log;
    const char *client_id;
    const char *calls[DOOR_MAX_CALLS];
    size_t n_calls;
    const char *allow[DOOR_MAX_ALLOW];
    size_t n_allow;
    uint32_t timeout_ms, skew_ms;
    uint32_t reject_log_ms; /* at most one refusal a class this often; 0: all */
    int init_state;
    int clockless; /* learn the time from the gateway (SPEC.md 10) */
};

/* Everything a running door uses. */
struct door {
    const struct door_opts *o;
    struct door_keys *keys;
    struct door_state *state;
    struct door_net *net;
    struct mqttsec_peer peers[DOOR_MAX_PEERS];
    struct mqttsec_receiver rx;
    struct mqttsec_clock clock; /* with --clockless: the time learned */
    unsigned long opened; /* open-door requests executed since boot */
};

extern volatile sig_atomic_t door_stop; /* set by SIGINT and SIGTERM */

void door_receiver_init(struct door *d);
int door_serve(struct door *d);
int door_calls(struct door *d);
int door_subscribe_replies(struct door *d);
int door_call(struct door *d, const char *spec, int time_request);
uint64_t door_time(const struct door *d);
void door_protect(const struct door *d, const struct door_peer *p,
                  struct mqttsec_seal *s);
void door_log_refusal(uint32_t interval_ms, const char *topic, int rc,
                      const struct mqttsec_message *m);

#endif /* DOOR_H */
