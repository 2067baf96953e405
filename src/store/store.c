// SPDX-License-Identifier: MIT
// Saved recordings in SQLite (libsqlite3: a documented, queryable single-file format that any
// user has a shell for). One transaction and prepared statements per table.
#include "store/store.h"
#include "store/storealloc.h"
#include "store/storegpu.h"

#include <errno.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "util/xalloc.h"

static const char schema[] =
    "CREATE TABLE meta(key TEXT PRIMARY KEY, value) WITHOUT ROWID;\n"
    "CREATE TABLE strings(id INTEGER PRIMARY KEY, s TEXT NOT NULL);\n"
    "CREATE TABLE frames(id INTEGER PRIMARY KEY, name INTEGER NOT NULL, file INTEGER NOT NULL,\n"
    "  line INTEGER NOT NULL, kind INTEGER NOT NULL, col INTEGER NOT NULL DEFAULT 0);\n"
    "CREATE TABLE stacks(id INTEGER PRIMARY KEY, parent INTEGER NOT NULL,\n"
    "  frame INTEGER NOT NULL, depth INTEGER NOT NULL);\n"
    "CREATE TABLE stack_counts(stack INTEGER NOT NULL, cat INTEGER NOT NULL,\n"
    "  count INTEGER NOT NULL, PRIMARY KEY(stack, cat)) WITHOUT ROWID;\n"
    "CREATE TABLE stack_growth(stack INTEGER PRIMARY KEY, bytes INTEGER NOT NULL);\n"
    "CREATE TABLE samples(t_ns INTEGER NOT NULL, stack INTEGER NOT NULL, tid INTEGER NOT NULL,\n"
    "  pid INTEGER NOT NULL, stage INTEGER NOT NULL, state INTEGER NOT NULL,\n"
    "  flags INTEGER NOT NULL, cat INTEGER NOT NULL, weight INTEGER NOT NULL,\n"
    "  ev INTEGER NOT NULL DEFAULT 0);\n"
    "CREATE TABLE evidence(id INTEGER PRIMARY KEY, kind INTEGER NOT NULL,\n"
    "  label INTEGER NOT NULL);\n"
    "CREATE TABLE evidence_kinds(id INTEGER PRIMARY KEY, name TEXT NOT NULL);\n"
    "CREATE TABLE memory(t_ns INTEGER NOT NULL, pid INTEGER NOT NULL, rss INTEGER NOT NULL);\n"
    "CREATE TABLE processes(pid INTEGER PRIMARY KEY, ppid INTEGER, name TEXT,\n"
    "  python_version TEXT, first_ns INTEGER, last_ns INTEGER, samples INTEGER,\n"
    "  peak_rss INTEGER, exit_status INTEGER);\n"
    "CREATE TABLE categories(id INTEGER PRIMARY KEY, name TEXT NOT NULL);\n"
    "CREATE TABLE spans(start_ns INTEGER NOT NULL, end_ns INTEGER NOT NULL,\n"
    "  request INTEGER NOT NULL, name INTEGER NOT NULL, tid INTEGER NOT NULL,\n"
    "  pid INTEGER NOT NULL, kind INTEGER NOT NULL);\n"
    "CREATE TABLE threads(pid INTEGER NOT NULL, tid INTEGER NOT NULL, name TEXT NOT NULL,\n"
    "  PRIMARY KEY(pid, tid)) WITHOUT ROWID;\n"
    "CREATE TABLE load_requests(start_ns INTEGER NOT NULL, end_ns INTEGER NOT NULL,\n"
    "  status INTEGER NOT NULL, error TEXT, bytes INTEGER NOT NULL, ttft_ns INTEGER);\n"
    "CREATE VIEW frame_text AS SELECT f.id AS id, n.s AS name, p.s AS file, f.line AS line,\n"
    "  f.kind AS kind, f.col AS col FROM frames f JOIN strings n ON n.id = f.name JOIN strings p "
    "ON p.id = "
    "f.file;\n"
    "CREATE VIEW sample_leaf AS SELECT s.t_ns AS t_ns, s.tid AS tid, s.pid AS pid,\n"
    "  s.state AS state, s.cat AS cat, s.weight AS weight, t.name AS name, t.file AS file,\n"
    "  t.line AS line FROM samples s JOIN stacks k ON k.id = s.stack\n"
    "  JOIN frame_text t ON t.id = k.frame;\n";

/* SQLite's message for the last error, on one line: it can quote schema text. */
static void db_msg(sqlite3 *db, char *out, size_t cap)
{
    snprintf(out, cap, "%s", db ? sqlite3_errmsg(db) : "out of memory");
    for (char *c = out; *c; c++)
        if ((unsigned char)*c < 0x20 || *c == 0x7f)
            *c = ' ';
}

static int db_err(sqlite3 *db, struct errbuf *eb, const char *what, const char *path)
{
    char msg[160];
    db_msg(db, msg, sizeof(msg));
    int code = db ? sqlite3_errcode(db) & 0xff : SQLITE_NOMEM;
    if (code == SQLITE_CORRUPT || code == SQLITE_NOTADB)
        return errbuf_set(eb, code == SQLITE_CORRUPT ? ERR_CORRUPT : ERR_ARG,
                          "%s %s: not a crux recording, or a damaged one (SQLite: %s): give a "
                          "file written by crux record --save",
                          what, path, msg);
    return errbuf_set(eb, ERR_IO, "%s %s: %s", what, path, msg);
}

