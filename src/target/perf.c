// SPDX-License-Identifier: MIT
// Per-thread task-clock sampling with perf_event_open (perf.h). Each thread's event has its
// own ring: the kernel refuses to redirect (PERF_EVENT_IOC_SET_OUTPUT) one task's event into
// another task's per-task ring, and refuses mmap of inherited per-task events. A drain reads
// each ring's head from shared memory; it costs no system call.
//
// The samples interrupt the thread (a timer interrupt in its context: 12-31 us each on a
// nested-virtualised VM, docs/benchmarks.md), so their period is longer than the sampling
// interval at high rates (sampler.c). The context-switch records in the same ring interrupt
// nothing: the scheduler writes them as it switches. They tell whether a thread ran since
// the last round at all, so a thread that did not is not read again (categorize.c).
#include "target/perf.h"

#include <errno.h>
#include <linux/perf_event.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "target/maps.h"
#include "util/xalloc.h"

#define RING_PAGES 2 /* data pages per thread: 8 KiB, 256 samples between drains */
#define MAPS_RELOAD_NS 500000000ULL

static long perf_event_open(struct perf_event_attr *a, pid_t tid, int cpu, int group,
                            unsigned long flags)
{
    return syscall(SYS_perf_event_open, a, tid, cpu, group, flags);
}

static void attr_init(struct perf_event_attr *a, uint64_t period_ns, bool kernel, bool switches)
{
    memset(a, 0, sizeof(*a));
    a->size = sizeof(*a);
    a->type = PERF_TYPE_SOFTWARE;
    a->config = PERF_COUNT_SW_TASK_CLOCK;
    a->sample_period = period_ns;
    a->sample_type = PERF_SAMPLE_IP | PERF_SAMPLE_TID | PERF_SAMPLE_TIME;
    a->exclude_kernel = !kernel;
    a->exclude_hv = 1;
    a->wakeup_events = 1u << 30; /* never wake anyone: the ring is polled */
    if (switches) {
        /* A record at every switch of the thread, timed on the sampler's clock. */
        a->context_switch = 1;
        a->sample_id_all = 1;
        a->use_clockid = 1;
        a->clockid = CLOCK_MONOTONIC;
    }
}

static const char *base_name(const char *path)
{
    const char *s = strrchr(path, '/');
    return s ? s + 1 : path;
}

enum perf_where perf_classify_path(const char *path, const char *python_path)
{
    if (python_path[0] && strcmp(path, python_path) == 0)
        return PERF_PYTHON;
    const char *b = base_name(path);
    static const char *const libc[] = {"libc.so", "libc-", "ld-linux",   "ld-musl",
                                       "libm.so", "libm-", "libpthread", "libdl"};
    for (size_t i = 0; i < sizeof(libc) / sizeof(libc[0]); i++)
        if (strncmp(b, libc[i], strlen(libc[i])) == 0)
            return PERF_LIBC;
    return PERF_NATIVE;
}

/* The range holding `ip`, or NULL. */
static const struct perf_range *range_of(const struct perf_range *r, size_t n, uint64_t ip)
{
    size_t lo = 0, hi = n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (ip < r[mid].lo)
            hi = mid;
        else if (ip >= r[mid].hi)
            lo = mid + 1;
        else
            return &r[mid];
    }
    return NULL;
}

enum perf_where perf_where_of(const struct perf_range *r, size_t n, uint64_t ip)
{
    const struct perf_range *x = range_of(r, n, ip);
    return x ? (enum perf_where)x->where : PERF_NWHERE;
}

/* Counts one user-mode sample in mapped file `lib`. */
static void tally_lib(struct perf_tally *t, uint16_t lib)
{
    for (uint8_t i = 0; i < t->nlib; i++)
        if (t->lib[i] == lib) {
            t->lib_n[i]++;
            return;
        }
    if (t->nlib < PERF_TALLY_LIBS) {
        t->lib[t->nlib] = lib;
        t->lib_n[t->nlib++] = 1;
    }
}

/* The id of mapped file `path`, added when new. */
static uint16_t lib_id(struct perf *p, const char *path)
{
    uint64_t key = hmap_hash_bytes(path, strlen(path)), v;
    if (hmap_get(&p->lib_ids, key, &v) && strcmp(p->libs[v - 1], path) == 0)
        return (uint16_t)(v - 1);
    if (p->nlibs >= PERF_LIB_NONE)
        return PERF_LIB_NONE;
    if (p->nlibs == p->caplibs) {
        p->caplibs = p->caplibs ? p->caplibs * 2 : 64;
        p->libs = xrealloc(p->libs, p->caplibs * sizeof(*p->libs));
    }
    p->libs[p->nlibs] = xstrdup(path);
    hmap_put(&p->lib_ids, key, p->nlibs + 1);
    return (uint16_t)p->nlibs++;
}

