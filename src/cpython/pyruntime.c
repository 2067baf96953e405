// SPDX-License-Identifier: MIT
// Locating _PyRuntime and the interpreter version in a target process.
#include "cpython/pyruntime.h"

#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "target/elffile.h"
#include "target/maps.h"
#include "target/mem.h"
#include "util/xalloc.h"

#define RODATA_MAX ((uint64_t)32 << 20)
#define DEBUG_OFFSETS_READ 2048

/* What one candidate ELF (the executable or a libpython) told us. */
struct candidate {
    const struct map *map; /* first mapping of the file (offset 0) */
    struct elffile *ef;
    uint64_t bias;
    uint64_t runtime; /* 0 when the file has no _PyRuntime */
    int has_python;   /* exports Py_Initialize (old Pythons have no _PyRuntime) */
};

uint64_t pyruntime_parse_version(const char *s, size_t n)
{
    /* major.minor.micro[(a|b|rc)N][+] */
    size_t i = 0;
    unsigned long part[3] = {0, 0, 0};
    for (int k = 0; k < 3; k++) {
        size_t start = i;
        while (i < n && isdigit((unsigned char)s[i]) && i - start < 3)
            part[k] = part[k] * 10 + (unsigned long)(s[i++] - '0');
        if (i == start)
            return 0;
        if (k < 2) {
            if (i >= n || s[i] != '.')
                return 0;
            i++;
        }
    }
    unsigned level = 0xF, serial = 0;
    if (i < n && (s[i] == 'a' || s[i] == 'b' || s[i] == 'r')) {
        level = s[i] == 'a' ? 0xA : s[i] == 'b' ? 0xB : 0xC;
        if (s[i] == 'r' && (i + 1 >= n || s[i + 1] != 'c'))
            return 0;
        i += s[i] == 'r' ? 2 : 1;
        size_t start = i;
        while (i < n && isdigit((unsigned char)s[i]) && i - start < 2)
            serial = serial * 10 + (unsigned)(s[i++] - '0');
        if (i == start)
            return 0;
    }
    if (i < n && s[i] == '+')
        i++;
    if (i != n || part[0] < 2 || part[0] > 3 || part[1] > 99 || part[2] > 99 || serial > 15)
        return 0;
    return (part[0] << 24) | (part[1] << 16) | (part[2] << 8) | (level << 4) | serial;
}

void pyruntime_format_version(uint64_t hex, char *out, size_t n)
{
    unsigned major = (hex >> 24) & 0xff, minor = (hex >> 16) & 0xff, micro = (hex >> 8) & 0xff;
    unsigned level = (hex >> 4) & 0xf, serial = hex & 0xf;
    const char *tag = level == 0xA ? "a" : level == 0xB ? "b" : level == 0xC ? "rc" : "";
    if (*tag)
        snprintf(out, n, "%u.%u.%u%s%u", major, minor, micro, tag, serial);
    else
        snprintf(out, n, "%u.%u.%u", major, minor, micro);
}

static const struct map *file_map(const struct maps *m, const char *path)
{
    for (size_t i = 0; i < m->n; i++)
        if (m->v[i].offset == 0 && strcmp(m->v[i].path, path) == 0)
            return &m->v[i];
    return NULL;
}

static void file_span(const struct maps *m, const char *path, uint64_t *start, uint64_t *end)
{
    *start = UINT64_MAX;
    *end = 0;
    for (size_t i = 0; i < m->n; i++) {
        if (strcmp(m->v[i].path, path) != 0)
            continue;
        if (m->v[i].start < *start)
            *start = m->v[i].start;
        if (m->v[i].end > *end)
            *end = m->v[i].end;
    }
}

static int open_candidate(pid_t pid, const char *open_path, const struct map *mp,
                          struct candidate *c)
{
    memset(c, 0, sizeof(*c));
    c->map = mp;
    if (elffile_open(open_path, &c->ef, NULL))
        return ERR_NOT_FOUND;
    (void)pid;
    c->bias = elffile_bias(c->ef, mp->start);
    uint64_t v;
    if (elffile_symbol(c->ef, "_PyRuntime", &v, NULL) == 0)
        c->runtime = c->bias + v;
    c->has_python = c->runtime || elffile_symbol(c->ef, "Py_Initialize", &v, NULL) == 0;
    return 0;
}

