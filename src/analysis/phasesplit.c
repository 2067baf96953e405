// SPDX-License-Identifier: MIT
// Host stages during prefill and decode (phasesplit.h).
#include "analysis/phasesplit.h"

#include <stdlib.h>
#include <string.h>

#include "util/xalloc.h"

struct edge {
    uint64_t t;
    int8_t prefill, decode; /* +1 / -1 / 0 */
};

static int by_time(const void *a, const void *b)
{
    const struct edge *x = a, *y = b;
    return x->t < y->t ? -1 : x->t > y->t;
}

static enum phase phase_of(int64_t prefill, int64_t decode)
{
    if (prefill > 0)
        return decode > 0 ? PHASE_MIXED : PHASE_PREFILL;
    return decode > 0 ? PHASE_DECODE : PHASE_IDLE;
}

/* Appends [start, end) in `ph`, merged with the last segment when it is the same phase. */
static void push_seg(struct phase_seg *segs, size_t *n, uint64_t start, uint64_t end, enum phase ph)
{
    if (end <= start)
        return;
    if (*n && segs[*n - 1].phase == ph && segs[*n - 1].end_ns == start) {
        segs[*n - 1].end_ns = end;
        return;
    }
    segs[(*n)++] = (struct phase_seg){start, end, ph};
}

void phasesplit_segments(const struct profile *p, struct phase_seg **out, size_t *n)
{
    *out = NULL;
    *n = 0;
    struct edge *e = xmalloc((3 * p->nreqs + 1) * sizeof(*e));
    size_t ne = 0;
    for (size_t i = 0; i < p->nreqs; i++) {
        const struct preq *r = &p->reqs[i];
        if (r->ttft_ns < 0 || r->end_ns <= r->start_ns)
            continue;
        uint64_t first = r->start_ns + (uint64_t)r->ttft_ns;
        first = first > r->end_ns ? r->end_ns : first;
        e[ne++] = (struct edge){r->start_ns, 1, 0};
        e[ne++] = (struct edge){first, -1, 1};
        e[ne++] = (struct edge){r->end_ns, 0, -1};
    }
    if (!ne) {
        free(e);
        return;
    }
    qsort(e, ne, sizeof(*e), by_time);
    struct phase_seg *segs = xmalloc(ne * sizeof(*segs));
    size_t ns = 0;
    int64_t cp = 0, cd = 0;
    for (size_t i = 0; i < ne;) {
        uint64_t t = e[i].t;
        for (; i < ne && e[i].t == t; i++) {
            cp += e[i].prefill;
            cd += e[i].decode;
        }
        if (i < ne)
            push_seg(segs, &ns, t, e[i].t, phase_of(cp, cd));
    }
    free(e);
    *out = segs;
    *n = ns;
}

/* The row of stage `name`, added when new ("(other)" past the cap). */
static struct phasesplit_row *row_of(struct phasesplit *ps, uint32_t name)
{
    for (size_t i = 0; i < ps->nrows; i++)
        if (ps->rows[i].name == name)
            return &ps->rows[i];
    if (ps->nrows == PHASESPLIT_MAX_STAGES)
        name = 0;
    for (size_t i = 0; i < ps->nrows; i++)
        if (ps->rows[i].name == name)
            return &ps->rows[i];
    ps->rows[ps->nrows] = (struct phasesplit_row){.name = name};
    return &ps->rows[ps->nrows++];
}

