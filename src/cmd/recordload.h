// SPDX-License-Identifier: MIT
// crux record --load URL: the load generator runs on a thread of its own while the sampler
// records the server, and its figures end up next to the profile.
#ifndef CRUX_RECORDLOAD_H
#define CRUX_RECORDLOAD_H

#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <sys/types.h>

#include "cmd/loadcli.h"
#include "load/load.h"
#include "load/reqlog.h"
#include "profile/profile.h"
#include "stages/stagestats.h"

#define RECORD_LOAD_MAX_ARGS 256

struct record_load {
    bool on;
    char *argv[RECORD_LOAD_MAX_ARGS]; /* `crux load` arguments built from --load options */
    int argc;
    struct load_cli cli;
    struct load_result res;
    int rc;                      /* load_run's result */
    char err[256];               /* its message */
    volatile sig_atomic_t stop;  /* set to end the load early (the target exited) */
    volatile sig_atomic_t *done; /* set when the load finishes: stops the sampler */
    pthread_t thread;
    bool started, ran;
    _Atomic uint32_t inflight; /* requests in flight, kept by the load thread */
    struct reqlog reqs;        /* each request, kept by the load thread (read after the join) */
};

/* Takes `--load URL` and every `--load-NAME [VALUE]` (`--load-rate 50` is `crux load
 * --rate 50`) out of record's arguments (before any `--`), compacting *argc/argv. Returns 0,
 * or EXIT_USAGE after a one-line error. */
int record_load_split(int *argc, char **argv, struct record_load *l);
/* Parses the collected load arguments; EXIT_USAGE after a one-line error. */
int record_load_parse(struct record_load *l);
/* Launch mode: waits until the URL's host accepts connections (the server is up), at most
 * `wait_s`, giving up early when process `pid` exits. 0 or ERR_PROC_GONE / ERR_IO. */
int record_load_wait_listening(const struct record_load *l, pid_t pid, double wait_s);
/* Starts the load on its own thread; *done is set when it ends. */
int record_load_start(struct record_load *l, volatile sig_atomic_t *done);
/* Stops (if still running) and joins the load; puts its summary and the stage statistics
 * (when `spans` holds any) into the profile and on stderr; writes the --load-json/-o
 * outputs. Returns 0 or EXIT_FAIL. */
int record_load_finish(struct record_load *l, struct profile *p, struct stagestats *spans,
                       uint64_t spans_lost, bool quiet);
/* After record_load_finish: copies the load's requests into `p` (profile.reqs), moved to the
 * samples' clock (`start_ns`, CLOCK_MONOTONIC when sampling began) and clamped to the
 * recording (0 .. p->meta.duration_ns), with their failures named. */
void record_load_keep_requests(const struct record_load *l, struct profile *p, uint64_t start_ns);
/* After keep_requests and the agent's spans are in `p`: the host stages during prefill and
 * decode of streamed requests (analysis/phasesplit.h), on stderr unless `quiet` and appended
 * to the profile's stage text. Nothing without streamed requests and stage spans. */
void record_load_phase_stages(struct profile *p, bool quiet);
void record_load_fini(struct record_load *l);

#endif
