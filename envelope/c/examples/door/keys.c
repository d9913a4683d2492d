/*
 * keys.c - a key directory made by examples/keygen (layout in
 * mqttsec/keydir/keydir.go), as far as the device profile goes:
 *
 *   self/id                   the door's id
 *   self/es256.key            its ECDSA P-256 key, PEM PKCS #8 (mode 600)
 *   peers/<id>/peer.conf      what the peer must send, how to seal for it
 *   peers/<id>/hmac.key       shared secrets, base64url, one a line; the
 *   peers/<id>/hotp.key       first line is the primary (used to send),
 *   peers/<id>/psk.key        every line is accepted (mode 600)
 *   peers/<id>/es256.pub      the peer's ES256 keys, PEM PUBLIC KEY blocks
 *
 * Ed25519, X25519, X-Wing and RSA files are not in the profile: they are
 * named once in a log line at start and otherwise ignored. Secret files
 * readable by group or others, and peer files writable by them, are
 * refused (files.c). Errors name the file, never a key.
 */
#include <dirent.h>
#include <string.h>
#include <sys/stat.h>

#include <mbedtls/bignum.h>
#include <mbedtls/ecp.h>
#include <mbedtls/pk.h>

#include "door.h"
#include "mqttsec_crypto.h"

/* Files of a key directory the device profile has no use for. */
static const char *const ignored_self[] = {
    "ed25519.key", "rsa-sign.key", "x25519.key", "xwing.key", "rsa-oaep.key"};
static const char *const ignored_peer[] = {
    "ed25519.pub", "rsa-sign.pub", "x25519.pub", "xwing.pub", "rsa-oaep.pub"};

/* The names of the ignored files found, for the log line at start. */
static char ignored[2048];

/* note_ignored adds the files of names[0:n] under dir that exist to the
 * list of ignored files, shown relative to the key directory as rel. */
static void note_ignored(const char *dir, const char *rel,
                         const char *const *names, size_t n)
{
    size_t i, used = strlen(ignored);
    char path[4096];
    for (i = 0; i < n; i++) {
        if (door_path(path, sizeof path, dir, names[i], NULL) != 0 ||
            !door_file_exists(path))
            continue;
        if (used + strlen(rel) + strlen(names[i]) + 8 >= sizeof ignored)
            return;
        used += (size_t)snprintf(ignored + used, sizeof ignored - used, "%s%s/%s",
                                 used > 0 ? " " : "", rel, names[i]);
    }
}

/* valid_id says whether s[0:n] is an id: 1 to 128 bytes of ASCII
 * letters, digits and - . _ : @ (SPEC.md 3.2). */
static int valid_id(const char *s, size_t n)
{
    size_t i;
    if (n == 0 || n > MQTTSEC_MAX_ID)
        return 0;
    for (i = 0; i < n; i++) {
        char c = s[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
              (c >= '0' && c <= '9') || (c != '\0' && strchr("-._:@", c) != NULL)))
            return 0;
    }
    return 1;
}

/* load_id reads self/id, one line, into k->me. */
static int load_id(struct door_keys *k, const char *dir)
{
    char path[4096];
    struct door_file f;
    struct door_lines l;
    const char *line;
    size_t n;
    int ok;
    if (door_path(path, sizeof path, dir, "self", "id") != 0 ||
        door_file_read(path, DOOR_FILE_PUBLIC, &f) != 0)
        return -1;
    l.p = f.data;
    l.end = f.data + f.len;
    l.number = 0;
    ok = door_next_line(&l, &line, &n) != 0 && valid_id(line, n);
    if (ok) {
        const char *more;
        size_t more_len;
        ok = door_next_line(&l, &more, &more_len) == 0; /* one line only */
    }
    if (ok) {
        memcpy(k->me, line, n);
        k->me[n] = '\0';
    } else {
        door_log("%s: not one valid id (1 to 128 letters, digits, - . _ : @)", path);
    }
    door_file_free(&f);
    return ok ? 0 : -1;
}

static int pem_block(const char **p, const char *end, const char **type,
                     size_t *type_len, const char **start, const char **stop);

/* one_pkcs8_block says whether f holds exactly one PEM block, of type
 * PRIVATE KEY (PKCS #8), as the Go side writes and requires. */
static int one_pkcs8_block(const struct door_file *f)
{
    static const char want[] = "PRIVATE KEY";
    const char *p = f->data, *end = f->data + f->len, *type, *start, *stop;
    size_t type_len;
    if (pem_block(&p, end, &type, &type_len, &start, &stop) != 1 ||
        type_len != sizeof want - 1 || memcmp(type, want, type_len) != 0)
        return 0;
    return pem_block(&p, end, &type, &type_len, &start, &stop) == 0;
}

