// SPDX-License-Identifier: MIT
// crux completions bash|zsh|fish: a completion script written from the command list and each
// command's getopt_long table, so that it offers exactly the options the commands parse.
#include <ctype.h>
#include <getopt.h>
#include <stdio.h>
#include <string.h>

#include "cmd/cmd.h"
#include "cmd/commands.h"
#include "cmd/optdoc.h"

enum value_kind { VAL_NONE, VAL_FILE, VAL_DIR, VAL_OTHER };

/* Options whose value is a path; every other value (numbers, names, URLs) completes to
 * nothing rather than to file names. */
static const char *const FILE_OPTS[] = {"output",     "save", "json",          "rules",
                                        "thresholds", "body", "requests-file", "log",
                                        "ring",       "otlp", "markdown"};

static enum value_kind value_kind(const struct option *o)
{
    if (o->has_arg == no_argument)
        return VAL_NONE;
    if (!strcmp(o->name, "store") || !strcmp(o->name, "dir"))
        return VAL_DIR;
    for (size_t i = 0; i < sizeof(FILE_OPTS) / sizeof(FILE_OPTS[0]); i++)
        if (!strcmp(o->name, FILE_OPTS[i]))
            return VAL_FILE;
    return VAL_OTHER;
}

/* The short form of `o`: its val when that letter is in the short-option string; else 0. */
static int short_of(const struct option *o, const char *shorts)
{
    if (o->flag || o->val <= 0 || o->val > 127 || !isalnum(o->val))
        return 0;
    return strchr(shorts, o->val) ? o->val : 0;
}

/* Copies `s` into `out` for a description: characters that mean something to a shell or to
 * zsh's _arguments become spaces, runs of spaces one space; stops at `stop` characters and
 * after `max` bytes (at a word's end). Apostrophes are kept: put() escapes them. */
static void clean(const char *s, const char *stop, size_t max, char *out, size_t cap)
{
    size_t n = 0;
    for (; *s && !strchr(stop, *s) && n + 1 < cap; s++) {
        bool ok = isalnum((unsigned char)*s) || strchr(",./%+=_-()'", *s);
        char ch = ok ? *s : ' ';
        if (ch == ' ' && (n == 0 || out[n - 1] == ' '))
            continue;
        out[n++] = ch;
    }
    if (n > max) {
        n = max;
        while (n && out[n] != ' ')
            n--;
    }
    while (n && (out[n - 1] == ' ' || out[n - 1] == ','))
        n--;
    out[n] = 0;
}

/* The first clause of the option's --help line, for zsh and fish; "" when none. */
static void short_desc(const struct cmd_spec *sp, const struct option *o, char *out, size_t cap)
{
    struct optdoc d;
    out[0] = 0;
    if (optdoc_find(sp->usage, o->name, &d))
        clean(d.text, ";(:", 60, out, cap);
}

/* Writes `s` for use inside single quotes: zsh closes, escapes and reopens ('\''), fish
 * takes \' inside them. */
static void put(FILE *f, const char *s, bool fish)
{
    for (; *s; s++) {
        if (*s == '\'')
            fputs(fish ? "\\'" : "'\\''", f);
        else
            fputc(*s, f);
    }
}

/* Writes the options of `sp` of the given kind, each as --name (and -x), space-separated. */
static void bash_list(FILE *f, const struct cmd_spec *sp, int kind, bool shorts)
{
    const char *sep = "";
    for (const struct option *o = sp->opts; o->name; o++) {
        if (kind >= 0 && value_kind(o) != (enum value_kind)kind)
            continue;
        int sh = short_of(o, sp->shorts);
        if (shorts && sh) {
            fprintf(f, "%s-%c", sep, sh);
            sep = " ";
        }
        fprintf(f, "%s--%s", sep, o->name);
        sep = " ";
    }
}

/* The bash script. Past 60 lines because most of it is the script itself, kept in one piece
 * so that it reads as the shell code it is. */
