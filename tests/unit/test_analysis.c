// SPDX-License-Identifier: MIT
// Unit tests of stage rules and the verdict on synthetic profiles: rule parsing and
// precedence, innermost-match classification, Wilson intervals, per-tick wall weighting,
// categories and their absence, stage tags, "no clear bottleneck", the summary text.
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "analysis/stages.h"
#include "analysis/verdict.h"
#include "check.h"
#include "export/export.h"
#include "profile/profile.h"
#include "util/buf.h"

static uint32_t py(struct profile *p, const char *name, const char *file, int line)
{
    return profile_frame(p, profile_str(p, name, strlen(name)), profile_str(p, file, strlen(file)),
                         line, FRAME_PYTHON);
}

static uint32_t stack2(struct profile *p, uint32_t a, uint32_t b)
{
    uint32_t f[2] = {a, b};
    return profile_stack(p, f, 2);
}

static uint32_t stage_id(const struct stage_rules *r, const char *name)
{
    for (uint32_t i = 0; i < r->nstages; i++)
        if (strcmp(r->stages[i].name, name) == 0)
            return i;
    return UINT32_MAX;
}

static const char *stage_of(const struct analysis *a, uint32_t stack)
{
    return a->stage_names[a->stack_stage[stack]];
}

static int test_builtin_rules_parse(void)
{
    struct stage_rules r;
    memset(&r, 0, sizeof(r));
    struct errbuf eb = {{0}};
    CHECK(stage_rules_parse(&r, stage_rules_builtin, strlen(stage_rules_builtin), "built-in",
                            &eb) == 0,
          "%s", eb.msg);
    stage_rules_fini(&r);
    stage_rules_init(&r);
    CHECK(r.nrules > 100, "rules %zu", r.nrules);
    CHECK(stage_id(&r, "other") == STAGE_OTHER, "other is stage 0");
    CHECK(stage_id(&r, "tokenize") != UINT32_MAX && stage_id(&r, "ipc") != UINT32_MAX, "stages");
    stage_rules_fini(&r);
    return 0;
}

/* A rules file naming many stages: each found by name (a hash map; the list was searched once
 * per line, 33 s for 10^5 stages). */
static int test_many_stages(void)
{
    struct stage_rules r;
    stage_rules_init(&r);
    struct buf b;
    buf_init(&b, 0);
    for (int i = 0; i < 20000; i++)
        CHECK(buf_printf(&b, "stage s%d io\nmatch s%d function f%d\n", i, i, i) == 0, "printf");
    struct errbuf eb = {{0}};
    uint32_t before = r.nstages;
    CHECK(stage_rules_parse(&r, b.data, b.len, "many.rules", &eb) == 0, "%s", eb.msg);
    CHECK(r.nstages == before + 20000, "%u stages", r.nstages);
    uint32_t a = stage_id(&r, "s0"), z = stage_id(&r, "s19999");
    CHECK(a != UINT32_MAX && z != UINT32_MAX && a != z, "s0 %u, s19999 %u", a, z);
    CHECK(strcmp(r.stages[z].name, "s19999") == 0, "%s", r.stages[z].name);
    CHECK(stage_rules_stage(&r, "s777") == stage_id(&r, "s777"), "same id by either call");
    CHECK(stage_rules_stage(&r, "brand-new") == r.nstages - 1, "a new name is added");
    buf_fini(&b);
    stage_rules_fini(&r);
    return 0;
}