/* load_signer reads self/es256.key, if there is one, into k->signer: the
 * private scalar of a P-256 key in one PEM PKCS #8 block. */
static int load_signer(struct door_keys *k, const char *path)
{
    struct door_file f;
    mbedtls_pk_context pk;
    uint8_t d[32];
    int rc = -1;
    if (door_file_read(path, DOOR_FILE_SECRET, &f) != 0)
        return -1;
    mbedtls_pk_init(&pk);
    if (!one_pkcs8_block(&f)) {
        door_log("%s: not one PEM PRIVATE KEY (PKCS #8) block", path);
    } else if (mbedtls_pk_parse_key(&pk, (const unsigned char *)f.data, f.len + 1, NULL, 0) != 0 ||
        mbedtls_pk_get_type(&pk) != MBEDTLS_PK_ECKEY ||
        mbedtls_pk_ec(pk)->grp.id != MBEDTLS_ECP_DP_SECP256R1) {
        door_log("%s: not a PEM ECDSA P-256 private key", path);
    } else if (mbedtls_mpi_write_binary(&mbedtls_pk_ec(pk)->d, d, sizeof d) != 0 ||
               mqttsec_signer_init(&k->signer, d) != MQTTSEC_OK) {
        door_log("%s: not a usable ECDSA P-256 private key", path);
    } else {
        k->has_signer = 1;
        rc = 0;
    }
    mqttsec_wipe(d, sizeof d);
    mbedtls_pk_free(&pk);
    door_file_free(&f);
    return rc;
}

/* add_key appends a key of use to p, made from material[0:len]. */
static int add_key(struct door_peer *p, const char *path, int line,
                   enum mqttsec_key_use use, const uint8_t *material,
                   size_t len, const char *why)
{
    unsigned digits = use == MQTTSEC_KEY_HOTP ? p->conf.hotp_digits : 0;
    if (p->n_keys == DOOR_MAX_PEER_KEYS) {
        door_log("%s: more keys for peer %s than the door holds (%d)", path, p->id,
                 DOOR_MAX_PEER_KEYS);
        return -1;
    }
    if (mqttsec_key_init(&p->keys[p->n_keys], use, material, len, digits) != MQTTSEC_OK) {
        door_log("%s:%d: %s", path, line, why);
        return -1;
    }
    p->n_keys++;
    return 0;
}

/* load_secrets reads a file of base64url secrets, one a line, as keys of
 * use for p; a missing file holds none. */
static int load_secrets(struct door_peer *p, const char *dir,
                        const char *name, enum mqttsec_key_use use,
                        const char *why)
{
    char path[4096];
    struct door_file f;
    struct door_lines l;
    const char *line;
    size_t n, got = 0;
    int number, rc = 0;
    if (door_path(path, sizeof path, dir, name, NULL) != 0)
        return -1;
    if (!door_file_exists(path))
        return 0;
    if (door_file_read(path, DOOR_FILE_SECRET, &f) != 0)
        return -1;
    l.p = f.data;
    l.end = f.data + f.len;
    l.number = 0;
    while (rc == 0 && (number = door_next_line(&l, &line, &n)) != 0) {
        uint8_t secret[MQTTSEC_MAX_KEY];
        size_t len;
        if (door_b64url_decode(line, n, secret, sizeof secret, &len) != 0) {
            door_log("%s:%d: not a base64url secret (or longer than %d bytes)", path,
                     number, MQTTSEC_MAX_KEY);
            rc = -1;
        } else {
            rc = add_key(p, path, number, use, secret, len, why);
            got++;
        }
        mqttsec_wipe(secret, sizeof secret);
    }
    if (rc == 0 && got == 0) {
        door_log("%s: no key in file", path);
        rc = -1;
    }
    door_file_free(&f);
    return rc;
}

/* find returns the first place of s[0:n] in [from, end), or NULL; it
 * compares only where n bytes are left. */
static const char *find(const char *from, const char *end, const char *s,
                        size_t n)
{
    for (; (size_t)(end - from) >= n; from++)
        if (memcmp(from, s, n) == 0)
            return from;
    return NULL;
}

/* pem_block finds the next PEM block of [*p, end): *type is its type (up
 * to the dashes) and [*start, *stop) the whole block, END line included.
 * Returns 1, 0 when there is no further block, or -1 for a cut one. */
static int pem_block(const char **p, const char *end, const char **type,
                     size_t *type_len, const char **start, const char **stop)
{
    static const char begin[] = "-----BEGIN ", finish[] = "-----END ";
    const char *b = find(*p, end, begin, sizeof begin - 1), *t_end, *e;
    if (b == NULL)
        return 0;
    *type = b + sizeof begin - 1;
    t_end = find(*type, end, "-----", 5);
    e = t_end == NULL ? NULL : find(t_end, end, finish, sizeof finish - 1);
    if (e == NULL)
        return -1;
    while (e < end && *e != '\n')
        e++;
    *type_len = (size_t)(t_end - *type);
    *start = b;
    *stop = e;
    *p = e;
    return 1;
}

