// SPDX-License-Identifier: MIT
// Floor costs of the system calls a sampler is built from, measured against a child process:
// process_vm_readv of one span (64 B, 4 KiB, 16 KiB), of several spans in one call, a
// pread of /proc/PID/task/TID/stat and of .../schedstat, kill(pid, 0), the clocks, and how
// late a 100 us absolute-deadline clock_nanosleep wakes up (default timer slack and 1 ns
// slack). Prints one JSON object on stdout.
// Build: cc -O2 -o pvr_floor pvr_floor.c    Run: ./pvr_floor [calls-per-batch] [batches]
#define _GNU_SOURCE
#include <fcntl.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define REGION (1 << 20)
#define PAGE 4096
#define MAX_IOV 64
#define MAX_BATCHES 64

static uint64_t clock_ns(clockid_t id)
{
    struct timespec ts;
    clock_gettime(id, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec;
}

struct op {
    const char *name;
    int kind;     /* 0: process_vm_readv, 1: pread of stat, 2: thread CPU clock, 3: monotonic,
                     4: pread of schedstat, 5: kill(pid, 0) */
    size_t len;   /* bytes per span */
    int nspans;   /* spans per call, each on its own page */
};

static pid_t child;
static char *region;
static char local[MAX_IOV * 16384];
static int stat_fd, schedstat_fd;

static int do_op(const struct op *op)
{
    if (op->kind == 0) {
        struct iovec l[MAX_IOV], r[MAX_IOV];
        for (int i = 0; i < op->nspans; i++) {
            l[i] = (struct iovec){local + (size_t)i * op->len, op->len};
            r[i] = (struct iovec){region + (size_t)i * (op->len > PAGE ? op->len : PAGE) * 2,
                                  op->len};
        }
        return process_vm_readv(child, l, (unsigned long)op->nspans, r,
                                (unsigned long)op->nspans, 0) < 0;
    }
    if (op->kind == 1)
        return pread(stat_fd, local, 512, 0) <= 0;
    if (op->kind == 2)
        return clock_ns(CLOCK_THREAD_CPUTIME_ID) == 0;
    if (op->kind == 4)
        return pread(schedstat_fd, local, 512, 0) <= 0;
    if (op->kind == 5)
        return kill(child, 0) != 0;
    return clock_ns(CLOCK_MONOTONIC) == 0;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* Median lateness of n wake-ups from clock_nanosleep to an absolute deadline 100 us ahead,
 * as the sampler sleeps between ticks. */
static double sleep_overshoot_us(int n)
{
    static double late[4096];
    if (n > 4096)
        n = 4096;
    for (int i = 0; i < n; i++) {
        uint64_t deadline = clock_ns(CLOCK_MONOTONIC) + 100000;
        struct timespec ts = {(time_t)(deadline / 1000000000ULL),
                              (long)(deadline % 1000000000ULL)};
        clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, NULL);
        late[i] = (double)(clock_ns(CLOCK_MONOTONIC) - deadline) / 1e3;
    }
    qsort(late, (size_t)n, sizeof(double), cmp_double);
    return late[n / 2];
}

int main(int argc, char **argv)
{
    long calls = argc > 1 ? strtol(argv[1], NULL, 10) : 20000;
    long batches = argc > 2 ? strtol(argv[2], NULL, 10) : 7;
    if (calls < 1 || batches < 1 || batches > MAX_BATCHES) {
        fprintf(stderr, "usage: pvr_floor [calls-per-batch] [batches<=%d]\n", MAX_BATCHES);
        return 2;
    }
    region = mmap(NULL, REGION * 4, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (region == MAP_FAILED)
        return 1;
    child = fork();
    if (child == 0) {
        memset(region, 1, REGION * 4); /* the child's own pages, not shared copy-on-write */
        for (;;)
            pause();
    }
    usleep(200000);
    char path[64];
    snprintf(path, sizeof(path), "/proc/%d/task/%d/stat", (int)child, (int)child);
    stat_fd = open(path, O_RDONLY);
    snprintf(path, sizeof(path), "/proc/%d/task/%d/schedstat", (int)child, (int)child);
    schedstat_fd = open(path, O_RDONLY);
    static const struct op ops[] = {
        {"readv_64B", 0, 64, 1},
        {"readv_4KiB", 0, 4096, 1},
        {"readv_16KiB", 0, 16384, 1},
        {"readv_8x64B_8pages", 0, 64, 8},
        {"readv_64x64B_64pages", 0, 64, 64},
        {"readv_8x4KiB", 0, 4096, 8},
        {"pread_proc_task_stat", 1, 0, 0},
        {"pread_proc_task_schedstat", 4, 0, 0},
        {"kill_pid_0", 5, 0, 0},
        {"clock_thread_cputime", 2, 0, 0},
        {"clock_monotonic", 3, 0, 0},
    };
    printf("{\"calls_per_batch\": %ld, \"batches\": %ld, \"ops\": {", calls, batches);
    for (size_t k = 0; k < sizeof(ops) / sizeof(ops[0]); k++) {
        double wall[MAX_BATCHES], cpu[MAX_BATCHES];
        int failed = 0;
        for (long b = 0; b < batches; b++) {
            uint64_t w0 = clock_ns(CLOCK_MONOTONIC), c0 = clock_ns(CLOCK_PROCESS_CPUTIME_ID);
            for (long i = 0; i < calls; i++)
                failed |= do_op(&ops[k]);
            uint64_t w1 = clock_ns(CLOCK_MONOTONIC), c1 = clock_ns(CLOCK_PROCESS_CPUTIME_ID);
            wall[b] = (double)(w1 - w0) / 1e3 / (double)calls;
            cpu[b] = (double)(c1 - c0) / 1e3 / (double)calls;
        }
        qsort(wall, (size_t)batches, sizeof(double), cmp_double);
        qsort(cpu, (size_t)batches, sizeof(double), cmp_double);
        printf("%s\"%s\": {\"us_per_call\": %.4f, \"us_per_call_min\": %.4f, "
               "\"us_per_call_max\": %.4f, \"cpu_us_per_call\": %.4f, \"failed\": %s}",
               k ? ", " : "", ops[k].name, wall[batches / 2], wall[0], wall[batches - 1],
               cpu[batches / 2], failed ? "true" : "false");
    }
    printf("}, \"sleep_100us_overshoot_us\": {");
    for (int slack = 0; slack < 2; slack++) {
        if (slack)
            prctl(PR_SET_TIMERSLACK, 1UL, 0, 0, 0);
        printf("%s\"%s\": %.1f", slack ? ", " : "", slack ? "slack_1ns" : "default_slack",
               sleep_overshoot_us(2000));
    }
    printf("}}\n");
    kill(child, SIGKILL);
    waitpid(child, NULL, 0);
    return 0;
}
