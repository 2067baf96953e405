// SPDX-License-Identifier: MIT
// 3.11+ stacks, copied without stopping the thread and used only when they check out.
//
// A thread's Python frames live in its data stack: contiguous _PyInterpreterFrames in the
// current chunk (older chunks hold the bottom of deep stacks), each call pushing its code's
// co_framesize words at datastack_top and each return popping them. Generator and coroutine
// frames live in their objects, and 3.12+ eval-loop entry frames on the C stack: those are
// read as "extra" frames at the addresses the previous walk met.
//
// A round reads each thread as one group of spans, in one process_vm_readv with the other
// threads' groups, in this order:
//   thread state | 3.11, 3.12: current_frame of each remembered _PyCFrame | current chunk |
//   older chunks | extra frames
// The thread state gives the current frame at one instant (T0); the chunk is copied a
// little later (T1) by one memcpy per page: the copy is the data stack at T1 (but for lines
// the kernel's unordered `rep movsb` loads at different moments: running() and popped()),
// and the walk from the T0 current frame must be proved to describe it:
//   - frames tile the data stack: each thread-owned frame starts where its caller ends
//     (the caller's address + its code's co_framesize words), the outermost at the chunk's
//     first slot; inside the data stack only thread-owned frames live;
//   - a frame called directly (not through C) by the frame below it proves that frame was
//     suspended in that call at T1. A frame that is executing at T1 (3.12+: its stacktop is
//     -1 while the eval loop runs it; 3.11: it points at an instruction, not at the inline
//     cache of a call) or was just pushed (still in its prologue) has no such callee: the
//     frames above it are left over from calls that returned between T0 and T1, so it is
//     the leaf at T1 and they are dropped ("trimmed");
//   - code objects, instruction pointers and owners are checked as before.
// The stack reported is the one at T1 (cut at the T0 leaf when the thread went deeper).
// What fails is read again alone, with predictions refreshed from what the failed attempt
// saw (pyreader.c bounds the retries); nothing is guessed. docs/internals.md, "Consistent
// stacks", has the reasoning and what the trust harness measures.
#include "cpython/stack.h"

#include <stdlib.h>
#include <string.h>

#include "util/hmap.h"
#include "util/rawfield.h"
#include "util/xalloc.h"

/* The most spans of one group: before, chunk twice, older chunks, extras, after, cframes. */
#define GROUP_MAX (4 + PYREADER_OLD_CHUNKS + PYREADER_EXTRA + PYREADER_CFRAMES)
#define PAGE_MASK (~(uint64_t)4095)
#define FIRST_CHUNK 16384 /* DATA_STACK_CHUNK_SIZE: no chunk is smaller */

/* Where a frame address lies: IN_CUR (the current chunk), i >= 0 (older chunk i), IN_EXTRA
 * (an outside frame the group copied), IN_NONE (read now, outside the bracket). */
enum { IN_NONE = -3, IN_EXTRA = -2, IN_CUR = -1 };

size_t stack311_max_spans(void)
{
    return GROUP_MAX;
}

static int32_t min4(int32_t a, int32_t b, int32_t c, int32_t d)
{
    int32_t m = a < b ? a : b;
    m = m < c ? m : c;
    return m < d ? m : d;
}

static int32_t max4(int32_t a, int32_t b, int32_t c, int32_t d)
{
    int32_t m = a > b ? a : b;
    m = m > c ? m : c;
    return m > d ? m : d;
}

void stack311_init(struct pyreader *r)
{
    const struct py_offsets *o = &r->rt->off;
    r->stk = xcalloc(PYREADER_MAX_THREADS, sizeof(*r->stk));
    /* One span of the thread state covers what the bracket compares (current frame or
     * cframe, chunk, top) and what proves it is still the same thread (interp, id). */
    int32_t lo = min4(o->ts_interp, o->ts_frame, o->ts_id, o->ts_datastack_chunk);
    int32_t hi = max4(o->ts_interp, o->ts_frame, o->ts_id, o->ts_datastack_chunk);
    lo = lo < o->ts_datastack_top ? lo : o->ts_datastack_top;
    hi = hi > o->ts_datastack_top ? hi : o->ts_datastack_top;
    /* And the kernel's thread id: a thread read again later than the round's batch may
     * have started since (its state first holds its creator's id). */
    if (o->ts_native_thread_id >= 0) {
        lo = lo < o->ts_native_thread_id ? lo : o->ts_native_thread_id;
        hi = hi > o->ts_native_thread_id ? hi : o->ts_native_thread_id;
    }
    r->state_off = (size_t)lo;
    r->state_len = (size_t)(hi - lo) + 8;
}

void stack311_fini(struct pyreader *r)
{
    if (!r->stk)
        return;
    for (size_t t = 0; t < r->slots_used; t++) {
        struct pystack *k = &r->stk[t];
        free(k->buf);
        free(k->buf2);
        free(k->old_buf);
        free(k->extra_buf);
        free(k->state);
    }
    free(r->stk);
    r->stk = NULL;
}

static void forget(struct pystack *k)
{
    k->chunk = 0;
    k->len = 0;
    k->high = 0;
    k->ncframe = 0;
    k->nold = 0;
    k->nextra = 0;
    k->nseen = 0;
    k->seen_overflow = false;
    k->seen_all = false;
    k->missed = false;
    k->need_old = false;
    k->span0 = SIZE_MAX;
}

void stack311_forget_all(struct pyreader *r)
{
    for (size_t t = 0; t < r->slots_used; t++)
        forget(&r->stk[t]);
}

static void forget_slot(void *slot)
{
    forget(slot);
}

void stack311_remap(struct pyreader *r, const uint64_t *old_tstates, size_t nold)
{
    stack_remap(r, r->stk, sizeof(*r->stk), old_tstates, nold, forget_slot);
}

/* A thread-state field from a copy of the bracket's span. */
static uint64_t state_field(const struct pyreader *r, const uint8_t *state, int32_t off)
{
    return raw_u64(state, off - (int32_t)r->state_off);
}

