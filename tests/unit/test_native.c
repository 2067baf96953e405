// SPDX-License-Identifier: MIT
// Unit tests for native/merge (pairing eval-loop calls with Python frames on synthetic
// stacks of each interpreter generation), native/symbols (classes, interning) and the
// unwinder against a child process stopped in a known call chain.
#include <dlfcn.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ptrace.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "check.h"
#include "native/merge.h"
#include "native/symbols.h"
#include "native/unwind.h"
#include "target/pause.h"

static struct symbols syms;

/* Symbols named after their class: "E..." eval loop, "I..." interpreter, "L..." the C
 * library, others another library. */
static const struct native_sym *S(const char *name)
{
    uint8_t cls = name[0] == 'E' ? NSYM_EVAL : name[0] == 'I' ? NSYM_INTERP : NSYM_OTHER;
    const char *module = name[0] == 'E' || name[0] == 'I' ? "libpython"
                         : name[0] == 'L'                 ? "libc.so.6"
                                                          : "lib.so";
    return symbols_intern(&syms, name, module, cls);
}

/* Builds the native stack from names, leaf first. */
static size_t nat_of(const char *const *names, const struct native_sym **out)
{
    size_t n = 0;
    while (names[n]) {
        out[n] = S(names[n]);
        n++;
    }
    return n;
}

/* Renders a merged stack root first as "py3;py2;c:name;..." (Python frames by code id). */
static void render(const struct native_stack *s, char *buf, size_t len)
{
    size_t at = 0;
    buf[0] = '\0';
    for (size_t k = 0; k < s->n && at < len; k++) {
        const struct native_frame *f = &s->v[k];
        int w = f->kind == NATIVE_FRAME_PY
                    ? snprintf(buf + at, len - at, "%spy%u", k ? ";" : "", f->py.code)
                    : snprintf(buf + at, len - at, "%s%s", k ? ";" : "", f->sym->name);
        at += w > 0 ? (size_t)w : 0;
    }
}

static int merge_case(const char *const *names, const struct pyframe *py, size_t np, bool truncated,
                      const char *want, bool want_mismatch)
{
    const struct native_sym *nat[64];
    size_t nn = nat_of(names, nat);
    struct native_stack st;
    native_stack_init(&st);
    int rc = merge_stacks(nat, nn, py, np, truncated, &st);
    char got[1024];
    render(&st, got, sizeof(got));
    bool mismatch = st.mismatch;
    native_stack_fini(&st);
    CHECK(rc == 0, "merge failed: %d", rc);
    CHECK(strcmp(got, want) == 0, "merged %s, want %s", got, want);
    CHECK(mismatch == want_mismatch, "mismatch %d, want %d", mismatch, want_mismatch);
    return 0;
}

/* 3.11+: Python-to-Python calls stay in one eval call; the zlib call leaves it. */
static int test_merge_311_leaf_library(void)
{
    const char *nat[] = {"deflate_slow",
                         "deflate",
                         "zlib_compress",
                         "I_PyObject_Vectorcall",
                         "E",
                         "IPyEval_EvalCode",
                         "IPy_RunMain",
                         "L__libc_start_main",
                         "I_start",
                         NULL};
    /* leaf first: compress_loop(1), outer(2), main(3), <module>(4, entry) */
    const struct pyframe py[] = {
        {1, 10, false, 0, 0}, {2, 20, false, 0, 0}, {3, 30, false, 0, 0}, {4, 40, true, 0, 0}};
    return merge_case(nat, py, 4, false, "py4;py3;py2;py1;zlib_compress;deflate;deflate_slow",
                      false);
}

/* 3.8-3.10: one eval call per Python frame, machinery between them folds away. */
static int test_merge_38_each_frame(void)
{
    const char *nat[] = {"cblas_sgemm",
                         "matmul",
                         "Icfunction_call",
                         "E",
                         "Ifunction_code_fastcall",
                         "E",
                         "I_PyFunction_Vectorcall",
                         "E",
                         "Imain",
                         "Lclone",
                         NULL};
    const struct pyframe py[] = {{1, 10, true, 0, 0}, {2, 20, true, 0, 0}, {3, 30, true, 0, 0}};
    return merge_case(nat, py, 3, false, "py3;py2;py1;matmul;cblas_sgemm", false);
}

/* A thread C code created calls into Python: its C callers stay at the root, the C
 * library's thread start does not (named or, without debug symbols, unknown). */
static int test_merge_c_thread_calls_python(void)
{
    const char *nat[] = {"work",        "E",          "IPyObject_Call", "on_message",
                         "worker_loop", "L[unknown]", "Lclone3",        NULL};
    const struct pyframe py[] = {{1, 10, false, 0, 0}, {2, 20, true, 0, 0}};
    return merge_case(nat, py, 2, false, "worker_loop;on_message;py2;py1;work", false);
}

