// SPDX-License-Identifier: MIT
// Where a process's threads spend their CPU time, from the kernel's own sampling: one
// perf_event_open task-clock event per thread, each with a small ring buffer of its own,
// each sample an instruction pointer with its privilege level. Nothing stops the target; the
// kernel takes the samples in the thread's own context at a fixed CPU-time period. The same
// ring carries a record at each of the thread's context switches (written by the scheduler,
// no interrupt): whether the thread is on a CPU and how much CPU time it had, with no
// system call.
#ifndef CRUX_PERF_H
#define CRUX_PERF_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "util/err.h"
#include "util/hmap.h"

/* Where an instruction pointer was. */
enum perf_where {
    PERF_PYTHON = 0, /* the module holding the interpreter (libpython or the executable) */
    PERF_LIBC = 1,   /* the C library and loader: called by the interpreter and by natives */
    PERF_NATIVE = 2, /* any other user code: extension modules, BLAS, JIT code */
    PERF_KERNEL = 3, /* kernel mode: syscalls, page faults */
    PERF_NWHERE = 4,
};

#define PERF_TALLY_LIBS 4
#define PERF_LIB_NONE 0xffff

/* Samples of one thread since the last perf_take(). */
struct perf_tally {
    uint32_t n[PERF_NWHERE];
    uint8_t last; /* enum perf_where of the newest sample */
    /* The user-mode samples by mapped file (perf_lib_path), up to PERF_TALLY_LIBS files. */
    uint16_t lib[PERF_TALLY_LIBS];
    uint32_t lib_n[PERF_TALLY_LIBS];
    uint8_t nlib;
    /* From the context-switch records (perf.switches): */
    bool moved;       /* any record since the previous drain: it was switched in or out */
    bool known;       /* a switch or a sample was seen: oncpu and ran_ns mean something */
    bool oncpu;       /* on a CPU at the last drain */
    bool preempted;   /* off a CPU by preemption: still runnable, not waiting on a call */
    uint64_t ran_ns;  /* CPU time since the previous take (up to the last drain) */
    uint64_t span_ns; /* the time since the previous take (up to the last drain) */
};

struct perf_range {
    uint64_t lo, hi;
    uint8_t where;
    uint16_t lib; /* index of the mapped file in perf.libs */
};

struct perf_thread {
    pid_t tid;
    int fd;
    uint8_t *ring; /* 1 header page + data pages */
    bool live;     /* seen by the caller since the last prune */
    struct perf_tally t;
    uint64_t in_ns;    /* when it was last switched in (t.oncpu) */
    uint64_t since_ns; /* the drain time of the previous take */
    uint64_t acc_ns;   /* CPU time of the on-CPU spans closed since the previous take */
};

struct perf {
    pid_t pid;
    bool on;            /* events are being collected */
    bool kernel;        /* kernel-mode samples are seen (not excluded) */
    bool switches;      /* context-switch records come with the samples (Linux 4.3+) */
    char why[160];      /* when !on: why not, with the fix */
    uint64_t period_ns; /* CPU time between samples of one thread */
    int out_fd;         /* the event owning the ring */
    uint8_t *ring;      /* 1 header page + data_size bytes */
    size_t ring_len, data_size;
    struct perf_thread *v;
    size_t n, cap;
    struct hmap by_tid; /* tid -> index + 1 */
    char python_path[4096];
    struct perf_range *ranges; /* executable mappings, sorted */
    size_t nranges;
    char **libs; /* mapped files met so far (ids stay valid across map reloads) */
    size_t nlibs, caplibs;
    struct hmap lib_ids; /* hash of a path -> id + 1 */
    uint64_t maps_loaded_ns, drained_ns;
    uint64_t samples, lost, unknown_ip, switch_records;
};

/* Prepares sampling of process `pid`'s threads every `period_ns` of their CPU time.
 * `python_path` is the mapped file that holds the interpreter. Never fails: when perf events
 * are not permitted p->on is false and p->why says why and what to do. */
void perf_open(struct perf *p, pid_t pid, const char *python_path, uint64_t period_ns);
/* Starts sampling thread `tid` if not yet; marks it live. No-op when !p->on. */
void perf_track(struct perf *p, pid_t tid);
/* Reads every sample the kernel wrote since the last call into the per-thread tallies. */
void perf_drain(struct perf *p, uint64_t now_ns);
/* Copies and clears the tally of `tid` (the on-CPU state and time as of the last drain);
 * false when the thread is not tracked. */
bool perf_take(struct perf *p, pid_t tid, struct perf_tally *out);
/* What the switch records say of `tid` at the last drain. */
enum perf_run {
    PERF_RUN_UNKNOWN = 0, /* not tracked, no switch records, or switched off a CPU lately */
    PERF_RUN_RUNNABLE,    /* on a CPU, or preempted off one: runnable ('R') */
    PERF_RUN_STILL,       /* off a CPU, not switched in or out since the drain before */
    PERF_RUN_BLOCKED,     /* switched off a CPU by a wait since then: asleep, in a call */
};
enum perf_run perf_run_state(const struct perf *p, pid_t tid);
/* Closes the events of threads not marked live since the previous prune; clears the marks. */
void perf_prune(struct perf *p);
void perf_close(struct perf *p);

/* The path of mapped file `lib` (a perf_tally.lib entry), or "" when unknown. */
const char *perf_lib_path(const struct perf *p, uint16_t lib);
/* The mapped file most of a tally's user-mode samples fell in, PERF_LIB_NONE when none. */
uint16_t perf_tally_lib(const struct perf_tally *t);

/* Classifies an address against sorted ranges (for tests). */
enum perf_where perf_where_of(const struct perf_range *r, size_t n, uint64_t ip);
/* The class of a mapped file: PERF_PYTHON when it is `python_path`, PERF_LIBC for the C
 * library, libm, libpthread and the dynamic loader, else PERF_NATIVE. */
enum perf_where perf_classify_path(const char *path, const char *python_path);

#endif
