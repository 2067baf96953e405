// SPDX-License-Identifier: MIT
// Unit tests of the regression gate: the thresholds file (good lines, each kind of bad line
// named by its line number), and the judgement of load figures against intervals: a
// regression only when the whole interval is past the limit.
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "analysis/diff.h"
#include "analysis/gate.h"
#include "check.h"

static int parse_fails(const char *text, const char *want)
{
    struct gate g;
    gate_init(&g);
    struct errbuf eb = {{0}};
    int rc = gate_parse(&g, text, "th.txt", &eb);
    gate_fini(&g);
    CHECK(rc == ERR_ARG, "'%s' parsed", text);
    CHECK(strstr(eb.msg, want) != NULL, "'%s': got '%s', want '%s'", text, eb.msg, want);
    return 0;
}

static int test_parse(void)
{
    struct gate g;
    gate_init(&g);
    struct errbuf eb = {{0}};
    const char *text = "# thresholds\n"
                       "throughput -3%   # floor\n"
                       "\n"
                       "p99 +5%\n"
                       "stage model +2pt\n"
                       "function tokenize (work.py) +10%\n"
                       "errors 0\n";
    CHECK(gate_parse(&g, text, "th.txt", &eb) == 0, "%s", eb.msg);
    CHECK(g.n == 5, "rules %d", g.n);
    CHECK(g.v[0].metric == GM_LOAD && g.v[0].sub == LM_THROUGHPUT && g.v[0].limit == -0.03 &&
              g.v[0].line == 2,
          "throughput");
    CHECK(g.v[2].metric == GM_STAGE && strcmp(g.v[2].name, "model") == 0 && g.v[2].points &&
              fabs(g.v[2].limit - 0.02) < 1e-12,
          "stage");
    CHECK(g.v[3].metric == GM_FUNCTION && strcmp(g.v[3].name, "tokenize (work.py)") == 0,
          "function with a file: '%s'", g.v[3].name);
    CHECK(g.v[4].metric == GM_ERRORS && g.v[4].limit == 0 && g.v[4].line == 7, "errors");
    gate_fini(&g);

    CHECK(parse_fails("time +5%\n\nthoughput -3%\n",
                      "th.txt:3: unknown metric 'thoughput': did you mean 'throughput'?") == 0,
          "typo");
    CHECK(parse_fails("p99 5%\n", "th.txt:1: bad limit '5%'") == 0, "unsigned");
    CHECK(parse_fails("p99 +5\n", "th.txt:1: bad limit '+5'") == 0, "no unit");
    CHECK(parse_fails("stage +2pt\n", "needs a name") == 0, "stage without a name");
    CHECK(parse_fails("p99 fast +5%\n", "takes no name") == 0, "name on a plain metric");
    CHECK(parse_fails("p99 +5pt\n", "points (pt) are for shares") == 0, "pt on a latency");
    CHECK(parse_fails("errors -1\n", "errors takes a count") == 0, "negative count");
    CHECK(parse_fails("# nothing\n", "no thresholds") == 0, "empty");
    return 0;
}

static char *load_doc(char *buf, size_t cap, double throughput, double p99_us, int errors)
{
    snprintf(buf, cap,
             "{\"stats\": {\"ok\": 1000, \"errors\": %d, \"throughput\": %g, "
             "\"latency_us\": {\"count\": 1000, \"p50\": 1000, \"p90\": 2000, \"p99\": %g, "
             "\"p99.9\": %g}}}",
             errors, throughput, p99_us, p99_us * 1.5);
    return buf;
}

/* Five runs a side of load figures, the new side's throughput scaled by `factor`. */
static enum gate_status judge(const char *rules, double factor, int new_errors, struct gate *g)
{
    struct diff d;
    diff_init(&d, 5, 5);
    char doc[512];
    struct errbuf eb = {{0}};
    const double noise[5] = {1.00, 1.01, 0.99, 1.005, 0.995};
    for (uint32_t r = 0; r < 10; r++) {
        double f = (r < 5 ? 1.0 : factor) * noise[r % 5];
        load_doc(doc, sizeof(doc), 100.0 * f, 5000.0 * noise[(r + 2) % 5], r < 5 ? 0 : new_errors);
        if (diff_add_load_json(&d, r, doc, strlen(doc), &eb))
            return (enum gate_status) - 1;
    }
    diff_finish(&d);
    gate_init(g);
    if (gate_parse(g, rules, "th.txt", &eb)) {
        diff_fini(&d);
        return (enum gate_status) - 1;
    }
    double errs = 0;
    for (uint32_t r = 5; r < 10; r++)
        errs += d.errors[r];
    enum gate_status st = gate_judge(g, &d, errs);
    diff_fini(&d);
    return st;
}

static int test_judge(void)
{
    struct gate g;
    /* 10% lower throughput, the interval about +-1.5%: a regression past -3% */
    CHECK(judge("throughput -3%\n", 0.90, 0, &g) == GATE_REGRESSION, "10%% lower");
    CHECK(g.v[0].hi < -0.03 && g.v[0].value < -0.08, "interval [%g, %g]", g.v[0].lo, g.v[0].hi);
    gate_fini(&g);
    /* unchanged: pass */
    CHECK(judge("throughput -3%\np99 +5%\n", 1.0, 0, &g) == GATE_PASS, "unchanged");
    CHECK(isfinite(g.v[0].mde) && g.v[0].mde > 0 && g.v[0].repeats_needed >= 1, "mde");
    gate_fini(&g);
    /* 3.5% lower: past -3% but the interval reaches back over it: inconclusive */
    CHECK(judge("throughput -3%\n", 0.965, 0, &g) == GATE_INCONCLUSIVE, "3.5%% lower");
    CHECK(g.v[0].lo < -0.03 && g.v[0].hi > -0.03, "straddles");
    gate_fini(&g);
    /* errors */
    CHECK(judge("errors 0\n", 1.0, 2, &g) == GATE_REGRESSION, "errors");
    gate_fini(&g);
    CHECK(judge("errors 10\n", 1.0, 1, &g) == GATE_PASS, "errors within");
    gate_fini(&g);
    /* a metric the runs do not have */
    CHECK(judge("stage model +2pt\n", 1.0, 0, &g) == GATE_INCONCLUSIVE, "missing");
    CHECK(strstr(g.v[0].why, "in no run") != NULL, "why: %s", g.v[0].why);
    gate_fini(&g);
    return 0;
}

static int test_outputs(void)
{
    struct gate g;
    CHECK(judge("throughput -3%\n", 0.90, 0, &g) == GATE_REGRESSION, "regression");
    struct diff d;
    diff_init(&d, 1, 1);
    diff_finish(&d);
    struct buf b;
    buf_init(&b, 0);
    CHECK(gate_write_markdown(&g, GATE_REGRESSION, &d, "a | note", &b) == 0, "markdown");
    CHECK(strstr(buf_cstr(&b), "| `throughput -3%` |") != NULL, "%s", buf_cstr(&b));
    CHECK(strstr(buf_cstr(&b), "a \\| note") != NULL, "pipes escaped");
    buf_reset(&b);
    CHECK(gate_write_json(&g, GATE_REGRESSION, &d, NULL, &b) == 0, "json");
    CHECK(strstr(buf_cstr(&b), "\"status\":\"regression\"") != NULL, "%s", buf_cstr(&b));
    buf_fini(&b);
    diff_fini(&d);
    gate_fini(&g);
    return 0;
}

int main(void)
{
    RUN(test_parse);
    RUN(test_judge);
    RUN(test_outputs);
    return TEST_SUMMARY("gate");
}
