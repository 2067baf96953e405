// SPDX-License-Identifier: MIT
// Stage statistics: sorts the (bounded) spans, computes nearest-rank percentiles per stage and
// per request, and writes the table and the slowest requests' waterfalls.
#include "stages/stagestats.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/jsonw.h"
#include "util/xalloc.h"

#define WATERFALL_WIDTH 40

void stagestats_init(struct stagestats *s, size_t max_spans)
{
    memset(s, 0, sizeof(*s));
    strtab_init(&s->names);
    s->max_spans = max_spans ? max_spans : STAGESTATS_MAX_SPANS_DEFAULT;
}

void stagestats_fini(struct stagestats *s)
{
    strtab_fini(&s->names);
    free(s->spans);
    free(s->rows);
    free(s->reqs);
    memset(s, 0, sizeof(*s));
}

void stagestats_add(struct stagestats *s, const struct stage_span *sp)
{
    if (s->nspans >= s->max_spans) {
        s->dropped++;
        return;
    }
    if (s->nspans == s->capspans) {
        s->capspans = s->capspans ? s->capspans * 2 : 1024;
        if (s->capspans > s->max_spans)
            s->capspans = s->max_spans;
        s->spans = xrealloc(s->spans, s->capspans * sizeof(*s->spans));
    }
    const char *name = sp->name ? sp->name : "";
    struct sspan *d = &s->spans[s->nspans++];
    d->request = sp->request;
    d->start_ns = sp->start_ns;
    d->end_ns = sp->end_ns >= sp->start_ns ? sp->end_ns : sp->start_ns;
    d->name = strtab_intern(&s->names, name, strlen(name));
    d->tid = sp->tid;
    d->kind = sp->kind;
    d->pid = sp->pid;
}

uint64_t stagestats_percentile(const uint64_t *sorted, size_t n, double p)
{
    if (!n)
        return 0;
    double rank = ceil(p / 100.0 * (double)n);
    size_t i = rank < 1 ? 0 : (size_t)rank - 1;
    return sorted[i < n ? i : n - 1];
}

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

/* Spans by process and request, then start, then kind (a request span before its first
 * stage). */
static int cmp_span(const void *a, const void *b)
{
    const struct sspan *x = a, *y = b;
    if (x->pid != y->pid)
        return x->pid < y->pid ? -1 : 1;
    if (x->request != y->request)
        return x->request < y->request ? -1 : 1;
    if (x->start_ns != y->start_ns)
        return x->start_ns < y->start_ns ? -1 : 1;
    if (x->kind != y->kind)
        return x->kind == STAGE_REQUEST ? -1 : (y->kind == STAGE_REQUEST ? 1 : 0);
    return x->end_ns > y->end_ns ? -1 : x->end_ns < y->end_ns;
}

static int cmp_row(const void *a, const void *b)
{
    const struct stagerow *x = a, *y = b;
    if (x->first_ns != y->first_ns)
        return x->first_ns < y->first_ns ? -1 : 1;
    return x->name < y->name ? -1 : x->name > y->name;
}

static int cmp_req_slowest(const void *a, const void *b)
{
    const struct sreq *x = a, *y = b;
    uint64_t dx = x->end_ns - x->start_ns, dy = y->end_ns - y->start_ns;
    if (dx != dy)
        return dx > dy ? -1 : 1;
    if (x->pid != y->pid)
        return x->pid < y->pid ? -1 : 1;
    return x->id < y->id ? -1 : x->id > y->id;
}

static void fill_row(struct stagerow *row, uint64_t *d, size_t n)
{
    qsort(d, n, sizeof(*d), cmp_u64);
    row->count = n;
    row->p50 = stagestats_percentile(d, n, 50);
    row->p90 = stagestats_percentile(d, n, 90);
    row->p99 = stagestats_percentile(d, n, 99);
    row->max = n ? d[n - 1] : 0;
    row->total = 0;
    for (size_t i = 0; i < n; i++)
        row->total += d[i];
}

struct namedur {
    uint32_t name;
    uint64_t dur;
};

static int cmp_namedur(const void *a, const void *b)
{
    const struct namedur *x = a, *y = b;
    if (x->name != y->name)
        return x->name < y->name ? -1 : 1;
    return x->dur < y->dur ? -1 : x->dur > y->dur;
}

