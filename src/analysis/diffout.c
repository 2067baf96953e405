// SPDX-License-Identifier: MIT
// The comparison as text for a terminal and as JSON for scripts (diff.h; the JSON keys are in
// docs/loop.md, "crux diff").
#include <math.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "analysis/diff.h"
#include "util/jsonw.h"
#include "util/xalloc.h"

static const char *method_text(const struct cmp_est *e)
{
    switch (e->method) {
    case CMP_RUNS:
        return "runs";
    case CMP_SAMPLING:
        return "sampling";
    default:
        return "none";
    }
}

/* "+12.3% [+8.1%, +16.0%]" or, for shares, "+4.1 pt [+2.0, +6.2]". */
static int change_text(struct buf *b, const struct cmp_est *e, bool points)
{
    if (e->method == CMP_NONE)
        return buf_printf(b, "%s", "(no interval: a side has no data)");
    if (points)
        return buf_printf(b, "%+.1f pt [%+.1f, %+.1f]", 100 * e->diff, 100 * e->lo, 100 * e->hi);
    if (!isfinite(e->rel))
        return buf_printf(b, "new (%s)", e->new_ > 0 ? "absent before" : "absent");
    return buf_printf(b, "%+.1f%% [%+.1f%%, %+.1f%%]", 100 * e->rel, 100 * e->rel_lo,
                      100 * e->rel_hi);
}

/* Seconds with a unit that fits. */
static int secs(struct buf *b, double s)
{
    double a = fabs(s);
    if (a >= 1 || a == 0)
        return buf_printf(b, "%.3f s", s);
    if (a >= 1e-3)
        return buf_printf(b, "%.2f ms", s * 1e3);
    return buf_printf(b, "%.1f us", s * 1e6);
}

static const struct diff *order_d;
static size_t order_off;
static const struct cmp_est *est_at(const struct diff_entity *e)
{
    return (const struct cmp_est *)((const char *)e + order_off);
}
/* Flagged first, then by the size of the change. */
static int by_change(const void *x, const void *y)
{
    const struct cmp_est *a = est_at(*(const struct diff_entity *const *)x),
                         *b = est_at(*(const struct diff_entity *const *)y);
    if (a->flagged != b->flagged)
        return a->flagged ? -1 : 1;
    double da = fabs(a->diff), db = fabs(b->diff);
    return (da < db) - (da > db);
}

static int table_text(const struct diff *d, const struct diff_table *t, size_t off, bool shares,
                      const char *title, unsigned top, struct buf *b)
{
    if (!t->n)
        return 0;
    const struct diff_entity **v = xmalloc(t->n * sizeof(*v));
    for (uint32_t i = 0; i < t->n; i++)
        v[i] = &t->v[i];
    order_d = d;
    order_off = off;
    qsort(v, t->n, sizeof(*v), by_change);
    uint32_t flagged = 0;
    for (uint32_t i = 0; i < t->n; i++)
        flagged += est_at(v[i])->flagged;
    int rc = buf_printf(b, "\n%s: %u of %u changed beyond noise\n", title, flagged, t->n);
    unsigned shown = 0;
    for (uint32_t i = 0; i < t->n && !rc; i++) {
        const struct cmp_est *e = est_at(v[i]);
        if (!e->flagged && shown >= top)
            break;
        if (e->base == 0 && e->new_ == 0)
            continue;
        if (!e->flagged && shown >= (flagged ? top / 2 + flagged : top))
            break;
        shown++;
        rc = buf_printf(b, "  %s ", e->flagged ? "*" : " ");
        if (shares)
            rc = rc ? rc : buf_printf(b, "%5.1f%% -> %5.1f%%  ", 100 * e->base, 100 * e->new_);
        else {
            rc = rc ? rc : secs(b, e->base);
            rc = rc ? rc : buf_puts(b, " -> ");
            rc = rc ? rc : secs(b, e->new_);
            rc = rc ? rc : buf_puts(b, "  ");
        }
        rc = rc ? rc : change_text(b, e, shares);
        rc = rc ? rc : buf_printf(b, "  q %.2g  %s\n", e->q, strtab_get(&d->tree.strs, v[i]->name));
    }
    free(v);
    return rc;
}

