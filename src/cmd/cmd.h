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

/* Exit status for usage errors and for failures. */
#define EXIT_USAGE 2
#define EXIT_FAIL 1

#endif
