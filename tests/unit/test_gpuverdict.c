// SPDX-License-Identifier: MIT
// Unit tests of the GPU rules (analysis/gpuverdict.c) and of the GPU series (profile/).
#include <string.h>

#include "analysis/gpuverdict.h"
#include "check.h"
#include "profile/profile.h"

/* A profile with one device and `n` points of the given figures, 100 ms apart. */
static void fill(struct profile *p, int n, float busy, float sm, float tensor, float dram)
{
    p->gpu.on = true;
    (void)pgpu_add_dev(&p->gpu, 0, "GPU", NULL, 80ull << 30);
    for (int i = 0; i < n; i++) {
        struct pgpu_point pt = pgpu_point_empty((uint64_t)i * 100000000ull, 0);
        pt.util_gpu = busy;
        pt.sm_active = sm;
        pt.tensor_active = tensor;
        pt.dram_bw = dram;
        pt.sm_occupancy = sm < 0 ? PGPU_NA : sm / 2;
        pgpu_add_point(&p->gpu, &pt);
    }
}

static enum gpu_kind judge(float busy, float sm, float tensor, float dram, bool work,
                           struct gpu_verdict *v)
{
    struct profile p;
    profile_init(&p);
    fill(&p, 20, busy, sm, tensor, dram);
    gpu_verdict_run(v, &p, work);
    profile_fini(&p);
    return v->kind;
}

static int test_rules(void)
{
    struct gpu_verdict v;
    CHECK(judge(30, 10, 5, 5, true, &v) == GPUK_STARVED, "kernels 30%% with work: starved");
    CHECK(judge(30, 10, 5, 5, false, &v) == GPUK_IDLE, "kernels 30%% without work: idle");
    CHECK(judge(49.9f, -1, -1, -1, true, &v) == GPUK_STARVED, "starved needs no GPM");
    CHECK(judge(95, 30, 10, 20, true, &v) == GPUK_LAUNCH, "saturated, SMs idle: launch bound");
    CHECK(judge(95, 70, 5, 85, true, &v) == GPUK_MEMORY, "DRAM high, tensor low: memory");
    CHECK(judge(95, 85, 75, 40, true, &v) == GPUK_COMPUTE, "tensor high: compute bound");
    CHECK(judge(80, 85, 10, 30, true, &v) == GPUK_COMPUTE, "SM active high: compute bound");
    CHECK(judge(70, 60, 40, 40, true, &v) == GPUK_BUSY, "no rule fits: busy");
    CHECK(v.not_applied[0] == '\0', "with GPM every rule applied");
    return 0;
}

static int test_thresholds_are_edges(void)
{
    struct gpu_verdict v;
    CHECK(judge(50, 60, 40, 40, true, &v) != GPUK_STARVED, "50%% is not under 50%%");
    CHECK(judge(90, 49, 10, 10, true, &v) == GPUK_LAUNCH, "90%% busy is saturated");
    CHECK(judge(89, 49, 10, 10, true, &v) == GPUK_BUSY, "89%% busy is not saturated");
    CHECK(judge(95, 70, 30, 85, true, &v) != GPUK_MEMORY, "tensor 30%% is not low");
    return 0;
}

static int test_without_gpm_rules_not_applied(void)
{
    struct gpu_verdict v;
    CHECK(judge(99, -1, -1, -1, true, &v) == GPUK_BUSY, "busy without GPM");
    CHECK(!v.gpm && v.sm_active < 0, "no GPM figures");
    CHECK(strstr(v.not_applied, "compute bound") && strstr(v.not_applied, "memory-bandwidth"),
          "the rules not applied are named: %s", v.not_applied);
    char fig[256];
    gpu_verdict_figures(&v, fig, sizeof(fig));
    CHECK(strstr(fig, "any kernel running") && strstr(fig, "no GPM"), "figures: %s", fig);
    return 0;
}