/* es256_key parses one PEM PUBLIC KEY block, [start, stop), into point:
 * the uncompressed 65-byte P-256 point. */
static int es256_key(const char *start, const char *stop, uint8_t point[65])
{
    char block[4096];
    size_t len = (size_t)(stop - start), olen = 0;
    mbedtls_pk_context pk;
    int rc = -1;
    if (len >= sizeof block)
        return -1;
    memcpy(block, start, len);
    block[len] = '\0';
    mbedtls_pk_init(&pk);
    if (mbedtls_pk_parse_public_key(&pk, (const unsigned char *)block, len + 1) == 0 &&
        mbedtls_pk_get_type(&pk) == MBEDTLS_PK_ECKEY &&
        mbedtls_pk_ec(pk)->grp.id == MBEDTLS_ECP_DP_SECP256R1 &&
        mbedtls_ecp_point_write_binary(&mbedtls_pk_ec(pk)->grp, &mbedtls_pk_ec(pk)->Q,
                                       MBEDTLS_ECP_PF_UNCOMPRESSED, &olen, point, 65) == 0 &&
        olen == 65)
        rc = 0;
    mbedtls_pk_free(&pk);
    return rc;
}

/* load_es256 reads the peer's es256.pub, if there is one: every PEM block
 * an ES256 key, all of them accepted. */
static int load_es256(struct door_peer *p, const char *dir)
{
    char path[4096];
    struct door_file f;
    const char *cur, *type = NULL, *start = NULL, *stop = NULL;
    size_t type_len = 0;
    int found, blocks = 0, rc = 0;
    if (door_path(path, sizeof path, dir, "es256.pub", NULL) != 0)
        return -1;
    if (!door_file_exists(path))
        return 0;
    if (door_file_read(path, DOOR_FILE_PEER, &f) != 0)
        return -1;
    cur = f.data;
    while (rc == 0 && (found = pem_block(&cur, f.data + f.len, &type, &type_len, &start, &stop)) != 0) {
        uint8_t point[65];
        blocks++;
        if (found < 0 || type_len != 10 || memcmp(type, "PUBLIC KEY", 10) != 0 ||
            es256_key(start, stop, point) != 0) {
            door_log("%s: PEM block %d is not an ECDSA P-256 public key", path, blocks);
            rc = -1;
        } else {
            rc = add_key(p, path, 0, MQTTSEC_KEY_ES256, point, sizeof point,
                         "not a P-256 point");
        }
    }
    if (rc == 0 && blocks == 0) {
        door_log("%s: no PEM public key", path);
        rc = -1;
    }
    door_file_free(&f);
    return rc;
}

/* first_key is p's first key of use (its primary), or NULL. */
static const struct mqttsec_key *first_key(const struct door_peer *p,
                                           enum mqttsec_key_use use)
{
    size_t i;
    for (i = 0; i < p->n_keys; i++)
        if (p->keys[i].use == use)
            return &p->keys[i];
    return NULL;
}

/* choose_send sets how to seal for p: the primary key of every protection
 * its peer.conf (at conf) sends, each of which must be there. */
static int choose_send(struct door_keys *k, struct door_peer *p,
                       const char *conf)
{
    uint8_t send = p->conf.send;
    const char *missing = NULL;
    p->mac = send & MQTTSEC_HMAC ? first_key(p, MQTTSEC_KEY_HS256) : NULL;
    p->hotp = send & MQTTSEC_HOTP ? first_key(p, MQTTSEC_KEY_HOTP) : NULL;
    p->psk = send & MQTTSEC_ENC ? first_key(p, MQTTSEC_KEY_A256GCM) : NULL;
    p->sign = (send & MQTTSEC_SIG) != 0;
    if ((send & MQTTSEC_HMAC) && p->mac == NULL)
        missing = "send hmac needs hmac.key";
    else if ((send & MQTTSEC_HOTP) && p->hotp == NULL)
        missing = "send hotp needs hotp.key";
    else if ((send & MQTTSEC_ENC) && p->psk == NULL)
        missing = "send enc needs psk.key (the device profile has no public-key encryption)";
    else if (p->sign && p->conf.sign_other)
        missing = "send sig: the device signs with es256 only (sign es256)";
    else if (p->sign && !k->has_signer)
        missing = "send sig needs self/es256.key";
    if (missing != NULL) {
        door_log("%s: %s", conf, missing);
        return -1;
    }
    return 0;
}

