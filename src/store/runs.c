// SPDX-License-Identifier: MIT
// The run store (runs.h): runs.db, a SQLite index with one row per kept run, beside the kept
// files N.db and N.json. Writers take the database's write lock (BEGIN IMMEDIATE, waiting up
// to RUNS_BUSY_MS for another writer) only for the insert and a rename: the copy of a large
// recording happens before, into a staging file in the same folder.
#include "store/runs.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <fcntl.h>
#include <fnmatch.h>
#include <glob.h>
#include <limits.h>
#include <sqlite3.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "store/fingerprint.h"
#include "store/gitstate.h"
#include "store/machstate.h"
#include "util/xalloc.h"

#define RUNS_SCHEMA_VERSION 1
#define RUNS_BUSY_MS 15000
#define RUNS_JSON_MAX ((size_t)256 << 20) /* a load JSON read for its facts */

static const char schema[] =
    "CREATE TABLE IF NOT EXISTS meta(key TEXT PRIMARY KEY, value) WITHOUT ROWID;\n"
    "CREATE TABLE IF NOT EXISTS runs(id INTEGER PRIMARY KEY AUTOINCREMENT,\n"
    "  kind TEXT NOT NULL, file TEXT NOT NULL, label TEXT, command TEXT, time REAL NOT NULL,\n"
    "  git_commit TEXT, git_dirty INTEGER NOT NULL DEFAULT 0, fingerprint TEXT, fp_hash TEXT,\n"
    "  machine TEXT, experiment TEXT, variant TEXT, repeat INTEGER NOT NULL DEFAULT -1);\n"
    "CREATE INDEX IF NOT EXISTS runs_label ON runs(label);\n"
    "INSERT OR IGNORE INTO meta(key, value) VALUES('schema_version', 1);\n";

static const char columns[] = "id, kind, file, label, command, time, git_commit, git_dirty, "
                              "fingerprint, fp_hash, machine, experiment, variant, repeat";

static const char *const kind_names[] = {"recording", "load"};
static const char *const kind_exts[] = {".db", ".json"};

void runs_fingerprint(int pid, char **json, char **hash)
{
    fingerprint_collect(pid, NULL, json, hash);
}

char *runs_machine_state(void)
{
    return machstate_now();
}

void run_fini(struct run *r)
{
    free(r->path);
    free(r->label);
    free(r->command);
    free(r->git_commit);
    free(r->fingerprint);
    free(r->fp_hash);
    free(r->machine);
    free(r->experiment);
    free(r->variant);
    memset(r, 0, sizeof(*r));
    r->repeat = -1;
}

void run_list_fini(struct run_list *l)
{
    for (size_t i = 0; i < l->n; i++)
        run_fini(&l->v[i]);
    free(l->v);
    memset(l, 0, sizeof(*l));
}

/* Appends `r`, taking ownership of its strings. */
static void list_push(struct run_list *l, struct run *r)
{
    if (l->n == l->cap) {
        l->cap = l->cap ? l->cap * 2 : 8;
        l->v = xrealloc(l->v, l->cap * sizeof(*l->v));
    }
    l->v[l->n++] = *r;
    memset(r, 0, sizeof(*r));
    r->repeat = -1;
}

static char *dupn(const char *s)
{
    return s ? xstrdup(s) : NULL;
}

static char *join(const char *dir, const char *name)
{
    size_t n = strlen(dir) + strlen(name) + 2;
    char *p = xmalloc(n);
    snprintf(p, n, "%s/%s", dir, name);
    return p;
}

/* The one line for a row skipped (runs.h allows this layer to say it: the listing goes on). */
static void warn(const char *fmt, ...) PRINTF_LIKE(1, 2);
static void warn(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fputs("crux: ", stderr);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
}

/* SQLite's message on one line. */
static const char *db_msg(sqlite3 *db)
{
    return db ? sqlite3_errmsg(db) : "out of memory";
}

