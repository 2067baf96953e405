// SPDX-License-Identifier: MIT
// Bytes per request (allocreq.h). The agent's request spans carry the thread that ran them and
// the allocation events the thread that made them, on the same clock: an allocation belongs to
// the request open on its thread at its time. A thread runs one request at a time (a
// synchronous server); asyncio requests sharing a thread are not told apart here.
#include "analysis/allocreq.h"

#include <stdlib.h>
#include <string.h>

#include "util/hmap.h"
#include "util/xalloc.h"

struct req {
    uint32_t tid;
    uint64_t start, end;
    uint64_t retained;
};

struct line_acc {
    uint32_t frame, stack;
    uint64_t retained, kept;
};

static int by_tid_start(const void *a, const void *b)
{
    const struct req *x = a, *y = b;
    if (x->tid != y->tid)
        return x->tid < y->tid ? -1 : 1;
    return x->start < y->start ? -1 : x->start > y->start;
}

static int by_retained(const void *a, const void *b)
{
    const struct line_acc *x = a, *y = b;
    if (x->retained != y->retained)
        return x->retained > y->retained ? -1 : 1;
    return x->frame < y->frame ? -1 : x->frame > y->frame;
}

/* The identity of a sampled block: its allocation time, stack and weight (a free record
 * repeats its allocation's). Never 0. */
static uint64_t block_key(uint64_t born_ns, uint32_t stack, uint64_t bytes)
{
    return (hmap_hash64(born_ns) ^ hmap_hash64(((uint64_t)stack << 40) ^ bytes)) | 1;
}

/* The request open on `tid` at `t`, or NULL. `r` sorted by thread, then start. */
static struct req *request_at(struct req *r, size_t n, uint32_t tid, uint64_t t)
{
    size_t lo = 0, hi = n; /* first index past (tid, t) */
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (r[mid].tid < tid || (r[mid].tid == tid && r[mid].start <= t))
            lo = mid + 1;
        else
            hi = mid;
    }
    if (!lo || r[lo - 1].tid != tid || t >= r[lo - 1].end)
        return NULL;
    return &r[lo - 1];
}

void allocreq_build(const struct profile *p, struct allocreq_view *v)
{
    memset(v, 0, sizeof(*v));
    size_t n = 0;
    for (size_t i = 0; i < p->nspans; i++)
        n += p->spans[i].kind == PSPAN_REQUEST && p->spans[i].tid;
    if (!n || !p->nallocs)
        return;
    struct req *r = xcalloc(n, sizeof(*r));
    n = 0;
    for (size_t i = 0; i < p->nspans; i++) {
        const struct pspan *s = &p->spans[i];
        if (s->kind == PSPAN_REQUEST && s->tid)
            r[n++] = (struct req){s->tid, s->start_ns, s->end_ns, 0};
    }
    qsort(r, n, sizeof(*r), by_tid_start);
    struct hmap frees, lines;
    hmap_init(&frees);
    hmap_init(&lines);
    for (size_t i = 0; i < p->nallocs; i++) {
        const struct palloc *e = &p->allocs[i];
        if (e->kind == PALLOC_FREE)
            hmap_put(&frees, block_key(e->born_ns, e->stack, e->bytes), e->t_ns);
    }
    struct line_acc *acc = NULL;
    size_t nacc = 0, capacc = 0;
    uint64_t allocated = 0, retained = 0, kept = 0;
    bool any = false;
    for (size_t i = 0; i < p->nallocs; i++) {
        const struct palloc *e = &p->allocs[i];
        if (e->kind != PALLOC_ALLOC || !e->tid)
            continue;
        any = true;
        struct req *q = request_at(r, n, e->tid, e->t_ns);
        if (!q)
            continue;
        allocated += e->bytes;
        uint64_t freed_at;
        bool freed = hmap_get(&frees, block_key(e->t_ns, e->stack, e->bytes), &freed_at);
        if (freed && freed_at < q->end)
            continue;
        retained += e->bytes;
        q->retained += e->bytes;
        kept += freed ? 0 : e->bytes;
        uint32_t frame = e->stack ? p->nodes[e->stack].frame : UINT32_MAX;
        bool fresh = false;
        uint64_t *slot = hmap_slot(&lines, (uint64_t)frame + 1, nacc, &fresh);
        if (fresh) {
            if (nacc == capacc) {
                capacc = capacc ? capacc * 2 : 64;
                acc = xrealloc(acc, capacc * sizeof(*acc));
            }
            acc[nacc++] = (struct line_acc){frame, e->stack, 0, 0};
        }
        struct line_acc *a = &acc[*slot];
        a->retained += e->bytes;
        a->kept += freed ? 0 : e->bytes;
    }
    if (any) {
        double nr = (double)n;
        v->requests = n;
        v->allocated = (double)allocated / nr;
        v->retained = (double)retained / nr;
        v->kept = (double)kept / nr;
        for (size_t i = 0; i < n; i++)
            v->max_retained = r[i].retained > v->max_retained ? r[i].retained : v->max_retained;
        if (nacc)
            qsort(acc, nacc, sizeof(*acc), by_retained);
        for (size_t i = 0; i < nacc && v->nlines < ALLOCREQ_LINES; i++)
            v->lines[v->nlines++] = (struct allocreq_line){
                acc[i].frame, acc[i].stack, (double)acc[i].retained / nr, (double)acc[i].kept / nr};
    }
    free(acc);
    hmap_fini(&lines);
    hmap_fini(&frees);
    free(r);
}
