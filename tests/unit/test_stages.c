// SPDX-License-Identifier: MIT
// Unit tests for stages/: the ring reader against hand-written and garbage ring files, the
// statistics against a sorted-array oracle, and the OTLP/JSON import.
#include <fcntl.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "agent/agentshm.h"
#include "check.h"
#include "stages/otlp.h"
#include "stages/ring.h"
#include "stages/ringset.h"
#include "stages/stagestats.h"
#include "util/buf.h"
#include "util/xalloc.h"

#define NREC 64u

/* A ring file in memory, laid out as the agent lays it out. */
struct fakering {
    unsigned char *mem;
    size_t size;
    struct agentshm_hdr *h;
    struct agentshm_name *names;
    struct agentshm_rec *recs;
};

static void fake_init(struct fakering *f)
{
    uint64_t names_off = AGENTSHM_HDR_SIZE;
    uint64_t slots_off = names_off + AGENTSHM_NAMES * sizeof(struct agentshm_name);
    uint64_t recs_off = slots_off + AGENTSHM_SLOTS * sizeof(struct agentshm_slot);
    f->size = recs_off + NREC * sizeof(struct agentshm_rec);
    f->mem = xcalloc(1, f->size);
    f->h = (struct agentshm_hdr *)f->mem;
    memcpy(f->h->magic, AGENTSHM_MAGIC, 8);
    f->h->version = AGENTSHM_VERSION;
    f->h->hdr_size = AGENTSHM_HDR_SIZE;
    f->h->rec_size = sizeof(struct agentshm_rec);
    f->h->rec_count = NREC;
    f->h->name_size = sizeof(struct agentshm_name);
    f->h->name_count = AGENTSHM_NAMES;
    f->h->slot_size = sizeof(struct agentshm_slot);
    f->h->slot_count = AGENTSHM_SLOTS;
    f->h->names_off = names_off;
    f->h->slots_off = slots_off;
    f->h->recs_off = recs_off;
    f->h->total_size = f->size;
    f->h->pid = 4242;
    f->h->names_used = 1;
    f->names = (struct agentshm_name *)(f->mem + names_off);
    f->recs = (struct agentshm_rec *)(f->mem + recs_off);
}

static uint32_t fake_name(struct fakering *f, const char *s)
{
    uint32_t id = f->h->names_used++;
    f->names[id].len = (uint32_t)strlen(s);
    memcpy(f->names[id].text, s, strlen(s));
    f->names[id].state = AGENTSHM_NAME_READY;
    return id;
}

static void fake_rec(struct fakering *f, uint32_t kind, uint32_t name, uint64_t req, uint64_t start,
                     uint64_t end)
{
    uint64_t idx = f->h->write_idx++;
    struct agentshm_rec *r = &f->recs[idx % NREC];
    r->request = req;
    r->start_ns = start;
    r->end_ns = end;
    r->tid = 7;
    r->name = name;
    r->kind = kind;
    r->seq = idx + 1;
}

static int fake_write(const struct fakering *f, const char *path, size_t size)
{
    FILE *fp = fopen(path, "wb");
    if (!fp)
        return -1;
    size_t n = fwrite(f->mem, 1, size, fp);
    fclose(fp);
    return n == size ? 0 : -1;
}

static char tmp_path[64];

static const char *tmpfile_path(void)
{
    snprintf(tmp_path, sizeof(tmp_path), "/tmp/crux-test-ring-%d", (int)getpid());
    return tmp_path;
}

static int test_ring_reads_records(void)
{
    struct fakering f;
    fake_init(&f);
    uint32_t parse = fake_name(&f, "parse"), model = fake_name(&f, "model");
    fake_rec(&f, AGENTSHM_REQUEST, 0, 5, 100, 900);
    fake_rec(&f, AGENTSHM_STAGE, parse, 5, 100, 300);
    fake_rec(&f, AGENTSHM_STAGE, model, 5, 300, 900);
    const char *path = tmpfile_path();
    CHECK(fake_write(&f, path, f.size) == 0, "write %s", path);
    struct stagering r;
    struct errbuf eb = {""};
    CHECK(stagering_open_path(&r, path, 4242, &eb) == 0, "open: %s", eb.msg);
    struct stage_span out[8];
    size_t n = stagering_drain(&r, out, 8);
    CHECK(n == 3, "3 records, got %zu", n);
    CHECK(out[0].kind == STAGE_REQUEST && strcmp(out[0].name, "") == 0, "request first");
    CHECK(strcmp(out[1].name, "parse") == 0 && out[1].end_ns == 300, "parse %s", out[1].name);
    CHECK(strcmp(out[2].name, "model") == 0 && out[2].request == 5, "model");
    CHECK(stagering_drain(&r, out, 8) == 0, "nothing new");
    /* The reader set the attached flag; closing clears it. */
    struct agentshm_hdr h;
    int fd = open(path, O_RDONLY);
    CHECK(fd >= 0 && pread(fd, &h, sizeof(h), 0) == (ssize_t)sizeof(h), "reread header");
    CHECK(h.attached == 1, "attached while open");
    stagering_close(&r);
    CHECK(pread(fd, &h, sizeof(h), 0) == (ssize_t)sizeof(h) && h.attached == 0, "detached");
    close(fd);
    /* The wrong pid is refused. */
    CHECK(stagering_open_path(&r, path, 99, &eb) == ERR_CORRUPT, "pid mismatch");
    unlink(path);
    free(f.mem);
    return 0;
}

