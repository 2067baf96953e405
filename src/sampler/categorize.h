// SPDX-License-Identifier: MIT
// The time category of each thread-sample (profile.h enum sample_cat), decided out of
// process without stopping anything: on-CPU threads by where the kernel's task-clock
// samples of the interval landed (target/perf.h), off-CPU threads by what they wait on
// (/proc/PID/task/TID/syscall: a futex on the GIL's own condition or mutex is GIL wait,
// anything else is system time). docs/internals.md, "Time categories", has the rules.
#ifndef CRUX_CATEGORIZE_H
#define CRUX_CATEGORIZE_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "target/perf.h"
#include "target/waits.h"
#include "util/hmap.h"

#define CAT_LABEL_MAX 64
#define CAT_MEMO 4 /* functions per thread whose last on-CPU category is remembered */
/* A thread off CPU whose ring shows no switch since is not read again for this long. */
#define CAT_RECHECK_NS 100000000ULL

/* The kernel's evidence for one thread-sample (profile.h enum ev_kind and a label naming the
 * library the CPU was in, or the call and descriptor a blocked thread waits on). */
struct cat_evidence {
    uint8_t kind;
    char label[CAT_LABEL_MAX];
    /* runnable ('R') but with no CPU time in the interval, inside a blocking system call: it
     * was woken and waited for a CPU to finish the call; the sample is a wait, not work */
    bool waited;
};

/* The category of the last on-CPU sample with kernel samples in one function. */
struct cat_memo {
    uint64_t leaf; /* the function (0: empty slot) */
    uint8_t cat;
    struct cat_evidence ev;
};

struct cat_thread {
    pid_t tid;
    int syscall_fd; /* /proc/PID/task/TID/syscall, kept open; -1 until needed */
    struct cat_memo memo[CAT_MEMO];
    uint8_t memo_next; /* the slot a new function takes */
    /* Off CPU in round seen_round: its state, category and evidence. */
    bool off_valid;
    char state;
    uint8_t off_cat;
    struct cat_evidence off_ev;
    uint32_t seen_round, reuse_round; /* cat_of's last round; cat_known_state's */
    uint32_t inferred_round;          /* cat_known_state's, for a thread asleep again */
    uint64_t state_ns;                /* when its state was last read from /proc */
    bool live;
};

struct categorizer {
    pid_t pid;
    struct perf perf;
    struct cat_thread *v;
    size_t n, cap;
    struct hmap by_tid;
    struct waits waits;
    uint32_t round;
    uint64_t round_ns;
    uint64_t syscall_reads;
    uint64_t states_reused; /* /proc state (and syscall) reads saved by cat_known_state */
};

/* Prepares categories for process `pid`. `python_path`: the mapped file holding the
 * interpreter; `period_ns`: CPU time between kernel samples of a thread. */
void cat_init(struct categorizer *c, pid_t pid, const char *python_path, uint64_t period_ns);
void cat_fini(struct categorizer *c);
/* Collects the kernel samples of the last interval; call once per round before cat_of. */
void cat_round(struct categorizer *c, uint64_t now_ns);
/* The category of thread `tid` now, and in `ev` the kernel's evidence for it. `*state` is its
 * /proc state letter (set to 'R' when one inferred asleep turns out to be running); `gil`
 * whether it holds the GIL; [gil_lo, gil_hi) the GIL structure's
 * address range (0, 0 when unknown); `leaf` identifies the function the thread is in. */
uint8_t cat_of(struct categorizer *c, pid_t tid, char *state, bool gil, uint64_t gil_lo,
               uint64_t gil_hi, uint64_t leaf, struct cat_evidence *ev);
/* The evidence kind (enum ev_kind) of on-CPU time in mapped file `path` (its name decides:
 * BLAS, OpenMP, torch, numpy -> model; _pickle, _json -> serialization; ...). */
uint8_t cat_library_kind(const char *path);
/* The state of thread `tid` without a read of /proc, when its perf ring tells it: 'R' when
 * it is on a CPU or was preempted off one; when it was off CPU in the previous round and has
 * not been switched in since, that round's state, and the following cat_of gives that
 * round's category and evidence without reading /proc either. Only for a thread seen in the
 * previous round whose state was read less than CAT_RECHECK_NS ago (a read also proves the
 * tid is still the target's). False otherwise: read the state. Call after cat_round. */
bool cat_known_state(struct categorizer *c, pid_t tid, char *state);
/* Every few seconds: forget threads not seen since the previous call. */
void cat_prune(struct categorizer *c);
/* Describes how categories are determined for this process ("perf events" or why not). */
const char *cat_note(const struct categorizer *c);

/* Parses a /proc/.../syscall line: true when the thread is blocked in a futex call on an
 * address within [lo, hi). */
bool cat_parse_futex_wait(const char *line, uint64_t lo, uint64_t hi);

#endif
