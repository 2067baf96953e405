// SPDX-License-Identifier: MIT
// Interned frames, a stack trie and counters.
#include "profile/profile.h"

#include <stdlib.h>
#include <string.h>

#include "util/xalloc.h"

void profile_init(struct profile *p)
{
    memset(p, 0, sizeof(*p));
    strtab_init(&p->strs);
    hmap_init(&p->frame_index);
    hmap_init(&p->node_index);
    p->capnodes = 1024;
    p->nodes = xcalloc(p->capnodes, sizeof(*p->nodes));
    p->counts = xcalloc(p->capnodes, sizeof(*p->counts));
    p->nnodes = 1; /* id 0: the empty stack */
    p->max_samples = PROFILE_MAX_SAMPLES_DEFAULT;
}

void profile_fini(struct profile *p)
{
    strtab_fini(&p->strs);
    hmap_fini(&p->frame_index);
    hmap_fini(&p->node_index);
    free(p->frames);
    free(p->nodes);
    free(p->counts);
    free(p->samples);
    free(p->meta.command);
    free(p->meta.python_version);
    memset(p, 0, sizeof(*p));
}

uint32_t profile_str(struct profile *p, const char *s, size_t n)
{
    return strtab_intern(&p->strs, s, n);
}

static uint64_t frame_key(uint32_t name, uint32_t file, int32_t line, uint32_t kind)
{
    uint64_t k = hmap_hash64(((uint64_t)name << 32) | file);
    k = hmap_hash64(k ^ (((uint64_t)(uint32_t)line << 8) | kind));
    return k ? k : 1;
}

uint32_t profile_frame(struct profile *p, uint32_t name, uint32_t file, int32_t line,
                       enum frame_kind kind)
{
    /* The index maps a frame hash to id + 1; on a hash collision between different frames
     * we probe with a rehashed key until an equal frame or a free key is found. */
    uint64_t key = frame_key(name, file, line, (uint32_t)kind);
    for (;;) {
        uint64_t v;
        if (!hmap_get(&p->frame_index, key, &v))
            break;
        const struct pframe *f = &p->frames[v - 1];
        if (f->name == name && f->file == file && f->line == line && f->kind == (uint32_t)kind)
            return (uint32_t)(v - 1);
        key = hmap_hash64(key + 0x9e3779b97f4a7c15ULL);
        key = key ? key : 1;
    }
    if (p->nframes == p->capframes) {
        p->capframes = p->capframes ? p->capframes * 2 : 1024;
        p->frames = xrealloc(p->frames, p->capframes * sizeof(*p->frames));
    }
    uint32_t id = p->nframes++;
    p->frames[id] = (struct pframe){name, file, line, (uint32_t)kind};
    hmap_put(&p->frame_index, key, (uint64_t)id + 1);
    return id;
}

uint32_t profile_push(struct profile *p, uint32_t parent, uint32_t frame)
{
    uint64_t key = ((uint64_t)parent << 32) | frame;
    key = key ? key : ~(uint64_t)0; /* (0, 0) is a valid pair; 0 is the empty key */
    bool fresh;
    uint64_t *slot = hmap_slot(&p->node_index, key, p->nnodes, &fresh);
    if (!fresh)
        return (uint32_t)*slot;
    if (p->nnodes == p->capnodes) {
        uint32_t ncap = p->capnodes * 2;
        p->nodes = xrealloc(p->nodes, ncap * sizeof(*p->nodes));
        p->counts = xrealloc(p->counts, ncap * sizeof(*p->counts));
        memset(p->counts + p->capnodes, 0, (ncap - p->capnodes) * sizeof(*p->counts));
        p->capnodes = ncap;
    }
    uint32_t id = p->nnodes++;
    p->nodes[id] = (struct pnode){parent, frame, p->nodes[parent].depth + 1};
    return id;
}

uint32_t profile_stack(struct profile *p, const uint32_t *frames, size_t n)
{
    uint32_t s = 0;
    for (size_t i = 0; i < n; i++)
        s = profile_push(p, s, frames[i]);
    return s;
}

void profile_add(struct profile *p, uint32_t stack, uint16_t weight, uint64_t t_ns, uint32_t pid,
                 uint32_t tid, enum thread_state state, uint8_t flags)
{
    p->counts[stack] += weight;
    p->total += weight;
    if (!p->keep_samples || p->nsamples >= p->max_samples)
        return;
    if (p->nsamples == p->capsamples) {
        p->capsamples = p->capsamples ? p->capsamples * 2 : 4096;
        p->samples = xrealloc(p->samples, p->capsamples * sizeof(*p->samples));
    }
    p->samples[p->nsamples++] = (struct psample){.t_ns = t_ns,
                                                 .stack = stack,
                                                 .tid = tid,
                                                 .pid = pid,
                                                 .state = (uint8_t)state,
                                                 .flags = flags,
                                                 .weight = weight};
}

size_t profile_stack_frames(const struct profile *p, uint32_t stack, uint32_t *out, size_t max)
{
    size_t depth = p->nodes[stack].depth;
    size_t i = depth;
    while (stack) {
        i--;
        if (i < max)
            out[i] = p->nodes[stack].frame;
        stack = p->nodes[stack].parent;
    }
    return depth;
}

void profile_set_str(char **field, const char *s)
{
    free(*field);
    *field = s ? xstrdup(s) : NULL;
}
