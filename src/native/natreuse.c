// SPDX-License-Identifier: MIT
// Reusing a thread's last native stack without stopping it (natreuse.h).
//
// Why a stopped thread's first run after the release is accounted for, and what that assumes:
// a ptrace stop of a thread blocked in a system call interrupts the call (the kernel returns
// -ERESTART* inside, reports the stop before it rewinds the call), and on release the thread
// is switched in once and executes the same `syscall` instruction again, with the same
// registers (or restart_syscall for a call that keeps its state in the restart block: a futex
// wait or a sleep with a relative timeout). If the resumed call blocks, the thread's stack is
// the one read while stopped. So after a stop that interrupted a call, the first look wants:
// the thread blocked now in that same call (number, the six argument registers, stack pointer
// and instruction pointer: /proc/PID/task/TID/syscall, read first), switched in exactly once
// since the stop (the schedstat count, read last: no run slips between the reads), the same
// bytes on its stack from the stack pointer up as far as the walk read them (return
// addresses and saved registers: what the unwinder follows), and the same Python frames as
// read while stopped. What this cannot exclude: within that one stretch on a CPU the resumed
// call returned at once and the thread entered a blocking call again with all of that equal,
// without being switched out in between, and a register the walk took live (not restored
// from the stack) differed; a loop around the wait re-enters so, and then its stack is the
// same. After that first look the count alone decides: not switched in since, not run since.
#include "native/natreuse.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "target/mem.h"
#include "target/proc.h"
#include "util/xalloc.h"

/* The kernel's internal "resume this call" returns (include/linux/errno.h), seen in rax by a
 * tracer that stops a thread inside a call. */
#define ERESTARTSYS 512
#define ERESTARTNOINTR 513
#define ERESTARTNOHAND 514
#define ERESTART_RESTARTBLOCK 516

void natreuse_init(struct natreuse *nr, pid_t pid)
{
    memset(nr, 0, sizeof(*nr));
    nr->pid = pid;
    hmap_init(&nr->by_tid);
    nr->scratch = xmalloc(NATREUSE_STACK_MAX);
}

static void close_thread(struct natreuse_thread *t)
{
    if (t->sched_fd >= 0)
        close(t->sched_fd);
    if (t->sys_fd >= 0)
        close(t->sys_fd);
    free(t->py);
    free(t->bytes);
}

void natreuse_fini(struct natreuse *nr)
{
    for (size_t i = 0; i < nr->n; i++)
        close_thread(&nr->v[i]);
    free(nr->v);
    free(nr->scratch);
    hmap_fini(&nr->by_tid);
    memset(nr, 0, sizeof(*nr));
}

/* The record of `tid`, made (with its files opened) on first use. */
static struct natreuse_thread *thread_of(struct natreuse *nr, pid_t tid)
{
    uint64_t v;
    if (hmap_get(&nr->by_tid, (uint64_t)tid, &v))
        return &nr->v[v - 1];
    if (nr->n == nr->cap) {
        nr->cap = nr->cap ? nr->cap * 2 : 16;
        nr->v = xrealloc(nr->v, nr->cap * sizeof(*nr->v));
    }
    nr->v[nr->n] = (struct natreuse_thread){
        .tid = tid,
        .sched_fd = proc_task_open(nr->pid, tid, "schedstat"),
        .sys_fd = proc_task_open(nr->pid, tid, "syscall"),
    };
    nr->n++;
    hmap_put(&nr->by_tid, (uint64_t)tid, nr->n);
    return &nr->v[nr->n - 1];
}

/* How many times the thread was switched onto a CPU (schedstat's third field). */
static bool read_switches(const struct natreuse_thread *t, uint64_t *out)
{
    char text[96];
    if (t->sched_fd < 0)
        return false;
    ssize_t n = pread(t->sched_fd, text, sizeof(text) - 1, 0);
    if (n <= 0)
        return false; /* ESRCH: the thread exited */
    text[n] = 0;
    char *p = text, *end;
    for (int field = 0; field < 2; field++, p = end) {
        (void)strtoull(p, &end, 10);
        if (end == p)
            return false;
    }
    *out = strtoull(p, &end, 10);
    return end != p;
}

bool natreuse_parse_syscall(const char *line, struct natreuse_call *c)
{
    /* "NR ARG1 .. ARG6 SP PC", numbers after NR in hex; "running" or "-1 SP PC" otherwise. */
    char *end;
    long nr = strtol(line, &end, 10);
    if (end == line || nr < 0)
        return false;
    memset(c, 0, sizeof(*c));
    c->nr = nr;
    uint64_t v[8];
    const char *p = end;
    for (int i = 0; i < 8; i++, p = end) {
        v[i] = strtoull(p, &end, 16);
        if (end == p)
            return false;
    }
    memcpy(c->args, v, sizeof(c->args));
    c->sp = v[6];
    c->pc = v[7];
    return true;
}

static bool resumable(int64_t ret)
{
    return ret == -ERESTARTSYS || ret == -ERESTARTNOINTR || ret == -ERESTARTNOHAND ||
           ret == -ERESTART_RESTARTBLOCK;
}

bool natreuse_same_call(const struct natreuse_call *at, const struct natreuse_call *now)
{
    if (at->nr < 0 || !resumable(at->ret))
        return false;
    bool nr_ok = now->nr == at->nr;
#ifdef SYS_restart_syscall
    nr_ok = nr_ok || (at->ret == -ERESTART_RESTARTBLOCK && now->nr == SYS_restart_syscall);
#endif
    return nr_ok && now->sp == at->sp && now->pc == at->pc &&
           memcmp(now->args, at->args, sizeof(at->args)) == 0;
}

