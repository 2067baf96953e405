// SPDX-License-Identifier: MIT
// crux exp: run an experiment over variant configurations (a file or --vary options), in a
// seeded interleaved order, resumably, and report throughput and latency per variant with
// intervals, output agreement, the winner and the Pareto front (docs/loop.md, "Experiments").
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "cmd/cmd.h"
#include "cmd/expdef.h"
#include "cmd/expjob.h"
#include "cmd/expreport.h"
#include "cmd/expstate.h"
#include "cmd/session.h"
#include "store/runs.h"
#include "util/buf.h"
#include "util/jsonw.h"
#include "util/xalloc.h"

static const char USAGE[] =
    "usage: crux exp FILE [options]\n"
    "       crux exp --vary NAME=V1,V2[,..] [--vary ..] [options] -- COMMAND {NAME} ...\n"
    "  definition (each overrides FILE's key; docs/loop.md, Experiments):\n"
    "    --vary NAME=V1,V2   a parameter and its values ({NAME} in the command)\n"
    "    --exclude N=V,N=V   drop the combinations matching every term\n"
    "    --env NAME=VALUE    set in each run's environment (placeholders allowed)\n"
    "    --repeats N (5), --warmup N (1 per variant), --cooldown SEC (0), --seed N,\n"
    "    --name NAME, --output FILE (the run's output instead of its stdout),\n"
    "    --check exact|tolerance=REL|tokens[=SHARE]|none, --profile (crux record each run)\n"
    "    --server CMD --ready URL --load 'URL [crux load options]' [--ready-timeout SEC]\n"
    "    --slo p99=200ms[,errors=1%]\n"
    "  outputs: a table on stdout (-q: none), --json FILE, -o FILE.html|FILE.json,\n"
    "    --cost-per-hour USD (cost per 1,000 runs or requests)\n"
    "  state:   --store DIR (the run store, default .crux/runs: exp-NAME.json, exp-NAME/ and\n"
    "           the kept recordings and load results), --fresh (start over), --dry-run (print\n"
    "           the schedule only)\n"
    "Running the same experiment again continues it: the runs already done are kept.\n"
    "exit status: 0 when every run succeeded, 1 when some failed or an output cannot be\n"
    "written, 2 for a bad definition, 128+N when interrupted by signal N.\n";

/* A definition line per option, applied after FILE. */
#define MAX_OVERRIDES 256

struct exp_args {
    const char *file;
    char *lines[MAX_OVERRIDES];
    const char *where[MAX_OVERRIDES];
    size_t nlines;
    char **words; /* after --; borrowed from argv */
    size_t nwords;
    const char *dir, *json_path, *html_path;
    bool fresh, dry_run, quiet;
};

static void args_fini(struct exp_args *a)
{
    for (size_t i = 0; i < a->nlines; i++)
        free(a->lines[i]);
}

static int usage_error(const char *msg, const char *arg)
{
    fprintf(stderr, "crux: exp: %s%s%s: see crux exp --help\n", msg, arg ? " " : "",
            arg ? arg : "");
    return EXIT_USAGE;
}

/* "a,b,c" -> "a b c" (commas separate values on the command line). */
static char *commas_to_spaces(const char *s)
{
    char *c = xstrdup(s);
    for (char *p = c; *p; p++)
        if (*p == ',')
            *p = ' ';
    return c;
}

/* Turns option `name` with value `v` into a definition line. */
static int add_line(struct exp_args *a, const char *name, const char *v)
{
    if (a->nlines == MAX_OVERRIDES)
        return usage_error("too many options", NULL);
    char *line = NULL;
    if (!strcmp(name, "vary") || !strcmp(name, "exclude")) {
        char *vals = commas_to_spaces(v);
        char *eq = strchr(vals, '=');
        if (!eq) {
            free(vals);
            return usage_error(!strcmp(name, "vary") ? "--vary needs NAME=V1,V2,.., got"
                                                     : "--exclude needs NAME=V,NAME=V, got",
                               v);
        }
        if (!strcmp(name, "vary")) {
            *eq = 0;
            if (asprintf(&line, "vary %s = %s", vals, eq + 1) < 0)
                line = NULL;
        } else if (asprintf(&line, "exclude %s", vals) < 0) {
            line = NULL;
        }
        free(vals);
    } else if (!strcmp(name, "env")) {
        const char *eq = strchr(v, '=');
        if (!eq)
            return usage_error("--env needs NAME=VALUE, got", v);
        if (asprintf(&line, "env.%.*s = %s", (int)(eq - v), v, eq + 1) < 0)
            line = NULL;
    } else if (asprintf(&line, "%s = %s", name, v) < 0) {
        line = NULL;
    }
    if (!line) {
        fputs("crux: out of memory\n", stderr);
        abort();
    }
    a->where[a->nlines] = name;
    a->lines[a->nlines++] = line;
    return 0;
}

