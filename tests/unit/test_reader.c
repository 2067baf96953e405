// SPDX-License-Identifier: MIT
// Unit tests for cpython/pyreader against live interpreters: a known call chain in the main
// thread and a second thread, their kernel tids, the GIL, and the depth cap.
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "check.h"
#include "cpython/pyreader.h"
#include "cpython/pyruntime.h"
#include "target/proc.h"

#define PYENV "/root/.pyenv/versions/"
#define MAX_DEPTH 2048
#define WAIT_NS 3000000000ULL /* for the threads to reach their known frames */

static const char *const PYTHONS[] = {
    PYENV "3.8.18/bin/python3", PYENV "3.9.18/bin/python3", PYENV "3.10.13/bin/python3",
    PYENV "3.11.7/bin/python3", PYENV "3.12.1/bin/python3", PYENV "3.13.0/bin/python3",
    "/usr/bin/python3",
};

/* The main thread ends in a -> b -> c, c sleeping; a second thread sleeps in worker. Each
 * line the test looks for carries a "# NAME" marker. */
static const char CHAIN_SCRIPT[] = "import sys, threading, time\n"
                                   "started = threading.Event()\n"
                                   "\n"
                                   "def worker():\n"
                                   "    started.set()\n"
                                   "    time.sleep(30)  # WORKER\n"
                                   "\n"
                                   "def c():\n"
                                   "    sys.stdout.write('ready\\n')\n"
                                   "    sys.stdout.flush()\n"
                                   "    time.sleep(30)  # C\n"
                                   "\n"
                                   "def b():\n"
                                   "    c()  # B\n"
                                   "\n"
                                   "def a():\n"
                                   "    x = 1\n"
                                   "    b()  # A\n"
                                   "\n"
                                   "t = threading.Thread(target=worker, daemon=True)\n"
                                   "t.start()\n"
                                   "started.wait()\n"
                                   "a()  # MODULE\n";

static const char RECURSION_SCRIPT[] = "import sys, time\n"
                                       "sys.setrecursionlimit(10000)\n"
                                       "def rec(n):\n"
                                       "    if n == 0:\n"
                                       "        sys.stdout.write('ready\\n')\n"
                                       "        sys.stdout.flush()\n"
                                       "        time.sleep(30)  # LEAF\n"
                                       "    rec(n - 1)  # CALL\n"
                                       "rec(5000)\n";

/* Python frames called from C in the middle of the stack: map() calls a lambda, next() resumes
 * a generator (3.12+ link an entry frame owned by the C stack at each). */
static const char THROUGH_C_SCRIPT[] = "import sys, time\n"
                                       "def c():\n"
                                       "    sys.stdout.write('ready\\n')\n"
                                       "    sys.stdout.flush()\n"
                                       "    time.sleep(30)  # C\n"
                                       "def g():\n"
                                       "    yield c()  # G\n"
                                       "def b():\n"
                                       "    f = lambda _: next(g())  # LAMBDA\n"
                                       "    list(map(f, [0]))  # B\n"
                                       "def a():\n"
                                       "    b()  # A\n"
                                       "a()  # MODULE\n";

/* A thread spinning in pure Python holds the GIL; the main thread sleeps without it. */
static const char GIL_SCRIPT[] = "import sys, threading, time\n"
                                 "started = threading.Event()\n"
                                 "def spin():\n"
                                 "    started.set()\n"
                                 "    n = 0\n"
                                 "    while True:\n"
                                 "        n += 1\n"
                                 "def idle():\n"
                                 "    sys.stdout.write('ready\\n')\n"
                                 "    sys.stdout.flush()\n"
                                 "    time.sleep(30)  # IDLE\n"
                                 "threading.Thread(target=spin, daemon=True).start()\n"
                                 "started.wait()\n"
                                 "idle()\n";

#define GIL_SAMPLES 20

static char script_dir[64];

/* The 1-based line of `script` holding "# marker" (marker followed by a newline). */
static int32_t line_of(const char *script, const char *marker)
{
    char pat[32];
    snprintf(pat, sizeof(pat), "# %s\n", marker);
    const char *p = strstr(script, pat);
    if (!p)
        return -1;
    int32_t line = 1;
    for (const char *s = script; s < p; s++)
        line += *s == '\n';
    return line;
}

static int write_script(const char *name, const char *text, char *path, size_t cap)
{
    snprintf(path, cap, "%s/%s", script_dir, name);
    FILE *f = fopen(path, "w");
    CHECK(f != NULL, "%s: %s", path, strerror(errno));
    fputs(text, f);
    fclose(f);
    return 0;
}

