// SPDX-License-Identifier: MIT
// The sampling loop. Ticks are scheduled on absolute deadlines (clock_nanosleep
// TIMER_ABSTIME) so the rate does not drift with the cost of a round; a round that overruns
// skips the ticks it missed instead of bursting to catch up, and counts them.
#include "sampler/sampler.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <time.h>

#include "cpython/pyreader.h"
#include "target/pause.h"
#include "target/proc.h"
#include "util/hmap.h"
#include "util/xalloc.h"

#define PROGRESS_NS 250000000ULL
#define SLEEP_SLICE_NS 50000000ULL /* wake at least this often to notice a stop request */

static uint64_t cpu_now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec;
}

uint64_t sampler_now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec;
}

/* Maps reader frames to profile frames: (code entry id, line) -> profile frame id. */
struct framemap {
    struct hmap map;
    uint32_t marker_truncated;
    uint32_t str_thread;
};

static uint32_t profile_frame_of(struct profile *p, struct framemap *fm, const struct pyreader *r,
                                 const struct pyframe *f)
{
    const struct pycode *c = pyreader_code(r, f);
    uint64_t key = ((uint64_t)c->id << 32) | (uint32_t)(f->line + 1);
    uint64_t v;
    if (hmap_get(&fm->map, key, &v))
        return (uint32_t)v;
    uint32_t name = profile_str(p, c->qualname, strlen(c->qualname));
    uint32_t file = profile_str(p, c->filename, strlen(c->filename));
    uint32_t id = profile_frame(p, name, file, f->line, FRAME_PYTHON);
    hmap_put(&fm->map, key, id);
    return id;
}

/* Adds one thread's stack, root first: [thread], [truncated], Python frames. */
static void add_thread(struct profile *p, struct framemap *fm, const struct sampler_opts *o,
                       const struct pyreader *r, const struct pythread *th, char state,
                       uint64_t t_ns)
{
    uint32_t s = 0;
    if (o->threads)
        s = profile_push(p, s, profile_frame(p, fm->str_thread, 0, th->tid, FRAME_THREAD));
    if (th->truncated)
        s = profile_push(p, s, fm->marker_truncated);
    for (uint32_t k = th->nframes; k > 0; k--)
        s = profile_push(p, s, profile_frame_of(p, fm, r, &r->frames[th->first + k - 1]));
    enum thread_state ts = state == 'R' ? TSTATE_RUNNING : TSTATE_IDLE;
    uint8_t flags = (uint8_t)((th->gil ? SAMPLE_GIL : 0) | (th->truncated ? SAMPLE_TRUNCATED : 0));
    profile_add(p, &(struct psample){.t_ns = t_ns,
                                     .stack = s,
                                     .tid = (uint32_t)th->tid,
                                     .pid = (uint32_t)r->rt->pid,
                                     .state = (uint8_t)ts,
                                     .flags = flags,
                                     .weight = 1});
}

static bool child_gone(const struct sampler_opts *o, struct pauser *pz)
{
    if (!o->child)
        return kill(pz->pid, 0) != 0 && errno == ESRCH; /* a zombie fails the next read */
    if (pz->child_exited) {
        *o->child_status = pz->child_status;
        *o->child_exited = true;
        return true;
    }
    int status;
    pid_t got = waitpid(o->child, &status, WNOHANG);
    if (got == o->child && (WIFEXITED(status) || WIFSIGNALED(status))) {
        *o->child_status = status;
        *o->child_exited = true;
        return true;
    }
    return false;
}

static void sleep_until(uint64_t deadline, volatile sig_atomic_t *stop)
{
    for (;;) {
        uint64_t now = sampler_now_ns();
        if (now >= deadline || (stop && *stop))
            return;
        uint64_t until = deadline - now > SLEEP_SLICE_NS ? now + SLEEP_SLICE_NS : deadline;
        struct timespec ts = {(time_t)(until / 1000000000ULL), (long)(until % 1000000000ULL)};
        clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, NULL);
    }
}

