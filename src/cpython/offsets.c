// SPDX-License-Identifier: MIT
// Reads a target's _Py_DebugOffsets block (3.13+) into struct py_offsets; the per-version
// tables themselves are generated into offsets_table.c.
#include "cpython/offsets.h"

#include <inttypes.h>
#include <stdbool.h>
#include <string.h>

#define DEBUG_COOKIE "xdebugpy"
#define DEBUG_COOKIE_LEN 8

/* A struct bigger than this in a debug block is garbage (the largest, 3.12's
 * _PyRuntimeState, is 460 KB); it also keeps every accepted offset within int32_t. */
#define DEBUG_MAX_STRUCT_SIZE ((uint64_t)1 << 26)

/* The 3.13 _Py_DebugOffsets (Include/internal/pycore_runtime.h, 3.13.0): `char cookie[8]`,
 * `uint64_t version` (PY_VERSION_HEX), `uint64_t free_threaded`, then sub-structs of
 * uint64_t, each opening with the size of the real struct. Word indexes below, each a
 * section's first word followed by its fields in header order. tools/gen_offsets.py checks
 * the section positions and the total size (584 bytes) against the 3.13.0 header. The layout
 * changes with every minor version (3.14 inserts fields mid-struct), so it is keyed on it. */
enum {
    W_VERSION = 1,
    W_FREE_THREADED = 2,
    W_RT = 3, /* runtime_state */
    W_RT_FINALIZING = W_RT + 1,
    W_RT_INTERP_HEAD = W_RT + 2,
    W_IS = 6, /* interpreter_state */
    W_IS_ID = W_IS + 1,
    W_IS_NEXT = W_IS + 2,
    W_IS_THREADS_HEAD = W_IS + 3,
    W_IS_MODULES = W_IS + 5, /* imports_modules */
    W_IS_CEVAL_GIL = W_IS + 8,
    W_IS_GIL = W_IS + 9,
    W_IS_GIL_LOCKED = W_IS + 11,
    W_IS_GIL_HOLDER = W_IS + 12,
    W_TS = 19, /* thread_state */
    W_TS_NEXT = W_TS + 2,
    W_TS_INTERP = W_TS + 3,
    W_TS_CURRENT_FRAME = W_TS + 4,
    W_TS_THREAD_ID = W_TS + 5,
    W_TS_NATIVE_THREAD_ID = W_TS + 6,
    W_TS_DATASTACK_CHUNK = W_TS + 7,
    W_TS_STATUS = W_TS + 8,
    W_IF = 28, /* interpreter_frame */
    W_IF_PREVIOUS = W_IF + 1,
    W_IF_EXECUTABLE = W_IF + 2,
    W_IF_INSTR_PTR = W_IF + 3,
    W_IF_LOCALSPLUS = W_IF + 4,
    W_IF_OWNER = W_IF + 5,
    W_CO = 34, /* code_object */
    W_CO_FILENAME = W_CO + 1,
    W_CO_NAME = W_CO + 2,
    W_CO_QUALNAME = W_CO + 3,
    W_CO_LINETABLE = W_CO + 4,
    W_CO_FIRSTLINENO = W_CO + 5,
    W_CO_CODE_ADAPTIVE = W_CO + 9,
    W_OB = 44, /* pyobject */
    W_OB_TYPE = W_OB + 1,
    W_TYPE = 46, /* type_object */
    W_TYPE_FLAGS = W_TYPE + 3,
    W_DICT = 56, /* dict_object */
    W_DICT_KEYS = W_DICT + 1,
    W_DICT_VALUES = W_DICT + 2,
    W_LONG = 61, /* long_object */
    W_LONG_TAG = W_LONG + 1,
    W_LONG_DIGITS = W_LONG + 2,
    W_BYTES = 64, /* bytes_object */
    W_BYTES_SIZE = W_BYTES + 1,
    W_BYTES_SVAL = W_BYTES + 2,
    W_STR = 67, /* unicode_object */
    W_STR_STATE = W_STR + 1,
    W_STR_LENGTH = W_STR + 2,
    W_STR_ASCII_SIZE = W_STR + 3,
    W_WORDS_313 = 73,
};