struct child {
    pid_t pid;
    int out;
};

static int spawn(char *const argv[], struct child *c)
{
    int fds[2];
    CHECK(pipe(fds) == 0, "pipe");
    fflush(NULL);
    pid_t pid = fork();
    CHECK(pid >= 0, "fork");
    if (pid == 0) {
        dup2(fds[1], 1);
        close(fds[0]);
        close(fds[1]);
        execv(argv[0], argv);
        _exit(127);
    }
    close(fds[1]);
    c->pid = pid;
    c->out = fds[0];
    return 0;
}

/* Waits up to 10 s for the child's "ready" line. */
static bool wait_ready(struct child *c)
{
    char line[16];
    size_t n = 0;
    while (n + 1 < sizeof(line)) {
        struct pollfd p = {c->out, POLLIN, 0};
        if (poll(&p, 1, 10000) <= 0)
            break;
        char ch;
        if (read(c->out, &ch, 1) != 1 || ch == '\n')
            break;
        line[n++] = ch;
    }
    line[n] = '\0';
    return strcmp(line, "ready") == 0;
}

static void reap(struct child *c)
{
    kill(c->pid, SIGKILL);
    waitpid(c->pid, NULL, 0);
    close(c->out);
}

static uint64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec;
}

static const struct pyframe *frame_at(const struct pyreader *r, const struct pythread *th,
                                      uint32_t k)
{
    return &r->frames[th->first + k];
}

static const char *name_at(const struct pyreader *r, const struct pythread *th, uint32_t k)
{
    return pyreader_code(r, frame_at(r, th, k))->qualname;
}

/* True when thread `th` is in the leaf function `name` (at `line`, unless that is 0). */
static bool leaf_is(const struct pyreader *r, const struct pythread *th, const char *name,
                    int32_t line)
{
    return !th->err && th->nframes > 0 && strcmp(name_at(r, th, 0), name) == 0 &&
           (!line || frame_at(r, th, 0)->line == line);
}

static const struct pythread *find_leaf(const struct pyreader *r, const char *name)
{
    for (size_t t = 0; t < r->nthreads; t++)
        if (leaf_is(r, &r->threads[t], name, 0))
            return &r->threads[t];
    return NULL;
}

/* True when some thread is in `name` at `line`. */
static bool has_leaf_at(const struct pyreader *r, const char *name, int32_t line)
{
    for (size_t t = 0; t < r->nthreads; t++)
        if (leaf_is(r, &r->threads[t], name, line))
            return true;
    return false;
}

/* Samples until the main thread sleeps in c and the other in worker, or WAIT_NS passed: the
 * "ready" line comes before c reaches its sleep. */
static int sample_until_settled(struct pyreader *r, struct errbuf *eb)
{
    uint64_t end = now_ns() + WAIT_NS;
    int32_t c_line = line_of(CHAIN_SCRIPT, "C");
    int32_t w_line = line_of(CHAIN_SCRIPT, "WORKER");
    for (;;) {
        int rc = pyreader_sample(r, now_ns(), eb);
        if (rc)
            return rc;
        if (r->nthreads == 2 && has_leaf_at(r, "c", c_line) && has_leaf_at(r, "worker", w_line))
            return 0;
        if (now_ns() > end)
            return 0;
        usleep(5000);
    }
}

/* True when `name` is `want` or ends in ".`want`" (3.11+ qualnames of nested functions). */
static bool name_matches(const char *name, const char *want)
{
    size_t n = strlen(name), w = strlen(want);
    return strcmp(name, want) == 0 ||
           (n > w && name[n - w - 1] == '.' && !strcmp(name + n - w, want));
}

/* Checks the first `n` frames of `th`, leaf first: names and the lines of their markers. */
static int check_frames(const struct pyreader *r, const struct pythread *th, const char *script,
                        const char *script_path, const char *const *names, const char *const *marks,
                        uint32_t n, const char *py)
{
    CHECK(th->nframes >= n, "%s: %u frames, want %u", py, th->nframes, n);
    for (uint32_t k = 0; k < n; k++) {
        const struct pycode *code = pyreader_code(r, frame_at(r, th, k));
        int32_t want = line_of(script, marks[k]);
        CHECK(name_matches(code->qualname, names[k]), "%s: frame %u is %s, want %s", py, k,
              code->qualname, names[k]);
        CHECK(frame_at(r, th, k)->line == want, "%s: %s at line %d, want %d", py, names[k],
              frame_at(r, th, k)->line, want);
        CHECK(strcmp(code->filename, script_path) == 0, "%s: file %s", py, code->filename);
    }
    return 0;
}

