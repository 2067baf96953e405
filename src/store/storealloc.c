// SPDX-License-Identifier: MIT
// Saving and loading the allocation events of record --allocations (storealloc.h).
#include "store/storealloc.h"

#include <math.h>
#include <string.h>

/* age_ns: how long a freed block lived (t_ns - born_ns), 0 for an allocation: small numbers
 * keep SQLite's variable-length integers short. tid: the thread (for bytes per request; absent
 * in recordings made before it, read as 0). */
static const char schema[] =
    "CREATE TABLE alloc_events(t_ns INTEGER NOT NULL, kind INTEGER NOT NULL,\n"
    "  bytes INTEGER NOT NULL, count REAL NOT NULL, stack INTEGER NOT NULL,\n"
    "  age_ns INTEGER NOT NULL, tid INTEGER NOT NULL DEFAULT 0);\n";

/* Bounds on loaded events, so that no sum the views make can wrap. */
#define EVENT_BYTES_MAX ((uint64_t)1 << 48)
#define TOTAL_BYTES_MAX ((uint64_t)1 << 60)

static int prep(sqlite3 *db, const char *sql, sqlite3_stmt **st)
{
    return sqlite3_prepare_v2(db, sql, -1, st, NULL) == SQLITE_OK ? 0 : ERR_IO;
}

static int step_reset(sqlite3_stmt *st)
{
    int rc = sqlite3_step(st);
    sqlite3_reset(st);
    return rc == SQLITE_DONE ? 0 : ERR_IO;
}

static int save_meta(sqlite3 *db, const struct profile *p)
{
    sqlite3_stmt *st;
    if (prep(db, "INSERT INTO meta(key, value) VALUES(?, ?)", &st))
        return ERR_IO;
    const char *keys[4] = {"alloc_recorded", "alloc_sample_bytes", "alloc_dropped",
                           "alloc_copy_sample_bytes"};
    const int64_t vals[4] = {1, (int64_t)p->alloc_sample_bytes, (int64_t)p->allocs_dropped,
                             (int64_t)p->copy_sample_bytes};
    int rc = 0;
    for (int i = 0; i < 4 && !rc; i++) {
        sqlite3_bind_text(st, 1, keys[i], -1, SQLITE_STATIC);
        sqlite3_bind_int64(st, 2, vals[i]);
        rc = step_reset(st);
    }
    sqlite3_finalize(st);
    return rc;
}

static int save_events(sqlite3 *db, const struct profile *p)
{
    sqlite3_stmt *st;
    if (prep(db,
             "INSERT INTO alloc_events(t_ns, kind, bytes, count, stack, age_ns, tid) "
             "VALUES(?,?,?,?,?,?,?)",
             &st))
        return ERR_IO;
    int rc = 0;
    for (size_t i = 0; i < p->nallocs && !rc; i++) {
        const struct palloc *e = &p->allocs[i];
        sqlite3_bind_int64(st, 1, (int64_t)e->t_ns);
        sqlite3_bind_int64(st, 2, e->kind);
        sqlite3_bind_int64(st, 3, (int64_t)e->bytes);
        sqlite3_bind_double(st, 4, e->count);
        sqlite3_bind_int64(st, 5, e->stack);
        sqlite3_bind_int64(
            st, 6,
            e->kind == PALLOC_FREE && e->t_ns >= e->born_ns ? (int64_t)(e->t_ns - e->born_ns) : 0);
        sqlite3_bind_int64(st, 7, e->tid);
        rc = step_reset(st);
    }
    sqlite3_finalize(st);
    return rc;
}

int storealloc_save(sqlite3 *db, const struct profile *p)
{
    if (!p->allocations)
        return 0;
    if (sqlite3_exec(db, schema, NULL, NULL, NULL) != SQLITE_OK)
        return ERR_IO;
    int rc = save_meta(db, p);
    return rc ? rc : save_events(db, p);
}

/* Loading. */

static int db_err(sqlite3 *db, struct errbuf *eb, const char *path)
{
    return errbuf_set(eb, ERR_IO, "cannot read the allocation events of %s: %s", path,
                      sqlite3_errmsg(db));
}

