// SPDX-License-Identifier: MIT
// The sampling loop. Ticks are scheduled on absolute deadlines (clock_nanosleep
// TIMER_ABSTIME) so the rate does not drift with the cost of a round; a round that overruns
// skips the ticks it missed instead of bursting to catch up, and counts them.
#include "sampler/sampler.h"

#include <errno.h>
#include <signal.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "sampler/sproc.h"

#define PROGRESS_NS 250000000ULL
#define DRAIN_NS 100000000ULL
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

/* Whether the target still runs is asked every 10 ms rather than every tick (a kill or a
 * waitpid per tick costs ~0.6 us); a round in between reads a process that exited as gone. */
#define ALIVE_NS 10000000ULL
/* crux's thread CPU time inside rounds: every round among the first 64, then one in 16,
 * weighted (each clock read is a system call of ~0.7 us, two per timed round). */
#define CPU_TIMED_FIRST 64
#define CPU_TIMED_EVERY 16

#define SAMPLER_DETUNE 1.01    /* sampling interval over the asked one: see sampler_run */
#define SCAN_NS 100000000ULL   /* look for new children ten times a second */
#define PRUNE_NS 2000000000ULL /* forget exited threads' files every two seconds */
#define MAX_CHILD_FAILURES 100
#define RING_RETRY_NS 1000000000ULL /* look for the agent's ring once a second */

/* The function a thread is in (its innermost frame's code entry), 0 for an empty stack. */
static uint64_t leaf_key(const struct pyreader *r, const struct pythread *th)
{
    if (!th->nframes)
        return 0;
    return (uint64_t)pyreader_code(r, &r->frames[th->first])->id + 1;
}

/* The address range of the GIL structure of the thread's interpreter (for GIL-wait). */
static void gil_range(const struct sproc *sp, uint64_t *lo, uint64_t *hi)
{
    const struct py_offsets *o = &sp->rt.off;
    uint64_t size = o->gil_size > 0 ? (uint64_t)o->gil_size : 256;
    *lo = 0;
    if (o->rt_gil >= 0)
        *lo = sp->rt.runtime + (uint64_t)o->rt_gil;
    else if (sp->r.ninterps)
        *lo = sp->r.interp_fields[0][3];
    *hi = *lo ? *lo + size : 0;
}

/* One round over one process: read every thread (paused if asked) and add what passes the
 * filters. */
