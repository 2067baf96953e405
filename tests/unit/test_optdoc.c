// SPDX-License-Identifier: MIT
// Unit tests for cmd/optdoc: what crux man reads of a command's --help text.
#include <string.h>

#include "check.h"
#include "cmd/optdoc.h"

static const char HELP[] = "usage: crux x FILE [options]\n"
                           "       crux x --vary N=A,B -- COMMAND\n"
                           "  -o, --output FILE    where to write; format from\n"
                           "                       the extension\n"
                           "      --log FILE       one line per request\n"
                           "      --log-bodies     adds each body\n"
                           "      --store DIR, --no-idle, --rules FILE  as in crux diff\n"
                           "  --wait SEC           wait up to SEC\n"
                           "  -s, --sort own|total order of the rows\n"
                           "  load: --rate R (open loop)\n"
                           "exit status: 0 done;\n"
                           "1 failed\n";

static int test_regular_line_with_continuation(void)
{
    struct optdoc d;
    CHECK(optdoc_find(HELP, "output", &d), "found");
    CHECK(!strcmp(d.meta, "FILE"), "meta %s", d.meta);
    CHECK(!strcmp(d.text, "where to write; format from the extension"), "text %s", d.text);
    CHECK(optdoc_find(HELP, "wait", &d) && !strcmp(d.meta, "SEC"), "no short form");
    return 0;
}

static int test_prefix_is_not_the_option(void)
{
    struct optdoc d;
    CHECK(optdoc_find(HELP, "log", &d) && !strcmp(d.text, "one line per request"), "%s", d.text);
    CHECK(optdoc_find(HELP, "log-bodies", &d) && d.meta[0] == 0, "a switch: %s", d.meta);
    CHECK(!strcmp(d.text, "adds each body"), "%s", d.text);
    return 0;
}

static int test_irregular_lines_are_skipped(void)
{
    struct optdoc d;
    CHECK(!optdoc_find(HELP, "store", &d), "several options on one line");
    CHECK(!optdoc_find(HELP, "sort", &d), "a value phrase, not a value name");
    CHECK(!optdoc_find(HELP, "rate", &d), "a grouped line");
    CHECK(!optdoc_find(HELP, "missing", &d) && d.text[0] == 0, "absent");
    char meta[16];
    CHECK(optdoc_meta(HELP, "rate", meta, sizeof(meta)) && !strcmp(meta, "R"), "%s", meta);
    CHECK(optdoc_meta(HELP, "store", meta, sizeof(meta)) && !strcmp(meta, "DIR"), "%s", meta);
    CHECK(!optdoc_meta(HELP, "sort", meta, sizeof(meta)), "lower case is no value name");
    return 0;
}

static int test_synopsis_and_exit_status(void)
{
    char line[128];
    CHECK(optdoc_synopsis(HELP, 0, line, sizeof(line)) && !strcmp(line, "crux x FILE [options]"),
          "%s", line);
    CHECK(optdoc_synopsis(HELP, 1, line, sizeof(line)) &&
              !strcmp(line, "crux x --vary N=A,B -- COMMAND"),
          "%s", line);
    CHECK(!optdoc_synopsis(HELP, 2, line, sizeof(line)), "two lines");
    CHECK(optdoc_synopsis(HELP, 0, line, 8) && !strcmp(line, "crux x "), "truncated: %s", line);
    const char *e = optdoc_exit_status(HELP);
    CHECK(e && !strcmp(e, "exit status: 0 done;\n1 failed\n"), "%s", e ? e : "NULL");
    CHECK(!optdoc_exit_status("usage: crux y\n"), "none");
    return 0;
}

int main(void)
{
    RUN(test_regular_line_with_continuation);
    RUN(test_prefix_is_not_the_option);
    RUN(test_irregular_lines_are_skipped);
    RUN(test_synopsis_and_exit_status);
    return TEST_SUMMARY("optdoc");
}
