// SPDX-License-Identifier: MIT
// The comparison of two sets of runs (diff.h). Each recording is reduced to per-run figures
// as it is added (so that memory holds one recording at a time): samples per merged-tree
// node, per function (self and on the stack), per line, the verdict's stage and type shares.
// diff_finish turns the per-run figures into estimates: Welch over runs when a side has
// repeats, the sampling interval of one recording a side otherwise.
#include "analysis/diff.h"

#include <cjson/cJSON.h>
#include <math.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "analysis/verdict.h"
#include "util/jsonw.h"
#include "util/xalloc.h"

const char *const load_metric_names[LM_N] = {
    "throughput",       "p50",          "p90",     "p99",     "p99.9",
    "ttft_p50",         "ttft_p99",     "itl_p50", "itl_p99", "error_rate",
    "token_throughput", "prefill_share"};

bool load_metric_higher_better(enum load_metric m)
{
    return m == LM_THROUGHPUT || m == LM_TOKENS;
}

/* ---- tables ---- */

static void table_init(struct diff_table *t)
{
    memset(t, 0, sizeof(*t));
    hmap_init(&t->index);
}

static void table_fini(struct diff_table *t)
{
    for (uint32_t i = 0; i < t->n; i++) {
        if (t->v[i].total != t->v[i].self)
            free(t->v[i].total);
        free(t->v[i].self);
    }
    free(t->v);
    hmap_fini(&t->index);
}

/* The entity named `name` (a strtab id), created with zeroed per-run arrays. */
static uint32_t table_get(struct diff *d, struct diff_table *t, uint32_t name, uint8_t kind,
                          bool with_total)
{
    bool fresh;
    uint64_t *slot = hmap_slot(&t->index, name, 0, &fresh);
    if (!fresh && *slot)
        return (uint32_t)(*slot - 1);
    if (t->n == t->cap) {
        t->cap = t->cap ? t->cap * 2 : 64;
        t->v = xrealloc(t->v, t->cap * sizeof(*t->v));
    }
    struct diff_entity *e = &t->v[t->n];
    memset(e, 0, sizeof(*e));
    e->name = name;
    e->kind = kind;
    e->self = xcalloc(d->nruns, sizeof(double));
    e->total = with_total ? xcalloc(d->nruns, sizeof(double)) : e->self;
    *slot = ++t->n;
    return t->n - 1;
}

static uint32_t intern(struct diff *d, const char *s)
{
    return strtab_intern(&d->tree.strs, s, strlen(s));
}

/* ---- life ---- */

void diff_init(struct diff *d, uint32_t nbase, uint32_t nnew)
{
    memset(d, 0, sizeof(*d));
    d->nbase = nbase;
    d->nnew = nnew;
    d->nruns = nbase + nnew;
    d->conf = 0.95;
    d->alpha = 0.05;
    d->idle = true;
    strtab_init(&d->tree.strs);
    d->tree.nbase = nbase;
    d->tree.nnew = nnew;
    d->tree.cap = 256;
    d->tree.v = xcalloc(d->tree.cap, sizeof(*d->tree.v));
    d->tree.n = 1; /* the root */
    d->tree.v[0].name = intern(d, "all");
    d->node_self = xcalloc((size_t)d->tree.cap * d->nruns, sizeof(double));
    table_init(&d->funcs);
    table_init(&d->lines);
    table_init(&d->stages);
    table_init(&d->types);
    size_t r = d->nruns;
    d->samples = xcalloc(r, sizeof(double));
    d->norm = xcalloc(r, sizeof(double));
    d->ones = xmalloc(r * sizeof(double));
    for (size_t i = 0; i < r; i++)
        d->ones[i] = 1.0;
    d->cur_norm = d->ones;
    d->rate = xcalloc(r, sizeof(double));
    d->units = xcalloc(r, sizeof(double));
    d->wall_s = xcalloc(r, sizeof(double));
    d->verdict = xmalloc(r);
    memset(d->verdict, -1, r);
    d->has_profile = xcalloc(r, 1);
    d->has_load = xcalloc(r, 1);
    d->load = xmalloc(r * LM_N * sizeof(double));
    for (size_t i = 0; i < r * LM_N; i++)
        d->load[i] = NAN;
    d->errors = xcalloc(r, sizeof(double));
    d->lat_buckets = xcalloc(r, sizeof(double *));
    d->nlat_buckets = xcalloc(r, sizeof(size_t));
    d->verdict_base = d->verdict_new = -1;
    buf_init(&d->headline, 0);
    buf_init(&d->warnings, 0);
    d->unit = "run";
}

void diff_fini(struct diff *d)
{
    strtab_fini(&d->tree.strs);
    free(d->tree.v);
    free(d->node_self);
    free(d->node_total);
    table_fini(&d->funcs);
    table_fini(&d->lines);
    table_fini(&d->stages);
    table_fini(&d->types);
    free(d->samples);
    free(d->norm);
    free(d->loo);
    free(d->loo_row);
    free(d->ones);
    free(d->rate);
    free(d->units);
    free(d->wall_s);
    free(d->verdict);
    free(d->has_profile);
    free(d->has_load);
    free(d->load);
    free(d->errors);
    for (uint32_t i = 0; i < d->nruns; i++)
        free(d->lat_buckets[i]);
    free(d->lat_buckets);
    free(d->nlat_buckets);
    buf_fini(&d->headline);
    buf_fini(&d->warnings);
    free(d->map);
    memset(d, 0, sizeof(*d));
}

