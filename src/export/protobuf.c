// SPDX-License-Identifier: MIT
// Protocol-buffers wire format: varints, tags, length-delimited and packed fields.
#include "export/protobuf.h"

size_t pb_varint_size(uint64_t v)
{
    size_t n = 1;
    while (v >= 0x80) {
        v >>= 7;
        n++;
    }
    return n;
}

/* Encodes `v` into `out` (PB_VARINT_MAX bytes); returns the length. */
static size_t encode_varint(uint64_t v, unsigned char *out)
{
    size_t n = 0;
    while (v >= 0x80) {
        out[n++] = (unsigned char)(v | 0x80);
        v >>= 7;
    }
    out[n++] = (unsigned char)v;
    return n;
}

int pb_varint(struct buf *b, uint64_t v)
{
    unsigned char tmp[PB_VARINT_MAX];
    return buf_append(b, tmp, encode_varint(v, tmp));
}

int pb_tag(struct buf *b, uint32_t field, enum pb_wire w)
{
    return pb_varint(b, ((uint64_t)field << 3) | (uint64_t)w);
}

int pb_uint(struct buf *b, uint32_t field, uint64_t v)
{
    if (!v)
        return 0;
    /* Tag and value in one append: this is the hot path of a large profile. */
    unsigned char tmp[2 * PB_VARINT_MAX];
    size_t n = encode_varint(((uint64_t)field << 3) | PB_VARINT, tmp);
    n += encode_varint(v, tmp + n);
    return buf_append(b, tmp, n);
}

int pb_int(struct buf *b, uint32_t field, int64_t v)
{
    return pb_uint(b, field, (uint64_t)v);
}

int pb_bool(struct buf *b, uint32_t field, bool v)
{
    return pb_uint(b, field, v ? 1 : 0);
}

/* Tag and length of a length-delimited field of `n` bytes. */
static int len_header(struct buf *b, uint32_t field, size_t n)
{
    unsigned char tmp[2 * PB_VARINT_MAX];
    size_t k = encode_varint(((uint64_t)field << 3) | PB_LEN, tmp);
    k += encode_varint(n, tmp + k);
    return buf_append(b, tmp, k);
}

int pb_bytes(struct buf *b, uint32_t field, const void *p, size_t n)
{
    int rc = len_header(b, field, n);
    if (!rc)
        rc = buf_append(b, p, n);
    return rc;
}

int pb_message(struct buf *b, uint32_t field, const struct buf *msg)
{
    return pb_bytes(b, field, msg->data, msg->len);
}

int pb_fixed64(struct buf *b, uint32_t field, uint64_t v)
{
    if (!v)
        return 0;
    unsigned char tmp[PB_VARINT_MAX + 8];
    size_t n = encode_varint(((uint64_t)field << 3) | PB_I64, tmp);
    for (int i = 0; i < 8; i++)
        tmp[n++] = (unsigned char)(v >> (8 * i));
    return buf_append(b, tmp, n);
}

int pb_packed(struct buf *b, uint32_t field, const uint64_t *v, size_t n)
{
    if (!n)
        return 0;
    size_t len = 0;
    for (size_t i = 0; i < n; i++)
        len += pb_varint_size(v[i]);
    int rc = len_header(b, field, len);
    for (size_t i = 0; i < n && !rc; i++)
        rc = pb_varint(b, v[i]);
    return rc;
}

/* Reads a varint at *p; ERR_CORRUPT when it runs past `end` or past 10 bytes. */
static int read_varint(const unsigned char **p, const unsigned char *end, uint64_t *v)
{
    uint64_t x = 0;
    for (unsigned shift = 0; shift < 70 && *p < end; shift += 7) {
        unsigned char c = *(*p)++;
        x |= (uint64_t)(c & 0x7f) << shift;
        if (!(c & 0x80)) {
            *v = x;
            return 0;
        }
    }
    return ERR_CORRUPT;
}

/* Reads `n` (4 or 8) little-endian bytes. */
static int read_fixed(const unsigned char **p, const unsigned char *end, size_t n, uint64_t *v)
{
    if ((size_t)(end - *p) < n)
        return ERR_CORRUPT;
    uint64_t x = 0;
    for (size_t i = 0; i < n; i++)
        x |= (uint64_t)(*p)[i] << (8 * i);
    *p += n;
    *v = x;
    return 0;
}

int pb_read(const unsigned char **p, const unsigned char *end, struct pb_field *f)
{
    uint64_t tag = 0;
    int rc = read_varint(p, end, &tag);
    if (rc || (tag >> 3) == 0 || (tag >> 3) > 0x1fffffff)
        return ERR_CORRUPT;
    f->field = (uint32_t)(tag >> 3);
    f->wire = (enum pb_wire)(tag & 7);
    f->value = 0;
    f->data = NULL;
    f->len = 0;
    switch (f->wire) {
    case PB_VARINT:
        return read_varint(p, end, &f->value);
    case PB_I64:
        return read_fixed(p, end, 8, &f->value);
    case PB_I32:
        return read_fixed(p, end, 4, &f->value);
    case PB_LEN:
        rc = read_varint(p, end, &f->value);
        if (rc || f->value > (uint64_t)(end - *p))
            return ERR_CORRUPT;
        f->data = *p;
        f->len = (size_t)f->value;
        *p += f->len;
        return 0;
    }
    return ERR_CORRUPT;
}
