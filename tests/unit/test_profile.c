// SPDX-License-Identifier: MIT
// Unit tests for profile/: string interning, frame interning, the stack trie and sample counts.
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "profile/profile.h"
#include "profile/strtab.h"
#include "util/xalloc.h"

static int test_strtab_intern(void)
{
    struct strtab t;
    strtab_init(&t);
    CHECK(t.len == 1 && strcmp(strtab_get(&t, 0), "") == 0, "id 0 is the empty string");
    CHECK(strtab_intern(&t, "", 0) == 0, "interning \"\" gives 0");
    CHECK(strtab_intern(&t, "xyz", 0) == 0, "zero bytes of anything gives 0");
    char a[] = "hello";
    char b[] = "hello";
    uint32_t ia = strtab_intern(&t, a, 5);
    uint32_t ib = strtab_intern(&t, b, 5);
    CHECK(ia != 0 && ia == ib, "equal strings at different addresses: %u %u", ia, ib);
    a[0] = 'j'; /* the table holds a copy */
    CHECK(strcmp(strtab_get(&t, ia), "hello") == 0, "copy: %s", strtab_get(&t, ia));
    CHECK(strtab_intern(&t, "hello world", 5) == ia, "a prefix with explicit length");
    uint32_t ihell = strtab_intern(&t, "hell", 4);
    CHECK(ihell != ia && ihell != 0, "a shorter string is another id");
    CHECK(strtab_len(&t, ia) == 5 && strtab_len(&t, ihell) == 4, "lengths");
    CHECK(strcmp(strtab_get(&t, 9999), "") == 0 && strtab_len(&t, 9999) == 0, "unknown id");
    CHECK(t.len == 3, "three strings: %u", t.len);
    strtab_fini(&t);
    return 0;
}

static int test_strtab_embedded_nul(void)
{
    struct strtab t;
    strtab_init(&t);
    uint32_t x = strtab_intern(&t, "a\0b", 3);
    uint32_t y = strtab_intern(&t, "a\0c", 3);
    uint32_t z = strtab_intern(&t, "a", 1);
    uint32_t w = strtab_intern(&t, "a\0", 2);
    uint32_t nul = strtab_intern(&t, "\0", 1);
    CHECK(x != y && x != z && y != z && w != z && w != x, "distinct: %u %u %u %u", x, y, z, w);
    CHECK(nul != 0, "one NUL byte is not the empty string");
    CHECK(strtab_intern(&t, "a\0b", 3) == x && strtab_intern(&t, "a\0", 2) == w, "stable");
    CHECK(strtab_len(&t, x) == 3 && memcmp(strtab_get(&t, x), "a\0b", 4) == 0, "bytes of x");
    CHECK(strtab_len(&t, nul) == 1, "length of NUL");
    strtab_fini(&t);
    return 0;
}

static int test_strtab_many(void)
{
    enum { N = 50000 };
    struct strtab t;
    strtab_init(&t);
    uint32_t *ids = xmalloc(N * sizeof(*ids));
    char s[32];
    for (int i = 0; i < N; i++) {
        int n = snprintf(s, sizeof(s), "name_%d", i);
        ids[i] = strtab_intern(&t, s, (size_t)n);
        CHECK(ids[i] == (uint32_t)i + 1, "ids are dense: %u for %d", ids[i], i);
    }
    CHECK(t.len == N + 1, "len %u", t.len);
    for (int i = N - 1; i >= 0; i--) {
        int n = snprintf(s, sizeof(s), "name_%d", i);
        CHECK(strtab_intern(&t, s, (size_t)n) == ids[i], "re-intern %d", i);
        CHECK(strcmp(strtab_get(&t, ids[i]), s) == 0, "get %d", i);
        CHECK(strtab_len(&t, ids[i]) == (uint32_t)n, "len %d", i);
    }
    CHECK(t.len == N + 1, "no duplicates: %u", t.len);
    free(ids);
    strtab_fini(&t);
    CHECK(t.len == 0 && t.strs == NULL, "fini");
    return 0;
}

