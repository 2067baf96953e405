// SPDX-License-Identifier: MIT
// Stage ring reader. The file is written by the target, so it is read with pread (a file the
// target shrinks cannot fault us, as a mapping could) and every value in it is checked.
#include "stages/ring.h"

#include <errno.h>
#include <fcntl.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "util/text.h"
#include "util/xalloc.h"

/* Records that stay unpublished this many drains in a row are skipped (a writer that died
 * between reserving and publishing its record; a live one publishes within microseconds,
 * unless it is preempted right there). */
#define STALL_DRAINS 50

static int read_at(const struct stagering *r, void *dst, size_t n, uint64_t off)
{
    ssize_t got = pread(r->fd, dst, n, (off_t)off);
    return got == (ssize_t)n ? 0 : ERR_IO;
}

static int write_u32(const struct stagering *r, size_t off, uint32_t v)
{
    return pwrite(r->fd, &v, sizeof(v), (off_t)off) == (ssize_t)sizeof(v) ? 0 : ERR_IO;
}

/* The heartbeat: the agent clears `attached` when it is stale (a reader killed -9). */
static void beat(const struct stagering *r)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    uint64_t now = (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
    if (pwrite(r->fd, &now, sizeof(now), offsetof(struct agentshm_hdr, reader_ns)) < 0) {
        /* the file is gone or read-only: nothing else depends on it */
    }
}

static bool table_fits(uint64_t off, uint64_t count, uint64_t size, uint64_t total)
{
    return off >= AGENTSHM_HDR_SIZE && off <= total && count * size <= total - off;
}

static int check_header(const struct agentshm_hdr *h, uint64_t file_size, pid_t pid,
                        const char *path, struct errbuf *eb)
{
    if (memcmp(h->magic, AGENTSHM_MAGIC, sizeof(h->magic)) != 0)
        return errbuf_set(
            eb, ERR_CORRUPT,
            "%s is not a crux stage ring (bad magic): give a file made by crux's agent", path);
    if (h->version != AGENTSHM_VERSION)
        return errbuf_set(eb, ERR_VERSION,
                          "%s is a version %u stage ring, this crux reads version %u: use the "
                          "agent built with this crux (make agent)",
                          path, h->version, AGENTSHM_VERSION);
    uint32_t n = h->rec_count;
    bool ok = h->hdr_size == AGENTSHM_HDR_SIZE && h->rec_size == sizeof(struct agentshm_rec) &&
              h->name_size == sizeof(struct agentshm_name) && h->name_count == AGENTSHM_NAMES &&
              h->slot_size == sizeof(struct agentshm_slot) && h->slot_count == AGENTSHM_SLOTS &&
              n >= AGENTSHM_RECS_MIN && n <= AGENTSHM_RECS_MAX && (n & (n - 1)) == 0 &&
              h->total_size <= file_size &&
              table_fits(h->names_off, h->name_count, h->name_size, h->total_size) &&
              table_fits(h->slots_off, h->slot_count, h->slot_size, h->total_size) &&
              table_fits(h->recs_off, n, h->rec_size, h->total_size);
    if (!ok)
        return errbuf_set(eb, ERR_CORRUPT,
                          "%s has an invalid header (sizes or offsets out of range, file %llu "
                          "bytes): remove it, the agent makes a new one at import",
                          path, (unsigned long long)file_size);
    if (pid && h->pid != (uint32_t)pid)
        return errbuf_set(eb, ERR_CORRUPT,
                          "%s belongs to process %u, not %d: a stale file, remove it", path, h->pid,
                          (int)pid);
    return 0;
}

/* The allocation section is optional: a file without it (or with an invalid one) still gives
 * stages. */
