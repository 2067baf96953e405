// SPDX-License-Identifier: MIT
// Time categories (categorize.h).
//
// On CPU: the kernel samples each thread every `period` of its CPU time. In the interval
// since the last round the majority of a thread's samples decides: libpython or the
// executable -> python; other user code -> native; kernel mode -> system. Samples in libc
// and the loader (malloc, memcpy) go to python while the thread holds the GIL (the
// interpreter called them) and to native otherwise (an extension that released the GIL).
// The kernel samples come at most every 2 ms of a thread's CPU time (sampler.c): fewer than
// one per round at high rates, because each interrupts the target. A running thread with no
// kernel sample in the interval that was on a CPU for at least half of it (the context-switch
// records say) takes the category of its last sampled interval in the same function (a
// few functions per thread are remembered); elsewhere, or when it ran less (it may have
// been runnable but waiting for a CPU), see below; a function not remembered counts as
// "cpu" (a thread that just woke from a sleep must not inherit the native time of the call
// before the sleep).
// A thread that was off CPU in the previous round and has not been switched in since (no
// record in its ring) is still in the same wait: its state and category are not read again
// (cat_known_state); one that is on a CPU, or was preempted off one, is runnable, for up to
// CAT_RECHECK_NS; one whose last record took it off a CPU by a wait is asleep, and only its
// system call is read. Off CPU: blocked in futex() on the GIL's condition variable or mutex -> gil,
// anything else -> system.
//
// Beside the category, each sample gets the kernel's evidence for the verdict: on CPU, the
// mapped file most of the interval's samples fell in, classified by name (BLAS, torch ->
// model; _pickle, _json -> serialization; ...); off CPU, the system call and what its file
// descriptors are (target/waits.h).
#include "sampler/categorize.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "profile/profile.h"
#include "target/proc.h"
#include "util/xalloc.h"

/* Mapped files by what running in them means for the verdict: the first pattern found in the
 * file's name (or, for patterns with a '/', its path) decides. */
static const struct {
    const char *pat;
    uint8_t kind;
} LIBRARY_KINDS[] = {
    /* model and numeric compute */
    {"openblas", EV_CPU_MODEL},
    {"libblas", EV_CPU_MODEL},
    {"libcblas", EV_CPU_MODEL},
    {"liblapack", EV_CPU_MODEL},
    {"libmkl", EV_CPU_MODEL},
    {"libgomp", EV_CPU_MODEL},
    {"libiomp", EV_CPU_MODEL},
    {"libomp", EV_CPU_MODEL},
    {"libgfortran", EV_CPU_MODEL},
    {"libtorch", EV_CPU_MODEL},
    {"libc10", EV_CPU_MODEL},
    {"onnxruntime", EV_CPU_MODEL},
    {"libxgboost", EV_CPU_MODEL},
    {"lib_lightgbm", EV_CPU_MODEL},
    {"libfaiss", EV_CPU_MODEL},
    {"_multiarray_umath", EV_CPU_MODEL},
    {"_umath_linalg", EV_CPU_MODEL},
    {"lapack_lite", EV_CPU_MODEL},
    {"_pocketfft", EV_CPU_MODEL},
    {"/torch/", EV_CPU_MODEL},
    {"/sklearn/", EV_CPU_MODEL},
    {"/scipy/", EV_CPU_MODEL},
    {"/jaxlib/", EV_CPU_MODEL},
    {"/tensorflow/", EV_CPU_MODEL},
    {"/numpy/", EV_CPU_MODEL},
    /* serialization */
    {"_pickle", EV_CPU_SERIAL},
    {"_json", EV_CPU_SERIAL},
    {"_yaml", EV_CPU_SERIAL},
    {"libyaml", EV_CPU_SERIAL},
    {"orjson", EV_CPU_SERIAL},
    {"msgpack", EV_CPU_SERIAL},
    {"ujson", EV_CPU_SERIAL},
    {"_speedups", EV_CPU_SERIAL},
    {"/google/protobuf/", EV_CPU_SERIAL},
    /* tokenizers */
    {"tokenizers", EV_CPU_TOKEN},
    {"tiktoken", EV_CPU_TOKEN},
    {"sentencepiece", EV_CPU_TOKEN},
};