/* One row per stage name over the STAGE_SPAN spans: sort (name, duration) pairs, then each
 * run of one name is that stage's sorted durations. */
static void stage_rows(struct stagestats *s)
{
    uint32_t nn = s->names.len;
    uint64_t *first = xmalloc((size_t)(nn ? nn : 1) * sizeof(*first));
    for (uint32_t i = 0; i < nn; i++)
        first[i] = UINT64_MAX;
    struct namedur *nd = xmalloc((s->nspans ? s->nspans : 1) * sizeof(*nd));
    size_t m = 0;
    for (size_t i = 0; i < s->nspans; i++) {
        const struct sspan *sp = &s->spans[i];
        if (sp->kind != STAGE_SPAN)
            continue;
        nd[m].name = sp->name;
        nd[m].dur = sp->end_ns - sp->start_ns;
        m++;
        if (sp->start_ns < first[sp->name])
            first[sp->name] = sp->start_ns;
    }
    qsort(nd, m, sizeof(*nd), cmp_namedur);
    s->rows = xcalloc(nn ? nn : 1, sizeof(*s->rows));
    uint64_t *d = xmalloc((m ? m : 1) * sizeof(*d));
    size_t i = 0;
    while (i < m) {
        size_t j = i;
        while (j < m && nd[j].name == nd[i].name) {
            d[j - i] = nd[j].dur;
            j++;
        }
        struct stagerow *row = &s->rows[s->nrows++];
        row->name = nd[i].name;
        row->first_ns = first[nd[i].name];
        fill_row(row, d, j - i);
        i = j;
    }
    qsort(s->rows, s->nrows, sizeof(*s->rows), cmp_row);
    free(d);
    free(nd);
    free(first);
}

/* Groups the sorted spans by request id (0 = none, not a request). */
static void requests(struct stagestats *s)
{
    s->reqs = xcalloc(s->nspans ? s->nspans : 1, sizeof(*s->reqs));
    size_t i = 0;
    while (i < s->nspans) {
        size_t j = i;
        while (j < s->nspans && s->spans[j].request == s->spans[i].request &&
               s->spans[j].pid == s->spans[i].pid)
            j++;
        if (s->spans[i].request) {
            struct sreq *q = &s->reqs[s->nreqs++];
            q->id = s->spans[i].request;
            q->pid = s->spans[i].pid;
            q->first = i;
            q->n = j - i;
            q->start_ns = UINT64_MAX;
            bool own = false;
            for (size_t k = i; k < j; k++) {
                const struct sspan *sp = &s->spans[k];
                if (sp->kind == STAGE_REQUEST && !own) {
                    own = true;
                    q->start_ns = sp->start_ns;
                    q->end_ns = sp->end_ns;
                } else if (!own) {
                    q->start_ns = sp->start_ns < q->start_ns ? sp->start_ns : q->start_ns;
                    q->end_ns = sp->end_ns > q->end_ns ? sp->end_ns : q->end_ns;
                }
            }
        }
        i = j;
    }
    uint64_t *d = xmalloc((s->nreqs ? s->nreqs : 1) * sizeof(*d));
    for (size_t k = 0; k < s->nreqs; k++)
        d[k] = s->reqs[k].end_ns - s->reqs[k].start_ns;
    fill_row(&s->req, d, s->nreqs);
    s->req.name = strtab_intern(&s->names, "request", 7);
    free(d);
    qsort(s->reqs, s->nreqs, sizeof(*s->reqs), cmp_req_slowest);
}

void stagestats_finish(struct stagestats *s)
{
    if (s->nspans) /* spans is NULL until the first add */
        qsort(s->spans, s->nspans, sizeof(*s->spans), cmp_span);
    stage_rows(s);
    requests(s);
}

/* ---- output -------------------------------------------------------------------------------- */

static double ms(uint64_t ns)
{
    return (double)ns / 1e6;
}

static int fmt_id(char *dst, size_t n, uint64_t id, bool hex)
{
    return snprintf(dst, n, hex ? "%016llx" : "%llu", (unsigned long long)id);
}

