// SPDX-License-Identifier: MIT
// Unit tests for cpython/pydict: keys headers parsed from byte images, and dicts, instance
// attributes and ints laid out by hand in this process's own memory for the 3.8-3.10 layout
// (dk_size, {hash, key, value} entries, ma_values split tables, tp_dictoffset) and the 3.11+
// ones (log2 sizes and kinds, {key, value} entries, managed dicts: 3.11 values pointer, 3.12
// tagged word, 3.13 inline values), with the generated offsets of each version.
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "check.h"
#include "cpython/offsets.h"
#include "cpython/pydict.h"
#include "pyimage.h"

static _Alignas(16) uint8_t type_other[64]; /* any type but the ones checked */
static struct pydict D;

static void setup(uint32_t minor)
{
    O = offsets_for_minor(minor);
    used = 0;
    pydict_fini(&D);
    pydict_init(&D, getpid(), O, addr(type_dict), addr(type_str), addr(type_long));
}

/* --- Keys headers from byte images --------------------------------------------------------- */

static int test_parse_keys_38(void)
{
    const struct py_offsets *o = offsets_for_minor(9);
    uint8_t head[PY_KEYS_HEAD_MAX] = {0};
    struct pydict_keys k;
    put64(head, o->dk_size, 8);
    put64(head, o->dk_nentries, 5);
    CHECK(pydict_parse_keys(o, head, &k) == 0, "size 8");
    CHECK(k.nentries == 5 && k.entries == 40 + 8 && k.entry_size == 24 && !k.split,
          "1-byte indices: entries at %llu", (unsigned long long)k.entries);
    put64(head, o->dk_size, 256);
    CHECK(pydict_parse_keys(o, head, &k) == 0 && k.entries == 40 + 512, "2-byte indices");
    put64(head, o->dk_size, 1 << 16);
    CHECK(pydict_parse_keys(o, head, &k) == 0 && k.entries == 40 + 4 * 65536, "4-byte");
    put64(head, o->dk_size, 24);
    CHECK(pydict_parse_keys(o, head, &k) == ERR_CORRUPT, "size not a power of two");
    put64(head, o->dk_size, 8);
    put64(head, o->dk_nentries, 9);
    CHECK(pydict_parse_keys(o, head, &k) == ERR_CORRUPT, "more entries than slots");
    put64(head, o->dk_nentries, (uint64_t)-1);
    CHECK(pydict_parse_keys(o, head, &k) == ERR_CORRUPT, "negative entries");
    put64(head, o->dk_size, 1 << 16);
    put64(head, o->dk_nentries, PYDICT_MAX_ENTRIES + 1);
    CHECK(pydict_parse_keys(o, head, &k) == ERR_TOO_LARGE, "capped");
    return 0;
}

static int test_parse_keys_311(void)
{
    for (uint32_t m = 11; m <= 13; m++) {
        const struct py_offsets *o = offsets_for_minor(m);
        uint8_t head[PY_KEYS_HEAD_MAX] = {0};
        struct pydict_keys k;
        head[o->dk_log2_size] = 3;
        head[o->dk_log2_index_bytes] = 3;
        head[o->dk_kind] = 1;
        put64(head, o->dk_nentries, 2);
        CHECK(pydict_parse_keys(o, head, &k) == 0, "3.%u unicode", m);
        CHECK(k.entries == 32 + 8 && k.entry_size == 16 && !k.split && k.nentries == 2,
              "3.%u str-only table", m);
        head[o->dk_kind] = 0;
        head[o->dk_log2_size] = 8;
        head[o->dk_log2_index_bytes] = 9; /* 256 slots of 2 bytes */
        CHECK(pydict_parse_keys(o, head, &k) == 0 && k.entries == 32 + 512 && k.entry_size == 24,
              "3.%u general, 2-byte indices", m);
        head[o->dk_log2_index_bytes] = 8;
        CHECK(pydict_parse_keys(o, head, &k) == ERR_CORRUPT, "3.%u index bytes disagree", m);
        head[o->dk_log2_index_bytes] = 9;
        head[o->dk_kind] = 3;
        CHECK(pydict_parse_keys(o, head, &k) == ERR_CORRUPT, "3.%u unknown kind", m);
        head[o->dk_kind] = 2;
        CHECK(pydict_parse_keys(o, head, &k) == 0 && k.split && k.entry_size == 16, "3.%u split",
              m);
        head[o->dk_log2_size] = 40;
        CHECK(pydict_parse_keys(o, head, &k) == ERR_CORRUPT, "3.%u absurd size", m);
    }
    return 0;
}

