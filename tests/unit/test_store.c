// SPDX-License-Identifier: MIT
// Unit tests of saved recordings: a profile with every part filled survives store_save and
// store_load unchanged (and so do the outputs made from it); bad files are refused cleanly.
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "check.h"
#include "export/export.h"
#include "profile/profile.h"
#include "store/store.h"

static uint32_t py(struct profile *p, const char *name, const char *file, int line)
{
    return profile_frame(p, profile_str(p, name, strlen(name)), profile_str(p, file, strlen(file)),
                         line, FRAME_PYTHON);
}

static void build(struct profile *p)
{
    profile_init(p);
    p->keep_samples = true;
    p->meta.pid = 4242;
    p->meta.rate_hz = 250.5;
    p->meta.duration_ns = 3000000000ull;
    p->meta.ticks = 750;
    p->meta.errors = 3;
    p->meta.categories = true;
    p->meta.native = true;
    profile_set_str(&p->meta.command, "python3 app.py --x '<b>'");
    profile_set_str(&p->meta.python_version, "3.12.1");
    profile_set_str(&p->meta.categories_note, "perf task-clock");
    uint32_t th = profile_frame(p, profile_str(p, "worker", 6), 0, 77, FRAME_THREAD);
    uint32_t a = profile_frame_col(p, profile_str(p, "main", 4), profile_str(p, "/app/app.py", 11),
                                   3, 17, FRAME_PYTHON); /* 3.11+: a column */
    uint32_t b = py(p, "bad\xff name", "caf\xc3\xa9.py", 9);
    uint32_t c = profile_frame(p, profile_str(p, "memcpy", 6), profile_str(p, "libc.so.6", 9), 0,
                               FRAME_NATIVE);
    uint32_t s1 = profile_stack(p, (uint32_t[]){th, a}, 2);
    uint32_t s2 = profile_stack(p, (uint32_t[]){th, a, b, c}, 4);
    uint32_t stage = profile_str(p, "embed", 5);
    for (uint64_t t = 0; t < 300; t++) {
        profile_add(p, &(struct psample){
                           .t_ns = t * 4000000 + 17,
                           .stack = t % 3 ? s2 : s1,
                           .tid = 77,
                           .pid = 4242,
                           .stage = t % 5 == 0 ? stage : 0,
                           .state = t % 2 ? TSTATE_RUNNING : TSTATE_IDLE,
                           .flags = t % 7 == 0 ? SAMPLE_GIL : 0,
                           .cat = (uint8_t)(t % PCAT_N),
                           .weight = t == 5 ? 3 : 1,
                           .ev = t % 4 == 0 ? 0
                                 : t % 4 == 1
                                     ? profile_evidence(p, EV_CPU_MODEL, "libopenblas.so.0")
                                     : profile_evidence(p, EV_WAIT_NET, "recv: TCP/UDP socket")});
        profile_add_mem(p, t * 4000000, 4242, (100 + t) << 20);
    }
    profile_add_growth(p, s2, 12345);
    profile_add_growth(p, s1, -77);
    p->hide_idle = true; /* after the samples: the counts above include idle ones */
    struct pproc *pr = profile_proc(p, 4242);
    pr->ppid = 1;
    profile_set_str(&pr->name, "python3 app.py");
    profile_set_str(&pr->python_version, "3.12.1");
    pr->first_ns = 17;
    pr->last_ns = 299 * 4000000 + 17;
    pr->samples = 302;
    pr->exit_status = 0;
    struct pproc *child = profile_proc(p, 4243);
    child->ppid = 4242;
    uint32_t req = profile_str(p, "request", 7);
    for (uint64_t r = 1; r <= 3; r++) {
        profile_add_span(p, &(struct pspan){.start_ns = r * 100000000,
                                            .end_ns = r * 100000000 + 5000000,
                                            .request = r | (1ull << 63), /* all 64 bits kept */
                                            .name = req,
                                            .tid = 77,
                                            .pid = 4242,
                                            .kind = PSPAN_REQUEST});
        profile_add_span(p, &(struct pspan){.start_ns = r * 100000000 + 1000,
                                            .end_ns = r * 100000000 + 2000,
                                            .request = r,
                                            .name = stage,
                                            .tid = 77,
                                            .pid = 4242,
                                            .kind = PSPAN_STAGE});
    }
    profile_thread_name(p, 4242, 77, "loader-1", 8);
    profile_thread_name(p, 4242, 78, "Thread-1", 8);
    profile_thread_name(p, 4242, 78, "renamed \xe2\x9c\x93", 11); /* the last name counts */
    profile_add_req(
        p,
        &(struct preq){
            .start_ns = 1000, .end_ns = 9000000, .bytes = 512, .ttft_ns = 2500000, .status = 200});
    profile_add_req(p, &(struct preq){.start_ns = 2000,
                                      .end_ns = 3000000000ull,
                                      .ttft_ns = -1,
                                      .error = profile_str(p, "timeout", 7)});
    p->reqs_dropped = 5;
}

