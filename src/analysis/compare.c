// SPDX-License-Identifier: MIT
// Statistics of comparisons (compare.h): Welch's t over runs, the sampling intervals of one
// recording a side, Benjamini-Hochberg, Kendall's trend test. The distributions are computed
// here (regularized incomplete beta by Lentz's continued fraction, erfc from libm) so that
// crux needs no statistics library.
#include "analysis/compare.h"

#include <float.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

/* The continued fraction of the regularized incomplete beta (modified Lentz). */
static double ibeta_cf(double a, double b, double x)
{
    const double tiny = 1e-300, eps = 1e-15;
    double c = 1.0, d = 1.0 - (a + b) * x / (a + 1.0);
    if (fabs(d) < tiny)
        d = tiny;
    d = 1.0 / d;
    double h = d;
    for (int m = 1; m <= 300; m++) {
        double m2 = 2.0 * m;
        double aa = m * (b - m) * x / ((a + m2 - 1.0) * (a + m2));
        d = 1.0 + aa * d;
        if (fabs(d) < tiny)
            d = tiny;
        c = 1.0 + aa / c;
        if (fabs(c) < tiny)
            c = tiny;
        d = 1.0 / d;
        h *= d * c;
        aa = -(a + m) * (a + b + m) * x / ((a + m2) * (a + m2 + 1.0));
        d = 1.0 + aa * d;
        if (fabs(d) < tiny)
            d = tiny;
        c = 1.0 + aa / c;
        if (fabs(c) < tiny)
            c = tiny;
        d = 1.0 / d;
        double del = d * c;
        h *= del;
        if (fabs(del - 1.0) < eps)
            break;
    }
    return h;
}

/* Regularized incomplete beta I_x(a, b). */
static double ibeta(double a, double b, double x)
{
    if (x <= 0.0)
        return 0.0;
    if (x >= 1.0)
        return 1.0;
    double lbt = lgamma(a + b) - lgamma(a) - lgamma(b) + a * log(x) + b * log1p(-x);
    if (x < (a + 1.0) / (a + b + 2.0))
        return exp(lbt) * ibeta_cf(a, b, x) / a;
    return 1.0 - exp(lbt) * ibeta_cf(b, a, 1.0 - x) / b;
}

double cmp_t_sf(double t, double df)
{
    if (!(df > 0) || isnan(t))
        return NAN;
    if (isinf(t))
        return t > 0 ? 0.0 : 1.0;
    double tail = 0.5 * ibeta(df / 2.0, 0.5, df / (df + t * t));
    return t >= 0 ? tail : 1.0 - tail;
}

double cmp_norm_sf(double z)
{
    return 0.5 * erfc(z / sqrt(2.0));
}

/* The x in [lo, hi] where the decreasing `sf(x)` equals `upper`, by bisection. */
static double invert_sf(double (*sf)(double, double), double arg, double upper, double lo,
                        double hi)
{
    for (int i = 0; i < 200; i++) {
        double mid = 0.5 * (lo + hi);
        if (sf(mid, arg) > upper)
            lo = mid;
        else
            hi = mid;
        if (hi - lo < 1e-12 * (1.0 + fabs(mid)))
            break;
    }
    return 0.5 * (lo + hi);
}

static double norm_sf2(double z, double unused)
{
    (void)unused;
    return cmp_norm_sf(z);
}

double cmp_norm_quantile(double upper)
{
    if (!(upper > 0.0 && upper < 1.0))
        return upper <= 0.0 ? INFINITY : -INFINITY;
    return invert_sf(norm_sf2, 0, upper, -40.0, 40.0);
}

double cmp_t_quantile(double upper, double df)
{
    if (!(upper > 0.0 && upper < 1.0) || !(df > 0))
        return NAN;
    double z = cmp_norm_quantile(upper);
    double span = fabs(z) * 4.0 + 10.0;
    while (cmp_t_sf(span, df) > fmin(upper, 1.0 - upper) && span < 1e12)
        span *= 4.0;
    return invert_sf(cmp_t_sf, df, upper, -span, span);
}