struct section {
    const char *name;
    unsigned first;      /* word index of `size` */
    unsigned words;      /* `size` included */
    unsigned size_field; /* word index of a field that is a size (<= size), 0 if none */
};

static const struct section sections_313[] = {
    {"runtime_state", W_RT, 3, 0},
    {"interpreter_state", W_IS, 13, 0},
    {"thread_state", W_TS, 9, 0},
    {"interpreter_frame", W_IF, 6, 0},
    {"code_object", W_CO, 10, 0},
    {"pyobject", W_OB, 2, 0},
    {"type_object", W_TYPE, 4, 0},
    {"tuple_object", 50, 3, 0},
    {"list_object", 53, 3, 0},
    {"dict_object", W_DICT, 3, 0},
    {"float_object", 59, 2, 0},
    {"long_object", W_LONG, 3, 0},
    {"bytes_object", W_BYTES, 3, 0},
    {"unicode_object", W_STR, 4, W_STR_ASCII_SIZE},
    {"gc", 71, 2, 0},
};

static uint64_t word(const uint8_t *raw, unsigned i)
{
    uint64_t v;
    memcpy(&v, raw + (size_t)i * 8, sizeof v);
    return v;
}

/* Every section's size is plausible and every offset lies inside its struct. */
static int check_sections(const uint8_t *raw, struct errbuf *eb)
{
    for (size_t s = 0; s < sizeof sections_313 / sizeof sections_313[0]; s++) {
        const struct section *sec = &sections_313[s];
        uint64_t size = word(raw, sec->first);
        if (size == 0 || size > DEBUG_MAX_STRUCT_SIZE)
            return errbuf_set(eb, ERR_CORRUPT, "_Py_DebugOffsets.%s.size %" PRIu64 " implausible",
                              sec->name, size);
        for (unsigned i = sec->first + 1; i < sec->first + sec->words; i++) {
            uint64_t v = word(raw, i);
            bool ok = i == sec->size_field ? v <= size : v < size;
            if (!ok)
                return errbuf_set(eb, ERR_CORRUPT,
                                  "_Py_DebugOffsets.%s field %u = %" PRIu64 " past size %" PRIu64,
                                  sec->name, i - sec->first, v, size);
        }
    }
    return 0;
}

/* The cookie, version and build flavour, fixed for every minor version. */
static int check_header(const uint8_t *raw, size_t n, uint64_t *version_hex, struct errbuf *eb)
{
    if (n < 3 * 8 || memcmp(raw, DEBUG_COOKIE, DEBUG_COOKIE_LEN) != 0)
        return errbuf_set(eb, ERR_CORRUPT, "no _Py_DebugOffsets cookie \"%s\" at _PyRuntime",
                          DEBUG_COOKIE);
    uint64_t v = word(raw, W_VERSION);
    unsigned major = (unsigned)(v >> 24) & 0xff;
    unsigned minor = (unsigned)(v >> 16) & 0xff;
    unsigned micro = (unsigned)(v >> 8) & 0xff;
    uint64_t free_threaded = word(raw, W_FREE_THREADED);
    if (v >> 32 != 0 || (major == 3 && minor < 13) || free_threaded > 1)
        return errbuf_set(eb, ERR_CORRUPT,
                          "_Py_DebugOffsets version 0x%08" PRIx64 ", free_threaded %" PRIu64
                          " implausible",
                          v, free_threaded);
    if (major != 3)
        return errbuf_set(eb, ERR_VERSION, "Python %u.%u.%u is not supported", major, minor, micro);
    if (free_threaded)
        return errbuf_set(eb, ERR_VERSION,
                          "Python %u.%u.%u: free-threaded builds are not supported yet", major,
                          minor, micro);
    if (minor > 13)
        return errbuf_set(eb, ERR_VERSION,
                          "Python %u.%u.%u: _Py_DebugOffsets layout of 3.%u is not known "
                          "(supported: 3.8 to 3.13)",
                          major, minor, micro, minor);
    if (*version_hex != 0 && *version_hex != v)
        return errbuf_set(eb, ERR_CORRUPT,
                          "_Py_DebugOffsets version 0x%08" PRIx64 " is not Py_Version 0x%08" PRIx64,
                          v, *version_hex);
    if (n < W_WORDS_313 * 8)
        return errbuf_set(eb, ERR_CORRUPT, "_Py_DebugOffsets truncated: %zu of %d bytes", n,
                          W_WORDS_313 * 8);
    *version_hex = v;
    return 0;
}

