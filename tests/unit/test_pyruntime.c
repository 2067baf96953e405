// SPDX-License-Identifier: MIT
// Unit tests for cpython/pyruntime (version text, finding the runtime of every installed
// interpreter) and target/elffile (symbols, sections and load bias of real ELF files).
#include <dlfcn.h>
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "check.h"
#include "cpython/pyruntime.h"
#include "target/elffile.h"
#include "target/maps.h"
#include "target/mem.h"

#define PYENV "/root/.pyenv/versions/"
#define LIBPY312 PYENV "3.12.1/lib/libpython3.12.so.1.0"
#define DEBIAN_PY "/usr/bin/python3.11"

/* Prints the version, then sleeps: the line on stdout says the interpreter is initialized. */
#define TARGET_CODE                                                                                \
    "import platform, sys, time\n"                                                                 \
    "sys.stdout.write(platform.python_version() + '\\n')\n"                                        \
    "sys.stdout.flush()\n"                                                                         \
    "time.sleep(30)\n"

static const char *const PYTHONS[] = {
    PYENV "3.8.18/bin/python3", PYENV "3.9.18/bin/python3", PYENV "3.10.13/bin/python3",
    PYENV "3.11.7/bin/python3", PYENV "3.12.1/bin/python3", PYENV "3.13.0/bin/python3",
    "/usr/bin/python3",
};

/* --- Version text --------------------------------------------------------------------- */

static int test_parse_version(void)
{
    static const struct {
        const char *s;
        uint64_t hex;
    } good[] = {
        {"3.12.1", 0x030c01f0},   {"3.13.0rc2", 0x030d00c2},  {"3.9.18+", 0x030912f0},
        {"3.10.0a7", 0x030a00a7}, {"2.7.18", 0x020712f0},     {"3.8.0b1", 0x030800b1},
        {"3.11.10", 0x030b0af0},  {"3.13.0rc15", 0x030d00cf}, {"3.0.0", 0x030000f0},
        {"3.99.99", 0x036363f0},  {"3.12.1rc1+", 0x030c01c1},
    };
    for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
        uint64_t v = pyruntime_parse_version(good[i].s, strlen(good[i].s));
        CHECK(v == good[i].hex, "%s: 0x%llx, want 0x%llx", good[i].s, (unsigned long long)v,
              (unsigned long long)good[i].hex);
    }
    static const char *const bad[] = {
        "",          "3",        "3.",       "3.12",    "3.12.",    "3.x.1",      "30.1.1",
        "3.12.1rc",  "3.12.1r1", "3.12.1c1", "3.12.1a", "3.12.1 ",  "3.12.1x",    "3.12.1++",
        "3.12.1+a1", "4.0.0",    "1.5.2",    "3.100.1", "3.1.100",  "3.12.1rc16", "3.12.1a123",
        "v3.12.1",   " 3.12.1",  "3..1",     "3.12.-1", "3.1234.1", "3.12.1\n",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        uint64_t v = pyruntime_parse_version(bad[i], strlen(bad[i]));
        CHECK(v == 0, "[%s] parsed as 0x%llx", bad[i], (unsigned long long)v);
    }
    /* Only `n` bytes count: the NUL-free tail of a longer buffer is ignored. */
    CHECK(pyruntime_parse_version("3.12.1garbage", 6) == 0x030c01f0, "explicit length");
    CHECK(pyruntime_parse_version("3.12.1", 5) == 0, "\"3.12.\" of \"3.12.1\"");
    return 0;
}

static int test_format_version(void)
{
    static const char *const texts[] = {"3.12.1",  "3.13.0rc2", "3.10.0a7", "2.7.18",
                                        "3.8.0b1", "3.11.10",   "3.0.0",    "3.99.99"};
    for (size_t i = 0; i < sizeof(texts) / sizeof(texts[0]); i++) {
        uint64_t v = pyruntime_parse_version(texts[i], strlen(texts[i]));
        char out[32];
        pyruntime_format_version(v, out, sizeof(out));
        CHECK(strcmp(out, texts[i]) == 0, "round trip of %s: %s", texts[i], out);
        CHECK(pyruntime_parse_version(out, strlen(out)) == v, "parse(format(%s))", texts[i]);
    }
    char out[32];
    pyruntime_format_version(pyruntime_parse_version("3.9.18+", 7), out, sizeof(out));
    CHECK(strcmp(out, "3.9.18") == 0, "the + is dropped: %s", out);
    pyruntime_format_version(0x030d00f0, out, 5);
    CHECK(strcmp(out, "3.13") == 0, "cut to the buffer: %s", out);
    return 0;
}

