// SPDX-License-Identifier: MIT
// The load generator's event loop: non-blocking sockets on epoll, one thread, one schedule.
#ifndef CRUX_LOOP_H
#define CRUX_LOOP_H

#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/socket.h>

#include "load/load.h"
#include "load/prefill.h"
#include "load/reqlog.h"
#include "load/tls.h"
#include "util/err.h"

/* One prepared request: the exact bytes to write. */
struct loop_req {
    char *data; /* owned by whoever built the array */
    size_t len;
    bool head;             /* HEAD: the response has no body */
    uint32_t prompt_words; /* prompt length of the body (prefill.h), PREFILL_NO_PROMPT none */
};

/* Bytes of a response body a --log-bodies line carries (its hash covers all of it). */
#define LOOP_LOG_BODY_MAX (64 * 1024)

/* One run (or sweep step). */
struct loop_cfg {
    const struct sockaddr *addr;
    socklen_t addrlen;
    const struct loop_req *reqs; /* cycled; at least one */
    size_t nreqs;
    bool open_loop;
    double rate; /* open loop */
    enum load_arrivals arrivals;
    int slots;         /* most connections (open loop) or concurrency (closed loop) */
    double duration_s; /* 0: until `requests` are done */
    uint64_t requests; /* 0: until duration_s */
    double timeout_s;
    FILE *log;                  /* per-request JSONL or NULL (not owned) */
    bool log_bodies;            /* log lines carry body_sha256 and the body's first bytes */
    uint64_t *rng;              /* Poisson state, advanced */
    uint64_t log_base;          /* request number of this run's first request in the log */
    struct tls_ctx *tls;        /* https: sessions from this context (not owned), else NULL */
    const char *host;           /* https: the server name for SNI and verification */
    _Atomic uint32_t *inflight; /* when set, kept equal to the requests in flight */
    struct reqlog *reqlog;      /* when set, each request's record goes here (not owned) */
};

/* Runs one schedule to its end and adds what happened to `st`, whose histograms the caller
 * initialised. Returns 0, or ERR_SYS when epoll or the timer cannot be set up. */
int loop_run(const struct loop_cfg *c, struct load_stats *st, volatile sig_atomic_t *stop,
             struct errbuf *eb) MUST_CHECK;

/* Monotonic clock in nanoseconds. */
uint64_t loop_now_ns(void);

#endif
