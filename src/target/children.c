// SPDX-License-Identifier: MIT
// Descendants and execs (children.h). Linux has /proc/PID/task/TID/children only with
// CONFIG_PROC_CHILDREN, which common kernels (this one too) lack, so new processes are found
// by their parent pid in /proc/N/stat, and the walk happens only when /proc/loadavg says a
// process was created since the previous one.
#include "target/children.h"

#include <dirent.h>
#include <elf.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define SCAN_PASSES 4

static ssize_t read_file(const char *path, char *buf, size_t n)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return -1;
    ssize_t got = read(fd, buf, n - 1);
    close(fd);
    if (got < 0)
        return -1;
    buf[got] = 0;
    return got;
}

pid_t children_parse_ppid(const char *line, size_t len)
{
    /* "PID (COMM) STATE PPID ...": COMM may hold spaces and parentheses; the last ')' ends
     * it. */
    const char *close = NULL;
    for (size_t i = len; i > 0; i--) {
        if (line[i - 1] == ')') {
            close = line + i - 1;
            break;
        }
    }
    if (!close || (size_t)(close - line) + 4 >= len)
        return -1;
    const char *p = close + 2; /* state letter */
    if (p[1] != ' ')
        return -1;
    char *end;
    long v = strtol(p + 2, &end, 10);
    if (end == p + 2 || v < 0)
        return -1;
    return (pid_t)v;
}

pid_t children_ppid(pid_t pid)
{
    char path[64], line[1024];
    snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
    ssize_t n = read_file(path, line, sizeof(line));
    return n > 0 ? children_parse_ppid(line, (size_t)n) : -1;
}

static long newest_pid(void)
{
    char text[128];
    if (read_file("/proc/loadavg", text, sizeof(text)) <= 0)
        return -1;
    const char *sp = strrchr(text, ' ');
    return sp ? strtol(sp + 1, NULL, 10) : -1;
}

static bool contains(const pid_t *v, size_t n, pid_t pid)
{
    for (size_t i = 0; i < n; i++)
        if (v[i] == pid)
            return true;
    return false;
}

size_t children_scan(struct childscan *cs, const pid_t *known, size_t n, pid_t *out,
                     pid_t *out_ppid, size_t max)
{
    long newest = newest_pid();
    if (newest >= 0 && newest == cs->last_pid) {
        cs->skipped++;
        return 0;
    }
    cs->last_pid = newest;
    cs->scans++;
    size_t found = 0;
    /* Passes until nothing new: a grandchild may be listed before its parent. */
    for (int pass = 0; pass < SCAN_PASSES; pass++) {
        size_t before = found;
        DIR *d = opendir("/proc");
        if (!d)
            return found;
        struct dirent *e;
        while ((e = readdir(d)) && found < max) {
            char *end;
            long pid = strtol(e->d_name, &end, 10);
            if (*end || pid <= 0)
                continue;
            if (contains(known, n, (pid_t)pid) || contains(out, found, (pid_t)pid))
                continue;
            pid_t ppid = children_ppid((pid_t)pid);
            if (ppid <= 0 || !(contains(known, n, ppid) || contains(out, found, ppid)))
                continue;
            out[found] = (pid_t)pid;
            out_ppid[found] = ppid;
            found++;
        }
        closedir(d);
        if (found == before)
            break;
    }
    return found;
}

uint64_t children_exec_id(pid_t pid)
{
    char path[64];
    snprintf(path, sizeof(path), "/proc/%d/auxv", (int)pid);
    uint64_t v[128];
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return 0;
    ssize_t got = read(fd, v, sizeof(v));
    close(fd);
    for (ssize_t i = 0; i + 1 < got / 8; i += 2)
        if (v[i] == AT_RANDOM)
            return v[i + 1];
    return 0;
}