static int prep(sqlite3 *db, const char *sql, sqlite3_stmt **st)
{
    return sqlite3_prepare_v2(db, sql, -1, st, NULL) == SQLITE_OK ? 0 : ERR_IO;
}

/* Runs a bound statement to completion and resets it for the next row. */
static int step_reset(sqlite3_stmt *st)
{
    int rc = sqlite3_step(st);
    sqlite3_reset(st);
    return rc == SQLITE_DONE ? 0 : ERR_IO;
}

static int meta_text(sqlite3_stmt *st, const char *key, const char *v)
{
    sqlite3_bind_text(st, 1, key, -1, SQLITE_STATIC);
    if (v)
        sqlite3_bind_text(st, 2, v, -1, SQLITE_STATIC);
    else
        sqlite3_bind_null(st, 2);
    return step_reset(st);
}

static int meta_int(sqlite3_stmt *st, const char *key, int64_t v)
{
    sqlite3_bind_text(st, 1, key, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 2, v);
    return step_reset(st);
}

static int save_meta(sqlite3 *db, const struct profile *p)
{
    sqlite3_stmt *st;
    if (prep(db, "INSERT INTO meta(key, value) VALUES(?, ?)", &st))
        return ERR_IO;
    const struct pmeta *m = &p->meta;
    int rc = meta_int(st, "format_version", STORE_FORMAT_VERSION);
    rc = rc ? rc : meta_text(st, "crux_version", STORE_CRUX_VERSION);
    rc = rc ? rc : meta_text(st, "command", m->command);
    rc = rc ? rc : meta_text(st, "python_version", m->python_version);
    rc = rc ? rc : meta_int(st, "pid", m->pid);
    if (!rc) {
        sqlite3_bind_text(st, 1, "rate_hz", -1, SQLITE_STATIC);
        sqlite3_bind_double(st, 2, m->rate_hz);
        rc = step_reset(st);
    }
    rc = rc ? rc : meta_int(st, "duration_ns", (int64_t)m->duration_ns);
    if (m->epoch_ns)
        rc = rc ? rc : meta_int(st, "epoch_ns", (int64_t)m->epoch_ns);
    rc = rc ? rc : meta_int(st, "ticks", (int64_t)m->ticks);
    if (m->killed_signal) {
        rc = rc ? rc : meta_int(st, "killed_signal", m->killed_signal);
        rc = rc ? rc : meta_int(st, "oom_kills", m->oom_kills);
    }
    rc = rc ? rc : meta_int(st, "errors", (int64_t)m->errors);
    rc = rc ? rc : meta_int(st, "categories", m->categories);
    rc = rc ? rc : meta_text(st, "categories_note", m->categories_note);
    rc = rc ? rc : meta_text(st, "load_text", m->load_text);
    rc = rc ? rc : meta_text(st, "stages_text", m->stages_text);
    rc = rc ? rc : meta_text(st, "load_json", m->load_json);
    rc = rc ? rc : meta_text(st, "fingerprint", m->fingerprint);
    rc = rc ? rc : meta_int(st, "native", m->native);
    rc = rc ? rc : meta_int(st, "total", (int64_t)p->total);
    rc = rc ? rc : meta_int(st, "keep_samples", p->keep_samples);
    rc = rc ? rc : meta_int(st, "hide_idle", p->hide_idle);
    if (p->reqs_dropped)
        rc = rc ? rc : meta_int(st, "load_requests_dropped", (int64_t)p->reqs_dropped);
    sqlite3_finalize(st);
    if (rc)
        return rc;
    if (prep(db, "INSERT INTO categories(id, name) VALUES(?, ?)", &st))
        return ERR_IO;
    for (int i = 0; i < PCAT_N && !rc; i++) {
        sqlite3_bind_int(st, 1, i);
        sqlite3_bind_text(st, 2, sample_cat_names[i], -1, SQLITE_STATIC);
        rc = step_reset(st);
    }
    sqlite3_finalize(st);
    if (rc || prep(db, "INSERT INTO evidence_kinds(id, name) VALUES(?, ?)", &st))
        return ERR_IO;
    for (int i = 0; i < EV_N && !rc; i++) {
        sqlite3_bind_int(st, 1, i);
        sqlite3_bind_text(st, 2, ev_kind_names[i], -1, SQLITE_STATIC);
        rc = step_reset(st);
    }
    sqlite3_finalize(st);
    if (rc || prep(db, "INSERT INTO evidence(id, kind, label) VALUES(?, ?, ?)", &st))
        return ERR_IO;
    for (uint32_t i = 0; i < p->nevs && !rc; i++) {
        sqlite3_bind_int64(st, 1, (int64_t)i + 1);
        sqlite3_bind_int64(st, 2, p->evs[i].kind);
        sqlite3_bind_int64(st, 3, p->evs[i].label);
        rc = step_reset(st);
    }
    sqlite3_finalize(st);
    return rc;
}

