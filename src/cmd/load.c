// SPDX-License-Identifier: MIT
// crux load URL: generate HTTP load (open or closed loop, or a sweep to the SLO knee) and
// report latency, streaming metrics and errors as text, JSON, HTML and a per-request log.
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>

#include "cmd/cmd.h"
#include "cmd/keep.h"
#include "cmd/loadcli.h"
#include "cmd/session.h"
#include "load/load.h"
#include "store/runs.h"
#include "util/buf.h"
#include "util/jsonw.h"

static const char USAGE[] =
    "usage: crux load URL [options]\n"
    "  load:    --rate R (open loop, req/s) [--arrivals constant|poisson] [--connections N]\n"
    "           | --concurrency N (closed loop; the default, with N = 1)\n"
    "  length:  --duration SEC (default 10) | --requests N;  --timeout SEC (default 30)\n"
    "  request: --method M, -H/--header 'Name: value' (repeat), --body FILE,\n"
    "           --requests-file FILE.jsonl ({\"method\",\"path\",\"headers\",\"body\"} per line, "
    "cycled)\n"
    "  sweep:   --sweep --slo p99=200ms[,ttft_p99=1s,errors=1%] [--sweep-max L]\n"
    "           [--sweep-precision 0.05]: doubles the rate (or the concurrency) from --rate\n"
    "           (--concurrency, default 1), then bisects to the highest load meeting the SLO\n"
    "  output:  text summary on stdout (-q: none), --json FILE, -o FILE.html, --log FILE.jsonl\n"
    "           (one line per request; --log-bodies adds each body's SHA-256 and its first\n"
    "           64 KiB); --fail-on-errors: exit 1 when any request failed\n"
    "  keep:    --label NAME keeps the JSON result in the run store (crux runs) under NAME;\n"
    "           --store DIR names the store (default .crux/runs) and keeps it too\n"
    "  other:   --seed N (Poisson arrivals); https:// verifies the certificate unless\n"
    "           -k/--insecure; --cost-per-hour USD: cost per 1,000 requests (and per\n"
    "           million output tokens) at the measured throughput\n"
    "exit status: 0 when the run completed (failed requests are counted, not fatal); 1 with\n"
    "--fail-on-errors and errors, when --slo is not met (or a sweep finds no load meeting it),\n"
    "or when an output cannot be written; 2 for bad options.\n";

/* A duration: a number with an optional unit (ms, s, m, h; default s). */
static int parse_secs(const char *s, double *out)
{
    char *end;
    double v = strtod(s, &end);
    if (end == s || !(v >= 0) || v > 1e7)
        return ERR_ARG;
    if (!*end || !strcmp(end, "s"))
        *out = v;
    else if (!strcmp(end, "ms"))
        *out = v / 1e3;
    else if (!strcmp(end, "m") || !strcmp(end, "min"))
        *out = v * 60;
    else if (!strcmp(end, "h"))
        *out = v * 3600;
    else
        return ERR_ARG;
    return 0;
}

static int bad(const char *opt, const char *val, const char *fix)
{
    fprintf(stderr, "crux: load: %s '%s': %s\n", opt, val, fix);
    return EXIT_USAGE;
}

enum {
    O_ARRIVALS = 256,
    O_CONNS,
    O_TIMEOUT,
    O_BODY,
    O_REQFILE,
    O_SWEEP,
    O_SWEEPMAX,
    O_SWEEPPREC,
    O_SLO,
    O_LOG,
    O_LOG_BODIES,
    O_JSON,
    O_FAIL,
    O_SEED,
    O_COST,
    O_METHOD,
    O_LABEL,
    O_STORE
};
static const struct option OPTS[] = {{"rate", required_argument, 0, 'r'},
                                     {"arrivals", required_argument, 0, O_ARRIVALS},
                                     {"concurrency", required_argument, 0, 'c'},
                                     {"connections", required_argument, 0, O_CONNS},
                                     {"duration", required_argument, 0, 'd'},
                                     {"requests", required_argument, 0, 'n'},
                                     {"timeout", required_argument, 0, O_TIMEOUT},
                                     {"method", required_argument, 0, O_METHOD},
                                     {"header", required_argument, 0, 'H'},
                                     {"body", required_argument, 0, O_BODY},
                                     {"requests-file", required_argument, 0, O_REQFILE},
                                     {"sweep", no_argument, 0, O_SWEEP},
                                     {"sweep-max", required_argument, 0, O_SWEEPMAX},
                                     {"sweep-precision", required_argument, 0, O_SWEEPPREC},
                                     {"slo", required_argument, 0, O_SLO},
                                     {"log", required_argument, 0, O_LOG},
                                     {"log-bodies", no_argument, 0, O_LOG_BODIES},
                                     {"json", required_argument, 0, O_JSON},
                                     {"output", required_argument, 0, 'o'},
                                     {"fail-on-errors", no_argument, 0, O_FAIL},
                                     {"seed", required_argument, 0, O_SEED},
                                     {"cost-per-hour", required_argument, 0, O_COST},
                                     {"label", required_argument, 0, O_LABEL},
                                     {"store", required_argument, 0, O_STORE},
                                     {"insecure", no_argument, 0, 'k'},
                                     {"quiet", no_argument, 0, 'q'},
                                     {"help", no_argument, 0, 'h'},
                                     {0, 0, 0, 0}};
