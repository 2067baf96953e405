// SPDX-License-Identifier: MIT
// Unit tests for target/maps (parsing /proc/PID/maps text, lookups, loading our own map) and
// target/mem (process_vm_readv reads of this process's own memory through its pid).
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include "check.h"
#include "target/maps.h"
#include "target/mem.h"

/* A realistic map: a PIE executable, a library mapped from a path with spaces, a deleted
 * file, the heap, anonymous mappings, the stack, vvar/vdso and vsyscall. The padding is the
 * kernel's (the path starts in column 74 on x86-64). */
static const char SAMPLE[] = "555555554000-555555556000 r--p 00000000 08:01 1311 "
                             "                      /usr/bin/python3.11\n"
                             "555555556000-555555800000 r-xp 00002000 08:01 1311 "
                             "                      /usr/bin/python3.11\n"
                             "555555800000-555555a00000 r--p 002ac000 08:01 1311 "
                             "                      /usr/bin/python3.11\n"
                             "555555a00000-555555a50000 rw-p 004ac000 08:01 1311 "
                             "                      /usr/bin/python3.11\n"
                             "555555a50000-555555a90000 rw-p 00000000 00:00 0 \n"
                             "555555a90000-555555c00000 rw-p 00000000 00:00 0 "
                             "                         [heap]\n"
                             "7f0000000000-7f0000021000 rw-p 00000000 00:00 0 \n"
                             "7f0000021000-7f0004000000 ---p 00000000 00:00 0 \n"
                             "7ffff7a00000-7ffff7a28000 r--p 00000000 fd:01 2242 "
                             "                      /opt/my libs/libpython3.12.so.1.0\n"
                             "7ffff7a28000-7ffff7bbd000 r-xp 00028000 fd:01 2242 "
                             "                      /opt/my libs/libpython3.12.so.1.0\n"
                             "7ffff7bbd000-7ffff7c15000 r--p 001bd000 fd:01 2242 "
                             "                      /opt/my libs/libpython3.12.so.1.0\n"
                             "7ffff7c16000-7ffff7c1a000 rw-p 00215000 fd:01 2242 "
                             "                      /opt/my libs/libpython3.12.so.1.0\n"
                             "7ffff7d00000-7ffff7d10000 r-xp 00000000 00:1f 99 "
                             "                        /tmp/jit.so (deleted)\n"
                             "7ffff7fc1000-7ffff7fc5000 r--p 00000000 00:00 0 "
                             "                         [vvar]\n"
                             "7ffff7fc5000-7ffff7fc7000 r-xp 00000000 00:00 0 "
                             "                         [vdso]\n"
                             "7ffffffde000-7ffffffff000 rw-p 00000000 00:00 0 "
                             "                         [stack]\n"
                             "ffffffffff600000-ffffffffff601000 --xp 00000000 00:00 0 "
                             "                 [vsyscall]\n";

#define NSAMPLE 17

