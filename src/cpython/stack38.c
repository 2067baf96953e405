// SPDX-License-Identifier: MIT
// 3.8-3.10 stacks: frame objects on the heap, linked by f_back. A round copies each thread's
// predicted frames twice in its batched read and accepts a stack whose callers read the same
// both times (below); frames it did not predict are read one by one and the stack read again.
// A re-read of a stopped thread reads the round's frames in one batch first.
#include "cpython/stack.h"

#include <limits.h>
#include <stdlib.h>
#include <string.h>

#include "util/hmap.h"
#include "util/rawfield.h"
#include "util/xalloc.h"

#define PYREADER_PREREAD_MAX 1024 /* frames read in one batch by a 3.8-3.10 re-read */

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
void stack38_drop_shared_roots(struct pyreader *r)
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

/* Whether a frame copy belongs to a call in progress. A frame its thread has left is on a
 * free list (linked through f_back) or kept as its code's zombie frame, with a reference
 * count of 0, or kept alive by a traceback or a generator with its running flag cleared:
 * a walk that reads one has torn. Live frames are referenced by the eval loop running them
 * and by the frame above. 3.10's unwinding state (an exception looking for its handler)
 * still runs the frame. */
static bool frame_live(const struct py_offsets *o, const uint8_t *fb)
{
    if ((int64_t)raw_u64(fb, 0) <= 0)
        return false;
    int8_t state = (int8_t)fb[o->fo_state];
    return o->minor >= 10 ? state == 0 || state == 2 : state != 0;
}

/* 3.10: a live frame its eval loop has not started yet (FRAME_CREATED). */
static bool created(const struct py_offsets *o, const uint8_t *fb)
{
    return o->minor >= 10 && (int64_t)raw_u64(fb, 0) > 0 && (int8_t)fb[o->fo_state] == -2;
}

/* Resolves the n frames the walk collected (r->w_*): the code pointers are collected first
 * because a frame names its code object but gives nothing to check a cached entry against
 * (3.11+ check the instruction pointer against the bytecode span), and code objects are
 * freed and their addresses reused (site.py's module code, then the user's function): their
 * cached entries are re-checked in one batched read, and only then are names resolved. */
static int resolve(struct pyreader *r, struct pythread *th, uint32_t n, uint64_t now)
{
    const struct py_offsets *o = &r->rt->off;
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
        stack_push_frame(r, th, (uint32_t)(c - r->codes.v), codecache_loc(c, b), true,
                         r->w_addr[k]);
    }
    return 0;
}

/* Reads the frame at `f` alone into `fb` (flen bytes), or takes it from a stopped thread's
 * batch. */
static int read_one(struct pyreader *r, uint64_t f, uint8_t *fb, size_t flen, const uint8_t **src)
{
    *src = r->pre_n ? pre_frame(r, f, flen) : NULL;
    if (*src)
        return 0;
    int rc = mem_read(r->rt->pid, f, fb, flen);
    if (rc)
        return rc == ERR_PROC_GONE ? rc : ERR_READ;
    *src = fb;
    return 0;
}

/* Walks the frame objects of `th` from `f`, reading them one by one: exact for a stopped
 * thread; for a running one each caller is read later than its callee. */
int stack38_walk(struct pyreader *r, struct pythread *th, uint64_t f, uint64_t now)
{
    const struct py_offsets *o = &r->rt->off;
    uint8_t fb[FRAME_READ_MAX];
    size_t flen = (size_t)o->fo_size < sizeof(fb) ? (size_t)o->fo_size : sizeof(fb);
    uint32_t n = 0;
    while (f) {
        if ((f & 7) || stack_seen_before(r, f))
            return ERR_CORRUPT;
        if (n >= r->max_depth) {
            th->truncated = true;
            break;
        }
        const uint8_t *src;
        int rc = read_one(r, f, fb, flen, &src);
        if (rc)
            return rc;
        if (!frame_live(o, src))
            return ERR_CORRUPT;
        r->w_addr[n] = f;
        r->w_code[n] = raw_u64(src, o->fo_code);
        r->w_lasti[n] = raw_i32(src, o->fo_lasti);
        if (r->w_lasti[n] < -1)
            return ERR_CORRUPT;
        n++;
        f = raw_u64(src, o->fo_back);
    }
    return resolve(r, th, n, now);
}

