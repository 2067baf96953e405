// SPDX-License-Identifier: MIT
// ELF symbol and section lookup with elfutils' libelf: it handles both classes, byte orders
// and section-index escapes, which a hand-written parser would have to get right again.
#include "target/elffile.h"

#include <stdlib.h>
#include <errno.h>
#include <fcntl.h>
#include <gelf.h>
#include <libelf.h>
#include <string.h>
#include <unistd.h>

#include "util/xalloc.h"

struct elffile {
    int fd;
    Elf *elf;
    size_t shstrndx;
    GElf_Ehdr ehdr;
    uint64_t load_vaddr; /* first PT_LOAD p_vaddr rounded down to its alignment */
};

static uint64_t first_load_vaddr(Elf *elf)
{
    size_t n = 0;
    if (elf_getphdrnum(elf, &n) != 0)
        return 0;
    for (size_t i = 0; i < n; i++) {
        GElf_Phdr ph;
        if (!gelf_getphdr(elf, (int)i, &ph) || ph.p_type != PT_LOAD)
            continue;
        uint64_t align = ph.p_align ? ph.p_align : 1;
        return ph.p_vaddr & ~(align - 1);
    }
    return 0;
}

int elffile_open(const char *path, struct elffile **out, struct errbuf *eb)
{
    if (elf_version(EV_CURRENT) == EV_NONE)
        return errbuf_set(eb, ERR_SYS, "libelf is unusable: %s", elf_errmsg(-1));
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        int rc = err_from_errno(errno);
        return errbuf_set(eb, rc, "cannot open %s: %s", path, strerror(errno));
    }
    Elf *elf = elf_begin(fd, ELF_C_READ_MMAP, NULL);
    struct elffile *ef = xcalloc(1, sizeof(*ef));
    ef->fd = fd;
    ef->elf = elf;
    if (!elf || elf_kind(elf) != ELF_K_ELF || !gelf_getehdr(elf, &ef->ehdr) ||
        elf_getshdrstrndx(elf, &ef->shstrndx) != 0) {
        elffile_free(ef);
        return errbuf_set(eb, ERR_ARG, "%s is not a readable ELF file", path);
    }
    ef->load_vaddr = first_load_vaddr(elf);
    *out = ef;
    return 0;
}

void elffile_free(struct elffile *ef)
{
    if (!ef)
        return;
    if (ef->elf)
        elf_end(ef->elf);
    close(ef->fd);
    free(ef);
}

static int find_in(const struct elffile *ef, Elf_Scn *scn, const GElf_Shdr *sh, const char *name,
                   uint64_t *value, uint64_t *size)
{
    Elf_Data *data = elf_getdata(scn, NULL);
    if (!data || !sh->sh_entsize)
        return ERR_NOT_FOUND;
    size_t count = sh->sh_size / sh->sh_entsize;
    for (size_t i = 0; i < count; i++) {
        GElf_Sym sym;
        if (!gelf_getsym(data, (int)i, &sym) || sym.st_shndx == SHN_UNDEF)
            continue;
        const char *s = elf_strptr(ef->elf, sh->sh_link, sym.st_name);
        if (s && strcmp(s, name) == 0) {
            *value = sym.st_value;
            if (size)
                *size = sym.st_size;
            return 0;
        }
    }
    return ERR_NOT_FOUND;
}

int elffile_symbol(const struct elffile *ef, const char *name, uint64_t *value, uint64_t *size)
{
    /* .dynsym first: stripped executables (Debian's python3) keep only it. */
    static const unsigned kinds[2] = {SHT_DYNSYM, SHT_SYMTAB};
    for (int k = 0; k < 2; k++) {
        Elf_Scn *scn = NULL;
        while ((scn = elf_nextscn(ef->elf, scn)) != NULL) {
            GElf_Shdr sh;
            if (!gelf_getshdr(scn, &sh) || sh.sh_type != kinds[k])
                continue;
            if (find_in(ef, scn, &sh, name, value, size) == 0)
                return 0;
        }
    }
    return ERR_NOT_FOUND;
}

int elffile_section(const struct elffile *ef, const char *name, uint64_t *addr, uint64_t *size)
{
    Elf_Scn *scn = NULL;
    while ((scn = elf_nextscn(ef->elf, scn)) != NULL) {
        GElf_Shdr sh;
        if (!gelf_getshdr(scn, &sh))
            continue;
        const char *s = elf_strptr(ef->elf, ef->shstrndx, sh.sh_name);
        if (s && strcmp(s, name) == 0) {
            *addr = sh.sh_addr;
            *size = sh.sh_size;
            return 0;
        }
    }
    return ERR_NOT_FOUND;
}

uint64_t elffile_bias(const struct elffile *ef, uint64_t map_start)
{
    if (ef->ehdr.e_type != ET_DYN)
        return 0;
    return map_start - ef->load_vaddr;
}

int elffile_is_dyn(const struct elffile *ef)
{
    return ef->ehdr.e_type == ET_DYN;
}
