// SPDX-License-Identifier: MIT
// Sampling rounds. The cost of process_vm_readv is the call, not the bytes, so a round is
// built from batched reads: one call re-reads the runtime, every interpreter and every
// thread state known from the previous round, and (3.11+) each thread's data stack and the
// frames outside it that the previous round met, each thread's copies bracketed by two
// reads of its thread state (stack311.c: the copy is used only when proved consistent).
// The walks then run on local copies; what is torn is read again, thread by thread.
// 3.8-3.10 frames are heap objects read one by one (stack38.c).
#include "cpython/pyreader.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cpython/stack.h"
#include "target/mem.h"
#include "target/proc.h"
#include "util/xalloc.h"
#include "util/rawfield.h"

#define PTHREAD_SCAN 4096
/* Spans of the round's batch: the runtime, four per interpreter and two GIL fields, and per
 * thread its state and its group; a group that does not fit is read alone. */
#define SPANS_PER_THREAD 8

static void forget_predictions(struct pyreader *r);

static size_t max_off(const int32_t *offs, size_t n)
{
    int32_t m = 0;
    for (size_t i = 0; i < n; i++)
        if (offs[i] > m)
            m = offs[i];
    return (size_t)m + 8;
}

void pyreader_init(struct pyreader *r, const struct pyruntime *rt, uint32_t max_depth)
{
    memset(r, 0, sizeof(*r));
    r->rt = rt;
    r->max_depth = max_depth ? max_depth : 1;
    codecache_init(&r->codes, rt);
    const struct py_offsets *o = &rt->off;
    int32_t ts_fields[PY_TSTATE_FIELDS];
    offsets_tstate_fields(o, ts_fields);
    r->ts_read = max_off(ts_fields, PY_TSTATE_FIELDS);
    r->blobs = xmalloc(PYREADER_MAX_THREADS * r->ts_read);
    r->tstates = xcalloc(PYREADER_MAX_THREADS, sizeof(*r->tstates));
    r->threads = xcalloc(PYREADER_MAX_THREADS, sizeof(*r->threads));
    if (o->minor >= 11)
        stack311_init(r);
    else
        stack38_init(r);
    r->nspans = 3 + 6 * PYREADER_MAX_INTERPS + SPANS_PER_THREAD * PYREADER_MAX_THREADS +
                stack311_max_spans();
    r->spans = xmalloc(r->nspans * sizeof(*r->spans));
    r->span_ok = xmalloc(r->nspans);
    forget_predictions(r);
    r->capframes = 4096;
    r->frames = xmalloc(r->capframes * sizeof(*r->frames));
    hmap_init(&r->tids);
    hmap_init(&r->listed);
    r->pthread_tid_off = -1;
    uint32_t slots = 64;
    while (slots < 2 * r->max_depth + 64)
        slots *= 2;
    r->seen = xcalloc(slots, sizeof(*r->seen));
    r->seen_gen = xcalloc(slots, sizeof(*r->seen_gen));
    r->seen_mask = slots - 1;
    r->w_code = xmalloc((size_t)r->max_depth * sizeof(*r->w_code));
    r->w_lasti = xmalloc((size_t)r->max_depth * sizeof(*r->w_lasti));
    if (rt->off.minor < 11) {
        r->w_addr = xmalloc((size_t)r->max_depth * sizeof(*r->w_addr));
        r->frame_addr = xmalloc(r->capframes * sizeof(*r->frame_addr));
    }
}

void pyreader_fini(struct pyreader *r)
{
    codecache_fini(&r->codes);
    stack311_fini(r);
    stack38_fini(r);
    free(r->blobs);
    free(r->tstates);
    free(r->threads);
    free(r->spans);
    free(r->span_ok);
    free(r->frames);
    free(r->seen);
    free(r->seen_gen);
    free(r->w_code);
    free(r->w_lasti);
    free(r->w_addr);
    free(r->frame_addr);
    free(r->roots);
    free(r->funcs);
    free(r->pre_addr);
    free(r->pre_buf);
    free(r->pre_ok);
    hmap_fini(&r->tids);
    hmap_fini(&r->listed);
    memset(r, 0, sizeof(*r));
}