/* --- ELF files -------------------------------------------------------------------------- */

int main(void);

static int test_elf_self(void)
{
    struct elffile *ef = NULL;
    struct errbuf eb = {{0}};
    CHECK(elffile_open("/proc/self/exe", &ef, &eb) == 0, "open: %s", eb.msg);
    CHECK(elffile_is_dyn(ef), "the test is a PIE");
    uint64_t v = 0, size = 0;
    int rc = elffile_symbol(ef, "main", &v, &size);
    CHECK(rc == 0 && v != 0 && size > 0, "main: %d", rc);
    CHECK(elffile_symbol(ef, "elf_begin", &v, NULL) == ERR_NOT_FOUND, "imports are undefined");
    CHECK(elffile_symbol(ef, "no_such_symbol_here", &v, NULL) == ERR_NOT_FOUND, "absent");
    uint64_t addr = 0;
    CHECK(elffile_section(ef, ".text", &addr, &size) == 0 && size > 0, ".text");
    CHECK(elffile_section(ef, ".no_such", &addr, &size) == ERR_NOT_FOUND, "absent section");
    /* The bias maps the file's addresses to ours. */
    char exe[4096];
    ssize_t n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
    CHECK(n > 0, "readlink");
    exe[n] = '\0';
    struct maps m;
    CHECK(maps_load(getpid(), &m, &eb) == 0, "maps: %s", eb.msg);
    const struct map *first = maps_first_of(&m, exe);
    uint64_t start = first ? first->start : 0;
    maps_fini(&m);
    CHECK(start != 0, "the executable is mapped");
    uint64_t bias = elffile_bias(ef, start);
    CHECK(elffile_symbol(ef, "main", &v, NULL) == 0, "main again");
    CHECK(bias + v == (uint64_t)(uintptr_t)&main, "bias 0x%llx + main 0x%llx != %p",
          (unsigned long long)bias, (unsigned long long)v, (void *)&main);
    CHECK(elffile_symbol(ef, "test_elf_self", &v, NULL) == 0, "a static function (.symtab)");
    CHECK(bias + v == (uint64_t)(uintptr_t)&test_elf_self, "static function address");
    elffile_free(ef);
    elffile_free(NULL);
    return 0;
}

static int test_elf_libpython(void)
{
    struct elffile *ef = NULL;
    struct errbuf eb = {{0}};
    CHECK(elffile_open(LIBPY312, &ef, &eb) == 0, "open: %s", eb.msg);
    CHECK(elffile_is_dyn(ef), "a shared library");
    uint64_t rt = 0, rt_size = 0, sec = 0, sec_size = 0, ver = 0;
    CHECK(elffile_symbol(ef, "_PyRuntime", &rt, &rt_size) == 0, "_PyRuntime");
    CHECK(rt != 0 && rt_size >= 4096, "_PyRuntime 0x%llx, %llu bytes", (unsigned long long)rt,
          (unsigned long long)rt_size);
    CHECK(elffile_section(ef, ".PyRuntime", &sec, &sec_size) == 0, ".PyRuntime section");
    CHECK(sec == rt && sec_size >= rt_size, "_PyRuntime opens its section");
    CHECK(elffile_symbol(ef, "Py_Version", &ver, NULL) == 0, "Py_Version");
    uint64_t ro = 0, ro_size = 0;
    CHECK(elffile_section(ef, ".rodata", &ro, &ro_size) == 0, ".rodata");
    CHECK(ver >= ro && ver < ro + ro_size, "Py_Version is read-only data");
    /* The first PT_LOAD of libpython is at 0: the bias is where it is mapped. */
    CHECK(elffile_bias(ef, 0x7f0012340000ULL) == 0x7f0012340000ULL, "bias");

    /* Loaded into this process, the computed addresses are the dynamic linker's. */
    void *h = dlopen(LIBPY312, RTLD_NOW | RTLD_LOCAL);
    CHECK(h != NULL, "dlopen: %s", dlerror());
    void *dl_rt = dlsym(h, "_PyRuntime");
    void *dl_ver = dlsym(h, "Py_Version");
    struct maps m;
    int rc = maps_load(getpid(), &m, &eb);
    const struct map *first = rc == 0 ? maps_first_of(&m, LIBPY312) : NULL;
    uint64_t start = first ? first->start : 0;
    if (rc == 0)
        maps_fini(&m);
    CHECK(start != 0, "libpython mapped: %s", eb.msg);
    uint64_t bias = elffile_bias(ef, start);
    CHECK(bias + rt == (uint64_t)(uintptr_t)dl_rt, "_PyRuntime at %p, computed 0x%llx", dl_rt,
          (unsigned long long)(bias + rt));
    CHECK(bias + ver == (uint64_t)(uintptr_t)dl_ver, "Py_Version");
    unsigned long version = 0;
    CHECK(mem_read(getpid(), bias + ver, &version, sizeof(version)) == 0, "read Py_Version");
    CHECK(version == 0x030c01f0, "Py_Version 0x%lx", version);
    dlclose(h);
    elffile_free(ef);
    return 0;
}

