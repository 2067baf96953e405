// SPDX-License-Identifier: MIT
// A sampled process's life: its record, its runtime's readers opened and closed, children
// found and followed (--subprocesses), a child that exec'd read again as its new program.
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "sampler/sproc.h"
#include "util/xalloc.h"

#define MAX_PROCS 256
#define FIND_RETRY_NS 2000000000ULL /* a new program gets 2 s to map its runtime */
#define CAT_IP_NS 2000000ULL        /* the shortest period of the category samples */

static void native_start(struct sampler *s, struct sproc *sp)
{
    struct errbuf eb = {{0}};
    int rc = native_open(&sp->nt, sp->pid, &eb);
    if (rc) {
        if (sp->root)
            fprintf(stderr, "crux: native frames unavailable for process %d: %s\n", (int)sp->pid,
                    eb.msg[0] ? eb.msg : err_str(rc));
        return;
    }
    native_stack_init(&sp->nst);
    hmap_init(&sp->native_frames);
    sp->native_on = true;
    (void)s;
}

static void native_stop(struct sampler *s, struct sproc *sp)
{
    if (!sp->native_on)
        return;
    struct native_stats ns;
    native_get_stats(&sp->nt, &ns);
    s->st->native_samples += ns.samples;
    s->st->native_failed += ns.stop_failed;
    s->st->native_mismatch += ns.mismatches;
    s->st->native_reused += ns.reused;
    if (sp->root) {
        s->st->native_stop_median_ns = ns.stop_median_ns;
        s->st->native_stop_p99_ns = ns.stop_p99_ns;
    }
    native_stack_fini(&sp->nst);
    native_close(&sp->nt);
    hmap_fini(&sp->native_frames);
    sp->native_on = false;
}

static void short_name(pid_t pid, char *out, size_t n)
{
    char cmd[512];
    if (proc_cmdline(pid, cmd, sizeof(cmd)) || !cmd[0]) {
        snprintf(out, n, "process");
        return;
    }
    /* "/usr/bin/python3 /app/worker.py --x" -> "python3 worker.py --x": paths cut to base
     * names, at most four words. Control characters (a `python -c` script's newlines) and
     * runs of blanks separate words, so that the name stays one line. */
    for (char *c = cmd; *c; c++)
        if ((unsigned char)*c < ' ' || *c == 0x7f)
            *c = ' ';
    size_t k = 0;
    const char *w = cmd;
    for (int words = 0; *w && words < 4 && k + 1 < n; words++) {
        while (*w == ' ')
            w++;
        if (!*w)
            break;
        const char *e = strchr(w, ' ');
        size_t len = e ? (size_t)(e - w) : strlen(w);
        const char *b = w;
        for (size_t i = 0; i < len; i++)
            if (w[i] == '/' && i + 1 < len)
                b = w + i + 1;
        size_t bl = len - (size_t)(b - w);
        if (k && k + 1 < n)
            out[k++] = ' ';
        for (size_t i = 0; i < bl && k + 1 < n; i++)
            out[k++] = b[i];
        w = e ? e + 1 : w + len;
    }
    out[k] = 0;
    if (k > 48)
        memcpy(out + 45, "...", 4);
}

static void proc_open_runtime(struct sampler *s, struct sproc *sp)
{
    struct errbuf eb = {{0}};
    sp->exec_id = children_exec_id(sp->pid);
    if (!sp->root) {
        if (pyruntime_find(sp->pid, &sp->rt, &eb))
            return; /* not Python, or not yet: follow_children looks again for a while */
    }
    pyreader_init(&sp->r, &sp->rt, s->o->max_depth);
    threadlabels_init(&sp->tl, &sp->rt, s->p);
    proc_statcache_init(&sp->sc, sp->pid);
    pause_init(&sp->pz, sp->pid, sp->root ? s->o->child : 0);
    hmap_init(&sp->frames);
    stackmemo_init(&sp->memo);
    if (s->o->async_tasks) {
        asyncreader_init(&sp->ar, &sp->rt);
        sp->async_on = asyncio_supported(&sp->ar);
        if (!sp->async_on)
            s->st->async_unsupported = true; /* cmd/record.c says so, once */
        hmap_init(&sp->task_w);
    }
    hmap_init(&sp->alloc_stacks);
    if (s->o->categories) {
        /* At most one kernel sample per round of a busy thread, and at least CAT_IP_NS of
         * its CPU time apart: each interrupts the target, ~20 us on a nested-virtualised VM
         * (bench/perf_tick.c, docs/benchmarks.md), so one per round cost a busy thread 20%
         * at 10 kHz; one per 2 ms costs it 1%. Rounds between samples take the category of
         * the thread's last sample in the same function (categorize.c). */
        uint64_t per = s->period > CAT_IP_NS ? s->period : CAT_IP_NS;
        cat_init(&sp->cat, sp->pid, sp->rt.elf_path, per);
        sp->cat_on = true;
    }
    if (s->o->native)
        native_start(s, sp);
    sp->python = true;
    struct pproc *pr = profile_proc(s->p, (uint32_t)sp->pid);
    profile_set_str(&pr->python_version, sp->rt.version);
}