bool stack311_fresh_tid(const struct pyreader *r, size_t t, pid_t *tid)
{
    const struct py_offsets *o = &r->rt->off;
    const struct pystack *k = &r->stk[t];
    if (!k->state_ok || o->ts_native_thread_id < 0)
        return false;
    *tid = (pid_t)state_field(r, k->state, o->ts_native_thread_id);
    return true;
}

size_t stack311_group(struct pyreader *r, size_t t, struct mem_span *sp, size_t n, bool alone)
{
    const struct py_offsets *o = &r->rt->off;
    struct pystack *k = &r->stk[t];
    if (!k->state)
        k->state = xmalloc(r->state_len);
    k->span0 = n;
    k->alone = alone;
    if (alone)
        sp[n++] = (struct mem_span){r->tstates[t] + r->state_off, k->state, r->state_len};
    if (k->nextra && !k->extra_buf)
        k->extra_buf = xmalloc(PYREADER_EXTRA * PY_IFRAME_MAX);
    if (o->cf_current_frame >= 0) {
        for (unsigned i = 0; i < k->ncframe; i++)
            sp[n++] =
                (struct mem_span){k->cframe[i] + (uint64_t)o->cf_current_frame, &k->cf_cur[i], 8};
        /* The outside frames on a cframe's page of the C stack (3.12's shim frames, one per
         * eval loop, beside its cframe) next: one remote range with the cframes, where they
         * took one of their own (each range costs the kernel a pin and a copy call). */
        for (unsigned i = 0; i < k->nextra; i++) {
            k->extra_near[i] = false;
            for (unsigned c = 0; c < k->ncframe && !k->extra_near[i]; c++)
                k->extra_near[i] = (k->extra[i] & PAGE_MASK) == (k->cframe[c] & PAGE_MASK);
            if (k->extra_near[i])
                sp[n++] = (struct mem_span){k->extra[i], k->extra_buf + i * PY_IFRAME_MAX,
                                            (size_t)o->if_size};
        }
    } else {
        memset(k->extra_near, 0, sizeof(k->extra_near));
    }
    if (k->len) {
        if (!k->buf) {
            k->buf = xmalloc(PYREADER_CHUNK_MAX);
            k->buf2 = xmalloc(PYREADER_CHUNK_MAX);
        }
        sp[n++] = (struct mem_span){k->chunk, k->buf, k->len};
        sp[n++] = (struct mem_span){k->chunk, k->buf2, k->len};
    }
    for (unsigned i = 0; i < k->nold; i++)
        sp[n++] = (struct mem_span){k->old[i], k->old_buf + k->old_off[i], k->old_len[i]};
    for (unsigned i = 0; i < k->nextra; i++)
        if (!k->extra_near[i])
            sp[n++] = (struct mem_span){k->extra[i], k->extra_buf + i * PY_IFRAME_MAX,
                                        (size_t)o->if_size};
    return n;
}

int stack311_check(struct pyreader *r, size_t t, const uint8_t *ok)
{
    const struct py_offsets *o = &r->rt->off;
    struct pystack *k = &r->stk[t];
    const struct pythread *th = &r->threads[t];
    size_t i = k->span0;
    k->state_ok = false;
    if (i == SIZE_MAX)
        return ERR_AGAIN;
    const uint8_t *st = stack_blob(r, t) + r->state_off;
    if (k->alone) {
        st = k->state;
        if (!ok[i++])
            return ERR_READ;
        if (state_field(r, st, o->ts_interp) != th->interp ||
            state_field(r, st, o->ts_id) != th->ts_id)
            return ERR_CORRUPT; /* the thread state now belongs to another thread */
        k->state_ok = true;
    }
    uint64_t frame = state_field(r, st, o->ts_frame);
    uint64_t chunk = state_field(r, st, o->ts_datastack_chunk);
    uint64_t top = state_field(r, st, o->ts_datastack_top);
    k->cur = frame;
    if (o->cf_current_frame >= 0) {
        /* 3.11, 3.12: the frame field is the cframe; its current_frame was read next. */
        unsigned c = 0;
        while (c < k->ncframe && !(k->cframe[c] == frame && ok[i + c]))
            c++;
        if (frame && c == k->ncframe) {
            r->missed++;
            return ERR_AGAIN;
        }
        k->cur = frame ? k->cf_cur[c] : 0;
        i += k->ncframe;
        for (unsigned j = 0; j < k->nextra; j++)
            if (k->extra_near[j])
                k->extra_ok[j] = ok[i++];
    }
    bool chunk_ok = k->len ? ok[i] && ok[i + 1] : false;
    i += k->len ? 2 : 0;
    bool old_ok = true;
    for (unsigned j = 0; j < k->nold; j++)
        old_ok = ok[i++] && old_ok;
    for (unsigned j = 0; j < k->nextra; j++)
        if (!k->extra_near[j])
            k->extra_ok[j] = ok[i++];
    k->top = top;
    k->copied = false;
    k->old_copied = old_ok;
    if (!chunk || (chunk & 7) || top <= chunk || top - chunk > PYREADER_CHUNK_MAX)
        return 0; /* no data stack yet, or one too large to copy: the walk reads frames */
    if (chunk != k->chunk || top - chunk > k->len || !chunk_ok ||
        top - chunk < (size_t)o->ck_data) {
        r->missed++;
        return ERR_AGAIN;
    }
    k->copied = true;
    return 0;
}

/* --- The walk ----------------------------------------------------------------------------- */

/* Two copies. The chunk is copied twice, one range after the other. Within one range the
 * kernel's copy (rep movsb, "fast strings") may load in any order: a caller's frame can be
 * loaded after the slot above it, and the pair then mixes two moments (churn.py's twins()
 * suspended on its twin_a call above twin_b's frame, its value stack from the twin_b call
 * still: 0.2-0.5% of samples at 10 kHz on 3.11-3.13 on this machine's Xeon; none was seen
 * on the machine of the sessions before). The second range is loaded after the first has
 * completed, so a frame that reads the same in both held still between them, unless it
 * changed and changed back. A frame must keep its code, caller and owner in both; a caller
 * of a frame kept above it is suspended in that call and must read the same whole. */
