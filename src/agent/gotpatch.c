// SPDX-License-Identifier: MIT
// GOT patching for native allocations on attach (gotpatch.h), memray's way: a running process
// cannot be given LD_PRELOAD, so the relocated slots through which each loaded object calls
// malloc and its family are pointed at wrappers here, which sample (allocshim.c's engine) and
// forward to the function the slot held. Everything here that runs inside malloc allocates
// nothing; patch and restore run on crux._agent's threads with the GIL (docs/memory.md).
#define _GNU_SOURCE
#include "gotpatch.h"

#include <dlfcn.h>
#include <elf.h>
#include <link.h>
#include <stddef.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/types.h>
#include <unistd.h>

#include "allocshim.h"

#define EXPORT __attribute__((visibility("default")))
#define GOT_MAX_SLOTS 8192u /* slots saved; more (thousands of objects) are left unpatched */

typedef void *(*malloc_fn)(size_t);
typedef void *(*calloc_fn)(size_t, size_t);
typedef void *(*realloc_fn)(void *, size_t);
typedef void (*free_fn)(void *);
typedef int (*pmalign_fn)(void **, size_t, size_t);
typedef void *(*align_fn)(size_t, size_t);
typedef void *(*mmap_fn)(void *, size_t, int, int, int, off_t);
typedef int (*munmap_fn)(void *, size_t);

enum {
    F_MALLOC,
    F_CALLOC,
    F_REALLOC,
    F_FREE,
    F_PMALIGN,
    F_ALIGNED,
    F_MEMALIGN,
    F_MMAP,
    F_MMAP64,
    F_MUNMAP,
    F_COUNT
};

static const char *const NAMES[F_COUNT] = {"malloc",         "calloc",        "realloc",  "free",
                                           "posix_memalign", "aligned_alloc", "memalign", "mmap",
                                           "mmap64",         "munmap"};

/* The process's own functions (what its slots held), set before any slot points here. */
static void *g_orig[F_COUNT];
static void *g_wrap[F_COUNT];

/* A patched slot: its address, the value it held and the object's load address. */
struct slot {
    uintptr_t *addr;
    uintptr_t old;
    uintptr_t base;
    uint32_t fn;
};
static struct slot g_slots[GOT_MAX_SLOTS];
static uint32_t g_nslots;
static int g_patched;
static struct crux_got_report g_last;
static void *g_seen[F_COUNT]; /* a resolved JUMP_SLOT's value per function (the first pass) */
static long g_page;

/* ---- the wrappers: the outermost allocator call counts (a PyMem hook's guard hides the
 * malloc inside pymalloc), the call itself always goes to the saved function -------------- */

static void *w_malloc(size_t n)
{
    void *p = ((malloc_fn)g_orig[F_MALLOC])(n);
    if (crux_alloc_enter()) {
        crux_alloc_note(p, n, AGENTSHM_DOM_NATIVE);
        crux_alloc_leave();
    }
    return p;
}

static void *w_calloc(size_t n, size_t m)
{
    void *p = ((calloc_fn)g_orig[F_CALLOC])(n, m);
    if (p && crux_alloc_enter()) {
        crux_alloc_note(p, n * m, AGENTSHM_DOM_NATIVE);
        crux_alloc_leave();
    }
    return p;
}

static void *w_realloc(void *p, size_t n)
{
    if (!crux_alloc_enter())
        return ((realloc_fn)g_orig[F_REALLOC])(p, n);
    crux_alloc_note_free(p);
    void *q = ((realloc_fn)g_orig[F_REALLOC])(p, n);
    crux_alloc_note(q, n, AGENTSHM_DOM_NATIVE);
    crux_alloc_leave();
    return q;
}

static void w_free(void *p)
{
    if (p && crux_alloc_enter()) {
        crux_alloc_note_free(p);
        crux_alloc_leave();
    }
    ((free_fn)g_orig[F_FREE])(p);
}

static int w_posix_memalign(void **out, size_t align, size_t n)
{
    int rc = ((pmalign_fn)g_orig[F_PMALIGN])(out, align, n);
    if (!rc && crux_alloc_enter()) {
        crux_alloc_note(*out, n, AGENTSHM_DOM_NATIVE);
        crux_alloc_leave();
    }
    return rc;
}

static void *w_aligned_alloc(size_t align, size_t n)
{
    void *p = ((align_fn)g_orig[F_ALIGNED])(align, n);
    if (crux_alloc_enter()) {
        crux_alloc_note(p, n, AGENTSHM_DOM_NATIVE);
        crux_alloc_leave();
    }
    return p;
}

