// SPDX-License-Identifier: MIT
// Native stacks of one target thread with elfutils libdwfl: the registers and the stack are
// captured while the thread is stopped, the walk (DWARF CFI, .eh_frame) runs afterwards on the
// copy, so the thread is stopped only for two reads.
#ifndef CRUX_UNWIND_H
#define CRUX_UNWIND_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "target/maps.h"
#include "util/err.h"
#include "util/hmap.h"

#define UNWIND_MAX_FRAMES 4096
#define UNWIND_STACK_MIN ((size_t)32 << 10) /* first copy of a thread's stack */
#define UNWIND_STACK_MAX ((size_t)4 << 20)  /* largest copy */
#define UNWIND_LIVE_PAGES 16                /* pages read live (outside the copy) per walk */
#define UNWIND_REPORT_MIN_NS 100000000ull   /* re-read the module list at most every 100 ms */

struct Dwfl;

struct unwinder {
    pid_t pid;
    struct Dwfl *dwfl;
    char *debuginfo_path; /* NULL: libdwfl's default (.debug, /usr/lib/debug) */
    void *callbacks;      /* Dwfl_Callbacks, must outlive dwfl */
    bool attached;
    bool other_root;     /* the target has another filesystem root: open /proc/PID/root/PATH */
    uint32_t report_gen; /* bumped each time the module list is read again */
    uint64_t last_report_ns;
    struct maps maps; /* to bound the stack copy by its mapping */

    /* The captured thread: registers (DWARF numbering 0-16, 16 = rip) and a copy of its
     * stack from the stack pointer up. */
    pid_t tid;
    uint64_t regs[17];
    int64_t sys_nr; /* orig_rax: the system call the stop came in (< 0: none) */
    uint64_t stack_base;
    size_t stack_len, stack_cap;
    uint8_t *stack;
    uint64_t stack_used; /* highest stack address the walk read */
    struct hmap hint;    /* tid -> bytes of stack the last walk needed */

    uint64_t live_addr[UNWIND_LIVE_PAGES]; /* pages read during one walk, outside the copy */
    uint8_t *live;                         /* UNWIND_LIVE_PAGES pages */
    unsigned nlive;

    uint64_t walks, live_reads, reports;
};

/* Opens an unwinder for process `pid`: reads its module list (/proc/PID/maps) into libdwfl.
 * ERR_PROC_GONE, ERR_PERM, ERR_SYS with context. */
int unwind_open(struct unwinder *u, pid_t pid, struct errbuf *eb) MUST_CHECK;
/* Releases everything. */
void unwind_close(struct unwinder *u);
/* Captures thread `tid`, which the caller has stopped with ptrace: its registers and its stack
 * from the stack pointer up (as far as the previous walk of that thread needed, plus slack,
 * within the stack's mapping). ERR_PROC_GONE, ERR_PERM, ERR_READ with context. */
int unwind_capture(struct unwinder *u, pid_t tid, struct errbuf *eb) MUST_CHECK;
/* Walks the captured thread (it may run again meanwhile): stores at most `max` lookup
 * addresses, leaf first, in `pcs` (the return address minus one for callers, so that the
 * address lies in the calling function) and their count in *n. A walk that ends in code of
 * no known module reads the module list again (a library loaded since) and walks once more.
 * Returns 0 even when the walk stopped early (*n frames are still right). */
int unwind_walk(struct unwinder *u, uint64_t now_ns, uint64_t *pcs, size_t max,
                size_t *n) MUST_CHECK;

#endif
