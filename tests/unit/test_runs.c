// SPDX-License-Identifier: MIT
// Unit tests of the run store: runs kept and listed in a temporary folder, every way of naming
// them (id, label, LABEL@N, globs, comma lists, files), damaged entries skipped with one line,
// concurrent writers, and the fingerprint and machine state as JSON.
#include <cjson/cJSON.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "check.h"
#include "profile/profile.h"
#include "store/fingerprint.h"
#include "store/runs.h"
#include "store/store.h"

static char tmp[256];   /* this run's folder */
static char store[300]; /* the store inside it */

static void path_in(char *out, size_t n, const char *name)
{
    snprintf(out, n, "%s/%s", tmp, name);
}

/* A small recording at tmp/NAME with `command` and, when given, a fingerprint. */
static int make_recording(const char *name, const char *command, const char *fingerprint)
{
    struct profile p;
    profile_init(&p);
    profile_set_str(&p.meta.command, command);
    profile_set_str(&p.meta.python_version, "3.12.1");
    profile_set_str(&p.meta.fingerprint, fingerprint);
    profile_set_str(&p.meta.load_json, "{\"url\":\"http://127.0.0.1:1/\"}");
    uint32_t f =
        profile_frame(&p, profile_str(&p, "main", 4), profile_str(&p, "a.py", 4), 1, FRAME_PYTHON);
    profile_add(&p, &(struct psample){.stack = profile_stack(&p, &f, 1), .tid = 1, .pid = 1});
    char path[400];
    path_in(path, sizeof(path), name);
    struct errbuf eb = {{0}};
    int rc = store_save(&p, path, &eb);
    profile_fini(&p);
    return rc;
}

static int write_text(const char *name, const char *text)
{
    char path[400];
    path_in(path, sizeof(path), name);
    FILE *f = fopen(path, "w");
    if (!f)
        return -1;
    fputs(text, f);
    return fclose(f);
}

/* Adds tmp/NAME with `label`; the git state is given so that most tests need no git. */
static int add(const char *name, const char *label, bool move, int64_t *id)
{
    char path[400];
    path_in(path, sizeof(path), name);
    struct run r = {.repeat = -1};
    r.path = strdup(path);
    r.label = label ? strdup(label) : NULL;
    r.git_commit = strdup("0123456789abcdef0123456789abcdef01234567");
    struct errbuf eb = {{0}};
    int rc = runs_add(store, &r, move, &eb);
    if (rc)
        fprintf(stderr, "runs_add %s: %s\n", name, eb.msg);
    *id = r.id;
    run_fini(&r);
    return rc;
}

/* Runs f with stderr sent to a file; returns what was written there (the caller frees). */
static char *capture_stderr(int (*f)(void *), void *arg, int *rc)
{
    char path[400];
    path_in(path, sizeof(path), "stderr.txt");
    fflush(stderr);
    int saved = dup(2);
    FILE *out = fopen(path, "w+");
    dup2(fileno(out), 2);
    *rc = f(arg);
    fflush(stderr);
    dup2(saved, 2);
    close(saved);
    fseek(out, 0, SEEK_END);
    long n = ftell(out);
    char *text = calloc(1, (size_t)n + 1);
    fseek(out, 0, SEEK_SET);
    if (fread(text, 1, (size_t)n, out) != (size_t)n)
        text[0] = '\0';
    fclose(out);
    return text;
}

static size_t count_lines(const char *s)
{
    size_t n = 0;
    for (; *s; s++)
        n += *s == '\n';
    return n;
}

static int test_label_check(void)
{
    struct errbuf eb = {{0}};
    CHECK(runs_label_check("base", &eb) == 0, "plain label");
    CHECK(runs_label_check("v2.1-fast_path", &eb) == 0, "dots, dashes");
    CHECK(runs_label_check("", &eb) == ERR_ARG, "empty");
    CHECK(runs_label_check("12", &eb) == ERR_ARG && strstr(eb.msg, "run id"), "%s", eb.msg);
    CHECK(runs_label_check("a,b", &eb) == ERR_ARG && strstr(eb.msg, "','"), "%s", eb.msg);
    CHECK(runs_label_check("a@1", &eb) == ERR_ARG, "@");
    CHECK(runs_label_check("a*", &eb) == ERR_ARG, "glob");
    CHECK(runs_label_check("a/b", &eb) == ERR_ARG, "slash");
    CHECK(runs_label_check("a\nb", &eb) == ERR_ARG, "newline");
    return 0;
}

