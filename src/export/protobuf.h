// SPDX-License-Identifier: MIT
// A protocol-buffers wire-format encoder: varints, length-delimited fields, packed repeated.
#ifndef CRUX_PROTOBUF_H
#define CRUX_PROTOBUF_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "util/buf.h"
#include "util/err.h"

/* The encoder writes what https://protobuf.dev/programming-guides/encoding/ describes, and
 * nothing of the schema: callers name each field by number and pick the function that
 * matches its declared type. A message is a sequence of fields, each a tag (field number << 3
 * | wire type, as a varint) and a payload; fields may come in any order and a repeated field
 * is simply written again. A nested message is encoded into its own buffer first, then
 * appended as a length-delimited field (pb_message), since its length comes before it.
 *
 * Scalar fields follow proto3: a value equal to the default (0, false) is not written at all,
 * which a reader takes as the default. Length-delimited fields (strings, bytes, messages) are
 * always written, even empty, because a repeated string's empty entries count.
 *
 * Every function appends to `b` and returns 0, or ERR_TOO_LARGE at b's cap (the buffer then
 * holds part of the field). None allocates beyond the buffer's own growth. */

enum pb_wire {
    PB_VARINT = 0, /* int32, int64, uint32, uint64, bool, enum */
    PB_I64 = 1,    /* fixed64, sfixed64, double */
    PB_LEN = 2,    /* string, bytes, embedded messages, packed repeated fields */
    PB_I32 = 5,    /* fixed32, sfixed32, float */
};

#define PB_VARINT_MAX 10 /* bytes in the longest varint (a 64-bit value) */

/* Number of bytes the varint encoding of `v` takes (1 to 10). */
size_t pb_varint_size(uint64_t v);

/* Appends `v` as a base-128 varint: 7 bits a byte, least significant group first, the high
 * bit set on every byte but the last. */
int pb_varint(struct buf *b, uint64_t v) MUST_CHECK;

/* Appends the tag of field `field` (1 to 2^29 - 1) with wire type `w`. */
int pb_tag(struct buf *b, uint32_t field, enum pb_wire w) MUST_CHECK;

/* A uint64/uint32 (or enum) field; nothing when v is 0. */
int pb_uint(struct buf *b, uint32_t field, uint64_t v) MUST_CHECK;

/* An int64/int32 field (two's complement: a negative value takes 10 bytes; not zigzag, which
 * is sint64); nothing when v is 0. */
int pb_int(struct buf *b, uint32_t field, int64_t v) MUST_CHECK;

/* A bool field; nothing when false. */
int pb_bool(struct buf *b, uint32_t field, bool v) MUST_CHECK;

/* A length-delimited field holding the `n` bytes at `p` (a bytes or string field, or an
 * already encoded message), always written. A string field must be valid UTF-8: the caller
 * sees to that (export_utf8_clean). */
int pb_bytes(struct buf *b, uint32_t field, const void *p, size_t n) MUST_CHECK;

/* An embedded message field whose encoding is in `msg`; always written (an empty message is
 * a present one). */
int pb_message(struct buf *b, uint32_t field, const struct buf *msg) MUST_CHECK;

/* A fixed64 field (8 bytes, little-endian); nothing when v is 0. */
int pb_fixed64(struct buf *b, uint32_t field, uint64_t v) MUST_CHECK;

/* A packed repeated varint field (uint64, or int64 values that are not negative): one
 * length-delimited field holding the `n` varints; nothing when n is 0. */
int pb_packed(struct buf *b, uint32_t field, const uint64_t *v, size_t n) MUST_CHECK;

/* One field read back by pb_read: its number and wire type, and either its value (varint,
 * fixed64, fixed32) or where its bytes are (length-delimited; `data` points into the input). */
struct pb_field {
    uint32_t field;
    enum pb_wire wire;
    uint64_t value;
    const unsigned char *data;
    size_t len;
};

/* Reads the field at *p (before `end`) into *f and moves *p past it. ERR_CORRUPT on a
 * truncated field, a varint past 10 bytes, field number 0 or a group wire type (3, 4). For
 * reading small replies (an OTLP export response) and tests; nothing is allocated. */
int pb_read(const unsigned char **p, const unsigned char *end, struct pb_field *f) MUST_CHECK;

#endif
