// SPDX-License-Identifier: MIT
// The profile data model: interned frames and stacks, per-stack counts, per-sample records
// and the run's facts. Knows nothing of CPython or /proc.
#ifndef CRUX_PROFILE_H
#define CRUX_PROFILE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "profile/gpuseries.h"
#include "profile/strtab.h"
#include "util/hmap.h"

enum frame_kind {
    FRAME_PYTHON = 0,  /* qualname (file:line) */
    FRAME_NATIVE = 1,  /* symbol (library) */
    FRAME_THREAD = 2,  /* thread (TID); name holds the thread name or "thread" */
    FRAME_PROCESS = 3, /* process (PID) */
    FRAME_MARKER = 4,  /* a synthetic frame: "[truncated]", "[unreadable]", "[idle]" ... */
};

/* One interned frame. `name`, `file` are strtab ids; line 0 = none. `col` is the 1-based start
 * column of the instruction a Python frame was at (3.11+; 0 = none): part of the frame's
 * identity until profile_drop_columns (docs/internals.md, "Columns"). */
struct pframe {
    uint32_t name;
    uint32_t file;
    int32_t line;
    uint32_t kind; /* enum frame_kind */
    uint32_t col;
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

/* What kind of time a sample is (docs/internals.md, "Time categories"). */
enum sample_cat {
    CAT_NONE = 0,   /* not determined (categories off, or no evidence) */
    CAT_PYTHON = 1, /* on CPU in the interpreter (libpython or the python executable) */
    CAT_NATIVE = 2, /* on CPU in other user code: extension modules, BLAS, libtorch */
    CAT_SYSTEM = 3, /* off CPU (blocked, sleeping, I/O, a lock) or on CPU in the kernel */
    CAT_GIL = 4,    /* blocked waiting to take the GIL */
    CAT_CPU = 5,    /* on CPU, python and native not separated (no perf events) */
    PCAT_N = 6,
};
extern const char *const sample_cat_names[PCAT_N];

/* Flags of one sample. */
enum {
    SAMPLE_GIL = 1u << 0,       /* the thread held the GIL */
    SAMPLE_TRUNCATED = 1u << 1, /* the stack was cut at the depth cap */
    /* record --load: no request was in flight when it was taken (the server had none to
     * serve); the verdict leaves such ticks out */
    SAMPLE_NO_REQUEST = 1u << 2,
    /* record --async: a suspended asyncio task's sample (weight = tasks with that stack), not
     * a thread's; shown without --idle, left out of the verdict's thread time */
    SAMPLE_TASK = 1u << 3,
};

/* What the kernel says a thread-sample was doing: where its CPU was, or what it waited for.
 * The verdict weighs this evidence above the modules and names of the frames. */
enum ev_kind {
    EV_NONE = 0,        /* no evidence (categories off, or nothing seen in the interval) */
    EV_CPU_PYTHON = 1,  /* on CPU in the interpreter (libpython, the python executable) */
    EV_CPU_MODEL = 2,   /* on CPU in numeric or model code: BLAS, LAPACK, OpenMP, torch, ... */
    EV_CPU_SERIAL = 3,  /* on CPU in a serializer: _pickle, _json, yaml, orjson, msgpack */
    EV_CPU_TOKEN = 4,   /* on CPU in a tokenizer library: tokenizers, tiktoken, sentencepiece */
    EV_CPU_NATIVE = 5,  /* on CPU in other native code: compression, crypto, codecs, sqlite */
    EV_CPU_KERNEL = 6,  /* on CPU in the kernel */
    EV_WAIT_NET = 7,    /* blocked on a socket (TCP, UDP or Unix: a peer, a local service) */
    EV_WAIT_IPC = 8,    /* blocked on another process: a pipe, a child's exit */
    EV_WAIT_FILE = 9,   /* blocked on a file or a disk */
    EV_WAIT_LOCK = 10,  /* blocked on a futex: a lock, a queue, a condition, an event */
    EV_WAIT_GIL = 11,   /* blocked taking the GIL */
    EV_WAIT_SLEEP = 12, /* sleeping on purpose: a sleep, a timer with nothing to wait for */
    EV_WAIT_IDLE = 13,  /* waiting for work from outside: accept(), a terminal */
    EV_WAIT_OTHER = 14, /* blocked in another system call */
    EV_N = 15,
};
extern const char *const ev_kind_names[EV_N];

/* One piece of evidence: its kind and a label ("libopenblasp-r0.3.21.so", "recv: TCP
 * socket"), interned. */
struct pevid {
    uint32_t kind;  /* enum ev_kind */
    uint32_t label; /* strtab id */
};

/* One sample of one thread. 32 bytes; kept only when profile->keep_samples. */
struct psample {
    uint64_t t_ns;  /* since the start of the recording */
    uint32_t stack; /* stack id */
    uint32_t tid;
    uint32_t pid;
    uint32_t stage; /* strtab id of the request stage it fell in; 0 = none */
    uint8_t state;  /* enum thread_state */
    uint8_t flags;  /* SAMPLE_* */
    uint8_t cat;    /* enum sample_cat */
    uint8_t pad;
    uint16_t weight; /* samples this record stands for (0 counts as 1) */
    uint16_t ev;     /* evidence id + 1 (profile.evs), 0 = none */
};

/* One point of the memory timeline: resident memory of one process. */
struct pmem {
    uint64_t t_ns;
    uint64_t rss; /* bytes */
    uint32_t pid;
    uint32_t pad;
};

/* What a span is; the values are the crux agent's record kinds (stages/span.h). */
enum pspan_kind {
    PSPAN_STAGE = 1,   /* one stage of a request */
    PSPAN_REQUEST = 2, /* a whole request (its stages fall inside it) */
    PSPAN_MARK = 3,    /* an instant: start = end */
};

/* One span the crux agent reported (docs/stages.md), kept for the timelines. 40 bytes. */
struct pspan {
    uint64_t start_ns, end_ns; /* since the start of the recording, like samples; end >= start.
                                * A span begun before the recording starts at 0. */
    uint64_t request;          /* request id within its process; 0 = none */
    uint32_t name;             /* strtab id */
    uint32_t tid, pid;         /* 0 = not known */
    uint32_t kind;             /* enum pspan_kind */
};

/* One request the load generator of `record --load` sent, kept for the timelines. 40 bytes. */
struct preq {
    uint64_t start_ns, end_ns; /* sent, and its response ended (or it failed), on the samples'
                                * clock; clamped to the recording: one sent before it starts
                                * at 0, one still in flight when it ended ends there */
    uint64_t bytes;            /* response body bytes received */
    int64_t ttft_ns;           /* streamed responses: send to the first token; -1 none */
    int32_t status;            /* HTTP status code; 0 when no status line came */
    uint32_t error;            /* strtab id of the failure ("timeout", "http", "cancelled"),
                                * 0 for a request that succeeded */
};

/* What an allocation event is (record --allocations, docs/memory.md). */
enum palloc_kind {
    PALLOC_ALLOC = 4, /* a sampled allocation (the agent's record kinds) */
    PALLOC_FREE = 5,  /* the free of a sampled allocation */
    PALLOC_COPY = 6,  /* a sampled memcpy/memmove: `bytes` copied (estimated), no free */
};

/* One allocation event of record --allocations: a sampled block allocated, or freed. 40 bytes.
 * `bytes` is what the sample stands for (the block's size over its probability of being
 * sampled; the size itself with --allocations=all), `count` the allocations it stands for. */
struct palloc {
    uint64_t t_ns;    /* since the start of the recording, like samples */
    uint64_t bytes;   /* estimated bytes */
    uint64_t born_ns; /* PALLOC_FREE: when the block was allocated (same clock); else t_ns */
    uint32_t stack;   /* the allocating Python stack; 0 = none */
    float count;      /* estimated allocations (1 / the probability of sampling it) */
    uint32_t kind;    /* enum palloc_kind */
    uint32_t tid;     /* the thread that allocated, freed or copied; 0 = not known */
};

/* One process seen during the recording. */
struct pproc {
    uint32_t pid, ppid;
    char *name;                 /* short command line ("python3 worker.py") */
    char *python_version;       /* NULL when not a (readable) Python process */
    uint64_t first_ns, last_ns; /* first and last sample time */
    uint64_t samples;
    uint64_t peak_rss;
    int exit_status; /* -1 unknown */
};

/* The name a sampled thread went by (the last one, when it changed during the recording): its
 * Python name where the interpreter gave one, else its OS name. */
struct pthreadname {
    uint32_t pid, tid;
    uint32_t name; /* strtab id */
};

/* Facts about the run, all owned by the profile (set with profile_set_meta). */
struct pmeta {
    char *command;        /* launched command line or "--pid N" */
    char *python_version; /* "3.12.1" */
    uint32_t pid;
    double rate_hz;       /* requested rate */
    uint64_t duration_ns; /* wall time recorded */
    int killed_signal;    /* the launched target died of this signal; 0 = it did not */
    int64_t oom_kills; /* killed by SIGKILL: OOM kills the kernel counted meanwhile (-1 unknown) */
    uint64_t epoch_ns; /* wall-clock time recording began, ns since the epoch; 0 unknown */
    uint64_t ticks;    /* sampling rounds attempted */
    uint64_t errors;   /* thread-samples dropped as unreadable */
    bool categories;   /* samples carry enum sample_cat */
    char *categories_note; /* how categories were determined, or why only partly */
    bool native;           /* stacks include native frames */
    char *load_text;       /* record --load: the load generator's summary (crux load's text) */
    char *stages_text;     /* per-stage latencies from the crux agent or OpenTelemetry spans */
    char *load_json;       /* record --load: the load generator's result as crux load --json */
    char *fingerprint;     /* the environment fingerprint, JSON (store/fingerprint.h) */
};

struct profile {
    struct strtab strs;
    struct pframe *frames;
    uint32_t nframes, capframes;
    struct hmap frame_index; /* hash of frame -> id + 1 (with collision chain via probing) */
    struct pnode *nodes;
    uint32_t nnodes, capnodes;
    struct hmap node_index; /* (parent << 32 | frame) -> id */
    uint64_t *counts;       /* stack id -> samples ending exactly there; capnodes long. With
                             * hide_idle, samples of idle threads are kept (for the verdict)
                             * but not counted here: the views show what ran. */
    uint64_t *cat_counts;   /* stack id * PCAT_N + cat -> samples; capnodes * PCAT_N long */
    int64_t *mem_growth;    /* stack id -> resident bytes gained while it ran (may be < 0) */
    uint64_t total;         /* sum of counts */
    bool keep_samples;
    bool hide_idle;      /* idle samples are left out of counts (record without --idle) */
    bool samples_capped; /* max_samples was reached: some samples were only counted */
    bool columns;        /* some frame has a column (cleared by profile_drop_columns) */
    struct pevid *evs;   /* evidence table; psample.ev - 1 indexes it */
    uint32_t nevs, capevs;
    struct hmap ev_index; /* (kind, label) -> id + 1 */
    struct psample *samples;
    size_t nsamples, capsamples;
    size_t max_samples; /* cap for kept samples; later ones are only counted */
    struct pmem *mem;   /* memory timeline, in time order per process */
    size_t nmem, capmem;
    struct pproc *procs;
    size_t nprocs, capprocs;
    struct pspan *spans; /* the agent's spans, in the order added */
    size_t nspans, capspans;
    uint64_t spans_dropped; /* spans past PROFILE_MAX_SPANS, not kept */
    struct preq *reqs;      /* record --load: its requests, in the order they ended */
    size_t nreqs, capreqs;
    uint64_t reqs_dropped; /* requests past PROFILE_MAX_REQS, not kept */
    struct palloc *allocs; /* record --allocations: events in the order received */
    size_t nallocs, capallocs;
    uint64_t allocs_dropped;     /* events past PROFILE_MAX_ALLOCS or lost by the ring */
    uint64_t alloc_sample_bytes; /* mean bytes between samples; 0 = every allocation */
    uint64_t copy_sample_bytes;  /* mean bytes copied between copy samples; 0 = copies off */
    bool allocations;            /* allocations were recorded (the views show them) */
    struct pthreadname *tnames;  /* in order of first sight */
    size_t ntnames, captnames;
    struct hmap tname_index; /* pid << 32 | tid -> index + 1 */
    struct pgpu gpu;         /* what the GPUs did (gpu.on false: no GPU data) */
    struct pmeta meta;
};

#define PROFILE_MAX_SAMPLES_DEFAULT ((size_t)50 * 1000 * 1000)
#define PROFILE_MAX_SPANS ((size_t)1000 * 1000)       /* 40 MB of spans */
#define PROFILE_MAX_REQS ((size_t)1000 * 1000)        /* 40 MB of load requests */
#define PROFILE_MAX_ALLOCS ((size_t)16 * 1000 * 1000) /* 512 MB of allocation events */

/* Initializes an empty profile in caller storage. */
void profile_init(struct profile *p);
/* Releases everything, metadata included. */
void profile_fini(struct profile *p);
/* Empties the profile as profile_init would but keeps its metadata and settings (keep_samples,
 * hide_idle, max_samples): every string, frame, stack, sample, process and span id taken from it
 * before is invalid after. crux serve calls it to bound memory over days. */
void profile_clear(struct profile *p);

/* Interns a string, returns its id. */
uint32_t profile_str(struct profile *p, const char *s, size_t n);
/* Interns a frame without a column, returns its id. */
uint32_t profile_frame(struct profile *p, uint32_t name, uint32_t file, int32_t line,
                       enum frame_kind kind);
/* Interns a frame at 1-based column `col` (0 = none), returns its id. Frames that differ only
 * in their column are different frames. */
uint32_t profile_frame_col(struct profile *p, uint32_t name, uint32_t file, int32_t line,
                           uint32_t col, enum frame_kind kind);
/* Merges, in place, the frames that differ only in their column, and with them the stacks
 * that become equal (their counts, categories, growth summed; kept samples moved to the
 * merged stack): the profile then keys frames by line, as every output but speedscope and the
 * lines view shows them. Frame and stack ids change (in first-seen order, so a profile without
 * columns is left as it is). Not while a sampler is adding to `p`. */
void profile_drop_columns(struct profile *p);
/* Returns the id of the stack `parent` extended by `frame` at the leaf. */
uint32_t profile_push(struct profile *p, uint32_t parent, uint32_t frame);
/* Interns a whole stack given root first (frames[0] = root); returns its id. */
uint32_t profile_stack(struct profile *p, const uint32_t *frames, size_t n);
/* Counts `s->weight` samples of `s->stack` (per category too); records the sample when
 * keep_samples. */
void profile_add(struct profile *p, const struct psample *s);

/* The id + 1 of the evidence (kind, label), interned (for psample.ev); 0 when the table is
 * full (65535 distinct pieces). */
uint16_t profile_evidence(struct profile *p, enum ev_kind kind, const char *label);
/* Whether sample `s` is of a thread that was idle: not running, not waiting for the GIL. */
static inline bool psample_idle(const struct psample *s)
{
    return s->state == TSTATE_IDLE && s->cat != CAT_GIL && !(s->flags & SAMPLE_TASK);
}

/* Attributes `bytes` of resident-memory change to `stack`. */
void profile_add_growth(struct profile *p, uint32_t stack, int64_t bytes);

/* Appends a point to the memory timeline. */
void profile_add_mem(struct profile *p, uint64_t t_ns, uint32_t pid, uint64_t rss);

/* Appends a span (its name interned by the caller); past PROFILE_MAX_SPANS it is only counted
 * in spans_dropped. */
void profile_add_span(struct profile *p, const struct pspan *s);

/* Appends an allocation event; past PROFILE_MAX_ALLOCS it is only counted in allocs_dropped. */
void profile_add_alloc(struct profile *p, const struct palloc *a);

/* Appends a load request (its error name interned by the caller); past PROFILE_MAX_REQS it is
 * only counted in reqs_dropped. */
void profile_add_req(struct profile *p, const struct preq *r);

/* The process record for `pid`, created (zeroed, exit_status -1) when new. */
struct pproc *profile_proc(struct profile *p, uint32_t pid);

/* Records that thread `tid` of `pid` goes by `name` (`n` bytes) from now on. */
void profile_thread_name(struct profile *p, uint32_t pid, uint32_t tid, const char *name, size_t n);
/* The name thread `tid` of `pid` last went by, or NULL when none was recorded. */
const char *profile_thread_name_of(const struct profile *p, uint32_t pid, uint32_t tid);
/* The same as a string id, 0 when none was recorded. */
uint32_t profile_thread_name_id(const struct profile *p, uint32_t pid, uint32_t tid);

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
