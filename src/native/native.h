// SPDX-License-Identifier: MIT
// Native frames merged with Python frames for one thread of a sampling round (--native): the
// thread alone is stopped (ptrace SEIZE + INTERRUPT, never the whole process), its registers,
// stack and Python stack are read at that one instant, it is released, and the walk, symbols
// and merge run while it runs on.
//
// Use from a sampler:
//     struct native nt;                 native_open(&nt, pid, &eb) once per target
//     struct native_stack st;           native_stack_init(&st) once (reused)
//     each round, after pyreader_sample(r, now, &eb):
//         for each thread slot t with r->threads[t].tid != 0:
//             natreuse_check(&nt.reuse, ...) true: its last stack still holds, no stop; else
//             rc = native_sample_thread(&nt, &pz, r, t, now, &st, &eb);
//             st.v[0 .. st.n) root first: NATIVE_FRAME_PY frames (pyreader_code(r, &f->py)
//             for name and file, f->py.line) and NATIVE_FRAME_C frames (f->sym->name,
//             f->sym->module: write "name (module)"). rc != 0 still fills st with the Python
//             frames alone (st.native false); ERR_PERM is worth reporting once (ptrace refused),
//             the others are per-sample and counted in the stats. When rc == 0 and
//             st.native, natreuse_keep(&nt.reuse, ...) with the stack made from st;
//         a round that takes no native sample calls pause_release_pending(&pz) instead:
//         a thread whose stop timed out (ERR_TOO_LARGE) stops later and must be released;
//     native_close(&nt); pause_fini(&pz) at the end.
// Not thread-safe: one sampler thread per struct native.
#ifndef CRUX_NATIVE_H
#define CRUX_NATIVE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "cpython/pyreader.h"
#include "native/merge.h"
#include "native/natreuse.h"
#include "native/symbols.h"
#include "native/unwind.h"
#include "target/pause.h"
#include "util/err.h"

#define NATIVE_STOP_RING 65536 /* stop durations kept for the percentiles */

struct native {
    pid_t pid;
    struct unwinder uw;
    struct symbols syms;
    uint64_t *pcs; /* UNWIND_MAX_FRAMES lookup addresses, leaf first */
    const struct native_sym **nat;
    struct natreuse reuse; /* threads not stopped again while they have not run */

    /* Counters since native_open. */
    uint64_t samples;     /* native_sample_thread calls */
    uint64_t merged;      /* stacks merged exactly */
    uint64_t mismatches;  /* eval calls and Python entry frames did not pair up */
    uint64_t stop_failed; /* thread not stopped: gone, refused, or too slow */
    uint64_t py_failed;   /* Python stack unreadable while stopped (round's stack kept) */
    uint64_t unwind_ns;   /* CPU time of walk + symbols + merge, after the thread's release */
    uint64_t frames;      /* native frames unwound */
    uint64_t wait_ns;     /* total: from the interrupt to the stop seen */
    uint64_t read_ns;     /* total: reads while stopped, and the release */
    uint64_t *stop_ns;    /* ring of stop durations in ns */
    uint64_t *cpu_ns;     /* ring of unwind CPU times in ns */
    size_t ncpu;
    size_t nstop; /* durations recorded (the ring keeps the last NATIVE_STOP_RING) */
};

/* Native statistics for reports and benchmarks. */
struct native_stats {
    uint64_t samples, merged, mismatches, stop_failed, py_failed;
    uint64_t reused; /* stacks reused without a stop (natreuse.h) */
    uint64_t stop_median_ns, stop_p99_ns, stop_max_ns; /* how long one thread was stopped */
    uint64_t wait_mean_ns;   /* part of the stop: seizing, interrupting, seeing the stop */
    uint64_t read_mean_ns;   /* part of the stop: registers, stack, Python stack, detach */
    uint64_t unwind_mean_ns; /* CPU per sample after the release (walk, symbols, merge);
                              * the first samples also load symbol tables and CFI */
    uint64_t unwind_median_ns, unwind_p99_ns;
    double frames_mean; /* native frames per sample */
};

/* Prepares native sampling of process `pid`: reads its modules. ERR_PROC_GONE, ERR_PERM,
 * ERR_SYS with context. */
int native_open(struct native *n, pid_t pid, struct errbuf *eb) MUST_CHECK;
/* Releases everything (the symbols' strings too: copy what must outlive it). */
void native_close(struct native *n);
/* Thread slot `t` of r's current round (from pyreader_sample): stops that thread alone through
 * `pz` (pause_init'ed for the same pid; the thread is detached again before this returns, so
 * it is never left traced), re-reads its Python stack at that instant, copies its registers
 * and stack, releases it, unwinds, and fills `out` with the merged frames, root first.
 * r->threads[t] and r->frames are updated with the re-read Python stack (frames appended:
 * r->frames may move, other slots keep their frames). `pz` must not be one that
 * pause_stop_all() holds stopped (--blocking): the two do not mix. When crux launched the
 * target, pass the pauser made with its child pid: should the command exit while its main
 * thread is being stopped, its wait status lands in pz->child_exited / pz->child_status.
 * Blocks SIGCHLD in the calling thread while it waits for the stop, and may consume one.
 * Returns 0; or, with `out` holding the Python frames alone (out->native false, out->err
 * set): ERR_NOT_FOUND (tid unknown, 3.8-3.10 before it is inferred), ERR_PERM (ptrace
 * refused: context in `eb`), ERR_PROC_GONE (thread exited), ERR_TOO_LARGE (it did not stop
 * within PAUSE_ONE_WAIT_US), ERR_READ (registers or stack unreadable). */
int native_sample_thread(struct native *n, struct pauser *pz, struct pyreader *r, size_t t,
                         uint64_t now_ns, struct native_stack *out, struct errbuf *eb) MUST_CHECK;
/* Fills `st` with the counters and the stop-time percentiles so far. */
void native_get_stats(const struct native *n, struct native_stats *st);

#endif
