// SPDX-License-Identifier: MIT
// Unit tests of the load generator's per-request records: appends across chunks keep every
// record in order, the cap counts the rest, failures are named.
#include <string.h>

#include "check.h"
#include "load/load.h"
#include "load/reqlog.h"

static int test_chunks_keep_order(void)
{
    struct reqlog l;
    reqlog_init(&l, 3 * REQLOG_CHUNK + 10);
    size_t n = 2 * REQLOG_CHUNK + 7;
    for (size_t i = 0; i < n; i++)
        reqlog_add(&l, &(struct reqlog_rec){
                           .t_start = i, .t_end = i + 1, .status = 200, .err = REQLOG_OK});
    CHECK(l.n == n && l.nchunks == 3 && l.dropped == 0, "n %zu chunks %zu", l.n, l.nchunks);
    for (size_t i = 0; i < n; i++)
        CHECK(reqlog_at(&l, i)->t_start == i && reqlog_at(&l, i)->t_end == i + 1, "record %zu", i);
    reqlog_fini(&l);
    return 0;
}

static int test_cap_counts_the_rest(void)
{
    struct reqlog l;
    reqlog_init(&l, 5);
    for (int i = 0; i < 12; i++)
        reqlog_add(&l, &(struct reqlog_rec){.t_start = (uint64_t)i, .err = LOAD_ERR_TIMEOUT});
    CHECK(l.n == 5 && l.dropped == 7 && l.nchunks == 1, "n %zu dropped %llu", l.n,
          (unsigned long long)l.dropped);
    CHECK(reqlog_at(&l, 4)->t_start == 4, "the first ones are kept");
    reqlog_fini(&l);
    return 0;
}

static int test_names(void)
{
    CHECK(reqlog_err_name(REQLOG_OK) == NULL, "ok has no failure");
    CHECK(strcmp(reqlog_err_name(REQLOG_CANCELLED), "cancelled") == 0, "cancelled");
    CHECK(strcmp(reqlog_err_name(LOAD_ERR_HTTP), "http") == 0, "http");
    CHECK(strcmp(reqlog_err_name(LOAD_ERR_TIMEOUT), "timeout") == 0, "timeout");
    return 0;
}

int main(void)
{
    RUN(test_chunks_keep_order);
    RUN(test_cap_counts_the_rest);
    RUN(test_names);
    return TEST_SUMMARY("reqlog");
}