uint8_t *stack_blob(struct pyreader *r, size_t i)
{
    return r->blobs + i * r->ts_read;
}

static uint8_t *blob(struct pyreader *r, size_t i)
{
    return stack_blob(r, i);
}

/* --- Structure: interpreters and thread states ------------------------------------------ */

/* Puts `n` spans read at the same moment in address order, so that mem_readv reads the ones
 * sharing a page as one range (structure fields: their order means nothing). */
static void sort_spans(struct mem_span *sp, size_t n)
{
    for (size_t i = 1; i < n; i++)
        for (size_t j = i; j > 0 && sp[j].addr < sp[j - 1].addr; j--) {
            struct mem_span tmp = sp[j];
            sp[j] = sp[j - 1];
            sp[j - 1] = tmp;
        }
}

static void interp_spans(struct pyreader *r, size_t i, struct mem_span *sp)
{
    const struct py_offsets *o = &r->rt->off;
    const int32_t offs[4] = {o->is_next, o->is_tstate_head, o->is_id, o->is_gil_ptr};
    for (int k = 0; k < 4; k++) {
        r->interp_fields[i][k] = 0;
        sp[k] = (struct mem_span){r->interps[i] + (uint64_t)(offs[k] >= 0 ? offs[k] : 0),
                                  &r->interp_fields[i][k], offs[k] >= 0 ? 8 : 0};
    }
}

/* Whether `addr` was met before in this slow walk. A state freed and its memory reused while
 * the lists are read one by one can link back to an earlier one (A -> C -> A): without this
 * the walk would fill every slot with the same few threads. */
static bool listed_before(struct pyreader *r, uint64_t addr)
{
    bool inserted;
    hmap_slot(&r->listed, addr, 1, &inserted);
    return !inserted;
}

/* Walks the lists one read at a time; used on the first round and whenever the cached
 * structure no longer matches. */
static int slow_walk(struct pyreader *r, uint64_t head)
{
    const struct py_offsets *o = &r->rt->off;
    pid_t pid = r->rt->pid;
    r->slow_walks++;
    r->ninterps = 0;
    r->ncached = 0;
    r->cache_valid = false;
    hmap_clear(&r->listed);
    uint64_t ip = head;
    while (ip && r->ninterps < PYREADER_MAX_INTERPS) {
        if (listed_before(r, ip))
            return ERR_CORRUPT;
        size_t i = r->ninterps++;
        r->interps[i] = ip;
        struct mem_span sp[4];
        interp_spans(r, i, sp);
        uint8_t ok[4];
        int bad = mem_readv(pid, sp, 4, ok);
        if (bad < 0)
            return bad;
        if (bad)
            return ERR_CORRUPT;
        uint64_t ts = r->interp_fields[i][1];
        while (ts && r->ncached < PYREADER_MAX_THREADS) {
            if (listed_before(r, ts))
                return ERR_CORRUPT;
            size_t t = r->ncached;
            int rc = mem_read(pid, ts, blob(r, t), r->ts_read);
            if (rc)
                return rc;
            if (raw_u64(blob(r, t), o->ts_interp) != ip)
                return ERR_CORRUPT;
            r->tstates[t] = ts;
            r->ncached++;
            ts = raw_u64(blob(r, t), o->ts_next);
        }
        ip = r->interp_fields[i][0];
    }
    r->cache_valid = true;
    return 0;
}

/* Checks that the batch just read still describes consistent lists: each interpreter's
 * next is the following cached one, each thread list is the cached sequence. */
static bool structure_matches(struct pyreader *r, uint64_t head)
{
    const struct py_offsets *o = &r->rt->off;
    if (!r->ninterps || head != r->interps[0])
        return false;
    size_t t = 0;
    for (size_t i = 0; i < r->ninterps; i++) {
        uint64_t next = i + 1 < r->ninterps ? r->interps[i + 1] : 0;
        if (r->interp_fields[i][0] != next)
            return false;
        uint64_t ts = r->interp_fields[i][1];
        while (ts) {
            if (t >= r->ncached || r->tstates[t] != ts)
                return false;
            if (raw_u64(blob(r, t), o->ts_interp) != r->interps[i])
                return false;
            ts = raw_u64(blob(r, t), o->ts_next);
            t++;
        }
    }
    return t == r->ncached;
}

