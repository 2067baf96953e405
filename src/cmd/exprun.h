// SPDX-License-Identifier: MIT
// crux exp: executing one run (a command with its stdout captured and hashed, timed by wait4)
// and, in server mode, starting a server, waiting until it is ready and stopping it with its
// whole process group.
#ifndef CRUX_EXPRUN_H
#define CRUX_EXPRUN_H

#include <signal.h>
#include <stdbool.h>
#include <stddef.h>
#include <sys/resource.h>
#include <sys/types.h>

#include "util/err.h"

/* Bytes of a run's output kept for comparison (the hash covers all of it). */
#define EXP_OUT_CAP ((size_t)16 << 20)
/* Bytes of a run's stderr kept (the end of it) to show when the run fails. */
#define EXP_ERR_TAIL 2048
/* Output read after a command exits while something it started still holds its pipes. */
#define EXP_DRAIN_MS 500
/* Grace periods when a server is stopped: SIGINT, then SIGTERM, then SIGKILL. */
#define EXP_STOP_GRACE_MS 2000

/* What one run executes. Strings are borrowed. */
struct exp_cmd {
    char *const *argv;    /* NULL-terminated; argv[0] is looked up in PATH */
    char *const *env;     /* "NAME=VALUE" added to crux's environment; NULL-terminated or NULL */
    const char *output;   /* the file the command writes, read after it ends; NULL: its stdout */
    const char *err_path; /* stderr appended to this file too (NULL: only the tail is kept) */
};

/* What came of it. */
struct exp_capture {
    bool started;     /* the exec succeeded */
    bool interrupted; /* crux was asked to stop meanwhile: the run does not count */
    int status;       /* exit code, or 128 + signal; -1 when it did not start */
    double start;     /* Unix seconds */
    double wall_s, cpu_s;
    long maxrss_kb;
    char hash[65]; /* SHA-256 of the output, hex; "" when it could not be read */
    char *data;    /* the first EXP_OUT_CAP bytes of the output; owned (exp_capture_fini) */
    size_t len;
    bool truncated;             /* the output was longer than EXP_OUT_CAP */
    char err[EXP_ERR_TAIL + 1]; /* the end of stderr, NUL-terminated */
    char why[256];              /* why it failed (exec error, missing output file) or "" */
};

void exp_capture_fini(struct exp_capture *c);

/* Runs the command to its end: stdin from /dev/null, stdout captured (bounded) and hashed,
 * stderr's tail kept; wall time from fork to reap, CPU time and peak RSS from wait4. The child
 * dies with crux (PR_SET_PDEATHSIG). When *stop is set the child gets SIGINT (then SIGTERM,
 * SIGKILL) and the capture is marked interrupted. Fails (ERR_SYS) only when crux itself
 * cannot fork or make pipes; a command that fails is a capture with a status. */
int exp_run(const struct exp_cmd *c, volatile sig_atomic_t *stop, struct exp_capture *out,
            struct errbuf *eb) MUST_CHECK;

/* SHA-256 of `n` bytes, hex into `hex`. */
void exp_sha256_hex(const void *p, size_t n, char hex[65]);

/* Starts a server in a process group of its own with stdout and stderr appended to
 * `log_path`; *pid is its pid (= its group). */
int exp_server_start(char *const *argv, char *const *env, const char *log_path, pid_t *pid,
                     struct errbuf *eb) MUST_CHECK;
/* Polls `url` (http:// only) until it answers 2xx, for at most `timeout_s`. ERR_PROC_GONE
 * when the server exits first, ERR_AGAIN on time out (the last answer or error in `eb`). */
int exp_server_ready(pid_t pid, const char *url, double timeout_s, volatile sig_atomic_t *stop,
                     struct errbuf *eb) MUST_CHECK;
/* Stops the server's whole process group: SIGINT, SIGTERM after EXP_STOP_GRACE_MS, SIGKILL
 * after another; reaps the server, its CPU time and peak RSS (with its waited-for children)
 * into *ru (zeroed when it was reaped elsewhere). Returns the signal that ended it (0: it had
 * exited). */
int exp_server_stop(pid_t pid, struct rusage *ru);

/* A TCP port free on 127.0.0.1 now (bound and released), or 0. */
int exp_free_port(void);
/* Writes `n` bytes to `path` unless it exists (outputs are kept once per hash). */
int exp_keep_file(const char *path, const void *p, size_t n, struct errbuf *eb) MUST_CHECK;
/* Reads up to `cap` bytes of `path` into a new buffer the caller frees; *truncated when the
 * file is longer; the hash covers the whole file. ERR_NOT_FOUND when it does not exist. */
int exp_read_file(const char *path, size_t cap, char **data, size_t *len, bool *truncated,
                  char hex[65], struct errbuf *eb) MUST_CHECK;

#endif