/* One round: read every thread (paused if asked) and add what passes the filters. */
static int round_once(const struct sampler_opts *o, struct pyreader *r, struct pauser *pz,
                      struct proc_statcache *sc, struct framemap *fm, struct profile *p,
                      struct sampler_stats *st, uint64_t t_rel, struct errbuf *eb)
{
    /* With --blocking, thread states come from /proc before the pause: a stopped thread
     * reads as 't'. Threads seized in earlier rounds are known by tid. */
    char states[PYREADER_MAX_THREADS];
    pid_t pre_tid[PYREADER_MAX_THREADS];
    char pre_state[PYREADER_MAX_THREADS];
    size_t npre = 0;
    int rc;
    if (o->blocking) {
        for (size_t i = 0; i < pz->n && npre < PYREADER_MAX_THREADS; i++, npre++) {
            pre_tid[npre] = pz->v[i].tid;
            pre_state[npre] = proc_statcache_state(sc, pz->v[i].tid);
        }
        rc = pause_stop_all(pz, eb);
        if (rc)
            return rc;
    }
    uint64_t t0 = sampler_now_ns(); /* vDSO: cheap, unlike the thread CPU clock */
    rc = pyreader_sample(r, t0, eb);
    st->read_ns += sampler_now_ns() - t0;
    if (o->blocking)
        pause_resume_all(pz);
    if (rc)
        return rc;
    for (size_t t = 0; t < r->nthreads; t++) {
        pid_t tid = r->threads[t].tid;
        states[t] = 0;
        for (size_t i = 0; i < npre && !states[t]; i++)
            if (pre_tid[i] == tid)
                states[t] = pre_state[i];
        if (!states[t])
            states[t] = tid ? proc_statcache_state(sc, tid) : 'R';
    }
    for (size_t t = 0; t < r->nthreads; t++) {
        const struct pythread *th = &r->threads[t];
        if (th->err) {
            st->errors++;
            continue;
        }
        if (!th->nframes)
            continue;
        st->thread_samples++;
        if (!o->idle && states[t] != 'R')
            continue;
        if (o->gil_only && !th->gil)
            continue;
        add_thread(p, fm, o, r, th, states[t], t_rel);
        st->kept++;
    }
    return 0;
}

int sampler_run(const struct pyruntime *rt, const struct sampler_opts *o, struct profile *p,
                struct sampler_stats *st, struct errbuf *eb)
{
    memset(st, 0, sizeof(*st));
    struct pyreader r;
    pyreader_init(&r, rt, o->max_depth);
    struct proc_statcache sc;
    proc_statcache_init(&sc, rt->pid);
    struct pauser pz;
    pause_init(&pz, rt->pid, o->child);
    struct framemap fm;
    hmap_init(&fm.map);
    fm.str_thread = profile_str(p, "thread", 6);
    fm.marker_truncated = profile_frame(p, profile_str(p, "[truncated]", 11), 0, 0, FRAME_MARKER);

    /* The default 50 us timer slack makes every wake-up late by about 75 us here, which
     * caps the achievable rate near 6 kHz; 1 us slack keeps the schedule. */
    (void)prctl(PR_SET_TIMERSLACK, 1000UL, 0UL, 0UL, 0UL);
    uint64_t period = (uint64_t)(1e9 / (o->rate_hz > 0 ? o->rate_hz : 100));
    uint64_t start = sampler_now_ns();
    uint64_t end = o->duration_s > 0 ? start + (uint64_t)(o->duration_s * 1e9) : UINT64_MAX;
    uint64_t next = start, last_progress = start;
    int rc = 0;
    while (!(o->stop && *o->stop)) {
        uint64_t now = sampler_now_ns();
        if (now >= end)
            break;
        if (o->blocking)
            pause_poll(&pz);
        if (child_gone(o, &pz))
            break;
        st->ticks++;
        uint64_t cpu0 = cpu_now_ns();
        rc = round_once(o, &r, &pz, &sc, &fm, p, st, now - start, eb);
        uint64_t after = sampler_now_ns();
        st->busy_ns += after - now;
        st->busy_cpu_ns += cpu_now_ns() - cpu0;
        if (rc) {
            /* The process went away mid-round: what was collected stands. */
            if (rc == ERR_PROC_GONE || !proc_alive(rt->pid))
                rc = 0;
            break;
        }
        if (o->progress && after - last_progress >= PROGRESS_NS) {
            st->elapsed_ns = after - start;
            o->progress(st, o->progress_arg);
            last_progress = after;
        }
        next += period;
        if (next <= after) {
            uint64_t missed = (after - next) / period + 1;
            st->late_ticks += missed;
            next += missed * period;
        }
        sleep_until(next < end ? next : end, o->stop);
    }
    st->elapsed_ns = sampler_now_ns() - start;
    if (o->blocking)
        pause_fini(&pz);
    if (o->child && !*o->child_exited)
        (void)child_gone(o, &pz);
    st->errors += r.dropped;
    if (getenv("CRUX_DEBUG"))
        for (int i = 0; i < 16; i++)
            if (r.err_counts[i])
                fprintf(stderr, "crux-debug: %llu stacks dropped: %s\n",
                        (unsigned long long)r.err_counts[i], err_str(-i));
    p->meta.ticks = st->ticks;
    p->meta.errors = st->errors;
    p->meta.duration_ns = st->elapsed_ns;
    hmap_fini(&fm.map);
    proc_statcache_fini(&sc);
    pyreader_fini(&r);
    return rc;
}
