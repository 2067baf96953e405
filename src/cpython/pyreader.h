// SPDX-License-Identifier: MIT
// One sampling round over a CPython process: every interpreter and thread, whether it holds
// the GIL, and its Python stack (code object and line per frame), read without stopping it.
#ifndef CRUX_PYREADER_H
#define CRUX_PYREADER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "cpython/codecache.h"
#include "cpython/pyruntime.h"
#include "target/mem.h"
#include "util/err.h"
#include "util/hmap.h"

/* One Python frame of a sampled stack. */
struct pyframe {
    uint32_t code; /* index of the code entry in the reader's cache, valid for this round */
    int32_t line;  /* line executing (leaf) or calling (callers); -1 when none */
    bool entry;    /* the first frame run by one C-level call of the eval loop (each frame on
                    * 3.8-3.10; is_entry on 3.11; the frame above a C-stack shim on 3.12+).
                    * False also when the frame that started the call is hidden (prologue). */
    uint32_t col;  /* 1-based start column of that instruction (3.11+); 0 when unknown */
    uint32_t loc;  /* the code entry's run that gave line and col (struct pyloc) */
};

struct rootref; /* pyreader.c: a thread's outermost frame in a round */

/* One thread seen in a round. */
struct pythread {
    uint64_t tstate; /* PyThreadState address */
    uint64_t ts_id;  /* tstate->id: with the address, identifies the thread over time */
    uint64_t interp; /* PyInterpreterState address */
    int64_t interp_id;
    uint64_t pthread_id; /* pthread_self() of the thread */
    pid_t tid;           /* kernel thread id, 0 when unknown */
    bool gil;            /* held the GIL when read */
    int err;             /* 0, or why the stack was dropped (ERR_CORRUPT, ERR_READ, ...) */
    bool truncated;      /* deeper than max_depth: frames nearest the leaf kept */
    uint32_t first;      /* index of the leaf frame in reader.frames */
    uint32_t nframes;    /* frames, leaf first */
};

#define PYREADER_MAX_INTERPS 64
#define PYREADER_MAX_THREADS 4096
#define PYREADER_CHUNK_MAX ((size_t)1 << 20) /* bytes of the current data-stack chunk copied */
#define PYREADER_CFRAMES 4                   /* _PyCFrame addresses remembered per thread */
#define PYREADER_CFRAME_IDLE 32 /* predictions a cframe other than the newest is kept unused */
#define PYREADER_EXTRA 32       /* frames outside the data stack read with the chunk */
#define PYREADER_OLD_CHUNKS 64  /* older data-stack chunks copied with the current one */
#define PYREADER_OLD_MAX ((size_t)8 << 20) /* bytes of older chunks copied per thread */
#define PYREADER_PREDICT_SLACK 1024        /* bytes copied past the expected top, at least */
#define PYREADER_LISTS_NS 1000000ULL       /* how old the interpreter and thread lists may get */

/* 3.11+: one thread's data stack as copied in a round, and what to copy next time. A round
 * copies each thread's stack in one group of spans, right after its thread state; the walk
 * proves the copy consistent or asks for another (stack311.c explains how). */
struct pystack {
    /* What the group copies, predicted from the previous attempt or round. */
    uint64_t chunk;                     /* current chunk; 0: unknown */
    size_t len;                         /* bytes of it from its start (0: none) */
    size_t high;                        /* the deepest top of late rounds, from the start */
    uint64_t cframe[PYREADER_CFRAMES];  /* 3.11, 3.12: _PyCFrame addresses, newest first */
    uint32_t cf_idle[PYREADER_CFRAMES]; /* predictions since each was the thread's cframe */
    unsigned ncframe;
    uint64_t old[PYREADER_OLD_CHUNKS]; /* older chunks, newest first */
    size_t old_len[PYREADER_OLD_CHUNKS], old_off[PYREADER_OLD_CHUNKS];
    unsigned nold;
    uint64_t extra[PYREADER_EXTRA]; /* frames outside the data stack */
    unsigned nextra;

    /* The group's copies (buffers allocated on first use, kept across rounds). */
    uint8_t *buf;     /* the current chunk: PYREADER_CHUNK_MAX bytes */
    uint8_t *buf2;    /* its second copy, taken right after (stack311.c, "Two copies") */
    uint8_t *old_buf; /* the older chunks, one after another */
    size_t old_cap;
    uint8_t *extra_buf; /* PYREADER_EXTRA frame headers of PY_IFRAME_MAX bytes */
    uint8_t extra_ok[PYREADER_EXTRA];
    bool extra_near[PYREADER_EXTRA];   /* on a cframe's page: copied right after the cframes */
    uint8_t *state;                    /* thread-state bytes the group reads first when alone */
    uint64_t cf_cur[PYREADER_CFRAMES]; /* each cframe's current_frame, read last */
    size_t span0; /* the group's first span in its batch; SIZE_MAX: not in it */
    bool alone;   /* the group reads the thread state before its copies itself */

