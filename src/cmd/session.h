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

/* Grace periods of session_end: SIGINT, then SIGTERM after SESSION_GRACE_MS, then SIGKILL after
 * another SESSION_GRACE_MS (reasons in session.c). After SIGKILL crux waits at most
 * SESSION_KILL_WAIT_MS: a process in uninterruptible sleep dies only when it leaves it. */
#define SESSION_GRACE_MS 1000
#define SESSION_KILL_WAIT_MS 5000
/* Processes session_end tracks: the command and its descendants (a pool's workers). */
#define SESSION_MAX_TREE 1024

/* What session_end did. */
struct session_ending {
    int sig;            /* the last signal sent (the one that ended it); 0: it was gone already */
    size_t descendants; /* descendants of the command that were signalled too */
    size_t left;        /* processes still alive when crux gave up (after SIGKILL) */
};

/* Ends a launched command that is still running, with its descendants: `first_sig` (SIGINT,
 * or SIGTERM to skip it), then SIGTERM, then SIGKILL, each to every process of the tree as
 * /proc shows it then, until the command is reaped and the descendants seen are gone. The
 * command's process group is crux's (a terminal's Ctrl-C reaches both), so the tree is walked
 * by parent pid rather than signalled as a group. Crux is a child subreaper meanwhile, so
 * descendants orphaned on the way are still found and their zombies reaped; a process that
 * left the tree before (a daemon that double-forked) is not touched. Returns 0, or ERR_SYS
 * with context when something outlived SIGKILL by SESSION_KILL_WAIT_MS (e->left says how
 * many). */
int session_end(struct session *s, int first_sig, struct session_ending *e,
                struct errbuf *eb) MUST_CHECK;

/* What session_stop does with a launched command still running when recording is over. */
struct session_stop {
    bool keep_running; /* --keep-running: leave it running and return at once */
    bool end;          /* crux chose to stop (--duration over, top's q, --load done): end it */
    int first_sig;     /* session_end's first signal: SIGINT; SIGTERM for a --load server */
    const char *why;   /* for the line on stderr saying so: "--duration is over" */
};

/* Once recording is over, settles a launched command and returns crux's exit status for it:
 * - it exited by itself: its status (exit code, or 128 + signal), as session_finish;
 * - how->keep_running: it is left running (it keeps crux's stdin, stdout and stderr); 0;
 * - crux got SIGINT/SIGTERM: the same signal is passed on and crux waits, as session_finish;
 * - how->end: it is ended (session_end) and a line on stderr says how; 0, whatever status the
 *   signal gave it (1 when something outlived SIGKILL);
 * - otherwise crux waits for it, as session_finish.
 * Returns 0 in attach mode. */
int session_stop(struct session *s, const struct session_stop *how);
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