static void warn(struct diff *d, const char *fmt, ...) PRINTF_LIKE(2, 3);
static void warn(struct diff *d, const char *fmt, ...)
{
    char line[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(line, sizeof(line), fmt, ap);
    va_end(ap);
    if (strstr(buf_cstr(&d->warnings), line))
        return;
    if (buf_puts(&d->warnings, line) || buf_putc(&d->warnings, '\n'))
        return;
}

/* ---- recordings ---- */

/* "qualname (file)", "symbol (library)", or the marker's name: a frame without its line. */
static void frame_key(const struct profile *p, const struct pframe *f, bool line, char *out,
                      size_t cap)
{
    const char *name = profile_string(p, f->name), *file = profile_string(p, f->file);
    if (f->kind == FRAME_MARKER || !file || !*file)
        snprintf(out, cap, "%s", name ? name : "?");
    else if (line && f->line > 0)
        snprintf(out, cap, "%s (%s:%d)", name ? name : "?", file, f->line);
    else
        snprintf(out, cap, "%s (%s)", name ? name : "?", file);
}

static uint32_t tree_child(struct diff *d, struct hmap *index, uint32_t parent, uint32_t name,
                           uint8_t kind)
{
    bool fresh;
    uint64_t *slot = hmap_slot(index, (uint64_t)parent << 32 | name, 0, &fresh);
    if (!fresh && *slot)
        return (uint32_t)(*slot - 1);
    struct diff_tree *t = &d->tree;
    if (t->n == t->cap) {
        uint32_t old = t->cap;
        t->cap *= 2;
        t->v = xrealloc(t->v, t->cap * sizeof(*t->v));
        memset(t->v + old, 0, (t->cap - old) * sizeof(*t->v));
        d->node_self = xrealloc(d->node_self, (size_t)t->cap * d->nruns * sizeof(double));
        memset(d->node_self + (size_t)old * d->nruns, 0,
               (size_t)(t->cap - old) * d->nruns * sizeof(double));
    }
    struct diff_node *n = &t->v[t->n];
    n->parent = parent;
    n->name = name;
    n->kind = kind;
    n->depth = t->v[parent].depth + 1;
    *slot = ++t->n;
    return t->n - 1;
}

/* Samples per profile stack: all kept samples (idle ones too unless !d->idle), or the
 * counts when samples were not kept. */
static double *stack_weights(const struct diff *d, const struct profile *p, double *total)
{
    double *w = xcalloc(p->nnodes ? p->nnodes : 1, sizeof(double));
    *total = 0;
    if (p->nsamples && !p->samples_capped) {
        for (size_t i = 0; i < p->nsamples; i++) {
            const struct psample *s = &p->samples[i];
            if (s->stack >= p->nnodes || (!d->idle && psample_idle(s)))
                continue;
            double k = s->weight ? s->weight : 1;
            w[s->stack] += k;
            *total += k;
        }
    } else {
        for (uint32_t s = 0; s < p->nnodes; s++) {
            w[s] = (double)p->counts[s];
            *total += w[s];
        }
    }
    return w;
}

static struct hmap tree_index_of(struct diff *d)
{
    struct hmap m;
    hmap_init(&m);
    for (uint32_t i = 1; i < d->tree.n; i++)
        hmap_put(&m, (uint64_t)d->tree.v[i].parent << 32 | d->tree.v[i].name, i + 1);
    return m;
}

void diff_add_profile(struct diff *d, uint32_t run, const struct profile *p,
                      const struct stage_rules *rules)
{
    if (run >= d->nruns)
        return;
    d->has_profile[run] = 1;
    d->any_profile = true;
    double total;
    double *w = stack_weights(d, p, &total);
    d->samples[run] = total;
    d->wall_s[run] = (double)p->meta.duration_ns / 1e9;
    /* The rate achieved (rounds over the duration): a sampler that fell behind took fewer
     * rounds than asked, and each sample then stands for more time. */
    d->rate[run] = p->meta.rate_hz > 0 ? p->meta.rate_hz : 100.0;
    if (p->meta.ticks > 0 && d->wall_s[run] > 0) {
        double got = (double)p->meta.ticks / d->wall_s[run];
        if (got > 0 && got < d->rate[run])
            d->rate[run] = got;
    }
    if (d->units[run] <= 0)
        d->units[run] = 1;
    if (p->nnodes > d->cap_map) {
        d->cap_map = p->nnodes;
        d->map = xrealloc(d->map, d->cap_map * sizeof(*d->map));
    }
    struct hmap index = tree_index_of(d);
    char key[1024];
    /* Profile stacks -> merged nodes (a parent's id is below its children's). Thread and
     * process frames are left out: runs have other thread ids. */
    d->map[0] = 0;
    for (uint32_t s = 1; s < p->nnodes; s++) {
        const struct pnode *nd = &p->nodes[s];
        uint32_t parent = nd->parent < s ? d->map[nd->parent] : 0;
        const struct pframe *f = profile_frame_at(p, nd->frame);
        if (f->kind == FRAME_THREAD || f->kind == FRAME_PROCESS) {
            d->map[s] = parent;
            continue;
        }
        frame_key(p, f, false, key, sizeof(key));
        d->map[s] = tree_child(d, &index, parent, intern(d, key), (uint8_t)f->kind);
    }
    hmap_fini(&index);
    uint32_t *seen = xcalloc(d->funcs.cap + d->tree.n + 64, sizeof(uint32_t));
    uint32_t seen_cap = d->funcs.cap + d->tree.n + 64, stamp = 0;
    for (uint32_t s = 1; s < p->nnodes; s++) {
        if (w[s] <= 0)
            continue;
        uint32_t node = d->map[s];
        d->node_self[(size_t)node * d->nruns + run] += w[s];
        if (node == 0)
            continue;
        /* Line of the leaf. */
        const struct pframe *leaf = profile_frame_at(p, p->nodes[s].frame);
        if (leaf->kind == FRAME_PYTHON || leaf->kind == FRAME_NATIVE) {
            frame_key(p, leaf, true, key, sizeof(key));
            uint32_t li = table_get(d, &d->lines, intern(d, key), (uint8_t)leaf->kind, false);
            d->lines.v[li].self[run] += w[s];
            d->lines.v[li].func =
                table_get(d, &d->funcs, d->tree.v[node].name, d->tree.v[node].kind, true) + 1;
        }
        /* Functions: self for the leaf's, on-stack once per sample for every one above. */
        stamp++;
        for (uint32_t n = node, first = 1; n; n = d->tree.v[n].parent, first = 0) {
            const struct diff_node *dn = &d->tree.v[n];
            uint32_t fi = table_get(d, &d->funcs, dn->name, dn->kind, true);
            if (fi >= seen_cap) {
                uint32_t old = seen_cap;
                seen_cap = fi * 2 + 64;
                seen = xrealloc(seen, seen_cap * sizeof(*seen));
                memset(seen + old, 0, (seen_cap - old) * sizeof(*seen));
            }
            if (first)
                d->funcs.v[fi].self[run] += w[s];
            if (seen[fi] != stamp) {
                seen[fi] = stamp;
                d->funcs.v[fi].total[run] += w[s];
            }
        }
    }
    free(seen);
    free(w);
    /* Stages and bottleneck types, as the verdict sees them. */
    struct analysis a;
    analysis_run(&a, p, rules);
    for (uint32_t i = 0; i < a.nstages; i++) {
        if (!a.stage_names[i] || a.stage[i].w <= 0)
            continue;
        uint32_t si = table_get(d, &d->stages, intern(d, a.stage_names[i]), 0, false);
        d->stages.v[si].self[run] += a.stage[i].p;
    }
    for (int t = 0; t < BT_N; t++) {
        uint32_t ti = table_get(d, &d->types, intern(d, btype_name((enum btype)t)), 0, false);
        d->types.v[ti].self[run] += a.type[t].p;
    }
    d->verdict[run] = a.has_verdict ? (int8_t)a.verdict.type : -1;
    analysis_fini(&a);
    if (p->meta.load_json && *p->meta.load_json) {
        struct errbuf eb = {{0}};
        if (diff_add_load_json(d, run, p->meta.load_json, strlen(p->meta.load_json), &eb))
            warn(d, "run %u: its load figures are unreadable: %s", run + 1, eb.msg);
    }
}

/* ---- load results ---- */

static double num(const cJSON *o, const char *k)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, k);
    return cJSON_IsNumber(v) ? v->valuedouble : NAN;
}

