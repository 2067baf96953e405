// SPDX-License-Identifier: MIT
// str objects: PEP 393 compact and legacy layouts, kinds 1/2/4, converted on our side.
#include "cpython/pystr.h"

#include <string.h>

#include "target/mem.h"
#include "util/rawfield.h"

#define STR_HEAD_READ PY_STR_HEAD_MAX /* header plus the start of the data in one read */
#define STR_MAX_CHARS 4096            /* longer names are cut */

static size_t put_utf8(uint32_t cp, char *out, size_t pos, size_t cap)
{
    char tmp[4];
    size_t n;
    if ((cp >= 0xD800 && cp <= 0xDFFF) || cp > 0x10FFFF)
        cp = 0xFFFD;
    if (cp < 0x20 || (cp >= 0x7f && cp <= 0x9f))
        cp = '?'; /* control characters (a file name given to compile()): see util/text.h */
    if (cp < 0x80) {
        tmp[0] = (char)cp;
        n = 1;
    } else if (cp < 0x800) {
        tmp[0] = (char)(0xC0 | (cp >> 6));
        tmp[1] = (char)(0x80 | (cp & 0x3F));
        n = 2;
    } else if (cp < 0x10000) {
        tmp[0] = (char)(0xE0 | (cp >> 12));
        tmp[1] = (char)(0x80 | ((cp >> 6) & 0x3F));
        tmp[2] = (char)(0x80 | (cp & 0x3F));
        n = 3;
    } else {
        tmp[0] = (char)(0xF0 | (cp >> 18));
        tmp[1] = (char)(0x80 | ((cp >> 12) & 0x3F));
        tmp[2] = (char)(0x80 | ((cp >> 6) & 0x3F));
        tmp[3] = (char)(0x80 | (cp & 0x3F));
        n = 4;
    }
    if (pos + n >= cap)
        return 0;
    memcpy(out + pos, tmp, n);
    return n;
}

size_t pystr_to_utf8(const uint8_t *data, size_t count, int kind, char *out, size_t cap)
{
    size_t pos = 0;
    if (cap == 0)
        return 0;
    for (size_t i = 0; i < count; i++) {
        uint32_t cp;
        if (kind == 1) {
            cp = data[i];
        } else if (kind == 2) {
            uint16_t v;
            memcpy(&v, data + 2 * i, 2);
            cp = v;
        } else {
            memcpy(&cp, data + 4 * i, 4);
        }
        size_t w = put_utf8(cp, out, pos, cap);
        if (!w)
            break;
        pos += w;
    }
    out[pos] = '\0';
    return pos;
}

int pystr_read(pid_t pid, const struct py_offsets *o, uint64_t type_str, uint64_t addr, char *out,
               size_t cap, size_t *len)
{
    uint8_t head[STR_HEAD_READ];
    size_t head_len = sizeof(head);
    if (!addr || (addr & 7))
        return ERR_CORRUPT;
    /* The object may end just before an unmapped page: fall back to the smallest header
     * (a compact ASCII object is only sizeof(PyASCIIObject) + length + 1 bytes), and read
     * the data separately. */
    if (mem_read(pid, addr, head, head_len)) {
        head_len = (size_t)o->str_ascii_size;
        int rc = mem_read(pid, addr, head, head_len);
        if (rc)
            return rc;
    }
    if (type_str && raw_u64(head, o->ob_type) != type_str)
        return ERR_CORRUPT;
    int64_t length = (int64_t)raw_u64(head, o->str_length);
    uint32_t state;
    memcpy(&state, head + o->str_state, sizeof(state));
    int kind = (int)((state >> 2) & 7);
    int compact = (state >> 5) & 1;
    int ascii = (state >> 6) & 1;
    if (length < 0 || (kind != 1 && kind != 2 && kind != 4) || (ascii && kind != 1))
        return ERR_CORRUPT;
    size_t count = length > STR_MAX_CHARS ? STR_MAX_CHARS : (size_t)length;
    size_t nbytes = count * (size_t)kind;
    uint64_t data_addr;
    size_t need = compact ? (size_t)(ascii ? o->str_ascii_size : o->str_compact_size)
                          : (size_t)o->str_data + 8;
    if (head_len < need) {
        int rc = mem_read(pid, addr + head_len, head + head_len, need - head_len);
        if (rc)
            return rc;
        head_len = need;
    }
    if (compact)
        data_addr = addr + (uint64_t)(ascii ? o->str_ascii_size : o->str_compact_size);
    else
        data_addr = raw_u64(head, o->str_data);
    uint8_t data[STR_MAX_CHARS * 4];
    uint64_t in_head = addr + head_len > data_addr ? addr + head_len - data_addr : 0;
    if (compact && data_addr >= addr && in_head >= nbytes) {
        memcpy(data, head + (data_addr - addr), nbytes);
    } else {
        if (!data_addr)
            return ERR_CORRUPT;
        int rc = mem_read(pid, data_addr, data, nbytes);
        if (rc)
            return rc;
    }
    *len = pystr_to_utf8(data, count, kind, out, cap);
    return 0;
}
