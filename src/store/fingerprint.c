// SPDX-License-Identifier: MIT
// Environment fingerprints (fingerprint.h), read from /proc and /sys, uname,
// the C library, NVML when its library loads, and for a Python process its executable, maps
// and environment: where site-packages are and which versions of the libraries that decide
// an AI workload's speed (numpy, torch, transformers, onnxruntime, tokenizers) are there.
#include "store/fingerprint.h"

#include <cjson/cJSON.h>
#include <ctype.h>
#include <dirent.h>
#include <dlfcn.h>
#include <glob.h>
#include <limits.h>
#include <sched.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <sys/utsname.h>
#include <unistd.h>
#ifdef __GLIBC__
#include <gnu/libc-version.h>
#endif

#include "util/buf.h"
#include "util/jsonw.h"
#include "util/xalloc.h"

/* Packages whose versions are kept, each under the key "pkg_NAME". */
static const char *const packages[] = {"numpy", "torch", "transformers", "onnxruntime",
                                       "tokenizers"};
#define NPACKAGES (sizeof(packages) / sizeof(packages[0]))

/* The keys hashed, in this order: first the machine's, then the process's. */
static const char *const machine_keys[] = {
    "arch",
    "cpu_model",
    "cpu_count",
    "governor",
    "turbo",
    "smt",
    "kernel",
    "libc",
    "gpu_model",
    "gpu_count",
    "gpu_driver",
    "cgroup_cpu_max",
    "cgroup_memory_max",
};
static const char *const python_keys[] = {
    "python_version",   "python_build",    "pkg_numpy",      "pkg_torch",
    "pkg_transformers", "pkg_onnxruntime", "pkg_tokenizers",
};

#define LINE_MAX_LEN 1024

/* The first line of a small file, trailing whitespace removed; false when unreadable or
 * empty. */
static bool read_line(const char *path, char *out, size_t n)
{
    FILE *f = fopen(path, "re");
    if (!f)
        return false;
    bool ok = fgets(out, (int)n, f) != NULL;
    fclose(f);
    if (!ok)
        return false;
    size_t len = strlen(out);
    while (len && isspace((unsigned char)out[len - 1]))
        out[--len] = '\0';
    return len > 0;
}

static void put_str(struct jsonw *w, const char *key, const char *v)
{
    if (!v || !v[0])
        return;
    jsonw_key(w, key);
    jsonw_str(w, v);
}

static void put_u64(struct jsonw *w, const char *key, uint64_t v)
{
    jsonw_key(w, key);
    jsonw_u64(w, v);
}

/* "model name\t: Intel(R) ..." and its kin on other architectures. */
static void cpu_model(struct jsonw *w)
{
    static const char *const keys[] = {"model name", "Model", "cpu model", "Hardware", "cpu"};
    char best[256] = "", line[LINE_MAX_LEN];
    size_t best_rank = sizeof(keys) / sizeof(keys[0]);
    FILE *f = fopen("/proc/cpuinfo", "re");
    if (!f)
        return;
    for (int lines = 0; lines < 20000 && fgets(line, sizeof(line), f); lines++) {
        char *colon = strchr(line, ':');
        if (!colon)
            continue;
        size_t klen = (size_t)(colon - line);
        while (klen && isspace((unsigned char)line[klen - 1]))
            klen--;
        for (size_t k = 0; k < best_rank; k++) {
            if (strlen(keys[k]) != klen || strncmp(line, keys[k], klen) != 0)
                continue;
            const char *v = colon + 1 + strspn(colon + 1, " \t");
            snprintf(best, sizeof(best), "%.*s", (int)strcspn(v, "\r\n"), v);
            best_rank = k;
        }
        if (best_rank == 0)
            break;
    }
    fclose(f);
    put_str(w, "cpu_model", best);
}