static int save_tables(sqlite3 *db, const struct profile *p)
{
    sqlite3_stmt *st;
    int rc = 0;
    if (prep(db, "INSERT INTO strings(id, s) VALUES(?, ?)", &st))
        return ERR_IO;
    for (uint32_t i = 0; i < p->strs.len && !rc; i++) {
        sqlite3_bind_int64(st, 1, i);
        sqlite3_bind_text(st, 2, profile_string(p, i), (int)strtab_len(&p->strs, i), SQLITE_STATIC);
        rc = step_reset(st);
    }
    sqlite3_finalize(st);
    if (rc ||
        prep(db, "INSERT INTO frames(id, name, file, line, kind, col) VALUES(?,?,?,?,?,?)", &st))
        return ERR_IO;
    for (uint32_t i = 0; i < p->nframes && !rc; i++) {
        const struct pframe *f = profile_frame_at(p, i);
        sqlite3_bind_int64(st, 1, i);
        sqlite3_bind_int64(st, 2, f->name);
        sqlite3_bind_int64(st, 3, f->file);
        sqlite3_bind_int64(st, 4, f->line);
        sqlite3_bind_int64(st, 5, f->kind);
        sqlite3_bind_int64(st, 6, f->col);
        rc = step_reset(st);
    }
    sqlite3_finalize(st);
    if (rc || prep(db, "INSERT INTO stacks(id, parent, frame, depth) VALUES(?,?,?,?)", &st))
        return ERR_IO;
    for (uint32_t i = 1; i < p->nnodes && !rc; i++) {
        sqlite3_bind_int64(st, 1, i);
        sqlite3_bind_int64(st, 2, p->nodes[i].parent);
        sqlite3_bind_int64(st, 3, p->nodes[i].frame);
        sqlite3_bind_int64(st, 4, p->nodes[i].depth);
        rc = step_reset(st);
    }
    sqlite3_finalize(st);
    if (rc || prep(db, "INSERT INTO stack_counts(stack, cat, count) VALUES(?,?,?)", &st))
        return ERR_IO;
    for (uint32_t i = 1; i < p->nnodes && !rc; i++) {
        for (int c = 0; c < PCAT_N && !rc; c++) {
            uint64_t n = p->cat_counts[(size_t)i * PCAT_N + c];
            if (!n)
                continue;
            sqlite3_bind_int64(st, 1, i);
            sqlite3_bind_int64(st, 2, c);
            sqlite3_bind_int64(st, 3, (int64_t)n);
            rc = step_reset(st);
        }
    }
    sqlite3_finalize(st);
    if (rc || prep(db, "INSERT INTO stack_growth(stack, bytes) VALUES(?,?)", &st))
        return ERR_IO;
    for (uint32_t i = 1; i < p->nnodes && !rc; i++) {
        if (!p->mem_growth[i])
            continue;
        sqlite3_bind_int64(st, 1, i);
        sqlite3_bind_int64(st, 2, p->mem_growth[i]);
        rc = step_reset(st);
    }
    sqlite3_finalize(st);
    return rc;
}

static int save_samples(sqlite3 *db, const struct profile *p)
{
    sqlite3_stmt *st;
    int rc = 0;
    if (prep(db,
             "INSERT INTO samples(t_ns, stack, tid, pid, stage, state, flags, cat, weight, ev) "
             "VALUES(?,?,?,?,?,?,?,?,?,?)",
             &st))
        return ERR_IO;
    for (size_t i = 0; i < p->nsamples && !rc; i++) {
        const struct psample *s = &p->samples[i];
        sqlite3_bind_int64(st, 1, (int64_t)s->t_ns);
        sqlite3_bind_int64(st, 2, s->stack);
        sqlite3_bind_int64(st, 3, s->tid);
        sqlite3_bind_int64(st, 4, s->pid);
        sqlite3_bind_int64(st, 5, s->stage);
        sqlite3_bind_int(st, 6, s->state);
        sqlite3_bind_int(st, 7, s->flags);
        sqlite3_bind_int(st, 8, s->cat);
        sqlite3_bind_int(st, 9, s->weight ? s->weight : 1);
        sqlite3_bind_int(st, 10, s->ev);
        rc = step_reset(st);
    }
    sqlite3_finalize(st);
    if (rc || prep(db, "INSERT INTO memory(t_ns, pid, rss) VALUES(?,?,?)", &st))
        return ERR_IO;
    for (size_t i = 0; i < p->nmem && !rc; i++) {
        sqlite3_bind_int64(st, 1, (int64_t)p->mem[i].t_ns);
        sqlite3_bind_int64(st, 2, p->mem[i].pid);
        sqlite3_bind_int64(st, 3, (int64_t)p->mem[i].rss);
        rc = step_reset(st);
    }
    sqlite3_finalize(st);
    if (rc || prep(db,
                   "INSERT INTO processes(pid, ppid, name, python_version, first_ns, last_ns, "
                   "samples, peak_rss, exit_status) VALUES(?,?,?,?,?,?,?,?,?)",
                   &st))
        return ERR_IO;
    for (size_t i = 0; i < p->nprocs && !rc; i++) {
        const struct pproc *r = &p->procs[i];
        sqlite3_bind_int64(st, 1, r->pid);
        sqlite3_bind_int64(st, 2, r->ppid);
        if (r->name)
            sqlite3_bind_text(st, 3, r->name, -1, SQLITE_STATIC);
        else
            sqlite3_bind_null(st, 3);
        if (r->python_version)
            sqlite3_bind_text(st, 4, r->python_version, -1, SQLITE_STATIC);
        else
            sqlite3_bind_null(st, 4);
        sqlite3_bind_int64(st, 5, (int64_t)r->first_ns);
        sqlite3_bind_int64(st, 6, (int64_t)r->last_ns);
        sqlite3_bind_int64(st, 7, (int64_t)r->samples);
        sqlite3_bind_int64(st, 8, (int64_t)r->peak_rss);
        sqlite3_bind_int64(st, 9, r->exit_status);
        rc = step_reset(st);
    }
    sqlite3_finalize(st);
    if (rc || prep(db, "INSERT INTO threads(pid, tid, name) VALUES(?,?,?)", &st))
        return rc ? rc : ERR_IO;
    for (size_t i = 0; i < p->ntnames && !rc; i++) {
        const struct pthreadname *t = &p->tnames[i];
        sqlite3_bind_int64(st, 1, t->pid);
        sqlite3_bind_int64(st, 2, t->tid);
        sqlite3_bind_text(st, 3, profile_string(p, t->name), -1, SQLITE_STATIC);
        rc = step_reset(st);
    }
    sqlite3_finalize(st);
    return rc;
}

