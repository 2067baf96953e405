// SPDX-License-Identifier: MIT
// Unit tests for target/proc: stat line parsing, and /proc readers on this process, a thread
// it starts and a child it has reaped.
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "check.h"
#include "target/proc.h"

#define MAX_TIDS 256
#define THREAD_NAME "crux-worker"

static char parse(const char *line)
{
    return proc_parse_stat_state(line, strlen(line));
}

static int test_parse_stat_state(void)
{
    CHECK(parse("123 (python3) S 1 123 123 0 -1 4194560") == 'S', "plain");
    CHECK(parse("123 (a) b) R 1 2 3") == 'R', "comm holding ') '");
    CHECK(parse("7 (my prog) D 1") == 'D', "comm with a space");
    CHECK(parse("7 ()) T 1") == 'T', "comm that is ')'");
    CHECK(parse("7 (x) (y)) Z 1") == 'Z', "comm with '(' and ')'");
    CHECK(parse("7 ()) t 1 (z") == 't', "'(' after the state");
    CHECK(parse("7 (x) S") == 'S', "state is the last byte");
    CHECK(parse("7 (x) R\n") == 'R', "with the newline");
    /* Only `len` bytes count. */
    CHECK(proc_parse_stat_state("7 (x) S 1 (y) R", 9) == 'S', "a later ')' past len");
    CHECK(proc_parse_stat_state("7 (x) S", 6) == '?', "state cut off by len");
    /* Malformed lines. */
    CHECK(parse("") == '?', "empty");
    CHECK(parse("123") == '?', "no comm");
    CHECK(parse("123 (abc") == '?', "no ')'");
    CHECK(parse("123 (abc)") == '?', "nothing after ')'");
    CHECK(parse("123 (abc) ") == '?', "only a space after ')'");
    CHECK(proc_parse_stat_state(NULL, 0) == '?', "NULL, 0");
    return 0;
}

static atomic_int worker_ready;
static atomic_int worker_stop;
static atomic_int worker_tid;

static void *worker(void *arg)
{
    (void)arg;
    atomic_store(&worker_tid, (int)syscall(SYS_gettid));
    atomic_store(&worker_ready, 1);
    while (!atomic_load(&worker_stop)) {
        struct timespec ts = {0, 1000000};
        nanosleep(&ts, NULL);
    }
    return NULL;
}

static int start_worker(pthread_t *th)
{
    atomic_store(&worker_ready, 0);
    atomic_store(&worker_stop, 0);
    CHECK(pthread_create(th, NULL, worker, NULL) == 0, "pthread_create");
    CHECK(pthread_setname_np(*th, THREAD_NAME) == 0, "pthread_setname_np");
    while (!atomic_load(&worker_ready)) {
        struct timespec ts = {0, 100000};
        nanosleep(&ts, NULL);
    }
    return 0;
}

static void stop_worker(pthread_t th)
{
    atomic_store(&worker_stop, 1);
    pthread_join(th, NULL);
}

static bool has_tid(const pid_t *tids, size_t n, pid_t tid)
{
    for (size_t i = 0; i < n; i++)
        if (tids[i] == tid)
            return true;
    return false;
}

static int check_threads(pid_t pid, pid_t wtid)
{
    pid_t tids[MAX_TIDS];
    size_t n = 0;
    CHECK(proc_tasks(pid, tids, MAX_TIDS, &n) == 0, "proc_tasks");
    CHECK(n >= 2, "%zu threads", n);
    CHECK(has_tid(tids, n, pid), "the main thread %d is listed", (int)pid);
    CHECK(has_tid(tids, n, wtid), "the worker %d is listed", (int)wtid);
    size_t one = 99;
    CHECK(proc_tasks(pid, tids, 1, &one) == 0 && one == 1, "max 1 gives 1: %zu", one);
    CHECK(proc_tasks(pid, tids, 0, &one) == 0 && one == 0, "max 0 gives 0: %zu", one);

    char st = 0;
    CHECK(proc_task_state(pid, pid, &st) == 0 && st == 'R', "we are running: %c", st);
    CHECK(proc_task_state(pid, wtid, &st) == 0, "worker state");
    CHECK(st == 'S' || st == 'R', "worker sleeps or runs: %c", st);

    char comm[64];
    CHECK(proc_task_comm(pid, wtid, comm, sizeof(comm)) == 0, "worker comm");
    CHECK(strcmp(comm, THREAD_NAME) == 0, "worker name [%s]", comm);
    CHECK(proc_task_comm(pid, pid, comm, sizeof(comm)) == 0, "main comm");
    CHECK(strcmp(comm, "test_proc") == 0, "main name [%s]", comm);
    /* A small buffer is cut and stays NUL-terminated. */
    char small[5];
    CHECK(proc_task_comm(pid, wtid, small, sizeof(small)) == 0, "small comm");
    CHECK(strcmp(small, "crux") == 0, "cut name [%s]", small);
    return 0;
}

