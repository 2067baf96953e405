// SPDX-License-Identifier: MIT
// Unit tests of the allocation views (analysis/allocs.h): the sampler math (Poisson gaps by
// bytes and Horvitz-Thompson weights give unbiased byte estimates), the Mann-Kendall leak
// score, the views on a synthetic profile (peak, end, temporaries, leaks), and bytes per request
// (analysis/allocreq.h).
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "analysis/allocreq.h"
#include "analysis/allocs.h"
#include "check.h"
#include "profile/profile.h"

static uint64_t rng = 88172645463325252ull;

static double uniform(void)
{
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return ((double)(rng >> 11) + 1.0) * 0x1.0p-53;
}

/* The engine's scheme (allocshim.c): exponential gaps along the bytes, a block sampled when
 * a sample point falls in it, weighted size / (1 - exp(-size / mean)). */
static double estimate(const double *sizes, size_t n, size_t reps, double mean)
{
    double left = -log(uniform()) * mean, est = 0;
    for (size_t r = 0; r < reps; r++)
        for (size_t i = 0; i < n; i++) {
            left -= sizes[i];
            if (left > 0)
                continue;
            while (left <= 0)
                left += -log(uniform()) * mean;
            est += allocs_ht_weight(sizes[i], mean);
        }
    return est;
}

static int test_poisson_estimates_are_unbiased(void)
{
    const double mean = 512.0 * 1024;
    const double sizes[] = {32, 100, 4096, 100000, 1 << 20, 200e6};
    for (size_t k = 0; k < sizeof(sizes) / sizeof(sizes[0]); k++) {
        /* enough blocks for ~20,000 samples of the small sizes */
        size_t reps = (size_t)(2e4 * mean / sizes[k]) + 1;
        if (reps > 400000000 / 100)
            reps = 400000000 / 100;
        double truth = sizes[k] * (double)reps;
        double est = estimate(&sizes[k], 1, reps, mean);
        CHECK(fabs(est - truth) <= 0.03 * truth, "size %.0f: %.4g vs %.4g", sizes[k], est, truth);
    }
    CHECK(allocs_ht_weight(200e6, mean) == 200e6, "big blocks weigh their size");
    CHECK(allocs_ht_weight(100, 0) == 100, "mean 0 (every allocation): weight = size");
    return 0;
}

static int test_trend_score(void)
{
    double up[20], flat[20], down[20], plateau[20];
    for (int i = 0; i < 20; i++) {
        up[i] = i + 0.3 * sin(i);
        flat[i] = 5;
        down[i] = 20 - i;
        plateau[i] = i < 2 ? i : 8 + (i % 2 ? 0.5 : -0.5);
    }
    CHECK(allocs_trend_likelihood(up, 20) > 0.999, "%g", allocs_trend_likelihood(up, 20));
    CHECK(fabs(allocs_trend_likelihood(flat, 20) - 0.5) < 1e-9, "flat: 0.5");
    CHECK(allocs_trend_likelihood(down, 20) < 0.001, "down");
    CHECK(allocs_trend_likelihood(plateau, 20) < 0.95, "%g", allocs_trend_likelihood(plateau, 20));
    CHECK(allocs_trend_likelihood(up, 2) == 0, "too short");
    return 0;
}

static void ev(struct profile *p, uint64_t t, uint64_t born, uint64_t bytes, uint32_t stack,
               uint32_t kind)
{
    profile_add_alloc(p, &(struct palloc){t, bytes, born, stack, 1.0f, kind, 0});
}

