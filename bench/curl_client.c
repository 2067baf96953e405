// SPDX-License-Identifier: MIT
// The libcurl alternative measured by bench/load.py: a closed loop of N transfers on libcurl's
// multi interface (keep-alive, connections reused), as a load generator built on libcurl
// would run. Prints "requests N seconds S".
// Build: cc -O2 -o curl_client curl_client.c -lcurl; run: curl_client URL CONNS SECONDS
#include <curl/curl.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

static size_t discard(char *p, size_t size, size_t n, void *ud)
{
    (void)p;
    (void)ud;
    return size * n;
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

int main(int argc, char **argv)
{
    if (argc < 4) {
        fprintf(stderr, "usage: curl_client URL CONNS SECONDS\n");
        return 2;
    }
    int conns = (int)strtol(argv[2], NULL, 10);
    double secs = strtod(argv[3], NULL);
    curl_global_init(CURL_GLOBAL_DEFAULT);
    CURLM *m = curl_multi_init();
    curl_multi_setopt(m, CURLMOPT_MAX_TOTAL_CONNECTIONS, (long)conns);
    CURL **h = calloc((size_t)conns, sizeof(*h));
    for (int i = 0; i < conns; i++) {
        h[i] = curl_easy_init();
        curl_easy_setopt(h[i], CURLOPT_URL, argv[1]);
        curl_easy_setopt(h[i], CURLOPT_WRITEFUNCTION, discard);
        curl_easy_setopt(h[i], CURLOPT_TCP_NODELAY, 1L);
        curl_multi_add_handle(m, h[i]);
    }
    double t0 = now_s(), end = t0 + secs;
    long done = 0;
    int running = 1;
    while (now_s() < end) {
        curl_multi_perform(m, &running);
        CURLMsg *msg;
        int left;
        while ((msg = curl_multi_info_read(m, &left))) {
            if (msg->msg != CURLMSG_DONE)
                continue;
            done++;
            CURL *e = msg->easy_handle;
            curl_multi_remove_handle(m, e);
            curl_multi_add_handle(m, e); /* the next request on the kept-alive connection */
        }
        curl_multi_poll(m, NULL, 0, 10, NULL);
    }
    printf("requests %ld seconds %.3f\n", done, now_s() - t0);
    for (int i = 0; i < conns; i++) {
        curl_multi_remove_handle(m, h[i]);
        curl_easy_cleanup(h[i]);
    }
    free(h);
    curl_multi_cleanup(m);
    curl_global_cleanup();
    return 0;
}