static int round_proc(struct sampler *s, struct sproc *sp, uint64_t t_rel, struct errbuf *eb)
{
    const struct sampler_opts *o = s->o;
    struct sampler_stats *st = s->st;
    struct pyreader *r = &sp->r;
    /* With --blocking, thread states come from /proc before the pause: a stopped thread
     * reads as 't'. Threads seized in earlier rounds are known by tid. */
    char states[PYREADER_MAX_THREADS];
    pid_t pre_tid[PYREADER_MAX_THREADS];
    char pre_state[PYREADER_MAX_THREADS];
    size_t npre = 0;
    int rc;
    if (o->blocking) {
        for (size_t i = 0; i < sp->pz.n && npre < PYREADER_MAX_THREADS; i++, npre++) {
            pre_tid[npre] = sp->pz.v[i].tid;
            pre_state[npre] = proc_statcache_state(&sp->sc, sp->pz.v[i].tid);
        }
        rc = pause_stop_all(&sp->pz, eb);
        if (rc)
            return rc;
    }
    uint64_t t0 = sampler_now_ns(); /* vDSO: cheap, unlike the thread CPU clock */
    rc = pyreader_sample(r, t0, eb);
    st->read_ns += sampler_now_ns() - t0;
    if (o->blocking)
        pause_resume_all(&sp->pz);
    if (rc)
        return rc;
    threadlabels_round(&sp->tl, r, t0);
    int lt = -1;
    if (sp->async_on) {
        lt = stackbuild_loop_thread(r);
        if (lt >= 0 && asyncreader_round(&sp->ar, r, r->threads[lt].interp, t0) != 0)
            lt = -1;
    }
    if (sp->cat_on)
        cat_round(&sp->cat, t0);
    for (size_t t = 0; t < r->nthreads; t++) {
        pid_t tid = r->threads[t].tid;
        states[t] = 0;
        for (size_t i = 0; i < npre && !states[t]; i++)
            if (pre_tid[i] == tid)
                states[t] = pre_state[i];
        /* The switch records say without a read of /proc that a thread is running, or
         * that one off CPU in the previous round has not run since (the same state). */
        if (!states[t] && tid && sp->cat_on && !o->blocking &&
            cat_known_state(&sp->cat, tid, &states[t]))
            continue;
        if (!states[t]) {
            states[t] = tid ? proc_statcache_state(&sp->sc, tid) : 'R';
            st->state_reads += tid != 0;
        }
    }
    uint64_t gil_lo = 0, gil_hi = 0;
    if (sp->cat_on)
        gil_range(sp, &gil_lo, &gil_hi);
    if (o->stages && !sp->ring_on && t0 >= sp->ring_retry_ns) {
        struct errbuf reb = {{0}};
        sp->ring_on = stagering_open(&sp->ring, sp->pid, &reb) == 0;
        sp->ring_retry_ns = t0 + (o->allocations ? 0 : RING_RETRY_NS);
    }
    bool staged = sp->ring_on && stagering_refresh_threads(&sp->ring) == 0;
    if (sp->ring_on && o->spans)
        agentdrain_spans(s, sp);
    if (sp->ring_on && sp->ring.allocs)
        agentdrain_allocs(s, sp);
    struct pproc *pr = NULL;
    for (size_t t = 0; t < r->nthreads; t++) {
        const struct pythread *th = &r->threads[t];
        sp->stacks[t] = 0;
        if (th->err) {
            st->errors++;
            continue;
        }
        if (!th->nframes)
            continue;
        st->thread_samples++;
        if (th->tid)
            (void)threadlabels_name(&sp->tl, s->p, th); /* the name the thread table shows */
        /* A tid read from the target is used for perf and ptrace only once /proc lists it
         * among the target's own threads ('?': not there): a stale thread state's tid may
         * have been reused by another process by now. */
        bool ours = th->tid && states[t] != '?';
        uint8_t cat = CAT_NONE;
        struct cat_evidence ev = {EV_NONE, "", false};
        if (sp->cat_on && ours)
            cat = cat_of(&sp->cat, th->tid, &states[t], th->gil, gil_lo, gil_hi, leaf_key(r, th),
                         &ev);
        /* A thread waiting for the GIL wants to run: it is not idle. Idle samples are kept
         * whatever --idle says: the verdict is about wall time (the profile leaves them out
         * of the views unless --idle). */
        bool idle = (states[t] != 'R' || ev.waited) && cat != CAT_GIL;
        bool keep = !(o->gil_only && !th->gil);
        if (!keep && !(sp->statm_fd >= 0 && (states[t] == 'R' || th->gil)))
            continue;
        if (keep && sp->native_on && ours && (!idle || o->idle)) {
            sp->stacks[t] = stackbuild_native(s, sp, t);
            th = &r->threads[t];
        } else {
            sp->stacks[t] = lt >= 0 ? stackbuild_task(s, sp, th) : 0;
            if (!sp->stacks[t])
                sp->stacks[t] = stackbuild_thread(s, sp, th);
        }
        if (!keep)
            continue; /* its stack may still own memory growth */
        uint32_t stage = 0;
        if (staged) {
            const char *name = stagering_current(&sp->ring, th->tid);
            if (name) {
                stage = profile_str(s->p, name, strlen(name));
                st->staged++;
            }
        }
        enum thread_state ts = states[t] == 'R' && !ev.waited ? TSTATE_RUNNING : TSTATE_IDLE;
        uint8_t flags =
            (uint8_t)((th->gil ? SAMPLE_GIL : 0) | (th->truncated ? SAMPLE_TRUNCATED : 0) |
                      (s->no_request ? SAMPLE_NO_REQUEST : 0));
        uint16_t evid = ev.kind != EV_NONE ? profile_evidence(s->p, ev.kind, ev.label) : 0;
        profile_add(s->p, &(struct psample){.t_ns = t_rel,
                                            .stack = sp->stacks[t],
                                            .tid = (uint32_t)th->tid,
                                            .pid = (uint32_t)sp->pid,
                                            .state = (uint8_t)ts,
                                            .flags = flags,
                                            .cat = cat,
                                            .stage = stage,
                                            .weight = 1,
                                            .ev = evid});
        st->recorded++;
        if (idle && !o->idle)
            continue; /* kept for the verdict, not shown */
        st->kept++;
        if (!pr)
            pr = profile_proc(s->p, (uint32_t)sp->pid);
        if (!pr->samples)
            pr->first_ns = t_rel;
        pr->samples++;
        pr->last_ns = t_rel;
    }
    if (lt >= 0)
        stackbuild_suspended(s, sp, &r->threads[lt], t_rel);
    if (sp->native_on)
        pause_release_pending(&sp->pz); /* a thread whose late stop arrived since */
    memsample_round(s, sp, t_rel, states);
    return 0;
}