static int32_t off(const uint8_t *raw, unsigned i)
{
    return (int32_t)word(raw, i); /* < DEBUG_MAX_STRUCT_SIZE, checked */
}

/* A field the block lacks, taken at its 3.13 distance from a neighbour the block has: right
 * for 3.13.0 and still right if a patch release moved the pair together. */
static int32_t beside(int32_t anchor, int32_t table_field, int32_t table_anchor)
{
    return anchor + (table_field - table_anchor);
}

/* The fields the block has, over a copy of the 3.13 table for the rest. */
static void fill(const uint8_t *raw, const struct py_offsets *t, struct py_offsets *o)
{
    *o = *t;
    o->rt_size = off(raw, W_RT);
    o->rt_finalizing = off(raw, W_RT_FINALIZING);
    o->rt_interp_head = off(raw, W_RT_INTERP_HEAD);
    o->rt_interp_main = beside(o->rt_interp_head, t->rt_interp_main, t->rt_interp_head);

    o->is_size = off(raw, W_IS);
    o->is_next = off(raw, W_IS_NEXT);
    o->is_id = off(raw, W_IS_ID);
    o->is_tstate_head = off(raw, W_IS_THREADS_HEAD);
    o->is_gil_ptr = off(raw, W_IS_CEVAL_GIL);
    o->is_modules = off(raw, W_IS_MODULES);
    /* The block gives the lock fields of the interpreter's own _gil; the reader follows the
     * ceval.gil pointer instead, so it needs them relative to the GIL struct. */
    o->gil_locked = off(raw, W_IS_GIL_LOCKED) - off(raw, W_IS_GIL);
    o->gil_last_holder = off(raw, W_IS_GIL_HOLDER) - off(raw, W_IS_GIL);

    o->ts_size = off(raw, W_TS);
    o->ts_next = off(raw, W_TS_NEXT);
    o->ts_interp = off(raw, W_TS_INTERP);
    o->ts_frame = off(raw, W_TS_CURRENT_FRAME);
    o->ts_thread_id = off(raw, W_TS_THREAD_ID);
    o->ts_native_thread_id = off(raw, W_TS_NATIVE_THREAD_ID);
    o->ts_datastack_chunk = off(raw, W_TS_DATASTACK_CHUNK);
    /* 3.13 PyThreadState: ... uint64_t id; datastack_chunk; datastack_top; datastack_limit. */
    o->ts_id = beside(o->ts_datastack_chunk, t->ts_id, t->ts_datastack_chunk);
    o->ts_datastack_top = beside(o->ts_datastack_chunk, t->ts_datastack_top, t->ts_datastack_chunk);
    o->ts_datastack_limit =
        beside(o->ts_datastack_chunk, t->ts_datastack_limit, t->ts_datastack_chunk);
    o->ts_status = off(raw, W_TS_STATUS);

    o->if_size = off(raw, W_IF_LOCALSPLUS);
    o->if_previous = off(raw, W_IF_PREVIOUS);
    o->if_code = off(raw, W_IF_EXECUTABLE);
    /* 3.13 _PyInterpreterFrame: f_executable, previous, f_funcobj, f_globals, ... */
    o->if_globals = beside(o->if_previous, t->if_globals, t->if_previous);
    o->if_funcobj = beside(o->if_previous, t->if_funcobj, t->if_previous);
    o->if_instr = off(raw, W_IF_INSTR_PTR);
    /* ... instr_ptr, int stacktop, uint16_t return_offset, char owner. */
    o->if_stacktop = beside(o->if_instr, t->if_stacktop, t->if_instr);
    o->if_owner = off(raw, W_IF_OWNER);

    /* The block's code_object.size is sizeof(PyCodeObject), which counts one byte of
     * co_code_adaptive plus padding; the header ends where the bytecode starts. */
    o->co_size = off(raw, W_CO_CODE_ADAPTIVE);
    o->co_filename = off(raw, W_CO_FILENAME);
    o->co_name = off(raw, W_CO_NAME);
    o->co_qualname = off(raw, W_CO_QUALNAME);
    o->co_firstlineno = off(raw, W_CO_FIRSTLINENO);
    o->co_linetable = off(raw, W_CO_LINETABLE);
    o->co_code_adaptive = off(raw, W_CO_CODE_ADAPTIVE);

    o->ob_type = off(raw, W_OB_TYPE);
    o->var_size = off(raw, W_BYTES_SIZE);
    o->bytes_sval = off(raw, W_BYTES_SVAL);
    o->str_length = off(raw, W_STR_LENGTH);
    o->str_state = off(raw, W_STR_STATE);
    /* PyCompactUnicodeObject extends PyASCIIObject, PyUnicodeObject extends that. */
    o->str_ascii_size = off(raw, W_STR_ASCII_SIZE);
    o->str_compact_size = beside(o->str_ascii_size, t->str_compact_size, t->str_ascii_size);
    o->str_data = beside(o->str_ascii_size, t->str_data, t->str_ascii_size);

    /* Dicts, types and ints: what the block has; the keys object, the values and the other
     * type fields are not in it (CPYTHON.md section 9) and come from the table. */
    o->dict_keys = off(raw, W_DICT_KEYS);
    o->dict_values = off(raw, W_DICT_VALUES);
    o->tp_flags = off(raw, W_TYPE_FLAGS);
    o->long_tag = off(raw, W_LONG_TAG);
    o->long_digits = off(raw, W_LONG_DIGITS);
}