static bool allocs_valid(const struct agentshm_hdr *h)
{
    uint32_t n = h->arec_count;
    return h->arecs_off && h->arec_size == sizeof(struct agentshm_arec) &&
           h->code_size == sizeof(struct agentshm_code) && h->code_count == AGENTSHM_CODES &&
           h->stack_size == sizeof(struct agentshm_stack) && h->stack_count == AGENTSHM_STACKS &&
           n >= AGENTSHM_RECS_MIN && n <= AGENTSHM_AREC_ALL && (n & (n - 1)) == 0 &&
           table_fits(h->arecs_off, n, h->arec_size, h->total_size) &&
           table_fits(h->codes_off, h->code_count, h->code_size, h->total_size) &&
           table_fits(h->stacks_off, h->stack_count, h->stack_size, h->total_size);
}

int stagering_open(struct stagering *r, pid_t pid, struct errbuf *eb)
{
    char path[128];
    snprintf(path, sizeof(path), "%s/%s%d", AGENTSHM_DIR, AGENTSHM_PREFIX, (int)pid);
    return stagering_open_path(r, path, pid, eb);
}

static int open_file(struct stagering *r, const char *path, struct errbuf *eb)
{
    r->fd = open(path, O_RDWR | O_CLOEXEC);
    if (r->fd >= 0)
        return 0;
    int e = errno;
    if (e == ENOENT && r->pid)
        return errbuf_set(eb, ERR_NOT_FOUND,
                          "process %d has no stage ring (%s): the program must `import crux` "
                          "from the agent (PYTHONPATH=build/agent/TAG, see docs/stages.md)",
                          (int)r->pid, path);
    if (e == ENOENT)
        return errbuf_set(eb, ERR_NOT_FOUND, "no stage ring at %s: check the path", path);
    if (e == EACCES || e == EPERM)
        return errbuf_set(eb, ERR_PERM, "%s: permission denied: run crux as the target's user",
                          path);
    return errbuf_set(eb, ERR_IO, "cannot open %s: %s", path, strerror(e));
}

int stagering_open_path(struct stagering *r, const char *path, pid_t pid, struct errbuf *eb)
{
    memset(r, 0, sizeof(*r));
    r->pid = pid;
    size_t plen = strlen(path);
    if (plen >= sizeof(r->path))
        return errbuf_set(eb, ERR_ARG, "ring path too long: %s", path);
    memcpy(r->path, path, plen + 1);
    int rc = open_file(r, path, eb);
    if (rc)
        return rc;
    r->opened = true;
    struct stat st;
    if (fstat(r->fd, &st) != 0 || !S_ISREG(st.st_mode) ||
        (uint64_t)st.st_size < AGENTSHM_HDR_SIZE) {
        rc = errbuf_set(eb, ERR_CORRUPT,
                        "%s is not a crux stage ring (too small): give a file made by crux's agent",
                        path);
        goto fail;
    }
    if (read_at(r, &r->hdr, sizeof(r->hdr), 0)) {
        rc = errbuf_set(eb, ERR_IO, "%s: short read of the header: the file was cut", path);
        goto fail;
    }
    rc = check_header(&r->hdr, (uint64_t)st.st_size, pid, path, eb);
    if (rc)
        goto fail;
    r->names = xcalloc(AGENTSHM_NAMES, sizeof(*r->names));
    r->names_ok = xcalloc(AGENTSHM_NAMES, 1);
    r->slots = xcalloc(AGENTSHM_SLOTS, sizeof(*r->slots));
    r->a = xcalloc(STAGERING_BATCH, sizeof(*r->a));
    r->b = xcalloc(STAGERING_BATCH, sizeof(*r->b));
    if (allocs_valid(&r->hdr)) {
        r->allocs = true;
        r->aa = xcalloc(STAGERING_BATCH, sizeof(*r->aa));
        r->ab = xcalloc(STAGERING_BATCH, sizeof(*r->ab));
        r->cfile = xcalloc(AGENTSHM_CODES, sizeof(*r->cfile));
        r->cname = xcalloc(AGENTSHM_CODES, sizeof(*r->cname));
        uint64_t aw = 0;
        if (read_at(r, &aw, sizeof(aw), offsetof(struct agentshm_hdr, alloc_write_idx)) == 0)
            r->aread_idx = aw > r->hdr.arec_count ? aw - r->hdr.arec_count : 0;
    }
    /* Start at the records already in the ring that are still intact. */
    uint64_t w = 0;
    if (read_at(r, &w, sizeof(w), offsetof(struct agentshm_hdr, write_idx)) == 0)
        r->read_idx = w > r->hdr.rec_count ? w - r->hdr.rec_count : 0;
    beat(r); /* before `attached`, so that the agent never sees a stale heartbeat with it */
    if (write_u32(r, offsetof(struct agentshm_hdr, attached), 1)) {
        rc = errbuf_set(eb, ERR_IO,
                        "%s: cannot set the attached flag: crux needs write access to it", path);
        goto fail;
    }
    r->attached = true;
    return 0;
fail:
    stagering_close(r);
    return rc;
}