static void *w_memalign(size_t align, size_t n)
{
    void *p = ((align_fn)g_orig[F_MEMALIGN])(align, n);
    if (crux_alloc_enter()) {
        crux_alloc_note(p, n, AGENTSHM_DOM_NATIVE);
        crux_alloc_leave();
    }
    return p;
}

/* The same mappings as allocshim.c's mmap counts: anonymous, not fixed, not a stack, not a
 * PROT_NONE reservation; pymalloc's arenas come inside a PyMem hook and pass. */
static void *mmap_with(int fn, void *a, size_t n, int prot, int flags, int fd, off_t off)
{
    void *p = ((mmap_fn)g_orig[fn])(a, n, prot, flags, fd, off);
    if (p != MAP_FAILED && (flags & MAP_ANONYMOUS) && !(flags & (MAP_FIXED | MAP_STACK)) &&
        prot != PROT_NONE && crux_alloc_enter()) {
        crux_alloc_note(p, n, AGENTSHM_DOM_MMAP);
        crux_alloc_leave();
    }
    return p;
}

static void *w_mmap(void *a, size_t n, int prot, int flags, int fd, off_t off)
{
    return mmap_with(F_MMAP, a, n, prot, flags, fd, off);
}

static void *w_mmap64(void *a, size_t n, int prot, int flags, int fd, off_t off)
{
    return mmap_with(F_MMAP64, a, n, prot, flags, fd, off);
}

static int w_munmap(void *a, size_t n)
{
    if (a && crux_alloc_enter()) {
        crux_alloc_note_free(a);
        crux_alloc_leave();
    }
    return ((munmap_fn)g_orig[F_MUNMAP])(a, n);
}

/* ---- walking the loaded objects ---------------------------------------------------------- */

/* What one object's dynamic section says; addresses are absolute. */
struct dyn {
    const ElfW(Sym) * symtab;
    const char *strtab;
    size_t strsz;
    const ElfW(Rela) * rela, *jmprel;
    size_t relasz, jmprelsz;
    uintptr_t relro_lo, relro_hi; /* the pages ld.so made read-only */
};

/* glibc rewrites the dynamic section's pointers to absolute addresses, the vDSO and other
 * loaders do not: a value below the load address is an offset. */
static uintptr_t absolute(uintptr_t base, uintptr_t v)
{
    return v < base ? v + base : v;
}

static int read_dyn(const struct dl_phdr_info *info, struct dyn *d)
{
    memset(d, 0, sizeof(*d));
    const ElfW(Dyn) *dyn = NULL;
    uintptr_t base = info->dlpi_addr;
    for (int i = 0; i < info->dlpi_phnum; i++) {
        const ElfW(Phdr) *ph = &info->dlpi_phdr[i];
        if (ph->p_type == PT_DYNAMIC)
            dyn = (const ElfW(Dyn) *)(base + ph->p_vaddr);
        if (ph->p_type == PT_GNU_RELRO) {
            /* as glibc's _dl_protect_relro: both ends rounded down to a page */
            d->relro_lo = (base + ph->p_vaddr) & ~(uintptr_t)(g_page - 1);
            d->relro_hi = (base + ph->p_vaddr + ph->p_memsz) & ~(uintptr_t)(g_page - 1);
        }
    }
    if (!dyn)
        return -1;
    for (int i = 0; i < 4096 && dyn[i].d_tag != DT_NULL; i++) {
        uintptr_t v = dyn[i].d_un.d_ptr;
        switch (dyn[i].d_tag) {
        case DT_SYMTAB:
            d->symtab = (const ElfW(Sym) *)absolute(base, v);
            break;
        case DT_STRTAB:
            d->strtab = (const char *)absolute(base, v);
            break;
        case DT_STRSZ:
            d->strsz = dyn[i].d_un.d_val;
            break;
        case DT_RELA:
            d->rela = (const ElfW(Rela) *)absolute(base, v);
            break;
        case DT_RELASZ:
            d->relasz = dyn[i].d_un.d_val;
            break;
        case DT_JMPREL:
            d->jmprel = (const ElfW(Rela) *)absolute(base, v);
            break;
        case DT_PLTRELSZ:
            d->jmprelsz = dyn[i].d_un.d_val;
            break;
        case DT_PLTREL:
            if (dyn[i].d_un.d_val != DT_RELA)
                return -1; /* x86-64 uses RELA only */
            break;
        default:
            break;
        }
    }
    return d->symtab && d->strtab && d->strsz ? 0 : -1;
}

/* Whether `p` lies in one of the object's loaded segments. */
static int inside(const struct dl_phdr_info *info, uintptr_t p)
{
    for (int i = 0; i < info->dlpi_phnum; i++) {
        const ElfW(Phdr) *ph = &info->dlpi_phdr[i];
        uintptr_t lo = info->dlpi_addr + ph->p_vaddr;
        if (ph->p_type == PT_LOAD && p >= lo && p < lo + ph->p_memsz)
            return 1;
    }
    return 0;
}

