// SPDX-License-Identifier: MIT
// crux gate: a new run (or set) against a baseline and thresholds; exit 0 pass, 1 regression,
// 2 inconclusive or environment mismatch, 3 error (docs/loop.md, "crux gate").
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "analysis/gate.h"
#include "cmd/cmd.h"
#include "cmd/compareargs.h"
#include "util/buf.h"
#include "util/xalloc.h"

#define GATE_ERROR 3

static const char USAGE[] =
    "usage: crux gate NEW (--baseline BASE | --baseline-last N) --thresholds FILE\n"
    "  NEW, BASE            as in crux diff: recordings, load results, globs, A,B,C,\n"
    "                       run ids, labels, LABEL@N\n"
    "      --baseline-last N  the store's last N runs with NEW's environment\n"
    "                       fingerprint (and --label's label, when given)\n"
    "      --label L        with --baseline-last: only runs so labelled\n"
    "  -t, --thresholds FILE  one per line: 'throughput -3%', 'p99 +5%', 'time +5%',\n"
    "                       'stage model +2pt', 'function tokenize +10%', 'errors 0'\n"
    "      --json FILE      the judgement as JSON\n"
    "      --markdown FILE  a summary for a pull-request comment\n"
    "      --allow-env-mismatch  judge even when the environments differ\n"
    "      --store DIR, --no-idle, --rules FILE, --confidence C, --fdr Q,\n"
    "      --cost-per-hour USD  as in crux diff\n"
    "exit status: 0 pass; 1 a regression (the whole interval past a threshold);\n"
    "2 inconclusive or the environments differ; 3 an error\n";

static void usage(FILE *f)
{
    fputs(USAGE, f);
}

static int read_file(const char *path, struct buf *b)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return -1;
    char chunk[8192];
    size_t n;
    int rc = 0;
    while (!rc && (n = fread(chunk, 1, sizeof(chunk), f)) > 0)
        rc = buf_append(b, chunk, n);
    fclose(f);
    return rc;
}

/* "12,13,14": the last `n` runs of the store with the fingerprint `fp` (and `label`),
 * leaving out the ids in `skip`. NULL when there are none. */
static char *last_runs(const char *dir, const char *label, const char *fp,
                       const struct run_list *skip, long n)
{
    struct run_list all = {0};
    struct errbuf eb = {{0}};
    if (runs_list(dir, label, NULL, &all, &eb)) {
        fprintf(stderr, "crux: %s\n", eb.msg);
        return NULL;
    }
    struct buf b;
    buf_init(&b, 0);
    long taken = 0;
    for (size_t i = all.n; i-- > 0 && taken < n;) {
        const struct run *r = &all.v[i];
        bool skipped = false;
        for (size_t k = 0; k < skip->n; k++)
            skipped |= skip->v[k].id && skip->v[k].id == r->id;
        if (skipped || (fp && (!r->fp_hash || strcmp(r->fp_hash, fp) != 0)))
            continue;
        if (buf_printf(&b, "%s%lld", taken ? "," : "", (long long)r->id))
            break;
        taken++;
    }
    run_list_fini(&all);
    if (!taken) {
        buf_fini(&b);
        return NULL;
    }
    char *s = xstrdup(buf_cstr(&b));
    buf_fini(&b);
    return s;
}

static const struct option OPTS[] = {{"baseline", required_argument, 0, 'B'},
                                     {"baseline-last", required_argument, 0, 'L'},
                                     {"label", required_argument, 0, 'l'},
                                     {"thresholds", required_argument, 0, 't'},
                                     {"json", required_argument, 0, 'J'},
                                     {"markdown", required_argument, 0, 'M'},
                                     {"allow-env-mismatch", no_argument, 0, 'A'},
                                     {"store", required_argument, 0, 'S'},
                                     {"no-idle", no_argument, 0, 'I'},
                                     {"rules", required_argument, 0, 'R'},
                                     {"confidence", required_argument, 0, 'C'},
                                     {"fdr", required_argument, 0, 'Q'},
                                     {"cost-per-hour", required_argument, 0, 'U'},
                                     {"help", no_argument, 0, 'h'},
                                     {0, 0, 0, 0}};
static const char SHORTS[] = "t:h";