static int test_parse_sample(void)
{
    struct maps m;
    CHECK(maps_parse(SAMPLE, &m) == 0, "parse");
    CHECK(m.n == NSAMPLE, "%zu entries", m.n);
    const struct map *v = m.v;
    CHECK(v[0].start == 0x555555554000ULL && v[0].end == 0x555555556000ULL, "first range");
    CHECK(strcmp(v[0].perms, "r--p") == 0 && v[0].offset == 0, "first perms/offset");
    CHECK(strcmp(v[0].path, "/usr/bin/python3.11") == 0, "path [%s]", v[0].path);
    CHECK(v[1].offset == 0x2000 && strcmp(v[1].perms, "r-xp") == 0, "offset of the text");
    CHECK(v[3].offset == 0x4ac000, "offset %llx", (unsigned long long)v[3].offset);
    CHECK(strcmp(v[4].path, "") == 0, "anonymous: [%s]", v[4].path);
    CHECK(strcmp(v[5].path, "[heap]") == 0, "heap: [%s]", v[5].path);
    CHECK(strcmp(v[7].perms, "---p") == 0 && v[7].path[0] == '\0', "guard");
    CHECK(strcmp(v[8].path, "/opt/my libs/libpython3.12.so.1.0") == 0, "spaces: [%s]", v[8].path);
    CHECK(strcmp(v[12].path, "/tmp/jit.so (deleted)") == 0, "deleted: [%s]", v[12].path);
    CHECK(strcmp(v[14].path, "[vdso]") == 0, "vdso: [%s]", v[14].path);
    CHECK(v[15].start == 0x7ffffffde000ULL && v[15].end == 0x7ffffffff000ULL, "48-bit stack");
    CHECK(strcmp(v[15].path, "[stack]") == 0, "stack");
    CHECK(v[16].start == 0xffffffffff600000ULL && v[16].end == 0xffffffffff601000ULL,
          "64-bit vsyscall");
    CHECK(strcmp(v[16].perms, "--xp") == 0 && strcmp(v[16].path, "[vsyscall]") == 0, "vsyscall");
    maps_fini(&m);
    CHECK(m.v == NULL && m.n == 0, "fini");
    return 0;
}

static int test_parse_variants(void)
{
    struct maps m;
    /* No final newline, blank lines, an anonymous line without the trailing space. */
    static const char text[] = "1000-2000 r-xp 00000000 00:00 0\n"
                               "\n"
                               "2000-3000 rw-s 00001000 00:05 77 /dev/shm/x y  z\n"
                               "3000-4000 r--p 00000000 00:00 0 [anon:name with spaces]";
    CHECK(maps_parse(text, &m) == 0, "parse");
    CHECK(m.n == 3, "%zu entries", m.n);
    CHECK(m.v[0].path[0] == '\0', "no path: [%s]", m.v[0].path);
    CHECK(strcmp(m.v[1].perms, "rw-s") == 0 && m.v[1].offset == 0x1000, "shared");
    CHECK(strcmp(m.v[1].path, "/dev/shm/x y  z") == 0, "inner spaces kept: [%s]", m.v[1].path);
    CHECK(strcmp(m.v[2].path, "[anon:name with spaces]") == 0, "last line: [%s]", m.v[2].path);
    maps_fini(&m);
    CHECK(maps_parse("", &m) == 0 && m.n == 0, "empty text");
    CHECK(maps_find(&m, 0x1000) == NULL && !maps_readable(&m, 0x1000, 1), "empty lookups");
    CHECK(maps_find_lib(&m, "lib") == NULL && maps_first_of(&m, "") == NULL, "empty searches");
    maps_fini(&m);
    /* Many lines: the entry array grows past its first 64 slots. */
    char *big = malloc(1000 * 64);
    size_t pos = 0;
    for (unsigned i = 0; i < 1000; i++)
        pos += (size_t)snprintf(big + pos, 64, "%x000-%x000 r--p 00000000 00:00 0 /f%u\n",
                                i * 2 + 1, i * 2 + 2, i);
    CHECK(maps_parse(big, &m) == 0 && m.n == 1000, "1000 lines: %zu", m.n);
    CHECK(strcmp(m.v[999].path, "/f999") == 0, "last path [%s]", m.v[999].path);
    CHECK(maps_find(&m, 0x7ce000) == NULL && maps_find(&m, 0x7cd000) == &m.v[998], "find");
    maps_fini(&m);
    free(big);
    return 0;
}

