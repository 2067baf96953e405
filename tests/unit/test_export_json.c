// SPDX-License-Identifier: MIT
// Unit tests of util/jsonw and the JSON formats (speedscope, gecko, Chrome trace), checked with a
// small strict JSON parser.
#include <math.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "export/chrometrace.h"
#include "export/export.h"
#include "profile/profile.h"
#include "util/buf.h"
#include "util/jsonw.h"

/* ---- A strict RFC 8259 parser into a small tree, written independently of jsonw. ---- */

enum jtype { J_NULL, J_BOOL, J_NUM, J_STR, J_ARR, J_OBJ };

struct jval {
    enum jtype type;
    double num;
    char *str;          /* decoded, NUL-terminated (J_STR) */
    size_t len;         /* J_STR bytes, or J_ARR/J_OBJ members */
    struct jval *items; /* J_ARR/J_OBJ members */
    char **keys;        /* J_OBJ keys */
};

struct jparser {
    const unsigned char *s;
    size_t i;
    size_t n;
    int depth;
};

static void jfree(struct jval *v)
{
    for (size_t k = 0; (v->type == J_ARR || v->type == J_OBJ) && k < v->len; k++) {
        jfree(&v->items[k]);
        if (v->keys)
            free(v->keys[k]);
    }
    free(v->items);
    free(v->keys);
    free(v->str);
}

static void skip_ws(struct jparser *p)
{
    while (p->i < p->n && strchr(" \t\r\n", p->s[p->i]) && p->s[p->i])
        p->i++;
}

static int put_utf8(struct buf *b, uint32_t cp)
{
    char u[4];
    size_t n;
    if (cp < 0x80) {
        u[0] = (char)cp;
        n = 1;
    } else if (cp < 0x800) {
        u[0] = (char)(0xc0 | cp >> 6);
        u[1] = (char)(0x80 | (cp & 0x3f));
        n = 2;
    } else if (cp < 0x10000) {
        u[0] = (char)(0xe0 | cp >> 12);
        u[1] = (char)(0x80 | ((cp >> 6) & 0x3f));
        u[2] = (char)(0x80 | (cp & 0x3f));
        n = 3;
    } else {
        u[0] = (char)(0xf0 | cp >> 18);
        u[1] = (char)(0x80 | ((cp >> 12) & 0x3f));
        u[2] = (char)(0x80 | ((cp >> 6) & 0x3f));
        u[3] = (char)(0x80 | (cp & 0x3f));
        n = 4;
    }
    return buf_append(b, u, n);
}

/* Length of a valid UTF-8 sequence at s (shortest form, no surrogates, <= U+10FFFF), or 0. */
static size_t utf8_ok(const unsigned char *s, size_t n)
{
    static const struct {
        unsigned char lo, hi; /* lead byte range */
        size_t len;
        unsigned char lo2, hi2; /* allowed second byte range */
    } forms[] = {
        {0xc2, 0xdf, 2, 0x80, 0xbf}, {0xe0, 0xe0, 3, 0xa0, 0xbf}, {0xe1, 0xec, 3, 0x80, 0xbf},
        {0xed, 0xed, 3, 0x80, 0x9f}, {0xee, 0xef, 3, 0x80, 0xbf}, {0xf0, 0xf0, 4, 0x90, 0xbf},
        {0xf1, 0xf3, 4, 0x80, 0xbf}, {0xf4, 0xf4, 4, 0x80, 0x8f},
    };
    for (size_t k = 0; k < sizeof(forms) / sizeof(forms[0]); k++) {
        if (s[0] < forms[k].lo || s[0] > forms[k].hi)
            continue;
        size_t len = forms[k].len;
        if (n < len || s[1] < forms[k].lo2 || s[1] > forms[k].hi2)
            return 0;
        for (size_t j = 2; j < len; j++) {
            if ((s[j] & 0xc0) != 0x80)
                return 0;
        }
        return len;
    }
    return 0;
}

static int hex4(struct jparser *p, uint32_t *out)
{
    if (p->n - p->i < 4)
        return -1;
    *out = 0;
    for (int k = 0; k < 4; k++) {
        unsigned char c = p->s[p->i++];
        int d = c >= '0' && c <= '9'   ? c - '0'
                : c >= 'a' && c <= 'f' ? c - 'a' + 10
                : c >= 'A' && c <= 'F' ? c - 'A' + 10
                                       : -1;
        if (d < 0)
            return -1;
        *out = *out << 4 | (uint32_t)d;
    }
    return 0;
}

static int parse_escape(struct jparser *p, struct buf *b)
{
    if (p->i >= p->n)
        return -1;
    unsigned char c = p->s[p->i++];
    const char *from = "\"\\/bfnrt";
    const char *to = "\"\\/\b\f\n\r\t";
    const char *at = c ? strchr(from, c) : NULL;
    if (at) {
        return buf_putc(b, to[at - from]);
    }
    uint32_t cp;
    if (c != 'u' || hex4(p, &cp))
        return -1;
    if (cp >= 0xd800 && cp <= 0xdbff) {
        uint32_t lo;
        if (p->n - p->i < 2 || p->s[p->i] != '\\' || p->s[p->i + 1] != 'u')
            return -1;
        p->i += 2;
        if (hex4(p, &lo) || lo < 0xdc00 || lo > 0xdfff)
            return -1;
        cp = 0x10000 + ((cp - 0xd800) << 10) + (lo - 0xdc00);
    } else if (cp >= 0xdc00 && cp <= 0xdfff) {
        return -1;
    }
    return put_utf8(b, cp);
}