enum { O_DIR = 256, O_JSON, O_FRESH, O_DRY, O_PROFILE };
/* options that become definition lines: their long name is the key */
static const struct option OPTS[] = {{"vary", required_argument, 0, 1},
                                     {"exclude", required_argument, 0, 1},
                                     {"env", required_argument, 0, 1},
                                     {"repeats", required_argument, 0, 1},
                                     {"warmup", required_argument, 0, 1},
                                     {"cooldown", required_argument, 0, 1},
                                     {"seed", required_argument, 0, 1},
                                     {"name", required_argument, 0, 1},
                                     {"output", required_argument, 0, 1},
                                     {"check", required_argument, 0, 1},
                                     {"cost-per-hour", required_argument, 0, 1},
                                     {"server", required_argument, 0, 1},
                                     {"ready", required_argument, 0, 1},
                                     {"ready-timeout", required_argument, 0, 1},
                                     {"load", required_argument, 0, 1},
                                     {"slo", required_argument, 0, 1},
                                     {"profile", no_argument, 0, O_PROFILE},
                                     {"store", required_argument, 0, O_DIR},
                                     {"dir", required_argument, 0, O_DIR},
                                     {"json", required_argument, 0, O_JSON},
                                     {"fresh", no_argument, 0, O_FRESH},
                                     {"dry-run", no_argument, 0, O_DRY},
                                     {"quiet", no_argument, 0, 'q'},
                                     {"help", no_argument, 0, 'h'},
                                     {0, 0, 0, 0}};
static const char SHORTS[] = "o:qh";

/* One case per option, as load_cli_parse: long, but flat. */
static int parse_args(int argc, char **argv, struct exp_args *a)
{
    memset(a, 0, sizeof(*a));
    a->dir = RUNS_DEFAULT_DIR;
    /* the command after "--" is never scanned for options */
    int end = argc;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--")) {
            end = i;
            a->words = argv + i + 1;
            a->nwords = (size_t)(argc - i - 1);
            break;
        }
    }
    optind = 1;
    opterr = 0;
    int c, idx = 0, rc = 0;
    while (!rc && (c = getopt_long(end, argv, SHORTS, OPTS, &idx)) != -1) {
        switch (c) {
        case 1:
            rc = add_line(a, OPTS[idx].name, optarg);
            break;
        case O_PROFILE:
            rc = add_line(a, "profile", "yes");
            break;
        case O_DIR:
            a->dir = optarg;
            break;
        case O_JSON:
            a->json_path = optarg;
            break;
        case 'o': {
            size_t l = strlen(optarg);
            if (l > 5 && !strcmp(optarg + l - 5, ".json"))
                a->json_path = optarg;
            else if (l > 5 && !strcmp(optarg + l - 5, ".html"))
                a->html_path = optarg;
            else
                rc = usage_error("-o names an .html page or a .json file, got", optarg);
            break;
        }
        case O_FRESH:
            a->fresh = true;
            break;
        case O_DRY:
            a->dry_run = true;
            break;
        case 'q':
            a->quiet = true;
            break;
        case 'h':
            fputs(USAGE, stdout);
            args_fini(a);
            exit(0);
        default:
            rc = usage_error("unknown option or missing value:", argv[optind - 1]);
        }
    }
    if (!rc && optind < end)
        a->file = argv[optind++];
    if (!rc && optind < end)
        rc = usage_error("one definition file at most; the command goes after --, got",
                         argv[optind]);
    if (!rc && !a->file && !a->nwords && !a->nlines)
        rc = usage_error("give a definition FILE, or --vary options and -- COMMAND", NULL);
    return rc;
}

/* -- setup -------------------------------------------------------------------------------- */

static int mkdirs(const char *path)
{
    char tmp[PATH_MAX];
    if (snprintf(tmp, sizeof(tmp), "%s", path) >= (int)sizeof(tmp))
        return -1;
    for (char *p = tmp + 1; *p; p++) {
        if (*p != '/')
            continue;
        *p = 0;
        if (mkdir(tmp, 0755) != 0 && errno != EEXIST)
            return -1;
        *p = '/';
    }
    return mkdir(tmp, 0755) != 0 && errno != EEXIST ? -1 : 0;
}

