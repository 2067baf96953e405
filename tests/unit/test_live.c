// SPDX-License-Identifier: MIT
// Unit tests of crux serve's shared state: a window takes exactly the samples of its time
// range, keeps them across a reset of the shared profile, and /metrics escapes what the
// target names.
#include <string.h>

#include "check.h"
#include "serve/live.h"

/* Samples of `p` counted at stacks whose leaf frame is named `name`. */
static uint64_t leaf_count(const struct profile *p, const char *name)
{
    uint64_t n = 0;
    for (uint32_t s = 1; s < p->nnodes; s++) {
        const struct pframe *f = profile_frame_at(p, p->nodes[s].frame);
        if (p->counts[s] && !strcmp(profile_string(p, f->name), name))
            n += p->counts[s];
    }
    return n;
}

static uint32_t stack_of(struct profile *p, const char *const *names, size_t n)
{
    uint32_t ids[16];
    for (size_t i = 0; i < n; i++)
        ids[i] = profile_frame(p, profile_str(p, names[i], strlen(names[i])),
                               profile_str(p, "app.py", 6), (int32_t)(i + 1), FRAME_PYTHON);
    return profile_stack(p, ids, n);
}

static void add(struct profile *p, uint32_t stack, uint64_t t, bool idle, const char *stage)
{
    profile_add(p, &(struct psample){.t_ns = t,
                                     .stack = stack,
                                     .tid = 7,
                                     .pid = 1,
                                     .state = idle ? TSTATE_IDLE : TSTATE_RUNNING,
                                     .cat = idle ? CAT_SYSTEM : CAT_PYTHON,
                                     .stage = stage ? profile_str(p, stage, strlen(stage)) : 0});
}

static int test_window_spans_a_reset(void)
{
    struct live l;
    live_init(&l, &(struct live_opts){.rate_hz = 100, .max_stacks = 100, .categories = true});
    struct profile p;
    profile_init(&p);
    p.keep_samples = true;
    struct sampler_stats st = {.start_ns = sampler_now_ns()};
    CHECK(!live_drain(&p, &st, 0, &l), "nothing to clear yet");
    const char *why = NULL;
    struct live_window *w = live_window_open(&l, 1000, &why);
    CHECK(w != NULL, "window: %s", why ? why : "?");
    const struct profile *acc = live_window_profile(w);
    uint64_t t0 = 1000000000ULL; /* a second after the window opened, at the latest */
    const char *work[] = {"main", "work"};
    add(&p, stack_of(&p, work, 2), 0, false, NULL); /* before the window: not in it */
    for (int i = 0; i < 5; i++)
        add(&p, stack_of(&p, work, 2), t0 + (uint64_t)i, false, "tokenize");
    add(&p, stack_of(&p, work, 2), t0 + 10, true, NULL); /* idle: left out without --idle */
    CHECK(!live_drain(&p, &st, t0 + 100, &l), "under the cap");
    CHECK(leaf_count(acc, "work") == 5, "5 samples in the window, got %llu",
          (unsigned long long)leaf_count(acc, "work"));
    CHECK(p.nsamples == 0, "the drain took the samples");
    /* 200 distinct stacks pass the cap of 100: the drain starts the shared profile over */
    for (int i = 0; i < 200; i++) {
        char name[16];
        snprintf(name, sizeof(name), "f%d", i);
        const char *names[] = {"main", name};
        add(&p, stack_of(&p, names, 2), t0 + 200, false, NULL);
    }
    CHECK(live_drain(&p, &st, t0 + 300, &l), "past the cap: cleared");
    CHECK(p.nnodes == 1 && p.nsamples == 0, "empty after clear: %u nodes", p.nnodes);
    CHECK(leaf_count(acc, "f199") == 1, "samples before the clear are kept");
    /* the same stack again under new shared ids lands on the window's same stack */
    for (int i = 0; i < 3; i++)
        add(&p, stack_of(&p, work, 2), t0 + 400, false, NULL);
    CHECK(!live_drain(&p, &st, t0 + 500, &l), "under the cap again");
    CHECK(leaf_count(acc, "work") == 8, "5 + 3 samples of work, got %llu",
          (unsigned long long)leaf_count(acc, "work"));
    CHECK(acc->total == 208, "every working sample: %llu", (unsigned long long)acc->total);
    CHECK(l.resets == 1 && l.samples[0][CAT_PYTHON] == 209 && l.samples[1][CAT_SYSTEM] == 1,
          "totals: resets %llu python %llu idle %llu", (unsigned long long)l.resets,
          (unsigned long long)l.samples[0][CAT_PYTHON],
          (unsigned long long)l.samples[1][CAT_SYSTEM]);
    live_finish(&l);
    struct buf out;
    buf_init(&out, 1 << 24);
    CHECK(live_window_pprof(&l, w, &out) == 0 && out.len > 20, "pprof written");
    CHECK((unsigned char)out.data[0] == 0x1f && (unsigned char)out.data[1] == 0x8b, "gzipped");
    buf_fini(&out);
    CHECK(live_window_open(&l, 1, &why) == NULL && strstr(why, "exited"), "finished: refused");
    profile_fini(&p);
    live_fini(&l);
    return 0;
}