static int test_missing_store_is_empty(void)
{
    struct run_list l = {0};
    struct errbuf eb = {{0}};
    char nowhere[400];
    path_in(nowhere, sizeof(nowhere), "no-such-store");
    CHECK(runs_list(nowhere, NULL, NULL, &l, &eb) == 0 && l.n == 0, "%s", eb.msg);
    int rc = runs_resolve(nowhere, "base", &l, &eb);
    CHECK(rc == ERR_NOT_FOUND && strstr(eb.msg, "no run labelled 'base' in") &&
              strstr(eb.msg, "see crux runs"),
          "%d %s", rc, eb.msg);
    run_list_fini(&l);
    return 0;
}

static int test_add_and_list(void)
{
    const char *fp = "{\"cpu_count\":4,\"kernel\":\"6.1\",\"python_version\":\"3.12.1\"}";
    CHECK(make_recording("a.db", "python3 app.py --fast", fp) == 0, "save a.db");
    CHECK(make_recording("b.db", "python3 app.py --slow", fp) == 0, "save b.db");
    CHECK(make_recording("c.db", "python3 other.py", NULL) == 0, "save c.db");
    int64_t id;
    CHECK(add("a.db", "base", false, &id) == 0 && id == 1, "id %lld", (long long)id);
    CHECK(add("b.db", "base", false, &id) == 0 && id == 2, "id %lld", (long long)id);
    CHECK(add("c.db", "new", true, &id) == 0 && id == 3, "id %lld", (long long)id);
    char moved[400];
    path_in(moved, sizeof(moved), "c.db");
    CHECK(access(moved, F_OK) != 0, "a moved file leaves its place");
    char kept[400];
    snprintf(kept, sizeof(kept), "%s/3.db", store);
    CHECK(access(kept, R_OK) == 0, "kept as N.db");

    struct run_list l = {0};
    struct errbuf eb = {{0}};
    CHECK(runs_list(store, NULL, NULL, &l, &eb) == 0 && l.n == 3, "%s", eb.msg);
    CHECK(l.v[0].id == 1 && l.v[1].id == 2 && l.v[2].id == 3, "oldest first");
    CHECK(l.v[0].kind == RUN_RECORDING && !strcmp(l.v[0].label, "base"), "kind, label");
    CHECK(!strcmp(l.v[0].command, "python3 app.py --fast"), "command from the recording");
    CHECK(l.v[0].fingerprint && strstr(l.v[0].fingerprint, "\"cpu_count\":4"),
          "fingerprint from the recording: %s", l.v[0].fingerprint);
    CHECK(l.v[0].fp_hash && strlen(l.v[0].fp_hash) == 12, "fp_hash");
    CHECK(!strcmp(l.v[0].fp_hash, l.v[1].fp_hash), "same fingerprint, same hash");
    CHECK(l.v[2].fingerprint && strstr(l.v[2].fingerprint, "cpu_count"),
          "no fingerprint in the file: this machine's");
    CHECK(l.v[0].time > 1.6e9 && l.v[0].repeat == -1 && !l.v[0].git_dirty, "time, repeat");
    CHECK(strstr(l.v[0].path, "/1.db") && access(l.v[0].path, R_OK) == 0, "%s", l.v[0].path);
    run_list_fini(&l);

    CHECK(runs_list(store, "base", NULL, &l, &eb) == 0 && l.n == 2, "label filter");
    run_list_fini(&l);
    CHECK(runs_list(store, NULL, "--slow", &l, &eb) == 0 && l.n == 1 && l.v[0].id == 2,
          "command filter");
    run_list_fini(&l);
    return 0;
}

static int test_add_load_json(void)
{
    CHECK(write_text("load.json", "{\"url\": \"http://127.0.0.1:8000/v1\", \"stats\": {}}\n") == 0,
          "write");
    int64_t id;
    CHECK(add("load.json", "lat", true, &id) == 0 && id == 4, "id %lld", (long long)id);
    struct run_list l = {0};
    struct errbuf eb = {{0}};
    CHECK(runs_resolve(store, "lat", &l, &eb) == 0 && l.n == 1, "%s", eb.msg);
    CHECK(l.v[0].kind == RUN_LOAD && strstr(l.v[0].path, "/4.json"), "%s", l.v[0].path);
    CHECK(!strcmp(l.v[0].command, "http://127.0.0.1:8000/v1"), "command: the URL");
    run_list_fini(&l);
    return 0;
}

