// SPDX-License-Identifier: MIT
// The threads of a recording as timeline tracks: one per (process, thread) of the kept samples
// or of the agent's spans, with its name and its samples in time order. Shared by the per-thread
// formats (speedscope's per-thread profiles, the Firefox Profiler's threads, the Chrome trace's
// thread timelines).
#ifndef CRUX_TRACKS_H
#define CRUX_TRACKS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "profile/profile.h"

/* One thread of one process. */
struct track {
    uint32_t pid, tid;
    /* strtab id of the thread's name, 0 when the recording does not know it. This is the one
     * place the formats take a thread's name from: the recording's thread names (profile
     * thread table: the Python name, else the OS name), else the name of the thread frame its
     * stacks start with (record --threads). */
    uint32_t name;
    size_t first, n; /* its samples: tracks.order[first .. first + n), in time order; a
                      * thread seen only in spans has none */
};

struct tracks {
    struct track *v; /* ordered: the recorded process first, then by pid; in a process its
                      * main thread (tid == pid) first, then by tid */
    size_t n;
    uint32_t *order; /* indexes into profile.samples, grouped by track, each group by time */
    size_t norder;
    bool by_process;   /* several processes, or stacks rooted at a process frame */
    double interval_s; /* seconds one sample (of weight 1) stands for */
};

/* Fills `t` (caller storage) from the kept samples of `p` that the views count (idle ones are
 * left out when p->hide_idle, as are samples of the empty stack) and from its spans (a thread
 * whose only trace is a span gets a track without samples: a server thread that waited the
 * whole time). A profile with neither gives no tracks. Release with tracks_fini. */
void tracks_build(const struct profile *p, struct tracks *t);
/* Releases the arrays. */
void tracks_fini(struct tracks *t);

/* The index in t->v of the track of span `s` (a span of an unknown thread goes to its
 * process's main thread, one of an unknown process to the recorded process), or SIZE_MAX. */
size_t tracks_of_span(const struct tracks *t, const struct profile *p, const struct pspan *s);

/* How many of the `n` frames (root first) at the start of a stack name its process and thread,
 * i.e. the track itself: per-thread formats leave them out. */
size_t tracks_root_frames(const struct profile *p, const uint32_t *frames, size_t n);

/* The deepest stack of `p` (frames), for sizing frame buffers. */
uint32_t tracks_max_depth(const struct profile *p);

/* Seconds one sample stands for: the recording's mean tick interval (duration / ticks), else
 * 1 / the requested rate, else 0.01. */
double tracks_interval_s(const struct profile *p);

/* The short command line of process `pid` ("python3 app.py"), or NULL when not known. The
 * string belongs to the profile. */
const char *tracks_process_name(const struct profile *p, uint32_t pid);

#endif
