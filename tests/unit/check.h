// SPDX-License-Identifier: MIT
// A minimal unit-test harness: CHECK(cond, msg) inside `static int test_x(void)`, RUN(test_x)
// in main, and TEST_SUMMARY() to print "N passed, N failed" and return the exit status.
#ifndef CRUX_CHECK_H
#define CRUX_CHECK_H

#include <stdio.h>

static int check_passed;
static int check_failed;

#define CHECK(cond, ...)                                                                   \
    do {                                                                                   \
        if (!(cond)) {                                                                     \
            fprintf(stderr, "%s:%d: CHECK(%s) failed: ", __FILE__, __LINE__, #cond);       \
            fprintf(stderr, __VA_ARGS__);                                                  \
            fputc('\n', stderr);                                                           \
            return 1;                                                                      \
        }                                                                                  \
    } while (0)

#define RUN(test)                                                                          \
    do {                                                                                   \
        if (test() == 0) {                                                                 \
            check_passed++;                                                                \
        } else {                                                                           \
            check_failed++;                                                                \
            fprintf(stderr, "FAIL %s\n", #test);                                           \
        }                                                                                  \
    } while (0)

#define TEST_SUMMARY(name)                                                                 \
    (printf("unit %-14s %d passed, %d failed\n", name, check_passed, check_failed),         \
     check_failed ? 1 : 0)

#endif