static int parse_string(struct jparser *p, char **out, size_t *len)
{
    struct buf b;
    buf_init(&b, 0);
    p->i++; /* the opening quote */
    for (;;) {
        if (p->i >= p->n)
            goto bad;
        unsigned char c = p->s[p->i];
        if (c == '"')
            break;
        if (c < 0x20)
            goto bad;
        if (c == '\\') {
            p->i++;
            if (parse_escape(p, &b))
                goto bad;
            continue;
        }
        size_t k = c < 0x80 ? 1 : utf8_ok(p->s + p->i, p->n - p->i);
        if (k == 0)
            goto bad;
        if (buf_append(&b, p->s + p->i, k))
            goto bad;
        p->i += k;
    }
    p->i++;
    *out = buf_take(&b, len);
    return 0;
bad:
    buf_fini(&b);
    return -1;
}

static int parse_number(struct jparser *p, double *out)
{
    size_t start = p->i;
    const unsigned char *s = p->s;
    if (p->i < p->n && s[p->i] == '-')
        p->i++;
    if (p->i < p->n && s[p->i] == '0') {
        p->i++;
    } else if (p->i < p->n && s[p->i] >= '1' && s[p->i] <= '9') {
        while (p->i < p->n && s[p->i] >= '0' && s[p->i] <= '9')
            p->i++;
    } else {
        return -1;
    }
    if (p->i < p->n && s[p->i] == '.') {
        p->i++;
        if (p->i >= p->n || s[p->i] < '0' || s[p->i] > '9')
            return -1;
        while (p->i < p->n && s[p->i] >= '0' && s[p->i] <= '9')
            p->i++;
    }
    if (p->i < p->n && (s[p->i] == 'e' || s[p->i] == 'E')) {
        p->i++;
        if (p->i < p->n && (s[p->i] == '+' || s[p->i] == '-'))
            p->i++;
        if (p->i >= p->n || s[p->i] < '0' || s[p->i] > '9')
            return -1;
        while (p->i < p->n && s[p->i] >= '0' && s[p->i] <= '9')
            p->i++;
    }
    char tmp[64];
    size_t len = p->i - start;
    if (len >= sizeof(tmp))
        return -1;
    memcpy(tmp, s + start, len);
    tmp[len] = '\0';
    *out = strtod(tmp, NULL);
    return 0;
}

static int parse_value(struct jparser *p, struct jval *v);

static int parse_members(struct jparser *p, struct jval *v, bool object)
{
    char close = object ? '}' : ']';
    size_t cap = 0;
    p->i++;
    skip_ws(p);
    if (p->i < p->n && p->s[p->i] == (unsigned char)close) {
        p->i++;
        return 0;
    }
    for (;;) {
        if (v->len == cap) {
            cap = cap ? cap * 2 : 8;
            v->items = realloc(v->items, cap * sizeof(*v->items));
            if (object)
                v->keys = realloc(v->keys, cap * sizeof(*v->keys));
        }
        struct jval *item = &v->items[v->len];
        memset(item, 0, sizeof(*item));
        if (object) {
            skip_ws(p);
            size_t klen;
            if (p->i >= p->n || p->s[p->i] != '"' || parse_string(p, &v->keys[v->len], &klen))
                return -1;
            skip_ws(p);
            if (p->i >= p->n || p->s[p->i++] != ':') {
                free(v->keys[v->len]);
                return -1;
            }
        }
        v->len++;
        if (parse_value(p, item))
            return -1;
        skip_ws(p);
        if (p->i < p->n && p->s[p->i] == ',') {
            p->i++;
            continue;
        }
        if (p->i < p->n && p->s[p->i] == (unsigned char)close) {
            p->i++;
            return 0;
        }
        return -1;
    }
}

static int parse_value(struct jparser *p, struct jval *v)
{
    memset(v, 0, sizeof(*v));
    skip_ws(p);
    if (p->i >= p->n || ++p->depth > 200)
        return -1;
    int rc = 0;
    unsigned char c = p->s[p->i];
    size_t rest = p->n - p->i;
    if (c == '{' || c == '[') {
        v->type = c == '{' ? J_OBJ : J_ARR;
        rc = parse_members(p, v, c == '{');
    } else if (c == '"') {
        v->type = J_STR;
        rc = parse_string(p, &v->str, &v->len);
    } else if (rest >= 4 && memcmp(p->s + p->i, "null", 4) == 0) {
        p->i += 4;
    } else if (rest >= 4 && memcmp(p->s + p->i, "true", 4) == 0) {
        v->type = J_BOOL;
        v->num = 1;
        p->i += 4;
    } else if (rest >= 5 && memcmp(p->s + p->i, "false", 5) == 0) {
        v->type = J_BOOL;
        p->i += 5;
    } else {
        v->type = J_NUM;
        rc = parse_number(p, &v->num);
    }
    p->depth--;
    return rc;
}

/* Parses the whole text; returns 0 when it is exactly one valid JSON value. */
static int json_parse(const char *s, size_t n, struct jval *out)
{
    struct jparser p = {(const unsigned char *)s, 0, n, 0};
    int rc = parse_value(&p, out);
    skip_ws(&p);
    if (!rc && p.i != n)
        rc = -1;
    return rc;
}

static const struct jval *jget(const struct jval *v, const char *key)
{
    for (size_t k = 0; v && v->type == J_OBJ && k < v->len; k++) {
        if (strcmp(v->keys[k], key) == 0)
            return &v->items[k];
    }
    return NULL;
}

static bool jis_str(const struct jval *v, const char *want)
{
    return v && v->type == J_STR && strcmp(v->str, want) == 0;
}

/* ---- Tests ---- */

static int parses(const char *s)
{
    struct jval v;
    int rc = json_parse(s, strlen(s), &v);
    jfree(&v);
    return rc == 0;
}

