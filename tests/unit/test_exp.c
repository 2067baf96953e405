// SPDX-License-Identifier: MIT
// Unit tests for crux exp: definition files (typos name the line), the matrix and its
// exclusions, templates, word splitting, the seeded schedule and the state file's round trip.
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "check.h"
#include "cmd/expcheck.h"
#include "cmd/expdef.h"
#include "cmd/expstate.h"

static char tmpdir[] = "/tmp/crux-test-exp-XXXXXX";

static const char *write_tmp(const char *name, const char *text)
{
    static char path[256];
    snprintf(path, sizeof(path), "%s/%s", tmpdir, name);
    FILE *f = fopen(path, "w");
    if (!f)
        return NULL;
    fputs(text, f);
    fclose(f);
    return path;
}

static int test_file(void)
{
    const char *p = write_tmp("exp.conf", "# a comment\n"
                                          "name = batching\n"
                                          "command = python3 job.py --batch {batch} --w {workers}\n"
                                          "env.OMP_NUM_THREADS = {workers}\n"
                                          "vary batch = 8 16 32\n"
                                          "vary workers = 1 2\n"
                                          "exclude batch=32 workers=2\n"
                                          "repeats = 3\n"
                                          "warmup = 0\n"
                                          "cooldown = 500ms\n"
                                          "seed = 42\n"
                                          "check = tolerance=1e-6\n"
                                          "slo = p99=200ms,errors=1%\n");
    struct exp_def d;
    exp_def_init(&d);
    struct errbuf eb = {""};
    CHECK(exp_def_read_file(&d, p, &eb) == 0, "%s", eb.msg);
    CHECK(exp_def_check(&d, &eb) == 0, "%s", eb.msg);
    CHECK(!strcmp(d.name, "batching") && d.nparams == 2 && d.repeats == 3 && d.warmup == 0,
          "fields");
    CHECK(fabs(d.cooldown_s - 0.5) < 1e-9 && d.seed_set && d.seed == 42, "cooldown, seed");
    CHECK(d.check == EXP_CHECK_TOLERANCE && d.tolerance == 1e-6, "check");
    CHECK(d.nslo == 2 && fabs(d.slo_terms[0].limit - 0.2) < 1e-9 && d.slo_terms[1].limit == 0.01,
          "slo");
    CHECK(!d.shell && d.nwords == 6, "words %zu", d.nwords);
    struct exp_variant *v;
    size_t n;
    CHECK(exp_variants(&d, &v, &n, &eb) == 0, "%s", eb.msg);
    CHECK(n == 5, "6 combinations less one excluded: %zu", n);
    CHECK(!strcmp(v[0].name, "batch=8,workers=1") && !strcmp(v[1].name, "batch=8,workers=2") &&
              !strcmp(v[4].name, "batch=32,workers=1"),
          "order: %s %s %s", v[0].name, v[1].name, v[4].name);
    struct exp_fill f = {2, 7, 0, "/tmp"};
    char *s;
    CHECK(exp_fill(&d, &v[3], &f, "x{batch}-{workers} {{lit}} ${HOME} {run}/{repeat} {a b}", &s,
                   &eb) == 0,
          "%s", eb.msg);
    CHECK(!strcmp(s, "x16-2 {lit} ${HOME} 7/2 {a b}"), "filled: %s", s);
    free(s);
    CHECK(exp_fill(&d, &v[0], &f, "{bach}", &s, &eb) == ERR_ARG && strstr(eb.msg, "{batch}"),
          "typo in a placeholder: %s", eb.msg);
    char h1[65], h2[65];
    exp_def_hash(&d, h1);
    d.repeats = 4;
    exp_def_hash(&d, h2);
    CHECK(strcmp(h1, h2) != 0, "repeats change the identity");
    exp_variants_free(v, n);
    exp_def_fini(&d);
    return 0;
}