static const char *tmp_db(char *buf, size_t n, const char *name)
{
    snprintf(buf, n, "/tmp/crux-test-store-%d-%s.db", (int)getpid(), name);
    return buf;
}

static int same_output(const struct profile *x, const struct profile *y, enum export_format f)
{
    struct buf a, b;
    buf_init(&a, 0);
    buf_init(&b, 0);
    int ok = export_write(x, f, NULL, &a, NULL) == 0 && export_write(y, f, NULL, &b, NULL) == 0 &&
             a.len == b.len && memcmp(a.data, b.data, a.len) == 0;
    buf_fini(&a);
    buf_fini(&b);
    return ok;
}

static int test_round_trip(void)
{
    struct profile p, q;
    build(&p);
    char path[128];
    tmp_db(path, sizeof(path), "rt");
    struct errbuf eb = {{0}};
    CHECK(store_save(&p, path, &eb) == 0, "save: %s", eb.msg);
    CHECK(store_save(&p, path, &eb) == 0, "save again replaces: %s", eb.msg);
    profile_init(&q);
    CHECK(store_load(path, &q, &eb) == 0, "load: %s", eb.msg);
    CHECK(q.strs.len == p.strs.len && q.nframes == p.nframes && q.nnodes == p.nnodes, "sizes");
    for (uint32_t i = 0; i < p.strs.len; i++)
        CHECK(strtab_len(&q.strs, i) == strtab_len(&p.strs, i) &&
                  memcmp(profile_string(&q, i), profile_string(&p, i), strtab_len(&p.strs, i)) == 0,
              "string %u", i);
    CHECK(memcmp(q.frames, p.frames, p.nframes * sizeof(*p.frames)) == 0, "frames");
    CHECK(memcmp(q.nodes, p.nodes, p.nnodes * sizeof(*p.nodes)) == 0, "stacks");
    CHECK(memcmp(q.counts, p.counts, p.nnodes * sizeof(*p.counts)) == 0, "counts");
    CHECK(memcmp(q.cat_counts, p.cat_counts, (size_t)p.nnodes * PCAT_N * sizeof(*p.cat_counts)) ==
              0,
          "category counts");
    CHECK(memcmp(q.mem_growth, p.mem_growth, p.nnodes * sizeof(*p.mem_growth)) == 0, "growth");
    CHECK(q.total == p.total && q.total == 302, "total %llu", (unsigned long long)q.total);
    CHECK(q.keep_samples && q.nsamples == p.nsamples &&
              memcmp(q.samples, p.samples, p.nsamples * sizeof(*p.samples)) == 0,
          "samples");
    CHECK(q.nmem == p.nmem && memcmp(q.mem, p.mem, p.nmem * sizeof(*p.mem)) == 0, "memory");
    CHECK(q.nspans == 6 && memcmp(q.spans, p.spans, p.nspans * sizeof(*p.spans)) == 0, "spans");
    CHECK(q.nevs == 2 && p.nevs == 2 && memcmp(q.evs, p.evs, p.nevs * sizeof(*p.evs)) == 0 &&
              q.hide_idle,
          "evidence (%u) and hide_idle", q.nevs);
    CHECK(q.nprocs == 2 && q.procs[0].pid == 4242 && q.procs[0].peak_rss == p.procs[0].peak_rss &&
              strcmp(q.procs[0].name, "python3 app.py") == 0 && q.procs[0].exit_status == 0 &&
              q.procs[1].name == NULL && q.procs[1].exit_status == -1,
          "processes");
    CHECK(strcmp(q.meta.command, p.meta.command) == 0 &&
              strcmp(q.meta.python_version, "3.12.1") == 0 && q.meta.pid == 4242 &&
              q.meta.rate_hz == 250.5 && q.meta.duration_ns == 3000000000ull &&
              q.meta.ticks == 750 && q.meta.errors == 3 && q.meta.categories && q.meta.native &&
              strcmp(q.meta.categories_note, "perf task-clock") == 0,
          "meta");
    CHECK(q.ntnames == 2 && strcmp(profile_thread_name_of(&q, 4242, 77), "loader-1") == 0 &&
              strcmp(profile_thread_name_of(&q, 4242, 78), "renamed \xe2\x9c\x93") == 0 &&
              profile_thread_name_of(&q, 4243, 77) == NULL,
          "thread names");
    CHECK(q.nreqs == 2 && memcmp(q.reqs, p.reqs, p.nreqs * sizeof(*p.reqs)) == 0 &&
              q.reqs_dropped == 5,
          "load requests");
    CHECK(same_output(&p, &q, EXPORT_HTML), "same report");
    CHECK(same_output(&p, &q, EXPORT_COLLAPSED), "same collapsed stacks");
    CHECK(same_output(&p, &q, EXPORT_SPEEDSCOPE), "same speedscope");
    /* The documented views answer plain SQL. */
    sqlite3 *db;
    CHECK(sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, NULL) == SQLITE_OK, "open");
    sqlite3_stmt *st;
    CHECK(sqlite3_prepare_v2(db,
                             "SELECT name, count(*) FROM sample_leaf WHERE file = 'libc.so.6' "
                             "GROUP BY name",
                             -1, &st, NULL) == SQLITE_OK,
          "%s", sqlite3_errmsg(db));
    CHECK(sqlite3_step(st) == SQLITE_ROW, "a row");
    CHECK(strcmp((const char *)sqlite3_column_text(st, 0), "memcpy") == 0 &&
              sqlite3_column_int(st, 1) == 200,
          "memcpy leaf samples %d", sqlite3_column_int(st, 1));
    sqlite3_finalize(st);
    sqlite3_close(db);
    profile_fini(&q);
    /* A recording made before thread names were kept has no `threads` table. */
    CHECK(sqlite3_open_v2(path, &db, SQLITE_OPEN_READWRITE, NULL) == SQLITE_OK, "open rw");
    CHECK(sqlite3_exec(db, "DROP TABLE threads", NULL, NULL, NULL) == SQLITE_OK, "drop");
    /* nor, before load requests were kept, a `load_requests` table */
    CHECK(sqlite3_exec(db, "DROP TABLE load_requests", NULL, NULL, NULL) == SQLITE_OK, "drop");
    sqlite3_close(db);
    profile_init(&q);
    CHECK(store_load(path, &q, &eb) == 0 && q.ntnames == 0 && q.nreqs == 0, "older file: %s",
          eb.msg);
    profile_fini(&q);
    profile_fini(&p);
    unlink(path);
    return 0;
}

