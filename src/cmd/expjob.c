// SPDX-License-Identifier: MIT
// crux exp: one scheduled run, in command mode (direct or under crux record) or server mode
// (the server started per run, crux load against it, the server's group stopped after).
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#include <cjson/cJSON.h>

#include "cmd/expjob.h"
#include "cmd/exprun.h"
#include "store/runs.h"
#include "util/buf.h"
#include "util/xalloc.h"

/* The load generator's per-request log holds bodies up to 64 KiB, escaped: a line fits. */
#define LOG_LINE_MAX ((size_t)1 << 20)

/* A NULL-terminated argument or environment vector being built. */
struct vec {
    char **v;
    size_t n, cap;
};

static void vec_add(struct vec *a, char *s)
{
    if (a->n + 2 > a->cap) {
        a->cap = a->cap ? a->cap * 2 : 16;
        a->v = xrealloc(a->v, a->cap * sizeof(*a->v));
    }
    a->v[a->n++] = s;
    a->v[a->n] = NULL;
}

static void vec_fini(struct vec *a)
{
    for (size_t i = 0; i < a->n; i++)
        free(a->v[i]);
    free(a->v);
    memset(a, 0, sizeof(*a));
}

static char *fmt(const char *f, ...) PRINTF_LIKE(1, 2);

static char *fmt(const char *f, ...)
{
    va_list ap;
    va_start(ap, f);
    char *s = NULL;
    if (vasprintf(&s, f, ap) < 0)
        s = NULL;
    va_end(ap);
    if (!s) {
        fputs("crux: out of memory\n", stderr);
        abort();
    }
    return s;
}

/* Appends the words of template `text` filled for this run: split as a shell would for plain
 * words, then each word filled (a value with spaces stays one argument); text that needs a
 * shell runs as /bin/sh -c with the filled text. */
static int add_filled(const struct exp_ctx *c, const struct exp_variant *v,
                      const struct exp_fill *f, const char *text, struct vec *out,
                      struct errbuf *eb)
{
    char **w;
    size_t n;
    bool shell;
    int rc = exp_split(text, &w, &n, &shell, eb);
    if (rc)
        return rc;
    for (size_t i = 0; i < n && !rc; i++) {
        char *s;
        rc = exp_fill(c->d, v, f, shell ? text : w[i], &s, eb);
        if (rc)
            break;
        if (shell) {
            vec_add(out, xstrdup("/bin/sh"));
            vec_add(out, xstrdup("-c"));
            vec_add(out, s);
            break;
        }
        vec_add(out, s);
    }
    exp_words_free(w, n);
    return rc;
}

/* The command's words (from the file's text or the command line's words), filled. */
static int command_argv(const struct exp_ctx *c, const struct exp_variant *v,
                        const struct exp_fill *f, struct vec *out, struct errbuf *eb)
{
    const struct exp_def *d = c->d;
    if (d->shell)
        return add_filled(c, v, f, d->command, out, eb);
    for (size_t i = 0; i < d->nwords; i++) {
        char *s;
        int rc = exp_fill(d, v, f, d->words[i], &s, eb);
        if (rc)
            return rc;
        vec_add(out, s);
    }
    return 0;
}

static int build_env(const struct exp_ctx *c, const struct exp_variant *v, const struct exp_fill *f,
                     struct vec *env, struct errbuf *eb)
{
    for (size_t i = 0; i < c->d->nenv; i++) {
        char *val;
        int rc = exp_fill(c->d, v, f, c->d->env[i].value, &val, eb);
        if (rc)
            return rc;
        vec_add(env, fmt("%s=%s", c->d->env[i].name, val));
        free(val);
    }
    vec_add(env, fmt("CRUX_EXP_VARIANT=%s", v->name));
    vec_add(env, fmt("CRUX_EXP_REPEAT=%d", f->repeat));
    vec_add(env, fmt("CRUX_EXP_RUN=%d", f->run));
    return 0;
}

/* Keeps an output's bytes once per hash under DIR/out/ for the agreement checks. */
static int keep_output(const struct exp_ctx *c, const char *hash, const char *data, size_t len,
                       struct errbuf *eb)
{
    char *path = fmt("%s/out/%s", c->dir, hash);
    int rc = exp_keep_file(path, data ? data : "", len, eb);
    free(path);
    return rc;
}

/* The last non-empty line of a run's stderr, for its note. */
static void last_line(const char *err, char *out, size_t len)
{
    size_t n = strlen(err);
    while (n && (err[n - 1] == '\n' || err[n - 1] == '\r'))
        n--;
    size_t s = n;
    while (s && err[s - 1] != '\n')
        s--;
    snprintf(out, len, "%.*s", (int)(n - s), err + s);
}