static int test_elf_debian_exec(void)
{
    if (access(DEBIAN_PY, R_OK) != 0) {
        printf("skip: %s not installed\n", DEBIAN_PY);
        return 0;
    }
    struct elffile *ef = NULL;
    struct errbuf eb = {{0}};
    CHECK(elffile_open(DEBIAN_PY, &ef, &eb) == 0, "open: %s", eb.msg);
    CHECK(!elffile_is_dyn(ef), "Debian's python3 is ET_EXEC");
    CHECK(elffile_bias(ef, 0x400000) == 0 && elffile_bias(ef, 0x555555554000ULL) == 0,
          "no bias for ET_EXEC");
    uint64_t rt = 0, size = 0, ver = 0, sec = 0, sec_size = 0;
    CHECK(elffile_symbol(ef, "_PyRuntime", &rt, &size) == 0 && rt >= 0x400000, "_PyRuntime");
    CHECK(elffile_symbol(ef, "Py_Version", &ver, &size) == 0 && size == 8, "Py_Version");
    CHECK(elffile_symbol(ef, "PyUnicode_Type", &ver, NULL) == 0, "PyUnicode_Type");
    CHECK(elffile_section(ef, ".symtab", &sec, &sec_size) == ERR_NOT_FOUND, "stripped");
    CHECK(elffile_section(ef, ".PyRuntime", &sec, &sec_size) == 0 && sec == rt, ".PyRuntime");
    elffile_free(ef);
    return 0;
}

static int test_elf_not_elf(void)
{
    struct elffile *ef = NULL;
    struct errbuf eb = {{0}};
    int rc = elffile_open("tests/unit/check.h", &ef, &eb);
    CHECK(rc == ERR_ARG && ef == NULL, "a text file: %d", rc);
    CHECK(strstr(eb.msg, "tests/unit/check.h") != NULL, "message names the file: %s", eb.msg);
    char path[] = "/tmp/crux-test-elf-XXXXXX";
    int fd = mkstemp(path);
    CHECK(fd >= 0, "mkstemp");
    rc = elffile_open(path, &ef, &eb);
    CHECK(rc == ERR_ARG, "an empty file: %d", rc);
    /* The ELF magic and nothing else. */
    CHECK(write(fd, "\177ELF\2\1\1", 7) == 7, "write");
    close(fd);
    rc = elffile_open(path, &ef, &eb);
    unlink(path);
    CHECK(rc == ERR_ARG, "a truncated header: %d", rc);
    rc = elffile_open("/tmp", &ef, &eb);
    CHECK(rc == ERR_ARG, "a directory: %d", rc);
    rc = elffile_open("/no/such/file", &ef, &eb);
    CHECK(rc == ERR_NOT_FOUND, "missing file: %d", rc);
    CHECK(elffile_open("/no/such/file", &ef, NULL) == ERR_NOT_FOUND, "NULL errbuf");
    return 0;
}

/* --- Live interpreters ------------------------------------------------------------------ */

struct child {
    pid_t pid;
    int out; /* read end of its stdout */
};