/* Adds to the batch each interpreter's GIL (3.12) at the address seen last round. */
static size_t predicted_gil_spans(struct pyreader *r, struct mem_span *sp, size_t n)
{
    const struct py_offsets *o = &r->rt->off;
    for (size_t i = 0; i < r->ninterps; i++) {
        r->gil_span[i] = SIZE_MAX;
        if (o->is_gil_ptr < 0 || !r->pred_gil[i] || o->minor >= 13)
            continue;
        r->gil_span[i] = n;
        sp[n++] = (struct mem_span){r->pred_gil[i] + (uint64_t)o->gil_locked, &r->gil_locked[i], 4};
        sp[n++] =
            (struct mem_span){r->pred_gil[i] + (uint64_t)o->gil_last_holder, &r->gil_last[i], 8};
        sort_spans(sp + n - 2, 2);
    }
    return n;
}

static void forget_predictions(struct pyreader *r)
{
    if (r->stk)
        stack311_forget_all(r);
    if (r->stk38)
        stack38_forget_all(r);
    memset(r->pred_gil, 0, sizeof(r->pred_gil));
    for (size_t i = 0; i < PYREADER_MAX_INTERPS; i++)
        r->gil_span[i] = SIZE_MAX;
}

/* One batched read of the runtime, the cached interpreters and thread states and, each right
 * after its thread state, the thread's group of stack copies (3.11+). */