static void set_note(struct exp_result *r, const struct exp_capture *cap)
{
    char line[200];
    last_line(cap->err, line, sizeof(line));
    if (cap->why[0])
        r->note = fmt("%s", cap->why);
    else if (cap->status >= 128)
        r->note = fmt("killed by signal %d%s%s", cap->status - 128, line[0] ? ": " : "", line);
    else
        r->note = fmt("exit %d%s%s", cap->status, line[0] ? ": " : "", line);
}

/* Keeps a run's file (a recording or a load result) in the run store with the experiment's
 * id, the variant and the repeat; the file is moved there. A store that cannot take it costs
 * the run nothing: one line says why, and the file stays where it was. */
static void keep_in_store(const struct exp_ctx *c, const struct exp_variant *v, const char *cmdline,
                          char *machine, const char *path, struct exp_result *r)
{
    struct run run = {.repeat = r->repeat};
    run.path = xstrdup(path);
    run.command = xstrdup(cmdline);
    run.machine = machine;
    run.experiment = xstrdup(c->exp_id);
    run.variant = xstrdup(v->name);
    struct errbuf eb = {""};
    if (runs_add(c->store, &run, true, &eb) == 0) {
        r->recording = xstrdup(run.path);
        r->run_id = run.id;
    } else {
        fprintf(stderr, "crux: exp: warning: %s not kept in the run store %s: %s\n", path, c->store,
                eb.msg);
        r->recording = xstrdup(path);
    }
    run_fini(&run);
}

/* The words of a command as one line, for the run store. */
static char *join(char *const *v, size_t n)
{
    struct buf b;
    buf_init(&b, 1 << 16);
    int rc = 0;
    for (size_t i = 0; i < n && !rc; i++)
        rc = buf_printf(&b, "%s%s", i ? " " : "", v[i]);
    (void)rc; /* a cut command line is still a good label */
    return buf_take(&b, NULL);
}

/* Builds the run's command line (under crux record with profile = yes), environment and
 * output path, runs it and turns the capture into the result; one cleanup label. */
static int run_command(const struct exp_ctx *c, const struct exp_variant *v,
                       const struct exp_fill *f, uint32_t k, struct exp_result *r,
                       struct errbuf *eb)
{
    struct vec argv = {0}, env = {0};
    char *output = NULL, *db = NULL, *verdict = NULL, *machine = NULL;
    size_t npre = 0;
    int rc = 0;
    if (c->d->profile) {
        db = fmt("%s/run-%u.db", c->dir, k);
        verdict = fmt("%s/run-%u.verdict.json", c->dir, k);
        const char *pre[] = {c->self, "record", "--save",       db,   "-f", "verdict",
                             "-o",    verdict,  "--no-summary", "-q", "--"};
        npre = sizeof(pre) / sizeof(pre[0]);
        for (size_t i = 0; i < npre; i++)
            vec_add(&argv, xstrdup(pre[i]));
    }
    rc = command_argv(c, v, f, &argv, eb);
    if (!rc)
        rc = build_env(c, v, f, &env, eb);
    if (!rc && c->d->output)
        rc = exp_fill(c->d, v, f, c->d->output, &output, eb);
    if (rc)
        goto out;
    if (output)
        unlink(output); /* a stale file from an earlier run must not pass for this run's */
    /* machine state before the run (it takes ~100 ms): only for runs that are kept */
    machine = db ? runs_machine_state() : NULL;
    struct exp_cmd cmd = {argv.v, env.v, output, NULL};
    struct exp_capture cap;
    rc = exp_run(&cmd, c->stop, &cap, eb);
    if (rc)
        goto out;
    if (cap.interrupted) {
        exp_capture_fini(&cap);
        rc = ERR_AGAIN;
        goto out;
    }
    r->ok = cap.started && cap.status == 0 && !cap.why[0];
    r->status = cap.status;
    r->start = cap.start;
    r->wall_s = cap.wall_s;
    r->cpu_s = cap.cpu_s;
    r->maxrss_kb = cap.maxrss_kb;
    r->tput = cap.wall_s > 0 ? 1.0 / cap.wall_s : 0;
    if (!r->ok)
        set_note(r, &cap);
    if (cap.hash[0] && cap.started) {
        r->outs = xcalloc(1, sizeof(*r->outs));
        r->nouts = 1;
        memcpy(r->outs[0].hash, cap.hash, 65);
        rc = keep_output(c, cap.hash, cap.data, cap.len, eb);
    }
    if (db && r->ok) {
        char *line = join(argv.v + npre, argv.n - npre); /* the command, not crux record */
        keep_in_store(c, v, line, machine, db, r);
        machine = NULL;
        free(line);
    }
    exp_capture_fini(&cap);
out:
    free(machine);
    vec_fini(&argv);
    vec_fini(&env);
    free(output);
    free(db);
    free(verdict);
    return rc;
}

/* -- server mode -------------------------------------------------------------------------- */

