"""crux completions bash|zsh|fish and crux man: written from the commands' own getopt_long
tables, so they offer every option the commands parse and nothing else.

The oracle for "every option" is read from the C sources here (each command's
`static const struct option OPTS[]`), not from crux, so a table the generator failed to reach
shows up as a missing option.
"""
import re
import shlex
import shutil
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
COMMANDS = ["record", "dump", "top", "report", "load", "stages", "runs", "diff", "gate", "exp", "serve"]


def source_options():
    """{command: [(long name, takes a value)]} from each command's OPTS table in src/cmd/."""
    found = {}
    for cmd in COMMANDS:
        text = (REPO / "src" / "cmd" / (cmd + ".c")).read_text()
        m = re.search(r"static const struct option OPTS\[\] = \{(.*?)\{0, 0, 0, 0\}\};", text, re.S)
        assert m, "no OPTS table in src/cmd/%s.c" % cmd
        found[cmd] = [(name, arg != "no_argument")
                      for name, arg in re.findall(r'\{"([a-z0-9-]+)",\s*(\w+_argument)', m.group(1))]
        assert found[cmd], cmd
    return found


def run(crux_bin, *args):
    p = subprocess.run([crux_bin] + list(args), capture_output=True, text=True, timeout=60)
    assert p.returncode == 0, p.stderr
    assert p.stderr == "", p.stderr  # ASan/UBSan reports would land here
    return p.stdout


@pytest.fixture(scope="module")
def bash_script(crux_bin, tmp_path_factory):
    path = tmp_path_factory.mktemp("compl") / "crux.bash"
    path.write_text(run(crux_bin, "completions", "bash"))
    return path


def complete(script, words, cwd=None):
    """What the bash completion offers for `words` (the last one being completed)."""
    arr = " ".join("'%s'" % w for w in words)
    prog = ('source "%s"; COMP_WORDS=(%s); COMP_CWORD=%d; COMP_LINE="%s"; _crux; '
            'printf "%%s\\n" "${COMPREPLY[@]}"' % (script, arr, len(words) - 1, " ".join(words)))
    p = subprocess.run(["bash", "-c", prog], capture_output=True, text=True, cwd=cwd, timeout=30)
    assert p.returncode == 0, p.stderr
    return [w for w in p.stdout.split("\n") if w]


def test_bash_syntax(bash_script):
    p = subprocess.run(["bash", "-n", str(bash_script)], capture_output=True, text=True)
    assert p.returncode == 0, p.stderr


def test_bash_subcommand(bash_script):
    assert complete(bash_script, ["crux", "rec"]) == ["record"]
    assert set(complete(bash_script, ["crux", ""])) >= set(COMMANDS) | {"completions", "man"}


def test_bash_long_options(bash_script):
    assert sorted(complete(bash_script, ["crux", "diff", "--f"])) == ["--fdr", "--format"]
    assert complete(bash_script, ["crux", "load", "--requests-f"]) == ["--requests-file"]


def test_bash_every_option_of_every_table(bash_script):
    for cmd, opts in source_options().items():
        got = set(complete(bash_script, ["crux", cmd, "--"]))
        want = {"--" + name for name, _ in opts}
        assert got == want, (cmd, sorted(want - got), sorted(got - want))


def test_bash_values(bash_script, tmp_path):
    (tmp_path / "profile.html").write_text("")
    (tmp_path / "runs").mkdir()
    # a file-valued option completes file names, short or long
    assert complete(bash_script, ["crux", "record", "-o", "pro"], cwd=tmp_path) == ["profile.html"]
    assert complete(bash_script, ["crux", "gate", "x", "--thresholds", "p"],
                    cwd=tmp_path) == ["profile.html"]
    # --store a folder
    assert complete(bash_script, ["crux", "runs", "--store", ""], cwd=tmp_path) == ["runs"]
    # a number: nothing, not file names
    assert complete(bash_script, ["crux", "record", "--rate", ""], cwd=tmp_path) == []
    assert complete(bash_script, ["crux", "load", "-c", ""], cwd=tmp_path) == []
    assert complete(bash_script, ["crux", "completions", ""]) == ["bash", "zsh", "fish"]


