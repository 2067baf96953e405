// SPDX-License-Identifier: MIT
// Native symbols: code address -> (function name, module basename), looked up with libdwfl
// (.symtab, else .dynsym, else separate debug info under /usr/lib/debug when installed),
// cached per address, interned so that every symbol has one stable pointer; and the class of
// each symbol for merging with Python frames (eval loop, interpreter machinery, other code).
#ifndef CRUX_SYMBOLS_H
#define CRUX_SYMBOLS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "util/hmap.h"

struct Dwfl;

/* What a native frame is to the merge. */
enum {
    NSYM_OTHER = 0,  /* code outside the interpreter: extensions, libraries, libc */
    NSYM_EVAL = 1,   /* the eval loop (_PyEval_EvalFrameDefault): runs Python frames */
    NSYM_INTERP = 2, /* other code of the interpreter (libpython or the python executable) */
};

/* One interned symbol; pointers stay valid until symbols_fini. */
struct native_sym {
    const char *name;   /* function name, "[unknown]" when the module has no symbol there */
    const char *module; /* basename of the module as mapped ("libz.so.1.2.13"), or "[unknown]" */
    uint8_t cls;        /* NSYM_* */
    bool libc;          /* in the C library (libc.so.*): at a stack's root, start-up code */
};

struct symbols {
    struct hmap by_pc;   /* lookup address -> index + 1 in v */
    struct hmap by_name; /* hash of (name, module) -> index + 1 in v (collisions chained) */
    struct native_sym **v;
    size_t n, cap;
    uint32_t gen;   /* unwinder report generation the pc cache belongs to */
    char exe[4096]; /* the target's executable, as mapped (interpreter code) */
    uint64_t lookups, misses;
};

/* Prepares symbol lookups for process `pid` (reads /proc/PID/exe to know the python
 * executable; libpython* modules are interpreter code as well). */
void symbols_init(struct symbols *s, pid_t pid);
/* Releases every symbol. */
void symbols_fini(struct symbols *s);
/* Returns the symbol at lookup address `pc` (already adjusted for return addresses) in the
 * modules `dwfl` knows. `gen` is the unwinder's report generation: when it changed, cached
 * addresses are forgotten (a module may have been loaded where none was). Never NULL. */
const struct native_sym *symbols_lookup(struct symbols *s, struct Dwfl *dwfl, uint32_t gen,
                                        uint64_t pc);
/* Interns (name, module) with class `cls` (used by lookups, and by tests); `libc` is set
 * from the module's name. */
const struct native_sym *symbols_intern(struct symbols *s, const char *name, const char *module,
                                        uint8_t cls);
/* Returns the demangled form of a C++ name ("_ZN2at6native..." -> "at::native::..."), a new
 * string the caller frees, or NULL when `name` is not mangled or no demangler is available
 * (libstdc++'s __cxa_demangle, loaded at run time). */
char *symbols_demangle(const char *name);
/* The class of function `name` in module `path` given the target's executable `exe`. */
uint8_t symbols_classify(const char *name, const char *path, const char *exe);

#endif