static int test_profile_frame(void)
{
    struct profile p;
    profile_init(&p);
    uint32_t name = profile_str(&p, "main", 4);
    uint32_t file = profile_str(&p, "a.py", 4);
    CHECK(profile_str(&p, "main", 4) == name, "profile_str interns");
    uint32_t f1 = profile_frame(&p, name, file, 10, FRAME_PYTHON);
    CHECK(profile_frame(&p, name, file, 10, FRAME_PYTHON) == f1, "same frame, same id");
    uint32_t f2 = profile_frame(&p, name, file, 11, FRAME_PYTHON);
    uint32_t f3 = profile_frame(&p, name, file, 10, FRAME_NATIVE);
    uint32_t f4 = profile_frame(&p, file, name, 10, FRAME_PYTHON);
    uint32_t f5 = profile_frame(&p, name, 0, 10, FRAME_PYTHON);
    uint32_t f6 = profile_frame(&p, name, file, -1, FRAME_PYTHON);
    uint32_t ids[] = {f1, f2, f3, f4, f5, f6};
    for (size_t i = 0; i < 6; i++)
        for (size_t j = 0; j < i; j++)
            CHECK(ids[i] != ids[j], "frames %zu and %zu share id %u", i, j, ids[i]);
    CHECK(p.nframes == 6, "nframes %u", p.nframes);
    const struct pframe *pf = profile_frame_at(&p, f6);
    CHECK(pf->name == name && pf->file == file && pf->line == -1 && pf->kind == FRAME_PYTHON,
          "frame fields");
    CHECK(strcmp(profile_string(&p, pf->file), "a.py") == 0, "profile_string");
    /* Many frames: ids stay dense and stable across the index growth. */
    for (int32_t line = 0; line < 20000; line++) {
        uint32_t id = profile_frame(&p, name, file, line + 1000, FRAME_PYTHON);
        CHECK(id == 6 + (uint32_t)line, "frame %d: id %u", line, id);
    }
    for (int32_t line = 0; line < 20000; line += 7)
        CHECK(profile_frame(&p, name, file, line + 1000, FRAME_PYTHON) == 6 + (uint32_t)line,
              "re-intern line %d", line);
    CHECK(profile_frame(&p, name, file, 10, FRAME_PYTHON) == f1, "first frame still found");
    profile_fini(&p);
    return 0;
}

static int test_profile_stack_trie(void)
{
    struct profile p;
    profile_init(&p);
    uint32_t fr[4];
    for (int i = 0; i < 4; i++) {
        char s[8];
        int n = snprintf(s, sizeof(s), "f%d", i);
        fr[i] = profile_frame(&p, profile_str(&p, s, (size_t)n), 0, i, FRAME_PYTHON);
    }
    CHECK(fr[0] == 0, "the first frame has id 0");
    CHECK(profile_stack(&p, fr, 0) == 0, "the empty stack is 0");
    uint32_t s0 = profile_push(&p, 0, fr[0]);
    CHECK(s0 != 0, "stack of frame 0 (pair 0,0) is not the empty stack");
    CHECK(profile_push(&p, 0, fr[0]) == s0, "push is interned");
    uint32_t s01 = profile_push(&p, s0, fr[1]);
    uint32_t s012 = profile_push(&p, s01, fr[2]);
    CHECK(profile_stack(&p, fr, 3) == s012, "profile_stack equals the pushes");
    CHECK(profile_stack(&p, fr, 2) == s01, "prefix");
    uint32_t alt[3] = {fr[0], fr[2], fr[1]};
    uint32_t s021 = profile_stack(&p, alt, 3);
    CHECK(s021 != s012, "order matters");
    uint32_t s1 = profile_push(&p, 0, fr[1]);
    CHECK(s1 != s01 && s1 != s0, "same leaf, other parent");
    CHECK(p.nodes[s012].parent == s01 && p.nodes[s012].frame == fr[2], "node fields");
    CHECK(p.nodes[s012].depth == 3 && p.nodes[s0].depth == 1 && p.nodes[0].depth == 0, "depth");
    /* Recursion: the same frame many times. */
    uint32_t rec[50];
    for (int i = 0; i < 50; i++)
        rec[i] = fr[3];
    uint32_t deep = profile_stack(&p, rec, 50);
    CHECK(p.nodes[deep].depth == 50, "depth %u", p.nodes[deep].depth);
    CHECK(profile_stack(&p, rec, 50) == deep, "recursive stack interned");
    profile_fini(&p);
    return 0;
}

