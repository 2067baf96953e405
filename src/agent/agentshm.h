// SPDX-License-Identifier: MIT
// The stage ring's shared-memory layout, written by the agent (crux._agent, in the target) and
// read by crux (src/stages/ring.c). docs/formats.md, "Stage ring", describes it in words.
#ifndef CRUX_AGENTSHM_H
#define CRUX_AGENTSHM_H

#include <stdint.h>

/* The file: /dev/shm/crux-agent-PID, or the path in $CRUX_AGENT_PATH. */
#define AGENTSHM_DIR "/dev/shm"
#define AGENTSHM_PREFIX "crux-agent-"

#define AGENTSHM_MAGIC "CRUXRING" /* 8 bytes, no NUL in the file */
#define AGENTSHM_VERSION 1u

/* Sizes of version 1. Readers accept only these. */
#define AGENTSHM_HDR_SIZE 4096u
#define AGENTSHM_NAME_SIZE 64u
#define AGENTSHM_NAME_MAX 56u /* bytes of text in one name entry */
#define AGENTSHM_NAMES 512u
#define AGENTSHM_SLOTS 512u
#define AGENTSHM_RECS_DEFAULT 16384u
#define AGENTSHM_RECS_MIN 64u
#define AGENTSHM_RECS_MAX (1u << 22)

/* A reader whose heartbeat is older than this is gone (killed before it could clear
 * `attached`); the writer then clears `attached` itself. $CRUX_AGENT_READER_TIMEOUT_MS
 * overrides it. */
#define AGENTSHM_READER_TIMEOUT_NS 5000000000ull
/* The writer looks at the heartbeat once every this many records. */
#define AGENTSHM_HEARTBEAT_EVERY 1024u

/* Record kinds. */
enum {
    AGENTSHM_STAGE = 1,   /* a stage of a request: [start, end) */
    AGENTSHM_REQUEST = 2, /* a whole request: [start, end) */
    AGENTSHM_MARK = 3,    /* an instant: start == end */
};

/* Name entry states. */
enum {
    AGENTSHM_NAME_EMPTY = 0,
    AGENTSHM_NAME_READY = 2,
};

/* The header, at offset 0 (AGENTSHM_HDR_SIZE bytes reserved). All integers little-endian
 * (the host's). The writer fills every field, then `magic` last. */
struct agentshm_hdr {
    char magic[8];
    uint32_t version;
    uint32_t hdr_size;   /* AGENTSHM_HDR_SIZE */
    uint32_t rec_size;   /* sizeof(struct agentshm_rec) */
    uint32_t rec_count;  /* power of two */
    uint32_t name_size;  /* AGENTSHM_NAME_SIZE */
    uint32_t name_count; /* AGENTSHM_NAMES */
    uint32_t slot_size;  /* sizeof(struct agentshm_slot) */
    uint32_t slot_count; /* AGENTSHM_SLOTS */
    uint64_t names_off;  /* byte offsets of the three tables */
    uint64_t slots_off;
    uint64_t recs_off;
    uint64_t total_size; /* bytes of the whole file */
    uint32_t pid;        /* the writer's process id */
    uint32_t attached;   /* set to non-zero by a reader: the writer records only then */
    uint64_t created_ns; /* CLOCK_MONOTONIC when the file was made */
    uint64_t reader_ns;  /* CLOCK_MONOTONIC of the reader's last read: its heartbeat */
    uint64_t pad0[3];
    uint64_t write_idx;  /* next record index (monotonic; slot = index % rec_count) */
    uint32_t names_used; /* name entries claimed; entry 0 is reserved (no stage) */
    uint32_t pad1;
    uint64_t lost;    /* records a reader saw overwritten (written by the reader) */
    uint64_t dropped; /* records the writer could not make (a name table full) */
    /* The allocation section (docs/memory.md), added within version 1: a file without one has
     * these fields zero (the header's reserved bytes), and readers that predate it ignore
     * them. Present when arecs_off != 0. */
    uint32_t arec_size;  /* sizeof(struct agentshm_arec) */
    uint32_t arec_count; /* power of two */
    uint64_t arecs_off;  /* byte offsets of the allocation records, codes and stacks */
    uint64_t codes_off;
    uint64_t stacks_off;
    uint32_t code_size;       /* sizeof(struct agentshm_code) */
    uint32_t code_count;      /* AGENTSHM_CODES */
    uint32_t stack_size;      /* sizeof(struct agentshm_stack) */
    uint32_t stack_count;     /* AGENTSHM_STACKS */
    uint64_t alloc_write_idx; /* next allocation record index (monotonic) */
    uint32_t codes_used;      /* code entries claimed; entry 0 is reserved (unknown) */
    uint32_t stacks_used;     /* stack entries claimed; entry 0 is the empty stack */
    uint64_t sample_bytes;    /* mean bytes allocated between samples; 0 = every allocation */
    uint64_t alloc_dropped;   /* samples not made: the live table or a stack table full */
    /* Added within version 1 (zero in files that predate it): copy volume. */
    uint64_t copy_sample_bytes; /* mean bytes copied between AGENTSHM_COPY samples; 0 = off */
};

