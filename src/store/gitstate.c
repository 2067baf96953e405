// SPDX-License-Identifier: MIT
// git commit and dirty state of the cwd (gitstate.h): git runs as a child through
// posix_spawnp (no shell, so no quoting of paths), its stdout read through a pipe until EOF or
// the deadline; a git that hangs (a network file system, a huge tree) is killed.
#include "store/gitstate.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "util/xalloc.h"

extern char **environ;

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static pid_t spawn(char *const argv[], int out_fd)
{
    posix_spawn_file_actions_t fa;
    posix_spawnattr_t at;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
    posix_spawn_file_actions_adddup2(&fa, out_fd, 1);
    posix_spawn_file_actions_addopen(&fa, 2, "/dev/null", O_WRONLY, 0);
    /* crux ignores SIGPIPE (load) and its threads may block signals: git gets the defaults. */
    posix_spawnattr_init(&at);
    sigset_t none, dfl;
    sigemptyset(&none);
    sigemptyset(&dfl);
    sigaddset(&dfl, SIGPIPE);
    sigaddset(&dfl, SIGINT);
    sigaddset(&dfl, SIGTERM);
    posix_spawnattr_setsigmask(&at, &none);
    posix_spawnattr_setsigdefault(&at, &dfl);
    posix_spawnattr_setflags(&at, POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF);
    pid_t pid = -1;
    if (posix_spawnp(&pid, argv[0], &fa, &at, argv, environ) != 0)
        pid = -1;
    posix_spawnattr_destroy(&at);
    posix_spawn_file_actions_destroy(&fa);
    return pid;
}

/* Reads `fd` until EOF or the deadline, keeping the first `cap` bytes (the rest is drained so
 * that the child never blocks on a full pipe). Returns false at the deadline. */
static bool read_until(int fd, double deadline, char *out, size_t cap, size_t *len)
{
    char scratch[4096];
    for (;;) {
        double left = deadline - now_s();
        if (left <= 0)
            return false;
        struct pollfd pfd = {.fd = fd, .events = POLLIN};
        int pr = poll(&pfd, 1, (int)(left * 1000) + 1);
        if (pr < 0 && errno != EINTR)
            return false;
        if (pr <= 0)
            continue;
        bool keep = *len < cap;
        ssize_t n = keep ? read(fd, out + *len, cap - *len) : read(fd, scratch, sizeof(scratch));
        if (n == 0)
            return true;
        if (n < 0 && errno != EINTR && errno != EAGAIN)
            return true;
        if (n > 0 && keep)
            *len += (size_t)n;
    }
}

char *gitstate_run(char *const argv[], double timeout_s, size_t cap)
{
    int fds[2];
    if (pipe2(fds, O_CLOEXEC) != 0)
        return NULL;
    pid_t pid = spawn(argv, fds[1]);
    close(fds[1]);
    if (pid < 0) {
        close(fds[0]);
        return NULL;
    }
    char *out = xmalloc(cap + 1);
    size_t len = 0;
    bool done = read_until(fds[0], now_s() + timeout_s, out, cap, &len);
    close(fds[0]);
    if (!done)
        kill(pid, SIGKILL);
    int status = 0;
    while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
        ;
    if (!done || !WIFEXITED(status) || WEXITSTATUS(status) != 0) {
        free(out);
        return NULL;
    }
    out[len] = '\0';
    return out;
}

/* The store folder as a pathspec to exclude: only a path inside the cwd can be one (git
 * refuses a pathspec outside the work tree, and the whole status with it). */
static bool exclude_spec(const char *dir, char *out, size_t n)
{
    if (!dir || !dir[0] || dir[0] == '/' || strncmp(dir, "..", 2) == 0)
        return false;
    return snprintf(out, n, ":(exclude)%s", dir) < (int)n;
}

char *gitstate_head(const char *ignore_dir, bool *dirty)
{
    *dirty = false;
    char *head_argv[] = {"git", "rev-parse", "--verify", "-q", "HEAD", NULL};
    char *head = gitstate_run(head_argv, GITSTATE_TIMEOUT_S, 256);
    if (!head)
        return NULL;
    head[strcspn(head, "\r\n")] = '\0';
    if (strlen(head) < 7 || strspn(head, "0123456789abcdef") != strlen(head)) {
        free(head);
        return NULL;
    }
    /* --no-optional-locks: status would otherwise refresh the index under index.lock and
     * could make the user's own git command fail at the same moment. */
    char spec[4200];
    char *status_argv[] = {"git", "--no-optional-locks", "status", "--porcelain", "--",
                           ":/",  ":(exclude).crux",     spec,     NULL};
    if (!exclude_spec(ignore_dir, spec, sizeof(spec)))
        status_argv[7] = NULL;
    char *st = gitstate_run(status_argv, GITSTATE_TIMEOUT_S, 1 << 16);
    /* A status that cannot be read cannot vouch for the tree: counted as dirty. */
    *dirty = !st || st[0];
    free(st);
    return head;
}
