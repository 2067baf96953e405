// SPDX-License-Identifier: MIT
// Time categories (categorize.h).
//
// On CPU: the kernel samples each thread every `period` of its CPU time. In the interval
// since the last round the majority of a thread's samples decides: libpython or the
// executable -> python; other user code -> native; kernel mode -> system. Samples in libc
// and the loader (malloc, memcpy) go to python while the thread holds the GIL (the
// interpreter called them) and to native otherwise (an extension that released the GIL).
// A running thread with no kernel sample in the interval (it ran less than one period, or
// it was runnable but waiting for a CPU) keeps its previous on-CPU category while it is in
// the same function; elsewhere it counts as "cpu" (a thread that just woke from a sleep must
// not inherit the native time of the call before the sleep).
// Off CPU: blocked in futex() on the GIL's condition variable or mutex -> gil, anything
// else -> system.
#include "sampler/categorize.h"

#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "profile/profile.h"
#include "util/xalloc.h"

void cat_init(struct categorizer *c, pid_t pid, const char *python_path, uint64_t period_ns)
{
    memset(c, 0, sizeof(*c));
    c->pid = pid;
    hmap_init(&c->by_tid);
    perf_open(&c->perf, pid, python_path, period_ns);
}

void cat_fini(struct categorizer *c)
{
    for (size_t i = 0; i < c->n; i++)
        if (c->v[i].syscall_fd >= 0)
            close(c->v[i].syscall_fd);
    free(c->v);
    hmap_fini(&c->by_tid);
    perf_close(&c->perf);
    memset(c, 0, sizeof(*c));
}

void cat_round(struct categorizer *c, uint64_t now_ns)
{
    c->round++;
    perf_drain(&c->perf, now_ns);
}

static struct cat_thread *thread_of(struct categorizer *c, pid_t tid)
{
    uint64_t v;
    if (hmap_get(&c->by_tid, (uint64_t)tid, &v))
        return &c->v[v - 1];
    if (c->n == c->cap) {
        c->cap = c->cap ? c->cap * 2 : 16;
        c->v = xrealloc(c->v, c->cap * sizeof(*c->v));
    }
    c->v[c->n] = (struct cat_thread){.tid = tid, .syscall_fd = -1, .last = CAT_CPU};
    c->n++;
    hmap_put(&c->by_tid, (uint64_t)tid, c->n);
    return &c->v[c->n - 1];
}

bool cat_parse_futex_wait(const char *line, uint64_t lo, uint64_t hi)
{
    /* "NR ARG1 ARG2 ... SP PC" with arguments in hex; "running" or "-1 SP PC" otherwise. */
    char *end;
    long nr = strtol(line, &end, 10);
    if (end == line || nr != SYS_futex)
        return false;
    uint64_t uaddr = strtoull(end, &end, 16);
    return uaddr >= lo && uaddr < hi;
}

static bool waits_on_gil(struct categorizer *c, struct cat_thread *t, uint64_t lo, uint64_t hi)
{
    if (!lo || hi <= lo)
        return false;
    if (t->syscall_fd < 0) {
        char path[64];
        snprintf(path, sizeof(path), "/proc/%d/task/%d/syscall", (int)c->pid, (int)t->tid);
        t->syscall_fd = open(path, O_RDONLY | O_CLOEXEC);
        if (t->syscall_fd < 0)
            return false;
    }
    char line[256];
    ssize_t n = pread(t->syscall_fd, line, sizeof(line) - 1, 0);
    c->syscall_reads++;
    if (n <= 0)
        return false;
    line[n] = 0;
    return cat_parse_futex_wait(line, lo, hi);
}

static uint8_t from_tally(const struct perf_tally *t, bool gil)
{
    uint32_t py = t->n[PERF_PYTHON], nat = t->n[PERF_NATIVE], sys = t->n[PERF_KERNEL];
    if (gil)
        py += t->n[PERF_LIBC];
    else
        nat += t->n[PERF_LIBC];
    if (!py && !nat && !sys)
        return CAT_NONE;
    /* The majority; on a tie the newest sample's side. */
    uint8_t last = t->last == PERF_KERNEL   ? CAT_SYSTEM
                   : t->last == PERF_PYTHON ? CAT_PYTHON
                   : t->last == PERF_NATIVE ? CAT_NATIVE
                   : gil                    ? CAT_PYTHON
                                            : CAT_NATIVE;
    uint32_t best = py > nat ? py : nat;
    best = sys > best ? sys : best;
    uint32_t lastn = last == CAT_PYTHON ? py : last == CAT_NATIVE ? nat : sys;
    if (lastn == best)
        return last;
    return best == py ? CAT_PYTHON : best == nat ? CAT_NATIVE : CAT_SYSTEM;
}

uint8_t cat_of(struct categorizer *c, pid_t tid, char state, bool gil, uint64_t gil_lo,
               uint64_t gil_hi, uint64_t leaf)
{
    struct cat_thread *t = thread_of(c, tid);
    t->live = true;
    perf_track(&c->perf, tid);
    struct perf_tally tally;
    bool have = perf_take(&c->perf, tid, &tally);
    if (state != 'R') {
        if (!gil && waits_on_gil(c, t, gil_lo, gil_hi))
            return CAT_GIL;
        return CAT_SYSTEM;
    }
    if (!c->perf.on)
        return CAT_CPU;
    uint8_t cat = have ? from_tally(&tally, gil) : CAT_NONE;
    if (cat != CAT_NONE) {
        t->last = cat;
        t->last_leaf = leaf;
        t->last_round = c->round;
        return cat;
    }
    return t->last_leaf == leaf ? t->last : CAT_CPU;
}

void cat_prune(struct categorizer *c)
{
    size_t k = 0;
    hmap_clear(&c->by_tid);
    for (size_t i = 0; i < c->n; i++) {
        struct cat_thread *t = &c->v[i];
        if (!t->live) {
            if (t->syscall_fd >= 0)
                close(t->syscall_fd);
            continue;
        }
        t->live = false;
        c->v[k++] = *t;
        hmap_put(&c->by_tid, (uint64_t)t->tid, k);
    }
    c->n = k;
    perf_prune(&c->perf);
}

const char *cat_note(const struct categorizer *c)
{
    if (!c->perf.on)
        return c->perf.why;
    return c->perf.kernel ? "perf task-clock samples and /proc"
                          : "perf task-clock samples (user mode only) and /proc";
}