/* Fills the relative fields from the absolute ones. */
static void fill_rel(struct cmp_est *e)
{
    if (e->base != 0.0 && isfinite(e->base)) {
        e->rel = e->diff / e->base;
        e->rel_lo = e->lo / e->base;
        e->rel_hi = e->hi / e->base;
        if (e->base < 0) {
            double t = e->rel_lo;
            e->rel_lo = e->rel_hi;
            e->rel_hi = t;
        }
    } else {
        e->rel = e->rel_lo = e->rel_hi = NAN;
    }
    e->q = e->p;
    e->flagged = false;
}

static void cmp_none(double base, double new_, uint32_t nb, uint32_t nn, struct cmp_est *e)
{
    memset(e, 0, sizeof(*e));
    e->base = base;
    e->new_ = new_;
    e->diff = new_ - base;
    e->lo = -INFINITY;
    e->hi = INFINITY;
    e->p = 1.0;
    e->cv_base = e->cv_new = NAN;
    e->nb = nb;
    e->nn = nn;
    e->method = CMP_NONE;
    fill_rel(e);
    e->rel_lo = -INFINITY;
    e->rel_hi = INFINITY;
}

static void mean_var(const double *v, size_t n, double *mean, double *var)
{
    double m = 0;
    for (size_t i = 0; i < n; i++)
        m += v[i];
    m = n ? m / (double)n : 0.0;
    double s = 0;
    for (size_t i = 0; i < n; i++)
        s += (v[i] - m) * (v[i] - m);
    *mean = m;
    *var = n > 1 ? s / (double)(n - 1) : NAN;
}

void cmp_welch(const double *a, size_t na, const double *b, size_t nb, double conf,
               struct cmp_est *e)
{
    cmp_welch_floor(a, na, b, nb, 0, 0, conf, e);
}

void cmp_welch_floor(const double *a, size_t na, const double *b, size_t nb, double floor_a,
                     double floor_b, double conf, struct cmp_est *e)
{
    double ma, va, mb, vb;
    mean_var(a, na, &ma, &va);
    mean_var(b, nb, &mb, &vb);
    /* a run-to-run variance below what sampling alone gives is chance: the floor holds */
    if (na > 1 && va < floor_a)
        va = floor_a;
    if (nb > 1 && vb < floor_b)
        vb = floor_b;
    if (na == 0 || nb == 0 || (na < 2 && nb < 2)) {
        cmp_none(ma, mb, (uint32_t)na, (uint32_t)nb, e);
        return;
    }
    memset(e, 0, sizeof(*e));
    e->base = ma;
    e->new_ = mb;
    e->diff = mb - ma;
    e->nb = (uint32_t)na;
    e->nn = (uint32_t)nb;
    e->method = CMP_RUNS;
    e->cv_base = na > 1 && ma != 0 ? sqrt(va) / fabs(ma) : NAN;
    e->cv_new = nb > 1 && mb != 0 ? sqrt(vb) / fabs(mb) : NAN;
    double se, df;
    if (na < 2 || nb < 2) {
        /* One side has one run: its noise is taken to be the other side's. */
        double v = na < 2 ? vb : va;
        size_t n = na < 2 ? nb : na;
        se = sqrt(v / (double)na + v / (double)nb);
        df = (double)n - 1.0;
    } else {
        double ga = va / (double)na, gb = vb / (double)nb;
        se = sqrt(ga + gb);
        /* Hsu's degrees of freedom, min(na, nb) - 1, not Welch-Satterthwaite's: run-to-run
         * noise on a shared machine has heavier tails than the normal, and with 5 runs a side
         * Welch-Satterthwaite's df (up to 8) let 4.7% of 150 recorded A/A splits flag
         * something; with these, 0.5% of 200 (docs/loop.md, "Statistics"). */
        df = (double)(na < nb ? na : nb) - 1.0;
    }
    if (!(se > 0)) {
        e->lo = e->hi = e->diff;
        e->p = e->diff == 0 ? 1.0 : 0.0;
    } else {
        double tq = cmp_t_quantile((1.0 - conf) / 2.0, df);
        e->lo = e->diff - tq * se;
        e->hi = e->diff + tq * se;
        e->p = fmin(1.0, 2.0 * cmp_t_sf(fabs(e->diff) / se, df));
    }
    fill_rel(e);
}