static bool same_twice(const struct py_offsets *o, const struct pystack *k, uint64_t here,
                       const struct pycode *c, bool caller)
{
    size_t off = (size_t)(here - k->chunk);
    if (off >= k->len)
        return true;
    const uint8_t *a = k->buf + off, *b = k->buf2 + off;
    if (raw_u64(a, o->if_code) != raw_u64(b, o->if_code) ||
        raw_u64(a, o->if_previous) != raw_u64(b, o->if_previous) ||
        a[o->if_owner] != b[o->if_owner])
        return false;
    if (!caller)
        return true;
    size_t len = c->framesize ? c->framesize : (size_t)o->if_size;
    if (len > k->len - off)
        len = k->len - off;
    return memcmp(a, b, len) == 0;
}

/* Region `reg`'s header copy and base address: the current chunk (IN_CUR) or an older one. */
static const uint8_t *region_head(const struct pystack *k, int reg, uint64_t *base)
{
    *base = reg == IN_CUR ? k->chunk : k->old[reg];
    return reg == IN_CUR ? k->buf : k->old_buf + k->old_off[reg];
}

/* The first frame slot of region `reg`: the root chunk skips data[0] (pystate.c push_chunk). */
static uint64_t region_start(const struct pyreader *r, const struct pystack *k, int reg)
{
    const struct py_offsets *o = &r->rt->off;
    uint64_t base;
    const uint8_t *h = region_head(k, reg, &base);
    uint64_t skip = raw_u64(h, o->ck_previous) == 0 ? 8 : 0;
    return base + (uint64_t)o->ck_data + skip;
}

/* Where region `reg`'s live slots end: top for the current chunk; an older chunk's saved top
 * (slots) otherwise. 0 when the copy does not hold them. */
static uint64_t region_end(const struct pyreader *r, const struct pystack *k, int reg)
{
    const struct py_offsets *o = &r->rt->off;
    if (reg == IN_CUR)
        return k->top;
    const uint8_t *h = k->old_buf + k->old_off[reg];
    uint64_t top = raw_u64(h, o->ck_top), size = raw_u64(h, o->ck_size);
    if (top > PYREADER_OLD_MAX / 8 || (uint64_t)o->ck_data + top * 8 > k->old_len[reg] ||
        (uint64_t)o->ck_data + top * 8 > size)
        return 0;
    return k->old[reg] + (uint64_t)o->ck_data + top * 8;
}

/* The copied region holding the frame header [f, f + len), or IN_NONE. */
static int region_of(const struct pyreader *r, const struct pystack *k, uint64_t f, size_t len)
{
    const struct py_offsets *o = &r->rt->off;
    /* The whole copy, not just up to the top the thread state showed: on 3.11/3.12 the current
     * frame is read after it and may lie above (the walk proves such frames live or drops
     * them like any other). */
    if (k->copied && f - k->chunk >= (uint64_t)o->ck_data &&
        raw_span_holds(k->chunk, k->len, f, len))
        return IN_CUR;
    for (unsigned i = 0; k->copied && k->old_copied && i < k->nold; i++) {
        uint64_t end = region_end(r, k, (int)i);
        if (end && f - k->old[i] >= (uint64_t)o->ck_data &&
            raw_span_holds(k->old[i], end - k->old[i], f, len))
            return (int)i;
    }
    return IN_NONE;
}

/* Bytes of the copy of region `reg` from address `f` on. */
static size_t region_room(const struct pystack *k, int reg, uint64_t f)
{
    if (reg == IN_CUR)
        return (size_t)(k->chunk + k->len - f);
    return (size_t)(k->old[reg] + k->old_len[reg] - f);
}

static void note_seen(struct pystack *k, uint64_t f)
{
    if (k->nseen < PYREADER_EXTRA)
        k->seen[k->nseen++] = f;
    else
        k->seen_overflow = true;
}

/* The header of frame `f`: from the copies when they hold it, else read now into `scratch`
 * (outside the bracket). NULL when unreadable. */
static const uint8_t *frame_at(struct pyreader *r, struct pystack *k, uint64_t f, int *where,
                               uint8_t *scratch)
{
    size_t flen = (size_t)r->rt->off.if_size;
    int reg = region_of(r, k, f, flen);
    *where = reg;
    if (reg == IN_CUR)
        return k->buf + (f - k->chunk);
    if (reg >= 0)
        return k->old_buf + k->old_off[reg] + (f - k->old[reg]);
    for (unsigned i = 0; i < k->nextra; i++)
        if (k->extra[i] == f && k->extra_ok[i]) {
            *where = IN_EXTRA;
            return k->extra_buf + i * PY_IFRAME_MAX;
        }
    if (mem_read(r->rt->pid, f, scratch, flen))
        return NULL;
    return scratch;
}

/* Tiling state of a walk: the region whose thread-owned frames are being matched and the
 * address where the next one must end. */
struct tiling {
    int reg;
    uint64_t end;
    bool on;      /* the data stack was copied and the walk is still inside the copies */
    bool foreign; /* the chain left the copies (a greenlet's parent stack, an uncopied chunk) */
};

/* Checks a thread-owned frame at `f` of `size` bytes found in region `where`: it must end
 * where the thread-owned frame it called starts (the first one met sets the region). */