/* Python -> C -> Python: a qsort callback runs in a second eval call. */
static int test_merge_callback(void)
{
    const char *nat[] = {
        "E",        "IPyObject_Vectorcall", "closure_fcn",           "msort", "qsort",
        "ffi_call", "PyCFuncPtr_call",      "I_PyObject_MakeTpCall", "E",     "IPy_RunMain",
        NULL};
    /* leaf first: py_compare(1, entry), sort_loop(2), main(3, entry) */
    const struct pyframe py[] = {{1, 10, true, 0, 0}, {2, 20, false, 0, 0}, {3, 30, true, 0, 0}};
    return merge_case(nat, py, 3, false,
                      "py3;py2;PyCFuncPtr_call;ffi_call;qsort;msort;closure_fcn;py1", false);
}

/* 3.12+: an eval call entered (or being left) with no Python frame yet: nothing for it. */
static int test_merge_leaf_eval_without_frames(void)
{
    const char *nat[] = {"I_PyEvalFrameClearAndPop",
                         "E",
                         "IPyObject_Vectorcall",
                         "closure_fcn",
                         "qsort",
                         "E",
                         "IPy_RunMain",
                         NULL};
    const struct pyframe py[] = {{2, 20, false, 0, 0}, {3, 30, true, 0, 0}};
    return merge_case(nat, py, 2, false, "py3;py2;qsort;closure_fcn", false);
}

/* 3.11: a frame pushed before its eval call starts: its group goes at the leaf. */
static int test_merge_leaf_group_without_eval(void)
{
    const char *nat[] = {"I_PyEval_Vector", "closure_fcn", "qsort", "E", "IPy_RunMain", NULL};
    const struct pyframe py[] = {{1, 10, true, 0, 0}, {2, 20, false, 0, 0}, {3, 30, true, 0, 0}};
    return merge_case(nat, py, 3, false, "py3;py2;qsort;closure_fcn;py1", false);
}

/* Counts that cannot be paired: the Python stack whole, then natives above the last eval. */
static int test_merge_mismatch_keeps_python(void)
{
    const char *nat[] = {"deflate", "E", "E", "E", "IPy_RunMain", "clone", NULL};
    const struct pyframe py[] = {{1, 10, true, 0, 0}};
    return merge_case(nat, py, 1, false, "py1;deflate", true);
}

/* No eval call found (unwinding failed): never drop the Python frames. */
static int test_merge_no_eval(void)
{
    const char *nat[] = {"poll", NULL};
    const struct pyframe py[] = {{1, 10, false, 0, 0}, {2, 20, true, 0, 0}};
    return merge_case(nat, py, 2, false, "py2;py1;poll", true);
}

/* A Python stack truncated at the root: surplus eval calls at the root fold away. */
static int test_merge_truncated(void)
{
    const char *nat[] = {"work", "E", "E", "E", "E", "IPy_RunMain", NULL};
    const struct pyframe py[] = {{1, 10, true, 0, 0}, {2, 20, true, 0, 0}};
    return merge_case(nat, py, 2, true, "py2;py1;work", false);
}

/* Consecutive unnamed frames of one module are one frame; named ones all stay. */
static int test_merge_unknown_collapsed(void)
{
    const char *nat[] = {"[unknown]", "[unknown]", "msort", "msort", "[unknown]", "E", NULL};
    const struct pyframe py[] = {{1, 10, true, 0, 0}};
    return merge_case(nat, py, 1, false, "py1;[unknown];msort;msort;[unknown]", false);
}

/* A thread outside Python: its native frames, less the interpreter's. */
static int test_merge_no_python(void)
{
    const char *nat[] = {"epoll_wait", "Iworker", "start_thread", "clone3", NULL};
    return merge_case(nat, NULL, 0, false, "clone3;start_thread;epoll_wait", false);
}

static int test_classify(void)
{
    const char *exe = "/usr/bin/python3.11";
    CHECK(symbols_classify("_PyEval_EvalFrameDefault", "/usr/bin/python3.11", exe) == NSYM_EVAL,
          "eval in the executable");
    CHECK(symbols_classify("_PyEval_EvalFrameDefault.cold", "/x/libpython3.12.so.1.0", exe) ==
              NSYM_EVAL,
          "cold part of the eval loop");
    CHECK(symbols_classify("_PyEval_EvalFrameDefaultX", "/x/libpython3.12.so.1.0", exe) ==
              NSYM_INTERP,
          "another name");
    CHECK(symbols_classify(NULL, "/usr/bin/python3.11", exe) == NSYM_INTERP,
          "stripped interpreter code");
    CHECK(symbols_classify("deflate", "/usr/lib/x86_64-linux-gnu/libz.so.1.2.13", exe) ==
              NSYM_OTHER,
          "library");
    CHECK(symbols_classify("_PyEval_EvalFrameDefault", "/x/zlib.cpython-312.so", exe) == NSYM_OTHER,
          "the name outside the interpreter is not the eval loop");
    return 0;
}