/* A format-3 recording (no frames.col) still loads; its frames have no column. */
static int test_format3_no_columns(void)
{
    struct profile p, q;
    build(&p);
    char path[128];
    tmp_db(path, sizeof(path), "v3");
    struct errbuf eb = {{0}};
    CHECK(store_save(&p, path, &eb) == 0, "save: %s", eb.msg);
    sqlite3 *db;
    CHECK(sqlite3_open(path, &db) == SQLITE_OK, "open");
    CHECK(sqlite3_exec(db,
                       "DROP VIEW sample_leaf; DROP VIEW frame_text;"
                       "ALTER TABLE frames DROP COLUMN col;"
                       "UPDATE meta SET value = 3 WHERE key = 'format_version'",
                       NULL, NULL, NULL) == SQLITE_OK,
          "make it format 3: %s", sqlite3_errmsg(db));
    sqlite3_close(db);
    profile_init(&q);
    CHECK(store_load(path, &q, &eb) == 0, "load: %s", eb.msg);
    CHECK(q.nframes == p.nframes && q.nnodes == p.nnodes && q.total == p.total, "sizes");
    for (uint32_t i = 0; i < q.nframes; i++)
        CHECK(q.frames[i].col == 0 && q.frames[i].line == p.frames[i].line, "frame %u", i);
    CHECK(!q.columns, "no columns");
    profile_drop_columns(&p);
    CHECK(same_output(&p, &q, EXPORT_COLLAPSED), "same stacks as the columns dropped");
    profile_fini(&q);
    profile_fini(&p);
    unlink(path);
    return 0;
}

