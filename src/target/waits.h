// SPDX-License-Identifier: MIT
// What a blocked thread waits for, from the kernel's own view: the system call it sleeps in
// (/proc/PID/task/TID/syscall) and what its file descriptors are (/proc/PID/fd, the fdinfo
// of an epoll set, the pollfd array or fd_sets in the thread's memory). Nothing is stopped.
#ifndef CRUX_WAITS_H
#define CRUX_WAITS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "util/hmap.h"

/* What a wait is on. */
enum wait_kind {
    WAIT_UNKNOWN = 0, /* not blocked in a system call we know, or unreadable */
    WAIT_NET = 1,     /* a TCP/UDP socket */
    WAIT_IPC = 2,     /* another process: a pipe, a child's exit */
    WAIT_FILE = 3,    /* a file or a device other than a terminal, or disk (state D) */
    WAIT_LOCK = 4,    /* a futex (lock, condition, queue) or an eventfd */
    WAIT_SLEEP = 5,   /* a sleep, or a poll with only a timeout */
    WAIT_IDLE = 6,    /* work from outside: accept(), a terminal read */
    WAIT_FUTEX = 7,   /* a futex; the caller decides lock or GIL from its address */
    WAIT_OTHER = 8,   /* another system call */
    WAIT_UNIX = 9,    /* a Unix socket (network I/O to a local peer) */
    WAIT_NKINDS = 10,
};

/* One parsed /proc/.../syscall line. */
struct wait_call {
    long nr; /* system call number; -1 not in a system call */
    uint64_t args[6];
    bool running; /* the line was "running" */
};

/* File descriptor kinds, cached per process. */
struct waits {
    pid_t pid;
    struct hmap fds;      /* fd + 1 -> kind (low byte) | seen round << 8 */
    struct hmap unix_ino; /* inodes of Unix sockets (from /proc/PID/net/unix) */
    uint64_t unix_loaded; /* round the Unix table was last read */
    uint64_t round;       /* bumped by waits_round */
    uint64_t reads;       /* /proc and memory reads made (for --stats) */
};

#define WAITS_LABEL_MAX 64

void waits_init(struct waits *w, pid_t pid);
void waits_fini(struct waits *w);
/* Called once per sampling round; cached descriptor kinds expire after some rounds. */
void waits_round(struct waits *w);
/* Parses a syscall line; false when it is not one. */
bool waits_parse(const char *line, struct wait_call *out);
/* What `call` (of a thread of w->pid) waits on, with a label such as "recv: TCP socket"
 * written to `label` (WAITS_LABEL_MAX bytes). Futex waits come back as WAIT_FUTEX. */
enum wait_kind waits_classify(struct waits *w, const struct wait_call *call, char *label);
/* The kind of one link text of /proc/PID/fd/N ("socket:[123]", "pipe:[4]", "/path");
 * `is_unix` says whether a socket inode is a Unix socket. For tests. */
enum wait_kind waits_kind_of_link(const char *link, bool (*is_unix)(void *, uint64_t), void *arg);

#endif