static int test_typos(void)
{
    const char *cases[][2] = {
        {"command = true\nrepats = 5\n",
         "exp.conf:2: unknown key 'repats': did you mean 'repeats'?"},
        {"command = true\nrepeats = five\n", "exp.conf:2: repeats 'five'"},
        {"command = true\nvary n = 1 2\nexclude n=3\n", "exclude n=3"},
        {"command = echo {m}\nvary n = 1 2\n", "did you mean '{n}'"},
        {"command = true\ncheck = tolerence=0.1\n", "exp.conf:2: check"},
        {"command = 'unterminated\n", "exp.conf:1: command: unterminated"},
        {"vary n = 1\n", "no command"},
        {"command = true\nrepeats = 1\nrepeats = 2\n", "exp.conf:3: 'repeats' given twice"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        const char *p = write_tmp("exp.conf", cases[i][0]);
        struct exp_def d;
        exp_def_init(&d);
        struct errbuf eb = {""};
        int rc = exp_def_read_file(&d, p, &eb);
        if (!rc)
            rc = exp_def_check(&d, &eb);
        CHECK(rc == ERR_ARG, "case %zu accepted", i);
        CHECK(strstr(eb.msg, cases[i][1]), "case %zu: '%s' lacks '%s'", i, eb.msg, cases[i][1]);
        exp_def_fini(&d);
    }
    return 0;
}

static int test_split(void)
{
    char **w;
    size_t n;
    bool shell;
    struct errbuf eb = {""};
    CHECK(exp_split("python3 'a b' \"c \\\"d\" e\\ f {x}", &w, &n, &shell, &eb) == 0, "%s", eb.msg);
    CHECK(n == 5 && !shell && !strcmp(w[1], "a b") && !strcmp(w[2], "c \"d") &&
              !strcmp(w[3], "e f") && !strcmp(w[4], "{x}") && !w[5],
          "words");
    exp_words_free(w, n);
    const char *shells[] = {"a | b", "a > f", "echo $HOME", "a && b", "ls *.py", "~/x"};
    for (size_t i = 0; i < 6; i++) {
        CHECK(exp_split(shells[i], &w, &n, &shell, &eb) == 0 && shell, "'%s' needs a shell",
              shells[i]);
        exp_words_free(w, n);
    }
    CHECK(exp_split("echo '$HOME | x'", &w, &n, &shell, &eb) == 0 && !shell, "quoted");
    exp_words_free(w, n);
    return 0;
}

static int test_schedule(void)
{
    struct exp_state a = {0}, b = {0}, c = {0};
    exp_schedule(&a, 3, 4, 1, 12345);
    exp_schedule(&b, 3, 4, 1, 12345);
    exp_schedule(&c, 3, 4, 1, 54321);
    CHECK(a.nslots == 15, "3 warm-ups and 12 runs: %zu", a.nslots);
    for (size_t i = 0; i < 3; i++)
        CHECK(a.slots[i].warmup && a.slots[i].variant == i && a.slots[i].repeat == -1, "warm-up");
    CHECK(!memcmp(a.slots, b.slots, a.nslots * sizeof(*a.slots)), "same seed, same order");
    CHECK(memcmp(a.slots, c.slots, a.nslots * sizeof(*a.slots)) != 0, "another seed");
    int count[3][4] = {{0}};
    size_t grouped = 0;
    for (size_t i = 3; i < a.nslots; i++) {
        CHECK(!a.slots[i].warmup, "measured");
        count[a.slots[i].variant][a.slots[i].repeat]++;
        grouped += i > 3 && a.slots[i].variant == a.slots[i - 1].variant;
    }
    for (int v = 0; v < 3; v++)
        for (int r = 0; r < 4; r++)
            CHECK(count[v][r] == 1, "each pair once");
    CHECK(grouped < 9, "interleaved, not grouped by variant: %zu", grouped);
    exp_state_fini(&a);
    exp_state_fini(&b);
    exp_state_fini(&c);
    return 0;
}

static int test_state(void)
{
    struct exp_state st = {0};
    st.name = strdup("x");
    memset(st.def_hash, 'a', 64);
    st.variants = calloc(2, sizeof(char *));
    st.variants[0] = strdup("n=1");
    st.variants[1] = strdup("n=\"2\"");
    st.nvariants = 2;
    exp_schedule(&st, 2, 2, 0, 7);
    struct exp_result r = {.slot = 2, .variant = st.slots[2].variant, .ok = true, .wall_s = 0.25};
    r.tput = 4;
    r.outs = calloc(1, sizeof(*r.outs));
    r.nouts = 1;
    memset(r.outs[0].hash, 'b', 64);
    r.note = strdup("a \"note\"\n");
    exp_state_add(&st, &r);
    char path[256];
    snprintf(path, sizeof(path), "%s/state.json", tmpdir);
    struct errbuf eb = {""};
    CHECK(exp_state_save(&st, path, &eb) == 0, "%s", eb.msg);
    struct exp_state back = {0};
    CHECK(exp_state_load(&back, path, &eb) == 0, "%s", eb.msg);
    CHECK(back.seed == 7 && back.nslots == 4 && back.nresults == 1 && back.nvariants == 2,
          "counts");
    CHECK(!memcmp(back.slots, st.slots, 4 * sizeof(*st.slots)), "schedule");
    CHECK(!strcmp(back.variants[1], "n=\"2\"") && !strcmp(back.results[0].note, "a \"note\"\n"),
          "strings");
    CHECK(exp_state_done(&back, 2) && !exp_state_done(&back, 1), "done");
    CHECK(back.results[0].wall_s == 0.25 && back.results[0].nouts == 1 &&
              back.results[0].outs[0].hash[63] == 'b',
          "result");
    exp_state_fini(&back);
    exp_state_fini(&st);
    CHECK(exp_state_load(&back, "/nonexistent/x.json", &eb) == ERR_NOT_FOUND, "missing");
    return 0;
}

static int test_agree(void)
{
    double share;
    CHECK(exp_agree_tolerance("loss 1.000001 acc 0.5\n", 22, "loss 1.0 acc 0.5\n", 17, 1e-5),
          "within tolerance");
    CHECK(!exp_agree_tolerance("loss 1.1 acc 0.5", 16, "loss 1.0 acc 0.5", 16, 1e-5),
          "past tolerance");
    CHECK(!exp_agree_tolerance("loss 1.0 acc 0.5", 16, "loss 1.0 acc 0.5 x", 18, 1e-5),
          "extra token");
    CHECK(!exp_agree_tolerance("a 1", 3, "b 1", 3, 1e-5), "text differs");
    CHECK(exp_agree_tolerance("[1e3, 2]", 8, "[1000.0, 2.0]", 13, 0), "number forms");
    share = exp_agree_tokens("a b c d", 7, "a  b\nc d", 8);
    CHECK(share == 1.0, "whitespace only: %g", share);
    share = exp_agree_tokens("a b c d", 7, "a b x d", 7);
    CHECK(fabs(share - 0.75) < 1e-9, "one of four: %g", share);
    share = exp_agree_tokens("a b", 3, "a b c d", 7);
    CHECK(fabs(share - 0.5) < 1e-9, "length counts: %g", share);
    return 0;
}

int main(void)
{
    if (!mkdtemp(tmpdir))
        return 1;
    RUN(test_file);
    RUN(test_typos);
    RUN(test_split);
    RUN(test_schedule);
    RUN(test_state);
    RUN(test_agree);
    char cmd[300];
    snprintf(cmd, sizeof(cmd), "rm -rf %s", tmpdir);
    if (system(cmd) != 0)
        return 1;
    return TEST_SUMMARY("exp");
}