static int test_empty_profile(void)
{
    struct profile p, q;
    profile_init(&p);
    char path[128];
    tmp_db(path, sizeof(path), "empty");
    struct errbuf eb = {{0}};
    CHECK(store_save(&p, path, &eb) == 0, "save: %s", eb.msg);
    profile_init(&q);
    CHECK(store_load(path, &q, &eb) == 0, "load: %s", eb.msg);
    CHECK(q.total == 0 && q.nnodes == 1 && !q.keep_samples && q.meta.command == NULL, "empty");
    profile_fini(&q);
    profile_fini(&p);
    unlink(path);
    return 0;
}

static int test_bad_files(void)
{
    struct profile q;
    struct errbuf eb = {{0}};
    profile_init(&q);
    CHECK(store_load("/nonexistent/run.db", &q, &eb) == ERR_IO, "missing");
    CHECK(strstr(eb.msg, "/nonexistent/run.db"), "%s", eb.msg);
    profile_fini(&q);
    char path[128];
    tmp_db(path, sizeof(path), "junk");
    FILE *f = fopen(path, "wb");
    CHECK(f, "create");
    for (int i = 0; i < 200; i++)
        fputs("this is not a database ", f);
    fclose(f);
    profile_init(&q);
    CHECK(store_load(path, &q, &eb) == ERR_ARG, "junk: %s", eb.msg);
    CHECK(strstr(eb.msg, "not a crux recording"), "%s", eb.msg);
    profile_fini(&q);
    /* A newer format version is refused with a hint. */
    struct profile p;
    build(&p);
    CHECK(store_save(&p, path, &eb) == 0, "save");
    profile_fini(&p);
    sqlite3 *db;
    CHECK(sqlite3_open(path, &db) == SQLITE_OK, "open");
    CHECK(sqlite3_exec(db, "UPDATE meta SET value = 99 WHERE key = 'format_version'", NULL, NULL,
                       NULL) == SQLITE_OK,
          "update");
    sqlite3_close(db);
    profile_init(&q);
    CHECK(store_load(path, &q, &eb) == ERR_ARG && strstr(eb.msg, "upgrade crux"), "%s", eb.msg);
    profile_fini(&q);
    /* Rows that do not fit together. */
    CHECK(sqlite3_open(path, &db) == SQLITE_OK, "open");
    CHECK(sqlite3_exec(db,
                       "UPDATE meta SET value = 1 WHERE key = 'format_version';"
                       "UPDATE stacks SET frame = 999 WHERE id = 2",
                       NULL, NULL, NULL) == SQLITE_OK,
          "update");
    sqlite3_close(db);
    profile_init(&q);
    CHECK(store_load(path, &q, &eb) == ERR_CORRUPT && strstr(eb.msg, "damaged"), "%s", eb.msg);
    profile_fini(&q);
    build(&p);
    CHECK(store_save(&p, path, &eb) == 0, "save");
    profile_fini(&p);
    CHECK(sqlite3_open(path, &db) == SQLITE_OK, "open");
    CHECK(sqlite3_exec(db, "UPDATE spans SET end_ns = 0 WHERE kind = 2", NULL, NULL, NULL) ==
              SQLITE_OK,
          "update");
    sqlite3_close(db);
    profile_init(&q);
    CHECK(store_load(path, &q, &eb) == ERR_CORRUPT && strstr(eb.msg, "span"), "%s", eb.msg);
    profile_fini(&q);
    build(&p);
    CHECK(store_save(&p, path, &eb) == 0, "save");
    profile_fini(&p);
    CHECK(sqlite3_open(path, &db) == SQLITE_OK, "open");
    CHECK(sqlite3_exec(db, "UPDATE load_requests SET end_ns = 0", NULL, NULL, NULL) == SQLITE_OK,
          "update");
    sqlite3_close(db);
    profile_init(&q);
    CHECK(store_load(path, &q, &eb) == ERR_CORRUPT && strstr(eb.msg, "load request"), "%s", eb.msg);
    profile_fini(&q);
    /* A recording cut short, a directory, and absurd counts: one-line errors. */
    struct stat sb;
    CHECK(stat(path, &sb) == 0 && truncate(path, sb.st_size / 2) == 0, "truncate");
    profile_init(&q);
    int rc = store_load(path, &q, &eb);
    CHECK((rc == ERR_CORRUPT || rc == ERR_ARG) && strstr(eb.msg, "--save") && !strchr(eb.msg, '\n'),
          "truncated: %d %s", rc, eb.msg);
    profile_fini(&q);
    profile_init(&q);
    CHECK(store_load("/tmp", &q, &eb) == ERR_ARG && strstr(eb.msg, "not a regular file"), "%s",
          eb.msg);
    profile_fini(&q);
    build(&p);
    CHECK(store_save(&p, path, &eb) == 0, "save");
    profile_fini(&p);
    CHECK(sqlite3_open(path, &db) == SQLITE_OK, "open");
    CHECK(sqlite3_exec(db, "UPDATE stack_counts SET count = 4611686018427387904", NULL, NULL,
                       NULL) == SQLITE_OK,
          "update");
    sqlite3_close(db);
    profile_init(&q);
    CHECK(store_load(path, &q, &eb) == ERR_CORRUPT && strstr(eb.msg, "2^48"), "%s", eb.msg);
    profile_fini(&q);
    build(&p);
    CHECK(store_save(&p, path, &eb) == 0, "save");
    profile_fini(&p);
    CHECK(sqlite3_open(path, &db) == SQLITE_OK, "open");
    CHECK(sqlite3_exec(db,
                       "INSERT INTO stack_growth(stack, bytes) VALUES (1, -4611686018427387904)",
                       NULL, NULL, NULL) == SQLITE_OK,
          "insert");
    sqlite3_close(db);
    profile_init(&q);
    CHECK(store_load(path, &q, &eb) == ERR_CORRUPT && strstr(eb.msg, "2^56"), "%s", eb.msg);
    profile_fini(&q);
    CHECK(store_save(&q, "/nonexistent/dir/run.db", &eb) == ERR_IO, "unwritable");
    unlink(path);
    return 0;
}

