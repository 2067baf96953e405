// SPDX-License-Identifier: MIT
// Native unwinding with elfutils libdwfl. libdwfl knows the modules (from /proc/PID/maps),
// finds their CFI (.eh_frame, .debug_frame, separate debug files) and runs the unwinder; we
// give it our own thread callbacks: the registers and the stack come from a copy taken while
// the thread was stopped (PTRACE_GETREGS, one process_vm_readv), not from a ptrace-attached
// live thread, so the thread runs again before the walk starts.
#include "native/unwind.h"

#include <elfutils/libdwfl.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ptrace.h>
#include <sys/stat.h>
#include <sys/user.h>
#include <unistd.h>

#include "target/mem.h"
#include "util/xalloc.h"

#define PAGE 4096u
#define STACK_SLACK ((size_t)8 << 10)

/* --- libdwfl callbacks ------------------------------------------------------------------- */

static pid_t cb_next_thread(Dwfl *dwfl, void *arg, void **thread_argp)
{
    (void)dwfl;
    struct unwinder *u = arg;
    if (*thread_argp)
        return 0; /* one thread only: the captured one */
    *thread_argp = u;
    return u->tid;
}

static bool cb_get_thread(Dwfl *dwfl, pid_t tid, void *arg, void **thread_argp)
{
    (void)dwfl;
    struct unwinder *u = arg;
    if (tid != u->tid)
        return false;
    *thread_argp = u;
    return true;
}

static void note_used(struct unwinder *u, uint64_t addr)
{
    /* Differences, not sums: an address near the top of the address space (a CFA of 0
     * minus 8) must not wrap around into the copy. */
    if (addr >= u->stack_base && addr - u->stack_base < UNWIND_STACK_MAX &&
        addr - u->stack_base + 8 > u->stack_used - u->stack_base)
        u->stack_used = addr + 8;
}

/* Memory outside the copy (deeper stack than predicted, rarely other data): read live, page
 * by page, at most UNWIND_LIVE_PAGES pages per walk. */
static bool read_live(struct unwinder *u, uint64_t addr, Dwarf_Word *out)
{
    uint64_t page = addr & ~(uint64_t)(PAGE - 1);
    if (addr - page <= PAGE - 8) {
        for (unsigned i = 0; i < u->nlive; i++) {
            if (u->live_addr[i] == page) {
                memcpy(out, u->live + (size_t)i * PAGE + (addr - page), 8);
                return true;
            }
        }
        if (u->nlive < UNWIND_LIVE_PAGES) {
            uint8_t *dst = u->live + (size_t)u->nlive * PAGE;
            u->live_reads++;
            if (mem_read(u->pid, page, dst, PAGE) == 0) {
                u->live_addr[u->nlive++] = page;
                memcpy(out, dst + (addr - page), 8);
                return true;
            }
        }
    }
    u->live_reads++;
    return mem_read(u->pid, addr, out, 8) == 0;
}

static bool cb_memory_read(Dwfl *dwfl, Dwarf_Addr addr, Dwarf_Word *result, void *arg)
{
    (void)dwfl;
    struct unwinder *u = arg;
    note_used(u, addr);
    if (addr >= u->stack_base && u->stack_len >= 8 && addr - u->stack_base <= u->stack_len - 8) {
        memcpy(result, u->stack + (addr - u->stack_base), 8);
        return true;
    }
    return read_live(u, addr, result);
}

static bool cb_set_initial_registers(Dwfl_Thread *thread, void *arg)
{
    struct unwinder *u = arg;
    Dwarf_Word regs[17];
    for (int i = 0; i < 17; i++)
        regs[i] = u->regs[i];
    if (!dwfl_thread_state_registers(thread, 0, 17, regs))
        return false;
    dwfl_thread_state_register_pc(thread, u->regs[16]);
    return true;
}

static void cb_detach(Dwfl *dwfl, void *arg)
{
    (void)dwfl;
    (void)arg;
}

static void cb_thread_detach(Dwfl_Thread *thread, void *arg)
{
    (void)thread;
    (void)arg;
}

static const Dwfl_Thread_Callbacks thread_callbacks = {
    .next_thread = cb_next_thread,
    .get_thread = cb_get_thread,
    .memory_read = cb_memory_read,
    .set_initial_registers = cb_set_initial_registers,
    .detach = cb_detach,
    .thread_detach = cb_thread_detach,
};

/* --- Modules ------------------------------------------------------------------------------- */

/* Opens a module's file as the target sees it: a process in another mount namespace (a
 * container) maps paths of its own root, so open /proc/PID/root/PATH there; libdwfl's own
 * callback (the path as is, the vDSO from memory) does the rest. The module's userdata holds
 * the unwinder (set after each report). */