static int read_structure(struct pyreader *r, uint64_t *head, uint64_t now_ns)
{
    const struct py_offsets *o = &r->rt->off;
    uint64_t rt = r->rt->runtime;
    struct mem_span *sp = r->spans;
    uint8_t *ok = r->span_ok;
    size_t n = 0;
    uint64_t fin = r->finalizing;
    /* The runtime and the interpreters (their lists' heads, where a new thread appears) are
     * read at most every PYREADER_LISTS_NS while the cached lists hold: each is a remote range
     * of its own, a third of a one-thread round at 10 kHz. The thread states, read every
     * round, still show a thread that left (its predecessor's `next`, its freed memory); 3.8-
     * 3.11 read the runtime every round for the GIL holder it names. */
    bool lists = !r->cache_valid || now_ns - r->lists_ns >= PYREADER_LISTS_NS;
    *head = r->ninterps ? r->interps[0] : 0;
    if (lists || o->rt_tstate_current >= 0) {
        r->tstate_current = 0;
        sp[n++] = (struct mem_span){rt + (uint64_t)o->rt_interp_head, head, 8};
        sp[n++] = (struct mem_span){rt + (uint64_t)o->rt_finalizing, &fin, 8};
        if (o->rt_tstate_current >= 0)
            sp[n++] = (struct mem_span){rt + (uint64_t)o->rt_tstate_current, &r->tstate_current, 8};
    }
    size_t fixed = n;
    sort_spans(sp, fixed);
    size_t ts_span[PYREADER_MAX_THREADS];
    size_t ninterp_spans = 0;
    if (r->cache_valid) {
        for (size_t i = 0; i < r->ninterps; i++) {
            r->pred_gil[i] = r->interp_fields[i][3];
            if (!lists)
                continue;
            interp_spans(r, i, sp + n);
            sort_spans(sp + n, 4);
            n += 4;
            ninterp_spans += 4;
        }
        size_t room = r->nspans - 2 * PYREADER_MAX_INTERPS;
        for (size_t t = 0; t < r->ncached; t++) {
            ts_span[t] = n;
            sp[n++] = (struct mem_span){r->tstates[t], blob(r, t), r->ts_read};
            if (r->stk)
                r->stk[t].span0 = SIZE_MAX;
            if (r->stk && n + stack311_max_spans() <= room)
                n = stack311_group(r, t, sp, n, false);
            if (r->stk38)
                r->stk38[t].span0 = SIZE_MAX;
            if (r->stk38 && n + stack38_max_spans() <= room)
                n = stack38_group(r, t, sp, n, false);
        }
        n = predicted_gil_spans(r, sp, n);
    } else {
        forget_predictions(r);
    }
    int bad = stack_readv(r, sp, n, ok);
    r->round_slow = r->batch_slow;
    if (bad < 0)
        return bad;
    for (size_t i = 0; i < fixed; i++)
        if (!ok[i])
            return ERR_READ;
    r->finalizing = fin != 0;
    bool valid = r->cache_valid;
    /* Structure spans must all be read; the stack copies may fail (they are redone). */
    for (size_t i = fixed; i < fixed + ninterp_spans && valid; i++)
        valid = ok[i];
    for (size_t t = 0; t < r->ncached && valid; t++)
        valid = ok[ts_span[t]];
    if (valid && structure_matches(r, *head)) {
        if (lists)
            r->lists_ns = now_ns;
        for (size_t i = 0; i < r->ninterps; i++)
            r->gil_ok[i] =
                r->gil_span[i] != SIZE_MAX && ok[r->gil_span[i]] && ok[r->gil_span[i] + 1];
        return 0;
    }
    /* The lists changed: walk them again; the stack predictions follow their threads. */
    uint64_t *old = NULL;
    size_t nold = r->ncached;
    if (nold) {
        old = xmalloc(nold * sizeof(*old));
        memcpy(old, r->tstates, nold * sizeof(*old));
        for (size_t t = 0; t < nold; t++) {
            if (r->stk)
                r->stk[t].span0 = SIZE_MAX;
            if (r->stk38)
                r->stk38[t].span0 = SIZE_MAX;
        }
    }
    memset(r->pred_gil, 0, sizeof(r->pred_gil));
    for (size_t i = 0; i < PYREADER_MAX_INTERPS; i++)
        r->gil_span[i] = SIZE_MAX;
    if (!lists) {
        /* The lists were not read this round: read them before walking them again. */
        uint8_t hok[2];
        struct mem_span hs[2] = {{rt + (uint64_t)o->rt_interp_head, head, 8},
                                 {rt + (uint64_t)o->rt_finalizing, &fin, 8}};
        int hbad = mem_readv(r->rt->pid, hs, 2, hok);
        if (hbad) {
            free(old); /* the target gone mid-round: seen as an 8-byte leak under ASan */
            return hbad < 0 ? hbad : ERR_READ;
        }
        r->finalizing = fin != 0;
    }
    int rc = *head ? slow_walk(r, *head) : 0;
    if (rc == 0)
        r->lists_ns = now_ns;
    if (r->stk && rc == 0)
        stack311_remap(r, old, nold);
    else if (r->stk)
        stack311_forget_all(r);
    if (r->stk38 && rc == 0)
        stack38_remap(r, old, nold);
    else if (r->stk38)
        stack38_forget_all(r);
    free(old);
    return rc;
}

/* --- GIL and thread ids ----------------------------------------------------------------- */

static void read_gil_holders(struct pyreader *r)
{
    const struct py_offsets *o = &r->rt->off;
    memset(r->gil_holder, 0, sizeof(r->gil_holder));
    if (o->is_gil_ptr < 0) {
        for (size_t i = 0; i < r->ninterps; i++)
            r->gil_holder[i] = r->tstate_current;
        return;
    }
    if (o->minor >= 13 && o->ts_status_gil_bit >= 0)
        return; /* each thread state says whether it holds the GIL */
    /* 3.12+: `locked` then `last_holder`; last_holder is the holder only while locked.
     * Interpreters sharing the main GIL point at it; a predicted read is used when the
     * pointer did not change. */
    struct mem_span sp[2 * PYREADER_MAX_INTERPS];
    uint8_t ok[2 * PYREADER_MAX_INTERPS];
    size_t idx[PYREADER_MAX_INTERPS];
    size_t n = 0;
    for (size_t i = 0; i < r->ninterps; i++) {
        uint64_t gil = r->interp_fields[i][3];
        idx[i] = SIZE_MAX;
        if (gil && gil == r->pred_gil[i] && r->gil_ok[i])
            continue;
        r->gil_locked[i] = 0;
        r->gil_last[i] = 0;
        if (!gil)
            continue;
        idx[i] = n;
        sp[n++] = (struct mem_span){gil + (uint64_t)o->gil_locked, &r->gil_locked[i], 4};
        sp[n++] = (struct mem_span){gil + (uint64_t)o->gil_last_holder, &r->gil_last[i], 8};
    }
    if (n && mem_readv(r->rt->pid, sp, n, ok) < 0)
        return;
    for (size_t i = 0; i < r->ninterps; i++) {
        bool good = idx[i] == SIZE_MAX ? r->interp_fields[i][3] != 0 : ok[idx[i]] && ok[idx[i] + 1];
        if (good && r->gil_locked[i] == 1)
            r->gil_holder[i] = r->gil_last[i];
        r->pred_gil[i] = r->interp_fields[i][3];
        r->gil_ok[i] = false;
    }
}