int diff_write_text(const struct diff *d, unsigned top, struct buf *b)
{
    const struct cmp_est *t = &d->time_abs;
    int rc = buf_printf(b, "base: %u run%s, new: %u run%s; ", d->nbase, d->nbase == 1 ? "" : "s",
                        d->nnew, d->nnew == 1 ? "" : "s");
    if ((d->any_profile ? t->method : d->load_est[LM_THROUGHPUT].method) == CMP_RUNS)
        rc = rc ? rc
                : buf_printf(b,
                             "the run is the unit (Welch's t over runs); %.0f%% intervals; "
                             "flags (*) keep false discoveries under %.0f%% "
                             "(Benjamini-Hochberg)\n",
                             100 * d->conf, 100 * d->alpha);
    else
        rc = rc ? rc
                : buf_printf(b,
                             "one run a side: sampling intervals only (%.0f%%), blind to "
                             "run-to-run noise; flags (*) keep false discoveries under "
                             "%.0f%%\n",
                             100 * d->conf, 100 * d->alpha);
    rc = rc ? rc : buf_printf(b, "%s\n", buf_cstr((struct buf *)&d->headline));
    if (d->any_profile) {
        rc = rc ? rc : buf_printf(b, "\n%s time per %-9s ", t->flagged ? "*" : " ", d->unit);
        rc = rc ? rc : secs(b, t->base);
        rc = rc ? rc : buf_puts(b, " -> ");
        rc = rc ? rc : secs(b, t->new_);
        rc = rc ? rc : buf_puts(b, "  ");
        rc = rc ? rc : change_text(b, t, false);
        if (t->method == CMP_RUNS)
            rc = rc ? rc
                    : buf_printf(b, "  run-to-run CV %.1f%% / %.1f%%", 100 * t->cv_base,
                                 100 * t->cv_new);
        rc = rc ? rc : buf_puts(b, " (thread-seconds sampled)\n");
        const struct cmp_est *w = &d->wall_est;
        if (w->method == CMP_RUNS) {
            rc = rc ? rc : buf_printf(b, "%s wall time per %-4s ", w->flagged ? "*" : " ", d->unit);
            rc = rc ? rc : secs(b, w->base);
            rc = rc ? rc : buf_puts(b, " -> ");
            rc = rc ? rc : secs(b, w->new_);
            rc = rc ? rc : buf_puts(b, "  ");
            rc = rc ? rc : change_text(b, w, false);
            rc = rc ? rc
                    : buf_printf(b, "  run-to-run CV %.1f%% / %.1f%% (recording length)\n",
                                 100 * w->cv_base, 100 * w->cv_new);
        }
    }
    if (d->normalized) {
        rc = rc ? rc
                : buf_puts(
                      b,
                      "  machine speed factor of each run (taken out of the per-function times):");
        for (uint32_t r = 0; r < d->nruns && !rc; r++)
            if (d->has_profile[r])
                rc = buf_printf(b, "%s%.3f", r == d->nbase ? " | " : " ", d->norm[r]);
        rc = rc ? rc : buf_putc(b, '\n');
    }
    if (d->any_load) {
        rc = rc ? rc : buf_puts(b, "\nload\n");
        for (int m = 0; m < LM_N && !rc; m++) {
            const struct cmp_est *e = &d->load_est[m];
            if (isnan(e->base) && isnan(e->new_))
                continue;
            if (e->nb == 0 && e->nn == 0)
                continue;
            rc = buf_printf(b, "  %s %-17s", e->flagged ? "*" : " ", load_metric_names[m]);
            if (m == LM_THROUGHPUT || m == LM_TOKENS)
                rc = rc ? rc : buf_printf(b, "%10.2f/s -> %10.2f/s  ", e->base, e->new_);
            else if (m == LM_ERROR_RATE || m == LM_PREFILL)
                rc = rc ? rc : buf_printf(b, "%8.2f%% -> %8.2f%%  ", 100 * e->base, 100 * e->new_);
            else {
                rc = rc ? rc : secs(b, e->base);
                rc = rc ? rc : buf_puts(b, " -> ");
                rc = rc ? rc : secs(b, e->new_);
                rc = rc ? rc : buf_puts(b, "  ");
            }
            rc = rc ? rc : change_text(b, e, m == LM_ERROR_RATE || m == LM_PREFILL);
            rc = rc ? rc : buf_putc(b, '\n');
        }
    }
    rc = rc ? rc
            : table_text(d, &d->types, offsetof(struct diff_entity, self_rel), true,
                         "bottleneck types (share of wall time)", top, b);
    rc = rc ? rc
            : table_text(d, &d->stages, offsetof(struct diff_entity, self_rel), true,
                         "stages (share of wall time)", top, b);
    char title[96];
    snprintf(title, sizeof(title), "functions (self time per %s)", d->unit);
    rc =
        rc ? rc
           : table_text(d, &d->funcs, offsetof(struct diff_entity, self_abs), false, title, top, b);
    snprintf(title, sizeof(title), "lines (self time per %s)", d->unit);
    rc =
        rc ? rc
           : table_text(d, &d->lines, offsetof(struct diff_entity, self_abs), false, title, top, b);
    if (d->warnings.len) {
        rc = rc ? rc : buf_puts(b, "\n");
        const char *w = buf_cstr((struct buf *)&d->warnings);
        while (!rc && *w) {
            const char *nl = strchr(w, '\n');
            size_t n = nl ? (size_t)(nl - w) : strlen(w);
            rc = buf_printf(b, "warning: %.*s\n", (int)n, w);
            w += n + (nl ? 1 : 0);
        }
    }
    return rc;
}