static const char SHORTS[] = "r:c:d:n:H:o:qhk";

int load_cli_parse(int argc, char **argv, struct load_cli *a)
{
    memset(a, 0, sizeof(*a));
    load_opts_defaults(&a->o);
    a->o.headers = a->headers;
    optind = 1;
    opterr = 0;
    int c;
    double v;
    bool dur_set = false;
    while ((c = getopt_long(argc, argv, SHORTS, OPTS, NULL)) != -1) {
        switch (c) {
        case 'r':
            if (session_parse_number(optarg, 1e-3, 1e7, &a->o.rate))
                return bad("--rate", optarg, "give requests per second, e.g. --rate 100");
            break;
        case O_ARRIVALS:
            if (!strcmp(optarg, "constant"))
                a->o.arrivals = LOAD_CONSTANT;
            else if (!strcmp(optarg, "poisson"))
                a->o.arrivals = LOAD_POISSON;
            else
                return bad("--arrivals", optarg, "use constant or poisson");
            break;
        case 'c':
            if (session_parse_number(optarg, 1, 65536, &v) || v != (int)v)
                return bad("--concurrency", optarg, "give a whole number from 1 to 65536");
            a->o.concurrency = (int)v;
            break;
        case O_CONNS:
            if (session_parse_number(optarg, 1, 65536, &v) || v != (int)v)
                return bad("--connections", optarg, "give a whole number from 1 to 65536");
            a->o.connections = (int)v;
            break;
        case 'd':
            if (parse_secs(optarg, &a->o.duration_s) || !(a->o.duration_s > 0))
                return bad("--duration", optarg, "give seconds, e.g. --duration 30 or 2m");
            dur_set = true;
            break;
        case 'n':
            if (session_parse_number(optarg, 1, 1e15, &v) || v != (double)(uint64_t)v)
                return bad("--requests", optarg, "give a whole number of requests");
            a->o.requests = (uint64_t)v;
            break;
        case O_TIMEOUT:
            if (parse_secs(optarg, &a->o.timeout_s) || !(a->o.timeout_s > 0))
                return bad("--timeout", optarg, "give seconds, e.g. --timeout 30 or 500ms");
            break;
        case O_METHOD:
            a->o.method = optarg;
            break;
        case 'H':
            if (a->o.nheaders == LOAD_CLI_MAX_HEADERS)
                return bad("--header", optarg, "at most 64 headers");
            a->headers[a->o.nheaders++] = optarg;
            break;
        case O_BODY:
            a->o.body_file = optarg;
            break;
        case O_REQFILE:
            a->o.requests_file = optarg;
            break;
        case O_SWEEP:
            a->o.sweep = true;
            break;
        case O_SWEEPMAX:
            if (session_parse_number(optarg, 1e-3, 1e7, &a->o.sweep_max))
                return bad("--sweep-max", optarg, "give the highest rate or concurrency to try");
            break;
        case O_SWEEPPREC:
            if (session_parse_number(optarg, 1e-4, 0.99, &a->o.sweep_precision))
                return bad("--sweep-precision", optarg, "give a fraction such as 0.05");
            break;
        case O_SLO:
            a->o.slo = optarg;
            break;
        case O_LOG:
            a->o.log_path = optarg;
            break;
        case O_LOG_BODIES:
            a->o.log_bodies = true;
            break;
        case O_JSON:
            a->json_path = optarg;
            break;
        case 'o': {
            size_t l = strlen(optarg);
            if (l > 5 && !strcmp(optarg + l - 5, ".json"))
                a->json_path = optarg;
            else if ((l > 5 && !strcmp(optarg + l - 5, ".html")) ||
                     (l > 4 && !strcmp(optarg + l - 4, ".htm")))
                a->html_path = optarg;
            else
                return bad("-o", optarg, "name an .html (page) or .json file");
            break;
        }
        case O_FAIL:
            a->fail_on_errors = true;
            break;
        case O_COST:
            if (session_parse_number(optarg, 1e-9, 1e9, &a->o.cost_per_hour))
                return bad("--cost-per-hour", optarg, "give dollars per hour, e.g. 2.50");
            break;
        case O_SEED:
            if (session_parse_number(optarg, 0, 1e15, &v))
                return bad("--seed", optarg, "give a whole number");
            a->o.seed = (uint64_t)v;
            break;
        case O_LABEL: {
            struct errbuf leb = {""};
            if (runs_label_check(optarg, &leb)) {
                fprintf(stderr, "crux: load: %s\n", leb.msg);
                return EXIT_USAGE;
            }
            a->label = optarg;
            break;
        }
        case O_STORE:
            a->store = optarg;
            break;
        case 'q':
            a->quiet = true;
            break;
        case 'k':
            a->o.insecure = true;
            break;
        case 'h':
            fputs(USAGE, stdout);
            exit(0);
        default:
            fprintf(stderr,
                    "crux: load: unknown option or missing value: %s: see crux load "
                    "--help\n",
                    argv[optind - 1]);
            return EXIT_USAGE;
        }
    }
    if (optind != argc - 1) {
        fprintf(stderr,
                "crux: load needs exactly one URL (got %d): crux load "
                "http://HOST[:PORT]/PATH [options]\n",
                argc - optind);
        return EXIT_USAGE;
    }
    a->o.url = argv[optind];
    if (a->o.requests && !dur_set)
        a->o.duration_s = 0; /* --requests alone: run until they are done */
    if (a->o.sweep && !dur_set && !a->o.requests)
        a->o.duration_s = 5;
    struct errbuf eb = {""};
    if (load_opts_check(&a->o, &eb)) {
        fprintf(stderr, "crux: %s\n", eb.msg);
        return EXIT_USAGE;
    }
    return 0;
}

