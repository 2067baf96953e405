// SPDX-License-Identifier: MIT
// Attaching and launching, and the one-line error messages every command prints.
#include "cmd/session.h"

#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/ptrace.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "cmd/cmd.h"
#include "target/children.h"
#include "target/proc.h"

static volatile sig_atomic_t *stop_flag;
static volatile sig_atomic_t last_signal;

static void on_signal(int sig)
{
    last_signal = sig;
    if (stop_flag)
        *stop_flag = 1;
}

void session_trap_signals(volatile sig_atomic_t *flag)
{
    stop_flag = flag;
    struct sigaction sa;
    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
}

int session_signal(void)
{
    return (int)last_signal;
}

int session_parse_pid(const char *s, pid_t *out)
{
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (errno || *end || end == s || v <= 0 || v > 0x3fffffff)
        return ERR_ARG;
    *out = (pid_t)v;
    return 0;
}

int session_parse_number(const char *s, double lo, double hi, double *out)
{
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (end == s || *end || errno || !isfinite(v) || v < lo || v > hi)
        return ERR_ARG;
    *out = v;
    return 0;
}

int session_attach(struct session *s, pid_t pid, struct errbuf *eb)
{
    memset(s, 0, sizeof(*s));
    s->pid = pid;
    int rc = proc_check(pid, eb);
    if (rc)
        return rc;
    return pyruntime_find(pid, &s->rt, eb);
}