static int test_ring_wrap_and_bad_records(void)
{
    struct fakering f;
    fake_init(&f);
    uint32_t s = fake_name(&f, "s");
    for (uint32_t i = 0; i < NREC + 10; i++)
        fake_rec(&f, AGENTSHM_STAGE, s, 1, i, i + 1);
    /* Three records at the end fail validation: a bad kind, a name past the table and an
     * end before the start; one more is unpublished. */
    f.recs[(NREC + 6) % NREC].kind = 99;
    f.recs[(NREC + 7) % NREC].name = 100000;
    f.recs[(NREC + 8) % NREC].end_ns = 0;
    f.recs[(NREC + 9) % NREC].seq = 0;
    const char *path = tmpfile_path();
    CHECK(fake_write(&f, path, f.size) == 0, "write");
    struct stagering r;
    struct errbuf eb = {""};
    CHECK(stagering_open_path(&r, path, 0, &eb) == 0, "open: %s", eb.msg);
    r.read_idx = 0; /* as if the reader had been attached from the start */
    struct stage_span out[NREC * 2];
    size_t n = stagering_drain(&r, out, NREC * 2);
    CHECK(r.lost == 10, "10 overwritten, got %llu", (unsigned long long)r.lost);
    CHECK(r.bad == 3, "3 bad, got %llu", (unsigned long long)r.bad);
    CHECK(n == NREC - 4, "%u good, got %zu", NREC - 4, n);
    CHECK(out[0].start_ns == 10, "oldest intact record first, got %llu",
          (unsigned long long)out[0].start_ns);
    /* The unpublished record holds the reader back a while, then is skipped. */
    for (int i = 0; i < 100 && r.read_idx < f.h->write_idx; i++)
        (void)stagering_drain(&r, out, NREC * 2);
    CHECK(r.read_idx == f.h->write_idx, "stalled record skipped");
    stagering_close(&r);
    unlink(path);
    free(f.mem);
    return 0;
}

static int expect_open_error(const struct fakering *f, size_t size, int want, const char *what)
{
    const char *path = tmpfile_path();
    CHECK(fake_write(f, path, size) == 0, "write");
    struct stagering r;
    struct errbuf eb = {""};
    int rc = stagering_open_path(&r, path, 0, &eb);
    unlink(path);
    CHECK(rc == want, "%s: want %d, got %d (%s)", what, want, rc, eb.msg);
    CHECK(eb.msg[0] != '\0', "%s: a message", what);
    return 0;
}

static int test_ring_garbage(void)
{
    struct fakering f;
    fake_init(&f);
    int fails = 0;
    fails += expect_open_error(&f, 100, ERR_CORRUPT, "short file");
    f.h->rec_count = 1u << 30;
    fails += expect_open_error(&f, f.size, ERR_CORRUPT, "huge rec_count");
    f.h->rec_count = NREC;
    f.h->recs_off = f.size - 8;
    fails += expect_open_error(&f, f.size, ERR_CORRUPT, "records past the end");
    f.h->recs_off = f.h->slots_off + AGENTSHM_SLOTS * sizeof(struct agentshm_slot);
    f.h->total_size = f.size * 2;
    fails += expect_open_error(&f, f.size, ERR_CORRUPT, "total beyond the file");
    f.h->total_size = f.size;
    f.h->version = 9;
    fails += expect_open_error(&f, f.size, ERR_VERSION, "version");
    f.h->version = AGENTSHM_VERSION;
    f.h->magic[0] = 'X';
    fails += expect_open_error(&f, f.size, ERR_CORRUPT, "magic");
    /* Random bytes. */
    srand(7);
    for (size_t i = 0; i < f.size; i++)
        f.mem[i] = (unsigned char)rand();
    fails += expect_open_error(&f, f.size, ERR_CORRUPT, "random bytes");
    free(f.mem);
    struct stagering r;
    struct errbuf eb = {""};
    CHECK(stagering_open_path(&r, "/nonexistent/ring", 0, &eb) == ERR_NOT_FOUND, "missing");
    CHECK(stagering_open(&r, 999999999, &eb) == ERR_NOT_FOUND, "no ring for pid");
    CHECK(strstr(eb.msg, "import crux") != NULL, "message names the fix: %s", eb.msg);
    return fails;
}