static int test_demangle(void)
{
    char *d = symbols_demangle("_ZN2at6native6matmulERKNS_6TensorES3_");
    CHECK(d && strcmp(d, "at::native::matmul(at::Tensor const&, at::Tensor const&)") == 0,
          "demangled %s", d ? d : "(null)");
    free(d);
    CHECK(symbols_demangle("deflate") == NULL, "a C name stays");
    CHECK(symbols_demangle("_Zgarbage") == NULL, "an invalid name stays");
    return 0;
}

static int test_intern_stable(void)
{
    const struct native_sym *a = symbols_intern(&syms, "f", "liba.so", NSYM_OTHER);
    for (int i = 0; i < 2000; i++) {
        char name[32];
        snprintf(name, sizeof(name), "g%d", i);
        (void)symbols_intern(&syms, name, "libb.so", NSYM_OTHER);
    }
    CHECK(symbols_intern(&syms, "f", "liba.so", NSYM_OTHER) == a, "same pointer");
    CHECK(symbols_intern(&syms, "f", "libc.so", NSYM_OTHER) != a, "module is part of the key");
    CHECK(strcmp(a->name, "f") == 0 && strcmp(a->module, "liba.so") == 0, "contents");
    return 0;
}

/* --- The unwinder on a real process -------------------------------------------------------- */

__attribute__((noinline)) static void leaf_spin(volatile int *stop)
{
    while (!*stop)
        __asm__ volatile("" ::: "memory");
}

__attribute__((noinline)) static void middle_call(volatile int *stop)
{
    leaf_spin(stop);
    __asm__ volatile("" ::: "memory");
}

/* TracerPid of process `pid`, -1 when unreadable. */
static int tracer_of(pid_t pid)
{
    char path[64], line[256];
    snprintf(path, sizeof(path), "/proc/%d/status", (int)pid);
    FILE *f = fopen(path, "r");
    int tracer = -1;
    while (f && fgets(line, sizeof(line), f))
        if (strncmp(line, "TracerPid:", 10) == 0)
            tracer = (int)strtol(line + 10, NULL, 10);
    if (f)
        fclose(f);
    return tracer;
}

static int test_unwind_child(void)
{
    pid_t child = fork();
    if (child == 0) {
        volatile int stop = 0;
        middle_call(&stop);
        _exit(0);
    }
    usleep(50000);
    struct unwinder u;
    struct errbuf eb = {{0}};
    int rc = unwind_open(&u, child, &eb);
    CHECK(rc == 0, "unwind_open: %s", eb.msg);
    struct pauser pz;
    pause_init(&pz, child, child);
    rc = pause_stop_one(&pz, child, &eb);
    CHECK(rc == 0, "stop: %s", eb.msg);
    rc = unwind_capture(&u, child, &eb);
    pause_release_one(&pz, child);
    CHECK(rc == 0, "capture: %s", eb.msg);
    CHECK(pz.n == 0 && tracer_of(child) == 0, "released thread still traced (%d)",
          tracer_of(child));
    uint64_t pcs[64];
    size_t n = 0;
    rc = unwind_walk(&u, 1, pcs, 64, &n);
    CHECK(rc == 0 && n >= 3, "walk: %zu frames", n);
    symbols_init(&syms, child);
    char chain[512] = "";
    size_t at = 0;
    for (size_t k = 0; k < n && k < 4; k++) {
        const struct native_sym *s = symbols_lookup(&syms, u.dwfl, u.report_gen, pcs[k]);
        int w = snprintf(chain + at, sizeof(chain) - at, "%s;", s->name);
        at += w > 0 ? (size_t)w : 0;
    }
    kill(child, SIGKILL);
    waitpid(child, NULL, 0);
    pause_fini(&pz);
    unwind_close(&u);
    CHECK(strncmp(chain, "leaf_spin;middle_call;test_unwind_child;", 40) == 0, "chain %s", chain);
    return 0;
}

/* State letter of process `pid` from /proc, '?' when unreadable. */
static char state_of(pid_t pid)
{
    char path[64], buf[512];
    snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
    FILE *f = fopen(path, "r");
    size_t n = f ? fread(buf, 1, sizeof(buf) - 1, f) : 0;
    if (f)
        fclose(f);
    buf[n] = '\0';
    const char *close = strrchr(buf, ')');
    return close && close[1] == ' ' ? close[2] : '?';
}

