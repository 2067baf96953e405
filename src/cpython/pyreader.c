// SPDX-License-Identifier: MIT
// Sampling rounds. The cost of process_vm_readv is the call, not the bytes, so a round is
// built from batched reads: one call re-reads the runtime, every interpreter and every
// thread state known from the previous round; a second reads, for all threads at once, the
// live part of each data stack (3.11+), where every thread-owned frame lives. The walk then
// runs on local copies; only frames outside (generators, frame objects, <= 3.10 heap frames)
// are read one by one.
#include "cpython/pyreader.h"

#include <stdlib.h>
#include <string.h>

#include "target/mem.h"
#include "target/proc.h"
#include "util/xalloc.h"
#include "util/rawfield.h"

#define OWNER_GENERATOR 1
#define OWNER_CSTACK 3 /* 3.12, 3.13: the entry frame each eval call pushes on the C stack */
#define FRAME_READ_MAX 512
#define PTHREAD_SCAN 4096
#define PYREADER_PREREAD_MAX 1024 /* frames read in one batch by a 3.8-3.10 re-read */

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
    r->chunks = xcalloc(PYREADER_MAX_THREADS, sizeof(*r->chunks));
    r->cframe_vals = xcalloc(PYREADER_MAX_THREADS, sizeof(*r->cframe_vals));
    r->pred = xcalloc(PYREADER_MAX_THREADS, sizeof(*r->pred));
    r->nspans = 3 + 6 * PYREADER_MAX_INTERPS + (3 + PYREADER_EXTRA) * PYREADER_MAX_THREADS;
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
    for (size_t i = 0; i < PYREADER_MAX_THREADS; i++)
        free(r->chunks[i].buf);
    free(r->chunks);
    free(r->blobs);
    free(r->tstates);
    free(r->threads);
    free(r->cframe_vals);
    for (size_t t = 0; t < PYREADER_MAX_THREADS; t++)
        free(r->pred[t].extra_buf);
    free(r->pred);
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
    free(r->pre_addr);
    free(r->pre_buf);
    free(r->pre_ok);
    free(r->old_buf);
    hmap_fini(&r->tids);
    hmap_fini(&r->listed);
    memset(r, 0, sizeof(*r));
}

static uint8_t *blob(struct pyreader *r, size_t i)
{
    return r->blobs + i * r->ts_read;
}

/* --- Structure: interpreters and thread states ------------------------------------------ */

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

/* Adds to the batch the reads predicted from the previous round: each interpreter's GIL
 * (3.12+) and, per thread (3.11+), its data-stack chunk and its cframe's current frame at the
 * addresses seen last time. In a steady state the whole round is then this one call. */
static size_t predicted_spans(struct pyreader *r, struct mem_span *sp, size_t n)
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
    }
    for (size_t t = 0; t < r->ncached && o->minor >= 11; t++) {
        struct pypredict *pr = &r->pred[t];
        pr->chunk_span = pr->cframe_span = SIZE_MAX;
        if (pr->len) {
            if (!r->chunks[t].buf)
                r->chunks[t].buf = xmalloc(PYREADER_CHUNK_MAX);
            pr->chunk_span = n;
            sp[n++] = (struct mem_span){pr->chunk, r->chunks[t].buf, pr->len};
        }
        for (unsigned i = 0; i < pr->nextra; i++) {
            if (!pr->extra_buf)
                pr->extra_buf = xmalloc(PYREADER_EXTRA * PYREADER_EXTRA_BYTES);
            pr->extra_span[i] = n;
            sp[n++] = (struct mem_span){pr->extra[i], pr->extra_buf + i * PYREADER_EXTRA_BYTES,
                                        (size_t)o->if_size};
        }
        if (pr->cframe && o->cf_current_frame >= 0) {
            pr->cframe_span = n;
            sp[n++] =
                (struct mem_span){pr->cframe + (uint64_t)o->cf_current_frame, &pr->cframe_val, 8};
        }
    }
    return n;
}

