// SPDX-License-Identifier: MIT
// Unit tests for load/hist: percentiles against a sorted array of random data, layout, merge.
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "load/hist.h"

#define HOUR_US 3600000000LL

static uint64_t rng_state = 88172645463325252ULL;

static uint64_t rng(void)
{
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return rng_state;
}

static int cmp_i64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return (x > y) - (x < y);
}

/* The value at rank ceil(p% of n) (1-based) of a sorted array. */
static int64_t exact_percentile(const int64_t *v, size_t n, double p)
{
    double want = p / 100.0 * (double)n;
    size_t rank = (size_t)want;
    if ((double)rank < want)
        rank++;
    if (rank < 1)
        rank = 1;
    return v[rank - 1];
}

/* Values log-uniform from 1 us to ~10 min, which spans every bucket the run uses. */
static int check_against_sorted(size_t n, int sigfigs)
{
    struct hist h;
    CHECK(hist_init(&h, HOUR_US, sigfigs) == 0, "init");
    int64_t *v = malloc(n * sizeof(*v));
    double sum = 0;
    for (size_t i = 0; i < n; i++) {
        double e = (double)(rng() % 1000000) / 1000000.0 * 20.5; /* 2^20.5 s ~ 1e6 */
        v[i] = (int64_t)(exp2(e * 1.4) + (double)(rng() % 3));
        hist_record(&h, v[i]);
        sum += (double)v[i];
    }
    qsort(v, n, sizeof(*v), cmp_i64);
    const double ps[] = {0, 1, 10, 25, 50, 75, 90, 95, 99, 99.9, 99.99, 100};
    double tol = 1.0;
    for (int i = 0; i < sigfigs; i++)
        tol /= 10.0;
    for (size_t i = 0; i < sizeof(ps) / sizeof(ps[0]); i++) {
        int64_t want = exact_percentile(v, n, ps[i]);
        int64_t got = hist_percentile(&h, ps[i]);
        double rel = fabs((double)(got - want)) / (double)(want ? want : 1);
        CHECK(rel <= tol, "p%g: got %lld want %lld (rel %g)", ps[i], (long long)got,
              (long long)want, rel);
        CHECK(got >= want, "p%g below the exact value: %lld < %lld", ps[i], (long long)got,
              (long long)want);
    }
    CHECK(h.min == v[0] && h.max == v[n - 1], "exact min/max");
    CHECK(fabs(hist_mean(&h) - sum / (double)n) < 1e-6 * sum / (double)n, "exact mean");
    CHECK(h.total == n, "total");
    free(v);
    hist_fini(&h);
    return 0;
}

static int test_percentiles_3_digits(void)
{
    return check_against_sorted(200000, 3);
}

static int test_percentiles_small_n_and_2_digits(void)
{
    for (size_t n = 1; n < 40; n += 7)
        if (check_against_sorted(n, 3))
            return 1;
    return check_against_sorted(5000, 2);
}

static int test_memory_bounded(void)
{
    struct hist h;
    CHECK(hist_init(&h, HOUR_US, 3) == 0, "init");
    CHECK(h.counts_len * sizeof(uint64_t) < 256 * 1024, "counts %zu", h.counts_len);
    hist_record(&h, HOUR_US * 10); /* clamped, not lost */
    CHECK(h.clamped == 1 && h.max == HOUR_US, "clamped %llu", (unsigned long long)h.clamped);
    hist_record(&h, -5);
    CHECK(h.min == 0, "negative as 0");
    hist_fini(&h);
    CHECK(hist_init(&h, 1, 3) != 0, "highest too small");
    CHECK(hist_init(&h, 100, 0) != 0, "sigfigs 0");
    return 0;
}

static int test_layout_contiguous(void)
{
    struct hist h;
    CHECK(hist_init(&h, HOUR_US, 3) == 0, "init");
    size_t prev = 0;
    for (int64_t v = 0; v < 1 << 22; v += 1 + v / 3000) {
        size_t i = hist_index(&h, v);
        CHECK(i == prev || i == prev + 1 || v == 0, "index jump at %lld", (long long)v);
        CHECK(hist_lowest_at(&h, i) <= v, "lowest above value at %lld", (long long)v);
        prev = i;
    }
    hist_fini(&h);
    return 0;
}

static int test_add_and_iterate(void)
{
    struct hist a, b;
    CHECK(hist_init(&a, HOUR_US, 3) == 0 && hist_init(&b, HOUR_US, 3) == 0, "init");
    for (int i = 1; i <= 1000; i++)
        hist_record(i % 2 ? &a : &b, i * 1000);
    CHECK(hist_add(&a, &b) == 0, "add");
    CHECK(a.total == 1000 && a.min == 1000 && a.max == 1000000, "merged extremes");
    int64_t p50 = hist_percentile(&a, 50);
    CHECK(p50 >= 500000 && p50 <= 500500, "p50 %lld", (long long)p50);
    size_t pos = 0;
    int64_t lo, hi;
    uint64_t c, sum = 0;
    int64_t last = -1;
    while (hist_next(&a, &pos, &lo, &hi, &c)) {
        CHECK(lo > last && hi >= lo, "ordered buckets");
        last = hi;
        sum += c;
    }
    CHECK(sum == 1000, "iterated %llu", (unsigned long long)sum);
    hist_reset(&a);
    CHECK(a.total == 0 && hist_percentile(&a, 99) == 0, "reset");
    struct hist c2;
    CHECK(hist_init(&c2, 1000, 3) == 0, "init small");
    CHECK(hist_add(&b, &c2) != 0, "layout mismatch refused");
    hist_fini(&c2);
    hist_fini(&a);
    hist_fini(&b);
    return 0;
}

int main(void)
{
    RUN(test_percentiles_3_digits);
    RUN(test_percentiles_small_n_and_2_digits);
    RUN(test_memory_bounded);
    RUN(test_layout_contiguous);
    RUN(test_add_and_iterate);
    return TEST_SUMMARY("hist");
}
