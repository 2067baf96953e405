// SPDX-License-Identifier: MIT
// Unit tests of the comparison statistics: distribution functions against closed forms and
// published values, Welch's interval, the one-run sampling intervals, Benjamini-Hochberg, and
// the error rates that matter to a user: over many simulated A/A comparisons with 5 runs a
// side, flags on at most 5% of them; a 20% change seen nearly always.
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include "analysis/compare.h"
#include "check.h"

#define NEAR(a, b, tol) (fabs((a) - (b)) <= (tol))

static int test_distributions(void)
{
    for (double t = -5; t <= 5; t += 0.25) {
        double cauchy = 0.5 - atan(t) / M_PI;
        double t2 = 0.5 - t / (2.0 * sqrt(2.0 + t * t));
        CHECK(NEAR(cmp_t_sf(t, 1), cauchy, 1e-10), "df 1 at %g: %g vs %g", t, cmp_t_sf(t, 1),
              cauchy);
        CHECK(NEAR(cmp_t_sf(t, 2), t2, 1e-10), "df 2 at %g", t);
    }
    CHECK(NEAR(cmp_t_sf(2.0, 10), 0.036694017, 1e-8), "t(10) sf(2) = %.9f", cmp_t_sf(2.0, 10));
    CHECK(NEAR(cmp_t_quantile(0.025, 8), 2.306004135, 1e-7), "t(8) 97.5%% = %.9f",
          cmp_t_quantile(0.025, 8));
    CHECK(NEAR(cmp_t_quantile(0.025, 1e6), 1.959966, 1e-5), "t(inf)");
    CHECK(NEAR(cmp_norm_quantile(0.025), 1.959963985, 1e-8), "z 97.5%%");
    CHECK(NEAR(cmp_norm_sf(1.959963985), 0.025, 1e-9), "z sf");
    CHECK(NEAR(cmp_t_quantile(0.975, 5), -cmp_t_quantile(0.025, 5), 1e-9), "symmetry");
    return 0;
}

static int test_welch(void)
{
    const double a[] = {1, 2, 3, 4, 5}, b[] = {2, 4, 5, 6, 9};
    struct cmp_est e;
    cmp_welch(a, 5, b, 5, 0.95, &e);
    /* se = sqrt(2.5/5 + 6.7/5) */
    double se = sqrt(1.84), df = 4; /* Hsu: min(5, 5) - 1 */
    CHECK(e.method == CMP_RUNS && e.nb == 5 && e.nn == 5, "method");
    CHECK(NEAR(e.diff, 2.2, 1e-12), "diff %g", e.diff);
    CHECK(NEAR(e.hi - e.diff, cmp_t_quantile(0.025, df) * se, 1e-9), "half width");
    CHECK(NEAR(e.p, 2 * cmp_t_sf(2.2 / se, df), 1e-12), "p %g", e.p);
    CHECK(e.p > 0.1 && e.p < 0.2 && e.lo < 0 && e.hi > 0, "not significant: p %g", e.p);
    CHECK(NEAR(e.rel, 2.2 / 3.0, 1e-12) && NEAR(e.rel_lo, e.lo / 3.0, 1e-12), "relative");
    CHECK(NEAR(e.cv_base, sqrt(2.5) / 3.0, 1e-12), "cv");

    /* One run against five: the five's noise stands for both. */
    cmp_welch(a, 1, b, 5, 0.95, &e);
    CHECK(e.method == CMP_RUNS && isfinite(e.lo) && e.lo < e.diff, "1 vs 5");
    cmp_welch(a, 1, b, 1, 0.95, &e);
    CHECK(e.method == CMP_NONE && e.p == 1.0 && isinf(e.hi), "1 vs 1 has no run interval");

    const double same[] = {4, 4, 4}, same2[] = {4, 4, 4};
    cmp_welch(same, 3, same2, 3, 0.95, &e);
    CHECK(e.p == 1.0 && e.lo == 0 && e.hi == 0, "identical constants");
    return 0;
}

static int test_sampling(void)
{
    struct cmp_est e;
    /* A frame going from 0 to 1 sample is not a change. */
    cmp_share(0, 10000, 1, 10000, 0.95, &e);
    CHECK(e.method == CMP_SAMPLING && e.lo < 0 && e.hi > 0 && e.p > 0.2, "0 -> 1: p %g", e.p);
    cmp_poisson(0, 10, 1, 10, 1, 0.95, &e);
    CHECK(e.lo < 0 && e.hi > 0 && e.p > 0.2, "0 -> 1 (poisson): p %g", e.p);
    /* 50% -> 60% of 10,000 samples is. */
    cmp_share(5000, 10000, 6000, 10000, 0.95, &e);
    CHECK(e.lo > 0.08 && e.hi < 0.12 && e.p < 1e-10, "50 -> 60%%: [%g, %g]", e.lo, e.hi);
    cmp_poisson(1000, 10, 1200, 10, 0.01, 0.95, &e);
    CHECK(NEAR(e.base, 1.0, 1e-12) && NEAR(e.new_, 1.2, 1e-12) && e.lo > 0, "rate");
    return 0;
}

