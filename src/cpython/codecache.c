// SPDX-License-Identifier: MIT
// Code object cache. A hit costs no read: frames are checked against the cached bytecode
// span instead, and entries older than a few hundred milliseconds are re-read, because code
// objects are freed and their addresses reused (exec, reloads, short-lived lambdas).
#include "cpython/codecache.h"

#include <stdlib.h>
#include <string.h>

#include "cpython/pystr.h"
#include "target/mem.h"
#include "util/xalloc.h"
#include "util/rawfield.h"

#define CODE_READ_MAX PY_CODE_HEAD_MAX
#define NAME_MAX_BYTES 1024
#define FILE_MAX_BYTES 4096
#define LINETABLE_MAX ((size_t)1 << 20)
#define CODE_BYTES_MAX ((uint64_t)64 << 20)
#define FRAME_WORDS_MAX ((int64_t)1 << 20) /* a frame past 8 MiB is a torn read */
#define OPS_CODE_MAX ((uint32_t)1 << 20)   /* bytecode read for instruction boundaries */

void codecache_init(struct codecache *c, const struct pyruntime *rt)
{
    memset(c, 0, sizeof(*c));
    c->rt = rt;
    hmap_init(&c->index);
    c->next_id = 1;
    c->revalidate_ns = CODECACHE_REVALIDATE_NS;
    c->max_entries = CODECACHE_MAX_ENTRIES;
}

static void entry_fini(struct pycode *e)
{
    free(e->ops);
    free(e->qualname);
    free(e->filename);
    free(e->runs);
    memset(e, 0, sizeof(*e));
}

void codecache_round(struct codecache *c)
{
    if (c->n <= c->max_entries)
        return;
    /* Entry ids stay unique across the reset (next_id goes on), so that what callers keyed
     * by id never meets a new entry. */
    for (uint32_t i = 0; i < c->n; i++)
        entry_fini(&c->v[i]);
    c->n = 0;
    hmap_clear(&c->index);
    c->resets++;
}

void codecache_fini(struct codecache *c)
{
    for (uint32_t i = 0; i < c->n; i++)
        entry_fini(&c->v[i]);
    free(c->v);
    hmap_fini(&c->index);
    memset(c, 0, sizeof(*c));
}

/* Reads a bytes object: its length into *n and up to `max` bytes of data into a new buffer
 * (*out, the caller frees it). */
static int read_bytes(const struct pyruntime *rt, uint64_t addr, uint8_t **out, size_t *n)
{
    const struct py_offsets *o = &rt->off;
    uint8_t head[PY_BYTES_HEAD_MAX];
    if (!addr || (addr & 7))
        return ERR_CORRUPT;
    int rc = mem_read(rt->pid, addr, head, (size_t)o->bytes_sval);
    if (rc)
        return rc;
    if (rt->type_bytes && raw_u64(head, o->ob_type) != rt->type_bytes)
        return ERR_CORRUPT;
    int64_t len = (int64_t)raw_u64(head, o->var_size);
    if (len < 0 || (size_t)len > LINETABLE_MAX)
        return ERR_CORRUPT;
    uint8_t *data = xmalloc((size_t)len + 1);
    rc = len ? mem_read(rt->pid, addr + (uint64_t)o->bytes_sval, data, (size_t)len) : 0;
    if (rc) {
        free(data);
        return rc;
    }
    *out = data;
    *n = (size_t)len;
    return 0;
}

static int bytes_len(const struct pyruntime *rt, uint64_t addr, uint64_t *len)
{
    uint8_t head[PY_BYTES_HEAD_MAX];
    const struct py_offsets *o = &rt->off;
    if (!addr || (addr & 7))
        return ERR_CORRUPT;
    int rc = mem_read(rt->pid, addr, head, (size_t)o->var_size + 8);
    if (rc)
        return rc;
    if (rt->type_bytes && raw_u64(head, o->ob_type) != rt->type_bytes)
        return ERR_CORRUPT;
    *len = raw_u64(head, o->var_size);
    return *len > CODE_BYTES_MAX ? ERR_CORRUPT : 0;
}