const char *perf_lib_path(const struct perf *p, uint16_t lib)
{
    return lib < p->nlibs ? p->libs[lib] : "";
}

uint16_t perf_tally_lib(const struct perf_tally *t)
{
    uint16_t best = PERF_LIB_NONE;
    uint32_t n = 0;
    for (uint8_t i = 0; i < t->nlib; i++)
        if (t->lib_n[i] > n) {
            n = t->lib_n[i];
            best = t->lib[i];
        }
    return best;
}

static void load_ranges(struct perf *p, uint64_t now_ns)
{
    p->maps_loaded_ns = now_ns;
    struct maps m = {0};
    struct errbuf eb = {{0}};
    if (maps_load(p->pid, &m, &eb))
        return;
    free(p->ranges);
    p->ranges = xcalloc(m.n ? m.n : 1, sizeof(*p->ranges));
    p->nranges = 0;
    for (size_t i = 0; i < m.n; i++) { /* /proc/PID/maps is sorted by address */
        if (m.v[i].perms[2] != 'x')
            continue;
        p->ranges[p->nranges++] = (struct perf_range){
            m.v[i].start, m.v[i].end, (uint8_t)perf_classify_path(m.v[i].path, p->python_path),
            lib_id(p, m.v[i].path)};
    }
    maps_fini(&m);
}

static uint64_t now_mono(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec;
}

static void set_off(struct perf *p, const char *fmt, int e)
{
    p->on = false;
    snprintf(p->why, sizeof(p->why), fmt, strerror(e));
}

/* Opens and maps the event of `tid`; the fd or -1 with errno set. */
static int open_thread(struct perf *p, pid_t tid, uint8_t **ring)
{
    struct perf_event_attr a;
    attr_init(&a, p->period_ns, p->kernel, p->switches);
    long fd = perf_event_open(&a, tid, -1, -1, PERF_FLAG_FD_CLOEXEC);
    if (fd < 0 && p->switches && tid == p->pid && errno == EINVAL) {
        p->switches = false; /* a kernel before 4.3 (context_switch) or 4.1 (clockid) */
        attr_init(&a, p->period_ns, p->kernel, false);
        fd = perf_event_open(&a, tid, -1, -1, PERF_FLAG_FD_CLOEXEC);
    }
    if (fd < 0 && p->kernel && tid == p->pid && (errno == EACCES || errno == EPERM)) {
        p->kernel = false; /* unprivileged: user-mode samples only */
        attr_init(&a, p->period_ns, false, p->switches);
        fd = perf_event_open(&a, tid, -1, -1, PERF_FLAG_FD_CLOEXEC);
    }
    if (fd < 0)
        return -1;
    void *m = mmap(NULL, p->ring_len, PROT_READ | PROT_WRITE, MAP_SHARED, (int)fd, 0);
    if (m == MAP_FAILED) {
        int e = errno;
        close((int)fd);
        errno = e;
        return -1;
    }
    *ring = m;
    return (int)fd;
}

void perf_open(struct perf *p, pid_t pid, const char *python_path, uint64_t period_ns)
{
    memset(p, 0, sizeof(*p));
    p->pid = pid;
    p->period_ns = period_ns < 10000 ? 10000 : period_ns;
    p->drained_ns = now_mono();
    hmap_init(&p->by_tid);
    hmap_init(&p->lib_ids);
    snprintf(p->python_path, sizeof(p->python_path), "%s", python_path ? python_path : "");
    p->data_size = (size_t)RING_PAGES * (size_t)sysconf(_SC_PAGESIZE);
    p->ring_len = p->data_size + (size_t)sysconf(_SC_PAGESIZE);
    if (getenv("CRUX_NO_PERF")) { /* tests of the fallback */
        snprintf(p->why, sizeof(p->why), "perf events disabled by CRUX_NO_PERF");
        return;
    }
    /* The main thread's event proves perf events work here at all. */
    p->kernel = true;
    p->switches = !getenv("CRUX_NO_PERF_SWITCHES"); /* tests of the older kernels' path */
    uint8_t *ring;
    int fd = open_thread(p, pid, &ring);
    if (fd < 0) {
        int e = errno;
        if (e == EACCES || e == EPERM)
            set_off(p,
                    "perf events not permitted (%s): python and native time are counted "
                    "together as cpu; run as root or lower kernel.perf_event_paranoid",
                    e);
        else if (e == ENOMEM)
            set_off(p, "perf ring buffer not mapped (%s): raise kernel.perf_event_mlock_kb", e);
        else
            set_off(p,
                    "perf events unavailable (%s): python and native time are counted "
                    "together as cpu",
                    e);
        return;
    }
    p->on = true;
    p->cap = 16;
    p->v = xcalloc(p->cap, sizeof(*p->v));
    p->v[0] = (struct perf_thread){.tid = pid, .fd = fd, .ring = ring, .live = true};
    p->v[0].since_ns = now_mono();
    p->n = 1;
    hmap_put(&p->by_tid, (uint64_t)pid, 1);
    load_ranges(p, 0);
}

