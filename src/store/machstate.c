// SPDX-License-Identifier: MIT
// The machine's state at a moment (machstate.h): load averages and run queue from the kernel,
// and the processes that used the most CPU over a short interval, from two reads of
// /proc/PID/stat.
#include "store/machstate.h"

#include <dirent.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "util/buf.h"
#include "util/jsonw.h"
#include "util/xalloc.h"

#define LINE_MAX_LEN 1024

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

struct cpu_use {
    int pid;
    uint64_t ticks; /* utime + stime */
};

/* utime + stime of /proc/PID/stat, and the command name (may be NULL); false when gone. */
static bool proc_ticks(int pid, uint64_t *ticks, char *comm, size_t n)
{
    char path[64], line[1024];
    snprintf(path, sizeof(path), "/proc/%d/stat", pid);
    FILE *f = fopen(path, "re");
    if (!f)
        return false;
    bool ok = fgets(line, sizeof(line), f) != NULL;
    fclose(f);
    /* the name is in parentheses and may hold spaces and ')': the fields follow the last ')' */
    char *open = ok ? strchr(line, '(') : NULL, *close = ok ? strrchr(line, ')') : NULL;
    if (!open || !close || close < open)
        return false;
    unsigned long long ut, st;
    if (sscanf(close + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu", &ut, &st) != 2)
        return false;
    *ticks = ut + st;
    if (comm)
        snprintf(comm, n, "%.*s", (int)(close - open - 1), open + 1);
    return true;
}

static size_t list_pids(struct cpu_use *v, size_t cap)
{
    DIR *d = opendir("/proc");
    if (!d)
        return 0;
    size_t n = 0;
    int self = (int)getpid();
    struct dirent *e;
    while (n < cap && (e = readdir(d)) != NULL) {
        char *end;
        long pid = strtol(e->d_name, &end, 10);
        if (*end || pid <= 0 || pid == self)
            continue;
        v[n].pid = (int)pid;
        if (proc_ticks((int)pid, &v[n].ticks, NULL, 0))
            n++;
    }
    closedir(d);
    return n;
}

static void busiest(struct jsonw *w)
{
    struct cpu_use *v = xcalloc(MACHSTATE_MAX_PIDS, sizeof(*v));
    size_t n = list_pids(v, MACHSTATE_MAX_PIDS);
    struct timespec pause = {0, MACHSTATE_MS * 1000000L};
    nanosleep(&pause, NULL);
    struct top {
        int pid;
        uint64_t ticks;
        char comm[64];
    } top[3] = {{0}};
    for (size_t i = 0; i < n; i++) {
        uint64_t now;
        char comm[64];
        if (!proc_ticks(v[i].pid, &now, comm, sizeof(comm)) || now <= v[i].ticks)
            continue;
        uint64_t used = now - v[i].ticks;
        size_t at = 3;
        while (at > 0 && used > top[at - 1].ticks)
            at--;
        if (at == 3)
            continue;
        memmove(&top[at + 1], &top[at], (2 - at) * sizeof(top[0]));
        top[at].pid = v[i].pid;
        top[at].ticks = used;
        snprintf(top[at].comm, sizeof(top[at].comm), "%s", comm);
    }
    free(v);
    double hz = (double)sysconf(_SC_CLK_TCK);
    jsonw_key(w, "busiest");
    jsonw_arr_begin(w);
    for (size_t i = 0; i < 3 && top[i].ticks; i++) {
        jsonw_obj_begin(w);
        put_u64(w, "pid", (uint64_t)top[i].pid);
        put_str(w, "name", top[i].comm);
        jsonw_key(w, "cpu"); /* CPUs used over the interval: 1.0 is one CPU all the time */
        jsonw_double(w, (double)top[i].ticks / (hz > 0 ? hz : 100) / (MACHSTATE_MS / 1e3));
        jsonw_obj_end(w);
    }
    jsonw_arr_end(w);
}

static void proc_stat(struct jsonw *w)
{
    FILE *f = fopen("/proc/stat", "re");
    if (!f)
        return;
    char line[LINE_MAX_LEN];
    unsigned long long v;
    while (fgets(line, sizeof(line), f)) {
        if (sscanf(line, "procs_running %llu", &v) == 1)
            put_u64(w, "procs_running", v);
        else if (sscanf(line, "procs_blocked %llu", &v) == 1)
            put_u64(w, "procs_blocked", v);
    }
    fclose(f);
}

char *machstate_now(void)
{
    struct buf b;
    buf_init(&b, 1 << 20);
    struct jsonw w;
    jsonw_init(&w, &b, 0);
    jsonw_obj_begin(&w);
    double load[3];
    if (getloadavg(load, 3) == 3) {
        static const char *const keys[] = {"load1", "load5", "load15"};
        for (int i = 0; i < 3; i++) {
            jsonw_key(&w, keys[i]);
            jsonw_double(&w, load[i]);
        }
    }
    proc_stat(&w);
    jsonw_key(&w, "interval_ms");
    jsonw_u64(&w, MACHSTATE_MS);
    busiest(&w);
    jsonw_obj_end(&w);
    char *out = jsonw_error(&w) ? NULL : buf_take(&b, NULL);
    buf_fini(&b);
    return out ? out : xstrdup("{}");
}