/* The executable and every libpython mapping, in that order. */
static size_t find_candidates(pid_t pid, const struct maps *m, struct candidate *out, size_t max)
{
    size_t n = 0;
    char link[64], exe[PATH_MAX];
    snprintf(link, sizeof(link), "/proc/%d/exe", (int)pid);
    ssize_t len = readlink(link, exe, sizeof(exe) - 1);
    if (len > 0) {
        exe[len] = '\0';
        const struct map *mp = file_map(m, exe);
        if (mp && open_candidate(pid, link, mp, &out[n]) == 0 && out[n].has_python)
            n++;
        else if (mp)
            elffile_free(out[n].ef);
    }
    for (size_t i = 0; i < m->n && n < max; i++) {
        const struct map *mp = &m->v[i];
        const char *slash = strrchr(mp->path, '/');
        const char *base = slash ? slash + 1 : mp->path;
        if (mp->offset != 0 || strncmp(base, "libpython", 9) != 0 ||
            strncmp(base, "libpython3.so", 13) == 0 || file_map(m, mp->path) != mp)
            continue;
        char path[PATH_MAX + 64];
        snprintf(path, sizeof(path), "/proc/%d/root%s", (int)pid, mp->path);
        int rc = open_candidate(pid, path, mp, &out[n]);
        if (rc)
            rc = open_candidate(pid, mp->path, mp, &out[n]);
        if (rc == 0 && out[n].has_python)
            n++;
        else if (rc == 0)
            elffile_free(out[n].ef);
    }
    return n;
}

/* Scans the candidate's .rodata, read from the target's memory, for the PY_VERSION literal.
 * The linker merges string tails, so "3.8.18" often survives only as the end of another
 * string (the install prefix "/root/.pyenv/versions/3.8.18"): accept a version that ends at
 * a NUL and starts after a character that is neither a digit nor a dot. Other version-like
 * strings exist too ("3.2.0" of unicodedata, py-spy #731); the minor named by the file
 * (`hint_minor`) wins, else the most frequent one. Returns 0 if none. */
static uint64_t rodata_version(pid_t pid, const struct candidate *c, int hint_minor)
{
    uint64_t addr, size;
    if (elffile_section(c->ef, ".rodata", &addr, &size) || size == 0)
        return 0;
    if (size > RODATA_MAX)
        size = RODATA_MAX;
    char *data = xmalloc(size + 1);
    uint64_t seen[32];
    unsigned count[32];
    size_t nseen = 0;
    if (mem_read(pid, c->bias + addr, data, size) == 0) {
        data[size] = '\0';
        for (uint64_t i = 1; i + 5 < size; i++) {
            char before = data[i - 1];
            if ((data[i] != '3' && data[i] != '2') || data[i + 1] != '.' ||
                isdigit((unsigned char)before) || before == '.')
                continue;
            size_t len = strnlen(data + i, 16);
            uint64_t v = pyruntime_parse_version(data + i, len);
            if (!v)
                continue;
            size_t k = 0;
            while (k < nseen && seen[k] != v)
                k++;
            if (k == nseen && nseen < 32) {
                seen[nseen] = v;
                count[nseen++] = 0;
            }
            if (k < nseen)
                count[k]++;
        }
    }
    free(data);
    uint64_t best = 0;
    unsigned best_score = 0;
    for (size_t k = 0; k < nseen; k++) {
        int minor = (int)((seen[k] >> 16) & 0xff);
        unsigned score = count[k] + (minor == hint_minor ? 1000000u : 0) +
                         ((seen[k] >> 24) == 3 && minor >= 8 ? 1000u : 0);
        if (score > best_score) {
            best = seen[k];
            best_score = score;
        }
    }
    return best;
}

/* The minor version a file name suggests: libpython3.X.so or python3.X. */
static int soname_minor(const char *path)
{
    const char *slash = strrchr(path, '/');
    const char *p = strstr(slash ? slash : path, "python3.");
    if (!p)
        return -1;
    return (int)strtol(p + 8, NULL, 10);
}

static int read_version(pid_t pid, const struct candidate *c, uint64_t *hex)
{
    uint64_t sym;
    if (elffile_symbol(c->ef, "Py_Version", &sym, NULL) == 0) {
        unsigned long v = 0;
        if (mem_read(pid, c->bias + sym, &v, sizeof(v)) == 0 && (v >> 24) == 3) {
            *hex = v;
            return 0;
        }
    }
    *hex = rodata_version(pid, c, soname_minor(c->map->path));
    return *hex ? 0 : ERR_NOT_FOUND;
}