static int check_chain(const struct pyreader *r, const char *script_path, pid_t pid, const char *py)
{
    const struct pythread *mt = find_leaf(r, "c");
    CHECK(mt != NULL, "%s: no thread sleeping in c (%zu threads)", py, r->nthreads);
    static const char *const names[] = {"c", "b", "a", "<module>"};
    static const char *const marks[] = {"C", "B", "A", "MODULE"};
    uint32_t want = r->max_depth < 4 ? r->max_depth : 4;
    CHECK(mt->nframes == want, "%s: main thread has %u frames, want %u", py, mt->nframes, want);
    CHECK(mt->truncated == (r->max_depth < 4), "%s: 4 frames, max_depth %u, truncated %d", py,
          r->max_depth, mt->truncated);
    CHECK(check_frames(r, mt, CHAIN_SCRIPT, script_path, names, marks, want, py) == 0, "frames");
    CHECK(mt->tid == pid, "%s: main thread tid %d, pid %d", py, (int)mt->tid, (int)pid);
    if (r->max_depth < 4)
        return 0;

    const struct pythread *wt = find_leaf(r, "worker");
    CHECK(wt != NULL && wt != mt, "%s: no thread sleeping in worker", py);
    CHECK(frame_at(r, wt, 0)->line == line_of(CHAIN_SCRIPT, "WORKER"), "%s: worker line %d", py,
          frame_at(r, wt, 0)->line);
    const char *root = name_at(r, wt, wt->nframes - 1);
    size_t rl = strlen(root);
    CHECK(rl >= 10 && strcmp(root + rl - 10, "_bootstrap") == 0, "%s: worker root %s", py, root);
    CHECK(wt->tid > 0 && wt->tid != mt->tid, "%s: worker tid %d", py, (int)wt->tid);

    pid_t tids[64];
    size_t n = 0;
    CHECK(proc_tasks(pid, tids, 64, &n) == 0, "%s: proc_tasks", py);
    for (size_t t = 0; t < r->nthreads; t++) {
        bool found = false;
        for (size_t k = 0; k < n; k++)
            found = found || tids[k] == r->threads[t].tid;
        CHECK(found, "%s: thread %zu has tid %d, not in /proc/%d/task", py, t,
              (int)r->threads[t].tid, (int)pid);
    }
    CHECK(r->nthreads == 2, "%s: %zu threads", py, r->nthreads);
    size_t gil = 0;
    for (size_t t = 0; t < r->nthreads; t++)
        gil += r->threads[t].gil;
    CHECK(gil <= 1, "%s: %zu threads hold the GIL", py, gil);
    return 0;
}

enum mode {
    MODE_CHAIN,     /* CHAIN_SCRIPT: two threads */
    MODE_RECURSION, /* RECURSION_SCRIPT: cut at max_depth */
    MODE_THROUGH_C, /* THROUGH_C_SCRIPT */
    MODE_GIL,       /* GIL_SCRIPT */
};

static int check_recursion(const struct pyreader *r, uint32_t max_depth, const char *py)
{
    const struct pythread *th = find_leaf(r, "rec");
    CHECK(th != NULL, "%s: no thread in rec (%zu threads)", py, r->nthreads);
    CHECK(th->truncated && th->nframes == max_depth, "%s: truncated %d, %u frames", py,
          th->truncated, th->nframes);
    CHECK(frame_at(r, th, 0)->line == line_of(RECURSION_SCRIPT, "LEAF"), "%s: leaf line", py);
    for (uint32_t k = 1; k < max_depth; k++) {
        CHECK(strcmp(name_at(r, th, k), "rec") == 0, "%s: frame %u is %s", py, k,
              name_at(r, th, k));
        CHECK(frame_at(r, th, k)->line == line_of(RECURSION_SCRIPT, "CALL"), "%s: line %d", py,
              frame_at(r, th, k)->line);
    }
    return 0;
}

static int check_through_c(const struct pyreader *r, const char *script_path, const char *py)
{
    const struct pythread *th = find_leaf(r, "c");
    CHECK(th != NULL, "%s: no thread in c (%zu threads)", py, r->nthreads);
    static const char *const names[] = {"c", "g", "<lambda>", "b", "a", "<module>"};
    static const char *const marks[] = {"C", "G", "LAMBDA", "B", "A", "MODULE"};
    CHECK(th->nframes == 6 && !th->truncated, "%s: %u frames, truncated %d", py, th->nframes,
          th->truncated);
    return check_frames(r, th, THROUGH_C_SCRIPT, script_path, names, marks, 6, py);
}

