// SPDX-License-Identifier: MIT
// process_vm_readv reads. The cost is the call, not the bytes (about 1.6 us for 64 B or
// 4 KiB here), so callers batch many spans into one call.
#include "target/mem.h"

#include <errno.h>
#include <stdbool.h>
#include <sys/uio.h>

#define IOV_BATCH 1024 /* IOV_MAX on Linux */

static uint64_t syscalls;

uint64_t mem_syscalls(void)
{
    return syscalls;
}

int mem_read(pid_t pid, uint64_t addr, void *dst, size_t len)
{
    size_t done = 0;
    while (done < len) {
        struct iovec local = {(char *)dst + done, len - done};
        struct iovec remote = {(void *)(uintptr_t)(addr + done), len - done};
        syscalls++;
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
 * one remote range: the kernel pins pages per remote iovec (a range costs ~0.35 us here,
 * whatever its bytes), and such a gap adds no page. The gap's bytes go to a scratch buffer.
 * Spans keep their order, so the copies keep the order callers rely on. */
#define MERGE_GAP 512
#define PAGE_MASK_4K (~(uint64_t)4095)

static bool merges(const struct mem_span *a, const struct mem_span *b)
{
    uint64_t end = a->addr + a->len;
    return a->len && b->len && b->addr >= end && b->addr - end <= MERGE_GAP &&
           ((end - 1) & PAGE_MASK_4K) == (b->addr & PAGE_MASK_4K);
}

/* process_vm_readv stops at the first remote iovec it cannot read and returns the bytes
 * copied so far; a partial result therefore tells exactly which span failed (a merged range
 * fails at its first span, whose page the others share), and the read resumes after it. */
int mem_readv(pid_t pid, const struct mem_span *spans, size_t n, uint8_t *ok)
{
    static uint8_t gap_sink[MERGE_GAP]; /* written, never read */
    struct iovec local[IOV_BATCH], remote[IOV_BATCH];
    size_t i = 0;
    int bad = 0;
    while (i < n) {
        /* Spans [i, i + k) go in this call: nl local and nr remote iovecs. */
        size_t k = 0, nl = 0, nr = 0;
        while (i + k < n && nl + 2 <= IOV_BATCH && nr < IOV_BATCH) {
            const struct mem_span *sp = &spans[i + k];
            if (k && merges(&spans[i + k - 1], sp)) {
                const struct mem_span *pv = &spans[i + k - 1];
                size_t gap = (size_t)(sp->addr - (pv->addr + pv->len));
                if (gap)
                    local[nl++] = (struct iovec){gap_sink, gap};
                remote[nr - 1].iov_len += gap + sp->len;
            } else {
                remote[nr++] = (struct iovec){(void *)(uintptr_t)sp->addr, sp->len};
            }
            local[nl++] = (struct iovec){sp->dst, sp->len};
            k++;
        }
        syscalls++;
        ssize_t got = process_vm_readv(pid, local, nl, remote, nr, 0);
        if (got < 0 && errno == EINTR)
            continue;
        if (got < 0) {
            int rc = err_from_errno(errno);
            if (rc == ERR_PROC_GONE || rc == ERR_PERM || rc == ERR_NOMEM)
                return rc;
            got = 0; /* EFAULT: the first span is unreadable */
        }
        /* Which spans the `got` bytes cover, gaps counted. */
        size_t acc = 0;
        size_t j = 0;
        while (j < k) {
            size_t gap =
                j && merges(&spans[i + j - 1], &spans[i + j])
                    ? (size_t)(spans[i + j].addr - (spans[i + j - 1].addr + spans[i + j - 1].len))
                    : 0;
            if (acc + gap + spans[i + j].len > (size_t)got)
                break;
            acc += gap + spans[i + j].len;
            ok[i + j] = 1;
            j++;
        }
        if (j < k) {
            ok[i + j] = 0; /* cut or unreadable: skip it and go on with the rest */
            bad++;
            j++;
        }
        i += j;
    }
    return bad;
}