static int test_threads_self(void)
{
    pthread_t th;
    CHECK(start_worker(&th) == 0, "start");
    pid_t pid = getpid();
    int rc = check_threads(pid, (pid_t)atomic_load(&worker_tid));
    stop_worker(th);
    CHECK(rc == 0, "threads of our process");
    return 0;
}

static int test_cmdline(void)
{
    char line[4096];
    CHECK(proc_cmdline(getpid(), line, sizeof(line)) == 0, "cmdline");
    CHECK(strstr(line, "test_proc") != NULL, "cmdline [%s]", line);
    size_t n = strlen(line);
    CHECK(n > 0 && line[n - 1] != ' ', "no trailing space: [%s]", line);
    char small[4];
    CHECK(proc_cmdline(getpid(), small, sizeof(small)) == 0 && strlen(small) <= 3, "small");
    /* A child with arguments: NULs become spaces. */
    fflush(NULL);
    int fds[2];
    CHECK(pipe(fds) == 0, "pipe");
    pid_t pid = fork();
    CHECK(pid >= 0, "fork");
    if (pid == 0) {
        close(fds[0]);
        dup2(fds[1], 1);
        execl("/bin/sh", "sh", "-c", "echo up; exec sleep 30", "arg two", (char *)NULL);
        _exit(127);
    }
    close(fds[1]);
    char buf[8] = {0};
    ssize_t got = read(fds[0], buf, sizeof(buf) - 1);
    close(fds[0]);
    /* After the exec of sleep, cmdline is "sleep 30"; before it, the sh line. Poll. */
    int ok = 0;
    for (int i = 0; i < 200 && !ok; i++) {
        ok = proc_cmdline(pid, line, sizeof(line)) == 0 && strcmp(line, "sleep 30") == 0;
        if (!ok) {
            struct timespec ts = {0, 5000000};
            nanosleep(&ts, NULL);
        }
    }
    kill(pid, SIGKILL);
    waitpid(pid, NULL, 0);
    CHECK(got > 0, "child started");
    CHECK(ok, "child cmdline [%s]", line);
    return 0;
}

static int test_statcache(void)
{
    pthread_t th;
    CHECK(start_worker(&th) == 0, "start");
    pid_t pid = getpid();
    pid_t wtid = (pid_t)atomic_load(&worker_tid);
    struct proc_statcache c;
    proc_statcache_init(&c, pid);
    char s1 = proc_statcache_state(&c, pid);
    char s2 = proc_statcache_state(&c, wtid);
    char s3 = proc_statcache_state(&c, pid); /* the second read reuses the open file */
    size_t cached = c.n;
    stop_worker(th);
    CHECK(s1 == 'R' && s3 == 'R', "main: %c %c", s1, s3);
    CHECK(s2 == 'S' || s2 == 'R', "worker: %c", s2);
    CHECK(cached == 2, "two files cached: %zu", cached);
    /* pthread_join returns when the kernel clears the tid, which is before the task is
     * released: wait for it to leave /proc. */
    char task[64];
    snprintf(task, sizeof(task), "/proc/self/task/%d", (int)wtid);
    for (int i = 0; i < 1000 && access(task, F_OK) == 0; i++) {
        struct timespec ts = {0, 1000000};
        nanosleep(&ts, NULL);
    }
    /* The worker is gone: its state reads '?' and its entry is dropped. */
    char gone = proc_statcache_state(&c, wtid);
    CHECK(gone == '?', "exited thread: %c", gone);
    CHECK(c.n == 1, "entry dropped: %zu", c.n);
    CHECK(proc_statcache_state(&c, 999999999) == '?' && c.n == 1, "unknown tid");
    /* Prune keeps only the listed threads. */
    pthread_t th2;
    CHECK(start_worker(&th2) == 0, "start again");
    wtid = (pid_t)atomic_load(&worker_tid);
    char again = proc_statcache_state(&c, wtid);
    size_t before = c.n;
    pid_t keep[1] = {pid};
    proc_statcache_prune(&c, keep, 1);
    size_t after = c.n;
    proc_statcache_prune(&c, NULL, 0);
    size_t none = c.n;
    char reopened = proc_statcache_state(&c, wtid);
    stop_worker(th2);
    CHECK(again == 'S' || again == 'R', "new worker: %c", again);
    CHECK(before == 2 && after == 1, "prune to the main thread: %zu -> %zu", before, after);
    CHECK(none == 0, "prune to nothing: %zu", none);
    CHECK(reopened == 'S' || reopened == 'R', "reopened after prune: %c", reopened);
    proc_statcache_fini(&c);
    CHECK(c.n == 0 && c.v == NULL, "fini");
    return 0;
}