/* Over GIL_SAMPLES rounds: never two holders, never the sleeping thread, and the spinning
 * thread holds it in most rounds. */
static int check_gil(struct pyreader *r, const char *py, struct errbuf *eb)
{
    int32_t idle_line = line_of(GIL_SCRIPT, "IDLE");
    int spinner_held = 0, rounds = 0;
    for (int i = 0; i < GIL_SAMPLES; i++) {
        int rc = pyreader_sample(r, now_ns(), eb);
        CHECK(rc == 0, "%s: sample: %s", py, eb->msg);
        size_t holders = 0;
        const struct pythread *spinner = NULL, *idle = NULL;
        for (size_t t = 0; t < r->nthreads; t++) {
            const struct pythread *th = &r->threads[t];
            holders += th->gil;
            if (leaf_is(r, th, "spin", 0))
                spinner = th;
            if (leaf_is(r, th, "idle", idle_line))
                idle = th;
        }
        CHECK(holders <= 1, "%s: %zu threads hold the GIL", py, holders);
        if (!spinner || !idle)
            continue; /* a torn round or the main thread not asleep yet */
        rounds++;
        CHECK(!idle->gil, "%s: the sleeping thread holds the GIL", py);
        spinner_held += spinner->gil;
        usleep(2000);
    }
    CHECK(rounds >= GIL_SAMPLES / 2, "%s: only %d usable rounds", py, rounds);
    CHECK(spinner_held * 10 >= rounds * 8, "%s: the spinning thread held the GIL in %d of %d", py,
          spinner_held, rounds);
    return 0;
}

/* Samples until a thread is in `leaf` at `line` (or WAIT_NS passed). */
static int sample_until_leaf(struct pyreader *r, const char *leaf, int32_t line, struct errbuf *eb)
{
    uint64_t end = now_ns() + WAIT_NS;
    for (;;) {
        int rc = pyreader_sample(r, now_ns(), eb);
        if (rc || has_leaf_at(r, leaf, line) || now_ns() > end)
            return rc;
        usleep(5000);
    }
}

/* Starts `py` on `script_path`, waits for "ready", finds its runtime and reads it with a
 * reader of depth `max_depth`, then checks what `mode` expects. */
/* When set, the code cache's limit for the next targets (to make it start over every round). */
static uint32_t cache_max;

static int run_target(const char *py, const char *script_path, uint32_t max_depth, enum mode mode)
{
    char *argv[] = {(char *)py, (char *)script_path, NULL};
    struct child c;
    CHECK(spawn(argv, &c) == 0, "spawn %s", py);
    bool ready = wait_ready(&c);
    struct pyruntime *rt = calloc(1, sizeof(*rt));
    struct pyreader *r = calloc(1, sizeof(*r));
    struct errbuf eb = {{0}};
    int rc = ready ? pyruntime_find(c.pid, rt, &eb) : -100;
    int result = 1;
    if (rc == 0) {
        pyreader_init(r, rt, max_depth);
        if (cache_max)
            r->codes.max_entries = cache_max;
        if (mode == MODE_CHAIN) {
            rc = sample_until_settled(r, &eb);
            if (rc == 0 && cache_max)
                rc = sample_until_settled(r, &eb); /* a round that starts with a full cache */
            result = rc == 0 ? check_chain(r, script_path, c.pid, py) : 1;
            if (result == 0 && cache_max && r->codes.resets == 0) {
                printf("FAIL %s: the code cache never started over\n", py);
                result = 1;
            }
        } else if (mode == MODE_RECURSION) {
            rc = sample_until_leaf(r, "rec", line_of(RECURSION_SCRIPT, "LEAF"), &eb);
            result = rc == 0 ? check_recursion(r, max_depth, py) : 1;
        } else if (mode == MODE_THROUGH_C) {
            rc = sample_until_leaf(r, "c", line_of(THROUGH_C_SCRIPT, "C"), &eb);
            result = rc == 0 ? check_through_c(r, script_path, py) : 1;
        } else {
            rc = sample_until_leaf(r, "idle", line_of(GIL_SCRIPT, "IDLE"), &eb);
            result = rc == 0 ? check_gil(r, py, &eb) : 1;
        }
        pyreader_fini(r);
    }
    reap(&c);
    free(r);
    free(rt);
    CHECK(ready, "%s never got ready", py);
    CHECK(rc == 0, "%s: %s: %s", py, err_str(rc), eb.msg);
    return result;
}

