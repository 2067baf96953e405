// SPDX-License-Identifier: MIT
// process_vm_readv reads. The cost is the call, not the bytes (about 1.6 us for 64 B or
// 4 KiB here), so callers batch many spans into one call.
#include "target/mem.h"

#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/uio.h>

#include "util/xalloc.h"

#define IOV_BATCH 1024 /* IOV_MAX on Linux */

static uint64_t syscalls, ranges;

uint64_t mem_syscalls(void)
{
    return syscalls;
}

uint64_t mem_ranges(void)
{
    return ranges;
}

int mem_read(pid_t pid, uint64_t addr, void *dst, size_t len)
{
    size_t done = 0;
    while (done < len) {
        struct iovec local = {(char *)dst + done, len - done};
        struct iovec remote = {(void *)(uintptr_t)(addr + done), len - done};
        syscalls++;
        ranges++;
        ssize_t n = process_vm_readv(pid, &local, 1, &remote, 1, 0);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            return err_from_errno(errno);
        }
        if (n == 0)
            return ERR_READ;
        done += (size_t)n;
    }
    return 0;
}

/* Spans that follow each other in the list, in ascending order, with the next one starting
 * no more than MERGE_GAP bytes after the previous ends and on the page it ends on, are read as
 * one remote range into a scratch buffer and copied out after the call: the kernel pins pages
 * per remote iovec and copies per local one (each costs ~0.3 us here, whatever its bytes), and
 * such a gap adds no page. Spans keep their order, so the copies keep the order callers rely
 * on (a range is copied after the ranges before it). */
#define MERGE_GAP 512
#define PAGE_MASK_4K (~(uint64_t)4095)
#define SCRATCH_MAX ((size_t)1 << 20) /* bytes of merged ranges per call */

static bool merges(const struct mem_span *a, const struct mem_span *b)
{
    uint64_t end = a->addr + a->len;
    return a->len && b->len && b->addr >= end && b->addr - end <= MERGE_GAP &&
           ((end - 1) & PAGE_MASK_4K) == (b->addr & PAGE_MASK_4K);
}

/* One remote range of a call: spans [first, first + count), read into `buf` (merged) or
 * straight into the one span's destination. */
struct range {
    size_t first, count;
    size_t real, one; /* spans with bytes, and the first of them */
    uint64_t addr;
    size_t len;
    uint8_t *buf;
};

/* Groups spans from `i` into at most IOV_BATCH ranges, merged ranges taking at most
 * SCRATCH_MAX bytes in all; returns the ranges' count and sets *scratch to their bytes. */
static size_t plan(const struct mem_span *spans, size_t i, size_t n, struct range *rg,
                   size_t *scratch)
{
    size_t nr = 0, bytes = 0;
    while (i < n && nr < IOV_BATCH) {
        struct range *r = &rg[nr++];
        *r = (struct range){i, 1, spans[i].len != 0, i, spans[i].addr, spans[i].len, NULL};
        /* An empty span (a field this version lacks) reads nothing: it joins the range
         * without ending it, and the range starts at the first span with bytes. Only a
         * range of two spans with bytes or more goes through the scratch buffer. */
        const struct mem_span *last = spans[i].len ? &spans[i] : NULL;
        while (i + r->count < n) {
            const struct mem_span *sp = &spans[i + r->count];
            if (!sp->len || !last) {
                if (sp->len) {
                    r->addr = sp->addr;
                    r->len = sp->len;
                    r->real = 1;
                    r->one = i + r->count;
                    last = sp;
                }
                r->count++;
                continue;
            }
            if (!merges(last, sp))
                break;
            size_t len = (size_t)(sp->addr + sp->len - r->addr);
            if (bytes + len > SCRATCH_MAX)
                break;
            r->len = len;
            r->count++;
            r->real++;
            last = sp;
        }
        if (r->real > 1)
            bytes += r->len;
        i += r->count;
    }
    *scratch = bytes;
    return nr;
}

/* process_vm_readv stops at the first remote iovec it cannot read and returns the bytes
 * copied so far; a partial result therefore tells exactly which span failed (in a merged
 * range, the first one not wholly inside the bytes copied), and the read resumes after it. */
/* The scratch buffer kept between calls (allocating one per call faults its pages in again
 * when the allocator gave them back); a call made while another thread holds it uses its own. */
static pthread_mutex_t kept_lock = PTHREAD_MUTEX_INITIALIZER;
static uint8_t *kept;
static size_t kept_cap;

int mem_readv(pid_t pid, const struct mem_span *spans, size_t n, uint8_t *ok)
{
    struct iovec local[IOV_BATCH], remote[IOV_BATCH];
    struct range rg[IOV_BATCH];
    bool mine = pthread_mutex_trylock(&kept_lock) == 0;
    uint8_t *scratch = mine ? kept : NULL;
    size_t scratch_cap = mine ? kept_cap : 0;
    size_t i = 0;
    int bad = 0;
    while (i < n) {
        size_t need, nr = plan(spans, i, n, rg, &need);
        if (need > scratch_cap) {
            free(scratch);
            scratch = xmalloc(need);
            scratch_cap = need;
        }
        size_t at = 0;
        for (size_t k = 0; k < nr; k++) {
            struct range *r = &rg[k];
            if (r->real > 1) {
                r->buf = scratch + at;
                at += r->len;
            }
            local[k] = (struct iovec){r->buf ? r->buf : spans[r->one].dst, r->len};
            remote[k] = (struct iovec){(void *)(uintptr_t)r->addr, r->len};
        }
        syscalls++;
        ranges += nr;
        ssize_t got = process_vm_readv(pid, local, nr, remote, nr, 0);
        if (got < 0 && errno == EINTR)
            continue;
        if (got < 0) {
            int rc = err_from_errno(errno);
            if (rc == ERR_PROC_GONE || rc == ERR_PERM || rc == ERR_NOMEM) {
                bad = rc;
                break;
            }
            got = 0; /* EFAULT: the first span is unreadable */
        }
        /* The spans the `got` bytes cover; the first one they do not is skipped. */
        size_t acc = 0, next = rg[nr - 1].first + rg[nr - 1].count;
        for (size_t k = 0; k < nr && next == rg[nr - 1].first + rg[nr - 1].count; k++) {
            const struct range *r = &rg[k];
            for (size_t j = r->first; j < r->first + r->count; j++) {
                if (!spans[j].len) {
                    ok[j] = 1;
                    continue;
                }
                size_t off = (size_t)(spans[j].addr - r->addr);
                if (acc + off + spans[j].len > (size_t)got) {
                    ok[j] = 0;
                    bad++;
                    next = j + 1;
                    break;
                }
                if (r->buf)
                    memcpy(spans[j].dst, r->buf + off, spans[j].len);
                ok[j] = 1;
            }
            acc += r->len;
        }
        i = next;
    }
    if (mine) {
        kept = scratch;
        kept_cap = scratch_cap;
        pthread_mutex_unlock(&kept_lock);
    } else {
        free(scratch);
    }
    return bad;
}