    /* What the group proved (set by the check, used by the walk). */
    uint64_t cur, top; /* the thread's current frame and data-stack top */
    bool copied;       /* [chunk, top) is in buf */
    bool old_copied;   /* every older chunk of the group was read whole */
    bool state_ok;     /* `state` holds the thread state this attempt read */

    /* Collected by the walk for the next attempt. */
    uint64_t seen[PYREADER_EXTRA]; /* frames met outside the copied data stack */
    unsigned nseen;
    bool seen_overflow; /* more than PYREADER_EXTRA of them */
    bool seen_all;      /* the walk went to the end: `seen` is the whole list */
    bool missed;        /* the walk read frames the group did not copy */
    bool need_old;      /* the stack goes on in an older chunk the group did not copy */
    size_t want_len;    /* bytes of the current chunk its frames reach (0: up to top) */
};

#define PYREADER_CHAIN38 192 /* 3.8-3.10: frames of a stack (leaf side) a walk records */
#define PYREADER_PRED38 256  /* 3.8-3.10: frames a thread's group copies */
#define PYREADER_AGE38 64    /* 3.8-3.10: walks after which a frame not met is not copied */

/* 3.8-3.10: one thread's frame objects as copied in a round, and what to copy next time. A
 * round copies the predicted frames twice right after the thread state, each pass in
 * address order (so that frames sharing a page are one range), with the callers not
 * predicted between the passes; the walk accepts a stack whose every link was proved so
 * (stack38.c). The prediction is the frames the thread's recent walks met, each with its
 * depth and caller, deepest first. */
struct pystack38 {
    uint64_t addr[PYREADER_PRED38]; /* what the group copies, deepest first */
    uint16_t depth[PYREADER_PRED38];
    uint32_t stamp[PYREADER_PRED38]; /* the walk that last met it */
    unsigned n;
    uint32_t walks;
    uint64_t parent[PYREADER_PRED38]; /* each one's caller when last met (0: outermost) */
    /* The passes, set with the prediction. Copies are numbered in the group's order: pass A
     * by address rank, the extra callers, pass B by address rank. */
    uint16_t order[PYREADER_PRED38];  /* the prediction at each place in address order */
    uint16_t rank[PYREADER_PRED38];   /* each prediction's place in address order */
    uint16_t caller[PYREADER_PRED38]; /* its caller's copy between its two; UINT16_MAX: none */
    uint64_t extra[PYREADER_PRED38];  /* callers not predicted, in address order */
    unsigned nextra;
    uint8_t *copy;               /* frame headers, by copy number */
    size_t copy_cap;             /* frame headers the buffer holds */
    uint8_t ok[PYREADER_PRED38]; /* its three copies and its caller's were read */
    size_t span0;                /* the group's first span in its batch; SIZE_MAX: none */
    bool alone;                  /* the group reads the thread state itself first */
    uint64_t mid;                /* the thread's current frame, read first */

    uint64_t chain[PYREADER_CHAIN38]; /* the frames the last walk met, leaf first */
    unsigned nchain;
    unsigned walked;    /* frames the last walk met (past the chain too) */
    bool complete;      /* and it reached the outermost frame */
    uint64_t back;      /* where it stopped short: the last frame's f_back as read */
    uint64_t tail_back; /* the f_back of the chain's last frame as read */
};

#define PYREADER_FUNCS 1024 /* 3.11, 3.12: function object -> code object, direct-mapped */

struct funcref {
    uint64_t func, code;
};

struct pyreader {
    const struct pyruntime *rt;
    struct codecache codes;
    uint32_t max_depth;

    /* Structure cached from the previous round, re-checked every round in one batched read. */
    uint64_t interps[PYREADER_MAX_INTERPS];
    uint64_t interp_fields[PYREADER_MAX_INTERPS][4]; /* next, tstate head, id, gil pointer */
    size_t ninterps;
    bool cache_valid;
    uint64_t lists_ns; /* when the runtime and interpreters were last read and matched */
    size_t ts_read;    /* bytes of PyThreadState read per thread */
    uint8_t *blobs;    /* ts_read bytes per thread */
    uint64_t *tstates; /* per thread: address */
    size_t ncached;

