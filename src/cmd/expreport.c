// SPDX-License-Identifier: MIT
// crux exp: results per variant, output agreement, the winner, the Pareto front; text and JSON.
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "cmd/expcheck.h"
#include "cmd/expreport.h"
#include "cmd/exprun.h"
#include "util/text.h"
#include "util/xalloc.h"

/* A run-to-run CV above this is called noisy. */
#define NOISY_CV 0.10

static void warn(struct exp_summary *s, const char *fmt, ...) PRINTF_LIKE(2, 3);

static void warn(struct exp_summary *s, const char *fmt, ...)
{
    char line[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(line, sizeof(line), fmt, ap);
    va_end(ap);
    text_scrub(line, strlen(line));
    s->warnings = xrealloc(s->warnings, (s->nwarnings + 1) * sizeof(*s->warnings));
    s->warnings[s->nwarnings++] = xstrdup(line);
}

void exp_summary_fini(struct exp_summary *s)
{
    for (size_t i = 0; i < s->nwarnings; i++)
        free(s->warnings[i]);
    free(s->warnings);
    free(s->v);
    memset(s, 0, sizeof(*s));
}

/* -- per-variant metrics ------------------------------------------------------------------ */

/* The measured runs of variant `v` that succeeded, in run order. */
static size_t runs_of(const struct exp_state *st, uint32_t v, const struct exp_result **out)
{
    size_t n = 0;
    for (size_t i = 0; i < st->nresults; i++) {
        const struct exp_result *r = &st->results[i];
        if (r->variant == v && !r->warmup && r->ok)
            out[n++] = r;
    }
    return n;
}

static void metric(const double *v, size_t n, const double *ref, size_t nref, struct exp_metric *m)
{
    memset(m, 0, sizeof(*m));
    double sum = 0, ss = 0;
    for (size_t i = 0; i < n; i++)
        sum += v[i];
    m->mean = n ? sum / (double)n : NAN;
    for (size_t i = 0; i < n; i++)
        ss += (v[i] - m->mean) * (v[i] - m->mean);
    double sd = n > 1 ? sqrt(ss / (double)(n - 1)) : NAN;
    m->cv = n > 1 && m->mean != 0 ? sd / fabs(m->mean) : NAN;
    double half = n > 1 ? cmp_t_quantile(0.025, (double)(n - 1)) * sd / sqrt((double)n) : 0;
    m->lo = fmax(m->mean - half, 0); /* every metric here is a rate or a time */
    m->hi = m->mean + half;
    cmp_welch(ref, nref, v, n, 0.95, &m->vs_ref);
    cmp_trend(v, n, &m->tau, &m->trend_p);
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* Nearest-rank percentile of `n` values (sorted here). */
static double percentile(double *v, size_t n, double p)
{
    if (!n)
        return NAN;
    qsort(v, n, sizeof(*v), cmp_double);
    size_t k = (size_t)ceil(p / 100.0 * (double)n);
    return v[k ? k - 1 : 0];
}

/* The value of SLO metric `m` for a variant's runs. */
static double slo_value(const struct exp_summary *s, const char *m, const struct exp_result **r,
                        size_t n, const struct exp_vsum *vs)
{
    if (!strcmp(m, "errors"))
        return s->server ? vs->errors : (vs->ndone ? (double)vs->nfail / (double)vs->ndone : 0);
    double *v = xcalloc(n ? n : 1, sizeof(*v));
    double out;
    double p = !strcmp(m, "p50") ? 50 : !strcmp(m, "p90") ? 90 : !strcmp(m, "p99") ? 99 : 99.9;
    if (!s->server) {
        for (size_t i = 0; i < n; i++)
            v[i] = r[i]->wall_s;
        out = strcmp(m, "mean") ? percentile(v, n, p) : vs->lat.mean;
    } else {
        /* under load each run has its percentiles: their mean over the runs */
        double sum = 0;
        for (size_t i = 0; i < n; i++)
            sum += !strcmp(m, "mean")  ? r[i]->lat_mean_s
                   : !strcmp(m, "p50") ? r[i]->lat_p50_s
                   : !strcmp(m, "p90") ? r[i]->lat_p90_s
                   : !strcmp(m, "p99") ? r[i]->lat_p99_s
                                       : r[i]->lat_p999_s;
        out = n ? sum / (double)n : NAN;
    }
    free(v);
    return out;
}

static void check_slo(const struct exp_summary *s, const struct exp_def *d,
                      const struct exp_result **r, size_t n, struct exp_vsum *vs)
{
    vs->slo_ok = true;
    for (size_t k = 0; k < d->nslo && vs->slo_ok; k++) {
        const char *m = d->slo_terms[k].metric;
        double val = slo_value(s, m, r, n, vs);
        if (val <= d->slo_terms[k].limit)
            continue;
        vs->slo_ok = false;
        if (!strcmp(m, "errors"))
            snprintf(vs->slo_why, sizeof(vs->slo_why), "errors %.2f%% > %.2f%%", val * 100,
                     d->slo_terms[k].limit * 100);
        else
            snprintf(vs->slo_why, sizeof(vs->slo_why), "%s %.4g ms > %.4g ms", m, val * 1e3,
                     d->slo_terms[k].limit * 1e3);
    }
}

static void variant_metrics(struct exp_summary *s, const struct exp_def *d,
                            const struct exp_state *st, uint32_t i)
{
    struct exp_vsum *vs = &s->v[i];
    const struct exp_result **r = xcalloc(st->nresults + 1, sizeof(*r));
    const struct exp_result **rr = xcalloc(st->nresults + 1, sizeof(*rr));
    size_t n = runs_of(st, i, r), nr = runs_of(st, 0, rr);
    double *t = xcalloc(n + 1, sizeof(*t)), *l = xcalloc(n + 1, sizeof(*l));
    double *p = xcalloc(n + 1, sizeof(*p));
    double *tr = xcalloc(nr + 1, sizeof(*tr)), *lr = xcalloc(nr + 1, sizeof(*lr));
    double *pr = xcalloc(nr + 1, sizeof(*pr));
    double cpu = 0, req = 0, err = 0;
    for (size_t k = 0; k < n; k++) {
        t[k] = r[k]->tput;
        l[k] = s->server ? r[k]->lat_p99_s : r[k]->wall_s;
        p[k] = r[k]->lat_p50_s;
        cpu += r[k]->cpu_s;
        req += (double)(r[k]->requests + r[k]->errors);
        err += (double)r[k]->errors;
    }
    for (size_t k = 0; k < nr; k++) {
        tr[k] = rr[k]->tput;
        lr[k] = s->server ? rr[k]->lat_p99_s : rr[k]->wall_s;
        pr[k] = rr[k]->lat_p50_s;
    }
    vs->n = n;
    for (size_t k = 0; k < st->nresults; k++)
        vs->ndone += st->results[k].variant == i && !st->results[k].warmup;
    vs->nfail = vs->ndone - n;
    metric(t, n, tr, nr, &vs->tput);
    metric(l, n, lr, nr, &vs->lat);
    metric(p, n, pr, nr, &vs->p50);
    vs->cpu_s = n ? cpu / (double)n : NAN;
    vs->errors = req > 0 ? err / req : 0;
    vs->cost_per_1000 = d->cost_per_hour > 0 && vs->tput.mean > 0
                            ? d->cost_per_hour / 3600.0 / vs->tput.mean * 1000.0
                            : NAN;
    check_slo(s, d, r, n, vs);
    free(r);
    free(rr);
    free(t);
    free(l);
    free(p);
    free(tr);
    free(lr);
    free(pr);
}

/* The verdict of the variant's last recorded run (crux record -f verdict wrote it beside the
 * recording): "host 67%" or why there is none. */
static void read_verdict(const struct exp_state *st, const char *outdir, uint32_t v,
                         struct exp_vsum *vs)
{
    const struct exp_result *last = NULL;
    for (size_t i = 0; i < st->nresults; i++)
        if (st->results[i].variant == v && st->results[i].ok && !st->results[i].warmup)
            last = &st->results[i];
    if (!last)
        return;
    char path[4096];
    snprintf(path, sizeof(path), "%s/run-%u.verdict.json", outdir, last->slot);
    char *data;
    size_t len;
    bool trunc;
    char hex[65];
    struct errbuf eb = {""};
    if (exp_read_file(path, (size_t)16 << 20, &data, &len, &trunc, hex, &eb))
        return;
    cJSON *root = cJSON_ParseWithLength(data, len);
    free(data);
    const cJSON *verdict = cJSON_GetObjectItemCaseSensitive(root, "verdict");
    const cJSON *reason = cJSON_GetObjectItemCaseSensitive(root, "reason");
    const cJSON *types = cJSON_GetObjectItemCaseSensitive(root, "types");
    if (cJSON_IsString(verdict)) {
        const cJSON *t = cJSON_GetObjectItemCaseSensitive(types, verdict->valuestring);
        const cJSON *share = cJSON_GetObjectItemCaseSensitive(t, "share");
        snprintf(vs->verdict, sizeof(vs->verdict), "%s %.0f%% (run %u)", verdict->valuestring,
                 cJSON_IsNumber(share) ? share->valuedouble * 100 : 0.0, last->slot + 1);
    } else if (cJSON_IsString(reason)) {
        snprintf(vs->verdict, sizeof(vs->verdict), "none: %.150s", reason->valuestring);
    }
    text_scrub(vs->verdict, strlen(vs->verdict));
    cJSON_Delete(root);
}

/* -- output agreement --------------------------------------------------------------------- */

/* The first line where `a` and `b` differ, as "line N: 'x' vs 'y'" (shortened, scrubbed). */
static void first_diff(const char *a, size_t na, const char *b, size_t nb, char *out, size_t len)
{
    size_t i = 0, line = 1, start = 0;
    while (i < na && i < nb && a[i] == b[i]) {
        if (a[i] == '\n') {
            line++;
            start = i + 1;
        }
        i++;
    }
    size_t ea = start, eb = start;
    while (ea < na && a[ea] != '\n')
        ea++;
    while (eb < nb && b[eb] != '\n')
        eb++;
    char x[48], y[48];
    snprintf(x, sizeof(x), "%.*s", (int)(ea - start < 40 ? ea - start : 40), a + start);
    snprintf(y, sizeof(y), "%.*s", (int)(eb - start < 40 ? eb - start : 40), b + start);
    text_scrub(x, strlen(x));
    text_scrub(y, strlen(y));
    snprintf(out, len, "line %zu: '%s' vs '%s'", line, x, y);
}

static bool read_out(const char *outdir, const char *hash, char **data, size_t *len)
{
    char path[4096];
    snprintf(path, sizeof(path), "%s/out/%s", outdir, hash);
    bool trunc;
    char hex[65];
    struct errbuf eb = {""};
    return exp_read_file(path, EXP_OUT_CAP, data, len, &trunc, hex, &eb) == 0;
}

/* The reference's first output for template `t`, or NULL. */
static const char *ref_hash(const struct exp_state *st, uint32_t t)
{
    for (size_t i = 0; i < st->nresults; i++) {
        const struct exp_result *r = &st->results[i];
        if (r->variant != 0 || r->warmup || !r->ok)
            continue;
        for (size_t k = 0; k < r->nouts; k++)
            if (r->outs[k].tmpl == t)
                return r->outs[k].hash;
    }
    return NULL;
}

/* Whether output `h` of template `t` agrees with the reference's; `why` says how not. */
static bool agrees(const struct exp_def *d, const struct exp_state *st, const char *outdir,
                   uint32_t t, const char *h, char *why, size_t wlen)
{
    const char *rh = ref_hash(st, t);
    if (!rh) {
        snprintf(why, wlen, "the reference has no output%s to compare with",
                 t ? " for this request" : "");
        return false;
    }
    if (!strcmp(rh, h) || d->check == EXP_CHECK_NONE)
        return true;
    char *a = NULL, *b = NULL;
    size_t na = 0, nb = 0;
    if (!read_out(outdir, rh, &a, &na) || !read_out(outdir, h, &b, &nb)) {
        snprintf(why, wlen, "hashes differ (a kept output is missing from %s/out)", outdir);
        free(a);
        free(b);
        return false;
    }
    bool ok = false;
    char where[160];
    first_diff(b, nb, a, na, where, sizeof(where));
    if (d->check == EXP_CHECK_TOLERANCE) {
        ok = exp_agree_tolerance(a, na, b, nb, d->tolerance);
        snprintf(why, wlen, "beyond tolerance=%g at or after %s", d->tolerance, where);
    } else if (d->check == EXP_CHECK_TOKENS) {
        double share = exp_agree_tokens(a, na, b, nb);
        ok = share >= d->tokens_min;
        snprintf(why, wlen, "%.1f%% of tokens match (need %.1f%%); %s", share * 100,
                 d->tokens_min * 100, where);
    } else {
        snprintf(why, wlen, "%s", where);
    }
    free(a);
    free(b);
    return ok;
}

static void check_outputs(struct exp_summary *s, const struct exp_def *d,
                          const struct exp_state *st, const char *outdir, uint32_t v)
{
    struct exp_vsum *vs = &s->v[v];
    size_t bad = 0, runs = 0;
    char why[256] = "";
    for (size_t i = 0; i < st->nresults; i++) {
        const struct exp_result *r = &st->results[i];
        if (r->variant != v || r->warmup || !r->ok)
            continue;
        runs++;
        bool run_bad = false;
        for (size_t k = 0; k < r->nouts && !run_bad; k++) {
            char w[256];
            if (!agrees(d, st, outdir, r->outs[k].tmpl, r->outs[k].hash, w, sizeof(w))) {
                run_bad = true;
                if (!why[0] && s->server)
                    snprintf(why, sizeof(why), "request template %u: %.200s", r->outs[k].tmpl, w);
                else if (!why[0])
                    snprintf(why, sizeof(why), "%.240s", w);
            }
        }
        bad += run_bad;
    }
    if (!bad)
        return;
    vs->differ = true;
    snprintf(vs->differ_why, sizeof(vs->differ_why), "%zu of %zu runs differ from %.40s: %.160s",
             bad, runs, st->variants[0], why);
}

/* Warns when the reference's own runs disagree: every comparison is then weaker. */
static void check_reference(struct exp_summary *s, const struct exp_def *d,
                            const struct exp_state *st)
{
    if (d->check != EXP_CHECK_EXACT)
        return;
    for (size_t i = 0; i < st->nresults; i++) {
        const struct exp_result *r = &st->results[i];
        if (r->variant != 0 || r->warmup || !r->ok)
            continue;
        for (size_t k = 0; k < r->nouts; k++) {
            const char *rh = ref_hash(st, r->outs[k].tmpl);
            if (rh && strcmp(rh, r->outs[k].hash)) {
                warn(s,
                     "the reference %s's outputs differ between its own runs: exact comparison "
                     "flags every variant; use check = tolerance=REL or tokens",
                     st->variants[0]);
                return;
            }
        }
    }
}

/* -- winner and front --------------------------------------------------------------------- */

static void pareto(struct exp_summary *s)
{
    for (size_t i = 0; i < s->n; i++) {
        const struct exp_vsum *a = &s->v[i];
        if (!a->n || a->differ || a->nfail)
            continue;
        bool dominated = false;
        for (size_t j = 0; j < s->n && !dominated; j++) {
            const struct exp_vsum *b = &s->v[j];
            if (j == i || !b->n || b->differ || b->nfail)
                continue;
            dominated = b->tput.mean >= a->tput.mean && b->lat.mean <= a->lat.mean &&
                        (b->tput.mean > a->tput.mean || b->lat.mean < a->lat.mean);
        }
        s->v[i].pareto = !dominated;
    }
}

/* Welch's comparison of the throughput of variant `b` (new) against variant `a` (base). */
static void tput_welch(const struct exp_state *st, uint32_t a, uint32_t b, struct cmp_est *e)
{
    const struct exp_result **ra = xcalloc(st->nresults + 1, sizeof(*ra));
    const struct exp_result **rb = xcalloc(st->nresults + 1, sizeof(*rb));
    size_t na = runs_of(st, a, ra), nb = runs_of(st, b, rb);
    double *va = xcalloc(na + 1, sizeof(double)), *vb = xcalloc(nb + 1, sizeof(double));
    for (size_t k = 0; k < na; k++)
        va[k] = ra[k]->tput;
    for (size_t k = 0; k < nb; k++)
        vb[k] = rb[k]->tput;
    cmp_welch(va, na, vb, nb, 0.95, e);
    free(ra);
    free(rb);
    free(va);
    free(vb);
}

static void pick_winner(struct exp_summary *s, const struct exp_state *st)
{
    s->winner = -1;
    int best = -1;
    size_t neligible = 0;
    for (size_t i = 0; i < s->n; i++) {
        struct exp_vsum *v = &s->v[i];
        v->eligible = v->n > 0 && !v->nfail && !v->differ && v->slo_ok;
        neligible += v->eligible;
        if (v->eligible && (best < 0 || v->tput.mean > s->v[best].tput.mean))
            best = (int)i;
    }
    if (best < 0) {
        snprintf(s->why, sizeof(s->why),
                 "no clear winner: no variant is eligible (each has failed runs, outputs that "
                 "differ from the reference, or misses the SLO)");
        return;
    }
    const struct exp_vsum *b = &s->v[best];
    if (b->n < 2) {
        snprintf(s->why, sizeof(s->why),
                 "no clear winner: %s has %zu measured run; an interval needs at least 2", b->name,
                 b->n);
        return;
    }
    for (size_t i = 0; i < s->n; i++) {
        const struct exp_vsum *o = &s->v[i];
        if ((int)i == best || !o->eligible)
            continue;
        /* Welch of the best against each other eligible one: the interval of the difference
         * must exclude zero. */
        struct cmp_est e;
        tput_welch(st, (uint32_t)i, (uint32_t)best, &e);
        if (e.method == CMP_RUNS && e.lo > 0)
            continue;
        snprintf(s->why, sizeof(s->why),
                 "no clear winner: %s (%.4g %s) and %s (%.4g %s) are not separated: difference "
                 "%+.1f%% [%+.1f%%, %+.1f%%] at 95%%; more repeats narrow it",
                 b->name, b->tput.mean, s->tput_unit, o->name, o->tput.mean, s->tput_unit,
                 e.rel * 100, e.rel_lo * 100, e.rel_hi * 100);
        return;
    }
    s->winner = best;
    if (neligible == 1)
        snprintf(s->why, sizeof(s->why), "%s: %.4g %s, the only eligible variant", b->name,
                 b->tput.mean, s->tput_unit);
    else
        snprintf(s->why, sizeof(s->why),
                 "%s: %.4g %s [%.4g, %.4g], its interval separated from every other eligible "
                 "variant's",
                 b->name, b->tput.mean, s->tput_unit, b->tput.lo, b->tput.hi);
}

/* Drift over the whole experiment: each run's throughput over its variant's mean, against
 * run order. The interleaved order makes this visible apart from the variants' effects. */
static void drift(struct exp_summary *s, const struct exp_state *st)
{
    double *v = xcalloc(st->nresults + 1, sizeof(*v));
    size_t n = 0;
    for (size_t i = 0; i < st->nresults; i++) {
        const struct exp_result *r = &st->results[i];
        if (!r->warmup && r->ok && s->v[r->variant].tput.mean > 0)
            v[n++] = r->tput / s->v[r->variant].tput.mean;
    }
    double tau, p;
    cmp_trend(v, n, &tau, &p);
    free(v);
    if (n >= 6 && p < 0.01)
        warn(s,
             "throughput drifts with run order across the experiment (Kendall tau %+.2f, p "
             "%.3g): the machine's state changed during it; the interleaved order spreads the "
             "drift over every variant, but the intervals are wider for it",
             tau, p);
}

static void variant_warnings(struct exp_summary *s)
{
    for (size_t i = 0; i < s->n; i++) {
        const struct exp_vsum *v = &s->v[i];
        if (v->n >= 4 && v->tput.trend_p < EXP_TREND_P)
            warn(s,
                 "%s: %s trends with run order (Kendall tau %+.2f, p %.3g): warm-up, caching or "
                 "a drifting machine; more warm-up runs or a cooldown may help",
                 v->name, s->server ? "throughput" : "throughput (and wall time)", v->tput.tau,
                 v->tput.trend_p);
        if (s->server && v->n >= 4 && v->lat.trend_p < EXP_TREND_P)
            warn(s, "%s: p99 latency trends with run order (Kendall tau %+.2f, p %.3g)", v->name,
                 v->lat.tau, v->lat.trend_p);
        if (v->tput.cv > NOISY_CV)
            warn(s,
                 "%s: throughput varies %.0f%% (CV) between runs: noisy; more repeats narrow "
                 "the interval",
                 v->name, v->tput.cv * 100);
        if (v->nfail)
            warn(s, "%s: %zu of %zu runs failed: it cannot win", v->name, v->nfail, v->ndone);
    }
}

void exp_summarize(const struct exp_def *d, const struct exp_state *st, const char *outdir,
                   struct exp_summary *s)
{
    memset(s, 0, sizeof(*s));
    s->server = d->server != NULL;
    s->tput_unit = s->server ? "req/s" : "runs/s";
    s->lat_name = s->server ? "p99" : "wall/run";
    s->n = st->nvariants;
    s->v = xcalloc(s->n ? s->n : 1, sizeof(*s->v));
    for (size_t i = 0; i < st->nslots; i++)
        s->total += !st->slots[i].warmup;
    for (size_t i = 0; i < st->nresults; i++)
        s->done += !st->results[i].warmup;
    for (uint32_t i = 0; i < s->n; i++) {
        s->v[i].name = st->variants[i];
        variant_metrics(s, d, st, i);
        if (i > 0 && d->check != EXP_CHECK_NONE)
            check_outputs(s, d, st, outdir, i);
        if (d->profile)
            read_verdict(st, outdir, i, &s->v[i]);
    }
    if (s->done < s->total)
        warn(s, "%zu of %zu measured runs done: the results are partial", s->done, s->total);
    check_reference(s, d, st);
    pick_winner(s, st);
    pareto(s);
    drift(s, st);
    variant_warnings(s);
}

/* -- text --------------------------------------------------------------------------------- */

/* Seconds in a readable unit into `out`. */
static const char *fmt_secs(double s, char *out, size_t len)
{
    if (!isfinite(s))
        snprintf(out, len, "-");
    else if (s < 1e-3)
        snprintf(out, len, "%.3g us", s * 1e6);
    else if (s < 1)
        snprintf(out, len, "%.3g ms", s * 1e3);
    else
        snprintf(out, len, "%.3g s", s);
    return out;
}

static const char *fmt_rel(const struct cmp_est *e, char *out, size_t len)
{
    if (e->method != CMP_RUNS || !isfinite(e->rel_lo))
        snprintf(out, len, "%+.1f%%", e->rel * 100);
    else
        snprintf(out, len, "%+.1f%% [%+.1f, %+.1f]", e->rel * 100, e->rel_lo * 100,
                 e->rel_hi * 100);
    return out;
}

static void print_row(const struct exp_summary *s, size_t i, int w, FILE *f)
{
    const struct exp_vsum *v = &s->v[i];
    char tput[64], rel[64], lat[48], lo[24], hi[24], cost[32] = "";
    snprintf(tput, sizeof(tput), "%.4g [%.4g, %.4g]", v->tput.mean, v->tput.lo, v->tput.hi);
    if (i == 0)
        snprintf(rel, sizeof(rel), "(reference)");
    else
        fmt_rel(&v->tput.vs_ref, rel, sizeof(rel));
    char m[24];
    snprintf(lat, sizeof(lat), "%s [%s, %s]", fmt_secs(v->lat.mean, m, sizeof(m)),
             fmt_secs(v->lat.lo, lo, sizeof(lo)), fmt_secs(v->lat.hi, hi, sizeof(hi)));
    if (isfinite(v->cost_per_1000))
        snprintf(cost, sizeof(cost), "$%.4g", v->cost_per_1000);
    char cv[16];
    snprintf(cv, sizeof(cv), isfinite(v->tput.cv) ? "%.1f%%" : "-", v->tput.cv * 100);
    fprintf(f, "%-*s %3zu/%-3zu %-28s %-24s %-30s %6s %9s %s%s%s%s%s\n", w, v->name, v->n, v->ndone,
            tput, rel, lat, cv, cost, (int)i == s->winner ? " WINNER" : "",
            v->differ ? " OUTPUTS DIFFER" : "", v->slo_ok ? "" : " SLO MISSED",
            v->nfail ? " FAILED RUNS" : "", v->pareto ? " *" : "");
}

void exp_print_text(const struct exp_summary *s, const struct exp_def *d,
                    const struct exp_state *st, FILE *f)
{
    static const char *const checks[] = {"exact", "tolerance", "tokens", "none"};
    fprintf(f, "\nexperiment %s: %zu variants, %d runs each (+%d warm-up), seed %llu, check %s",
            d->name, s->n, d->repeats, d->warmup, (unsigned long long)st->seed, checks[d->check]);
    if (d->check == EXP_CHECK_TOLERANCE)
        fprintf(f, "=%g", d->tolerance);
    if (d->slo)
        fprintf(f, ", slo %s", d->slo);
    fputc('\n', f);
    int w = 8;
    for (size_t i = 0; i < s->n; i++)
        w = strlen(s->v[i].name) > (size_t)w ? (int)strlen(s->v[i].name) : w;
    w = w > 48 ? 48 : w;
    char th[48], lh[48];
    snprintf(th, sizeof(th), "%s [95%%]", s->tput_unit);
    snprintf(lh, sizeof(lh), "%s [95%%]", s->lat_name);
    fprintf(f, "%-*s %7s %-28s %-24s %-30s %6s %9s\n", w, "variant", "runs", th, "vs reference", lh,
            "CV", d->cost_per_hour > 0 ? "$/1k" : "");
    for (size_t i = 0; i < s->n; i++)
        print_row(s, i, w, f);
    for (size_t i = 0; i < s->n; i++) {
        if (s->v[i].differ)
            fprintf(f, "  %s: OUTPUTS DIFFER: %s\n", s->v[i].name, s->v[i].differ_why);
        if (!s->v[i].slo_ok)
            fprintf(f, "  %s: SLO missed: %s\n", s->v[i].name, s->v[i].slo_why);
        if (s->v[i].verdict[0])
            fprintf(f, "  %s: verdict %s\n", s->v[i].name, s->v[i].verdict);
    }
    fprintf(f, "%s%s\n", s->winner >= 0 ? "winner: " : "", s->why);
    fprintf(f, "pareto front (* above; %s up, %s down):", s->tput_unit, s->lat_name);
    for (size_t i = 0; i < s->n; i++)
        if (s->v[i].pareto)
            fprintf(f, " %s", s->v[i].name);
    fputc('\n', f);
    for (size_t i = 0; i < s->nwarnings; i++)
        fprintf(f, "warning: %s\n", s->warnings[i]);
}

/* -- JSON --------------------------------------------------------------------------------- */

static void json_metric(struct jsonw *w, const char *key, const struct exp_metric *m, bool ref)
{
    jsonw_key(w, key);
    jsonw_obj_begin(w);
    jsonw_key(w, "mean");
    jsonw_double(w, m->mean);
    jsonw_key(w, "lo");
    jsonw_double(w, m->lo);
    jsonw_key(w, "hi");
    jsonw_double(w, m->hi);
    jsonw_key(w, "cv");
    jsonw_double(w, m->cv);
    if (!ref) {
        jsonw_key(w, "vs_reference");
        jsonw_obj_begin(w);
        jsonw_key(w, "diff");
        jsonw_double(w, m->vs_ref.diff);
        jsonw_key(w, "lo");
        jsonw_double(w, m->vs_ref.lo);
        jsonw_key(w, "hi");
        jsonw_double(w, m->vs_ref.hi);
        jsonw_key(w, "rel");
        jsonw_double(w, m->vs_ref.rel);
        jsonw_key(w, "rel_lo");
        jsonw_double(w, m->vs_ref.rel_lo);
        jsonw_key(w, "rel_hi");
        jsonw_double(w, m->vs_ref.rel_hi);
        jsonw_key(w, "p");
        jsonw_double(w, m->vs_ref.p);
        jsonw_obj_end(w);
    }
    jsonw_key(w, "trend");
    jsonw_obj_begin(w);
    jsonw_key(w, "tau");
    jsonw_double(w, m->tau);
    jsonw_key(w, "p");
    jsonw_double(w, m->trend_p);
    jsonw_obj_end(w);
    jsonw_obj_end(w);
}

static void json_variant(struct jsonw *w, const struct exp_summary *s, size_t i)
{
    const struct exp_vsum *v = &s->v[i];
    jsonw_obj_begin(w);
    jsonw_key(w, "name");
    jsonw_str(w, v->name);
    jsonw_key(w, "runs");
    jsonw_u64(w, v->n);
    jsonw_key(w, "failed");
    jsonw_u64(w, v->nfail);
    json_metric(w, "throughput", &v->tput, i == 0);
    json_metric(w, s->server ? "p99_s" : "wall_s", &v->lat, i == 0);
    if (s->server) {
        json_metric(w, "p50_s", &v->p50, i == 0);
        jsonw_key(w, "errors");
        jsonw_double(w, v->errors);
    }
    jsonw_key(w, "cpu_s");
    jsonw_double(w, v->cpu_s);
    jsonw_key(w, "cost_per_1000");
    jsonw_double(w, v->cost_per_1000);
    jsonw_key(w, "outputs_differ");
    jsonw_bool(w, v->differ);
    jsonw_key(w, "outputs_why");
    jsonw_str(w, v->differ ? v->differ_why : NULL);
    jsonw_key(w, "slo_met");
    jsonw_bool(w, v->slo_ok);
    jsonw_key(w, "slo_why");
    jsonw_str(w, v->slo_ok ? NULL : v->slo_why);
    jsonw_key(w, "eligible");
    jsonw_bool(w, v->eligible);
    jsonw_key(w, "pareto");
    jsonw_bool(w, v->pareto);
    jsonw_key(w, "verdict");
    jsonw_str(w, v->verdict[0] ? v->verdict : NULL);
    jsonw_obj_end(w);
}

static void json_runs(struct jsonw *w, const struct exp_state *st)
{
    jsonw_key(w, "runs");
    jsonw_arr_begin(w);
    for (size_t i = 0; i < st->nresults; i++) {
        const struct exp_result *r = &st->results[i];
        jsonw_obj_begin(w);
        jsonw_key(w, "order");
        jsonw_u64(w, i);
        jsonw_key(w, "slot");
        jsonw_u64(w, r->slot);
        jsonw_key(w, "variant");
        jsonw_str(w, st->variants[r->variant]);
        jsonw_key(w, "repeat");
        jsonw_i64(w, r->repeat);
        jsonw_key(w, "warmup");
        jsonw_bool(w, r->warmup);
        jsonw_key(w, "ok");
        jsonw_bool(w, r->ok);
        jsonw_key(w, "status");
        jsonw_i64(w, r->status);
        jsonw_key(w, "wall_s");
        jsonw_double(w, r->wall_s);
        jsonw_key(w, "cpu_s");
        jsonw_double(w, r->cpu_s);
        jsonw_key(w, "throughput");
        jsonw_double(w, r->tput);
        jsonw_key(w, "p99_s");
        jsonw_double(w, r->lat_p99_s);
        jsonw_key(w, "output");
        jsonw_str(w, r->nouts ? r->outs[0].hash : NULL);
        jsonw_key(w, "recording");
        jsonw_str(w, r->recording);
        jsonw_key(w, "note");
        jsonw_str(w, r->note);
        jsonw_obj_end(w);
    }
    jsonw_arr_end(w);
}

void exp_write_json(const struct exp_summary *s, const struct exp_def *d,
                    const struct exp_state *st, struct jsonw *w)
{
    jsonw_obj_begin(w);
    jsonw_key(w, "name");
    jsonw_str(w, d->name);
    jsonw_key(w, "definition");
    jsonw_str(w, st->def_hash);
    jsonw_key(w, "seed");
    jsonw_u64(w, st->seed);
    jsonw_key(w, "mode");
    jsonw_str(w, s->server ? "server" : "command");
    jsonw_key(w, "repeats");
    jsonw_i64(w, d->repeats);
    jsonw_key(w, "warmup");
    jsonw_i64(w, d->warmup);
    jsonw_key(w, "reference");
    jsonw_str(w, st->variants[0]);
    jsonw_key(w, "done");
    jsonw_u64(w, s->done);
    jsonw_key(w, "total");
    jsonw_u64(w, s->total);
    jsonw_key(w, "variants");
    jsonw_arr_begin(w);
    for (size_t i = 0; i < s->n; i++)
        json_variant(w, s, i);
    jsonw_arr_end(w);
    jsonw_key(w, "winner");
    jsonw_str(w, s->winner >= 0 ? s->v[s->winner].name : NULL);
    jsonw_key(w, "why");
    jsonw_str(w, s->why);
    json_runs(w, st);
    jsonw_key(w, "warnings");
    jsonw_arr_begin(w);
    for (size_t i = 0; i < s->nwarnings; i++)
        jsonw_str(w, s->warnings[i]);
    jsonw_arr_end(w);
    jsonw_obj_end(w);
}