static int find_elf(Dwfl_Module *mod, void **userdata, const char *name, Dwarf_Addr base,
                    char **file_name, Elf **elfp)
{
    const struct unwinder *u = userdata ? *userdata : NULL;
    if (u && u->other_root && name[0] == '/') {
        char path[4200];
        snprintf(path, sizeof(path), "/proc/%d/root%s", (int)u->pid, name);
        int fd = open(path, O_RDONLY | O_CLOEXEC);
        struct stat st;
        if (fd >= 0 && fstat(fd, &st) == 0 && S_ISREG(st.st_mode)) {
            *file_name = strdup(path); /* libdwfl frees it */
            if (*file_name)
                return fd;
        }
        if (fd >= 0)
            close(fd);
    }
    return dwfl_linux_proc_find_elf(mod, userdata, name, base, file_name, elfp);
}

static int set_userdata(Dwfl_Module *mod, void **userdata, const char *name, Dwarf_Addr start,
                        void *arg)
{
    (void)mod;
    (void)name;
    (void)start;
    *userdata = arg;
    return DWARF_CB_OK;
}

/* True when process `pid` sees another filesystem root than we do (its mount namespace or
 * its root directory differ). */
static bool other_root(pid_t pid)
{
    char a[64], b[64], mine[128] = "", theirs[128] = "";
    snprintf(a, sizeof(a), "/proc/%d/ns/mnt", (int)pid);
    ssize_t n = readlink("/proc/self/ns/mnt", mine, sizeof(mine) - 1);
    ssize_t m = readlink(a, theirs, sizeof(theirs) - 1);
    if (n <= 0 || m <= 0)
        return false;
    mine[n] = theirs[m] = '\0';
    if (strcmp(mine, theirs) != 0)
        return true;
    snprintf(b, sizeof(b), "/proc/%d/root", (int)pid);
    struct stat r1, r2;
    return stat("/", &r1) == 0 && stat(b, &r2) == 0 &&
           (r1.st_dev != r2.st_dev || r1.st_ino != r2.st_ino);
}

/* Reads the module list again (modules reported before keep their symbol tables and CFI) and
 * the memory map. */
static int report(struct unwinder *u, uint64_t now_ns, struct errbuf *eb)
{
    u->reports++;
    u->report_gen++;
    u->last_report_ns = now_ns;
    dwfl_report_begin(u->dwfl);
    int e = dwfl_linux_proc_report(u->dwfl, u->pid);
    dwfl_report_end(u->dwfl, NULL, NULL);
    (void)dwfl_getmodules(u->dwfl, set_userdata, u, 0);
    if (e) {
        int rc = e > 0 ? err_from_errno(e) : ERR_SYS;
        return errbuf_set(eb, rc, "cannot list the modules of process %d: %s", (int)u->pid,
                          e > 0 ? strerror(e) : dwfl_errmsg(-1));
    }
    maps_fini(&u->maps);
    int rc = maps_load(u->pid, &u->maps, eb);
    if (rc)
        return rc;
    if (!u->attached) {
        if (!dwfl_attach_state(u->dwfl, NULL, u->pid, &thread_callbacks, u))
            return errbuf_set(eb, ERR_SYS, "cannot prepare unwinding of process %d: %s",
                              (int)u->pid, dwfl_errmsg(-1));
        u->attached = true;
    }
    return 0;
}

int unwind_open(struct unwinder *u, pid_t pid, struct errbuf *eb)
{
    memset(u, 0, sizeof(*u));
    u->pid = pid;
    Dwfl_Callbacks *cb = xcalloc(1, sizeof(*cb));
    u->other_root = other_root(pid);
    cb->find_elf = find_elf;
    cb->find_debuginfo = dwfl_standard_find_debuginfo; /* build-id, .gnu_debuglink */
    cb->debuginfo_path = &u->debuginfo_path;
    u->callbacks = cb;
    u->dwfl = dwfl_begin(cb);
    if (!u->dwfl) {
        free(cb);
        u->callbacks = NULL;
        return errbuf_set(eb, ERR_SYS, "libdwfl: %s", dwfl_errmsg(-1));
    }
    hmap_init(&u->hint);
    u->live = xmalloc((size_t)UNWIND_LIVE_PAGES * PAGE);
    int rc = report(u, 0, eb);
    if (rc)
        unwind_close(u);
    return rc;
}

void unwind_close(struct unwinder *u)
{
    if (u->dwfl)
        dwfl_end(u->dwfl);
    free(u->callbacks);
    free(u->stack);
    free(u->live);
    maps_fini(&u->maps);
    hmap_fini(&u->hint);
    memset(u, 0, sizeof(*u));
}

/* --- Capture (thread stopped) ---------------------------------------------------------------- */

/* Copies the stack page by page when its mapping is unknown (a thread created since the map
 * was read): stops at the first page that cannot be read. */