/* 3.8-3.10 keep only pthread_self() in the thread state. The kernel tid sits at a fixed
 * offset of glibc's struct pthread; find it once as the offset where the main thread's
 * struct holds the process id (the main thread's tid), as Austin does. */
static void infer_tid_offset(struct pyreader *r)
{
    pid_t pid = r->rt->pid;
    pid_t nspid = proc_nspid(pid);
    pid_t tids[PYREADER_MAX_THREADS];
    size_t ntids = 0;
    if (proc_tasks(pid, tids, PYREADER_MAX_THREADS, &ntids))
        return;
    uint8_t *buf = xmalloc(PTHREAD_SCAN);
    for (size_t t = 0; t < r->nthreads && r->pthread_tid_off < 0; t++) {
        uint64_t pt = r->threads[t].pthread_id;
        if (!pt || mem_read(pid, pt, buf, PTHREAD_SCAN))
            continue;
        for (int32_t off = 0; off + 4 <= PTHREAD_SCAN; off += 4) {
            if (raw_i32(buf, off) != nspid)
                continue;
            /* Confirm with the other threads: each must hold a different one of the
             * process's tids (some other fields hold the pid in every thread). */
            bool all = true;
            size_t confirmed = 0;
            int32_t vals[PYREADER_MAX_THREADS];
            for (size_t u = 0; u < r->nthreads && all; u++) {
                uint64_t pu = r->threads[u].pthread_id;
                vals[u] = -1 - (int32_t)u; /* distinct placeholder for a skipped thread */
                bool dup = false;
                for (size_t k = 0; k < r->nthreads && !dup; k++)
                    dup = k != u && r->threads[k].pthread_id == pu;
                if (dup)
                    continue; /* a new thread still holding its creator's id */
                if (!pu || mem_read(pid, pu + (uint64_t)off, &vals[u], 4)) {
                    all = false;
                    break;
                }
                bool found = false;
                for (size_t k = 0; k < ntids && !found; k++)
                    found = tids[k] == vals[u];
                for (size_t k = 0; k < u && found; k++)
                    found = vals[k] != vals[u];
                all = found;
                confirmed++;
            }
            if (all && confirmed >= 2) {
                r->pthread_tid_off = off;
                break;
            }
        }
    }
    free(buf);
}

static pid_t thread_tid(struct pyreader *r, struct pythread *th, const uint8_t *b)
{
    const struct py_offsets *o = &r->rt->off;
    if (o->ts_native_thread_id >= 0)
        return (pid_t)raw_u64(b, o->ts_native_thread_id);
    /* 3.8-3.10: a new thread's state first holds its creator's pthread id, until the new
     * thread runs and stores its own: the id is part of the key so that a tid read in that
     * window is not kept, and a thread sharing its pthread id with a later one in the list
     * (its creator) gets no tid this round. */
    for (const struct pythread *u = th + 1; u < r->threads + r->nthreads; u++)
        if (u->pthread_id == th->pthread_id)
            return 0;
    uint64_t key = hmap_hash64(hmap_hash64(th->tstate ^ (th->ts_id << 1)) ^ th->pthread_id) | 1;
    uint64_t v;
    if (hmap_get(&r->tids, key, &v))
        return (pid_t)v;
    if (r->pthread_tid_off < 0)
        return r->nthreads == 1 ? r->rt->pid : 0; /* a lone thread is the main thread */
    int32_t tid = 0;
    if (mem_read(r->rt->pid, th->pthread_id + (uint64_t)r->pthread_tid_off, &tid, 4) || tid <= 0)
        return 0;
    hmap_put(&r->tids, key, (uint64_t)tid);
    return tid;
}