/* Starts `argv` with stdout on a pipe and stderr discarded. */
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

/* Reads one line of the child's stdout (up to 10 s); empty on timeout or EOF. */
static void read_line(struct child *c, char *line, size_t cap)
{
    size_t n = 0;
    while (n + 1 < cap) {
        struct pollfd p = {c->out, POLLIN, 0};
        if (poll(&p, 1, 10000) <= 0)
            break;
        char ch;
        if (read(c->out, &ch, 1) != 1 || ch == '\n')
            break;
        line[n++] = ch;
    }
    line[n] = '\0';
}

static void reap(struct child *c)
{
    kill(c->pid, SIGKILL);
    waitpid(c->pid, NULL, 0);
    close(c->out);
}

/* Starts `python` on TARGET_CODE, waits for its version line, and checks the runtime found. */
static int check_python(const char *python)
{
    char *argv[] = {(char *)python, "-c", TARGET_CODE, NULL};
    struct child c;
    CHECK(spawn(argv, &c) == 0, "spawn %s", python);
    char real[64];
    read_line(&c, real, sizeof(real));
    struct pyruntime *rt = calloc(1, sizeof(*rt));
    struct errbuf eb = {{0}};
    int rc = real[0] ? pyruntime_find(c.pid, rt, &eb) : -100;
    uint64_t head = 0;
    int hrc = rc == 0 ? pyruntime_interp_head(rt, &head) : rc;
    /* Where _PyRuntime lives: in the file's data, or in its .bss (3.8, 3.9), which is the
     * anonymous mapping right after the file's last one. */
    struct maps m;
    char rt_path[PYRUNTIME_PATH_MAX] = "?";
    bool rt_readable = false;
    if (rc == 0 && maps_load(c.pid, &m, &eb) == 0) {
        const struct map *mp = maps_find(&m, rt->runtime);
        if (mp)
            snprintf(rt_path, sizeof(rt_path), "%s", mp->path);
        rt_readable = maps_readable(&m, rt->runtime, 4096);
        maps_fini(&m);
    }
    reap(&c);
    struct pyruntime copy = *rt;
    free(rt);
    CHECK(real[0], "%s printed no version", python);
    CHECK(rc == 0, "%s: pyruntime_find: %s: %s", python, err_str(rc), eb.msg);
    CHECK(strcmp(copy.version, real) == 0, "%s: version %s, really %s", python, copy.version, real);
    CHECK(pyruntime_parse_version(real, strlen(real)) == copy.version_hex, "%s: version_hex 0x%llx",
          python, (unsigned long long)copy.version_hex);
    uint32_t minor = (uint32_t)(copy.version_hex >> 16 & 0xff);
    CHECK(copy.off.minor == minor, "%s: offsets for 3.%u, version 3.%u", python, copy.off.minor,
          minor);
    CHECK(copy.pid == c.pid, "pid");
    CHECK(copy.runtime != 0, "%s: no _PyRuntime address", python);
    CHECK(copy.elf_start < copy.elf_end && copy.runtime >= copy.elf_start,
          "%s: _PyRuntime before %s", python, copy.elf_path);
    CHECK(rt_readable, "%s: _PyRuntime not readable", python);
    CHECK(strcmp(rt_path, copy.elf_path) == 0 || (rt_path[0] == '\0' && minor <= 9),
          "%s: _PyRuntime in [%s], not %s", python, rt_path, copy.elf_path);
    CHECK(copy.type_code && copy.type_str && copy.type_bytes && copy.type_none,
          "%s: type addresses %llx %llx %llx %llx", python, (unsigned long long)copy.type_code,
          (unsigned long long)copy.type_str, (unsigned long long)copy.type_bytes,
          (unsigned long long)copy.type_none);
    CHECK(hrc == 0 && head != 0, "%s: interpreters.head: %d 0x%llx", python, hrc,
          (unsigned long long)head);
    /* The shared builds hold the runtime in libpython, Debian's in the executable. */
    const char *base = strrchr(copy.elf_path, '/');
    base = base ? base + 1 : copy.elf_path;
    if (strncmp(python, PYENV, strlen(PYENV)) == 0)
        CHECK(strncmp(base, "libpython3.", 11) == 0, "%s: runtime in %s", python, copy.elf_path);
    else
        CHECK(strncmp(base, "python3", 7) == 0, "%s: runtime in %s", python, copy.elf_path);
    return 0;
}