static int test_profile_stack_frames(void)
{
    struct profile p;
    profile_init(&p);
    enum { DEPTH = 10 };
    uint32_t fr[DEPTH];
    for (int i = 0; i < DEPTH; i++)
        fr[i] = profile_frame(&p, 0, 0, 100 + i, FRAME_PYTHON);
    uint32_t s = profile_stack(&p, fr, DEPTH);
    uint32_t out[DEPTH + 2];
    memset(out, 0xee, sizeof(out));
    CHECK(profile_stack_frames(&p, s, out, DEPTH + 2) == DEPTH, "depth");
    for (int i = 0; i < DEPTH; i++)
        CHECK(out[i] == fr[i], "root first: out[%d] = %u, want %u", i, out[i], fr[i]);
    CHECK(out[DEPTH] == 0xeeeeeeeeu, "nothing written past the depth");
    /* max < depth: the `max` frames nearest the root, and the full depth returned. */
    memset(out, 0xee, sizeof(out));
    CHECK(profile_stack_frames(&p, s, out, 4) == DEPTH, "depth returned when cut");
    for (int i = 0; i < 4; i++)
        CHECK(out[i] == fr[i], "cut: out[%d] = %u, want %u", i, out[i], fr[i]);
    CHECK(out[4] == 0xeeeeeeeeu, "nothing written at or past max");
    CHECK(profile_stack_frames(&p, s, out, 0) == DEPTH, "max 0");
    CHECK(profile_stack_frames(&p, 0, out, DEPTH) == 0, "empty stack");
    /* Over the initial 1024 trie nodes: the node arrays grow and keep their contents. */
    uint32_t *big = xmalloc(3000 * sizeof(*big));
    for (int i = 0; i < 3000; i++)
        big[i] = fr[i % DEPTH];
    uint32_t sb = profile_stack(&p, big, 3000);
    uint32_t *back = xmalloc(3000 * sizeof(*back));
    CHECK(profile_stack_frames(&p, sb, back, 3000) == 3000, "deep depth");
    CHECK(memcmp(back, big, 3000 * sizeof(*big)) == 0, "deep frames root first");
    CHECK(p.capnodes >= p.nnodes && p.counts[sb] == 0, "counts grown zeroed");
    CHECK(profile_stack_frames(&p, s, out, DEPTH) == DEPTH && out[DEPTH - 1] == fr[DEPTH - 1],
          "old stack intact after growth");
    free(big);
    free(back);
    profile_fini(&p);
    return 0;
}

static int test_profile_add(void)
{
    struct profile p;
    profile_init(&p);
    uint32_t f = profile_frame(&p, profile_str(&p, "x", 1), 0, 1, FRAME_PYTHON);
    uint32_t s = profile_push(&p, 0, f);
    uint32_t s2 = profile_push(&p, s, f);
    /* Not keeping samples: only counts. */
    profile_add(&p, &(struct psample){.stack = s,
                                      .weight = 1,
                                      .t_ns = 10,
                                      .pid = 1,
                                      .tid = 2,
                                      .state = TSTATE_RUNNING,
                                      .flags = SAMPLE_GIL});
    profile_add(&p, &(struct psample){.stack = s,
                                      .weight = 3,
                                      .t_ns = 20,
                                      .pid = 1,
                                      .tid = 2,
                                      .state = TSTATE_IDLE,
                                      .flags = 0});
    profile_add(&p, &(struct psample){.stack = s2,
                                      .weight = 2,
                                      .t_ns = 30,
                                      .pid = 1,
                                      .tid = 3,
                                      .state = TSTATE_IDLE,
                                      .flags = 0});
    CHECK(p.counts[s] == 4 && p.counts[s2] == 2 && p.total == 6, "counts %llu %llu total %llu",
          (unsigned long long)p.counts[s], (unsigned long long)p.counts[s2],
          (unsigned long long)p.total);
    CHECK(p.counts[0] == 0, "the empty stack has no samples");
    CHECK(p.nsamples == 0 && p.samples == NULL, "samples not kept by default");
    p.keep_samples = true;
    profile_add(&p, &(struct psample){.stack = s2,
                                      .weight = 5,
                                      .t_ns = 40,
                                      .pid = 7,
                                      .tid = 8,
                                      .state = TSTATE_RUNNING,
                                      .flags = SAMPLE_GIL | SAMPLE_TRUNCATED});
    CHECK(p.nsamples == 1, "kept");
    const struct psample *k = &p.samples[0];
    CHECK(k->t_ns == 40 && k->stack == s2 && k->pid == 7 && k->tid == 8 && k->weight == 5,
          "sample fields");
    CHECK(k->state == TSTATE_RUNNING && k->flags == (SAMPLE_GIL | SAMPLE_TRUNCATED), "flags");
    CHECK(p.counts[s2] == 7 && p.total == 11, "counted as well");
    profile_fini(&p);
    return 0;
}

/* A line called at two columns: two frames, two stacks, until profile_drop_columns merges
 * them with their counts, categories, growth and kept samples; the children of the merged
 * callers merge too. */