/* Requests in the load's --requests-file (the request templates), or 1. */
static uint32_t count_templates(const struct vec *load)
{
    const char *file = NULL;
    for (size_t i = 0; i + 1 < load->n; i++)
        if (!strcmp(load->v[i], "--requests-file"))
            file = load->v[i + 1];
    for (size_t i = 0; i < load->n; i++)
        if (!strncmp(load->v[i], "--requests-file=", 16))
            file = load->v[i] + 16;
    FILE *fp = file ? fopen(file, "r") : NULL;
    if (!fp)
        return 1;
    uint32_t n = 0;
    char *line = NULL;
    size_t cap = 0;
    ssize_t len;
    while ((len = getline(&line, &cap, fp)) >= 0)
        n += strspn(line, " \t\r\n") < (size_t)len;
    free(line);
    fclose(fp);
    return n ? n : 1;
}

static double jnum(const cJSON *o, const char *a, const char *b)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, a);
    if (b)
        v = cJSON_GetObjectItemCaseSensitive(v, b);
    return cJSON_IsNumber(v) ? v->valuedouble : 0;
}

/* Reads the load result: throughput, latency percentiles (us in the file), counts. */
static int read_load_json(const char *path, struct exp_result *r)
{
    char *data;
    size_t len;
    bool trunc;
    char hex[65];
    struct errbuf eb = {""};
    if (exp_read_file(path, (size_t)64 << 20, &data, &len, &trunc, hex, &eb))
        return ERR_NOT_FOUND;
    cJSON *root = cJSON_ParseWithLength(data, len);
    free(data);
    const cJSON *st = cJSON_GetObjectItemCaseSensitive(root, "stats");
    if (!cJSON_IsObject(st)) {
        cJSON_Delete(root);
        return ERR_CORRUPT;
    }
    const cJSON *lat = cJSON_GetObjectItemCaseSensitive(st, "latency_us");
    r->tput = jnum(st, "throughput", NULL);
    r->requests = (uint64_t)jnum(st, "ok", NULL);
    r->errors = (uint64_t)jnum(st, "errors", NULL);
    r->lat_p50_s = jnum(lat, "p50", NULL) / 1e6;
    r->lat_p90_s = jnum(lat, "p90", NULL) / 1e6;
    r->lat_p99_s = jnum(lat, "p99", NULL) / 1e6;
    r->lat_p999_s = jnum(lat, "p99.9", NULL) / 1e6;
    r->lat_mean_s = jnum(lat, "mean", NULL) / 1e6;
    double elapsed = jnum(st, "elapsed_s", NULL);
    if (elapsed > 0)
        r->wall_s = elapsed;
    cJSON_Delete(root);
    return 0;
}

/* Adds (tmpl, hash) to the run's outputs unless present; a second hash for a template marks
 * the run's outputs as mixed. */
static void add_out(struct exp_result *r, uint32_t tmpl, const char *hash)
{
    for (size_t i = 0; i < r->nouts; i++) {
        if (r->outs[i].tmpl != tmpl)
            continue;
        if (!strcmp(r->outs[i].hash, hash))
            return;
        r->outs_mixed = true;
    }
    if (r->nouts >= 4096)
        return; /* bounded: a template that answers differently every time is flagged already */
    r->outs = xrealloc(r->outs, (r->nouts + 1) * sizeof(*r->outs));
    r->outs[r->nouts].tmpl = tmpl;
    memcpy(r->outs[r->nouts++].hash, hash, 65);
}

/* Reads the per-request log (crux load --log-bodies): each successful request's body hash by
 * request template, the bodies kept under out/. */
static int read_load_log(const struct exp_ctx *c, const char *path, uint32_t ntmpl,
                         struct exp_result *r, struct errbuf *eb)
{
    FILE *fp = fopen(path, "r");
    if (!fp)
        return 0;
    char *line = NULL;
    size_t cap = 0;
    ssize_t len;
    int rc = 0;
    while (!rc && (len = getline(&line, &cap, fp)) > 0) {
        if ((size_t)len > LOG_LINE_MAX)
            continue;
        cJSON *o = cJSON_ParseWithLength(line, (size_t)len);
        const cJSON *i = cJSON_GetObjectItemCaseSensitive(o, "i");
        const cJSON *h = cJSON_GetObjectItemCaseSensitive(o, "body_sha256");
        const cJSON *b = cJSON_GetObjectItemCaseSensitive(o, "body");
        const cJSON *e = cJSON_GetObjectItemCaseSensitive(o, "error");
        if (cJSON_IsNumber(i) && cJSON_IsString(h) && strlen(h->valuestring) == 64 &&
            (!e || cJSON_IsNull(e))) {
            add_out(r, (uint32_t)((uint64_t)i->valuedouble % ntmpl), h->valuestring);
            if (cJSON_IsString(b))
                rc = keep_output(c, h->valuestring, b->valuestring, strlen(b->valuestring), eb);
        }
        cJSON_Delete(o);
    }
    free(line);
    fclose(fp);
    return rc;
}

