// SPDX-License-Identifier: MIT
// What blocked threads wait for (waits.h). The system call comes from /proc/PID/task/TID/
// syscall ("NR ARG1 ... ARG6 SP PC" with the arguments in hex); a descriptor's kind from the
// link /proc/PID/fd/N names ("socket:[INODE]", "pipe:[INODE]", "anon_inode:[eventfd]", a
// path); a socket is a Unix one when its inode is in /proc/PID/net/unix. For poll and select
// the descriptors are read from the thread's own arguments in its memory; for epoll, from the
// set's /proc/PID/fdinfo/EPFD ("tfd: N" lines). Kinds are cached per descriptor for a few
// rounds: a descriptor closed and reused for another kind is misread for at most that long.
#include "target/waits.h"

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "target/mem.h"

#define FD_TTL_ROUNDS 64    /* rounds a cached descriptor kind is trusted */
#define UNIX_TTL_ROUNDS 16  /* rounds between reads of the Unix socket table */
#define POLL_MAX 64         /* descriptors of one poll() looked at */
#define SELECT_MAX 1024     /* FD_SETSIZE */
#define EPOLL_TEXT_MAX 8192 /* bytes of an epoll fdinfo read */
#define EPOLL_TTL_ROUNDS 16 /* rounds an epoll set's kind is trusted */

void waits_init(struct waits *w, pid_t pid)
{
    memset(w, 0, sizeof(*w));
    w->pid = pid;
    hmap_init(&w->fds);
    hmap_init(&w->unix_ino);
}

void waits_fini(struct waits *w)
{
    hmap_fini(&w->fds);
    hmap_fini(&w->unix_ino);
    memset(w, 0, sizeof(*w));
}

void waits_round(struct waits *w)
{
    w->round++;
}

bool waits_parse(const char *line, struct wait_call *out)
{
    memset(out, 0, sizeof(*out));
    out->nr = -1;
    if (strncmp(line, "running", 7) == 0) {
        out->running = true;
        return true;
    }
    char *end;
    long nr = strtol(line, &end, 10);
    if (end == line)
        return false;
    out->nr = nr;
    for (int i = 0; i < 6 && nr >= 0; i++) {
        const char *p = end;
        out->args[i] = strtoull(p, &end, 16);
        if (end == p)
            return false;
    }
    return true;
}

static const char *kind_name(enum wait_kind k)
{
    switch (k) {
    case WAIT_NET:
        return "TCP/UDP socket";
    case WAIT_UNIX:
        return "Unix socket";
    case WAIT_IPC:
        return "pipe";
    case WAIT_FILE:
        return "file";
    case WAIT_LOCK:
        return "eventfd";
    case WAIT_IDLE:
        return "terminal";
    case WAIT_SLEEP:
        return "timeout only";
    default:
        return "other";
    }
}

enum wait_kind waits_kind_of_link(const char *link, bool (*is_unix)(void *, uint64_t), void *arg)
{
    /* Any socket is network I/O: a Unix socket is as often a local service (a database, a
     * model server) as another process of the program; pipes are the inter-process kind. */
    if (strncmp(link, "socket:[", 8) == 0) {
        uint64_t ino = strtoull(link + 8, NULL, 10);
        return is_unix && is_unix(arg, ino) ? WAIT_UNIX : WAIT_NET;
    }
    if (strncmp(link, "pipe:[", 6) == 0)
        return WAIT_IPC;
    if (strcmp(link, "anon_inode:[eventfd]") == 0)
        return WAIT_LOCK;
    if (strcmp(link, "anon_inode:[timerfd]") == 0)
        return WAIT_SLEEP;
    if (strncmp(link, "/dev/pts/", 9) == 0 || strncmp(link, "/dev/tty", 8) == 0 ||
        strcmp(link, "/dev/console") == 0)
        return WAIT_IDLE;
    if (link[0] == '/')
        return WAIT_FILE;
    return WAIT_OTHER;
}

/* Reads /proc/PID/net/unix into the set of Unix socket inodes (column 7). */
static void load_unix(struct waits *w)
{
    char path[64];
    snprintf(path, sizeof(path), "/proc/%d/net/unix", (int)w->pid);
    FILE *f = fopen(path, "re");
    w->unix_loaded = w->round ? w->round : 1;
    w->reads++;
    if (!f)
        return;
    hmap_clear(&w->unix_ino);
    char line[512];
    bool header = true;
    while (fgets(line, sizeof(line), f)) {
        if (header) {
            header = false;
            continue;
        }
        /* Num RefCount Protocol Flags Type St Inode [Path] */
        char *p = line;
        for (int col = 0; col < 6 && p; col++) {
            p = strchr(p, ' ');
            while (p && *p == ' ')
                p++;
        }
        uint64_t ino = p ? strtoull(p, NULL, 10) : 0;
        if (ino)
            hmap_put(&w->unix_ino, ino, 1);
    }
    fclose(f);
}