/* Format 3: the agent's spans, in the order kept. */
static int save_spans(sqlite3 *db, const struct profile *p)
{
    sqlite3_stmt *st;
    int rc = 0;
    if (prep(db,
             "INSERT INTO spans(start_ns, end_ns, request, name, tid, pid, kind) "
             "VALUES(?,?,?,?,?,?,?)",
             &st))
        return ERR_IO;
    for (size_t i = 0; i < p->nspans && !rc; i++) {
        const struct pspan *sp = &p->spans[i];
        sqlite3_bind_int64(st, 1, (int64_t)sp->start_ns);
        sqlite3_bind_int64(st, 2, (int64_t)sp->end_ns);
        sqlite3_bind_int64(st, 3, (int64_t)sp->request); /* the bits of a u64 id */
        sqlite3_bind_int64(st, 4, sp->name);
        sqlite3_bind_int64(st, 5, sp->tid);
        sqlite3_bind_int64(st, 6, sp->pid);
        sqlite3_bind_int64(st, 7, sp->kind);
        rc = step_reset(st);
    }
    sqlite3_finalize(st);
    return rc;
}

/* The load_requests table (added without a format bump: older files lack it, older crux
 * ignores it): record --load's requests, in the order kept. */
static int save_reqs(sqlite3 *db, const struct profile *p)
{
    sqlite3_stmt *st;
    int rc = 0;
    if (prep(db,
             "INSERT INTO load_requests(start_ns, end_ns, status, error, bytes, ttft_ns) "
             "VALUES(?,?,?,?,?,?)",
             &st))
        return ERR_IO;
    for (size_t i = 0; i < p->nreqs && !rc; i++) {
        const struct preq *r = &p->reqs[i];
        sqlite3_bind_int64(st, 1, (int64_t)r->start_ns);
        sqlite3_bind_int64(st, 2, (int64_t)r->end_ns);
        sqlite3_bind_int64(st, 3, r->status);
        if (r->error)
            sqlite3_bind_text(st, 4, profile_string(p, r->error), -1, SQLITE_STATIC);
        else
            sqlite3_bind_null(st, 4);
        sqlite3_bind_int64(st, 5, (int64_t)r->bytes);
        if (r->ttft_ns >= 0)
            sqlite3_bind_int64(st, 6, r->ttft_ns);
        else
            sqlite3_bind_null(st, 6);
        rc = step_reset(st);
    }
    sqlite3_finalize(st);
    return rc;
}

int store_save(const struct profile *p, const char *path, struct errbuf *eb)
{
    if (unlink(path) != 0 && errno != ENOENT)
        return errbuf_set(eb, ERR_IO, "cannot replace %s: %s", path, strerror(errno));
    sqlite3 *db = NULL;
    if (sqlite3_open_v2(path, &db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, NULL) != SQLITE_OK) {
        int rc = db_err(db, eb, "cannot create recording", path);
        sqlite3_close(db);
        return rc;
    }
    /* One transaction, no journal: a failed save leaves a file we delete anyway. */
    int rc = sqlite3_exec(db, "PRAGMA journal_mode=OFF; PRAGMA synchronous=OFF; BEGIN;", NULL, NULL,
                          NULL) == SQLITE_OK
                 ? 0
                 : ERR_IO;
    if (!rc && sqlite3_exec(db, schema, NULL, NULL, NULL) != SQLITE_OK)
        rc = ERR_IO;
    rc = rc ? rc : save_meta(db, p);
    rc = rc ? rc : save_tables(db, p);
    rc = rc ? rc : save_samples(db, p);
    rc = rc ? rc : save_spans(db, p);
    rc = rc ? rc : save_reqs(db, p);
    rc = rc ? rc : storegpu_save(db, p);
    rc = rc ? rc : storealloc_save(db, p);
    if (!rc && sqlite3_exec(db, "COMMIT;", NULL, NULL, NULL) != SQLITE_OK)
        rc = ERR_IO;
    if (rc) {
        rc = db_err(db, eb, "cannot write recording", path);
        sqlite3_close(db);
        (void)unlink(path);
        return rc;
    }
    if (sqlite3_close(db) != SQLITE_OK)
        return errbuf_set(eb, ERR_IO, "cannot close recording %s", path);
    return 0;
}