void stagering_close(struct stagering *r)
{
    if (r->opened) {
        if (r->attached) {
            if (write_u32(r, offsetof(struct agentshm_hdr, attached), 0)) {
                /* the target is gone or the file was removed: nothing to undo */
            }
            uint64_t lost = r->lost;
            if (pwrite(r->fd, &lost, sizeof(lost), offsetof(struct agentshm_hdr, lost)) < 0) {
                /* informational only */
            }
        }
        close(r->fd);
    }
    free(r->names);
    free(r->names_ok);
    free(r->slots);
    free(r->a);
    free(r->b);
    free(r->aa);
    free(r->ab);
    for (uint32_t i = 0; r->cfile && i < AGENTSHM_CODES; i++) {
        free(r->cfile[i]);
        free(r->cname[i]);
    }
    free(r->cfile);
    free(r->cname);
    memset(r, 0, sizeof(*r));
}

const char *stagering_name(struct stagering *r, uint32_t id)
{
    if (!r->names || id >= AGENTSHM_NAMES)
        return NULL;
    if (r->names_ok[id])
        return r->names[id];
    struct agentshm_name e;
    if (read_at(r, &e, sizeof(e), r->hdr.names_off + (uint64_t)id * sizeof(e)))
        return NULL;
    if (e.state != AGENTSHM_NAME_READY || e.len > AGENTSHM_NAME_MAX)
        return NULL;
    memcpy(r->names[id], e.text, e.len);
    r->names[id][e.len] = '\0';
    text_scrub(r->names[id], e.len);
    r->names_ok[id] = 1;
    return r->names[id];
}

/* Copies records [idx, idx + n) into dst, in up to two reads (the ring wraps). */
static int read_records(const struct stagering *r, struct agentshm_rec *dst, uint64_t idx, size_t n)
{
    uint64_t cap = r->hdr.rec_count;
    uint64_t pos = idx & (cap - 1);
    size_t first = (size_t)(cap - pos < n ? cap - pos : n);
    uint64_t base = r->hdr.recs_off;
    if (read_at(r, dst, first * sizeof(*dst), base + pos * sizeof(*dst)))
        return ERR_IO;
    if (first < n && read_at(r, dst + first, (n - first) * sizeof(*dst), base))
        return ERR_IO;
    return 0;
}

static int read_write_idx(const struct stagering *r, uint64_t *w)
{
    return read_at(r, w, sizeof(*w), offsetof(struct agentshm_hdr, write_idx));
}

/* Converts one published record; false when it fails validation. */
static bool convert(struct stagering *r, const struct agentshm_rec *rec, struct stage_span *s)
{
    if (rec->kind < STAGE_SPAN || rec->kind > STAGE_MARK || rec->name >= AGENTSHM_NAMES ||
        rec->end_ns < rec->start_ns)
        return false;
    const char *name = rec->name ? stagering_name(r, rec->name) : NULL;
    if (!name)
        name = rec->kind == STAGE_REQUEST ? "" : "[other]";
    s->request = rec->request;
    s->start_ns = rec->start_ns;
    s->end_ns = rec->end_ns;
    s->name = name;
    s->tid = rec->tid;
    s->kind = rec->kind;
    s->pid = r->hdr.pid;
    return true;
}