/* Starts the server, waits for it, runs crux load, stops the server, reads the results. One
 * sequence whose steps share the run's files and the server's pid: kept in one function so
 * that every path stops the server and frees the same things at `out`. */
static int run_server(const struct exp_ctx *c, const struct exp_variant *v, struct exp_fill *f,
                      uint32_t k, struct exp_result *r, struct errbuf *eb)
{
    struct vec sargv = {0}, env = {0}, largv = {0};
    char *ready = NULL, *load_text = NULL, *machine = NULL;
    char *log = fmt("%s/server-%u.log", c->dir, k);
    char *json = fmt("%s/load-%u.json", c->dir, k);
    char *reqlog = fmt("%s/load-%u.jsonl", c->dir, k);
    f->port = exp_free_port();
    int rc = add_filled(c, v, f, c->d->server, &sargv, eb);
    rc = rc ? rc : build_env(c, v, f, &env, eb);
    rc = rc ? rc : exp_fill(c->d, v, f, c->d->ready, &ready, eb);
    vec_add(&largv, xstrdup(c->self));
    vec_add(&largv, xstrdup("load"));
    rc = rc ? rc : add_filled(c, v, f, c->d->load, &largv, eb);
    if (rc)
        goto out;
    const char *tail[] = {"--json", json, "--log", reqlog, "--log-bodies", "-q"};
    for (size_t i = 0; i < sizeof(tail) / sizeof(tail[0]); i++)
        vec_add(&largv, xstrdup(tail[i]));
    unlink(log);
    unlink(json);
    unlink(reqlog);
    machine = runs_machine_state(); /* before the server starts: ~100 ms of sampling */
    pid_t pid;
    rc = exp_server_start(sargv.v, env.v, log, &pid, eb);
    if (rc == ERR_ARG) {
        r->note = fmt("%s", eb->msg);
        r->status = -1;
        rc = 0;
        goto out;
    }
    if (rc)
        goto out;
    struct errbuf reb = {""};
    int rrc = exp_server_ready(pid, ready, c->d->ready_timeout_s, c->stop, &reb);
    struct exp_capture cap;
    memset(&cap, 0, sizeof(cap));
    if (!rrc) {
        struct exp_cmd cmd = {largv.v, NULL, NULL, NULL};
        rc = exp_run(&cmd, c->stop, &cap, eb);
    }
    struct rusage ru;
    exp_server_stop(pid, &ru);
    r->cpu_s = (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec / 1e6 +
               (double)ru.ru_stime.tv_sec + (double)ru.ru_stime.tv_usec / 1e6;
    r->maxrss_kb = ru.ru_maxrss;
    if (rc || (c->stop && *c->stop)) {
        exp_capture_fini(&cap);
        rc = rc ? rc : ERR_AGAIN;
        goto out;
    }
    if (rrc) {
        r->note = fmt("server not ready: %s (its output: %s)", reb.msg, log);
        r->status = -1;
        goto out;
    }
    r->start = cap.start;
    r->wall_s = cap.wall_s;
    r->status = cap.status;
    int jrc = read_load_json(json, r);
    /* crux load exits 1 for --slo or --fail-on-errors given in `load`: still a measurement */
    r->ok = cap.started && (cap.status == 0 || cap.status == 1) && !jrc;
    if (!r->ok)
        set_note(r, &cap);
    exp_capture_fini(&cap);
    if (r->ok)
        rc = read_load_log(c, reqlog, count_templates(&largv), r, eb);
    unlink(reqlog); /* bodies are kept by hash; the log itself can be large */
    if (r->ok) {
        char *line = join(largv.v + 2, largv.n - 2);
        keep_in_store(c, v, line, machine, json, r);
        machine = NULL;
        free(line);
    }
out:
    free(machine);
    vec_fini(&sargv);
    vec_fini(&env);
    vec_fini(&largv);
    free(ready);
    free(load_text);
    free(log);
    free(json);
    free(reqlog);
    return rc;
}

int exp_job_run(const struct exp_ctx *c, const struct exp_slot *slot, uint32_t k,
                struct exp_result *r, struct errbuf *eb)
{
    memset(r, 0, sizeof(*r));
    r->slot = k;
    r->variant = slot->variant;
    r->repeat = slot->repeat;
    r->warmup = slot->warmup;
    r->status = -1;
    const struct exp_variant *v = &c->vars[slot->variant];
    struct exp_fill f = {slot->repeat, (int)k, 0, c->dir};
    if (c->d->server)
        return run_server(c, v, &f, k, r, eb);
    return run_command(c, v, &f, k, r, eb);
}
