// SPDX-License-Identifier: MIT
// Subcommands: each parses its own options and returns crux's exit status.
#ifndef CRUX_CMD_H
#define CRUX_CMD_H

/* crux record [options] (--pid PID | -- COMMAND [ARGS...]) */
int cmd_record(int argc, char **argv);
/* crux dump --pid PID [--json] */
int cmd_dump(int argc, char **argv);
/* crux top [options] (--pid PID | -- COMMAND [ARGS...]) */
int cmd_top(int argc, char **argv);

/* crux report RECORDING.db [-o FILE] */
int cmd_report(int argc, char **argv);
/* crux load URL [options] */
int cmd_load(int argc, char **argv);
/* crux stages (--pid PID | --ring FILE | --otlp FILE) [options] */
int cmd_stages(int argc, char **argv);
/* crux runs [--store DIR] [--label L] [--command TEXT] [--env HASH|same] [--json] */
int cmd_runs(int argc, char **argv);
/* crux diff BASE NEW [options] */
int cmd_diff(int argc, char **argv);
/* crux gate NEW --baseline BASE --thresholds FILE */
int cmd_gate(int argc, char **argv);

/* crux exp FILE [options] | crux exp --vary NAME=V1,V2 [options] -- COMMAND */
int cmd_exp(int argc, char **argv);

/* crux serve [options] (--pid PID | -- COMMAND [ARGS...]): pprof and /metrics over HTTP */
int cmd_serve(int argc, char **argv);

/* crux completions bash|zsh|fish: a completion script on stdout (cmd/completions.c) */
int cmd_completions(int argc, char **argv);
/* crux man: the man page, roff, section 1, on stdout (cmd/manpage.c) */
int cmd_man(int argc, char **argv);

struct option;

/* What `crux completions` and `crux man` read of a command, so that they cannot drift from
 * its --help: the getopt_long table it parses with (ending in a zero entry), the short-option
 * string passed with it, and its --help text. Static storage; nothing to free. */
struct cmd_spec {
    const struct option *opts;
    const char *shorts;
    const char *usage;
};

/* Each command's spec, defined next to its option table. */
const struct cmd_spec *cmd_record_spec(void);
const struct cmd_spec *cmd_dump_spec(void);
const struct cmd_spec *cmd_top_spec(void);
const struct cmd_spec *cmd_report_spec(void);
const struct cmd_spec *cmd_load_spec(void);
const struct cmd_spec *cmd_stages_spec(void);
const struct cmd_spec *cmd_runs_spec(void);
const struct cmd_spec *cmd_diff_spec(void);
const struct cmd_spec *cmd_gate_spec(void);
const struct cmd_spec *cmd_exp_spec(void);
const struct cmd_spec *cmd_serve_spec(void);

/* Exit status for usage errors and for failures. */
#define EXIT_USAGE 2
#define EXIT_FAIL 1

#endif