/* Which of the family `name` is, or -1. */
static int family(const char *name)
{
    for (int f = 0; f < F_COUNT; f++)
        if (!strcmp(name, NAMES[f]))
            return f;
    return -1;
}

/* One aligned 8-byte store: a thread calling through the slot meanwhile reads the old or the
 * new function, both valid. A slot in the RELRO pages is made writable for the store only. */
static void store(const struct dyn *d, uintptr_t *slot, uintptr_t v)
{
    uintptr_t a = (uintptr_t)slot;
    void *page = (void *)(a & ~(uintptr_t)(g_page - 1));
    int ro = a >= d->relro_lo && a < d->relro_hi;
    if (ro && mprotect(page, (size_t)g_page, PROT_READ | PROT_WRITE))
        return;
    __atomic_store_n(slot, v, __ATOMIC_RELEASE);
    if (ro && mprotect(page, (size_t)g_page, PROT_READ)) {
        /* cannot happen for a mapping we just changed; the page stays writable */
    }
}

static int skip_object(const struct dl_phdr_info *info)
{
    const char *name = info->dlpi_name ? info->dlpi_name : "";
    if (strstr(name, "linux-vdso") || strstr(name, "ld-linux") || strstr(name, "libcrux_"))
        return 1;
    if (inside(info, (uintptr_t)&w_malloc))
        return 1; /* this library, whatever its name */
    for (int f = 0; f < F_COUNT; f++)
        if (inside(info, (uintptr_t)g_orig[f]))
            return 1; /* the allocator's own object: libc, or a preloaded allocator */
    return 0;
}

/* Patches the family's slots in one table of relocations. */
static void patch_table(const struct dl_phdr_info *info, const struct dyn *d, const ElfW(Rela) * r,
                        size_t bytes, int *any)
{
    size_t n = r ? bytes / sizeof(*r) : 0;
    for (size_t i = 0; i < n; i++) {
        uint32_t type = (uint32_t)ELF64_R_TYPE(r[i].r_info);
        if (type != R_X86_64_JUMP_SLOT && type != R_X86_64_GLOB_DAT)
            continue;
        size_t si = ELF64_R_SYM(r[i].r_info);
        if (!si)
            continue;
        const ElfW(Sym) *s = &d->symtab[si];
        if (s->st_name >= d->strsz || s->st_shndx != SHN_UNDEF)
            continue; /* a defined symbol: the object's own function */
        int f = family(d->strtab + s->st_name);
        if (f < 0)
            continue;
        uintptr_t *slot = (uintptr_t *)(info->dlpi_addr + r[i].r_offset);
        if (((uintptr_t)slot & 7) || !inside(info, (uintptr_t)slot))
            continue;
        uintptr_t old = __atomic_load_n(slot, __ATOMIC_ACQUIRE);
        if (!g_orig[f] || old != (uintptr_t)g_orig[f] || g_nslots == GOT_MAX_SLOTS) {
            g_last.skipped++;
            continue;
        }
        g_slots[g_nslots++] = (struct slot){slot, old, info->dlpi_addr, (uint32_t)f};
        store(d, slot, (uintptr_t)g_wrap[f]);
        g_last.slots++;
        *any = 1;
    }
}

static int patch_one(struct dl_phdr_info *info, size_t size, void *arg)
{
    (void)size;
    (void)arg;
    struct dyn d;
    if (skip_object(info) || read_dyn(info, &d))
        return 0;
    int any = 0;
    patch_table(info, &d, d.jmprel, d.jmprelsz, &any);
    patch_table(info, &d, d.rela, d.relasz, &any);
    g_last.objects += (uint32_t)any;
    return 0;
}

/* The first pass: what resolved JUMP_SLOTs of the family hold (a slot still pointing into its
 * own object is an unresolved lazy one). */
static void seen_table(const struct dl_phdr_info *info, const struct dyn *d, const ElfW(Rela) * r,
                       size_t bytes)
{
    size_t n = r ? bytes / sizeof(*r) : 0;
    for (size_t i = 0; i < n; i++) {
        if ((uint32_t)ELF64_R_TYPE(r[i].r_info) != R_X86_64_JUMP_SLOT)
            continue;
        const ElfW(Sym) *s = &d->symtab[ELF64_R_SYM(r[i].r_info)];
        if (s->st_name >= d->strsz || s->st_shndx != SHN_UNDEF)
            continue;
        int f = family(d->strtab + s->st_name);
        uintptr_t *slot = (uintptr_t *)(info->dlpi_addr + r[i].r_offset);
        if (f < 0 || g_seen[f] || ((uintptr_t)slot & 7) || !inside(info, (uintptr_t)slot))
            continue;
        uintptr_t v = __atomic_load_n(slot, __ATOMIC_ACQUIRE);
        if (!inside(info, v))
            g_seen[f] = (void *)v;
    }
}