/* A field of `width` bytes at `off` (-1: absent) inside the first `end` bytes. */
static bool within(int32_t off, int32_t width, int32_t end)
{
    return off < 0 || off + width <= end;
}

void offsets_tstate_fields(const struct py_offsets *o, int32_t out[PY_TSTATE_FIELDS])
{
    const int32_t f[PY_TSTATE_FIELDS] = {o->ts_next,
                                         o->ts_interp,
                                         o->ts_frame,
                                         o->ts_thread_id,
                                         o->ts_native_thread_id,
                                         o->ts_id,
                                         o->ts_datastack_chunk,
                                         o->ts_datastack_top,
                                         o->ts_status};
    memcpy(out, f, sizeof(f));
}

bool offsets_fit_reader(const struct py_offsets *o)
{
    bool frame = o->if_size < 0 ||
                 (o->if_size <= PY_IFRAME_MAX && within(o->if_code, 8, o->if_size) &&
                  within(o->if_previous, 8, o->if_size) && within(o->if_instr, 8, o->if_size) &&
                  within(o->if_globals, 8, o->if_size) && within(o->if_owner, 1, o->if_size) &&
                  within(o->if_is_entry, 1, o->if_size) && within(o->if_stacktop, 4, o->if_size) &&
                  within(o->if_funcobj, 8, o->if_size));
    int32_t co = o->co_size;
    bool code = co > 0 && co <= PY_CODE_HEAD_MAX && within(o->ob_type, 8, co) &&
                within(o->var_size, 8, co) && within(o->co_filename, 8, co) &&
                within(o->co_name, 8, co) && within(o->co_qualname, 8, co) &&
                within(o->co_linetable, 8, co) && within(o->co_code, 8, co) &&
                within(o->co_firstlineno, 4, co) && within(o->co_firsttraceable, 4, co) &&
                within(o->co_framesize, 4, co) && within(o->co_nlocalsplus, 4, co) &&
                within(o->co_stacksize, 4, co);
    int32_t by = o->bytes_sval;
    bool bytes = by > 0 && by <= PY_BYTES_HEAD_MAX && within(o->ob_type, 8, by) &&
                 within(o->var_size, 8, by);
    int32_t as = o->str_ascii_size;
    bool str = as > 0 && as <= PY_STR_HEAD_MAX && o->str_compact_size <= PY_STR_HEAD_MAX &&
               within(o->str_data, 8, PY_STR_HEAD_MAX) && within(o->ob_type, 8, as) &&
               within(o->str_length, 8, as) && within(o->str_state, 4, as);
    int32_t ts[PY_TSTATE_FIELDS];
    offsets_tstate_fields(o, ts);
    bool tstate = true;
    for (size_t i = 0; i < PY_TSTATE_FIELDS; i++)
        tstate = tstate && within(ts[i], 8, PY_TSTATE_MAX);
    return tstate && frame && code && bytes && str;
}