int cmd_gate(int argc, char **argv)
{
    const char *baseline = NULL, *thresholds = NULL, *json = NULL, *markdown = NULL, *label = NULL;
    long last = 0;
    bool allow_env = false;
    struct compare_args ca;
    compare_args_init(&ca);
    optind = 1;
    opterr = 0;
    int c;
    while ((c = getopt_long(argc, argv, SHORTS, OPTS, NULL)) != -1) {
        char *end = NULL;
        switch (c) {
        case 'B':
            baseline = optarg;
            break;
        case 'L':
            last = strtol(optarg, &end, 10);
            if (!end || *end || last < 1 || last > 10000) {
                fprintf(stderr, "crux: gate: --baseline-last wants a count from 1, not '%s'\n",
                        optarg);
                compare_args_fini(&ca);
                return GATE_ERROR;
            }
            break;
        case 'l':
            label = optarg;
            break;
        case 't':
            thresholds = optarg;
            break;
        case 'J':
            json = optarg;
            break;
        case 'M':
            markdown = optarg;
            break;
        case 'A':
            allow_env = true;
            break;
        case 'h':
            usage(stdout);
            compare_args_fini(&ca);
            return 0;
        default:
            if (compare_args_option(&ca, c, optarg) == 0)
                break;
            if (c == '?' || c == ':')
                fprintf(stderr, "crux: gate: unknown option or missing value: %s\n",
                        argv[optind - 1]);
            usage(stderr);
            compare_args_fini(&ca);
            return GATE_ERROR;
        }
    }
    if (optind != argc - 1 || !thresholds || (!baseline && !last) || (baseline && last)) {
        fprintf(stderr, "crux: gate needs NEW, one of --baseline BASE or --baseline-last N, "
                        "and --thresholds FILE: see crux gate --help\n");
        compare_args_fini(&ca);
        return GATE_ERROR;
    }
    const char *newspec = argv[optind];
    struct gate g;
    gate_init(&g);
    struct buf text;
    buf_init(&text, 1 << 20);
    struct errbuf eb = {{0}};
    if (read_file(thresholds, &text)) {
        fprintf(stderr, "crux: gate: cannot read thresholds %s: %m\n", thresholds);
        buf_fini(&text);
        compare_args_fini(&ca);
        return GATE_ERROR;
    }
    if (gate_parse(&g, buf_cstr(&text), thresholds, &eb)) {
        fprintf(stderr, "crux: gate: %s\n", eb.msg);
        buf_fini(&text);
        gate_fini(&g);
        compare_args_fini(&ca);
        return GATE_ERROR;
    }
    buf_fini(&text);
    char *basespec = NULL;
    if (last) {
        /* the new side's runs first, to learn their fingerprint */
        struct run_list probe = {0};
        const char *dir = ca.store ? ca.store : RUNS_DEFAULT_DIR;
        if (runs_resolve(dir, newspec, &probe, &eb)) {
            fprintf(stderr, "crux: gate: %s\n", eb.msg);
            gate_fini(&g);
            compare_args_fini(&ca);
            return GATE_ERROR;
        }
        const char *fp = probe.n ? probe.v[0].fp_hash : NULL;
        basespec = last_runs(dir, label, fp, &probe, last);
        run_list_fini(&probe);
        if (!basespec) {
            fprintf(stderr,
                    "crux: gate: no kept run%s%s with the new run's environment (%s) in %s to "
                    "compare with: keep a baseline with crux record --label NAME\n",
                    label ? " labelled " : "", label ? label : "", fp ? fp : "unknown", dir);
            gate_fini(&g);
            compare_args_fini(&ca);
            return GATE_INCONCLUSIVE;
        }
        baseline = basespec;
    }
    struct diff d;
    int rc = compare_args_load(&ca, baseline, newspec, &d);
    free(basespec);
    if (rc) {
        gate_fini(&g);
        compare_args_fini(&ca);
        return GATE_ERROR;
    }
    double new_errors = -1;
    for (uint32_t r = d.nbase; r < d.nruns; r++)
        if (d.has_load[r])
            new_errors = (new_errors < 0 ? 0 : new_errors) + d.errors[r];
    enum gate_status st = gate_judge(&g, &d, new_errors);
    struct buf notes;
    buf_init(&notes, 0);
    int wrc = compare_args_env_text(&ca, &notes);
    if (!wrc && ca.env_mismatch && !allow_env) {
        wrc = buf_puts(&notes, "the environments differ, so the gate cannot judge: run both "
                               "sides on one machine, or pass --allow-env-mismatch\n");
        if (st == GATE_PASS)
            st = GATE_INCONCLUSIVE;
    }
    const char *w = buf_cstr(&d.warnings);
    while (!wrc && *w) {
        const char *nl = strchr(w, '\n');
        size_t n = nl ? (size_t)(nl - w) : strlen(w);
        wrc = buf_printf(&notes, "warning: %.*s\n", (int)n, w);
        w += n + (nl ? 1 : 0);
    }
    struct buf out;
    buf_init(&out, 0);
    wrc = wrc ? wrc : buf_printf(&out, "%s\n", buf_cstr(&d.headline));
    wrc = wrc ? wrc : gate_write_text(&g, st, buf_cstr(&notes), &out);
    if (!wrc)
        compare_args_cost_text(&d, ca.cost_per_hour, &out);
    wrc = wrc ? wrc : buf_write_file(&out, "-", &eb);
    if (!wrc && json) {
        buf_reset(&out);
        wrc = gate_write_json(&g, st, &d, buf_cstr(&notes), &out);
        wrc = wrc ? wrc : buf_write_file(&out, json, &eb);
    }
    if (!wrc && markdown) {
        buf_reset(&out);
        wrc = gate_write_markdown(&g, st, &d, buf_cstr(&notes), &out);
        wrc = wrc ? wrc : buf_write_file(&out, markdown, &eb);
    }
    if (wrc)
        fprintf(stderr, "crux: gate: %s\n", eb.msg[0] ? eb.msg : err_str(wrc));
    buf_fini(&out);
    buf_fini(&notes);
    diff_fini(&d);
    gate_fini(&g);
    compare_args_fini(&ca);
    return wrc ? GATE_ERROR : (int)st;
}

const struct cmd_spec *cmd_gate_spec(void)
{
    static const struct cmd_spec spec = {OPTS, SHORTS, USAGE};
    return &spec;
}
