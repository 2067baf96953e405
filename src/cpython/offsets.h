// SPDX-License-Identifier: MIT
// Byte offsets of the CPython structures the reader needs, one table per minor version
// (3.8-3.12 generated from the installed headers by tools/gen_offsets.py), and on 3.13+
// filled from the target's own _Py_DebugOffsets.
#ifndef CRUX_OFFSETS_H
#define CRUX_OFFSETS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "util/err.h"

/* The readers copy object headers into fixed buffers of these sizes; offsets_fit_reader()
 * checks that every field they take lies inside. The 3.13 offsets come from the target's
 * memory, so they are checked, not trusted. */
#define PY_IFRAME_MAX 128    /* _PyInterpreterFrame without localsplus: 72 on 3.11-3.13 */
#define PY_CODE_HEAD_MAX 512 /* PyCodeObject up to the fields read */
#define PY_BYTES_HEAD_MAX 64 /* PyBytesObject up to ob_sval */
#define PY_STR_HEAD_MAX 256  /* PyUnicodeObject header and the start of the data */
#define PY_TSTATE_MAX 4096   /* PyThreadState up to the fields read, per thread and round */
#define PY_DICT_HEAD_MAX 64  /* PyDictObject up to ma_values */
#define PY_KEYS_HEAD_MAX 64  /* PyDictKeysObject up to dk_indices */
#define PY_TYPE_HEAD_MAX 512 /* PyTypeObject up to tp_dictoffset and tp_flags */
#define PY_LONG_HEAD_MAX 64  /* PyLongObject up to three digits */

/* -1 marks a field the version does not have. All offsets are in bytes. */
struct py_offsets {
    uint32_t minor; /* 8 .. 13 (major is always 3) */

    /* _PyRuntimeState */
    int32_t rt_size;           /* bytes of _PyRuntime to read to cover the fields below */
    int32_t rt_finalizing;     /* _finalizing (3.9+) / finalizing (3.8): PyThreadState * */
    int32_t rt_interp_head;    /* interpreters.head */
    int32_t rt_interp_main;    /* interpreters.main */
    int32_t rt_tstate_current; /* gilstate.tstate_current, 3.8-3.11; -1 after */
    int32_t rt_gil;            /* ceval.gil (embedded struct), 3.8-3.11; -1 after */

    /* PyInterpreterState */
    int32_t is_size;
    int32_t is_next;
    int32_t is_id;
    int32_t is_tstate_head; /* tstate_head (3.8-3.10) / threads.head (3.11+) */
    int32_t is_gil_ptr;     /* ceval.gil pointer, 3.12+; -1 before */
    int32_t is_modules;     /* modules (3.8-3.11) / imports.modules (3.12+): sys.modules */

    /* struct _gil_runtime_state */
    int32_t gil_size;
    int32_t gil_locked;      /* int (atomic wrapper of int size) */
    int32_t gil_last_holder; /* PyThreadState * */

    /* PyThreadState */
    int32_t ts_size;
    int32_t ts_next;
    int32_t ts_interp;
    int32_t ts_frame;            /* frame (<=3.10) / cframe (3.11, 3.12) / current_frame (3.13+) */
    int32_t ts_thread_id;        /* pthread_self() value */
    int32_t ts_native_thread_id; /* 3.11+; -1 before */
    int32_t ts_id;
    int32_t ts_datastack_chunk; /* 3.11+ */
    int32_t ts_datastack_top;
    int32_t ts_datastack_limit;
    int32_t ts_status;         /* 3.12+: the 32-bit word holding the _status bitfield */
    int32_t ts_status_gil_bit; /* bit meaning "holds the GIL" in that word, -1 if none */
    int32_t cf_current_frame;  /* _PyCFrame.current_frame, 3.11 and 3.12; -1 otherwise */

    /* PyFrameObject, 3.8-3.10 */
    int32_t fo_size;
    int32_t fo_back;
    int32_t fo_code;
    int32_t fo_lasti; /* int: bytes (3.8, 3.9) or code units (3.10) */
    int32_t fo_state; /* char: f_executing (3.8, 3.9: 1 while running) / f_state (3.10: 0) */

    /* _PyInterpreterFrame, 3.11+ */
    int32_t if_size; /* header size, without localsplus */
    int32_t if_previous;
    int32_t if_code;     /* f_code (3.11, 3.12) / f_executable (3.13+) */
    int32_t if_globals;  /* f_globals */
    int32_t if_instr;    /* prev_instr (3.11, 3.12) / instr_ptr (3.13+) */
    int32_t if_owner;    /* char */
    int32_t if_is_entry; /* bool, 3.11 only; -1 otherwise */
    int32_t if_stacktop; /* int; 3.12, 3.13: -1 while the frame executes (not in a call) */
    int32_t if_funcobj;  /* f_func (3.11) / f_funcobj (3.12+): the function it runs */
    int32_t fn_code;     /* PyFunctionObject.func_code (3.11+) */

    /* _PyStackChunk, 3.11+ */
    int32_t ck_previous;
    int32_t ck_size;
    int32_t ck_top;
    int32_t ck_data;

