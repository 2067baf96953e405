// SPDX-License-Identifier: MIT
// crux runs: the runs kept in the run store (record --label, load --label), oldest first, as
// a table or as JSON, filtered by label, command and environment.
#include <cjson/cJSON.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include "cmd/cmd.h"
#include "store/fingerprint.h"
#include "store/runs.h"
#include "util/buf.h"
#include "util/jsonw.h"
#include "util/text.h"
#include "util/xalloc.h"

#define COMMAND_WIDTH 40
#define LABEL_WIDTH_MAX 24

struct runs_args {
    const char *store, *label, *command, *env;
    bool json;
};

static const char USAGE[] =
    "usage: crux runs [--store DIR] [--label L] [--command TEXT] [--env HASH|same] "
    "[--json]\n"
    "  lists the runs kept by crux record --label and crux load --label, oldest first:\n"
    "  id, time, label, kind, command, git commit (+ with uncommitted changes), env (the\n"
    "  fingerprint hash: runs with equal ones ran in comparable environments), file\n"
    "      --store DIR      the run store (default .crux/runs)\n"
    "      --label L        only runs labelled L\n"
    "      --command TEXT   only runs whose command contains TEXT\n"
    "      --env HASH       only runs whose env hash starts with HASH; --env same: only\n"
    "                       runs made on a machine like this one (its CPU, kernel,\n"
    "                       limits and GPU; Python and packages are not compared)\n"
    "      --json           a JSON array with every field, fingerprint and machine state\n"
    "                       as objects\n"
    "name runs in comparisons by id (3), label (base: all of them), label@N (base@1 the\n"
    "oldest, base@-1 the newest), glob (base-*.db) or comma list (base@1,base@2)\n";

static void usage(FILE *f)
{
    fputs(USAGE, f);
}

static const struct option OPTS[] = {{"store", required_argument, 0, 'S'},
                                     {"label", required_argument, 0, 'l'},
                                     {"command", required_argument, 0, 'c'},
                                     {"env", required_argument, 0, 'e'},
                                     {"json", no_argument, 0, 'j'},
                                     {"help", no_argument, 0, 'h'},
                                     {0, 0, 0, 0}};
static const char SHORTS[] = "h";

static int parse_args(int argc, char **argv, struct runs_args *a)
{
    memset(a, 0, sizeof(*a));
    a->store = RUNS_DEFAULT_DIR;
    optind = 1;
    opterr = 0;
    int c;
    while ((c = getopt_long(argc, argv, SHORTS, OPTS, NULL)) != -1) {
        switch (c) {
        case 'S':
            a->store = optarg;
            break;
        case 'l':
            a->label = optarg;
            break;
        case 'c':
            a->command = optarg;
            break;
        case 'e':
            a->env = optarg;
            break;
        case 'j':
            a->json = true;
            break;
        case 'h':
            usage(stdout);
            exit(0);
        default:
            fprintf(stderr,
                    "crux: runs: unknown option or missing value: %s: see crux runs --help\n",
                    argv[optind - 1]);
            return EXIT_USAGE;
        }
    }
    if (optind < argc) {
        fprintf(stderr,
                "crux: runs takes no arguments (got '%s'): filter with --label, "
                "--command or --env\n",
                argv[optind]);
        return EXIT_USAGE;
    }
    if (a->env && strcmp(a->env, "same") != 0 &&
        (!a->env[0] || strspn(a->env, "0123456789abcdefABCDEF") != strlen(a->env))) {
        fprintf(stderr,
                "crux: runs: --env '%s': give an env hash (hex, as crux runs shows it) "
                "or same\n",
                a->env);
        return EXIT_USAGE;
    }
    return 0;
}

/* Keeps the runs of `l` whose environment matches --env, in order. */
static void filter_env(struct run_list *l, const char *env)
{
    char *here = NULL;
    if (!strcmp(env, "same")) {
        char *json, *hash;
        fingerprint_collect(0, NULL, &json, &hash);
        here = fingerprint_hash(json, true);
        free(json);
        free(hash);
    }
    size_t kept = 0;
    for (size_t i = 0; i < l->n; i++) {
        struct run *r = &l->v[i];
        bool match;
        if (here) {
            char *h = fingerprint_hash(r->fingerprint, true);
            match = h && !strcmp(h, here);
            free(h);
        } else {
            match = r->fp_hash && !strncasecmp(r->fp_hash, env, strlen(env));
        }
        if (match)
            l->v[kept++] = *r;
        else
            run_fini(r);
    }
    l->n = kept;
    free(here);
}

static void iso_time(double t, char *out, size_t n)
{
    time_t secs = (time_t)t;
    struct tm tm;
    if (!localtime_r(&secs, &tm) || !strftime(out, n, "%Y-%m-%dT%H:%M:%S", &tm))
        snprintf(out, n, "?");
}

/* `s` made safe for a terminal and cut to `width` bytes ("..." at the end), never inside a
 * UTF-8 sequence. */
static void cell(const char *s, size_t width, char *out, size_t n)
{
    snprintf(out, n, "%s", s ? s : "-");
    size_t len = strlen(out);
    text_scrub(out, len);
    if (len <= width || width < 4)
        return;
    size_t cut = width - 3;
    while (cut > 0 && ((unsigned char)out[cut] & 0xc0) == 0x80)
        cut--;
    snprintf(out + cut, n - cut, "...");
}