static int tile(struct pyreader *r, struct pystack *k, struct tiling *tl, uint64_t f, int where,
                uint32_t size)
{
    if (!tl->on)
        return 0;
    if (!tl->end && where != IN_NONE) {
        tl->reg = where;
        tl->end = f;
        return 0;
    }
    if (where == IN_NONE) {
        /* Leaving the copies: the copied part must be tiled to its first slot. A chunk with
         * an older one whose copy is missing needs another attempt; the root chunk's
         * outermost frame linking elsewhere is a greenlet's (its parent's stack). */
        if (tl->end && tl->end != region_start(r, k, tl->reg))
            return ERR_CORRUPT;
        uint64_t base;
        const uint8_t *h = region_head(k, tl->reg, &base);
        if (raw_u64(h, r->rt->off.ck_previous) != 0)
            k->need_old = true;
        tl->on = false;
        tl->foreign = true;
        return 0;
    }
    if (where != tl->reg) {
        /* Into the next older chunk: this one must be tiled to its first slot, and its
         * header must name that chunk as the previous one. */
        uint64_t base;
        const uint8_t *h = region_head(k, tl->reg, &base);
        if (tl->end != region_start(r, k, tl->reg) || where != tl->reg + 1 ||
            raw_u64(h, r->rt->off.ck_previous) != k->old[where])
            return ERR_CORRUPT;
        tl->reg = where;
        tl->end = region_end(r, k, where);
    }
    if (f + size != tl->end)
        return ERR_CORRUPT;
    tl->end = f;
    return 0;
}

/* After the last frame: the copied frames must tile their region down to its first slot. */
static int tile_done(struct pyreader *r, const struct pystack *k, const struct tiling *tl)
{
    if (!tl->on || !tl->end)
        return 0;
    return tl->end == region_start(r, k, tl->reg) ? 0 : ERR_CORRUPT;
}

/* Whether the frame in `fb` (code `c`, instruction offset `b`) was running rather than
 * suspended in a call when it was copied. 3.12+: the eval loop sets stacktop to -1 while it
 * runs a frame and saves the stack depth before it pushes a callee. 3.11: a frame that pushes
 * a callee leaves prev_instr on the last inline-cache unit of the call (ceval.c sets it to
 * next_instr - 1 after skipping the caches); a running one points at an instruction. */
static bool running(const struct py_offsets *o, const uint8_t *fb, const struct pycode *c,
                    int64_t b)
{
    if (o->minor >= 12 && o->if_stacktop >= 0 && raw_i32(fb, o->if_stacktop) < 0)
        return true;
    /* 3.11 and 3.12 leave prev_instr on the last inline-cache unit of the instruction that
     * pushed the callee (DISPATCH_INLINED sets it to next_instr - 1 after the caches), so a
     * frame at the start of an instruction that has caches was running it. On 3.12 this
     * catches a copy torn across cache lines: the kernel copies with `rep movsb`, whose
     * loads are not ordered, and a frame at a 64-byte boundary keeps prev_instr and stacktop
     * in different lines (seen: `run` copied with prev_instr on its next CALL and stacktop
     * and value stack still from the call that had just returned, above it that call's
     * frame). 3.12's CALL_FUNCTION_EX has no caches and stays on itself. 3.13 leaves
     * instr_ptr on the call's first unit, running or not. */
    if (o->minor > 12)
        return false;
    return codecache_starts_at(c, b) == 1 && (o->minor == 11 || codecache_starts_at(c, b + 2) == 0);
}

/* Whether the thread-owned frame in `fb` (code `c`) in the copied data stack had been popped
 * when its stacktop was copied. 3.13 zeroes a frame's stacktop as it clears its locals on the
 * way out (_PyFrame_ClearLocals), and a live frame's stacktop is -1 (running) or at least
 * co_nlocalsplus (its value stack starts after the locals). This catches what the others
 * cannot on 3.13: a frame at a 64-byte boundary keeps instr_ptr and stacktop in different
 * cache lines, and the kernel's `rep movsb` copy does not load lines in order, so `run` can
 * be copied at its next CALL (whose instr_ptr a suspended call leaves there too) above the
 * frame of the call that had returned. 3.12 leaves stacktop as it was (running() catches
 * that case there); a function with no locals has nothing to tell. */
static bool popped(const struct py_offsets *o, const uint8_t *fb, const struct pycode *c,
                   uint8_t owner, bool inside)
{
    if (o->minor < 13 || !inside || owner != OWNER_THREAD || !c->nlocals || o->if_stacktop < 0)
        return false;
    int32_t st = raw_i32(fb, o->if_stacktop);
    return st >= 0 && (uint32_t)st < c->nlocals;
}

/* Whether frame `fb` (code `c`, instruction offset `b`), suspended in a call, is in the call
 * that pushed `callee` (whose owner and function object are given): on 3.11 and 3.12 a frame
 * called by CALL or CALL_FUNCTION_EX runs the function the caller pushed on its value stack,
 * which stays in the two slots at the saved stack depth (self-or-NULL and the callable; the
 * call consumed them without clearing them) while the callee runs; FOR_ITER and SEND resume
 * a generator, never a thread-owned frame. Other instructions that push frames (a property,
 * __getitem__) leave nothing to check. `frame_len`: bytes of the frame copy at `fb`. */
/* Whether function object `func` runs code `code`: from a small cache, read again whenever
 * it disagrees (a function freed and its address reused, a __code__ assigned). */
static bool func_runs(struct pyreader *r, uint64_t func, uint64_t code)
{
    if (!r->funcs)
        r->funcs = xcalloc(PYREADER_FUNCS, sizeof(*r->funcs));
    struct funcref *e = &r->funcs[hmap_hash64(func) & (PYREADER_FUNCS - 1)];
    if (e->func == func && e->code == code)
        return true;
    uint64_t got = 0;
    if (mem_read(r->rt->pid, func + (uint64_t)r->rt->off.fn_code, &got, 8))
        return false;
    e->func = func;
    e->code = got;
    return got == code;
}

