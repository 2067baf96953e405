// SPDX-License-Identifier: MIT
// crux diff BASE NEW: what changed between two sets of runs, with intervals (docs/loop.md).
#include <getopt.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "analysis/diff.h"
#include "cmd/cmd.h"
#include "cmd/compareargs.h"
#include "export/diffflame.h"
#include "util/buf.h"

static const char USAGE[] =
    "usage: crux diff BASE NEW [options]\n"
    "  BASE, NEW            each a recording (record --save FILE.db), a load result\n"
    "                       (load --json FILE.json), a glob ('base-*.db'), a list A,B,C,\n"
    "                       a kept run's id, a label (all its runs) or LABEL@N (the\n"
    "                       N-th run so labelled; -1 the newest): see crux runs\n"
    "  -o, --output FILE    .html: differential flame graph; .txt or .folded: 3-column\n"
    "                       folded stacks (difffolded.pl); .json: every estimate\n"
    "  -f, --format NAME    text | json | html | folded (default: text on stdout)\n"
    "      --json FILE      also write the JSON\n"
    "      --store DIR      the run store (default .crux/runs)\n"
    "      --top N          rows per table in the text (default 10)\n"
    "      --no-idle        leave samples of idle threads out (default: wall time)\n"
    "      --rules FILE     stage rules adding to or overriding the built-in ones\n"
    "      --confidence C   interval level (default 0.95)\n"
    "      --fdr Q          false-discovery rate of the flags (default 0.05)\n"
    "      --cost-per-hour USD  turn throughput into cost per 1,000 requests\n"
    "exit status: 0 compared (whatever changed); 1 a side could not be read; 2 usage\n";

static void usage(FILE *f)
{
    fputs(USAGE, f);
}

static const struct option OPTS[] = {
    {"output", required_argument, 0, 'o'}, {"format", required_argument, 0, 'f'},
    {"json", required_argument, 0, 'J'},   {"store", required_argument, 0, 'S'},
    {"top", required_argument, 0, 'T'},    {"no-idle", no_argument, 0, 'I'},
    {"rules", required_argument, 0, 'R'},  {"confidence", required_argument, 0, 'C'},
    {"fdr", required_argument, 0, 'Q'},    {"cost-per-hour", required_argument, 0, 'U'},
    {"help", no_argument, 0, 'h'},         {0, 0, 0, 0}};
static const char SHORTS[] = "o:f:h";

int cmd_diff(int argc, char **argv)
{
    const char *output = NULL, *format = NULL, *json = NULL;
    struct compare_args ca;
    compare_args_init(&ca);
    unsigned top = 10;
    optind = 1;
    opterr = 0;
    int c;
    while ((c = getopt_long(argc, argv, SHORTS, OPTS, NULL)) != -1) {
        char *end = NULL;
        switch (c) {
        case 'o':
            output = optarg;
            break;
        case 'f':
            format = optarg;
            break;
        case 'J':
            json = optarg;
            break;
        case 'T':
            top = (unsigned)strtoul(optarg, &end, 10);
            if (!end || *end || top == 0 || top > 100000) {
                fprintf(stderr, "crux: diff: --top wants a count from 1, not '%s'\n", optarg);
                compare_args_fini(&ca);
                return EXIT_USAGE;
            }
            break;
        case 'h':
            usage(stdout);
            compare_args_fini(&ca);
            return 0;
        default:
            if (compare_args_option(&ca, c, optarg) == 0)
                break;
            if (c == '?' || c == ':')
                fprintf(stderr, "crux: diff: unknown option or missing value: %s\n",
                        argv[optind - 1]);
            usage(stderr);
            compare_args_fini(&ca);
            return EXIT_USAGE;
        }
    }
    if (optind != argc - 2) {
        fprintf(stderr, "crux: diff needs BASE and NEW (recordings, load results, labels or run "
                        "ids): see crux diff --help\n");
        compare_args_fini(&ca);
        return EXIT_USAGE;
    }
    if (!format && output) {
        const char *dot = strrchr(output, '.');
        format = !dot                                                    ? "text"
                 : strcmp(dot, ".html") == 0 || strcmp(dot, ".htm") == 0 ? "html"
                 : strcmp(dot, ".json") == 0                             ? "json"
                 : strcmp(dot, ".folded") == 0                           ? "folded"
                                                                         : "text";
    }
    if (!format)
        format = "text";
    if (strcmp(format, "text") && strcmp(format, "json") && strcmp(format, "html") &&
        strcmp(format, "folded")) {
        fprintf(stderr, "crux: diff: unknown format '%s': text, json, html or folded\n", format);
        compare_args_fini(&ca);
        return EXIT_USAGE;
    }
    struct diff d;
    int rc = compare_args_load(&ca, argv[optind], argv[optind + 1], &d);
    if (rc) {
        compare_args_fini(&ca);
        return rc;
    }
    struct buf out;
    buf_init(&out, 0);
    struct errbuf eb = {{0}};
    int wrc = 0;
    if (strcmp(format, "text") == 0) {
        wrc = diff_write_text(&d, top, &out);
        if (!wrc) {
            struct buf cb;
            buf_init(&cb, 0);
            compare_args_cost_text(&d, ca.cost_per_hour, &cb);
            wrc = buf_puts(&out, buf_cstr(&cb));
            buf_fini(&cb);
        }
        wrc = wrc ? wrc : compare_args_env_text(&ca, &out);
    } else if (strcmp(format, "json") == 0)
        wrc = diff_write_json(&d, &out);
    else if (strcmp(format, "html") == 0)
        wrc = diffflame_write_html(&d.tree, "crux diff", buf_cstr(&d.headline), &out, &eb);
    else
        wrc = diffflame_write_folded(&d.tree, &out, &eb);
    if (!wrc)
        wrc = buf_write_file(&out, output ? output : "-", &eb);
    if (!wrc && json) {
        buf_reset(&out);
        wrc = diff_write_json(&d, &out);
        wrc = wrc ? wrc : buf_write_file(&out, json, &eb);
    }
    if (wrc)
        fprintf(stderr, "crux: diff: %s\n", eb.msg[0] ? eb.msg : err_str(wrc));
    else if (output && strcmp(output, "-") != 0)
        fprintf(stderr, "crux: wrote %s: %s\n", output, buf_cstr(&d.headline));
    buf_fini(&out);
    diff_fini(&d);
    compare_args_fini(&ca);
    return wrc ? EXIT_FAIL : 0;
}

const struct cmd_spec *cmd_diff_spec(void)
{
    static const struct cmd_spec spec = {OPTS, SHORTS, USAGE};
    return &spec;
}
