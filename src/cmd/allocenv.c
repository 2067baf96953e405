// SPDX-License-Identifier: MIT
// record --allocations' environment (allocenv.h).
#include "cmd/allocenv.h"

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "util/xalloc.h"

static const char *const VARS[ALLOCENV_VARS] = {"LD_PRELOAD",          "PYTHONPATH",
                                                "CRUX_ALLOCATIONS",    "CRUX_ALLOC_SHIM",
                                                "CRUX_AGENT_ATTACHED", "CRUX_COPIES"};

int allocenv_parse(const char *arg, char *out, size_t cap)
{
    if (!arg) {
        snprintf(out, cap, "%u", ALLOCENV_DEFAULT_BYTES);
        return 0;
    }
    if (!strcmp(arg, "all")) {
        snprintf(out, cap, "all");
        return 0;
    }
    char *end = NULL;
    unsigned long long v = strtoull(arg, &end, 10);
    if (end == arg)
        return ERR_ARG;
    unsigned long long mul = 1;
    if (*end == 'K' || *end == 'k')
        mul = 1024;
    else if (*end == 'M' || *end == 'm')
        mul = 1024 * 1024;
    else if (*end == 'G' || *end == 'g')
        mul = 1024ull * 1024 * 1024;
    if (mul > 1)
        end++;
    if (*end || !v || v > (1ull << 40) / mul)
        return ERR_ARG;
    snprintf(out, cap, "%llu", v * mul);
    return 0;
}

/* The agent's directory: $CRUX_AGENT_DIR, else agent/ beside the executable or one up
 * (build/crux and build/asan/crux both find build/agent). */
static int agent_dir(char *out, size_t cap)
{
    const char *env = getenv("CRUX_AGENT_DIR");
    char path[PATH_MAX];
    if (env && *env) {
        int k = snprintf(out, cap, "%s", env);
        if (k < 0 || (size_t)k >= cap)
            return ERR_NOT_FOUND;
        k = snprintf(path, sizeof(path), "%s/libcrux_alloc.so", out);
        return k > 0 && (size_t)k < sizeof(path) && access(path, R_OK) == 0 ? 0 : ERR_NOT_FOUND;
    }
    char exe[PATH_MAX - 64];
    ssize_t n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
    if (n <= 0)
        return ERR_NOT_FOUND;
    exe[n] = '\0';
    char *slash = strrchr(exe, '/');
    if (!slash)
        return ERR_NOT_FOUND;
    *slash = '\0';
    for (int up = 0; up < 2; up++) {
        int k = snprintf(path, sizeof(path), "%s/agent/libcrux_alloc.so", exe);
        if (k > 0 && (size_t)k < sizeof(path) && access(path, R_OK) == 0) {
            k = snprintf(out, cap, "%s/agent", exe);
            return k > 0 && (size_t)k < cap ? 0 : ERR_NOT_FOUND;
        }
        slash = strrchr(exe, '/');
        if (!slash)
            break;
        *slash = '\0';
    }
    return ERR_NOT_FOUND;
}

int allocenv_agent_dir(char *out, size_t cap)
{
    return agent_dir(out, cap);
}

static void prepend(const char *var, const char *value, char sep)
{
    const char *old = getenv(var);
    if (!old || !*old) {
        setenv(var, value, 1);
        return;
    }
    size_t n = strlen(value) + strlen(old) + 2;
    char *s = xmalloc(n);
    snprintf(s, n, "%s%c%s", value, sep, old);
    setenv(var, s, 1);
    free(s);
}

int allocenv_setup(struct allocenv *e, const char *value, struct errbuf *eb)
{
    memset(e, 0, sizeof(*e));
    char dir[PATH_MAX - 64];
    if (agent_dir(dir, sizeof(dir)))
        return errbuf_set(eb, ERR_NOT_FOUND,
                          "--allocations needs crux's agent (libcrux_alloc.so): build it with "
                          "`make agent`, or set CRUX_AGENT_DIR to the directory it is in");
    for (int i = 0; i < ALLOCENV_VARS; i++) {
        const char *old = getenv(VARS[i]);
        e->old[i] = old ? xstrdup(old) : NULL;
    }
    e->set = 1;
    char path[PATH_MAX], me[24];
    int k = snprintf(path, sizeof(path), "%s/libcrux_alloc.so", dir);
    if (k > 0 && (size_t)k < sizeof(path)) {
        prepend("LD_PRELOAD", path, ':');
        setenv("CRUX_ALLOC_SHIM", path, 1);
    }
    k = snprintf(path, sizeof(path), "%s/boot", dir);
    if (k > 0 && (size_t)k < sizeof(path))
        prepend("PYTHONPATH", path, ':');
    setenv("CRUX_ALLOCATIONS", value, 1);
    /* copy volume rides along; the user's $CRUX_COPIES (bytes, 0 = off) wins */
    const char *copies = getenv("CRUX_COPIES");
    if (!copies || !*copies) {
        char cb[24];
        snprintf(cb, sizeof(cb), "%u", ALLOCENV_COPY_BYTES);
        setenv("CRUX_COPIES", cb, 1);
    }
    /* the agent records from its import on when its parent is the recorder */
    snprintf(me, sizeof(me), "%d", (int)getpid());
    setenv("CRUX_AGENT_ATTACHED", me, 1);
    return 0;
}

void allocenv_restore(struct allocenv *e)
{
    if (!e->set)
        return;
    for (int i = 0; i < ALLOCENV_VARS; i++) {
        if (e->old[i])
            setenv(VARS[i], e->old[i], 1);
        else
            unsetenv(VARS[i]);
        free(e->old[i]);
    }
    memset(e, 0, sizeof(*e));
}
