// SPDX-License-Identifier: MIT
// Symbol lookups through libdwfl, cached per address and interned per (name, module).
// libdwfl picks the best table of each module itself: .symtab, else .dynsym, else the
// symbol table of the separate debug file (build-id or .gnu_debuglink under /usr/lib/debug).
#include "native/symbols.h"

#include <dlfcn.h>
#include <elfutils/libdwfl.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "util/xalloc.h"

#define SYMBOLS_PC_CACHE_MAX ((size_t)1 << 20) /* cached addresses before the cache restarts */
#define EVAL_FUNC "_PyEval_EvalFrameDefault"

void symbols_init(struct symbols *s, pid_t pid)
{
    memset(s, 0, sizeof(*s));
    hmap_init(&s->by_pc);
    hmap_init(&s->by_name);
    char link[64];
    snprintf(link, sizeof(link), "/proc/%d/exe", (int)pid);
    ssize_t n = readlink(link, s->exe, sizeof(s->exe) - 1);
    s->exe[n > 0 ? n : 0] = '\0';
}

void symbols_fini(struct symbols *s)
{
    for (size_t i = 0; i < s->n; i++) {
        free((char *)s->v[i]->name);
        free((char *)s->v[i]->module);
        free(s->v[i]);
    }
    free(s->v);
    hmap_fini(&s->by_pc);
    hmap_fini(&s->by_name);
    memset(s, 0, sizeof(*s));
}

static const char *base_name(const char *path)
{
    const char *slash = strrchr(path, '/');
    return slash ? slash + 1 : path;
}

uint8_t symbols_classify(const char *name, const char *path, const char *exe)
{
    const char *base = base_name(path);
    bool interp = strncmp(base, "libpython", 9) == 0 || (exe[0] && strcmp(path, exe) == 0);
    if (!interp)
        return NSYM_OTHER;
    /* GCC may split off cold parts (_PyEval_EvalFrameDefault.cold): the same C frame. */
    size_t k = strlen(EVAL_FUNC);
    if (name && strncmp(name, EVAL_FUNC, k) == 0 && (name[k] == '\0' || name[k] == '.'))
        return NSYM_EVAL;
    return NSYM_INTERP;
}

/* Returns the index of (name, module) in s->v, adding it when new. */
static size_t intern_index(struct symbols *s, const char *name, const char *module, uint8_t cls)
{
    size_t ln = strlen(name), lm = strlen(module);
    uint64_t key = hmap_hash64(hmap_hash_bytes(name, ln) ^ (hmap_hash_bytes(module, lm) << 1));
    /* Probe: a different (name, module) under the same key moves on to a derived key. */
    for (;;) {
        key |= 1;
        uint64_t idx;
        if (!hmap_get(&s->by_name, key, &idx))
            break;
        const struct native_sym *e = s->v[idx - 1];
        if (strcmp(e->name, name) == 0 && strcmp(e->module, module) == 0)
            return idx - 1;
        key = hmap_hash64(key);
    }
    if (s->n == s->cap) {
        s->cap = s->cap ? s->cap * 2 : 256;
        s->v = xrealloc(s->v, s->cap * sizeof(*s->v));
    }
    struct native_sym *e = xmalloc(sizeof(*e));
    e->name = xstrdup(name);
    e->module = xstrdup(module);
    e->cls = cls;
    e->libc = strncmp(module, "libc.so", 7) == 0;
    s->v[s->n++] = e;
    hmap_put(&s->by_name, key, s->n);
    return s->n - 1;
}

const struct native_sym *symbols_intern(struct symbols *s, const char *name, const char *module,
                                        uint8_t cls)
{
    size_t i = intern_index(s, name, module, cls); /* may move s->v */
    return s->v[i];
}

/* C++ (and Rust's legacy) names are mangled: demangle them with libstdc++'s __cxa_demangle
 * when that library can be loaded, found at run time so that crux does not link the C++
 * runtime. Returns a new string (the caller frees it) or NULL to keep the name. */
typedef char *(*demangle_fn)(const char *, char *, size_t *, int *);

char *symbols_demangle(const char *name)
{
    static demangle_fn fn;
    static bool tried;
    if (strncmp(name, "_Z", 2) != 0)
        return NULL;
    if (!tried) {
        tried = true;
        void *lib = dlopen("libstdc++.so.6", RTLD_LAZY | RTLD_LOCAL);
        if (lib)
            *(void **)&fn = dlsym(lib, "__cxa_demangle");
    }
    if (!fn)
        return NULL;
    int status = -1;
    char *out = fn(name, NULL, NULL, &status);
    if (status != 0) {
        free(out);
        return NULL;
    }
    return out;
}

/* The module's name as written in collapsed stacks: its basename as mapped; libdwfl calls
 * the vDSO "[vdso: PID]", which would differ per process. */
static const char *module_label(const char *mname)
{
    if (!mname || !mname[0])
        return "[unknown]";
    if (strncmp(mname, "[vdso", 5) == 0)
        return "[vdso]";
    return base_name(mname);
}

const struct native_sym *symbols_lookup(struct symbols *s, struct Dwfl *dwfl, uint32_t gen,
                                        uint64_t pc)
{
    s->lookups++;
    if (gen != s->gen || s->by_pc.len >= SYMBOLS_PC_CACHE_MAX) {
        hmap_clear(&s->by_pc);
        s->gen = gen;
    }
    uint64_t key = pc ? pc : 1;
    uint64_t idx;
    if (hmap_get(&s->by_pc, key, &idx))
        return s->v[idx - 1];
    s->misses++;
    size_t i;
    Dwfl_Module *mod = dwfl_addrmodule(dwfl, pc);
    if (!mod) {
        i = intern_index(s, "[unknown]", "[unknown]", NSYM_OTHER);
    } else {
        const char *mname = dwfl_module_info(mod, NULL, NULL, NULL, NULL, NULL, NULL, NULL);
        GElf_Off off;
        GElf_Sym sym;
        const char *name = dwfl_module_addrinfo(mod, pc, &off, &sym, NULL, NULL, NULL);
        uint8_t cls = symbols_classify(name, mname ? mname : "", s->exe);
        char *readable = name ? symbols_demangle(name) : NULL;
        i = intern_index(s,
                         readable          ? readable
                         : name && name[0] ? name
                                           : "[unknown]",
                         module_label(mname), cls);
        free(readable);
    }
    hmap_put(&s->by_pc, key, i + 1);
    return s->v[i];
}
