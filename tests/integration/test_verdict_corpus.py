"""The verdict corpus: ordinary programs with a known dominant kind of time, and crux's verdict.

Each program in tests/integration/targets/corpus/ does what people write every day (HTTP
clients, SQLite reports, pandas, gzip, Pillow, scikit-learn, torch, a fast tokenizer,
numpy, pools, threads, pipes, sockets) and measures in process where its own time goes
(time.perf_counter and thread/process CPU time around its phases: corpus/_timing.py). The
manifest (corpus/manifest.json) gives each program's interpreter and the verdict type it
must get, "none" for no clear bottleneck. Every program runs under
`crux record -f verdict` twice: in the default mode and with --idle. A test first checks
that the program's own measurement agrees with the manifest (so a failure names the
program when the program is wrong), then the verdict. At the end of the module the
confusion matrix (expected type x crux's type) of each mode is printed and written to
tests/artifacts/verdict_corpus.txt.

Environment: CRUX_CORPUS_DURATION (seconds of work per program, default 3).
"""
import json
import os
import subprocess
import sys

import pytest

from conftest import REPO, TARGETS, Interp, resolve_interp
from crux_helpers import load_truth

CORPUS = TARGETS / "corpus"
with open(str(CORPUS / "manifest.json"), encoding="utf-8") as _f:
    MANIFEST = json.load(_f)["programs"]
DURATION = os.environ.get("CRUX_CORPUS_DURATION", "3")
MODES = {"default": [], "idle": ["--idle"]}
TYPES = ["host", "gil", "io", "serialization", "queue", "model", "gpu", "none"]
SHORT = {"serialization": "serial"}  # column labels of the confusion matrix
MIN_SHARE = 0.6  # least share of its own time a program's dominant kind must hold
EMBED_PYTHON = REPO / "tests" / "artifacts" / "embed-venv" / "bin" / "python"

_interps = {}
_modules = {}


def debian_python():
    wanted = os.environ.get("CRUX_PYTHONS", "").strip()
    if wanted and "debian3.11" not in [w.strip() for w in wanted.split(",")]:
        pytest.skip("CRUX_PYTHONS does not select debian3.11")
    got = resolve_interp("debian3.11", "/usr/bin/python3")
    if isinstance(got, str):
        pytest.skip(got)
    return got


def embed_python():
    """tests/artifacts/embed-venv, made by tools/embed_venv.sh (once; offline afterwards)."""
    if "embed" not in _interps:
        try:
            done = subprocess.run(["bash", str(REPO / "tools" / "embed_venv.sh")],
                                  capture_output=True, text=True, timeout=600)
            _interps["embed"] = (Interp("embed-venv", EMBED_PYTHON, (3, 11))
                                 if done.returncode == 0 else
                                 "tools/embed_venv.sh failed (PyPI unreachable?): %s"
                                 % done.stderr[-300:])
        except subprocess.TimeoutExpired:
            _interps["embed"] = "tools/embed_venv.sh took over 10 minutes"
    if isinstance(_interps["embed"], str):
        pytest.skip(_interps["embed"])
    return _interps["embed"]


def program_python(entry):
    """The interpreter the manifest names, skipping when it or a module it needs is missing."""
    interp = embed_python() if entry["python"] == "embed" else debian_python()
    for module in entry.get("needs", []):
        key = (interp.path, module)
        if key not in _modules:
            _modules[key] = subprocess.run([interp.path, "-c", "import " + module],
                                           capture_output=True).returncode == 0
        if not _modules[key]:
            pytest.skip("%s has no %s (tools/setup.sh, tools/embed_venv.sh)"
                        % (interp.path, module))
    return interp


def check_truth(program, entry, truth):
    """The program's own measurement must show the kind of time the manifest expects."""
    expect = entry["expect"]
    shares = dict((k, round(v, 2)) for k, v in truth["shares"].items())
    assert truth["expect"] == expect, "%s says it is built for %s, the manifest says %s" % (
        program, truth["expect"], expect)
    assert truth["setup_s"] <= truth["work_s"], \
        "%s: %.2f s of imports and setup before %.2f s of work" % (
            program, truth["setup_s"], truth["work_s"])
    if expect == "none":
        assert truth["dominant"] == "sleep" or truth["dominant_share"] < 0.4, \
            "%s should have no dominant kind of time (or a deliberate sleep): %s" % (
                program, shares)
    else:
        least = entry.get("min_share", MIN_SHARE)
        assert truth["dominant"] == expect and truth["dominant_share"] >= least, \
            "%s: its own measurement has %s (want %s >= %.0f%%)" % (
                program, shares, expect, 100 * least)