static int resolve_ids(const char *spec, const int64_t *want, size_t n)
{
    struct run_list l = {0};
    struct errbuf eb = {{0}};
    int rc = runs_resolve(store, spec, &l, &eb);
    CHECK(rc == 0, "%s: %s", spec, eb.msg);
    CHECK(l.n == n, "%s: %zu runs, want %zu", spec, l.n, n);
    for (size_t i = 0; i < n; i++)
        CHECK(l.v[i].id == want[i], "%s: run %zu is %lld, want %lld", spec, i, (long long)l.v[i].id,
              (long long)want[i]);
    run_list_fini(&l);
    return 0;
}

static int resolve_fails(const char *spec, int want_rc, const char *want_msg)
{
    struct run_list l = {0};
    struct errbuf eb = {{0}};
    int rc = runs_resolve(store, spec, &l, &eb);
    run_list_fini(&l);
    CHECK(rc == want_rc, "%s: rc %d, want %d (%s)", spec, rc, want_rc, eb.msg);
    CHECK(strstr(eb.msg, want_msg), "%s: message '%s' lacks '%s'", spec, eb.msg, want_msg);
    return 0;
}

static int test_resolve_names(void)
{
    CHECK(resolve_ids("2", (int64_t[]){2}, 1) == 0, "id");
    CHECK(resolve_ids("base", (int64_t[]){1, 2}, 2) == 0, "label");
    CHECK(resolve_ids("base@1", (int64_t[]){1}, 1) == 0, "@1 the oldest");
    CHECK(resolve_ids("base@2", (int64_t[]){2}, 1) == 0, "@2");
    CHECK(resolve_ids("base@-1", (int64_t[]){2}, 1) == 0, "@-1 the newest");
    CHECK(resolve_ids("base@-2", (int64_t[]){1}, 1) == 0, "@-2");
    CHECK(resolve_ids("new,base@1,4", (int64_t[]){3, 1, 4}, 3) == 0, "comma list in order");
    CHECK(resolve_ids("ba*", (int64_t[]){1, 2}, 2) == 0, "a glob over labels");
    CHECK(resolve_fails("nope", ERR_NOT_FOUND, "no run labelled 'nope' in ") == 0, "label");
    CHECK(resolve_fails("base@3", ERR_NOT_FOUND, "give base@1 to base@2") == 0, "@3");
    CHECK(resolve_fails("base@-3", ERR_NOT_FOUND, "2 runs are labelled 'base'") == 0, "@-3");
    CHECK(resolve_fails("base@x", ERR_ARG, "1 the oldest") == 0, "@x");
    CHECK(resolve_fails("base@0", ERR_ARG, "-1 the newest") == 0, "@0");
    CHECK(resolve_fails("99", ERR_NOT_FOUND, "no run 99 in") == 0, "id");
    CHECK(resolve_fails("base,", ERR_ARG, "empty part") == 0, "empty part");
    CHECK(resolve_fails("zz*", ERR_NOT_FOUND, "nothing matches 'zz*'") == 0, "glob");
    CHECK(resolve_fails("missing.db", ERR_NOT_FOUND, "no file missing.db") == 0, "file");
    CHECK(resolve_fails("/no/such/file.db", ERR_NOT_FOUND, "check the path") == 0, "path");
    return 0;
}

