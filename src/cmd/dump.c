// SPDX-License-Identifier: MIT
// crux dump: every thread's Python stack now, as text or JSON.
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cmd/cmd.h"
#include "cmd/session.h"
#include "cpython/pyreader.h"
#include "sampler/sampler.h"
#include "target/pause.h"
#include "target/proc.h"
#include "util/buf.h"
#include "util/jsonw.h"

#define DUMP_TRIES 20
#define DUMP_MAX_DEPTH 4096

struct dump_args {
    pid_t pid;
    bool json;
    bool blocking;
};

static int parse_args(int argc, char **argv, struct dump_args *a)
{
    static const struct option opts[] = {{"pid", required_argument, 0, 'p'},
                                         {"json", no_argument, 0, 'j'},
                                         {"blocking", no_argument, 0, 'b'},
                                         {"help", no_argument, 0, 'h'},
                                         {0, 0, 0, 0}};
    memset(a, 0, sizeof(*a));
    optind = 1;
    opterr = 0; /* our own one-line messages, starting with crux: */
    int c;
    while ((c = getopt_long(argc, argv, "p:jbh", opts, NULL)) != -1) {
        switch (c) {
        case 'p':
            if (session_parse_pid(optarg, &a->pid)) {
                fprintf(stderr, "crux: --pid needs a process id, got '%s'\n", optarg);
                return EXIT_USAGE;
            }
            break;
        case 'j':
            a->json = true;
            break;
        case 'b':
            a->blocking = true;
            break;
        case 'h':
            fputs("usage: crux dump --pid PID [--json] [--blocking]\n", stdout);
            exit(0);
        default:
            fprintf(stderr, "crux: dump: unknown option or missing value: %s\n", argv[optind - 1]);
            fputs("usage: crux dump --pid PID [--json] [--blocking]\n", stderr);
            return EXIT_USAGE;
        }
    }
    if (!a->pid || optind < argc) {
        fputs("crux: dump needs --pid PID: see crux dump --help\n", stderr);
        return EXIT_USAGE;
    }
    return 0;
}

/* Reads until every thread's stack is consistent (a few tries: a running thread can change
 * its stack while it is read), or pauses the process once with --blocking. */
static int snapshot(const struct dump_args *a, struct pyreader *r, struct errbuf *eb)
{
    struct pauser pz;
    pause_init(&pz, a->pid, 0);
    int rc = 0;
    for (int i = 0; i < DUMP_TRIES; i++) {
        if (a->blocking) {
            rc = pause_stop_all(&pz, eb);
            if (rc)
                break;
        }
        rc = pyreader_sample(r, sampler_now_ns(), eb);
        if (a->blocking)
            pause_resume_all(&pz);
        if (rc)
            break;
        bool clean = r->nthreads > 0;
        for (size_t t = 0; t < r->nthreads; t++)
            clean &= r->threads[t].err == 0;
        if (clean)
            break;
    }
    if (a->blocking)
        pause_fini(&pz);
    return rc;
}

/* Reads the thread's name into `name` (left as is when unknown) and returns its state. */
static char thread_state(pid_t pid, pid_t tid, char *name, size_t n)
{
    char st = '?';
    if (!tid)
        return st;
    if (proc_task_comm(pid, tid, name, n))
        name[0] = '\0';
    if (proc_task_state(pid, tid, &st))
        st = '?';
    return st;
}

static const char *state_name(char st)
{
    return st == 'R' ? "running" : "idle";
}

static void print_text(const struct dump_args *a, const struct session *s, struct pyreader *r)
{
    char cmd[512] = "";
    if (proc_cmdline(a->pid, cmd, sizeof(cmd)))
        cmd[0] = '\0';
    printf("Process %d: %s\nPython %s\n", (int)a->pid, cmd, s->rt.version);
    for (size_t t = 0; t < r->nthreads; t++) {
        const struct pythread *th = &r->threads[t];
        char name[64] = "?";
        char st = thread_state(a->pid, th->tid, name, sizeof(name));
        printf("\nThread %d (%s): %s%s\n", (int)th->tid, name, state_name(st),
               th->gil ? ", holds the GIL" : "");
        if (th->err)
            printf("    [unreadable: %s]\n", err_str(th->err));
        for (uint32_t k = 0; k < th->nframes; k++) {
            const struct pyframe *f = &r->frames[th->first + k];
            const struct pycode *c = pyreader_code(r, f);
            printf("    %s (%s:%d)\n", c->qualname, c->filename, f->line);
        }
        if (th->truncated)
            printf("    [truncated]\n");
    }
}

static int print_json(const struct dump_args *a, const struct session *s, struct pyreader *r)
{
    struct buf out;
    buf_init(&out, 0);
    struct jsonw w;
    jsonw_init(&w, &out, 0);
    jsonw_obj_begin(&w);
    jsonw_key(&w, "pid");
    jsonw_i64(&w, a->pid);
    jsonw_key(&w, "python_version");
    jsonw_str(&w, s->rt.version);
    jsonw_key(&w, "threads");
    jsonw_arr_begin(&w);
    for (size_t t = 0; t < r->nthreads; t++) {
        const struct pythread *th = &r->threads[t];
        char name[64] = "";
        char st = thread_state(a->pid, th->tid, name, sizeof(name));
        jsonw_obj_begin(&w);
        jsonw_key(&w, "tid");
        jsonw_i64(&w, th->tid);
        jsonw_key(&w, "name");
        jsonw_str(&w, name);
        jsonw_key(&w, "gil");
        jsonw_bool(&w, th->gil);
        jsonw_key(&w, "state");
        jsonw_str(&w, state_name(st));
        jsonw_key(&w, "truncated");
        jsonw_bool(&w, th->truncated);
        if (th->err) {
            jsonw_key(&w, "error");
            jsonw_str(&w, err_str(th->err));
        }
        jsonw_key(&w, "frames");
        jsonw_arr_begin(&w);
        for (uint32_t k = 0; k < th->nframes; k++) {
            const struct pyframe *f = &r->frames[th->first + k];
            const struct pycode *c = pyreader_code(r, f);
            jsonw_obj_begin(&w);
            jsonw_key(&w, "name");
            jsonw_str(&w, c->qualname);
            jsonw_key(&w, "file");
            jsonw_str(&w, c->filename);
            jsonw_key(&w, "line");
            jsonw_i64(&w, f->line);
            jsonw_obj_end(&w);
        }
        jsonw_arr_end(&w);
        jsonw_obj_end(&w);
    }
    jsonw_arr_end(&w);
    jsonw_obj_end(&w);
    int rc = jsonw_error(&w);
    if (!rc)
        rc = buf_putc(&out, '\n');
    if (!rc)
        fwrite(out.data, 1, out.len, stdout);
    buf_fini(&out);
    return rc;
}

int cmd_dump(int argc, char **argv)
{
    struct dump_args a;
    int rc = parse_args(argc, argv, &a);
    if (rc)
        return rc;
    struct session s;
    struct errbuf eb = {{0}};
    rc = session_attach(&s, a.pid, &eb);
    if (rc) {
        session_report(rc, &eb);
        return EXIT_FAIL;
    }
    struct pyreader r;
    pyreader_init(&r, &s.rt, DUMP_MAX_DEPTH);
    rc = snapshot(&a, &r, &eb);
    if (rc) {
        session_report(rc, &eb);
        pyreader_fini(&r);
        return EXIT_FAIL;
    }
    if (a.json)
        rc = print_json(&a, &s, &r);
    else
        print_text(&a, &s, &r);
    pyreader_fini(&r);
    return rc ? EXIT_FAIL : 0;
}