static void cpu_facts(struct jsonw *w)
{
    cpu_model(w);
    cpu_set_t set;
    CPU_ZERO(&set);
    long online = sysconf(_SC_NPROCESSORS_ONLN);
    if (sched_getaffinity(0, sizeof(set), &set) == 0)
        put_u64(w, "cpu_count", (uint64_t)CPU_COUNT(&set));
    else if (online > 0)
        put_u64(w, "cpu_count", (uint64_t)online);
    if (online > 0)
        put_u64(w, "cpu_online", (uint64_t)online);
    char v[128];
    if (read_line("/sys/devices/system/cpu/cpu0/cpufreq/scaling_governor", v, sizeof(v)))
        put_str(w, "governor", v);
    /* intel_pstate says whether turbo is off; acpi-cpufreq and amd-pstate whether boost is on */
    if (read_line("/sys/devices/system/cpu/intel_pstate/no_turbo", v, sizeof(v))) {
        jsonw_key(w, "turbo");
        jsonw_bool(w, strcmp(v, "0") == 0);
    } else if (read_line("/sys/devices/system/cpu/cpufreq/boost", v, sizeof(v))) {
        jsonw_key(w, "turbo");
        jsonw_bool(w, strcmp(v, "1") == 0);
    }
    if (read_line("/sys/devices/system/cpu/smt/control", v, sizeof(v)))
        put_str(w, "smt", v);
}

static void mem_total(struct jsonw *w)
{
    FILE *f = fopen("/proc/meminfo", "re");
    if (!f)
        return;
    char line[256];
    unsigned long long kb;
    while (fgets(line, sizeof(line), f)) {
        if (sscanf(line, "MemTotal: %llu kB", &kb) == 1) {
            put_u64(w, "mem_total_kb", kb);
            break;
        }
    }
    fclose(f);
}

static void system_facts(struct jsonw *w)
{
    char host[256];
    if (gethostname(host, sizeof(host)) == 0) {
        host[sizeof(host) - 1] = '\0';
        put_str(w, "host", host);
    }
    struct utsname u;
    if (uname(&u) == 0) {
        put_str(w, "arch", u.machine);
        put_str(w, "kernel", u.release);
    }
#ifdef __GLIBC__
    char libc[64];
    snprintf(libc, sizeof(libc), "glibc %s", gnu_get_libc_version());
    put_str(w, "libc", libc);
#endif
    mem_total(w);
}

/* The cgroup of crux itself (a launched target starts in it): v2's cpu.max and memory.max,
 * or v1's quota and limit written the v2 way. A path that the namespace hides is read at the
 * mount's root, which is the container's own cgroup. */
static bool cgroup_file(const char *mount, const char *path, const char *file, char *out, size_t n)
{
    char p[PATH_MAX];
    if (snprintf(p, sizeof(p), "%s%s/%s", mount, path, file) < (int)sizeof(p) &&
        read_line(p, out, n))
        return true;
    return snprintf(p, sizeof(p), "%s/%s", mount, file) < (int)sizeof(p) && read_line(p, out, n);
}

static void cgroup_v1(struct jsonw *w, const char *ctrls, const char *path)
{
    char v[64], period[64];
    if (strstr(ctrls, "cpu") && !strstr(ctrls, "cpuset") &&
        cgroup_file("/sys/fs/cgroup/cpu", path, "cpu.cfs_quota_us", v, sizeof(v)) &&
        cgroup_file("/sys/fs/cgroup/cpu", path, "cpu.cfs_period_us", period, sizeof(period))) {
        char both[160];
        snprintf(both, sizeof(both), "%s %s", v[0] == '-' ? "max" : v, period);
        put_str(w, "cgroup_cpu_max", both);
    }
    if (strcmp(ctrls, "memory") == 0 &&
        cgroup_file("/sys/fs/cgroup/memory", path, "memory.limit_in_bytes", v, sizeof(v)))
        /* v1 writes "no limit" as a page-rounded 2^63 - 1 */
        put_str(w, "cgroup_memory_max", strtoull(v, NULL, 10) >= (1ull << 62) ? "max" : v);
}