void cmp_poisson(double ka, double ta, double kb, double tb, double scale, double conf,
                 struct cmp_est *e)
{
    if (!(ta > 0) || !(tb > 0)) {
        cmp_none(ta > 0 ? ka * scale / ta : 0, tb > 0 ? kb * scale / tb : 0, 1, 1, e);
        return;
    }
    memset(e, 0, sizeof(*e));
    e->base = ka * scale / ta;
    e->new_ = kb * scale / tb;
    e->diff = e->new_ - e->base;
    e->nb = e->nn = 1;
    e->method = CMP_SAMPLING;
    e->cv_base = e->cv_new = NAN;
    double z = cmp_norm_quantile((1.0 - conf) / 2.0);
    /* Interval: each count's variance is the count, at least 1 (a count of 0 is not known to
     * be exactly 0). p: the rates pooled under "no change". */
    double se = scale * sqrt(fmax(ka, 1.0) / (ta * ta) + fmax(kb, 1.0) / (tb * tb));
    e->lo = e->diff - z * se;
    e->hi = e->diff + z * se;
    double pooled = (ka + kb) / (ta + tb);
    double se0 = scale * sqrt(pooled / ta + pooled / tb);
    e->p = se0 > 0 ? fmin(1.0, 2.0 * cmp_norm_sf(fabs(e->diff) / se0)) : 1.0;
    fill_rel(e);
}

void cmp_share(double ka, double na, double kb, double nb, double conf, struct cmp_est *e)
{
    if (!(na > 0) || !(nb > 0)) {
        cmp_none(na > 0 ? ka / na : 0, nb > 0 ? kb / nb : 0, 1, 1, e);
        return;
    }
    memset(e, 0, sizeof(*e));
    e->base = ka / na;
    e->new_ = kb / nb;
    e->diff = e->new_ - e->base;
    e->nb = e->nn = 1;
    e->method = CMP_SAMPLING;
    e->cv_base = e->cv_new = NAN;
    double z = cmp_norm_quantile((1.0 - conf) / 2.0);
    /* Agresti-Caffo: one success and one failure added to each side for the interval. */
    double pa = (ka + 1.0) / (na + 2.0), pb = (kb + 1.0) / (nb + 2.0);
    double se = sqrt(pa * (1 - pa) / (na + 2.0) + pb * (1 - pb) / (nb + 2.0));
    double mid = pb - pa;
    e->lo = mid - z * se;
    e->hi = mid + z * se;
    double pp = (ka + kb) / (na + nb);
    double se0 = sqrt(pp * (1 - pp) * (1.0 / na + 1.0 / nb));
    e->p = se0 > 0 ? fmin(1.0, 2.0 * cmp_norm_sf(fabs(e->diff) / se0)) : 1.0;
    fill_rel(e);
}

static int by_p(const void *x, const void *y)
{
    const struct cmp_est *a = *(struct cmp_est *const *)x, *b = *(struct cmp_est *const *)y;
    return (a->p > b->p) - (a->p < b->p);
}

void cmp_bh(struct cmp_est **es, size_t n, double alpha)
{
    if (!n)
        return;
    struct cmp_est **s = malloc(n * sizeof(*s));
    if (!s)
        abort();
    memcpy(s, es, n * sizeof(*s));
    qsort(s, n, sizeof(*s), by_p);
    double run = 1.0;
    for (size_t i = n; i-- > 0;) {
        double q = s[i]->p * (double)n / (double)(i + 1);
        if (q < run)
            run = q;
        s[i]->q = run;
    }
    for (size_t i = 0; i < n; i++)
        s[i]->flagged =
            s[i]->method != CMP_NONE && s[i]->q <= alpha && (s[i]->lo > 0.0 || s[i]->hi < 0.0);
    free(s);
}

void cmp_trend(const double *v, size_t n, double *tau, double *p)
{
    *tau = 0;
    *p = 1.0;
    if (n < 3)
        return;
    double s = 0;
    for (size_t i = 0; i < n; i++)
        for (size_t j = i + 1; j < n; j++)
            s += (v[j] > v[i]) - (v[j] < v[i]);
    double pairs = (double)n * (double)(n - 1) / 2.0;
    *tau = s / pairs;
    double var = (double)n * (double)(n - 1) * (2.0 * (double)n + 5.0) / 18.0;
    double z = (fabs(s) - 1.0) / sqrt(var); /* continuity-corrected */
    *p = z > 0 ? fmin(1.0, 2.0 * cmp_norm_sf(z)) : 1.0;
}