void perf_track(struct perf *p, pid_t tid)
{
    if (!p->on || tid <= 0)
        return;
    uint64_t v;
    if (hmap_get(&p->by_tid, (uint64_t)tid, &v)) {
        p->v[v - 1].live = true;
        return;
    }
    uint8_t *ring = NULL;
    int fd = open_thread(p, tid, &ring);
    if (p->n == p->cap) {
        p->cap *= 2;
        p->v = xrealloc(p->v, p->cap * sizeof(*p->v));
    }
    /* A thread whose event failed (it exited, or a limit) is remembered with fd -1 so the
     * open is not retried every round; it keeps the fallback category. */
    p->v[p->n] = (struct perf_thread){.tid = tid, .fd = fd, .ring = ring, .live = true};
    p->v[p->n].since_ns = p->drained_ns;
    p->n++;
    hmap_put(&p->by_tid, (uint64_t)tid, p->n);
}

/* Copies `n` bytes at ring offset `off` (wrapping) into `dst`. */
static void ring_copy(const struct perf *p, const uint8_t *ring, uint64_t off, void *dst, size_t n)
{
    const uint8_t *data = ring + (p->ring_len - p->data_size);
    size_t at = (size_t)(off % p->data_size);
    size_t first = n < p->data_size - at ? n : p->data_size - at;
    memcpy(dst, data + at, first);
    if (first < n)
        memcpy((uint8_t *)dst + first, data, n - first);
}

static void note_sample(struct perf *p, struct perf_thread *th, uint64_t now_ns, uint16_t misc,
                        uint64_t ip, uint64_t time_ns)
{
    enum perf_where w;
    struct perf_tally *t = &th->t;
    if (p->switches && !t->known) {
        /* Running since the event was opened, not switched since: on a CPU from here on. */
        t->known = t->oncpu = true;
        th->in_ns = time_ns;
    }
    uint16_t mode = misc & PERF_RECORD_MISC_CPUMODE_MASK;
    if (mode == PERF_RECORD_MISC_KERNEL || mode == PERF_RECORD_MISC_GUEST_KERNEL) {
        w = PERF_KERNEL;
    } else {
        const struct perf_range *x = range_of(p->ranges, p->nranges, ip);
        if (!x && now_ns - p->maps_loaded_ns > MAPS_RELOAD_NS) {
            load_ranges(p, now_ns); /* a library loaded since */
            x = range_of(p->ranges, p->nranges, ip);
        }
        w = x ? (enum perf_where)x->where : PERF_NATIVE; /* anonymous code: JIT, trampolines */
        if (!x)
            p->unknown_ip++;
        else if (x->lib != PERF_LIB_NONE)
            tally_lib(t, x->lib);
    }
    t->n[w]++;
    t->last = (uint8_t)w;
    p->samples++;
}

/* A switch in or out at `time_ns`: the CPU time of the span it closes counts from the
 * previous take on. */
static void note_switch(struct perf *p, struct perf_thread *th, bool out, bool preempt,
                        uint64_t time_ns)
{
    struct perf_tally *t = &th->t;
    p->switch_records++;
    t->preempted = out && preempt;
    if (out) {
        if (t->known && t->oncpu) {
            uint64_t from = th->in_ns > th->since_ns ? th->in_ns : th->since_ns;
            th->acc_ns += time_ns > from ? time_ns - from : 0;
        }
        t->oncpu = false;
    } else {
        t->oncpu = true;
        th->in_ns = time_ns;
    }
    t->known = true;
}

