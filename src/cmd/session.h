// SPDX-License-Identifier: MIT
// The target of a command: attach to a PID or launch a command, find its runtime, and turn
// failures into one line with the cause and the fix.
#ifndef CRUX_SESSION_H
#define CRUX_SESSION_H

#include <signal.h>
#include <stdbool.h>
#include <sys/types.h>

#include "cpython/pyruntime.h"
#include "util/err.h"

struct session {
    pid_t pid;
    bool launched;
    bool child_exited;
    int child_status; /* wait status of the launched command once it exited */
    struct pyruntime rt;
};

/* Attaches to `pid`: checks it exists and is readable, then finds its runtime. */
int session_attach(struct session *s, pid_t pid, struct errbuf *eb) MUST_CHECK;
/* Launches argv[0] with arguments `argv` (NULL-terminated) and waits until a CPython runtime
 * appears in it (up to `wait_s` seconds). If the command exits first, returns 0 with
 * s->child_exited set. On failure the child is terminated. */
int session_launch(struct session *s, char *const argv[], double wait_s,
                   struct errbuf *eb) MUST_CHECK;
/* Waits for a launched command to finish (forwarding nothing) and returns crux's exit code
 * for it: its exit status, or 128 + signal. Returns 0 in attach mode. */
int session_finish(struct session *s);
/* Prints "crux: CAUSE: FIX" for error `rc` with context `eb` on stderr. */
void session_report(int rc, const struct errbuf *eb);
/* Installs SIGINT/SIGTERM handlers that set *flag (and remember the signal). */
void session_trap_signals(volatile sig_atomic_t *flag);
/* The signal that set the flag, or 0. */
int session_signal(void);
/* Parses a finite number within [lo, hi] (an option's value); ERR_ARG otherwise. */
int session_parse_number(const char *s, double lo, double hi, double *out) MUST_CHECK;
/* Parses a positive PID; ERR_ARG when malformed. */
int session_parse_pid(const char *s, pid_t *out) MUST_CHECK;

#endif
