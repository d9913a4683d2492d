/*
 * state.c - the door's message counter (SPEC.md 7.1), kept in a state
 * directory:
 *
 *   <state>/counter   the highest counter reserved, in decimal, one line
 *   <state>/lock      held (fcntl lock) while a door uses the directory
 *
 * struct mqttsec_counter reserves counters in blocks of DOOR_BLOCK: before
 * it gives out a counter past its reservation it calls persist, which
 * writes the new reservation to counter.tmp, fsyncs it, renames it over
 * counter and fsyncs the directory, so the file is always a whole value
 * that is durable before any counter below it is used. At boot the door
 * resumes after the stored value: at most one block is skipped, none is
 * reused. A missing counter file is an error (the counter cannot resume
 * safely), except on the first start with --init, which creates it.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "door.h"

#define DOOR_BLOCK 1000 /* counters reserved per write */

/* write_counter stores value durably as the directory's counter. */
static int write_counter(int dirfd, uint64_t value)
{
    char line[32];
    int fd, n = snprintf(line, sizeof line, "%" PRIu64 "\n", value);
    ssize_t w;
    fd = openat(dirfd, "counter.tmp", O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0)
        return -1;
    w = write(fd, line, (size_t)n);
    if (w != n || fsync(fd) != 0) {
        close(fd);
        return -1;
    }
    if (close(fd) != 0 || renameat(dirfd, "counter.tmp", dirfd, "counter") != 0)
        return -1;
    return fsync(dirfd);
}

/* persist is the counter's hook: it stores upto before any counter up to
 * it is given out (mqttsec.h). */
static int persist(void *ctx, uint64_t upto)
{
    struct door_state *s = ctx;
    if (write_counter(s->dirfd, upto) != 0) {
        door_log("state: cannot store the counter: %s", strerror(errno));
        return -1;
    }
    return 0;
}

/* read_counter reads the stored counter into *value. */
static int read_counter(int dirfd, const char *dir, uint64_t *value)
{
    char buf[32], *end;
    ssize_t n;
    struct stat st;
    int fd = openat(dirfd, "counter", O_RDONLY | O_NONBLOCK | O_CLOEXEC);
    if (fd < 0) {
        door_log("%s/counter: %s: the counter cannot resume (give --init on a first start only)",
                 dir, strerror(errno));
        return -1;
    }
    n = fstat(fd, &st) == 0 && S_ISREG(st.st_mode) ? read(fd, buf, sizeof buf - 1) : -1;
    close(fd);
    if (n <= 0 || buf[n - 1] != '\n' || buf[0] < '0' || buf[0] > '9') {
        door_log("%s/counter: not a counter file", dir);
        return -1;
    }
    buf[n] = '\0';
    errno = 0;
    *value = strtoull(buf, &end, 10);
    if (errno != 0 || *end != '\n' || end + 1 != buf + n) {
        door_log("%s/counter: not a counter file", dir);
        return -1;
    }
    return 0;
}

/* lock_dir takes the directory's lock, so that two doors never draw from
 * one counter. */
static int lock_dir(struct door_state *s, const char *dir)
{
    struct flock fl;
    s->lockfd = openat(s->dirfd, "lock", O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    if (s->lockfd < 0) {
        door_log("%s/lock: %s", dir, strerror(errno));
        return -1;
    }
    memset(&fl, 0, sizeof fl);
    fl.l_type = F_WRLCK;
    fl.l_whence = SEEK_SET;
    if (fcntl(s->lockfd, F_SETLK, &fl) != 0) {
        door_log("%s: in use by another door process", dir);
        return -1;
    }
    return 0;
}

/* init_counter creates the counter file of a new state directory; one
 * that exists is never overwritten. */
static int init_counter(struct door_state *s, const char *dir)
{
    int fd = openat(s->dirfd, "counter", O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (fd < 0) {
        door_log("%s/counter: %s (--init is for a first start only)", dir, strerror(errno));
        return -1;
    }
    close(fd);
    if (write_counter(s->dirfd, 0) != 0) {
        door_log("%s/counter: %s", dir, strerror(errno));
        return -1;
    }
    return 0;
}

/* make_dirs creates dir and the directories above it (mode 700), as
 * mkdir -p does. */
static int make_dirs(const char *dir)
{
    char path[4096];
    size_t i, n = strlen(dir);
    if (n == 0 || n >= sizeof path) {
        door_log("--state: empty or too long");
        return -1;
    }
    memcpy(path, dir, n + 1);
    for (i = 1; i <= n; i++) {
        if (path[i] != '/' && path[i] != '\0')
            continue;
        path[i] = '\0';
        if (mkdir(path, 0700) != 0 && errno != EEXIST) {
            door_log("%s: %s", path, strerror(errno));
            return -1;
        }
        path[i] = i < n ? '/' : '\0';
    }
    return 0;
}

/* door_state_open opens (with init: creates) the state directory dir,
 * locks it and starts the counter after the value stored there. */
int door_state_open(struct door_state *s, const char *dir, int init)
{
    uint64_t last = 0;
    s->dirfd = s->lockfd = -1;
    if (init && make_dirs(dir) != 0)
        return -1;
    s->dirfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (s->dirfd < 0) {
        door_log("%s: %s", dir, strerror(errno));
        return -1;
    }
    if (lock_dir(s, dir) != 0 || (init && init_counter(s, dir) != 0) ||
        read_counter(s->dirfd, dir, &last) != 0) {
        door_state_close(s);
        return -1;
    }
    mqttsec_counter_start(&s->counter, last, DOOR_BLOCK, persist, s);
    return 0;
}

/* door_state_close releases the lock and the directory. */
void door_state_close(struct door_state *s)
{
    if (s->lockfd >= 0)
        close(s->lockfd);
    if (s->dirfd >= 0)
        close(s->dirfd);
    s->lockfd = s->dirfd = -1;
}