/* A thread that cannot stop in time (a vfork parent waits uninterruptibly for its child)
 * gets its stop later: pause_release_pending() must release it then, not leave it stopped. */
static int test_stop_timeout_released_later(void)
{
    pid_t child = fork();
    if (child == 0) {
        pid_t v = vfork();
        if (v == 0) {
            usleep(300000); /* the parent is stuck in vfork until this child exits */
            _exit(0);
        }
        for (;;)
            pause();
    }
    usleep(100000);
    struct pauser pz;
    pause_init(&pz, child, child);
    struct errbuf eb = {{0}};
    int rc = pause_stop_one(&pz, child, &eb);
    pause_release_one(&pz, child); /* nothing to release yet when the stop timed out */
    usleep(400000);                /* the vfork child exited, the stop has arrived */
    char before = state_of(child);
    pause_release_pending(&pz);
    usleep(20000);
    char after = state_of(child);
    int tracer = tracer_of(child);
    kill(child, SIGKILL);
    waitpid(child, NULL, 0);
    pause_fini(&pz);
    CHECK(rc == ERR_TOO_LARGE, "the stop should time out, got %d (%s)", rc, eb.msg);
    CHECK(before == 't', "the late stop should have arrived (state %c)", before);
    CHECK(after != 't' && after != 'T' && tracer == 0, "left stopped (%c) or traced (%d)", after,
          tracer);
    return 0;
}

/* A library loaded after the unwinder read the module list: the walk runs into code of no
 * known module, reads the list again and names the library. */
static int test_unwind_dlopen_later(void)
{
    pid_t child = fork();
    if (child == 0) {
        usleep(200000); /* the parent opens its unwinder first */
        void *gmp = dlopen("libgmp.so.10", RTLD_NOW);
        if (!gmp)
            _exit(3);
        void (*init)(void *) = (void (*)(void *))dlsym(gmp, "__gmpz_init");
        void (*fac)(void *, unsigned long) =
            (void (*)(void *, unsigned long))dlsym(gmp, "__gmpz_fac_ui");
        _Alignas(16) unsigned char z[64];
        init(z);
        for (;;)
            fac(z, 100000);
    }
    struct unwinder u;
    struct errbuf eb = {{0}};
    int rc = unwind_open(&u, child, &eb);
    CHECK(rc == 0, "unwind_open: %s", eb.msg);
    usleep(700000);
    struct pauser pz;
    pause_init(&pz, child, child);
    bool found = false;
    for (int attempt = 0; attempt < 20 && !found; attempt++) {
        rc = pause_stop_one(&pz, child, &eb);
        if (rc)
            break;
        rc = unwind_capture(&u, child, &eb);
        pause_release_one(&pz, child);
        if (rc)
            break;
        uint64_t pcs[64];
        size_t n = 0;
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        uint64_t now = (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
        rc = unwind_walk(&u, now, pcs, 64, &n);
        for (size_t k = 0; k < n && !found; k++) {
            const struct native_sym *s = symbols_lookup(&syms, u.dwfl, u.report_gen, pcs[k]);
            found = strncmp(s->module, "libgmp.so", 9) == 0;
        }
        usleep(20000);
    }
    int status = 0;
    bool exited = waitpid(child, &status, WNOHANG) == child;
    kill(child, SIGKILL);
    waitpid(child, NULL, 0);
    pause_fini(&pz);
    unwind_close(&u);
    CHECK(!exited, "child exited early (status %d: libgmp.so.10 missing?)", status);
    CHECK(found, "no libgmp frame after the library was loaded (rc %d: %s)", rc, eb.msg);
    return 0;
}

int main(void)
{
    symbols_init(&syms, getpid());
    RUN(test_merge_311_leaf_library);
    RUN(test_merge_38_each_frame);
    RUN(test_merge_callback);
    RUN(test_merge_c_thread_calls_python);
    RUN(test_merge_leaf_eval_without_frames);
    RUN(test_merge_leaf_group_without_eval);
    RUN(test_merge_mismatch_keeps_python);
    RUN(test_merge_no_eval);
    RUN(test_merge_truncated);
    RUN(test_merge_no_python);
    RUN(test_merge_unknown_collapsed);
    RUN(test_classify);
    RUN(test_demangle);
    RUN(test_intern_stable);
    symbols_fini(&syms);
    RUN(test_unwind_child);
    symbols_fini(&syms);
    symbols_init(&syms, getpid());
    RUN(test_unwind_dlopen_later);
    RUN(test_stop_timeout_released_later);
    symbols_fini(&syms);
    return TEST_SUMMARY("native");
}