static void forget_predictions(struct pyreader *r)
{
    for (size_t t = 0; t < PYREADER_MAX_THREADS; t++) {
        uint8_t *keep = r->pred[t].extra_buf;
        memset(&r->pred[t], 0, sizeof(r->pred[t]));
        r->pred[t].extra_buf = keep;
    }
    memset(r->pred_gil, 0, sizeof(r->pred_gil));
    for (size_t i = 0; i < PYREADER_MAX_INTERPS; i++)
        r->gil_span[i] = SIZE_MAX;
}

/* One batched read of the runtime, the cached interpreters and thread states, and the
 * predicted stacks. */
static int read_structure(struct pyreader *r, uint64_t *head)
{
    const struct py_offsets *o = &r->rt->off;
    uint64_t rt = r->rt->runtime;
    struct mem_span *sp = r->spans;
    uint8_t *ok = r->span_ok;
    size_t n = 0;
    uint64_t fin = 0;
    r->tstate_current = 0;
    sp[n++] = (struct mem_span){rt + (uint64_t)o->rt_interp_head, head, 8};
    sp[n++] = (struct mem_span){rt + (uint64_t)o->rt_finalizing, &fin, 8};
    if (o->rt_tstate_current >= 0)
        sp[n++] = (struct mem_span){rt + (uint64_t)o->rt_tstate_current, &r->tstate_current, 8};
    size_t fixed = n;
    if (r->cache_valid) {
        for (size_t i = 0; i < r->ninterps; i++) {
            r->pred_gil[i] = r->interp_fields[i][3];
            interp_spans(r, i, sp + n);
            n += 4;
        }
        for (size_t t = 0; t < r->ncached; t++)
            sp[n++] = (struct mem_span){r->tstates[t], blob(r, t), r->ts_read};
        n = predicted_spans(r, sp, n);
    } else {
        forget_predictions(r);
    }
    int bad = mem_readv(r->rt->pid, sp, n, ok);
    if (bad < 0)
        return bad;
    for (size_t i = 0; i < fixed; i++)
        if (!ok[i])
            return ERR_READ;
    r->finalizing = fin != 0;
    bool valid = r->cache_valid;
    /* Structure spans must all be read; predicted ones may fail (then they are redone). */
    size_t nstruct = fixed + (r->cache_valid ? 4 * r->ninterps + r->ncached : 0);
    for (size_t i = fixed; i < nstruct && valid; i++)
        valid = ok[i];
    if (valid && structure_matches(r, *head)) {
        for (size_t i = 0; i < r->ninterps; i++)
            r->gil_ok[i] =
                r->gil_span[i] != SIZE_MAX && ok[r->gil_span[i]] && ok[r->gil_span[i] + 1];
        for (size_t t = 0; t < r->ncached && o->minor >= 11; t++) {
            struct pypredict *pr = &r->pred[t];
            pr->chunk_ok = pr->chunk_span != SIZE_MAX && ok[pr->chunk_span];
            pr->cframe_ok = pr->cframe_span != SIZE_MAX && ok[pr->cframe_span];
            for (unsigned i = 0; i < pr->nextra; i++)
                pr->extra_ok[i] = ok[pr->extra_span[i]];
        }
        return 0;
    }
    forget_predictions(r);
    return *head ? slow_walk(r, *head) : 0;
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

/* --- Frames ----------------------------------------------------------------------------- */

static bool seen_before(struct pyreader *r, uint64_t addr)
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

/* Appends a frame to thread `th`'s stack; `addr` (3.8-3.10: the frame object) is kept in
 * frame_addr beside it. */
static int push_frame(struct pyreader *r, struct pythread *th, uint32_t code, int32_t line,
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
    r->frames[r->nframes++] = (struct pyframe){code, line, entry};
    th->nframes++;
    return 0;
}

/* Returns a pointer to `len` bytes of the frame at `addr`: inside the thread's copied data
 * stack when it lies there, else read into `scratch`. NULL when unreadable. */
static const uint8_t *frame_bytes(struct pyreader *r, const struct pychunk *ck,
                                  struct pypredict *pr, uint64_t addr, size_t len, uint8_t *scratch)
{
    if (ck->ok && raw_span_holds(ck->base, ck->len, addr, len))
        return ck->buf + (addr - ck->base);
    /* Outside the data stack: C-stack entry frames (3.12+), generators, frame objects.
     * Remember the address so that the next round reads it in its first batch. */
    if (pr->nnext < PYREADER_EXTRA)
        pr->next_extra[pr->nnext++] = addr;
    for (unsigned i = 0; i < pr->nextra; i++)
        if (pr->extra[i] == addr && pr->extra_ok[i])
            return pr->extra_buf + i * PYREADER_EXTRA_BYTES;
    for (size_t i = 0; i < r->nold; i++) /* only during pyreader_reread_thread */
        if (raw_span_holds(r->old_base[i], r->old_len[i], addr, len))
            return r->old_buf + r->old_off[i] + (addr - r->old_base[i]);
    if (mem_read(r->rt->pid, addr, scratch, len))
        return NULL;
    return scratch;
}

static int walk_311(struct pyreader *r, struct pythread *th, const struct pychunk *ck,
                    struct pypredict *pr, uint64_t f, uint64_t now)
{
    const struct py_offsets *o = &r->rt->off;
    uint8_t scratch[FRAME_READ_MAX];
    size_t flen = (size_t)o->if_size;
    pr->nnext = 0;
    uint32_t visited = 0;
    bool pushed = false; /* whether the frame visited just before (leafward) was kept */
    while (f) {
        if ((f & 7) || seen_before(r, f))
            return ERR_CORRUPT;
        /* Skipped entry frames do not count toward max_depth; bound the walk anyway (the
         * cycle table holds 2 * max_depth + 64 addresses). */
        if (++visited > 2 * r->max_depth + 32) {
            th->truncated = true;
            return 0;
        }
        const uint8_t *fb = frame_bytes(r, ck, pr, f, flen, scratch);
        if (!fb)
            return ERR_READ;
        uint64_t code = raw_u64(fb, o->if_code);
        uint64_t prev = raw_u64(fb, o->if_previous);
        uint64_t instr = raw_u64(fb, o->if_instr);
        uint8_t owner = fb[o->if_owner];
        f = prev;
        bool was_pushed = pushed;
        pushed = false;
        /* A thread's first frame is never generator-owned: a generator frame with no
         * previous frame is a suspended coroutine read after its caller moved on (a torn
         * chain, seen on asyncio stacks as a spurious root frame). */
        if (!prev && owner == OWNER_GENERATOR)
            return ERR_CORRUPT;
        if (o->minor >= 12 && owner == OWNER_CSTACK) {
            /* The frame whose previous is the shim an eval call pushed is that call's first
             * (for native stacks: where one C-level eval call begins). */
            if (was_pushed)
                r->frames[r->nframes - 1].entry = true;
            continue;
        }
        if (owner > OWNER_CSTACK)
            return ERR_CORRUPT;
        if (r->rt->type_none && code == r->rt->type_none)
            continue; /* 3.13 entry frames: f_executable is None */
        const struct pycode *c;
        uint64_t globals = o->if_globals >= 0 ? raw_u64(fb, o->if_globals) : 0;
        int rc = codecache_get_framed(&r->codes, code, globals, now, &c);
        if (rc)
            return rc == ERR_PROC_GONE ? rc : ERR_CORRUPT;
        int64_t b = (int64_t)(instr - c->code_start);
        if (b < -2 || b >= (int64_t)c->code_bytes) {
            /* Either the frame was rewritten under us or the cached code object was freed
             * and its address reused: re-read the code object once before giving up. */
            rc = codecache_recheck(&r->codes, code, now, &c);
            if (rc)
                return rc == ERR_PROC_GONE ? rc : ERR_CORRUPT;
            b = (int64_t)(instr - c->code_start);
            if (b < -2 || b >= (int64_t)c->code_bytes)
                return ERR_CORRUPT;
        }
        /* CPython hides frames still in their prologue (before RESUME): the 3.12
         * trampoline and 3.13 _Py_InitCleanup shims are among them. */
        if (owner != OWNER_GENERATOR && b < (int64_t)c->firsttraceable * 2)
            continue;
        /* Checked here, after the skips, so that a stack of exactly max_depth Python frames
         * above its entry frames is not called truncated. */
        if (th->nframes >= r->max_depth) {
            th->truncated = true;
            return 0;
        }
        bool entry = o->if_is_entry >= 0 && fb[o->if_is_entry] != 0; /* 3.11 */
        push_frame(r, th, (uint32_t)(c - r->codes.v), codecache_line(c, b), entry, 0);
        pushed = true;
    }
    return 0;
}

/* The frame at `addr` from the batch pyreader_reread_thread read, or NULL. The walk meets the
 * batch's addresses in order once it reaches the part of the stack that did not change. */
static const uint8_t *pre_frame(struct pyreader *r, uint64_t addr, size_t flen)
{
    size_t i = r->pre_cur < r->pre_n && r->pre_addr[r->pre_cur] == addr ? r->pre_cur : SIZE_MAX;
    for (size_t k = 0; k < r->pre_n && i == SIZE_MAX; k++)
        if (r->pre_addr[k] == addr)
            i = k;
    if (i == SIZE_MAX || !r->pre_ok[i])
        return NULL;
    r->pre_cur = i + 1;
    return r->pre_buf + i * flen;
}

/* 3.8-3.10: frames are heap objects, read one by one. A frame names its code object but
 * gives nothing to check a cached entry against (3.11+ check the instruction pointer against
 * the bytecode span), and code objects are freed and their addresses reused (site.py's
 * module code, then the user's function): so the walk first collects the code pointers,
 * re-checks their cached entries in one batched read, and only then resolves names. */
static int walk_38(struct pyreader *r, struct pythread *th, uint64_t f, uint64_t now)
{
    const struct py_offsets *o = &r->rt->off;
    uint8_t fb[FRAME_READ_MAX];
    size_t flen = (size_t)o->fo_size < sizeof(fb) ? (size_t)o->fo_size : sizeof(fb);
    uint32_t n = 0;
    while (f) {
        if ((f & 7) || seen_before(r, f))
            return ERR_CORRUPT;
        if (n >= r->max_depth) {
            th->truncated = true;
            break;
        }
        const uint8_t *src = r->pre_n ? pre_frame(r, f, flen) : NULL;
        if (!src) {
            int rc = mem_read(r->rt->pid, f, fb, flen);
            if (rc)
                return rc == ERR_PROC_GONE ? rc : ERR_READ;
            src = fb;
        }
        /* A frame its thread has left is on a free list (linked through f_back) or kept
         * as its code's zombie frame, with a reference count of 0: a walk that reads one
         * has torn, and would wander along the free list. Live frames are referenced by
         * the eval loop running them and by the frame above. */
        if ((int64_t)raw_u64(src, 0) <= 0)
            return ERR_CORRUPT;
        r->w_addr[n] = f;
        r->w_code[n] = raw_u64(src, o->fo_code);
        r->w_lasti[n] = raw_i32(src, o->fo_lasti);
        if (r->w_lasti[n] < -1)
            return ERR_CORRUPT;
        n++;
        f = raw_u64(src, o->fo_back);
    }
    int rc = codecache_check_many(&r->codes, r->w_code, n, now);
    if (rc)
        return rc;
    for (uint32_t k = 0; k < n; k++) {
        const struct pycode *c;
        rc = codecache_get(&r->codes, r->w_code[k], now, &c);
        if (rc)
            return rc == ERR_PROC_GONE ? rc : ERR_CORRUPT;
        /* f_lasti counts bytes in 3.8/3.9 and code units in 3.10; -1 before the first. */
        int64_t b = o->minor >= 10 ? (int64_t)r->w_lasti[k] * 2 : r->w_lasti[k];
        if (b >= (int64_t)c->code_bytes)
            return ERR_CORRUPT;
        /* Every frame runs in its own C-level call of the eval loop. */
        push_frame(r, th, (uint32_t)(c - r->codes.v), codecache_line(c, b), true, r->w_addr[k]);
    }
    return 0;
}

/* --- The round ---------------------------------------------------------------------------- */

/* Second batch (3.11+), only for what the first did not predict: every thread's current
 * frame pointer (through cframe on 3.11/3.12) and the live part of its current data-stack
 * chunk. Then the predictions for the next round are updated. */
static int read_stacks_311(struct pyreader *r)
{
    const struct py_offsets *o = &r->rt->off;
    struct mem_span *sp = r->spans;
    uint8_t *ok = r->span_ok;
    size_t n = 0;
    for (size_t t = 0; t < r->nthreads; t++) {
        const uint8_t *b = blob(r, t);
        struct pypredict *pr = &r->pred[t];
        struct pychunk *ck = &r->chunks[t];
        pr->cframe_span = pr->chunk_span = SIZE_MAX;
        uint64_t cf = raw_u64(b, o->ts_frame);
        r->cframe_vals[t] = cf;
        if (o->cf_current_frame >= 0) {
            r->cframe_vals[t] = 0;
            if (cf && pr->cframe_ok && pr->cframe == cf) {
                r->cframe_vals[t] = pr->cframe_val;
            } else if (cf) {
                pr->cframe_span = n;
                sp[n++] =
                    (struct mem_span){cf + (uint64_t)o->cf_current_frame, &r->cframe_vals[t], 8};
            }
            pr->cframe = cf;
        }
        ck->ok = false;
        uint64_t chunk = raw_u64(b, o->ts_datastack_chunk);
        uint64_t top = raw_u64(b, o->ts_datastack_top);
        bool hit = pr->chunk_ok && pr->chunk == chunk;
        pr->chunk_ok = false;
        if (!chunk || (chunk & 7) || top <= chunk || top - chunk > PYREADER_CHUNK_MAX) {
            pr->len = 0;
            continue;
        }
        ck->base = chunk;
        ck->len = top - chunk;
        if (hit && ck->len <= pr->len) {
            ck->ok = true;
        } else {
            if (!ck->buf)
                ck->buf = xmalloc(PYREADER_CHUNK_MAX);
            pr->chunk_span = n;
            sp[n++] = (struct mem_span){chunk, ck->buf, ck->len};
        }
        pr->chunk = chunk;
    }
    int bad = n ? mem_readv(r->rt->pid, sp, n, ok) : 0;
    if (bad < 0)
        return bad;
    for (size_t t = 0; t < r->nthreads; t++) {
        struct pypredict *pr = &r->pred[t];
        struct pychunk *ck = &r->chunks[t];
        if (pr->chunk_span != SIZE_MAX)
            ck->ok = ok[pr->chunk_span];
        if (pr->cframe_span != SIZE_MAX && !ok[pr->cframe_span])
            r->threads[t].err = ERR_READ;
        /* Next round reads the chunk up to a little past today's top, never past the
         * chunk's own allocation (its size is in its header). */
        pr->len = 0;
        if (ck->ok && ck->len >= (size_t)o->ck_data) {
            uint64_t size = raw_u64(ck->buf, o->ck_size);
            size_t want = ck->len + PYREADER_PREDICT_SLACK;
            if (size >= (uint64_t)o->ck_data && want > size)
                want = (size_t)size;
            pr->len = want < PYREADER_CHUNK_MAX ? want : PYREADER_CHUNK_MAX;
        }
    }
    return 0;
}

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

/* Walks thread slot `t` from the copies this round made. */
static int walk_thread(struct pyreader *r, size_t t, uint64_t now_ns)
{
    const struct py_offsets *o = &r->rt->off;
    struct pythread *th = &r->threads[t];
    r->gen++;
    if (r->gen == 0) {
        memset(r->seen_gen, 0, (r->seen_mask + 1) * sizeof(*r->seen_gen));
        r->gen = 1;
    }
    int err;
    if (o->minor >= 11) {
        uint64_t f =
            o->cf_current_frame >= 0 ? r->cframe_vals[t] : raw_u64(blob(r, t), o->ts_frame);
        err = walk_311(r, th, &r->chunks[t], &r->pred[t], f, now_ns);
        struct pypredict *pr = &r->pred[t];
        memcpy(pr->extra, pr->next_extra, pr->nnext * sizeof(*pr->extra));
        pr->nextra = pr->nnext;
    } else {
        err = walk_38(r, th, raw_u64(blob(r, t), o->ts_frame), now_ns);
    }
    return err;
}

/* Re-reads one thread's state and (3.11+) its current frame pointer and data stack, after
 * a walk found them inconsistent. Not on the common path: a few reads. */
static int refresh_thread(struct pyreader *r, size_t t)
{
    const struct py_offsets *o = &r->rt->off;
    struct pythread *th = &r->threads[t];
    uint8_t *b = blob(r, t);
    int rc = mem_read(r->rt->pid, th->tstate, b, r->ts_read);
    if (rc)
        return rc;
    if (raw_u64(b, o->ts_interp) != th->interp || raw_u64(b, o->ts_id) != th->ts_id)
        return ERR_CORRUPT;
    if (o->minor < 11)
        return 0;
    uint64_t cf = raw_u64(b, o->ts_frame);
    r->cframe_vals[t] = cf;
    if (o->cf_current_frame >= 0) {
        r->cframe_vals[t] = 0;
        rc = cf ? mem_read(r->rt->pid, cf + (uint64_t)o->cf_current_frame, &r->cframe_vals[t], 8)
                : 0;
        if (rc)
            return rc;
    }
    struct pychunk *ck = &r->chunks[t];
    ck->ok = false;
    uint64_t chunk = raw_u64(b, o->ts_datastack_chunk);
    uint64_t top = raw_u64(b, o->ts_datastack_top);
    if (!chunk || (chunk & 7) || top <= chunk || top - chunk > PYREADER_CHUNK_MAX)
        return 0;
    if (!ck->buf)
        ck->buf = xmalloc(PYREADER_CHUNK_MAX);
    ck->base = chunk;
    ck->len = top - chunk;
    ck->ok = mem_read(r->rt->pid, chunk, ck->buf, ck->len) == 0;
    return 0;
}

struct rootref {
    uint64_t root; /* address of the outermost frame */
    size_t slot;   /* thread slot */
};

static int rootref_cmp(const void *a, const void *b)
{
    uint64_t x = ((const struct rootref *)a)->root, y = ((const struct rootref *)b)->root;
    return (x > y) - (x < y);
}

/* 3.8-3.10: frame objects come from a free list shared by all threads. A thread's walk
 * reads its frames one by one, some time after its thread state was copied: a frame its
 * thread left meanwhile can already be another thread's, and the walk then follows that
 * thread's chain down to its entry frame. No frame is in two live chains at once, so two
 * walks of one round that end at the same outermost frame mean one of them crossed over;
 * which one cannot be told without more reads, so both stacks are dropped (rare: seen
 * when threads start or leave frames under heavy load). */
static void drop_shared_roots(struct pyreader *r)
{
    if (r->nthreads < 2)
        return;
    if (!r->roots)
        r->roots = xmalloc(PYREADER_MAX_THREADS * sizeof(*r->roots));
    size_t n = 0;
    for (size_t t = 0; t < r->nthreads; t++) {
        const struct pythread *th = &r->threads[t];
        if (!th->err && th->nframes && !th->truncated)
            r->roots[n++] = (struct rootref){r->frame_addr[th->first + th->nframes - 1], t};
    }
    qsort(r->roots, n, sizeof(*r->roots), rootref_cmp);
    for (size_t k = 0; k + 1 < n; k++) {
        if (r->roots[k].root != r->roots[k + 1].root)
            continue;
        for (size_t m = k; m <= k + 1; m++) {
            struct pythread *th = &r->threads[r->roots[m].slot];
            if (th->err)
                continue;
            th->err = ERR_CORRUPT;
            th->nframes = 0;
            r->err_counts[-ERR_CORRUPT]++;
        }
    }
}

/* Re-reads of one torn thread in a round, and the round's budget for re-reads after each
 * thread's first. Short-lived generator frames (a `sum(x for x in ...)` in a loop) tear
 * ~2% of a busy thread's walks; one re-read left 2% of samples of examples/pipeline.py
 * dropped (those of its generator-heavy lines), six leave 0.1%. The budget bounds a round
 * over many threads whose stacks stay unreadable. */
#define PYREADER_RETRIES 6
#define PYREADER_RETRY_BUDGET 32

int pyreader_sample(struct pyreader *r, uint64_t now_ns, struct errbuf *eb)
{
    const struct py_offsets *o = &r->rt->off;
    r->rounds++;
    r->nthreads = 0;
    r->nframes = 0;
    codecache_round(&r->codes);
    uint64_t head = 0;
    int rc = read_structure(r, &head);
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
    if (o->minor >= 11) {
        rc = read_stacks_311(r);
        if (rc)
            return errbuf_set(eb, rc, "cannot read process %d: %s", (int)r->rt->pid, err_str(rc));
    } else if (r->pthread_tid_off < 0 && r->nthreads >= 2) {
        /* Inference needs a second thread to confirm the offset: in the main thread alone
         * more than one field can hold the process id. */
        infer_tid_offset(r);
    }
    int budget = PYREADER_RETRY_BUDGET;
    for (size_t t = 0; t < r->nthreads; t++) {
        struct pythread *th = &r->threads[t];
        th->tid = thread_tid(r, th, blob(r, t));
        th->first = (uint32_t)r->nframes;
        if (th->err)
            continue;
        th->err = walk_thread(r, t, now_ns);
        for (int tries = 0; th->err && th->err != ERR_PROC_GONE && tries < PYREADER_RETRIES;
             tries++) {
            /* Torn: the thread pushed or popped frames while we copied its stack. A fresh
             * read of this thread alone usually gives a consistent stack. */
            if ((tries && budget-- <= 0) || refresh_thread(r, t))
                break;
            r->retries++;
            r->nframes = th->first;
            th->nframes = 0;
            th->truncated = false;
            th->err = walk_thread(r, t, now_ns);
        }
        if (th->err == ERR_PROC_GONE)
            return errbuf_set(eb, ERR_PROC_GONE, "process %d exited", (int)r->rt->pid);
        if (th->err) {
            r->err_counts[-th->err < 16 ? -th->err : 15]++;
            r->nframes = th->first;
            th->nframes = 0;
            th->truncated = false;
        }
    }
    if (o->minor < 11)
        drop_shared_roots(r);
    return 0;
}

/* 3.8-3.10: reads the thread's frames at this round's addresses in one call, for the walk
 * that follows (a re-read otherwise costs one call per frame while the thread is stopped). */
static void preread_frames(struct pyreader *r, const struct pythread *th)
{
    const struct py_offsets *o = &r->rt->off;
    size_t flen = (size_t)o->fo_size < FRAME_READ_MAX ? (size_t)o->fo_size : FRAME_READ_MAX;
    size_t n = th->nframes < PYREADER_PREREAD_MAX ? th->nframes : PYREADER_PREREAD_MAX;
    r->pre_n = r->pre_cur = 0;
    if (!n)
        return;
    if (!r->pre_addr) {
        r->pre_addr = xmalloc(PYREADER_PREREAD_MAX * sizeof(*r->pre_addr));
        r->pre_buf = xmalloc(PYREADER_PREREAD_MAX * FRAME_READ_MAX);
        r->pre_ok = xmalloc(PYREADER_PREREAD_MAX);
    }
    struct mem_span *sp = r->spans; /* n <= PYREADER_PREREAD_MAX < r->nspans */
    for (size_t k = 0; k < n; k++) {
        r->pre_addr[k] = r->frame_addr[th->first + k];
        sp[k] = (struct mem_span){r->pre_addr[k], r->pre_buf + k * flen, flen};
    }
    if (mem_readv(r->rt->pid, sp, n, r->pre_ok) >= 0)
        r->pre_n = n;
}

/* 3.11+: copies the live part of every older chunk of thread slot t's data stack (the
 * current one is in r->chunks[t]), following `previous`; an older chunk's `top` was saved
 * when the next chunk was pushed. Stops quietly at anything unreadable or implausible: the
 * walk then reads those frames one by one. */
static void read_old_chunks(struct pyreader *r, size_t t)
{
    const struct py_offsets *o = &r->rt->off;
    const struct pychunk *ck = &r->chunks[t];
    const size_t first = 16384; /* DATA_STACK_CHUNK_SIZE: no chunk is smaller */
    r->nold = 0;
    if (!ck->ok || ck->len < (size_t)o->ck_data || o->ck_previous < 0)
        return;
    uint64_t prev = raw_u64(ck->buf, o->ck_previous);
    size_t off = 0;
    while (prev && !(prev & 7) && r->nold < PYREADER_OLD_CHUNKS &&
           off + first <= PYREADER_OLD_MAX) {
        if (off + first > r->old_cap) {
            r->old_cap = r->old_cap ? r->old_cap * 2 : 4 * first;
            r->old_buf = xrealloc(r->old_buf, r->old_cap);
        }
        uint8_t *b = r->old_buf + off;
        if (mem_read(r->rt->pid, prev, b, first))
            return;
        uint64_t size = raw_u64(b, o->ck_size), top = raw_u64(b, o->ck_top);
        size_t live = (size_t)o->ck_data + (size_t)top * 8;
        if (size < first || top > size / 8 || live > size || off + live > PYREADER_OLD_MAX)
            return;
        if (live > first) {
            if (off + live > r->old_cap) {
                while (off + live > r->old_cap)
                    r->old_cap *= 2;
                r->old_buf = xrealloc(r->old_buf, r->old_cap);
                b = r->old_buf + off;
            }
            if (mem_read(r->rt->pid, prev + first, b + first, live - first))
                return;
        }
        r->old_base[r->nold] = prev;
        r->old_len[r->nold] = live;
        r->old_off[r->nold++] = off;
        off += (live + 7) & ~(size_t)7;
        prev = raw_u64(b, o->ck_previous);
    }
}

int pyreader_reread_thread(struct pyreader *r, size_t t, uint64_t now_ns)
{
    struct pythread *th = &r->threads[t];
    if (r->rt->off.minor < 11)
        preread_frames(r, th);
    th->first = (uint32_t)r->nframes;
    th->nframes = 0;
    th->truncated = false;
    /* Frames outside the data stack read by this round's batch may hold what was there
     * before; read them again. */
    r->pred[t].nextra = 0;
    th->err = refresh_thread(r, t);
    if (!th->err && r->rt->off.minor >= 11)
        read_old_chunks(r, t);
    if (!th->err)
        th->err = walk_thread(r, t, now_ns);
    r->pre_n = 0;
    r->nold = 0;
    if (th->err) {
        r->nframes = th->first;
        th->nframes = 0;
        th->truncated = false;
    }
    return th->err;
}