static void proc_close_runtime(struct sampler *s, struct sproc *sp)
{
    if (!sp->python)
        return;
    native_stop(s, sp);
    if (sp->ring_on && s->o->spans)
        agentdrain_spans(s, sp);
    if (sp->ring_on && sp->ring.allocs)
        agentdrain_allocs(s, sp);
    if (sp->ring_on)
        stagering_close(&sp->ring);
    hmap_fini(&sp->alloc_stacks);
    sp->ring_on = false;
    if (s->o->blocking || s->o->native)
        pause_fini(&sp->pz);
    if (sp->cat_on)
        cat_fini(&sp->cat);
    sp->cat_on = false;
    hmap_fini(&sp->frames);
    stackmemo_fini(&sp->memo);
    if (s->o->async_tasks) {
        s->st->async_rounds += sp->ar.rounds;
        s->st->async_tasks += sp->ar.tasks_read;
        s->st->async_dropped += sp->ar.dropped;
        s->st->async_reads += sp->ar.reads;
        s->st->async_ns += sp->ar.busy_ns;
        s->st->async_cpu_ns += sp->ar.cpu_ns;
        s->st->async_full += sp->ar.full_walks;
        s->st->async_checked += sp->ar.checked;
        s->st->async_rewalked += sp->ar.rewalked;
        s->st->async_reg_ns += sp->ar.reg_cpu_ns;
        s->st->async_check_ns += sp->ar.check_cpu_ns;
        s->st->async_walk_ns += sp->ar.walk_cpu_ns;
        asyncreader_fini(&sp->ar);
        hmap_fini(&sp->task_w);
    }
    sp->async_on = false;
    proc_statcache_fini(&sp->sc);
    s->st->names_refreshes += sp->tl.names.refreshes;
    s->st->names_syscalls += sp->tl.names.dict.reads;
    s->st->names_ns += sp->tl.names.busy_ns;
    threadlabels_fini(&sp->tl);
    pyreader_fini(&sp->r);
    sp->python = false;
}

struct sproc *sproc_add(struct sampler *s, pid_t pid, pid_t ppid, const struct pyruntime *rt)
{
    if (s->nprocs == s->cap) {
        s->cap = s->cap ? s->cap * 2 : 8;
        s->procs = xrealloc(s->procs, s->cap * sizeof(*s->procs));
    }
    struct sproc *sp = xcalloc(1, sizeof(*sp));
    s->procs[s->nprocs++] = sp;
    sp->pid = pid;
    sp->ppid = ppid;
    sp->root = rt != NULL;
    if (rt)
        sp->rt = *rt;
    short_name(pid, sp->name, sizeof(sp->name));
    struct pproc *pr = profile_proc(s->p, (uint32_t)pid);
    pr->ppid = (uint32_t)(ppid > 0 ? ppid : 0);
    profile_set_str(&pr->name, sp->name);
    sp->proc_frame =
        profile_frame(s->p, profile_str(s->p, sp->name, strlen(sp->name)), 0, pid, FRAME_PROCESS);
    char path[64];
    snprintf(path, sizeof(path), "/proc/%d/statm", (int)pid);
    sp->statm_fd = s->o->memory ? open(path, O_RDONLY | O_CLOEXEC) : -1;
    proc_open_runtime(s, sp);
    s->st->processes++;
    return sp;
}

void sproc_gone(struct sampler *s, struct sproc *sp)
{
    if (sp->gone)
        return;
    sp->gone = true;
    proc_close_runtime(s, sp);
    if (sp->statm_fd >= 0)
        close(sp->statm_fd);
    sp->statm_fd = -1;
}

/* New children, and children that exec'd (their runtime moved or appeared). */
void sproc_follow_children(struct sampler *s, uint64_t now)
{
    pid_t known[MAX_PROCS], found[MAX_PROCS], ppids[MAX_PROCS];
    size_t n = 0;
    for (size_t i = 0; i < s->nprocs; i++) {
        struct sproc *sp = s->procs[i];
        if (sp->gone)
            continue;
        if (!sp->root && !proc_alive(sp->pid)) {
            sproc_gone(s, sp);
            continue;
        }
        known[n++] = sp->pid;
        uint64_t id = sp->root ? 0 : children_exec_id(sp->pid);
        if (!sp->root && !sp->python && id == sp->exec_id && now < sp->find_until_ns) {
            /* Found between exec and the loader mapping libpython: look again. */
            proc_open_runtime(s, sp);
        } else if (!sp->root && id && id != sp->exec_id) {
            proc_close_runtime(s, sp); /* a new program: find its runtime again */
            sp->find_until_ns = now + FIND_RETRY_NS;
            short_name(sp->pid, sp->name, sizeof(sp->name));
            profile_set_str(&profile_proc(s->p, (uint32_t)sp->pid)->name, sp->name);
            sp->proc_frame = profile_frame(s->p, profile_str(s->p, sp->name, strlen(sp->name)), 0,
                                           sp->pid, FRAME_PROCESS);
            proc_open_runtime(s, sp);
        }
    }
    if (s->nprocs >= MAX_PROCS)
        return;
    size_t got = children_scan(&s->scan, known, n, found, ppids, MAX_PROCS - s->nprocs);
    for (size_t i = 0; i < got; i++)
        sproc_add(s, found[i], ppids[i], NULL)->find_until_ns = now + FIND_RETRY_NS;
}