static int test_bh(void)
{
    struct cmp_est v[5];
    struct cmp_est *ps[5];
    const double p[] = {0.01, 0.04, 0.03, 0.005, 0.5};
    for (int i = 0; i < 5; i++) {
        cmp_share(10, 100, 20, 100, 0.95, &v[i]);
        v[i].lo = 0.01; /* interval excludes zero */
        v[i].p = p[i];
        ps[i] = &v[i];
    }
    cmp_bh(ps, 5, 0.05);
    /* sorted p: .005 .01 .03 .04 .5 -> q: .025 .025 .05 .05 .5 */
    CHECK(NEAR(v[3].q, 0.025, 1e-12) && NEAR(v[0].q, 0.025, 1e-12), "q small");
    CHECK(NEAR(v[2].q, 0.05, 1e-12) && NEAR(v[1].q, 0.05, 1e-12), "q middle");
    CHECK(NEAR(v[4].q, 0.5, 1e-12), "q large");
    CHECK(v[0].flagged && v[1].flagged && v[2].flagged && v[3].flagged && !v[4].flagged, "flags");
    v[0].lo = -0.01;
    cmp_bh(ps, 5, 0.05);
    CHECK(!v[0].flagged, "an interval holding zero is never flagged");
    return 0;
}

static int test_trend(void)
{
    double up[12], flat[12];
    for (int i = 0; i < 12; i++) {
        up[i] = i + 0.3 * (i % 3);
        flat[i] = (i * 7) % 5;
    }
    double tau, p;
    cmp_trend(up, 12, &tau, &p);
    CHECK(tau > 0.8 && p < 0.01, "rising: tau %g p %g", tau, p);
    cmp_trend(flat, 12, &tau, &p);
    CHECK(fabs(tau) < 0.4 && p > 0.1, "flat: tau %g p %g", tau, p);
    return 0;
}

/* xorshift64* and Box-Muller: deterministic draws for the simulations. */
static uint64_t rng_state = 0x9e3779b97f4a7c15ull;
static double uniform(void)
{
    rng_state ^= rng_state >> 12;
    rng_state ^= rng_state << 25;
    rng_state ^= rng_state >> 27;
    return ((rng_state * 0x2545f4914f6cdd1dull) >> 11) * (1.0 / 9007199254740992.0);
}
static double normal(void)
{
    double u = uniform(), v = uniform();
    return sqrt(-2.0 * log(u + 1e-300)) * cos(2.0 * M_PI * v);
}

/* 5 runs a side of 20 functions whose time per run has 3% noise, as measured here once diff
 * has taken each run's machine factor out (1-6% over the six steps of
 * tests/integration/targets/loop/work.py): a false flag on any function in at most 5% of
 * A/A comparisons, and
 * the one function made 20% slower flagged in at least 80% of A/B ones (80% power). */
static int test_simulated_error_rates(void)
{
    enum { NF = 20, NR = 5, TRIALS = 2000 };
    int aa_flags = 0, ab_hits = 0, ab_others = 0;
    for (int trial = 0; trial < TRIALS; trial++) {
        for (int ab = 0; ab < 2; ab++) {
            double runs[2][NR][NF];
            for (int side = 0; side < 2; side++)
                for (int r = 0; r < NR; r++) {
                    double machine = 1.0;
                    for (int f = 0; f < NF; f++) {
                        double slow = (ab && side == 1 && f == 3) ? 1.2 : 1.0;
                        runs[side][r][f] = (f + 1) * machine * slow * (1.0 + 0.03 * normal());
                    }
                }
            struct cmp_est est[NF], *ps[NF];
            for (int f = 0; f < NF; f++) {
                double a[NR], b[NR];
                for (int r = 0; r < NR; r++) {
                    a[r] = runs[0][r][f];
                    b[r] = runs[1][r][f];
                }
                cmp_welch(a, NR, b, NR, 0.95, &est[f]);
                ps[f] = &est[f];
            }
            cmp_bh(ps, NF, 0.05);
            int flagged = 0;
            for (int f = 0; f < NF; f++)
                flagged += est[f].flagged && f != 3;
            if (!ab)
                aa_flags += flagged > 0 || est[3].flagged;
            else {
                ab_hits += est[3].flagged;
                ab_others += flagged > 0;
            }
        }
    }
    double fpr = (double)aa_flags / TRIALS, power = (double)ab_hits / TRIALS;
    printf("simulated: A/A false flags %.1f%%, 20%% change found %.1f%%, others flagged "
           "%.1f%%\n",
           100 * fpr, 100 * power, 100.0 * ab_others / TRIALS);
    CHECK(fpr <= 0.05, "A/A false flags %.3f", fpr);
    CHECK(power >= 0.80, "power %.3f", power);
    CHECK((double)ab_others / TRIALS <= 0.05, "others flagged");
    return 0;
}

int main(void)
{
    RUN(test_distributions);
    RUN(test_welch);
    RUN(test_sampling);
    RUN(test_bh);
    RUN(test_trend);
    RUN(test_simulated_error_rates);
    return TEST_SUMMARY("compare");
}