static void bash_script(FILE *f, const struct command *cs, size_t n)
{
    fputs("# bash completion for crux, written by `crux completions bash` from crux's option\n"
          "# tables. Load it with: source <(crux completions bash)\n"
          "_crux()\n{\n"
          "    local cur=${COMP_WORDS[COMP_CWORD]} prev=${COMP_WORDS[COMP_CWORD-1]}\n"
          "    local cmd=${COMP_WORDS[1]} opts files dirs values i\n"
          "    COMPREPLY=()\n"
          "    if [[ $COMP_CWORD -eq 1 ]]; then\n"
          "        COMPREPLY=($(compgen -W \"",
          f);
    for (size_t i = 0; i < n; i++)
        fprintf(f, "%s%s", i ? " " : "", cs[i].name);
    fputs("\" -- \"$cur\"))\n"
          "        return 0\n"
          "    fi\n"
          "    # after --, the command to run\n"
          "    for ((i = 2; i < COMP_CWORD; i++)); do\n"
          "        if [[ ${COMP_WORDS[i]} == -- ]]; then\n"
          "            if [[ $i -eq $((COMP_CWORD - 1)) ]]; then\n"
          "                COMPREPLY=($(compgen -c -- \"$cur\"))\n"
          "            else\n"
          "                COMPREPLY=($(compgen -f -- \"$cur\"))\n"
          "            fi\n"
          "            return 0\n"
          "        fi\n"
          "    done\n"
          "    case $cmd in\n",
          f);
    for (size_t i = 0; i < n; i++) {
        if (!cs[i].spec)
            continue;
        const struct cmd_spec *sp = cs[i].spec();
        fprintf(f, "    %s)\n        opts=\"", cs[i].name);
        bash_list(f, sp, -1, false);
        fputs("\"\n        files=\"", f);
        bash_list(f, sp, VAL_FILE, true);
        fputs("\"\n        dirs=\"", f);
        bash_list(f, sp, VAL_DIR, true);
        fputs("\"\n        values=\"", f);
        bash_list(f, sp, VAL_OTHER, true);
        fputs("\"\n        ;;\n", f);
    }
    fputs("    completions)\n"
          "        [[ $COMP_CWORD -eq 2 ]] && COMPREPLY=($(compgen -W \"bash zsh fish\" -- "
          "\"$cur\"))\n"
          "        return 0\n"
          "        ;;\n"
          "    *)\n"
          "        return 0\n"
          "        ;;\n"
          "    esac\n"
          "    if [[ \" $files \" == *\" $prev \"* ]]; then\n"
          "        COMPREPLY=($(compgen -f -- \"$cur\"))\n"
          "    elif [[ \" $dirs \" == *\" $prev \"* ]]; then\n"
          "        COMPREPLY=($(compgen -d -- \"$cur\"))\n"
          "    elif [[ \" $values \" == *\" $prev \"* ]]; then\n"
          "        COMPREPLY=()\n"
          "    elif [[ $cur == -* ]]; then\n"
          "        COMPREPLY=($(compgen -W \"$opts\" -- \"$cur\"))\n"
          "    else\n"
          "        COMPREPLY=($(compgen -f -- \"$cur\"))\n"
          "    fi\n"
          "    return 0\n"
          "}\n"
          "complete -o filenames -F _crux crux\n",
          f);
}

static void zsh_option(FILE *f, const struct cmd_spec *sp, const struct option *o)
{
    static const char *const action[] = {"", ":file:_files", ":directory:_files -/", ":value: "};
    char desc[128];
    short_desc(sp, o, desc, sizeof(desc));
    enum value_kind k = value_kind(o);
    int sh = short_of(o, sp->shorts);
    if (sh) {
        fprintf(f, "            '-%c%s[", sh, k ? "+" : "");
        put(f, desc, false);
        fprintf(f, "]%s' \\\n", action[k]);
    }
    fprintf(f, "            '--%s%s[", o->name, k ? "=" : "");
    put(f, desc, false);
    fprintf(f, "]%s' \\\n", action[k]);
}