static void type_addresses(struct pyruntime *rt, const struct candidate *c)
{
    static const char *names[] = {"PyCode_Type",        "PyUnicode_Type", "PyBytes_Type",
                                  "_Py_NoneStruct",     "PyDict_Type",    "PyLong_Type",
                                  "PyModule_Type",      "PyCoro_Type",    "PyGen_Type",
                                  "_PyWeakref_RefType", "PySet_Type"};
    uint64_t *dst[] = {&rt->type_code, &rt->type_str,     &rt->type_bytes,  &rt->type_none,
                       &rt->type_dict, &rt->type_long,    &rt->type_module, &rt->type_coro,
                       &rt->type_gen,  &rt->type_weakref, &rt->type_set};
    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
        uint64_t v;
        *dst[i] = elffile_symbol(c->ef, names[i], &v, NULL) == 0 ? c->bias + v : 0;
    }
}

static int choose_offsets(struct pyruntime *rt, struct errbuf *eb)
{
    uint32_t minor = (rt->version_hex >> 16) & 0xff;
    uint32_t major = (rt->version_hex >> 24) & 0xff;
    if (major == 3 && minor >= 13) {
        uint8_t raw[DEBUG_OFFSETS_READ];
        int rc = mem_read(rt->pid, rt->runtime, raw, sizeof(raw));
        if (rc)
            return errbuf_set(eb, rc, "cannot read _PyRuntime at 0x%llx",
                              (unsigned long long)rt->runtime);
        uint64_t dbg_version = 0;
        rc = offsets_from_debug(raw, sizeof(raw), &dbg_version, &rt->off, eb);
        if (rc)
            return rc;
        if (dbg_version)
            rt->version_hex = dbg_version;
        return 0;
    }
    const struct py_offsets *o = major == 3 ? offsets_for_minor(minor) : NULL;
    if (!o)
        return errbuf_set(eb, ERR_VERSION,
                          "Python %s is not supported (crux reads CPython 3.8 to 3.13)",
                          rt->version);
    rt->off = *o;
    return 0;
}

int pyruntime_find(pid_t pid, struct pyruntime *rt, struct errbuf *eb)
{
    memset(rt, 0, sizeof(*rt));
    rt->pid = pid;
    struct maps m;
    int rc = maps_load(pid, &m, eb);
    if (rc)
        return rc;
    struct candidate cands[8];
    size_t n = find_candidates(pid, &m, cands, 8);
    size_t pick = n;
    for (size_t i = 0; i < n && pick == n; i++)
        if (cands[i].runtime)
            pick = i;
    if (n == 0) {
        rc = errbuf_set(eb, ERR_NOT_PYTHON, "process %d is not a Python process", (int)pid);
        goto out;
    }
    const struct candidate *c = &cands[pick == n ? 0 : pick];
    if (read_version(pid, c, &rt->version_hex)) {
        rc =
            errbuf_set(eb, pick == n ? ERR_NOT_PYTHON : ERR_VERSION,
                       "cannot tell the Python version of process %d (%s)", (int)pid, c->map->path);
        goto out;
    }
    pyruntime_format_version(rt->version_hex, rt->version, sizeof(rt->version));
    if (pick == n) {
        rc = errbuf_set(eb, ERR_VERSION,
                        "Python %s is not supported (crux reads CPython 3.8 to 3.13)", rt->version);
        goto out;
    }
    rt->runtime = c->runtime;
    snprintf(rt->elf_path, sizeof(rt->elf_path), "%s", c->map->path);
    file_span(&m, c->map->path, &rt->elf_start, &rt->elf_end);
    type_addresses(rt, c);
    rc = choose_offsets(rt, eb);
    if (rc == 0)
        pyruntime_format_version(rt->version_hex, rt->version, sizeof(rt->version));
out:
    for (size_t i = 0; i < n; i++)
        elffile_free(cands[i].ef);
    maps_fini(&m);
    return rc;
}

int pyruntime_interp_head(const struct pyruntime *rt, uint64_t *head)
{
    return mem_read(rt->pid, rt->runtime + (uint64_t)rt->off.rt_interp_head, head, sizeof(*head));
}