class CorpusReport(object):
    """What each run gave, for the confusion matrices at the end."""

    def __init__(self):
        self.rows = {}  # (program, mode) -> (expected, crux's type, truth, verdict)

    def add(self, program, mode, expected, got, truth=None, verdict=None):
        self.rows[program, mode] = (expected, got, truth, verdict)

    def matrix(self, mode):
        cols = TYPES + ["error"]
        cells = {}
        for (program, m), (expected, got, _, _) in self.rows.items():
            if m == mode:
                cells[expected, got] = cells.get((expected, got), 0) + 1
        expected_types = [t for t in TYPES if any(e == t for e, _ in cells)]
        lines = ["%s mode: rows = expected, columns = crux's verdict" % mode,
                 "%-14s" % "" + "".join("%7s" % SHORT.get(c, c) for c in cols)]
        for t in expected_types:
            lines.append("%-14s" % t + "".join(
                "%7s" % (cells.get((t, c), "") or ".") for c in cols))
        runs = [v for (p, m), v in self.rows.items() if m == mode]
        right = sum(1 for e, g, _, _ in runs if e == g)
        lines.append("agreement: %d/%d" % (right, len(runs)))
        return "\n".join(lines)

    def table(self):
        lines = ["%-26s %-14s %-36s %-14s %-14s" % (
            "program", "expected", "own truth (shares, setup)", "default", "idle")]
        for program in sorted(set(p for p, _ in self.rows)):
            expected, truth = None, None
            got = {}
            for mode in MODES:
                row = self.rows.get((program, mode))
                if row:
                    expected, got[mode] = row[0], row[1]
                    truth = truth or row[2]
            own = "?"
            if truth:
                kinds = sorted(truth["shares"].items(), key=lambda kv: -kv[1])
                own = " ".join("%s %.0f%%" % (SHORT.get(k, k), 100 * v)
                               for k, v in kinds if v >= 0.05)
                own += ", %.1fs" % truth["setup_s"]
            lines.append("%-26s %-14s %-36s %-14s %-14s" % (
                program, expected, own, got.get("default", "-"), got.get("idle", "-")))
        return "\n".join(lines)

    def render(self):
        modes = [m for m in MODES if any(mm == m for _, mm in self.rows)]
        return "\n\n".join(["verdict corpus (%s s per program)" % DURATION, self.table()]
                           + [self.matrix(m) for m in modes]) + "\n"


@pytest.fixture(scope="module")
def corpus_report(request):
    report = CorpusReport()
    yield report
    if not report.rows:
        return
    text = report.render()
    artifacts = REPO / "tests" / "artifacts"
    artifacts.mkdir(parents=True, exist_ok=True)
    (artifacts / "verdict_corpus.txt").write_text(text, encoding="utf-8")
    capture = request.config.pluginmanager.getplugin("capturemanager")
    with capture.global_and_fixture_disabled():
        sys.stdout.write("\n\n" + text)
        sys.stdout.flush()


@pytest.mark.parametrize("mode", list(MODES))
@pytest.mark.parametrize("program", sorted(MANIFEST))
def test_verdict(crux, corpus_report, program, mode):
    entry = MANIFEST[program]
    interp = program_python(entry)
    expected = entry["expect"]
    result, out, truth_path = crux.record(interp, "corpus/" + program, "--duration",
                                          DURATION, options=["-f", "verdict"] + MODES[mode],
                                          out="verdict.json")
    if result.returncode != 0 or not out.exists() or not truth_path.exists():
        corpus_report.add(program, mode, expected, "error")
        pytest.fail("crux or the program failed\n" + result.describe())
    truth = load_truth(truth_path)
    with open(str(out), encoding="utf-8") as f:
        verdict = json.load(f)
    got = verdict["verdict"]["type"] if verdict["verdict"] else "none"
    corpus_report.add(program, mode, expected, got, truth, verdict)
    check_truth(program, entry, truth)
    allowed = [expected] + entry.get("alternatives", [])
    types = dict((k, round(v["share"], 2)) for k, v in verdict["types"].items() if v["share"])
    stages = [(s["name"], round(s["share"], 2)) for s in verdict["stages"] if s["share"] > 0.02]
    assert got in allowed, (
        "%s (%s mode): crux says %s, want %s\n  reason: %s\n  crux's types: %s\n"
        "  stages: %s\n  program's own shares: %s" % (
            program, mode, got, " or ".join(allowed), verdict["reason"], types, stages,
            truth["shares"]))
