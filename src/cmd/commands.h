// SPDX-License-Identifier: MIT
// The one list of crux's subcommands: main dispatches on it, --help, completions and man read it.
#ifndef CRUX_COMMANDS_H
#define CRUX_COMMANDS_H

#include <stddef.h>
#include <stdio.h>

#include "cmd/cmd.h"

#define CRUX_VERSION "0.1.0"

struct command {
    const char *name;
    int (*fn)(int argc, char **argv);
    const struct cmd_spec *(*spec)(void); /* NULL: the command has no option table */
    const char *summary;                  /* one line for crux --help */
};

/* The subcommands in the order crux --help lists them; sets *n to their number. Static
 * storage; nothing to free. */
const struct command *commands_all(size_t *n);
/* The command called `name`, or NULL. */
const struct command *commands_find(const char *name);
/* Writes crux's top-level usage (one line per command) to `f`. */
void commands_usage(FILE *f);

#endif
