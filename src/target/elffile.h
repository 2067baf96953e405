// SPDX-License-Identifier: MIT
// Symbols and sections of an ELF file on disk (through libelf), and its load bias.
#ifndef CRUX_ELFFILE_H
#define CRUX_ELFFILE_H

#include <stdint.h>

#include "util/err.h"

struct elffile;

/* Opens `path` (typically /proc/PID/root/... or /proc/PID/exe). Returns a new object through
 * *out; free it with elffile_free(). ERR_NOT_FOUND, ERR_PERM or ERR_ARG (not ELF). */
int elffile_open(const char *path, struct elffile **out, struct errbuf *eb) MUST_CHECK;
/* Releases the file. NULL is allowed. */
void elffile_free(struct elffile *ef);
/* Finds `name` in .dynsym, then .symtab; stores its st_value (unrelocated) and st_size.
 * ERR_NOT_FOUND when absent or undefined. */
int elffile_symbol(const struct elffile *ef, const char *name, uint64_t *value,
                   uint64_t *size) MUST_CHECK;
/* Finds the section `name`; stores its address (sh_addr, unrelocated) and size. */
int elffile_section(const struct elffile *ef, const char *name, uint64_t *addr,
                    uint64_t *size) MUST_CHECK;
/* The load bias of the file given `map_start`, the start of its mapping with file offset 0:
 * 0 for ET_EXEC, else map_start - (first PT_LOAD p_vaddr rounded down to p_align). */
uint64_t elffile_bias(const struct elffile *ef, uint64_t map_start);
/* True for ET_DYN (shared library or PIE), false for ET_EXEC. */
int elffile_is_dyn(const struct elffile *ef);

#endif