static int test_classify(void)
{
    struct profile p;
    profile_init(&p);
    uint32_t main_ = py(&p, "main", "/app/run.py", 3);
    uint32_t tok = py(&p, "Tokenizer.encode_batch", "/app/run.py", 10);
    uint32_t fwd = py(&p, "Net.forward", "/app/model.py", 20);
    uint32_t lin =
        py(&p, "Linear.forward", "/usr/lib/python3/dist-packages/torch/nn/modules/linear.py", 114);
    uint32_t dumps = py(&p, "dumps", "/usr/lib/python3.11/json/__init__.py", 231);
    uint32_t recv =
        py(&p, "Connection._recv", "/usr/lib/python3.11/multiprocessing/connection.py", 378);
    uint32_t boot = py(&p, "Thread._bootstrap", "/usr/lib/python3.11/threading.py", 995);
    uint32_t wait = py(&p, "Condition.wait", "/usr/lib/python3.11/threading.py", 320);
    uint32_t bare = py(&p, "wait", "/usr/lib/python3.8/threading.py", 302); /* 3.8 co_name */
    uint32_t sel = py(&p, "EpollSelector.select", "/usr/lib/python3.11/selectors.py", 468);
    uint32_t notjson = py(&p, "f", "/app/jsonish.py", 1);
    uint32_t s_tok = stack2(&p, main_, tok);
    uint32_t s_lin = profile_push(&p, stack2(&p, main_, fwd), lin);
    uint32_t s_dumps = profile_push(&p, s_lin, dumps); /* innermost wins: serialize */
    uint32_t s_recv = stack2(&p, main_, recv);
    uint32_t s_boot = profile_push(&p, 0, boot);
    uint32_t s_wait = profile_push(&p, s_boot, wait);
    uint32_t s_bare = profile_push(&p, s_boot, bare);
    uint32_t s_sel = stack2(&p, main_, sel);
    uint32_t s_not = stack2(&p, main_, notjson);
    uint32_t s_mm = stack2(&p, main_, main_);
    struct stage_rules r;
    stage_rules_init(&r);
    uint32_t *st = stage_classify(&r, &p, NULL);
    CHECK(st[s_tok] == stage_id(&r, "tokenize"), "tokenize");
    CHECK(st[s_lin] == stage_id(&r, "model"), "torch");
    CHECK(st[s_dumps] == stage_id(&r, "serialize"), "json inside the model is serialize");
    CHECK(st[s_recv] == stage_id(&r, "ipc"), "multiprocessing transport");
    CHECK(st[s_boot] == STAGE_OTHER, "thread bootstrap is not a wait");
    CHECK(st[s_wait] == stage_id(&r, "queue-wait") && st[s_bare] == st[s_wait], "waits");
    CHECK(st[s_sel] == stage_id(&r, "io-wait"), "selector");
    CHECK(st[s_not] == STAGE_OTHER, "jsonish.py is not the json module");
    CHECK(st[s_mm] == STAGE_OTHER, "unmatched stays other");
    free(st);
    /* User rules come first and redefine types. */
    const char *user = "# mine\n"
                       "stage decode serialization\n"
                       "match decode call model Net.*   \n"
                       "\n"
                       "match other module json\n";
    struct errbuf eb = {{0}};
    CHECK(stage_rules_parse(&r, user, strlen(user), "u.rules", &eb) == 0, "%s", eb.msg);
    st = stage_classify(&r, &p, NULL);
    CHECK(st[s_lin] == stage_id(&r, "model"), "inner torch frame still model");
    CHECK(st[stack2(&p, main_, fwd)] == stage_id(&r, "decode"), "user call rule");
    CHECK(st[s_dumps] == STAGE_OTHER, "user rule maps json to other");
    CHECK(r.stages[stage_id(&r, "decode")].run_type == BT_SERIAL, "type");
    free(st);
    static const char *const bad[] = {"match x nonsense y\n", "stage x fast\n", "match x\n",
                                      "frobnicate\n", "match x call onlymodule\n"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        size_t before = r.nrules;
        CHECK(stage_rules_parse(&r, bad[i], strlen(bad[i]), "bad.rules", &eb) == ERR_ARG,
              "bad %zu accepted", i);
        CHECK(strncmp(eb.msg, "bad.rules:1: ", 13) == 0, "message %s", eb.msg);
        CHECK(r.nrules == before, "nothing added");
    }
    CHECK(stage_rules_load(&r, "/nonexistent/rules", &eb) == ERR_IO, "missing file");
    CHECK(stage_rules_load(&r, "/tmp", &eb) == ERR_IO && strstr(eb.msg, "directory"), "%s", eb.msg);
    stage_rules_fini(&r);
    profile_fini(&p);
    return 0;
}

static int test_wilson(void)
{
    double lo, hi;
    verdict_wilson(50, 100, &lo, &hi);
    CHECK(fabs(lo - 0.4038) < 1e-3 && fabs(hi - 0.5962) < 1e-3, "50/100: %f %f", lo, hi);
    verdict_wilson(0, 10, &lo, &hi);
    CHECK(lo == 0 && fabs(hi - 0.2775) < 1e-3, "0/10: %f", hi);
    verdict_wilson(10, 10, &lo, &hi);
    CHECK(hi == 1 && fabs(lo - 0.7225) < 1e-3, "10/10: %f", lo);
    verdict_wilson(0, 0, &lo, &hi);
    CHECK(lo == 0 && hi == 1, "no data");
    return 0;
}

/* Adds `n` samples of `stack` with category `cat` (counts only). */
static void add_n(struct profile *p, uint32_t stack, uint8_t cat, uint16_t n)
{
    profile_add(p, &(struct psample){.stack = stack, .cat = cat, .weight = n});
}

