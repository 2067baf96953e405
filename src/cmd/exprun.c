// SPDX-License-Identifier: MIT
// crux exp: one run (fork/exec, captured output, wait4 timing) and server lifetimes.
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <openssl/evp.h>

#include "cmd/exprun.h"
#include "util/xalloc.h"

static double mono_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static double unix_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void sleep_ms(int ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

static void to_hex(const unsigned char *md, char hex[65])
{
    for (size_t i = 0; i < 32; i++)
        snprintf(hex + 2 * i, 3, "%02x", md[i]);
}

void exp_sha256_hex(const void *p, size_t n, char hex[65])
{
    unsigned char md[32];
    unsigned int len = 0;
    EVP_Digest(p, n, md, &len, EVP_sha256(), NULL);
    to_hex(md, hex);
}

void exp_capture_fini(struct exp_capture *c)
{
    free(c->data);
    c->data = NULL;
    c->len = 0;
}

/* In the child, before exec: a clean signal state (crux ignores SIGPIPE, and ignored signals
 * stay ignored across exec), death with crux, stdin from /dev/null, the extra environment. */
static void child_setup(char *const *env, bool new_group)
{
    if (new_group)
        setpgid(0, 0);
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    for (int s = 1; s < NSIG; s++)
        signal(s, SIG_DFL);
    sigset_t none;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, NULL);
    int null = open("/dev/null", O_RDONLY);
    if (null >= 0 && null != 0) {
        dup2(null, 0);
        close(null);
    }
    for (char *const *e = env; e && *e; e++)
        putenv(*e);
}

/* Forks and execs `argv`; the child's stdout and stderr go to `out_fd` and `err_fd`. An exec
 * failure comes back through a close-on-exec pipe as errno. */
static int spawn(char *const *argv, char *const *env, int out_fd, int err_fd, bool new_group,
                 pid_t *pid, int *exec_errno)
{
    int st[2];
    if (pipe2(st, O_CLOEXEC) != 0)
        return ERR_SYS;
    pid_t p = fork();
    if (p < 0) {
        close(st[0]);
        close(st[1]);
        return ERR_SYS;
    }
    if (p == 0) {
        close(st[0]);
        child_setup(env, new_group);
        dup2(out_fd, 1);
        dup2(err_fd, 2);
        execvp(argv[0], argv);
        int e = errno;
        ssize_t w = write(st[1], &e, sizeof(e));
        (void)w;
        _exit(127);
    }
    close(st[1]);
    int e = 0;
    ssize_t n;
    do
        n = read(st[0], &e, sizeof(e));
    while (n < 0 && errno == EINTR);
    close(st[0]);
    *exec_errno = n == (ssize_t)sizeof(e) ? e : 0;
    *pid = p;
    return 0;
}

/* The capture's stdout side: hashed whole, kept up to EXP_OUT_CAP. */
struct sink {
    EVP_MD_CTX *md;
    struct exp_capture *c;
    size_t cap;
};

static void sink_put(struct sink *s, const char *p, size_t n)
{
    EVP_DigestUpdate(s->md, p, n);
    size_t room = s->c->len < EXP_OUT_CAP ? EXP_OUT_CAP - s->c->len : 0;
    size_t take = n < room ? n : room;
    if (n > take)
        s->c->truncated = true;
    if (!take)
        return;
    if (s->c->len + take > s->cap) {
        while (s->c->len + take > s->cap)
            s->cap = s->cap ? s->cap * 2 : 65536;
        s->c->data = xrealloc(s->c->data, s->cap + 1);
    }
    memcpy(s->c->data + s->c->len, p, take);
    s->c->len += take;
    s->c->data[s->c->len] = 0;
}

/* Keeps the last EXP_ERR_TAIL bytes of stderr in c->err. */
static void tail_put(struct exp_capture *c, const char *p, size_t n)
{
    if (n >= EXP_ERR_TAIL) {
        memcpy(c->err, p + n - EXP_ERR_TAIL, EXP_ERR_TAIL);
        c->err[EXP_ERR_TAIL] = 0;
        return;
    }
    size_t have = strlen(c->err);
    size_t drop = have + n > EXP_ERR_TAIL ? have + n - EXP_ERR_TAIL : 0;
    memmove(c->err, c->err + drop, have - drop);
    memcpy(c->err + have - drop, p, n);
    c->err[have - drop + n] = 0;
}