/* Loading. */

static int load_meta(sqlite3 *db, struct profile *p, struct errbuf *eb, const char *path,
                     int64_t *version_out)
{
    sqlite3_stmt *st;
    if (prep(db, "SELECT key, value FROM meta", &st)) {
        int code = sqlite3_errcode(db) & 0xff;
        if (code == SQLITE_CORRUPT || code == SQLITE_NOTADB)
            return db_err(db, eb, "cannot read recording", path);
        return errbuf_set(eb, ERR_ARG,
                          "%s is not a crux recording (no meta table): make one with crux record "
                          "--save",
                          path);
    }
    struct pmeta *m = &p->meta;
    int64_t version = -1;
    int rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        const char *k = (const char *)sqlite3_column_text(st, 0);
        const char *v = (const char *)sqlite3_column_text(st, 1);
        int64_t iv = sqlite3_column_int64(st, 1);
        if (!k)
            continue;
        if (strcmp(k, "format_version") == 0)
            version = iv;
        else if (strcmp(k, "command") == 0)
            profile_set_str(&m->command, v);
        else if (strcmp(k, "python_version") == 0)
            profile_set_str(&m->python_version, v);
        else if (strcmp(k, "pid") == 0)
            m->pid = (uint32_t)iv;
        else if (strcmp(k, "rate_hz") == 0)
            m->rate_hz = sqlite3_column_double(st, 1);
        else if (strcmp(k, "duration_ns") == 0)
            m->duration_ns = (uint64_t)iv;
        else if (strcmp(k, "epoch_ns") == 0)
            m->epoch_ns = (uint64_t)iv;
        else if (strcmp(k, "ticks") == 0)
            m->ticks = (uint64_t)iv;
        else if (strcmp(k, "killed_signal") == 0)
            m->killed_signal = iv > 0 && iv < 128 ? (int)iv : 0;
        else if (strcmp(k, "oom_kills") == 0)
            m->oom_kills = iv >= -1 ? iv : -1;
        else if (strcmp(k, "errors") == 0)
            m->errors = (uint64_t)iv;
        else if (strcmp(k, "categories") == 0)
            m->categories = iv != 0;
        else if (strcmp(k, "categories_note") == 0)
            profile_set_str(&m->categories_note, v);
        else if (strcmp(k, "load_text") == 0)
            profile_set_str(&m->load_text, v);
        else if (strcmp(k, "stages_text") == 0)
            profile_set_str(&m->stages_text, v);
        else if (strcmp(k, "load_json") == 0)
            profile_set_str(&m->load_json, v);
        else if (strcmp(k, "fingerprint") == 0)
            profile_set_str(&m->fingerprint, v);
        else if (strcmp(k, "native") == 0)
            m->native = iv != 0;
        else if (strcmp(k, "keep_samples") == 0)
            p->keep_samples = iv != 0;
        else if (strcmp(k, "hide_idle") == 0)
            p->hide_idle = iv != 0;
        else if (strcmp(k, "load_requests_dropped") == 0)
            p->reqs_dropped = (uint64_t)iv;
    }
    sqlite3_finalize(st);
    if (rc != SQLITE_DONE)
        return db_err(db, eb, "cannot read", path);
    if (version < 1)
        return errbuf_set(eb, ERR_ARG, "%s is not a crux recording (no format_version)", path);
    if (version > STORE_FORMAT_VERSION)
        return errbuf_set(eb, ERR_ARG,
                          "%s has format version %lld; this crux reads up to %d: upgrade crux",
                          path, (long long)version, STORE_FORMAT_VERSION);
    *version_out = version;
    return 0;
}

#define STORE_COUNT_MAX ((uint64_t)1 << 48) /* thread-samples in a recording */
#define STORE_BYTES_MAX ((uint64_t)1 << 56) /* memory growth summed over stacks, |bytes| */

static int corrupt(struct errbuf *eb, const char *path, const char *what)
{
    return errbuf_set(eb, ERR_CORRUPT, "recording %s is damaged: %s: record it again with --save",
                      path, what);
}

/* Thread names: recordings made before crux kept them have no `threads` table. */
/* Whether the file has table `name` (one added without a format bump); -1 when unreadable. */
static int has_table(sqlite3 *db, const char *name)
{
    sqlite3_stmt *st;
    if (prep(db, "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?", &st))
        return -1;
    sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
    int rc = sqlite3_step(st);
    sqlite3_finalize(st);
    return rc == SQLITE_ROW ? 1 : rc == SQLITE_DONE ? 0 : -1;
}