int load_cli_write(const struct load_cli *a, const struct load_result *res)
{
    int status = 0;
    struct errbuf eb = {""};
    if (a->json_path) {
        struct buf b;
        buf_init(&b, 0);
        struct jsonw w;
        jsonw_init(&w, &b, 0);
        load_write_json(res, &w);
        int rc = jsonw_error(&w);
        if (!rc)
            rc = buf_putc(&b, '\n');
        if (!rc)
            rc = buf_write_file(&b, a->json_path, &eb);
        if (rc) {
            fprintf(stderr, "crux: writing %s failed: %s: %s\n", a->json_path, err_str(rc), eb.msg);
            status = EXIT_FAIL;
        }
        buf_fini(&b);
    }
    if (a->html_path) {
        struct buf b;
        buf_init(&b, 0);
        int rc = load_write_html(res, &b);
        if (!rc)
            rc = buf_write_file(&b, a->html_path, &eb);
        if (rc) {
            fprintf(stderr, "crux: writing %s failed: %s: %s\n", a->html_path, err_str(rc), eb.msg);
            status = EXIT_FAIL;
        }
        buf_fini(&b);
    }
    return status;
}

int cmd_load(int argc, char **argv)
{
    struct load_cli a;
    int rc = load_cli_parse(argc, argv, &a);
    if (rc)
        return rc;
    /* one descriptor per connection: lift the soft limit (often 1024) toward the hard one */
    struct rlimit rl;
    rlim_t want =
        (rlim_t)(a.o.concurrency > a.o.connections ? a.o.concurrency : a.o.connections) + 64;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < want) {
        rl.rlim_cur = want < rl.rlim_max ? want : rl.rlim_max;
        (void)setrlimit(RLIMIT_NOFILE, &rl);
    }
    static volatile sig_atomic_t stop;
    session_trap_signals(&stop);
    signal(SIGPIPE, SIG_IGN);
    struct keep keep;
    keep_begin(&keep, a.label, a.store);
    struct load_result res;
    struct errbuf eb = {""};
    rc = load_run(&a.o, &res, &stop, &eb);
    if (rc) {
        fprintf(stderr, "crux: %s\n", eb.msg[0] ? eb.msg : err_str(rc));
        load_result_fini(&res);
        keep_fini(&keep);
        return rc == ERR_ARG ? EXIT_USAGE : EXIT_FAIL;
    }
    if (!a.quiet) {
        load_print_text(&res, stdout);
        fflush(stdout);
    }
    bool keeping = keep.on;
    bool to_stdout = a.json_path && !strcmp(a.json_path, "-");
    const char *kept = keep_file(&keep, RUN_LOAD, to_stdout ? NULL : a.json_path);
    if (!to_stdout)
        a.json_path = kept;
    int status = load_cli_write(&a, &res);
    if (!status && to_stdout && keep.on) { /* --json -: on stdout and into the store */
        struct load_cli copy = a;
        copy.json_path = kept;
        copy.html_path = NULL;
        status = load_cli_write(&copy, &res);
    }
    if (status)
        keep_drop(&keep); /* the JSON is what is kept */
    else if (keep_finish(&keep))
        status = EXIT_FAIL;
    else if (keeping && !keep.on)
        status = EXIT_FAIL; /* the store could not be written */
    keep_fini(&keep);
    if (a.fail_on_errors && res.stats.errors)
        status = EXIT_FAIL;
    if (a.o.slo && ((!res.sweep && !res.stats.slo_met) || (res.sweep && res.knee < 0)))
        status = EXIT_FAIL;
    load_result_fini(&res);
    return status;
}

const struct cmd_spec *cmd_load_spec(void)
{
    static const struct cmd_spec spec = {OPTS, SHORTS, USAGE};
    return &spec;
}