static int load_definition(const struct exp_args *a, struct exp_def *d)
{
    struct errbuf eb = {""};
    exp_def_init(d);
    int rc = a->file ? exp_def_read_file(d, a->file, &eb) : 0;
    for (size_t i = 0; i < a->nlines && !rc; i++) {
        char where[64];
        snprintf(where, sizeof(where), "--%s", a->where[i]);
        rc = exp_def_line(d, a->lines[i], where, &eb);
    }
    if (!rc && a->nwords)
        exp_def_set_words(d, a->words, a->nwords);
    if (!rc)
        rc = exp_def_check(d, &eb);
    if (rc) {
        fprintf(stderr, "crux: %s\n", eb.msg);
        return rc == ERR_IO ? EXIT_FAIL : EXIT_USAGE;
    }
    return 0;
}

/* Moves an old state file aside (exp-NAME.json -> exp-NAME.CREATED.json); returns its new
 * name (static storage) or NULL. */
static const char *move_aside(const char *dir, const char *name, const char *path, double created)
{
    static char dst[PATH_MAX];
    for (int k = 0; k < 100; k++) {
        snprintf(dst, sizeof(dst), "%s/exp-%s.%lld%s%.0d.json", dir, name, (long long)created,
                 k ? "-" : "", k);
        if (access(dst, F_OK) != 0)
            return rename(path, dst) == 0 ? dst : NULL;
    }
    return NULL;
}

static bool same_variants(const struct exp_state *st, const struct exp_variant *v, size_t n)
{
    if (st->nvariants != n)
        return false;
    for (size_t i = 0; i < n; i++)
        if (strcmp(st->variants[i], v[i].name))
            return false;
    return true;
}

static int new_state(const struct exp_def *d, const struct exp_variant *v, size_t nv,
                     const char *hash, struct exp_state *st)
{
    memset(st, 0, sizeof(*st));
    st->name = xstrdup(d->name);
    memcpy(st->def_hash, hash, 65);
    st->created = (double)time(NULL);
    st->variants = xcalloc(nv, sizeof(char *));
    for (size_t i = 0; i < nv; i++)
        st->variants[st->nvariants++] = xstrdup(v[i].name);
    exp_schedule(st, nv, d->repeats, d->warmup, d->seed_set ? d->seed : exp_random_seed());
    return 0;
}

/* Resumes the saved state when its definition is this one; otherwise starts a new one (and
 * says why when an old one is set aside). */
static int open_state(const struct exp_args *a, const struct exp_def *d,
                      const struct exp_variant *v, size_t nv, const char *path,
                      struct exp_state *st, bool *resumed)
{
    char hash[65];
    exp_def_hash(d, hash);
    struct errbuf eb = {""};
    memset(st, 0, sizeof(*st));
    *resumed = false;
    int rc = exp_state_load(st, path, &eb);
    if (rc && rc != ERR_NOT_FOUND) {
        fprintf(stderr, "crux: exp: warning: %s: starting a new experiment\n", eb.msg);
        const char *moved = move_aside(a->dir, d->name, path, (double)time(NULL));
        if (moved)
            fprintf(stderr, "crux: exp: the unreadable state is kept as %s\n", moved);
    } else if (!rc) {
        size_t done = st->nresults;
        bool same = !strcmp(st->def_hash, hash) && same_variants(st, v, nv);
        if (same && !a->fresh) {
            *resumed = true;
            return 0;
        }
        if (a->dry_run) {
            exp_state_fini(st);
            return new_state(d, v, nv, hash, st);
        }
        const char *moved = move_aside(a->dir, d->name, path, st->created);
        if (!a->fresh)
            fprintf(stderr,
                    "crux: exp: warning: the definition of '%s' changed since %s was written "
                    "(%zu of %zu runs done then): starting a new experiment; the old state is "
                    "kept as %s\n",
                    d->name, path, done, st->nslots, moved ? moved : "(could not be moved)");
        exp_state_fini(st);
    }
    return new_state(d, v, nv, hash, st);
}

/* -- the runs ----------------------------------------------------------------------------- */

static void sleep_interruptible(double s, volatile sig_atomic_t *stop)
{
    while (s > 0 && !*stop) {
        double step = s < 0.05 ? s : 0.05;
        struct timespec ts = {(time_t)step, (long)((step - (double)(time_t)step) * 1e9)};
        nanosleep(&ts, NULL);
        s -= step;
    }
}