/* --- Groups: every link proved by three copies --------------------------------------
 *
 * A thread that runs while its frames are read one by one moves on between the reads: a
 * caller read after its callee returned shows the line it went on to (`alpha:12 -> gamma`
 * where line 12 calls delta). A group copies, in the round's one batched read, the thread's
 * current frame and then every frame the thread is predicted to have in two passes, each in
 * address order: pass A copies the predicted frames and then the callers of predicted frames
 * that are not predicted themselves, pass B the predicted frames again. The kernel copies a
 * read's ranges in order, so every copy of pass A is taken before every copy of pass B, and
 * within a pass in address order: of a callee and its caller, the caller's pass A copy falls
 * between the callee's two copies when the caller lies above the callee in memory, and its
 * pass B copy when it lies below (an extra caller's one copy always does).
 *
 * The walk starts at the current frame and follows f_back through the copies. A link
 * callee -> caller is accepted when the callee is live in both passes (reference count
 * above 0; running: f_executing on 3.8/3.9, f_state executing or unwinding on 3.10), with
 * the same code and the predicted caller as f_back in both: the callee's call was in
 * progress at both copies, so its caller, copied between them, was in that call, and the
 * f_lasti of that copy is the instruction that called it. The caller's two copies must show
 * the same f_lasti (its own link is proved the same way). f_lasti names the instruction being
 * executed, so a caller that left the call and came back (a loop calling the same function,
 * whose frame object its code keeps for the next call) is either caught or at the same
 * instruction in both copies, where the stack it gives is the one it has in each. A read
 * that took long (the reader preempted, the target's memory map locked) is not trusted.
 * Anything else (a leaf that returned, a frame with another caller, a caller that moved)
 * makes the walk ask for another attempt, with the chain it met as the next prediction.
 *
 * Address order makes neighbours one range: frame objects come from the object allocator's
 * pools, 4 KiB pages of same-sized blocks, and the frames of one stack are often neighbours
 * there; mem_readv reads neighbours on one page as one range, and a range costs the kernel
 * ~0.35 us whatever its bytes (a depth-50 stack of 3.10 frames: ~22 ranges in all, where a
 * triple per frame took 150; bench/sample_cost.py). */

/* Copy `c` of slot k's group: the spans' order after the current frame (pass A by address
 * rank, the extra callers, pass B by address rank). */
static uint8_t *copy_at(const struct pyreader *r, const struct pystack38 *k, unsigned c)
{
    return k->copy + (size_t)c * r->fo_read;
}

static unsigned copy_b(const struct pystack38 *k, unsigned j)
{
    return k->n + k->nextra + k->rank[j];
}

void stack38_init(struct pyreader *r)
{
    const struct py_offsets *o = &r->rt->off;
    r->stk38 = xcalloc(PYREADER_MAX_THREADS, sizeof(*r->stk38));
    int32_t hi = o->fo_back;
    const int32_t more[] = {o->fo_code, o->fo_lasti, o->fo_state};
    for (size_t i = 0; i < sizeof(more) / sizeof(*more); i++)
        hi = more[i] > hi ? more[i] : hi;
    r->fo_read = (size_t)hi + 8;
}

void stack38_fini(struct pyreader *r)
{
    if (!r->stk38)
        return;
    for (size_t t = 0; t < r->slots_used; t++)
        free(r->stk38[t].copy);
    free(r->stk38);
    r->stk38 = NULL;
}

static void forget38(void *slot)
{
    struct pystack38 *k = slot;
    k->n = k->nchain = k->walked = k->walks = k->nextra = 0;
    k->complete = false;
    k->span0 = SIZE_MAX;
}

void stack38_forget_all(struct pyreader *r)
{
    for (size_t t = 0; t < r->slots_used; t++)
        forget38(&r->stk38[t]);
}