static int test_find_boundaries(void)
{
    struct maps m;
    CHECK(maps_parse(SAMPLE, &m) == 0, "parse");
    CHECK(maps_find(&m, 0x555555554000ULL) == &m.v[0], "first byte");
    CHECK(maps_find(&m, 0x555555555fffULL) == &m.v[0], "last byte");
    CHECK(maps_find(&m, 0x555555556000ULL) == &m.v[1], "end is the next mapping's start");
    CHECK(maps_find(&m, 0x555555553fffULL) == NULL, "before the first mapping");
    CHECK(maps_find(&m, 0) == NULL, "address 0");
    CHECK(maps_find(&m, 0x7ffff7c15000ULL) == NULL, "the hole between two mappings");
    CHECK(maps_find(&m, 0x7ffff7c15fffULL) == NULL, "last byte of the hole");
    CHECK(maps_find(&m, 0x7ffff7c16000ULL) == &m.v[11], "after the hole");
    CHECK(maps_find(&m, 0x7fffffffefffULL) == &m.v[15], "top of the stack");
    CHECK(maps_find(&m, 0x7ffffffff000ULL) == NULL, "just past the stack");
    CHECK(maps_find(&m, 0xffffffffff600800ULL) == &m.v[16], "vsyscall");
    CHECK(maps_find(&m, UINT64_MAX) == NULL, "UINT64_MAX");
    for (size_t i = 0; i < m.n; i++) {
        CHECK(maps_find(&m, m.v[i].start) == &m.v[i], "start of %zu", i);
        CHECK(maps_find(&m, m.v[i].end - 1) == &m.v[i], "end - 1 of %zu", i);
    }
    maps_fini(&m);
    return 0;
}

static int test_readable(void)
{
    struct maps m;
    CHECK(maps_parse(SAMPLE, &m) == 0, "parse");
    /* Across the four adjacent python3.11 mappings (all readable). */
    CHECK(maps_readable(&m, 0x555555554000ULL, 0x555555a50000ULL - 0x555555554000ULL),
          "whole executable");
    CHECK(maps_readable(&m, 0x555555555ff8ULL, 16), "across one boundary");
    CHECK(maps_readable(&m, 0x555555a4fff8ULL, 8), "last 8 bytes of a mapping");
    CHECK(maps_readable(&m, 0x555555a4fff8ULL, 16), "into the adjacent anonymous mapping");
    CHECK(maps_readable(&m, 0x555555554000ULL, 0x555555c00000ULL - 0x555555554000ULL),
          "executable, bss and heap together");
    CHECK(!maps_readable(&m, 0x555555554000ULL, 0x555555c00000ULL - 0x555555554000ULL + 1),
          "one byte past the heap");
    /* Holes and unreadable mappings. */
    CHECK(!maps_readable(&m, 0x7ffff7c14ff8ULL, 16), "into the hole");
    CHECK(!maps_readable(&m, 0x7ffff7c15000ULL, 1), "inside the hole");
    CHECK(!maps_readable(&m, 0x7ffff7c14000ULL, 0x3000), "across the hole");
    CHECK(!maps_readable(&m, 0x7f0000020ff8ULL, 16), "into a ---p guard");
    CHECK(maps_readable(&m, 0x7f0000020ff8ULL, 8), "up to the guard");
    CHECK(!maps_readable(&m, 0xffffffffff600000ULL, 8), "--xp is not readable");
    CHECK(maps_readable(&m, 0x7ffff7fc1000ULL, 0x6000), "vvar then vdso");
    /* Overflow of addr + len. */
    CHECK(!maps_readable(&m, 0x7ffffffde000ULL, UINT64_MAX), "wrapping length");
    maps_fini(&m);
    return 0;
}

static int test_find_lib(void)
{
    struct maps m;
    CHECK(maps_parse(SAMPLE, &m) == 0, "parse");
    CHECK(maps_find_lib(&m, "libpython") == &m.v[8], "lowest libpython mapping");
    CHECK(maps_find_lib(&m, "libpython3.12") == &m.v[8], "longer prefix");
    CHECK(maps_find_lib(&m, "libpython3.11") == NULL, "other version");
    CHECK(maps_find_lib(&m, "python3") == &m.v[0], "basename of the executable");
    CHECK(maps_find_lib(&m, "my libs") == NULL, "a directory name is not a basename");
    CHECK(maps_find_lib(&m, "jit.so") == &m.v[12], "deleted file");
    CHECK(maps_find_lib(&m, "[vdso]") == &m.v[14], "pseudo paths without a slash");
    CHECK(maps_first_of(&m, "/opt/my libs/libpython3.12.so.1.0") == &m.v[8], "first_of");
    CHECK(maps_first_of(&m, "/opt/my libs/libpython3.12.so") == NULL, "first_of is exact");
    CHECK(maps_first_of(&m, "[heap]") == &m.v[5], "first_of heap");
    maps_fini(&m);
    return 0;
}