static double pct_s(const cJSON *stats, const char *hist, const char *p)
{
    const cJSON *h = cJSON_GetObjectItemCaseSensitive(stats, hist);
    if (!cJSON_IsObject(h) || !(num(h, "count") > 0))
        return NAN;
    return num(h, p) / 1e6;
}

int diff_add_load_json(struct diff *d, uint32_t run, const char *json, size_t len,
                       struct errbuf *eb)
{
    if (run >= d->nruns)
        return errbuf_set(eb, ERR_ARG, "run %u out of range", run);
    cJSON *root = cJSON_ParseWithLength(json, len);
    const cJSON *stats = root ? cJSON_GetObjectItemCaseSensitive(root, "stats") : NULL;
    if (!cJSON_IsObject(stats)) {
        cJSON_Delete(root);
        return errbuf_set(eb, ERR_ARG,
                          "not crux load's JSON (no \"stats\" object): give a file written by "
                          "crux load --json");
    }
    double *m = &d->load[(size_t)run * LM_N];
    double ok = num(stats, "ok"), errors = num(stats, "errors");
    m[LM_THROUGHPUT] = num(stats, "throughput");
    m[LM_P50] = pct_s(stats, "latency_us", "p50");
    m[LM_P90] = pct_s(stats, "latency_us", "p90");
    m[LM_P99] = pct_s(stats, "latency_us", "p99");
    m[LM_P999] = pct_s(stats, "latency_us", "p99.9");
    m[LM_TTFT_P50] = pct_s(stats, "ttft_us", "p50");
    m[LM_TTFT_P99] = pct_s(stats, "ttft_us", "p99");
    m[LM_ITL_P50] = pct_s(stats, "itl_us", "p50");
    m[LM_ITL_P99] = pct_s(stats, "itl_us", "p99");
    m[LM_ERROR_RATE] = ok + errors > 0 ? errors / (ok + errors) : NAN;
    double tokens = num(stats, "tokens");
    m[LM_TOKENS] = tokens > 0 ? num(stats, "output_token_throughput") : NAN;
    const cJSON *pd = cJSON_GetObjectItemCaseSensitive(stats, "prefill_decode");
    m[LM_PREFILL] = cJSON_IsObject(pd) && num(pd, "streams") > 0 ? num(pd, "prefill_share") : NAN;
    /* Latency buckets, for a percentile's interval from one run. */
    const cJSON *lat = cJSON_GetObjectItemCaseSensitive(stats, "latency_us");
    const cJSON *bk = lat ? cJSON_GetObjectItemCaseSensitive(lat, "buckets") : NULL;
    if (cJSON_IsArray(bk)) {
        size_t n = (size_t)cJSON_GetArraySize(bk), k = 0;
        free(d->lat_buckets[run]);
        d->lat_buckets[run] = xmalloc((n ? n : 1) * 3 * sizeof(double));
        const cJSON *b;
        cJSON_ArrayForEach(b, bk)
        {
            if (!cJSON_IsArray(b) || cJSON_GetArraySize(b) != 3)
                continue;
            for (int j = 0; j < 3; j++)
                d->lat_buckets[run][k * 3 + j] = cJSON_GetArrayItem(b, j)->valuedouble;
            k++;
        }
        d->nlat_buckets[run] = k;
    }
    d->errors[run] = errors > 0 ? errors : 0;
    d->has_load[run] = 1;
    d->any_load = true;
    if (ok > 0)
        d->units[run] = ok;
    cJSON_Delete(root);
    return 0;
}

/* ---- estimates ---- */

/* Per-run values of side `side` (0 base, 1 new) into `out`; returns how many. */
static size_t side_vals(const struct diff *d, int side, const double *v, size_t stride,
                        double (*f)(const struct diff *, uint32_t, double), double *out)
{
    uint32_t from = side ? d->nbase : 0, to = side ? d->nruns : d->nbase;
    size_t k = 0;
    for (uint32_t r = from; r < to; r++)
        if (d->has_profile[r])
            out[k++] = f(d, r, v[(size_t)r * stride]);
    return k;
}

static const double *factors_for(const struct diff *d, uint32_t fi);

static double as_abs(const struct diff *d, uint32_t r, double count)
{
    return count / d->rate[r] / d->units[r] / d->cur_norm[r];
}

static double as_rel(const struct diff *d, uint32_t r, double count)
{
    return d->samples[r] > 0 ? count / d->samples[r] : 0;
}

static double as_wall(const struct diff *d, uint32_t r, double wall)
{
    return wall / d->units[r];
}

static double as_is(const struct diff *d, uint32_t r, double v)
{
    (void)d;
    (void)r;
    return v;
}

static double as_share_abs(const struct diff *d, uint32_t r, double share)
{
    return share * d->wall_s[r] / d->units[r];
}

/* Sums over the profiled runs of a side. */
static void side_sum(const struct diff *d, int side, const double *v, size_t stride, double *count,
                     double *samples, double *exposure)
{
    uint32_t from = side ? d->nbase : 0, to = side ? d->nruns : d->nbase;
    *count = *samples = *exposure = 0;
    for (uint32_t r = from; r < to; r++) {
        if (!d->has_profile[r])
            continue;
        *count += v[(size_t)r * stride];
        *samples += d->samples[r];
        *exposure += d->rate[r] * d->units[r] * d->cur_norm[r];
    }
}

enum est_kind { EST_ABS, EST_REL };

