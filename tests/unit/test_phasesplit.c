// SPDX-License-Identifier: MIT
// Unit tests of host stages during prefill and decode: the phase segments of overlapping
// streamed requests, and stage spans split over them by time.
#include <stdlib.h>
#include <string.h>

#include "analysis/phasesplit.h"
#include "check.h"

#define MS 1000000ULL

static void req(struct profile *p, uint64_t start, int64_t ttft, uint64_t end)
{
    struct preq r = {.start_ns = start * MS,
                     .end_ns = end * MS,
                     .ttft_ns = ttft < 0 ? -1 : ttft * (int64_t)MS,
                     .status = 200};
    profile_add_req(p, &r);
}

static void span(struct profile *p, const char *name, uint64_t start, uint64_t end)
{
    struct pspan s = {.start_ns = start * MS,
                      .end_ns = end * MS,
                      .name = profile_str(p, name, strlen(name)),
                      .kind = PSPAN_STAGE};
    profile_add_span(p, &s);
}

static int test_segments(void)
{
    struct profile p;
    profile_init(&p);
    req(&p, 0, 10, 30);  /* prefill 0-10, decode 10-30 */
    req(&p, 20, 15, 50); /* prefill 20-35 (mixed 20-30), decode 35-50 */
    req(&p, 60, -1, 70); /* not a stream: left out */
    req(&p, 80, 5, 90);  /* after an idle gap 50-80 */
    struct phase_seg *s;
    size_t n;
    phasesplit_segments(&p, &s, &n);
    static const struct phase_seg want[] = {
        {0, 10 * MS, PHASE_PREFILL},       {10 * MS, 20 * MS, PHASE_DECODE},
        {20 * MS, 30 * MS, PHASE_MIXED},   {30 * MS, 35 * MS, PHASE_PREFILL},
        {35 * MS, 50 * MS, PHASE_DECODE},  {50 * MS, 80 * MS, PHASE_IDLE},
        {80 * MS, 85 * MS, PHASE_PREFILL}, {85 * MS, 90 * MS, PHASE_DECODE}};
    CHECK(n == sizeof(want) / sizeof(want[0]), "%zu segments", n);
    for (size_t i = 0; i < n; i++)
        CHECK(s[i].start_ns == want[i].start_ns && s[i].end_ns == want[i].end_ns &&
                  s[i].phase == want[i].phase,
              "segment %zu: %llu-%llu phase %d", i, (unsigned long long)s[i].start_ns,
              (unsigned long long)s[i].end_ns, s[i].phase);
    free(s);
    profile_fini(&p);
    return 0;
}

static int test_stage_split(void)
{
    struct profile p;
    profile_init(&p);
    req(&p, 0, 40, 100);
    req(&p, 200, 40, 300);
    span(&p, "tokenize", 1, 5);       /* prefill */
    span(&p, "forward", 5, 60);       /* 35 ms prefill, 20 ms decode */
    span(&p, "detokenize", 210, 290); /* 30 ms prefill, 50 ms decode */
    span(&p, "gc", 120, 150);         /* between requests: idle, no row */
    struct phasesplit ps;
    phasesplit_compute(&p, &ps);
    CHECK(ps.phase_ns[PHASE_PREFILL] == 80 * MS && ps.phase_ns[PHASE_DECODE] == 120 * MS &&
              ps.phase_ns[PHASE_MIXED] == 0,
          "phase lengths");
    CHECK(ps.nrows == 3, "%zu rows", ps.nrows);
    CHECK(ps.rows[0].ns[PHASE_PREFILL] == 4 * MS && ps.rows[0].ns[PHASE_DECODE] == 0, "tokenize");
    CHECK(ps.rows[1].ns[PHASE_PREFILL] == 35 * MS && ps.rows[1].ns[PHASE_DECODE] == 20 * MS,
          "forward");
    CHECK(ps.rows[2].ns[PHASE_PREFILL] == 30 * MS && ps.rows[2].ns[PHASE_DECODE] == 50 * MS,
          "detokenize");
    struct buf b;
    buf_init(&b, 0);
    CHECK(phasesplit_write_text(&ps, &p, &b) == 0, "text");
    CHECK(strstr(buf_cstr(&b), "forward") && strstr(buf_cstr(&b), "63.6"), "%s", buf_cstr(&b));
    buf_fini(&b);
    profile_fini(&p);
    struct profile e;
    profile_init(&e);
    span(&e, "x", 0, 10);
    phasesplit_compute(&e, &ps);
    CHECK(ps.nrows == 0, "no requests, no rows");
    profile_fini(&e);
    return 0;
}

int main(void)
{
    RUN(test_segments);
    RUN(test_stage_split);
    return TEST_SUMMARY("phasesplit");
}
