/*
 * files.c - reading a key directory's files as the Go side does
 * (mqttsec/keydir): regular files of at most 1 MiB, opened without
 * blocking on a FIFO, with their permissions checked on the file that was
 * opened; then their lines and the base64url in them.
 *
 * Errors are one line on stderr naming the file, never its content.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "door.h"
#include "mqttsec_crypto.h"

/* check_mode refuses a secret file group or others may read, and a peer's
 * public file or peer.conf they may write. */
static int check_mode(const char *path, enum door_file_kind kind,
                      mode_t mode)
{
    if (kind == DOOR_FILE_SECRET && (mode & 077) != 0) {
        door_log("%s: secret file readable by group or others (mode %03o): chmod 600", path,
                 (unsigned)(mode & 0777));
        return -1;
    }
    if (kind == DOOR_FILE_PEER && (mode & 022) != 0) {
        door_log("%s: file writable by group or others (mode %03o): chmod go-w", path,
                 (unsigned)(mode & 0777));
        return -1;
    }
    return 0;
}

/* read_all reads fd's size bytes into a fresh NUL-terminated buffer. */
static int read_all(const char *path, int fd, size_t size,
                    struct door_file *f)
{
    size_t got = 0;
    f->data = malloc(size + 1);
    if (f->data == NULL) {
        door_log("%s: out of memory", path);
        return -1;
    }
    while (got < size) {
        ssize_t r = read(fd, f->data + got, size - got);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0) {
            door_log("%s: %s", path, r < 0 ? strerror(errno) : "changed while read");
            door_file_free(f);
            return -1;
        }
        got += (size_t)r;
    }
    f->data[size] = '\0';
    f->len = size;
    return 0;
}

/* door_file_read reads path into f: a regular file of at most 1 MiB,
 * whose mode suits kind. Returns 0, or -1 after logging why. */
int door_file_read(const char *path, enum door_file_kind kind,
                   struct door_file *f)
{
    struct stat st;
    int fd, rc = -1;
    memset(f, 0, sizeof *f);
    f->secret = kind == DOOR_FILE_SECRET;
    fd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
    if (fd < 0) {
        door_log("%s: %s", path, strerror(errno));
        return -1;
    }
    if (fstat(fd, &st) != 0)
        door_log("%s: %s", path, strerror(errno));
    else if (!S_ISREG(st.st_mode))
        door_log("%s: not a regular file", path);
    else if (st.st_size > DOOR_MAX_FILE)
        door_log("%s: larger than any key file needs to be (1 MiB)", path);
    else if (check_mode(path, kind, st.st_mode) == 0)
        rc = read_all(path, fd, (size_t)st.st_size, f);
    close(fd);
    return rc;
}

/* door_file_free frees f, wiping a secret file's bytes first. */
void door_file_free(struct door_file *f)
{
    if (f->data != NULL && f->secret)
        mqttsec_wipe(f->data, f->len);
    free(f->data);
    f->data = NULL;
    f->len = 0;
}

/* door_file_exists says whether path names anything (lstat would miss a
 * symlink's target; stat follows it, as Go's os.Stat does). */
int door_file_exists(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0;
}

/* is_space is the white space Go's strings.TrimSpace removes in ASCII. */
static int is_space(char c)
{
    return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' ||
           c == '\f';
}

/* door_next_line gives the next line of l that holds more than a '#'
 * comment and white space, without them. Returns its number (1-based,
 * counting every line), or 0 at the end. */
int door_next_line(struct door_lines *l, const char **line, size_t *len)
{
    while (l->p < l->end) {
        const char *s = l->p, *e, *hash;
        e = memchr(s, '\n', (size_t)(l->end - s));
        l->p = e == NULL ? l->end : e + 1;
        if (e == NULL)
            e = l->end;
        l->number++;
        hash = memchr(s, '#', (size_t)(e - s));
        if (hash != NULL)
            e = hash;
        while (s < e && is_space(*s))
            s++;
        while (e > s && is_space(e[-1]))
            e--;
        if (e > s) {
            *line = s;
            *len = (size_t)(e - s);
            return l->number;
        }
    }
    return 0;
}

/* b64_value is the value of a base64url character, or -1. */
static int b64_value(char c)
{
    if (c >= 'A' && c <= 'Z')
        return c - 'A';
    if (c >= 'a' && c <= 'z')
        return c - 'a' + 26;
    if (c >= '0' && c <= '9')
        return c - '0' + 52;
    if (c == '-')
        return 62;
    if (c == '_')
        return 63;
    return -1;
}

/* door_b64url_decode decodes s[0:n], unpadded base64url in canonical form
 * (RFC 4648 section 5: unused bits zero), into out. Returns 0, or -1 for
 * anything else (a CR, padding, a stray character) or too small an out. */
int door_b64url_decode(const char *s, size_t n, uint8_t *out, size_t cap,
                       size_t *out_len)
{
    uint32_t acc = 0;
    unsigned bits = 0;
    size_t i, o = 0;
    if (n % 4 == 1)
        return -1;
    for (i = 0; i < n; i++) {
        int v = b64_value(s[i]);
        if (v < 0)
            return -1;
        acc = (acc << 6) | (uint32_t)v;
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            if (o >= cap)
                return -1;
            out[o++] = (uint8_t)(acc >> bits);
            acc &= (1u << bits) - 1u;
        }
    }
    if (acc != 0) /* the unused low bits of the last character */
        return -1;
    *out_len = o;
    return 0;
}

/* door_path writes a/b/c (c may be NULL) into out; -1 if it is too long. */
int door_path(char *out, size_t cap, const char *a, const char *b,
              const char *c)
{
    int n = c == NULL ? snprintf(out, cap, "%s/%s", a, b)
                      : snprintf(out, cap, "%s/%s/%s", a, b, c);
    if (n < 0 || (size_t)n >= cap) {
        door_log("%s/%s: path too long", a, b);
        return -1;
    }
    return 0;
}