/* Parses `text` in a child process, so that a crash or abort inside the parser fails this
 * test instead of ending the executable; true when the child got ERR_ARG and exited. */
static int parse_fails_cleanly(const char *text)
{
    fflush(NULL);
    pid_t pid = fork();
    if (pid < 0)
        return 0;
    if (pid == 0) {
        struct maps m = {0};
        int rc = maps_parse(text, &m);
        if (rc == 0)
            maps_fini(&m);
        _exit(rc == ERR_ARG ? 0 : 1);
    }
    int st = 0;
    if (waitpid(pid, &st, 0) != pid)
        return 0;
    return WIFEXITED(st) && WEXITSTATUS(st) == 0;
}

static int test_malformed(void)
{
    static const char *bad[] = {
        "garbage\n",
        "1000\n",
        "1000-2000\n",
        "1000-2000 \n",
        "1000-2000 r-x\n",
        "1000:2000 r-xp 00000000 00:00 0\n",
        "1000-zz r-xp 00000000 00:00 0\n",
        "1000-2000r-xp 00000000 00:00 0\n",
        "10000000000000000000-2000 r-xp 00000000 00:00 0\n",
        /* The bad line is the last of several: the good entries before it are freed. */
        "1000-2000 r-xp 00000000 00:00 0 /a\n2000-3000 r-xp 00000000 00:00 0 /b\nxyz\n",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        struct maps m = {0};
        int rc = maps_parse(bad[i], &m);
        CHECK(rc == ERR_ARG, "bad input %zu: %d", i, rc);
        CHECK(m.v == NULL && m.n == 0, "input %zu: entries released", i);
    }
    return 0;
}

/* A line cut right after the permissions (then a newline) must be an error; strtoull skips
 * the newline as whitespace and the parser used to run into the next line. */
static int test_malformed_cut_after_perms(void)
{
    CHECK(parse_fails_cleanly("1000-2000 r-xp \n3000-4000 rw-p 00000000 00:00 0 /x\n"),
          "cut after perms + space, then another line: crash or accepted (see stderr)");
    CHECK(parse_fails_cleanly("1000-2000 r-xp\t\n3000-4000 rw-p 00000000 00:00 0 /x\n"),
          "cut after perms + tab, then another line: crash or accepted (see stderr)");
    return 0;
}