/* Whether the child has exited (left unreaped for wait4's rusage). */
static bool exited(pid_t pid)
{
    siginfo_t si;
    memset(&si, 0, sizeof(si));
    return waitid(P_PID, (id_t)pid, &si, WEXITED | WNOHANG | WNOWAIT) == 0 && si.si_pid == pid;
}

/* Reads both pipes until they close; on *stop, asks the child to end, harder each grace. A
 * command that left a background process holding its stdout would keep the pipes open: once
 * the command itself has exited, what is written within EXP_DRAIN_MS more is read, then the
 * run ends. */
static void pump(int out, int err, int err_log, pid_t pid, volatile sig_atomic_t *stop,
                 struct sink *s)
{
    struct pollfd pf[2] = {{out, POLLIN, 0}, {err, POLLIN, 0}};
    char chunk[65536];
    double stop_at = 0, gone_at = 0;
    int sent = 0;
    while (pf[0].fd >= 0 || pf[1].fd >= 0) {
        if (!gone_at && exited(pid))
            gone_at = mono_s();
        if (gone_at && mono_s() - gone_at > EXP_DRAIN_MS / 1e3)
            break;
        if (stop && *stop) {
            double now = mono_s();
            if (!stop_at || now - stop_at > EXP_STOP_GRACE_MS / 1e3) {
                static const int sigs[] = {SIGINT, SIGTERM, SIGKILL};
                kill(pid, sigs[sent < 2 ? sent : 2]);
                sent++;
                stop_at = now;
                s->c->interrupted = true;
            }
        }
        int r = poll(pf, 2, gone_at ? 10 : 100);
        if (r < 0 && errno != EINTR)
            break;
        for (int i = 0; i < 2 && r > 0; i++) {
            if (pf[i].fd < 0 || !pf[i].revents)
                continue;
            ssize_t n = read(pf[i].fd, chunk, sizeof(chunk));
            if (n < 0 && (errno == EINTR || errno == EAGAIN))
                continue;
            if (n <= 0) {
                pf[i].fd = -1;
                continue;
            }
            if (i == 0) {
                sink_put(s, chunk, (size_t)n);
            } else {
                tail_put(s->c, chunk, (size_t)n);
                if (err_log >= 0 && write(err_log, chunk, (size_t)n) < 0)
                    err_log = -1;
            }
        }
    }
}

static int wait_status(int ws)
{
    if (WIFEXITED(ws))
        return WEXITSTATUS(ws);
    if (WIFSIGNALED(ws))
        return 128 + WTERMSIG(ws);
    return -1;
}

/* Pipes, spawn, pump, reap, then the output file: each step's descriptors are closed on the
 * next line, which is clearer in one function than passed between several. */
