// SPDX-License-Identifier: MIT
// Stopping a process's threads while they are read (--blocking), with ptrace SEIZE and
// INTERRUPT: a seized thread that loses its tracer, even to SIGKILL, runs on.
#ifndef CRUX_PAUSE_H
#define CRUX_PAUSE_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#include "util/err.h"

struct pause_thread {
    pid_t tid;
    int pending_sig; /* signal to deliver when resumed */
    bool stopped;
};

struct pauser {
    pid_t pid;
    pid_t child; /* the launched command (its exit is reported to us), or 0 */
    bool child_exited;
    int child_status;
    struct pause_thread *v;
    size_t n, cap;
};

/* Prepares to pause process `pid`; `child` is pid when crux launched it, else 0. */
void pause_init(struct pauser *pz, pid_t pid, pid_t child);
/* Seizes threads not yet seized and stops every thread. ERR_PERM when ptrace is refused,
 * ERR_PROC_GONE when the process exited. Threads that exit meanwhile are forgotten. */
int pause_stop_all(struct pauser *pz, struct errbuf *eb) MUST_CHECK;
/* Resumes every stopped thread, delivering signals that arrived while it was stopped. */
void pause_resume_all(struct pauser *pz);
/* Handles stops the target got between rounds (signal deliveries, exits) without blocking. */
void pause_poll(struct pauser *pz);
/* Detaches from every thread; the target runs on. */
void pause_fini(struct pauser *pz);

#endif