static int for_each_python(const char *script_name, const char *script, uint32_t max_depth,
                           enum mode mode)
{
    char path[128];
    CHECK(write_script(script_name, script, path, sizeof(path)) == 0, "script");
    int failed = 0;
    for (size_t i = 0; i < sizeof(PYTHONS) / sizeof(PYTHONS[0]); i++) {
        if (access(PYTHONS[i], X_OK) != 0) {
            printf("skip: %s not installed\n", PYTHONS[i]);
            continue;
        }
        if (run_target(PYTHONS[i], path, max_depth, mode))
            failed = 1;
    }
    unlink(path);
    CHECK(!failed, "one or more interpreters failed (above)");
    return 0;
}

static int test_call_chain_and_threads(void)
{
    return for_each_python("chain.py", CHAIN_SCRIPT, MAX_DEPTH, MODE_CHAIN);
}

static int test_depth_cap(void)
{
    return for_each_python("recursion.py", RECURSION_SCRIPT, 100, MODE_RECURSION);
}

/* A stack of exactly max_depth frames is whole: not truncated. One less cuts it. */
static int test_depth_cap_exact(void)
{
    CHECK(for_each_python("chain.py", CHAIN_SCRIPT, 3, MODE_CHAIN) == 0, "max_depth 3");
    CHECK(for_each_python("chain.py", CHAIN_SCRIPT, 4, MODE_CHAIN) == 0, "max_depth 4");
    return 0;
}

/* More frames in one round than the reader's first frame array holds (4096): the array
 * grows mid-walk, and 3.8-3.10 keep each frame's address beside it. */
static int test_depth_past_frame_array(void)
{
    return for_each_python("recursion.py", RECURSION_SCRIPT, 4500, MODE_RECURSION);
}

/* A code cache that starts over every round (a long-running target that keeps compiling code
 * reaches the limit): frames of a round keep entry indexes, so it must never start over in
 * the middle of one. */
static int test_code_cache_starts_over(void)
{
    cache_max = 2;
    int rc = for_each_python("chain.py", CHAIN_SCRIPT, MAX_DEPTH, MODE_CHAIN);
    cache_max = 0;
    return rc;
}

static int test_frames_called_from_c(void)
{
    return for_each_python("through_c.py", THROUGH_C_SCRIPT, MAX_DEPTH, MODE_THROUGH_C);
}

/* After the target exits, a round fails with ERR_PROC_GONE (not a crash, not 0 threads). */
static int test_process_gone(void)
{
    const char *py = PYENV "3.12.1/bin/python3";
    if (access(py, X_OK) != 0) {
        printf("skip: %s not installed\n", py);
        return 0;
    }
    char path[128];
    CHECK(write_script("gone.py", CHAIN_SCRIPT, path, sizeof(path)) == 0, "script");
    char *argv[] = {(char *)py, path, NULL};
    struct child c;
    CHECK(spawn(argv, &c) == 0, "spawn");
    bool ready = wait_ready(&c);
    struct pyruntime *rt = calloc(1, sizeof(*rt));
    struct pyreader *r = calloc(1, sizeof(*r));
    struct errbuf eb = {{0}};
    int rc = ready ? pyruntime_find(c.pid, rt, &eb) : -100;
    int before = -100, after = -100;
    if (rc == 0) {
        pyreader_init(r, rt, MAX_DEPTH);
        before = pyreader_sample(r, now_ns(), &eb);
        kill(c.pid, SIGKILL);
        waitpid(c.pid, NULL, 0);
        after = pyreader_sample(r, now_ns(), &eb);
        pyreader_fini(r);
    }
    reap(&c);
    unlink(path);
    free(r);
    free(rt);
    CHECK(rc == 0, "pyruntime_find: %d", rc);
    CHECK(before == 0, "first round: %d", before);
    CHECK(after == ERR_PROC_GONE, "after the exit: %d (%s)", after, eb.msg);
    return 0;
}

static int test_gil_holder(void)
{
    return for_each_python("gil.py", GIL_SCRIPT, MAX_DEPTH, MODE_GIL);
}

int main(void)
{
    snprintf(script_dir, sizeof(script_dir), "/tmp/crux-test-reader-XXXXXX");
    if (!mkdtemp(script_dir)) {
        perror("mkdtemp");
        return 1;
    }
    RUN(test_call_chain_and_threads);
    RUN(test_depth_cap);
    RUN(test_depth_cap_exact);
    RUN(test_depth_past_frame_array);
    RUN(test_code_cache_starts_over);
    RUN(test_frames_called_from_c);
    RUN(test_gil_holder);
    RUN(test_process_gone);
    rmdir(script_dir);
    return TEST_SUMMARY("reader");
}