/* --- Dicts in memory ------------------------------------------------------------------------ */

/* sys.modules-like: str keys; one deleted entry, one key a prefix of another. */
static int check_get_str(uint32_t minor, int kind)
{
    setup(minor);
    uint64_t mod_a = mk_int(1, addr(type_other)), mod_t = mk_int(2, addr(type_other));
    struct ent e[] = {
        {11, mk_str("sys"), mk_int(3, addr(type_other))},
        {12, mk_str("threadin"), mod_a},
        {13, O->dk_kind < 0 ? mk_str("threading") : 0, 0}, /* deleted */
        {14, mk_str("threading"), mod_t},
        {15, mk_str("threading.x"), mod_a},
    };
    uint64_t dict = mk_dict(mk_keys(3, kind, e, 5), 0, 4);
    uint64_t v = 0;
    int rc = pydict_get_str(&D, dict, "threading", &v);
    CHECK(rc == 0 && v == mod_t, "3.%u kind %d: threading -> %d", minor, kind, rc);
    CHECK(pydict_get_str(&D, dict, "sys", &v) == 0, "3.%u sys", minor);
    CHECK(pydict_get_str(&D, dict, "thread", &v) == ERR_NOT_FOUND, "3.%u absent", minor);
    CHECK(pydict_get_str(&D, dict + 8, "sys", &v) != 0, "3.%u not a dict header", minor);
    /* A str key whose type is not str never matches. */
    uint8_t *fake = (uint8_t *)(uintptr_t)e[0].key;
    put64(fake, O->ob_type, addr(type_other));
    CHECK(pydict_get_str(&D, dict, "sys", &v) == ERR_NOT_FOUND, "3.%u key type checked", minor);
    return 0;
}

static int test_get_str_every_version(void)
{
    for (uint32_t m = 8; m <= 13; m++) {
        if (check_get_str(m, 0))
            return 1;
        if (m >= 11 && check_get_str(m, 1))
            return 1;
    }
    return 0;
}

/* threading._active-like: int keys (hash = the value) -> objects. */
static int test_items_int_keys(void)
{
    for (uint32_t m = 8; m <= 13; m++) {
        setup(m);
        uint64_t idents[3] = {0x7f0123456700ULL, 140737351526208ULL, 5};
        struct ent e[3];
        for (int i = 0; i < 3; i++)
            e[i] = (struct ent){idents[i], mk_int(idents[i], addr(type_long)),
                                mk_int(100 + (uint64_t)i, addr(type_other))};
        e[1].value = 0; /* deleted on 3.8-3.10 (key left), popped */
        uint64_t dict = mk_dict(mk_keys(3, 0, e, 3), 0, 2);
        struct pydict_item it[4];
        size_t n = 0;
        CHECK(pydict_items(&D, dict, it, 4, &n) == 0 && n == 2, "3.%u two live items: %zu", m, n);
        uint64_t v;
        CHECK(pydict_read_int(&D, it[0].key, &v) == 0 && v == idents[0] &&
                  (uint64_t)it[0].hash == v,
              "3.%u ident %llx", m, (unsigned long long)v);
        CHECK(pydict_read_int(&D, it[1].key, &v) == 0 && v == 5, "3.%u small int", m);
        CHECK(pydict_items(&D, dict, it, 1, &n) == ERR_TOO_LARGE, "3.%u cap", m);
        CHECK(pydict_read_int(&D, it[0].value, &v) == ERR_CORRUPT, "3.%u not an int", m);
    }
    return 0;
}