static int seen_one(struct dl_phdr_info *info, size_t size, void *arg)
{
    (void)size;
    (void)arg;
    struct dyn d;
    const char *name = info->dlpi_name ? info->dlpi_name : "";
    if (strstr(name, "linux-vdso") || inside(info, (uintptr_t)&w_malloc) || read_dyn(info, &d))
        return 0;
    seen_table(info, &d, d.jmprel, d.jmprelsz);
    return 0;
}

/* Whether `p` is the start of a function an object defines (not a non-PIE executable's
 * canonical PLT entry, which dlsym returns for a function whose address it takes). dladdr
 * takes the loader's lock: never called inside dl_iterate_phdr. */
static int is_definition(void *p)
{
    Dl_info di;
    const ElfW(Sym) *sym = NULL;
    if (!p || !dladdr1(p, &di, (void **)&sym, RTLD_DL_SYMENT) || !sym)
        return 0;
    return sym->st_shndx != SHN_UNDEF && di.dli_saddr == p &&
           (ELF64_ST_TYPE(sym->st_info) == STT_FUNC ||
            ELF64_ST_TYPE(sym->st_info) == STT_GNU_IFUNC);
}

EXPORT int crux_got_patch(struct crux_got_report *out)
{
    if (g_patched) {
        *out = g_last;
        return 0;
    }
    g_page = sysconf(_SC_PAGESIZE);
    /* RTLD_DEFAULT from this RTLD_LOCAL library searches the global scope first: the
     * process's malloc (glibc's, or an LD_PRELOADed allocator's), never this library's. In a
     * non-PIE executable that takes malloc's address (Debian's python3.11) it is the
     * executable's PLT entry instead, which jumps through the executable's own slot: then the
     * function the resolved slots hold is the original (a slot holding the PLT entry is left
     * alone: its calls reach the wrapper through the executable's patched slot). */
    memset(g_seen, 0, sizeof(g_seen));
    dl_iterate_phdr(seen_one, NULL);
    for (int f = 0; f < F_COUNT; f++) {
        void *p = dlsym(RTLD_DEFAULT, NAMES[f]);
        g_orig[f] = is_definition(p) ? p : is_definition(g_seen[f]) ? g_seen[f] : NULL;
    }
    if (!g_orig[F_MALLOC] || !g_orig[F_FREE])
        return -1;
    void *w[F_COUNT] = {(void *)w_malloc,   (void *)w_calloc,         (void *)w_realloc,
                        (void *)w_free,     (void *)w_posix_memalign, (void *)w_aligned_alloc,
                        (void *)w_memalign, (void *)w_mmap,           (void *)w_mmap64,
                        (void *)w_munmap};
    memcpy(g_wrap, w, sizeof(g_wrap));
    memset(&g_last, 0, sizeof(g_last));
    g_nslots = 0;
    /* dl_iterate_phdr holds the loader's list lock: no object is added or removed while the
     * slots are written. */
    dl_iterate_phdr(patch_one, NULL);
    g_last.saved = g_nslots;
    g_patched = 1;
    *out = g_last;
    return 0;
}

static int restore_one(struct dl_phdr_info *info, size_t size, void *arg)
{
    (void)size;
    struct crux_got_report *rep = arg;
    struct dyn d;
    int any = 0;
    if (read_dyn(info, &d))
        return 0;
    for (uint32_t i = 0; i < g_nslots; i++) {
        struct slot *s = &g_slots[i];
        if (!s->addr || s->base != info->dlpi_addr || !inside(info, (uintptr_t)s->addr))
            continue;
        if (__atomic_load_n(s->addr, __ATOMIC_ACQUIRE) == (uintptr_t)g_wrap[s->fn]) {
            store(&d, s->addr, s->old);
            rep->slots++;
            any = 1;
        }
        s->addr = NULL;
    }
    rep->objects += (uint32_t)any;
    return 0;
}

EXPORT int crux_got_restore(struct crux_got_report *out)
{
    memset(out, 0, sizeof(*out));
    if (!g_patched)
        return 0;
    /* Under the list lock, each slot is written only where its object is still loaded at the
     * address it had (one unloaded since is not touched: its memory may be someone else's). */
    dl_iterate_phdr(restore_one, out);
    out->saved = g_nslots;
    out->skipped = g_nslots - out->slots;
    g_nslots = 0;
    g_patched = 0;
    return 0;
}