static int test_resolve_files(void)
{
    CHECK(make_recording("g-2.db", "python3 g2.py", NULL) == 0, "save");
    CHECK(make_recording("g-1.db", "python3 g1.py", NULL) == 0, "save");
    char pattern[400];
    path_in(pattern, sizeof(pattern), "g-*.db");
    struct run_list l = {0};
    struct errbuf eb = {{0}};
    CHECK(runs_resolve(store, pattern, &l, &eb) == 0 && l.n == 2, "%s", eb.msg);
    CHECK(strstr(l.v[0].path, "g-1.db") && strstr(l.v[1].path, "g-2.db"), "name order");
    CHECK(l.v[0].id == 0 && !strcmp(l.v[0].command, "python3 g1.py"), "facts of the file");
    CHECK(l.v[0].fingerprint && strstr(l.v[0].fingerprint, "3.12.1") && !l.v[0].fp_hash,
          "an old recording: its Python version, no hash");
    CHECK(l.v[0].time > 1.6e9, "time: the file's");
    run_list_fini(&l);
    /* a file inside the store is its run; a file named like a label wins over the label */
    char kept[400];
    snprintf(kept, sizeof(kept), "%s/2.db", store);
    CHECK(runs_resolve(store, kept, &l, &eb) == 0 && l.n == 1 && l.v[0].id == 2, "%s", eb.msg);
    CHECK(l.v[0].label && !strcmp(l.v[0].label, "base"), "with its label");
    run_list_fini(&l);
    char cwd[512];
    CHECK(getcwd(cwd, sizeof(cwd)) != NULL && chdir(tmp) == 0, "chdir");
    CHECK(make_recording("base", "python3 file-named-base.py", NULL) == 0, "save");
    int rc = runs_resolve(store, "base", &l, &eb);
    CHECK(chdir(cwd) == 0, "chdir back");
    CHECK(rc == 0 && l.n == 1 && l.v[0].id == 0, "the file wins: %s", eb.msg);
    run_list_fini(&l);
    CHECK(write_text("junk.txt", "not a run\n") == 0, "write");
    path_in(pattern, sizeof(pattern), "junk.txt");
    CHECK(resolve_fails(pattern, ERR_ARG, "neither a crux recording nor") == 0, "junk");
    return 0;
}

static int list_store(void *arg)
{
    struct run_list *l = arg;
    struct errbuf eb = {{0}};
    int rc = runs_list(store, NULL, NULL, l, &eb);
    if (rc)
        fprintf(stderr, "crux: %s\n", eb.msg);
    return rc;
}

static int test_damaged_entries_skipped(void)
{
    char kept[400];
    snprintf(kept, sizeof(kept), "%s/1.db", store);
    CHECK(rename(kept, "/tmp/crux-test-runs-aside.db") == 0, "hide 1.db");
    snprintf(kept, sizeof(kept), "%s/2.db", store);
    FILE *f = fopen(kept, "w");
    CHECK(f && fputs("garbage", f) >= 0 && fclose(f) == 0, "damage 2.db");
    struct run_list l = {0};
    int rc;
    char *err = capture_stderr(list_store, &l, &rc);
    CHECK(rc == 0 && l.n == 2 && l.v[0].id == 3 && l.v[1].id == 4, "%d %zu", rc, l.n);
    CHECK(count_lines(err) == 2, "one line per skipped run: %s", err);
    CHECK(strstr(err, "run 1 of") && strstr(err, "is missing") && strstr(err, "DELETE FROM runs"),
          "%s", err);
    CHECK(strstr(err, "run 2 of") && strstr(err, "damaged"), "%s", err);
    free(err);
    run_list_fini(&l);
    CHECK(rename("/tmp/crux-test-runs-aside.db", kept) == 0, "put back as 2.db");
    return 0;
}

static int test_damaged_index(void)
{
    char dir[400], db[500];
    path_in(dir, sizeof(dir), "broken");
    mkdir(dir, 0777);
    snprintf(db, sizeof(db), "%s/runs.db", dir);
    FILE *f = fopen(db, "w");
    CHECK(f, "create");
    for (int i = 0; i < 200; i++)
        fputs("this is not a database. ", f);
    fclose(f);
    struct run_list l = {0};
    struct errbuf eb = {{0}};
    int rc = runs_list(dir, NULL, NULL, &l, &eb);
    CHECK(rc == ERR_CORRUPT && l.n == 0, "rc %d", rc);
    CHECK(strstr(eb.msg, "runs.db is damaged") && strstr(eb.msg, "move it aside"), "%s", eb.msg);
    CHECK(runs_resolve(dir, "base", &l, &eb) == ERR_CORRUPT, "resolve");
    CHECK(make_recording("d.db", "python3 d.py", NULL) == 0, "save");
    char path[400];
    path_in(path, sizeof(path), "d.db");
    struct run r = {.repeat = -1, .path = strdup(path), .git_commit = strdup("abcdef0")};
    rc = runs_add(dir, &r, true, &eb);
    CHECK(rc == ERR_CORRUPT && strstr(eb.msg, "damaged"), "add: %d %s", rc, eb.msg);
    CHECK(r.id == 0 && !strcmp(r.path, path) && access(path, R_OK) == 0,
          "a failed add leaves the file where it was");
    run_fini(&r);
    return 0;
}

