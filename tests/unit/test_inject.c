// SPDX-License-Identifier: MIT
// Unit tests for target/inject: the one-line refusals (ptrace_scope, seccomp, architecture,
// static interpreter) and, when build/agent/libcrux_attach.so is built, a real injection into
// a forked child sleeping in nanosleep: the call runs, the child's sleep loop goes on.
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "check.h"
#include "target/inject.h"

static struct inject_env env_of(int scope, int seccomp)
{
    struct inject_env e = {scope, seccomp, true, false};
    return e;
}

static int test_scope_messages(void)
{
    char out[512];
    struct inject_env e = env_of(1, 0);
    CHECK(inject_explain(ERR_PERM, 42, &e, NULL, out, sizeof(out)) == ERR_PERM, "rc");
    CHECK(strstr(out, "ptrace_scope=1") && strstr(out, "sysctl") && strstr(out, "-- COMMAND"), "%s",
          out);
    e = env_of(2, 0);
    CHECK(inject_explain(ERR_PERM, 42, &e, NULL, out, sizeof(out)) == ERR_PERM, "rc");
    CHECK(strstr(out, "CAP_SYS_PTRACE") != NULL, "%s", out);
    e = env_of(3, 0);
    (void)inject_explain(ERR_PERM, 42, &e, NULL, out, sizeof(out));
    CHECK(strstr(out, "reboot") != NULL, "%s", out);
    e = env_of(-1, 0);
    (void)inject_explain(ERR_PERM, 42, &e, "EPERM", out, sizeof(out));
    CHECK(strstr(out, "permission denied") && strstr(out, "42"), "%s", out);
    CHECK(!strchr(out, '\n'), "one line: %s", out);
    return 0;
}

static int test_environment_refusals(void)
{
    char out[512];
    struct inject_env e = env_of(0, 2);
    unsetenv("CRUX_ATTACH_SECCOMP");
    CHECK(inject_explain(0, 7, &e, NULL, out, sizeof(out)) == ERR_PERM, "filter refused");
    CHECK(strstr(out, "seccomp filter") && strstr(out, "CRUX_ATTACH_SECCOMP"), "%s", out);
    setenv("CRUX_ATTACH_SECCOMP", "1", 1);
    CHECK(inject_explain(0, 7, &e, NULL, out, sizeof(out)) == 0, "override");
    unsetenv("CRUX_ATTACH_SECCOMP");
    e = env_of(0, 1);
    CHECK(inject_explain(0, 7, &e, NULL, out, sizeof(out)) == ERR_PERM, "strict refused");
    e = env_of(0, 0);
    e.x86_64 = false;
    CHECK(inject_explain(0, 7, &e, NULL, out, sizeof(out)) == ERR_ARG, "arch refused");
    CHECK(strstr(out, "x86-64") != NULL, "%s", out);
    e = env_of(0, 0);
    CHECK(inject_explain(0, 7, &e, NULL, out, sizeof(out)) == 0, "nothing to refuse");
    CHECK(inject_explain(ERR_NOT_FOUND, 7, &e, "no dlopen", out, sizeof(out)) == ERR_NOT_FOUND,
          "rc");
    CHECK(strstr(out, "static interpreter") != NULL, "%s", out);
    CHECK(inject_explain(ERR_AGAIN, 7, &e, NULL, out, sizeof(out)) == ERR_AGAIN, "rc");
    CHECK(strstr(out, "safe point") != NULL, "%s", out);
    return 0;
}

/* A child that sleeps in a loop and reports each wake-up on a pipe. */
static pid_t sleeper(int *rfd)
{
    int p[2];
    if (pipe(p))
        return -1;
    pid_t pid = fork();
    if (pid == 0) {
        close(p[0]);
        for (unsigned i = 0;; i++) {
            struct timespec ts = {0, 20000000};
            nanosleep(&ts, NULL);
            if (write(p[1], &i, sizeof(i)) != sizeof(i))
                _exit(3);
        }
    }
    close(p[1]);
    *rfd = p[0];
    return pid;
}

static int test_inject_into_sleeping_child(void)
{
    char lib[PATH_MAX];
    if (!realpath("build/agent/libcrux_attach.so", lib)) {
        printf("  (skipped: build/agent/libcrux_attach.so not built)\n");
        return 0;
    }
    int rfd = -1;
    pid_t child = sleeper(&rfd);
    CHECK(child > 0, "fork");
    unsigned seq = 0, next = 0;
    CHECK(read(rfd, &seq, sizeof(seq)) == sizeof(seq), "child runs");
    char status[64], arg[256];
    snprintf(status, sizeof(status), "/tmp/crux-inject-test-%d", (int)getpid());
    int fd = open(status, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    CHECK(fd >= 0, "status file");
    close(fd);
    snprintf(arg, sizeof(arg), "/nonexistent\n/nonexistent\n0\n%s", status);
    struct inject_result res;
    struct errbuf eb = {{0}};
    int rc = inject_library(child, lib, "crux_attach_kick", arg, &res, &eb);
    int ok = rc == 0 && res.entry_ret == 0 && res.tid == child;
    /* the child's own loop goes on, its nanosleep restarted */
    for (int i = 0; i < 3 && ok; i++)
        ok = read(rfd, &next, sizeof(next)) == sizeof(next) && next > seq;
    char text[200] = "";
    for (int i = 0; i < 200 && !text[0]; i++) {
        fd = open(status, O_RDONLY);
        if (fd >= 0) {
            ssize_t n = read(fd, text, sizeof(text) - 1);
            text[n > 0 ? n : 0] = '\0';
            close(fd);
        }
        usleep(5000);
    }
    int alive = waitpid(child, NULL, WNOHANG) == 0;
    kill(child, SIGKILL);
    waitpid(child, NULL, 0);
    close(rfd);
    unlink(status);
    CHECK(rc == 0, "inject: %s (%s)", err_str(rc), eb.msg);
    CHECK(ok, "child stopped reporting after the injection (entry %lld)", (long long)res.entry_ret);
    CHECK(alive, "child died");
    /* no Python in the child: the agent's thread says so, it does not crash */
    CHECK(strstr(text, "no CPython API") != NULL, "status: '%s'", text);
    return 0;
}

int main(void)
{
    RUN(test_scope_messages);
    RUN(test_environment_refusals);
    RUN(test_inject_into_sleeping_child);
    return TEST_SUMMARY("inject");
}
