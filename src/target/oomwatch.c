// SPDX-License-Identifier: MIT
// The OOM-kill counter (oomwatch.h).
#include "target/oomwatch.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

bool oomwatch_parse(const char *vmstat, uint64_t *kills)
{
    for (const char *s = vmstat; s && *s;) {
        if (!strncmp(s, "oom_kill ", 9)) {
            char *end = NULL;
            unsigned long long v = strtoull(s + 9, &end, 10);
            if (end == s + 9)
                return false;
            *kills = v;
            return true;
        }
        s = strchr(s, '\n');
        s = s ? s + 1 : NULL;
    }
    return false;
}

/* /proc/vmstat is about 4 KiB of "name value" lines. */
static bool read_kills(uint64_t *kills)
{
    FILE *f = fopen("/proc/vmstat", "re");
    if (!f)
        return false;
    char text[16384];
    size_t n = fread(text, 1, sizeof(text) - 1, f);
    fclose(f);
    text[n] = '\0';
    return oomwatch_parse(text, kills);
}

bool oomwatch_exiting(int pid)
{
    char path[64], text[1024];
    snprintf(path, sizeof(path), "/proc/%d/stat", pid);
    FILE *f = fopen(path, "re");
    if (!f)
        return false;
    size_t n = fread(text, 1, sizeof(text) - 1, f);
    fclose(f);
    text[n] = '\0';
    /* fields after the command name, "(comm)", which may hold spaces: state ppid pgrp session
     * tty_nr tpgid flags */
    const char *s = strrchr(text, ')');
    char state = 0;
    unsigned long flags = 0;
    if (!s || sscanf(s + 1, " %c %*d %*d %*d %*d %*d %lu", &state, &flags) != 2)
        return false;
    return (flags & 0x4) != 0; /* PF_EXITING */
}

void oomwatch_start(struct oomwatch *w)
{
    w->kills0 = 0;
    w->known = read_kills(&w->kills0);
}

int64_t oomwatch_kills(const struct oomwatch *w)
{
    uint64_t now = 0;
    if (!w->known || !read_kills(&now) || now < w->kills0)
        return -1;
    return (int64_t)(now - w->kills0);
}