static void drain_one(struct perf *p, struct perf_thread *th, uint64_t now_ns)
{
    struct perf_event_mmap_page *h = (struct perf_event_mmap_page *)th->ring;
    uint64_t head = __atomic_load_n(&h->data_head, __ATOMIC_ACQUIRE);
    uint64_t tail = h->data_tail;
    th->t.moved = head != tail;
    if (head - tail > p->data_size) /* cannot happen with a sane kernel; resynchronize */
        tail = head;
    while (head - tail >= sizeof(struct perf_event_header)) {
        struct perf_event_header eh;
        ring_copy(p, th->ring, tail, &eh, sizeof(eh));
        if (eh.size < sizeof(eh) || eh.size > head - tail) {
            tail = head;
            break;
        }
        if (eh.type == PERF_RECORD_SAMPLE && eh.size >= sizeof(eh) + 24) {
            uint64_t body[3]; /* ip; pid, tid; time */
            ring_copy(p, th->ring, tail + sizeof(eh), body, sizeof(body));
            note_sample(p, th, now_ns, eh.misc, body[0], body[2]);
        } else if (eh.type == PERF_RECORD_SWITCH && eh.size >= sizeof(eh) + 16) {
            uint64_t body[2]; /* sample_id: pid, tid; time */
            ring_copy(p, th->ring, tail + sizeof(eh), body, sizeof(body));
            note_switch(p, th, (eh.misc & PERF_RECORD_MISC_SWITCH_OUT) != 0,
                        (eh.misc & PERF_RECORD_MISC_SWITCH_OUT_PREEMPT) != 0, body[1]);
        } else if (eh.type == PERF_RECORD_LOST && eh.size >= sizeof(eh) + 16) {
            uint64_t body[2]; /* id, lost */
            ring_copy(p, th->ring, tail + sizeof(eh), body, sizeof(body));
            p->lost += body[1];
        }
        tail += eh.size;
    }
    __atomic_store_n(&h->data_tail, tail, __ATOMIC_RELEASE);
}

void perf_drain(struct perf *p, uint64_t now_ns)
{
    if (!p->on)
        return;
    p->drained_ns = now_ns;
    for (size_t i = 0; i < p->n; i++)
        if (p->v[i].ring)
            drain_one(p, &p->v[i], now_ns);
}

bool perf_take(struct perf *p, pid_t tid, struct perf_tally *out)
{
    uint64_t v;
    if (!p->on || !hmap_get(&p->by_tid, (uint64_t)tid, &v))
        return false;
    struct perf_thread *th = &p->v[v - 1];
    uint64_t d = p->drained_ns;
    uint64_t ran = th->acc_ns;
    if (th->t.known && th->t.oncpu) {
        uint64_t from = th->in_ns > th->since_ns ? th->in_ns : th->since_ns;
        ran += d > from ? d - from : 0;
    }
    *out = th->t;
    out->ran_ns = ran;
    out->span_ns = d > th->since_ns ? d - th->since_ns : 0;
    th->since_ns = d > th->since_ns ? d : th->since_ns;
    th->acc_ns = 0;
    memset(th->t.n, 0, sizeof(th->t.n));
    th->t.nlib = 0;
    return true;
}

enum perf_run perf_run_state(const struct perf *p, pid_t tid)
{
    uint64_t v;
    if (!p->on || !p->switches || !hmap_get(&p->by_tid, (uint64_t)tid, &v))
        return PERF_RUN_UNKNOWN;
    const struct perf_thread *th = &p->v[v - 1];
    if (!th->ring)
        return PERF_RUN_UNKNOWN;
    /* A preempted task stays runnable until it runs again: it cannot block or stop
     * without being switched in first. */
    if (th->t.known && (th->t.oncpu || th->t.preempted))
        return PERF_RUN_RUNNABLE;
    /* Its last record took it off a CPU, not by preemption: it waits in a call (which one,
     * and whether in 'S' or 'D', the records do not say). */
    if (th->t.known && th->t.moved)
        return PERF_RUN_BLOCKED;
    return th->t.moved ? PERF_RUN_UNKNOWN : PERF_RUN_STILL;
}

void perf_prune(struct perf *p)
{
    if (!p->on)
        return;
    size_t k = 0;
    hmap_clear(&p->by_tid);
    for (size_t i = 0; i < p->n; i++) {
        struct perf_thread *t = &p->v[i];
        if (!t->live && t->tid != p->pid) {
            if (t->ring)
                munmap(t->ring, p->ring_len);
            if (t->fd >= 0)
                close(t->fd);
            continue;
        }
        t->live = false;
        p->v[k++] = *t;
        hmap_put(&p->by_tid, (uint64_t)t->tid, k);
    }
    p->n = k;
}

void perf_close(struct perf *p)
{
    for (size_t i = 0; i < p->n; i++) {
        if (p->v[i].ring)
            munmap(p->v[i].ring, p->ring_len);
        if (p->v[i].fd >= 0)
            close(p->v[i].fd);
    }
    free(p->v);
    free(p->ranges);
    for (size_t i = 0; i < p->nlibs; i++)
        free(p->libs[i]);
    free(p->libs);
    hmap_fini(&p->lib_ids);
    hmap_fini(&p->by_tid);
    memset(p, 0, sizeof(*p));
}
