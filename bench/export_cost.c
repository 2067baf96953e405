// SPDX-License-Identifier: MIT
// What the writers cost alone: builds a profile of N kept samples in memory (8 threads,
// 3,000 distinct stacks of depth 8-40 over 600 Python functions, Zipf-like weights, four time
// categories, two stages), then times export_write for pprof, pstats, collapsed and
// speedscope, best of R runs each. Prints one JSON object on stdout.
// Build (bench/exports.py does it): cc -O2 -Isrc bench/export_cost.c build/rel/src/*/*.o
//   minus main.o, with the Makefile's LIBS.   Run: ./export_cost [samples] [runs]
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "export/export.h"
#include "profile/profile.h"
#include "util/buf.h"

#define THREADS 8
#define STACKS 3000
#define FUNCS 600

static uint64_t rng_state = 88172645463325252ull;

static uint64_t rnd(void)
{
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return rng_state;
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void build(struct profile *p, size_t n)
{
    profile_init(p);
    p->keep_samples = true;
    p->meta.rate_hz = 1000;
    p->meta.categories = true;
    p->meta.duration_ns = (uint64_t)(n / THREADS) * 1000000u;
    profile_set_str(&p->meta.command, "python3 synthetic.py");
    uint32_t frames[FUNCS];
    char name[64], file[64];
    for (int i = 0; i < FUNCS; i++) {
        int nl = snprintf(name, sizeof(name), i % 7 ? "func_%d" : "Class%d.method", i);
        int fl = snprintf(file, sizeof(file), "/srv/app/pkg%d/mod%d.py", i % 6, i % 60);
        frames[i] =
            profile_frame(p, profile_str(p, name, (size_t)nl), profile_str(p, file, (size_t)fl),
                          1 + (int32_t)(rnd() % 900), FRAME_PYTHON);
    }
    uint32_t *leaves = malloc(STACKS * sizeof(*leaves));
    double *cum = malloc(STACKS * sizeof(*cum));
    double total = 0;
    for (int k = 0; k < STACKS; k++) {
        uint32_t s = profile_push(p, 0, frames[rnd() % 8]);
        int depth = 8 + (int)(rnd() % 33);
        for (int d = 0; d < depth; d++)
            s = profile_push(p, s, frames[rnd() % FUNCS]);
        leaves[k] = s;
        total += 1.0 / (k + 1);
        cum[k] = total;
    }
    uint32_t stages[2] = {profile_str(p, "tokenize", 8), profile_str(p, "model", 5)};
    static const uint8_t cats[6] = {CAT_PYTHON, CAT_PYTHON, CAT_PYTHON,
                                    CAT_NATIVE, CAT_SYSTEM, CAT_GIL};
    for (size_t i = 0; i < n; i++) {
        double u = (double)(rnd() >> 11) / 9007199254740992.0 * total;
        size_t lo = 0, hi = STACKS - 1;
        while (lo < hi) {
            size_t mid = (lo + hi) / 2;
            if (cum[mid] < u)
                lo = mid + 1;
            else
                hi = mid;
        }
        uint8_t cat = cats[rnd() % 6];
        profile_add(p, &(struct psample){.t_ns = (i / THREADS) * 1000000u,
                                         .stack = leaves[lo],
                                         .tid = 1000 + (uint32_t)(i % THREADS),
                                         .pid = 4242,
                                         .stage = rnd() % 3 ? stages[rnd() % 2] : 0,
                                         .state = cat == CAT_SYSTEM ? TSTATE_IDLE : TSTATE_RUNNING,
                                         .cat = cat,
                                         .weight = 1});
    }
    free(leaves);
    free(cum);
}

int main(int argc, char **argv)
{
    size_t n = argc > 1 ? strtoul(argv[1], NULL, 10) : 1000000;
    int runs = argc > 2 ? (int)strtol(argv[2], NULL, 10) : 3;
    struct profile p;
    double t0 = now_s();
    build(&p, n);
    double built = now_s() - t0;
    static const enum export_format formats[] = {EXPORT_PPROF, EXPORT_PSTATS, EXPORT_COLLAPSED,
                                                 EXPORT_SPEEDSCOPE};
    printf("{\"samples\": %zu, \"stacks\": %u, \"build_s\": %.3f", n, p.nnodes - 1, built);
    for (size_t f = 0; f < sizeof(formats) / sizeof(formats[0]); f++) {
        double best = 1e9;
        size_t bytes = 0;
        for (int r = 0; r < runs; r++) {
            struct buf out;
            buf_init(&out, 0);
            double t = now_s();
            if (export_write(&p, formats[f], NULL, &out, NULL)) {
                fprintf(stderr, "export_cost: %s failed\n", export_format_name(formats[f]));
                return 1;
            }
            t = now_s() - t;
            best = t < best ? t : best;
            bytes = out.len;
            buf_fini(&out);
        }
        printf(", \"%s_s\": %.4f, \"%s_bytes\": %zu", export_format_name(formats[f]), best,
               export_format_name(formats[f]), bytes);
    }
    printf("}\n");
    profile_fini(&p);
    return 0;
}