/* The checker itself must reject what it is meant to catch. */
static int test_checker_rejects(void)
{
    CHECK(parses("{\"a\":[1,2.5e3,-0,true,false,null,\"\\u00e9\\ud83d\\ude00\"]}"), "valid");
    CHECK(!parses("{\"a\":1,}"), "trailing comma");
    CHECK(!parses("[1 2]"), "missing comma");
    CHECK(!parses("\"a\nb\""), "raw newline");
    CHECK(!parses("\"\xff\""), "invalid UTF-8");
    CHECK(!parses("\"\xed\xa0\x80\""), "encoded surrogate");
    CHECK(!parses("\"\\ud800\""), "lone surrogate escape");
    CHECK(!parses("01"), "leading zero");
    CHECK(!parses("[1] x"), "trailing text");
    return 0;
}

static int escaped_is(const char *in, size_t n, unsigned flags, const char *want)
{
    struct buf b;
    buf_init(&b, 0);
    int rc = jsonw_escape(&b, in, n, flags);
    int ok = rc == 0 && strcmp(buf_cstr(&b), want) == 0;
    if (!ok)
        fprintf(stderr, "escape: got %s want %s\n", buf_cstr(&b), want);
    buf_fini(&b);
    return ok;
}

static int test_escape(void)
{
    CHECK(escaped_is("a\"b\\c", 5, 0, "\"a\\\"b\\\\c\""), "quote and backslash");
    CHECK(escaped_is("\n\r\t\b\f\x01\x1f\x7f", 8, 0, "\"\\n\\r\\t\\b\\f\\u0001\\u001f\\u007f\""),
          "controls");
    CHECK(escaped_is("a\0b", 3, 0, "\"a\\u0000b\""), "NUL");
    CHECK(escaped_is("</script>&", 10, 0, "\"</script>&\""), "plain mode keeps <");
    CHECK(escaped_is("</script>&", 10, JSONW_HTML_SAFE, "\"\\u003c/script\\u003e\\u0026\""),
          "html mode");
    CHECK(escaped_is("caf\xc3\xa9 \xf0\x9f\x98\x80", 10, 0, "\"caf\xc3\xa9 \xf0\x9f\x98\x80\""),
          "UTF-8 kept");
    CHECK(escaped_is("\xe2\x80\xa8\xe2\x80\xa9", 6, JSONW_HTML_SAFE, "\"\\u2028\\u2029\""),
          "line separators");
    CHECK(escaped_is("a\xff"
                     "b",
                     3, 0,
                     "\"a\xef\xbf\xbd"
                     "b\""),
          "invalid byte");
    CHECK(escaped_is("\xc0\xaf", 2, 0, "\"\xef\xbf\xbd\xef\xbf\xbd\""), "overlong");
    CHECK(escaped_is("\xed\xa0\x80", 3, 0, "\"\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd\""),
          "surrogate");
    CHECK(escaped_is("\xf4\x90\x80\x80", 4, 0,
                     "\"\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd\""),
          "above U+10FFFF");
    CHECK(escaped_is("x\xe2\x82", 3, 0, "\"x\xef\xbf\xbd\xef\xbf\xbd\""), "truncated");
    return 0;
}

/* Every byte string escapes to valid JSON that decodes back to itself when it was valid. */
static int test_escape_fuzz(void)
{
    uint32_t seed = 1;
    struct buf b;
    buf_init(&b, 0);
    for (int round = 0; round < 3000; round++) {
        unsigned char in[24];
        size_t n = (size_t)(round % 24);
        for (size_t k = 0; k < n; k++) {
            seed = seed * 1103515245u + 12345u;
            in[k] = (unsigned char)(seed >> 16);
        }
        buf_reset(&b);
        CHECK(jsonw_escape(&b, (const char *)in, n, round & 1 ? JSONW_HTML_SAFE : 0) == 0, "esc");
        struct jval v;
        int rc = json_parse(buf_cstr(&b), b.len, &v);
        CHECK(rc == 0 && v.type == J_STR, "round %d: invalid JSON %s", round, buf_cstr(&b));
        if (round & 1)
            CHECK(!memchr(b.data, '<', b.len), "no '<' in html mode");
        jfree(&v);
    }
    buf_fini(&b);
    return 0;
}

static int test_writer(void)
{
    struct buf b;
    buf_init(&b, 0);
    struct jsonw w;
    jsonw_init(&w, &b, 0);
    jsonw_obj_begin(&w);
    jsonw_key(&w, "a");
    jsonw_arr_begin(&w);
    jsonw_u64(&w, 18446744073709551615ull);
    jsonw_i64(&w, INT64_MIN);
    jsonw_double(&w, 0.1);
    jsonw_double(&w, 1.0 / 3);
    jsonw_double(&w, NAN);
    jsonw_bool(&w, true);
    jsonw_str(&w, NULL);
    jsonw_arr_begin(&w);
    jsonw_arr_end(&w);
    jsonw_obj_begin(&w);
    jsonw_obj_end(&w);
    jsonw_arr_end(&w);
    jsonw_key(&w, "b");
    jsonw_strn(&w, "x\0y", 3);
    jsonw_obj_end(&w);
    CHECK(jsonw_error(&w) == 0, "no error");
    const char *want =
        "{\"a\":[18446744073709551615,-9223372036854775808,0.1,0.33333333333333331,null,true,"
        "null,[],{}],"
        "\"b\":\"x\\u0000y\"}";
    CHECK(strcmp(buf_cstr(&b), want) == 0, "got %s", buf_cstr(&b));
    buf_fini(&b);
    return 0;
}