static int test_views(void)
{
    struct profile p;
    profile_init(&p);
    p.allocations = true;
    uint32_t mod = profile_frame(&p, profile_str(&p, "<module>", 8), profile_str(&p, "j.py", 4), 1,
                                 FRAME_PYTHON);
    uint32_t fl =
        profile_frame(&p, profile_str(&p, "leak", 4), profile_str(&p, "j.py", 4), 10, FRAME_PYTHON);
    uint32_t ft =
        profile_frame(&p, profile_str(&p, "tmp", 3), profile_str(&p, "j.py", 4), 20, FRAME_PYTHON);
    uint32_t fp =
        profile_frame(&p, profile_str(&p, "peak", 4), profile_str(&p, "j.py", 4), 30, FRAME_PYTHON);
    uint32_t sl = profile_push(&p, profile_push(&p, 0, mod), fl);
    uint32_t st = profile_push(&p, profile_push(&p, 0, mod), ft);
    uint32_t sp = profile_push(&p, profile_push(&p, 0, mod), fp);
    const uint64_t MS = 1000000;
    for (uint64_t i = 0; i < 100; i++) {
        uint64_t t = i * 10 * MS;
        ev(&p, t, t, 1000, sl, PALLOC_ALLOC);           /* kept: a leak */
        ev(&p, t + MS, t + MS, 5000, st, PALLOC_ALLOC); /* freed 1 ms later: temporary */
        ev(&p, t + 2 * MS, t + MS, 5000, st, PALLOC_FREE);
    }
    /* a one-off 1 MB block around t = 500 ms, freed at 600 ms: the peak */
    ev(&p, 500 * MS + 3, 500 * MS + 3, 1000000, sp, PALLOC_ALLOC);
    ev(&p, 600 * MS + 3, 500 * MS + 3, 1000000, sp, PALLOC_FREE);
    struct alloc_view v;
    allocs_view_build(&p, &v);
    CHECK(v.nlines == 3, "%zu", v.nlines);
    CHECK(v.total_bytes == 100 * 1000 + 100 * 5000 + 1000000, "%llu",
          (unsigned long long)v.total_bytes);
    /* the block, the leak's 61 first blocks (to 600 ms) and at most one live temporary */
    CHECK(v.peak_live >= 1000000 + 51 * 1000 && v.peak_live <= 1000000 + 61 * 1000 + 5000, "%lld",
          (long long)v.peak_live);
    CHECK(v.end_live == 100 * 1000, "%lld", (long long)v.end_live);
    const struct alloc_site *leak = NULL, *tmp = NULL, *pk = NULL;
    for (size_t i = 0; i < v.nlines; i++) {
        const struct alloc_site *s = &v.lines[i];
        if (s->frame == fl)
            leak = s;
        else if (s->frame == ft)
            tmp = s;
        else if (s->frame == fp)
            pk = s;
    }
    CHECK(leak && tmp && pk, "sites");
    CHECK(leak->leak && leak->likelihood > 0.99 && leak->end_live == 100000, "leak %g",
          leak->likelihood);
    CHECK(!tmp->leak && tmp->temp == 500000 && tmp->end_live == 0, "temp %llu",
          (unsigned long long)tmp->temp);
    CHECK(!pk->leak && pk->peak_live == 1000000 && pk->end_live == 0 && pk->temp == 0, "peak");
    CHECK(fabs(pk->count - 1.0) < 1e-9, "count");
    allocs_view_fini(&v);
    profile_fini(&p);
    return 0;
}

/* Copy events add to their site's copy bytes and calls, never to live bytes or the peak. */
static int test_copies(void)
{
    struct profile p;
    profile_init(&p);
    p.allocations = true;
    p.copy_sample_bytes = 1 << 20;
    p.meta.duration_ns = 2000000000ull;
    uint32_t fa =
        profile_frame(&p, profile_str(&p, "a", 1), profile_str(&p, "c.py", 4), 5, FRAME_PYTHON);
    uint32_t fb =
        profile_frame(&p, profile_str(&p, "b", 1), profile_str(&p, "c.py", 4), 9, FRAME_PYTHON);
    uint32_t sa = profile_push(&p, 0, fa), sb = profile_push(&p, 0, fb);
    for (uint64_t i = 0; i < 10; i++) {
        ev(&p, i * 1000, i * 1000, 8 << 20, sa, PALLOC_COPY);
        ev(&p, i * 1000 + 1, i * 1000 + 1, 1 << 20, sb, PALLOC_COPY);
    }
    ev(&p, 50000, 50000, 4096, sb, PALLOC_ALLOC);
    struct alloc_view v;
    allocs_view_build(&p, &v);
    CHECK(v.copy_total == 90ull << 20 && v.copy_events == 20, "%llu",
          (unsigned long long)v.copy_total);
    CHECK(v.peak_live == 4096 && v.end_live == 4096 && v.total_bytes == 4096, "%lld",
          (long long)v.peak_live);
    CHECK(v.ncopy_lines == 2 && v.copy_lines[0].frame == fa && v.copy_lines[1].frame == fb, "%zu",
          v.ncopy_lines);
    CHECK(v.copy_lines[0].copy_bytes == 80ull << 20 && fabs(v.copy_lines[0].copies - 10) < 1e-9,
          "a");
    CHECK(fabs(allocs_rate(&p, v.copy_lines[0].copy_bytes) - 40.0 * 1048576) < 1, "rate");
    CHECK(v.ncopy_funcs == 2 && v.copy_funcs[1].copy_bytes == 10ull << 20, "funcs");
    /* the allocation table is unchanged: the copy-only line has no allocated bytes */
    for (size_t i = 0; i < v.nlines; i++)
        CHECK(v.lines[i].frame != fa || v.lines[i].bytes == 0, "a allocates nothing");
    allocs_view_fini(&v);
    profile_fini(&p);
    return 0;
}