static int damaged(sqlite3 *db, const char *dir, struct errbuf *eb)
{
    int code = db ? sqlite3_errcode(db) & 0xff : SQLITE_NOMEM;
    if (code == SQLITE_CORRUPT || code == SQLITE_NOTADB)
        return errbuf_set(eb, ERR_CORRUPT,
                          "the run index %s/runs.db is damaged (%s): move it aside (mv %s/runs.db "
                          "%s/runs.db.bad); the kept files stay usable by path",
                          dir, db_msg(db), dir, dir);
    if (code == SQLITE_BUSY || code == SQLITE_LOCKED)
        return errbuf_set(eb, ERR_IO,
                          "the run index %s/runs.db stayed locked for %d s (%s): is another "
                          "crux stuck? try again",
                          dir, RUNS_BUSY_MS / 1000, db_msg(db));
    return errbuf_set(eb, ERR_IO, "cannot use the run index %s/runs.db: %s: check the folder", dir,
                      db_msg(db));
}

/* Opens DIR/runs.db. Reading a store that does not exist gives *db = NULL and 0. */
static int db_open(const char *dir, bool write, sqlite3 **db, struct errbuf *eb)
{
    char *path = join(dir, "runs.db");
    *db = NULL;
    int flags = SQLITE_OPEN_READWRITE;
    if (write)
        flags |= SQLITE_OPEN_CREATE;
    else if (access(path, F_OK) != 0)
        flags = 0;
    else if (access(path, W_OK) != 0)
        flags = SQLITE_OPEN_READONLY; /* others' store: readable, not repairable */
    int rc = 0;
    if (flags && sqlite3_open_v2(path, db, flags, NULL) != SQLITE_OK) {
        rc = damaged(*db, dir, eb);
        sqlite3_close(*db);
        *db = NULL;
    }
    free(path);
    if (*db)
        sqlite3_busy_timeout(*db, RUNS_BUSY_MS);
    return rc;
}

static int exec(sqlite3 *db, const char *sql)
{
    return sqlite3_exec(db, sql, NULL, NULL, NULL) == SQLITE_OK ? 0 : ERR_IO;
}

/* The schema version, 0 when the store has no index yet (created by a writer that has not
 * committed); -1 on a read error. */
static int64_t schema_version(sqlite3 *db)
{
    sqlite3_stmt *st;
    if (sqlite3_prepare_v2(db, "SELECT count(*) FROM sqlite_master WHERE name = 'runs'", -1, &st,
                           NULL) != SQLITE_OK)
        return -1;
    int64_t have = sqlite3_step(st) == SQLITE_ROW ? sqlite3_column_int64(st, 0) : -1;
    sqlite3_finalize(st);
    if (have <= 0)
        return have;
    if (sqlite3_prepare_v2(db, "SELECT value FROM meta WHERE key = 'schema_version'", -1, &st,
                           NULL) != SQLITE_OK)
        return -1;
    int64_t v = sqlite3_step(st) == SQLITE_ROW ? sqlite3_column_int64(st, 0) : -1;
    sqlite3_finalize(st);
    return v;
}

static int check_version(sqlite3 *db, const char *dir, int64_t v, struct errbuf *eb)
{
    if (v < 0)
        return damaged(db, dir, eb);
    if (v > RUNS_SCHEMA_VERSION)
        return errbuf_set(eb, ERR_ARG,
                          "the run index %s/runs.db has schema version %lld; this crux reads up "
                          "to %d: upgrade crux",
                          dir, (long long)v, RUNS_SCHEMA_VERSION);
    return 0;
}

/* Files. */

/* What a file holds, from its first bytes: a SQLite database or a JSON object. */
static int sniff(const char *path, enum run_kind *kind, struct errbuf *eb)
{
    struct stat sb;
    if (stat(path, &sb) != 0)
        return errbuf_set(eb, ERR_IO, "cannot open %s: %s", path, strerror(errno));
    if (!S_ISREG(sb.st_mode))
        return errbuf_set(eb, ERR_ARG, "%s is not a regular file: give a recording or a load JSON",
                          path);
    char head[64] = {0};
    FILE *f = fopen(path, "rb");
    if (!f)
        return errbuf_set(eb, ERR_IO, "cannot open %s: %s", path, strerror(errno));
    size_t n = fread(head, 1, sizeof(head) - 1, f);
    fclose(f);
    if (n >= 16 && memcmp(head, "SQLite format 3", 16) == 0) {
        *kind = RUN_RECORDING;
        return 0;
    }
    size_t i = strspn(head, " \t\r\n");
    if (i < n && head[i] == '{') {
        *kind = RUN_LOAD;
        return 0;
    }
    return errbuf_set(eb, ERR_ARG,
                      "%s is neither a crux recording nor a load result: give a file written "
                      "by crux record --save or crux load --json",
                      path);
}