static int test_full_windows_are_refused(void)
{
    struct live l;
    live_init(&l, &(struct live_opts){.rate_hz = 100, .max_stacks = 1000});
    struct live_window *w[LIVE_MAX_WINDOWS];
    const char *why = NULL;
    for (int i = 0; i < LIVE_MAX_WINDOWS; i++)
        CHECK((w[i] = live_window_open(&l, 1, &why)) != NULL, "window %d", i);
    CHECK(live_window_open(&l, 1, &why) == NULL && strstr(why, "too many"), "17th refused");
    CHECK(l.refused == 1, "counted");
    live_finish(&l);
    for (int i = 0; i < LIVE_MAX_WINDOWS; i++) {
        struct buf out;
        buf_init(&out, 1 << 20);
        CHECK(live_window_pprof(&l, w[i], &out) == 0, "window %d answered", i);
        buf_fini(&out);
    }
    live_fini(&l);
    return 0;
}

static int test_metrics_escape_and_buckets(void)
{
    struct stagestats spans;
    stagestats_init(&spans, 0);
    struct live l;
    live_init(&l, &(struct live_opts){.rate_hz = 100, .max_stacks = 1000, .spans = &spans});
    struct profile p;
    profile_init(&p);
    p.keep_samples = true;
    struct sampler_stats st = {.start_ns = sampler_now_ns(), .ticks = 42};
    const char *work[] = {"main", "work"};
    add(&p, stack_of(&p, work, 2), 5, false, "a\"b\nc\\d\xff");
    stagestats_add(&spans, &(struct stage_span){.request = 1,
                                                .start_ns = 1000,
                                                .end_ns = 1000 + 3000000, /* 3 ms */
                                                .name = "score",
                                                .kind = STAGE_SPAN});
    (void)live_drain(&p, &st, 10, &l);
    CHECK(spans.nspans == 0, "the drain took the spans");
    struct buf out;
    buf_init(&out, 1 << 20);
    CHECK(live_metrics(&l, &out) == 0, "metrics written");
    const char *m = buf_cstr(&out);
    CHECK(strstr(m, "crux_stage_samples_total{stage=\"a\\\"b\\nc\\\\d\xef\xbf\xbd\","
                    "state=\"working\"} 1\n"),
          "escaped stage label:\n%s", m);
    CHECK(strstr(m, "crux_stage_duration_seconds_bucket{stage=\"score\",le=\"0.0025\"} 0\n") &&
              strstr(m, "crux_stage_duration_seconds_bucket{stage=\"score\",le=\"0.005\"} 1\n") &&
              strstr(m, "crux_stage_duration_seconds_bucket{stage=\"score\",le=\"+Inf\"} 1\n") &&
              strstr(m, "crux_stage_duration_seconds_count{stage=\"score\"} 1\n"),
          "3 ms in the 5 ms bucket:\n%s", m);
    CHECK(strstr(m, "crux_sampler_rounds_total 42\n"), "sampler counters");
    CHECK(strstr(m, "# TYPE process_resident_memory_bytes gauge\n"), "crux's own memory");
    buf_fini(&out);
    profile_fini(&p);
    live_fini(&l);
    stagestats_fini(&spans);
    return 0;
}

int main(void)
{
    RUN(test_window_spans_a_reset);
    RUN(test_full_windows_are_refused);
    RUN(test_metrics_escape_and_buckets);
    return TEST_SUMMARY("live");
}
