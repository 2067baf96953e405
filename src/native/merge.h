// SPDX-License-Identifier: MIT
// Merging a thread's native stack with its Python stack: each C-level call of the eval loop in
// the native stack is replaced by the Python frames it was running, the interpreter's own
// machinery is folded away, frames of other code (extensions, libraries) stay.
#ifndef CRUX_MERGE_H
#define CRUX_MERGE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "cpython/pyreader.h"
#include "native/symbols.h"
#include "util/err.h"

enum {
    NATIVE_FRAME_PY = 0, /* a Python frame: code index and line of the reader's round */
    NATIVE_FRAME_C = 1,  /* a native frame: interned symbol and module */
};

/* One frame of a merged stack. */
struct native_frame {
    uint8_t kind;                 /* NATIVE_FRAME_PY or NATIVE_FRAME_C */
    struct pyframe py;            /* kind PY: valid for the reader's current round */
    const struct native_sym *sym; /* kind C: stable until the native module is closed */
};

#define NATIVE_STACK_MAX 16384 /* frames in one merged stack */

/* A merged stack, root first. The caller owns it (native_stack_init/fini) and reuses it:
 * memory is kept between samples. */
struct native_stack {
    struct native_frame *v;
    size_t n, cap;
    bool truncated; /* the Python stack lost frames at the root (max_depth) */
    bool mismatch;  /* eval calls and Python entry frames did not pair up: the Python frames
                     * are all there, native frames only leafward of the last eval call */
    bool native;    /* false: no native frames could be taken, the Python frames alone */
    int err;        /* 0, or why native frames are missing (ERR_PERM, ERR_TOO_LARGE, ...) */
};

void native_stack_init(struct native_stack *s);
void native_stack_fini(struct native_stack *s);

/* Fills `out` (root first) from the native frames `nat` (`nn`, leaf first, as unwound) and
 * the Python frames `py` (`np`, leaf first, as pyreader gives them, with their entry flags).
 * `py_truncated`: the Python stack lost frames at its root, so surplus eval calls at the root
 * are expected. Interpreter frames are folded away; below (rootward of) the first eval call,
 * so are the C library's (process and thread start-up: __libc_start_main, start_thread,
 * clone3; _start, main and Py_RunMain are the interpreter's), so the root is the same Python
 * frame as without native frames, unless C code outside the interpreter called into Python
 * (its frames stay). When there is no Python frame at all, every non-interpreter native
 * frame is kept. Consecutive "[unknown]" frames of one module are written once.
 * Returns 0, or ERR_TOO_LARGE past NATIVE_STACK_MAX frames (out then holds the first ones). */
int merge_stacks(const struct native_sym *const *nat, size_t nn, const struct pyframe *py,
                 size_t np, bool py_truncated, struct native_stack *out) MUST_CHECK;

#endif