static const char *base_of(const char *path)
{
    const char *s = strrchr(path, '/');
    return s ? s + 1 : path;
}

uint8_t cat_library_kind(const char *path)
{
    const char *base = base_of(path);
    for (size_t i = 0; i < sizeof(LIBRARY_KINDS) / sizeof(LIBRARY_KINDS[0]); i++) {
        const char *pat = LIBRARY_KINDS[i].pat;
        if (strstr(strchr(pat, '/') ? path : base, pat))
            return LIBRARY_KINDS[i].kind;
    }
    return EV_CPU_NATIVE;
}

static void ev_set(struct cat_evidence *ev, uint8_t kind, const char *label)
{
    size_t n = strnlen(label, sizeof(ev->label) - 1); /* a long library name is cut */
    ev->kind = kind;
    memcpy(ev->label, label, n);
    ev->label[n] = '\0';
}

void cat_init(struct categorizer *c, pid_t pid, const char *python_path, uint64_t period_ns)
{
    memset(c, 0, sizeof(*c));
    c->pid = pid;
    hmap_init(&c->by_tid);
    waits_init(&c->waits, pid);
    perf_open(&c->perf, pid, python_path, period_ns);
}

void cat_fini(struct categorizer *c)
{
    for (size_t i = 0; i < c->n; i++)
        if (c->v[i].syscall_fd >= 0)
            close(c->v[i].syscall_fd);
    free(c->v);
    hmap_fini(&c->by_tid);
    waits_fini(&c->waits);
    perf_close(&c->perf);
    memset(c, 0, sizeof(*c));
}

