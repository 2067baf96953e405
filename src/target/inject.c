// SPDX-License-Identifier: MIT
// ptrace injection of a shared library (inject.h). The target is sacred: a thread is used only
// at a point where calling dlopen() cannot meet a lock it already holds, every register and the
// whole extended FPU state are put back, signals that arrive meanwhile are delivered after, and
// every wait is bounded.
#include "target/inject.h"

#include <elf.h>
#include <errno.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ptrace.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <sys/user.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "target/elffile.h"
#include "target/maps.h"
#include "target/proc.h"
#include "util/xalloc.h"

#define MAX_TIDS 4096
#define MAX_PENDING 8
#define STOP_WAIT_US 200000 /* longest wait for one INTERRUPT stop */
#define STACK_NEED 65536    /* bytes of stack below the red zone that dlopen may use */
#define RED_ZONE 128        /* the x86-64 SysV red zone, left untouched */
#define XSTATE_MAX 65536    /* bytes of XSAVE area (AMX tiles included) */
#define RTLD_NOW_FLAG 2     /* RTLD_NOW, as glibc defines it */
#define EFLAGS_DF 0x400u    /* the direction flag: the ABI wants it clear at a call */

static uint64_t mono_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

static void sleep_us(long us)
{
    struct timespec ts = {0, us * 1000};
    nanosleep(&ts, NULL);
}

/* ---- refusals (pure, unit-tested) ------------------------------------------------------- */

static int read_int_file(const char *path, int dflt)
{
    FILE *f = fopen(path, "r");
    if (!f)
        return dflt;
    int v = dflt;
    if (fscanf(f, "%d", &v) != 1)
        v = dflt;
    fclose(f);
    return v;
}

void inject_probe(pid_t pid, struct inject_env *env)
{
    memset(env, 0, sizeof(*env));
    env->ptrace_scope = read_int_file("/proc/sys/kernel/yama/ptrace_scope", -1);
#if defined(__x86_64__)
    env->x86_64 = true;
#endif
    env->root = geteuid() == 0;
    env->seccomp = -1;
    char path[64], line[256];
    snprintf(path, sizeof(path), "/proc/%d/status", (int)pid);
    FILE *f = fopen(path, "r");
    if (!f)
        return;
    while (fgets(line, sizeof(line), f))
        if (!strncmp(line, "Seccomp:", 8))
            env->seccomp = (int)strtol(line + 8, NULL, 10);
    fclose(f);
}

static const char *const FALLBACK = "or launch the program under crux instead: crux record "
                                    "--allocations -- COMMAND";

int inject_explain(int rc, pid_t pid, const struct inject_env *env, const char *detail, char *out,
                   size_t cap)
{
    int p = (int)pid;
    if (!env->x86_64) {
        snprintf(out, cap,
                 "cannot attach to process %d for allocations: injecting the agent is done on "
                 "x86-64 only; %s",
                 p, FALLBACK);
        return rc ? rc : ERR_ARG;
    }
    if (!rc && env->seccomp == 1) {
        snprintf(out, cap,
                 "cannot attach to process %d for allocations: it runs in seccomp strict mode, "
                 "which kills it at the loader's first system call; %s",
                 p, FALLBACK);
        return ERR_PERM;
    }
    if (!rc && env->seccomp == 2 && !getenv("CRUX_ATTACH_SECCOMP")) {
        snprintf(out, cap,
                 "cannot attach to process %d for allocations: it runs under a seccomp filter "
                 "that could kill it for the loader's system calls (open, mmap, mprotect); set "
                 "CRUX_ATTACH_SECCOMP=1 if the filter allows them (a container's default "
                 "does), %s",
                 p, FALLBACK);
        return ERR_PERM;
    }
    if (!rc)
        return 0;
    if (rc == ERR_PERM && env->ptrace_scope == 3) {
        snprintf(out, cap,
                 "cannot attach to process %d: ptrace is disabled (kernel.yama.ptrace_scope=3, "
                 "changeable only by a reboot); %s",
                 p, FALLBACK);
    } else if (rc == ERR_PERM && env->ptrace_scope == 2 && !env->root) {
        snprintf(out, cap,
                 "cannot attach to process %d: ptrace needs CAP_SYS_PTRACE "
                 "(kernel.yama.ptrace_scope=2): run crux as root, %s",
                 p, FALLBACK);
    } else if (rc == ERR_PERM && env->ptrace_scope == 1 && !env->root) {
        snprintf(out, cap,
                 "cannot attach to process %d: ptrace is limited to descendants "
                 "(kernel.yama.ptrace_scope=1): run crux as root, or sudo sysctl "
                 "kernel.yama.ptrace_scope=0, %s",
                 p, FALLBACK);
    } else if (rc == ERR_PERM) {
        snprintf(out, cap,
                 "cannot attach to process %d: permission denied (%s): run crux as the "
                 "process's user or root, %s",
                 p, detail && *detail ? detail : "ptrace refused", FALLBACK);
    } else if (rc == ERR_NOT_FOUND) {
        snprintf(out, cap,
                 "cannot attach to process %d for allocations: it has no dynamic loader to "
                 "load the agent with (a static interpreter?): %s; %s",
                 p, detail && *detail ? detail : "no dlopen", FALLBACK);
    } else if (rc == ERR_AGAIN) {
        snprintf(out, cap,
                 "cannot attach to process %d for allocations: no thread reached a safe point "
                 "(interpreter code or a waiting system call) within %d ms; try again, %s",
                 p, INJECT_SAFE_WAIT_US / 1000, FALLBACK);
    } else if (rc == ERR_PROC_GONE) {
        snprintf(out, cap, "cannot attach to process %d: it exited", p);
    } else {
        snprintf(out, cap, "cannot attach to process %d for allocations: %s", p,
                 detail && *detail ? detail : err_str(rc));
    }
    return rc;
}