@pytest.mark.parametrize("shell", ["zsh", "fish"])
def test_other_shells_syntax(crux_bin, tmp_path, shell):
    script = run(crux_bin, "completions", shell)
    for cmd, opts in source_options().items():
        for name, _ in opts:
            needle = ("--%s" % name) if shell == "zsh" else ("-l %s" % name)
            assert needle in script, (shell, cmd, name)
    # quoting: an apostrophe in a description ("every thread's stack") must not end the quote
    if shell == "zsh":
        for line in script.split("\n"):
            if not line.lstrip().startswith("#"):
                shlex.split(line.rstrip("\\"))  # raises on an unbalanced quote
        assert "thread'\\''s" in script
    else:
        assert "thread\\'s" in script
        for line in (l for l in script.split("\n") if not l.startswith("#")):
            assert line.replace("\\'", "").count("'") % 2 == 0, line
    if not shutil.which(shell):
        pytest.skip("%s is not installed: the script was checked for its options only" % shell)
    path = tmp_path / ("crux." + shell)
    path.write_text(script)
    p = subprocess.run([shell, "-n", str(path)], capture_output=True, text=True)
    assert p.returncode == 0, p.stderr


def test_completions_bad_shell(crux_bin):
    p = subprocess.run([crux_bin, "completions", "tcsh"], capture_output=True, text=True)
    assert p.returncode == 2 and "bash, zsh or fish" in p.stderr


@pytest.fixture(scope="module")
def man_page(crux_bin):
    return run(crux_bin, "man")


def test_man_structure(man_page):
    assert man_page.startswith(".\\\"") and "\n.TH CRUX 1 " in man_page
    sections = re.findall(r"^\.SH (.*)$", man_page, re.M)
    assert sections == ["NAME", "SYNOPSIS", "DESCRIPTION", "OPTIONS", "EXIT STATUS", "FILES",
                        "SEE ALSO"]
    subsections = re.findall(r'^\.SS "crux (\w+)"$', man_page, re.M)
    assert subsections == COMMANDS
    assert ".crux/runs" in man_page


def test_man_lists_every_option(man_page):
    """Each command's section names each long option of its table, with a value when it
    takes one."""
    parts = re.split(r'^\.SS "crux (\w+)"$', man_page, flags=re.M)
    sections = dict(zip(parts[1::2], parts[2::2]))
    for cmd, opts in source_options().items():
        for name, takes_value in opts:
            tag = r"\fB\-\-%s\fR" % name.replace("-", r"\-")
            lines = [l for l in sections[cmd].split("\n") if tag + " " in l or l.endswith(tag)]
            assert lines, (cmd, name)
            assert (r" \fI" in lines[0]) == takes_value, (cmd, name, lines[0])


def test_man_descriptions_from_help(man_page):
    """Where --help documents an option on a regular line, the page says the same."""
    assert "samples per second (default 100)" in man_page
    assert "false-discovery rate of the flags (default 0.05)" in man_page
    # gate's -t continues over two lines of --help
    assert "'stage model +2pt', 'function tokenize +10%', 'errors 0'" in man_page
    assert r"\fB\-o\fR, \fB\-\-output\fR \fIFILE\fR" in man_page


def test_man_renders_without_warnings(man_page, tmp_path):
    if shutil.which("groff"):
        p = subprocess.run(["groff", "-man", "-Tutf8", "-ww", "-z"], input=man_page,
                           capture_output=True, text=True)
        assert p.returncode == 0 and p.stderr == "", p.stderr
        out = subprocess.run(["groff", "-man", "-Tutf8"], input=man_page, capture_output=True,
                             text=True).stdout
        out = re.sub(r".\x08", "", out)  # overstrike bold and underline
        out = out.replace("\u2010", "-").replace("\u2212", "-")
        assert "EXIT STATUS" in out and "--thresholds FILE" in out, out[:2000]
    elif shutil.which("man"):
        path = tmp_path / "crux.1"
        path.write_text(man_page)
        p = subprocess.run(["man", "--warnings", "-l", str(path)], capture_output=True,
                           text=True, env={"MANPAGER": "cat", "PATH": "/usr/bin:/bin"})
        assert p.returncode == 0 and p.stderr == "", p.stderr
    else:
        pytest.skip("neither groff nor man is installed: the structure tests still ran")


def test_help_lists_new_commands(crux_bin):
    out = run(crux_bin, "--help")
    for cmd in COMMANDS + ["completions", "man"]:
        assert re.search(r"^  %s +\S" % cmd, out, re.M), cmd
