"""record --allocations, copy volume (docs/memory.md): memcpy/memmove sampled by bytes.

A numpy pipeline (Debian's python3, which has numpy): `.copy()`, `np.array(ndarray)` and a byte
join copy what the target says it copied, at their lines, within 15%; `np.array(list)` and
`.tolist()` convert element by element and copy nothing. A pure-Python loop copies nothing at
its lines. Other interpreters: the pure loop only.
"""
import json
import os

import pytest

from crux_helpers import load_truth

MB = 1 << 20
AGENT = os.path.join(os.path.dirname(__file__), "..", "..", "build", "agent")


def record(crux, interp, mode):
    if not os.path.isdir(os.path.join(AGENT, interp.id, "crux")):
        pytest.skip("no agent built for %s (make agent)" % interp.id)
    argv, truth_path = crux.target_argv(interp, "copies.py")
    argv = argv[:2] + [mode] + argv[2:]
    out = crux.tmp / ("copies-%s.json" % mode)
    result = crux.run("record", "--rate", "50", "--allocations", "--format", "lines", "-o", out,
                      "--", *argv)
    assert result.returncode == 0, result.describe()
    with open(str(out), encoding="utf-8") as f:
        data = json.load(f)
    return data["allocations"]["copies"], load_truth(truth_path)


def copied_at(copies, line):
    return sum(s["bytes"] for s in copies["lines"]
               if s["line"] == line and (s["file"] or "").endswith("copies.py"))


def test_numpy_copies_at_their_lines(crux, interp):
    if interp.id != "debian3.11":
        pytest.skip("numpy: Debian's python3 (debian3.11)")
    copies, truth = record(crux, interp, "numpy")
    assert copies is not None and copies["sample_bytes"] == MB, copies
    lines = truth["lines"]
    for tag in ("COPY", "ASARRAY", "JOIN"):
        want = truth["copied"][tag]
        got = copied_at(copies, lines[tag])
        assert abs(got - want) <= 0.15 * want, (tag, got, want, copies["lines"][:6])
    for tag in ("FROMLIST", "TOLIST"):
        assert copied_at(copies, lines[tag]) <= 2 * MB, (tag, copies["lines"][:6])
    top = copies["lines"][0]
    assert top["file"].endswith("copies.py") and top["line"] in (lines["COPY"], lines["ASARRAY"])
    assert top["bytes_per_s"] > 0 and copies["total_bytes"] >= sum(truth["copied"].values()) * 0.85


def test_pure_python_copies_nothing(crux, interp):
    copies, truth = record(crux, interp, "pure")
    assert copies is not None, "copies were not sampled"
    # one sample stands for about a mean gap (1 MiB): startup's small copies may land one
    own = sum(s["bytes"] for s in copies["lines"] if (s["file"] or "").endswith("copies.py"))
    assert own <= 4 * MB, copies["lines"][:6]
    assert copied_at(copies, truth["lines"]["PURE"]) <= 2 * MB, copies["lines"][:6]


def test_saved_recording_keeps_copies(crux, interp):
    """The copy events are saved: `crux report saved.db --format lines` prints the live run's
    allocation section, copies included, and the HTML report's memory section lists them."""
    if interp.id != "debian3.11":
        pytest.skip("numpy: Debian's python3 (debian3.11)")
    if not os.path.isdir(os.path.join(AGENT, interp.id, "crux")):
        pytest.skip("no agent built for %s (make agent)" % interp.id)
    argv, truth_path = crux.target_argv(interp, "copies.py")
    argv = argv[:2] + ["numpy"] + argv[2:]
    db, live = crux.tmp / "copies.db", crux.tmp / "live.txt"
    result = crux.run("record", "--rate", "50", "--allocations", "--format", "lines", "-o", live,
                      "--save", db, "--", *argv)
    assert result.returncode == 0, result.describe()
    saved = crux.tmp / "saved.txt"
    result = crux.run("report", db, "--format", "lines", "-o", saved)
    assert result.returncode == 0, result.describe()

    def section(path):
        text = path.read_text(encoding="utf-8")
        k = text.find("\nallocations (")
        assert k >= 0, text[-2000:]
        return text[k:]

    assert section(saved) == section(live)
    assert "copies by line" in section(saved)
    html = crux.tmp / "copies.html"
    result = crux.run("report", db, "-o", html)
    assert result.returncode == 0, result.describe()
    page = html.read_text(encoding="utf-8")
    truth = load_truth(truth_path)
    assert 'id="memcopies"' in page, page[-3000:]
    assert "copies.py:%d" % truth["lines"]["COPY"] in page.split('id="memcopies"', 1)[1]
