// SPDX-License-Identifier: MIT
// Unit tests for cpython/threadnames: a whole registry (interpreter -> sys.modules ->
// threading -> _active -> Threads -> _name) laid out in this process's memory for 3.9, 3.12
// and 3.13, read as a target's: the names, when the registry is read again (a new thread,
// the period, not before the gap), renames, threads sharing a pthread id, and failures.
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "check.h"
#include "cpython/threadnames.h"
#include "pyimage.h"

static _Alignas(16) uint8_t type_module[64];

#define MS 1000000ULL
#define NTHREADS 4

/* The registry of one fake interpreter and what the tests poke at. */
struct image {
    struct pyruntime rt;
    uint8_t *interp;
    uint8_t *active; /* the _active dict object */
    uint64_t thread[NTHREADS];
    uint64_t ident[NTHREADS];
    uint8_t *name_slot[NTHREADS]; /* where each Thread's _name pointer lives */
    uint8_t *modkey;              /* the str sys.modules knows the module by */
};

/* A Thread whose instance dict holds _target and _name, the way the version keeps it. */
static uint64_t mk_thread(const char *name, uint8_t **slot)
{
    bool ascii = true;
    for (const char *c = name; *c; c++)
        ascii = ascii && (unsigned char)*c < 0x80;
    uint64_t str = ascii ? mk_str(name) : mk_str_latin1(name);
    if (O->minor <= 10) {
        struct ent e[] = {{1, mk_str("_target"), 1}, {2, mk_str("_name"), str}};
        uint64_t keys = mk_keys(3, 0, e, 2);
        uint64_t type = mk_type(1ULL << 9, 16, 32, 0);
        uint8_t *obj = alloc(32);
        put64(obj, O->ob_type, type);
        put64(obj, 16, mk_dict(keys, 0, 2));
        /* entry 1's value: keys header, 8 one-byte indices, then 24-byte entries */
        *slot = (uint8_t *)(uintptr_t)keys + O->dk_indices + 8 + 24 + 16;
        return addr(obj);
    }
    struct ent e[] = {{1, mk_str("_target"), 0}, {2, mk_str("_name"), 0}};
    uint64_t type = mk_type((1ULL << 9) | (1ULL << 4) | (O->minor >= 13 ? 1ULL << 2 : 0), -1, 16,
                            mk_keys(3, 2, e, 2));
    uint8_t *base = alloc(32 + 16 + 8 + 16);
    uint8_t *obj = base + 32;
    put64(obj, O->ob_type, type);
    uint64_t vals[2] = {1, str};
    if (O->minor >= 13) {
        uint8_t *inl = obj + 16;
        inl[0] = 2;
        inl[1] = 2;
        inl[2] = 1;
        inl[O->dv_valid] = 1;
        put64(inl, 8, vals[0]);
        put64(inl, 16, vals[1]);
        *slot = inl + 16;
    } else {
        uint64_t values = mk_values(vals, 2, 1);
        put64(obj, -24, values - 1); /* 3.12: tagged */
        *slot = (uint8_t *)(uintptr_t)values + O->dv_values + 8;
    }
    return addr(obj);
}