    struct pythread *threads; /* this round's threads */
    size_t nthreads;
    struct pyframe *frames; /* this round's frames */
    size_t nframes, capframes;
    struct pystack *stk;         /* 3.11+: per thread slot */
    struct pystack38 *stk38;     /* 3.8-3.10: per thread slot */
    size_t slots_used;           /* stk or stk38 slots ever given a thread (the rest: zeroes) */
    struct funcref *funcs;       /* 3.11, 3.12: what each function called lately runs */
    size_t fo_read;              /* 3.8-3.10: bytes of a frame object a group copies */
    size_t state_off, state_len; /* thread-state bytes the bracket reads (3.11+) */

    uint64_t gil_holder[PYREADER_MAX_INTERPS]; /* per interpreter, this round */
    uint64_t pred_gil[PYREADER_MAX_INTERPS];   /* GIL address read in the first batch */
    int32_t gil_locked[PYREADER_MAX_INTERPS];
    uint64_t gil_last[PYREADER_MAX_INTERPS];
    size_t gil_span[PYREADER_MAX_INTERPS];
    bool gil_ok[PYREADER_MAX_INTERPS];
    struct mem_span *spans; /* batch scratch, nspans long */
    uint8_t *span_ok;
    size_t nspans;
    uint64_t tstate_current; /* <= 3.11 */
    bool finalizing;

    struct hmap tids;        /* (tstate ^ id) -> tid, for 3.8-3.10 */
    struct hmap listed;      /* slow_walk: interpreter and thread states met so far */
    int32_t pthread_tid_off; /* offset of the tid in glibc's struct pthread; -1 unknown */

    uint64_t *seen; /* cycle check: frame addresses of the current walk */
    uint32_t *seen_gen;
    uint32_t seen_mask, gen;

    uint64_t *w_code; /* 3.8-3.10 walk: code pointers and f_lasti per frame, max_depth long */
    int32_t *w_lasti;
    uint64_t *w_addr;      /* and frame addresses */
    uint64_t *frame_addr;  /* 3.8-3.10: address of each frame of this round (capframes long) */
    struct rootref *roots; /* 3.8-3.10: scratch for the shared-root check, on first use */

    /* 3.8-3.10 pyreader_reread_thread: the thread's frames at the round's addresses, read in
     * one batch; the walk takes a frame from here when it reaches one of these addresses. */
    uint64_t *pre_addr;
    uint8_t *pre_buf, *pre_ok;
    size_t pre_n, pre_cur;

    uint64_t rounds, slow_walks, dropped, retries;
    /* 3.11+ groups read again, by why: the copy did not cover what the thread state showed
     * (a prediction missed), the frames did not tile the data stack or failed another check
     * (torn), frames outside the copy were needed; and stacks cut to the frame that was the
     * leaf when the data stack was copied (trimmed: the thread had returned since), or
     * lifted to the frame the copy shows running above the one the thread state named
     * (climbed: the thread had called deeper, or changed eval loops, since), after going
     * down from frames the copy shows left over (descended). */
    uint64_t missed, torn, needed, trimmed, climbed, descended;
    /* 3.8-3.10 groups read again: a caller read differently the second time; the batch
     * took too long to be trusted */
    uint64_t moved, slow;
    bool batch_slow;      /* the last batched read took too long (see stack_readv) */
    bool round_slow;      /* the round's structure batch did */
    uint64_t unbracketed; /* stacks accepted with frames read outside the bracket */
    uint64_t gil_torn;    /* rounds where two threads of one interpreter read as holding the GIL */
    uint64_t err_counts[16]; /* per -ERR_* code: thread stacks dropped */
};

/* Initializes a reader for the runtime `rt` (which must outlive it); `max_depth` caps the
 * frames kept per stack. */
void pyreader_init(struct pyreader *r, const struct pyruntime *rt, uint32_t max_depth);
/* Releases everything. */
void pyreader_fini(struct pyreader *r);
/* Reads every thread's stack. Fills r->threads (r->nthreads may be 0 while the interpreter
 * starts or after it began finalizing). Per-thread failures are in pythread.err, not the
 * return value; returns ERR_PROC_GONE or ERR_PERM only when the process cannot be read. */
int pyreader_sample(struct pyreader *r, uint64_t now_ns, struct errbuf *eb) MUST_CHECK;
/* Reads thread slot `t` of the current round again, alone (its state, current frame and data
 * stack), and walks it: meant for a thread that is stopped now, so that its stack matches the
 * instant it was stopped. The new frames are appended to r->frames and the slot's first,
 * nframes, truncated and err are replaced (other slots are untouched). Returns the slot's err:
 * 0, or why the stack could not be read (ERR_PROC_GONE when the process exited). */
int pyreader_reread_thread(struct pyreader *r, size_t t, uint64_t now_ns) MUST_CHECK;
/* The code entry of a frame of the current round. */
static inline const struct pycode *pyreader_code(const struct pyreader *r, const struct pyframe *f)
{
    return &r->codes.v[f->code];
}

#endif