static int load_thread_names(sqlite3 *db, struct profile *p, struct errbuf *eb, const char *path)
{
    sqlite3_stmt *st;
    int rc = has_table(db, "threads");
    if (rc == 0)
        return 0;
    if (rc < 0 || prep(db, "SELECT pid, tid, name FROM threads", &st))
        return db_err(db, eb, "cannot read", path);
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        const char *name = (const char *)sqlite3_column_text(st, 2);
        profile_thread_name(p, (uint32_t)sqlite3_column_int64(st, 0),
                            (uint32_t)sqlite3_column_int64(st, 1), name ? name : "",
                            (size_t)sqlite3_column_bytes(st, 2));
    }
    sqlite3_finalize(st);
    return rc == SQLITE_DONE ? 0 : db_err(db, eb, "cannot read", path);
}

static int load_tables(sqlite3 *db, struct profile *p, struct errbuf *eb, const char *path,
                       int64_t version)
{
    sqlite3_stmt *st;
    int rc;
    if (prep(db, "SELECT id, s FROM strings ORDER BY id", &st))
        return db_err(db, eb, "cannot read", path);
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        int64_t id = sqlite3_column_int64(st, 0);
        const char *s = (const char *)sqlite3_column_text(st, 1);
        int n = sqlite3_column_bytes(st, 1);
        if (id == 0)
            continue;
        if (profile_str(p, s ? s : "", (size_t)n) != id) {
            sqlite3_finalize(st);
            return corrupt(eb, path, "string ids are not dense or repeat a string");
        }
    }
    sqlite3_finalize(st);
    if (rc != SQLITE_DONE)
        return db_err(db, eb, "cannot read", path);
    /* Recordings before format 4 have no columns: every frame's is 0 (none). */
    if (prep(db,
             version >= 4 ? "SELECT id, name, file, line, kind, col FROM frames ORDER BY id"
                          : "SELECT id, name, file, line, kind, 0 FROM frames ORDER BY id",
             &st))
        return db_err(db, eb, "cannot read", path);
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        int64_t id = sqlite3_column_int64(st, 0);
        int64_t name = sqlite3_column_int64(st, 1), file = sqlite3_column_int64(st, 2);
        int64_t kind = sqlite3_column_int64(st, 4), col = sqlite3_column_int64(st, 5);
        if (name < 0 || name >= p->strs.len || file < 0 || file >= p->strs.len || kind < 0 ||
            kind > FRAME_MARKER || col < 0 || col > INT32_MAX ||
            profile_frame_col(p, (uint32_t)name, (uint32_t)file,
                              (int32_t)sqlite3_column_int64(st, 3), (uint32_t)col,
                              (enum frame_kind)kind) != id) {
            sqlite3_finalize(st);
            return corrupt(eb, path, "a frame names a missing string or repeats a frame");
        }
    }
    sqlite3_finalize(st);
    if (rc != SQLITE_DONE)
        return db_err(db, eb, "cannot read", path);
    if (prep(db, "SELECT id, parent, frame FROM stacks ORDER BY id", &st))
        return db_err(db, eb, "cannot read", path);
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        int64_t id = sqlite3_column_int64(st, 0);
        int64_t parent = sqlite3_column_int64(st, 1), frame = sqlite3_column_int64(st, 2);
        if (parent < 0 || parent >= p->nnodes || frame < 0 || frame >= p->nframes ||
            profile_push(p, (uint32_t)parent, (uint32_t)frame) != id) {
            sqlite3_finalize(st);
            return corrupt(eb, path, "a stack names a missing parent or frame");
        }
    }
    sqlite3_finalize(st);
    if (rc != SQLITE_DONE)
        return db_err(db, eb, "cannot read", path);
    if (prep(db, "SELECT stack, cat, count FROM stack_counts", &st))
        return db_err(db, eb, "cannot read", path);
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        int64_t s = sqlite3_column_int64(st, 0), c = sqlite3_column_int64(st, 1);
        int64_t n = sqlite3_column_int64(st, 2);
        if (s <= 0 || s >= p->nnodes || c < 0 || c >= PCAT_N || n < 0) {
            sqlite3_finalize(st);
            return corrupt(eb, path, "a count names a missing stack or category");
        }
        /* Bounded so that no sum over stacks can wrap (a year of 64 threads at 10 kHz is
         * 2^44 thread-samples). */
        if ((uint64_t)n > STORE_COUNT_MAX || p->total + (uint64_t)n > STORE_COUNT_MAX) {
            sqlite3_finalize(st);
            return corrupt(eb, path, "sample counts past 2^48");
        }
        p->cat_counts[(size_t)s * PCAT_N + c] += (uint64_t)n;
        p->counts[s] += (uint64_t)n;
        p->total += (uint64_t)n;
    }
    sqlite3_finalize(st);
    if (rc != SQLITE_DONE)
        return db_err(db, eb, "cannot read", path);
    if (prep(db, "SELECT stack, bytes FROM stack_growth", &st))
        return db_err(db, eb, "cannot read", path);
    uint64_t moved = 0; /* sum of |bytes|: bounds every sum the views make */
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        int64_t s = sqlite3_column_int64(st, 0), bytes = sqlite3_column_int64(st, 1);
        if (s <= 0 || s >= p->nnodes) {
            sqlite3_finalize(st);
            return corrupt(eb, path, "a growth row names a missing stack");
        }
        uint64_t mag = bytes < 0 ? 0 - (uint64_t)bytes : (uint64_t)bytes;
        if (mag > STORE_BYTES_MAX || moved + mag > STORE_BYTES_MAX) {
            sqlite3_finalize(st);
            return corrupt(eb, path, "memory growth past 2^56 bytes");
        }
        moved += mag;
        p->mem_growth[s] += bytes;
    }
    sqlite3_finalize(st);
    return rc == SQLITE_DONE ? 0 : db_err(db, eb, "cannot read", path);
}