/* Allocation events (record --allocations): a leak at one line, churn at another. */
static void add_allocs(struct profile *p)
{
    uint32_t a = py(p, "grow", "/app/job.py", 12), b = py(p, "churn", "/app/job.py", 20);
    uint32_t s1 = profile_stack(p, (uint32_t[]){a}, 1), s2 = profile_stack(p, (uint32_t[]){b}, 1);
    for (uint64_t k = 0; k < 400; k++) {
        uint64_t t = k * 5000000 + 3;
        profile_add_alloc(p, &(struct palloc){.t_ns = t,
                                              .bytes = 1 << 20,
                                              .born_ns = t,
                                              .stack = k % 2 ? s1 : s2,
                                              .count = 2.5f,
                                              .kind = PALLOC_ALLOC});
        if (k % 2 == 0)
            profile_add_alloc(p, &(struct palloc){.t_ns = t + 1000,
                                                  .bytes = 1 << 20,
                                                  .born_ns = t,
                                                  .stack = s2,
                                                  .count = 2.5f,
                                                  .kind = PALLOC_FREE});
    }
    p->allocations = true;
    p->alloc_sample_bytes = 524288;
    p->allocs_dropped = 7;
}

/* The events come back as they were, so every allocation view is the same; a file without
 * the table loads with none; a bad event is refused. */
