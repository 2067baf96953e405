// SPDX-License-Identifier: MIT
// Unit tests of target/waits (what a blocked thread waits on) and of the library kinds the
// time categories give on-CPU samples: syscall lines, descriptor links, and a live process
// blocked in recv() on a socket, read() on a pipe and a sleep.
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "check.h"
#include "profile/profile.h"
#include "sampler/categorize.h"
#include "target/waits.h"

static bool never_unix(void *arg, uint64_t ino)
{
    (void)arg;
    (void)ino;
    return false;
}

static bool always_unix(void *arg, uint64_t ino)
{
    (void)arg;
    return ino == 42;
}

static int test_parse(void)
{
    struct wait_call c;
    CHECK(waits_parse("running", &c) && c.running && c.nr == -1, "running");
    CHECK(waits_parse("-1 0x7ffd1 0x7f00", &c) && !c.running && c.nr == -1, "not in a call");
    CHECK(waits_parse("0 0x5 0x7f3c 0x10 0x0 0x0 0x0 0x7ffd 0x7f", &c) && c.nr == 0 &&
              c.args[0] == 5 && c.args[2] == 16,
          "read(5, ...)");
    CHECK(!waits_parse("garbage", &c), "not a syscall line");
    CHECK(!waits_parse("7 0x1", &c), "cut short");
    return 0;
}

static int test_links(void)
{
    CHECK(waits_kind_of_link("socket:[123]", never_unix, NULL) == WAIT_NET, "tcp");
    CHECK(waits_kind_of_link("socket:[42]", always_unix, NULL) == WAIT_UNIX, "unix");
    CHECK(waits_kind_of_link("pipe:[77]", NULL, NULL) == WAIT_IPC, "pipe");
    CHECK(waits_kind_of_link("anon_inode:[eventfd]", NULL, NULL) == WAIT_LOCK, "eventfd");
    CHECK(waits_kind_of_link("/dev/pts/3", NULL, NULL) == WAIT_IDLE, "terminal");
    CHECK(waits_kind_of_link("/data/x.parquet", NULL, NULL) == WAIT_FILE, "file");
    CHECK(waits_kind_of_link("anon_inode:[eventpoll]", NULL, NULL) == WAIT_OTHER, "epoll");
    return 0;
}

static int test_library_kinds(void)
{
    CHECK(cat_library_kind("/usr/lib/x86_64-linux-gnu/openblas-pthread/libopenblasp-r0.3.21.so") ==
              EV_CPU_MODEL,
          "openblas");
    CHECK(cat_library_kind("/usr/lib/x86_64-linux-gnu/libgomp.so.1") == EV_CPU_MODEL, "gomp");
    CHECK(cat_library_kind("/x/site-packages/torch/lib/libtorch_cpu.so") == EV_CPU_MODEL, "torch");
    CHECK(cat_library_kind("/usr/lib/python3.11/lib-dynload/_pickle.cpython-311-x86_64-linux-gnu.so") ==
              EV_CPU_SERIAL,
          "pickle");
    CHECK(cat_library_kind("/usr/lib/python3.11/lib-dynload/_json.cpython-311-x86_64-linux-gnu.so") ==
              EV_CPU_SERIAL,
          "json");
    CHECK(cat_library_kind("/x/site-packages/tokenizers/tokenizers.abi3.so") == EV_CPU_TOKEN,
          "tokenizers");
    CHECK(cat_library_kind("/usr/lib/x86_64-linux-gnu/libz.so.1.2.13") == EV_CPU_NATIVE, "zlib");
    CHECK(cat_library_kind("/usr/lib/x86_64-linux-gnu/libcrypto.so.3") == EV_CPU_NATIVE, "crypto");
    return 0;
}

/* A child blocked in turn in recv() on a socket, read() on a pipe and nanosleep. */
static int test_live(void)
{
    int sv[2], pv[2];
    CHECK(socketpair(AF_UNIX, SOCK_STREAM, 0, sv) == 0 && pipe(pv) == 0, "fds");
    int go[2];
    CHECK(pipe(go) == 0, "go pipe");
    pid_t pid = fork();
    if (pid == 0) {
        char b;
        if (read(go[0], &b, 1) != 1) /* phase 1: blocked on the "go" pipe */
            _exit(1);
        if (recv(sv[1], &b, 1, 0) != 1) /* phase 2: a Unix socket */
            _exit(1);
        struct timespec ts = {30, 0};
        nanosleep(&ts, NULL); /* phase 3 */
        _exit(0);
    }
    struct waits w;
    waits_init(&w, pid);
    char path[64], line[256], label[WAITS_LABEL_MAX];
    snprintf(path, sizeof(path), "/proc/%d/syscall", (int)pid);
    enum wait_kind want[3] = {WAIT_IPC, WAIT_UNIX, WAIT_SLEEP};
    for (int phase = 0; phase < 3; phase++) {
        enum wait_kind got = WAIT_UNKNOWN;
        for (int i = 0; i < 400 && got != want[phase]; i++) {
            struct timespec ts = {0, 5 * 1000 * 1000};
            nanosleep(&ts, NULL);
            FILE *f = fopen(path, "r");
            if (!f)
                break;
            size_t n = fread(line, 1, sizeof(line) - 1, f);
            fclose(f);
            line[n] = 0;
            struct wait_call c;
            waits_round(&w);
            if (waits_parse(line, &c))
                got = waits_classify(&w, &c, label);
        }
        CHECK(got == want[phase], "phase %d: got %d (%s)", phase, got, label);
        if (phase == 0)
            CHECK(write(go[1], "x", 1) == 1, "go");
        if (phase == 1)
            CHECK(send(sv[0], "x", 1, 0) == 1, "send");
    }
    kill(pid, SIGKILL);
    waitpid(pid, NULL, 0);
    waits_fini(&w);
    close(sv[0]);
    close(sv[1]);
    close(pv[0]);
    close(pv[1]);
    close(go[0]);
    close(go[1]);
    return 0;
}

int main(void)
{
    RUN(test_parse);
    RUN(test_links);
    RUN(test_library_kinds);
    RUN(test_live);
    return TEST_SUMMARY("waits");
}