/* --- Shared by the walks ------------------------------------------------------------------ */

void stack_walk_begin(struct pyreader *r)
{
    r->gen++;
    if (r->gen == 0) {
        memset(r->seen_gen, 0, (r->seen_mask + 1) * sizeof(*r->seen_gen));
        r->gen = 1;
    }
}

bool stack_seen_before(struct pyreader *r, uint64_t addr)
{
    uint32_t i = (uint32_t)hmap_hash64(addr) & r->seen_mask;
    for (uint32_t probes = 0; r->seen_gen[i] == r->gen; probes++) {
        if (r->seen[i] == addr || probes > r->seen_mask)
            return true; /* a cycle, or more frames than any bounded walk visits */
        i = (i + 1) & r->seen_mask;
    }
    r->seen_gen[i] = r->gen;
    r->seen[i] = addr;
    return false;
}

/* A read of n spans that takes longer than this was held up: a span costs ~0.35 us here
 * (p99 0.5 us, churn target, 3.10), a preempted reader loses a scheduler slice (ms). */
#define SLOW_READ_NS(n) (20000 + 1000 * (uint64_t)(n))

static uint64_t mono_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

int stack_readv(struct pyreader *r, const struct mem_span *sp, size_t n, uint8_t *ok)
{
    uint64_t t0 = mono_ns();
    int bad = mem_readv(r->rt->pid, sp, n, ok);
    r->batch_slow = mono_ns() - t0 > SLOW_READ_NS(n);
    return bad;
}

void stack_remap(struct pyreader *r, void *slots, size_t elem, const uint64_t *old_tstates,
                 size_t nold, void (*forget)(void *slot))
{
    size_t n = r->ncached > nold ? r->ncached : nold;
    if (!n)
        return;
    /* Slots past the first n keep calloc's zeroes until a thread comes to them: untouched,
     * they cost no memory (4096 slots of ~14 KiB each). */
    if (n > r->slots_used)
        r->slots_used = n;
    /* A permutation of the first n slots: each keeps its buffers, predictions follow their
     * thread. */
    uint8_t *base = slots, *tmp = xmalloc(n * elem);
    memcpy(tmp, base, n * elem);
    uint8_t *used = xcalloc(n, 1), *filled = xcalloc(n, 1);
    for (size_t t = 0; t < r->ncached; t++)
        for (size_t j = 0; j < nold; j++)
            if (!used[j] && old_tstates[j] == r->tstates[t]) {
                memcpy(base + t * elem, tmp + j * elem, elem);
                used[j] = filled[t] = 1;
                break;
            }
    size_t j = 0;
    for (size_t t = 0; t < n; t++) {
        if (filled[t])
            continue;
        while (used[j])
            j++;
        memcpy(base + t * elem, tmp + j * elem, elem);
        used[j] = 1;
        forget(base + t * elem);
    }
    free(tmp);
    free(used);
    free(filled);
}

void stack_push_frame(struct pyreader *r, struct pythread *th, uint32_t code, struct pyloc pos,
                      bool entry, uint64_t addr)
{
    if (r->nframes == r->capframes) {
        r->capframes *= 2;
        r->frames = xrealloc(r->frames, r->capframes * sizeof(*r->frames));
        if (r->frame_addr)
            r->frame_addr = xrealloc(r->frame_addr, r->capframes * sizeof(*r->frame_addr));
    }
    if (r->frame_addr)
        r->frame_addr[r->nframes] = addr;
    r->frames[r->nframes++] = (struct pyframe){code, pos.line, entry, pos.col, pos.loc};
    th->nframes++;
}

/* --- The round ---------------------------------------------------------------------------- */