static void build(struct image *im, uint32_t minor, bool with_threading)
{
    O = offsets_for_minor(minor);
    used = 0;
    memset(im, 0, sizeof(*im));
    im->rt.pid = getpid();
    im->rt.off = *O;
    im->rt.type_dict = addr(type_dict);
    im->rt.type_str = addr(type_str);
    im->rt.type_long = addr(type_long);
    im->rt.type_module = addr(type_module);
    /* "décodeur" in Latin-1: a kind-1 str that is not ASCII */
    static const char *names[NTHREADS] = {"MainThread", "loader-1",
                                          "d\xe9"
                                          "codeur",
                                          "pool_0"};
    struct ent e[NTHREADS];
    for (int i = 0; i < NTHREADS; i++) {
        im->ident[i] = 0x7f0000001000ULL + 0x801000ULL * (uint64_t)i;
        im->thread[i] = mk_thread(names[i], &im->name_slot[i]);
        e[i] = (struct ent){im->ident[i], mk_int(im->ident[i], addr(type_long)), im->thread[i]};
    }
    /* The last thread is not registered (a _thread thread). */
    uint64_t active = mk_dict(mk_keys(3, 0, e, NTHREADS - 1), 0, NTHREADS - 1);
    im->active = (uint8_t *)(uintptr_t)active;
    struct ent md[] = {{1, mk_str("_counter"), 5}, {2, mk_str("_active"), active}};
    uint8_t *module = alloc((size_t)O->mod_dict + 8);
    put64(module, O->ob_type, addr(type_module));
    put64(module, O->mod_dict, mk_dict(mk_keys(3, O->minor >= 11 ? 1 : 0, md, 2), 0, 2));
    uint64_t modkey = mk_str(with_threading ? "threading" : "threadinx");
    im->modkey = (uint8_t *)(uintptr_t)modkey;
    struct ent mods[] = {{1, mk_str("sys"), 9}, {2, modkey, addr(module)}};
    uint64_t modules = mk_dict(mk_keys(3, O->minor >= 11 ? 1 : 0, mods, 2), 0, 2);
    im->interp = alloc((size_t)O->is_modules + 8);
    put64(im->interp, O->is_modules, modules);
}

/* The round's threads: one thread state per thread, pthread id = ident. */
static void threads_of(const struct image *im, struct pythread *th, size_t n)
{
    for (size_t i = 0; i < n; i++)
        th[i] = (struct pythread){.tstate = 0x5000 + 0x100 * i,
                                  .ts_id = i + 1,
                                  .interp = addr(im->interp),
                                  .pthread_id = im->ident[i]};
}

static int check_names(uint32_t minor)
{
    static struct image im;
    build(&im, minor, true);
    struct threadnames tn;
    threadnames_init(&tn, &im.rt);
    struct pythread th[NTHREADS];
    threads_of(&im, th, NTHREADS);
    uint64_t t0 = 5000 * MS;
    CHECK(threadnames_update(&tn, th, 2, t0), "3.%u first read", minor);
    CHECK(tn.names_read == 3, "3.%u every registered name read", minor);
    const char *n = threadnames_get(&tn, &th[1]);
    CHECK(n && strcmp(n, "loader-1") == 0, "3.%u loader-1: %s", minor, n ? n : "(none)");
    CHECK(threadnames_get(&tn, &th[2]) == NULL, "3.%u not seen by the read yet", minor);
    /* Within the gap nothing is read, even for a new thread. */
    uint64_t reads = tn.dict.reads;
    CHECK(!threadnames_update(&tn, th, 2, t0 + 10 * MS) && tn.dict.reads == reads,
          "3.%u no read per round", minor);
    CHECK(!threadnames_update(&tn, th, 4, t0 + 50 * MS), "3.%u new thread, within the gap", minor);
    CHECK(threadnames_update(&tn, th, 4, t0 + 150 * MS), "3.%u new thread read", minor);
    n = threadnames_get(&tn, &th[2]);
    CHECK(n && strcmp(n, "d\xc3\xa9"
                         "codeur") == 0,
          "3.%u non-ASCII: %s", minor, n ? n : "(none)");
    CHECK(threadnames_get(&tn, &th[3]) == NULL, "3.%u unregistered thread", minor);
    /* A read for a new thread reads no name the last read had (same ident, same Thread). */
    CHECK(tn.names_read == 3, "3.%u names read: %llu", minor, (unsigned long long)tn.names_read);
    /* A rename shows at the next periodic read, not before. */
    put64(im.name_slot[1], 0, mk_str("loader-1 (renamed)"));
    CHECK(!threadnames_update(&tn, th, 4, t0 + 900 * MS), "3.%u before the period", minor);
    CHECK(strcmp(threadnames_get(&tn, &th[1]), "loader-1") == 0, "3.%u old name kept", minor);
    CHECK(threadnames_update(&tn, th, 4, t0 + 1200 * MS), "3.%u periodic read", minor);
    n = threadnames_get(&tn, &th[1]);
    CHECK(n && strcmp(n, "loader-1 (renamed)") == 0, "3.%u renamed: %s", minor, n ? n : "-");
    /* A torn registry keeps the names of the last read. */
    put64(im.active, O->ob_type, addr(type_str));
    CHECK(threadnames_update(&tn, th, 4, t0 + 2300 * MS) && tn.failures == 1, "3.%u torn", minor);
    n = threadnames_get(&tn, &th[0]);
    CHECK(n && strcmp(n, "MainThread") == 0, "3.%u kept: %s", minor, n ? n : "-");
    put64(im.active, O->ob_type, addr(type_dict));
    /* A new thread state still holding its creator's pthread id borrows no name. */
    struct pythread dup[3] = {th[0], th[1], th[1]};
    dup[2].tstate = 0x9000;
    dup[2].ts_id = 99;
    CHECK(threadnames_update(&tn, dup, 3, t0 + 2500 * MS), "3.%u read for the new state", minor);
    CHECK(threadnames_get(&tn, &dup[2]) == NULL && threadnames_get(&tn, &dup[1]) == NULL,
          "3.%u shared pthread id: no name", minor);
    CHECK(strcmp(threadnames_get(&tn, &dup[0]), "MainThread") == 0, "3.%u others named", minor);
    threadnames_fini(&tn);
    return 0;
}

