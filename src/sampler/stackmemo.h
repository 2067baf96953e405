// SPDX-License-Identifier: MIT
// The stack each thread had in its last sample, outermost frame first, with the profile node
// reached after each frame. A thread's next sample shares most of its outer frames with the
// one before, and each shared frame then costs a comparison instead of a frame lookup and a
// node lookup (two hash probes with cold caches, the larger part of a deep stack's cost on
// crux's side).
#ifndef CRUX_STACKMEMO_H
#define CRUX_STACKMEMO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* One thread's last stack. */
struct stackmemo_slot {
    uint64_t owner[2]; /* who the stack belonged to (e.g. thread-state address and id) */
    uint32_t root;     /* the node the frames were pushed on (process and thread frames) */
    uint32_t n, cap;   /* frames remembered */
    uint64_t *key;     /* per frame, outermost first: what identifies its profile frame */
    uint32_t *node;    /* the profile node after it */
};

struct stackmemo {
    struct stackmemo_slot *v; /* by the caller's slot index */
    size_t n;
    uint64_t hits, misses; /* frames found and not found */
};

/* Initializes an empty memo. */
void stackmemo_init(struct stackmemo *m);
/* Releases every slot. */
void stackmemo_fini(struct stackmemo *m);
/* Forgets every stack (the profile's node ids changed); keeps the memory. */
void stackmemo_forget(struct stackmemo *m);
/* Starts a stack in slot `i` for the owner (a, b) on node `root`: the slot keeps its frames
 * when it had the same owner and root, else starts empty. The pointer is valid until the
 * next stackmemo_begin. */
struct stackmemo_slot *stackmemo_begin(struct stackmemo *m, size_t i, uint64_t a, uint64_t b,
                                       uint32_t root);
/* Whether frame `depth` (0: outermost) of the slot's last stack had `key`, all frames
 * outside it having matched too; `*node` is then the node after it. */
bool stackmemo_hit(struct stackmemo *m, struct stackmemo_slot *s, uint32_t depth, uint64_t key,
                   uint32_t *node);
/* Records that frame `depth` of the stack being built has `key` and leads to `node`; the
 * frames the slot had past it are forgotten. */
void stackmemo_put(struct stackmemo_slot *s, uint32_t depth, uint64_t key, uint32_t node);
/* Ends the stack at `depth` frames: frames the slot had past it are forgotten. */
void stackmemo_end(struct stackmemo_slot *s, uint32_t depth);

#endif