static int row_text(struct buf *out, const char *name, const struct stagerow *r)
{
    return buf_printf(out, "%-24.24s %8llu %10.3f %10.3f %10.3f %10.3f %10.3f %10.3f\n", name,
                      (unsigned long long)r->count, ms(r->p50), ms(r->p90), ms(r->p99), ms(r->max),
                      r->count ? ms(r->total) / (double)r->count : 0.0, ms(r->total));
}

static int waterfall_text(const struct stagestats *s, const struct sreq *q, bool hex,
                          struct buf *out)
{
    char id[32];
    fmt_id(id, sizeof(id), q->id, hex);
    uint64_t dur = q->end_ns - q->start_ns;
    int rc = q->pid ? buf_printf(out, "\nrequest %s (pid %u): %.3f ms\n", id, q->pid, ms(dur))
                    : buf_printf(out, "\nrequest %s: %.3f ms\n", id, ms(dur));
    if (!rc)
        rc = buf_printf(out, "  %10s %10s  stage\n", "start ms", "dur ms");
    for (size_t k = q->first; !rc && k < q->first + q->n; k++) {
        const struct sspan *sp = &s->spans[k];
        if (sp->kind == STAGE_REQUEST)
            continue;
        int64_t off = (int64_t)(sp->start_ns - q->start_ns);
        uint64_t d = sp->end_ns - sp->start_ns;
        char bar[WATERFALL_WIDTH + 1];
        memset(bar, ' ', WATERFALL_WIDTH);
        bar[WATERFALL_WIDTH] = '\0';
        if (dur) {
            double a = (double)off / (double)dur * WATERFALL_WIDTH;
            double b = (double)(off + (int64_t)d) / (double)dur * WATERFALL_WIDTH;
            int ia = a < 0 ? 0 : (a > WATERFALL_WIDTH - 1 ? WATERFALL_WIDTH - 1 : (int)a);
            int ib = b > WATERFALL_WIDTH ? WATERFALL_WIDTH : (int)ceil(b);
            for (int x = ia; x < ib || x == ia; x++)
                bar[x] = sp->kind == STAGE_MARK ? '|' : '#';
        }
        rc = buf_printf(out, "  %10.3f %10.3f  %-24.24s |%s|\n", (double)off / 1e6, ms(d),
                        strtab_get(&s->names, sp->name), bar);
    }
    return rc;
}

int stagestats_write_text(const struct stagestats *s, const struct stagestats_opts *o,
                          struct buf *out)
{
    int rc = buf_printf(out, "crux stages: %zu spans, %zu requests", s->nspans, s->nreqs);
    if (!rc && o->source)
        rc = buf_printf(out, " (%s)", o->source);
    if (!rc && (o->lost || s->dropped))
        rc = buf_printf(out, "; %llu lost, %llu dropped", (unsigned long long)o->lost,
                        (unsigned long long)s->dropped);
    if (!rc)
        rc = buf_printf(out, "\n%-24s %8s %10s %10s %10s %10s %10s %10s\n", "stage", "count",
                        "p50 ms", "p90 ms", "p99 ms", "max ms", "mean ms", "total ms");
    for (size_t i = 0; !rc && i < s->nrows; i++)
        rc = row_text(out, strtab_get(&s->names, s->rows[i].name), &s->rows[i]);
    if (!rc && s->req.count)
        rc = row_text(out, "[request]", &s->req);
    if (!rc && o->ncurrent)
        rc = buf_printf(out, "\nthreads in a stage at the end:\n");
    for (size_t i = 0; !rc && i < o->ncurrent; i++)
        rc = buf_printf(out, "  thread %u: %s\n", o->current[i].tid, o->current[i].stage);
    size_t n = o->slowest < s->nreqs ? o->slowest : s->nreqs;
    if (!rc && n)
        rc = buf_printf(out, "\nslowest requests (%zu of %zu):\n", n, s->nreqs);
    for (size_t i = 0; !rc && i < n; i++)
        rc = waterfall_text(s, &s->reqs[i], o->hex_ids, out);
    return rc;
}