static int test_newer_schema_refused(void)
{
    char dir[400];
    path_in(dir, sizeof(dir), "newer");
    CHECK(make_recording("e.db", "python3 e.py", NULL) == 0, "save");
    char path[400];
    path_in(path, sizeof(path), "e.db");
    struct run r = {.repeat = -1, .path = strdup(path), .git_commit = strdup("abcdef0")};
    struct errbuf eb = {{0}};
    CHECK(runs_add(dir, &r, false, &eb) == 0, "%s", eb.msg);
    run_fini(&r);
    char cmd[600];
    snprintf(cmd, sizeof(cmd),
             "sqlite3 %s/runs.db \"UPDATE meta SET value = 99 WHERE key = 'schema_version'\"", dir);
    if (system(cmd) != 0)
        return 0; /* no sqlite3 shell here */
    struct run_list l = {0};
    CHECK(runs_list(dir, NULL, NULL, &l, &eb) == ERR_ARG && strstr(eb.msg, "upgrade crux"), "%s",
          eb.msg);
    return 0;
}

static int test_git_commit_filled(void)
{
    /* unit tests run in the repository: the cwd's commit is filled in */
    CHECK(make_recording("git.db", "python3 git.py", NULL) == 0, "save");
    char path[400], dir[400];
    path_in(path, sizeof(path), "git.db");
    path_in(dir, sizeof(dir), "gitstore");
    struct run r = {.repeat = -1, .path = strdup(path)};
    struct errbuf eb = {{0}};
    CHECK(runs_add(dir, &r, false, &eb) == 0, "%s", eb.msg);
    if (system("git rev-parse HEAD >/dev/null 2>&1") == 0)
        CHECK(r.git_commit && strlen(r.git_commit) == 40, "commit %s", r.git_commit);
    run_fini(&r);
    return 0;
}

static int test_concurrent_writers(void)
{
    char dir[400];
    path_in(dir, sizeof(dir), "busy");
    CHECK(make_recording("w.db", "python3 w.py", NULL) == 0, "save");
    enum { WRITERS = 3, EACH = 4 };
    pid_t kids[WRITERS];
    for (int k = 0; k < WRITERS; k++) {
        kids[k] = fork();
        CHECK(kids[k] >= 0, "fork");
        if (kids[k] == 0) {
            int bad = 0;
            for (int i = 0; i < EACH; i++) {
                char path[400];
                path_in(path, sizeof(path), "w.db");
                struct run r = {.repeat = i, .path = strdup(path), .git_commit = strdup("ab12cd3")};
                struct errbuf eb = {{0}};
                if (runs_add(dir, &r, false, &eb)) {
                    fprintf(stderr, "writer %d: %s\n", k, eb.msg);
                    bad = 1;
                }
                run_fini(&r);
            }
            _exit(bad);
        }
    }
    for (int k = 0; k < WRITERS; k++) {
        int st = 0;
        CHECK(waitpid(kids[k], &st, 0) == kids[k] && WIFEXITED(st) && WEXITSTATUS(st) == 0,
              "writer %d failed", k);
    }
    struct run_list l = {0};
    struct errbuf eb = {{0}};
    CHECK(runs_list(dir, NULL, NULL, &l, &eb) == 0 && l.n == WRITERS * EACH, "%zu: %s", l.n,
          eb.msg);
    for (size_t i = 0; i < l.n; i++)
        CHECK(l.v[i].id == (int64_t)i + 1 && access(l.v[i].path, R_OK) == 0, "run %zu", i);
    run_list_fini(&l);
    return 0;
}

static int test_recording_meta_roundtrip(void)
{
    CHECK(make_recording("m.db", "python3 m.py", "{\"cpu_count\":2}") == 0, "save");
    char path[400];
    path_in(path, sizeof(path), "m.db");
    struct profile p;
    profile_init(&p);
    struct errbuf eb = {{0}};
    int rc = store_load(path, &p, &eb);
    bool ok = rc == 0 && p.meta.fingerprint && !strcmp(p.meta.fingerprint, "{\"cpu_count\":2}") &&
              p.meta.load_json && strstr(p.meta.load_json, "127.0.0.1");
    profile_fini(&p);
    CHECK(ok, "fingerprint and load_json read back (%d %s)", rc, eb.msg);
    return 0;
}