static void cgroup_facts(struct jsonw *w)
{
    FILE *f = fopen("/proc/self/cgroup", "re");
    if (!f)
        return;
    char line[LINE_MAX_LEN], v[64];
    bool v2_done = false;
    while (fgets(line, sizeof(line), f)) {
        line[strcspn(line, "\n")] = '\0';
        char *c1 = strchr(line, ':');
        char *c2 = c1 ? strchr(c1 + 1, ':') : NULL;
        if (!c2)
            continue;
        *c2 = '\0';
        const char *ctrls = c1 + 1, *path = c2 + 1;
        if (!ctrls[0] && !v2_done) {
            v2_done = true;
            if (cgroup_file("/sys/fs/cgroup", path, "cpu.max", v, sizeof(v)))
                put_str(w, "cgroup_cpu_max", v);
            if (cgroup_file("/sys/fs/cgroup", path, "memory.max", v, sizeof(v)))
                put_str(w, "cgroup_memory_max", v);
        } else if (ctrls[0]) {
            cgroup_v1(w, ctrls, path);
        }
    }
    fclose(f);
}

/* NVML's types, for the few calls made (nvml.h is not needed to build crux). */
typedef int (*nvml_void_fn)(void);
typedef int (*nvml_text_fn)(char *out, unsigned len);
typedef int (*nvml_count_fn)(unsigned *n);
typedef int (*nvml_handle_fn)(unsigned index, void **dev);
typedef int (*nvml_name_fn)(void *dev, char *out, unsigned len);

/* GPU model, count and driver, only where the NVIDIA driver's library is installed: loaded at
 * run time so that crux neither links against it nor needs a GPU. */
static void gpu_facts(struct jsonw *w)
{
    void *lib = dlopen("libnvidia-ml.so.1", RTLD_NOW | RTLD_LOCAL);
    if (!lib)
        return;
    nvml_void_fn init = (nvml_void_fn)dlsym(lib, "nvmlInit_v2");
    nvml_void_fn shutdown = (nvml_void_fn)dlsym(lib, "nvmlShutdown");
    nvml_text_fn driver = (nvml_text_fn)dlsym(lib, "nvmlSystemGetDriverVersion");
    nvml_count_fn count = (nvml_count_fn)dlsym(lib, "nvmlDeviceGetCount_v2");
    nvml_handle_fn handle = (nvml_handle_fn)dlsym(lib, "nvmlDeviceGetHandleByIndex_v2");
    nvml_name_fn name = (nvml_name_fn)dlsym(lib, "nvmlDeviceGetName");
    if (init && init() == 0) {
        char text[256];
        unsigned n = 0;
        void *dev = NULL;
        if (driver && driver(text, sizeof(text)) == 0) {
            text[sizeof(text) - 1] = '\0';
            put_str(w, "gpu_driver", text);
        }
        if (count && count(&n) == 0)
            put_u64(w, "gpu_count", n);
        if (n && handle && name && handle(0, &dev) == 0 && name(dev, text, sizeof(text)) == 0) {
            text[sizeof(text) - 1] = '\0';
            put_str(w, "gpu_model", text);
        }
        if (shutdown)
            shutdown();
    }
    dlclose(lib);
}

/* The Python process: its interpreter and the folders its packages come from. */
struct pyproc {
    int pid;
    char exe[PATH_MAX];
    char version[16]; /* "3.12" from the file names */
    char abi[8];      /* "d" debug, "t" free-threaded */
    bool shared;      /* libpython is a shared library */
    char prefix[PATH_MAX];
    char *folders[FINGERPRINT_MAX_FOLDERS];
    size_t nfolders;
};

/* "python3.12", "libpython3.13t.so.1.0": the X.Y version and the ABI letters after it. */
static bool name_version(const char *base, char *ver, size_t nv, char *abi, size_t na)
{
    const char *p = strstr(base, "python");
    if (!p)
        return false;
    p += 6;
    size_t major = strspn(p, "0123456789");
    if (!major || p[major] != '.')
        return false;
    size_t minor = strspn(p + major + 1, "0123456789");
    if (!minor)
        return false;
    snprintf(ver, nv, "%.*s", (int)(major + 1 + minor), p);
    const char *a = p + major + 1 + minor;
    snprintf(abi, na, "%.*s", (int)strspn(a, "dmt"), a);
    return true;
}