static int test_counts_only_verdicts(void)
{
    struct profile p;
    profile_init(&p);
    uint32_t main_ = py(&p, "main", "/app/run.py", 3);
    uint32_t tok = py(&p, "tokenize", "/app/run.py", 10);
    uint32_t svd = py(&p, "svd", "/usr/lib/python3/dist-packages/numpy/linalg/linalg.py", 1642);
    uint32_t s_tok = stack2(&p, main_, tok), s_svd = stack2(&p, main_, svd);
    add_n(&p, s_tok, CAT_NONE, 800);
    add_n(&p, s_svd, CAT_NONE, 200);
    struct analysis a;
    analysis_run(&a, &p, NULL);
    CHECK(!a.per_tick && a.wall == 1000, "counts: wall %f", a.wall);
    CHECK(a.has_verdict && a.verdict.type == BT_HOST, "host");
    CHECK(strcmp(a.stage_names[a.verdict.stage], "tokenize") == 0, "stage");
    CHECK(fabs(a.verdict.s.p - 0.8) < 1e-9 && a.verdict.s.lo < 0.8 && a.verdict.s.hi > 0.8,
          "share");
    CHECK(!a.has_second, "0.2 is not close to 0.8");
    CHECK(a.nbehind >= 1 && a.behind[0].frame == tok, "behind it: tokenize");
    CHECK(a.nfuncs == 3 && a.funcs[0].frame == tok && a.funcs[0].self == 800, "hottest");
    CHECK(a.funcs[1].total == 1000 || a.funcs[2].total == 1000, "main's total");
    CHECK(strcmp(stage_of(&a, s_svd), "model") == 0, "svd");
    analysis_fini(&a);
    /* Two types at 50%: a verdict with a close second. */
    add_n(&p, s_svd, CAT_NONE, 600);
    analysis_run(&a, &p, NULL);
    CHECK(a.has_verdict && a.has_second, "close second");
    CHECK(a.verdict.type != a.second.type && a.second.s.p == 0.5, "second");
    analysis_fini(&a);
    /* Three types at a third each: no verdict; the reason names the largest type. */
    uint32_t dumps = py(&p, "dumps", "/usr/lib/python3.11/json/__init__.py", 231);
    add_n(&p, stack2(&p, main_, dumps), CAT_NONE, 800);
    analysis_run(&a, &p, NULL);
    CHECK(!a.has_verdict && strstr(a.reason, "no type of work holds 40%"), "%s", a.reason);
    analysis_fini(&a);
    profile_fini(&p);
    /* Too few samples. */
    profile_init(&p);
    add_n(&p, stack2(&p, py(&p, "a", "/a.py", 1), py(&p, "b", "/a.py", 2)), CAT_NONE, 20);
    analysis_run(&a, &p, NULL);
    CHECK(!a.has_verdict && strstr(a.reason, "too few samples"), "%s", a.reason);
    analysis_fini(&a);
    profile_fini(&p);
    return 0;
}

static int test_categories_and_gil(void)
{
    struct profile p;
    profile_init(&p);
    p.meta.categories = true;
    uint32_t main_ = py(&p, "main", "/app/run.py", 3);
    uint32_t work = py(&p, "work", "/app/run.py", 9);
    uint32_t s = stack2(&p, main_, work);
    add_n(&p, s, CAT_GIL, 700);
    add_n(&p, s, CAT_PYTHON, 300);
    struct analysis a;
    analysis_run(&a, &p, NULL);
    CHECK(a.has_verdict && a.verdict.type == BT_GIL, "gil bound, got %s",
          btype_name(a.verdict.type));
    CHECK(a.funcs[0].cat[CAT_GIL] == 700 && a.funcs[0].cat[CAT_PYTHON] == 300, "split");
    analysis_fini(&a);
    /* Waiting off CPU in unnamed code is not a bottleneck type. */
    add_n(&p, s, CAT_SYSTEM, 5000);
    analysis_run(&a, &p, NULL);
    CHECK(!a.has_verdict && a.type[BT_NONE].p > 0.8, "sleeping: %s", a.reason);
    analysis_fini(&a);
    profile_fini(&p);
    return 0;
}

/* Kept samples: one unit of wall time per tick and process, split among the threads doing
 * something; a parked thread's wait does not count while another thread works. */
