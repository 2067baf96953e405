// SPDX-License-Identifier: MIT
// ptrace-based pausing. SEIZE (not ATTACH) sends no SIGSTOP, so a thread is only ever stopped
// by our INTERRUPT; when the tracer dies the kernel detaches and the thread resumes.
#include "target/pause.h"

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ptrace.h>
#include <sys/wait.h>
#include <time.h>

#include "target/proc.h"
#include "util/xalloc.h"

#define PAUSE_MAX_THREADS 4096
#define PAUSE_WAIT_US 200000 /* longest wait for one round's stops */
#define PAUSE_ONE_SPIN_US 20 /* pause_stop_one polls this long before it sleeps */

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

/* Interrupts every seized thread that is not stopped and waits for the stops (never blocking
 * longer than PAUSE_WAIT_US in all). Threads that exited are forgotten. */
static void interrupt_known(struct pauser *pz)
{
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
}

int pause_stop_all(struct pauser *pz, struct errbuf *eb)
{
    int rc = seize_new(pz);
    if (rc)
        return errbuf_set(eb, rc, "cannot pause process %d: %s", (int)pz->pid, err_str(rc));
    interrupt_known(pz);
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
     * pending. Threads never seized need nothing. */
    if (pz->n) {
        interrupt_known(pz);
        for (size_t i = 0; i < pz->n; i++)
            if (pz->v[i].stopped)
                (void)ptrace(PTRACE_DETACH, pz->v[i].tid, 0, (void *)(long)pz->v[i].pending_sig);
    }
    free(pz->v);
    pz->v = NULL;
    pz->n = pz->cap = 0;
}

/* --- One thread at a time ----------------------------------------------------------------- */

static struct pause_thread *add(struct pauser *pz, pid_t tid)
{
    if (pz->n == pz->cap) {
        pz->cap = pz->cap ? pz->cap * 2 : 16;
        pz->v = xrealloc(pz->v, pz->cap * sizeof(*pz->v));
    }
    pz->v[pz->n] = (struct pause_thread){tid, 0, false};
    return &pz->v[pz->n++];
}

static uint64_t mono_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

/* Collects whatever `tid` reported, without blocking; false when nothing was waiting. */
static bool collect_one(struct pauser *pz, pid_t tid)
{
    int status;
    pid_t got = waitpid(tid, &status, __WALL | WNOHANG);
    if (got != tid)
        return false;
    on_status(pz, tid, status);
    return true;
}

/* Waits for `tid` to report, at most until `deadline_us`: polls briefly (a thread running on
 * another CPU stops within microseconds), then sleeps in sigtimedwait until the SIGCHLD the
 * kernel sends the tracer at the stop. Sleeping instead of spinning matters when the thread
 * shares our CPU: spinning would keep it from reaching its stop. SIGCHLD must be blocked by
 * the caller. Returns 0 when stopped. */
static int wait_stop(struct pauser *pz, pid_t tid, uint64_t start_us, struct errbuf *eb)
{
    sigset_t chld;
    sigemptyset(&chld);
    sigaddset(&chld, SIGCHLD);
    for (;;) {
        if (collect_one(pz, tid)) {
            struct pause_thread *t = find(pz, tid);
            if (!t)
                return errbuf_set(eb, ERR_PROC_GONE, "thread %d exited", (int)tid);
            if (t->stopped)
                return 0;
            continue;
        }
        uint64_t waited = mono_us() - start_us;
        if (waited >= PAUSE_ONE_WAIT_US)
            return errbuf_set(eb, ERR_TOO_LARGE, "thread %d did not stop within %d ms", (int)tid,
                              PAUSE_ONE_WAIT_US / 1000);
        if (waited < PAUSE_ONE_SPIN_US)
            continue;
        uint64_t left = PAUSE_ONE_WAIT_US - waited;
        struct timespec ts = {(time_t)(left / 1000000u), (long)(left % 1000000u) * 1000};
        (void)sigtimedwait(&chld, NULL, &ts); /* a stale SIGCHLD only means one more poll */
    }
}

int pause_stop_one(struct pauser *pz, pid_t tid, struct errbuf *eb)
{
    struct pause_thread *t = find(pz, tid);
    if (!t) {
        if (ptrace(PTRACE_SEIZE, tid, 0, 0) != 0) {
            int rc = err_from_errno(errno);
            return errbuf_set(eb, rc, "cannot stop thread %d of process %d: %s", (int)tid,
                              (int)pz->pid, err_str(rc));
        }
        t = add(pz, tid);
    }
    /* SIGCHLD is blocked from before the interrupt, so that the one the stop sends stays
     * pending until wait_stop() takes it. */
    sigset_t chld, old;
    sigemptyset(&chld);
    sigaddset(&chld, SIGCHLD);
    pthread_sigmask(SIG_BLOCK, &chld, &old);
    uint64_t start = mono_us();
    int rc = 0;
    if (!t->stopped && ptrace(PTRACE_INTERRUPT, tid, 0, 0) != 0) {
        forget(pz, tid);
        rc = errbuf_set(eb, ERR_PROC_GONE, "thread %d exited", (int)tid);
    } else {
        rc = wait_stop(pz, tid, start, eb);
    }
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    return rc;
}

void pause_resume_one(struct pauser *pz, pid_t tid)
{
    struct pause_thread *t = find(pz, tid);
    if (!t || !t->stopped)
        return;
    if (ptrace(PTRACE_CONT, tid, 0, (void *)(long)t->pending_sig) == 0 || errno == ESRCH) {
        t->stopped = false;
        t->pending_sig = 0;
    }
}

void pause_release_one(struct pauser *pz, pid_t tid)
{
    struct pause_thread *t = find(pz, tid);
    if (!t)
        return;
    if (!t->stopped && collect_one(pz, tid))
        t = find(pz, tid);
    if (!t || !t->stopped)
        return; /* its stop has not arrived yet: pause_fini() or a later call collects it */
    /* Detaching also clears the pending INTERRUPT, so no later stop can wait for us. */
    if (ptrace(PTRACE_DETACH, tid, 0, (void *)(long)t->pending_sig) == 0 || errno == ESRCH)
        forget(pz, tid);
}

void pause_release_pending(struct pauser *pz)
{
    size_t i = 0;
    while (i < pz->n) {
        size_t before = pz->n;
        pause_release_one(pz, pz->v[i].tid);
        if (pz->n == before)
            i++; /* still running toward its stop: next time */
    }
}