/* command, python_version and fingerprint of a recording's meta table. */
static int recording_facts(const char *path, struct run *r, struct errbuf *eb)
{
    sqlite3 *db = NULL;
    sqlite3_stmt *st = NULL;
    char *version = NULL;
    int rc = 0;
    if (sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, NULL) != SQLITE_OK ||
        sqlite3_prepare_v2(db,
                           "SELECT key, value FROM meta WHERE key IN ('command', "
                           "'python_version', 'fingerprint')",
                           -1, &st, NULL) != SQLITE_OK) {
        rc = errbuf_set(eb, ERR_ARG,
                        "%s is not a crux recording (%s): give a file written by crux record "
                        "--save",
                        path, db_msg(db));
        goto out;
    }
    while (sqlite3_step(st) == SQLITE_ROW) {
        const char *k = (const char *)sqlite3_column_text(st, 0);
        const char *v = (const char *)sqlite3_column_text(st, 1);
        if (!k || !v)
            continue;
        if (!strcmp(k, "command") && !r->command)
            r->command = xstrdup(v);
        else if (!strcmp(k, "python_version") && !version)
            version = xstrdup(v);
        else if (!strcmp(k, "fingerprint") && !r->fingerprint)
            r->fingerprint = xstrdup(v);
    }
    /* A recording made before fingerprints knows its Python version only: no hash, since
     * the machine is unknown. */
    if (!r->fingerprint && version) {
        cJSON *o = cJSON_CreateObject();
        cJSON_AddStringToObject(o, "python_version", version);
        char *s = cJSON_PrintUnformatted(o);
        r->fingerprint = xstrdup(s ? s : "{}");
        cJSON_free(s);
        cJSON_Delete(o);
    } else if (r->fingerprint && !r->fp_hash) {
        r->fp_hash = fingerprint_hash(r->fingerprint, false);
    }
out:
    free(version);
    sqlite3_finalize(st);
    sqlite3_close(db);
    return rc;
}

/* The URL of a load JSON. */
static int load_facts(const char *path, struct run *r, struct errbuf *eb)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return errbuf_set(eb, ERR_IO, "cannot open %s: %s", path, strerror(errno));
    struct stat sb;
    size_t n = fstat(fileno(f), &sb) == 0 ? (size_t)sb.st_size : 0;
    if (n > RUNS_JSON_MAX)
        n = RUNS_JSON_MAX;
    char *text = xmalloc(n + 1);
    n = fread(text, 1, n, f);
    fclose(f);
    text[n] = '\0';
    cJSON *o = cJSON_ParseWithLength(text, n);
    free(text);
    const cJSON *url = cJSON_GetObjectItemCaseSensitive(o, "url");
    int rc = 0;
    if (!cJSON_IsObject(o))
        rc = errbuf_set(eb, ERR_ARG,
                        "%s is not a crux load result (not JSON): give a file written by crux "
                        "load --json",
                        path);
    else if (cJSON_IsString(url) && !r->command)
        r->command = xstrdup(url->valuestring);
    cJSON_Delete(o);
    return rc;
}

/* Fills kind, command, time and fingerprint of a file from the file itself. */
static int file_facts(const char *path, struct run *r, struct errbuf *eb)
{
    int rc = sniff(path, &r->kind, eb);
    if (rc)
        return rc;
    struct stat sb;
    if (r->time <= 0 && stat(path, &sb) == 0)
        r->time = (double)sb.st_mtim.tv_sec + (double)sb.st_mtim.tv_nsec / 1e9;
    return r->kind == RUN_RECORDING ? recording_facts(path, r, eb) : load_facts(path, r, eb);
}

/* A row's file is usable: present, a regular file, and of its kind. */
static bool row_file_ok(const char *dir, int64_t id, const char *path, enum run_kind kind)
{
    enum run_kind got;
    struct errbuf eb = {{0}};
    if (access(path, F_OK) != 0) {
        warn("run %lld of %s skipped: its file %s is missing: restore it, or forget the run "
             "(sqlite3 %s/runs.db 'DELETE FROM runs WHERE id = %lld')",
             (long long)id, dir, path, dir, (long long)id);
        return false;
    }
    if (sniff(path, &got, &eb) || got != kind) {
        warn("run %lld of %s skipped: %s is damaged (not a %s): forget the run (sqlite3 "
             "%s/runs.db 'DELETE FROM runs WHERE id = %lld')",
             (long long)id, dir, path, kind_names[kind], dir, (long long)id);
        return false;
    }
    return true;
}