static bool is_unix(void *arg, uint64_t ino)
{
    struct waits *w = arg;
    uint64_t v;
    if (hmap_get(&w->unix_ino, ino, &v))
        return true;
    /* A socket made since the table was read: read it again, at most every few rounds. */
    if (!w->unix_loaded || w->round - w->unix_loaded >= UNIX_TTL_ROUNDS) {
        load_unix(w);
        return hmap_get(&w->unix_ino, ino, &v);
    }
    return false;
}

static enum wait_kind fd_kind(struct waits *w, int fd)
{
    if (fd < 0)
        return WAIT_UNKNOWN;
    uint64_t key = (uint64_t)fd + 1, v;
    if (hmap_get(&w->fds, key, &v) && w->round - (v >> 8) < FD_TTL_ROUNDS)
        return (enum wait_kind)(v & 0xff);
    char path[64], link[256];
    snprintf(path, sizeof(path), "/proc/%d/fd/%d", (int)w->pid, fd);
    ssize_t n = readlink(path, link, sizeof(link) - 1);
    w->reads++;
    enum wait_kind k = WAIT_UNKNOWN;
    if (n > 0) {
        link[n] = 0;
        k = waits_kind_of_link(link, is_unix, w);
    }
    hmap_put(&w->fds, key, (w->round << 8) | (uint64_t)k);
    return k;
}

/* The kind of a set of descriptors: network if any is, else another process, a file, a
 * terminal, an eventfd; no descriptor at all is a sleep. */
struct fdset_kind {
    unsigned n[WAIT_NKINDS];
};

static void fdset_add(struct fdset_kind *s, enum wait_kind k)
{
    s->n[k]++;
}

static enum wait_kind fdset_result(const struct fdset_kind *s)
{
    static const enum wait_kind order[] = {WAIT_NET,   WAIT_UNIX,  WAIT_IPC,
                                           WAIT_FILE,  WAIT_IDLE,  WAIT_LOCK,
                                           WAIT_OTHER, WAIT_SLEEP, WAIT_UNKNOWN};
    for (size_t i = 0; i < sizeof(order) / sizeof(order[0]); i++)
        if (s->n[order[i]])
            return order[i];
    return WAIT_SLEEP;
}

static enum wait_kind poll_kind(struct waits *w, uint64_t fds, uint64_t nfds)
{
    struct fdset_kind s = {{0}};
    if (!nfds)
        return WAIT_SLEEP;
    struct {
        int32_t fd;
        int16_t events, revents;
    } pfd[POLL_MAX];
    size_t n = nfds < POLL_MAX ? (size_t)nfds : POLL_MAX;
    w->reads++;
    if (mem_read(w->pid, fds, pfd, n * sizeof(pfd[0])))
        return WAIT_UNKNOWN;
    for (size_t i = 0; i < n; i++)
        if (pfd[i].fd >= 0)
            fdset_add(&s, fd_kind(w, pfd[i].fd));
    return fdset_result(&s);
}

static void select_add(struct waits *w, struct fdset_kind *s, uint64_t set, size_t nfds)
{
    uint8_t bits[SELECT_MAX / 8];
    size_t bytes = (nfds + 7) / 8;
    if (!set || !bytes)
        return;
    w->reads++;
    if (mem_read(w->pid, set, bits, bytes))
        return;
    for (size_t fd = 0; fd < nfds; fd++)
        if (bits[fd / 8] & (1u << (fd % 8)))
            fdset_add(s, fd_kind(w, (int)fd));
}

static enum wait_kind select_kind(struct waits *w, const struct wait_call *c)
{
    struct fdset_kind s = {{0}};
    size_t nfds = c->args[0] < SELECT_MAX ? (size_t)c->args[0] : SELECT_MAX;
    select_add(w, &s, c->args[1], nfds);
    select_add(w, &s, c->args[2], nfds);
    return fdset_result(&s);
}

static enum wait_kind epoll_read(struct waits *w, int epfd);

static enum wait_kind epoll_kind(struct waits *w, int epfd)
{
    /* An event loop waits in the same epoll set round after round: its kind is cached like a
     * descriptor's (its members change as connections come and go, so not for long). */
    uint64_t key = ((uint64_t)1 << 40) | (uint64_t)(uint32_t)epfd, v;
    if (hmap_get(&w->fds, key, &v) && w->round - (v >> 8) < EPOLL_TTL_ROUNDS)
        return (enum wait_kind)(v & 0xff);
    enum wait_kind k = epoll_read(w, epfd);
    hmap_put(&w->fds, key, (w->round << 8) | (uint64_t)k);
    return k;
}