/* An estimate of per-run counts `v` (stride apart), as time per unit or share. */
static void estimate_counts(const struct diff *d, const double *v, size_t stride,
                            enum est_kind kind, struct cmp_est *e)
{
    double *x = xmalloc((d->nruns + 1) * sizeof(double)), *y = x + d->nbase;
    size_t na = side_vals(d, 0, v, stride, kind == EST_ABS ? as_abs : as_rel, x);
    size_t nb = side_vals(d, 1, v, stride, kind == EST_ABS ? as_abs : as_rel, y);
    if (na >= 2 || nb >= 2) {
        /* Floors: a run's value is a count of samples, so its variance is at least Poisson's
         * (value^2 / count, at the side's mean count); with 5 runs a side the sample variance
         * of a step with ~100 samples a run comes out far below that often enough to flag
         * unchanged steps (bench/loop.py at 100 Hz). */
        double ka, sa, ta, kb, sb, tb;
        side_sum(d, 0, v, stride, &ka, &sa, &ta);
        side_sum(d, 1, v, stride, &kb, &sb, &tb);
        double ma = 0, mb = 0;
        for (size_t i = 0; i < na; i++)
            ma += x[i] / (double)na;
        for (size_t i = 0; i < nb; i++)
            mb += y[i] / (double)nb;
        double fa = na && ka > 0 ? ma * ma / (ka / (double)na) : 0;
        double fb = nb && kb > 0 ? mb * mb / (kb / (double)nb) : 0;
        if (kind == EST_REL) {
            /* a share: binomial, p(1-p)/n at the mean share and samples a run */
            fa = na && sa > 0 ? ma * (1 - ma) / (sa / (double)na) : 0;
            fb = nb && sb > 0 ? mb * (1 - mb) / (sb / (double)nb) : 0;
        }
        cmp_welch_floor(x, na, y, nb, fa, fb, d->conf, e);
    } else {
        double ka, sa, ta, kb, sb, tb;
        side_sum(d, 0, v, stride, &ka, &sa, &ta);
        side_sum(d, 1, v, stride, &kb, &sb, &tb);
        if (kind == EST_ABS)
            cmp_poisson(ka, ta, kb, tb, 1.0, d->conf, e);
        else
            cmp_share(ka, sa, kb, sb, d->conf, e);
    }
    free(x);
}

/* Shares (stages, types): Welch over runs, or one run a side as a share of its samples. */
static void estimate_shares(const struct diff *d, const double *v, enum est_kind kind,
                            struct cmp_est *e)
{
    double *x = xmalloc((d->nruns + 1) * sizeof(double)), *y = x + d->nbase;
    size_t na = side_vals(d, 0, v, 1, kind == EST_ABS ? as_share_abs : as_is, x);
    size_t nb = side_vals(d, 1, v, 1, kind == EST_ABS ? as_share_abs : as_is, y);
    if (na >= 2 || nb >= 2) {
        cmp_welch(x, na, y, nb, d->conf, e);
    } else if (na == 1 && nb == 1) {
        uint32_t ra = 0, rb = d->nbase;
        double sa = d->samples[ra], sb = d->samples[rb];
        if (kind == EST_REL) {
            cmp_share(v[ra] * sa, sa, v[rb] * sb, sb, d->conf, e);
        } else {
            /* the share's sampling interval scaled to seconds per unit */
            cmp_share(v[ra] * sa, sa, v[rb] * sb, sb, d->conf, e);
            double fa = d->wall_s[ra] / d->units[ra], fb = d->wall_s[rb] / d->units[rb];
            double b = e->base * fa, n = e->new_ * fb, lo = e->lo, hi = e->hi;
            double f = fmax(fa, fb);
            e->base = b;
            e->new_ = n;
            e->diff = n - b;
            e->lo = e->diff + (lo - (e->diff / f)) * f;
            e->hi = e->diff + (hi - (e->diff / f)) * f;
            e->rel = b ? e->diff / b : NAN;
            e->rel_lo = b ? e->lo / b : NAN;
            e->rel_hi = b ? e->hi / b : NAN;
        }
    } else {
        cmp_welch(x, na, y, nb, d->conf, e);
    }
    free(x);
}

/* Independent filtering: an entity with fewer samples than this over all runs (5 a run on
 * average) cannot show a change beyond noise, so it is not tested and does not dilute the
 * false-discovery correction of those that can. Shares (stages, types) are always tested. */
static double min_pooled(const struct diff *d)
{
    uint32_t n = 0;
    for (uint32_t r = 0; r < d->nruns; r++)
        n += d->has_profile[r];
    return 5.0 * n;
}

static double pooled(const struct diff *d, const double *v)
{
    double s = 0;
    for (uint32_t r = 0; r < d->nruns; r++)
        s += d->has_profile[r] ? v[r] : 0;
    return s;
}

/* Benjamini-Hochberg over the estimates at `off` of the entities whose per-run values at
 * `voff` pass the filter (counts) or of all (shares). */
static void bh_table(const struct diff *d, struct diff_table *t, size_t off, size_t voff,
                     bool counts)
{
    if (!t->n)
        return;
    struct cmp_est **ps = xmalloc(t->n * sizeof(*ps));
    uint32_t k = 0;
    double floor = min_pooled(d);
    for (uint32_t i = 0; i < t->n; i++) {
        struct cmp_est *e = (struct cmp_est *)((char *)&t->v[i] + off);
        const double *v = *(double *const *)((char *)&t->v[i] + voff);
        if (!counts || pooled(d, v) >= floor)
            ps[k++] = e;
        else {
            e->q = 1.0;
            e->flagged = false;
        }
    }
    cmp_bh(ps, k, d->alpha);
    free(ps);
}

static void estimate_table(struct diff *d, struct diff_table *t, bool counts)
{
    for (uint32_t i = 0; i < t->n; i++) {
        struct diff_entity *e = &t->v[i];
        if (counts) {
            d->cur_norm = factors_for(d, t == &d->funcs ? i : e->func - 1);
            estimate_counts(d, e->self, 1, EST_ABS, &e->self_abs);
            estimate_counts(d, e->self, 1, EST_REL, &e->self_rel);
            d->cur_norm = d->normalized ? d->norm : d->ones;
            if (e->total != e->self) {
                estimate_counts(d, e->total, 1, EST_ABS, &e->total_abs);
                estimate_counts(d, e->total, 1, EST_REL, &e->total_rel);
            } else {
                e->total_abs = e->self_abs;
                e->total_rel = e->self_rel;
            }
        } else {
            estimate_shares(d, e->self, EST_REL, &e->self_rel);
            estimate_shares(d, e->self, EST_ABS, &e->self_abs);
            e->total_rel = e->self_rel;
            e->total_abs = e->self_abs;
        }
    }
    d->cur_norm = d->ones;
    const size_t so = offsetof(struct diff_entity, self), to = offsetof(struct diff_entity, total);
    bh_table(d, t, offsetof(struct diff_entity, self_abs), so, counts);
    bh_table(d, t, offsetof(struct diff_entity, total_abs), to, counts);
    bh_table(d, t, offsetof(struct diff_entity, self_rel), so, counts);
    bh_table(d, t, offsetof(struct diff_entity, total_rel), to, counts);
}