static int test_per_tick_weights(void)
{
    struct profile p;
    profile_init(&p);
    p.keep_samples = true;
    uint32_t main_ = py(&p, "main", "/app/run.py", 3);
    uint32_t dumps = py(&p, "dumps", "/usr/lib/python3.11/pickle.py", 1);
    uint32_t wait = py(&p, "Condition.wait", "/usr/lib/python3.11/threading.py", 320);
    uint32_t s_work = stack2(&p, main_, dumps), s_wait = stack2(&p, main_, wait);
    uint32_t tag = profile_str(&p, "llm-call", 8);
    for (uint64_t t = 0; t < 400; t++) {
        /* main works 3 ticks of 4 and waits on the 4th; a helper thread always waits. */
        bool working = t % 4 != 3;
        profile_add(&p, &(struct psample){.t_ns = t * 1000000,
                                          .stack = working ? s_work : s_wait,
                                          .tid = 1,
                                          .pid = 9,
                                          .state = working ? TSTATE_RUNNING : TSTATE_IDLE});
        profile_add(&p, &(struct psample){.t_ns = t * 1000000,
                                          .stack = s_wait,
                                          .tid = 2,
                                          .pid = 9,
                                          .state = TSTATE_IDLE,
                                          .stage = t % 8 == 7 ? tag : 0});
    }
    struct analysis a;
    analysis_run(&a, &p, NULL);
    CHECK(a.per_tick && fabs(a.wall - 400) < 1e-9, "wall %f", a.wall);
    CHECK(a.has_verdict && a.verdict.type == BT_SERIAL, "serialization");
    CHECK(fabs(a.verdict.s.p - 0.75) < 1e-9, "share %f", a.verdict.s.p);
    CHECK(fabs(a.type[BT_QUEUE].p - 0.25) < 1e-9, "waits share %f", a.type[BT_QUEUE].p);
    CHECK(fabs(a.stage[a.nstages - 1].p - 25.0 / 400) < 1e-9, "tagged share");
    CHECK(strcmp(a.stage_names[a.nstages - 1], "llm-call") == 0, "tag became a stage");
    CHECK(a.nthreads == 2 && a.threads[0].tid == 1 && a.threads[0].samples == 400, "threads");
    CHECK(a.threads[0].running == 300 && a.threads[1].idle == 400, "states");
    CHECK(strcmp(a.stage_names[a.threads[0].top_stage], "serialize") == 0, "top stage");
    analysis_fini(&a);
    profile_fini(&p);
    return 0;
}

/* record --async: suspended tasks' samples (SAMPLE_TASK, idle, weighted by the tasks sharing
 * a stack) are wall time per task, not the thread's: the verdict and the thread's states are
 * those of test_per_tick_weights' main thread alone, however many tasks wait. */
static int test_task_samples_left_out(void)
{
    struct profile p;
    profile_init(&p);
    p.keep_samples = true;
    uint32_t main_ = py(&p, "main", "/app/run.py", 3);
    uint32_t dumps = py(&p, "dumps", "/usr/lib/python3.11/pickle.py", 1);
    uint32_t sleep = py(&p, "sleep", "/usr/lib/python3.11/asyncio/tasks.py", 665);
    uint32_t s_work = stack2(&p, main_, dumps), s_task = stack2(&p, main_, sleep);
    for (uint64_t t = 0; t < 400; t++) {
        profile_add(
            &p,
            &(struct psample){
                .t_ns = t * 1000000, .stack = s_work, .tid = 1, .pid = 9, .state = TSTATE_RUNNING});
        profile_add(&p, &(struct psample){.t_ns = t * 1000000,
                                          .stack = s_task,
                                          .tid = 1,
                                          .pid = 9,
                                          .state = TSTATE_IDLE,
                                          .flags = SAMPLE_TASK,
                                          .weight = 1000});
    }
    struct analysis a;
    analysis_run(&a, &p, NULL);
    CHECK(a.has_verdict && a.verdict.type == BT_SERIAL, "serialization, type %d", a.verdict.type);
    CHECK(fabs(a.verdict.s.p - 1.0) < 1e-9, "share %f", a.verdict.s.p);
    CHECK(a.nthreads == 1 && a.threads[0].samples == 400 && a.threads[0].idle == 0, "thread");
    analysis_fini(&a);
    profile_fini(&p);
    return 0;
}

/* record --load: a server that waits in select() for new requests 70% of the time and runs
 * its model the rest. The ticks with no request in flight are left out: the verdict is the
 * model, not the wait for requests, and the summary says how much was left out. */
static int test_no_request_ticks(void)
{
    struct profile p;
    profile_init(&p);
    p.keep_samples = true;
    uint32_t serve = py(&p, "BaseServer.serve_forever", "/usr/lib/python3.11/socketserver.py", 233);
    uint32_t sel = py(&p, "_PollLikeSelector.select", "/usr/lib/python3.11/selectors.py", 415);
    uint32_t fwd =
        py(&p, "Module.forward", "/usr/lib/python3/dist-packages/torch/nn/modules/x.py", 9);
    uint32_t s_wait = stack2(&p, serve, sel), s_model = stack2(&p, serve, fwd);
    for (uint64_t t = 0; t < 1000; t++) {
        bool busy = t % 10 < 3;
        profile_add(&p, &(struct psample){.t_ns = t * 1000000,
                                          .stack = busy ? s_model : s_wait,
                                          .tid = 1,
                                          .pid = 9,
                                          .state = busy ? TSTATE_RUNNING : TSTATE_IDLE,
                                          .flags = busy ? 0 : SAMPLE_NO_REQUEST});
    }
    struct analysis a;
    analysis_run(&a, &p, NULL);
    CHECK(fabs(a.wall - 300) < 1e-9 && fabs(a.no_request - 700) < 1e-9, "wall %f left out %f",
          a.wall, a.no_request);
    CHECK(a.has_verdict && a.verdict.type == BT_MODEL && a.verdict.s.p == 1.0, "model %s",
          a.reason);
    CHECK(a.nthreads == 1 && a.threads[0].samples == 1000, "the thread table keeps every tick");
    char *text = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&text, &len);
    verdict_print(&p, &a, f);
    fclose(f);
    CHECK(strstr(text, "scope: 300 ticks with requests in flight; the 70% of the recording") !=
              NULL,
          "%s", text);
    free(text);
    analysis_fini(&a);
    /* Without the flag (no --load) the same run is waiting for I/O. */
    for (size_t i = 0; i < p.nsamples; i++)
        p.samples[i].flags = 0;
    analysis_run(&a, &p, NULL);
    CHECK(a.no_request == 0 && a.has_verdict && a.verdict.type == BT_IO, "io %s", a.reason);
    analysis_fini(&a);
    profile_fini(&p);
    return 0;
}

