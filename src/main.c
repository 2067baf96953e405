// SPDX-License-Identifier: MIT
// crux: entry point; dispatches to one cmd_* per subcommand (the list is in cmd/commands.c).
#include <stdio.h>
#include <string.h>

#include "cmd/cmd.h"
#include "cmd/commands.h"

int main(int argc, char **argv)
{
    if (argc < 2) {
        commands_usage(stderr);
        return EXIT_USAGE;
    }
    const char *cmd = argv[1];
    const struct command *c = commands_find(cmd);
    if (c)
        return c->fn(argc - 1, argv + 1);
    if (strcmp(cmd, "--version") == 0 || strcmp(cmd, "version") == 0) {
        printf("crux %s\n", CRUX_VERSION);
        return 0;
    }
    if (strcmp(cmd, "--help") == 0 || strcmp(cmd, "-h") == 0 || strcmp(cmd, "help") == 0) {
        commands_usage(stdout);
        return 0;
    }
    fprintf(stderr, "crux: unknown command '%s': see crux --help\n", cmd);
    return EXIT_USAGE;
}