static int test_writer_errors(void)
{
    struct buf b;
    buf_init(&b, 10);
    struct jsonw w;
    jsonw_init(&w, &b, 0);
    jsonw_str(&w, "a long string that does not fit");
    jsonw_u64(&w, 1);
    CHECK(jsonw_error(&w) == ERR_TOO_LARGE, "cap");
    buf_fini(&b);
    buf_init(&b, 0);
    jsonw_init(&w, &b, 0);
    for (int i = 0; i < JSONW_MAX_DEPTH + 1; i++)
        jsonw_arr_begin(&w);
    CHECK(jsonw_error(&w) == ERR_TOO_LARGE, "depth");
    jsonw_init(&w, &b, 0);
    jsonw_arr_end(&w);
    CHECK(jsonw_error(&w) == ERR_ARG, "unbalanced");
    buf_fini(&b);
    return 0;
}

static uint32_t frame(struct profile *p, const char *name, const char *file, int32_t line,
                      enum frame_kind kind)
{
    return profile_frame(p, profile_str(p, name, strlen(name)), profile_str(p, file, strlen(file)),
                         line, kind);
}

static void build(struct profile *p)
{
    profile_init(p);
    uint32_t t = frame(p, "MainThread", "", 101, FRAME_THREAD);
    uint32_t a = frame(p, "main", "app.py", 3, FRAME_PYTHON);
    uint32_t b = frame(p, "bad\xff name\n\"q\"", "caf\xc3\xa9.py", 9, FRAME_PYTHON);
    uint32_t c = frame(p, "dgemm_", "libopenblas.so", 0, FRAME_NATIVE);
    uint32_t m = frame(p, "[idle]", "", 0, FRAME_MARKER);
    uint32_t s1 = profile_stack(p, (uint32_t[]){t, a, b}, 3);
    uint32_t s2 = profile_stack(p, (uint32_t[]){t, a, b, c}, 4);
    uint32_t s3 = profile_stack(p, (uint32_t[]){t, m}, 2);
    profile_add(p, &(struct psample){.stack = s1,
                                     .weight = 5,
                                     .t_ns = 0,
                                     .pid = 1,
                                     .tid = 101,
                                     .state = TSTATE_RUNNING,
                                     .flags = 0});
    profile_add(p, &(struct psample){.stack = s2,
                                     .weight = 2,
                                     .t_ns = 0,
                                     .pid = 1,
                                     .tid = 101,
                                     .state = TSTATE_RUNNING,
                                     .flags = 0});
    profile_add(p, &(struct psample){.stack = s3,
                                     .weight = 9,
                                     .t_ns = 0,
                                     .pid = 1,
                                     .tid = 101,
                                     .state = TSTATE_IDLE,
                                     .flags = 0});
    profile_add(p, &(struct psample){.stack = s1,
                                     .weight = 1,
                                     .t_ns = 0,
                                     .pid = 1,
                                     .tid = 101,
                                     .state = TSTATE_RUNNING,
                                     .flags = 0});
}

static bool near(double a, double b)
{
    return fabs(a - b) < 1e-9;
}

static int check_speedscope(const struct jval *root, const struct profile *p)
{
    CHECK(root->type == J_OBJ, "object");
    CHECK(jis_str(jget(root, "$schema"), "https://www.speedscope.app/file-format-schema.json"),
          "schema");
    CHECK(jis_str(jget(root, "exporter"), "crux"), "exporter");
    const struct jval *frames = jget(jget(root, "shared"), "frames");
    CHECK(frames && frames->type == J_ARR && frames->len == p->nframes, "frames");
    for (size_t k = 0; k < frames->len; k++)
        CHECK(jget(&frames->items[k], "name")->type == J_STR, "frame name");
    CHECK(jis_str(jget(&frames->items[0], "name"), "MainThread (101)"), "thread frame");
    CHECK(jis_str(jget(&frames->items[2], "name"), "bad\xef\xbf\xbd name\n\"q\""), "bad name");
    CHECK(jis_str(jget(&frames->items[2], "file"), "caf\xc3\xa9.py"), "file");
    CHECK(jget(&frames->items[2], "line")->num == 9, "line");
    CHECK(jis_str(jget(&frames->items[3], "file"), "libopenblas.so"), "library");
    CHECK(!jget(&frames->items[3], "line"), "no line for native");
    const struct jval *profs = jget(root, "profiles");
    CHECK(profs && profs->type == J_ARR && profs->len == 1, "one profile (samples not kept)");
    const struct jval *pr = &profs->items[0];
    CHECK(jis_str(jget(pr, "type"), "sampled") && jis_str(jget(pr, "unit"), "seconds"), "type");
    const struct jval *samples = jget(pr, "samples");
    const struct jval *weights = jget(pr, "weights");
    CHECK(samples && weights && samples->len == 3 && weights->len == 3, "three stacks");
    double sum = 0;
    for (size_t k = 0; k < weights->len; k++) {
        const struct jval *s = &samples->items[k];
        CHECK(s->type == J_ARR && s->len > 0, "sample is a stack");
        CHECK(s->items[0].num == 0, "root first (the thread frame)");
        for (size_t j = 0; j < s->len; j++)
            CHECK(s->items[j].num >= 0 && s->items[j].num < (double)p->nframes, "index");
        sum += weights->items[k].num;
    }
    /* no duration, ticks or rate: a sample weighs 0.01 s */
    CHECK(near(weights->items[0].num, 0.06) && near(weights->items[1].num, 0.02) &&
              near(weights->items[2].num, 0.09),
          "weights per stack");
    CHECK(near(sum, (double)p->total * 0.01) && near(jget(pr, "endValue")->num, sum), "total");
    return 0;
}

