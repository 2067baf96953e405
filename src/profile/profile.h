// SPDX-License-Identifier: MIT
// The profile data model: interned frames and stacks, per-stack counts, per-sample records
// and the run's facts. Knows nothing of CPython or /proc.
#ifndef CRUX_PROFILE_H
#define CRUX_PROFILE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "profile/strtab.h"
#include "util/hmap.h"

enum frame_kind {
    FRAME_PYTHON = 0,  /* qualname (file:line) */
    FRAME_NATIVE = 1,  /* symbol (library) */
    FRAME_THREAD = 2,  /* thread (TID); name holds the thread name or "thread" */
    FRAME_PROCESS = 3, /* process (PID) */
    FRAME_MARKER = 4,  /* a synthetic frame: "[truncated]", "[unreadable]", "[idle]" ... */
};

/* One interned frame. `name`, `file` are strtab ids; line 0 = none. */
struct pframe {
    uint32_t name;
    uint32_t file;
    int32_t line;
    uint32_t kind; /* enum frame_kind */
};

/* Node of the stack trie: stack id 0 is the empty stack; every other id is
 * (parent stack, leaf frame). */
struct pnode {
    uint32_t parent;
    uint32_t frame;
    uint32_t depth; /* number of frames, root included */
};

/* What a sampled thread was doing. */
enum thread_state {
    TSTATE_UNKNOWN = 0,
    TSTATE_RUNNING = 1, /* on CPU or runnable (/proc state R) */
    TSTATE_IDLE = 2,    /* sleeping or blocked (S, D, ...) */
};

/* Flags of one sample. */
enum {
    SAMPLE_GIL = 1u << 0,       /* the thread held the GIL */
    SAMPLE_TRUNCATED = 1u << 1, /* the stack was cut at the depth cap */
};

/* One sample of one thread. 24 bytes; kept only when profile->keep_samples. */
struct psample {
    uint64_t t_ns;  /* since the start of the recording */
    uint32_t stack; /* stack id */
    uint32_t tid;
    uint32_t pid;
    uint8_t state; /* enum thread_state */
    uint8_t flags; /* SAMPLE_* */
    uint16_t weight;
};

/* Facts about the run, all owned by the profile (set with profile_set_meta). */
struct pmeta {
    char *command;        /* launched command line or "--pid N" */
    char *python_version; /* "3.12.1" */
    uint32_t pid;
    double rate_hz;       /* requested rate */
    uint64_t duration_ns; /* wall time recorded */
    uint64_t ticks;       /* sampling rounds attempted */
    uint64_t errors;      /* thread-samples dropped as unreadable */
};

struct profile {
    struct strtab strs;
    struct pframe *frames;
    uint32_t nframes, capframes;
    struct hmap frame_index; /* hash of frame -> id + 1 (with collision chain via probing) */
    struct pnode *nodes;
    uint32_t nnodes, capnodes;
    struct hmap node_index; /* (parent << 32 | frame) -> id */
    uint64_t *counts;       /* stack id -> samples ending exactly there; capnodes long */
    uint64_t total;         /* sum of counts */
    bool keep_samples;
    struct psample *samples;
    size_t nsamples, capsamples;
    size_t max_samples; /* cap for kept samples; later ones are only counted */
    struct pmeta meta;
};

#define PROFILE_MAX_SAMPLES_DEFAULT ((size_t)50 * 1000 * 1000)

/* Initializes an empty profile in caller storage. */
void profile_init(struct profile *p);
/* Releases everything, metadata included. */
void profile_fini(struct profile *p);

/* Interns a string, returns its id. */
uint32_t profile_str(struct profile *p, const char *s, size_t n);
/* Interns a frame, returns its id. */
uint32_t profile_frame(struct profile *p, uint32_t name, uint32_t file, int32_t line,
                       enum frame_kind kind);
/* Returns the id of the stack `parent` extended by `frame` at the leaf. */
uint32_t profile_push(struct profile *p, uint32_t parent, uint32_t frame);
/* Interns a whole stack given root first (frames[0] = root); returns its id. */
uint32_t profile_stack(struct profile *p, const uint32_t *frames, size_t n);
/* Counts `weight` samples of `stack`; records the sample when keep_samples. */
void profile_add(struct profile *p, uint32_t stack, uint16_t weight, uint64_t t_ns, uint32_t pid,
                 uint32_t tid, enum thread_state state, uint8_t flags);

/* Copies the frames of `stack` into `out`, root first; returns the depth (may exceed `max`,
 * in which case only the `max` frames nearest the root are written). */
size_t profile_stack_frames(const struct profile *p, uint32_t stack, uint32_t *out, size_t max);

static inline const struct pframe *profile_frame_at(const struct profile *p, uint32_t id)
{
    return &p->frames[id];
}
static inline const char *profile_string(const struct profile *p, uint32_t id)
{
    return strtab_get(&p->strs, id);
}

/* Replaces a metadata string field with a copy of `s` (NULL clears it). */
void profile_set_str(char **field, const char *s);

#endif
