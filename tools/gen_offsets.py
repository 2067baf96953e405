#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Generates src/cpython/offsets_table.c from the installed CPython headers.

For every pyenv CPython 3.8-3.13 (and Debian's /usr/include/python3.11, which must give the
same table as pyenv 3.11) it writes a small C program that includes Python.h and the internal
headers with -DPy_BUILD_CORE, prints offsetof()/sizeof() for every field of
`struct py_offsets` (src/cpython/offsets.h), compiles and runs it with gcc, and emits one
`static const struct py_offsets` per minor version plus offsets_for_minor().

Usage: tools/gen_offsets.py [-o src/cpython/offsets_table.c]   (stdlib only; needs gcc, pyenv)
"""

import argparse
import os
import re
import subprocess
import sys
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
HEADER = os.path.join(ROOT, "src", "cpython", "offsets.h")
DEFAULT_OUT = os.path.join(ROOT, "src", "cpython", "offsets_table.c")

PYENV_VERSIONS = ["3.8.18", "3.9.18", "3.10.13", "3.11.7", "3.12.1", "3.13.0"]
DEBIAN_INCLUDE = "/usr/include/python3.11"
DEBIAN_LABEL = "Debian python3 3.11.2 (/usr/include/python3.11)"

# Fields computed by special code in the C program rather than one offsetof() expression.
SPECIAL = {"minor", "ts_status", "ts_status_gil_bit"}


def fail(msg):
    sys.exit("gen_offsets: error: " + msg)


def header_fields():
    """The int32_t members of struct py_offsets, in declaration order."""
    with open(HEADER) as f:
        text = f.read()
    m = re.search(r"struct py_offsets \{(.*?)\n\};", text, re.S)
    if not m:
        fail("struct py_offsets not found in " + HEADER)
    body = re.sub(r"/\*.*?\*/", "", m.group(1), flags=re.S)
    fields = re.findall(r"^\s*u?int32_t\s+(\w+)\s*;", body, re.M)
    if not fields or fields[0] != "minor":
        fail("unexpected struct py_offsets layout in " + HEADER)
    return fields


def expressions(minor):
    """Maps each field to a C expression of type size_t for 3.`minor`, or None (= -1)."""
    rs, ist, ts = "_PyRuntimeState", "PyInterpreterState", "PyThreadState"
    gil = "struct _gil_runtime_state"
    e = {}

    e["rt_size"] = f"sizeof({rs})"
    e["rt_finalizing"] = f"offsetof({rs}, {'finalizing' if minor == 8 else '_finalizing'})"
    e["rt_interp_head"] = f"offsetof({rs}, interpreters.head)"
    e["rt_interp_main"] = f"offsetof({rs}, interpreters.main)"
    old_gil = minor <= 11
    e["rt_tstate_current"] = f"offsetof({rs}, gilstate.tstate_current)" if old_gil else None
    e["rt_gil"] = f"offsetof({rs}, ceval.gil)" if old_gil else None

    e["is_size"] = f"sizeof({ist})"
    e["is_next"] = f"offsetof({ist}, next)"
    e["is_id"] = f"offsetof({ist}, id)"
    head = "tstate_head" if minor <= 10 else "threads.head"
    e["is_tstate_head"] = f"offsetof({ist}, {head})"
    e["is_gil_ptr"] = None if old_gil else f"offsetof({ist}, ceval.gil)"
    e["is_modules"] = f"offsetof({ist}, {'modules' if minor <= 11 else 'imports.modules'})"

    e["gil_size"] = f"sizeof({gil})"
    e["gil_locked"] = f"offsetof({gil}, locked)"
    e["gil_last_holder"] = f"offsetof({gil}, last_holder)"

    e["ts_size"] = f"sizeof({ts})"
    e["ts_next"] = f"offsetof({ts}, next)"
    e["ts_interp"] = f"offsetof({ts}, interp)"
    frame = "frame" if minor <= 10 else "cframe" if minor <= 12 else "current_frame"
    e["ts_frame"] = f"offsetof({ts}, {frame})"
    e["ts_thread_id"] = f"offsetof({ts}, thread_id)"
    e["ts_native_thread_id"] = f"offsetof({ts}, native_thread_id)" if minor >= 11 else None
    e["ts_id"] = f"offsetof({ts}, id)"
    for f in ("datastack_chunk", "datastack_top", "datastack_limit"):
        e["ts_" + f] = f"offsetof({ts}, {f})" if minor >= 11 else None
    e["cf_current_frame"] = "offsetof(_PyCFrame, current_frame)" if minor in (11, 12) else None

    fo = "PyFrameObject"
    old_frames = minor <= 10
    e["fo_size"] = f"sizeof({fo})" if old_frames else None
    e["fo_back"] = f"offsetof({fo}, f_back)" if old_frames else None
    e["fo_code"] = f"offsetof({fo}, f_code)" if old_frames else None
    e["fo_lasti"] = f"offsetof({fo}, f_lasti)" if old_frames else None
    state = "f_executing" if minor <= 9 else "f_state"
    e["fo_state"] = f"offsetof({fo}, {state})" if old_frames else None

    fr = "_PyInterpreterFrame"
    new_frames = minor >= 11
    e["if_size"] = f"offsetof({fr}, localsplus)" if new_frames else None
    e["if_previous"] = f"offsetof({fr}, previous)" if new_frames else None
    code = "f_code" if minor <= 12 else "f_executable"
    e["if_code"] = f"offsetof({fr}, {code})" if new_frames else None
    instr = "prev_instr" if minor <= 12 else "instr_ptr"
    e["if_instr"] = f"offsetof({fr}, {instr})" if new_frames else None
    e["if_owner"] = f"offsetof({fr}, owner)" if new_frames else None
    e["if_globals"] = f"offsetof({fr}, f_globals)" if new_frames else None
    e["if_is_entry"] = f"offsetof({fr}, is_entry)" if minor == 11 else None
    e["if_stacktop"] = f"offsetof({fr}, stacktop)" if new_frames else None
    funcobj = "f_func" if minor == 11 else "f_funcobj"
    e["if_funcobj"] = f"offsetof({fr}, {funcobj})" if new_frames else None
    e["fn_code"] = "offsetof(PyFunctionObject, func_code)" if new_frames else None

    for f in ("previous", "size", "top", "data"):
        e["ck_" + f] = f"offsetof(_PyStackChunk, {f})" if new_frames else None

    co = "PyCodeObject"
    e["co_size"] = f"offsetof({co}, co_code_adaptive)" if new_frames else f"sizeof({co})"
    e["co_filename"] = f"offsetof({co}, co_filename)"
    e["co_name"] = f"offsetof({co}, co_name)"
    e["co_qualname"] = f"offsetof({co}, co_qualname)" if new_frames else None
    e["co_firstlineno"] = f"offsetof({co}, co_firstlineno)"
    lt = "co_lnotab" if minor <= 9 else "co_linetable"
    e["co_linetable"] = f"offsetof({co}, {lt})"
    e["co_code"] = None if new_frames else f"offsetof({co}, co_code)"
    e["co_code_adaptive"] = f"offsetof({co}, co_code_adaptive)" if new_frames else None
    e["co_firsttraceable"] = f"offsetof({co}, _co_firsttraceable)" if new_frames else None
    e["co_framesize"] = f"offsetof({co}, co_framesize)" if minor >= 12 else None
    e["co_nlocalsplus"] = f"offsetof({co}, co_nlocalsplus)" if new_frames else None
    e["co_stacksize"] = f"offsetof({co}, co_stacksize)" if new_frames else None

    e["ob_type"] = "offsetof(PyObject, ob_type)"
    e["var_size"] = "offsetof(PyVarObject, ob_size)"
    e["bytes_sval"] = "offsetof(PyBytesObject, ob_sval)"
    e["str_length"] = "offsetof(PyASCIIObject, length)"
    e["str_state"] = "offsetof(PyASCIIObject, state)"
    e["str_ascii_size"] = "sizeof(PyASCIIObject)"
    e["str_compact_size"] = "sizeof(PyCompactUnicodeObject)"
    e["str_data"] = "offsetof(PyUnicodeObject, data)"

    # Dicts. 3.8-3.10 keep PyDictKeysObject in Objects/dict-common.h, which is not installed:
    # the probe declares a copy (KEYS_38 below); 3.11+ take it from pycore_dict.h.
    d, dk = "PyDictObject", "struct crux_dictkeys" if minor <= 10 else "PyDictKeysObject"
    e["dict_size"] = f"sizeof({d})"
    e["dict_used"] = f"offsetof({d}, ma_used)"
    e["dict_keys"] = f"offsetof({d}, ma_keys)"
    e["dict_values"] = f"offsetof({d}, ma_values)"
    e["dk_indices"] = f"offsetof({dk}, dk_indices)"
    e["dk_size"] = f"offsetof({dk}, dk_size)" if minor <= 10 else None
    for f in ("log2_size", "log2_index_bytes", "kind"):
        e["dk_" + f] = f"offsetof({dk}, dk_{f})" if minor >= 11 else None
    e["dk_nentries"] = f"offsetof({dk}, dk_nentries)"
    e["dv_values"] = "offsetof(PyDictValues, values)" if minor >= 11 else "0"
    e["dv_valid"] = "offsetof(PyDictValues, valid)" if minor >= 13 else None
    e["tp_basicsize"] = "offsetof(PyTypeObject, tp_basicsize)"
    e["tp_flags"] = "offsetof(PyTypeObject, tp_flags)"
    e["tp_dictoffset"] = "offsetof(PyTypeObject, tp_dictoffset)"
    e["ht_cached_keys"] = "offsetof(PyHeapTypeObject, ht_cached_keys)" if new_frames else None
    # PyModuleObject is private to Objects/moduleobject.c before 3.10: PyObject_HEAD, md_dict.
    e["mod_dict"] = "offsetof(PyModuleObject, md_dict)" if minor >= 10 else "sizeof(PyObject)"
    e["long_tag"] = "offsetof(PyLongObject, long_value.lv_tag)" if minor >= 12 else \
        "offsetof(PyVarObject, ob_size)"
    digits = "long_value.ob_digit" if minor >= 12 else "ob_digit"
    e["long_digits"] = f"offsetof(PyLongObject, {digits})"
    e["long_shift"] = "PyLong_SHIFT"
    return e


PROLOGUE = r"""
#include <Python.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#if PY_MINOR_VERSION == 8
#include "internal/pycore_pystate.h" /* 3.8 has no pycore_runtime.h */
#else
#include "internal/pycore_runtime.h"
#include "internal/pycore_interp.h"
#endif
#include "internal/pycore_gil.h"
#include "internal/pycore_code.h"
#if PY_MINOR_VERSION >= 11
#include "internal/pycore_frame.h"
#endif
#if defined(NEED_OPCODE_TABLES)
#include "internal/pycore_opcode.h"
#elif defined(NEED_OPCODE_METADATA)
#include "internal/pycore_opcode_metadata.h"
#endif
#if PY_MINOR_VERSION <= 10
#include "frameobject.h"
#include "longintrepr.h"
#endif
#if PY_MINOR_VERSION >= 10
#include "internal/pycore_moduleobject.h"
#endif
#if PY_MINOR_VERSION >= 11
#include "internal/pycore_dict.h"
#endif

