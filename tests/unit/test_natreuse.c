// SPDX-License-Identifier: MIT
// Unit tests of native/natreuse: the syscall file's line, which calls count as the one a stop
// interrupted, and the whole check on a live thread of this process blocked in read(2): kept,
// given back while it does not run, refused once it runs, when its stack bytes differ or the
// walk read live memory, its root changes or ids are forgotten.
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "check.h"
#include "native/natreuse.h"
#include "target/mem.h"

static int test_parse_syscall(void)
{
    struct natreuse_call c;
    CHECK(natreuse_parse_syscall("0 0x3 0x7f00 0x1 0x0 0x0 0x0 0x7ffd10 0x7f1234\n", &c),
          "a blocked read parses");
    CHECK(c.nr == 0 && c.args[0] == 3 && c.args[1] == 0x7f00 && c.args[2] == 1,
          "number and arguments");
    CHECK(c.sp == 0x7ffd10 && c.pc == 0x7f1234, "stack and instruction pointers");
    CHECK(!natreuse_parse_syscall("running\n", &c), "a running thread is not blocked");
    CHECK(!natreuse_parse_syscall("-1 0x7ffd10 0x7f1234\n", &c), "blocked outside a call");
    CHECK(!natreuse_parse_syscall("202 0x1 0x2\n", &c), "a short line");
    return 0;
}

static int test_same_call(void)
{
    struct natreuse_call at = {
        .nr = 202, .ret = -512, .args = {1, 2, 3, 4, 5, 6}, .sp = 9, .pc = 7};
    struct natreuse_call now = at;
    now.ret = 0;
    CHECK(natreuse_same_call(&at, &now), "the interrupted futex, resumed");
    now.args[3] = 40;
    CHECK(!natreuse_same_call(&at, &now), "another argument");
    now = at;
    now.sp = 10;
    CHECK(!natreuse_same_call(&at, &now), "another stack depth");
    now = at;
    now.nr = SYS_restart_syscall;
    CHECK(!natreuse_same_call(&at, &now), "restart_syscall without a restart block");
    at.ret = -516;
    CHECK(natreuse_same_call(&at, &now), "restart_syscall resuming a timed wait");
    at.ret = -4; /* EINTR: returned to the program, not resumed */
    now.nr = 202;
    CHECK(!natreuse_same_call(&at, &now), "a call that returned EINTR");
    at.ret = -512;
    at.nr = -1;
    CHECK(!natreuse_same_call(&at, &now), "stopped outside a call");
    return 0;
}

static int pipe_fd[2];
static pid_t reader_tid;

/* A thread that reads one byte at a time forever: each byte makes it run once and block again
 * in the same read, at the same place. */
static void *reader(void *arg)
{
    (void)arg;
    reader_tid = (pid_t)syscall(SYS_gettid);
    static char c; /* not on its stack: each read leaves the stack as it was */
    while (read(pipe_fd[0], &c, 1) == 1)
        ;
    return NULL;
}

static bool read_line(const char *name, char *buf, size_t n)
{
    char path[64];
    snprintf(path, sizeof(path), "/proc/self/task/%d/%s", (int)reader_tid, name);
    FILE *f = fopen(path, "r");
    if (!f)
        return false;
    bool ok = fgets(buf, (int)n, f) != NULL;
    fclose(f);
    return ok;
}

static uint64_t switches(void)
{
    char line[128];
    unsigned long long a, b, c;
    if (!read_line("schedstat", line, sizeof(line)) ||
        sscanf(line, "%llu %llu %llu", &a, &b, &c) != 3)
        return 0;
    return c;
}

/* Waits until the reader is blocked in its read with more than `after` switches. */
static bool wait_blocked(uint64_t after, struct natreuse_call *call)
{
    for (int i = 0; i < 2000; i++) {
        char line[256];
        if (switches() > after && read_line("syscall", line, sizeof(line)) &&
            natreuse_parse_syscall(line, call) && call->nr == SYS_read)
            return true;
        nanosleep(&(struct timespec){0, 500000}, NULL);
    }
    return false;
}