static void sleep_ms(int ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

static int spawn(char *const argv[], pid_t *out, struct errbuf *eb)
{
    int pipefd[2];
    if (pipe2(pipefd, O_CLOEXEC) != 0)
        return errbuf_set(eb, ERR_SYS, "pipe: %s", strerror(errno));
    pid_t pid = fork();
    if (pid < 0) {
        close(pipefd[0]);
        close(pipefd[1]);
        return errbuf_set(eb, ERR_SYS, "fork: %s", strerror(errno));
    }
    if (pid == 0) {
        close(pipefd[0]);
        signal(SIGINT, SIG_DFL);
        signal(SIGTERM, SIG_DFL);
        execvp(argv[0], argv);
        int e = errno;
        ssize_t w = write(pipefd[1], &e, sizeof(e));
        (void)w;
        _exit(127);
    }
    close(pipefd[1]);
    int e = 0;
    ssize_t n;
    do {
        n = read(pipefd[0], &e, sizeof(e));
    } while (n < 0 && errno == EINTR);
    close(pipefd[0]);
    if (n == (ssize_t)sizeof(e)) {
        waitpid(pid, NULL, 0);
        return errbuf_set(eb, ERR_ARG, "cannot run %s: %s", argv[0], strerror(e));
    }
    *out = pid;
    return 0;
}

int session_launch(struct session *s, char *const argv[], double wait_s, struct errbuf *eb)
{
    memset(s, 0, sizeof(*s));
    s->launched = true;
    int rc = spawn(argv, &s->pid, eb);
    if (rc)
        return rc;
    /* The dynamic loader maps libpython within milliseconds of exec; wrappers (shell
     * scripts, env) take longer, hence the generous wait. */
    int waited_ms = 0;
    for (;;) {
        int status;
        if (waitpid(s->pid, &status, WNOHANG) == s->pid) {
            s->child_exited = true;
            s->child_status = status;
            return 0;
        }
        rc = pyruntime_find(s->pid, &s->rt, eb);
        if (rc == 0)
            return 0;
        if (rc != ERR_NOT_PYTHON && rc != ERR_NOT_FOUND && rc != ERR_READ)
            break;
        if (waited_ms >= (int)(wait_s * 1000))
            break;
        sleep_ms(waited_ms < 100 ? 1 : 10);
        waited_ms += waited_ms < 100 ? 1 : 10;
    }
    if (rc == ERR_NOT_PYTHON || rc == ERR_NOT_FOUND || rc == ERR_READ)
        rc = errbuf_set(eb, ERR_NOT_PYTHON, "%s (process %d) is not a Python process", argv[0],
                        (int)s->pid);
    kill(s->pid, SIGTERM);
    waitpid(s->pid, NULL, 0);
    s->child_exited = true;
    return rc;
}

/* A shell's exit status for a wait status: the exit code, or 128 + the signal. */
static int exit_code(int status)
{
    if (WIFEXITED(status))
        return WEXITSTATUS(status);
    if (WIFSIGNALED(status))
        return 128 + WTERMSIG(status);
    return 1;
}

/* A report of a thread crux still traces (`--native` and `--blocking` stop threads one at a
 * time; one whose stop came after crux gave up waiting for it is still attached, the command's
 * main thread included): a stop is detached, an exit reaped. Until then an exited thread is a
 * zombie only its tracer can reap, and the command's own exit is never reported. */
static void on_report(struct session *s, pid_t got, int status)
{
    if (WIFSTOPPED(status)) {
        int sig = WSTOPSIG(status);
        /* An interrupt or group stop delivers nothing; a signal stop delivers its signal. */
        bool event = (status >> 16) != 0 || sig == SIGTRAP;
        (void)ptrace(PTRACE_DETACH, got, 0, (void *)(long)(event ? 0 : sig));
        return;
    }
    if (got != s->pid)
        return; /* a traced thread's exit, or an orphan crux adopted as subreaper: reaped */
    s->child_status = status;
    s->child_exited = true;
}

int session_finish(struct session *s)
{
    if (!s->launched)
        return 0;
    while (!s->child_exited) {
        int status = 0;
        pid_t got = waitpid(-1, &status, __WALL | WNOHANG);
        if (got > 0) {
            on_report(s, got, status);
            continue;
        }
        if (got < 0 && errno != EINTR) {
            s->child_exited = true; /* no child left to wait for */
            break;
        }
        struct timespec ts = {0, 2000000};
        if (nanosleep(&ts, NULL) != 0 && errno == EINTR && session_signal())
            kill(s->pid, session_signal()); /* a second Ctrl-C while waiting: pass it on */
    }
    return exit_code(s->child_status);
}

/* Reaps the launched command if it has exited; true when it has. */
static bool reap(struct session *s)
{
    int status;
    if (!s->child_exited && waitpid(s->pid, &status, WNOHANG) == s->pid) {
        s->child_status = status;
        s->child_exited = true;
    }
    return s->child_exited;
}

/* The processes session_end signals. pid[0] is crux itself, never signalled: the root of the
 * walk, so that a descendant orphaned while the command ends (crux is then their subreaper)
 * is still found. pid[1] is the command, the rest its descendants as found. */
struct tree {
    pid_t pid[SESSION_MAX_TREE + 1];
    size_t n;
};

/* Drops the processes that are gone: the command once reaped, a descendant once dead (its
 * zombie is reaped by its parent, or by crux at the end). Dropped pids are never signalled
 * again, so a pid the system reuses later is safe. */
static void tree_prune(struct tree *t, struct session *s)
{
    size_t k = 1;
    for (size_t i = 1; i < t->n; i++) {
        bool gone = t->pid[i] == s->pid ? reap(s) : !proc_alive(t->pid[i]);
        if (!gone)
            t->pid[k++] = t->pid[i];
    }
    t->n = k;
}

/* Adds the descendants of crux not tracked yet; returns how many. */
static size_t tree_grow(struct tree *t)
{
    struct childscan cs = {.last_pid = -2}; /* walk /proc even when no process was created */
    pid_t ppid[SESSION_MAX_TREE];
    size_t room = SESSION_MAX_TREE + 1 - t->n;
    size_t found = children_scan(&cs, t->pid, t->n, t->pid + t->n, ppid, room);
    t->n += found;
    return found;
}

static void tree_signal(const struct tree *t, int sig)
{
    for (size_t i = 1; i < t->n; i++) {
        kill(t->pid[i], sig);
        /* A stopped process would keep SIGINT or SIGTERM pending until continued. */
        if (sig != SIGKILL)
            kill(t->pid[i], SIGCONT);
    }
}

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Waits up to `ms` for every tracked process to be gone; true when they are. */
static bool tree_wait(struct tree *t, struct session *s, int ms)
{
    int64_t deadline = now_ms() + ms;
    for (;;) {
        tree_prune(t, s);
        if (t->n == 1)
            return true;
        if (now_ms() >= deadline)
            return false;
        sleep_ms(10);
    }
}

/* Ends the tree with the signals from steps[i] on; 0 when it is gone. */
static int end_tree(struct tree *t, struct session *s, size_t i, struct session_ending *e,
                    struct errbuf *eb)
{
    static const int steps[] = {SIGINT, SIGTERM, SIGKILL};
    for (; i < sizeof(steps) / sizeof(steps[0]); i++) {
        tree_prune(t, s);
        if (t->n == 1)
            return 0;
        e->descendants += tree_grow(t);
        tree_signal(t, steps[i]);
        e->sig = steps[i];
        if (tree_wait(t, s, steps[i] == SIGKILL ? SESSION_KILL_WAIT_MS : SESSION_GRACE_MS))
            return 0;
    }
    e->left = t->n - 1;
    char state = '?';
    if (proc_task_state(t->pid[1], t->pid[1], &state))
        state = '?';
    return errbuf_set(eb, ERR_SYS, "process %d (state %c) still exists %d s after SIGKILL",
                      (int)t->pid[1], state, SESSION_KILL_WAIT_MS / 1000);
}

/* Why SIGINT first and one second each: Python turns SIGINT into KeyboardInterrupt in the main
 * thread, so finally blocks, context managers and atexit handlers run (flush a file, close a
 * socket, stop a pool's workers): milliseconds for ordinary programs. SIGTERM's default action
 * then ends one blocked in a C call that never checks for signals, without its cooperation;
 * SIGKILL one that ignores both. The profile is written before this starts, so the grace only
 * delays crux's exit: one second each keeps `-d N` ending within N + 2 s, where docker stop's
 * 10 s would make a short recording mostly waiting, and py-spy's SIGKILL at once runs no
 * cleanup at all. A program that needs longer to shut down is run with --keep-running and
 * ended by the user.
 * Crux is a child subreaper meanwhile: a descendant whose parent dies first (a worker that
 * ignores the signal its parent obeyed) comes to crux rather than to init, so it is still
 * found, signalled, and reaped here instead of left a zombie where init does not reap (some
 * containers). */
int session_end(struct session *s, int first_sig, struct session_ending *e, struct errbuf *eb)
{
    struct tree t = {.pid = {getpid(), s->pid}, .n = 2};
    memset(e, 0, sizeof(*e));
    (void)prctl(PR_SET_CHILD_SUBREAPER, 1UL, 0UL, 0UL, 0UL);
    size_t first = first_sig == SIGKILL ? 2 : first_sig == SIGTERM ? 1 : 0;
    int rc = end_tree(&t, s, first, e, eb);
    /* The zombies of descendants that came to crux (and of the command, if it died just now). */
    for (;;) {
        int status;
        pid_t got = waitpid(-1, &status, WNOHANG);
        if (got <= 0)
            break;
        if (got == s->pid) {
            s->child_status = status;
            s->child_exited = true;
        }
    }
    (void)prctl(PR_SET_CHILD_SUBREAPER, 0UL, 0UL, 0UL, 0UL);
    return rc;
}

static const char *signal_name(int sig)
{
    switch (sig) {
    case SIGINT:
        return "SIGINT";
    case SIGTERM:
        return "SIGTERM";
    case SIGKILL:
        return "SIGKILL";
    default:
        return "a signal";
    }
}

/* One line on how the command was ended: the signals it took, in order. */
static void report_ending(const struct session *s, const struct session_stop *how,
                          const struct session_ending *e)
{
    char tree[64] = "", steps[128];
    if (e->descendants)
        snprintf(tree, sizeof(tree), " and %zu descendant%s", e->descendants,
                 e->descendants == 1 ? "" : "s");
    double g = SESSION_GRACE_MS / 1000.0;
    if (e->sig == SIGKILL && how->first_sig == SIGTERM)
        snprintf(steps, sizeof(steps), "SIGTERM, then SIGKILL %g s later", g);
    else if (e->sig == SIGKILL)
        snprintf(steps, sizeof(steps), "SIGINT, SIGTERM %g s later, then SIGKILL %g s after that",
                 g, g);
    else if (e->sig == SIGTERM && how->first_sig != SIGTERM)
        snprintf(steps, sizeof(steps), "SIGINT, then SIGTERM %g s later", g);
    else
        snprintf(steps, sizeof(steps), "%s", signal_name(e->sig));
    fprintf(stderr, "crux: %s: ended process %d%s with %s\n", how->why, (int)s->pid, tree, steps);
}

int session_stop(struct session *s, const struct session_stop *how)
{
    if (!s->launched)
        return 0;
    if (reap(s))
        return exit_code(s->child_status);
    if (how->keep_running) {
        fprintf(stderr, "crux: left process %d running (--keep-running)\n", (int)s->pid);
        return 0;
    }
    if (session_signal()) {
        kill(s->pid, session_signal());
        return session_finish(s);
    }
    if (!how->end)
        return session_finish(s);
    struct session_ending e;
    struct errbuf eb = {{0}};
    int rc = session_end(s, how->first_sig, &e, &eb);
    if (rc) {
        fprintf(stderr,
                "crux: %s (%zu left in all): it ends when the kernel lets it go (ps -o "
                "pid,stat,wchan)\n",
                eb.msg, e.left);
        return EXIT_FAIL;
    }
    if (e.sig)
        report_ending(s, how, &e);
    return 0;
}

static const char *fix_for(int rc)
{
    switch (rc) {
    case ERR_PROC_GONE:
        return "check the PID (ps -e); the process may have exited";
    case ERR_PERM:
        return "run crux as the target's user or as root (in a container, add "
               "--cap-add SYS_PTRACE)";
    case ERR_NOT_PYTHON:
        return "point crux at the python process itself, not a wrapper or launcher";
    case ERR_VERSION:
        return "run the program under CPython 3.8-3.13";
    case ERR_ARG:
        return "see crux --help";
    default:
        return NULL;
    }
}

void session_report(int rc, const struct errbuf *eb)
{
    const char *msg = eb && eb->msg[0] ? eb->msg : err_str(rc);
    const char *fix = fix_for(rc);
    if (fix)
        fprintf(stderr, "crux: %s: %s\n", msg, fix);
    else
        fprintf(stderr, "crux: %s\n", msg);
}