/* Kept samples of two processes in one round share the tick: a child waiting for work
 * while the parent serializes is not what the job waits for. */
static int test_per_tick_processes(void)
{
    struct profile p;
    profile_init(&p);
    p.keep_samples = true;
    p.meta.pid = 10;
    uint32_t main_ = py(&p, "main", "/app/run.py", 3);
    uint32_t loads = py(&p, "loads", "/usr/lib/python3.11/json/__init__.py", 346);
    uint32_t recv =
        py(&p, "Connection._recv", "/usr/lib/python3.11/multiprocessing/connection.py", 378);
    uint32_t s_work = stack2(&p, main_, loads), s_wait = stack2(&p, main_, recv);
    for (uint64_t t = 0; t < 200; t++) {
        profile_add(
            &p, &(struct psample){.t_ns = t, .stack = s_work, .tid = 10, .pid = 10, .state = 1});
        profile_add(
            &p, &(struct psample){.t_ns = t, .stack = s_wait, .tid = 11, .pid = 11, .state = 2});
    }
    struct analysis a;
    analysis_run(&a, &p, NULL);
    CHECK(a.wall == 200 && a.has_verdict && a.verdict.type == BT_SERIAL && a.verdict.s.p == 1.0,
          "serialization %f", a.verdict.s.p);
    analysis_fini(&a);
    profile_fini(&p);
    /* The same from counts, with process frames at the root (record --subprocesses). */
    profile_init(&p);
    p.meta.pid = 10;
    uint32_t pr10 = profile_frame(&p, profile_str(&p, "python3", 7), 0, 10, FRAME_PROCESS);
    uint32_t pr11 = profile_frame(&p, profile_str(&p, "python3", 7), 0, 11, FRAME_PROCESS);
    main_ = py(&p, "main", "/app/run.py", 3);
    loads = py(&p, "loads", "/usr/lib/python3.11/json/__init__.py", 346);
    recv = py(&p, "Connection._recv", "/usr/lib/python3.11/multiprocessing/connection.py", 378);
    add_n(&p, profile_stack(&p, (uint32_t[]){pr10, main_, loads}, 3), CAT_PYTHON, 200);
    add_n(&p, profile_stack(&p, (uint32_t[]){pr11, main_, recv}, 3), CAT_SYSTEM, 200);
    add_n(&p, profile_stack(&p, (uint32_t[]){pr10, main_, recv}, 3), CAT_SYSTEM, 50);
    analysis_run(&a, &p, NULL);
    CHECK(a.wall == 250 && a.verdict.type == BT_SERIAL && a.verdict.s.p == 0.8,
          "child's wait left out, parent's kept: %f %f", a.wall, a.verdict.s.p);
    analysis_fini(&a);
    profile_fini(&p);
    return 0;
}

/* Counts only: a non-main thread parked in a wait is left out of wall time. */
static int test_counts_parked_thread(void)
{
    struct profile p;
    profile_init(&p);
    uint32_t main_ = py(&p, "main", "/app/run.py", 3);
    uint32_t dumps = py(&p, "dumps", "/usr/lib/python3.11/json/__init__.py", 231);
    uint32_t boot = py(&p, "Thread._bootstrap", "/usr/lib/python3.11/threading.py", 995);
    uint32_t wait = py(&p, "Condition.wait", "/usr/lib/python3.11/threading.py", 320);
    add_n(&p, stack2(&p, main_, dumps), CAT_NONE, 500);
    add_n(&p, stack2(&p, boot, wait), CAT_NONE, 500);
    struct analysis a;
    analysis_run(&a, &p, NULL);
    CHECK(a.wall == 500 && a.samples == 1000, "wall %f", a.wall);
    CHECK(a.has_verdict && a.verdict.type == BT_SERIAL && a.verdict.s.p == 1.0, "serial");
    analysis_fini(&a);
    profile_fini(&p);
    return 0;
}