/* The value of quantile `q` of one run's latency buckets at rank `rank` (0-based). */
static double bucket_at(const double *b, size_t n, double rank)
{
    double cum = 0;
    for (size_t i = 0; i < n; i++) {
        double c = b[i * 3 + 2];
        if (rank < cum + c) {
            double f = c > 0 ? (rank - cum) / c : 0;
            return (b[i * 3] + f * (b[i * 3 + 1] - b[i * 3])) / 1e6;
        }
        cum += c;
    }
    return n ? b[(n - 1) * 3 + 1] / 1e6 : NAN;
}

/* One run a side: the interval of a latency percentile's change from the order statistics
 * of each run's buckets (a distribution-free interval for a quantile). */
static void percentile_one_run(const struct diff *d, uint32_t ra, uint32_t rb, double q,
                               enum load_metric m, struct cmp_est *e)
{
    const double *ba = d->lat_buckets[ra], *bb = d->lat_buckets[rb];
    size_t na = d->nlat_buckets[ra], nb = d->nlat_buckets[rb];
    double ca = 0, cb = 0;
    for (size_t i = 0; i < na; i++)
        ca += ba[i * 3 + 2];
    for (size_t i = 0; i < nb; i++)
        cb += bb[i * 3 + 2];
    double va = d->load[(size_t)ra * LM_N + m], vb = d->load[(size_t)rb * LM_N + m];
    if (!ba || !bb || ca < 2 || cb < 2) {
        cmp_welch(&va, 1, &vb, 1, d->conf, e);
        return;
    }
    double z = cmp_norm_quantile((1.0 - d->conf) / 2.0);
    /* rank interval of each side's quantile; the change's interval from their ends, widened
     * as two independent intervals combine (sqrt of the squares of the half-widths). */
    double sa = sqrt(ca * q * (1 - q)), sb = sqrt(cb * q * (1 - q));
    double alo = bucket_at(ba, na, fmax(0, ca * q - z * sa)),
           ahi = bucket_at(ba, na, fmin(ca - 1, ca * q + z * sa));
    double blo = bucket_at(bb, nb, fmax(0, cb * q - z * sb)),
           bhi = bucket_at(bb, nb, fmin(cb - 1, cb * q + z * sb));
    memset(e, 0, sizeof(*e));
    e->base = va;
    e->new_ = vb;
    e->diff = vb - va;
    e->nb = e->nn = 1;
    e->method = CMP_SAMPLING;
    e->cv_base = e->cv_new = NAN;
    double dlo = hypot(fmax(0, va - alo), fmax(0, bhi - vb));
    double dhi = hypot(fmax(0, ahi - va), fmax(0, vb - blo));
    e->lo = e->diff - dhi;
    e->hi = e->diff + dlo;
    double se = fmax((e->hi - e->lo) / (2 * z), 1e-12);
    e->p = fmin(1.0, 2.0 * cmp_norm_sf(fabs(e->diff) / se));
    e->rel = va ? e->diff / va : NAN;
    e->rel_lo = va ? e->lo / va : NAN;
    e->rel_hi = va ? e->hi / va : NAN;
    e->q = e->p;
}

static void estimate_load(struct diff *d)
{
    for (int m = 0; m < LM_N; m++) {
        double *x = xmalloc((d->nruns + 1) * sizeof(double)), *y = x + d->nbase;
        size_t na = 0, nb = 0;
        uint32_t ra = 0, rb = 0;
        for (uint32_t r = 0; r < d->nruns; r++) {
            double v = d->load[(size_t)r * LM_N + m];
            if (!d->has_load[r] || isnan(v))
                continue;
            if (r < d->nbase) {
                x[na++] = v;
                ra = r;
            } else {
                y[nb++] = v;
                rb = r;
            }
        }
        struct cmp_est *e = &d->load_est[m];
        if (na >= 2 || nb >= 2 || na == 0 || nb == 0) {
            cmp_welch(x, na, y, nb, d->conf, e);
        } else if (m == LM_THROUGHPUT) {
            /* ok responses over the elapsed time: Poisson counts */
            double ua = d->units[ra], ub = d->units[rb];
            cmp_poisson(ua, ua / x[0], ub, ub / y[0], 1.0, d->conf, e);
        } else if (m >= LM_P50 && m <= LM_P999) {
            static const double qs[] = {0.5, 0.9, 0.99, 0.999};
            percentile_one_run(d, ra, rb, qs[m - LM_P50], (enum load_metric)m, e);
        } else if (m == LM_ERROR_RATE) {
            double ua = d->units[ra], ub = d->units[rb];
            double ea = x[0] * ua / fmax(1e-12, 1 - x[0]), eb = y[0] * ub / fmax(1e-12, 1 - y[0]);
            cmp_share(ea, ea + ua, eb, eb + ub, d->conf, e);
        } else {
            cmp_welch(x, na, y, nb, d->conf, e);
        }
        e->flagged = e->method != CMP_NONE && e->p <= d->alpha && (e->lo > 0 || e->hi < 0);
        free(x);
    }
}

/* ---- tree ---- */

static const struct diff_tree *sort_tree;
static int by_name(const void *x, const void *y)
{
    uint32_t a = *(const uint32_t *)x, b = *(const uint32_t *)y;
    return strcmp(strtab_get(&sort_tree->strs, sort_tree->v[a].name),
                  strtab_get(&sort_tree->strs, sort_tree->v[b].name));
}