/* One round over every process. Only the target's failure ends the recording. */
static int round_all(struct sampler *s, uint64_t t_rel, struct errbuf *eb)
{
    for (size_t i = 0; i < s->nprocs; i++) {
        struct sproc *sp = s->procs[i];
        if (sp->gone || !sp->python) {
            if (!sp->gone && !sp->python)
                memsample_round(s, sp, t_rel, NULL);
            continue;
        }
        struct errbuf peb = {{0}};
        int rc = round_proc(s, sp, t_rel, sp->root ? eb : &peb);
        if (!rc) {
            sp->failures = 0;
            continue;
        }
        if (sp->root)
            return rc;
        /* A child that exits is normal; one read while it forks or execs may fail a few
         * rounds; one that keeps failing is left out. */
        if (!proc_alive(sp->pid) || ++sp->failures >= MAX_CHILD_FAILURES) {
            if (getenv("CRUX_DEBUG"))
                fprintf(stderr, "crux-debug: process %d left: %s\n", (int)sp->pid,
                        peb.msg[0] ? peb.msg : err_str(rc));
            sproc_gone(s, sp);
        }
    }
    return 0;
}

/* The profile was emptied (profile_clear): intern again what every process's stacks start
 * with and forget the frame ids cached since. */
static void forget_ids(struct sampler *s)
{
    struct profile *p = s->p;
    s->marker_truncated = profile_frame(p, profile_str(p, "[truncated]", 11), 0, 0, FRAME_MARKER);
    for (size_t i = 0; i < s->nprocs; i++) {
        struct sproc *sp = s->procs[i];
        if (sp->gone)
            continue;
        struct pproc *pr = profile_proc(p, (uint32_t)sp->pid);
        pr->ppid = (uint32_t)(sp->ppid > 0 ? sp->ppid : 0);
        profile_set_str(&pr->name, sp->name);
        sp->proc_frame =
            profile_frame(p, profile_str(p, sp->name, strlen(sp->name)), 0, sp->pid, FRAME_PROCESS);
        sp->ngrow = 0; /* their ids are gone */
        if (!sp->python)
            continue;
        profile_set_str(&pr->python_version, sp->rt.version);
        hmap_clear(&sp->frames);
        stackmemo_forget(&sp->memo);
        hmap_clear(&sp->alloc_stacks);
        if (sp->native_on) {
            hmap_clear(&sp->native_frames);
            natreuse_forget(&sp->nt.reuse); /* its stack ids are gone */
        }
        threadlabels_forget(&sp->tl, p);
    }
}