static cJSON *parse_object(const char *json)
{
    cJSON *o = cJSON_Parse(json);
    if (!cJSON_IsObject(o)) {
        cJSON_Delete(o);
        return NULL;
    }
    return o;
}

static int test_fingerprint_json(void)
{
    char *json, *hash;
    runs_fingerprint(0, &json, &hash);
    cJSON *o = parse_object(json);
    CHECK(o, "not a JSON object: %s", json);
    const cJSON *n = cJSON_GetObjectItem(o, "cpu_count");
    CHECK(cJSON_IsNumber(n) && n->valuedouble >= 1, "cpu_count: %s", json);
    CHECK(cJSON_IsString(cJSON_GetObjectItem(o, "kernel")), "kernel");
    CHECK(cJSON_IsString(cJSON_GetObjectItem(o, "arch")), "arch");
    CHECK(cJSON_IsString(cJSON_GetObjectItem(o, "libc")), "libc");
    CHECK(!cJSON_GetObjectItem(o, "python_version"), "no process, no Python");
    for (const cJSON *c = o->child; c; c = c->next)
        CHECK(!cJSON_IsObject(c) && !cJSON_IsArray(c), "flat: %s", c->string);
    cJSON_Delete(o);
    CHECK(strlen(hash) == 12 && strspn(hash, "0123456789abcdef") == 12, "hash %s", hash);
    char *again = fingerprint_hash(json, false);
    CHECK(!strcmp(again, hash), "the hash is of the JSON");
    free(again);
    /* host and memory size are facts, not part of the hash */
    const char *a = "{\"cpu_model\":\"X\",\"cpu_count\":8,\"host\":\"a\",\"mem_total_kb\":1}";
    const char *b = "{\"cpu_model\":\"X\",\"cpu_count\":8,\"host\":\"b\",\"mem_total_kb\":2}";
    const char *c = "{\"cpu_model\":\"X\",\"cpu_count\":4,\"host\":\"a\",\"mem_total_kb\":1}";
    char *ha = fingerprint_hash(a, false), *hb = fingerprint_hash(b, false);
    char *hc = fingerprint_hash(c, false);
    CHECK(!strcmp(ha, hb) && strcmp(ha, hc), "%s %s %s", ha, hb, hc);
    free(ha);
    free(hb);
    free(hc);
    CHECK(fingerprint_hash("[1]", false) == NULL && fingerprint_hash("{", false) == NULL,
          "not an object");
    free(json);
    free(hash);
    return 0;
}

/* A process (sleep) with PYTHONPATH at a folder of fake distributions: their versions are
 * found, and the machine part of its hash equals this machine's. */
