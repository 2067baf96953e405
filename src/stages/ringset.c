// SPDX-License-Identifier: MIT
// Ring set: discovery of ring files in /dev/shm by pid and parentage, and draining them all.
#include "stages/ringset.h"

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/xalloc.h"

void ringset_init(struct ringset *s, pid_t root, bool follow)
{
    memset(s, 0, sizeof(*s));
    s->root = root;
    s->follow = follow;
}

void ringset_fini(struct ringset *s)
{
    for (size_t i = 0; i < s->n; i++)
        stagering_close(&s->rings[i]);
    free(s->rings);
    memset(s, 0, sizeof(*s));
}

void ringset_add(struct ringset *s, const struct stagering *r)
{
    if (s->n == s->cap) {
        s->cap = s->cap ? s->cap * 2 : 4;
        s->rings = xrealloc(s->rings, s->cap * sizeof(*s->rings));
    }
    s->rings[s->n++] = *r;
}

bool ringset_has(const struct ringset *s, pid_t pid)
{
    for (size_t i = 0; i < s->n; i++)
        if (s->rings[i].pid == pid)
            return true;
    return false;
}

/* The parent of `pid` from /proc/PID/stat, or 0. */
static pid_t parent_of(pid_t pid)
{
    char path[64], line[512];
    snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
    FILE *f = fopen(path, "r");
    if (!f)
        return 0;
    size_t n = fread(line, 1, sizeof(line) - 1, f);
    fclose(f);
    line[n] = '\0';
    const char *p = strrchr(line, ')'); /* the command name may hold spaces and parens */
    if (!p)
        return 0;
    char state;
    int ppid = 0;
    if (sscanf(p + 1, " %c %d", &state, &ppid) != 2)
        return 0;
    return ppid > 0 ? (pid_t)ppid : 0;
}

bool ringset_descends(pid_t pid, pid_t root)
{
    for (int depth = 0; pid > 1 && depth < RINGSET_MAX_DEPTH; depth++) {
        if (pid == root)
            return true;
        pid = parent_of(pid);
    }
    return pid == root;
}

static void try_open(struct ringset *s, pid_t pid)
{
    struct stagering r;
    struct errbuf ignored;
    if (s->n < RINGSET_MAX && stagering_open(&r, pid, &ignored) == 0)
        ringset_add(s, &r);
}

size_t ringset_scan(struct ringset *s)
{
    size_t before = s->n;
    if (!ringset_has(s, s->root))
        try_open(s, s->root);
    if (!s->follow)
        return s->n - before;
    DIR *d = opendir(AGENTSHM_DIR);
    if (!d)
        return s->n - before;
    size_t plen = strlen(AGENTSHM_PREFIX);
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        if (strncmp(e->d_name, AGENTSHM_PREFIX, plen) != 0)
            continue;
        char *end = NULL;
        long pid = strtol(e->d_name + plen, &end, 10);
        if (*end || pid <= 1 || pid > INT32_MAX || ringset_has(s, (pid_t)pid))
            continue;
        if (ringset_descends((pid_t)pid, s->root))
            try_open(s, (pid_t)pid);
    }
    closedir(d);
    return s->n - before;
}

size_t ringset_drain(struct ringset *s, void (*fn)(void *ctx, const struct stage_span *sp),
                     void *ctx)
{
    struct stage_span buf[256];
    size_t total = 0;
    for (size_t i = 0; i < s->n; i++) {
        size_t n;
        int rounds = 0; /* bounded, so that a busy writer cannot hold us on one ring */
        do {
            n = stagering_drain(&s->rings[i], buf, sizeof(buf) / sizeof(buf[0]));
            for (size_t k = 0; k < n; k++)
                fn(ctx, &buf[k]);
            total += n;
        } while (n == sizeof(buf) / sizeof(buf[0]) && ++rounds < RINGSET_DRAIN_ROUNDS);
    }
    return total;
}

uint64_t ringset_lost(const struct ringset *s)
{
    uint64_t lost = 0;
    for (size_t i = 0; i < s->n; i++)
        lost += s->rings[i].lost + s->rings[i].bad;
    return lost;
}

size_t ringset_list_current(struct ringset *s, struct stage_current *out, size_t max)
{
    size_t n = 0;
    for (size_t i = 0; i < s->n && n < max; i++)
        if (stagering_refresh_threads(&s->rings[i]) == 0)
            n += stagering_list_current(&s->rings[i], out + n, max - n);
    return n;
}