static int test_load_self(void)
{
    struct maps m;
    struct errbuf eb = {{0}};
    static int in_data = 42;
    int on_stack = 0;
    long page = sysconf(_SC_PAGESIZE);
    void *anon =
        mmap(NULL, (size_t)page * 3, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    CHECK(anon != MAP_FAILED, "mmap");
    /* A hole in the middle: the third page stays, the second goes. */
    CHECK(munmap((char *)anon + page, (size_t)page) == 0, "munmap");
    int rc = maps_load(getpid(), &m, &eb);
    CHECK(rc == 0, "maps_load: %s", eb.msg);
    CHECK(m.n > 5, "%zu mappings", m.n);
    for (size_t i = 1; i < m.n; i++)
        CHECK(m.v[i].start >= m.v[i - 1].end && m.v[i].start < m.v[i].end, "sorted at %zu", i);
    const struct map *code = maps_find(&m, (uint64_t)(uintptr_t)&test_load_self);
    CHECK(code != NULL && code->perms[2] == 'x', "our code is mapped executable");
    char exe[4096];
    ssize_t n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
    CHECK(n > 0, "readlink");
    exe[n] = '\0';
    CHECK(strcmp(code->path, exe) == 0, "code path [%s], exe [%s]", code->path, exe);
    const struct map *first = maps_first_of(&m, exe);
    CHECK(first != NULL && first->offset == 0 && first->start <= code->start, "first of exe");
    CHECK(maps_readable(&m, (uint64_t)(uintptr_t)&in_data, sizeof(in_data)), "data readable");
    CHECK(maps_readable(&m, (uint64_t)(uintptr_t)&on_stack, sizeof(on_stack)), "stack");
    const struct map *st = maps_find(&m, (uint64_t)(uintptr_t)&on_stack);
    CHECK(st != NULL && strcmp(st->path, "[stack]") == 0, "stack path [%s]", st ? st->path : "");
    uint64_t a = (uint64_t)(uintptr_t)anon;
    CHECK(maps_readable(&m, a, (uint64_t)page), "first anonymous page");
    CHECK(!maps_readable(&m, a, (uint64_t)page + 1), "runs into the hole");
    CHECK(maps_find(&m, a + (uint64_t)page) == NULL, "hole not mapped");
    CHECK(maps_readable(&m, a + 2 * (uint64_t)page, (uint64_t)page), "third page");
    CHECK(maps_find_lib(&m, "libc.so") != NULL || maps_find_lib(&m, "libc-") != NULL, "libc");
    CHECK(maps_find_lib(&m, "libasan") != NULL, "libasan");
    maps_fini(&m);
    munmap(anon, (size_t)page);
    munmap((char *)anon + 2 * page, (size_t)page);
    return 0;
}

static int test_load_gone(void)
{
    fflush(NULL);
    pid_t pid = fork();
    CHECK(pid >= 0, "fork");
    if (pid == 0)
        _exit(0);
    int st;
    CHECK(waitpid(pid, &st, 0) == pid, "reap");
    struct maps m;
    struct errbuf eb = {{0}};
    int rc = maps_load(pid, &m, &eb);
    CHECK(rc == ERR_PROC_GONE, "reaped child: %d (%s)", rc, eb.msg);
    char want[32];
    snprintf(want, sizeof(want), "/proc/%d/maps", (int)pid);
    CHECK(strstr(eb.msg, want) != NULL, "message names the file: %s", eb.msg);
    return 0;
}

/* Maps three pages and unmaps the middle one; returns the first page's address. */
static char *map_with_hole(long page)
{
    char *p =
        mmap(NULL, (size_t)page * 3, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED)
        return NULL;
    munmap(p + page, (size_t)page);
    for (long i = 0; i < page; i++) {
        p[i] = (char)(i * 7);
        p[2 * page + i] = (char)(i * 13);
    }
    return p;
}

static void unmap_with_hole(char *p, long page)
{
    munmap(p, (size_t)page);
    munmap(p + 2 * page, (size_t)page);
}

static int test_mem_read_self(void)
{
    pid_t self = getpid();
    static const char text[] = "crux reads its own memory";
    char got[sizeof(text)];
    memset(got, 0, sizeof(got));
    uint64_t calls = mem_syscalls();
    CHECK(mem_read(self, (uint64_t)(uintptr_t)text, got, sizeof(text)) == 0, "read");
    CHECK(memcmp(got, text, sizeof(text)) == 0, "contents [%s]", got);
    CHECK(mem_syscalls() == calls + 1, "one call");
    CHECK(mem_read(self, (uint64_t)(uintptr_t)text, got, 0) == 0, "zero bytes");
    /* A large heap block, read whole. */
    size_t big = (size_t)1 << 20;
    uint8_t *src = malloc(big);
    uint8_t *dst = calloc(1, big);
    for (size_t i = 0; i < big; i++)
        src[i] = (uint8_t)(i * 2654435761u >> 13);
    CHECK(mem_read(self, (uint64_t)(uintptr_t)src, dst, big) == 0, "1 MiB");
    int same = memcmp(src, dst, big) == 0;
    free(src);
    free(dst);
    CHECK(same, "1 MiB contents");
    return 0;
}

static int test_mem_read_unmapped(void)
{
    long page = sysconf(_SC_PAGESIZE);
    char *p = map_with_hole(page);
    CHECK(p != NULL, "mmap");
    pid_t self = getpid();
    char got[64];
    int rc_hole = mem_read(self, (uint64_t)(uintptr_t)(p + page), got, 8);
    int rc_cross = mem_read(self, (uint64_t)(uintptr_t)(p + page - 8), got, 16);
    int rc_null = mem_read(self, 0, got, 8);
    int rc_high = mem_read(self, 0xffff800000000000ULL, got, 8);
    int rc_ok = mem_read(self, (uint64_t)(uintptr_t)(p + page - 8), got, 8);
    unmap_with_hole(p, page);
    CHECK(rc_hole == ERR_READ, "unmapped page: %d", rc_hole);
    CHECK(rc_cross == ERR_READ, "read running into the hole: %d", rc_cross);
    CHECK(rc_null == ERR_READ, "address 0: %d", rc_null);
    CHECK(rc_high == ERR_READ, "kernel address: %d", rc_high);
    CHECK(rc_ok == 0 && got[7] == (char)((page - 1) * 7), "last 8 bytes before the hole");
    return 0;
}

static int test_mem_readv_bad_middle(void)
{
    long page = sysconf(_SC_PAGESIZE);
    char *p = map_with_hole(page);
    CHECK(p != NULL, "mmap");
    pid_t self = getpid();
    char d[6][16];
    memset(d, 0x5a, sizeof(d));
    struct mem_span sp[6] = {
        {(uint64_t)(uintptr_t)p, d[0], 16},
        {(uint64_t)(uintptr_t)(p + 100), d[1], 16},
        {(uint64_t)(uintptr_t)(p + page + 64), d[2], 16}, /* in the hole */
        {(uint64_t)(uintptr_t)(p + 2 * page), d[3], 16},
        {(uint64_t)(uintptr_t)(p + page - 8), d[4], 16}, /* runs into the hole */
        {(uint64_t)(uintptr_t)(p + 2 * page + 32), d[5], 16},
    };
    uint8_t ok[6];
    memset(ok, 7, sizeof(ok));
    uint64_t calls = mem_syscalls();
    int bad = mem_readv(self, sp, 6, ok);
    uint64_t used = mem_syscalls() - calls;
    int c0 = memcmp(d[0], p, 16) == 0;
    int c1 = memcmp(d[1], p + 100, 16) == 0;
    int c3 = memcmp(d[3], p + 2 * page, 16) == 0;
    int c5 = memcmp(d[5], p + 2 * page + 32, 16) == 0;
    unmap_with_hole(p, page);
    CHECK(bad == 2, "two unreadable spans: %d", bad);
    CHECK(ok[0] == 1 && ok[1] == 1 && ok[2] == 0 && ok[3] == 1 && ok[4] == 0 && ok[5] == 1,
          "ok = %d %d %d %d %d %d", ok[0], ok[1], ok[2], ok[3], ok[4], ok[5]);
    CHECK(c0 && c1 && c3 && c5, "readable spans copied: %d %d %d %d", c0, c1, c3, c5);
    CHECK(used == 3, "one call, plus one after each bad span: %llu", (unsigned long long)used);
    return 0;
}

/* Spans in ascending order on one page are read as one remote range: each destination gets
 * exactly its bytes (the gaps go nowhere visible), and a range whose later span runs into an
 * unmapped page keeps the spans before it. */
static int test_mem_readv_merged(void)
{
    long page = sysconf(_SC_PAGESIZE);
    char *p = map_with_hole(page);
    CHECK(p != NULL, "mmap");
    pid_t self = getpid();
    char d[5][24];
    memset(d, 0x5a, sizeof(d));
    struct mem_span sp[5] = {
        {(uint64_t)(uintptr_t)(p + 64), d[0], 16},
        {(uint64_t)(uintptr_t)(p + 96), d[1], 8},         /* 16-byte gap */
        {(uint64_t)(uintptr_t)(p + 104), d[2], 16},       /* adjacent */
        {(uint64_t)(uintptr_t)(p + page - 48), d[3], 16}, /* far: a range of its own */
        {(uint64_t)(uintptr_t)(p + page - 8), d[4], 16},  /* 24-byte gap, runs into the hole */
    };
    uint8_t ok[5];
    memset(ok, 7, sizeof(ok));
    int bad = mem_readv(self, sp, 5, ok);
    int c0 = memcmp(d[0], p + 64, 16) == 0 && d[0][16] == 0x5a;
    int c1 = memcmp(d[1], p + 96, 8) == 0 && d[1][8] == 0x5a;
    int c2 = memcmp(d[2], p + 104, 16) == 0 && d[2][16] == 0x5a;
    int c3 = memcmp(d[3], p + page - 48, 16) == 0 && d[3][16] == 0x5a;
    unmap_with_hole(p, page);
    CHECK(bad == 1, "one unreadable span: %d", bad);
    CHECK(ok[0] == 1 && ok[1] == 1 && ok[2] == 1 && ok[3] == 1 && ok[4] == 0, "ok = %d %d %d %d %d",
          ok[0], ok[1], ok[2], ok[3], ok[4]);
    CHECK(c0 && c1 && c2 && c3, "exact copies: %d %d %d %d", c0, c1, c2, c3);
    return 0;
}

/* An empty span (a field the interpreter version lacks) reads nothing and is ok, and does not
 * split the range around it: the spans before and after it stay one remote range, as does a
 * range that starts with one. */
static int test_mem_readv_empty(void)
{
    long page = sysconf(_SC_PAGESIZE);
    char *p = map_with_hole(page);
    CHECK(p != NULL, "mmap");
    for (int i = 0; i < 256; i++)
        p[i] = (char)i;
    char d[4][16];
    memset(d, 0x5a, sizeof(d));
    struct mem_span sp[5] = {
        {(uint64_t)(uintptr_t)(p + 64), d[0], 8},
        {(uint64_t)(uintptr_t)(p + 8), d[1], 0}, /* empty, below the range it joins */
        {(uint64_t)(uintptr_t)(p + 80), d[2], 8},
        {(uint64_t)(uintptr_t)(p + page + 64), d[3], 0}, /* empty, in the hole */
        {(uint64_t)(uintptr_t)(p + 96), d[3], 8},
    };
    uint8_t ok[5];
    memset(ok, 7, sizeof(ok));
    uint64_t ranges = mem_ranges();
    int bad = mem_readv(getpid(), sp, 5, ok);
    ranges = mem_ranges() - ranges;
    int c0 = memcmp(d[0], p + 64, 8) == 0, c2 = memcmp(d[2], p + 80, 8) == 0;
    int c3 = memcmp(d[3], p + 96, 8) == 0, c1 = (unsigned char)d[1][0] == 0x5a;
    /* Starting with an empty span. */
    memset(d, 0x5a, sizeof(d));
    struct mem_span sq[2] = {{(uint64_t)(uintptr_t)(p + page + 8), d[0], 0},
                             {(uint64_t)(uintptr_t)(p + 200), d[1], 8}};
    uint8_t oq[2] = {7, 7};
    int bad2 = mem_readv(getpid(), sq, 2, oq);
    int q1 = memcmp(d[1], p + 200, 8) == 0;
    unmap_with_hole(p, page);
    CHECK(bad == 0 && bad2 == 0, "bad spans: %d %d", bad, bad2);
    CHECK(ok[0] == 1 && ok[1] == 1 && ok[2] == 1 && ok[3] == 1 && ok[4] == 1, "ok = %d %d %d %d %d",
          ok[0], ok[1], ok[2], ok[3], ok[4]);
    CHECK(oq[0] == 1 && oq[1] == 1, "ok = %d %d", oq[0], oq[1]);
    CHECK(c0 && c1 && c2 && c3 && q1, "exact copies: %d %d %d %d %d", c0, c1, c2, c3, q1);
    CHECK(ranges == 1, "%llu remote ranges for one page", (unsigned long long)ranges);
    return 0;
}

static int test_mem_readv_batches(void)
{
    enum { N = 3000, BAD_AT = 1500 };
    long page = sysconf(_SC_PAGESIZE);
    char *p = map_with_hole(page);
    CHECK(p != NULL, "mmap");
    struct mem_span *sp = calloc(N, sizeof(*sp));
    uint8_t *ok = calloc(N, 1);
    uint32_t *vals = calloc(N, sizeof(*vals));
    uint32_t *src = calloc(N, sizeof(*src));
    for (uint32_t i = 0; i < N; i++) {
        src[i] = i * 3 + 1;
        sp[i] = (struct mem_span){(uint64_t)(uintptr_t)&src[i], &vals[i], sizeof(vals[i])};
    }
    sp[0].addr = (uint64_t)(uintptr_t)(p + page); /* the first span is bad: EFAULT, 0 bytes */
    sp[BAD_AT].addr = (uint64_t)(uintptr_t)(p + page + 4);
    sp[N - 1].addr = (uint64_t)(uintptr_t)(p + page + 8); /* and the last */
    uint64_t calls = mem_syscalls();
    int bad = mem_readv(getpid(), sp, N, ok);
    uint64_t used = mem_syscalls() - calls;
    int wrong = -1;
    for (uint32_t i = 0; i < N && wrong < 0; i++) {
        bool want_ok = i != 0 && i != BAD_AT && i != N - 1;
        if (ok[i] != want_ok || (want_ok && vals[i] != src[i]))
            wrong = (int)i;
    }
    /* An empty batch. */
    int none = mem_readv(getpid(), sp, 0, ok);
    free(sp);
    free(ok);
    free(vals);
    free(src);
    unmap_with_hole(p, page);
    CHECK(bad == 3, "three bad spans: %d", bad);
    CHECK(wrong < 0, "span %d wrong", wrong);
    /* 3000 spans: 3 full batches, +1 call after each of the 3 bad spans (at most). */
    CHECK(used >= 3 && used <= 6, "%llu calls", (unsigned long long)used);
    CHECK(none == 0, "no spans: %d", none);
    return 0;
}

static int test_mem_gone(void)
{
    fflush(NULL);
    pid_t pid = fork();
    CHECK(pid >= 0, "fork");
    if (pid == 0)
        _exit(0);
    CHECK(waitpid(pid, NULL, 0) == pid, "reap");
    static uint64_t word = 1;
    uint64_t got;
    int rc = mem_read(pid, (uint64_t)(uintptr_t)&word, &got, sizeof(got));
    CHECK(rc == ERR_PROC_GONE, "mem_read of a reaped child: %d", rc);
    struct mem_span sp = {(uint64_t)(uintptr_t)&word, &got, sizeof(got)};
    uint8_t ok;
    rc = mem_readv(pid, &sp, 1, &ok);
    CHECK(rc == ERR_PROC_GONE, "mem_readv of a reaped child: %d", rc);
    return 0;
}

int main(void)
{
    RUN(test_parse_sample);
    RUN(test_parse_variants);
    RUN(test_find_boundaries);
    RUN(test_readable);
    RUN(test_find_lib);
    RUN(test_malformed);
    RUN(test_malformed_cut_after_perms);
    RUN(test_load_self);
    RUN(test_load_gone);
    RUN(test_mem_read_self);
    RUN(test_mem_read_unmapped);
    RUN(test_mem_readv_bad_middle);
    RUN(test_mem_readv_merged);
    RUN(test_mem_readv_empty);
    RUN(test_mem_readv_batches);
    RUN(test_mem_gone);
    return TEST_SUMMARY("maps");
}
