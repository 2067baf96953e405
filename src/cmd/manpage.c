// SPDX-License-Identifier: MIT
// crux man: the man page (roff, section 1), written from the command list and each
// command's option table and --help text, so that it says what --help says.
#include <ctype.h>
#include <getopt.h>
#include <stdio.h>
#include <string.h>

#include "cmd/cmd.h"
#include "cmd/commands.h"
#include "cmd/optdoc.h"

/* Text for a roff text line: backslashes doubled as \e, a leading . or ' guarded. */
static void roff_text(FILE *f, const char *s, size_t n)
{
    if (n && (s[0] == '.' || s[0] == '\''))
        fputs("\\&", f);
    for (size_t i = 0; i < n; i++) {
        if (s[i] == '\\')
            fputs("\\e", f);
        else
            fputc(s[i], f);
    }
}

/* Text where hyphens are minus signs (options, synopses), so that they copy and search. */
static void roff_opt(FILE *f, const char *s)
{
    for (; *s; s++) {
        if (*s == '-')
            fputs("\\-", f);
        else if (*s == '\\')
            fputs("\\e", f);
        else
            fputc(*s, f);
    }
}

/* The short form of option `o`: its val when that letter is in the short-option string. */
static int short_of(const struct option *o, const char *shorts)
{
    if (o->flag || o->val <= 0 || o->val > 127 || !isalnum(o->val))
        return 0;
    return strchr(shorts, o->val) ? o->val : 0;
}

static void man_option(FILE *f, const char *cmd, const struct cmd_spec *sp, const struct option *o)
{
    struct optdoc d;
    bool documented = optdoc_find(sp->usage, o->name, &d);
    if (!d.meta[0] && !optdoc_meta(sp->usage, o->name, d.meta, sizeof(d.meta)))
        snprintf(d.meta, sizeof(d.meta), "VALUE");
    int sh = short_of(o, sp->shorts);
    fputs(".TP\n", f);
    if (sh)
        fprintf(f, "\\fB\\-%c\\fR, ", sh);
    fputs("\\fB\\-\\-", f);
    roff_opt(f, o->name);
    fputs("\\fR", f);
    if (o->has_arg != no_argument) {
        fputs(" \\fI", f);
        roff_opt(f, d.meta);
        fputs("\\fR", f);
    }
    fputc('\n', f);
    if (documented && d.text[0])
        roff_text(f, d.text, strlen(d.text));
    else if (!strcmp(o->name, "help"))
        fputs("print the command's options and exit", f);
    else
        fprintf(f, "see \\fBcrux %s \\-\\-help\\fR", cmd);
    fputc('\n', f);
}

static void man_command(FILE *f, const struct command *c)
{
    const struct cmd_spec *sp = c->spec();
    char line[512];
    fprintf(f, ".SS \"crux %s\"\n", c->name);
    for (size_t k = 0; optdoc_synopsis(sp->usage, k, line, sizeof(line)); k++) {
        fputs(k ? ".br\n" : "", f);
        roff_opt(f, line);
        fputc('\n', f);
    }
    fputs(".PP\n", f);
    roff_text(f, c->summary, strlen(c->summary));
    fputs(".\n", f);
    for (const struct option *o = sp->opts; o->name; o++)
        man_option(f, c->name, sp, o);
}

/* Each command's "exit status:" paragraph, joined into one line. */
static void man_exit_status(FILE *f, const struct command *c)
{
    const char *e = optdoc_exit_status(c->spec()->usage);
    if (!e)
        return;
    e += strlen("exit status:");
    while (*e == ' ')
        e++;
    fprintf(f, ".TP\n\\fBcrux %s\\fR\n", c->name);
    for (const char *l = e; *l;) {
        const char *nl = strchr(l, '\n');
        size_t n = nl ? (size_t)(nl - l) : strlen(l);
        roff_text(f, l, n);
        fputc(nl && nl[1] ? ' ' : '\n', f);
        l = nl ? nl + 1 : l + n;
    }
}

static void man_page(FILE *f)
{
    size_t n;
    const struct command *cs = commands_all(&n);
    fputs(".\\\" crux(1), written by `crux man` from crux's option tables; do not edit.\n", f);
    fprintf(f, ".TH CRUX 1 \"\" \"crux %s\" \"User Commands\"\n", CRUX_VERSION);
    fputs(".SH NAME\ncrux \\- sampling profiler, load generator and experiment runner for "
          "Python\n.SH SYNOPSIS\n.B crux\n.I COMMAND\n[options]\n",
          f);
    for (size_t i = 0; i < n; i++) {
        char line[512];
        for (size_t k = 0; cs[i].spec && optdoc_synopsis(cs[i].spec()->usage, k, line, 512); k++) {
            fputs(".br\n", f);
            roff_opt(f, line);
            fputc('\n', f);
        }
    }
    fputs(".br\ncrux completions bash|zsh|fish\n.br\ncrux man\n", f);
    fputs(".SH DESCRIPTION\ncrux samples the stacks of a running Python program from outside "
          "it, generates HTTP load and measures latency, and compares runs with confidence "
          "intervals.\nRun \\fBcrux \\fICOMMAND\\fB \\-\\-help\\fR for a command's "
          "options.\n",
          f);
    for (size_t i = 0; i < n; i++) {
        fprintf(f, ".TP\n.B %s\n", cs[i].name);
        roff_text(f, cs[i].summary, strlen(cs[i].summary));
        fputc('\n', f);
    }
    fputs(".SH OPTIONS\n", f);
    for (size_t i = 0; i < n; i++)
        if (cs[i].spec)
            man_command(f, &cs[i]);
    fputs(".SH EXIT STATUS\n0 on success, 1 when the work failed, 2 for bad options; "
          "\\fBcrux record \\-\\- COMMAND\\fR exits with the "
          "command's status unless \\-\\-duration ended it. Where a command says more:\n",
          f);
    for (size_t i = 0; i < n; i++)
        if (cs[i].spec)
            man_exit_status(f, &cs[i]);
    fputs(".SH FILES\n.TP\n.I .crux/runs\nthe run store: the runs kept by \\-\\-label and "
          "\\-\\-store (see \\fBcrux runs\\fR)\n"
          ".SH SEE ALSO\nREADME.md and docs/ in crux's source: docs/loop.md (the run store, "
          "diff, gate, exp), docs/load.md, docs/stages.md, docs/report.md, docs/formats.md, "
          "docs/native.md.\n",
          f);
}

int cmd_man(int argc, char **argv)
{
    if (argc > 1 && (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h"))) {
        fputs("usage: crux man > crux.1: the man page (roff, section 1) on stdout\n", stdout);
        return 0;
    }
    if (argc > 1) {
        fprintf(stderr, "crux: man takes no arguments, got '%s'\n", argv[1]);
        return EXIT_USAGE;
    }
    man_page(stdout);
    return 0;
}