/* Where reading stops on an unpublished record: wait for it a few drains, then skip it. */
static bool skip_stalled(struct stagering *r, uint64_t idx)
{
    if (r->stall_idx != idx) {
        r->stall_idx = idx;
        r->stall_count = 0;
    }
    return ++r->stall_count >= STALL_DRAINS;
}

size_t stagering_drain(struct stagering *r, struct stage_span *out, size_t max)
{
    if (!r->opened || !r->a || !max)
        return 0;
    uint64_t cap = r->hdr.rec_count;
    uint64_t w = 0;
    beat(r);
    if (read_write_idx(r, &w))
        return 0;
    if (w < r->read_idx) { /* the index went backwards: a new or corrupted writer */
        r->bad++;
        r->read_idx = w;
        return 0;
    }
    if (w - r->read_idx > cap) {
        r->lost += w - r->read_idx - cap;
        r->read_idx = w - cap;
    }
    size_t n = (size_t)(w - r->read_idx);
    n = n < max ? n : max;
    n = n < STAGERING_BATCH ? n : STAGERING_BATCH;
    if (!n)
        return 0;
    /* Two copies: a record whose seq was published in copy A was complete before copy B
     * began, so B's fields are whole; the index re-read after B tells which ones a writer
     * may have reclaimed meanwhile. */
    uint64_t start = r->read_idx;
    uint64_t w2 = 0;
    if (read_records(r, r->a, start, n) || read_records(r, r->b, start, n) ||
        read_write_idx(r, &w2))
        return 0;
    uint64_t safe_from = w2 > cap ? w2 - cap : 0; /* older indices may be overwritten */
    size_t k = 0, i = 0;
    for (; i < n; i++) {
        uint64_t idx = start + i;
        const struct agentshm_rec *ra = &r->a[i], *rb = &r->b[i];
        if (idx < safe_from) {
            r->lost++;
            continue;
        }
        if (ra->seq != idx + 1 || rb->seq != idx + 1) {
            if (!skip_stalled(r, idx))
                break;
            r->lost++;
            continue;
        }
        if (convert(r, rb, &out[k]))
            k++;
        else
            r->bad++;
    }
    r->read_idx = start + i;
    r->drained += k;
    return k;
}

int stagering_refresh_threads(struct stagering *r)
{
    r->slots_ok = false;
    if (!r->opened || !r->slots)
        return ERR_IO;
    beat(r);
    if (read_at(r, r->slots, AGENTSHM_SLOTS * sizeof(*r->slots), r->hdr.slots_off))
        return ERR_IO;
    r->slots_ok = true;
    return 0;
}

const char *stagering_current(struct stagering *r, pid_t tid)
{
    if (!r->slots_ok || tid <= 0)
        return NULL;
    for (uint32_t i = 0; i < AGENTSHM_SLOTS; i++) {
        const struct agentshm_slot *s = &r->slots[i];
        if (s->tid == (uint32_t)tid)
            return s->name ? stagering_name(r, s->name) : NULL;
    }
    return NULL;
}

size_t stagering_list_current(struct stagering *r, struct stage_current *out, size_t max)
{
    size_t n = 0;
    for (uint32_t i = 0; r->slots_ok && i < AGENTSHM_SLOTS && n < max; i++) {
        const struct agentshm_slot *s = &r->slots[i];
        const char *name = s->tid && s->name ? stagering_name(r, s->name) : NULL;
        if (!name)
            continue;
        out[n].tid = s->tid;
        out[n].stage = name;
        n++;
    }
    return n;
}

/* ---- the allocation section ---------------------------------------------------------------- */

static int read_arecs(const struct stagering *r, struct agentshm_arec *dst, uint64_t idx, size_t n)
{
    uint64_t cap = r->hdr.arec_count;
    uint64_t pos = idx & (cap - 1);
    size_t first = (size_t)(cap - pos < n ? cap - pos : n);
    uint64_t base = r->hdr.arecs_off;
    if (read_at(r, dst, first * sizeof(*dst), base + pos * sizeof(*dst)))
        return ERR_IO;
    if (first < n && read_at(r, dst + first, (n - first) * sizeof(*dst), base))
        return ERR_IO;
    return 0;
}

