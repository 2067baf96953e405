// SPDX-License-Identifier: MIT
// What the time categories cost the profiled thread itself: crux opens, on every sampled
// thread, a software task-clock perf event with IP/TID/TIME samples into a ring (see
// src/target/perf.c); the kernel takes each of its samples in the target's context. This
// program opens the same event on its own thread and times a fixed CPU loop with the event
// enabled and disabled, alternating, for several periods; the ring is drained between
// loops as crux does each round.
//
//   cc -O2 -o perf_tick perf_tick.c && ./perf_tick [alternations] [loop_ms]
//
// Prints JSON: per period, the median and spread of (loop time with / without) for wall
// and thread-CPU time, the samples taken, and the extra time per sample.
#define _GNU_SOURCE
#include <linux/perf_event.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

static uint64_t now(clockid_t c)
{
    struct timespec ts;
    clock_gettime(c, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static volatile uint64_t sink;

static void work(uint64_t iters)
{
    uint64_t x = 88172645463325252ull, acc = 0;
    for (uint64_t i = 0; i < iters; i++) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        acc += x % 1000003u;
    }
    sink = acc;
}

static int cmp(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static long ring_samples(struct perf_event_mmap_page *h, size_t data_len)
{
    /* Count sample records between tail and head, then consume them (as a crux round). */
    uint64_t head = __atomic_load_n(&h->data_head, __ATOMIC_ACQUIRE);
    uint64_t tail = h->data_tail;
    long n = 0;
    uint8_t *data = (uint8_t *)h + h->data_offset;
    while (tail + sizeof(struct perf_event_header) <= head) {
        struct perf_event_header eh;
        size_t off = tail % data_len;
        if (off + sizeof(eh) <= data_len)
            memcpy(&eh, data + off, sizeof(eh));
        else
            break;
        if (eh.size == 0)
            break;
        if (eh.type == PERF_RECORD_SAMPLE)
            n++;
        tail += eh.size;
    }
    __atomic_store_n(&h->data_tail, head, __ATOMIC_RELEASE);
    return n;
}

int main(int argc, char **argv)
{
    int alternations = argc > 1 ? (int)strtol(argv[1], NULL, 10) : 30;
    double loop_ms = argc > 2 ? strtod(argv[2], NULL) : 40.0;
    /* a quarter of crux's interval at 100 Hz, 1 kHz, 10 kHz (the first design), and 1 ms: the
     * interval at 1 kHz since 6c4d0bd */
    const uint64_t periods[] = {2500000, 1000000, 250000, 25000};
    /* Calibrate the loop to loop_ms of CPU. */
    uint64_t iters = 1000000;
    for (;;) {
        uint64_t t0 = now(CLOCK_THREAD_CPUTIME_ID);
        work(iters);
        uint64_t dt = now(CLOCK_THREAD_CPUTIME_ID) - t0;
        if (dt > 5000000) {
            iters = (uint64_t)((double)iters * loop_ms * 1e6 / (double)dt);
            break;
        }
        iters *= 2;
    }
    long page = sysconf(_SC_PAGESIZE);
    printf("{\"loop_ms\": %.1f, \"alternations\": %d, \"periods\": [", loop_ms, alternations);
    for (size_t pi = 0; pi < sizeof(periods) / sizeof(periods[0]); pi++) {
        struct perf_event_attr a;
        memset(&a, 0, sizeof(a));
        a.size = sizeof(a);
        a.type = PERF_TYPE_SOFTWARE;
        a.config = PERF_COUNT_SW_TASK_CLOCK;
        a.sample_period = periods[pi];
        a.sample_type = PERF_SAMPLE_IP | PERF_SAMPLE_TID | PERF_SAMPLE_TIME;
        a.exclude_hv = 1;
        a.wakeup_events = 1u << 30;
        a.disabled = 1;
        int fd = (int)syscall(SYS_perf_event_open, &a, 0, -1, -1, PERF_FLAG_FD_CLOEXEC);
        if (fd < 0) {
            perror("perf_event_open");
            return 1;
        }
        size_t len = (size_t)page * 3; /* header page + 2 data pages */
        struct perf_event_mmap_page *h = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
        if (h == MAP_FAILED) {
            perror("mmap");
            return 1;
        }
        double *rw = calloc((size_t)alternations, sizeof(double));
        double *rc = calloc((size_t)alternations, sizeof(double));
        double *dw = calloc((size_t)alternations, sizeof(double));
        double *dc = calloc((size_t)alternations, sizeof(double));
        long samples = 0;
        for (int i = 0; i < alternations; i++) {
            uint64_t w[2], c[2];
            for (int k = 0; k < 2; k++) {
                int on = (k + i) % 2; /* which goes first alternates */
                if (on)
                    ioctl(fd, PERF_EVENT_IOC_ENABLE, 0);
                uint64_t w0 = now(CLOCK_MONOTONIC), c0 = now(CLOCK_THREAD_CPUTIME_ID);
                uint64_t chunk = iters / 20;
                for (int j = 0; j < 20; j++) {
                    work(chunk);
                    if (on)
                        samples += ring_samples(h, (size_t)page * 2);
                }
                w[on] = now(CLOCK_MONOTONIC) - w0;
                c[on] = now(CLOCK_THREAD_CPUTIME_ID) - c0;
                if (on)
                    ioctl(fd, PERF_EVENT_IOC_DISABLE, 0);
            }
            rw[i] = (double)w[1] / (double)w[0];
            rc[i] = (double)c[1] / (double)c[0];
            dw[i] = (double)w[1] - (double)w[0];
            dc[i] = (double)c[1] - (double)c[0];
        }
        qsort(rw, (size_t)alternations, sizeof(double), cmp);
        qsort(rc, (size_t)alternations, sizeof(double), cmp);
        qsort(dw, (size_t)alternations, sizeof(double), cmp);
        qsort(dc, (size_t)alternations, sizeof(double), cmp);
        double per_loop = (double)samples / alternations;
        int m = alternations / 2;
        printf("%s{\"period_us\": %.0f, \"samples_per_loop\": %.1f, "
               "\"wall_ratio\": [%.5f, %.5f, %.5f], \"cpu_ratio\": [%.5f, %.5f, %.5f], "
               "\"wall_ns_per_sample\": %.0f, \"cpu_ns_per_sample\": %.0f}",
               pi ? ", " : "", periods[pi] / 1e3, per_loop, rw[m], rw[0], rw[alternations - 1],
               rc[m], rc[0], rc[alternations - 1], per_loop ? dw[m] / per_loop : 0,
               per_loop ? dc[m] / per_loop : 0);
        fflush(stdout);
        munmap(h, len);
        close(fd);
        free(rw);
        free(rc);
        free(dw);
        free(dc);
    }
    printf("]}\n");
    return 0;
}