static int test_check(void)
{
    struct errbuf eb = {{0}};
    CHECK(proc_check(getpid(), &eb) == 0, "ourselves: %s", eb.msg);
    CHECK(proc_alive(getpid()), "we are alive");
    CHECK(proc_check(0, &eb) == ERR_PROC_GONE, "pid 0");
    CHECK(proc_check(-5, &eb) == ERR_PROC_GONE, "negative pid");
    fflush(NULL);
    pid_t pid = fork();
    CHECK(pid >= 0, "fork");
    if (pid == 0)
        _exit(0);
    /* Before the reap it is a zombie: gone too. */
    for (int i = 0; i < 1000; i++) {
        char st = 0;
        if (proc_task_state(pid, pid, &st) == 0 && st == 'Z')
            break;
        struct timespec ts = {0, 1000000};
        nanosleep(&ts, NULL);
    }
    int zrc = proc_check(pid, &eb);
    char zmsg[ERRBUF_LEN];
    snprintf(zmsg, sizeof(zmsg), "%s", eb.msg);
    bool zalive = proc_alive(pid);
    CHECK(waitpid(pid, NULL, 0) == pid, "reap");
    CHECK(zrc == ERR_PROC_GONE && strstr(zmsg, "zombie") != NULL, "zombie: %d %s", zrc, zmsg);
    CHECK(!zalive, "a zombie is not alive");
    int rc = proc_check(pid, &eb);
    CHECK(rc == ERR_PROC_GONE, "reaped child: %d", rc);
    char want[32];
    snprintf(want, sizeof(want), "%d", (int)pid);
    CHECK(strstr(eb.msg, want) != NULL, "message names the pid: %s", eb.msg);
    CHECK(!proc_alive(pid), "reaped child not alive");
    pid_t tids[4];
    size_t n = 0;
    CHECK(proc_tasks(pid, tids, 4, &n) == ERR_PROC_GONE, "tasks of a reaped child");
    char st;
    CHECK(proc_task_state(pid, pid, &st) == ERR_PROC_GONE, "state of a reaped child");
    char buf[16];
    CHECK(proc_task_comm(pid, pid, buf, sizeof(buf)) == ERR_PROC_GONE, "comm");
    CHECK(proc_cmdline(pid, buf, sizeof(buf)) == ERR_PROC_GONE, "cmdline");
    return 0;
}

static int test_nspid(void)
{
    CHECK(proc_nspid(getpid()) > 0, "nspid");
    /* Not in a new pid namespace from our own view: the last NSpid is our pid as we see it
     * only when we are in the same namespace as /proc; at least it is stable. */
    CHECK(proc_nspid(getpid()) == proc_nspid(getpid()), "stable");
    CHECK(proc_nspid(999999999) == 999999999, "unknown pid gives itself");
    return 0;
}

int main(void)
{
    RUN(test_parse_stat_state);
    RUN(test_threads_self);
    RUN(test_cmdline);
    RUN(test_statcache);
    RUN(test_check);
    RUN(test_nspid);
    return TEST_SUMMARY("proc");
}