static int test_ring_garbage_records(void)
{
    /* A valid header over random tables and a random write index: no crash, bounded. */
    struct fakering f;
    fake_init(&f);
    srand(11);
    unsigned char *tables = f.mem + AGENTSHM_HDR_SIZE;
    for (size_t i = 0; i < f.size - AGENTSHM_HDR_SIZE; i++)
        tables[i] = (unsigned char)rand();
    f.h->write_idx = ((uint64_t)rand() << 32) | (uint64_t)rand();
    const char *path = tmpfile_path();
    CHECK(fake_write(&f, path, f.size) == 0, "write");
    struct stagering r;
    struct errbuf eb = {""};
    CHECK(stagering_open_path(&r, path, 0, &eb) == 0, "open: %s", eb.msg);
    struct stage_span out[NREC];
    size_t total = 0;
    for (int i = 0; i < 60; i++)
        total += stagering_drain(&r, out, NREC);
    CHECK(total <= NREC, "at most one ring's worth, got %zu", total);
    CHECK(stagering_refresh_threads(&r) == 0, "slots read");
    for (pid_t tid = 1; tid < 50; tid++) {
        const char *name = stagering_current(&r, tid);
        CHECK(!name || strlen(name) <= AGENTSHM_NAME_MAX, "bounded name");
    }
    stagering_close(&r);
    unlink(path);
    free(f.mem);
    return 0;
}

static int test_ring_current_stage(void)
{
    struct fakering f;
    fake_init(&f);
    uint32_t model = fake_name(&f, "model");
    struct agentshm_slot *slots = (struct agentshm_slot *)(f.mem + f.h->slots_off);
    slots[3].tid = 1234;
    slots[3].name = model;
    slots[4].tid = 1235;
    slots[4].name = 0;
    const char *path = tmpfile_path();
    CHECK(fake_write(&f, path, f.size) == 0, "write");
    struct stagering r;
    struct errbuf eb = {""};
    CHECK(stagering_open_path(&r, path, 0, &eb) == 0, "open: %s", eb.msg);
    CHECK(stagering_current(&r, 1234) == NULL, "nothing before a refresh");
    CHECK(stagering_refresh_threads(&r) == 0, "refresh");
    const char *s = stagering_current(&r, 1234);
    CHECK(s && strcmp(s, "model") == 0, "thread 1234 in model, got %s", s ? s : "NULL");
    CHECK(stagering_current(&r, 1235) == NULL, "thread 1235 in no stage");
    CHECK(stagering_current(&r, 99) == NULL, "unknown thread");
    struct stage_current cur[4];
    CHECK(stagering_list_current(&r, cur, 4) == 1, "one thread in a stage");
    CHECK(cur[0].tid == 1234 && strcmp(cur[0].stage, "model") == 0, "listed");
    stagering_close(&r);
    unlink(path);
    free(f.mem);
    return 0;
}

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