static char *col_text(sqlite3_stmt *st, int i)
{
    const char *s = (const char *)sqlite3_column_text(st, i);
    return s ? xstrdup(s) : NULL;
}

/* One row into `r`; false (after the one-line warning) when it cannot be used. */
static bool row_to_run(sqlite3_stmt *st, const char *dir, struct run *r)
{
    int64_t id = sqlite3_column_int64(st, 0);
    const char *kind = (const char *)sqlite3_column_text(st, 1);
    const char *file = (const char *)sqlite3_column_text(st, 2);
    int k = kind && !strcmp(kind, "load") ? RUN_LOAD : kind && !strcmp(kind, "recording") ? 0 : -1;
    if (k < 0) {
        warn("run %lld of %s skipped: unknown kind '%s' (a newer crux?): upgrade crux",
             (long long)id, dir, kind ? kind : "");
        return false;
    }
    if (!file || !file[0] || strchr(file, '/') || file[0] == '.') {
        warn("run %lld of %s skipped: its row names no file of the store: forget the run "
             "(sqlite3 %s/runs.db 'DELETE FROM runs WHERE id = %lld')",
             (long long)id, dir, dir, (long long)id);
        return false;
    }
    char *path = join(dir, file);
    if (!row_file_ok(dir, id, path, (enum run_kind)k)) {
        free(path);
        return false;
    }
    *r = (struct run){.id = id, .kind = (enum run_kind)k, .path = path};
    r->label = col_text(st, 3);
    r->command = col_text(st, 4);
    r->time = sqlite3_column_double(st, 5);
    r->git_commit = col_text(st, 6);
    r->git_dirty = sqlite3_column_int(st, 7) != 0;
    r->fingerprint = col_text(st, 8);
    r->fp_hash = col_text(st, 9);
    r->machine = col_text(st, 10);
    r->experiment = col_text(st, 11);
    r->variant = col_text(st, 12);
    r->repeat = sqlite3_column_type(st, 13) == SQLITE_NULL ? -1 : sqlite3_column_int(st, 13);
    return true;
}

/* The rows with `label`, `command` within their command and id `id` (each NULL or 0: any),
 * in the order they were kept. */
static int query(const char *dir, const char *label, const char *command, int64_t id,
                 struct run_list *out, struct errbuf *eb)
{
    sqlite3 *db;
    int rc = db_open(dir, false, &db, eb);
    if (rc || !db)
        return rc;
    int64_t v = schema_version(db);
    rc = v == 0 ? 0 : check_version(db, dir, v, eb);
    if (rc || v == 0) {
        sqlite3_close(db);
        return rc;
    }
    char sql[512];
    snprintf(sql, sizeof(sql),
             "SELECT %s FROM runs WHERE (?1 IS NULL OR label = ?1) AND (?2 IS NULL OR "
             "instr(command, ?2) > 0) AND (?3 = 0 OR id = ?3) ORDER BY id",
             columns);
    sqlite3_stmt *st;
    if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) != SQLITE_OK) {
        rc = damaged(db, dir, eb);
        sqlite3_close(db);
        return rc;
    }
    sqlite3_bind_text(st, 1, label, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, command, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 3, id);
    int step;
    while ((step = sqlite3_step(st)) == SQLITE_ROW) {
        struct run r;
        if (row_to_run(st, dir, &r))
            list_push(out, &r);
    }
    if (step != SQLITE_DONE)
        rc = damaged(db, dir, eb);
    sqlite3_finalize(st);
    sqlite3_close(db);
    return rc;
}

int runs_list(const char *dir, const char *label, const char *command, struct run_list *out,
              struct errbuf *eb)
{
    return query(dir, label, command, 0, out, eb);
}

/* Adding. */