void stack38_remap(struct pyreader *r, const uint64_t *old_tstates, size_t nold)
{
    stack_remap(r, r->stk38, sizeof(*r->stk38), old_tstates, nold, forget38);
}

/* The thread state (alone), the current frame, the predicted frames twice, the extra
 * callers once. */
#define GROUP38_MAX (2 + 3 * PYREADER_PRED38)

size_t stack38_max_spans(void)
{
    return GROUP38_MAX;
}

size_t stack38_group(struct pyreader *r, size_t t, struct mem_span *sp, size_t n, bool alone)
{
    struct pystack38 *k = &r->stk38[t];
    k->span0 = n;
    k->alone = alone;
    if (alone)
        sp[n++] = (struct mem_span){r->tstates[t], stack_blob(r, t), r->ts_read};
    size_t need = 2 * (size_t)k->n + k->nextra;
    if (need > k->copy_cap) {
        k->copy_cap = need > 2 * k->copy_cap ? need : 2 * k->copy_cap;
        k->copy = xrealloc(k->copy, k->copy_cap * r->fo_read);
    }
    k->mid = 0;
    sp[n++] = (struct mem_span){r->tstates[t] + (uint64_t)r->rt->off.ts_frame, &k->mid, 8};
    unsigned c = 0;
    for (unsigned x = 0; x < k->n; x++, c++)
        sp[n++] = (struct mem_span){k->addr[k->order[x]], copy_at(r, k, c), r->fo_read};
    for (unsigned x = 0; x < k->nextra; x++, c++)
        sp[n++] = (struct mem_span){k->extra[x], copy_at(r, k, c), r->fo_read};
    for (unsigned x = 0; x < k->n; x++, c++)
        sp[n++] = (struct mem_span){k->addr[k->order[x]], copy_at(r, k, c), r->fo_read};
    return n;
}

/* The index of `f` among slot k's predicted frames, or -1; `hint` is where the walk expects
 * it (just after the last one found: a caller is predicted after its callee, with at most
 * the other frames of its callee's depth between). */
static int find_pred(const struct pystack38 *k, uint64_t f, unsigned *hint)
{
    unsigned j = k->n;
    for (unsigned i = *hint; i < k->n && i < *hint + 16 && j == k->n; i++)
        if (k->addr[i] == f)
            j = i;
    for (unsigned i = 0; i < k->n && j == k->n; i++)
        if (k->addr[i] == f)
            j = i;
    if (j == k->n)
        return -1;
    *hint = j + 1;
    return (int)j;
}

