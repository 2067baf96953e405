// SPDX-License-Identifier: MIT
// Facts about a process and its threads from /proc: existence, threads, run state, names.
#ifndef CRUX_PROC_H
#define CRUX_PROC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "util/err.h"

/* Checks that `pid` exists and that its memory may be read by us. ERR_PROC_GONE or ERR_PERM
 * with context. */
int proc_check(pid_t pid, struct errbuf *eb) MUST_CHECK;
/* True while the process exists and is not a zombie. */
bool proc_alive(pid_t pid);
/* Lists the thread ids of `pid` into `tids` (at most `max`); stores the count in *n. */
int proc_tasks(pid_t pid, pid_t *tids, size_t max, size_t *n) MUST_CHECK;
/* Reads the one-letter state of thread `tid` (R, S, D, T, t, Z, ...). */
int proc_task_state(pid_t pid, pid_t tid, char *state) MUST_CHECK;
/* Parses a /proc/.../stat line and returns its state letter, or '?' when malformed. */
char proc_parse_stat_state(const char *line, size_t len);
/* Copies the thread's comm (name) into `out` (at most `n` bytes, NUL-terminated). */
int proc_task_comm(pid_t pid, pid_t tid, char *out, size_t n) MUST_CHECK;
/* Copies the process's command line (arguments joined by spaces) into `out`. */
int proc_cmdline(pid_t pid, char *out, size_t n) MUST_CHECK;
/* Reads the namespaced pid of `pid` as its own namespace sees it (last NSpid field);
 * returns `pid` itself when the kernel does not say. */
pid_t proc_nspid(pid_t pid);

/* Opens /proc/PID/task/TID/NAME read-only, close-on-exec, to be kept and re-read with pread
 * (reopening costs several times more than re-reading); -1 with errno when it cannot. */
int proc_task_open(pid_t pid, pid_t tid, const char *name);

/* Cached readers of /proc/PID/task/TID/stat, kept open between samples: reopening the file
 * costs several times more than re-reading it. */
struct proc_statcache {
    pid_t pid;
    struct proc_statfd *v;
    size_t n, cap;
};

void proc_statcache_init(struct proc_statcache *c, pid_t pid);
void proc_statcache_fini(struct proc_statcache *c);
/* Reads the state letter of `tid`; '?' when the thread is gone. */
char proc_statcache_state(struct proc_statcache *c, pid_t tid);
/* Closes the files of threads not in `tids` (call now and then to drop exited threads). */
void proc_statcache_prune(struct proc_statcache *c, const pid_t *tids, size_t n);

#endif