/* The first segment ending after `t` (binary search; segments are in time order). */
static size_t first_after(const struct phase_seg *segs, size_t n, uint64_t t)
{
    size_t lo = 0, hi = n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (segs[mid].end_ns <= t)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

void phasesplit_gpu(const struct profile *p, const struct phase_seg *segs, size_t n,
                    struct phasesplit_gpu *out)
{
    double busy[PHASE_N] = {0}, sm[PHASE_N] = {0};
    uint64_t nsm[PHASE_N] = {0};
    memset(out, 0, sizeof(*out));
    for (size_t i = 0; i < p->gpu.npts && n; i++) {
        const struct pgpu_point *pt = &p->gpu.pts[i];
        size_t k = first_after(segs, n, pt->t_ns);
        if (k == n || segs[k].start_ns > pt->t_ns || pt->util_gpu < 0)
            continue;
        enum phase ph = segs[k].phase;
        busy[ph] += pt->util_gpu;
        out->npts[ph]++;
        if (pt->sm_active >= 0) {
            sm[ph] += pt->sm_active;
            nsm[ph]++;
        }
    }
    for (int ph = 0; ph < PHASE_N; ph++) {
        out->busy[ph] = out->npts[ph] ? busy[ph] / (double)out->npts[ph] : -1;
        out->sm_active[ph] = nsm[ph] ? sm[ph] / (double)nsm[ph] : -1;
    }
}

void phasesplit_compute(const struct profile *p, struct phasesplit *ps)
{
    memset(ps, 0, sizeof(*ps));
    struct phase_seg *segs;
    size_t n;
    phasesplit_segments(p, &segs, &n);
    for (size_t i = 0; i < n; i++)
        ps->phase_ns[segs[i].phase] += segs[i].end_ns - segs[i].start_ns;
    for (size_t i = 0; i < p->nspans && n; i++) {
        const struct pspan *sp = &p->spans[i];
        if (sp->kind != PSPAN_STAGE || sp->end_ns <= sp->start_ns)
            continue;
        struct phasesplit_row *row = NULL;
        for (size_t k = first_after(segs, n, sp->start_ns); k < n && segs[k].start_ns < sp->end_ns;
             k++) {
            uint64_t a = sp->start_ns > segs[k].start_ns ? sp->start_ns : segs[k].start_ns;
            uint64_t b = sp->end_ns < segs[k].end_ns ? sp->end_ns : segs[k].end_ns;
            if (b <= a || segs[k].phase == PHASE_IDLE)
                continue;
            if (!row)
                row = row_of(ps, sp->name);
            row->ns[segs[k].phase] += b - a;
        }
    }
    phasesplit_gpu(p, segs, n, &ps->gpu);
    free(segs);
}

/* "GPU during prefill and decode: any kernel running 41% prefill, ..., SM active ...". */
static int gpu_text(const struct phasesplit_gpu *g, struct buf *b)
{
    static const char *const names[] = {"prefill", "decode", "mixed"};
    if (!g->npts[PHASE_PREFILL] && !g->npts[PHASE_DECODE] && !g->npts[PHASE_MIXED])
        return 0;
    int rc = buf_puts(b, "GPU during prefill and decode (all devices):");
    const char *what[2] = {"any kernel running", "SM active"};
    for (int f = 0; f < 2 && !rc; f++) {
        const double *v = f ? g->sm_active : g->busy;
        if (v[PHASE_PREFILL] < 0 && v[PHASE_DECODE] < 0 && v[PHASE_MIXED] < 0)
            continue;
        rc = buf_printf(b, "%s %s", f ? ";" : "", what[f]);
        for (int k = 0; k < 3 && !rc; k++)
            rc = v[k] < 0 ? buf_printf(b, "%s - %s", k ? "," : "", names[k])
                          : buf_printf(b, "%s %.1f%% %s", k ? "," : "", v[k], names[k]);
    }
    return rc ? rc : buf_puts(b, "\n");
}

int phasesplit_write_text(const struct phasesplit *ps, const struct profile *p, struct buf *b)
{
    if (!ps->nrows)
        return gpu_text(&ps->gpu, b);
    static const char *const names[] = {"prefill", "decode", "mixed"};
    int rc = buf_printf(b,
                        "stages during prefill and decode (the load's requests: %.0f ms "
                        "prefill, %.0f ms decode, %.0f ms both at once):\n%-24s",
                        ps->phase_ns[PHASE_PREFILL] / 1e6, ps->phase_ns[PHASE_DECODE] / 1e6,
                        ps->phase_ns[PHASE_MIXED] / 1e6, "stage");
    for (int k = 0; k < 3 && !rc; k++)
        rc = buf_printf(b, " %10s ms %5s", names[k], "%");
    for (size_t i = 0; i < ps->nrows && !rc; i++) {
        const struct phasesplit_row *r = &ps->rows[i];
        uint64_t all = r->ns[PHASE_PREFILL] + r->ns[PHASE_DECODE] + r->ns[PHASE_MIXED];
        rc = buf_printf(b, "\n%-24.24s", r->name ? profile_string(p, r->name) : "(other)");
        for (int k = 0; k < 3 && !rc; k++)
            rc = buf_printf(b, " %13.1f %5.1f", r->ns[k] / 1e6,
                            all ? 100.0 * (double)r->ns[k] / (double)all : 0.0);
    }
    if (!rc)
        rc = buf_puts(b, "\n  (% of the stage's time in requests; by time, not by request: "
                         "\"mixed\" is time when some requests waited for their first token "
                         "while others streamed)\n");
    return rc ? rc : gpu_text(&ps->gpu, b);
}