static int test_find_all_pythons(void)
{
    int failed = 0;
    for (size_t i = 0; i < sizeof(PYTHONS) / sizeof(PYTHONS[0]); i++) {
        if (access(PYTHONS[i], X_OK) != 0) {
            printf("skip: %s not installed\n", PYTHONS[i]);
            continue;
        }
        if (check_python(PYTHONS[i]))
            failed = 1;
    }
    CHECK(!failed, "one or more interpreters failed (above)");
    return 0;
}

/* Runs pyruntime_find on `argv` once it printed a line; returns its code and message. */
static int find_rc(char *const argv[], char *msg, size_t cap)
{
    struct child c;
    if (spawn(argv, &c))
        return -100;
    char line[64];
    read_line(&c, line, sizeof(line));
    struct pyruntime *rt = calloc(1, sizeof(*rt));
    struct errbuf eb = {{0}};
    int rc = pyruntime_find(c.pid, rt, &eb);
    free(rt);
    reap(&c);
    snprintf(msg, cap, "%s", eb.msg);
    return line[0] ? rc : -101;
}

static int test_unsupported_versions(void)
{
    static const struct {
        const char *python;
        const char *named;
    } old[] = {
        {PYENV "3.7.16/bin/python3", "3.7"},
        {PYENV "3.6.15/bin/python3", "3.6"},
        {PYENV "2.7.18/bin/python", "2.7"},
    };
    for (size_t i = 0; i < sizeof(old) / sizeof(old[0]); i++) {
        if (access(old[i].python, X_OK) != 0) {
            printf("skip: %s not installed\n", old[i].python);
            continue;
        }
        char *argv[] = {(char *)old[i].python, "-c",
                        "import sys, time\nsys.stdout.write('up\\n')\nsys.stdout.flush()\n"
                        "time.sleep(30)\n",
                        NULL};
        char msg[ERRBUF_LEN];
        int rc = find_rc(argv, msg, sizeof(msg));
        CHECK(rc == ERR_VERSION, "%s: %d (%s)", old[i].python, rc, msg);
        CHECK(strstr(msg, old[i].named) != NULL, "%s: message: %s", old[i].python, msg);
    }
    return 0;
}

static int test_not_python(void)
{
    char *argv[] = {"/bin/sh", "-c", "echo up; exec /bin/sleep 30", NULL};
    struct child c;
    CHECK(spawn(argv, &c) == 0, "spawn");
    char line[16];
    read_line(&c, line, sizeof(line));
    /* Wait for the exec of sleep: /proc/PID/exe turns into sleep. */
    char exe[256] = "";
    char link[64];
    snprintf(link, sizeof(link), "/proc/%d/exe", (int)c.pid);
    for (int i = 0; i < 500; i++) {
        ssize_t n = readlink(link, exe, sizeof(exe) - 1);
        exe[n > 0 ? n : 0] = '\0';
        if (strstr(exe, "sleep"))
            break;
        usleep(2000);
    }
    struct pyruntime *rt = calloc(1, sizeof(*rt));
    struct errbuf eb = {{0}};
    int rc = pyruntime_find(c.pid, rt, &eb);
    free(rt);
    reap(&c);
    CHECK(strstr(exe, "sleep") != NULL, "sleep never ran: %s", exe);
    CHECK(rc == ERR_NOT_PYTHON, "/bin/sleep: %d (%s)", rc, eb.msg);
    /* A process that is gone. */
    rt = calloc(1, sizeof(*rt));
    rc = pyruntime_find(c.pid, rt, &eb);
    free(rt);
    CHECK(rc == ERR_PROC_GONE, "reaped: %d (%s)", rc, eb.msg);
    return 0;
}

int main(void)
{
    RUN(test_parse_version);
    RUN(test_format_version);
    RUN(test_elf_self);
    RUN(test_elf_libpython);
    RUN(test_elf_debian_exec);
    RUN(test_elf_not_elf);
    RUN(test_find_all_pythons);
    RUN(test_unsupported_versions);
    RUN(test_not_python);
    return TEST_SUMMARY("pyruntime");
}