static bool in_that_call(struct pyreader *r, const uint8_t *fb, size_t frame_len,
                         const struct pycode *c, int64_t b, uint8_t callee_owner,
                         uint64_t callee_func, uint64_t callee_code)
{
    const struct py_offsets *o = &r->rt->off;
    int kind = codecache_kind_at(c, b);
    if (kind == PY_OP_GEN)
        return callee_owner != OWNER_THREAD;
    /* 3.13 builds calls from micro-ops whose intermediate values (the new frame, the bound
     * method's parts) stay in registers or overwrite those slots, so the slots prove nothing
     * there (seen: CALL_BOUND_METHOD_GENERAL); 3.11 and 3.12 shrink the stack over them just
     * before the callee is linked (ceval.c, bytecodes.c). */
    if (kind != PY_OP_CALL || callee_owner != OWNER_THREAD || o->if_funcobj < 0 || o->minor >= 13)
        return true;
    int32_t st = raw_i32(fb, o->if_stacktop);
    size_t slot = (size_t)o->if_size + 8 * (size_t)st;
    if (st < 0 || slot + 16 > frame_len || slot + 16 > c->framesize)
        return false;
    if (!callee_func || (raw_u64(fb, (int32_t)slot) != callee_func &&
                         raw_u64(fb, (int32_t)slot + 8) != callee_func))
        return false;
    /* The callee's header is copied while it may be written: its function from the new
     * call and its code left by the last frame at that address (seen on 3.12: `run` calling
     * alpha, above it `unwind` at the line it had returned from). The function must run
     * that code. */
    return func_runs(r, callee_func, callee_code);
}

/* --- The leaf from the copy ---------------------------------------------------------------- */

/* Whether the copy at `fb` looks like the header of a thread-owned frame: what a current-frame
 * pointer from another moment than the copy fails when it lands inside another frame. */
static bool frame_like(const struct py_offsets *o, const uint8_t *fb)
{
    uint64_t code = raw_u64(fb, o->if_code), prev = raw_u64(fb, o->if_previous);
    return fb[o->if_owner] == OWNER_THREAD && (o->if_is_entry < 0 || fb[o->if_is_entry] <= 1) &&
           code && !(code & 7) && !(prev & 7);
}

/* Whether the frame in `fb` (code `c`) was suspended in a call that pushed its callee in the
 * same eval loop when it was copied. The push saves the stack depth (stacktop; a frame that
 * runs, or is in a C call, has -1 there since its last resume, and 3.13 keeps the locals
 * below it). 3.11 and 3.12 leave prev_instr on the last inline-cache unit of the CALL or
 * BINARY_SUBSCR/LOAD_ATTR that pushed it (3.12's CALL_FUNCTION_EX, which has none, on
 * itself); 3.13 leaves instr_ptr on the instruction's first unit. */
static bool suspended_inline(const struct py_offsets *o, const uint8_t *fb, const struct pycode *c)
{
    int64_t b = (int64_t)(raw_u64(fb, o->if_instr) - c->code_start);
    int32_t st = raw_i32(fb, o->if_stacktop);
    int kind = codecache_kind_at(c, b);
    if (st < 0 || (kind != PY_OP_CALL && kind != PY_OP_PUSH))
        return false;
    if (o->minor >= 13)
        return codecache_starts_at(c, b) == 1 && (uint32_t)st >= c->nlocals;
    if (codecache_starts_at(c, b + 2) == 0)
        return false; /* inside the caches, not on the last unit */
    return codecache_starts_at(c, b) == 0 || (o->minor == 12 && kind == PY_OP_CALL);
}

/* The code of the copied frame `fb`, when its instruction pointer lies in it. */
static const struct pycode *code_of(struct pyreader *r, const uint8_t *fb, uint64_t now)
{
    const struct py_offsets *o = &r->rt->off;
    const struct pycode *c;
    uint64_t globals = o->if_globals >= 0 ? raw_u64(fb, o->if_globals) : 0;
    if (codecache_get_framed(&r->codes, raw_u64(fb, o->if_code), globals, now, &c))
        return NULL;
    int64_t b = (int64_t)(raw_u64(fb, o->if_instr) - c->code_start);
    return b >= -2 && b < (int64_t)c->code_bytes ? c : NULL;
}

/* The frame the thread ran when its data stack was copied, found in the copy. The current
 * frame `f` was read (3.11, 3.12: from the cframe the thread state named) at a slightly
 * different moment than the copy, in other ranges of the same call, and a thread whose
 * calls are shorter than that has moved on: `f` is then a caller of the frame the copy
 * shows running (the retries that succeeded were the rounds in which it was not, so callers
 * that do nothing took the samples), or (3.11, a thread that switches eval loops: a property
 * getter, which 3.11 runs through C in a nested loop, beside an inlined __getitem__) `f`
 * lies inside another frame of the copy in nearly every round (seen: a caller that does
 * nothing at 40% of the samples, the getter at 0%). So the copy decides: from `f` when it is
 * a frame of the copy, else (3.11) from the chunk's first frame, live while the chunk is
 * current, climb to the callee the copy shows live. An inlined callee is live when its caller
 * is suspended in the call that pushed it; on 3.11, a nested loop's first frame (is_entry,
 * linked to its caller directly) when its caller runs or is in a C call (stacktop -1) and
 * it has not returned (a return, or an exception leaving it, saves its stacktop, and its
 * prev_instr is then on no call's last cache unit). Frames left above the leaf by earlier
 * calls fail those tests; the walk down from the result checks the chain as before. */
