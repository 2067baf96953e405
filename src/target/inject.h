// SPDX-License-Identifier: MIT
// Loading a shared library into a live process with ptrace (no debugger): one thread is stopped
// at a safe point, made to call dlopen() and then one function of the library, and restored
// exactly (registers, FPU/vector state, an interrupted system call restarts). docs/memory.md,
// "Attaching", gives the safety argument.
#ifndef CRUX_INJECT_H
#define CRUX_INJECT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "util/err.h"

#define INJECT_SAFE_WAIT_US 1000000 /* longest search for a thread at a safe point */
#define INJECT_CALL_WAIT_US 3000000 /* longest wait for one injected call to return */
#define INJECT_ARG_MAX 2048         /* bytes of the argument string given to the entry */

/* What the target allows, as far as crux can tell before trying (inject_probe()). */
struct inject_env {
    int ptrace_scope; /* kernel.yama.ptrace_scope, -1 when there is no Yama */
    int seccomp;      /* the target's Seccomp: mode (0 none, 1 strict, 2 filter), -1 unknown */
    bool x86_64;      /* crux (and so the target it can inject) is x86-64 */
    bool root;        /* crux runs with euid 0 */
};

/* How an injection went. */
struct inject_result {
    pid_t tid;           /* the thread that made the calls */
    unsigned tries;      /* stops until a safe point was found */
    uint64_t elapsed_us; /* from the first stop to the thread's release */
    int64_t entry_ret;   /* what the entry function returned */
};

/* Fills `env` for process `pid` from /proc. */
void inject_probe(pid_t pid, struct inject_env *env);
/* One line (cause and fix) for a refusal or failure `rc` of attaching to `pid`, given what
 * inject_probe() found; written into out (cap bytes). Pure: unit-tested. When `rc` is 0 and
 * the environment already rules injection out (another architecture, a seccomp filter), says
 * why and returns the code to refuse with; else returns `rc`. */
int inject_explain(int rc, pid_t pid, const struct inject_env *env, const char *detail, char *out,
                   size_t cap);
/* Loads the library `lib` (an absolute path) into process `pid` with dlopen(RTLD_NOW) called
 * on one of its threads, then calls `entry` (a function of that library taking one
 * `const char *` and returning long) with a copy of `arg` (at most INJECT_ARG_MAX bytes; the
 * entry must copy what it keeps before returning). The thread is chosen at a safe point: in
 * interpreter code (the python executable or libpython's text, with no signal handler
 * running), or blocked in a waiting system call (poll, select, epoll, accept, recv, sleep,
 * wait). Every other thread runs on meanwhile. Afterwards the thread is restored exactly and
 * detached. Returns 0; ERR_PERM (ptrace refused), ERR_PROC_GONE, ERR_NOT_FOUND (no dlopen in
 * the process: a static interpreter), ERR_AGAIN (no thread reached a safe point within
 * INJECT_SAFE_WAIT_US), ERR_SYS (dlopen failed, the call faulted or did not return in
 * INJECT_CALL_WAIT_US), ERR_ARG; details in eb. Not thread-safe: it waits for the tracee's
 * stops, so the caller must have no other ptrace session on `pid` open. */
int inject_library(pid_t pid, const char *lib, const char *entry, const char *arg,
                   struct inject_result *res, struct errbuf *eb) MUST_CHECK;

#endif