static void print_progress(const struct exp_state *st, const struct exp_result *r, size_t k)
{
    const struct exp_slot *s = &st->slots[r->slot];
    char what[32];
    if (s->warmup)
        snprintf(what, sizeof(what), "warm-up");
    else
        snprintf(what, sizeof(what), "#%d", s->repeat);
    if (r->ok)
        fprintf(stderr, "crux: exp: run %zu/%zu %s %s: %.3f s\n", k + 1, st->nslots,
                st->variants[s->variant], what, r->wall_s);
    else
        fprintf(stderr, "crux: exp: run %zu/%zu %s %s FAILED: %s\n", k + 1, st->nslots,
                st->variants[s->variant], what, r->note ? r->note : "?");
}

/* Runs every slot not done yet, saving the state after each. Returns 0, the signal number
 * when interrupted, or -1 when crux itself failed (printed). */
static int run_all(const struct exp_ctx *c, struct exp_state *st, const char *path, bool quiet)
{
    bool first = true;
    for (size_t k = 0; k < st->nslots; k++) {
        if (exp_state_done(st, (uint32_t)k))
            continue;
        if (!first)
            sleep_interruptible(c->d->cooldown_s, c->stop);
        first = false;
        if (*c->stop)
            return session_signal() ? session_signal() : SIGINT;
        struct exp_result r;
        struct errbuf eb = {""};
        int rc = exp_job_run(c, &st->slots[k], (uint32_t)k, &r, &eb);
        if (rc == ERR_AGAIN || *c->stop) {
            exp_result_fini(&r);
            return session_signal() ? session_signal() : SIGINT;
        }
        if (rc) {
            exp_result_fini(&r);
            fprintf(stderr, "crux: exp: %s\n", eb.msg[0] ? eb.msg : err_str(rc));
            return -1;
        }
        if (!quiet)
            print_progress(st, &r, k);
        exp_state_add(st, &r);
        rc = exp_state_save(st, path, &eb);
        if (rc) {
            fprintf(stderr, "crux: exp: cannot save the state: %s: check the folder\n", eb.msg);
            return -1;
        }
    }
    return 0;
}

/* -- outputs ------------------------------------------------------------------------------ */

static int write_outputs(const struct exp_args *a, const struct exp_summary *s,
                         const struct exp_def *d, const struct exp_state *st)
{
    int status = 0;
    struct errbuf eb = {""};
    if (a->json_path) {
        struct buf b;
        buf_init(&b, 0);
        struct jsonw w;
        jsonw_init(&w, &b, 0);
        exp_write_json(s, d, st, &w);
        int rc = jsonw_error(&w);
        rc = rc ? rc : buf_putc(&b, '\n');
        rc = rc ? rc : buf_write_file(&b, a->json_path, &eb);
        if (rc) {
            fprintf(stderr, "crux: exp: writing %s failed: %s\n", a->json_path,
                    eb.msg[0] ? eb.msg : err_str(rc));
            status = EXIT_FAIL;
        }
        buf_fini(&b);
    }
    if (a->html_path) {
        struct buf b;
        buf_init(&b, 0);
        int rc = exp_write_html(s, d, st, &b);
        rc = rc ? rc : buf_write_file(&b, a->html_path, &eb);
        if (rc) {
            fprintf(stderr, "crux: exp: writing %s failed: %s\n", a->html_path,
                    eb.msg[0] ? eb.msg : err_str(rc));
            status = EXIT_FAIL;
        }
        buf_fini(&b);
    }
    return status;
}

static void print_schedule(const struct exp_state *st)
{
    for (size_t k = 0; k < st->nslots; k++) {
        const struct exp_slot *s = &st->slots[k];
        if (s->warmup)
            printf("%zu %s warm-up\n", k + 1, st->variants[s->variant]);
        else
            printf("%zu %s #%d\n", k + 1, st->variants[s->variant], s->repeat);
    }
}

static int report(const struct exp_args *a, const struct exp_def *d, const struct exp_state *st,
                  const char *expdir)
{
    struct exp_summary s;
    exp_summarize(d, st, expdir, &s);
    if (!a->quiet)
        exp_print_text(&s, d, st, stdout);
    fflush(stdout);
    int status = write_outputs(a, &s, d, st);
    for (size_t i = 0; i < s.n && !status; i++)
        if (s.v[i].nfail)
            status = EXIT_FAIL;
    exp_summary_fini(&s);
    return status;
}