#if defined(__x86_64__)

/* ---- one traced thread -------------------------------------------------------------------- */

struct tracee {
    pid_t pid, tid;
    int pending[MAX_PENDING]; /* signals that arrived while it was ours: delivered at release */
    int npending;
};

static void note_signal(struct tracee *t, int sig)
{
    for (int i = 0; i < t->npending; i++)
        if (t->pending[i] == sig)
            return; /* a standard signal pending twice is delivered once anyway */
    if (t->npending < MAX_PENDING)
        t->pending[t->npending++] = sig;
}

/* Waits for the next report of t->tid until `deadline` (monotonic µs). 0 with *status set;
 * ERR_AGAIN at the deadline; ERR_PROC_GONE when it is no longer ours. */
static int wait_report(const struct tracee *t, uint64_t deadline, int *status)
{
    for (;;) {
        pid_t got = waitpid(t->tid, status, __WALL | WNOHANG);
        if (got == t->tid)
            return WIFEXITED(*status) || WIFSIGNALED(*status) ? ERR_PROC_GONE : 0;
        if (got < 0 && errno != EINTR)
            return ERR_PROC_GONE;
        if (mono_us() >= deadline)
            return ERR_AGAIN;
        sleep_us(50);
    }
}

/* Waits for the stop our INTERRUPT asked for; signal-delivery stops on the way are kept for
 * later and suppressed now. ERR_AGAIN at the deadline, or when the process is in a job-control
 * stop (SIGSTOP): it is left as it is. */
static int wait_interrupt_stop(struct tracee *t, uint64_t deadline)
{
    for (;;) {
        int status = 0;
        int rc = wait_report(t, deadline, &status);
        if (rc)
            return rc;
        if (!WIFSTOPPED(status))
            continue;
        if (status >> 16 == PTRACE_EVENT_STOP)
            return WSTOPSIG(status) == SIGTRAP ? 0 : ERR_AGAIN; /* else a group-stop */
        note_signal(t, WSTOPSIG(status));
        if (ptrace(PTRACE_CONT, t->tid, 0, 0) != 0)
            return ERR_PROC_GONE;
    }
}

/* Detaches from a stopped t->tid, delivering the signals that arrived while it was ours. */
static void release(struct tracee *t)
{
    int first = t->npending ? t->pending[0] : 0;
    (void)ptrace(PTRACE_DETACH, t->tid, 0, (void *)(long)first);
    for (int i = 1; i < t->npending; i++)
        (void)syscall(SYS_tgkill, t->pid, t->tid, t->pending[i]);
    t->npending = 0;
}