static void zsh_script(FILE *f, const struct command *cs, size_t n)
{
    fputs("#compdef crux\n"
          "# zsh completion for crux, written by `crux completions zsh` from crux's option\n"
          "# tables. Save it as _crux in a folder on $fpath.\n"
          "_crux() {\n"
          "    local -a commands\n"
          "    commands=(\n",
          f);
    for (size_t i = 0; i < n; i++) {
        char desc[128];
        clean(cs[i].summary, "", sizeof(desc), desc, sizeof(desc));
        fprintf(f, "        '%s:", cs[i].name);
        put(f, desc, false);
        fputs("'\n", f);
    }
    fputs("    )\n"
          "    if (( CURRENT == 2 )); then\n"
          "        _describe -t commands 'crux command' commands\n"
          "        return\n"
          "    fi\n"
          "    local cmd=${words[2]}\n"
          "    shift words\n"
          "    (( CURRENT-- ))\n"
          "    case $cmd in\n",
          f);
    for (size_t i = 0; i < n; i++) {
        if (!cs[i].spec)
            continue;
        const struct cmd_spec *sp = cs[i].spec();
        fprintf(f, "    %s)\n        _arguments -S \\\n", cs[i].name);
        for (const struct option *o = sp->opts; o->name; o++)
            zsh_option(f, sp, o);
        fputs("            '*:file:_files'\n        ;;\n", f);
    }
    fputs("    completions)\n"
          "        _arguments '1:shell:(bash zsh fish)'\n"
          "        ;;\n"
          "    esac\n"
          "}\n"
          "_crux \"$@\"\n",
          f);
}

static void fish_script(FILE *f, const struct command *cs, size_t n)
{
    fputs("# fish completion for crux, written by `crux completions fish` from crux's option\n"
          "# tables. Save it as ~/.config/fish/completions/crux.fish\n"
          "complete -c crux -f\n",
          f);
    for (size_t i = 0; i < n; i++) {
        char desc[128];
        clean(cs[i].summary, "", sizeof(desc), desc, sizeof(desc));
        fprintf(f, "complete -c crux -n __fish_use_subcommand -a %s -d '", cs[i].name);
        put(f, desc, true);
        fputs("'\n", f);
    }
    for (size_t i = 0; i < n; i++) {
        if (!cs[i].spec)
            continue;
        const struct cmd_spec *sp = cs[i].spec();
        for (const struct option *o = sp->opts; o->name; o++) {
            static const char *const how[] = {"", " -r -F",
                                              " -x -a '(__fish_complete_directories)'", " -x"};
            char desc[128];
            short_desc(sp, o, desc, sizeof(desc));
            int sh = short_of(o, sp->shorts);
            fprintf(f, "complete -c crux -n '__fish_seen_subcommand_from %s' -l %s", cs[i].name,
                    o->name);
            if (sh)
                fprintf(f, " -s %c", sh);
            fputs(how[value_kind(o)], f);
            if (desc[0]) {
                fputs(" -d '", f);
                put(f, desc, true);
                fputc('\'', f);
            }
            fputc('\n', f);
        }
    }
    fputs("complete -c crux -n '__fish_seen_subcommand_from completions' -a 'bash zsh fish'\n", f);
}

int cmd_completions(int argc, char **argv)
{
    size_t n;
    const struct command *cs = commands_all(&n);
    if (argc == 2 && !strcmp(argv[1], "bash")) {
        bash_script(stdout, cs, n);
    } else if (argc == 2 && !strcmp(argv[1], "zsh")) {
        zsh_script(stdout, cs, n);
    } else if (argc == 2 && !strcmp(argv[1], "fish")) {
        fish_script(stdout, cs, n);
    } else if (argc == 2 && (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h"))) {
        fputs("usage: crux completions bash|zsh|fish: a completion script on stdout\n"
              "  bash: source <(crux completions bash), or save it in\n"
              "        ~/.local/share/bash-completion/completions/crux\n"
              "  zsh:  crux completions zsh > ~/.zfunc/_crux (with ~/.zfunc on $fpath)\n"
              "  fish: crux completions fish > ~/.config/fish/completions/crux.fish\n",
              stdout);
    } else {
        fputs("crux: completions needs one shell: bash, zsh or fish (crux completions bash)\n",
              stderr);
        return EXIT_USAGE;
    }
    return 0;
}