static int read_header(const struct pyruntime *rt, uint64_t addr, uint8_t *head)
{
    const struct py_offsets *o = &rt->off;
    if (!addr || (addr & 7))
        return ERR_CORRUPT;
    size_t want = (size_t)o->co_size < CODE_READ_MAX ? (size_t)o->co_size : CODE_READ_MAX;
    int rc = mem_read(rt->pid, addr, head, want);
    if (rc)
        return rc;
    if (rt->type_code && raw_u64(head, o->ob_type) != rt->type_code)
        return ERR_CORRUPT;
    return 0;
}

static void head_ident(const struct py_offsets *o, const uint8_t *head, uint64_t ident[3])
{
    ident[0] = raw_u64(head, o->co_filename);
    ident[1] = raw_u64(head, o->co_qualname >= 0 ? o->co_qualname : o->co_name);
    ident[2] = raw_u64(head, o->co_linetable);
}

/* 3.11+: the kind of instruction starting at each code unit of `e`, found by walking the
 * bytecode with the version's instruction lengths (specialization and instrumentation
 * rewrite an opcode within its family, so boundaries read once stay true). Leaves e->ops NULL
 * when it cannot: an opcode whose length the table does not know (an instrumented line keeps
 * the real opcode aside), or bytecode too large. */
#define NB_INPLACE_ADD 13 /* BINARY_OP's oparg for `+=` (3.11-3.13 opcode.py _nb_ops) */
#define NB_INPLACE_OR 20

static void mark_ops(const struct pyruntime *rt, struct pycode *e)
{
    const struct py_opcodes *t = offsets_opcodes(rt->off.minor);
    if (!t || e->code_bytes > OPS_CODE_MAX)
        return;
    size_t units = e->code_bytes / 2;
    uint16_t *code = xmalloc(units * sizeof(*code));
    if (mem_read(rt->pid, e->code_start, code, units * sizeof(*code))) {
        free(code);
        return;
    }
    uint8_t *ops = xcalloc(units ? units : 1, 1);
    size_t u = 0;
    while (u < units) {
        uint8_t op = (uint8_t)(code[u] & 0xff); /* _Py_OPCODE: the low byte (little-endian) */
        if (!t->len[op]) {
            free(ops);
            free(code);
            return;
        }
        ops[u] = t->kind[op];
        if (ops[u] == PY_OP_BINOP) {
            /* Only `lst += g` (NB_INPLACE_ADD) and `d |= g` (NB_INPLACE_OR) iterate. */
            uint8_t arg = (uint8_t)(code[u] >> 8);
            ops[u] = arg == NB_INPLACE_ADD || arg == NB_INPLACE_OR ? PY_OP_ITER : PY_OP_OTHER;
        }
        u += t->len[op];
    }
    free(code);
    e->ops = ops;
}

int codecache_starts_at(const struct pycode *code, int64_t b)
{
    if (!code->ops || b < 0 || b >= (int64_t)code->code_bytes || (b & 1))
        return -1;
    return code->ops[b / 2] != 0;
}

int codecache_kind_at(const struct pycode *code, int64_t b)
{
    if (!code->ops || b < 0 || b >= (int64_t)code->code_bytes || (b & 1))
        return 0;
    if (code->kind_b == b)
        return code->kind;
    /* An instruction is at most a few dozen units long (LOAD_ATTR: 1 + 9 caches). */
    int kind = 0;
    for (int64_t u = b / 2; u >= 0 && u > b / 2 - 32 && !kind; u--)
        kind = code->ops[u];
    struct pycode *m = (struct pycode *)code; /* a memo, as in codecache_loc */
    m->kind_b = b;
    m->kind = kind;
    return kind;
}