/* load_peer reads peers/<id>/ (dir) into a new peer of k. */
static int load_peer(struct door_keys *k, const char *dir, const char *id)
{
    char conf[4096];
    struct door_file f;
    struct door_peer *p;
    int rc;
    if (!valid_id(id, strlen(id))) {
        door_log("%s: directory name is not a valid peer id", dir);
        return -1;
    }
    if (k->n_peers == DOOR_MAX_PEERS) {
        door_log("%s: more peers than the door holds (%d)", dir, DOOR_MAX_PEERS);
        return -1;
    }
    p = &k->peers[k->n_peers];
    memset(p, 0, sizeof *p);
    strcpy(p->id, id);
    if (door_path(conf, sizeof conf, dir, "peer.conf", NULL) != 0 ||
        door_file_read(conf, DOOR_FILE_PEER, &f) != 0)
        return -1;
    rc = door_conf_parse(conf, f.data, f.len, &p->conf);
    door_file_free(&f);
    if (rc != 0 ||
        load_secrets(p, dir, "hmac.key", MQTTSEC_KEY_HS256, "HMAC keys must be 32 to 64 bytes") != 0 ||
        load_secrets(p, dir, "hotp.key", MQTTSEC_KEY_HOTP, "HOTP secrets must be 16 to 64 bytes") != 0 ||
        load_secrets(p, dir, "psk.key", MQTTSEC_KEY_A256GCM, "pre-shared keys must be 32 bytes") != 0 ||
        load_es256(p, dir) != 0 || choose_send(k, p, conf) != 0)
        return -1;
    if ((p->conf.require & MQTTSEC_SIG) && first_key(p, MQTTSEC_KEY_ES256) == NULL)
        door_log("warning: peer %s must sign, but %s/es256.pub is missing: its messages will be refused",
                 id, dir);
    else if ((p->conf.require & MQTTSEC_SIG) && !p->conf.sign_es256)
        door_log("warning: %s has no \"sign es256\": a peer that signs with Ed25519 (keygen's default) is refused; pair with keygen pair --sign es256",
                 conf);
    k->n_peers++;
    return 0;
}

/* is_dir says whether path is a directory. */
static int is_dir(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0 && S_ISDIR(st.st_mode);
}

/* load_peers reads every directory under dir/peers. */
static int load_peers(struct door_keys *k, const char *dir)
{
    char peers[4096], pdir[4096], rel[300]; /* rel: "peers/" and a d_name */
    DIR *d;
    struct dirent *e;
    int rc = 0;
    if (door_path(peers, sizeof peers, dir, "peers", NULL) != 0)
        return -1;
    d = opendir(peers);
    if (d == NULL)
        return 0; /* no peers yet */
    while (rc == 0 && (e = readdir(d)) != NULL) {
        if (e->d_name[0] == '.' || door_path(pdir, sizeof pdir, peers, e->d_name, NULL) != 0 ||
            !is_dir(pdir))
            continue;
        rc = load_peer(k, pdir, e->d_name);
        if (rc == 0) {
            snprintf(rel, sizeof rel, "peers/%s", e->d_name);
            note_ignored(pdir, rel, ignored_peer, sizeof ignored_peer / sizeof ignored_peer[0]);
        }
    }
    closedir(d);
    return rc;
}

/* door_keys_load reads the key directory dir into k. Returns 0, or -1
 * after logging the file (and line) at fault. */
int door_keys_load(struct door_keys *k, const char *dir)
{
    char path[4096], self[4096];
    memset(k, 0, sizeof *k);
    ignored[0] = '\0';
    if (load_id(k, dir) != 0 || door_path(self, sizeof self, dir, "self", NULL) != 0 ||
        door_path(path, sizeof path, self, "es256.key", NULL) != 0)
        return -1;
    if (door_file_exists(path) && load_signer(k, path) != 0)
        return -1;
    note_ignored(self, "self", ignored_self, sizeof ignored_self / sizeof ignored_self[0]);
    if (load_peers(k, dir) != 0) {
        door_keys_wipe(k);
        return -1;
    }
    if (ignored[0] != '\0')
        door_log("device profile (HMAC, HOTP, pre-shared AES-256-GCM, ES256): ignoring %s",
                 ignored);
    return 0;
}

/* door_keys_wipe erases every key k holds. */
void door_keys_wipe(struct door_keys *k)
{
    mqttsec_wipe(k, sizeof *k);
}

/* door_keys_peer is the peer of k named id, or NULL. */
struct door_peer *door_keys_peer(struct door_keys *k, const char *id)
{
    size_t i;
    for (i = 0; i < k->n_peers; i++)
        if (strcmp(k->peers[i].id, id) == 0)
            return &k->peers[i];
    return NULL;
}
