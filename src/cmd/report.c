// SPDX-License-Identifier: MIT
// crux report: make any output again from a saved recording (record --save run.db).
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "analysis/stages.h"
#include "analysis/verdict.h"
#include "cmd/cmd.h"
#include "export/export.h"
#include "profile/profile.h"
#include "store/runs.h"
#include "store/store.h"
#include "util/buf.h"

static const char USAGE[] =
    "usage: crux report RECORDING [-o FILE] [-f FORMAT] [--rules FILE] [--store DIR]\n"
    "  RECORDING            a file written by record --save, or a kept run: its id, a\n"
    "                       label's newest run, or LABEL@N (see crux runs)\n"
    "  -o, --output FILE    output file (default: the summary on stdout); format from the\n"
    "                       extension: .html (report), .svg, .json (speedscope),\n"
    "                       .gecko.json (Firefox Profiler), .trace.json (Chrome trace\n"
    "                       for Perfetto), .txt (collapsed stacks), .pb.gz (pprof),\n"
    "                       .pstats (pstats)\n"
    "  -f, --format NAME    html | flamegraph | svg | speedscope | gecko | chrome |\n"
    "                       collapsed | lines | lines-json | summary | verdict | pprof |\n"
    "                       pstats\n"
    "      --rules FILE     stage rules that add to or override the built-in ones\n"
    "                       (docs/report.md)\n";

static void usage(FILE *f)
{
    fputs(USAGE, f);
}

static const struct option OPTS[] = {
    {"output", required_argument, 0, 'o'}, {"format", required_argument, 0, 'f'},
    {"rules", required_argument, 0, 'R'},  {"store", required_argument, 0, 'S'},
    {"help", no_argument, 0, 'h'},         {0, 0, 0, 0}};
static const char SHORTS[] = "o:f:h";

int cmd_report(int argc, char **argv)
{
    const char *output = NULL, *format = NULL, *rules_path = NULL, *store = NULL;
    optind = 1;
    opterr = 0;
    int c;
    while ((c = getopt_long(argc, argv, SHORTS, OPTS, NULL)) != -1) {
        switch (c) {
        case 'o':
            output = optarg;
            break;
        case 'f':
            format = optarg;
            break;
        case 'R':
            rules_path = optarg;
            break;
        case 'S':
            store = optarg;
            break;
        case 'h':
            usage(stdout);
            return 0;
        default:
            fprintf(stderr, "crux: report: unknown option or missing value: %s\n",
                    argv[optind - 1]);
            usage(stderr);
            return EXIT_USAGE;
        }
    }
    if (optind != argc - 1) {
        fprintf(stderr, "crux: report needs one saved recording (crux record --save run.db): "
                        "see crux report --help\n");
        return EXIT_USAGE;
    }
    const char *db = argv[optind];
    /* a kept run: its id, LABEL@N, or a label (its newest run) */
    struct run_list found = {0};
    struct stat sb;
    if (stat(db, &sb) != 0) {
        struct errbuf reb = {{0}};
        const char *dir = store ? store : RUNS_DEFAULT_DIR;
        if (runs_resolve(dir, db, &found, &reb) || !found.n) {
            fprintf(stderr, "crux: %s\n", reb.msg[0] ? reb.msg : "no such recording or run");
            run_list_fini(&found);
            return EXIT_FAIL;
        }
        if (found.v[found.n - 1].kind != RUN_RECORDING) {
            fprintf(stderr,
                    "crux: %s is a load result, not a recording: compare it with crux "
                    "diff, or record with crux record --load\n",
                    db);
            run_list_fini(&found);
            return EXIT_FAIL;
        }
        db = found.v[found.n - 1].path;
    }
    enum export_format fmt = EXPORT_SUMMARY;
    if (format ? export_format_from_name(format, &fmt)
               : (output && strcmp(output, "-") != 0 && export_format_from_path(output, &fmt))) {
        fprintf(stderr,
                "crux: cannot tell the output format of '%s': use a .html, .svg, .json, "
                ".gecko.json, .trace.json, .txt, .pb.gz or .pstats file name, or --format\n",
                format ? format : output);
        return EXIT_USAGE;
    }
    struct errbuf eb = {{0}};
    struct stage_rules rules;
    stage_rules_init(&rules);
    if (rules_path && stage_rules_load(&rules, rules_path, &eb)) {
        fprintf(stderr, "crux: %s\n", eb.msg);
        stage_rules_fini(&rules);
        run_list_fini(&found);
        return EXIT_USAGE;
    }
    struct profile p;
    profile_init(&p);
    int rc = store_load(db, &p, &eb);
    if (rc) {
        fprintf(stderr, "crux: %s\n", eb.msg);
        profile_fini(&p);
        stage_rules_fini(&rules);
        run_list_fini(&found);
        return EXIT_FAIL;
    }
    if (!export_wants_columns(fmt))
        profile_drop_columns(&p);
    struct buf out;
    buf_init(&out, 0);
    struct export_opts o = {.rules = &rules};
    rc = export_write(&p, fmt, &o, &out, &eb);
    if (!rc)
        rc = buf_write_file(&out, output ? output : "-", &eb);
    if (rc)
        fprintf(stderr, "crux: %s\n", eb.msg);
    else if (output && strcmp(output, "-") != 0)
        fprintf(stderr, "crux: wrote %s (%s) from %s: %llu samples\n", output,
                export_format_name(fmt), db, (unsigned long long)p.total);
    buf_fini(&out);
    profile_fini(&p);
    stage_rules_fini(&rules);
    run_list_fini(&found);
    return rc ? EXIT_FAIL : 0;
}

const struct cmd_spec *cmd_report_spec(void)
{
    static const struct cmd_spec spec = {OPTS, SHORTS, USAGE};
    return &spec;
}