/* Reads the code object at `addr` into a fresh entry `e`. */
static int load(const struct pyruntime *rt, uint64_t addr, struct pycode *e)
{
    const struct py_offsets *o = &rt->off;
    uint8_t head[CODE_READ_MAX];
    memset(e, 0, sizeof(*e));
    e->memo_b = e->kind_b = INT64_MIN;
    int rc = read_header(rt, addr, head);
    if (rc)
        return rc;
    e->addr = addr;
    head_ident(o, head, e->ident);
    e->firstlineno = raw_i32(head, o->co_firstlineno);
    if (e->firstlineno < 0)
        return ERR_CORRUPT;
    if (o->co_code_adaptive >= 0) {
        int64_t units = (int64_t)raw_u64(head, o->var_size);
        if (units <= 0 || (uint64_t)units * 2 > CODE_BYTES_MAX)
            return ERR_CORRUPT;
        e->code_start = addr + (uint64_t)o->co_code_adaptive;
        e->code_bytes = (uint32_t)(units * 2);
        e->firsttraceable = (uint32_t)raw_i32(head, o->co_firsttraceable);
        /* The data stack gives each frame co_framesize words (3.12+); 3.11 pushes the
         * specials (the header up to localsplus) + nlocalsplus + stacksize words. */
        int64_t words = o->co_framesize >= 0
                            ? raw_i32(head, o->co_framesize)
                            : (int64_t)o->if_size / 8 + raw_i32(head, o->co_nlocalsplus) +
                                  raw_i32(head, o->co_stacksize);
        if (words * 8 < o->if_size || words > FRAME_WORDS_MAX)
            return ERR_CORRUPT;
        e->framesize = (uint32_t)(words * 8);
        int32_t nlocals = o->co_nlocalsplus >= 0 ? raw_i32(head, o->co_nlocalsplus) : 0;
        e->nlocals = nlocals > 0 && (int64_t)nlocals < words ? (uint32_t)nlocals : 0;
        mark_ops(rt, e);
    } else {
        uint64_t len;
        rc = bytes_len(rt, raw_u64(head, o->co_code), &len);
        if (rc)
            return rc;
        e->code_bytes = (uint32_t)len;
    }
    char name[NAME_MAX_BYTES], file[FILE_MAX_BYTES];
    size_t nlen, flen;
    rc = pystr_read(rt->pid, o, rt->type_str, e->ident[1], name, sizeof(name), &nlen);
    if (!rc)
        rc = pystr_read(rt->pid, o, rt->type_str, e->ident[0], file, sizeof(file), &flen);
    if (rc)
        return rc == ERR_PROC_GONE || rc == ERR_PERM ? rc : ERR_CORRUPT;
    uint8_t *tab = NULL;
    size_t tlen = 0;
    rc = read_bytes(rt, e->ident[2], &tab, &tlen);
    if (rc)
        return rc;
    rc = linetable_decode(linetable_format_for(o->minor), tab, tlen, e->firstlineno, e->code_bytes,
                          &e->runs, &e->nruns);
    free(tab);
    if (rc) {
        /* A table the decoder rejects costs the lines of this code object, not the stacks
         * it is in: its frames report no line (3.13's _Py_InitCleanup shim did, before the
         * decoder accepted its table; see linetable.c). */
        free(e->runs);
        e->runs = NULL;
        e->nruns = 0;
    }
    e->qualname = xstrndup(name, nlen);
    e->filename = xstrndup(file, flen);
    return 0;
}

/* Re-reads the header and compares the identity fields. */
static int still_valid(const struct pyruntime *rt, const struct pycode *e)
{
    uint8_t head[CODE_READ_MAX];
    if (read_header(rt, e->addr, head))
        return 0;
    uint64_t ident[3];
    head_ident(&rt->off, head, ident);
    return memcmp(ident, e->ident, sizeof(ident)) == 0 &&
           raw_i32(head, rt->off.co_firstlineno) == e->firstlineno;
}

int codecache_get(struct codecache *c, uint64_t addr, uint64_t now_ns, const struct pycode **out)
{
    uint64_t idx;
    if (hmap_get(&c->index, addr, &idx)) {
        struct pycode *e = &c->v[idx];
        if (now_ns - e->checked_ns < c->revalidate_ns || still_valid(c->rt, e)) {
            if (now_ns - e->checked_ns >= c->revalidate_ns)
                e->checked_ns = now_ns;
            *out = e;
            return 0;
        }
        struct pycode fresh;
        int rc = load(c->rt, addr, &fresh);
        if (rc) {
            entry_fini(&fresh);
            return rc;
        }
        entry_fini(e);
        *e = fresh;
        e->id = c->next_id++;
        e->checked_ns = now_ns;
        c->reloads++;
        *out = e;
        return 0;
    }
    c->misses++;
    struct pycode fresh;
    int rc = load(c->rt, addr, &fresh);
    if (rc) {
        entry_fini(&fresh);
        return rc;
    }
    if (c->n == c->cap) {
        c->cap = c->cap ? c->cap * 2 : 256;
        c->v = xrealloc(c->v, c->cap * sizeof(*c->v));
    }
    fresh.id = c->next_id++;
    fresh.checked_ns = now_ns;
    c->v[c->n] = fresh;
    hmap_put(&c->index, addr, c->n);
    *out = &c->v[c->n++];
    return 0;
}