/* Format 2: the evidence table (pieces of evidence are numbered 1..n in order). */
static int load_evidence(sqlite3 *db, struct profile *p, struct errbuf *eb, const char *path)
{
    sqlite3_stmt *st;
    int rc;
    if (prep(db, "SELECT id, kind, label FROM evidence ORDER BY id", &st))
        return db_err(db, eb, "cannot read", path);
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        int64_t id = sqlite3_column_int64(st, 0), kind = sqlite3_column_int64(st, 1);
        int64_t label = sqlite3_column_int64(st, 2);
        if (kind < 0 || kind >= EV_N || label < 0 || label >= p->strs.len ||
            profile_evidence(p, (enum ev_kind)kind, strtab_get(&p->strs, (uint32_t)label)) != id) {
            sqlite3_finalize(st);
            return corrupt(eb, path, "a piece of evidence names a missing string or repeats");
        }
    }
    sqlite3_finalize(st);
    return rc == SQLITE_DONE ? 0 : db_err(db, eb, "cannot read", path);
}

static int load_samples(sqlite3 *db, struct profile *p, struct errbuf *eb, const char *path,
                        int64_t version)
{
    sqlite3_stmt *st;
    int rc;
    if (version >= 2 && (rc = load_evidence(db, p, eb, path)) != 0)
        return rc;
    if (prep(db,
             version >= 2 ? "SELECT t_ns, stack, tid, pid, stage, state, flags, cat, weight, ev "
                            "FROM samples ORDER BY rowid"
                          : "SELECT t_ns, stack, tid, pid, stage, state, flags, cat, weight, 0 "
                            "FROM samples ORDER BY rowid",
             &st))
        return db_err(db, eb, "cannot read", path);
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        int64_t stack = sqlite3_column_int64(st, 1), stage = sqlite3_column_int64(st, 4);
        int64_t cat = sqlite3_column_int64(st, 7), w = sqlite3_column_int64(st, 8);
        int64_t ev = sqlite3_column_int64(st, 9);
        if (stack < 0 || stack >= p->nnodes || stage < 0 || stage >= p->strs.len || cat < 0 ||
            cat >= PCAT_N || w < 0 || w > UINT16_MAX || ev < 0 || ev > p->nevs) {
            sqlite3_finalize(st);
            return corrupt(eb, path, "a sample names a missing stack, stage or category");
        }
        if (p->nsamples == p->capsamples) {
            p->capsamples = p->capsamples ? p->capsamples * 2 : 4096;
            p->samples = xrealloc(p->samples, p->capsamples * sizeof(*p->samples));
        }
        p->samples[p->nsamples++] = (struct psample){
            .t_ns = (uint64_t)sqlite3_column_int64(st, 0),
            .stack = (uint32_t)stack,
            .tid = (uint32_t)sqlite3_column_int64(st, 2),
            .pid = (uint32_t)sqlite3_column_int64(st, 3),
            .stage = (uint32_t)stage,
            .state = (uint8_t)sqlite3_column_int(st, 5),
            .flags = (uint8_t)sqlite3_column_int(st, 6),
            .cat = (uint8_t)cat,
            .weight = (uint16_t)w,
            .ev = (uint16_t)ev,
        };
    }
    sqlite3_finalize(st);
    if (rc != SQLITE_DONE)
        return db_err(db, eb, "cannot read", path);
    if (p->nsamples)
        p->keep_samples = true;
    if (prep(db, "SELECT t_ns, pid, rss FROM memory ORDER BY rowid", &st))
        return db_err(db, eb, "cannot read", path);
    while ((rc = sqlite3_step(st)) == SQLITE_ROW)
        profile_add_mem(p, (uint64_t)sqlite3_column_int64(st, 0),
                        (uint32_t)sqlite3_column_int64(st, 1),
                        (uint64_t)sqlite3_column_int64(st, 2));
    sqlite3_finalize(st);
    if (rc != SQLITE_DONE)
        return db_err(db, eb, "cannot read", path);
    if (prep(db,
             "SELECT pid, ppid, name, python_version, first_ns, last_ns, samples, peak_rss, "
             "exit_status FROM processes ORDER BY rowid",
             &st))
        return db_err(db, eb, "cannot read", path);
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        struct pproc *r = profile_proc(p, (uint32_t)sqlite3_column_int64(st, 0));
        r->ppid = (uint32_t)sqlite3_column_int64(st, 1);
        profile_set_str(&r->name, (const char *)sqlite3_column_text(st, 2));
        profile_set_str(&r->python_version, (const char *)sqlite3_column_text(st, 3));
        r->first_ns = (uint64_t)sqlite3_column_int64(st, 4);
        r->last_ns = (uint64_t)sqlite3_column_int64(st, 5);
        r->samples = (uint64_t)sqlite3_column_int64(st, 6);
        r->peak_rss = (uint64_t)sqlite3_column_int64(st, 7);
        r->exit_status = (int)sqlite3_column_int64(st, 8);
    }
    sqlite3_finalize(st);
    if (rc != SQLITE_DONE)
        return db_err(db, eb, "cannot read", path);
    return load_thread_names(db, p, eb, path);
}