/* Frees the records of children that exited, so that a server whose workers come and go keeps
 * being followed (MAX_PROCS bounds the live ones). Their counters were taken when they left. */
static void forget_gone(struct sampler *s)
{
    size_t k = 0;
    for (size_t i = 0; i < s->nprocs; i++) {
        struct sproc *sp = s->procs[i];
        if (sp->gone && !sp->root)
            free(sp);
        else
            s->procs[k++] = sp;
    }
    s->nprocs = k;
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

int sampler_run(const struct pyruntime *rt, const struct sampler_opts *o, struct profile *p,
                struct sampler_stats *st, struct errbuf *eb)
{
    memset(st, 0, sizeof(*st));
    struct sampler s = {.o = o, .p = p, .st = st, .cpu_draw = 0x9e3779b97f4a7c15ULL};
    s.page_size = sysconf(_SC_PAGESIZE);
    s.marker_truncated = profile_frame(p, profile_str(p, "[truncated]", 11), 0, 0, FRAME_MARKER);
    /* The interval is 1% longer than the rate asks: ticks exactly on a round period stay in
     * lockstep with work that repeats at a multiple of it (timers, a fixed-rate load:
     * 25 req/s against 250 Hz never sampled the first 2 ms of a request) and see the same
     * phase of it forever. 1% moves the ticks across such a cycle within 100 ticks, the
     * reason DTrace profiles at 997 Hz. */
    s.period = (uint64_t)(1e9 * SAMPLER_DETUNE / (o->rate_hz > 0 ? o->rate_hz : 100));
    struct sproc *root = sproc_add(&s, rt->pid, children_ppid(rt->pid), rt);
    p->meta.categories = o->categories;
    p->meta.native = o->native;
    p->hide_idle = !o->idle;
    if (o->categories)
        profile_set_str(&p->meta.categories_note, cat_note(&root->cat));
    if (o->subprocesses) {
        pid_t none = 0;
        s.scan.last_pid = -2;
        (void)children_scan(&s.scan, &none, 0, NULL, NULL, 0); /* prime the newest pid */
        s.scan.last_pid = -2;
    }

    /* Each sampled thread may hold three files (its stat, syscall and perf event): lift the
     * soft limit on open files to the hard one so that a few hundred threads fit. */
    struct rlimit nofile;
    if (getrlimit(RLIMIT_NOFILE, &nofile) == 0 && nofile.rlim_cur < nofile.rlim_max) {
        nofile.rlim_cur = nofile.rlim_max;
        (void)setrlimit(RLIMIT_NOFILE, &nofile);
    }
    /* The default 50 us timer slack makes every wake-up late by about 75 us here, which
     * caps the achievable rate near 6 kHz; 1 us slack keeps the schedule. */
    (void)prctl(PR_SET_TIMERSLACK, 1000UL, 0UL, 0UL, 0UL);
    uint64_t period = s.period;
    uint64_t thread_cpu0 = cpu_now_ns();
    uint64_t start = sampler_now_ns();
    s.start = start;
    st->start_ns = start;
    uint64_t end = o->duration_s > 0 ? start + (uint64_t)(o->duration_s * 1e9) : UINT64_MAX;
    uint64_t next = start, last_progress = start, last_drain = start;
    uint64_t drain_ns = o->drain_ns ? o->drain_ns : DRAIN_NS;
    s.next_prune = start + PRUNE_NS;
    int rc = 0;
    while (!(o->stop && *o->stop)) {
        uint64_t now = sampler_now_ns();
        if (now >= end)
            break;
        if (o->blocking)
            pause_poll(&root->pz);
        if (now >= s.next_alive) {
            st->alive_checks++;
            if (child_gone(o, &root->pz))
                break;
            s.next_alive = now + ALIVE_NS;
        }
        if (o->subprocesses && now >= s.next_scan) {
            sproc_follow_children(&s, now);
            s.next_scan = now + SCAN_NS;
        }
        if (now >= s.next_prune) {
            for (size_t i = 0; i < s.nprocs; i++) {
                if (s.procs[i]->cat_on)
                    cat_prune(&s.procs[i]->cat);
                if (s.procs[i]->native_on)
                    natreuse_prune(&s.procs[i]->nt.reuse);
            }
            forget_gone(&s);
            s.next_prune = now + PRUNE_NS;
        }
        st->ticks++;
        s.no_request =
            o->load_inflight && atomic_load_explicit(o->load_inflight, memory_order_relaxed) == 0;
        /* Which rounds are timed is drawn (xorshift), not every 16th: work done every
         * other round (the memory read) would otherwise always or never be in them. */
        s.cpu_draw ^= s.cpu_draw << 13;
        s.cpu_draw ^= s.cpu_draw >> 7;
        s.cpu_draw ^= s.cpu_draw << 17;
        uint64_t weight = st->ticks <= CPU_TIMED_FIRST        ? 1
                          : s.cpu_draw % CPU_TIMED_EVERY == 0 ? CPU_TIMED_EVERY
                                                              : 0;
        uint64_t cpu0 = weight ? cpu_now_ns() : 0;
        rc = round_all(&s, now - start, eb);
        uint64_t after = sampler_now_ns();
        st->busy_ns += after - now;
        if (weight)
            st->busy_cpu_ns += (cpu_now_ns() - cpu0) * weight;
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
        if (o->drain && after - last_drain >= drain_ns) {
            st->elapsed_ns = after - start;
            if (o->drain(p, st, after - start, o->drain_arg))
                forget_ids(&s);
            last_drain = after;
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
    st->thread_cpu_ns = cpu_now_ns() - thread_cpu0;
    if (o->child && !*o->child_exited)
        (void)child_gone(o, &root->pz);
    for (size_t i = 0; i < s.nprocs; i++) {
        struct sproc *sp = s.procs[i];
        if (sp->python) {
            st->errors += sp->r.dropped;
            if (getenv("CRUX_DEBUG"))
                fprintf(
                    stderr,
                    "crux-debug: process %d: rounds %llu retries %llu trimmed %llu climbed %llu "
                    "descended %llu missed %llu torn %llu needed %llu moved %llu slow %llu "
                    "unbracketed %llu\n",
                    (int)sp->pid, (unsigned long long)sp->r.rounds,
                    (unsigned long long)sp->r.retries, (unsigned long long)sp->r.trimmed,
                    (unsigned long long)sp->r.climbed, (unsigned long long)sp->r.descended,
                    (unsigned long long)sp->r.missed, (unsigned long long)sp->r.torn,
                    (unsigned long long)sp->r.needed, (unsigned long long)sp->r.moved,
                    (unsigned long long)sp->r.slow, (unsigned long long)sp->r.unbracketed);
            if (getenv("CRUX_DEBUG"))
                for (int k = 0; k < 16; k++)
                    if (sp->r.err_counts[k])
                        fprintf(stderr, "crux-debug: process %d: %llu stacks dropped: %s\n",
                                (int)sp->pid, (unsigned long long)sp->r.err_counts[k], err_str(-k));
        }
        if (sp->cat_on) {
            st->perf_samples += sp->cat.perf.samples;
            st->perf_lost += sp->cat.perf.lost;
            st->perf_switches += sp->cat.perf.switch_records;
            st->states_reused += sp->cat.states_reused;
            st->syscall_reads += sp->cat.syscall_reads;
        }
        sproc_gone(&s, sp);
        free(sp);
    }
    free(s.procs);
    if (o->child && *o->child_exited) {
        struct pproc *pr = profile_proc(p, (uint32_t)rt->pid);
        pr->exit_status = *o->child_status;
    }
    p->meta.ticks = st->ticks;
    p->meta.errors = st->errors;
    p->meta.duration_ns = st->elapsed_ns;
    if (o->drain)
        (void)o->drain(p, st, st->elapsed_ns, o->drain_arg);
    return rc;
}