static int test_speedscope(void)
{
    struct profile p;
    build(&p);
    struct buf out;
    buf_init(&out, 0);
    struct errbuf eb = {{0}};
    struct export_opts o = {.title = "t\x01"};
    CHECK(export_write(&p, EXPORT_SPEEDSCOPE, &o, &out, &eb) == 0, "export: %s", eb.msg);
    struct jval root;
    int rc = json_parse(out.data, out.len, &root);
    CHECK(rc == 0, "valid JSON:\n%s", buf_cstr(&out));
    rc = check_speedscope(&root, &p);
    CHECK(rc == 0 || !fprintf(stderr, "%s\n", buf_cstr(&out)), "structure");
    CHECK(jis_str(jget(&root, "name"), "t\x01"), "title");
    jfree(&root);
    buf_fini(&out);
    profile_fini(&p);
    return 0;
}

/* 3.11+ frames keep their 1-based start column in speedscope (`col`) and the lines view
 * (`file:line:col`, JSON `col`); a frame without one has no `col`. */
static int test_columns(void)
{
    struct profile p;
    profile_init(&p);
    uint32_t name = profile_str(&p, "<module>", 8), file = profile_str(&p, "m.py", 4);
    uint32_t a = profile_frame_col(&p, name, file, 12, 9, FRAME_PYTHON);
    uint32_t b = profile_frame_col(&p, name, file, 12, 20, FRAME_PYTHON);
    uint32_t f = profile_frame(&p, profile_str(&p, "f", 1), file, 3, FRAME_PYTHON);
    profile_add(&p, &(struct psample){.stack = profile_stack(&p, (uint32_t[]){a, f}, 2)});
    profile_add(&p, &(struct psample){.stack = profile_stack(&p, (uint32_t[]){b, f}, 2)});
    struct buf out;
    buf_init(&out, 0);
    struct errbuf eb = {{0}};
    CHECK(export_write(&p, EXPORT_SPEEDSCOPE, NULL, &out, &eb) == 0, "export: %s", eb.msg);
    struct jval root;
    CHECK(json_parse(out.data, out.len, &root) == 0, "valid JSON:\n%s", buf_cstr(&out));
    const struct jval *frames = jget(jget(&root, "shared"), "frames");
    CHECK(frames && frames->len == 3, "three frames");
    CHECK(jget(&frames->items[a], "col")->num == 9 && jget(&frames->items[b], "col")->num == 20,
          "columns");
    CHECK(jget(&frames->items[a], "line")->num == 12 && !jget(&frames->items[f], "col"), "no col");
    jfree(&root);
    buf_reset(&out);
    CHECK(export_write(&p, EXPORT_LINES, NULL, &out, &eb) == 0, "lines: %s", eb.msg);
    CHECK(strstr(buf_cstr(&out), "<module> (m.py:12:9)") &&
              strstr(buf_cstr(&out), "<module> (m.py:12:20)") &&
              strstr(buf_cstr(&out), "f (m.py:3)\n"),
          "lines text:\n%s", buf_cstr(&out));
    buf_reset(&out);
    CHECK(export_write(&p, EXPORT_LINES_JSON, NULL, &out, &eb) == 0, "lines-json: %s", eb.msg);
    CHECK(strstr(buf_cstr(&out), "\"line\":12,\"col\":20"), "lines JSON:\n%s", buf_cstr(&out));
    buf_reset(&out);
    profile_drop_columns(&p);
    CHECK(export_write(&p, EXPORT_SPEEDSCOPE, NULL, &out, &eb) == 0, "export: %s", eb.msg);
    CHECK(!strstr(buf_cstr(&out), "\"col\""), "no columns left:\n%s", buf_cstr(&out));
    buf_fini(&out);
    profile_fini(&p);
    return 0;
}

static void add_at(struct profile *p, uint64_t t_ms, uint32_t pid, uint32_t tid, uint32_t stack,
                   enum thread_state state)
{
    profile_add(p, &(struct psample){.stack = stack,
                                     .weight = 1,
                                     .t_ns = t_ms * 1000000,
                                     .pid = pid,
                                     .tid = tid,
                                     .state = (uint8_t)state});
}

/* Kept samples give one profile per thread after the combined one, named as py-spy names them,
 * in time order with equal consecutive stacks merged and the thread frame left out. */
