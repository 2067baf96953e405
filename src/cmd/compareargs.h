// SPDX-License-Identifier: MIT
// What crux diff and crux gate share: the options that choose and weigh runs, resolving each
// side through the run store, loading them into a comparison, and the environment check.
#ifndef CRUX_COMPAREARGS_H
#define CRUX_COMPAREARGS_H

#include <stdbool.h>

#include "analysis/diff.h"
#include "analysis/stages.h"
#include "store/runs.h"
#include "util/buf.h"

/* getopt codes the shared options use (long options only). */
enum {
    CA_STORE = 'S',
    CA_NO_IDLE = 'I',
    CA_RULES = 'R',
    CA_CONF = 'C',
    CA_FDR = 'Q',
    CA_COST = 'U',
};

struct compare_args {
    const char *store; /* NULL: RUNS_DEFAULT_DIR */
    const char *rules_path;
    bool no_idle;
    double conf, fdr, cost_per_hour;
    struct stage_rules rules;
    bool rules_loaded;
    struct run_list base, new_;
    bool env_mismatch;    /* fingerprints of base and new differ */
    bool cmd_mismatch;    /* commands differ */
    struct buf env_notes; /* what differs, one line each */
};

void compare_args_init(struct compare_args *ca);
void compare_args_fini(struct compare_args *ca);
/* Takes one of the shared options (getopt code `c`, value `arg`); 0 when taken, EXIT_USAGE
 * (after a one-line message) for a bad value, -1 when `c` is not a shared option. */
int compare_args_option(struct compare_args *ca, int c, const char *arg);
/* Resolves BASE and NEW, loads every run into `d` (diff_init'ed here; finished) and checks
 * their environments. 0, or crux's exit status after a one-line message; `d` is released on
 * failure. */
int compare_args_load(struct compare_args *ca, const char *base, const char *new_, struct diff *d);
/* Appends the environment notes (mismatches) as text. */
int compare_args_env_text(const struct compare_args *ca, struct buf *out);

#endif
