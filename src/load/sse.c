// SPDX-License-Identifier: MIT
// Server-Sent Events parser: lines end in CRLF, LF or CR and may straddle reads; `data:` lines
// join into an event that a blank line dispatches.
#include "load/sse.h"

#include <stdlib.h>
#include <string.h>

#include "load/jscan.h"
#include "util/xalloc.h"

void sse_init(struct sse *s)
{
    memset(s, 0, sizeof(*s));
    s->usage_tokens = -1;
    s->usage_prompt = -1;
}

void sse_reset(struct sse *s)
{
    s->events = 0;
    s->token_events = 0;
    s->usage_tokens = -1;
    s->usage_prompt = -1;
    s->done = false;
    s->error = false;
    s->cr = false;
    s->has_data = false;
    s->line_start = 0;
    s->len = 0;
}

void sse_fini(struct sse *s)
{
    free(s->data);
    sse_init(s);
}

static bool reserve(struct sse *s, size_t extra)
{
    if (s->len + extra > SSE_EVENT_MAX) {
        s->error = true;
        return false;
    }
    if (s->len + extra <= s->cap)
        return true;
    size_t cap = s->cap ? s->cap : 1024;
    while (cap < s->len + extra)
        cap *= 2;
    s->data = xrealloc(s->data, cap);
    s->cap = cap;
    return true;
}

/* One token event or none for the event data `d`; records usage counts. */
static uint64_t classify(struct sse *s, const char *d, size_t n)
{
    if (n == 6 && memcmp(d, "[DONE]", 6) == 0) {
        s->done = true;
        return 0;
    }
    struct jspan obj;
    if (jscan_value((struct jspan){d, n}, true, &obj) || jscan_type(obj) != '{')
        return 1;
    struct jspan usage, ct, choices;
    bool has_usage = jscan_get(obj, "usage", &usage) && jscan_type(usage) == '{';
    if (has_usage && jscan_get(usage, "completion_tokens", &ct)) {
        int64_t v;
        /* Implausible counts (no response carries 2^32 tokens) are ignored, and the
         * token events are counted instead: summed over a run they would wrap. */
        if (jscan_int(ct, &v) && v >= 0 && v <= SSE_USAGE_MAX)
            s->usage_tokens = v;
    }
    if (has_usage && jscan_get(usage, "prompt_tokens", &ct)) {
        int64_t v;
        if (jscan_int(ct, &v) && v >= 0 && v < SSE_USAGE_MAX)
            s->usage_prompt = v;
    }
    if (!jscan_get(obj, "choices", &choices))
        return 1;
    size_t pos = 0;
    struct jspan first;
    return jscan_type(choices) == '[' && jscan_next_elem(choices, &pos, &first) ? 1 : 0;
}

static uint64_t dispatch(struct sse *s)
{
    uint64_t tokens = 0;
    if (s->has_data) {
        s->events++;
        tokens = classify(s, s->data, s->line_start);
        s->token_events += tokens;
    }
    s->has_data = false;
    s->line_start = 0;
    s->len = 0;
    return tokens;
}

/* Handles one complete line `l` (which may point into s->data at line_start). */
static uint64_t on_line(struct sse *s, const char *l, size_t n)
{
    if (n == 0)
        return dispatch(s);
    s->len = s->line_start; /* the line itself is no longer needed after this */
    if (n < 4 || memcmp(l, "data", 4) != 0 || (n > 4 && l[4] != ':'))
        return 0; /* a comment (':'), another field (event, id, retry) or junk */
    const char *v = l + 4;
    size_t vn = n - 4;
    if (vn) {
        v++, vn--;
        if (vn && *v == ' ')
            v++, vn--;
    }
    if (!reserve(s, vn + 1))
        return 0;
    if (s->has_data)
        s->data[s->len++] = '\n';
    memmove(s->data + s->len, v, vn);
    s->len += vn;
    s->line_start = s->len;
    s->has_data = true;
    return 0;
}

uint64_t sse_feed(struct sse *s, const char *p, size_t n)
{
    uint64_t tokens = 0;
    size_t i = 0;
    while (i < n && !s->error) {
        if (s->cr) {
            s->cr = false;
            if (p[i] == '\n') {
                i++;
                continue;
            }
        }
        size_t j = i;
        while (j < n && p[j] != '\n' && p[j] != '\r')
            j++;
        if (j == n) {
            if (reserve(s, j - i)) {
                memcpy(s->data + s->len, p + i, j - i);
                s->len += j - i;
            }
            break;
        }
        s->cr = p[j] == '\r';
        if (s->len > s->line_start) {
            if (!reserve(s, j - i))
                break;
            memcpy(s->data + s->len, p + i, j - i);
            s->len += j - i;
            tokens += on_line(s, s->data + s->line_start, s->len - s->line_start);
        } else {
            tokens += on_line(s, p + i, j - i);
        }
        i = j + 1;
    }
    return tokens;
}
