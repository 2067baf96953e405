// SPDX-License-Identifier: MIT
// /proc/PID/maps parsing.
#include "target/maps.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/buf.h"
#include "util/xalloc.h"

#define MAPS_MAX_BYTES ((size_t)64 << 20)

static int read_file(const char *path, struct buf *b)
{
    FILE *f = fopen(path, "r");
    if (!f)
        return err_from_errno(errno);
    char chunk[65536];
    size_t n;
    int rc = 0;
    while ((n = fread(chunk, 1, sizeof(chunk), f)) > 0) {
        rc = buf_append(b, chunk, n);
        if (rc)
            break;
    }
    if (!rc && ferror(f))
        rc = ERR_IO;
    fclose(f);
    return rc;
}

int maps_load(pid_t pid, struct maps *m, struct errbuf *eb)
{
    char path[64];
    snprintf(path, sizeof(path), "/proc/%d/maps", (int)pid);
    struct buf b;
    buf_init(&b, MAPS_MAX_BYTES);
    int rc = read_file(path, &b);
    if (rc == ERR_NOT_FOUND)
        rc = ERR_PROC_GONE;
    if (rc) {
        buf_fini(&b);
        return errbuf_set(eb, rc, "cannot read %s: %s", path, err_str(rc));
    }
    rc = maps_parse(buf_cstr(&b), m);
    buf_fini(&b);
    if (rc)
        return errbuf_set(eb, rc, "cannot parse %s", path);
    return 0;
}

static int parse_line(const char *line, size_t len, struct map *out)
{
    /* start-end perms offset dev inode [path] */
    char *end;
    errno = 0;
    unsigned long long start = strtoull(line, &end, 16);
    if (*end != '-')
        return ERR_ARG;
    unsigned long long stop = strtoull(end + 1, &end, 16);
    if (*end != ' ' || errno)
        return ERR_ARG;
    const char *p = end + 1;
    const char *stop_at = line + len;
    if ((size_t)(p - line) + 5 > len || p[4] != ' ' || p[5] == ' ' || p[5] == '\n')
        return ERR_ARG;
    memcpy(out->perms, p, 4);
    out->perms[4] = '\0';
    p += 5;
    unsigned long long off = strtoull(p, &end, 16);
    if (end == p || end > stop_at || errno)
        return ERR_ARG;
    p = end;
    /* skip dev and inode; every step stays inside this line */
    for (int field = 0; field < 2; field++) {
        if (p >= stop_at || *p != ' ')
            return ERR_ARG;
        while (p < stop_at && *p == ' ')
            p++;
        if (p >= stop_at)
            return ERR_ARG;
        while (p < stop_at && *p != ' ')
            p++;
    }
    while (p < stop_at && *p == ' ')
        p++;
    size_t plen = (size_t)(stop_at - p);
    out->start = start;
    out->end = stop;
    out->offset = off;
    out->path = xstrndup(p, plen);
    return 0;
}

int maps_parse(const char *text, struct maps *m)
{
    size_t cap = 64;
    m->v = xmalloc(cap * sizeof(*m->v));
    m->n = 0;
    const char *line = text;
    while (*line) {
        const char *nl = strchr(line, '\n');
        size_t len = nl ? (size_t)(nl - line) : strlen(line);
        if (len) {
            if (m->n == cap) {
                cap *= 2;
                m->v = xrealloc(m->v, cap * sizeof(*m->v));
            }
            int rc = parse_line(line, len, &m->v[m->n]);
            if (rc) {
                maps_fini(m);
                return rc;
            }
            m->n++;
        }
        line += len + (nl ? 1 : 0);
    }
    return 0;
}

void maps_fini(struct maps *m)
{
    for (size_t i = 0; i < m->n; i++)
        free(m->v[i].path);
    free(m->v);
    m->v = NULL;
    m->n = 0;
}

const struct map *maps_find(const struct maps *m, uint64_t addr)
{
    size_t lo = 0, hi = m->n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (addr < m->v[mid].start)
            hi = mid;
        else if (addr >= m->v[mid].end)
            lo = mid + 1;
        else
            return &m->v[mid];
    }
    return NULL;
}

bool maps_readable(const struct maps *m, uint64_t addr, uint64_t len)
{
    uint64_t end = addr + len;
    if (end < addr)
        return false;
    while (addr < end) {
        const struct map *mp = maps_find(m, addr);
        if (!mp || mp->perms[0] != 'r')
            return false;
        addr = mp->end;
    }
    return true;
}

const struct map *maps_find_lib(const struct maps *m, const char *prefix)
{
    size_t plen = strlen(prefix);
    for (size_t i = 0; i < m->n; i++) {
        const char *slash = strrchr(m->v[i].path, '/');
        const char *base = slash ? slash + 1 : m->v[i].path;
        if (strncmp(base, prefix, plen) == 0)
            return &m->v[i];
    }
    return NULL;
}

const struct map *maps_first_of(const struct maps *m, const char *path)
{
    for (size_t i = 0; i < m->n; i++)
        if (strcmp(m->v[i].path, path) == 0)
            return &m->v[i];
    return NULL;
}