static void fill_threads(struct pyreader *r)
{
    const struct py_offsets *o = &r->rt->off;
    size_t t = 0;
    for (size_t i = 0; i < r->ninterps; i++) {
        uint64_t ts = r->interp_fields[i][1];
        size_t first = t, claims = 0;
        while (ts && t < r->ncached) {
            const uint8_t *b = blob(r, t);
            struct pythread *th = &r->threads[t];
            memset(th, 0, sizeof(*th));
            th->tstate = ts;
            th->interp = r->interps[i];
            th->interp_id = (int64_t)r->interp_fields[i][2];
            th->ts_id = raw_u64(b, o->ts_id);
            th->pthread_id = raw_u64(b, o->ts_thread_id);
            if (o->ts_status_gil_bit >= 0 && o->is_gil_ptr >= 0 && o->minor >= 13) {
                uint32_t status = (uint32_t)raw_i32(b, o->ts_status);
                th->gil = (status >> o->ts_status_gil_bit) & 1;
            } else {
                th->gil = r->gil_holder[i] == ts;
            }
            claims += th->gil;
            ts = raw_u64(b, o->ts_next);
            t++;
        }
        /* 3.13: the thread states are copied one after another, and the GIL can pass from
         * one to the next in between: both then read as holding it. Which one does is
         * unknown, so neither is said to (rare: seen once in a CI run of `crux dump`). */
        if (claims > 1) {
            for (size_t k = first; k < t; k++)
                r->threads[k].gil = false;
            r->gil_torn++;
        }
    }
    r->nthreads = t;
}

/* Empties slot `t`'s stack for another attempt (its frames are the last in r->frames). */
static void clear_stack(struct pyreader *r, struct pythread *th)
{
    r->nframes = th->first;
    th->nframes = 0;
    th->truncated = false;
}

/* 3.8-3.10: re-reads the thread state of slot `t`, after a walk found its frames torn. */
static int refresh_state(struct pyreader *r, size_t t)
{
    const struct py_offsets *o = &r->rt->off;
    struct pythread *th = &r->threads[t];
    uint8_t *b = blob(r, t);
    int rc = mem_read(r->rt->pid, th->tstate, b, r->ts_read);
    if (rc)
        return rc;
    if (raw_u64(b, o->ts_interp) != th->interp || raw_u64(b, o->ts_id) != th->ts_id)
        return ERR_CORRUPT;
    return 0;
}

/* One attempt at slot `t`'s stack: the first from the round's batch, later ones alone. */
static int attempt(struct pyreader *r, size_t t, int tries, uint64_t now_ns)
{
    struct pythread *th = &r->threads[t];
    if (r->rt->off.minor >= 11) {
        if (tries == 0) {
            int rc = stack311_check(r, t, r->span_ok);
            return rc ? rc : stack311_walk(r, t, now_ns);
        }
        return stack311_read_alone(r, t, now_ns);
    }
    (void)th;
    if (tries == 0)
        return stack38_walk_group(r, t, r->span_ok, now_ns);
    return stack38_read_alone(r, t, now_ns);
}

/* Attempts at one torn thread in a round, and the round's budget for attempts after each
 * thread's second. A 3.11+ thread's first attempt fails whenever the round's prediction
 * missed (a new thread, a deeper stack, another nested eval loop), so the second is free;
 * short-lived generator frames (a `sum(x for x in ...)` in a loop) tear a busy thread's
 * walks often enough that one retry left 2% of examples/pipeline.py's samples dropped. The
 * budget bounds a round over many threads whose stacks stay unreadable. */
#define PYREADER_TRIES 8
#define PYREADER_RETRY_BUDGET 32

/* Reads slot `t`'s stack, retrying what is torn; the error when it could not. */
static int read_thread(struct pyreader *r, size_t t, int *budget, uint64_t now_ns)
{
    struct pythread *th = &r->threads[t];
    int err = attempt(r, t, 0, now_ns);
    for (int tries = 1; err && err != ERR_PROC_GONE && tries < PYREADER_TRIES; tries++) {
        if (tries >= 2 && (*budget)-- <= 0)
            break;
        if (err == ERR_CORRUPT)
            r->torn++;
        r->retries++;
        clear_stack(r, th);
        err = attempt(r, t, tries, now_ns);
    }
    if (r->stk)
        stack311_predict(r, t); /* what the next round's batch copies */
    if (r->stk38)
        stack38_predict(r, t);
    return err;
}

