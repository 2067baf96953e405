// SPDX-License-Identifier: MIT
// The one list of crux's subcommands, with the line each has in crux --help.
#include "cmd/commands.h"

#include <string.h>

static const struct command COMMANDS[] = {
    {"record", cmd_record, cmd_record_spec,
     "sample a Python process and write a flame graph or profile"},
    {"dump", cmd_dump, cmd_dump_spec, "print every thread's Python stack now"},
    {"top", cmd_top, cmd_top_spec, "live view of the hottest functions"},
    {"report", cmd_report, cmd_report_spec,
     "write a report from a saved recording (record --save)"},
    {"load", cmd_load, cmd_load_spec, "generate HTTP load and measure latency"},
    {"stages", cmd_stages, cmd_stages_spec,
     "per-stage request latencies from the crux agent or OpenTelemetry spans"},
    {"runs", cmd_runs, cmd_runs_spec,
     "the runs kept by record --label and load --label (the run store)"},
    {"diff", cmd_diff, cmd_diff_spec,
     "what changed between two sets of runs, with confidence intervals"},
    {"gate", cmd_gate, cmd_gate_spec,
     "fail on a regression past thresholds, not on noise (for CI)"},
    {"exp", cmd_exp, cmd_exp_spec,
     "run an experiment over variant configurations and pick the winner"},
    {"serve", cmd_serve, cmd_serve_spec,
     "serve pprof profiles and Prometheus metrics of a process over HTTP"},
    {"completions", cmd_completions, NULL, "print a bash, zsh or fish completion script"},
    {"man", cmd_man, NULL, "print the man page (roff)"},
};

const struct command *commands_all(size_t *n)
{
    *n = sizeof(COMMANDS) / sizeof(COMMANDS[0]);
    return COMMANDS;
}

const struct command *commands_find(const char *name)
{
    for (size_t i = 0; i < sizeof(COMMANDS) / sizeof(COMMANDS[0]); i++)
        if (!strcmp(COMMANDS[i].name, name))
            return &COMMANDS[i];
    return NULL;
}

void commands_usage(FILE *f)
{
    fputs("usage: crux COMMAND [options]\n", f);
    for (size_t i = 0; i < sizeof(COMMANDS) / sizeof(COMMANDS[0]); i++)
        fprintf(f, "  %-11s %s\n", COMMANDS[i].name, COMMANDS[i].summary);
    fputs("run 'crux COMMAND --help' for a command's options\n", f);
}