int stack38_walk_group(struct pyreader *r, size_t t, const uint8_t *ok, uint64_t now)
{
    const struct py_offsets *o = &r->rt->off;
    struct pystack38 *k = &r->stk38[t];
    struct pythread *th = &r->threads[t];
    size_t i = k->span0;
    if (i != SIZE_MAX && k->alone) {
        const uint8_t *b = stack_blob(r, t);
        if (!ok[i++])
            return ERR_READ;
        if (raw_u64(b, o->ts_interp) != th->interp || raw_u64(b, o->ts_id) != th->ts_id)
            return ERR_CORRUPT; /* the thread state now belongs to another thread */
    }
    if (i == SIZE_MAX)
        return ERR_AGAIN;
    if (k->alone ? r->batch_slow : r->round_slow) {
        /* The read was held up (the reader preempted, the target's memory map locked):
         * a caller had time to leave its call and come back to the same instruction. */
        r->slow++;
        return ERR_AGAIN;
    }
    if (!ok[i])
        return ERR_READ; /* the current frame */
    /* The copies' spans follow the current frame's, in copy order. */
    const uint8_t *c_ok = ok + i + 1;
    for (unsigned j = 0; j < k->n; j++)
        k->ok[j] = c_ok[k->rank[j]] && c_ok[copy_b(k, j)] &&
                   (k->caller[j] == UINT16_MAX || c_ok[k->caller[j]]);
    uint8_t fb[FRAME_READ_MAX];
    size_t flen = r->fo_read < sizeof(fb) ? r->fo_read : sizeof(fb);
    stack_walk_begin(r);
    k->nchain = 0;
    bool again = false, miss = false, unbracketed = false;
    unsigned hint = 0;
    uint32_t n = 0;
    /* The caller's copy between the last frame's two: its f_lasti while in that call. */
    const uint8_t *called = NULL;
    uint64_t f = k->mid;
    while (f) {
        if ((f & 7) || stack_seen_before(r, f))
            return again ? ERR_AGAIN : ERR_CORRUPT;
        if (n >= r->max_depth) {
            th->truncated = true;
            break;
        }
        int j = find_pred(k, f, &hint);
        const uint8_t *a, *b, *m = NULL;
        bool copied = j >= 0 && k->ok[j];
        if (copied) {
            a = copy_at(r, k, k->rank[j]);
            b = copy_at(r, k, copy_b(k, (unsigned)j));
            m = k->caller[j] != UINT16_MAX ? copy_at(r, k, k->caller[j]) : NULL;
        } else {
            /* Not copied: read alone, and the stack read again with it predicted; past the
             * group's capacity (the outermost frames of a very deep stack) it is kept. */
            int rc = read_one(r, f, fb, flen, &a);
            if (rc)
                return rc;
            b = a;
            if (n < PYREADER_CHAIN38)
                again = miss = true;
            else
                unbracketed = true;
        }
        uint64_t back = raw_u64(b, o->fo_back), code = raw_u64(b, o->fo_code);
        int32_t lasti = raw_i32(b, o->fo_lasti);
        if (n == 0 && created(o, a) && created(o, b) && raw_u64(a, o->fo_back) == back &&
            raw_u64(a, o->fo_code) == code) {
            /* 3.10: a frame pushed whose code has not started: hidden, as CPython hides
             * it, its caller the leaf (in the call that pushed it). */
            f = back;
            continue;
        }
        if (!frame_live(o, a) || !frame_live(o, b) || raw_u64(a, o->fo_back) != back ||
            raw_u64(a, o->fo_code) != code) {
            /* A frame that returned, or another call's: its f_back is no guide. Kept for
             * the next prediction: a function's frame object serves its next call (its
             * code's zombie frame). */
            if (k->nchain < PYREADER_CHAIN38) {
                k->chain[k->nchain++] = f;
                k->tail_back = back;
            }
            k->back = back;
            k->walked = n + 1;
            k->complete = false;
            r->torn++;
            return ERR_AGAIN;
        }
        if (called && !again) {
            /* A caller: its f_lasti is the one copied between its callee's copies, and its
             * own copies must agree (the same call). */
            if (raw_u64(called, o->fo_code) != code || raw_i32(called, o->fo_lasti) != lasti ||
                raw_i32(a, o->fo_lasti) != lasti || !frame_live(o, called)) {
                r->moved++;
                again = true;
            }
        }
        if (!again && copied && k->parent[j] != back) {
            r->moved++; /* called from another frame than predicted: no copy between */
            again = true;
        }
        called = m;
        if (lasti < -1)
            return ERR_CORRUPT;
        r->w_addr[n] = f;
        r->w_code[n] = code;
        r->w_lasti[n] = lasti;
        if (k->nchain < PYREADER_CHAIN38) {
            k->chain[k->nchain++] = f;
            k->tail_back = back;
        }
        n++;
        f = back;
    }
    k->complete = f == 0;
    k->walked = n;
    k->back = f;
    if (again) {
        r->missed += miss;
        return ERR_AGAIN;
    }
    r->unbracketed += unbracketed;
    return resolve(r, th, n, now);
}

/* A map from frame address to prediction index, open addressing (0 is never a frame). */
#define MAP38 1024 /* > 2 * (PYREADER_PRED38 + PYREADER_CHAIN38) */

struct map38 {
    uint64_t key[MAP38];
    uint16_t val[MAP38];
};

/* The slot of `a`: holding it, or empty. */
static unsigned map_slot(const struct map38 *m, uint64_t a)
{
    unsigned i = (unsigned)hmap_hash64(a) & (MAP38 - 1);
    while (m->key[i] && m->key[i] != a)
        i = (i + 1) & (MAP38 - 1);
    return i;
}