static uint64_t copied_leaf(struct pyreader *r, struct pystack *k, uint64_t f, uint64_t now)
{
    const struct py_offsets *o = &r->rt->off;
    size_t hl = (size_t)o->if_size;
    if (!k->copied || region_of(r, k, f, hl) != IN_CUR)
        return f; /* a generator's frame, a shim, one in an older chunk: not climbed from */
    const uint8_t *fb = k->buf + (f - k->chunk);
    if (!frame_like(o, fb)) {
        if (o->minor != 11)
            return f; /* 3.12+ link nested loops through C-stack shims the copy lacks */
        f = region_start(r, k, IN_CUR);
        if (region_of(r, k, f, hl) != IN_CUR)
            return k->cur;
        fb = k->buf + (f - k->chunk);
        if (!frame_like(o, fb))
            return k->cur;
    }
    uint64_t start = f;
    /* Down from a frame the copy shows left over: each thread-owned frame is pushed at the
     * data stack's top, its caller's end, so one that does not start there (another call
     * has used its caller's slot since: `use_prop`'s getter where `use_item`, 8 bytes
     * longer, now calls `__getitem__`), or (3.13) one popped, is from an earlier call. The
     * walk would fail its tiling there; its caller is where the climb starts. */
    for (uint32_t n = 0; n < 2 * r->max_depth; n++) {
        uint64_t p = raw_u64(fb, o->if_previous);
        if (region_of(r, k, p, hl) != IN_CUR)
            break;
        const uint8_t *pb = k->buf + (p - k->chunk);
        const struct pycode *pc = frame_like(o, pb) ? code_of(r, pb, now) : NULL;
        if (!pc || !pc->framesize)
            break;
        bool stale = p + pc->framesize != f;
        if (!stale && o->minor >= 13) {
            const struct pycode *c = code_of(r, fb, now);
            stale = c && popped(o, fb, c, OWNER_THREAD, true);
        }
        if (!stale)
            break;
        f = p;
        fb = pb;
        r->descended++;
    }
    for (uint32_t n = 0; n < 2 * r->max_depth; n++) {
        const struct pycode *c = code_of(r, fb, now);
        if (!c || !c->framesize)
            break;
        uint64_t next = f + c->framesize;
        if (region_of(r, k, next, hl) != IN_CUR)
            break;
        const uint8_t *nb = k->buf + (next - k->chunk);
        if (!frame_like(o, nb) || raw_u64(nb, o->if_previous) != f)
            break;
        if (o->minor >= 13) {
            /* 3.13 sets instr_ptr on the call before it pushes the callee, so a caller can
             * look suspended above the popped frame of its previous call. */
            const struct pycode *nc = code_of(r, nb, now);
            if (!nc || popped(o, nb, nc, OWNER_THREAD, true))
                break;
        }
        if (o->if_is_entry >= 0 && nb[o->if_is_entry]) {
            const struct pycode *nc = raw_i32(fb, o->if_stacktop) < 0 ? code_of(r, nb, now) : NULL;
            if (!nc || (raw_i32(nb, o->if_stacktop) >= 0 && !suspended_inline(o, nb, nc)))
                break;
        } else if (!suspended_inline(o, fb, c)) {
            break;
        }
        f = next;
        fb = nb;
    }
    r->climbed += f != start;
    return f;
}