static int test_read_int_edges(void)
{
    for (uint32_t m = 8; m <= 13; m++) {
        setup(m);
        uint64_t v = 1;
        CHECK(pydict_read_int(&D, mk_int(0, addr(type_long)), &v) == 0 && v == 0, "3.%u zero", m);
        uint64_t big = (1ULL << 62) + 12345;
        CHECK(pydict_read_int(&D, mk_int(big, addr(type_long)), &v) == 0 && v == big,
              "3.%u three digits", m);
        uint8_t *p = (uint8_t *)(uintptr_t)mk_int(7, addr(type_long));
        put64(p, O->long_tag, m >= 12 ? (1 << 3) | 2 : (uint64_t)-1);
        CHECK(pydict_read_int(&D, addr(p), &v) == ERR_CORRUPT, "3.%u negative", m);
        put64(p, O->long_tag, m >= 12 ? 9 << 3 : 9);
        CHECK(pydict_read_int(&D, addr(p), &v) == ERR_CORRUPT, "3.%u too many digits", m);
    }
    return 0;
}

/* --- Instance attributes ------------------------------------------------------------------- */

/* A Thread-like object's attributes as shared keys: _target, _name, _ident. */
static uint64_t shared_keys(int kind)
{
    struct ent e[] = {{1, mk_str("_target"), 0}, {2, mk_str("_name"), 0}, {3, mk_str("_ident"), 0}};
    return mk_keys(3, kind, e, 3);
}

/* 3.8-3.10: __dict__ at tp_dictoffset, a split table (ma_values) or a combined one. */
static int test_attr_dictoffset(void)
{
    for (uint32_t m = 8; m <= 10; m++) {
        setup(m);
        uint64_t name = mk_str("loader-1");
        uint64_t vals[3] = {mk_int(1, addr(type_other)), name, 0};
        uint64_t dict = mk_dict(shared_keys(0), mk_values(vals, 3, 1), 2);
        uint64_t type = mk_type(1ULL << 9, 16, 32, 0);
        uint8_t *obj = alloc(32);
        put64(obj, O->ob_type, type);
        put64(obj, 16, dict);
        uint64_t v = 0;
        CHECK(pydict_attr_str(&D, addr(obj), "_name", &v) == 0 && v == name, "3.%u split", m);
        CHECK(pydict_attr_str(&D, addr(obj), "_ident", &v) == ERR_NOT_FOUND, "3.%u unset", m);
        CHECK(pydict_attr_str(&D, addr(obj), "_daemonic", &v) == ERR_NOT_FOUND, "3.%u none", m);
        struct ent e[] = {{7, mk_str("_name"), name}};
        put64(obj, 16, mk_dict(mk_keys(3, 0, e, 1), 0, 1));
        CHECK(pydict_attr_str(&D, addr(obj), "_name", &v) == 0 && v == name, "3.%u combined", m);
        put64(obj, 16, 0);
        CHECK(pydict_attr_str(&D, addr(obj), "_name", &v) == ERR_NOT_FOUND, "3.%u no dict", m);
    }
    return 0;
}

/* An object with a managed dict: `pre` words before it, `after` bytes after the header. */
static uint8_t *mk_managed(uint64_t type, size_t after)
{
    uint8_t *base = alloc(32 + 16 + after);
    uint8_t *obj = base + 32;
    put64(obj, O->ob_type, type);
    return obj;
}