/* A CUDA device in use while the host dominates: the GPU waits on the host. */
static int test_gpu_underused(void)
{
    struct profile p;
    profile_init(&p);
    uint32_t main_ = py(&p, "main", "/app/train.py", 3);
    uint32_t load = py(&p, "load_batch", "/app/train.py", 30);
    uint32_t cuda = py(&p, "Stream.synchronize", "/x/site-packages/torch/cuda/streams.py", 90);
    add_n(&p, stack2(&p, main_, load), CAT_NONE, 900);
    add_n(&p, stack2(&p, main_, cuda), CAT_NONE, 100);
    struct analysis a;
    analysis_run(&a, &p, NULL);
    CHECK(a.gpu_present && a.has_verdict && a.verdict.type == BT_GPU, "gpu: %s",
          btype_name(a.verdict.type));
    CHECK(strstr(a.reason, "GPU waits on the host"), "%s", a.reason);
    CHECK(strcmp(stage_of(&a, stack2(&p, main_, cuda)), "gpu-sync") == 0, "sync stage");
    analysis_fini(&a);
    profile_fini(&p);
    return 0;
}

static int test_summary_and_formats(void)
{
    struct profile p;
    profile_init(&p);
    uint32_t main_ = py(&p, "main", "/app/run.py", 3);
    uint32_t sel = py(&p, "EpollSelector.select", "/usr/lib/python3.11/selectors.py", 468);
    uint32_t tok = py(&p, "encode", "/x/site-packages/tiktoken/core.py", 5);
    add_n(&p, stack2(&p, main_, sel), CAT_NONE, 550);
    add_n(&p, stack2(&p, main_, tok), CAT_NONE, 450);
    char *text = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&text, &len);
    verdict_print_summary(&p, NULL, f);
    fclose(f);
    CHECK(strncmp(text, "crux verdict: I/O or network bound: 55% of wall time", 52) == 0, "%s",
          text);
    CHECK(strstr(text, "close second: host bound"), "second candidate: %s", text);
    CHECK(strstr(text, "stages: io-wait 55.0%, tokenize 45.0%"), "stages: %s", text);
    CHECK(strstr(text,
                 "functions (self, wall): EpollSelector.select (python3.11/selectors.py) 55.0%"),
          "functions: %s", text);
    free(text);
    struct buf out;
    buf_init(&out, 0);
    CHECK(export_write(&p, EXPORT_VERDICT, NULL, &out, NULL) == 0, "verdict json");
    CHECK(strstr(buf_cstr(&out), "\"verdict\":{\"type\":\"io\""), "%s", buf_cstr(&out));
    buf_reset(&out);
    CHECK(export_write(&p, EXPORT_HTML, NULL, &out, NULL) == 0, "report");
    CHECK(strstr(buf_cstr(&out), "<h2 id=\"verdict-title\">Bottleneck: I/O or network bound"),
          "verdict at the top");
    CHECK(strstr(buf_cstr(&out), "\"node_stage\":["), "node stages");
    buf_reset(&out);
    CHECK(export_write(&p, EXPORT_FLAMEGRAPH, NULL, &out, NULL) == 0, "plain flame graph");
    CHECK(!strstr(buf_cstr(&out), "verdict"), "no report in the plain flame graph");
    buf_fini(&out);
    profile_fini(&p);
    return 0;
}

/* One tick of a thread: kept sample with a state, a category and a piece of evidence. */
static void tick(struct profile *p, uint64_t t, uint32_t tid, uint32_t stack, bool running,
                 uint8_t cat, enum ev_kind kind, const char *label)
{
    profile_add(p, &(struct psample){.t_ns = t * 1000000,
                                     .stack = stack,
                                     .tid = tid,
                                     .pid = 9,
                                     .state = running ? TSTATE_RUNNING : TSTATE_IDLE,
                                     .cat = cat,
                                     .ev = kind != EV_NONE ? profile_evidence(p, kind, label) : 0});
}

static const char *ev_label(const struct profile *p, const struct candidate *c)
{
    return c->ev ? profile_string(p, p->evs[c->ev - 1].label) : "";
}

/* The kernel's evidence decides the type: BLAS under a function named *chunk* is model
 * compute in the model stage (the name rule said text-split, host); pure Python under a
 * function named *embed* is host, not model. */
