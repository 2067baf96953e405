// SPDX-License-Identifier: MIT
// Attaching and launching, and the one-line error messages every command prints.
#include "cmd/session.h"

#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

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

int session_finish(struct session *s)
{
    if (!s->launched)
        return 0;
    if (!s->child_exited) {
        int status = 0;
        while (waitpid(s->pid, &status, 0) < 0 && errno == EINTR) {
            /* A second Ctrl-C while waiting: pass it on. */
            if (session_signal())
                kill(s->pid, session_signal());
        }
        s->child_status = status;
        s->child_exited = true;
    }
    if (WIFEXITED(s->child_status))
        return WEXITSTATUS(s->child_status);
    if (WIFSIGNALED(s->child_status))
        return 128 + WTERMSIG(s->child_status);
    return 1;
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