static void add_folder(struct pyproc *py, const char *dir)
{
    struct stat sb;
    if (py->nfolders == FINGERPRINT_MAX_FOLDERS || !dir[0] || stat(dir, &sb) != 0 ||
        !S_ISDIR(sb.st_mode))
        return;
    for (size_t i = 0; i < py->nfolders; i++)
        if (strcmp(py->folders[i], dir) == 0)
            return;
    py->folders[py->nfolders++] = xstrdup(dir);
}

/* The folders of the mapped files under site-packages/ or dist-packages/ (extension modules
 * in use: the folders the process really imports from), and whether libpython is mapped. */
static void scan_maps(struct pyproc *py)
{
    char path[64], line[PATH_MAX + 128];
    snprintf(path, sizeof(path), "/proc/%d/maps", py->pid);
    FILE *f = fopen(path, "re");
    if (!f)
        return;
    for (int lines = 0; lines < 200000 && fgets(line, sizeof(line), f); lines++) {
        line[strcspn(line, "\n")] = '\0';
        const char *file = strchr(line, '/');
        if (!file)
            continue;
        const char *base = strrchr(file, '/') + 1;
        if (strncmp(base, "libpython", 9) == 0 && strstr(base, ".so")) {
            py->shared = true;
            if (!py->version[0])
                name_version(base, py->version, sizeof(py->version), py->abi, sizeof(py->abi));
        }
        const char *sp = strstr(file, "/site-packages/");
        const char *dp = strstr(file, "/dist-packages/");
        const char *end = sp ? sp + 14 : dp ? dp + 14 : NULL;
        if (end) {
            char dir[PATH_MAX];
            snprintf(dir, sizeof(dir), "%.*s", (int)(end - file), file);
            add_folder(py, dir);
        }
    }
    fclose(f);
}

/* Reads a whole /proc/PID file of NUL-separated strings (cmdline, environ), at most `cap`
 * bytes; returns a new buffer (the caller frees it) and its length, or NULL. */
static char *read_proc_strings(int pid, const char *what, size_t cap, size_t *len)
{
    char path[64];
    snprintf(path, sizeof(path), "/proc/%d/%s", pid, what);
    FILE *f = fopen(path, "re");
    if (!f)
        return NULL;
    char *data = xmalloc(cap + 1);
    *len = fread(data, 1, cap, f);
    fclose(f);
    data[*len] = '\0';
    return data;
}

static const char *env_get(const char *env, size_t len, const char *name)
{
    size_t n = strlen(name);
    for (const char *p = env; p < env + len; p += strlen(p) + 1)
        if (strncmp(p, name, n) == 0 && p[n] == '=')
            return p + n + 1;
    return NULL;
}

static void add_site(struct pyproc *py, const char *prefix, const char *fmt)
{
    char dir[PATH_MAX];
    if (snprintf(dir, sizeof(dir), fmt, prefix, py->version) < (int)sizeof(dir))
        add_folder(py, dir);
}

/* A virtual environment the process runs in: VIRTUAL_ENV, or the folder above argv[0]'s
 * bin/ when it holds pyvenv.cfg (/proc/PID/exe names the base interpreter, not the venv). */