static void tev(struct profile *p, uint64_t t, uint64_t born, uint64_t bytes, uint32_t stack,
                uint32_t kind, uint32_t tid)
{
    profile_add_alloc(p, &(struct palloc){t, bytes, born, stack, 1.0f, kind, tid});
}

/* Bytes per request: two threads, each with two requests; an allocation belongs to the request
 * open on its thread, and is retained when freed after its end or never. */
static int test_requests(void)
{
    struct profile p;
    profile_init(&p);
    p.allocations = true;
    uint32_t fk =
        profile_frame(&p, profile_str(&p, "keep", 4), profile_str(&p, "h.py", 4), 33, FRAME_PYTHON);
    uint32_t ft =
        profile_frame(&p, profile_str(&p, "tmp", 3), profile_str(&p, "h.py", 4), 40, FRAME_PYTHON);
    uint32_t sk = profile_push(&p, 0, fk), st = profile_push(&p, 0, ft);
    /* requests: thread 7 [100, 200) and [300, 400); thread 8 [150, 350) and [500, 600) */
    const uint64_t spans[4][3] = {{7, 100, 200}, {7, 300, 400}, {8, 150, 350}, {8, 500, 600}};
    for (int i = 0; i < 4; i++)
        profile_add_span(&p, &(struct pspan){.start_ns = spans[i][1],
                                             .end_ns = spans[i][2],
                                             .request = (uint64_t)i + 1,
                                             .tid = (uint32_t)spans[i][0],
                                             .kind = PSPAN_REQUEST});
    for (int i = 0; i < 4; i++) {
        uint64_t t = spans[i][1] + 10;
        uint32_t tid = (uint32_t)spans[i][0];
        tev(&p, t, t, 4096, sk, PALLOC_ALLOC, tid);         /* kept: never freed */
        tev(&p, t + 1, t + 1, 1000, st, PALLOC_ALLOC, tid); /* freed within the request */
        tev(&p, t + 5, t + 1, 1000, st, PALLOC_FREE, tid);
    }
    /* thread 7 at 250: between its requests, not counted; thread 9: no request */
    tev(&p, 250, 250, 1 << 20, sk, PALLOC_ALLOC, 7);
    tev(&p, 160, 160, 1 << 20, sk, PALLOC_ALLOC, 9);
    /* freed after its request ended: retained, though not kept */
    tev(&p, 520, 520, 2000, st, PALLOC_ALLOC, 8);
    tev(&p, 700, 520, 2000, st, PALLOC_FREE, 8);
    struct allocreq_view r;
    allocreq_build(&p, &r);
    CHECK(r.requests == 4, "%zu", r.requests);
    CHECK(fabs(r.allocated - (4.0 * 5096 + 2000) / 4) < 1e-9, "%f", r.allocated);
    CHECK(fabs(r.retained - (4.0 * 4096 + 2000) / 4) < 1e-9, "%f", r.retained);
    CHECK(fabs(r.kept - 4096.0) < 1e-9, "%f", r.kept);
    CHECK(r.max_retained == 6096, "%llu", (unsigned long long)r.max_retained);
    CHECK(r.nlines == 2 && r.lines[0].frame == fk && fabs(r.lines[0].retained - 4096) < 1e-9 &&
              fabs(r.lines[0].kept - 4096) < 1e-9,
          "%zu", r.nlines);
    CHECK(r.lines[1].frame == ft && fabs(r.lines[1].retained - 500) < 1e-9 && r.lines[1].kept == 0,
          "%f", r.lines[1].retained);
    profile_fini(&p);
    /* no request spans: no view */
    profile_init(&p);
    tev(&p, 1, 1, 10, 0, PALLOC_ALLOC, 3);
    allocreq_build(&p, &r);
    CHECK(r.requests == 0 && r.nlines == 0, "%zu", r.requests);
    profile_fini(&p);
    return 0;
}

int main(void)
{
    RUN(test_poisson_estimates_are_unbiased);
    RUN(test_trend_score);
    RUN(test_views);
    RUN(test_copies);
    RUN(test_requests);
    return TEST_SUMMARY("allocs");
}