static int test_speedscope_threads(void)
{
    struct profile p;
    profile_init(&p);
    p.keep_samples = true;
    p.hide_idle = true;
    p.meta.pid = 7;
    p.meta.rate_hz = 100; /* no ticks: 1 / rate */
    uint32_t t7 = frame(&p, "Main \"T\"", "", 7, FRAME_THREAD);
    uint32_t t9 = frame(&p, "thread", "", 9, FRAME_THREAD);
    uint32_t a = frame(&p, "a", "x.py", 1, FRAME_PYTHON);
    uint32_t b = frame(&p, "b", "x.py", 2, FRAME_PYTHON);
    uint32_t s7a = profile_stack(&p, (uint32_t[]){t7, a}, 2);
    uint32_t s7ab = profile_stack(&p, (uint32_t[]){t7, a, b}, 3);
    uint32_t s9b = profile_stack(&p, (uint32_t[]){t9, b}, 2);
    /* recorded out of order across threads; thread 9 sorts after the main thread */
    add_at(&p, 0, 7, 9, s9b, TSTATE_RUNNING);
    add_at(&p, 0, 7, 7, s7a, TSTATE_RUNNING);
    add_at(&p, 10, 7, 7, s7a, TSTATE_RUNNING);
    add_at(&p, 20, 7, 7, s7ab, TSTATE_RUNNING);
    add_at(&p, 30, 7, 7, s7a, TSTATE_IDLE); /* hidden, as in the views */
    add_at(&p, 40, 7, 7, s7a, TSTATE_RUNNING);
    struct buf out;
    buf_init(&out, 0);
    CHECK(export_write(&p, EXPORT_SPEEDSCOPE, NULL, &out, NULL) == 0, "export");
    struct jval root;
    CHECK(json_parse(out.data, out.len, &root) == 0, "valid JSON");
    const struct jval *profs = jget(&root, "profiles");
    CHECK(profs && profs->len == 3, "combined + 2 threads:\n%s", buf_cstr(&out));
    CHECK(jget(&root, "activeProfileIndex")->num == 0, "the combined profile is active");
    const struct jval *m = &profs->items[1], *w = &profs->items[2];
    CHECK(jis_str(jget(m, "name"), "Thread 7 \"Main \"T\"\""), "main thread name");
    CHECK(jis_str(jget(w, "name"), "Thread 9 \"thread\""), "worker name");
    const struct jval *ms = jget(m, "samples"), *mw = jget(m, "weights");
    CHECK(ms->len == 3 && mw->len == 3, "runs a, a+b, a");
    CHECK(ms->items[0].len == 1 && ms->items[0].items[0].num == a, "no thread frame");
    CHECK(ms->items[1].len == 2 && ms->items[1].items[1].num == b, "a;b");
    CHECK(near(mw->items[0].num, 0.02) && near(mw->items[1].num, 0.01) &&
              near(mw->items[2].num, 0.01),
          "weights in seconds");
    CHECK(near(jget(m, "endValue")->num, 0.04), "end value");
    CHECK(jis_str(jget(w, "unit"), "seconds"), "unit");
    jfree(&root);
    /* two processes: py-spy's --subprocesses names */
    add_at(&p, 50, 8, 8, s7a, TSTATE_RUNNING);
    buf_reset(&out);
    CHECK(export_write(&p, EXPORT_SPEEDSCOPE, NULL, &out, NULL) == 0, "export");
    CHECK(json_parse(out.data, out.len, &root) == 0, "valid JSON");
    profs = jget(&root, "profiles");
    CHECK(profs->len == 4, "3 threads");
    CHECK(jis_str(jget(&profs->items[1], "name"), "Process 7 Thread 7 \"Main \"T\"\""), "pid");
    CHECK(jis_str(jget(&profs->items[3], "name"), "Process 8 Thread 8 \"\""), "no name");
    jfree(&root);
    buf_fini(&out);
    profile_fini(&p);
    return 0;
}

/* A two-thread profile with categories, a span on a thread without samples and a memory
 * timeline, for the timeline formats. */
static void build_timeline(struct profile *p)
{
    profile_init(p);
    p->keep_samples = true;
    p->meta.pid = 7;
    p->meta.duration_ns = 50000000;
    p->meta.ticks = 5; /* 10 ms a tick */
    uint32_t t7 = frame(p, "thread", "", 7, FRAME_THREAD);
    uint32_t t9 = frame(p, "thread", "", 9, FRAME_THREAD);
    uint32_t a = frame(p, "main", "x.py", 1, FRAME_PYTHON);
    uint32_t b = frame(p, "</script>\"q\"", "x.py", 2, FRAME_PYTHON);
    uint32_t c = frame(p, "memcpy", "libc.so.6", 0, FRAME_NATIVE);
    uint32_t b3 = frame(p, "</script>\"q\"", "x.py", 3, FRAME_PYTHON); /* b, another line */
    uint32_t s7ab = profile_stack(p, (uint32_t[]){t7, a, b}, 3);
    uint32_t s7ab3 = profile_stack(p, (uint32_t[]){t7, a, b3}, 3);
    uint32_t s7abc = profile_stack(p, (uint32_t[]){t7, a, b, c}, 4);
    uint32_t s9a = profile_stack(p, (uint32_t[]){t9, a}, 2);
    struct psample base = {.pid = 7, .state = TSTATE_RUNNING, .weight = 1};
    uint8_t cats[] = {CAT_PYTHON, CAT_PYTHON, CAT_NATIVE, CAT_PYTHON};
    for (uint64_t i = 0; i < 4; i++) {
        struct psample s = base;
        s.t_ns = i * 10000000;
        s.tid = 7;
        s.stack = i == 2 ? s7abc : i == 3 ? s7ab3 : s7ab;
        s.cat = cats[i];
        profile_add(p, &s);
        s.tid = 9;
        s.stack = s9a;
        s.cat = CAT_SYSTEM;
        profile_add(p, &s);
    }
    profile_add_mem(p, 0, 7, 100 << 20);
    profile_add_mem(p, 20000000, 7, 90 << 20);
    uint32_t req = profile_str(p, "", 0), parse = profile_str(p, "parse", 5);
    profile_add_span(p, &(struct pspan){.start_ns = 1000000,
                                        .end_ns = 31000000,
                                        .request = 1ull << 60,
                                        .name = req,
                                        .tid = 11,
                                        .pid = 7,
                                        .kind = PSPAN_REQUEST});
    profile_add_span(p, &(struct pspan){.start_ns = 2000000,
                                        .end_ns = 3000000,
                                        .request = 1ull << 60,
                                        .name = parse,
                                        .tid = 11,
                                        .pid = 7,
                                        .kind = PSPAN_STAGE});
}

static const struct jval *item(const struct jval *arr, size_t i)
{
    return arr && arr->type == J_ARR && i < arr->len ? &arr->items[i] : NULL;
}

/* Every column of a table has `length` values. */
static int check_columns(const struct jval *table, const char *what)
{
    const struct jval *len = jget(table, "length");
    CHECK(len && len->type == J_NUM, "%s: length", what);
    for (size_t k = 0; k < table->len; k++) {
        const struct jval *col = &table->items[k];
        if (col->type == J_ARR)
            CHECK(col->len == (size_t)len->num, "%s.%s: %zu values, length %g", what,
                  table->keys[k], col->len, len->num);
    }
    return 0;
}