static void venv_folders(struct pyproc *py, const char *env, size_t envlen)
{
    const char *venv = env ? env_get(env, envlen, "VIRTUAL_ENV") : NULL;
    if (venv)
        add_site(py, venv, "%s/lib/python%s/site-packages");
    size_t n;
    char *cmd = read_proc_strings(py->pid, "cmdline", PATH_MAX, &n);
    if (cmd && strchr(cmd, '/')) {
        char cwd_link[64], cwd[PATH_MAX] = "", root[PATH_MAX], cfg[PATH_MAX + 16];
        snprintf(cwd_link, sizeof(cwd_link), "/proc/%d/cwd", py->pid);
        ssize_t l = readlink(cwd_link, cwd, sizeof(cwd) - 1);
        cwd[l > 0 ? l : 0] = '\0';
        bool abs = cmd[0] == '/';
        int len = snprintf(root, sizeof(root), "%s%s%s", abs ? "" : cwd, abs ? "" : "/", cmd);
        for (int up = 0; len < (int)sizeof(root) && up < 2; up++) {
            char *slash = strrchr(root, '/');
            if (slash)
                *slash = '\0';
        }
        snprintf(cfg, sizeof(cfg), "%s/pyvenv.cfg", root);
        if (access(cfg, R_OK) == 0)
            add_site(py, root, "%s/lib/python%s/site-packages");
    }
    free(cmd);
}

/* Where a process's packages can come from, roughly in sys.path order: folders in use (maps),
 * PYTHONPATH, a virtual environment, the user's site, the interpreter's prefix (with Debian's
 * dist-packages). */
static void find_folders(struct pyproc *py)
{
    scan_maps(py);
    size_t envlen = 0;
    char *env = read_proc_strings(py->pid, "environ", 1 << 18, &envlen);
    const char *pp = env ? env_get(env, envlen, "PYTHONPATH") : NULL;
    for (const char *p = pp; p && *p;) {
        size_t len = strcspn(p, ":");
        char dir[PATH_MAX];
        snprintf(dir, sizeof(dir), "%.*s", (int)len, p);
        if (dir[0] == '/')
            add_folder(py, dir);
        p += len + (p[len] == ':');
    }
    if (!py->version[0]) {
        free(env);
        return;
    }
    venv_folders(py, env, envlen);
    const char *home = env ? env_get(env, envlen, "HOME") : NULL;
    if (home && !(env && env_get(env, envlen, "PYTHONNOUSERSITE")))
        add_site(py, home, "%s/.local/lib/python%s/site-packages");
    free(env);
    if (py->prefix[0]) {
        add_site(py, py->prefix, "%s/lib/python%s/site-packages");
        add_site(py, py->prefix, "%s/local/lib/python%s/dist-packages");
        add_site(py, py->prefix, "%s/lib/python3/dist-packages");
    }
}

/* The version in a METADATA or PKG-INFO file: its "Version:" header. */
static bool metadata_version(const char *path, char *out, size_t n)
{
    FILE *f = fopen(path, "re");
    if (!f)
        return false;
    char line[512];
    bool found = false;
    for (int lines = 0; !found && lines < 200 && fgets(line, sizeof(line), f); lines++) {
        if (line[0] == '\n' || line[0] == '\r')
            break; /* the headers end at the first blank line */
        if (strncmp(line, "Version:", 8) == 0) {
            const char *v = line + 8 + strspn(line + 8, " \t");
            snprintf(out, n, "%.*s", (int)strcspn(v, "\r\n"), v);
            found = out[0] != '\0';
        }
    }
    fclose(f);
    return found;
}

/* "numpy-1.26.4.dist-info", "numpy-1.24.2.egg-info", "onnxruntime_gpu-1.17.1.dist-info":
 * which package (index, or -1), the variant after '_' ("gpu") and where the version starts. */
static int match_dist(const char *entry, char *variant, size_t nv, const char **ver)
{
    size_t n = strlen(entry);
    bool dist = n > 10 && strcmp(entry + n - 10, ".dist-info") == 0;
    bool egg = n > 9 && strcmp(entry + n - 9, ".egg-info") == 0;
    if (!dist && !egg)
        return -1;
    const char *dash = strchr(entry, '-');
    if (!dash)
        return -1;
    for (size_t i = 0; i < NPACKAGES; i++) {
        size_t pl = strlen(packages[i]);
        if (strncasecmp(entry, packages[i], pl) != 0)
            continue;
        /* onnxruntime comes as onnxruntime_gpu, _directml, _openvino ... (numpy_financial is
         * not numpy) */
        const char *rest = entry + pl;
        if (rest != dash && (*rest != '_' || strcmp(packages[i], "onnxruntime") != 0))
            continue;
        snprintf(variant, nv, "%.*s", rest == dash ? 0 : (int)(dash - rest - 1), rest + 1);
        *ver = dash + 1;
        return (int)i;
    }
    return -1;
}