/* Seizes and stops t->tid. ERR_PERM is final; any other failure means "not this thread". */
static int seize_stop(struct tracee *t, struct errbuf *eb)
{
    if (ptrace(PTRACE_SEIZE, t->tid, 0, 0) != 0) {
        int rc = err_from_errno(errno);
        return errbuf_set(eb, rc, "ptrace(PTRACE_SEIZE, %d): %s", (int)t->tid, strerror(errno));
    }
    t->npending = 0;
    if (ptrace(PTRACE_INTERRUPT, t->tid, 0, 0) != 0)
        return ERR_PROC_GONE; /* exited: the kernel dropped it */
    int rc = wait_interrupt_stop(t, mono_us() + STOP_WAIT_US);
    if (rc == ERR_AGAIN) {
        /* running toward its stop, or job-control stopped: detaching drops the pending
         * interrupt and leaves a group-stop as it was */
        (void)ptrace(PTRACE_DETACH, t->tid, 0, 0);
    }
    return rc;
}

/* ---- where a thread may be borrowed ------------------------------------------------------ */

/* System calls in which a thread waits with no lock of libc or the loader held: the wrappers
 * of Python's select, poll, epoll, accept, recv, sleep and wait. read() is not among them:
 * the loader itself reads files with its lock held. */
static bool waiting_syscall(long nr)
{
    static const long ok[] = {
        SYS_poll,       SYS_select,          SYS_pselect6, SYS_ppoll,
        SYS_epoll_wait, SYS_epoll_pwait,     SYS_accept,   SYS_accept4,
        SYS_recvfrom,   SYS_recvmsg,         SYS_wait4,    SYS_waitid,
        SYS_nanosleep,  SYS_clock_nanosleep, SYS_pause,    SYS_rt_sigtimedwait};
    for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++)
        if (ok[i] == nr)
            return true;
    return false;
}

/* True when a signal the thread handles is blocked in it: it may be inside that handler
 * (which may have interrupted malloc), so it is not borrowed. */
static bool maybe_in_handler(pid_t pid, pid_t tid)
{
    char path[64], line[256];
    snprintf(path, sizeof(path), "/proc/%d/task/%d/status", (int)pid, (int)tid);
    FILE *f = fopen(path, "r");
    if (!f)
        return true;
    unsigned long long blk = 0, cgt = 0;
    while (fgets(line, sizeof(line), f)) {
        if (!strncmp(line, "SigBlk:", 7))
            blk = strtoull(line + 7, NULL, 16);
        else if (!strncmp(line, "SigCgt:", 7))
            cgt = strtoull(line + 7, NULL, 16);
    }
    fclose(f);
    return (blk & cgt) != 0;
}

static bool is_interpreter(const struct map *mp, const char *exe)
{
    if (!mp || mp->perms[2] != 'x' || !mp->path[0])
        return false;
    const char *base = strrchr(mp->path, '/');
    base = base ? base + 1 : mp->path;
    return !strncmp(base, "libpython", 9) || !strcmp(mp->path, exe);
}

/* Whether the stopped thread with registers `r` may call dlopen now (see inject.h). */
static bool safe_point(const struct tracee *t, const struct user_regs_struct *r,
                       const struct maps *m, const char *exe)
{
    const struct map *stack = maps_find(m, r->rsp);
    if (!stack || stack->perms[1] != 'w' || r->rsp - stack->start < STACK_NEED + RED_ZONE)
        return false;
    if ((long)r->orig_rax >= 0)
        return waiting_syscall((long)r->orig_rax);
    return is_interpreter(maps_find(m, r->rip), exe) && !maybe_in_handler(t->pid, t->tid);
}

/* ---- the saved state ---------------------------------------------------------------------- */

struct saved {
    struct user_regs_struct regs;
    void *fp; /* XSAVE area, or the legacy FXSAVE area when xsave == false */
    size_t fp_len;
    bool xsave;
};

static int save_state(pid_t tid, struct saved *s, struct errbuf *eb)
{
    if (ptrace(PTRACE_GETREGS, tid, 0, &s->regs) != 0)
        return errbuf_set(eb, ERR_SYS, "cannot read the registers of thread %d", (int)tid);
    s->fp = xmalloc(XSTATE_MAX);
    struct iovec iov = {s->fp, XSTATE_MAX};
    if (ptrace(PTRACE_GETREGSET, tid, (void *)NT_X86_XSTATE, &iov) == 0) {
        s->xsave = true;
        s->fp_len = iov.iov_len;
        return 0;
    }
    s->xsave = false;
    s->fp_len = sizeof(struct user_fpregs_struct);
    if (ptrace(PTRACE_GETFPREGS, tid, 0, s->fp) != 0) {
        free(s->fp);
        s->fp = NULL;
        return errbuf_set(eb, ERR_SYS, "cannot read the FPU state of thread %d", (int)tid);
    }
    return 0;
}