static int test_names_every_layout(void)
{
    static const uint32_t minors[] = {9, 12, 13};
    for (size_t i = 0; i < sizeof(minors) / sizeof(minors[0]); i++)
        if (check_names(minors[i]))
            return 1;
    return 0;
}

static int test_no_threading_module(void)
{
    static struct image im;
    build(&im, 12, false);
    struct threadnames tn;
    threadnames_init(&tn, &im.rt);
    struct pythread th[NTHREADS];
    threads_of(&im, th, NTHREADS);
    CHECK(threadnames_update(&tn, th, NTHREADS, 1000 * MS), "read");
    CHECK(threadnames_get(&tn, &th[0]) == NULL && tn.failures == 0, "no names, no failure");
    /* Not imported yet: read again soon (100 ms, then 200 ms later, ...), not every round. */
    CHECK(!threadnames_update(&tn, th, NTHREADS, 1050 * MS), "not before 100 ms");
    CHECK(threadnames_update(&tn, th, NTHREADS, 1110 * MS), "again after 100 ms");
    CHECK(!threadnames_update(&tn, th, NTHREADS, 1250 * MS), "then 200 ms later");
    memcpy(im.modkey + O->str_ascii_size, "threading", 9); /* `import threading` ran */
    CHECK(threadnames_update(&tn, th, NTHREADS, 1320 * MS), "read after 200 ms");
    const char *n = threadnames_get(&tn, &th[0]);
    CHECK(n && strcmp(n, "MainThread") == 0, "named once imported: %s", n ? n : "-");
    CHECK(tn.retry_ns == 0, "back to the period");
    threadnames_fini(&tn);
    return 0;
}