    /* PyCodeObject */
    int32_t co_size; /* bytes to read to cover the fields below */
    int32_t co_filename;
    int32_t co_name;
    int32_t co_qualname;       /* 3.11+; -1 before */
    int32_t co_firstlineno;    /* int */
    int32_t co_linetable;      /* co_lnotab (3.8, 3.9) / co_linetable (3.10+): bytes */
    int32_t co_code;           /* co_code bytes, <=3.10; -1 after */
    int32_t co_code_adaptive;  /* 3.11+: inline bytecode; ob_size counts code units */
    int32_t co_firsttraceable; /* _co_firsttraceable, 3.11+ */
    int32_t co_framesize;      /* int: words of a frame on the data stack, 3.12+ */
    int32_t co_nlocalsplus;    /* int, 3.11+ (3.11 frame size: specials + nlocalsplus + stack) */
    int32_t co_stacksize;      /* int, 3.11+ */

    /* Objects */
    int32_t ob_type;
    int32_t var_size;         /* PyVarObject.ob_size */
    int32_t bytes_sval;       /* PyBytesObject.ob_sval */
    int32_t str_length;       /* PyASCIIObject.length */
    int32_t str_state;        /* PyASCIIObject.state (32-bit) */
    int32_t str_ascii_size;   /* sizeof(PyASCIIObject) */
    int32_t str_compact_size; /* sizeof(PyCompactUnicodeObject) */
    int32_t str_data;         /* PyUnicodeObject.data (not compact) */

    /* Dicts (cpython/pydict.c). PyDictObject: */
    int32_t dict_size;   /* sizeof(PyDictObject) */
    int32_t dict_used;   /* ma_used */
    int32_t dict_keys;   /* ma_keys */
    int32_t dict_values; /* ma_values: NULL unless split */
    /* PyDictKeysObject (3.8-3.10: Objects/dict-common.h, not installed: see the generator) */
    int32_t dk_indices;          /* the header's size: the hash indices start here */
    int32_t dk_size;             /* Py_ssize_t dk_size, 3.8-3.10; -1 after */
    int32_t dk_log2_size;        /* uint8_t, 3.11+ */
    int32_t dk_log2_index_bytes; /* uint8_t, 3.11+ */
    int32_t dk_kind;             /* uint8_t DictKeysKind, 3.11+ */
    int32_t dk_nentries;         /* Py_ssize_t: entries used (live or deleted) */
    int32_t dv_values; /* offsetof(PyDictValues, values): 8 on 3.13 (capacity, size, ...) */
    int32_t dv_valid;  /* uint8_t PyDictValues.valid, 3.13; -1 otherwise */
    /* Type objects */
    int32_t tp_basicsize;   /* Py_ssize_t */
    int32_t tp_flags;       /* unsigned long */
    int32_t tp_dictoffset;  /* Py_ssize_t */
    int32_t ht_cached_keys; /* PyHeapTypeObject.ht_cached_keys: the shared keys, 3.11+ */
    int32_t mod_dict;       /* PyModuleObject.md_dict */
    /* Ints */
    int32_t long_tag;    /* ob_size (3.8-3.11) / long_value.lv_tag (3.12+) */
    int32_t long_digits; /* ob_digit */
    int32_t long_shift;  /* PyLong_SHIFT: bits per digit (a value, not an offset) */
};

/* Returns the built-in table for 3.`minor`, or NULL when there is none. */
const struct py_offsets *offsets_for_minor(uint32_t minor);
/* What the reader needs of each opcode (specialized and instrumented ones included): its
 * length in code units with its inline caches (0: unknown, e.g. INSTRUMENTED_LINE) and its
 * kind, PY_OP_*. Generated from the headers for 3.11-3.13. */
#define PY_OP_OTHER 1
#define PY_OP_CALL 2 /* CALL, CALL_KW, CALL_FUNCTION_EX: may push the callee in the same loop */
#define PY_OP_GEN 3  /* FOR_ITER, SEND: may resume a generator in the same loop */
#define PY_OP_PUSH 4 /* BINARY_SUBSCR, LOAD_ATTR: may run __getitem__, a property, inline */
/* Unpacking, `in`, `lst += g`, slice stores, 3.11 PRECALL: C code that may resume a generator
 * (never pushes a frame in the same loop). */
#define PY_OP_ITER 5
#define PY_OP_BINOP 6 /* BINARY_OP in the generated table: ITER or OTHER by its oparg */
struct py_opcodes {
    uint8_t len[256];
    uint8_t kind[256];
};
/* The opcode table of 3.`minor`, or NULL when there is none (before 3.11). */
const struct py_opcodes *offsets_opcodes(uint32_t minor);

/* Fills `out` from the _Py_DebugOffsets block at the start of _PyRuntime (`raw`, `n` bytes
 * read from the target), for 3.13 and later. Checks the cookie, that the version is
 * `version_hex`, rejects free-threaded builds and offsets past the structure sizes.
 * Fields the block lacks come from the built-in 3.13 table. */
/* Whether every field the readers take from a thread state, frame, code, bytes or str header
 * lies inside the header as copied (see PY_*_MAX). */
bool offsets_fit_reader(const struct py_offsets *o);
/* Whether the dict, keys, type, module and int fields lie inside the PY_*_HEAD_MAX copies
 * the object readers (pydict.c) make. Apart from offsets_fit_reader: a build where they do
 * not is still sampled, without Python thread names. */
bool offsets_fit_objects(const struct py_offsets *o);

#define PY_TSTATE_FIELDS 9
/* The offsets of the thread-state fields the reader copies every round (-1: absent). */
void offsets_tstate_fields(const struct py_offsets *o, int32_t out[PY_TSTATE_FIELDS]);

int offsets_from_debug(const uint8_t *raw, size_t n, uint64_t *version_hex, struct py_offsets *out,
                       struct errbuf *eb) MUST_CHECK;

#endif