/* Puts back everything save_state() took. The original orig_rax and rax (-ERESTART*) make
 * the kernel restart an interrupted system call when the thread resumes. */
static int restore_state(pid_t tid, struct saved *s)
{
    int rc = 0;
    if (s->fp) {
        struct iovec iov = {s->fp, s->fp_len};
        if (s->xsave ? ptrace(PTRACE_SETREGSET, tid, (void *)NT_X86_XSTATE, &iov) != 0
                     : ptrace(PTRACE_SETFPREGS, tid, 0, s->fp) != 0)
            rc = ERR_SYS;
    }
    if (ptrace(PTRACE_SETREGS, tid, 0, &s->regs) != 0)
        rc = ERR_SYS;
    free(s->fp);
    s->fp = NULL;
    return rc;
}

/* ---- calls in the target ------------------------------------------------------------------ */

static int write_mem(pid_t pid, uint64_t addr, const void *src, size_t n)
{
    struct iovec local = {(void *)src, n};
    struct iovec remote = {(void *)(uintptr_t)addr, n};
    return process_vm_writev(pid, &local, 1, &remote, 1, 0) == (ssize_t)n ? 0 : ERR_READ;
}

static int read_mem(pid_t pid, uint64_t addr, void *dst, size_t n)
{
    struct iovec local = {dst, n};
    struct iovec remote = {(void *)(uintptr_t)addr, n};
    return process_vm_readv(pid, &local, 1, &remote, 1, 0) > 0 ? 0 : ERR_READ;
}

/* Calls fn(a1, a2) on the stopped thread with stack pointer `sp` (16-aligned, below anything
 * written there) and the return address 0, whose fetch faults into a SIGSEGV stop that we
 * catch: the thread never runs past it. Stores rax. On a timeout the thread is interrupted
 * (and so stopped) before returning. */
static int remote_call(struct tracee *t, const struct user_regs_struct *base, uint64_t fn,
                       uint64_t a1, uint64_t a2, uint64_t sp, uint64_t *ret, struct errbuf *eb)
{
    static const uint64_t zero = 0;
    sp -= 8;
    if (write_mem(t->pid, sp, &zero, sizeof(zero)))
        return errbuf_set(eb, ERR_SYS, "cannot write the stack of thread %d", (int)t->tid);
    struct user_regs_struct r = *base;
    r.rip = fn;
    r.rdi = a1;
    r.rsi = a2;
    r.rax = 0;
    r.orig_rax = (unsigned long long)-1; /* not in a system call: no restart fix-up on ours */
    r.rsp = sp;
    r.eflags &= ~(unsigned long long)EFLAGS_DF;
    if (ptrace(PTRACE_SETREGS, t->tid, 0, &r) != 0 || ptrace(PTRACE_CONT, t->tid, 0, 0) != 0)
        return errbuf_set(eb, ERR_SYS, "cannot start the call in thread %d", (int)t->tid);
    uint64_t deadline = mono_us() + INJECT_CALL_WAIT_US;
    for (;;) {
        int status = 0;
        int rc = wait_report(t, deadline, &status);
        if (rc == ERR_PROC_GONE)
            return errbuf_set(eb, rc, "thread %d ended during the injected call", (int)t->tid);
        if (rc == ERR_AGAIN) {
            (void)ptrace(PTRACE_INTERRUPT, t->tid, 0, 0);
            (void)wait_interrupt_stop(t, mono_us() + STOP_WAIT_US);
            return errbuf_set(eb, ERR_SYS, "the injected call did not return within %d ms",
                              INJECT_CALL_WAIT_US / 1000);
        }
        if (!WIFSTOPPED(status))
            continue;
        int sig = WSTOPSIG(status);
        if (status >> 16 == PTRACE_EVENT_STOP) {
            (void)ptrace(PTRACE_CONT, t->tid, 0, 0); /* a group-stop: ours comes first */
            continue;
        }
        if (sig == SIGSEGV) {
            struct user_regs_struct got;
            if (ptrace(PTRACE_GETREGS, t->tid, 0, &got) != 0)
                return errbuf_set(eb, ERR_SYS, "cannot read thread %d's registers", (int)t->tid);
            if (got.rip == 0) {
                *ret = got.rax;
                return 0;
            }
            return errbuf_set(eb, ERR_SYS, "the injected call faulted at 0x%llx", got.rip);
        }
        note_signal(t, sig);
        if (ptrace(PTRACE_CONT, t->tid, 0, 0) != 0)
            return errbuf_set(eb, ERR_PROC_GONE, "thread %d vanished", (int)t->tid);
    }
}

