// SPDX-License-Identifier: MIT
// /proc readers for processes and threads.
#include "target/proc.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/uio.h>
#include <unistd.h>

#include "util/xalloc.h"

struct proc_statfd {
    pid_t tid;
    int fd;
};

static ssize_t read_small(const char *path, char *out, size_t n)
{
    if (n < 2)
        return -EINVAL;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return -errno;
    ssize_t got = read(fd, out, n - 1);
    int e = errno;
    close(fd);
    if (got < 0)
        return -e;
    out[got] = '\0';
    return got;
}

int proc_check(pid_t pid, struct errbuf *eb)
{
    char path[64];
    if (pid <= 0)
        return errbuf_set(eb, ERR_PROC_GONE, "no such process: %d", (int)pid);
    snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
    char line[512];
    ssize_t n = read_small(path, line, sizeof(line));
    if (n < 0)
        return errbuf_set(eb, ERR_PROC_GONE, "no such process: %d", (int)pid);
    if (proc_parse_stat_state(line, (size_t)n) == 'Z')
        return errbuf_set(eb, ERR_PROC_GONE, "process %d has exited (zombie)", (int)pid);
    /* Reading one byte of its memory tells whether ptrace access is allowed. */
    char dummy;
    struct iovec l = {&dummy, 1};
    struct iovec r = {(void *)0x1000, 1};
    if (process_vm_readv(pid, &l, 1, &r, 1, 0) < 0 && (errno == EPERM || errno == EACCES))
        return errbuf_set(eb, ERR_PERM, "permission denied reading process %d", (int)pid);
    return 0;
}

bool proc_alive(pid_t pid)
{
    char st;
    if (proc_task_state(pid, pid, &st))
        return false;
    return st != 'Z' && st != 'X';
}

int proc_tasks(pid_t pid, pid_t *tids, size_t max, size_t *n)
{
    char path[64];
    snprintf(path, sizeof(path), "/proc/%d/task", (int)pid);
    DIR *d = opendir(path);
    if (!d)
        return errno == ENOENT ? ERR_PROC_GONE : err_from_errno(errno);
    size_t k = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL && k < max) {
        char *end;
        long v = strtol(e->d_name, &end, 10);
        if (*end || v <= 0)
            continue;
        tids[k++] = (pid_t)v;
    }
    closedir(d);
    *n = k;
    return 0;
}

char proc_parse_stat_state(const char *line, size_t len)
{
    /* "TID (comm) S ...": comm may hold spaces and ')', so parse after the last ')'. */
    const char *close = NULL;
    for (size_t i = 0; i < len; i++)
        if (line[i] == ')')
            close = line + i;
    if (!close || (size_t)(close - line) + 2 >= len)
        return '?';
    return close[2];
}

int proc_task_state(pid_t pid, pid_t tid, char *state)
{
    char path[64], line[512];
    snprintf(path, sizeof(path), "/proc/%d/task/%d/stat", (int)pid, (int)tid);
    ssize_t n = read_small(path, line, sizeof(line));
    if (n < 0)
        return ERR_PROC_GONE;
    *state = proc_parse_stat_state(line, (size_t)n);
    return 0;
}

int proc_task_comm(pid_t pid, pid_t tid, char *out, size_t n)
{
    char path[64];
    snprintf(path, sizeof(path), "/proc/%d/task/%d/comm", (int)pid, (int)tid);
    ssize_t got = read_small(path, out, n);
    if (got < 0)
        return ERR_PROC_GONE;
    if (got > 0 && out[got - 1] == '\n')
        out[got - 1] = '\0';
    return 0;
}

int proc_cmdline(pid_t pid, char *out, size_t n)
{
    char path[64];
    snprintf(path, sizeof(path), "/proc/%d/cmdline", (int)pid);
    ssize_t got = read_small(path, out, n);
    if (got < 0)
        return ERR_PROC_GONE;
    for (ssize_t i = 0; i < got; i++)
        if (out[i] == '\0')
            out[i] = ' ';
    while (got > 0 && out[got - 1] == ' ')
        out[--got] = '\0';
    return 0;
}

pid_t proc_nspid(pid_t pid)
{
    char path[64], text[4096];
    snprintf(path, sizeof(path), "/proc/%d/status", (int)pid);
    if (read_small(path, text, sizeof(text)) < 0)
        return pid;
    const char *p = strstr(text, "\nNSpid:");
    if (!p)
        return pid;
    p += 7;
    pid_t last = pid;
    for (;;) {
        char *end;
        long v = strtol(p, &end, 10);
        if (end == p)
            break;
        last = (pid_t)v;
        p = end;
        if (*p == '\n')
            break;
    }
    return last;
}

void proc_statcache_init(struct proc_statcache *c, pid_t pid)
{
    memset(c, 0, sizeof(*c));
    c->pid = pid;
}

void proc_statcache_fini(struct proc_statcache *c)
{
    for (size_t i = 0; i < c->n; i++)
        close(c->v[i].fd);
    free(c->v);
    memset(c, 0, sizeof(*c));
}

int proc_task_open(pid_t pid, pid_t tid, const char *name)
{
    char path[96];
    snprintf(path, sizeof(path), "/proc/%d/task/%d/%s", (int)pid, (int)tid, name);
    return open(path, O_RDONLY | O_CLOEXEC);
}

char proc_statcache_state(struct proc_statcache *c, pid_t tid)
{
    size_t i = 0;
    while (i < c->n && c->v[i].tid != tid)
        i++;
    if (i == c->n) {
        int fd = proc_task_open(c->pid, tid, "stat");
        if (fd < 0)
            return '?';
        if (c->n == c->cap) {
            c->cap = c->cap ? c->cap * 2 : 16;
            c->v = xrealloc(c->v, c->cap * sizeof(*c->v));
        }
        c->v[c->n++] = (struct proc_statfd){tid, fd};
    }
    char line[512];
    ssize_t n = pread(c->v[i].fd, line, sizeof(line) - 1, 0);
    if (n <= 0) {
        /* The thread exited (ESRCH); forget it so a reused tid gets a fresh file. */
        close(c->v[i].fd);
        c->v[i] = c->v[--c->n];
        return '?';
    }
    return proc_parse_stat_state(line, (size_t)n);
}

void proc_statcache_prune(struct proc_statcache *c, const pid_t *tids, size_t n)
{
    size_t i = 0;
    while (i < c->n) {
        bool keep = false;
        for (size_t j = 0; j < n && !keep; j++)
            keep = tids[j] == c->v[i].tid;
        if (keep) {
            i++;
            continue;
        }
        close(c->v[i].fd);
        c->v[i] = c->v[--c->n];
    }
}