static int mkdir_p(const char *dir, struct errbuf *eb)
{
    char path[PATH_MAX];
    if (!dir[0])
        return errbuf_set(eb, ERR_ARG, "an empty store folder name: give --store DIR");
    if (snprintf(path, sizeof(path), "%s", dir) >= (int)sizeof(path))
        return errbuf_set(eb, ERR_ARG, "store folder name too long: %s", dir);
    for (char *p = path + 1;; p++) {
        if (*p != '/' && *p != '\0')
            continue;
        char c = *p;
        *p = '\0';
        if (mkdir(path, 0777) != 0 && errno != EEXIST)
            return errbuf_set(eb, ERR_IO, "cannot create the store folder %s: %s", path,
                              strerror(errno));
        *p = c;
        if (!c)
            break;
    }
    struct stat sb;
    if (stat(dir, &sb) != 0 || !S_ISDIR(sb.st_mode))
        return errbuf_set(eb, ERR_IO, "the store %s is not a folder: give --store a folder", dir);
    return 0;
}

int runs_incoming(const char *dir, enum run_kind kind, char **path, struct errbuf *eb)
{
    *path = NULL;
    int rc = mkdir_p(dir, eb);
    if (rc)
        return rc;
    const char *ext = kind_exts[kind == RUN_LOAD];
    size_t n = strlen(dir) + 32;
    char *p = xmalloc(n);
    snprintf(p, n, "%s/.incoming-XXXXXX%s", dir, ext);
    int fd = mkstemps(p, (int)strlen(ext));
    if (fd < 0) {
        rc = errbuf_set(eb, ERR_IO, "cannot create a file in %s: %s", dir, strerror(errno));
        free(p);
        return rc;
    }
    /* mkstemps makes the file private; a kept run is as readable as one written directly */
    mode_t mask = umask(0);
    umask(mask);
    (void)fchmod(fd, 0666 & ~mask);
    close(fd);
    *path = p;
    return 0;
}

static int copy_file(const char *from, const char *to, struct errbuf *eb)
{
    int in = open(from, O_RDONLY | O_CLOEXEC);
    if (in < 0)
        return errbuf_set(eb, ERR_IO, "cannot read %s: %s", from, strerror(errno));
    int out = open(to, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (out < 0) {
        int rc = errbuf_set(eb, ERR_IO, "cannot write %s: %s", to, strerror(errno));
        close(in);
        return rc;
    }
    struct stat sb;
    if (fstat(in, &sb) == 0)
        (void)fchmod(out, sb.st_mode & 0777); /* the staging file was made private */
    char block[1 << 16];
    ssize_t n;
    int rc = 0;
    while ((n = read(in, block, sizeof(block))) != 0) {
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 || write(out, block, (size_t)n) != n) {
            rc = errbuf_set(eb, ERR_IO, "cannot copy %s to %s: %s: check free space", from, to,
                            strerror(errno));
            break;
        }
    }
    close(in);
    if (close(out) != 0 && !rc)
        rc = errbuf_set(eb, ERR_IO, "cannot write %s: %s", to, strerror(errno));
    if (rc)
        (void)unlink(to);
    return rc;
}

/* Puts the run's file into the store under a staging name: renamed when `move` allows (same
 * file system), copied otherwise. *renamed says which, for undoing. */
static int stage(const char *dir, const struct run *r, bool move, char **staged, bool *renamed,
                 struct errbuf *eb)
{
    int rc = runs_incoming(dir, r->kind, staged, eb);
    if (rc)
        return rc;
    *renamed = move && rename(r->path, *staged) == 0;
    if (*renamed)
        return 0;
    rc = copy_file(r->path, *staged, eb);
    if (rc) {
        (void)unlink(*staged);
        free(*staged);
        *staged = NULL;
    }
    return rc;
}

static void bind_text(sqlite3_stmt *st, int i, const char *s)
{
    if (s)
        sqlite3_bind_text(st, i, s, -1, SQLITE_STATIC);
    else
        sqlite3_bind_null(st, i);
}