static void copy_by_pages(struct unwinder *u, size_t want)
{
    struct mem_span sp[UNWIND_STACK_MIN / PAGE] = {{0}};
    uint8_t ok[UNWIND_STACK_MIN / PAGE] = {0};
    size_t n = want / PAGE < UNWIND_STACK_MIN / PAGE ? want / PAGE : UNWIND_STACK_MIN / PAGE;
    for (size_t i = 0; i < n; i++)
        sp[i] = (struct mem_span){u->stack_base + i * PAGE, u->stack + i * PAGE, PAGE};
    u->stack_len = 0;
    if (!n || mem_readv(u->pid, sp, n, ok) < 0)
        return;
    for (size_t i = 0; i < n && ok[i]; i++)
        u->stack_len += PAGE;
}

int unwind_capture(struct unwinder *u, pid_t tid, struct errbuf *eb)
{
    struct user_regs_struct r;
    if (ptrace(PTRACE_GETREGS, tid, 0, &r) != 0) {
        int rc = err_from_errno(errno);
        return errbuf_set(eb, rc, "cannot read the registers of thread %d: %s", (int)tid,
                          strerror(errno));
    }
    /* DWARF register numbers of x86-64: rax rdx rcx rbx rsi rdi rbp rsp r8-r15, 16 = rip. */
    const uint64_t regs[17] = {r.rax, r.rdx, r.rcx, r.rbx, r.rsi, r.rdi, r.rbp, r.rsp, r.r8,
                               r.r9,  r.r10, r.r11, r.r12, r.r13, r.r14, r.r15, r.rip};
    memcpy(u->regs, regs, sizeof(regs));
    u->sys_nr = (int64_t)r.orig_rax;
    u->tid = tid;
    u->stack_base = r.rsp & ~(uint64_t)(PAGE - 1);
    u->stack_used = u->stack_base;
    uint64_t hint = 0;
    size_t want = hmap_get(&u->hint, (uint64_t)tid, &hint) ? (size_t)hint : UNWIND_STACK_MIN;
    if (want > u->stack_cap) {
        free(u->stack);
        u->stack_cap = want;
        u->stack = xmalloc(u->stack_cap);
    }
    const struct map *m = maps_find(&u->maps, r.rsp);
    if (!m) {
        copy_by_pages(u, want);
        return 0;
    }
    uint64_t end = m->end < u->stack_base + want ? m->end : u->stack_base + want;
    u->stack_len = (size_t)(end - u->stack_base);
    int rc = mem_read(u->pid, u->stack_base, u->stack, u->stack_len);
    if (rc == ERR_READ) {
        copy_by_pages(u, want);
        return 0;
    }
    if (rc) {
        u->stack_len = 0;
        return errbuf_set(eb, rc, "cannot read the stack of thread %d: %s", (int)tid, err_str(rc));
    }
    return 0;
}

/* --- Walk (thread running again) ------------------------------------------------------------- */

struct walk {
    uint64_t *pcs;
    size_t max, n;
};

static int frame_cb(Dwfl_Frame *state, void *arg)
{
    struct walk *w = arg;
    Dwarf_Addr pc;
    bool activation;
    if (!dwfl_frame_pc(state, &pc, &activation) || pc == 0)
        return DWARF_CB_ABORT;
    /* A return address points after the call, possibly into the next function. */
    w->pcs[w->n++] = activation ? pc : pc - 1;
    return w->n < w->max ? DWARF_CB_OK : DWARF_CB_ABORT;
}

static void walk_once(struct unwinder *u, struct walk *w)
{
    u->walks++;
    u->nlive = 0;
    w->n = 0;
    (void)dwfl_getthread_frames(u->dwfl, u->tid, frame_cb, w);
}

int unwind_walk(struct unwinder *u, uint64_t now_ns, uint64_t *pcs, size_t max, size_t *n)
{
    struct walk w = {pcs, max, 0};
    *n = 0;
    if (!max)
        return 0;
    walk_once(u, &w);
    bool lost = w.n && !dwfl_addrmodule(u->dwfl, pcs[w.n - 1]);
    bool new_stack = !maps_find(&u->maps, u->regs[7]);
    if ((lost || new_stack) && now_ns - u->last_report_ns >= UNWIND_REPORT_MIN_NS) {
        /* Code of no known module (a library loaded since the list was read) or a thread
         * whose stack was mapped since: read the list again, walk again on the same copy. */
        struct errbuf eb;
        int rc = report(u, now_ns, &eb);
        if (rc)
            return rc;
        if (lost)
            walk_once(u, &w);
    }
    /* Next time copy as much stack as this walk needed, plus slack. */
    size_t need = (size_t)(u->stack_used - u->stack_base) + STACK_SLACK;
    need = (need + PAGE - 1) & ~(size_t)(PAGE - 1);
    if (need < UNWIND_STACK_MIN)
        need = UNWIND_STACK_MIN;
    if (need > UNWIND_STACK_MAX)
        need = UNWIND_STACK_MAX;
    if (u->tid > 0)
        hmap_put(&u->hint, (uint64_t)u->tid, need);
    *n = w.n;
    return 0;
}