int exp_run(const struct exp_cmd *c, volatile sig_atomic_t *stop, struct exp_capture *out,
            struct errbuf *eb)
{
    memset(out, 0, sizeof(*out));
    out->status = -1;
    int po[2], pe[2];
    if (pipe2(po, O_CLOEXEC) != 0)
        return errbuf_set(eb, ERR_SYS, "cannot make a pipe: %s", strerror(errno));
    if (pipe2(pe, O_CLOEXEC) != 0) {
        close(po[0]);
        close(po[1]);
        return errbuf_set(eb, ERR_SYS, "cannot make a pipe: %s", strerror(errno));
    }
    int err_log =
        c->err_path ? open(c->err_path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644) : -1;
    out->start = unix_s();
    double t0 = mono_s();
    pid_t pid;
    int exec_errno = 0;
    int rc = spawn(c->argv, c->env, po[1], pe[1], false, &pid, &exec_errno);
    close(po[1]);
    close(pe[1]);
    if (rc) {
        close(po[0]);
        close(pe[0]);
        if (err_log >= 0)
            close(err_log);
        return errbuf_set(eb, ERR_SYS, "cannot fork: %s", strerror(errno));
    }
    EVP_MD_CTX *md = EVP_MD_CTX_new();
    EVP_DigestInit_ex(md, EVP_sha256(), NULL);
    struct sink s = {md, out, 0};
    pump(po[0], pe[0], err_log, pid, stop, &s);
    close(po[0]);
    close(pe[0]);
    if (err_log >= 0)
        close(err_log);
    int ws = 0;
    struct rusage ru;
    memset(&ru, 0, sizeof(ru));
    while (wait4(pid, &ws, 0, &ru) < 0 && errno == EINTR)
        ;
    out->wall_s = mono_s() - t0;
    out->cpu_s = (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec / 1e6 +
                 (double)ru.ru_stime.tv_sec + (double)ru.ru_stime.tv_usec / 1e6;
    out->maxrss_kb = ru.ru_maxrss;
    unsigned char digest[32];
    unsigned int dlen = 0;
    EVP_DigestFinal_ex(md, digest, &dlen);
    EVP_MD_CTX_free(md);
    if (exec_errno) {
        snprintf(out->why, sizeof(out->why), "cannot run %s: %s", c->argv[0], strerror(exec_errno));
        return 0;
    }
    out->started = true;
    out->status = wait_status(ws);
    if (!c->output) {
        to_hex(digest, out->hash);
        return 0;
    }
    /* the output file replaces stdout as the run's output */
    free(out->data);
    out->data = NULL;
    out->len = 0;
    out->truncated = false;
    struct errbuf feb = {""};
    rc = exp_read_file(c->output, EXP_OUT_CAP, &out->data, &out->len, &out->truncated, out->hash,
                       &feb);
    if (rc)
        snprintf(out->why, sizeof(out->why), "output %.100s: %.140s", c->output,
                 rc == ERR_NOT_FOUND ? "not written by the run" : feb.msg);
    return 0;
}

int exp_read_file(const char *path, size_t cap, char **data, size_t *len, bool *truncated,
                  char hex[65], struct errbuf *eb)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        if (errno == ENOENT)
            return ERR_NOT_FOUND;
        return errbuf_set(eb, ERR_IO, "cannot open %s: %s", path, strerror(errno));
    }
    struct exp_capture c;
    memset(&c, 0, sizeof(c));
    EVP_MD_CTX *md = EVP_MD_CTX_new();
    EVP_DigestInit_ex(md, EVP_sha256(), NULL);
    struct sink s = {md, &c, 0};
    char chunk[65536];
    ssize_t n;
    int rc = 0;
    while ((n = read(fd, chunk, sizeof(chunk))) != 0) {
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            rc = errbuf_set(eb, ERR_IO, "cannot read %s: %s", path, strerror(errno));
            break;
        }
        size_t keep = c.len < cap ? cap - c.len : 0;
        sink_put(&s, chunk, (size_t)n < keep ? (size_t)n : keep);
        if ((size_t)n > keep) {
            EVP_DigestUpdate(md, chunk + keep, (size_t)n - keep);
            c.truncated = true;
        }
    }
    close(fd);
    unsigned char digest[32];
    unsigned int dlen = 0;
    EVP_DigestFinal_ex(md, digest, &dlen);
    EVP_MD_CTX_free(md);
    if (rc) {
        free(c.data);
        return rc;
    }
    to_hex(digest, hex);
    *data = c.data ? c.data : xcalloc(1, 1);
    *len = c.len;
    *truncated = c.truncated;
    return 0;
}

int exp_keep_file(const char *path, const void *p, size_t n, struct errbuf *eb)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
    if (fd < 0)
        return errno == EEXIST
                   ? 0
                   : errbuf_set(eb, ERR_IO, "cannot write %s: %s", path, strerror(errno));
    size_t off = 0;
    while (off < n) {
        ssize_t w = write(fd, (const char *)p + off, n - off);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            break;
        off += (size_t)w;
    }
    close(fd);
    if (off != n) {
        unlink(path);
        return errbuf_set(eb, ERR_IO, "cannot write %s: %s", path, strerror(errno));
    }
    return 0;
}

/* -- servers ------------------------------------------------------------------------------ */