static int test_no_data(void)
{
    struct profile p;
    profile_init(&p);
    struct gpu_verdict v;
    gpu_verdict_run(&v, &p, true);
    CHECK(v.kind == GPUK_NONE, "no GPU data: no GPU verdict");
    p.gpu.on = true; /* on, but every read failed */
    (void)pgpu_add_dev(&p.gpu, 0, "GPU", NULL, 0);
    pgpu_add_point(&p.gpu, &(struct pgpu_point){.util_gpu = PGPU_NA, .sm_active = PGPU_NA});
    gpu_verdict_run(&v, &p, true);
    CHECK(v.kind == GPUK_NONE && v.npoints == 0, "points without utilization are not judged");
    profile_fini(&p);
    return 0;
}

/* With record --load the window is the time requests were in flight: a GPU busy only while
 * no request was there is starved for the requests. */
static int test_request_window(void)
{
    struct profile p;
    profile_init(&p);
    p.gpu.on = true;
    (void)pgpu_add_dev(&p.gpu, 0, "GPU", NULL, 0);
    for (int i = 0; i < 40; i++) {
        struct pgpu_point pt = pgpu_point_empty((uint64_t)i * 100000000ull, 0);
        pt.util_gpu = i < 20 ? 10 : 100; /* requests during the first 2 s only */
        pgpu_add_point(&p.gpu, &pt);
    }
    profile_add_req(&p, &(struct preq){.start_ns = 0, .end_ns = 1200000000ull, .ttft_ns = -1});
    profile_add_req(
        &p, &(struct preq){.start_ns = 1000000000ull, .end_ns = 1990000000ull, .ttft_ns = -1});
    struct gpu_verdict v;
    gpu_verdict_run(&v, &p, false);
    CHECK(v.window_requests && v.npoints == 20, "20 points in the window, got %u", v.npoints);
    CHECK(v.kind == GPUK_STARVED, "busy only outside requests: starved (%.0f%%)", v.busy);
    profile_fini(&p);
    return 0;
}

/* The target's own process figures choose the devices judged. */
static int test_target_devices(void)
{
    struct profile p;
    profile_init(&p);
    p.gpu.on = true;
    (void)pgpu_add_dev(&p.gpu, 0, "idle neighbour", NULL, 0);
    (void)pgpu_add_dev(&p.gpu, 1, "target's", NULL, 0);
    for (int i = 0; i < 10; i++)
        for (uint32_t d = 0; d < 2; d++) {
            struct pgpu_point pt = pgpu_point_empty((uint64_t)i * 100000000ull, d);
            pt.util_gpu = d ? 20 : 100;
            pgpu_add_point(&p.gpu, &pt);
        }
    pgpu_add_proc(
        &p.gpu,
        &(struct pgpu_proc){.dev = 1, .pid = 7, .sm_util = 15, .mem_util = 3, .mem_used = 1 << 30});
    struct gpu_verdict v;
    gpu_verdict_run(&v, &p, true);
    CHECK(v.ndevs == 1 && v.kind == GPUK_STARVED, "only the target's GPU is judged");
    CHECK(v.proc_sm == 15 && v.proc_mem == 1u << 30, "the target's own figures");
    profile_fini(&p);
    return 0;
}

static int test_series_caps_and_notes(void)
{
    struct pgpu g;
    pgpu_init(&g);
    pgpu_add_note(&g, "a");
    pgpu_add_note(&g, "b");
    pgpu_add_note(&g, "a");
    CHECK(strcmp(g.note, "a; b") == 0, "notes joined once each: %s", g.note);
    for (int i = 0; i < PGPU_MAX_DEVS + 2; i++)
        (void)pgpu_add_dev(&g, (uint32_t)i, "x", "u", 1);
    CHECK(g.ndevs == PGPU_MAX_DEVS, "devices capped");
    struct pgpu h;
    pgpu_init(&h);
    pgpu_move(&h, &g);
    CHECK(g.ndevs == 0 && !g.note && h.ndevs == PGPU_MAX_DEVS, "moved");
    pgpu_fini(&h);
    pgpu_fini(&g);
    return 0;
}

int main(void)
{
    RUN(test_rules);
    RUN(test_thresholds_are_edges);
    RUN(test_without_gpm_rules_not_applied);
    RUN(test_no_data);
    RUN(test_request_window);
    RUN(test_target_devices);
    RUN(test_series_caps_and_notes);
    return TEST_SUMMARY("gpuverdict");
}