static int test_attr_managed_311_312(void)
{
    for (uint32_t m = 11; m <= 12; m++) {
        setup(m);
        uint64_t name = mk_str("MainThread");
        uint64_t vals[3] = {0, name, mk_int(9, addr(type_long))};
        uint64_t values = mk_values(vals, 3, 1);
        uint64_t type = mk_type((1ULL << 9) | (1ULL << 4), -1, 16, shared_keys(2));
        uint8_t *obj = mk_managed(type, 0);
        if (m == 11)
            put64(obj, -32, values);
        else
            put64(obj, -24, values - 1); /* tagged */
        uint64_t v = 0;
        uint64_t r0 = D.reads;
        CHECK(pydict_attr_str(&D, addr(obj), "_name", &v) == 0 && v == name, "3.%u values", m);
        uint64_t first = D.reads - r0;
        CHECK(pydict_attr_str(&D, addr(obj), "_target", &v) == ERR_NOT_FOUND, "3.%u unset", m);
        r0 = D.reads;
        CHECK(pydict_attr_str(&D, addr(obj), "_name", &v) == 0 && v == name, "3.%u again", m);
        CHECK(D.reads - r0 < first, "3.%u second lookup memoized: %llu then %llu reads", m,
              (unsigned long long)first, (unsigned long long)(D.reads - r0));
        /* The dict materialized (`t.__dict__` used, or too many attributes): values gone. */
        struct ent e[] = {{5, mk_str("_name"), name}};
        uint64_t dict = mk_dict(mk_keys(3, 1, e, 1), 0, 1);
        if (m == 11) {
            put64(obj, -32, 0);
            put64(obj, -24, dict);
        } else {
            put64(obj, -24, dict);
        }
        pydict_pass(&D);
        CHECK(pydict_attr_str(&D, addr(obj), "_name", &v) == 0 && v == name, "3.%u dict", m);
        CHECK(pydict_attr_str(&D, addr(obj), "x", &v) == ERR_NOT_FOUND, "3.%u dict absent", m);
    }
    return 0;
}

static int test_attr_inline_313(void)
{
    setup(13);
    uint64_t name = mk_str("renamed");
    uint64_t type = mk_type((1ULL << 9) | (1ULL << 4) | (1ULL << 2), -1, 16, shared_keys(2));
    uint8_t *obj = mk_managed(type, 8 + 8 * 4);
    uint8_t *inl = obj + 16;
    inl[0] = 4;
    inl[1] = 2;
    inl[2] = 1;
    inl[O->dv_valid] = 1;
    put64(inl, 8 + 8, name); /* values[1]: _name */
    uint64_t v = 0;
    CHECK(pydict_attr_str(&D, addr(obj), "_name", &v) == 0 && v == name, "inline values");
    /* Invalidated: the dict at obj - 24 holds the attributes now. */
    inl[O->dv_valid] = 0;
    uint64_t other = mk_str("from-dict");
    struct ent e[] = {{5, mk_str("_name"), other}};
    put64(obj, -24, mk_dict(mk_keys(3, 1, e, 1), 0, 1));
    pydict_pass(&D);
    CHECK(pydict_attr_str(&D, addr(obj), "_name", &v) == 0 && v == other, "invalid values");
    /* An index past the values' capacity is torn data. */
    inl[O->dv_valid] = 1;
    inl[0] = 1;
    pydict_pass(&D);
    CHECK(pydict_attr_str(&D, addr(obj), "_name", &v) == ERR_CORRUPT, "capacity checked");
    return 0;
}

/* Unreadable and implausible pointers fail cleanly. */
static int test_unreadable(void)
{
    setup(12);
    uint64_t v;
    CHECK(pydict_get_str(&D, 0, "x", &v) == ERR_CORRUPT, "NULL dict");
    CHECK(pydict_get_str(&D, 0x10, "x", &v) != 0, "unmapped dict");
    uint64_t dict = mk_dict(0x1000, 0, 1);
    CHECK(pydict_get_str(&D, dict, "x", &v) == ERR_READ, "unmapped keys");
    CHECK(pydict_attr_str(&D, 0x2000, "x", &v) == ERR_READ, "unmapped object");
    char longkey[PYDICT_MAX_KEY + 2];
    memset(longkey, 'a', sizeof(longkey) - 1);
    longkey[sizeof(longkey) - 1] = '\0';
    struct ent e[] = {{5, mk_str("_name"), 8}};
    dict = mk_dict(mk_keys(3, 1, e, 1), 0, 1);
    CHECK(pydict_get_str(&D, dict, longkey, &v) == ERR_ARG, "key too long");
    return 0;
}

int main(void)
{
    RUN(test_parse_keys_38);
    RUN(test_parse_keys_311);
    RUN(test_get_str_every_version);
    RUN(test_items_int_keys);
    RUN(test_read_int_edges);
    RUN(test_attr_dictoffset);
    RUN(test_attr_managed_311_312);
    RUN(test_attr_inline_313);
    RUN(test_unreadable);
    pydict_fini(&D);
    return TEST_SUMMARY("pydict");
}