int exp_server_start(char *const *argv, char *const *env, const char *log_path, pid_t *pid,
                     struct errbuf *eb)
{
    int log = open(log_path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
    if (log < 0)
        return errbuf_set(eb, ERR_IO, "cannot open %s: %s", log_path, strerror(errno));
    int exec_errno = 0;
    int rc = spawn(argv, env, log, log, true, pid, &exec_errno);
    close(log);
    if (rc)
        return errbuf_set(eb, ERR_SYS, "cannot fork: %s", strerror(errno));
    /* the parent sets the group too: a signal sent before the child's setpgid must reach it */
    setpgid(*pid, *pid);
    if (exec_errno) {
        waitpid(*pid, NULL, 0);
        return errbuf_set(eb, ERR_ARG, "cannot run the server %s: %s", argv[0],
                          strerror(exec_errno));
    }
    return 0;
}

/* One GET of an http:// URL with a 1 s budget: the status code, or 0 with the reason. */
static int http_get_status(const char *url, char *why, size_t whylen)
{
    const char *hp = url + 7;
    size_t hl = strcspn(hp, "/");
    char host[256], port[16] = "80";
    if (hl == 0 || hl >= sizeof(host)) {
        snprintf(why, whylen, "bad URL");
        return 0;
    }
    memcpy(host, hp, hl);
    host[hl] = 0;
    char *colon = strrchr(host, ':');
    if (colon && !strchr(host, ']')) {
        snprintf(port, sizeof(port), "%s", colon + 1);
        *colon = 0;
    }
    const char *path = hp[hl] ? hp + hl : "/";
    struct addrinfo hints = {.ai_socktype = SOCK_STREAM}, *ai = NULL;
    int g = getaddrinfo(host, port, &hints, &ai);
    if (g) {
        snprintf(why, whylen, "%s", gai_strerror(g));
        return 0;
    }
    int code = 0;
    int fd = socket(ai->ai_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct timeval tv = {1, 0};
    if (fd >= 0) {
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
        setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
    }
    if (fd < 0 || connect(fd, ai->ai_addr, ai->ai_addrlen) != 0) {
        snprintf(why, whylen, "%s", strerror(errno));
    } else {
        char req[1024], resp[64] = "";
        int n = snprintf(req, sizeof(req),
                         "GET %s HTTP/1.0\r\nHost: %s\r\nConnection: close\r\n\r\n", path, host);
        size_t got = 0;
        if (n > 0 && n < (int)sizeof(req) && send(fd, req, (size_t)n, MSG_NOSIGNAL) == n) {
            ssize_t r;
            while (got < sizeof(resp) - 1 &&
                   (r = recv(fd, resp + got, sizeof(resp) - 1 - got, 0)) > 0)
                got += (size_t)r;
        }
        resp[got] = 0;
        if (!strncmp(resp, "HTTP/1.", 7) && got >= 12)
            code = (int)strtol(resp + 9, NULL, 10);
        else
            snprintf(why, whylen, got ? "not an HTTP answer" : "no answer within 1 s");
        if (code)
            snprintf(why, whylen, "HTTP %d", code);
    }
    if (fd >= 0)
        close(fd);
    freeaddrinfo(ai);
    return code;
}

int exp_server_ready(pid_t pid, const char *url, double timeout_s, volatile sig_atomic_t *stop,
                     struct errbuf *eb)
{
    double t0 = mono_s();
    char why[128] = "not tried";
    for (;;) {
        int ws;
        if (waitpid(pid, &ws, WNOHANG) == pid)
            return errbuf_set(eb, ERR_PROC_GONE, "the server exited (status %d) before %s answered",
                              wait_status(ws), url);
        int code = http_get_status(url, why, sizeof(why));
        if (code >= 200 && code < 300)
            return 0;
        if ((stop && *stop) || mono_s() - t0 > timeout_s)
            return errbuf_set(eb, ERR_AGAIN, "%s did not answer 2xx within %.0f s (last: %s)", url,
                              timeout_s, why);
        sleep_ms(50);
    }
}

/* Waits up to `ms` for the server to be reaped and its group to be empty. */
static bool wait_gone(pid_t pid, int ms, bool *reaped, struct rusage *ru)
{
    for (int t = 0; t <= ms; t += 20) {
        int ws;
        if (!*reaped) {
            pid_t r = wait4(pid, &ws, WNOHANG, ru);
            *reaped = r == pid || (r < 0 && errno == ECHILD);
        }
        if (*reaped && kill(-pid, 0) != 0)
            return true;
        sleep_ms(20);
    }
    return false;
}

int exp_server_stop(pid_t pid, struct rusage *ru)
{
    static const int sigs[] = {SIGINT, SIGTERM, SIGKILL};
    memset(ru, 0, sizeof(*ru));
    bool reaped = false;
    int ws;
    /* it may have exited on its own: then no signal is sent */
    pid_t r = wait4(pid, &ws, WNOHANG, ru);
    reaped = r == pid || (r < 0 && errno == ECHILD);
    if (reaped && kill(-pid, 0) != 0)
        return 0;
    for (size_t i = 0; i < 3; i++) {
        kill(-pid, sigs[i]);
        if (wait_gone(pid, EXP_STOP_GRACE_MS, &reaped, ru))
            return sigs[i];
    }
    if (!reaped)
        wait4(pid, &ws, 0, ru);
    return SIGKILL;
}

int exp_free_port(void)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return 0;
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t al = sizeof(a);
    int port = 0;
    if (bind(fd, (struct sockaddr *)&a, sizeof(a)) == 0 &&
        getsockname(fd, (struct sockaddr *)&a, &al) == 0)
        port = ntohs(a.sin_port);
    close(fd);
    return port;
}
