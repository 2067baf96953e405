// SPDX-License-Identifier: MIT
// Whether a thread's last native sample still holds, so that --native need not stop it again.
// The kernel counts each time a thread is switched onto a CPU (/proc/PID/task/TID/schedstat,
// third field, counted at the switch itself); a thread not switched in since a moment its
// stack was known has not executed an instruction since: its native and Python stacks are the
// ones it had. Every stop makes the thread run once after its release (it resumes the system
// call the stop interrupted); the first look after a stop accounts for that one run
// (natreuse.c says how, and what that look assumes).
//
// Use (sampler, per native thread-sample):
//     natreuse_check(): true -> the thread's last stack, no stop;
//     false -> native_sample_thread() (it calls natreuse_stopped() while the thread is stopped),
//              then natreuse_keep() with the stack made from it when it succeeded.
// Not thread-safe: one sampler thread per struct natreuse.
#ifndef CRUX_NATREUSE_H
#define CRUX_NATREUSE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "cpython/pyreader.h"
#include "util/hmap.h"

/* The most stack bytes kept per thread to compare on the first look after a stop. */
#define NATREUSE_STACK_MAX ((size_t)256 << 10)

/* One Python frame as the merge sees it. */
struct natreuse_pyf {
    uint32_t code; /* the code entry's id (unique for the cache's life) */
    uint32_t loc;  /* its position run: line and column */
    bool entry;
};

/* The system call a stop interrupted, from the registers read while stopped. */
struct natreuse_call {
    int64_t nr;       /* orig_rax; < 0: the thread was not in a system call */
    int64_t ret;      /* rax: -ERESTART* when the call will be resumed after the release */
    uint64_t args[6]; /* rdi rsi rdx r10 r8 r9 */
    uint64_t sp, pc;
};

struct natreuse_thread {
    pid_t tid;
    int sched_fd, sys_fd; /* kept open: a tid reused by a new thread fails the old file */
    bool stopped;         /* natreuse_stopped saw a resumable call; natreuse_keep may follow */
    bool have;            /* stack and root hold while the thread does not run */
    bool settled;         /* seen blocked in `call` since the stop, with `switches` counted */
    bool live;            /* looked at since the last prune */
    uint32_t stack, root; /* the caller's ids: the merged stack and the frames it starts with */
    uint64_t switches;    /* times switched in, as the file reads while the thread has not run */
    struct natreuse_call call;
    struct natreuse_pyf *py; /* the Python frames of the kept stack, leaf first */
    uint32_t npy, cappy;
    bool py_truncated;
    uint8_t *bytes; /* the stack from the stack pointer up, as far as the walk read it */
    size_t nbytes, capbytes;
};

struct natreuse {
    pid_t pid;
    struct natreuse_thread *v;
    size_t n, cap;
    struct hmap by_tid; /* tid -> index + 1 */
    uint8_t *scratch;   /* NATREUSE_STACK_MAX bytes: the live stack on a first look */
    uint64_t reused;    /* stacks given back without a stop */
};

void natreuse_init(struct natreuse *nr, pid_t pid);
/* Closes the files and frees everything. */
void natreuse_fini(struct natreuse *nr);
/* True when thread `tid` (its Python stack read this round, without stopping it, is `th` of
 * `r`) has not run since its last kept stack, apart from resuming the call a stop interrupted,
 * and its root frames are still `root`: *stack is then the kept stack. False, with nothing
 * known or the thread having run: stop it. */
bool natreuse_check(struct natreuse *nr, pid_t tid, const struct pyreader *r,
                    const struct pythread *th, uint32_t root, uint32_t *stack);
/* While thread `tid` is stopped (after its registers were read): counts its switches now and
 * notes the call it will resume. Forgets its kept stack. Does nothing for a thread that
 * natreuse_check never looked at (it opens no file while the thread is stopped). */
void natreuse_stopped(struct natreuse *nr, pid_t tid, const struct natreuse_call *call);
/* After the walk of that stop: the `n` bytes of stack from the stack pointer up that the walk
 * read, all from the copy taken while stopped (`complete` false: it also read live memory, or
 * the stack is larger than NATREUSE_STACK_MAX: nothing is kept). The first look after the stop
 * wants the same bytes there. */
void natreuse_stack(struct natreuse *nr, pid_t tid, const uint8_t *bytes, size_t n, bool complete);
/* After the sample of the stop natreuse_stopped saw: keeps `stack` (starting with `root`) and
 * the Python stack `th` of `r` it was merged from (the one re-read while stopped). */
void natreuse_keep(struct natreuse *nr, pid_t tid, const struct pyreader *r,
                   const struct pythread *th, uint32_t root, uint32_t stack);
/* The caller's stack ids are no longer valid (the profile was emptied): forgets every stack. */
void natreuse_forget(struct natreuse *nr);
/* Every few seconds: closes the files of threads not looked at since the previous call. */
void natreuse_prune(struct natreuse *nr);

/* Parses a /proc/PID/task/TID/syscall line into `c` (nr, args, sp, pc): false for a thread
 * not blocked in a system call ("running", or -1 for one blocked outside a call). */
bool natreuse_parse_syscall(const char *line, struct natreuse_call *c);
/* True when a thread stopped in `at` and blocked now in `now` is blocked in the same call:
 * resumed, or never left (natreuse.c on why the resume is the same call). */
bool natreuse_same_call(const struct natreuse_call *at, const struct natreuse_call *now);

#endif