size_t stagering_drain_allocs(struct stagering *r, struct agentshm_arec *out, size_t max)
{
    if (!r->opened || !r->allocs || !max)
        return 0;
    uint64_t cap = r->hdr.arec_count, w = 0, w2 = 0;
    const size_t widx = offsetof(struct agentshm_hdr, alloc_write_idx);
    if (read_at(r, &w, sizeof(w), widx))
        return 0;
    if (w < r->aread_idx) {
        r->bad++;
        r->aread_idx = w;
        return 0;
    }
    if (w - r->aread_idx > cap) {
        r->alost += w - r->aread_idx - cap;
        r->aread_idx = w - cap;
    }
    size_t n = (size_t)(w - r->aread_idx);
    n = n < max ? n : max;
    n = n < STAGERING_BATCH ? n : STAGERING_BATCH;
    if (!n)
        return 0;
    /* The same two copies as stagering_drain. */
    uint64_t start = r->aread_idx;
    if (read_arecs(r, r->aa, start, n) || read_arecs(r, r->ab, start, n) ||
        read_at(r, &w2, sizeof(w2), widx))
        return 0;
    uint64_t safe_from = w2 > cap ? w2 - cap : 0;
    size_t k = 0, i = 0;
    for (; i < n; i++) {
        uint64_t idx = start + i;
        const struct agentshm_arec *ra = &r->aa[i], *rb = &r->ab[i];
        if (idx < safe_from) {
            r->alost++;
            continue;
        }
        if (ra->seq != idx + 1 || rb->seq != idx + 1) {
            if (r->astall_idx != idx) {
                r->astall_idx = idx;
                r->astall_count = 0;
            }
            if (++r->astall_count < STALL_DRAINS)
                break;
            r->alost++;
            continue;
        }
        if ((rb->kind != AGENTSHM_ALLOC && rb->kind != AGENTSHM_FREE &&
             rb->kind != AGENTSHM_COPY) ||
            rb->stack >= AGENTSHM_STACKS) {
            r->bad++;
            continue;
        }
        out[k++] = *rb;
    }
    r->aread_idx = start + i;
    return k;
}

int stagering_alloc_stack(struct stagering *r, uint32_t id, struct agentshm_stack *out)
{
    if (!r->allocs || id >= AGENTSHM_STACKS)
        return ERR_CORRUPT;
    if (read_at(r, out, sizeof(*out), r->hdr.stacks_off + (uint64_t)id * sizeof(*out)))
        return ERR_IO;
    if (out->state != AGENTSHM_NAME_READY || out->depth > AGENTSHM_STACK_DEPTH)
        return ERR_CORRUPT;
    for (uint32_t i = 0; i < out->depth; i++)
        if (out->code[i] >= AGENTSHM_CODES)
            return ERR_CORRUPT;
    return 0;
}

const char *stagering_code(struct stagering *r, uint32_t id, const char **file)
{
    if (!r->allocs || id == 0 || id >= AGENTSHM_CODES)
        return NULL;
    if (!r->cname[id]) {
        struct agentshm_code e;
        if (read_at(r, &e, sizeof(e), r->hdr.codes_off + (uint64_t)id * sizeof(e)))
            return NULL;
        if (e.state != AGENTSHM_NAME_READY || (size_t)e.file_len + e.name_len > AGENTSHM_CODE_TEXT)
            return NULL;
        r->cfile[id] = xmalloc((size_t)e.file_len + 1);
        memcpy(r->cfile[id], e.text, e.file_len);
        r->cfile[id][e.file_len] = '\0';
        text_scrub(r->cfile[id], e.file_len);
        r->cname[id] = xmalloc((size_t)e.name_len + 1);
        memcpy(r->cname[id], e.text + e.file_len, e.name_len);
        r->cname[id][e.name_len] = '\0';
        text_scrub(r->cname[id], e.name_len);
    }
    *file = r->cfile[id];
    return r->cname[id];
}
