// SPDX-License-Identifier: MIT
// Unit tests for the generated offset tables and the _Py_DebugOffsets parser.
#include "cpython/offsets.h"

#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "check.h"

/* First bytes of _PyRuntime read from a live CPython 3.13.0 (tools/dump_debug_offsets.py). */
#define GOLDEN_313 "tests/golden/debug_offsets/3.13.0.hex"
#define GOLDEN_MAX 4096
#define VERSION_313 0x030d00f0u /* 3.13.0 final */

/* Word indexes in the 3.13 block used to corrupt it. */
#define W_VERSION 1
#define W_FREE_THREADED 2
#define W_TS 19
#define W_TS_CURRENT_FRAME (W_TS + 4)
#define W_STR_ASCII_SIZE (67 + 3)
#define W_IF 28
#define W_IF_LOCALSPLUS (W_IF + 4)
#define W_CO 34
#define W_CO_CODE_ADAPTIVE (W_CO + 9)
#define W_BYTES 64
#define W_BYTES_SVAL (W_BYTES + 2)

static uint8_t golden[GOLDEN_MAX];
static size_t golden_len;

static int hexval(int c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

/* Reads the hex golden file ('#' lines are comments) into `golden`. */
static int load_golden(void)
{
    FILE *f = fopen(GOLDEN_313, "r");
    CHECK(f != NULL, "cannot open %s (run from the repository root)", GOLDEN_313);
    char line[256];
    golden_len = 0;
    while (fgets(line, sizeof line, f)) {
        if (line[0] == '#')
            continue;
        for (size_t i = 0; hexval(line[i]) >= 0 && hexval(line[i + 1]) >= 0; i += 2) {
            if (golden_len == GOLDEN_MAX)
                break;
            golden[golden_len++] = (uint8_t)(hexval(line[i]) << 4 | hexval(line[i + 1]));
        }
    }
    fclose(f);
    CHECK(golden_len >= 584, "%s holds %zu bytes, want at least 584", GOLDEN_313, golden_len);
    return 0;
}

static void set_word(uint8_t *raw, unsigned i, uint64_t v)
{
    memcpy(raw + (size_t)i * 8, &v, sizeof v);
}

static uint64_t get_word(const uint8_t *raw, unsigned i)
{
    uint64_t v;
    memcpy(&v, raw + (size_t)i * 8, sizeof v);
    return v;
}

static int test_tables_exist(void)
{
    for (uint32_t minor = 8; minor <= 13; minor++) {
        const struct py_offsets *t = offsets_for_minor(minor);
        CHECK(t != NULL, "no table for 3.%u", minor);
        CHECK(t->minor == minor, "table for 3.%u says 3.%u", minor, t->minor);
    }
    CHECK(offsets_for_minor(7) == NULL, "3.7 has a table");
    CHECK(offsets_for_minor(14) == NULL, "3.14 has a table");
    return 0;
}

/* `f` is inside a struct of `size` bytes when the version has it, and -1 when it does not. */
static bool inside(int32_t f, int32_t size, bool present)
{
    if (!present)
        return f == -1;
    return f >= 0 && f < size;
}

static int check_runtime_interp(const struct py_offsets *t)
{
    uint32_t m = t->minor;
    CHECK(inside(t->rt_finalizing, t->rt_size, true), "3.%u rt_finalizing", m);
    CHECK(inside(t->rt_interp_head, t->rt_size, true), "3.%u rt_interp_head", m);
    CHECK(t->rt_interp_main == t->rt_interp_head + 8, "3.%u interpreters.main follows head", m);
    CHECK(inside(t->rt_tstate_current, t->rt_size, m <= 11), "3.%u rt_tstate_current", m);
    CHECK(inside(t->rt_gil, t->rt_size - t->gil_size + 1, m <= 11), "3.%u rt_gil", m);
    CHECK(inside(t->is_next, t->is_size, true), "3.%u is_next", m);
    CHECK(inside(t->is_id, t->is_size, true), "3.%u is_id", m);
    CHECK(inside(t->is_tstate_head, t->is_size, true), "3.%u is_tstate_head", m);
    CHECK(inside(t->is_gil_ptr, t->is_size, m >= 12), "3.%u is_gil_ptr", m);
    CHECK(t->gil_last_holder >= 0 && t->gil_last_holder + 8 <= t->gil_size, "3.%u gil", m);
    CHECK(t->gil_locked >= 0 && t->gil_locked + 4 <= t->gil_size, "3.%u gil_locked", m);
    return 0;
}

static int check_thread(const struct py_offsets *t)
{
    uint32_t m = t->minor;
    CHECK(t->ts_next >= 0 && t->ts_next < t->ts_interp, "3.%u ts_next < ts_interp", m);
    CHECK(inside(t->ts_interp, t->ts_size, true), "3.%u ts_interp", m);
    CHECK(inside(t->ts_frame, t->ts_size, true), "3.%u ts_frame", m);
    CHECK(inside(t->ts_thread_id, t->ts_size, true), "3.%u ts_thread_id", m);
    CHECK(inside(t->ts_native_thread_id, t->ts_size, m >= 11), "3.%u native id", m);
    CHECK(m < 11 || t->ts_native_thread_id == t->ts_thread_id + 8, "3.%u native id", m);
    CHECK(inside(t->ts_id, t->ts_size, true), "3.%u ts_id", m);
    CHECK(inside(t->ts_datastack_chunk, t->ts_size, m >= 11), "3.%u chunk", m);
    CHECK(m < 11 || (t->ts_datastack_top == t->ts_datastack_chunk + 8 &&
                     t->ts_datastack_limit == t->ts_datastack_top + 8 &&
                     t->ts_datastack_limit < t->ts_size),
          "3.%u datastack chunk/top/limit", m);
    CHECK(inside(t->ts_status, t->ts_size, m >= 12), "3.%u ts_status", m);
    CHECK(m < 12 || t->ts_status % 4 == 0, "3.%u ts_status aligned", m);
    CHECK(inside(t->ts_status_gil_bit, 32, m >= 12), "3.%u ts_status_gil_bit", m);
    CHECK(inside(t->cf_current_frame, 64, m == 11 || m == 12), "3.%u cf_current_frame", m);
    return 0;
}

static int check_frames(const struct py_offsets *t)
{
    uint32_t m = t->minor;
    bool old = m <= 10;
    CHECK(inside(t->fo_back, t->fo_size, old), "3.%u fo_back", m);
    CHECK(inside(t->fo_code, t->fo_size, old), "3.%u fo_code", m);
    CHECK(inside(t->fo_lasti, t->fo_size, old), "3.%u fo_lasti", m);
    CHECK(inside(t->fo_state, t->fo_size, old), "3.%u fo_state", m);
    CHECK(inside(t->if_previous, t->if_size, !old), "3.%u if_previous", m);
    CHECK(inside(t->if_code, t->if_size, !old), "3.%u if_code", m);
    CHECK(inside(t->if_instr, t->if_size, !old), "3.%u if_instr", m);
    CHECK(inside(t->if_owner, t->if_size, !old), "3.%u if_owner", m);
    CHECK(inside(t->if_is_entry, t->if_size, m == 11), "3.%u if_is_entry", m);
    CHECK(old || t->if_size % 8 == 0, "3.%u localsplus aligned", m);
    bool chunk = !old;
    CHECK(inside(t->ck_previous, t->ck_data, chunk), "3.%u ck_previous", m);
    CHECK(old || (t->ck_previous < t->ck_size && t->ck_size < t->ck_top && t->ck_top < t->ck_data),
          "3.%u chunk fields in order", m);
    return 0;
}

static int check_code_objects(const struct py_offsets *t)
{
    uint32_t m = t->minor;
    bool adaptive = m >= 11;
    CHECK(inside(t->co_filename, t->co_size, true), "3.%u co_filename", m);
    CHECK(inside(t->co_name, t->co_size, true), "3.%u co_name", m);
    CHECK(inside(t->co_qualname, t->co_size, adaptive), "3.%u co_qualname", m);
    CHECK(inside(t->co_firstlineno, t->co_size, true), "3.%u co_firstlineno", m);
    CHECK(inside(t->co_linetable, t->co_size, true), "3.%u co_linetable", m);
    CHECK(inside(t->co_code, t->co_size, !adaptive), "3.%u co_code", m);
    CHECK(adaptive ? t->co_code_adaptive == t->co_size : t->co_code_adaptive == -1,
          "3.%u co_code_adaptive ends the header", m);
    CHECK(inside(t->co_firsttraceable, t->co_size, adaptive), "3.%u co_firsttraceable", m);

    CHECK(t->ob_type == 8 && t->var_size == 16, "3.%u object header", m);
    CHECK(t->bytes_sval > t->var_size, "3.%u bytes_sval", m);
    CHECK(t->ob_type < t->str_length && t->str_length < t->str_state &&
              t->str_state < t->str_ascii_size && t->str_ascii_size < t->str_compact_size &&
              t->str_compact_size <= t->str_data,
          "3.%u str fields in order", m);
    return 0;
}

static int test_tables_sane(void)
{
    for (uint32_t minor = 8; minor <= 13; minor++) {
        const struct py_offsets *t = offsets_for_minor(minor);
        CHECK(t != NULL, "no table for 3.%u", minor);
        CHECK(check_runtime_interp(t) == 0, "3.%u runtime/interpreter", minor);
        CHECK(check_thread(t) == 0, "3.%u thread state", minor);
        CHECK(check_frames(t) == 0, "3.%u frames", minor);
        CHECK(check_code_objects(t) == 0, "3.%u code and objects", minor);
        CHECK(offsets_fit_reader(t), "3.%u fields inside the reader's header copies", minor);
        CHECK(offsets_fit_objects(t), "3.%u dict, type and int fields inside their copies", minor);
    }
    return 0;
}

/* The dict layouts pydict.c reads (CPYTHON.md "Python thread names" in docs/internals.md). */
static int test_tables_dict_layouts(void)
{
    for (uint32_t minor = 8; minor <= 10; minor++) {
        const struct py_offsets *t = offsets_for_minor(minor);
        CHECK(t->dk_size == 8 && t->dk_nentries == 32 && t->dk_indices == 40 && t->dk_kind < 0,
              "3.%u keys: dk_size, dk_nentries, dk_indices", minor);
        CHECK(t->ht_cached_keys < 0 && t->dv_valid < 0, "3.%u no managed dicts", minor);
    }
    for (uint32_t minor = 11; minor <= 13; minor++) {
        const struct py_offsets *t = offsets_for_minor(minor);
        CHECK(t->dk_size < 0 && t->dk_log2_size == 8 && t->dk_log2_index_bytes == 9 &&
                  t->dk_kind == 10 && t->dk_nentries == 24 && t->dk_indices == 32,
              "3.%u keys header", minor);
        CHECK(t->ht_cached_keys > t->tp_dictoffset, "3.%u ht_cached_keys", minor);
        CHECK(t->dv_values == (minor >= 13 ? 8 : 0), "3.%u values start", minor);
    }
    CHECK(offsets_for_minor(12)->long_tag == 16 && offsets_for_minor(11)->long_tag == 16,
          "ob_size / lv_tag follow the header");
    return 0;
}

/* Spot checks of layout facts from CPYTHON.md that the generic checks do not pin down. */
static int test_tables_known_facts(void)
{
    const struct py_offsets *t12 = offsets_for_minor(12);
    const struct py_offsets *t13 = offsets_for_minor(13);
    CHECK(offsets_for_minor(11)->str_ascii_size == 48, "3.11 PyASCIIObject has wstr");
    CHECK(t12->str_ascii_size == 40 && t13->str_compact_size == 56, "3.12+ string sizes");
    CHECK(t12->ts_status_gil_bit == 4, "3.12 `active` is bit 4, got %d", t12->ts_status_gil_bit);
    CHECK(t13->ts_status_gil_bit == 5, "3.13 `holds_gil` is bit 5, got %d", t13->ts_status_gil_bit);
    CHECK(t12->if_code == 0 && t12->if_previous == 8, "3.12 frame opens with f_code, previous");
    CHECK(offsets_for_minor(11)->if_code > 0, "3.11 frame opens with f_func");
    return 0;
}

static int test_debug_matches_table(void)
{
    CHECK(load_golden() == 0, "golden");
    uint64_t version = 0;
    struct py_offsets o;
    struct errbuf eb = {{0}};
    int rc = offsets_from_debug(golden, golden_len, &version, &o, &eb);
    CHECK(rc == 0, "offsets_from_debug: %s: %s", err_str(rc), eb.msg);
    CHECK(version == VERSION_313, "version 0x%llx", (unsigned long long)version);

    const struct py_offsets *t = offsets_for_minor(13);
    const int32_t *a = &o.rt_size;
    const int32_t *b = &t->rt_size;
    size_t nfields = (sizeof o - offsetof(struct py_offsets, rt_size)) / sizeof(int32_t);
    for (size_t i = 0; i < nfields; i++)
        CHECK(a[i] == b[i], "field %zu: debug %d, table %d", i, a[i], b[i]);
    CHECK(o.minor == 13, "minor %u", o.minor);
    CHECK(memcmp(&o, t, sizeof o) == 0, "whole struct equal");

    /* Only the block itself is needed, and a matching Py_Version is accepted. */
    version = VERSION_313;
    rc = offsets_from_debug(golden, 584, &version, &o, &eb);
    CHECK(rc == 0, "584 bytes with Py_Version: %s: %s", err_str(rc), eb.msg);
    return 0;
}

/* Runs the parser on a modified copy of the golden block; returns its result code. */
/* Parses a copy of the golden block with words idx[0..k) set to val[0..k). */
static int parse_words(const unsigned *idx, const uint64_t *val, size_t k, size_t n,
                       uint64_t version, struct errbuf *eb)
{
    uint8_t raw[GOLDEN_MAX];
    memcpy(raw, golden, golden_len);
    for (size_t i = 0; i < k; i++)
        set_word(raw, idx[i], val[i]);
    struct py_offsets o;
    memset(&o, 0xaa, sizeof o);
    struct py_offsets before = o;
    int rc = offsets_from_debug(raw, n, &version, &o, eb);
    if (rc != 0 && memcmp(&o, &before, sizeof o) != 0)
        return 1; /* a failed parse must leave `out` alone */
    return rc;
}

static int parse_copy(unsigned word_index, uint64_t value, size_t n, uint64_t version,
                      struct errbuf *eb)
{
    return parse_words(&word_index, &value, word_index > 0, n, version, eb);
}

static int test_debug_rejects(void)
{
    CHECK(load_golden() == 0, "golden");
    struct errbuf eb = {{0}};
    int rc;

    uint8_t raw[GOLDEN_MAX];
    memcpy(raw, golden, golden_len);
    raw[0] = 'X';
    uint64_t version = 0;
    struct py_offsets o;
    rc = offsets_from_debug(raw, golden_len, &version, &o, &eb);
    CHECK(rc == ERR_CORRUPT, "bad cookie: %d", rc);
    CHECK(strstr(eb.msg, "cookie") != NULL, "message: %s", eb.msg);

    rc = parse_copy(W_FREE_THREADED, 1, golden_len, 0, &eb);
    CHECK(rc == ERR_VERSION, "free-threaded: %d", rc);
    CHECK(strstr(eb.msg, "free-threaded builds are not supported yet"), "message: %s", eb.msg);

    rc = parse_copy(W_VERSION, 0x030e00f0, golden_len, 0, &eb);
    CHECK(rc == ERR_VERSION, "3.14: %d", rc);
    CHECK(strstr(eb.msg, "3.14.0") != NULL, "message names the version: %s", eb.msg);

    rc = parse_copy(W_VERSION, 0x040000f0, golden_len, 0, &eb);
    CHECK(rc == ERR_VERSION, "4.0: %d", rc);
    rc = parse_copy(W_VERSION, 0x030c00f0, golden_len, 0, &eb);
    CHECK(rc == ERR_CORRUPT, "3.12 cannot have the block: %d", rc);
    rc = parse_copy(0, 0, golden_len, 0x030d01f0, &eb);
    CHECK(rc == ERR_CORRUPT, "Py_Version 3.13.1 vs block 3.13.0: %d", rc);
    rc = parse_copy(0, 0, 583, 0, &eb);
    CHECK(rc == ERR_CORRUPT, "truncated: %d", rc);
    rc = parse_copy(0, 0, 16, 0, &eb);
    CHECK(rc == ERR_CORRUPT, "shorter than the header: %d", rc);
    return 0;
}

static int test_debug_rejects_offsets(void)
{
    CHECK(load_golden() == 0, "golden");
    struct errbuf eb = {{0}};
    uint64_t ts_size = get_word(golden, W_TS);
    int rc = parse_copy(W_TS_CURRENT_FRAME, ts_size, golden_len, 0, &eb);
    CHECK(rc == ERR_CORRUPT, "current_frame == size: %d", rc);
    CHECK(strstr(eb.msg, "thread_state") != NULL, "message: %s", eb.msg);
    rc = parse_copy(W_TS_CURRENT_FRAME, ts_size - 1, golden_len, 0, &eb);
    CHECK(rc == 0, "current_frame == size - 1 passes: %s", eb.msg);
    rc = parse_copy(W_TS, 0, golden_len, 0, &eb);
    CHECK(rc == ERR_CORRUPT, "zero size: %d", rc);
    rc = parse_copy(W_TS, (uint64_t)1 << 40, golden_len, 0, &eb);
    CHECK(rc == ERR_CORRUPT, "huge size: %d", rc);
    rc = parse_copy(W_STR_ASCII_SIZE, 1000, golden_len, 0, &eb);
    CHECK(rc == ERR_CORRUPT, "asciiobject_size past PyUnicodeObject: %d", rc);
    /* Fields placed beside an anchor must land inside the struct too. */
    rc = parse_copy(W_TS + 7, ts_size - 8, golden_len, 0, &eb);
    CHECK(rc == ERR_CORRUPT, "datastack_limit past the thread state: %d", rc);
    /* The reader copies frame headers into fixed slots: a header larger than those, or one
     * ending before the fields read from it, is refused (inside the struct or not). */
    rc = parse_copy(W_IF, 4096, golden_len, 0, &eb);
    CHECK(rc == 0, "a larger interpreter_frame alone passes: %s", eb.msg);
    const unsigned words[2] = {W_IF, W_IF_LOCALSPLUS};
    const uint64_t big[2] = {4096, 4000};
    rc = parse_words(words, big, 2, golden_len, 0, &eb);
    CHECK(rc == ERR_CORRUPT, "localsplus at 4000 (a frame header past the reader's slot): %d", rc);
    rc = parse_copy(W_IF_LOCALSPLUS, 16, golden_len, 0, &eb);
    CHECK(rc == ERR_CORRUPT, "localsplus at 16, before instr_ptr: %d", rc);
    const unsigned code_words[2] = {W_CO, W_CO_CODE_ADAPTIVE};
    const uint64_t big_code[2] = {4096, 4000};
    rc = parse_words(code_words, big_code, 2, golden_len, 0, &eb);
    CHECK(rc == ERR_CORRUPT, "code header of 4000 bytes (past the reader's copy): %d", rc);
    const unsigned bytes_words[2] = {W_BYTES, W_BYTES_SVAL};
    const uint64_t big_bytes[2] = {4096, 1000};
    rc = parse_words(bytes_words, big_bytes, 2, golden_len, 0, &eb);
    CHECK(rc == ERR_CORRUPT, "ob_sval at 1000: %d", rc);
    const unsigned ts_words[2] = {W_TS, W_TS_CURRENT_FRAME};
    const uint64_t big_ts[2] = {1u << 20, 1u << 19};
    rc = parse_words(ts_words, big_ts, 2, golden_len, 0, &eb);
    CHECK(rc == ERR_CORRUPT, "current_frame at 512 KiB (read for every thread, every round): %d",
          rc);
    return 0;
}

int main(void)
{
    RUN(test_tables_exist);
    RUN(test_tables_sane);
    RUN(test_tables_dict_layouts);
    RUN(test_tables_known_facts);
    RUN(test_debug_matches_table);
    RUN(test_debug_rejects);
    RUN(test_debug_rejects_offsets);
    return TEST_SUMMARY("offsets");
}