static int test_allocations_round_trip(void)
{
    struct profile p, q;
    build(&p);
    add_allocs(&p);
    char path[128];
    tmp_db(path, sizeof(path), "alloc");
    struct errbuf eb = {{0}};
    CHECK(store_save(&p, path, &eb) == 0, "save: %s", eb.msg);
    profile_init(&q);
    CHECK(store_load(path, &q, &eb) == 0, "load: %s", eb.msg);
    CHECK(q.allocations && q.alloc_sample_bytes == 524288 && q.allocs_dropped == 7, "meta");
    CHECK(q.nallocs == p.nallocs, "%zu events, want %zu", q.nallocs, p.nallocs);
    for (size_t i = 0; i < q.nallocs; i++)
        CHECK(q.allocs[i].t_ns == p.allocs[i].t_ns && q.allocs[i].bytes == p.allocs[i].bytes &&
                  q.allocs[i].born_ns == p.allocs[i].born_ns &&
                  q.allocs[i].stack == p.allocs[i].stack &&
                  q.allocs[i].count == p.allocs[i].count && q.allocs[i].kind == p.allocs[i].kind,
              "event %zu", i);
    CHECK(same_output(&p, &q, EXPORT_LINES), "same lines text");
    CHECK(same_output(&p, &q, EXPORT_LINES_JSON), "same lines JSON");
    CHECK(same_output(&p, &q, EXPORT_HTML), "same report");
    profile_fini(&q);
    sqlite3 *db;
    CHECK(sqlite3_open(path, &db) == SQLITE_OK, "open");
    CHECK(sqlite3_exec(db, "UPDATE alloc_events SET stack = 99999 WHERE rowid = 3", NULL, NULL,
                       NULL) == SQLITE_OK,
          "update");
    sqlite3_close(db);
    profile_init(&q);
    CHECK(store_load(path, &q, &eb) == ERR_CORRUPT && strstr(eb.msg, "missing stack"), "%s",
          eb.msg);
    profile_fini(&q);
    CHECK(sqlite3_open(path, &db) == SQLITE_OK, "open");
    CHECK(sqlite3_exec(db, "DROP TABLE alloc_events", NULL, NULL, NULL) == SQLITE_OK, "drop");
    sqlite3_close(db);
    profile_init(&q);
    CHECK(store_load(path, &q, &eb) == 0 && !q.allocations && q.nallocs == 0, "older file: %s",
          eb.msg);
    profile_fini(&q);
    profile_fini(&p);
    unlink(path);
    return 0;
}

int main(void)
{
    RUN(test_round_trip);
    RUN(test_allocations_round_trip);
    RUN(test_empty_profile);
    RUN(test_format3_no_columns);
    RUN(test_bad_files);
    return TEST_SUMMARY("store");
}