static enum wait_kind epoll_read(struct waits *w, int epfd)
{
    char path[64], text[EPOLL_TEXT_MAX];
    snprintf(path, sizeof(path), "/proc/%d/fdinfo/%d", (int)w->pid, epfd);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    w->reads++;
    if (fd < 0)
        return WAIT_UNKNOWN;
    ssize_t n = read(fd, text, sizeof(text) - 1);
    close(fd);
    if (n <= 0)
        return WAIT_UNKNOWN;
    text[n] = 0;
    struct fdset_kind s = {{0}};
    for (const char *p = strstr(text, "tfd:"); p; p = strstr(p + 4, "tfd:"))
        fdset_add(&s, fd_kind(w, (int)strtol(p + 4, NULL, 10)));
    return fdset_result(&s);
}

/* What system call `c` waits on; `what` names it for the label. */
static enum wait_kind classify(struct waits *w, const struct wait_call *c, const char **what)
{
    long nr = c->nr;
    switch (nr) {
    case SYS_read:
    case SYS_readv:
    case SYS_pread64:
    case SYS_preadv:
    case SYS_write:
    case SYS_writev:
    case SYS_pwrite64:
    case SYS_recvfrom:
    case SYS_recvmsg:
    case SYS_recvmmsg:
    case SYS_sendto:
    case SYS_sendmsg:
    case SYS_sendmmsg:
    case SYS_connect:
        *what = nr == SYS_recvfrom || nr == SYS_recvmsg || nr == SYS_recvmmsg ? "recv"
                : nr == SYS_sendto || nr == SYS_sendmsg || nr == SYS_sendmmsg ? "send"
                : nr == SYS_connect                                           ? "connect"
                : nr == SYS_write || nr == SYS_writev || nr == SYS_pwrite64   ? "write"
                                                                              : "read";
        return fd_kind(w, (int)c->args[0]);
    case SYS_accept:
    case SYS_accept4:
        *what = "accept";
        return WAIT_IDLE;
#ifdef SYS_poll
    case SYS_poll:
#endif
    case SYS_ppoll:
        *what = "poll";
        return poll_kind(w, c->args[0], c->args[1]);
#ifdef SYS_select
    case SYS_select:
#endif
    case SYS_pselect6:
        *what = "select";
        return select_kind(w, c);
#ifdef SYS_epoll_wait
    case SYS_epoll_wait:
#endif
    case SYS_epoll_pwait:
#ifdef SYS_epoll_pwait2
    case SYS_epoll_pwait2:
#endif
        *what = "epoll_wait";
        return epoll_kind(w, (int)c->args[0]);
    case SYS_nanosleep:
    case SYS_clock_nanosleep:
#ifdef SYS_pause
    case SYS_pause:
#endif
        *what = nr == SYS_nanosleep         ? "nanosleep"
                : nr == SYS_clock_nanosleep ? "clock_nanosleep"
                                            : "pause";
        return WAIT_SLEEP;
    case SYS_wait4:
    case SYS_waitid:
        *what = "wait for a child";
        return WAIT_IPC;
    case SYS_futex:
        *what = "futex";
        return WAIT_FUTEX;
    case SYS_flock:
        *what = "flock";
        return WAIT_LOCK;
    case SYS_fsync:
    case SYS_fdatasync:
    case SYS_openat:
        *what = nr == SYS_openat ? "openat" : "fsync";
        return WAIT_FILE;
    default:
        *what = "syscall";
        return WAIT_OTHER;
    }
}

enum wait_kind waits_classify(struct waits *w, const struct wait_call *call, char *label)
{
    label[0] = 0;
    if (call->running || call->nr < 0)
        return WAIT_UNKNOWN;
    const char *what = "syscall";
    enum wait_kind k = classify(w, call, &what);
    if (k == WAIT_FUTEX || k == WAIT_SLEEP || k == WAIT_IDLE || k == WAIT_OTHER ||
        call->nr == SYS_wait4 || call->nr == SYS_waitid || call->nr == SYS_flock ||
        call->nr == SYS_fsync || call->nr == SYS_fdatasync || call->nr == SYS_openat)
        snprintf(label, WAITS_LABEL_MAX, "%s", k == WAIT_OTHER ? "another system call" : what);
    else
        snprintf(label, WAITS_LABEL_MAX, "%s: %s", what, kind_name(k));
    return k;
}