/* ---- the allocation section ------------------------------------------------------------- */

#define AGENTSHM_AREC_DEFAULT (1u << 16)
#define AGENTSHM_AREC_ALL (1u << 20) /* --allocations=all: every allocation is a record */
#define AGENTSHM_CODES 16384u
#define AGENTSHM_CODE_TEXT 248u /* file name then function name, no NULs */
#define AGENTSHM_STACKS 32768u
#define AGENTSHM_STACK_DEPTH 32u /* innermost frames kept; deeper stacks are cut at the root */

/* Allocation record kinds (agentshm_arec.kind). */
enum {
    AGENTSHM_ALLOC = 4, /* a sampled allocation: addr, size, weight, t_ns, stack */
    AGENTSHM_FREE = 5,  /* its free: the allocation's size, weight, stack and born_ns */
    AGENTSHM_COPY = 6,  /* a sampled memcpy/memmove: size copied, weight, t_ns, stack; addr 0,
                         * domain AGENTSHM_COPY_* */
};

/* Which function copied (agentshm_arec.domain of an AGENTSHM_COPY record). */
enum {
    AGENTSHM_COPY_MEMCPY = 0,  /* memcpy, __memcpy_chk */
    AGENTSHM_COPY_MEMMOVE = 1, /* memmove, __memmove_chk */
};

/* Which allocator an allocation went through (agentshm_arec.domain). */
enum {
    AGENTSHM_DOM_RAW = 0,    /* PyMem_RawMalloc */
    AGENTSHM_DOM_MEM = 1,    /* PyMem_Malloc */
    AGENTSHM_DOM_OBJ = 2,    /* PyObject_Malloc */
    AGENTSHM_DOM_NATIVE = 3, /* malloc and friends from native code (the preload shim) */
    AGENTSHM_DOM_MMAP = 4,   /* an anonymous mmap from outside any allocator (the shim) */
};

/* One code object: text holds file_len bytes of co_filename then name_len bytes of the
 * qualified name (co_name before 3.11). Written once, then state. */
struct agentshm_code {
    uint32_t state; /* AGENTSHM_NAME_* */
    uint16_t file_len;
    uint16_t name_len;
    char text[AGENTSHM_CODE_TEXT];
};

/* One interned Python stack, innermost frame first: code entry ids and lines. */
struct agentshm_stack {
    uint32_t state; /* AGENTSHM_NAME_* */
    uint16_t depth; /* <= AGENTSHM_STACK_DEPTH */
    uint16_t truncated;
    uint32_t code[AGENTSHM_STACK_DEPTH];
    int32_t line[AGENTSHM_STACK_DEPTH];
};

/* One allocation record; `seq` is its index + 1 once complete (written last). */
struct agentshm_arec {
    uint64_t seq;
    uint64_t addr;    /* the block's address */
    uint64_t size;    /* bytes asked for */
    uint64_t weight;  /* bytes this sample stands for (size / P(sampled)); size with all */
    uint64_t t_ns;    /* CLOCK_MONOTONIC of the allocation, or of the free */
    uint64_t born_ns; /* AGENTSHM_FREE: when the block was allocated */
    uint32_t tid;
    uint32_t stack; /* stack entry id; 0 = no Python frame */
    uint16_t kind;  /* AGENTSHM_ALLOC, AGENTSHM_FREE */
    uint16_t domain;
    uint32_t flags;
};

/* One interned stage name. The writer claims an index, writes text and len, then state. */
struct agentshm_name {
    uint32_t state; /* AGENTSHM_NAME_* */
    uint32_t len;   /* <= AGENTSHM_NAME_MAX */
    char text[AGENTSHM_NAME_MAX];
};

/* One thread's current stage, for tagging samples: tid 0 = free slot. */
struct agentshm_slot {
    uint32_t tid;
    uint32_t name; /* name index of the innermost open stage; 0 = none */
    uint64_t request;
    uint64_t since_ns; /* when that stage began */
    uint64_t pad;
};

/* One record. `seq` is the record's index + 1 once it is complete (written last). */
struct agentshm_rec {
    uint64_t seq;
    uint64_t request; /* 0 = no request */
    uint64_t start_ns;
    uint64_t end_ns; /* CLOCK_MONOTONIC */
    uint32_t tid;
    uint32_t name; /* name index */
    uint32_t kind; /* AGENTSHM_STAGE, _REQUEST, _MARK */
    uint32_t flags;
};

#endif