/* One OS thread with a state in two interpreters: each registry names it. */
static int test_two_interpreters(void)
{
    static struct image im;
    build(&im, 12, true);
    uint8_t *slot;
    struct ent e[] = {
        {im.ident[0], mk_int(im.ident[0], addr(type_long)), mk_thread("sub-main", &slot)}};
    uint64_t active = mk_dict(mk_keys(3, 0, e, 1), 0, 1);
    struct ent md[] = {{1, mk_str("_active"), active}};
    uint8_t *module = alloc((size_t)O->mod_dict + 8);
    put64(module, O->ob_type, addr(type_module));
    put64(module, O->mod_dict, mk_dict(mk_keys(3, 1, md, 1), 0, 1));
    struct ent mods[] = {{1, mk_str("threading"), addr(module)}};
    uint8_t *interp2 = alloc((size_t)O->is_modules + 8);
    put64(interp2, O->is_modules, mk_dict(mk_keys(3, 1, mods, 1), 0, 1));
    struct pythread th[3];
    threads_of(&im, th, 2);
    th[2] = th[0];
    th[2].tstate = 0x7000;
    th[2].interp = addr(interp2);
    struct threadnames tn;
    threadnames_init(&tn, &im.rt);
    CHECK(threadnames_update(&tn, th, 3, 1000 * MS), "read");
    const char *a = threadnames_get(&tn, &th[0]), *b = threadnames_get(&tn, &th[2]);
    CHECK(a && strcmp(a, "MainThread") == 0, "main interpreter: %s", a ? a : "-");
    CHECK(b && strcmp(b, "sub-main") == 0, "subinterpreter: %s", b ? b : "-");
    CHECK(tn.nchain == 2, "two registries");
    /* The subinterpreter ends: its registry is forgotten at the next read. */
    CHECK(threadnames_update(&tn, th, 2, 2100 * MS) && tn.nchain == 1, "forgotten");
    threadnames_fini(&tn);
    return 0;
}

/* More Threads than the lists start with: they grow, every name is found. */
static int test_many_threads(void)
{
    enum { MANY = 70 };
    static struct image im;
    build(&im, 13, true);
    static struct ent e[MANY];
    static struct pythread th[MANY];
    static char names[MANY][24];
    for (int i = 0; i < MANY; i++) {
        uint8_t *slot;
        snprintf(names[i], sizeof(names[i]), "worker-%d", i);
        uint64_t ident = 0x7f1000000000ULL + 0x10000ULL * (uint64_t)i;
        e[i] = (struct ent){ident, mk_int(ident, addr(type_long)), mk_thread(names[i], &slot)};
        th[i] = (struct pythread){.tstate = 0x100000 + 0x1000 * (uint64_t)i,
                                  .ts_id = (uint64_t)i + 1,
                                  .interp = addr(im.interp),
                                  .pthread_id = ident};
    }
    /* 70 entries need a table of 128 slots */
    put64(im.active, O->dict_keys, mk_keys(7, 0, e, MANY));
    struct threadnames tn;
    threadnames_init(&tn, &im.rt);
    CHECK(threadnames_update(&tn, th, MANY, 1000 * MS), "read");
    for (int i = 0; i < MANY; i++) {
        const char *n = threadnames_get(&tn, &th[i]);
        CHECK(n && strcmp(n, names[i]) == 0, "thread %d: %s", i, n ? n : "-");
    }
    CHECK(tn.cap >= MANY && tn.n == MANY, "grown to %zu for %zu", tn.cap, tn.n);
    threadnames_fini(&tn);
    return 0;
}

static int test_disabled_when_offsets_do_not_fit(void)
{
    static struct image im;
    build(&im, 12, true);
    im.rt.off.dict_size = PY_DICT_HEAD_MAX + 8;
    struct threadnames tn;
    threadnames_init(&tn, &im.rt);
    struct pythread th[NTHREADS];
    threads_of(&im, th, NTHREADS);
    CHECK(!tn.enabled && !threadnames_update(&tn, th, NTHREADS, 1000 * MS) &&
              threadnames_get(&tn, &th[0]) == NULL,
          "no names");
    threadnames_fini(&tn);
    return 0;
}

int main(void)
{
    RUN(test_names_every_layout);
    RUN(test_no_threading_module);
    RUN(test_many_threads);
    RUN(test_two_interpreters);
    RUN(test_disabled_when_offsets_do_not_fit);
    return TEST_SUMMARY("threadnames");
}