#if PY_MINOR_VERSION <= 10
/* PyDictKeysObject and its entry, 3.8-3.10 (Objects/dict-common.h of those branches, which
 * is not installed; 3.10's dk_size is still a Py_ssize_t). Checked on live 3.8.18, 3.9.18
 * and 3.10.13 dicts: dk_size, dk_usable and dk_nentries at 8, 24 and 32. */
struct crux_dictkeys {
    Py_ssize_t dk_refcnt;
    Py_ssize_t dk_size;
    void *dk_lookup;
    Py_ssize_t dk_usable;
    Py_ssize_t dk_nentries;
    char dk_indices[];
};
typedef struct {
    Py_hash_t me_hash;
    PyObject *me_key;
    PyObject *me_value;
} PyDictKeyEntry;
#endif

static void put(const char *name, size_t v) { printf("%s %zu\n", name, v); }

/* Sets one _status bit in a zeroed PyThreadState, then finds the (aligned) 32-bit word and
 * the bit that changed: independent of how the compiler lays out bitfields. */
static void status_bit(const PyThreadState *t, size_t status_offset)
{
    const unsigned char *p = (const unsigned char *)t;
    long byte = -1;
    for (size_t i = 0; i < sizeof *t; i++) {
        if (p[i] != 0) {
            if (byte >= 0 || (p[i] & (p[i] - 1)) != 0) {
                printf("error more than one bit set\n");
                return;
            }
            byte = (long)i;
        }
    }
    if (byte < 0) {
        printf("error no bit set\n");
        return;
    }
    size_t word = (size_t)byte & ~(size_t)3;
    if (word != status_offset) {
        printf("error status word %zu is not offsetof(_status) %zu\n", word, status_offset);
        return;
    }
    put("ts_status", word);
    put("ts_status_gil_bit", ((size_t)byte - word) * 8 + (size_t)__builtin_ctz(p[byte]));
}

