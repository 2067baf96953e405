// SPDX-License-Identifier: MIT
// Pairing eval-loop calls with Python frames. One C-level call of _PyEval_EvalFrameDefault runs
// one group of Python frames: from an entry frame (pyframe.entry) up to, not including, the
// next entry frame (3.11+ run Python-to-Python calls inside one C call; 3.8-3.10 one frame per
// call). Walking both stacks from the root, the k-th eval call is the k-th group.
#include "native/merge.h"

#include <stdlib.h>
#include <string.h>

#include "util/xalloc.h"

void native_stack_init(struct native_stack *s)
{
    memset(s, 0, sizeof(*s));
}

void native_stack_fini(struct native_stack *s)
{
    free(s->v);
    memset(s, 0, sizeof(*s));
}

static int push(struct native_stack *s, struct native_frame f)
{
    if (s->n == s->cap) {
        if (s->cap >= NATIVE_STACK_MAX)
            return ERR_TOO_LARGE;
        s->cap = s->cap ? s->cap * 2 : 256;
        s->v = xrealloc(s->v, s->cap * sizeof(*s->v));
    }
    s->v[s->n++] = f;
    return 0;
}

/* Appends a native frame; consecutive unnamed frames of one module become one (nothing
 * tells them apart, and a stripped library would otherwise stack up "[unknown]" boxes). */
static int push_c(struct native_stack *s, const struct native_sym *sym)
{
    if (s->n && s->v[s->n - 1].kind == NATIVE_FRAME_C && s->v[s->n - 1].sym == sym &&
        strcmp(sym->name, "[unknown]") == 0)
        return 0;
    return push(s, (struct native_frame){NATIVE_FRAME_C, {0, 0, false, 0, 0}, sym});
}

/* Appends Python frames [from, to) counted from the root (py is leaf first). */
static int push_py(struct native_stack *s, const struct pyframe *py, size_t np, size_t from,
                   size_t to)
{
    for (size_t j = from; j < to; j++) {
        int rc = push(s, (struct native_frame){NATIVE_FRAME_PY, py[np - 1 - j], NULL});
        if (rc)
            return rc;
    }
    return 0;
}

/* Number of groups of Python frames: a group starts at an entry frame, and at the root
 * frame even when it is not one (a stack truncated at the root). */
static size_t count_groups(const struct pyframe *py, size_t np)
{
    size_t g = 0;
    for (size_t j = 0; j < np; j++)
        g += j == 0 || py[np - 1 - j].entry;
    return g;
}

/* The Python stack whole, then the native frames leafward of the last eval call. */
static int fallback(const struct native_sym *const *nat, size_t nn, const struct pyframe *py,
                    size_t np, struct native_stack *out)
{
    out->mismatch = true;
    int rc = push_py(out, py, np, 0, np);
    size_t last = nn; /* leaf-first index of the leafmost eval call */
    for (size_t k = 0; k < nn && last == nn; k++)
        if (nat[k]->cls == NSYM_EVAL)
            last = k;
    for (size_t k = last; k-- > 0 && !rc;)
        if (nat[k]->cls == NSYM_OTHER)
            rc = push_c(out, nat[k]);
    return rc;
}

int merge_stacks(const struct native_sym *const *nat, size_t nn, const struct pyframe *py,
                 size_t np, bool py_truncated, struct native_stack *out)
{
    out->n = 0;
    out->mismatch = false;
    out->truncated = py_truncated;
    size_t evals = 0;
    for (size_t k = 0; k < nn; k++)
        evals += nat[k]->cls == NSYM_EVAL;
    if (np == 0 && evals == 0) {
        /* A thread outside Python: its native stack, minus the interpreter. */
        int rc = 0;
        for (size_t k = nn; k-- > 0 && !rc;)
            if (nat[k]->cls == NSYM_OTHER)
                rc = push_c(out, nat[k]);
        return rc;
    }
    size_t groups = count_groups(py, np);
    /* A stack truncated at the root lost the groups of its outermost eval calls. */
    size_t skip = py_truncated && evals > groups ? evals - groups : 0;
    /* At the leaf, one eval call and its frames are not always there together: 3.12+ push
     * the C-stack shim before the first frame and pop the frame before leaving the C call, 3.11
     * pushes the frame before the call and pops it after. So one eval call without Python
     * frames, or one group of Python frames without an eval call, is expected at the leaf. */
    size_t paired = evals - skip;
    if ((paired != groups && paired != groups + 1 && paired + 1 != groups) || !paired)
        return fallback(nat, nn, py, np, out);
    int rc = 0;
    size_t j = 0;    /* next Python frame, from the root */
    size_t seen = 0; /* eval calls passed, from the root */
    for (size_t k = nn; k-- > 0 && !rc;) {
        const struct native_sym *sym = nat[k];
        if (sym->cls == NSYM_EVAL) {
            seen++;
            if (seen > skip && j < np) {
                size_t end = j + 1;
                while (end < np && !py[np - 1 - end].entry)
                    end++;
                rc = push_py(out, py, np, j, end);
                j = end;
            }
            continue;
        }
        /* Interpreter machinery folds away; so does everything between eval calls whose
         * Python frames were truncated away, and, below the first eval call, the C library's
         * start-up frames (_start, __libc_start_main, start_thread, clone3, named or not).
         * Other code below it stays: a thread that C code created and that calls into Python
         * keeps its C callers at the root. */
        if (sym->cls == NSYM_INTERP || (seen > 0 && seen <= skip) || (seen == 0 && sym->libc))
            continue;
        rc = push_c(out, sym);
    }
    if (!rc && j < np) /* a group not (or no longer) run by an eval call: called from here */
        rc = push_py(out, py, np, j, np);
    return rc;
}