int pyreader_sample(struct pyreader *r, uint64_t now_ns, struct errbuf *eb)
{
    const struct py_offsets *o = &r->rt->off;
    r->rounds++;
    r->nthreads = 0;
    r->nframes = 0;
    codecache_round(&r->codes);
    uint64_t head = 0;
    int rc = read_structure(r, &head, now_ns);
    if (rc == ERR_PROC_GONE || rc == ERR_PERM)
        return errbuf_set(eb, rc, "cannot read process %d: %s", (int)r->rt->pid, err_str(rc));
    if (rc) {
        /* A list changed while we walked it: drop this round, rebuild next time. */
        r->cache_valid = false;
        r->dropped++;
        return 0;
    }
    if (!head || r->finalizing)
        return 0;
    read_gil_holders(r);
    fill_threads(r);
    if (o->minor < 11 && r->pthread_tid_off < 0 && r->nthreads >= 2) {
        /* Inference needs a second thread to confirm the offset: in the main thread alone
         * more than one field can hold the process id. */
        infer_tid_offset(r);
    }
    int budget = PYREADER_RETRY_BUDGET;
    for (size_t t = 0; t < r->nthreads; t++) {
        struct pythread *th = &r->threads[t];
        th->first = (uint32_t)r->nframes;
        th->err = read_thread(r, t, &budget, now_ns);
        /* After the read: a retry reads the thread state again (3.8-3.10 into the blob),
         * and a thread that started meantime no longer holds its creator's id. */
        if (r->stk38)
            th->pthread_id = raw_u64(blob(r, t), r->rt->off.ts_thread_id);
        th->tid = thread_tid(r, th, blob(r, t));
        pid_t fresh;
        if (r->stk && stack311_fresh_tid(r, t, &fresh))
            th->tid = fresh;
        if (th->err == ERR_PROC_GONE)
            return errbuf_set(eb, ERR_PROC_GONE, "process %d exited", (int)r->rt->pid);
        if (th->err) {
            r->err_counts[-th->err < 16 ? -th->err : 15]++;
            clear_stack(r, th);
        }
    }
    if (o->minor < 11 && r->pthread_tid_off < 0 && r->nthreads >= 2) {
        /* A thread that started during the round was read again with its own pthread id:
         * the offset may be found now, and the tids it gives are this round's. */
        infer_tid_offset(r);
        for (size_t t = 0; t < r->nthreads && r->pthread_tid_off >= 0; t++)
            if (!r->threads[t].tid)
                r->threads[t].tid = thread_tid(r, &r->threads[t], blob(r, t));
    }
    if (o->minor < 11)
        stack38_drop_shared_roots(r);
    return 0;
}

int pyreader_reread_thread(struct pyreader *r, size_t t, uint64_t now_ns)
{
    struct pythread *th = &r->threads[t];
    bool new_frames = r->rt->off.minor >= 11;
    if (!new_frames)
        stack38_preread(r, th);
    th->first = (uint32_t)r->nframes;
    th->nframes = 0;
    th->truncated = false;
    int err;
    if (new_frames) {
        /* The thread is stopped: its state cannot move, so attempts differ only by what the
         * previous one found missing (outside frames, older chunks). */
        err = stack311_read_alone(r, t, now_ns);
        for (int tries = 1; err == ERR_AGAIN && tries < 4; tries++) {
            clear_stack(r, th);
            err = stack311_read_alone(r, t, now_ns);
        }
        stack311_predict(r, t);
    } else {
        err = refresh_state(r, t);
        if (!err) {
            stack_walk_begin(r);
            err = stack38_walk(r, th, raw_u64(blob(r, t), r->rt->off.ts_frame), now_ns);
        }
        r->pre_n = 0;
    }
    th->err = err;
    if (err)
        clear_stack(r, th);
    return err;
}