static int test_gecko(void)
{
    struct profile p;
    build_timeline(&p);
    struct buf out;
    buf_init(&out, 0);
    enum export_format f;
    CHECK(export_format_from_path("run.GECKO.json", &f) == 0 && f == EXPORT_GECKO, "extension");
    CHECK(export_format_from_path("run.json", &f) == 0 && f == EXPORT_SPEEDSCOPE, "plain json");
    CHECK(export_format_from_name("firefox", &f) == 0 && f == EXPORT_GECKO, "name");
    CHECK(export_write(&p, EXPORT_GECKO, NULL, &out, NULL) == 0, "export");
    struct jval root;
    CHECK(json_parse(out.data, out.len, &root) == 0, "valid JSON");
    const struct jval *meta = jget(&root, "meta");
    CHECK(jget(meta, "preprocessedProfileVersion")->num == 57, "version");
    CHECK(jget(meta, "interval")->num == 10, "interval in ms");
    CHECK(jis_str(jget(item(jget(meta, "categories"), 0), "color"), "grey"), "default category");
    const struct jval *threads = jget(&root, "threads");
    CHECK(threads && threads->len == 3, "threads 7, 9 and 11 (spans only)");
    const struct jval *t7 = item(threads, 0), *t11 = item(threads, 2);
    CHECK(jget(t7, "tid")->num == 7 && jis_str(jget(t7, "pid"), "7") &&
              jget(t7, "isMainThread")->type == J_BOOL && jget(t7, "isMainThread")->num,
          "main thread first");
    const char *tables[] = {"samples",   "markers",       "stackTable",   "frameTable",
                            "funcTable", "resourceTable", "nativeSymbols"};
    for (size_t t = 0; t < threads->len; t++)
        for (size_t k = 0; k < sizeof(tables) / sizeof(tables[0]); k++)
            CHECK(check_columns(jget(item(threads, t), tables[k]), tables[k]) == 0, "columns");
    const struct jval *samples = jget(t7, "samples");
    CHECK(jget(samples, "length")->num == 4 && jget(samples, "weight")->type == J_NULL, "samples");
    CHECK(item(jget(samples, "time"), 3)->num == 30, "time in ms");
    /* stacks without the thread frame; the native sample's stack in its own category */
    const struct jval *st = jget(t7, "stackTable"), *fr = jget(t7, "frameTable");
    const struct jval *fn = jget(t7, "funcTable");
    const struct jval *strs = jget(jget(&root, "shared"), "stringArray");
    CHECK(item(jget(st, "prefix"), 0)->type == J_NULL, "root stack");
    size_t leaf = (size_t)item(jget(samples, "stack"), 2)->num;
    size_t lf = (size_t)item(jget(st, "frame"), leaf)->num;
    CHECK(item(jget(fr, "category"), lf)->num == CAT_NATIVE, "category on the frames");
    size_t func = (size_t)item(jget(fr, "func"), lf)->num;
    CHECK(jis_str(item(strs, (size_t)item(jget(fn, "name"), func)->num), "memcpy"), "leaf");
    CHECK(item(jget(fn, "resource"), func)->num == 0 && jget(fn, "isJS")->items[0].num == 1,
          "native resource, Python as JS");
    CHECK(jget(st, "length")->num == 6, "python a, b, b:3; native a, b, c: %g",
          jget(st, "length")->num);
    CHECK(jget(fn, "length")->num == 3, "functions a, b, memcpy");
    bool hostile = false;
    for (size_t k = 0; k < strs->len; k++)
        hostile |= jis_str(&strs->items[k], "</script>\"q\"");
    CHECK(hostile, "hostile name intact");
    /* spans: markers of thread 11, which has no samples */
    const struct jval *mk = jget(t11, "markers");
    CHECK(jget(jget(t11, "samples"), "length")->num == 0 && jget(mk, "length")->num == 2,
          "markers");
    CHECK(jis_str(item(strs, (size_t)item(jget(mk, "name"), 0)->num), "request"), "name");
    CHECK(jis_str(jget(item(jget(mk, "data"), 0), "request"), "1152921504606846976"), "id");
    CHECK(item(jget(mk, "startTime"), 1)->num == 2 && item(jget(mk, "endTime"), 1)->num == 3,
          "stage times");
    /* memory: changes from zero */
    const struct jval *ctr = item(jget(&root, "counters"), 0);
    const struct jval *cnt = jget(jget(ctr, "samples"), "count");
    CHECK(ctr && jget(ctr, "mainThreadIndex")->num == 0 && cnt->len == 2 &&
              cnt->items[0].num == 100 << 20 && cnt->items[1].num == -(10 << 20),
          "memory counter");
    jfree(&root);
    buf_fini(&out);
    profile_fini(&p);
    return 0;
}

/* The X event of `tid` named `name` starting at `ts` (µs), or NULL. */
static const struct jval *slice_at(const struct jval *events, double tid, const char *name,
                                   double ts)
{
    for (size_t i = 0; i < events->len; i++) {
        const struct jval *e = &events->items[i];
        if (jis_str(jget(e, "ph"), "X") && jget(e, "tid")->num == tid &&
            jis_str(jget(e, "name"), name) && jget(e, "ts")->num == ts)
            return e;
    }
    return NULL;
}

