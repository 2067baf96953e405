// SPDX-License-Identifier: MIT
// crux: entry point; dispatches to one cmd_* per subcommand.
#include <stdio.h>
#include <string.h>

#include "cmd/cmd.h"

#define CRUX_VERSION "0.1.0"

struct command {
    const char *name;
    int (*fn)(int argc, char **argv);
};

static void usage(FILE *f)
{
    fputs("usage: crux COMMAND [options]\n"
          "  record   sample a Python process and write a flame graph or profile\n"
          "  dump     print every thread's Python stack now\n"
          "  top      live view of the hottest functions\n"
          "  report   write a report from a saved recording (record --save)\n"
          "  load     generate HTTP load and measure latency\n"
          "  stages   per-stage request latencies from the crux agent or OpenTelemetry spans\n"
          "  runs     the runs kept by record --label and load --label (the run store)\n"
          "  diff     what changed between two sets of runs, with confidence intervals\n"
          "  gate     fail on a regression past thresholds, not on noise (for CI)\n"
          "  exp      run an experiment over variant configurations and pick the winner\n"
          "run 'crux COMMAND --help' for a command's options\n",
          f);
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        usage(stderr);
        return EXIT_USAGE;
    }
    const char *cmd = argv[1];
    const struct command cmds[] = {
        {"record", cmd_record}, {"dump", cmd_dump},     {"top", cmd_top},   {"report", cmd_report},
        {"load", cmd_load},     {"stages", cmd_stages}, {"runs", cmd_runs}, {"diff", cmd_diff},
        {"gate", cmd_gate},     {"exp", cmd_exp}};
    for (size_t i = 0; i < sizeof(cmds) / sizeof(cmds[0]); i++) {
        if (strcmp(cmd, cmds[i].name) != 0)
            continue;
        return cmds[i].fn(argc - 1, argv + 1);
    }
    if (strcmp(cmd, "--version") == 0 || strcmp(cmd, "version") == 0) {
        printf("crux %s\n", CRUX_VERSION);
        return 0;
    }
    if (strcmp(cmd, "--help") == 0 || strcmp(cmd, "-h") == 0 || strcmp(cmd, "help") == 0) {
        usage(stdout);
        return 0;
    }
    fprintf(stderr, "crux: unknown command '%s': see crux --help\n", cmd);
    return EXIT_USAGE;
}
