// SPDX-License-Identifier: MIT
// target/perf against the kernel itself: a thread of this process sleeps in futex() on a
// known word, then in nanosleep(); the register its switch-outs come with (perf_wait_arg0)
// must name the futex word while it waits there and never after. Skipped (passing, with a
// line saying why) where perf events or kernel-mode events are not permitted.
#include <linux/futex.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "check.h"
#include "target/perf.h"

static uint32_t futex_word;
static volatile int phase; /* 0: futex waits, 1: nanosleeps, 2: stop */
static volatile pid_t sleeper_tid;

static void *sleeper(void *arg)
{
    (void)arg;
    sleeper_tid = (pid_t)syscall(SYS_gettid);
    while (phase != 2) {
        struct timespec ts = {0, 2000000};
        if (phase == 0)
            syscall(SYS_futex, &futex_word, FUTEX_WAIT_PRIVATE, 0, &ts, NULL, 0);
        else
            nanosleep(&ts, NULL);
    }
    return NULL;
}

static void pause_ms(long ms)
{
    struct timespec ts = {0, ms * 1000000L};
    nanosleep(&ts, NULL);
}

static uint64_t mono_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec;
}

static int test_switch_out_register(void)
{
    struct perf p;
    perf_open(&p, getpid(), "", 10000000ULL);
    if (!p.on || !p.regs) {
        printf("unit perf: skipped: %s\n",
               !p.on ? p.why : "kernel-mode events are not permitted (register event refused)");
        perf_close(&p);
        return 0;
    }
    pthread_t th;
    CHECK(pthread_create(&th, NULL, sleeper, NULL) == 0, "pthread_create");
    while (!sleeper_tid)
        pause_ms(1);
    perf_track(&p, sleeper_tid);
    uint64_t want = (uint64_t)(uintptr_t)&futex_word;
    int named = 0, other = 0;
    for (int i = 0; i < 200; i++) {
        pause_ms(1);
        perf_drain(&p, mono_ns());
        uint64_t a;
        if (perf_wait_arg0(&p, sleeper_tid, &a)) {
            CHECK(a == want, "futex wait: arg0 %#llx, the word is at %#llx", (unsigned long long)a,
                  (unsigned long long)want);
            named++;
        }
    }
    phase = 1;
    pause_ms(10);
    perf_drain(&p, mono_ns());
    for (int i = 0; i < 200; i++) {
        pause_ms(1);
        perf_drain(&p, mono_ns());
        uint64_t a;
        if (perf_wait_arg0(&p, sleeper_tid, &a)) {
            CHECK(a != want, "nanosleep: arg0 still names the futex word");
            other++;
        }
    }
    phase = 2;
    pthread_join(th, NULL);
    uint64_t regs = p.regs_records;
    perf_close(&p);
    CHECK(regs > 0, "no register samples");
    /* asleep most of the time: most drains find it in its wait */
    CHECK(named >= 20, "the futex wait was named in %d of 200 drains", named);
    CHECK(other >= 20, "the nanosleep was seen in %d of 200 drains", other);
    return 0;
}

int main(void)
{
    RUN(test_switch_out_register);
    return TEST_SUMMARY("perf");
}