int codecache_check_many(struct codecache *c, const uint64_t *addrs, size_t n, uint64_t now_ns)
{
    const struct py_offsets *o = &c->rt->off;
    size_t hlen = (size_t)o->co_size < CODE_READ_MAX ? (size_t)o->co_size : CODE_READ_MAX;
    struct mem_span sp[CODECACHE_CHECK_BATCH];
    uint8_t ok[CODECACHE_CHECK_BATCH];
    uint32_t idx[CODECACHE_CHECK_BATCH];
    uint8_t *heads = xmalloc(CODECACHE_CHECK_BATCH * hlen);
    size_t k = 0;
    for (size_t i = 0; i < n && k < CODECACHE_CHECK_BATCH; i++) {
        uint64_t v;
        if (!hmap_get(&c->index, addrs[i], &v) || c->v[v].checked_ns == now_ns)
            continue;
        c->v[v].checked_ns = now_ns; /* also dedups repeated addresses */
        idx[k] = (uint32_t)v;
        sp[k] = (struct mem_span){addrs[i], heads + k * hlen, hlen};
        k++;
    }
    int bad = k ? mem_readv(c->rt->pid, sp, k, ok) : 0;
    if (bad < 0) {
        free(heads);
        return bad;
    }
    for (size_t j = 0; j < k; j++) {
        struct pycode *e = &c->v[idx[j]];
        const uint8_t *h = heads + j * hlen;
        uint64_t ident[3];
        head_ident(o, h, ident);
        bool same = ok[j] && (!c->rt->type_code || raw_u64(h, o->ob_type) == c->rt->type_code) &&
                    memcmp(ident, e->ident, sizeof(ident)) == 0 &&
                    raw_i32(h, o->co_firstlineno) == e->firstlineno;
        if (!same)
            e->checked_ns = now_ns - c->revalidate_ns - 1; /* expired: reloaded on next get */
    }
    free(heads);
    return 0;
}

int codecache_recheck(struct codecache *c, uint64_t addr, uint64_t now_ns,
                      const struct pycode **out)
{
    uint64_t idx;
    if (hmap_get(&c->index, addr, &idx))
        c->v[idx].checked_ns = now_ns - c->revalidate_ns; /* expired: re-read on get */
    return codecache_get(c, addr, now_ns, out);
}

int codecache_get_framed(struct codecache *c, uint64_t addr, uint64_t globals, uint64_t now_ns,
                         const struct pycode **out)
{
    uint64_t idx;
    if (globals && hmap_get(&c->index, addr, &idx) && c->v[idx].globals &&
        c->v[idx].globals != globals)
        c->v[idx].checked_ns = now_ns - c->revalidate_ns; /* expired: re-read on get */
    int rc = codecache_get(c, addr, now_ns, out);
    if (rc == 0 && globals)
        c->v[*out - c->v].globals = globals;
    return rc;
}

int32_t codecache_line(const struct pycode *code, int64_t b)
{
    return linetable_lookup(code->runs, code->nruns, b, code->firstlineno);
}

struct pyloc codecache_loc(const struct pycode *code, int64_t b)
{
    if (code->memo_b == b)
        return code->memo;
    size_t i = linetable_find(code->runs, code->nruns, b);
    struct pyloc loc;
    if (i == SIZE_MAX)
        loc = (struct pyloc){code->firstlineno, 0, 0};
    else if (i >= code->nruns)
        loc = (struct pyloc){-1, 0, (uint32_t)code->nruns + 1};
    else
        loc = (struct pyloc){code->runs[i].line, code->runs[i].col, (uint32_t)i + 1};
    /* The memo is not the entry's meaning: entries are the cache's own, never const. */
    struct pycode *m = (struct pycode *)code;
    m->memo_b = b;
    m->memo = loc;
    return loc;
}
