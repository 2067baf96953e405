// SPDX-License-Identifier: MIT
// record --allocations --pid (allocattach.h): injection of libcrux_attach.so, then a bounded
// wait for its thread's report in a status file.
#include "cmd/allocattach.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cmd/allocenv.h"

static uint64_t mono_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

/* Waits for the status file to hold a report; 0 for "ok", else ERR_SYS with the report. */
static int wait_status(const char *path, uint64_t deadline, char *msg, size_t cap, char *native,
                       size_t native_cap)
{
    for (;;) {
        char text[400] = "";
        int fd = open(path, O_RDONLY | O_CLOEXEC);
        ssize_t n = fd >= 0 ? read(fd, text, sizeof(text) - 1) : -1;
        if (fd >= 0)
            close(fd);
        if (n > 0) {
            text[n] = '\0';
            if (!strcmp(text, "ok") || !strncmp(text, "ok ", 3)) {
                /* "ok native=...": what was hooked, for --stats */
                snprintf(native, native_cap, "%.150s", text[2] ? text + 3 : "native=unknown");
                return 0;
            }
            snprintf(msg, cap, "the agent could not start in the target: %s", text);
            return ERR_SYS;
        }
        if (mono_us() >= deadline) {
            snprintf(msg, cap,
                     "the agent's thread did not get the GIL within %d s (a C extension holding "
                     "it?): nothing was hooked; try again",
                     ALLOCATTACH_STATUS_WAIT_US / 1000000);
            return ERR_AGAIN;
        }
        struct timespec ts = {0, 1000000};
        nanosleep(&ts, NULL);
    }
}

/* The library, the engine and the argument string for the entry; 0 or ERR_NOT_FOUND. */
static int paths(const char *value, const char *status, char *lib, char *arg, size_t cap)
{
    char dir[PATH_MAX - 64], real[PATH_MAX], shim[PATH_MAX];
    if (allocenv_agent_dir(dir, sizeof(dir)) || !realpath(dir, real) ||
        strlen(real) > PATH_MAX - 64 || strchr(real, '\n'))
        return ERR_NOT_FOUND;
    int k = snprintf(lib, PATH_MAX, "%.*s/libcrux_attach.so", PATH_MAX - 64, real);
    if (k < 0 || snprintf(shim, sizeof(shim), "%.*s/libcrux_alloc.so", PATH_MAX - 64, real) < 0 ||
        access(lib, R_OK))
        return ERR_NOT_FOUND;
    const char *bytes = strcmp(value, "all") ? value : "0";
    k = snprintf(arg, cap, "%s\n%s\n%s\n%s", real, shim, bytes, status);
    return k > 0 && (size_t)k < cap ? 0 : ERR_NOT_FOUND;
}

int allocattach_start(pid_t pid, const char *value, struct allocattach *at)
{
    memset(at, 0, sizeof(*at));
    struct inject_env env;
    inject_probe(pid, &env);
    int rc = inject_explain(0, pid, &env, NULL, at->msg, sizeof(at->msg));
    if (rc)
        return rc;
    char status[128], lib[PATH_MAX], arg[INJECT_ARG_MAX];
    snprintf(status, sizeof(status), "/dev/shm/crux-attach-%d-%d", (int)getpid(), (int)pid);
    if (paths(value, status, lib, arg, sizeof(arg))) {
        snprintf(at->msg, sizeof(at->msg),
                 "--allocations --pid needs crux's agent (libcrux_attach.so): build it with "
                 "`make agent`, or set CRUX_AGENT_DIR to the directory it is in");
        return ERR_NOT_FOUND;
    }
    unlink(status);
    int fd = open(status, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (fd < 0) {
        snprintf(at->msg, sizeof(at->msg), "cannot create %s: %s", status, strerror(errno));
        return ERR_IO;
    }
    close(fd);
    struct errbuf eb = {{0}};
    uint64_t t0 = mono_us();
    rc = inject_library(pid, lib, "crux_attach_kick", arg, &at->inject, &eb);
    if (rc) {
        rc = inject_explain(rc, pid, &env, eb.msg, at->msg, sizeof(at->msg));
    } else if (at->inject.entry_ret) {
        snprintf(at->msg, sizeof(at->msg),
                 "cannot attach to process %d for allocations: the agent's thread could not "
                 "start (%s)",
                 (int)pid, strerror((int)-at->inject.entry_ret));
        rc = ERR_SYS;
    } else {
        rc = wait_status(status, mono_us() + ALLOCATTACH_STATUS_WAIT_US, at->msg, sizeof(at->msg),
                         at->native, sizeof(at->native));
    }
    at->total_us = mono_us() - t0;
    unlink(status);
    return rc;
}
