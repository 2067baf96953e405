// SPDX-License-Identifier: MIT
// The allocation views (allocs.h). Events are replayed in time order once for the totals, the
// end state, the timeline and each site's live-bytes series, and once more up to the heap's
// high-water mark for what each site held then.
#include "analysis/allocs.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "util/hmap.h"
#include "util/xalloc.h"

struct sites {
    struct alloc_site *v;
    size_t n, cap;
    struct hmap index;
};

static size_t site_of(struct sites *s, uint64_t key, uint32_t frame, uint32_t stack)
{
    uint64_t v;
    if (hmap_get(&s->index, key, &v))
        return (size_t)v;
    if (s->n == s->cap) {
        s->cap = s->cap ? s->cap * 2 : 256;
        s->v = xrealloc(s->v, s->cap * sizeof(*s->v));
    }
    memset(&s->v[s->n], 0, sizeof(s->v[s->n]));
    s->v[s->n].frame = frame;
    s->v[s->n].stack = stack;
    hmap_put(&s->index, key, s->n);
    return s->n++;
}

double allocs_trend_likelihood(const double *x, size_t n)
{
    if (n < 3)
        return 0;
    double s = 0;
    for (size_t i = 0; i < n; i++)
        for (size_t j = i + 1; j < n; j++)
            s += (x[j] > x[i]) - (x[j] < x[i]);
    double var = (double)n * (double)(n - 1) * (double)(2 * n + 5) / 18.0;
    double z = s > 0 ? (s - 1) / sqrt(var) : s < 0 ? (s + 1) / sqrt(var) : 0;
    return 0.5 * erfc(-z / sqrt(2.0)); /* Phi(z) */
}

double allocs_ht_weight(double size, double mean)
{
    if (mean <= 0)
        return size;
    double pr = -expm1(-size / mean);
    return pr > 0 ? size / pr : mean;
}

static const struct profile *g_sort_p; /* qsort has no context argument */

static int by_time(const void *a, const void *b)
{
    const struct palloc *x = &g_sort_p->allocs[*(const size_t *)a];
    const struct palloc *y = &g_sort_p->allocs[*(const size_t *)b];
    if (x->t_ns != y->t_ns)
        return x->t_ns < y->t_ns ? -1 : 1;
    return *(const size_t *)a < *(const size_t *)b ? -1 : 1;
}

static int by_bytes(const void *a, const void *b)
{
    const struct alloc_site *x = a, *y = b;
    if (x->bytes != y->bytes)
        return x->bytes > y->bytes ? -1 : 1;
    return x->frame < y->frame ? -1 : x->frame > y->frame;
}

static int by_copy_bytes(const void *a, const void *b)
{
    const struct alloc_site *x = a, *y = b;
    if (x->copy_bytes != y->copy_bytes)
        return x->copy_bytes > y->copy_bytes ? -1 : 1;
    return x->frame < y->frame ? -1 : x->frame > y->frame;
}

/* The sites of `v` that copied, sorted by bytes copied; returns a new array, the caller frees. */
static struct alloc_site *copy_sites(const struct alloc_site *v, size_t n, size_t *out_n)
{
    size_t k = 0;
    struct alloc_site *c = xmalloc((n ? n : 1) * sizeof(*c));
    for (size_t i = 0; i < n; i++)
        if (v[i].copy_bytes)
            c[k++] = v[i];
    qsort(c, k, sizeof(*c), by_copy_bytes);
    *out_n = k;
    return c;
}

size_t allocs_peak_holders(const struct alloc_view *v, const struct alloc_site **out, size_t max)
{
    size_t k = 0;
    for (size_t i = 0; i < v->nlines; i++) {
        const struct alloc_site *s = &v->lines[i];
        if (s->peak_live <= 0)
            continue;
        /* insertion into the top `max`, by peak_live descending */
        size_t j = k < max ? k++ : max;
        while (j > 0 && out[j - 1]->peak_live < s->peak_live) {
            if (j < max)
                out[j] = out[j - 1];
            j--;
        }
        if (j < max)
            out[j] = s;
    }
    return k;
}

