// SPDX-License-Identifier: MIT
// One native sample of one thread: stop it alone, read what must come from one instant
// (registers, stack, Python stack), release it, then do the slow part (the walk, symbols,
// merge) while it runs. The stop is bounded by pause_stop_one's wait and the thread is
// detached after every sample, so a signal it gets between samples never waits for crux, and
// a crux that dies leaves nothing traced.
#include "native/native.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "util/xalloc.h"

static uint64_t clock_ns(clockid_t id)
{
    struct timespec ts;
    clock_gettime(id, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static uint64_t mono_ns(void)
{
    return clock_ns(CLOCK_MONOTONIC);
}

int native_open(struct native *n, pid_t pid, struct errbuf *eb)
{
    memset(n, 0, sizeof(*n));
    n->pid = pid;
    int rc = unwind_open(&n->uw, pid, eb);
    if (rc)
        return rc;
    symbols_init(&n->syms, pid);
    natreuse_init(&n->reuse, pid);
    n->pcs = xmalloc(UNWIND_MAX_FRAMES * sizeof(*n->pcs));
    n->nat = xmalloc(UNWIND_MAX_FRAMES * sizeof(*n->nat));
    n->stop_ns = xmalloc(NATIVE_STOP_RING * sizeof(*n->stop_ns));
    n->cpu_ns = xmalloc(NATIVE_STOP_RING * sizeof(*n->cpu_ns));
    return 0;
}

void native_close(struct native *n)
{
    if (!n->pcs)
        return; /* never opened */
    unwind_close(&n->uw);
    symbols_fini(&n->syms);
    natreuse_fini(&n->reuse);
    free(n->pcs);
    free(n->nat);
    free(n->stop_ns);
    free(n->cpu_ns);
    memset(n, 0, sizeof(*n));
}

/* The thread's Python frames alone, when no native stack could be taken. */
static void python_only(const struct pyreader *r, const struct pythread *th,
                        struct native_stack *out, int err)
{
    int rc = merge_stacks(NULL, 0, r->frames + th->first, th->nframes, th->truncated, out);
    out->mismatch = false;
    out->native = false;
    out->err = err ? err : rc;
}

/* The system call the stopped thread was in, from its registers (x86-64). */
static void stopped_call(const struct unwinder *u, struct natreuse_call *c)
{
    const uint64_t *g = u->regs; /* DWARF numbering: see unwind_capture */
    *c = (struct natreuse_call){.nr = u->sys_nr,
                                .ret = (int64_t)g[0],
                                .args = {g[5], g[4], g[1], g[10], g[8], g[9]},
                                .sp = g[7],
                                .pc = g[16]};
}

/* While the thread is stopped: its registers and stack, its Python stack again, and what
 * tells later whether it ran (natreuse.h). */
static int read_stopped(struct native *n, struct pyreader *r, size_t t, uint64_t now_ns,
                        struct errbuf *eb)
{
    int rc = unwind_capture(&n->uw, r->threads[t].tid, eb);
    if (rc)
        return rc;
    /* Keep the round's stack when the re-read fails: the merge then checks it against the
     * native stack like any other. */
    uint32_t first = r->threads[t].first, nframes = r->threads[t].nframes;
    bool truncated = r->threads[t].truncated;
    int err = r->threads[t].err;
    if (pyreader_reread_thread(r, t, now_ns) != 0) {
        n->py_failed++;
        r->threads[t].first = first;
        r->threads[t].nframes = nframes;
        r->threads[t].truncated = truncated;
        r->threads[t].err = err;
    }
    struct natreuse_call call;
    stopped_call(&n->uw, &call);
    natreuse_stopped(&n->reuse, r->threads[t].tid, &call);
    return 0;
}

/* Hands natreuse the stack bytes the walk read, from the stack pointer up; `complete`: every
 * read came from the copy taken while stopped. */
static void keep_stack(struct native *n, pid_t tid, bool complete)
{
    const struct unwinder *u = &n->uw;
    uint64_t sp = u->regs[7];
    bool in =
        sp >= u->stack_base && u->stack_used >= sp && u->stack_used - u->stack_base <= u->stack_len;
    if (!in) {
        natreuse_stack(&n->reuse, tid, NULL, 0, false);
        return;
    }
    natreuse_stack(&n->reuse, tid, u->stack + (sp - u->stack_base), (size_t)(u->stack_used - sp),
                   complete);
}

int native_sample_thread(struct native *n, struct pauser *pz, struct pyreader *r, size_t t,
                         uint64_t now_ns, struct native_stack *out, struct errbuf *eb)
{
    struct pythread *th = &r->threads[t];
    n->samples++;
    pause_release_pending(pz); /* a thread whose stop came after its sample gave up */
    if (!th->tid) {
        n->stop_failed++;
        python_only(r, th, out, ERR_NOT_FOUND);
        return errbuf_set(eb, ERR_NOT_FOUND, "thread id unknown yet");
    }
    uint64_t t0 = mono_ns();
    int rc = pause_stop_one(pz, th->tid, eb);
    if (rc) {
        n->stop_failed++;
        python_only(r, th, out, rc);
        return rc;
    }
    uint64_t tw = mono_ns();
    rc = read_stopped(n, r, t, now_ns, eb);
    /* The thread runs again inside the detach call; that call often returns only after the
     * woken thread has preempted us, so the stop is timed up to the call. */
    uint64_t t1 = mono_ns();
    pause_release_one(pz, th->tid);
    n->wait_ns += tw - t0;
    n->read_ns += t1 - tw;
    n->stop_ns[n->nstop++ % NATIVE_STOP_RING] = t1 - t0;
    if (rc) {
        python_only(r, th, out, rc);
        return rc;
    }
    /* The rest runs while the thread runs: its cost is crux's CPU time, not a stall. */
    uint64_t c0 = clock_ns(CLOCK_THREAD_CPUTIME_ID);
    size_t nn = 0;
    uint64_t live0 = n->uw.live_reads;
    rc = unwind_walk(&n->uw, t1, n->pcs, UNWIND_MAX_FRAMES, &nn);
    if (rc) {
        python_only(r, th, out, rc);
        return rc;
    }
    keep_stack(n, th->tid, n->uw.live_reads == live0);
    for (size_t k = 0; k < nn; k++)
        n->nat[k] = symbols_lookup(&n->syms, n->uw.dwfl, n->uw.report_gen, n->pcs[k]);
    n->frames += nn;
    rc = merge_stacks(n->nat, nn, r->frames + th->first, th->nframes, th->truncated, out);
    out->native = true;
    out->err = rc;
    if (out->mismatch)
        n->mismatches++;
    else
        n->merged++;
    uint64_t cpu = clock_ns(CLOCK_THREAD_CPUTIME_ID) - c0;
    n->unwind_ns += cpu;
    n->cpu_ns[n->ncpu++ % NATIVE_STOP_RING] = cpu;
    return 0;
}

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

/* Median, p99 and maximum of the last recorded values of a ring. */
static void percentiles(const uint64_t *ring, size_t count, uint64_t *median, uint64_t *p99,
                        uint64_t *max)
{
    size_t k = count < NATIVE_STOP_RING ? count : NATIVE_STOP_RING;
    if (!k)
        return;
    uint64_t *v = xmalloc(k * sizeof(*v));
    memcpy(v, ring, k * sizeof(*v));
    qsort(v, k, sizeof(*v), cmp_u64);
    *median = v[k / 2];
    *p99 = v[(k * 99) / 100 < k ? (k * 99) / 100 : k - 1];
    if (max)
        *max = v[k - 1];
    free(v);
}

void native_get_stats(const struct native *n, struct native_stats *st)
{
    memset(st, 0, sizeof(*st));
    st->samples = n->samples;
    st->merged = n->merged;
    st->mismatches = n->mismatches;
    st->stop_failed = n->stop_failed;
    st->py_failed = n->py_failed;
    st->reused = n->reuse.reused;
    if (n->nstop) {
        st->wait_mean_ns = n->wait_ns / n->nstop;
        st->read_mean_ns = n->read_ns / n->nstop;
    }
    percentiles(n->stop_ns, n->nstop, &st->stop_median_ns, &st->stop_p99_ns, &st->stop_max_ns);
    percentiles(n->cpu_ns, n->ncpu, &st->unwind_median_ns, &st->unwind_p99_ns, NULL);
    uint64_t unwound = n->merged + n->mismatches;
    if (unwound) {
        st->unwind_mean_ns = n->unwind_ns / unwound;
        st->frames_mean = (double)n->frames / (double)unwound;
    }
}