/* The place of `a` among the n addresses v[at[0]], v[at[1]], ... in ascending order, or -1. */
static int find_sorted(const uint64_t *v, const uint16_t *at, unsigned n, uint64_t a)
{
    unsigned lo = 0, hi = n;
    while (lo < hi) {
        unsigned mid = (lo + hi) / 2;
        uint64_t x = at ? v[at[mid]] : v[mid];
        if (x == a)
            return (int)mid;
        if (x < a)
            lo = mid + 1;
        else
            hi = mid;
    }
    return -1;
}

struct addr_ix {
    uint64_t addr;
    uint16_t ix;
};

static int addr_ix_cmp(const void *a, const void *b)
{
    uint64_t x = ((const struct addr_ix *)a)->addr, y = ((const struct addr_ix *)b)->addr;
    return (x > y) - (x < y);
}

/* Sets the passes of slot k's next group from its prediction: the address order, the extra
 * callers, and which copy of its caller each prediction's link is proved with. */
static void set_passes(struct pystack38 *k)
{
    /* Address order, sorted only when the prediction changed (stack38_predict): an insertion
     * sort of a deep stack's ~100 heap addresses every round was 30% of the prediction's
     * time (bench/profile_crux.py at 16 threads on 3.10). */
    unsigned n = k->n;
    struct addr_ix by_addr[PYREADER_PRED38];
    for (unsigned j = 0; j < n; j++)
        by_addr[j] = (struct addr_ix){k->addr[j], (uint16_t)j};
    qsort(by_addr, n, sizeof(*by_addr), addr_ix_cmp);
    for (unsigned j = 0; j < n; j++)
        k->order[j] = by_addr[j].ix;
    for (unsigned x = 0; x < n; x++)
        k->rank[k->order[x]] = (uint16_t)x;
    /* Callers not predicted themselves, copied once after pass A. */
    k->nextra = 0;
    for (unsigned j = 0; j < n; j++)
        if (k->parent[j] && find_sorted(k->addr, k->order, n, k->parent[j]) < 0)
            k->extra[k->nextra++] = k->parent[j];
    for (unsigned j = 1; j < k->nextra; j++) {
        uint64_t v = k->extra[j];
        unsigned x = j;
        for (; x > 0 && k->extra[x - 1] > v; x--)
            k->extra[x] = k->extra[x - 1];
        k->extra[x] = v;
    }
    unsigned m = 0;
    for (unsigned j = 0; j < k->nextra; j++)
        if (!m || k->extra[j] != k->extra[m - 1])
            k->extra[m++] = k->extra[j];
    k->nextra = m;
    /* Each one's caller copy taken between its two: the caller's pass A copy when it lies
     * above in memory, its pass B copy when below, an extra caller's only copy. */
    for (unsigned j = 0; j < n; j++) {
        uint64_t p = k->parent[j];
        int at = p ? find_sorted(k->addr, k->order, n, p) : -1;
        unsigned c = UINT16_MAX;
        if (at >= 0)
            c = p > k->addr[j] ? (unsigned)at : n + k->nextra + (unsigned)at;
        else if (p)
            c = n + (unsigned)find_sorted(k->extra, NULL, k->nextra, p);
        k->caller[j] = (uint16_t)c;
    }
}

/* Sets what slot t's next group copies: every frame its last PYREADER_AGE38 walks met,
 * with its depth, deepest first. A thread that goes back and forth between a few paths comes
 * back to the same frame objects (each code object keeps its last frame for its next call),
 * so a leaf not in the last stack is often one of an earlier one. */
