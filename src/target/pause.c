// SPDX-License-Identifier: MIT
// ptrace-based pausing. SEIZE (not ATTACH) sends no SIGSTOP, so a thread is only ever stopped
// by our INTERRUPT; when the tracer dies the kernel detaches and the thread resumes.
#include "target/pause.h"

#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ptrace.h>
#include <sys/wait.h>
#include <time.h>

#include "target/proc.h"
#include "util/xalloc.h"

#define PAUSE_MAX_THREADS 4096
#define PAUSE_WAIT_US 200000 /* longest wait for one round's stops */

void pause_init(struct pauser *pz, pid_t pid, pid_t child)
{
    memset(pz, 0, sizeof(*pz));
    pz->pid = pid;
    pz->child = child;
}

static struct pause_thread *find(struct pauser *pz, pid_t tid)
{
    for (size_t i = 0; i < pz->n; i++)
        if (pz->v[i].tid == tid)
            return &pz->v[i];
    return NULL;
}

static void forget(struct pauser *pz, pid_t tid)
{
    struct pause_thread *t = find(pz, tid);
    if (t)
        *t = pz->v[--pz->n];
}

/* Records what one wait status means for thread `tid`. */
static void on_status(struct pauser *pz, pid_t tid, int status)
{
    struct pause_thread *t = find(pz, tid);
    if (WIFEXITED(status) || WIFSIGNALED(status)) {
        if (tid == pz->child) {
            pz->child_exited = true;
            pz->child_status = status;
        }
        forget(pz, tid);
        return;
    }
    if (!WIFSTOPPED(status) || !t)
        return;
    t->stopped = true;
    int sig = WSTOPSIG(status);
    int event = status >> 16;
    /* A group-stop or our INTERRUPT is PTRACE_EVENT_STOP; anything else stopped with a signal
     * is a signal-delivery-stop: deliver the signal on resume. */
    if (event == 0 && sig != SIGTRAP)
        t->pending_sig = sig;
}

static int seize_new(struct pauser *pz)
{
    pid_t tids[PAUSE_MAX_THREADS];
    size_t n = 0;
    int rc = proc_tasks(pz->pid, tids, PAUSE_MAX_THREADS, &n);
    if (rc)
        return rc;
    for (size_t i = 0; i < n; i++) {
        if (find(pz, tids[i]))
            continue;
        if (ptrace(PTRACE_SEIZE, tids[i], 0, 0) != 0) {
            if (errno == ESRCH)
                continue;
            return err_from_errno(errno);
        }
        if (pz->n == pz->cap) {
            pz->cap = pz->cap ? pz->cap * 2 : 16;
            pz->v = xrealloc(pz->v, pz->cap * sizeof(*pz->v));
        }
        pz->v[pz->n++] = (struct pause_thread){tids[i], 0, false};
    }
    return 0;
}

int pause_stop_all(struct pauser *pz, struct errbuf *eb)
{
    int rc = seize_new(pz);
    if (rc)
        return errbuf_set(eb, rc, "cannot pause process %d: %s", (int)pz->pid, err_str(rc));
    size_t i = 0;
    while (i < pz->n) {
        if (!pz->v[i].stopped && ptrace(PTRACE_INTERRUPT, pz->v[i].tid, 0, 0) != 0) {
            forget(pz, pz->v[i].tid); /* ESRCH: the thread exited */
            continue;
        }
        i++;
    }
    /* Wait for each thread to report its stop, never blocking: a thread that exits reports
     * that instead, and an exiting group leader may never report until the whole group is
     * gone. A thread still running at the deadline is left out of this round; its pending
     * stop is handled (and resumed) by the next pause_poll(). */
    uint64_t waited_us = 0;
    for (;;) {
        bool all = true;
        for (size_t k = 0; k < pz->n && all; k++)
            all = pz->v[k].stopped;
        if (all || waited_us >= PAUSE_WAIT_US)
            break;
        int status;
        pid_t got = waitpid(-1, &status, __WALL | WNOHANG);
        if (got > 0) {
            on_status(pz, got, status);
            continue;
        }
        if (got < 0 && errno == ECHILD)
            break;
        struct timespec ts = {0, 20000};
        nanosleep(&ts, NULL);
        waited_us += 20;
    }
    return pz->n ? 0 : ERR_PROC_GONE;
}

void pause_resume_all(struct pauser *pz)
{
    for (size_t i = 0; i < pz->n; i++) {
        struct pause_thread *t = &pz->v[i];
        if (!t->stopped)
            continue;
        if (ptrace(PTRACE_CONT, t->tid, 0, (void *)(long)t->pending_sig) == 0 || errno == ESRCH) {
            t->stopped = false;
            t->pending_sig = 0;
        }
    }
}

void pause_poll(struct pauser *pz)
{
    for (;;) {
        int status;
        pid_t got = waitpid(-1, &status, __WALL | WNOHANG);
        if (got <= 0)
            break;
        on_status(pz, got, status);
    }
    pause_resume_all(pz);
}

void pause_fini(struct pauser *pz)
{
    /* PTRACE_DETACH needs a stopped tracee: stop, then detach each, delivering what is
     * pending. */
    struct errbuf eb;
    if (pz->n && pause_stop_all(pz, &eb) == 0) {
        for (size_t i = 0; i < pz->n; i++)
            (void)ptrace(PTRACE_DETACH, pz->v[i].tid, 0, (void *)(long)pz->v[i].pending_sig);
    }
    free(pz->v);
    pz->v = NULL;
    pz->n = pz->cap = 0;
}