int main(void)
{
    put("minor", PY_MINOR_VERSION);
    printf("version %s\n", PY_VERSION);
    /* The entry layouts src/cpython/pydict.c assumes: {hash, key, value}, 3.11+ {key, value}
     * for str-only keys; 30-bit digits of uint32_t. */
    if (sizeof(PyDictKeyEntry) != 24 || offsetof(PyDictKeyEntry, me_key) != 8 ||
        offsetof(PyDictKeyEntry, me_value) != 16)
        printf("error PyDictKeyEntry is not {hash, key, value}\n");
#if PY_MINOR_VERSION >= 11
    if (sizeof(PyDictUnicodeEntry) != 16 || offsetof(PyDictUnicodeEntry, me_value) != 8)
        printf("error PyDictUnicodeEntry is not {key, value}\n");
#endif
    if (sizeof(digit) != 4 || PyLong_SHIFT != 30)
        printf("error digits are not 30 bits in uint32_t\n");
"""

EPILOGUE_STATUS = r"""
    {
        static PyThreadState t;
        memset(&t, 0, sizeof t);
        t._status.%s = 1;
        status_bit(&t, offsetof(PyThreadState, _status));
    }
"""

EPILOGUE_DEBUG = r"""
    put("debug_offsets_size", sizeof(_Py_DebugOffsets));
#define DBG(f) put("debug." #f, offsetof(_Py_DebugOffsets, f))
    DBG(runtime_state); DBG(interpreter_state); DBG(thread_state); DBG(interpreter_frame);
    DBG(code_object); DBG(pyobject); DBG(type_object); DBG(tuple_object); DBG(list_object);
    DBG(dict_object); DBG(float_object); DBG(long_object); DBG(bytes_object);
    DBG(unicode_object); DBG(gc);
"""

# The 3.13 _Py_DebugOffsets layout that src/cpython/offsets.c parses (CPYTHON.md §9): the
# generator checks it against the real header. Counts are uint64_t words per sub-struct.
DEBUG_313 = [("runtime_state", 3), ("interpreter_state", 13), ("thread_state", 9),
             ("interpreter_frame", 6), ("code_object", 10), ("pyobject", 2),
             ("type_object", 4), ("tuple_object", 3), ("list_object", 3), ("dict_object", 3),
             ("float_object", 2), ("long_object", 3), ("bytes_object", 3),
             ("unicode_object", 4), ("gc", 2)]


# 3.11-3.13: the opcode tables (_PyOpcode_Deopt, _PyOpcode_Caches) and names, from which the
# generator derives each opcode's length in code units and its kind, so that a reader can find
# instruction boundaries in quickened bytecode and tell which instruction a suspended frame is
# in (src/cpython/stack311.c). 3.11/3.12 keep the tables in pycore_opcode.h under
# NEED_OPCODE_TABLES, 3.13 in pycore_opcode_metadata.h under NEED_OPCODE_METADATA.
OPCODE_TABLES = {11: "NEED_OPCODE_TABLES", 12: "NEED_OPCODE_TABLES", 13: "NEED_OPCODE_METADATA"}
EPILOGUE_OPCODES = r"""
    for (int op = 0; op < 256; op++)
        printf("op.%d %d %d\n", op, (int)_PyOpcode_Deopt[op], (int)_PyOpcode_Caches[op]);
"""
# Kinds (src/cpython/offsets.h PY_OP_*): a call that may push its callee's frame in the same
# eval loop, a generator resumption that may, a subscript or attribute load that may (a
# __getitem__, a property), anything else (never pushes a frame in the same loop); 0 = length
# unknown (the instrumented line and instruction events, tier-2 executors, keep the real
# opcode aside).
OP_OTHER, OP_CALL, OP_GEN, OP_PUSH, OP_ITER, OP_BINOP = 1, 2, 3, 4, 5, 6
CALLS = {"CALL", "CALL_FUNCTION_EX", "CALL_KW"}
GENS = {"FOR_ITER", "SEND"}
PUSHES = {"BINARY_SUBSCR", "LOAD_ATTR"}  # __getitem__, a property or __getattribute__
# Instructions whose C code may iterate an object, so resume a generator through C (`a, b =
# g`, `[*g]`, `{**m}`, `x in g`, `lst += g`, `lst[i:j] = g`); calls and FOR_ITER/SEND too.
# 3.11's PRECALL calls C functions itself (its specializations: sum(g), g.send(v)).
ITERS = {"UNPACK_SEQUENCE", "UNPACK_EX", "LIST_EXTEND", "SET_UPDATE", "DICT_UPDATE",
         "DICT_MERGE", "CONTAINS_OP", "STORE_SUBSCR", "STORE_SLICE", "PRECALL"}
# BINARY_OP iterates only as `lst += g` or `d |= g`: the reader looks at its oparg.
UNKNOWN = {"INSTRUMENTED_LINE", "INSTRUMENTED_INSTRUCTION", "ENTER_EXECUTOR"}


def opcode_names(include, minor):
    """Opcode number -> name from the public opcode header."""
    path = os.path.join(include, "opcode_ids.h" if minor >= 13 else "opcode.h")
    names = {}
    with open(path) as f:
        for m in re.finditer(r"^#define\s+([A-Z_][A-Z0-9_]*)\s+(\d+)\s*$", f.read(), re.M):
            if m.group(1) not in ("HAVE_ARGUMENT", "MIN_INSTRUMENTED_OPCODE",
                                  "MIN_SPECIALIZED_OPCODE", "MIN_PSEUDO_OPCODE",
                                  "MAX_PSEUDO_OPCODE", "ENABLE_SPECIALIZATION") and \
                    int(m.group(2)) < 256:
                names.setdefault(int(m.group(2)), m.group(1))
    return names


def opcode_table(extra, include, minor):
    """[(length in code units, kind)] per opcode, from the probe's deopt/caches and names."""
    names = opcode_names(include, minor)
    by_name = {v: k for k, v in names.items()}
    deopt = {op: tuple(extra[f"op.{op}"]) for op in range(256)}
    table = []
    for op in range(256):
        name = names.get(op, "")
        base = names.get(deopt[op][0], name)
        if base.startswith("INSTRUMENTED_") and base[13:] in by_name:
            base = base[13:]  # instrumentation swaps the opcode, not the instruction's length
        if not name or name in UNKNOWN or base in UNKNOWN:
            table.append((0, 0))
            continue
        b = by_name.get(base, op)
        caches = extra[f"op.{deopt[b][0]}"][1] if base != name else deopt[op][1]
        kind = OP_CALL if base in CALLS else OP_GEN if base in GENS else \
            OP_PUSH if base in PUSHES else OP_ITER if base in ITERS else \
            OP_BINOP if base == "BINARY_OP" else OP_OTHER
        table.append((1 + caches, kind))
    return table


def program(minor, fields):
    exprs = expressions(minor)
    missing = [f for f in fields if f not in exprs and f not in SPECIAL]
    if missing:
        fail("no expression for fields: " + ", ".join(missing))
    extra = [f for f in exprs if f not in fields]
    if extra:
        fail("expressions for fields not in offsets.h: " + ", ".join(extra))
    out = [PROLOGUE]
    for f in fields:
        if f in SPECIAL:
            continue
        if exprs[f] is not None:
            out.append(f'    put("{f}", {exprs[f]});\n')
    if minor >= 12:
        # 3.12: `active` follows the GIL holder; 3.13: `holds_gil` is the source of truth.
        out.append(EPILOGUE_STATUS % ("active" if minor == 12 else "holds_gil"))
    if minor >= 13:
        out.append(EPILOGUE_DEBUG)
    if minor in OPCODE_TABLES:
        out.append(EPILOGUE_OPCODES)
    out.append("    return 0;\n}\n")
    src = "".join(out)
    if minor in OPCODE_TABLES:
        src = f"#define {OPCODE_TABLES[minor]}\n" + src
    return src


def measure(label, include, minor, fields, tmp):
    src = os.path.join(tmp, re.sub(r"\W+", "_", label) + ".c")
    exe = src[:-2]
    with open(src, "w") as f:
        f.write(program(minor, fields))
    cmd = ["gcc", "-O0", "-w", "-DPy_BUILD_CORE", "-I" + include,
           "-I" + os.path.join(include, "internal"), "-o", exe, src]
    r = subprocess.run(cmd, capture_output=True, text=True)
    if r.returncode != 0:
        fail(f"compiling for {label} failed:\n{' '.join(cmd)}\n{r.stderr}")
    r = subprocess.run([exe], capture_output=True, text=True)
    if r.returncode != 0:
        fail(f"running the {label} probe failed: {r.stderr}")
    values, extra = {}, {}
    for line in r.stdout.splitlines():
        key, _, val = line.partition(" ")
        if key == "error":
            fail(f"{label}: {val}")
        elif key == "version":
            extra["version"] = val
        elif key.startswith("op."):
            extra[key] = tuple(int(x) for x in val.split())
        elif key in fields:
            values[key] = int(val)
        else:
            extra[key] = int(val)
    for f in fields:
        values.setdefault(f, -1)
        if values[f] >= 2**31:
            fail(f"{label}: {f} = {values[f]} does not fit int32_t")
    if values["minor"] != minor:
        fail(f"{label}: headers are 3.{values['minor']}, expected 3.{minor}")
    return values, extra


def check_debug_layout(extra):
    off = 24  # cookie[8], version, free_threaded
    for name, words in DEBUG_313:
        if extra.get("debug." + name) != off:
            fail(f"_Py_DebugOffsets.{name} at {extra.get('debug.' + name)}, expected {off}")
        off += 8 * words
    if extra["debug_offsets_size"] != off:
        fail(f"sizeof(_Py_DebugOffsets) = {extra['debug_offsets_size']}, expected {off}")
    return off


def render(tables, fields, debian_note, debug_size):
    out = ["// SPDX-License-Identifier: MIT",
           "// Per-version CPython offset tables. GENERATED by tools/gen_offsets.py from the",
           "// installed headers: do not edit; regenerate with `python3 tools/gen_offsets.py`.",
           "//"]
    for minor in sorted(tables):
        out.append(f"// 3.{minor}: {tables[minor][1]}")
    out.append(f"// {debian_note}")
    out.append(f"// 3.13 sizeof(_Py_DebugOffsets) = {debug_size}: the layout src/cpython/offsets.c"
               " parses (checked).")
    out += ["", '#include "cpython/offsets.h"', ""]
    for minor in sorted(tables):
        vals = tables[minor][0]
        out.append(f"static const struct py_offsets py_3_{minor} = {{")
        for f in fields:
            out.append(f"    .{f} = {vals[f]},")
        out += ["};", ""]
    out += ["// One row of 16 opcodes per line.", "// clang-format off"]
    for minor in sorted(tables):
        ops = tables[minor][2]
        if not ops:
            continue
        out.append(f"static const struct py_opcodes opcodes_3_{minor} = {{")
        for part, idx in (("len", 0), ("kind", 1)):
            out.append(f"    .{part} = {{")
            for i in range(0, 256, 16):
                out.append("        " + " ".join(f"{ops[j][idx]}," for j in range(i, i + 16)))
            out.append("    },")
        out += ["};", ""]
    out += ["// clang-format on", ""]
    out += ["const struct py_opcodes *offsets_opcodes(uint32_t minor)", "{", "    switch (minor) {"]
    for minor in sorted(tables):
        if tables[minor][2]:
            out += [f"    case {minor}:", f"        return &opcodes_3_{minor};"]
    out += ["    default:", "        return NULL;", "    }", "}", ""]
    out += ["const struct py_offsets *offsets_for_minor(uint32_t minor)", "{",
            "    switch (minor) {"]
    for minor in sorted(tables):
        out += [f"    case {minor}:", f"        return &py_3_{minor};"]
    out += ["    default:", "        return NULL;", "    }", "}", ""]
    return "\n".join(out)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("-o", "--output", default=DEFAULT_OUT)
    args = ap.parse_args()

    fields = header_fields()
    tables = {}
    with tempfile.TemporaryDirectory() as tmp:
        debug_size = None
        for ver in PYENV_VERSIONS:
            minor = int(ver.split(".")[1])
            r = subprocess.run(["pyenv", "prefix", ver], capture_output=True, text=True)
            if r.returncode != 0:
                fail(f"pyenv has no CPython {ver}: {r.stderr.strip()}")
            include = os.path.join(r.stdout.strip(), "include", f"python3.{minor}")
            vals, extra = measure(f"pyenv {ver}", include, minor, fields, tmp)
            if extra.get("version") != ver:
                fail(f"{include} holds {extra.get('version')}, expected {ver}")
            ops = opcode_table(extra, include, minor) if minor in OPCODE_TABLES else None
            tables[minor] = (vals, f"pyenv {ver} (PREFIX/include/python3.{minor})", ops)
            if minor == 13:
                debug_size = check_debug_layout(extra)

        deb, extra = measure(DEBIAN_LABEL, DEBIAN_INCLUDE, 11, fields, tmp)
        diff = [f"{f}: debian {deb[f]} != pyenv {tables[11][0][f]}"
                for f in fields if deb[f] != tables[11][0][f]]
        deb_ops = opcode_table(extra, DEBIAN_INCLUDE, 11)
        diff += [f"opcode {op}: debian {deb_ops[op]} != pyenv {tables[11][2][op]}"
                 for op in range(256) if deb_ops[op] != tables[11][2][op]]
        if diff:
            fail("Debian 3.11 differs from pyenv 3.11:\n  " + "\n  ".join(diff))
        debian_note = (f"Debian {extra.get('version')} ({DEBIAN_INCLUDE}): checked, every "
                       "field equals the pyenv 3.11 table.")

    text = render(tables, fields, debian_note, debug_size)
    with open(args.output, "w") as f:
        f.write(text)
    print(f"gen_offsets: wrote {os.path.relpath(args.output, ROOT)} (3.8-3.13; {debian_note})")


if __name__ == "__main__":
    main()