int stack311_walk(struct pyreader *r, size_t t, uint64_t now)
{
    const struct py_offsets *o = &r->rt->off;
    struct pythread *th = &r->threads[t];
    struct pystack *k = &r->stk[t];
    uint8_t scratch[PY_IFRAME_MAX];
    k->nseen = 0;
    k->seen_overflow = false;
    k->seen_all = false;
    k->missed = false;
    k->need_old = false;
    k->want_len = 0;
    stack_walk_begin(r);
    struct tiling tl = {IN_CUR, 0, k->copied, false};
    uint32_t visited = 0;
    bool pushed = false;     /* whether the frame visited just before (leafward) was kept */
    bool direct = false;     /* whether that frame was called directly by this one (not via C) */
    uint8_t above_owner = 0; /* that frame's owner and function object */
    uint64_t above_func = 0, above_code = 0;
    bool leaf_next = false; /* the frame above was found popped: this one is the leaf */
    uint64_t f = copied_leaf(r, k, k->cur, now);
    while (f) {
        if (f & 7)
            return ERR_CORRUPT;
        /* Skipped entry frames do not count toward max_depth; bound the walk anyway (the
         * cycle table holds 2 * max_depth + 64 addresses). */
        if (++visited > 2 * r->max_depth + 32) {
            th->truncated = true;
            k->seen_all = true;
            return 0;
        }
        uint64_t here = f;
        int where;
        const uint8_t *fb = frame_at(r, k, here, &where, scratch);
        if (!fb)
            return ERR_READ;
        uint64_t code = raw_u64(fb, o->if_code);
        uint64_t prev = raw_u64(fb, o->if_previous);
        uint64_t instr = raw_u64(fb, o->if_instr);
        uint8_t owner = fb[o->if_owner];
        bool was_pushed = pushed, called_direct = direct;
        uint8_t callee_owner = above_owner;
        uint64_t callee_func = above_func, callee_code = above_code;
        pushed = false;
        /* Inside the data stack only thread-owned frames live; outside it, generator and
         * (3.12+) C-stack entry frames, and the thread-owned frames of a stack not copied
         * (a greenlet's parent, a chunk too large). A frame owned by a frame object has left
         * its call: a torn chain. */
        bool inside = where == IN_CUR || where >= 0;
        /* A cycle: thread-owned frames in the copies are checked by the tiling instead (each
         * must end where the one it called starts, so none comes twice); the cycle table
         * costs a hash probe with a cold cache per frame. */
        if (!(tl.on && inside && owner == OWNER_THREAD) && stack_seen_before(r, here))
            return ERR_CORRUPT;
        if (inside ? owner != OWNER_THREAD
                   : !(owner == OWNER_GENERATOR || owner == OWNER_THREAD ||
                       (o->minor >= 12 && owner == OWNER_CSTACK)))
            return ERR_CORRUPT;
        if (!inside && owner != OWNER_THREAD) {
            /* Copied by the group, or to be copied by the next attempt. */
            note_seen(k, here);
            if (where == IN_NONE)
                k->missed = true;
        }
        /* A thread's first frame is never generator-owned: a generator frame with no
         * previous frame is a suspended coroutine read after its caller moved on. */
        if (!prev && owner == OWNER_GENERATOR)
            return ERR_CORRUPT;
        f = prev;
        if (owner == OWNER_CSTACK) {
            /* The frame whose previous is the shim an eval call pushed is that call's first
             * (for native stacks: where one C-level eval call begins). */
            if (was_pushed)
                r->frames[r->nframes - 1].entry = true;
            direct = false;
            continue;
        }
        /* 3.11 marks the first frame of each eval call instead of pushing a shim. */
        bool entry = o->if_is_entry >= 0 && fb[o->if_is_entry] != 0;
        direct = !entry;
        above_owner = owner;
        above_func = o->if_funcobj >= 0 ? raw_u64(fb, o->if_funcobj) : 0;
        above_code = code;
        const struct pycode *c;
        uint64_t globals = o->if_globals >= 0 ? raw_u64(fb, o->if_globals) : 0;
        int rc = codecache_get_framed(&r->codes, code, globals, now, &c);
        if (rc)
            return rc == ERR_PROC_GONE ? rc : ERR_CORRUPT;
        int64_t b = (int64_t)(instr - c->code_start);
        if (b < -2 || b >= (int64_t)c->code_bytes) {
            /* Either the frame was rewritten under us or the cached code object was freed
             * and its address reused: re-read the code object once before giving up. */
            rc = codecache_recheck(&r->codes, code, now, &c);
            if (rc)
                return rc == ERR_PROC_GONE ? rc : ERR_CORRUPT;
            b = (int64_t)(instr - c->code_start);
            if (b < -2 || b >= (int64_t)c->code_bytes)
                return ERR_CORRUPT;
        }
        if (where == IN_CUR && k->copied && !same_twice(o, k, here, c, was_pushed)) {
            r->torn++;
            return ERR_AGAIN;
        }
        bool prologue = b < (int64_t)c->firsttraceable * 2;
        /* 3.13's __init__ shim (f_funcobj None) sits before its RESUME while __init__ runs:
         * a caller, not a frame just pushed. */
        bool shim = o->minor >= 13 && r->rt->type_none && o->if_funcobj >= 0 &&
                    raw_u64(fb, o->if_funcobj) == r->rt->type_none;
        /* A frame whose instruction never pushes a frame in the same eval loop (anything
         * but a call, a generator resumption, a subscript or attribute load) was running,
         * whatever a racing copy of its other fields says; the 3.13 __init__ shim, whose
         * EXIT_INIT_CHECK waits for __init__ to return, is a caller all the same. */
        int kind = codecache_kind_at(c, b);
        bool pushes = kind != PY_OP_OTHER && kind != PY_OP_ITER;
        if (popped(o, fb, c, owner, inside)) {
            /* This frame had returned when its stacktop was copied: it and the frames above
             * it are left over, and the frame below is the leaf (3.13 is the one where a copy
             * torn across cache lines shows it, see popped). */
            r->nframes = th->first;
            th->nframes = 0;
            th->truncated = false;
            tl.end = 0;
            tl.reg = IN_CUR;
            r->trimmed++;
            leaf_next = true;
            continue;
        }
        if (leaf_next || (called_direct &&
                          ((prologue && !shim) || running(o, fb, c, b) || (!pushes && !shim)))) {
            /* This frame has a callee in the chain, but at the copy it was running or just
             * pushed: that callee and the frames above it had returned since the current
             * frame was read. This frame was the leaf. */
            r->nframes = th->first;
            th->nframes = 0;
            th->truncated = false;
            tl.end = 0;
            tl.reg = IN_CUR;
            r->trimmed += !leaf_next;
            leaf_next = false;
        } else if (called_direct && inside &&
                   !in_that_call(r, fb, region_room(k, where, here), c, b, callee_owner,
                                 callee_func, callee_code)) {
            return ERR_CORRUPT; /* the callee above was copied from another call */
        } else if (!called_direct && callee_owner == OWNER_GENERATOR &&
                   (kind == PY_OP_OTHER || kind == PY_OP_PUSH)) {
            /* A generator resumed through C (3.11's FOR_ITER, next(), sum(), unpacking)
             * under a frame copied at an instruction whose C code cannot resume one: the
             * generator's copy and this one are from different moments (seen on 3.11:
             * `evens` at the line after its `for` above `numbers`). A generator closed as it
             * is freed also runs under any instruction; read again (brief, so rarely
             * dropped). */
            return ERR_CORRUPT;
        }
        if (owner == OWNER_THREAD && !inside && k->copied &&
            here - k->chunk < raw_u64(k->buf, o->ck_size)) {
            /* In the current chunk, past the copy: copy more next time. */
            k->missed = true;
            if (here - k->chunk + c->framesize > k->want_len)
                k->want_len = (size_t)(here - k->chunk) + c->framesize;
        }
        if (owner == OWNER_THREAD) {
            rc = tile(r, k, &tl, here, inside ? where : IN_NONE, c->framesize);
            if (rc)
                return rc;
        }
        /* CPython hides frames still in their prologue (before RESUME): the 3.12
         * trampoline and 3.13 _Py_InitCleanup shims are among them. */
        if (owner != OWNER_GENERATOR && prologue)
            continue;
        /* Checked here, after the skips, so that a stack of exactly max_depth Python frames
         * above its entry frames is not called truncated. */
        if (th->nframes >= r->max_depth) {
            th->truncated = true;
            k->seen_all = true;
            return 0;
        }
        stack_push_frame(r, th, (uint32_t)(c - r->codes.v), codecache_loc(c, b), entry, 0);
        pushed = true;
    }
    k->seen_all = true;
    int rc = tile_done(r, k, &tl);
    if (rc)
        return rc;
    /* Frames the group could have copied (outside frames it did not predict, an older
     * chunk it did not know): read again with them. Past the group's capacity, or for a
     * stack that cannot be copied, the frames read one by one are kept and counted. */
    if ((k->missed && !k->seen_overflow) || k->need_old) {
        r->needed++;
        return ERR_AGAIN;
    }
    if (k->missed || tl.foreign || (!k->copied && visited))
        r->unbracketed++;
    return 0;
}

/* --- Predictions and the read of one slot ------------------------------------------------- */

/* Puts `cf` first in the slot's list of cframe addresses, and forgets the others that have
 * not been the thread's cframe for PYREADER_CFRAME_IDLE predictions: each costs a remote range
 * a round (on its own page of the C stack, ~0.5 us), and one that comes back costs a single
 * read again. A thread's start-up (imports run from nested eval loops) used to leave four
 * behind for good. */