/* Renumbers the tree in preorder, siblings by name. */
static void tree_preorder(struct diff *d)
{
    struct diff_tree *t = &d->tree;
    uint32_t n = t->n;
    uint32_t *nchild = xcalloc(n + 1, sizeof(uint32_t)), *start = xcalloc(n + 1, sizeof(uint32_t));
    for (uint32_t i = 1; i < n; i++)
        nchild[t->v[i].parent]++;
    for (uint32_t i = 0; i < n; i++)
        start[i + 1] = start[i] + nchild[i];
    uint32_t *kids = xmalloc((n ? n : 1) * sizeof(uint32_t)), *fill = xcalloc(n, sizeof(uint32_t));
    for (uint32_t i = 1; i < n; i++) {
        uint32_t p = t->v[i].parent;
        kids[start[p] + fill[p]++] = i;
    }
    sort_tree = t;
    for (uint32_t i = 0; i < n; i++)
        if (nchild[i] > 1)
            qsort(kids + start[i], nchild[i], sizeof(uint32_t), by_name);
    uint32_t *order = xmalloc(n * sizeof(uint32_t)), *newid = xmalloc(n * sizeof(uint32_t));
    uint32_t *stack = xmalloc(n * sizeof(uint32_t)), sp = 0, k = 0;
    stack[sp++] = 0;
    while (sp) {
        uint32_t v = stack[--sp];
        newid[v] = k;
        order[k++] = v;
        for (uint32_t c = nchild[v]; c-- > 0;)
            stack[sp++] = kids[start[v] + c];
    }
    struct diff_node *nv = xmalloc(t->cap * sizeof(*nv));
    double *ns = xcalloc((size_t)t->cap * d->nruns, sizeof(double));
    for (uint32_t i = 0; i < n; i++) {
        nv[i] = t->v[order[i]];
        nv[i].parent = i ? newid[nv[i].parent] : 0;
        memcpy(ns + (size_t)i * d->nruns, d->node_self + (size_t)order[i] * d->nruns,
               d->nruns * sizeof(double));
    }
    free(t->v);
    free(d->node_self);
    t->v = nv;
    d->node_self = ns;
    free(nchild);
    free(start);
    free(kids);
    free(fill);
    free(order);
    free(newid);
    free(stack);
}

static void tree_totals(struct diff *d)
{
    struct diff_tree *t = &d->tree;
    size_t R = d->nruns;
    d->node_total = xcalloc((size_t)t->n * R, sizeof(double));
    memcpy(d->node_total, d->node_self, (size_t)t->n * R * sizeof(double));
    for (uint32_t i = t->n; i-- > 1;)
        for (size_t r = 0; r < R; r++)
            d->node_total[(size_t)t->v[i].parent * R + r] += d->node_total[(size_t)i * R + r];
}

static int by_double(const void *x, const void *y)
{
    double a = *(const double *)x, b = *(const double *)y;
    return (a > b) - (a < b);
}

/* The median of the `n` values v[k * stride] leaving out k == skip (n - 1 then). */
static double median_skip(const double *v, size_t n, size_t stride, size_t skip, double *tmp)
{
    size_t m = 0;
    for (size_t k = 0; k < n; k++)
        if (k != skip)
            tmp[m++] = v[k * stride];
    qsort(tmp, m, sizeof(double), by_double);
    return m % 2 ? tmp[m / 2] : 0.5 * (tmp[m / 2 - 1] + tmp[m / 2]);
}

/* Each run's machine speed factor, taken out of the times of functions, lines and frames
 * (docs/loop.md, "Machine noise"): a run the machine slowed by 15% (another process on the
 * CPU, a slower core) slows every function in it, so the median over functions of (a
 * function's log time in the run minus its mean log time over all runs) is the machine's
 * part, as DESeq2's median of ratios is a sequencing depth. The reference functions are
 * those seen in every run with 20 samples a run; at least 5 are needed, else every factor
 * is 1. A reference function is itself judged with the factors of the others (left out of
 * its own median), so its own change or noise never divides itself; with 4 or more others
 * one changed function moves their median little. A change to most of the program at once
 * is seen only in the time per unit of work, which keeps the raw change. */
static void machine_factors(struct diff *d, const uint8_t *changed)
{
    uint32_t nprof = 0, R = d->nruns;
    d->normalized = false;
    for (uint32_t r = 0; r < R; r++) {
        d->norm[r] = 1.0;
        nprof += d->has_profile[r];
    }
    free(d->loo_row);
    d->loo_row = xcalloc(d->funcs.n + 1, sizeof(uint32_t));
    uint32_t *use = xmalloc((d->funcs.n + 1) * sizeof(uint32_t)), nuse = 0;
    for (uint32_t i = 0; i < d->funcs.n && nprof >= 2; i++) {
        const double *v = d->funcs.v[i].self;
        double pooled_n = 0;
        bool all = true;
        for (uint32_t r = 0; r < R && all; r++) {
            if (!d->has_profile[r])
                continue;
            all = v[r] > 0;
            pooled_n += v[r];
        }
        if (all && pooled_n >= 20.0 * nprof && !(changed && changed[i]))
            use[nuse++] = i;
    }
    if (nuse < 5) {
        free(use);
        return;
    }
    /* lx[k * R + r]: log time of reference function k in run r, minus its mean */
    double *lx = xcalloc((size_t)nuse * R, sizeof(double)), *tmp = xmalloc(nuse * sizeof(double));
    for (uint32_t k = 0; k < nuse; k++) {
        double mean = 0;
        for (uint32_t r = 0; r < R; r++) {
            if (!d->has_profile[r])
                continue;
            double x = d->funcs.v[use[k]].self[r] / d->rate[r] / d->units[r];
            lx[(size_t)k * R + r] = log(x);
            mean += log(x);
        }
        mean /= nprof;
        for (uint32_t r = 0; r < R; r++)
            lx[(size_t)k * R + r] -= d->has_profile[r] ? mean : 0;
    }
    free(d->loo);
    d->loo = xmalloc((size_t)nuse * R * sizeof(double));
    for (size_t skip = 0; skip <= nuse; skip++) {
        /* skip == nuse: the full factor */
        double *out = skip < nuse ? d->loo + skip * R : d->norm, lsum = 0;
        for (uint32_t r = 0; r < R; r++) {
            out[r] = d->has_profile[r] ? median_skip(lx + r, nuse, R, skip, tmp) : 0;
            lsum += out[r];
        }
        for (uint32_t r = 0; r < R; r++)
            out[r] = d->has_profile[r] ? exp(out[r] - lsum / nprof) : 1.0;
        if (skip < nuse)
            d->loo_row[use[skip]] = (uint32_t)skip + 1;
    }
    d->normalized = true;
    free(lx);
    free(tmp);
    free(use);
}