static int corrupt(struct errbuf *eb, const char *path, const char *what)
{
    return errbuf_set(eb, ERR_CORRUPT, "recording %s is damaged: %s: record it again with --save",
                      path, what);
}

static int load_meta(sqlite3 *db, struct profile *p)
{
    sqlite3_stmt *st;
    if (prep(db, "SELECT key, value FROM meta WHERE key LIKE 'alloc\\_%' ESCAPE '\\'", &st))
        return ERR_IO;
    int rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        const char *k = (const char *)sqlite3_column_text(st, 0);
        int64_t v = sqlite3_column_int64(st, 1);
        if (!k || v < 0)
            continue;
        if (strcmp(k, "alloc_sample_bytes") == 0)
            p->alloc_sample_bytes = (uint64_t)v;
        else if (strcmp(k, "alloc_dropped") == 0)
            p->allocs_dropped = (uint64_t)v;
        else if (strcmp(k, "alloc_copy_sample_bytes") == 0)
            p->copy_sample_bytes = (uint64_t)v;
    }
    sqlite3_finalize(st);
    return rc == SQLITE_DONE ? 0 : ERR_IO;
}

/* One row into `e`; 0, or the reason it is not a valid event. */
static const char *row_event(sqlite3_stmt *st, const struct profile *p, struct palloc *e)
{
    int64_t t = sqlite3_column_int64(st, 0), kind = sqlite3_column_int64(st, 1);
    int64_t bytes = sqlite3_column_int64(st, 2), stack = sqlite3_column_int64(st, 4);
    int64_t age = sqlite3_column_int64(st, 5), tid = sqlite3_column_int64(st, 6);
    double count = sqlite3_column_double(st, 3);
    if (kind != PALLOC_ALLOC && kind != PALLOC_FREE && kind != PALLOC_COPY)
        return "an allocation event of unknown kind";
    if (t < 0 || age < 0 || age > t)
        return "an allocation event before the recording started";
    if (bytes < 0 || (uint64_t)bytes > EVENT_BYTES_MAX || !isfinite(count) || count < 0 ||
        count > 1e12)
        return "an allocation event of impossible size";
    if (stack < 0 || stack >= p->nnodes)
        return "an allocation event names a missing stack";
    *e = (struct palloc){.t_ns = (uint64_t)t,
                         .kind = (uint32_t)kind,
                         .bytes = (uint64_t)bytes,
                         .count = (float)count,
                         .stack = (uint32_t)stack,
                         .born_ns = (uint64_t)(t - age),
                         .tid = tid > 0 && tid <= UINT32_MAX ? (uint32_t)tid : 0};
    return NULL;
}

int storealloc_load(sqlite3 *db, struct profile *p, struct errbuf *eb, const char *path)
{
    sqlite3_stmt *st;
    if (prep(db, "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'alloc_events'", &st))
        return db_err(db, eb, path);
    int has = sqlite3_step(st);
    sqlite3_finalize(st);
    if (has == SQLITE_DONE)
        return 0; /* recorded without --allocations, or before crux saved them */
    if (has != SQLITE_ROW || load_meta(db, p))
        return db_err(db, eb, path);
    /* recordings made before tid was kept have no such column: 0 in its place */
    if (prep(db,
             "SELECT t_ns, kind, bytes, count, stack, age_ns, tid FROM alloc_events ORDER BY rowid",
             &st) &&
        prep(db,
             "SELECT t_ns, kind, bytes, count, stack, age_ns, 0 FROM alloc_events ORDER BY rowid",
             &st))
        return db_err(db, eb, path);
    uint64_t total = 0;
    int rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        struct palloc e;
        const char *bad = row_event(st, p, &e);
        if (!bad && (total += e.bytes) > TOTAL_BYTES_MAX)
            bad = "allocation events past 2^60 bytes";
        if (bad) {
            sqlite3_finalize(st);
            return corrupt(eb, path, bad);
        }
        profile_add_alloc(p, &e);
    }
    sqlite3_finalize(st);
    if (rc != SQLITE_DONE)
        return db_err(db, eb, path);
    p->allocations = true;
    return 0;
}
