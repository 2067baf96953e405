// SPDX-License-Identifier: MIT
// marshal version 2 encoding of ints, floats, strs, tuples and dicts.
#include "export/marshal.h"

#include <string.h>

#include "export/export.h"

#define TYPE_NULL '0'
#define TYPE_INT 'i'
#define TYPE_LONG 'l'
#define TYPE_BINARY_FLOAT 'g'
#define TYPE_UNICODE 'u'
#define TYPE_TUPLE '('
#define TYPE_DICT '{'

/* Appends the code `type` then the low 32 bits of `v`, little-endian. */
static int code_u32(struct buf *b, char type, uint32_t v)
{
    unsigned char tmp[5] = {(unsigned char)type, (unsigned char)v, (unsigned char)(v >> 8),
                            (unsigned char)(v >> 16), (unsigned char)(v >> 24)};
    return buf_append(b, tmp, sizeof(tmp));
}

/* TYPE_LONG: the magnitude in 15-bit digits (PyLong_MARSHAL_SHIFT), least significant first;
 * the count's sign is the number's. marshal refuses a most significant digit of 0. */
static int long_int(struct buf *b, int64_t v)
{
    uint64_t mag = v < 0 ? 0 - (uint64_t)v : (uint64_t)v;
    unsigned char digits[2 * 5]; /* 64 bits need at most 5 digits of 15 */
    int32_t n = 0;
    while (mag) {
        digits[2 * n] = (unsigned char)(mag & 0xff);
        digits[2 * n + 1] = (unsigned char)((mag >> 8) & 0x7f);
        mag >>= 15;
        n++;
    }
    int rc = code_u32(b, TYPE_LONG, (uint32_t)(v < 0 ? -n : n));
    return rc ? rc : buf_append(b, digits, 2 * (size_t)n);
}

int marshal_int(struct buf *b, int64_t v)
{
    if (v >= INT32_MIN && v <= INT32_MAX)
        return code_u32(b, TYPE_INT, (uint32_t)(int32_t)v);
    return long_int(b, v);
}

int marshal_float(struct buf *b, double v)
{
    uint64_t bits;
    memcpy(&bits, &v, sizeof(bits));
    unsigned char tmp[9] = {TYPE_BINARY_FLOAT};
    for (int i = 0; i < 8; i++)
        tmp[1 + i] = (unsigned char)(bits >> (8 * i));
    return buf_append(b, tmp, sizeof(tmp));
}

int marshal_str(struct buf *b, const char *s, size_t n)
{
    size_t clean = export_utf8_clean_len(s, n);
    if (clean > INT32_MAX)
        return ERR_TOO_LARGE;
    int rc = code_u32(b, TYPE_UNICODE, (uint32_t)clean);
    if (rc)
        return rc;
    return clean == n ? buf_append(b, s, n) : export_utf8_clean(b, s, n);
}

int marshal_tuple(struct buf *b, uint32_t n)
{
    return code_u32(b, TYPE_TUPLE, n);
}

int marshal_dict(struct buf *b)
{
    return buf_putc(b, TYPE_DICT);
}

int marshal_dict_end(struct buf *b)
{
    return buf_putc(b, TYPE_NULL);
}