/* The factors for the self time of function `fi` (funcs index; UINT32_MAX none). */
static const double *factors_for(const struct diff *d, uint32_t fi)
{
    if (!d->normalized)
        return d->ones;
    if (fi < d->funcs.n && d->loo_row && d->loo_row[fi])
        return d->loo + (size_t)(d->loo_row[fi] - 1) * d->nruns;
    return d->norm;
}

static void estimate_tree(struct diff *d)
{
    struct diff_tree *t = &d->tree;
    size_t R = d->nruns;
    for (uint32_t i = 0; i < t->n; i++) {
        struct diff_node *n = &t->v[i];
        const double *s = d->node_self + (size_t)i * R, *tt = d->node_total + (size_t)i * R;
        n->in_base = n->in_new = false;
        for (uint32_t r = 0; r < d->nruns; r++) {
            if (tt[r] > 0) {
                if (r < d->nbase)
                    n->in_base = true;
                else
                    n->in_new = true;
            }
        }
        uint64_t fi = 0;
        d->cur_norm = factors_for(
            d, hmap_get(&d->funcs.index, n->name, &fi) && fi ? (uint32_t)(fi - 1) : UINT32_MAX);
        estimate_counts(d, s, 1, EST_ABS, &n->self_abs);
        estimate_counts(d, s, 1, EST_REL, &n->self_rel);
        d->cur_norm = d->normalized ? d->norm : d->ones;
        estimate_counts(d, tt, 1, EST_ABS, &n->total_abs);
        d->cur_norm = d->ones;
        estimate_counts(d, tt, 1, EST_REL, &n->total_rel);
    }
    struct cmp_est **ps = xmalloc((t->n ? t->n : 1) * sizeof(*ps));
    const size_t offs[] = {
        offsetof(struct diff_node, self_abs), offsetof(struct diff_node, total_abs),
        offsetof(struct diff_node, self_rel), offsetof(struct diff_node, total_rel)};
    double floor = min_pooled(d);
    for (size_t k = 0; k < 4; k++) {
        const double *vals = k % 2 ? d->node_total : d->node_self;
        uint32_t m = 0;
        for (uint32_t i = 1; i < t->n; i++) { /* the root is not a frame */
            struct cmp_est *e = (struct cmp_est *)((char *)&t->v[i] + offs[k]);
            if (pooled(d, vals + (size_t)i * R) >= floor)
                ps[m++] = e;
            else {
                e->q = 1.0;
                e->flagged = false;
            }
        }
        cmp_bh(ps, m, d->alpha);
    }
    free(ps);
}

/* ---- headline ---- */

static int side_verdict(const struct diff *d, int side)
{
    uint32_t from = side ? d->nbase : 0, to = side ? d->nruns : d->nbase;
    int counts[BT_N] = {0}, n = 0;
    for (uint32_t r = from; r < to; r++) {
        if (!d->has_profile[r])
            continue;
        n++;
        if (d->verdict[r] >= 0 && d->verdict[r] < BT_N)
            counts[d->verdict[r]]++;
    }
    int best = -1;
    for (int t = 0; t < BT_N; t++)
        if (counts[t] * 2 > n && (best < 0 || counts[t] > counts[best]))
            best = t;
    return best;
}

static int pct(struct buf *b, double v)
{
    return buf_printf(b, "%.0f%%", 100 * v);
}

static int write_headline(struct diff *d)
{
    struct buf *b = &d->headline;
    int rc = 0;
    /* The bottleneck type whose share changed most, among flagged changes. */
    const struct diff_entity *mv = NULL;
    for (uint32_t i = 0; i < d->types.n; i++) {
        const struct diff_entity *e = &d->types.v[i];
        if (e->self_rel.flagged && (!mv || fabs(e->self_rel.diff) > fabs(mv->self_rel.diff)))
            mv = e;
    }
    /* The old bottleneck's own change leads when it moved: "serialization fell from 62% to
     * 8%; the bottleneck is now model compute". */
    if (d->verdict_base >= 0) {
        const struct diff_entity *old =
            diff_find(d, &d->types, btype_name((enum btype)d->verdict_base));
        if (old && old->self_rel.flagged)
            mv = old;
    }
    const struct diff_entity *fn = NULL;
    for (uint32_t i = 0; i < d->funcs.n; i++) {
        const struct diff_entity *e = &d->funcs.v[i];
        if (e->self_abs.flagged && (!fn || fabs(e->self_abs.diff) > fabs(fn->self_abs.diff)))
            fn = e;
    }
    for (uint32_t i = 0; i < d->lines.n && !fn; i++) {
        const struct diff_entity *e = &d->lines.v[i];
        if (e->self_abs.flagged)
            fn = e;
    }
    if (d->any_profile) {
        const struct cmp_est *t = &d->time_abs;
        if (mv) {
            rc = rc ? rc
                    : buf_printf(b, "%s %s from ", strtab_get(&d->tree.strs, mv->name),
                                 mv->self_rel.diff > 0 ? "rose" : "fell");
            rc = rc ? rc : pct(b, mv->self_rel.base);
            rc = rc ? rc : buf_puts(b, " to ");
            rc = rc ? rc : pct(b, mv->self_rel.new_);
            rc = rc ? rc : buf_puts(b, " of wall time");
        } else if (fn) {
            rc = rc ? rc
                    : buf_printf(b, "%s got %s: %+.0f%% self time per %s",
                                 strtab_get(&d->tree.strs, fn->name),
                                 fn->self_abs.diff > 0 ? "slower" : "faster",
                                 100 * fn->self_abs.rel, d->unit);
        } else if (t->flagged) {
            rc = rc ? rc
                    : buf_printf(b,
                                 "time per %s changed %+.1f%% with no one function "
                                 "standing out",
                                 d->unit, 100 * t->rel);
        } else {
            rc = rc ? rc : buf_puts(b, "no change beyond noise");
        }
        if (t->method != CMP_NONE && isfinite(t->rel) && (!mv || t->flagged) && (fn || !t->flagged))
            rc = rc ? rc
                    : buf_printf(b, " (time per %s %+.1f%%, %.0f%% interval %+.1f%% to %+.1f%%)",
                                 d->unit, 100 * t->rel, 100 * d->conf, 100 * t->rel_lo,
                                 100 * t->rel_hi);
        int vb = d->verdict_base, vn = d->verdict_new;
        if (vb != vn && vn >= 0)
            rc = rc ? rc
                    : buf_printf(b, "; the bottleneck is now %s%s%s%s", btype_label((enum btype)vn),
                                 vb >= 0 ? " (was " : "", vb >= 0 ? btype_name((enum btype)vb) : "",
                                 vb >= 0 ? ")" : "");
        else if (vb != vn)
            rc = rc ? rc
                    : buf_printf(b, "; no clear bottleneck now (was %s)",
                                 btype_name((enum btype)vb));
        else if (vn >= 0)
            rc = rc ? rc
                    : buf_printf(b, "; the bottleneck is still %s", btype_label((enum btype)vn));
    }
    if (d->any_load) {
        const struct cmp_est *tp = &d->load_est[LM_THROUGHPUT], *p99 = &d->load_est[LM_P99];
        rc = rc ? rc : buf_puts(b, d->any_profile ? "; " : "");
        if (tp->method != CMP_NONE)
            rc = rc ? rc
                    : buf_printf(b, "throughput %s%+.1f%%, p99 %s%+.1f%%", tp->flagged ? "" : "~",
                                 100 * tp->rel, p99->flagged ? "" : "~", 100 * p99->rel);
    }
    rc = rc ? rc : buf_putc(b, '.');
    if (!rc && b->len && (mv || !fn))
        b->data[0] = (char)(b->data[0] >= 'a' && b->data[0] <= 'z' ? b->data[0] - 32 : b->data[0]);
    return rc;
}