static int test_fingerprint_packages(void)
{
    char sp[400], d[500];
    path_in(sp, sizeof(sp), "site");
    mkdir(sp, 0777);
    snprintf(d, sizeof(d), "%s/numpy-1.26.4.dist-info", sp);
    mkdir(d, 0777);
    CHECK(write_text("site/numpy-1.26.4.dist-info/METADATA",
                     "Metadata-Version: 2.1\nName: numpy\nVersion: 1.26.4\n\nBody\n") == 0,
          "write");
    snprintf(d, sizeof(d), "%s/onnxruntime_gpu-1.17.1.dist-info", sp);
    mkdir(d, 0777);
    CHECK(write_text("site/torch-2.1.0+cpu-py3.11.egg-info",
                     "Metadata-Version: 1.0\nName: torch\nVersion: 2.1.0+cpu\n") == 0,
          "write");
    char env_pp[500];
    snprintf(env_pp, sizeof(env_pp), "PYTHONPATH=/nonexistent:%s", sp);
    pid_t kid = fork();
    CHECK(kid >= 0, "fork");
    if (kid == 0) {
        char *argv[] = {"sleep", "10", NULL};
        char *envp[] = {env_pp, NULL};
        execve("/bin/sleep", argv, envp);
        _exit(127);
    }
    usleep(100 * 1000); /* exec done */
    char *json, *hash, *machine_json, *machine_hash;
    fingerprint_collect(kid, "3.11.7", &json, &hash);
    runs_fingerprint(0, &machine_json, &machine_hash);
    kill(kid, SIGKILL);
    waitpid(kid, NULL, 0);
    cJSON *o = parse_object(json);
    CHECK(o, "not an object: %s", json);
    const cJSON *v = cJSON_GetObjectItem(o, "pkg_numpy");
    CHECK(cJSON_IsString(v) && !strcmp(v->valuestring, "1.26.4"), "numpy: %s", json);
    v = cJSON_GetObjectItem(o, "pkg_torch");
    CHECK(cJSON_IsString(v) && !strcmp(v->valuestring, "2.1.0+cpu"), "torch: %s", json);
    v = cJSON_GetObjectItem(o, "pkg_onnxruntime");
    CHECK(cJSON_IsString(v) && !strcmp(v->valuestring, "1.17.1 (gpu)"), "onnxruntime: %s", json);
    v = cJSON_GetObjectItem(o, "python_version");
    CHECK(cJSON_IsString(v) && !strcmp(v->valuestring, "3.11.7"), "version given: %s", json);
    v = cJSON_GetObjectItem(o, "site_packages");
    CHECK(cJSON_IsString(v) && strstr(v->valuestring, sp), "site_packages: %s", json);
    CHECK(!cJSON_GetObjectItem(o, "pkg_transformers"), "absent packages are left out");
    cJSON_Delete(o);
    char *m1 = fingerprint_hash(json, true), *m2 = fingerprint_hash(machine_json, true);
    CHECK(!strcmp(m1, m2) && strcmp(hash, m1), "machine parts equal, whole hashes not");
    free(m1);
    free(m2);
    free(json);
    free(hash);
    free(machine_json);
    free(machine_hash);
    return 0;
}

static int test_machine_state(void)
{
    char *json = runs_machine_state();
    cJSON *o = parse_object(json);
    CHECK(o, "not an object: %s", json);
    CHECK(cJSON_IsNumber(cJSON_GetObjectItem(o, "load1")), "load1: %s", json);
    CHECK(cJSON_IsNumber(cJSON_GetObjectItem(o, "procs_running")), "procs_running");
    const cJSON *b = cJSON_GetObjectItem(o, "busiest");
    CHECK(cJSON_IsArray(b) && cJSON_GetArraySize(b) <= 3, "busiest");
    for (const cJSON *p = b->child; p; p = p->next) {
        const cJSON *pid = cJSON_GetObjectItem(p, "pid");
        CHECK(cJSON_IsNumber(pid) && pid->valuedouble != getpid(), "another process");
        CHECK(cJSON_IsNumber(cJSON_GetObjectItem(p, "cpu")), "cpu");
    }
    cJSON_Delete(o);
    free(json);
    return 0;
}

static int test_incoming(void)
{
    char dir[400], *path = NULL;
    path_in(dir, sizeof(dir), "deep/er/store");
    struct errbuf eb = {{0}};
    CHECK(runs_incoming(dir, RUN_LOAD, &path, &eb) == 0, "%s", eb.msg);
    CHECK(strstr(path, "/deep/er/store/.incoming-") && strstr(path, ".json") &&
              access(path, W_OK) == 0,
          "%s", path);
    free(path);
    return 0;
}

int main(void)
{
    snprintf(tmp, sizeof(tmp), "/tmp/crux-test-runs-XXXXXX");
    if (!mkdtemp(tmp))
        return 1;
    snprintf(store, sizeof(store), "%s/store", tmp);
    RUN(test_label_check);
    RUN(test_missing_store_is_empty);
    RUN(test_add_and_list);
    RUN(test_add_load_json);
    RUN(test_resolve_names);
    RUN(test_resolve_files);
    RUN(test_damaged_entries_skipped);
    RUN(test_damaged_index);
    RUN(test_newer_schema_refused);
    RUN(test_git_commit_filled);
    RUN(test_concurrent_writers);
    RUN(test_recording_meta_roundtrip);
    RUN(test_fingerprint_json);
    RUN(test_fingerprint_packages);
    RUN(test_machine_state);
    RUN(test_incoming);
    char cmd[400];
    snprintf(cmd, sizeof(cmd), "rm -rf %s", tmp);
    if (system(cmd) != 0)
        fprintf(stderr, "could not remove %s\n", tmp);
    return TEST_SUMMARY("runs");
}
