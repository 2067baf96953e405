// SPDX-License-Identifier: MIT
// 3.8-3.10 stacks: frame objects on the heap, linked by f_back, read one by one (a re-read of
// a stopped thread reads the round's frames in one batch first).
#include "cpython/stack.h"

#include <stdlib.h>
#include <string.h>

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

/* 3.8-3.10: frames are heap objects, read one by one. A frame names its code object but
 * gives nothing to check a cached entry against (3.11+ check the instruction pointer against
 * the bytecode span), and code objects are freed and their addresses reused (site.py's
 * module code, then the user's function): so the walk first collects the code pointers,
 * re-checks their cached entries in one batched read, and only then resolves names. */
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
        stack_push_frame(r, th, (uint32_t)(c - r->codes.v), codecache_line(c, b), true,
                         r->w_addr[k]);
    }
    return 0;
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