static void dist_version(const char *folder, const char *entry, const char *ver, char *out,
                         size_t n)
{
    char path[PATH_MAX];
    bool dist = strstr(entry, ".dist-info") != NULL;
    snprintf(path, sizeof(path), "%s/%s/%s", folder, entry, dist ? "METADATA" : "PKG-INFO");
    if (metadata_version(path, out, n))
        return;
    snprintf(path, sizeof(path), "%s/%s", folder, entry);
    if (metadata_version(path, out, n)) /* an egg-info file rather than a folder */
        return;
    /* the name's own version: up to "-py3.11" or the suffix */
    size_t len = strcspn(ver, "-");
    const char *suffix = strstr(ver, dist ? ".dist-info" : ".egg-info");
    if (suffix && (size_t)(suffix - ver) < len)
        len = (size_t)(suffix - ver);
    snprintf(out, n, "%.*s", (int)len, ver);
}

/* Fills the versions not found yet from one folder's *.dist-info and *.egg-info. */
static void scan_folder(const char *folder, char versions[][96])
{
    DIR *d = opendir(folder);
    if (!d)
        return;
    struct dirent *e;
    for (int entries = 0; entries < 50000 && (e = readdir(d)) != NULL; entries++) {
        char variant[32];
        const char *ver;
        int i = match_dist(e->d_name, variant, sizeof(variant), &ver);
        if (i < 0 || versions[i][0])
            continue;
        char v[64];
        dist_version(folder, e->d_name, ver, v, sizeof(v));
        int len = variant[0] ? snprintf(versions[i], sizeof(versions[i]), "%s (%s)", v, variant)
                             : snprintf(versions[i], sizeof(versions[i]), "%s", v);
        if (len >= (int)sizeof(versions[i]))
            versions[i][sizeof(versions[i]) - 1] = '\0';
    }
    closedir(d);
}

static void python_version_fallback(struct pyproc *py)
{
    if (py->version[0] || !py->prefix[0])
        return;
    char pattern[PATH_MAX];
    glob_t g;
    if (snprintf(pattern, sizeof(pattern), "%s/lib/python3.*/", py->prefix) >= (int)sizeof(pattern))
        return;
    if (glob(pattern, GLOB_ONLYDIR, NULL, &g) == 0 && g.gl_pathc == 1) {
        const char *p = strstr(g.gl_pathv[0] + strlen(py->prefix), "python");
        char abi[8];
        if (p)
            name_version(p, py->version, sizeof(py->version), abi, sizeof(abi));
    }
    globfree(&g);
}