static int insert_row(sqlite3 *db, const struct run *r, int64_t *id)
{
    sqlite3_stmt *st;
    if (sqlite3_prepare_v2(db,
                           "INSERT INTO runs(kind, file, label, command, time, git_commit, "
                           "git_dirty, fingerprint, fp_hash, machine, experiment, variant, "
                           "repeat) VALUES(?, '', ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                           -1, &st, NULL) != SQLITE_OK)
        return ERR_IO;
    bind_text(st, 1, kind_names[r->kind == RUN_LOAD]);
    bind_text(st, 2, r->label);
    bind_text(st, 3, r->command);
    sqlite3_bind_double(st, 4, r->time);
    bind_text(st, 5, r->git_commit);
    sqlite3_bind_int(st, 6, r->git_dirty);
    bind_text(st, 7, r->fingerprint);
    bind_text(st, 8, r->fp_hash);
    bind_text(st, 9, r->machine);
    bind_text(st, 10, r->experiment);
    bind_text(st, 11, r->variant);
    sqlite3_bind_int(st, 12, r->repeat);
    int rc = sqlite3_step(st) == SQLITE_DONE ? 0 : ERR_IO;
    sqlite3_finalize(st);
    *id = sqlite3_last_insert_rowid(db);
    return rc;
}

static int set_file(sqlite3 *db, int64_t id, const char *file)
{
    sqlite3_stmt *st;
    if (sqlite3_prepare_v2(db, "UPDATE runs SET file = ? WHERE id = ?", -1, &st, NULL) != SQLITE_OK)
        return ERR_IO;
    sqlite3_bind_text(st, 1, file, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 2, id);
    int rc = sqlite3_step(st) == SQLITE_DONE ? 0 : ERR_IO;
    sqlite3_finalize(st);
    return rc;
}

/* In one transaction: the row, the staged file renamed to N.db or N.json, the row's file. */
static int commit_run(const char *dir, struct run *r, const char *staged, struct errbuf *eb)
{
    sqlite3 *db;
    int rc = db_open(dir, true, &db, eb);
    if (rc)
        return rc;
    if (exec(db, "BEGIN IMMEDIATE") || exec(db, schema)) {
        rc = damaged(db, dir, eb);
        goto out;
    }
    rc = check_version(db, dir, schema_version(db), eb);
    int64_t id = 0;
    if (!rc && insert_row(db, r, &id))
        rc = damaged(db, dir, eb);
    char file[64];
    snprintf(file, sizeof(file), "%lld%s", (long long)id, kind_exts[r->kind == RUN_LOAD]);
    char *path = join(dir, file);
    if (!rc && set_file(db, id, file))
        rc = damaged(db, dir, eb);
    if (!rc && rename(staged, path) != 0)
        rc = errbuf_set(eb, ERR_IO, "cannot rename %s to %s: %s", staged, path, strerror(errno));
    if (!rc && exec(db, "COMMIT")) {
        rc = damaged(db, dir, eb);
        (void)rename(path, staged);
    }
    if (rc) {
        (void)exec(db, "ROLLBACK");
        free(path);
    } else {
        free(r->path);
        r->path = path;
        r->id = id;
    }
out:
    sqlite3_close(db);
    return rc;
}

/* Fields left NULL: what the file says (command, fingerprint), now, the cwd's git state and,
 * for a run that carries no fingerprint, this machine's. */
static int fill_missing(const char *dir, struct run *r, struct errbuf *eb)
{
    struct run facts = {.repeat = -1};
    int rc = file_facts(r->path, &facts, eb);
    if (rc) {
        run_fini(&facts);
        return rc;
    }
    r->kind = facts.kind;
    if (!r->command)
        r->command = dupn(facts.command);
    if (!r->fingerprint && facts.fp_hash) {
        r->fingerprint = dupn(facts.fingerprint);
        r->fp_hash = dupn(facts.fp_hash);
    }
    run_fini(&facts);
    if (!r->fingerprint)
        fingerprint_collect(0, NULL, &r->fingerprint, &r->fp_hash);
    if (!r->fp_hash)
        r->fp_hash = fingerprint_hash(r->fingerprint, false);
    if (r->time <= 0) {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        r->time = (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
    }
    if (!r->git_commit)
        r->git_commit = gitstate_head(dir, &r->git_dirty);
    return 0;
}

int runs_add(const char *dir, struct run *r, bool move, struct errbuf *eb)
{
    if (!r->path)
        return errbuf_set(eb, ERR_ARG, "no file to keep in %s", dir);
    if (r->label) {
        int rc = runs_label_check(r->label, eb);
        if (rc)
            return rc;
    }
    int rc = fill_missing(dir, r, eb);
    if (rc)
        return rc;
    char *staged = NULL;
    bool renamed = false;
    rc = stage(dir, r, move, &staged, &renamed, eb);
    if (rc)
        return rc;
    char *original = xstrdup(r->path);
    rc = commit_run(dir, r, staged, eb);
    if (rc && renamed)
        (void)rename(staged, original); /* give the file back where it was */
    else if (rc)
        (void)unlink(staged);
    else if (move && !renamed)
        (void)unlink(original); /* moved by copying: another file system */
    free(original);
    free(staged);
    return rc;
}

int runs_label_check(const char *label, struct errbuf *eb)
{
    if (!label[0])
        return errbuf_set(eb, ERR_ARG, "an empty --label: give a name such as --label base");
    if (strspn(label, "0123456789") == strlen(label) ||
        (label[0] == '-' && strspn(label + 1, "0123456789") == strlen(label + 1)))
        return errbuf_set(eb, ERR_ARG,
                          "--label %s is a number, which names a run id: give a name such as "
                          "base or v2",
                          label);
    for (const char *c = label; *c; c++)
        if (strchr(",@/*?[]", *c) || (unsigned char)*c < 0x20 || *c == 0x7f)
            return errbuf_set(eb, ERR_ARG,
                              "--label '%s' holds '%c', which means something in run names "
                              "(',' lists, '@' picks, '*?[' match, '/' a path): choose a "
                              "name without it",
                              label, (unsigned char)*c < 0x20 ? '?' : *c);
    if (strlen(label) > 200)
        return errbuf_set(eb, ERR_ARG, "--label is longer than 200 characters: shorten it");
    return 0;
}

/* Resolving names. */

/* A file given by path; a store file (DIR/N.db) is its store run. */
static int resolve_file(const char *dir, const char *path, struct run_list *out, struct errbuf *eb)
{
    char *slash = strrchr(path, '/');
    const char *base = slash ? slash + 1 : path;
    char rdir[PATH_MAX], rparent[PATH_MAX], parent[PATH_MAX];
    snprintf(parent, sizeof(parent), "%.*s", slash ? (int)(slash - path) : 1, slash ? path : ".");
    char *end;
    long long id = strtoll(base, &end, 10);
    if (id > 0 && end != base && (!strcmp(end, ".db") || !strcmp(end, ".json")) &&
        realpath(dir, rdir) && realpath(parent[0] ? parent : "/", rparent) &&
        !strcmp(rdir, rparent)) {
        size_t before = out->n;
        int rc = query(dir, NULL, NULL, id, out, eb);
        if (rc || out->n > before)
            return rc;
    }
    struct run r = {.repeat = -1};
    int rc = sniff(path, &r.kind, eb);
    if (rc) {
        run_fini(&r);
        return rc;
    }
    /* A damaged recording is still one of the runs asked for: whoever reads it says what is
     * wrong with it and goes on with the others. */
    struct errbuf ignored = {{0}};
    (void)file_facts(path, &r, &ignored);
    r.path = xstrdup(path);
    list_push(out, &r);
    run_fini(&r);
    return 0;
}

static bool is_file(const char *path)
{
    struct stat sb;
    return stat(path, &sb) == 0 && S_ISREG(sb.st_mode);
}

/* A glob: the files it matches, in name order; failing that, the labels it matches. */
static int resolve_glob(const char *dir, const char *pattern, struct run_list *out,
                        struct errbuf *eb)
{
    glob_t g;
    int rc = 0;
    size_t before = out->n;
    if (glob(pattern, 0, NULL, &g) == 0) {
        for (size_t i = 0; i < g.gl_pathc && !rc; i++)
            if (is_file(g.gl_pathv[i]))
                rc = resolve_file(dir, g.gl_pathv[i], out, eb);
    }
    globfree(&g);
    if (rc || out->n > before)
        return rc;
    struct run_list all = {0};
    rc = query(dir, NULL, NULL, 0, &all, eb);
    for (size_t i = 0; i < all.n && !rc; i++)
        if (all.v[i].label && fnmatch(pattern, all.v[i].label, 0) == 0)
            list_push(out, &all.v[i]);
    run_list_fini(&all);
    if (!rc && out->n == before)
        rc = errbuf_set(eb, ERR_NOT_FOUND,
                        "nothing matches '%s': no file and no label in %s: check the pattern "
                        "or see crux runs",
                        pattern, dir);
    return rc;
}

static int resolve_id(const char *dir, const char *spec, struct run_list *out, struct errbuf *eb)
{
    size_t before = out->n;
    long long id = strtoll(spec, NULL, 10);
    int rc = id > 0 ? query(dir, NULL, NULL, id, out, eb) : 0;
    if (!rc && out->n == before)
        rc = errbuf_set(eb, ERR_NOT_FOUND, "no run %s in %s: see crux runs for the ids", spec, dir);
    return rc;
}

/* LABEL or LABEL@N. */
static int resolve_label(const char *dir, const char *spec, struct run_list *out, struct errbuf *eb)
{
    const char *at = strrchr(spec, '@');
    char label[256];
    snprintf(label, sizeof(label), "%.*s", at ? (int)(at - spec) : (int)strlen(spec), spec);
    long long nth = 0;
    if (at) {
        char *end;
        nth = strtoll(at + 1, &end, 10);
        if (end == at + 1 || *end || nth == 0)
            return errbuf_set(eb, ERR_ARG,
                              "'%s': the N of LABEL@N counts that label's runs (1 the oldest, "
                              "-1 the newest): e.g. %s@-1",
                              spec, label);
    }
    struct run_list l = {0};
    int rc = query(dir, label, NULL, 0, &l, eb);
    if (!rc && l.n == 0)
        rc = errbuf_set(eb, ERR_NOT_FOUND, "no run labelled '%s' in %s: see crux runs", label, dir);
    if (!rc && at && (nth > (long long)l.n || -nth > (long long)l.n))
        rc =
            errbuf_set(eb, ERR_NOT_FOUND,
                       "'%s': %zu run%s labelled '%s' in %s: give %s@1 to %s@%zu, or %s@-1 "
                       "for the newest",
                       spec, l.n, l.n == 1 ? " is" : "s are", label, dir, label, label, l.n, label);
    for (size_t i = 0; i < l.n && !rc; i++) {
        size_t want = nth > 0 ? (size_t)nth - 1 : nth < 0 ? l.n - (size_t)-nth : i;
        if (i == want || !at)
            list_push(out, &l.v[i]);
    }
    run_list_fini(&l);
    return rc;
}

static int resolve_one(const char *dir, const char *spec, struct run_list *out, struct errbuf *eb)
{
    struct stat sb;
    if (stat(spec, &sb) == 0)
        return S_ISREG(sb.st_mode)
                   ? resolve_file(dir, spec, out, eb)
                   : errbuf_set(eb, ERR_ARG,
                                "%s is a folder: give a recording, a load JSON or a run name",
                                spec);
    if (strpbrk(spec, "*?["))
        return resolve_glob(dir, spec, out, eb);
    if (spec[0] && strspn(spec, "0123456789") == strlen(spec))
        return resolve_id(dir, spec, out, eb);
    if (strchr(spec, '/'))
        return errbuf_set(eb, ERR_NOT_FOUND, "no file %s: check the path, or see crux runs", spec);
    size_t n = strlen(spec);
    int rc = resolve_label(dir, spec, out, eb);
    if (rc == ERR_NOT_FOUND && !strchr(spec, '@') &&
        ((n > 3 && !strcmp(spec + n - 3, ".db")) || (n > 5 && !strcmp(spec + n - 5, ".json"))))
        rc = errbuf_set(eb, ERR_NOT_FOUND,
                        "no file %s and no run labelled so in %s: check the path, or see crux "
                        "runs",
                        spec, dir);
    return rc;
}

int runs_resolve(const char *dir, const char *spec, struct run_list *out, struct errbuf *eb)
{
    if (!spec[0])
        return errbuf_set(eb, ERR_ARG, "an empty run name: give a file, a run id or a label");
    if (!strchr(spec, ',') || is_file(spec))
        return resolve_one(dir, spec, out, eb);
    char *copy = xstrdup(spec);
    int rc = 0;
    for (char *part = copy; part && !rc;) {
        char *comma = strchr(part, ',');
        if (comma)
            *comma = '\0';
        rc = part[0] ? resolve_one(dir, part, out, eb)
                     : errbuf_set(eb, ERR_ARG,
                                  "'%s' has an empty part: name a run between "
                                  "each pair of commas",
                                  spec);
        part = comma ? comma + 1 : NULL;
    }
    free(copy);
    return rc;
}
