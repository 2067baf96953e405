// SPDX-License-Identifier: MIT
// Stopping a process's threads while they are read (--blocking), with ptrace SEIZE and
// INTERRUPT: a seized thread that loses its tracer, even to SIGKILL, runs on.
#ifndef CRUX_PAUSE_H
#define CRUX_PAUSE_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#include "util/err.h"

#define PAUSE_ONE_WAIT_US 100000 /* longest wait for one thread's stop */

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
/* Detaches from every thread; the target runs on. Stops only threads already seized (one
 * INTERRUPT each, to be allowed to detach), never seizes new ones. */
void pause_fini(struct pauser *pz);

/* One thread at a time (--native): the rest of the process keeps running.
 * Stops thread `tid` alone: seizes it if it is not seized yet, interrupts it and waits for the
 * stop without blocking for more than PAUSE_ONE_WAIT_US. Returns 0 when the thread is stopped
 * (its registers and memory may then be read), ERR_PERM when ptrace is refused,
 * ERR_PROC_GONE when the thread exited, ERR_TOO_LARGE when it did not stop in time (it is
 * then left seized with the stop pending: the next pause_stop_one(), pause_release_one() or
 * pause_fini() collects and releases it). */
int pause_stop_one(struct pauser *pz, pid_t tid, struct errbuf *eb) MUST_CHECK;
/* Resumes `tid` stopped by pause_stop_one(), delivering a signal that arrived meanwhile; the
 * thread stays seized (traced) for the next pause_stop_one(). */
void pause_resume_one(struct pauser *pz, pid_t tid);
/* Resumes `tid` and detaches from it (delivering a pending signal): the thread is no longer
 * traced, so signals it gets between samples never wait for crux. A thread that is seized
 * but not stopped (a timed-out stop) is collected first when its stop has arrived. */
void pause_release_one(struct pauser *pz, pid_t tid);
/* Releases (as pause_release_one) every thread whose timed-out stop has arrived since: such a
 * thread sits stopped until collected, so call this every round while any may be pending
 * (cheap: nothing to do when pz->n is 0). */
void pause_release_pending(struct pauser *pz);

#endif