void stack38_predict(struct pyreader *r, size_t t)
{
    struct pystack38 *k = &r->stk38[t];
    if (!k->nchain)
        return;
    uint32_t now = k->walks + 1;
    /* The passes depend on the frames, their order and their parents: unchanged (a stack that
     * held still since the last walk), they are not set again. */
    bool changed = false;
    /* Drop what no recent walk met. */
    unsigned n = 0;
    for (unsigned j = 0; j < k->n; j++) {
        if (now - k->stamp[j] > PYREADER_AGE38) {
            changed = true;
            continue;
        }
        k->addr[n] = k->addr[j];
        k->parent[n] = k->parent[j];
        k->depth[n] = k->depth[j];
        k->stamp[n++] = k->stamp[j];
    }
    k->n = n;
    struct map38 m;
    memset(m.key, 0, sizeof(m.key));
    for (unsigned j = 0; j < k->n; j++) {
        unsigned i = map_slot(&m, k->addr[j]);
        m.key[i] = k->addr[j];
        m.val[i] = (uint16_t)j;
    }
    /* The chain's depths: exact when the walk reached the outermost frame; otherwise from a
     * frame of it, or the one it stopped at, whose depth is known; else counted from it. */
    long leaf = (long)k->nchain - 1;
    if (k->complete) {
        leaf = (long)k->walked - 1;
    } else {
        unsigned i = map_slot(&m, k->back);
        if (k->back && m.key[i])
            leaf = (long)k->depth[m.val[i]] + (long)k->nchain;
        for (unsigned c = k->nchain; c-- > 0;) {
            i = map_slot(&m, k->chain[c]);
            if (m.key[i]) {
                leaf = (long)k->depth[m.val[i]] + (long)c;
                break;
            }
        }
    }
    for (unsigned c = 0; c < k->nchain; c++) {
        unsigned i = map_slot(&m, k->chain[c]);
        if (!m.key[i]) {
            if (k->n == PYREADER_PRED38)
                continue; /* full of frames met lately: this one is read alone */
            m.key[i] = k->chain[c];
            m.val[i] = (uint16_t)k->n;
            k->addr[k->n++] = k->chain[c];
            k->parent[k->n - 1] = 0;
            changed = true;
        }
        unsigned j = m.val[i];
        long d = leaf - (long)c;
        k->depth[j] = (uint16_t)(d < 0 ? 0 : d > UINT16_MAX ? UINT16_MAX : d);
        k->stamp[j] = now;
        uint64_t parent = c + 1 < k->nchain ? k->chain[c + 1] : k->tail_back;
        changed = changed || k->parent[j] != parent;
        k->parent[j] = parent;
    }
    /* A walk that stopped short (a frame that returned) leaves the outer part of the last
     * stack as it was: it stays the last stack's. */
    long top = leaf - (long)k->nchain;
    if (!k->complete)
        for (unsigned j = 0; j < k->n; j++)
            if (k->stamp[j] == k->walks && (long)k->depth[j] <= top)
                k->stamp[j] = now;
    k->walks = now;
    /* Deepest first (stable insertion sort: mostly sorted already). */
    for (unsigned j = 1; j < k->n; j++) {
        uint64_t a = k->addr[j], p = k->parent[j];
        uint16_t d = k->depth[j];
        uint32_t st = k->stamp[j];
        unsigned x = j;
        while (x > 0 && k->depth[x - 1] < d) {
            k->addr[x] = k->addr[x - 1];
            k->parent[x] = k->parent[x - 1];
            k->depth[x] = k->depth[x - 1];
            k->stamp[x] = k->stamp[x - 1];
            x--;
            changed = true;
        }
        k->addr[x] = a;
        k->parent[x] = p;
        k->depth[x] = d;
        k->stamp[x] = st;
    }
    if (changed)
        set_passes(k);
    k->nchain = 0;
}

int stack38_read_alone(struct pyreader *r, size_t t, uint64_t now)
{
    struct mem_span sp[GROUP38_MAX];
    uint8_t ok[GROUP38_MAX];
    stack38_predict(r, t);
    size_t n = stack38_group(r, t, sp, 0, true);
    int bad = stack_readv(r, sp, n, ok);
    if (bad < 0)
        return bad;
    return stack38_walk_group(r, t, ok, now);
}
/* 3.8-3.10: reads the thread's frames at this round's addresses in one call, for the walk
 * that follows (a re-read otherwise costs one call per frame while the thread is stopped). */
void stack38_preread(struct pyreader *r, const struct pythread *th)
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