/* ---- JSON ---- */

static void est_json(struct jsonw *w, const char *key, const struct cmp_est *e)
{
    jsonw_key(w, key);
    jsonw_obj_begin(w);
    static const char *const k[] = {"base",   "new",    "diff", "lo", "hi",      "rel",
                                    "rel_lo", "rel_hi", "p",    "q",  "cv_base", "cv_new"};
    const double v[] = {e->base,   e->new_,   e->diff, e->lo, e->hi,      e->rel,
                        e->rel_lo, e->rel_hi, e->p,    e->q,  e->cv_base, e->cv_new};
    for (size_t i = 0; i < sizeof(v) / sizeof(v[0]); i++) {
        jsonw_key(w, k[i]);
        jsonw_double(w, v[i]);
    }
    jsonw_key(w, "runs");
    jsonw_arr_begin(w);
    jsonw_u64(w, e->nb);
    jsonw_u64(w, e->nn);
    jsonw_arr_end(w);
    jsonw_key(w, "method");
    jsonw_str(w, method_text(e));
    jsonw_key(w, "flagged");
    jsonw_bool(w, e->flagged);
    jsonw_obj_end(w);
}

static void table_json(const struct diff *d, struct jsonw *w, const char *key,
                       const struct diff_table *t, bool totals)
{
    jsonw_key(w, key);
    jsonw_arr_begin(w);
    for (uint32_t i = 0; i < t->n; i++) {
        const struct diff_entity *e = &t->v[i];
        jsonw_obj_begin(w);
        jsonw_key(w, "name");
        jsonw_str(w, strtab_get(&d->tree.strs, e->name));
        est_json(w, totals ? "self_time" : "time", &e->self_abs);
        est_json(w, totals ? "self_share" : "share", &e->self_rel);
        if (totals) {
            est_json(w, "total_time", &e->total_abs);
            est_json(w, "total_share", &e->total_rel);
        }
        jsonw_obj_end(w);
    }
    jsonw_arr_end(w);
}

int diff_write_json(const struct diff *d, struct buf *out)
{
    struct jsonw w;
    jsonw_init(&w, out, 0);
    jsonw_obj_begin(&w);
    jsonw_key(&w, "base_runs");
    jsonw_u64(&w, d->nbase);
    jsonw_key(&w, "new_runs");
    jsonw_u64(&w, d->nnew);
    jsonw_key(&w, "unit");
    jsonw_str(&w, d->unit);
    jsonw_key(&w, "confidence");
    jsonw_double(&w, d->conf);
    jsonw_key(&w, "fdr");
    jsonw_double(&w, d->alpha);
    jsonw_key(&w, "headline");
    jsonw_str(&w, buf_cstr((struct buf *)&d->headline));
    jsonw_key(&w, "bottleneck");
    jsonw_obj_begin(&w);
    jsonw_key(&w, "base");
    if (d->verdict_base >= 0)
        jsonw_str(&w, btype_name((enum btype)d->verdict_base));
    else
        jsonw_null(&w);
    jsonw_key(&w, "new");
    if (d->verdict_new >= 0)
        jsonw_str(&w, btype_name((enum btype)d->verdict_new));
    else
        jsonw_null(&w);
    jsonw_obj_end(&w);
    jsonw_key(&w, "machine_factors");
    jsonw_arr_begin(&w);
    for (uint32_t r = 0; r < d->nruns; r++)
        jsonw_double(&w, d->has_profile[r] ? d->norm[r] : NAN);
    jsonw_arr_end(&w);
    if (d->any_profile) {
        est_json(&w, "time_per_unit", &d->time_abs);
        est_json(&w, "wall_per_unit", &d->wall_est);
    }
    if (d->any_load) {
        jsonw_key(&w, "load");
        jsonw_obj_begin(&w);
        for (int m = 0; m < LM_N; m++)
            est_json(&w, load_metric_names[m], &d->load_est[m]);
        jsonw_obj_end(&w);
    }
    table_json(d, &w, "types", &d->types, false);
    table_json(d, &w, "stages", &d->stages, false);
    table_json(d, &w, "functions", &d->funcs, true);
    table_json(d, &w, "lines", &d->lines, true);
    jsonw_key(&w, "warnings");
    jsonw_arr_begin(&w);
    const char *s = buf_cstr((struct buf *)&d->warnings);
    while (*s) {
        const char *nl = strchr(s, '\n');
        size_t n = nl ? (size_t)(nl - s) : strlen(s);
        jsonw_strn(&w, s, n);
        s += n + (nl ? 1 : 0);
    }
    jsonw_arr_end(&w);
    jsonw_obj_end(&w);
    int rc = jsonw_error(&w);
    return rc ? rc : buf_putc(out, '\n');
}
