// SPDX-License-Identifier: MIT
// Unit tests for cmd/session's ending of a launched command: the signal that ends it, its
// orphaned descendants found and reaped, and crux's exit status for each way it ends.
#include <errno.h>
#include <signal.h>
#include <stdbool.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "check.h"
#include "cmd/session.h"

/* Forks a child that ignores the signals in `ignore` (SIGINT, SIGTERM; 0 ends the list),
 * optionally forks a grandchild that ignores SIGINT and SIGTERM, and then waits forever.
 * Returns the child's pid once it is ready; *grandchild gets the grandchild's pid or 0. */
static pid_t start_child(const int *ignore, bool with_grandchild, pid_t *grandchild)
{
    int fds[2];
    if (pipe(fds) != 0)
        return -1;
    pid_t pid = fork();
    if (pid == 0) {
        close(fds[0]);
        /* The defaults first: a shell runs a background job with SIGINT ignored, and the
         * child would inherit that. */
        signal(SIGINT, SIG_DFL);
        signal(SIGTERM, SIG_DFL);
        pid_t gc = 0;
        if (with_grandchild) {
            /* Ignored before the fork, so that the grandchild ignores them from its start. */
            signal(SIGINT, SIG_IGN);
            signal(SIGTERM, SIG_IGN);
            gc = fork();
            if (gc == 0)
                for (;;)
                    pause();
            signal(SIGINT, SIG_DFL);
            signal(SIGTERM, SIG_DFL);
        }
        for (const int *s = ignore; *s; s++)
            signal(*s, SIG_IGN);
        ssize_t w = write(fds[1], &gc, sizeof(gc));
        (void)w;
        for (;;)
            pause();
    }
    close(fds[1]);
    pid_t gc = 0;
    ssize_t n = pid > 0 ? read(fds[0], &gc, sizeof(gc)) : -1;
    close(fds[0]);
    *grandchild = gc;
    return n == (ssize_t)sizeof(gc) ? pid : -1;
}

static void launched(struct session *s, pid_t pid)
{
    memset(s, 0, sizeof(*s));
    s->pid = pid;
    s->launched = true;
}

static bool gone(pid_t pid)
{
    return kill(pid, 0) != 0 && errno == ESRCH;
}

static int test_sigint_ends_a_plain_child(void)
{
    static const int none[] = {0};
    pid_t gc;
    pid_t pid = start_child(none, false, &gc);
    CHECK(pid > 0, "fork");
    struct session s;
    launched(&s, pid);
    struct session_ending e;
    struct errbuf eb = {{0}};
    CHECK(session_end(&s, SIGINT, &e, &eb) == 0, "session_end: %s", eb.msg);
    CHECK(e.sig == SIGINT && e.descendants == 0, "sig %d, %zu descendants", e.sig, e.descendants);
    CHECK(s.child_exited && WIFSIGNALED(s.child_status) && WTERMSIG(s.child_status) == SIGINT,
          "reaped, killed by SIGINT (status %#x)", s.child_status);
    CHECK(gone(pid), "child %d gone", (int)pid);
    return 0;
}

static int test_sigterm_when_sigint_is_ignored(void)
{
    static const int ign[] = {SIGINT, 0};
    pid_t gc;
    pid_t pid = start_child(ign, false, &gc);
    CHECK(pid > 0, "fork");
    struct session s;
    launched(&s, pid);
    struct session_ending e;
    struct errbuf eb = {{0}};
    CHECK(session_end(&s, SIGINT, &e, &eb) == 0, "session_end: %s", eb.msg);
    CHECK(e.sig == SIGTERM, "ended by %d", e.sig);
    CHECK(s.child_exited && WIFSIGNALED(s.child_status) && WTERMSIG(s.child_status) == SIGTERM,
          "status %#x", s.child_status);
    return 0;
}

static int test_orphaned_grandchild_is_killed_and_reaped(void)
{
    static const int none[] = {0};
    pid_t gc;
    pid_t pid = start_child(none, true, &gc);
    CHECK(pid > 0 && gc > 0, "fork");
    struct session s;
    launched(&s, pid);
    struct session_ending e;
    struct errbuf eb = {{0}};
    CHECK(session_end(&s, SIGINT, &e, &eb) == 0, "session_end: %s", eb.msg);
    /* The child died of SIGINT; its child, ignoring SIGINT and SIGTERM, came to us. */
    CHECK(e.sig == SIGKILL && e.descendants == 1, "sig %d, %zu descendants", e.sig, e.descendants);
    CHECK(WIFSIGNALED(s.child_status) && WTERMSIG(s.child_status) == SIGINT, "status %#x",
          s.child_status);
    CHECK(gone(gc), "grandchild %d gone, not even a zombie", (int)gc);
    return 0;
}

static int test_stop_exit_status(void)
{
    static const int none[] = {0};
    struct session s;
    /* Exited by itself: its own status. */
    pid_t pid = fork();
    if (pid == 0)
        _exit(3);
    CHECK(pid > 0, "fork");
    siginfo_t si;
    CHECK(waitid(P_PID, (id_t)pid, &si, WEXITED | WNOWAIT) == 0, "exited (not reaped yet)");
    launched(&s, pid);
    struct session_stop end = {.end = true, .first_sig = SIGINT, .why = "test"};
    CHECK(session_stop(&s, &end) == 3, "the command's status");
    /* Ended by crux: 0, not 128 + SIGINT. */
    pid_t gc;
    pid = start_child(none, false, &gc);
    CHECK(pid > 0, "fork");
    launched(&s, pid);
    CHECK(session_stop(&s, &end) == 0, "0 when crux ended it");
    CHECK(gone(pid), "reaped");
    /* --keep-running: 0 at once, still running. */
    pid = start_child(none, false, &gc);
    CHECK(pid > 0, "fork");
    launched(&s, pid);
    struct session_stop keep = {.keep_running = true, .end = true, .first_sig = SIGINT};
    CHECK(session_stop(&s, &keep) == 0 && !s.child_exited, "left running");
    CHECK(kill(pid, 0) == 0, "still alive");
    kill(pid, SIGKILL);
    waitpid(pid, NULL, 0);
    /* Attach mode: nothing to settle. */
    memset(&s, 0, sizeof(s));
    s.pid = getpid();
    CHECK(session_stop(&s, &end) == 0, "attach mode");
    return 0;
}

int main(void)
{
    RUN(test_sigint_ends_a_plain_child);
    RUN(test_sigterm_when_sigint_is_ignored);
    RUN(test_orphaned_grandchild_is_killed_and_reaped);
    RUN(test_stop_exit_status);
    return TEST_SUMMARY("session");
}