double allocs_rate(const struct profile *p, uint64_t bytes)
{
    return p->meta.duration_ns ? (double)bytes * 1e9 / (double)p->meta.duration_ns : 0.0;
}

static int64_t live_delta(const struct palloc *e)
{
    if (e->kind == PALLOC_ALLOC)
        return (int64_t)e->bytes;
    return e->kind == PALLOC_FREE ? -(int64_t)e->bytes : 0;
}

static void add(struct alloc_site *s, const struct palloc *e, int64_t *live_of)
{
    *live_of += live_delta(e);
    if (e->kind == PALLOC_COPY) {
        s->copy_bytes += e->bytes;
        s->copies += e->count;
    } else if (e->kind == PALLOC_ALLOC) {
        s->bytes += e->bytes;
        s->count += e->count;
    } else {
        if (e->t_ns - e->born_ns < ALLOCS_TEMP_NS || e->t_ns < e->born_ns)
            s->temp += e->bytes;
    }
}

void allocs_view_build(const struct profile *p, struct alloc_view *v)
{
    memset(v, 0, sizeof(*v));
    size_t n = p->nallocs;
    if (!n)
        return;
    size_t *order = xmalloc(n * sizeof(*order));
    for (size_t i = 0; i < n; i++)
        order[i] = i;
    g_sort_p = p;
    qsort(order, n, sizeof(*order), by_time);
    struct sites lines = {0}, funcs = {0};
    hmap_init(&lines.index);
    hmap_init(&funcs.index);
    size_t *li = xmalloc(n * sizeof(*li)), *fi = xmalloc(n * sizeof(*fi));
    for (size_t k = 0; k < n; k++) {
        const struct palloc *e = &p->allocs[order[k]];
        uint32_t leaf = e->stack ? p->nodes[e->stack].frame : UINT32_MAX;
        uint64_t fkey = UINT64_MAX;
        if (leaf != UINT32_MAX) {
            const struct pframe *f = &p->frames[leaf];
            fkey = ((uint64_t)f->name << 32) | f->file;
        }
        li[k] = site_of(&lines, (uint64_t)leaf + 1, leaf, e->stack);
        fi[k] = site_of(&funcs, fkey, leaf, e->stack);
    }
    v->duration_ns = p->allocs[order[n - 1]].t_ns + 1;
    int64_t *llive = xcalloc(lines.n, sizeof(*llive)), *flive = xcalloc(funcs.n, sizeof(*flive));
    double *series = xcalloc(lines.n * ALLOCS_SERIES, sizeof(*series));
    double heap_series[ALLOCS_SERIES] = {0};
    int64_t live = 0;
    size_t peak_k = 0, point = 0, bucket = 0;
    for (size_t k = 0; k < n; k++) {
        const struct palloc *e = &p->allocs[order[k]];
        /* series points are the live bytes at the end of each of ALLOCS_SERIES equal spans */
        while (point < ALLOCS_SERIES &&
               e->t_ns >=
                   (uint64_t)((double)v->duration_ns * (double)(point + 1) / ALLOCS_SERIES)) {
            for (size_t s = 0; s < lines.n; s++)
                series[s * ALLOCS_SERIES + point] = (double)llive[s];
            heap_series[point] = (double)live;
            point++;
        }
        while (bucket + 1 < ALLOCS_TIMELINE &&
               e->t_ns >=
                   (uint64_t)((double)v->duration_ns * (double)(bucket + 1) / ALLOCS_TIMELINE)) {
            v->live[bucket++] = live;
            v->live[bucket] = live;
        }
        add(&lines.v[li[k]], e, &llive[li[k]]);
        add(&funcs.v[fi[k]], e, &flive[fi[k]]);
        live += live_delta(e);
        if (e->kind == PALLOC_ALLOC) {
            v->total_bytes += e->bytes;
            v->rate[bucket] += e->bytes;
        } else if (e->kind == PALLOC_COPY) {
            v->copy_total += e->bytes;
            v->copy_events++;
        }
        v->live[bucket] = live;
        if (live > v->peak_live) {
            v->peak_live = live;
            v->peak_ns = e->t_ns;
            peak_k = k;
        }
    }
    for (; point < ALLOCS_SERIES; point++) {
        for (size_t s = 0; s < lines.n; s++)
            series[s * ALLOCS_SERIES + point] = (double)llive[s];
        heap_series[point] = (double)live;
    }
    for (size_t b = bucket + 1; b < ALLOCS_TIMELINE; b++)
        v->live[b] = live;
    v->end_live = live;
    v->heap_growth = (int64_t)(heap_series[ALLOCS_SERIES - 1] - heap_series[0]);
    for (size_t s = 0; s < lines.n; s++)
        lines.v[s].end_live = llive[s];
    for (size_t s = 0; s < funcs.n; s++)
        funcs.v[s].end_live = flive[s];
    /* what each site held at the high-water mark: replay up to it */
    memset(llive, 0, lines.n * sizeof(*llive));
    memset(flive, 0, funcs.n * sizeof(*flive));
    for (size_t k = 0; k <= peak_k && v->peak_live > 0; k++) {
        const struct palloc *e = &p->allocs[order[k]];
        int64_t d = live_delta(e);
        llive[li[k]] += d;
        flive[fi[k]] += d;
    }
    for (size_t s = 0; s < lines.n; s++) {
        struct alloc_site *a = &lines.v[s];
        a->peak_live = llive[s];
        const double *x = &series[s * ALLOCS_SERIES];
        a->growth = (int64_t)(x[ALLOCS_SERIES - 1] - x[0]);
        a->likelihood = allocs_trend_likelihood(x, ALLOCS_SERIES);
        /* still growing over the second half, to a new high above the first half's by a
         * quarter of its growth, and with the same trend test: a cache that filled early and
         * stays full is not a leak, however steep its start and however its sampled size
         * wobbles (a dip and a recovery late in the run is not a new high) */
        const double *half = x + ALLOCS_SERIES / 2;
        double first_max = x[0];
        for (size_t k = 1; k < ALLOCS_SERIES / 2; k++)
            first_max = x[k] > first_max ? x[k] : first_max;
        bool late = x[ALLOCS_SERIES - 1] - first_max >= 0.25 * (double)a->growth &&
                    allocs_trend_likelihood(half, ALLOCS_SERIES - ALLOCS_SERIES / 2) >=
                        ALLOCS_LEAK_LIKELIHOOD;
        a->leak = a->frame != UINT32_MAX && a->likelihood >= ALLOCS_LEAK_LIKELIHOOD && late &&
                  (double)a->growth >= ALLOCS_LEAK_MIN_SHARE * (double)v->peak_live &&
                  a->growth > 0;
    }
    for (size_t s = 0; s < funcs.n; s++)
        funcs.v[s].peak_live = flive[s];
    qsort(lines.v, lines.n, sizeof(*lines.v), by_bytes);
    qsort(funcs.v, funcs.n, sizeof(*funcs.v), by_bytes);
    v->copy_lines = copy_sites(lines.v, lines.n, &v->ncopy_lines);
    v->copy_funcs = copy_sites(funcs.v, funcs.n, &v->ncopy_funcs);
    v->lines = lines.v;
    v->nlines = lines.n;
    v->funcs = funcs.v;
    v->nfuncs = funcs.n;
    hmap_fini(&lines.index);
    hmap_fini(&funcs.index);
    free(series);
    free(llive);
    free(flive);
    free(li);
    free(fi);
    free(order);
}

void allocs_view_fini(struct alloc_view *v)
{
    free(v->lines);
    free(v->funcs);
    free(v->copy_lines);
    free(v->copy_funcs);
    memset(v, 0, sizeof(*v));
}
