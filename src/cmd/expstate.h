// SPDX-License-Identifier: MIT
// crux exp: the schedule (every variant's warm-up runs, then every (variant, repeat) pair in
// a seeded random order) and the experiment's state file, which keeps the schedule and every
// finished run's metrics so that an interrupted experiment continues where it stopped.
#ifndef CRUX_EXPSTATE_H
#define CRUX_EXPSTATE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "util/err.h"

/* State file format version. */
#define EXP_STATE_FORMAT 1

/* One scheduled run. */
struct exp_slot {
    uint32_t variant;
    int32_t repeat; /* 0.. for measured runs; -1, -2, .. for warm-up runs */
    bool warmup;
};

/* One output of a run: the whole stdout or output file (template 0), or under load the body
 * of each request template (the request index modulo the number of templates). */
struct exp_out {
    uint32_t tmpl;
    char hash[65]; /* SHA-256, hex */
};

/* A finished run. Strings and arrays are owned (exp_state_fini). */
struct exp_result {
    uint32_t slot; /* index into the schedule */
    uint32_t variant;
    int32_t repeat;
    bool warmup;
    bool ok;        /* it ran to the end: exit 0 (under load: the load run completed) */
    int status;     /* exit code, 128 + signal, or -1 when it could not start */
    double start;   /* Unix seconds */
    double wall_s;  /* command: fork to reap; server mode: the load run's elapsed time */
    double cpu_s;   /* user + system of the command and its waited-for descendants */
    long maxrss_kb; /* largest resident set among them */
    double tput;    /* runs/s (1 / wall) or requests/s under load */
    double lat_p50_s, lat_p90_s, lat_p99_s, lat_p999_s, lat_mean_s; /* under load; else 0 */
    uint64_t requests, errors;                                      /* under load */
    struct exp_out *outs;
    size_t nouts;
    bool outs_mixed; /* under load: one template answered different bodies within the run */
    char *recording; /* the kept recording (profile = yes) or load result; NULL otherwise */
    int64_t run_id;  /* its id in the run store; 0 when not kept there */
    char *note;      /* why it failed; NULL when ok */
};

/* The experiment's state. */
struct exp_state {
    char *name;
    char def_hash[65];
    uint64_t seed;
    double created;  /* Unix seconds */
    char **variants; /* variant names, in definition order */
    size_t nvariants;
    struct exp_slot *slots;
    size_t nslots;
    struct exp_result *results; /* in the order they finished */
    size_t nresults, cap;
};

/* Builds the schedule into `st` (slots replaced): for each warm-up round, every variant once
 * in definition order, then the `repeats` measured runs of every variant shuffled by
 * Fisher-Yates with a generator seeded by `seed` (the same seed, the same order). */
void exp_schedule(struct exp_state *st, size_t nvariants, int repeats, int warmup, uint64_t seed);
/* A seed from the system's entropy, for experiments that do not give one. */
uint64_t exp_random_seed(void);

/* Whether slot `slot` has a result. */
bool exp_state_done(const struct exp_state *st, uint32_t slot);
/* Appends a result (its strings and arrays are taken over; *r is zeroed). */
void exp_state_add(struct exp_state *st, struct exp_result *r);
/* Frees everything `st` owns; it is left zeroed. */
void exp_state_fini(struct exp_state *st);
void exp_result_fini(struct exp_result *r);

/* Writes the state as JSON to `path` atomically (a temporary file renamed over it, so that a
 * crux killed at any moment leaves the previous or the new state). */
int exp_state_save(const struct exp_state *st, const char *path, struct errbuf *eb) MUST_CHECK;
/* Reads a state file into `st` (zeroed by the caller). ERR_NOT_FOUND when it does not exist;
 * ERR_CORRUPT with the reason when it cannot be used. */
int exp_state_load(struct exp_state *st, const char *path, struct errbuf *eb) MUST_CHECK;

#endif
