// SPDX-License-Identifier: MIT
// The options and outputs of `crux load`, shared with `crux record --load`.
#ifndef CRUX_LOADCLI_H
#define CRUX_LOADCLI_H

#include <stdbool.h>

#include "load/load.h"

#define LOAD_CLI_MAX_HEADERS 64

struct load_cli {
    struct load_opts o;
    const char *headers[LOAD_CLI_MAX_HEADERS];
    const char *json_path, *html_path;
    const char *label, *store; /* --label NAME, --store DIR: keep the run (cmd/keep.h) */
    bool quiet, fail_on_errors;
};

/* Parses `crux load` arguments (argv[0] is the command name, the URL one of the rest) into
 * `a`; strings are borrowed from argv. Prints the one-line error and returns EXIT_USAGE on
 * bad input; --help prints the usage and exits. */
int load_cli_parse(int argc, char **argv, struct load_cli *a);
/* Writes the --json and -o FILE.html outputs; returns 0 or EXIT_FAIL after printing why. */
int load_cli_write(const struct load_cli *a, const struct load_result *res);

#endif