void cat_round(struct categorizer *c, uint64_t now_ns)
{
    c->round++;
    c->round_ns = now_ns;
    waits_round(&c->waits);
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
    c->v[c->n] = (struct cat_thread){.tid = tid, .syscall_fd = -1};
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

/* Reads what thread `t` is blocked in; false when it cannot be read. */
static bool read_call(struct categorizer *c, struct cat_thread *t, struct wait_call *call)
{
    if (t->syscall_fd < 0) {
        t->syscall_fd = proc_task_open(c->pid, t->tid, "syscall");
        if (t->syscall_fd < 0)
            return false;
    }
    char line[256];
    ssize_t n = pread(t->syscall_fd, line, sizeof(line) - 1, 0);
    c->syscall_reads++;
    if (n <= 0)
        return false;
    line[n] = 0;
    return waits_parse(line, call);
}

/* The category and evidence of a thread that is not running; CAT_NONE when its state was
 * inferred (cat_known_state) and its call file shows it out of any call: it woke since the
 * switch records were drained, and is runnable. */
static uint8_t off_cpu(struct categorizer *c, struct cat_thread *t, char state, bool gil,
                       uint64_t gil_lo, uint64_t gil_hi, struct cat_evidence *ev)
{
    struct wait_call call;
    bool inferred = t->inferred_round == c->round;
    bool got_call = read_call(c, t, &call);
    if (inferred && got_call && (call.running || call.nr < 0))
        return CAT_NONE;
    if (!got_call) {
        ev_set(ev, state == 'D' ? EV_WAIT_FILE : EV_NONE, state == 'D' ? "disk wait" : "");
        return CAT_SYSTEM;
    }
    if (call.nr == SYS_futex) {
        if (!gil && gil_lo && gil_hi > gil_lo && call.args[0] >= gil_lo && call.args[0] < gil_hi) {
            ev_set(ev, EV_WAIT_GIL, "futex: the GIL");
            return CAT_GIL;
        }
        ev_set(ev, EV_WAIT_LOCK, "futex: a lock, queue or condition");
        return CAT_SYSTEM;
    }
    char label[WAITS_LABEL_MAX];
    enum wait_kind k = waits_classify(&c->waits, &call, label);
    static const uint8_t kinds[] = {
        [WAIT_UNKNOWN] = EV_NONE,   [WAIT_NET] = EV_WAIT_NET,    [WAIT_IPC] = EV_WAIT_IPC,
        [WAIT_FILE] = EV_WAIT_FILE, [WAIT_LOCK] = EV_WAIT_LOCK,  [WAIT_SLEEP] = EV_WAIT_SLEEP,
        [WAIT_IDLE] = EV_WAIT_IDLE, [WAIT_FUTEX] = EV_WAIT_LOCK, [WAIT_OTHER] = EV_WAIT_OTHER,
        [WAIT_UNIX] = EV_WAIT_NET};
    uint8_t kind = kinds[k];
    if (kind == EV_NONE && state == 'D')
        ev_set(ev, EV_WAIT_FILE, "disk wait");
    else
        ev_set(ev, kind, label);
    return CAT_SYSTEM;
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

/* The evidence of an on-CPU sample in category `cat`, from the interval's samples. */
static void on_cpu_evidence(struct categorizer *c, const struct perf_tally *t, uint8_t cat,
                            struct cat_evidence *ev)
{
    if (cat == CAT_SYSTEM) {
        ev_set(ev, EV_CPU_KERNEL, "the kernel");
        return;
    }
    if (cat == CAT_PYTHON) {
        ev_set(ev, EV_CPU_PYTHON, base_of(c->perf.python_path));
        return;
    }
    /* Native: the file most native samples fell in (libc counts only when nothing else). */
    uint16_t best = PERF_LIB_NONE, libc = PERF_LIB_NONE;
    uint32_t n = 0;
    for (uint8_t i = 0; i < t->nlib; i++) {
        const char *path = perf_lib_path(&c->perf, t->lib[i]);
        enum perf_where w = perf_classify_path(path, c->perf.python_path);
        if (w == PERF_LIBC)
            libc = t->lib[i];
        else if (w == PERF_NATIVE && t->lib_n[i] > n) {
            n = t->lib_n[i];
            best = t->lib[i];
        }
    }
    if (best == PERF_LIB_NONE)
        best = libc;
    const char *path = perf_lib_path(&c->perf, best);
    if (!path[0]) {
        ev_set(ev, EV_CPU_NATIVE, "native code");
        return;
    }
    ev_set(ev, best == libc ? EV_CPU_NATIVE : cat_library_kind(path), base_of(path));
}

bool cat_known_state(struct categorizer *c, pid_t tid, char *state)
{
    uint64_t v;
    if (!c->perf.on || !c->perf.switches || !hmap_get(&c->by_tid, (uint64_t)tid, &v))
        return false;
    struct cat_thread *t = &c->v[v - 1];
    if (t->seen_round + 1 != c->round || c->round_ns - t->state_ns >= CAT_RECHECK_NS)
        return false;
    enum perf_run k = perf_run_state(&c->perf, tid);
    if (k == PERF_RUN_BLOCKED) {
        /* Asleep again after running: its call is read fresh (cat_of), its /proc state
         * is not ('S' or 'D' changes only the label of a wait the call cannot name); the
         * state is still read every CAT_RECHECK_NS. */
        *state = 'S';
        t->inferred_round = c->round;
        c->states_reused++;
        return true;
    }
    if (k == PERF_RUN_RUNNABLE)
        *state = 'R';
    else if (k == PERF_RUN_STILL && t->off_valid)
        *state = t->state;
    else
        return false;
    t->reuse_round = c->round;
    c->states_reused++;
    return true;
}

static void memo_put(struct cat_thread *t, uint64_t leaf, uint8_t cat,
                     const struct cat_evidence *ev)
{
    struct cat_memo *m = NULL;
    for (int i = 0; i < CAT_MEMO && !m; i++)
        if (t->memo[i].leaf == leaf)
            m = &t->memo[i];
    if (!m) {
        m = &t->memo[t->memo_next];
        t->memo_next = (uint8_t)((t->memo_next + 1) % CAT_MEMO);
    }
    m->leaf = leaf;
    m->cat = cat;
    m->ev = *ev;
}

static const struct cat_memo *memo_get(const struct cat_thread *t, uint64_t leaf)
{
    for (int i = 0; i < CAT_MEMO; i++)
        if (t->memo[i].leaf == leaf && leaf)
            return &t->memo[i];
    return NULL;
}

uint8_t cat_of(struct categorizer *c, pid_t tid, char *statep, bool gil, uint64_t gil_lo,
               uint64_t gil_hi, uint64_t leaf, struct cat_evidence *ev)
{
    char state = *statep;
    struct cat_thread *t = thread_of(c, tid);
    t->live = true;
    perf_track(&c->perf, tid);
    struct perf_tally tally;
    bool have = perf_take(&c->perf, tid, &tally);
    ev_set(ev, EV_NONE, "");
    ev->waited = false;
    bool reused = t->reuse_round == c->round;
    if (!reused && t->inferred_round != c->round)
        t->state_ns = c->round_ns; /* read from /proc this round */
    t->seen_round = c->round;
    if (state != 'R') {
        if (reused && t->off_valid) {
            *ev = t->off_ev; /* not switched in since: the same wait */
            return t->off_cat;
        }
        uint8_t oc = off_cpu(c, t, state, gil, gil_lo, gil_hi, ev);
        if (oc != CAT_NONE) {
            t->off_valid = true;
            t->state = state;
            t->off_cat = oc;
            t->off_ev = *ev;
            return oc;
        }
        state = *statep = 'R'; /* asleep at the last switch record, running now */
    }
    t->off_valid = false;
    if (!c->perf.on)
        return CAT_CPU;
    uint8_t cat = have ? from_tally(&tally, gil) : CAT_NONE;
    /* On a CPU now, or taken off one by preemption (not by a wait), or on one for half the
     * interval or more: it worked, whatever its system call file says (it reads "running"
     * or -1 for such a thread), so the file is not read. */
    bool busy =
        have && c->perf.switches && tally.known &&
        (tally.oncpu || tally.preempted || (tally.span_ns && tally.ran_ns * 2 >= tally.span_ns));
    if (cat == CAT_NONE && !busy) {
        /* Runnable with no CPU time since the last round. Inside a blocking system call (a
         * read woken by data, a futex handed its lock) the thread is still in its wait, only
         * behind other work for a CPU: the call's file says which (a task that is not on a
         * CPU shows its system call there; one preempted in user code shows -1). */
        struct wait_call call;
        if (read_call(c, t, &call)) {
            struct cat_evidence w = {EV_NONE, "", false};
            uint8_t wc =
                call.nr == SYS_futex ? off_cpu(c, t, 'S', gil, gil_lo, gil_hi, &w) : CAT_NONE;
            if (call.nr != SYS_futex) {
                char label[WAITS_LABEL_MAX];
                enum wait_kind k = waits_classify(&c->waits, &call, label);
                static const uint8_t kinds[] = {
                    [WAIT_UNKNOWN] = EV_NONE,   [WAIT_NET] = EV_WAIT_NET,
                    [WAIT_IPC] = EV_WAIT_IPC,   [WAIT_FILE] = EV_NONE,
                    [WAIT_LOCK] = EV_WAIT_LOCK, [WAIT_SLEEP] = EV_WAIT_SLEEP,
                    [WAIT_IDLE] = EV_WAIT_IDLE, [WAIT_FUTEX] = EV_WAIT_LOCK,
                    [WAIT_OTHER] = EV_NONE,     [WAIT_UNIX] = EV_WAIT_NET};
                if (kinds[k] != EV_NONE) {
                    ev_set(&w, kinds[k], label);
                    wc = CAT_SYSTEM;
                }
            }
            if (wc != CAT_NONE) {
                *ev = w;
                ev->waited = true;
                return wc;
            }
        }
    }
    if (cat != CAT_NONE) {
        on_cpu_evidence(c, &tally, cat, ev);
        memo_put(t, leaf, cat, ev);
        return cat;
    }
    const struct cat_memo *m = memo_get(t, leaf);
    if (!m)
        return CAT_CPU;
    *ev = m->ev;
    return m->cat;
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
