// SPDX-License-Identifier: MIT
// Unit tests of sampler/stackmemo: a thread's next stack reuses the nodes of the frames it
// shares with the last one from the outermost on, and nothing past the first difference.
#include <string.h>

#include "check.h"
#include "sampler/stackmemo.h"

/* Pushes `keys` on `root` the way the sampler does; `node` stands in for profile_push (the
 * new node is key * 10 + depth, so a reused node is told from a fresh one by `fresh`). */
static uint32_t push(struct stackmemo *m, size_t slot, uint64_t a, uint32_t root,
                     const uint64_t *keys, uint32_t n, uint32_t *fresh)
{
    struct stackmemo_slot *s = stackmemo_begin(m, slot, a, 1, root);
    uint32_t st = root, depth = 0;
    bool same = true;
    *fresh = 0;
    for (; depth < n; depth++) {
        if (same && stackmemo_hit(m, s, depth, keys[depth], &st))
            continue;
        same = false;
        st = (uint32_t)(keys[depth] * 10 + depth);
        (*fresh)++;
        stackmemo_put(s, depth, keys[depth], st);
    }
    stackmemo_end(s, depth);
    return st;
}

static int test_shared_prefix(void)
{
    struct stackmemo m;
    stackmemo_init(&m);
    uint32_t fresh;
    uint64_t a[] = {1, 2, 3, 4};
    uint64_t b[] = {1, 2, 5};
    uint64_t c[] = {1, 2, 5, 4};
    uint32_t top = push(&m, 0, 0x1000, 7, a, 4, &fresh);
    CHECK(top == 43 && fresh == 4, "first stack: all fresh (%u, %u)", top, fresh);
    top = push(&m, 0, 0x1000, 7, a, 4, &fresh);
    CHECK(top == 43 && fresh == 0 && m.hits == 4, "same stack: all reused (%u, %u)", top, fresh);
    top = push(&m, 0, 0x1000, 7, b, 3, &fresh);
    CHECK(top == 52 && fresh == 1, "shorter, differs at 2 (%u, %u)", top, fresh);
    /* Frame 3 of `a` (key 4) was forgotten with the change at depth 2. */
    top = push(&m, 0, 0x1000, 7, c, 4, &fresh);
    CHECK(top == 43 && fresh == 1, "longer: one fresh frame (%u, %u)", top, fresh);
    stackmemo_fini(&m);
    return 0;
}

static int test_owner_and_root(void)
{
    struct stackmemo m;
    stackmemo_init(&m);
    uint32_t fresh;
    uint64_t a[] = {1, 2, 3};
    push(&m, 3, 0x1000, 7, a, 3, &fresh);
    push(&m, 3, 0x2000, 7, a, 3, &fresh);
    CHECK(fresh == 3, "another thread in the slot: nothing reused (%u)", fresh);
    push(&m, 3, 0x2000, 8, a, 3, &fresh);
    CHECK(fresh == 3, "another root (thread renamed, truncated): nothing reused (%u)", fresh);
    push(&m, 0, 0x1000, 8, a, 3, &fresh);
    CHECK(fresh == 3 && m.n >= 4, "slots are independent (%u)", fresh);
    stackmemo_forget(&m);
    push(&m, 3, 0x2000, 8, a, 3, &fresh);
    CHECK(fresh == 3, "forgotten: nothing reused (%u)", fresh);
    /* An empty stack, then a deep one (the arrays grow). */
    push(&m, 3, 0x2000, 8, a, 0, &fresh);
    uint64_t deep[300];
    for (int i = 0; i < 300; i++)
        deep[i] = (uint64_t)i + 1;
    push(&m, 3, 0x2000, 8, deep, 300, &fresh);
    uint32_t top = push(&m, 3, 0x2000, 8, deep, 300, &fresh);
    CHECK(fresh == 0 && top == 3000 + 299, "deep stack reused (%u, %u)", fresh, top);
    stackmemo_fini(&m);
    return 0;
}

int main(void)
{
    RUN(test_shared_prefix);
    RUN(test_owner_and_root);
    return TEST_SUMMARY("stackmemo");
}