void diff_finish(struct diff *d)
{
    uint32_t nload = 0, nprof = 0;
    for (uint32_t r = 0; r < d->nruns; r++) {
        nprof += d->has_profile[r];
        nload += d->has_profile[r] && d->has_load[r];
    }
    if (nprof && nload != nprof) {
        /* time per request only when every recording knows its requests */
        for (uint32_t r = 0; r < d->nruns; r++)
            d->units[r] = 1;
        if (nload)
            warn(d, "only some recordings were made under load: times are per run, not per "
                    "request");
    } else if (nprof) {
        d->unit = "request";
    }
    if (!nprof)
        d->unit = "request";
    for (uint32_t r = 0; r < d->nruns; r++)
        if (d->units[r] <= 0)
            d->units[r] = 1;
    d->tree.unit = d->unit;
    tree_preorder(d);
    tree_totals(d);
    /* the raw time per unit first, then the machine factors for everything per function */
    for (uint32_t r = 0; r < d->nruns; r++)
        d->norm[r] = 1.0;
    d->cur_norm = d->ones;
    estimate_counts(d, d->node_total, 1, EST_ABS, &d->time_abs);
    machine_factors(d, NULL);
    if (d->normalized) {
        /* Second pass: the functions the first pass found changed leave the reference set,
         * so that their change does not lean on the others' median (TMM's trimming, in
         * spirit). Kept only when 5 reference functions remain. */
        estimate_table(d, &d->funcs, true);
        uint8_t *changed = xcalloc(d->funcs.n + 1, 1);
        uint32_t nchanged = 0;
        for (uint32_t i = 0; i < d->funcs.n; i++)
            if (d->funcs.v[i].self_abs.flagged && d->loo_row[i])
                nchanged += changed[i] = 1;
        if (nchanged) {
            double *keep_norm = xmalloc(d->nruns * sizeof(double));
            memcpy(keep_norm, d->norm, d->nruns * sizeof(double));
            uint32_t *keep_row = xmalloc((d->funcs.n + 1) * sizeof(uint32_t));
            memcpy(keep_row, d->loo_row, (d->funcs.n + 1) * sizeof(uint32_t));
            double *keep_loo = d->loo;
            d->loo = NULL;
            machine_factors(d, changed);
            if (!d->normalized) { /* too few left: the first pass stands */
                memcpy(d->norm, keep_norm, d->nruns * sizeof(double));
                memcpy(d->loo_row, keep_row, (d->funcs.n + 1) * sizeof(uint32_t));
                free(d->loo);
                d->loo = keep_loo;
                d->normalized = true;
            } else {
                free(keep_loo);
            }
            free(keep_norm);
            free(keep_row);
        }
        free(changed);
    }
    estimate_tree(d);
    d->time_abs.flagged = d->time_abs.method != CMP_NONE && d->time_abs.p <= d->alpha &&
                          (d->time_abs.lo > 0 || d->time_abs.hi < 0);
    {
        double *x = xmalloc((d->nruns + 1) * sizeof(double)), *y = x + d->nbase;
        size_t na = side_vals(d, 0, d->wall_s, 1, as_wall, x);
        size_t nb = side_vals(d, 1, d->wall_s, 1, as_wall, y);
        cmp_welch(x, na, y, nb, d->conf, &d->wall_est);
        d->wall_est.flagged = d->wall_est.method != CMP_NONE && d->wall_est.p <= d->alpha &&
                              (d->wall_est.lo > 0 || d->wall_est.hi < 0);
        free(x);
    }
    estimate_table(d, &d->funcs, true);
    estimate_table(d, &d->lines, true);
    estimate_table(d, &d->stages, false);
    estimate_table(d, &d->types, false);
    estimate_load(d);
    d->verdict_base = side_verdict(d, 0);
    d->verdict_new = side_verdict(d, 1);
    /* Drift and noise */
    for (int side = 0; side < 2; side++) {
        uint32_t from = side ? d->nbase : 0, to = side ? d->nruns : d->nbase;
        double v[256];
        size_t n = 0;
        for (uint32_t r = from; r < to && n < 256; r++)
            if (d->has_profile[r])
                v[n++] = d->samples[r] / d->rate[r] / d->units[r];
        double tau, p;
        cmp_trend(v, n, &tau, &p);
        if (n >= 4 && p < 0.05)
            warn(d,
                 "the %s runs trend with run order (Kendall tau %.2f, p %.3f): the machine "
                 "drifted; interleave the runs or repeat them",
                 side ? "new" : "base", tau, p);
    }
    if (d->time_abs.method == CMP_SAMPLING ||
        (!d->any_profile && d->load_est[LM_THROUGHPUT].method == CMP_SAMPLING))
        warn(d, "one run a side: intervals are sampling intervals only and do not include "
                "run-to-run noise; record 5 repeats a side for a comparison you can trust");
    if (write_headline(d))
        buf_reset(&d->headline);
}

const struct diff_entity *diff_find(const struct diff *d, const struct diff_table *t,
                                    const char *name)
{
    for (uint32_t i = 0; i < t->n; i++)
        if (strcmp(strtab_get(&d->tree.strs, t->v[i].name), name) == 0)
            return &t->v[i];
    return NULL;
}