static int test_live_thread(void)
{
    static struct pyreader r; /* no frames: the thread's Python stack is empty */
    const struct pythread th = {0};
    CHECK(pipe(pipe_fd) == 0, "pipe");
    pthread_t t;
    CHECK(pthread_create(&t, NULL, reader, NULL) == 0, "thread");
    struct natreuse_call call;
    CHECK(wait_blocked(0, &call), "the reader blocks in read");
    struct natreuse nr;
    natreuse_init(&nr, getpid());
    uint32_t stack = 0;
    CHECK(!natreuse_check(&nr, reader_tid, &r, &th, 5, &stack), "nothing kept yet");
    /* As if a stop had interrupted the read: it resumes it once after the release. The walk
     * read 512 bytes of its stack; first one of them is taken wrong. */
    uint8_t bytes[512];
    CHECK(mem_read(getpid(), call.sp, bytes, sizeof(bytes)) == 0, "its stack");
    call.ret = -512;
    natreuse_stopped(&nr, reader_tid, &call);
    natreuse_keep(&nr, reader_tid, &r, &th, 5, 41);
    CHECK(!natreuse_check(&nr, reader_tid, &r, &th, 5, &stack), "no stack bytes: not kept");
    bytes[100] ^= 1;
    natreuse_stopped(&nr, reader_tid, &call);
    natreuse_stack(&nr, reader_tid, bytes, sizeof(bytes), true);
    natreuse_keep(&nr, reader_tid, &r, &th, 5, 41);
    uint64_t sw = switches();
    CHECK(write(pipe_fd[1], "w", 1) == 1, "wake it once");
    CHECK(wait_blocked(sw, &call), "blocked again in its read");
    CHECK(!natreuse_check(&nr, reader_tid, &r, &th, 5, &stack), "other stack bytes: stop it");
    /* Its stack as it blocks in the loop from now on (the first read came from elsewhere). */
    CHECK(mem_read(getpid(), call.sp, bytes, sizeof(bytes)) == 0, "its stack again");
    call.ret = -512;
    natreuse_stopped(&nr, reader_tid, &call);
    natreuse_stack(&nr, reader_tid, bytes, sizeof(bytes), false);
    natreuse_keep(&nr, reader_tid, &r, &th, 5, 41);
    CHECK(!natreuse_check(&nr, reader_tid, &r, &th, 5, &stack), "walk read live memory");
    natreuse_stopped(&nr, reader_tid, &call);
    natreuse_stack(&nr, reader_tid, bytes, sizeof(bytes), true);
    natreuse_keep(&nr, reader_tid, &r, &th, 5, 42);
    sw = switches();
    CHECK(write(pipe_fd[1], "x", 1) == 1, "wake it once");
    CHECK(wait_blocked(sw, &call), "blocked again in its read");
    CHECK(natreuse_check(&nr, reader_tid, &r, &th, 5, &stack) && stack == 42,
          "ran once, back in the same call: the kept stack (%u)", stack);
    CHECK(natreuse_check(&nr, reader_tid, &r, &th, 5, &stack), "not run since: still kept");
    CHECK(!natreuse_check(&nr, reader_tid, &r, &th, 6, &stack), "another root: not reused");
    CHECK(nr.reused == 2, "two reused (%llu)", (unsigned long long)nr.reused);
    sw = switches();
    CHECK(write(pipe_fd[1], "y", 1) == 1, "wake it again");
    CHECK(wait_blocked(sw, &call), "blocked again");
    CHECK(!natreuse_check(&nr, reader_tid, &r, &th, 5, &stack), "it ran: stop it");
    natreuse_stopped(&nr, reader_tid, &call); /* ret 0: the stop came outside a call */
    natreuse_stack(&nr, reader_tid, bytes, sizeof(bytes), true);
    natreuse_keep(&nr, reader_tid, &r, &th, 5, 43);
    CHECK(!natreuse_check(&nr, reader_tid, &r, &th, 5, &stack), "stopped outside a call");
    call.ret = -512;
    natreuse_stopped(&nr, reader_tid, &call);
    natreuse_stack(&nr, reader_tid, bytes, sizeof(bytes), true);
    natreuse_keep(&nr, reader_tid, &r, &th, 5, 44);
    natreuse_forget(&nr);
    CHECK(!natreuse_check(&nr, reader_tid, &r, &th, 5, &stack), "ids forgotten");
    natreuse_prune(&nr);
    natreuse_prune(&nr);
    CHECK(nr.n == 0, "pruned (%zu)", nr.n);
    natreuse_fini(&nr);
    close(pipe_fd[1]);
    pthread_join(t, NULL);
    close(pipe_fd[0]);
    return 0;
}

int main(void)
{
    RUN(test_parse_syscall);
    RUN(test_same_call);
    RUN(test_live_thread);
    return TEST_SUMMARY("natreuse");
}