static void python_facts(struct jsonw *w, int pid, const char *version)
{
    struct pyproc py = {.pid = pid};
    char link[64];
    snprintf(link, sizeof(link), "/proc/%d/exe", pid);
    ssize_t n = readlink(link, py.exe, sizeof(py.exe) - 1);
    py.exe[n > 0 ? n : 0] = '\0';
    char *deleted = strstr(py.exe, " (deleted)");
    if (deleted)
        *deleted = '\0';
    const char *base = strrchr(py.exe, '/');
    if (base)
        name_version(base + 1, py.version, sizeof(py.version), py.abi, sizeof(py.abi));
    /* PREFIX/bin/pythonX.Y */
    if (base && base - py.exe > 4 && strncmp(base - 4, "/bin", 4) == 0)
        snprintf(py.prefix, sizeof(py.prefix), "%.*s", (int)(base - 4 - py.exe), py.exe);
    if (py.prefix[0] == '\0' && base == py.exe + 4 && strncmp(py.exe, "/bin", 4) == 0)
        snprintf(py.prefix, sizeof(py.prefix), "/");
    find_folders(&py);
    python_version_fallback(&py);
    put_str(w, "python_version", version && version[0] ? version : py.version);
    char build[32];
    snprintf(build, sizeof(build), "%s%s%s", py.shared ? "shared" : "static",
             strchr(py.abi, 'd') ? "-debug" : "", strchr(py.abi, 't') ? "-freethreaded" : "");
    if (py.exe[0])
        put_str(w, "python_build", build);
    put_str(w, "python_exe", py.exe);
    put_str(w, "python_prefix", py.prefix);
    struct buf sites;
    buf_init(&sites, 0);
    char versions[NPACKAGES][96] = {{0}};
    for (size_t i = 0; i < py.nfolders; i++) {
        if (buf_printf(&sites, "%s%s", i ? ":" : "", py.folders[i]))
            break;
        scan_folder(py.folders[i], versions);
    }
    put_str(w, "site_packages", buf_cstr(&sites));
    buf_fini(&sites);
    for (size_t i = 0; i < NPACKAGES; i++) {
        char key[64];
        snprintf(key, sizeof(key), "pkg_%s", packages[i]);
        put_str(w, key, versions[i]);
    }
    for (size_t i = 0; i < py.nfolders; i++)
        free(py.folders[i]);
}

void fingerprint_collect(int pid, const char *python_version, char **json, char **hash)
{
    struct buf b;
    buf_init(&b, 1 << 20);
    struct jsonw w;
    jsonw_init(&w, &b, 0);
    jsonw_obj_begin(&w);
    system_facts(&w);
    cpu_facts(&w);
    cgroup_facts(&w);
    gpu_facts(&w);
    if (pid > 0)
        python_facts(&w, pid, python_version);
    jsonw_obj_end(&w);
    if (jsonw_error(&w)) {
        buf_reset(&b);
        if (buf_puts(&b, "{}"))
            buf_reset(&b);
    }
    *json = buf_take(&b, NULL);
    if (!*json)
        *json = xstrdup("{}");
    *hash = fingerprint_hash(*json, false);
    if (!*hash)
        *hash = xstrdup("000000000000");
}

/* FNV-1a, 64 bits. */
static uint64_t fnv(uint64_t h, const char *s)
{
    for (; *s; s++) {
        h ^= (unsigned char)*s;
        h *= 1099511628211ull;
    }
    return h;
}

static uint64_t hash_key(uint64_t h, const cJSON *obj, const char *key)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, key);
    if (!v || cJSON_IsNull(v))
        return h;
    char num[64];
    const char *text = NULL;
    char *printed = NULL;
    if (cJSON_IsString(v)) {
        text = v->valuestring;
    } else if (cJSON_IsNumber(v)) {
        snprintf(num, sizeof(num), "%.17g", v->valuedouble);
        text = num;
    } else if (cJSON_IsBool(v)) {
        text = cJSON_IsTrue(v) ? "true" : "false";
    } else {
        text = printed = cJSON_PrintUnformatted(v);
    }
    h = fnv(h, key);
    h = fnv(h, "=");
    h = fnv(h, text ? text : "");
    h = fnv(h, "\n");
    cJSON_free(printed);
    return h;
}

char *fingerprint_hash(const char *json, bool machine_only)
{
    cJSON *obj = json ? cJSON_Parse(json) : NULL;
    if (!cJSON_IsObject(obj)) {
        cJSON_Delete(obj);
        return NULL;
    }
    uint64_t h = 14695981039346656037ull;
    for (size_t i = 0; i < sizeof(machine_keys) / sizeof(machine_keys[0]); i++)
        h = hash_key(h, obj, machine_keys[i]);
    for (size_t i = 0; !machine_only && i < sizeof(python_keys) / sizeof(python_keys[0]); i++)
        h = hash_key(h, obj, python_keys[i]);
    cJSON_Delete(obj);
    char *out = xmalloc(FINGERPRINT_HASH_LEN + 1);
    snprintf(out, FINGERPRINT_HASH_LEN + 1, "%012llx", (unsigned long long)(h >> 16));
    return out;
}