/* The state file and the experiment's folder: DIR/exp-NAME.json and DIR/exp-NAME/. */
static int setup_dirs(const char *dir, const char *name, char *path, char *expdir, size_t len)
{
    char out[PATH_MAX];
    if (snprintf(path, len, "%s/exp-%s.json", dir, name) >= (int)len ||
        snprintf(expdir, len, "%s/exp-%s", dir, name) >= (int)len ||
        snprintf(out, sizeof(out), "%s/out", expdir) >= (int)sizeof(out))
        return usage_error("--store is too long:", dir);
    if (mkdirs(out) != 0) {
        fprintf(stderr, "crux: exp: cannot create %s: %s: check --store\n", out, strerror(errno));
        return EXIT_FAIL;
    }
    return 0;
}

static void print_start(const struct exp_def *d, const struct exp_state *st, const char *path,
                        bool resumed)
{
    if (resumed)
        fprintf(stderr, "crux: exp %s: resuming: %zu of %zu runs done, seed %llu (%s)\n", d->name,
                st->nresults, st->nslots, (unsigned long long)st->seed, path);
    else
        fprintf(stderr,
                "crux: exp %s: %zu variants x %d runs + %d warm-up = %zu runs in a shuffled order, "
                "seed %llu (--seed %llu repeats the order); state in %s\n",
                d->name, st->nvariants, d->repeats, d->warmup, st->nslots,
                (unsigned long long)st->seed, (unsigned long long)st->seed, path);
}

static int run_experiment(const struct exp_args *a, const struct exp_def *d,
                          const struct exp_variant *v, size_t nv)
{
    char path[PATH_MAX], expdir[PATH_MAX], self[PATH_MAX];
    int rc = setup_dirs(a->dir, d->name, path, expdir, sizeof(path));
    if (rc)
        return rc;
    struct exp_state st;
    bool resumed;
    rc = open_state(a, d, v, nv, path, &st, &resumed);
    if (rc)
        return rc;
    if (a->dry_run) {
        print_schedule(&st);
        exp_state_fini(&st);
        return 0;
    }
    print_start(d, &st, path, resumed);
    struct errbuf eb = {""};
    if (!resumed && exp_state_save(&st, path, &eb)) {
        fprintf(stderr, "crux: exp: cannot save the state: %s\n", eb.msg);
        exp_state_fini(&st);
        return EXIT_FAIL;
    }
    ssize_t sl = readlink("/proc/self/exe", self, sizeof(self) - 1);
    self[sl > 0 ? sl : 0] = 0;
    static volatile sig_atomic_t stop;
    session_trap_signals(&stop);
    signal(SIGPIPE, SIG_IGN);
    char exp_id[128];
    snprintf(exp_id, sizeof(exp_id), "%s-%lld", d->name, (long long)st.created);
    struct exp_ctx c = {.d = d,
                        .vars = v,
                        .dir = expdir,
                        .self = self[0] ? self : "/proc/self/exe",
                        .store = a->dir,
                        .exp_id = exp_id,
                        .stop = &stop};
    int sig = run_all(&c, &st, path, a->quiet);
    int status;
    if (sig > 0) {
        fprintf(stderr,
                "crux: exp: interrupted after %zu of %zu runs: run the same command again to "
                "continue\n",
                st.nresults, st.nslots);
        status = 128 + sig;
    } else if (sig < 0) {
        status = EXIT_FAIL;
    } else {
        status = report(a, d, &st, expdir);
    }
    exp_state_fini(&st);
    return status;
}

int cmd_exp(int argc, char **argv)
{
    struct exp_args a;
    int rc = parse_args(argc, argv, &a);
    if (rc) {
        args_fini(&a);
        return rc;
    }
    struct exp_def d;
    rc = load_definition(&a, &d);
    struct exp_variant *v = NULL;
    size_t nv = 0;
    struct errbuf eb = {""};
    if (!rc && exp_variants(&d, &v, &nv, &eb)) {
        fprintf(stderr, "crux: %s: %s\n", d.source ? d.source : "exp", eb.msg);
        rc = EXIT_USAGE;
    }
    if (!rc)
        rc = run_experiment(&a, &d, v, nv);
    exp_variants_free(v, nv);
    exp_def_fini(&d);
    args_fini(&a);
    return rc;
}

const struct cmd_spec *cmd_exp_spec(void)
{
    static const struct cmd_spec spec = {OPTS, SHORTS, USAGE};
    return &spec;
}
