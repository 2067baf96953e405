// SPDX-License-Identifier: MIT
// Names that come from the target (stage names, span names, file names) made safe to print.
#ifndef CRUX_TEXT_H
#define CRUX_TEXT_H

#include <stddef.h>

/* Replaces, in place, every control character of the UTF-8 text `s` (`n` bytes) with '?':
 * C0 controls, DEL and the C1 controls (U+0080-U+009F, two bytes each). A name written to a
 * terminal could otherwise carry escape sequences, and one with a newline breaks the line-
 * based outputs. */
static inline void text_scrub(char *s, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c < 0x20 || c == 0x7f) {
            s[i] = '?';
        } else if (c == 0xc2 && i + 1 < n && (unsigned char)s[i + 1] >= 0x80 &&
                   (unsigned char)s[i + 1] <= 0x9f) {
            s[i] = '?';
            s[++i] = '?';
        }
    }
}

#endif