bool offsets_fit_objects(const struct py_offsets *o)
{
    int32_t d = o->dict_size, k = o->dk_indices;
    bool dict = d > 0 && d <= PY_DICT_HEAD_MAX && within(o->ob_type, 8, d) &&
                within(o->dict_used, 8, d) && within(o->dict_keys, 8, d) &&
                within(o->dict_values, 8, d);
    bool keys = k > 0 && k <= PY_KEYS_HEAD_MAX && within(o->dk_size, 8, k) &&
                within(o->dk_log2_size, 1, k) && within(o->dk_log2_index_bytes, 1, k) &&
                within(o->dk_kind, 1, k) && o->dk_nentries >= 0 && within(o->dk_nentries, 8, k) &&
                (o->dk_size >= 0 || o->dk_log2_size >= 0);
    bool values = o->dv_values >= 0 && o->dv_values <= 64 && within(o->dv_valid, 1, o->dv_values);
    bool type = within(o->tp_basicsize, 8, PY_TYPE_HEAD_MAX) && o->tp_basicsize >= 0 &&
                within(o->tp_flags, 8, PY_TYPE_HEAD_MAX) && o->tp_flags >= 0 &&
                within(o->tp_dictoffset, 8, PY_TYPE_HEAD_MAX) && o->tp_dictoffset >= 0;
    bool lng = within(o->long_tag, 8, PY_LONG_HEAD_MAX) && o->long_tag >= 0 && o->long_digits > 0 &&
               o->long_digits + 12 <= PY_LONG_HEAD_MAX && o->long_shift == 30;
    return dict && keys && values && type && lng && o->mod_dict > 0 && o->mod_dict < 64 &&
           o->is_modules >= 0;
}

/* Fields placed beside an anchor must still fall inside their struct, and every field the
 * readers take must lie inside the header they copy. */
static int check_derived(const struct py_offsets *o, struct errbuf *eb)
{
    bool ok = o->rt_interp_main < o->rt_size && o->ts_id >= 0 && o->ts_id < o->ts_size &&
              o->ts_datastack_limit < o->ts_size && o->gil_locked >= 0 &&
              o->gil_locked < o->gil_size && o->gil_last_holder >= 0 &&
              o->gil_last_holder < o->gil_size && o->co_firsttraceable < o->co_size &&
              o->is_modules >= 0 && o->is_modules < o->is_size && offsets_fit_reader(o);
    if (!ok)
        return errbuf_set(eb, ERR_CORRUPT, "_Py_DebugOffsets disagree with the 3.13 layout");
    return 0;
}

/* `*version_hex`: on entry the target's Py_Version, or 0 when unknown; on success the
 * version the block records. */
int offsets_from_debug(const uint8_t *raw, size_t n, uint64_t *version_hex, struct py_offsets *out,
                       struct errbuf *eb)
{
    int rc = check_header(raw, n, version_hex, eb);
    if (rc)
        return rc;
    rc = check_sections(raw, eb);
    if (rc)
        return rc;
    const struct py_offsets *t = offsets_for_minor(13);
    struct py_offsets o;
    fill(raw, t, &o);
    rc = check_derived(&o, eb);
    if (rc)
        return rc;
    *out = o;
    return 0;
}