static void row_json(struct jsonw *w, const char *name, const struct stagerow *r)
{
    jsonw_obj_begin(w);
    jsonw_key(w, "name");
    jsonw_str(w, name);
    jsonw_key(w, "count");
    jsonw_u64(w, r->count);
    const char *keys[] = {"p50_ms", "p90_ms", "p99_ms", "max_ms", "mean_ms", "total_ms"};
    double vals[] = {ms(r->p50),
                     ms(r->p90),
                     ms(r->p99),
                     ms(r->max),
                     r->count ? ms(r->total) / (double)r->count : 0.0,
                     ms(r->total)};
    for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++) {
        jsonw_key(w, keys[i]);
        jsonw_double(w, vals[i]);
    }
    jsonw_obj_end(w);
}

static const char *kind_name(uint32_t kind)
{
    return kind == STAGE_MARK ? "mark" : kind == STAGE_REQUEST ? "request" : "stage";
}

static void waterfall_json(struct jsonw *w, const struct stagestats *s, const struct sreq *q,
                           bool hex)
{
    char id[32];
    fmt_id(id, sizeof(id), q->id, hex);
    jsonw_obj_begin(w);
    jsonw_key(w, "request");
    jsonw_str(w, id);
    if (q->pid) {
        jsonw_key(w, "pid");
        jsonw_u64(w, q->pid);
    }
    jsonw_key(w, "duration_ms");
    jsonw_double(w, ms(q->end_ns - q->start_ns));
    jsonw_key(w, "stages");
    jsonw_arr_begin(w);
    for (size_t k = q->first; k < q->first + q->n; k++) {
        const struct sspan *sp = &s->spans[k];
        if (sp->kind == STAGE_REQUEST)
            continue;
        jsonw_obj_begin(w);
        jsonw_key(w, "name");
        jsonw_str(w, strtab_get(&s->names, sp->name));
        jsonw_key(w, "kind");
        jsonw_str(w, kind_name(sp->kind));
        jsonw_key(w, "offset_ms");
        jsonw_double(w, ((double)(int64_t)(sp->start_ns - q->start_ns)) / 1e6);
        jsonw_key(w, "duration_ms");
        jsonw_double(w, ms(sp->end_ns - sp->start_ns));
        jsonw_key(w, "tid");
        jsonw_u64(w, sp->tid);
        jsonw_obj_end(w);
    }
    jsonw_arr_end(w);
    jsonw_obj_end(w);
}

int stagestats_write_json(const struct stagestats *s, const struct stagestats_opts *o,
                          struct buf *out)
{
    struct jsonw w;
    jsonw_init(&w, out, 0);
    jsonw_obj_begin(&w);
    jsonw_key(&w, "source");
    jsonw_str(&w, o->source);
    jsonw_key(&w, "spans");
    jsonw_u64(&w, s->nspans);
    jsonw_key(&w, "requests");
    jsonw_u64(&w, s->nreqs);
    jsonw_key(&w, "lost");
    jsonw_u64(&w, o->lost);
    jsonw_key(&w, "dropped");
    jsonw_u64(&w, s->dropped);
    jsonw_key(&w, "stages");
    jsonw_arr_begin(&w);
    for (size_t i = 0; i < s->nrows; i++)
        row_json(&w, strtab_get(&s->names, s->rows[i].name), &s->rows[i]);
    jsonw_arr_end(&w);
    jsonw_key(&w, "request");
    if (s->req.count)
        row_json(&w, "request", &s->req);
    else
        jsonw_null(&w);
    jsonw_key(&w, "current");
    jsonw_arr_begin(&w);
    for (size_t i = 0; i < o->ncurrent; i++) {
        jsonw_obj_begin(&w);
        jsonw_key(&w, "tid");
        jsonw_u64(&w, o->current[i].tid);
        jsonw_key(&w, "stage");
        jsonw_str(&w, o->current[i].stage);
        jsonw_obj_end(&w);
    }
    jsonw_arr_end(&w);
    jsonw_key(&w, "slowest");
    jsonw_arr_begin(&w);
    size_t n = o->slowest < s->nreqs ? o->slowest : s->nreqs;
    for (size_t i = 0; i < n; i++)
        waterfall_json(&w, s, &s->reqs[i], o->hex_ids);
    jsonw_arr_end(&w);
    jsonw_obj_end(&w);
    int rc = jsonw_error(&w);
    if (!rc)
        rc = buf_putc(out, '\n');
    return rc;
}