/* ---- finding things in the target --------------------------------------------------------- */

/* The address of `name` in the first mapped library whose basename starts with one of
 * `prefixes` (NULL-terminated); 0 when absent. */
static uint64_t lib_symbol(pid_t pid, const struct maps *m, const char *const *prefixes,
                           const char *name)
{
    for (const char *const *p = prefixes; *p; p++) {
        const struct map *mp = maps_find_lib(m, *p);
        if (!mp || mp->path[0] != '/')
            continue;
        const struct map *first = maps_first_of(m, mp->path);
        char path[PATH_MAX + 32];
        snprintf(path, sizeof(path), "/proc/%d/root%s", (int)pid, first->path);
        struct elffile *ef = NULL;
        if (elffile_open(path, &ef, NULL))
            continue;
        uint64_t v = 0, sz = 0;
        uint64_t addr = 0;
        if (!elffile_symbol(ef, name, &v, &sz) && v)
            addr = elffile_bias(ef, first->start) + v;
        elffile_free(ef);
        if (addr)
            return addr;
    }
    return 0;
}

static const char *const LIBC[] = {"libc.so", "libc-", NULL};
static const char *const LIBDL[] = {"libdl.so", "libdl-", NULL};

struct loader {
    uint64_t dlopen, dlerror;
};

static int find_loader(pid_t pid, const struct maps *m, struct loader *ld, struct errbuf *eb)
{
    /* glibc >= 2.34 has dlopen in libc; before, in libdl when loaded, and always as the
     * private __libc_dlopen_mode(name, mode) */
    ld->dlopen = lib_symbol(pid, m, LIBC, "dlopen");
    ld->dlerror = lib_symbol(pid, m, LIBC, "dlerror");
    if (!ld->dlopen) {
        ld->dlopen = lib_symbol(pid, m, LIBDL, "dlopen");
        ld->dlerror = lib_symbol(pid, m, LIBDL, "dlerror");
    }
    if (!ld->dlopen) {
        ld->dlopen = lib_symbol(pid, m, LIBC, "__libc_dlopen_mode");
        ld->dlerror = 0;
    }
    if (!ld->dlopen)
        return errbuf_set(eb, ERR_NOT_FOUND, "no dlopen in a mapped libc or libdl");
    return 0;
}

/* Borrows a thread at a safe point: on success t is stopped and seized. */
static int find_thread(struct tracee *t, const struct maps *m, const char *exe, unsigned *tries,
                       struct errbuf *eb)
{
    pid_t *tids = xmalloc(MAX_TIDS * sizeof(*tids));
    uint64_t deadline = mono_us() + INJECT_SAFE_WAIT_US;
    int rc = ERR_AGAIN;
    while (rc == ERR_AGAIN && mono_us() < deadline) {
        size_t n = 0;
        if (proc_tasks(t->pid, tids, MAX_TIDS, &n) || !n) {
            rc = errbuf_set(eb, ERR_PROC_GONE, "process %d exited", (int)t->pid);
            break;
        }
        for (size_t i = 0; i < n && rc == ERR_AGAIN; i++) {
            t->tid = tids[i];
            int s = seize_stop(t, eb);
            (*tries)++;
            if (s == ERR_PERM) {
                rc = s;
                break;
            }
            if (s)
                continue;
            struct user_regs_struct r;
            if (ptrace(PTRACE_GETREGS, t->tid, 0, &r) == 0 && safe_point(t, &r, m, exe)) {
                rc = 0;
                break;
            }
            release(t);
        }
        if (rc == ERR_AGAIN)
            sleep_us(500);
    }
    free(tids);
    return rc;
}