static int test_profile_drop_columns(void)
{
    struct profile p;
    profile_init(&p);
    p.keep_samples = true;
    uint32_t name = profile_str(&p, "<module>", 8), file = profile_str(&p, "m.py", 4);
    uint32_t leaf = profile_frame(&p, profile_str(&p, "f", 1), file, 3, FRAME_PYTHON);
    CHECK(!p.columns, "no columns yet");
    uint32_t a = profile_frame_col(&p, name, file, 12, 9, FRAME_PYTHON);
    uint32_t b = profile_frame_col(&p, name, file, 12, 20, FRAME_PYTHON);
    uint32_t plain = profile_frame(&p, name, file, 12, FRAME_PYTHON);
    CHECK(a != b && a != plain && b != plain && p.columns, "a column is part of the frame");
    CHECK(profile_frame_col(&p, name, file, 12, 9, FRAME_PYTHON) == a, "interned");
    CHECK(profile_frame_at(&p, b)->col == 20 && profile_frame_at(&p, plain)->col == 0, "col");
    uint32_t sa = profile_push(&p, 0, a), sb = profile_push(&p, 0, b);
    uint32_t la = profile_push(&p, sa, leaf), lb = profile_push(&p, sb, leaf);
    profile_add(&p, &(struct psample){.stack = la, .weight = 1, .cat = CAT_PYTHON});
    profile_add(&p, &(struct psample){.stack = lb, .weight = 3, .cat = CAT_GIL});
    profile_add(&p, &(struct psample){.stack = sb, .weight = 2, .cat = CAT_PYTHON});
    profile_add_growth(&p, la, 100);
    profile_add_growth(&p, lb, 23);
    profile_drop_columns(&p);
    CHECK(!p.columns && p.nframes == 2, "frames merged: %u", p.nframes);
    CHECK(p.nnodes == 3, "stacks merged: %u", p.nnodes);
    uint32_t m = profile_frame(&p, name, file, 12, FRAME_PYTHON);
    uint32_t s = profile_push(&p, 0, m), l = profile_push(&p, s, leaf);
    CHECK(p.nnodes == 3 && s == 1 && l == 2, "ids in first-seen order");
    CHECK(p.counts[s] == 2 && p.counts[l] == 4 && p.total == 6, "counts");
    CHECK(p.cat_counts[(size_t)l * PCAT_N + CAT_PYTHON] == 1 &&
              p.cat_counts[(size_t)l * PCAT_N + CAT_GIL] == 3 &&
              p.cat_counts[(size_t)s * PCAT_N + CAT_PYTHON] == 2,
          "categories");
    CHECK(p.mem_growth[l] == 123, "growth");
    CHECK(p.counts[3] == 0 && p.counts[4] == 0 && p.mem_growth[4] == 0, "old slots emptied");
    CHECK(p.nsamples == 3 && p.samples[0].stack == l && p.samples[1].stack == l &&
              p.samples[2].stack == s,
          "samples moved");
    uint32_t before = p.nnodes;
    profile_drop_columns(&p);
    CHECK(p.nnodes == before && p.nframes == 2, "no columns: nothing to do");
    profile_fini(&p);
    return 0;
}

static int test_profile_max_samples(void)
{
    struct profile p;
    profile_init(&p);
    CHECK(p.max_samples == PROFILE_MAX_SAMPLES_DEFAULT, "default cap");
    p.keep_samples = true;
    p.max_samples = 5000;
    uint32_t s = profile_push(&p, 0, profile_frame(&p, 0, 0, 0, FRAME_MARKER));
    for (uint64_t i = 0; i < 12000; i++)
        profile_add(&p, &(struct psample){.stack = s,
                                          .weight = 1,
                                          .t_ns = i,
                                          .pid = 1,
                                          .tid = 1,
                                          .state = TSTATE_UNKNOWN,
                                          .flags = 0});
    CHECK(p.nsamples == 5000, "kept %zu", p.nsamples);
    CHECK(p.total == 12000 && p.counts[s] == 12000, "all counted: %llu",
          (unsigned long long)p.total);
    for (size_t i = 0; i < p.nsamples; i++)
        CHECK(p.samples[i].t_ns == i, "the first samples are the kept ones (%zu)", i);
    p.max_samples = 0;
    profile_add(&p, &(struct psample){.stack = s,
                                      .weight = 1,
                                      .t_ns = 0,
                                      .pid = 1,
                                      .tid = 1,
                                      .state = TSTATE_UNKNOWN,
                                      .flags = 0});
    CHECK(p.nsamples == 5000 && p.total == 12001, "cap 0 keeps none");
    profile_set_str(&p.meta.command, "python x.py");
    CHECK(strcmp(p.meta.command, "python x.py") == 0, "meta set");
    profile_set_str(&p.meta.command, "again");
    profile_set_str(&p.meta.python_version, "3.12.1");
    CHECK(strcmp(p.meta.command, "again") == 0, "meta replaced");
    profile_set_str(&p.meta.python_version, NULL);
    CHECK(p.meta.python_version == NULL, "meta cleared");
    profile_fini(&p);
    return 0;
}

int main(void)
{
    RUN(test_strtab_intern);
    RUN(test_strtab_embedded_nul);
    RUN(test_strtab_many);
    RUN(test_profile_frame);
    RUN(test_profile_stack_trie);
    RUN(test_profile_stack_frames);
    RUN(test_profile_add);
    RUN(test_profile_max_samples);
    RUN(test_profile_drop_columns);
    return TEST_SUMMARY("profile");
}
