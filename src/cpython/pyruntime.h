// SPDX-License-Identifier: MIT
// Finding the CPython runtime in a process: the ELF that holds _PyRuntime, its address,
// the interpreter version read from memory, the offset table and the type addresses.
#ifndef CRUX_PYRUNTIME_H
#define CRUX_PYRUNTIME_H

#include <stdint.h>
#include <sys/types.h>

#include "cpython/offsets.h"
#include "util/err.h"

#define PYRUNTIME_PATH_MAX 4096

struct pyruntime {
    pid_t pid;
    struct py_offsets off;
    uint64_t version_hex;              /* PY_VERSION_HEX */
    char version[32];                  /* "3.12.1" */
    uint64_t runtime;                  /* address of _PyRuntime in the target */
    uint64_t type_code;                /* &PyCode_Type, 0 when unknown */
    uint64_t type_str;                 /* &PyUnicode_Type */
    uint64_t type_bytes;               /* &PyBytes_Type */
    uint64_t type_none;                /* &_Py_NoneStruct (an object, not a type) */
    uint64_t type_dict;                /* &PyDict_Type */
    uint64_t type_long;                /* &PyLong_Type */
    uint64_t type_module;              /* &PyModule_Type */
    uint64_t type_coro;                /* &PyCoro_Type (asyncio.c) */
    uint64_t type_gen;                 /* &PyGen_Type */
    uint64_t type_weakref;             /* &_PyWeakref_RefType */
    uint64_t type_set;                 /* &PySet_Type */
    char elf_path[PYRUNTIME_PATH_MAX]; /* the file holding the runtime, as mapped */
    uint64_t elf_start, elf_end;       /* the span of its mappings */
};

/* Finds the runtime of process `pid` and fills `rt`. ERR_NOT_PYTHON when no CPython runtime
 * is mapped, ERR_VERSION (message names the version) when it cannot be read, ERR_PROC_GONE,
 * ERR_PERM. Does not require the interpreter to be initialized yet. */
int pyruntime_find(pid_t pid, struct pyruntime *rt, struct errbuf *eb) MUST_CHECK;

/* Reads the main interpreter's address; 0 while the runtime is not initialized yet. */
int pyruntime_interp_head(const struct pyruntime *rt, uint64_t *head) MUST_CHECK;

/* Parses version text "3.12.1", "3.13.0rc2", "3.9.18+" into a PY_VERSION_HEX value; returns
 * 0 when the text is not a version. */
uint64_t pyruntime_parse_version(const char *s, size_t n);

/* Formats PY_VERSION_HEX as "3.12.1" (with a/b/rc suffix when not final). */
void pyruntime_format_version(uint64_t hex, char *out, size_t n);

#endif