/* The two calls (dlopen, then the entry) on the borrowed, saved thread. */
static int do_calls(struct tracee *t, const struct saved *sv, const struct loader *ld,
                    const char *lib, const char *entry, const char *arg, int64_t *entry_ret,
                    struct errbuf *eb)
{
    size_t llen = strlen(lib) + 1, alen = strlen(arg) + 1;
    uint64_t top = (sv->regs.rsp - RED_ZONE) & ~(uint64_t)15;
    uint64_t lib_at = (top - llen) & ~(uint64_t)15;
    uint64_t arg_at = (lib_at - alen) & ~(uint64_t)15;
    uint64_t sp = arg_at - 64;
    if (write_mem(t->pid, lib_at, lib, llen) || write_mem(t->pid, arg_at, arg, alen))
        return errbuf_set(eb, ERR_SYS, "cannot write the stack of thread %d", (int)t->tid);
    uint64_t handle = 0;
    int rc = remote_call(t, &sv->regs, ld->dlopen, lib_at, RTLD_NOW_FLAG, sp, &handle, eb);
    if (rc)
        return rc;
    if (!handle) {
        uint64_t msg = 0;
        char text[200] = "";
        if (ld->dlerror && !remote_call(t, &sv->regs, ld->dlerror, 0, 0, sp, &msg, NULL) && msg &&
            !read_mem(t->pid, msg, text, sizeof(text) - 1))
            text[sizeof(text) - 1] = '\0';
        return errbuf_set(eb, ERR_SYS, "dlopen(%s) failed in the target: %s", lib,
                          text[0] ? text : "no reason given");
    }
    struct maps m2 = {0};
    rc = maps_load(t->pid, &m2, eb);
    if (rc)
        return rc;
    char real[PATH_MAX];
    const struct map *mp = realpath(lib, real) ? maps_first_of(&m2, real) : NULL;
    uint64_t fn = 0;
    struct elffile *ef = NULL;
    if (mp && !elffile_open(lib, &ef, eb)) {
        uint64_t v = 0, sz = 0;
        if (!elffile_symbol(ef, entry, &v, &sz) && v)
            fn = elffile_bias(ef, mp->start) + v;
        elffile_free(ef);
    }
    maps_fini(&m2);
    if (!fn)
        return errbuf_set(eb, ERR_NOT_FOUND, "%s: no %s in the loaded library", lib, entry);
    uint64_t ret = 0;
    rc = remote_call(t, &sv->regs, fn, arg_at, 0, sp, &ret, eb);
    *entry_ret = (int64_t)ret;
    return rc;
}

int inject_library(pid_t pid, const char *lib, const char *entry, const char *arg,
                   struct inject_result *res, struct errbuf *eb)
{
    memset(res, 0, sizeof(*res));
    if (lib[0] != '/' || strlen(lib) >= PATH_MAX || strlen(arg) >= INJECT_ARG_MAX)
        return errbuf_set(eb, ERR_ARG, "library path or argument too long (or not absolute)");
    struct maps m = {0};
    int rc = maps_load(pid, &m, eb);
    if (rc)
        return rc;
    struct loader ld;
    rc = find_loader(pid, &m, &ld, eb);
    char exe[PATH_MAX] = "", link[64];
    snprintf(link, sizeof(link), "/proc/%d/exe", (int)pid);
    ssize_t k = readlink(link, exe, sizeof(exe) - 1);
    exe[k > 0 ? k : 0] = '\0';
    struct tracee t = {.pid = pid};
    uint64_t t0 = mono_us();
    if (!rc)
        rc = find_thread(&t, &m, exe, &res->tries, eb);
    maps_fini(&m);
    if (rc)
        return rc;
    res->tid = t.tid;
    struct saved sv = {0};
    rc = save_state(t.tid, &sv, eb);
    if (!rc) {
        rc = do_calls(&t, &sv, &ld, lib, entry, arg, &res->entry_ret, eb);
        if (restore_state(t.tid, &sv) && !rc)
            rc = errbuf_set(eb, ERR_SYS, "cannot restore thread %d's registers", (int)t.tid);
    }
    release(&t);
    res->elapsed_us = mono_us() - t0;
    return rc;
}

#else /* not x86-64 */

int inject_library(pid_t pid, const char *lib, const char *entry, const char *arg,
                   struct inject_result *res, struct errbuf *eb)
{
    (void)pid, (void)lib, (void)entry, (void)arg;
    memset(res, 0, sizeof(*res));
    return errbuf_set(eb, ERR_ARG, "injection is implemented for x86-64 only");
}

#endif