static void print_table(const struct run_list *l)
{
    size_t lw = 5;
    for (size_t i = 0; i < l->n; i++) {
        size_t n = l->v[i].label ? strlen(l->v[i].label) : 1;
        if (n > lw)
            lw = n < LABEL_WIDTH_MAX ? n : LABEL_WIDTH_MAX;
    }
    printf("%4s  %-19s  %-*s  %-9s  %-*s  %-8s  %-12s  %s\n", "id", "time", (int)lw, "label",
           "kind", COMMAND_WIDTH, "command", "git", "env", "file");
    for (size_t i = 0; i < l->n; i++) {
        const struct run *r = &l->v[i];
        char when[32], label[256], command[512], git[16], path[1024];
        iso_time(r->time, when, sizeof(when));
        cell(r->label, lw, label, sizeof(label));
        cell(r->command, COMMAND_WIDTH, command, sizeof(command));
        snprintf(git, sizeof(git), "%.7s%s", r->git_commit ? r->git_commit : "-",
                 r->git_commit && r->git_dirty ? "+" : "");
        cell(r->path, sizeof(path) - 1, path, sizeof(path));
        printf("%4lld  %-19s  %-*s  %-9s  %-*s  %-8s  %-12s  %s\n", (long long)r->id, when, (int)lw,
               label, r->kind == RUN_LOAD ? "load" : "recording", COMMAND_WIDTH, command, git,
               r->fp_hash ? r->fp_hash : "-", path);
    }
}

/* A stored JSON object as itself; anything else (damaged text) as a string. */
static void json_object_or_text(struct jsonw *w, const char *s)
{
    cJSON *o = s ? cJSON_Parse(s) : NULL;
    if (cJSON_IsObject(o))
        jsonw_raw(w, s, strlen(s));
    else
        jsonw_str(w, s);
    cJSON_Delete(o);
}

static void write_run(struct jsonw *w, const struct run *r)
{
    char when[32];
    iso_time(r->time, when, sizeof(when));
    jsonw_obj_begin(w);
    jsonw_key(w, "id");
    jsonw_i64(w, r->id);
    jsonw_key(w, "kind");
    jsonw_str(w, r->kind == RUN_LOAD ? "load" : "recording");
    jsonw_key(w, "file");
    jsonw_str(w, r->path);
    jsonw_key(w, "label");
    jsonw_str(w, r->label);
    jsonw_key(w, "command");
    jsonw_str(w, r->command);
    jsonw_key(w, "time");
    jsonw_double(w, r->time);
    jsonw_key(w, "time_local");
    jsonw_str(w, when);
    jsonw_key(w, "git_commit");
    jsonw_str(w, r->git_commit);
    jsonw_key(w, "git_dirty");
    jsonw_bool(w, r->git_dirty);
    jsonw_key(w, "fp_hash");
    jsonw_str(w, r->fp_hash);
    jsonw_key(w, "fingerprint");
    json_object_or_text(w, r->fingerprint);
    jsonw_key(w, "machine");
    json_object_or_text(w, r->machine);
    jsonw_key(w, "experiment");
    jsonw_str(w, r->experiment);
    jsonw_key(w, "variant");
    jsonw_str(w, r->variant);
    jsonw_key(w, "repeat");
    jsonw_i64(w, r->repeat);
    jsonw_obj_end(w);
}

static int print_json(const struct run_list *l)
{
    struct buf b;
    buf_init(&b, 0);
    struct jsonw w;
    jsonw_init(&w, &b, 0);
    jsonw_arr_begin(&w);
    for (size_t i = 0; i < l->n; i++)
        write_run(&w, &l->v[i]);
    jsonw_arr_end(&w);
    struct errbuf eb = {{0}};
    int rc = jsonw_error(&w);
    rc = rc ? rc : buf_putc(&b, '\n');
    rc = rc ? rc : buf_write_file(&b, "-", &eb);
    buf_fini(&b);
    if (rc)
        fprintf(stderr, "crux: runs: cannot write the list: %s\n",
                eb.msg[0] ? eb.msg : err_str(rc));
    return rc ? EXIT_FAIL : 0;
}

int cmd_runs(int argc, char **argv)
{
    struct runs_args a;
    int rc = parse_args(argc, argv, &a);
    if (rc)
        return rc;
    size_t n = strlen(a.store) + 16;
    char *index = xmalloc(n);
    snprintf(index, n, "%s/runs.db", a.store);
    bool exists = access(index, F_OK) == 0;
    free(index);
    struct run_list l = {0};
    struct errbuf eb = {{0}};
    if (exists && runs_list(a.store, a.label, a.command, &l, &eb)) {
        fprintf(stderr, "crux: %s\n", eb.msg);
        run_list_fini(&l);
        return EXIT_FAIL;
    }
    if (a.env)
        filter_env(&l, a.env);
    if (!exists)
        fprintf(stderr, "crux: no runs kept in %s yet: record with --label NAME\n", a.store);
    else if (!l.n && !a.label && !a.command && !a.env)
        fprintf(stderr, "crux: no usable runs in %s: record with --label NAME\n", a.store);
    else if (!l.n)
        fprintf(stderr, "crux: no run in %s matches%s%s%s%s%s%s\n", a.store,
                a.label ? " --label " : "", a.label ? a.label : "", a.command ? " --command " : "",
                a.command ? a.command : "", a.env ? " --env " : "", a.env ? a.env : "");
    rc = 0;
    if (a.json)
        rc = print_json(&l);
    else if (l.n)
        print_table(&l);
    run_list_fini(&l);
    return rc;
}

const struct cmd_spec *cmd_runs_spec(void)
{
    static const struct cmd_spec spec = {OPTS, SHORTS, USAGE};
    return &spec;
}