static int load_spans(sqlite3 *db, struct profile *p, struct errbuf *eb, const char *path)
{
    sqlite3_stmt *st;
    int rc;
    if (prep(db, "SELECT start_ns, end_ns, request, name, tid, pid, kind FROM spans ORDER BY rowid",
             &st))
        return db_err(db, eb, "cannot read", path);
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        int64_t start = sqlite3_column_int64(st, 0), end = sqlite3_column_int64(st, 1);
        int64_t name = sqlite3_column_int64(st, 3), kind = sqlite3_column_int64(st, 6);
        if (start < 0 || end < start || name < 0 || name >= p->strs.len || kind < PSPAN_STAGE ||
            kind > PSPAN_MARK) {
            sqlite3_finalize(st);
            return corrupt(eb, path,
                           "a span names a missing string or kind, or ends before it "
                           "starts");
        }
        struct pspan sp = {
            .start_ns = (uint64_t)start,
            .end_ns = (uint64_t)end,
            .request = (uint64_t)sqlite3_column_int64(st, 2),
            .name = (uint32_t)name,
            .tid = (uint32_t)sqlite3_column_int64(st, 4),
            .pid = (uint32_t)sqlite3_column_int64(st, 5),
            .kind = (uint32_t)kind,
        };
        profile_add_span(p, &sp);
    }
    sqlite3_finalize(st);
    return rc == SQLITE_DONE ? 0 : db_err(db, eb, "cannot read", path);
}

static int load_reqs(sqlite3 *db, struct profile *p, struct errbuf *eb, const char *path)
{
    sqlite3_stmt *st;
    int rc = has_table(db, "load_requests");
    if (rc == 0)
        return 0; /* recorded before crux kept requests, or without --load */
    if (rc < 0 || prep(db,
                       "SELECT start_ns, end_ns, status, error, bytes, ttft_ns FROM load_requests "
                       "ORDER BY rowid",
                       &st))
        return db_err(db, eb, "cannot read", path);
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        int64_t start = sqlite3_column_int64(st, 0), end = sqlite3_column_int64(st, 1);
        if (start < 0 || end < start) {
            sqlite3_finalize(st);
            return corrupt(eb, path, "a load request ends before it starts");
        }
        const char *err = (const char *)sqlite3_column_text(st, 3);
        struct preq r = {
            .start_ns = (uint64_t)start,
            .end_ns = (uint64_t)end,
            .status = (int32_t)sqlite3_column_int64(st, 2),
            .error = err ? profile_str(p, err, (size_t)sqlite3_column_bytes(st, 3)) : 0,
            .bytes = (uint64_t)sqlite3_column_int64(st, 4),
            .ttft_ns = sqlite3_column_type(st, 5) == SQLITE_NULL ? -1 : sqlite3_column_int64(st, 5),
        };
        profile_add_req(p, &r);
    }
    sqlite3_finalize(st);
    return rc == SQLITE_DONE ? 0 : db_err(db, eb, "cannot read", path);
}

int store_load(const char *path, struct profile *p, struct errbuf *eb)
{
    if (access(path, R_OK) != 0)
        return errbuf_set(eb, ERR_IO, "cannot open recording %s: %s", path, strerror(errno));
    struct stat sb;
    if (stat(path, &sb) == 0 && !S_ISREG(sb.st_mode))
        return errbuf_set(eb, ERR_ARG,
                          "cannot open recording %s: not a regular file (give the file that "
                          "crux record --save wrote)",
                          path);
    sqlite3 *db = NULL;
    if (sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, NULL) != SQLITE_OK) {
        int rc = db_err(db, eb, "cannot open recording", path);
        sqlite3_close(db);
        return rc;
    }
    int64_t version = 0;
    int rc = load_meta(db, p, eb, path, &version);
    rc = rc ? rc : load_tables(db, p, eb, path, version);
    rc = rc ? rc : load_samples(db, p, eb, path, version);
    if (!rc && version >= 3)
        rc = load_spans(db, p, eb, path);
    rc = rc ? rc : load_reqs(db, p, eb, path);
    rc = rc ? rc : storegpu_load(db, p, eb, path);
    rc = rc ? rc : storealloc_load(db, p, eb, path);
    sqlite3_close(db);
    return rc;
}