static int test_stats_percentiles(void)
{
    struct stagestats st;
    stagestats_init(&st, 0);
    uint64_t durs[101];
    srand(3);
    for (int i = 0; i < 101; i++) {
        durs[i] = 1000 + (uint64_t)(rand() % 100000);
        struct stage_span sp = {(uint64_t)i + 1,
                                10000u * (uint64_t)i,
                                10000u * (uint64_t)i + durs[i],
                                "model",
                                1,
                                STAGE_SPAN,
                                9};
        stagestats_add(&st, &sp);
        struct stage_span pre = {(uint64_t)i + 1,
                                 10000u * (uint64_t)i - 50,
                                 10000u * (uint64_t)i,
                                 "parse",
                                 1,
                                 STAGE_SPAN,
                                 9};
        if (i)
            stagestats_add(&st, &pre);
    }
    stagestats_finish(&st);
    qsort(durs, 101, sizeof(durs[0]), cmp_u64);
    CHECK(st.nrows == 2, "two stages, got %zu", st.nrows);
    /* parse starts first (request 2 onwards, but earlier than model 2... model 1 at 0). */
    const struct stagerow *m = NULL;
    for (size_t i = 0; i < st.nrows; i++)
        if (strcmp(strtab_get(&st.names, st.rows[i].name), "model") == 0)
            m = &st.rows[i];
    CHECK(m && m->count == 101, "model count");
    CHECK(m->p50 == durs[50], "p50 %llu vs %llu", (unsigned long long)m->p50,
          (unsigned long long)durs[50]);
    CHECK(m->p90 == durs[90] && m->p99 == durs[99] && m->max == durs[100], "p90/p99/max");
    CHECK(st.nreqs == 101 && st.req.count == 101, "requests %zu", st.nreqs);
    /* Slowest request first; its waterfall holds both stages in start order. */
    const struct sreq *q = &st.reqs[0];
    CHECK(q->end_ns - q->start_ns >= st.reqs[1].end_ns - st.reqs[1].start_ns, "sorted");
    struct buf b;
    buf_init(&b, 0);
    struct stagestats_opts o = {"test", 3, false, 0, NULL, 0};
    CHECK(stagestats_write_text(&st, &o, &b) == 0, "text");
    CHECK(strstr(buf_cstr(&b), "slowest requests (3 of 101)") != NULL, "%s", buf_cstr(&b));
    buf_reset(&b);
    CHECK(stagestats_write_json(&st, &o, &b) == 0, "json");
    CHECK(strstr(buf_cstr(&b), "\"name\":\"model\"") != NULL, "json has model");
    buf_fini(&b);
    stagestats_fini(&st);
    uint64_t one[] = {5};
    CHECK(stagestats_percentile(one, 1, 99) == 5 && stagestats_percentile(one, 0, 50) == 0,
          "edge cases");
    return 0;
}

static int test_stats_empty(void)
{
    struct stagestats st;
    stagestats_init(&st, 0);
    stagestats_finish(&st);
    CHECK(st.nrows == 0 && st.nreqs == 0 && st.req.count == 0, "empty");
    struct buf b;
    buf_init(&b, 0);
    struct stagestats_opts o = {"empty", 5, false, 0, NULL, 0};
    CHECK(stagestats_write_text(&st, &o, &b) == 0 && stagestats_write_json(&st, &o, &b) == 0,
          "write");
    CHECK(strstr(buf_cstr(&b), "\"request\":null") != NULL, "%s", buf_cstr(&b));
    buf_fini(&b);
    stagestats_fini(&st);
    return 0;
}

static int test_stats_requests_per_process(void)
{
    /* Two processes both number their requests 1, 2: four requests, not two. */
    struct stagestats st;
    stagestats_init(&st, 0);
    for (uint32_t pid = 100; pid <= 101; pid++)
        for (uint64_t req = 1; req <= 2; req++) {
            struct stage_span sp = {req, req * 1000, req * 1000 + pid, "w", 1, STAGE_SPAN, pid};
            stagestats_add(&st, &sp);
        }
    stagestats_finish(&st);
    CHECK(st.nreqs == 4, "4 requests, got %zu", st.nreqs);
    CHECK(st.reqs[0].pid == 101 && st.reqs[0].end_ns - st.reqs[0].start_ns == 101, "slowest");
    struct buf b;
    buf_init(&b, 0);
    struct stagestats_opts o = {"t", 1, false, 0, NULL, 0};
    CHECK(stagestats_write_json(&st, &o, &b) == 0, "json");
    CHECK(strstr(buf_cstr(&b), "\"pid\":101") != NULL, "%s", buf_cstr(&b));
    buf_fini(&b);
    stagestats_fini(&st);
    return 0;
}

static int test_ringset_descends(void)
{
    CHECK(ringset_descends(getpid(), getppid()), "we descend from our parent");
    CHECK(ringset_descends(getpid(), getpid()), "a process is its own root");
    CHECK(!ringset_descends(getppid(), getpid()), "a parent does not descend from its child");
    CHECK(!ringset_descends(999999999, getpid()), "no such process");
    struct ringset set;
    ringset_init(&set, 999999999, true);
    CHECK(ringset_scan(&set) == 0 && set.n == 0, "nothing to find");
    ringset_fini(&set);
    return 0;
}

static int test_stats_cap(void)
{
    struct stagestats st;
    stagestats_init(&st, 10);
    for (int i = 0; i < 25; i++) {
        struct stage_span sp = {0, 0, 5, "x", 0, STAGE_SPAN, 0};
        stagestats_add(&st, &sp);
    }
    stagestats_finish(&st);
    CHECK(st.nspans == 10 && st.dropped == 15, "cap: %zu kept", st.nspans);
    CHECK(st.nreqs == 0 && st.req.count == 0, "request 0 is no request");
    stagestats_fini(&st);
    return 0;
}