static int test_evidence_over_names(void)
{
    struct profile p;
    profile_init(&p);
    p.keep_samples = true;
    uint32_t main_ = py(&p, "main", "/app/run.py", 3);
    uint32_t chunk = py(&p, "embed_chunk", "/app/run.py", 10);
    uint32_t s_chunk = stack2(&p, main_, chunk);
    for (uint64_t t = 0; t < 300; t++)
        tick(&p, t, 1, s_chunk, true, CAT_NATIVE, EV_CPU_MODEL, "libopenblasp-r0.3.21.so");
    struct analysis a;
    analysis_run(&a, &p, NULL);
    CHECK(a.has_verdict && a.verdict.type == BT_MODEL, "model, got %d", a.verdict.type);
    CHECK(strcmp(a.stage_names[a.verdict.stage], "model") == 0, "stage %s",
          a.stage_names[a.verdict.stage]);
    CHECK(strcmp(ev_label(&p, &a.verdict), "libopenblasp-r0.3.21.so") == 0 &&
              fabs(a.verdict.ev_share - 1) < 1e-9,
          "evidence %s %f", ev_label(&p, &a.verdict), a.verdict.ev_share);
    analysis_fini(&a);
    profile_fini(&p);

    profile_init(&p);
    p.keep_samples = true;
    main_ = py(&p, "main", "/app/run.py", 3);
    uint32_t shard = py(&p, "embed_shard", "/app/run.py", 10);
    uint32_t s_shard = stack2(&p, main_, shard);
    for (uint64_t t = 0; t < 300; t++)
        tick(&p, t, 1, s_shard, true, CAT_PYTHON, EV_CPU_PYTHON, "libpython3.11.so.1.0");
    analysis_run(&a, &p, NULL);
    CHECK(a.has_verdict && a.verdict.type == BT_HOST, "host, got %d", a.verdict.type);
    CHECK(strcmp(a.stage_names[a.verdict.stage], "other") == 0, "stage %s",
          a.stage_names[a.verdict.stage]);
    analysis_fini(&a);
    profile_fini(&p);
    return 0;
}

/* On-CPU time is never a wait: callbacks run under asyncio's _run_once (an io-wait rule) on
 * CPU are host; the loop's epoll on a socket is I/O. */
static int test_cpu_is_never_waiting(void)
{
    struct profile p;
    profile_init(&p);
    p.keep_samples = true;
    uint32_t run =
        py(&p, "BaseEventLoop._run_once", "/usr/lib/python3.11/asyncio/base_events.py", 1922);
    uint32_t cb = py(&p, "handle", "/app/srv.py", 8);
    uint32_t sel = py(&p, "EpollSelector.select", "/usr/lib/python3.11/selectors.py", 468);
    uint32_t s_cb = stack2(&p, run, cb), s_sel = stack2(&p, run, sel);
    for (uint64_t t = 0; t < 400; t++) {
        bool cpu = t % 2 == 0;
        tick(&p, t, 1, cpu ? s_cb : s_sel, cpu, cpu ? CAT_PYTHON : CAT_SYSTEM,
             cpu ? EV_CPU_PYTHON : EV_WAIT_NET, cpu ? "python3.11" : "epoll_wait: TCP/UDP socket");
    }
    struct analysis a;
    analysis_run(&a, &p, NULL);
    CHECK(fabs(a.type[BT_HOST].p - 0.5) < 1e-9 && fabs(a.type[BT_IO].p - 0.5) < 1e-9,
          "host %f io %f", a.type[BT_HOST].p, a.type[BT_IO].p);
    CHECK(a.has_second && (a.verdict.type == BT_HOST || a.verdict.type == BT_IO),
          "a close call between host and io: %d", a.verdict.type);
    analysis_fini(&a);
    profile_fini(&p);
    return 0;
}

/* Four equal kinds of work (Python, BLAS, JSON, socket waits): no clear bottleneck, and the
 * reason lists the four shares. */
static int test_balanced_mix(void)
{
    struct profile p;
    profile_init(&p);
    p.keep_samples = true;
    uint32_t main_ = py(&p, "main", "/app/run.py", 3);
    uint32_t f = py(&p, "step", "/app/run.py", 9);
    uint32_t s = stack2(&p, main_, f);
    for (uint64_t t = 0; t < 800; t++) {
        switch (t % 4) {
        case 0:
            tick(&p, t, 1, s, true, CAT_PYTHON, EV_CPU_PYTHON, "python3.11");
            break;
        case 1:
            tick(&p, t, 1, s, true, CAT_NATIVE, EV_CPU_MODEL, "libopenblas.so.0");
            break;
        case 2:
            tick(&p, t, 1, s, true, CAT_NATIVE, EV_CPU_SERIAL, "_json.cpython-311.so");
            break;
        default:
            tick(&p, t, 1, s, false, CAT_SYSTEM, EV_WAIT_NET, "recv: TCP/UDP socket");
            break;
        }
    }
    struct analysis a;
    analysis_run(&a, &p, NULL);
    CHECK(!a.has_verdict, "no verdict");
    CHECK(strstr(a.reason, "host 25%") && strstr(a.reason, "model 25%") &&
              strstr(a.reason, "serialization 25%") && strstr(a.reason, "io 25%"),
          "%s", a.reason);
    analysis_fini(&a);
    profile_fini(&p);
    return 0;
}

