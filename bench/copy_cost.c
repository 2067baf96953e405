// SPDX-License-Identifier: MIT
// The cost of libcrux_alloc.so's memcpy hook (docs/memory.md, "Copy volume"): ns per 64-byte
// memcpy through the PLT, run plain, under LD_PRELOAD with copies off, and with copies on
// (CRUX_BENCH_COPY_ON=1: the engine started on a private ring, no reader attached, so the
// countdown runs and refills but nothing is written).
// Build: cc -O2 -fno-builtin -Isrc/agent -o build/copy_cost bench/copy_cost.c -ldl
// Run:   build/copy_cost; LD_PRELOAD=build/agent/libcrux_alloc.so build/copy_cost;
//        CRUX_BENCH_COPY_ON=1 LD_PRELOAD=build/agent/libcrux_alloc.so build/copy_cost
#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>

#include "allocshim.h"

#define N 200000000L
#define SIZE 64

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void start_copies(void)
{
    int (*start)(const struct crux_alloc_cfg *) =
        (int (*)(const struct crux_alloc_cfg *))dlsym(RTLD_DEFAULT, "crux_alloc_start");
    if (!start)
        return;
    size_t recs = 1024, size = 4096 + recs * sizeof(struct agentshm_arec);
    struct agentshm_hdr *h =
        mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    h->arecs_off = 4096;
    h->arec_count = (uint32_t)recs;
    struct crux_alloc_cfg cfg = {h, NULL, 512 * 1024, 1024 * 1024};
    if (start(&cfg))
        fprintf(stderr, "copy_cost: crux_alloc_start failed\n");
}

int main(void)
{
    if (getenv("CRUX_BENCH_COPY_ON"))
        start_copies();
    static char src[SIZE * 2], dst[SIZE * 2];
    void *(*volatile cp)(void *, const void *, size_t) = memcpy; /* through the PLT */
    double t0 = now();
    for (long i = 0; i < N; i++)
        cp(dst + (i & 7), src, SIZE);
    double t = now() - t0;
    printf("%.3f ns per %d-byte memcpy\n", t * 1e9 / (double)N, SIZE);
    return 0;
}