static const char otlp_doc[] =
    "{\"resourceSpans\":[{\"resource\":{},\"scopeSpans\":[{\"scope\":{\"name\":\"t\"},"
    "\"spans\":["
    "{\"traceId\":\"5b8efff798038103d269b633813fc60c\",\"spanId\":\"eee19b7ec3c1b174\","
    "\"name\":\"GET /items\",\"startTimeUnixNano\":\"1700000000000000000\","
    "\"endTimeUnixNano\":\"1700000000070000000\"},"
    "{\"traceId\":\"5b8efff798038103d269b633813fc60c\",\"spanId\":\"eee19b7ec3c1b175\","
    "\"parentSpanId\":\"eee19b7ec3c1b174\",\"name\":\"tokenize\","
    "\"startTimeUnixNano\":\"1700000000001000000\",\"endTimeUnixNano\":\"1700000000011000000\"},"
    "{\"traceId\":\"5b8efff798038103d269b633813fc60c\",\"spanId\":\"eee19b7ec3c1b176\","
    "\"parentSpanId\":\"eee19b7ec3c1b174\",\"name\":\"bad\",\"startTimeUnixNano\":\"x\"}"
    "]}]}]}";

static int test_otlp_parse(void)
{
    struct otlp o;
    otlp_init(&o, 0);
    struct errbuf eb = {""};
    CHECK(otlp_parse(&o, otlp_doc, strlen(otlp_doc), &eb) == 0, "parse: %s", eb.msg);
    CHECK(o.nspans == 2 && o.skipped == 1, "2 spans, 1 skipped: %zu", o.nspans);
    CHECK(o.spans[0].kind == STAGE_REQUEST && strcmp(o.spans[0].name, "GET /items") == 0,
          "root is the request");
    CHECK(o.spans[1].kind == STAGE_SPAN && o.spans[1].end_ns - o.spans[1].start_ns == 10000000,
          "tokenize 10 ms");
    CHECK(o.spans[0].request == 0xd269b633813fc60cull, "low 64 bits of the trace id");
    /* JSON lines: two documents. */
    struct buf b;
    buf_init(&b, 0);
    CHECK(buf_puts(&b, otlp_doc) == 0 && buf_puts(&b, "\n\n") == 0 && buf_puts(&b, otlp_doc) == 0,
          "lines");
    struct otlp o2;
    otlp_init(&o2, 0);
    CHECK(otlp_parse(&o2, b.data, b.len, &eb) == 0, "lines: %s", eb.msg);
    CHECK(o2.nspans == 4, "4 spans from 2 lines, got %zu", o2.nspans);
    otlp_fini(&o2);
    buf_fini(&b);
    otlp_fini(&o);
    otlp_init(&o, 0);
    CHECK(otlp_parse(&o, "{\"a\":1}", 7, &eb) == ERR_ARG && strstr(eb.msg, "no resourceSpans"),
          "not OTLP: %s", eb.msg);
    CHECK(otlp_parse(&o, "garbage\n{", 9, &eb) == ERR_ARG, "not JSON");
    /* A document cut short says so; a cut last line beside good ones is counted. */
    CHECK(otlp_parse(&o, otlp_doc, strlen(otlp_doc) / 2, &eb) == ERR_ARG &&
              strstr(eb.msg, "cut short"),
          "truncated: %s", eb.msg);
    otlp_fini(&o);
    otlp_init(&o, 0);
    buf_init(&b, 0);
    CHECK(buf_puts(&b, otlp_doc) == 0 && buf_puts(&b, "\n") == 0 &&
              buf_append(&b, otlp_doc, strlen(otlp_doc) / 2) == 0,
          "cut lines");
    CHECK(otlp_parse(&o, b.data, b.len, &eb) == 0 && o.nspans == 2 && o.bad_lines == 1 &&
              o.first_bad == 2,
          "cut line counted: %zu spans, %zu bad, first %zu", o.nspans, o.bad_lines, o.first_bad);
    buf_fini(&b);
    otlp_fini(&o);
    CHECK(otlp_id64("") == 0 && otlp_id64("zz") != 0, "id64");
    return 0;
}

int main(void)
{
    RUN(test_ring_reads_records);
    RUN(test_ring_wrap_and_bad_records);
    RUN(test_ring_garbage);
    RUN(test_ring_garbage_records);
    RUN(test_ring_current_stage);
    RUN(test_stats_percentiles);
    RUN(test_stats_empty);
    RUN(test_stats_requests_per_process);
    RUN(test_ringset_descends);
    RUN(test_stats_cap);
    RUN(test_otlp_parse);
    return TEST_SUMMARY("stages");
}