static void remember_cframe(struct pystack *k, uint64_t cf)
{
    unsigned i = 0;
    while (i < k->ncframe && k->cframe[i] != cf)
        i++;
    if (i == k->ncframe && k->ncframe < PYREADER_CFRAMES)
        k->ncframe++;
    if (i == PYREADER_CFRAMES)
        i = PYREADER_CFRAMES - 1;
    memmove(k->cframe + 1, k->cframe, i * sizeof(*k->cframe));
    memmove(k->cf_idle + 1, k->cf_idle, i * sizeof(*k->cf_idle));
    k->cframe[0] = cf;
    k->cf_idle[0] = 0;
    for (unsigned j = 1; j < k->ncframe; j++)
        k->cf_idle[j]++;
    while (k->ncframe > 1 && k->cf_idle[k->ncframe - 1] > PYREADER_CFRAME_IDLE)
        k->ncframe--;
}

/* Finds the older chunks below `chunk` (whose header `head` names the first) one read at a
 * time, and makes them part of the slot's group. Older chunks do not change while a newer
 * one exists, so reading them outside the bracket first is only a way to size the copies
 * the group then makes inside it. */
static void find_old_chunks(struct pyreader *r, struct pystack *k, const uint8_t *head)
{
    const struct py_offsets *o = &r->rt->off;
    k->nold = 0;
    uint64_t prev = raw_u64(head, o->ck_previous);
    size_t off = 0;
    while (prev && !(prev & 7) && k->nold < PYREADER_OLD_CHUNKS) {
        uint8_t h[64];
        if (mem_read(r->rt->pid, prev, h, (size_t)o->ck_data))
            return;
        uint64_t size = raw_u64(h, o->ck_size), top = raw_u64(h, o->ck_top);
        size_t live = (size_t)o->ck_data + (size_t)top * 8;
        if (size < FIRST_CHUNK || top > size / 8 || live > size || off + live > PYREADER_OLD_MAX)
            return;
        if (off + live > k->old_cap) {
            k->old_cap = off + live > 2 * k->old_cap ? off + live : 2 * k->old_cap;
            k->old_buf = xrealloc(k->old_buf, k->old_cap);
        }
        k->old[k->nold] = prev;
        k->old_len[k->nold] = live;
        k->old_off[k->nold++] = off;
        off += (live + 7) & ~(size_t)7;
        prev = raw_u64(h, o->ck_previous);
    }
}

/* Sets what the slot's next group copies from the freshest thread state it has and from what
 * its last walk met. */
static void predict(struct pyreader *r, size_t t)
{
    const struct py_offsets *o = &r->rt->off;
    struct pystack *k = &r->stk[t];
    const uint8_t *st = k->state_ok ? k->state : stack_blob(r, t) + r->state_off;
    uint64_t frame = state_field(r, st, o->ts_frame);
    uint64_t chunk = state_field(r, st, o->ts_datastack_chunk);
    uint64_t top = state_field(r, st, o->ts_datastack_top);
    if (o->cf_current_frame >= 0 && frame && !(frame & 7))
        remember_cframe(k, frame);
    bool same = k->len && chunk == k->chunk; /* buf holds this chunk's header */
    k->len = 0;
    if (chunk && !(chunk & 7) && top > chunk && top - chunk <= PYREADER_CHUNK_MAX) {
        /* Up to a little past today's top (or the frames the walk found above it), never
         * past the chunk's own allocation. */
        size_t used = (size_t)(top - chunk);
        if (same && k->want_len > used)
            used = k->want_len;
        /* The deepest top of late rounds (a high-water mark whose excess decays by 1/32 a
         * round), plus a little, to the end of that page: a page costs as much as a span,
         * the bytes within it almost nothing. */
        k->high = same && k->high > used ? k->high - (k->high - used) / 32 : used;
        uint64_t end = chunk + k->high + PYREADER_PREDICT_SLACK;
        size_t want = (size_t)(((end + 4095) & ~(uint64_t)4095) - chunk);
        uint64_t size = same ? raw_u64(k->buf, o->ck_size) : 0;
        if (size >= (uint64_t)(top - chunk) && want > size)
            want = (size_t)size;
        k->len = want < PYREADER_CHUNK_MAX ? want : PYREADER_CHUNK_MAX;
    }
    if (chunk != k->chunk)
        k->nold = 0; /* another chunk: its older ones are found again when needed */
    k->want_len = 0;
    k->chunk = chunk;
    if (k->need_old && same)
        find_old_chunks(r, k, k->buf);
    k->need_old = false;
    if (k->seen_all) {
        memcpy(k->extra, k->seen, k->nseen * sizeof(*k->extra));
        k->nextra = k->nseen;
    } else {
        /* A walk that stopped early (torn) met only the outside frames above where it
         * stopped: the ones copied for it stay, or the next group lacks those below (on 3.12,
         * the C-stack shim of every nested loop) and needs another attempt for them. */
        for (unsigned i = 0; i < k->nseen; i++) {
            unsigned j = 0;
            while (j < k->nextra && k->extra[j] != k->seen[i])
                j++;
            if (j == k->nextra && k->nextra < PYREADER_EXTRA)
                k->extra[k->nextra++] = k->seen[i];
        }
    }
}

void stack311_predict(struct pyreader *r, size_t t)
{
    predict(r, t);
}

int stack311_read_alone(struct pyreader *r, size_t t, uint64_t now_ns)
{
    struct mem_span sp[GROUP_MAX];
    uint8_t ok[GROUP_MAX];
    predict(r, t);
    size_t n = stack311_group(r, t, sp, 0, true);
    int bad = mem_readv(r->rt->pid, sp, n, ok);
    if (bad < 0)
        return bad;
    int rc = stack311_check(r, t, ok);
    return rc ? rc : stack311_walk(r, t, now_ns);
}