static int test_chrome_trace(void)
{
    struct profile p;
    build_timeline(&p);
    enum export_format f;
    CHECK(export_format_from_path("a.trace.JSON", &f) == 0 && f == EXPORT_CHROME, "extension");
    CHECK(export_format_from_name("perfetto", &f) == 0 && f == EXPORT_CHROME, "name");
    struct buf out;
    buf_init(&out, 0);
    CHECK(export_write(&p, EXPORT_CHROME, NULL, &out, NULL) == 0, "export");
    struct jval root;
    CHECK(json_parse(out.data, out.len, &root) == 0, "valid JSON");
    const struct jval *ev = jget(&root, "traceEvents");
    CHECK(ev && ev->type == J_ARR, "events");
    size_t x = 0, c = 0, m = 0;
    for (size_t i = 0; i < ev->len; i++) {
        const struct jval *e = &ev->items[i];
        CHECK(jget(e, "ts") && jget(e, "pid") && jget(e, "tid") && jget(e, "ph"), "fields");
        x += jis_str(jget(e, "ph"), "X");
        c += jis_str(jget(e, "ph"), "C");
        m += jis_str(jget(e, "ph"), "M");
    }
    /* thread 7: main and the hostile b over 4 ticks, memcpy over the third; thread 9: main;
     * spans: the request and its stage on the first lane */
    CHECK(x == 3 + 1 + 2 && c == 2, "%zu slices, %zu counters", x, c);
    CHECK(m == 2 + 2 * 3 + 2, "process, 3 threads and a lane named and ordered: %zu", m);
    const struct jval *a = slice_at(ev, 7, "main", 0);
    const struct jval *b = slice_at(ev, 7, "</script>\"q\"", 0);
    const struct jval *cpy = slice_at(ev, 7, "memcpy", 20000);
    CHECK(a && jget(a, "dur")->num == 40000 && jis_str(jget(a, "cat"), "python"), "main");
    CHECK(b && jget(b, "dur")->num == 40000, "one slice for two lines' worth of samples");
    CHECK(cpy && jget(cpy, "dur")->num == 10000 && jis_str(jget(cpy, "cat"), "native") &&
              jis_str(jget(jget(cpy, "args"), "library"), "libc.so.6"),
          "native slice");
    const struct jval *req = slice_at(ev, CHROMETRACE_SPAN_TID, "request", 1000);
    const struct jval *parse = slice_at(ev, CHROMETRACE_SPAN_TID, "parse", 2000);
    CHECK(req && jget(req, "dur")->num == 30000 &&
              jis_str(jget(jget(req, "args"), "request"), "1152921504606846976"),
          "request slice");
    CHECK(parse && jget(parse, "dur")->num == 1000 && jis_str(jget(parse, "cat"), "stage"),
          "stage nested on the same lane");
    jfree(&root);
    buf_fini(&out);
    profile_fini(&p);
    return 0;
}

/* The HTML's embedded data is valid JSON too, and describes the same tree. */
static int test_html_data(void)
{
    struct profile p;
    build(&p);
    struct buf out;
    buf_init(&out, 0);
    CHECK(export_write(&p, EXPORT_HTML, NULL, &out, NULL) == 0, "export");
    const char *open = "<script type=\"application/json\" id=\"crux-data\">";
    const char *start = strstr(buf_cstr(&out), open);
    CHECK(start, "data element");
    start += strlen(open);
    const char *end = strstr(start, "</script>");
    CHECK(end, "data end");
    struct jval root;
    CHECK(json_parse(start, (size_t)(end - start), &root) == 0, "valid JSON");
    const struct jval *nodes = jget(&root, "nodes");
    const struct jval *frames = jget(&root, "frames");
    CHECK(jget(&root, "total")->num == 17, "total");
    CHECK(nodes && nodes->len == 3 * 5, "5 nodes besides the root");
    CHECK(frames && frames->len == 4 * 5, "5 frames");
    CHECK(nodes->items[2].num == 17 && nodes->items[1].num == 1, "thread node holds all");
    jfree(&root);
    buf_fini(&out);
    profile_fini(&p);
    return 0;
}

static int test_speedscope_golden_shape(void)
{
    struct profile p;
    profile_init(&p);
    p.meta.duration_ns = 1000000000; /* 4 ticks in 1 s: a sample weighs 0.25 s */
    p.meta.ticks = 4;
    uint32_t a = frame(&p, "f", "a.py", 1, FRAME_PYTHON);
    profile_add(&p, &(struct psample){
                        .stack = profile_stack(&p, &a, 1), .weight = 3, .state = TSTATE_RUNNING});
    struct buf out;
    buf_init(&out, 0);
    struct export_opts o = {.title = "x"};
    CHECK(export_write(&p, EXPORT_SPEEDSCOPE, &o, &out, NULL) == 0, "export");
    const char *want =
        "{\"$schema\":\"https://www.speedscope.app/file-format-schema.json\",\"exporter\":\"crux\","
        "\"name\":\"x\",\"activeProfileIndex\":0,\"shared\":{\"frames\":[{\"name\":\"f\","
        "\"file\":\"a.py\",\"line\":1}]},\"profiles\":[{\"type\":\"sampled\",\"name\":\"x\","
        "\"unit\":\"seconds\",\"startValue\":0,\"endValue\":0.75,\"samples\":[[0]],"
        "\"weights\":[0.75]}]}\n";
    CHECK(strcmp(buf_cstr(&out), want) == 0, "got %s", buf_cstr(&out));
    buf_fini(&out);
    profile_fini(&p);
    return 0;
}

int main(void)
{
    RUN(test_checker_rejects);
    RUN(test_escape);
    RUN(test_escape_fuzz);
    RUN(test_writer);
    RUN(test_writer_errors);
    RUN(test_speedscope);
    RUN(test_speedscope_golden_shape);
    RUN(test_columns);
    RUN(test_speedscope_threads);
    RUN(test_gecko);
    RUN(test_chrome_trace);
    RUN(test_html_data);
    return TEST_SUMMARY("export_json");
}
