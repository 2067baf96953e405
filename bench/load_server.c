// SPDX-License-Identifier: MIT
// A trivial HTTP/1.1 keep-alive server for bench/load.py: one thread, epoll, answers every
// request (a header block ending in an empty line; bodies are not expected) with a 2-byte
// 200 response. With --stall-after SEC --stall SEC it blocks once, SEC seconds after its first
// request, for the given time (a server stall, as a GC pause or a blocked event loop).
// Build: cc -O2 -o load_server load_server.c; run: load_server PORT [--stall-after S --stall S]
#define _GNU_SOURCE
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

static const char RESP[] = "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok";

struct conn {
    int fd;
    int match; /* bytes of "\r\n\r\n" matched so far */
};

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr, "usage: load_server PORT [--stall-after S --stall S]\n");
        return 2;
    }
    double stall_after = -1, stall = 0, first = 0;
    for (int i = 2; i + 1 < argc; i += 2) {
        if (!strcmp(argv[i], "--stall-after"))
            stall_after = strtod(argv[i + 1], NULL);
        else if (!strcmp(argv[i], "--stall"))
            stall = strtod(argv[i + 1], NULL);
    }
    int ls = socket(AF_INET, SOCK_STREAM, 0);
    int one = 1;
    setsockopt(ls, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)strtol(argv[1], NULL, 10)),
                            .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    if (bind(ls, (struct sockaddr *)&a, sizeof(a)) || listen(ls, 4096)) {
        perror("bind/listen");
        return 1;
    }
    int ep = epoll_create1(0);
    struct epoll_event ev = {.events = EPOLLIN, .data.ptr = NULL};
    epoll_ctl(ep, EPOLL_CTL_ADD, ls, &ev);
    printf("ready\n");
    fflush(stdout);
    char buf[65536], out[65536];
    struct epoll_event evs[256];
    for (;;) {
        int n = epoll_wait(ep, evs, 256, -1);
        for (int k = 0; k < n; k++) {
            struct conn *c = evs[k].data.ptr;
            if (!c) {
                int fd = accept4(ls, NULL, NULL, SOCK_NONBLOCK);
                if (fd < 0)
                    continue;
                setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
                c = calloc(1, sizeof(*c));
                c->fd = fd;
                struct epoll_event e2 = {.events = EPOLLIN, .data.ptr = c};
                epoll_ctl(ep, EPOLL_CTL_ADD, fd, &e2);
                continue;
            }
            ssize_t r = read(c->fd, buf, sizeof(buf));
            if (r <= 0) {
                if (r < 0 && errno == EAGAIN)
                    continue;
                close(c->fd);
                free(c);
                continue;
            }
            size_t nresp = 0;
            for (ssize_t i = 0; i < r; i++) {
                char want = "\r\n\r\n"[c->match];
                if (buf[i] == want) {
                    if (++c->match == 4) {
                        c->match = 0;
                        nresp++;
                    }
                } else {
                    c->match = buf[i] == '\r' ? 1 : 0;
                }
            }
            if (!nresp)
                continue;
            if (stall_after >= 0) {
                double t = now_s();
                if (!first)
                    first = t;
                else if (t - first >= stall_after) {
                    fprintf(stderr, "stall %.6f %.3f\n", t, stall);
                    struct timespec ts = {(time_t)stall, (long)((stall - (double)(time_t)stall) * 1e9)};
                    nanosleep(&ts, NULL);
                    stall_after = -1;
                }
            }
            size_t len = 0;
            for (size_t i = 0; i < nresp && len + sizeof(RESP) < sizeof(out); i++) {
                memcpy(out + len, RESP, sizeof(RESP) - 1);
                len += sizeof(RESP) - 1;
            }
            ssize_t w = write(c->fd, out, len);
            (void)w;
        }
    }
}