/* A heartbeat thread sleeping all the time: never what the program waits for (the main
 * thread's socket wait gets the idle ticks), never at the top of the functions, listed apart;
 * a program that only sleeps has no bottleneck. */
static int test_sleep_is_apart(void)
{
    struct profile p;
    profile_init(&p);
    p.keep_samples = true;
    uint32_t main_ = py(&p, "main", "/app/run.py", 3);
    uint32_t work = py(&p, "work", "/app/run.py", 9);
    uint32_t recv = py(&p, "fetch", "/app/run.py", 20);
    uint32_t beat = py(&p, "heartbeat", "/app/run.py", 30);
    uint32_t s_work = stack2(&p, main_, work), s_recv = stack2(&p, main_, recv);
    uint32_t s_beat = stack2(&p, main_, beat);
    for (uint64_t t = 0; t < 400; t++) {
        bool cpu = t % 4 == 0;
        tick(&p, t, 1, cpu ? s_work : s_recv, cpu, cpu ? CAT_PYTHON : CAT_SYSTEM,
             cpu ? EV_CPU_PYTHON : EV_WAIT_NET, cpu ? "python3.11" : "recv: TCP/UDP socket");
        tick(&p, t, 2, s_beat, false, CAT_SYSTEM, EV_WAIT_SLEEP, "clock_nanosleep");
    }
    struct analysis a;
    analysis_run(&a, &p, NULL);
    CHECK(a.has_verdict && a.verdict.type == BT_IO && fabs(a.verdict.s.p - 0.75) < 1e-9,
          "io 75%%: %d %f", a.verdict.type, a.verdict.s.p);
    CHECK(a.type[BT_SLEEP].w == 0, "the heartbeat's sleep gets no wall time");
    const struct pframe *top = profile_frame_at(&p, a.funcs[0].frame);
    CHECK(strcmp(profile_string(&p, top->name), "fetch") == 0, "top function %s",
          profile_string(&p, top->name));
    CHECK(a.nasleep == 1 && a.asleep[0].self == 400, "heartbeat listed apart");
    analysis_fini(&a);
    profile_fini(&p);

    profile_init(&p);
    p.keep_samples = true;
    main_ = py(&p, "main", "/app/run.py", 3);
    work = py(&p, "work", "/app/run.py", 9);
    uint32_t nap = py(&p, "nap", "/app/run.py", 12);
    s_work = stack2(&p, main_, work);
    uint32_t s_nap = stack2(&p, main_, nap);
    for (uint64_t t = 0; t < 400; t++) {
        bool cpu = t % 10 == 0;
        tick(&p, t, 1, cpu ? s_work : s_nap, cpu, cpu ? CAT_PYTHON : CAT_SYSTEM,
             cpu ? EV_CPU_PYTHON : EV_WAIT_SLEEP, cpu ? "python3.11" : "clock_nanosleep");
    }
    analysis_run(&a, &p, NULL);
    CHECK(!a.has_verdict && strstr(a.reason, "90% of wall time is deliberate sleep"), "%s",
          a.reason);
    analysis_fini(&a);
    profile_fini(&p);
    return 0;
}

/* Idle samples are kept for the verdict but left out of the views unless --idle. */
static int test_hidden_idle(void)
{
    struct profile p;
    profile_init(&p);
    p.keep_samples = true;
    p.hide_idle = true;
    uint32_t main_ = py(&p, "main", "/app/run.py", 3);
    uint32_t recv = py(&p, "fetch", "/app/run.py", 20);
    uint32_t s_recv = stack2(&p, main_, recv);
    for (uint64_t t = 0; t < 100; t++)
        tick(&p, t, 1, s_recv, false, CAT_SYSTEM, EV_WAIT_NET, "recv: TCP/UDP socket");
    CHECK(p.total == 0 && p.counts[s_recv] == 0 && p.nsamples == 100, "hidden from the views");
    struct analysis a;
    analysis_run(&a, &p, NULL);
    CHECK(a.per_tick && a.has_verdict && a.verdict.type == BT_IO, "the verdict sees them");
    analysis_fini(&a);
    profile_fini(&p);
    return 0;
}

int main(void)
{
    RUN(test_builtin_rules_parse);
    RUN(test_many_stages);
    RUN(test_classify);
    RUN(test_wilson);
    RUN(test_counts_only_verdicts);
    RUN(test_categories_and_gil);
    RUN(test_per_tick_weights);
    RUN(test_per_tick_processes);
    RUN(test_no_request_ticks);
    RUN(test_task_samples_left_out);
    RUN(test_counts_parked_thread);
    RUN(test_gpu_underused);
    RUN(test_summary_and_formats);
    RUN(test_evidence_over_names);
    RUN(test_cpu_is_never_waiting);
    RUN(test_balanced_mix);
    RUN(test_sleep_is_apart);
    RUN(test_hidden_idle);
    return TEST_SUMMARY("analysis");
}
