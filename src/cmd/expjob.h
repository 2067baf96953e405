// SPDX-License-Identifier: MIT
// crux exp: one scheduled run from the definition to its result: the variant's command line
// and environment filled in, run directly, under crux record (profile = yes), or as a server
// under crux load; outputs kept by hash for the agreement checks.
#ifndef CRUX_EXPJOB_H
#define CRUX_EXPJOB_H

#include <signal.h>
#include <stdint.h>

#include "cmd/expdef.h"
#include "cmd/expstate.h"
#include "util/err.h"

/* What every run of an experiment shares. Borrowed. */
struct exp_ctx {
    const struct exp_def *d;
    const struct exp_variant *vars;
    const char *dir;    /* the experiment's folder: out/HASH, logs, recordings, load results */
    const char *self;   /* crux's own executable, for crux record and crux load */
    const char *store;  /* the run store folder: recordings and load results are kept there */
    const char *exp_id; /* the experiment's id in the store ("NAME-CREATED") */
    volatile sig_atomic_t *stop;
};

/* Runs slot `k` of the schedule and fills `r` (owned by the caller: exp_result_fini). A run
 * that fails is a result with ok false and a note. Returns ERR_AGAIN when crux was asked to
 * stop during the run (`r` is not to be kept), or an error of crux's own (fork, files) with
 * context in `eb`. */
int exp_job_run(const struct exp_ctx *c, const struct exp_slot *slot, uint32_t k,
                struct exp_result *r, struct errbuf *eb) MUST_CHECK;

#endif