/* Whether the thread is blocked, now, in the call it was stopped in. */
static bool blocked_in_call(const struct natreuse_thread *t)
{
    char line[256];
    if (t->sys_fd < 0)
        return false;
    ssize_t n = pread(t->sys_fd, line, sizeof(line) - 1, 0);
    if (n <= 0)
        return false;
    line[n] = 0;
    struct natreuse_call now;
    return natreuse_parse_syscall(line, &now) && natreuse_same_call(&t->call, &now);
}

/* Whether the stack the walk read (from the stack pointer up) holds the same bytes now. */
static bool same_stack(const struct natreuse *nr, const struct natreuse_thread *t)
{
    if (mem_read(nr->pid, t->call.sp, nr->scratch, t->nbytes) != 0)
        return false;
    return memcmp(nr->scratch, t->bytes, t->nbytes) == 0;
}

static bool same_python(const struct natreuse_thread *t, const struct pyreader *r,
                        const struct pythread *th)
{
    if (th->err || th->nframes != t->npy || th->truncated != t->py_truncated)
        return false;
    for (uint32_t k = 0; k < th->nframes; k++) {
        const struct pyframe *f = &r->frames[th->first + k];
        const struct natreuse_pyf *g = &t->py[k];
        if (pyreader_code(r, f)->id != g->code || f->loc != g->loc || f->entry != g->entry)
            return false;
    }
    return true;
}

bool natreuse_check(struct natreuse *nr, pid_t tid, const struct pyreader *r,
                    const struct pythread *th, uint32_t root, uint32_t *stack)
{
    struct natreuse_thread *t = thread_of(nr, tid);
    t->live = true;
    if (!t->have || root != t->root || !same_python(t, r, th))
        return false;
    /* The count first, as the cheap test of a thread that ran since (most that ran at all);
     * on a first look then the call and the stack, and the count again last: a run after
     * the call was read raises it. */
    uint64_t sw;
    bool same = read_switches(t, &sw) && sw == t->switches;
    if (same && !t->settled)
        same =
            blocked_in_call(t) && same_stack(nr, t) && read_switches(t, &sw) && sw == t->switches;
    if (!same) {
        t->have = false; /* it ran: only a stop tells its stack now */
        return false;
    }
    t->settled = true;
    nr->reused++;
    *stack = t->stack;
    return true;
}

void natreuse_stopped(struct natreuse *nr, pid_t tid, const struct natreuse_call *call)
{
    /* Only a thread natreuse_check looked at: its files are open, so that none is opened
     * while the thread is stopped (crux dump's one sample does not ask). */
    uint64_t v;
    if (!hmap_get(&nr->by_tid, (uint64_t)tid, &v))
        return;
    struct natreuse_thread *t = &nr->v[v - 1];
    t->live = true;
    t->have = false;
    t->settled = false;
    t->call = *call;
    t->nbytes = 0;
    uint64_t sw;
    /* Its release switches it in once more, to resume the call. A thread stopped outside a
     * call runs on after the release: nothing to keep. */
    t->stopped = call->nr >= 0 && resumable(call->ret) && read_switches(t, &sw);
    if (t->stopped)
        t->switches = sw + 1;
}

/* The record of `tid` when natreuse_stopped kept its stop, else NULL. */
static struct natreuse_thread *stopped_thread(struct natreuse *nr, pid_t tid)
{
    uint64_t v;
    if (!hmap_get(&nr->by_tid, (uint64_t)tid, &v) || !nr->v[v - 1].stopped)
        return NULL;
    return &nr->v[v - 1];
}

void natreuse_stack(struct natreuse *nr, pid_t tid, const uint8_t *bytes, size_t n, bool complete)
{
    struct natreuse_thread *t = stopped_thread(nr, tid);
    if (!t)
        return;
    if (!complete || n > NATREUSE_STACK_MAX) {
        t->stopped = false;
        return;
    }
    if (n > t->capbytes) {
        t->capbytes = n;
        t->bytes = xrealloc(t->bytes, n);
    }
    memcpy(t->bytes, bytes, n);
    t->nbytes = n;
}

void natreuse_keep(struct natreuse *nr, pid_t tid, const struct pyreader *r,
                   const struct pythread *th, uint32_t root, uint32_t stack)
{
    struct natreuse_thread *t = stopped_thread(nr, tid);
    if (!t || !t->nbytes || th->err)
        return;
    t->stopped = false;
    if (th->nframes > t->cappy) {
        t->cappy = th->nframes;
        t->py = xrealloc(t->py, t->cappy * sizeof(*t->py));
    }
    for (uint32_t k = 0; k < th->nframes; k++) {
        const struct pyframe *f = &r->frames[th->first + k];
        t->py[k] = (struct natreuse_pyf){pyreader_code(r, f)->id, f->loc, f->entry};
    }
    t->npy = th->nframes;
    t->py_truncated = th->truncated;
    t->root = root;
    t->stack = stack;
    t->have = true;
}

void natreuse_forget(struct natreuse *nr)
{
    for (size_t i = 0; i < nr->n; i++) {
        nr->v[i].have = false;
        nr->v[i].stopped = false;
    }
}

void natreuse_prune(struct natreuse *nr)
{
    size_t k = 0;
    hmap_clear(&nr->by_tid);
    for (size_t i = 0; i < nr->n; i++) {
        struct natreuse_thread *t = &nr->v[i];
        if (!t->live) {
            close_thread(t);
            continue;
        }
        t->live = false;
        nr->v[k++] = *t;
        hmap_put(&nr->by_tid, (uint64_t)t->tid, k);
    }
    nr->n = k;
}
