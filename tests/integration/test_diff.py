"""crux diff and crux gate on runs whose true answer is known.

One interpreter (the comparison reads recordings, not interpreters): eight runs of a batch
job (targets/loop/work.py) and eight of the same job with its tokenize step made 20% slower,
interleaved (eight, not five: a machine loaded by other work moves one step's time by up to
10% from run to run, and the test must hold on such a machine too). Forty batches a run, not
twenty: with ~100 samples of tokenize a run its count's own noise gave a 95% interval of
+-12% at eight runs a side, and a 20% change was missed about one time in four on a loaded
machine (measured with two CPU hogs beside it: 40 batches flagged it 3 times in 3, lower
bounds +9% to +14%). A run that the machine visibly disturbed, its wall time 8% past the
median of its kind or its achieved rate 10% under theirs (a neighbour froze the target or
crux for ~0.1 s: one such run gave tokenize +17% [-36%, +69%] in an A/A split on CI), is
recorded again, at most twice; the test is of the comparison, not of the machine.
- A/A (base against base, split in two): no function flagged, the gate passes.
- A/B: diff flags tokenize and nothing else, the gate exits 1, the differential flame graph
  colours that frame only.
- The pickled-results pipeline against the shared-memory one: serialization fell and the
  bottleneck moved.
- Bad input: mismatched commands warn, a corrupt recording is skipped with one line, a
  threshold typo names the line.
"""
import json
import os
import re
import shutil
import subprocess

import pytest

from conftest import REPO, target_env

WORK = str(REPO / "tests/integration/targets/loop/work.py")
PIPELINE = str(REPO / "tests/integration/targets/loop/pipeline.py")
RATE = "1000"
BATCHES = "40"
ACHIEVED_RE = re.compile(r"([0-9.]+) Hz achieved over ([0-9.]+) s")
DATA_RE = re.compile(r'<script type="application/json" id="crux-data">(.*?)</script>', re.S)


def run(cmd, **kw):
    kw.setdefault("env", target_env())
    return subprocess.run(cmd, capture_output=True, text=True, timeout=300, **kw)


def record(crux_bin, python, out, **kw):
    return record_err(crux_bin, python, out, **kw)[0]


def record_err(crux_bin, python, out, slow=None, script=WORK, args=(BATCHES,), label=None,
               store=None):
    """Records `script` into `out`; returns (out, crux's stderr)."""
    env = target_env()
    if slow:
        env["SLOW"] = slow
    cmd = [crux_bin, "record", "-q", "--no-summary", "-r", RATE, "--save", str(out), "-o",
           str(out) + ".txt"]
    if label:
        cmd += ["--label", label, "--store", str(store)]
    cmd += ["--", python, script] + list(args)
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=300, env=env)
    assert r.returncode == 0, r.stderr
    return out, r.stderr


def record_steady(crux_bin, python, d, kinds, runs=8):
    """`runs` recordings of each kind (name -> SLOW), interleaved; a run the machine disturbed
    (module docstring) is recorded again, at most twice."""
    got = {}

    def take(kind, i):
        _, err = record_err(crux_bin, python, d / ("%s%d.db" % (kind, i)), slow=kinds[kind])
        m = ACHIEVED_RE.search(err)
        assert m, err
        got[kind, i] = (float(m.group(1)), float(m.group(2)))

    for i in range(runs):
        for kind in kinds:
            take(kind, i)
    for _ in range(2):
        redo = []
        for kind in kinds:
            hz = sorted(got[kind, i][0] for i in range(runs))[runs // 2]
            secs = sorted(got[kind, i][1] for i in range(runs))[runs // 2]
            redo += [(kind, i) for i in range(runs)
                     if got[kind, i][1] > 1.08 * secs or got[kind, i][0] < 0.9 * hz]
        for kind, i in redo:
            take(kind, i)
    return got


@pytest.fixture(scope="module")
def runs(crux_bin, tmp_path_factory, request):
    """Eight base and eight slow recordings, interleaved (base, slow, base, ...)."""
    from conftest import SUPPORTED, resolve_interp, selected
    interp = None
    for ident, spec, _ in selected(SUPPORTED) or SUPPORTED:
        got = resolve_interp(ident, spec)
        if not isinstance(got, str):
            interp = got
            break
    if interp is None:
        pytest.skip("no supported Python interpreter is installed")
    d = tmp_path_factory.mktemp("diffruns")
    record_steady(crux_bin, interp.path, d, {"base": None, "slow": "1.2"})
    return d, interp


def diff_json(crux_bin, base, new, *extra):
    r = run([crux_bin, "diff", base, new, "-f", "json"] + list(extra))
    assert r.returncode == 0, r.stderr
    return json.loads(r.stdout)


def flagged_functions(doc):
    return sorted(f["name"].split(" (")[0] for f in doc["functions"] if f["self_time"]["flagged"])


def test_aa_flags_nothing_and_gate_passes(crux_bin, runs, tmp_path):
    d, _ = runs
    base = ",".join(str(d / ("base%d.db" % i)) for i in (0, 2, 4, 6))
    new = ",".join(str(d / ("base%d.db" % i)) for i in (1, 3, 5, 7))
    doc = diff_json(crux_bin, base, new)
    assert doc["base_runs"] == 4 and doc["new_runs"] == 4
    assert flagged_functions(doc) == [], doc["headline"]
    assert doc["time_per_unit"]["method"] == "runs"
    th = tmp_path / "th.txt"
    # a pass needs the whole interval inside the limit: limits well past this machine's
    # run-to-run noise of one step's time (up to 10% a run when other work loads it)
    th.write_text("function tokenize +40%\nfunction embed +40%\nfunction parse +40%\n")
    r = run([crux_bin, "gate", new, "--baseline", base, "-t", str(th), "--json",
             str(tmp_path / "g.json")])
    assert r.returncode == 0, r.stdout + r.stderr
    g = json.loads((tmp_path / "g.json").read_text())
    assert g["status"] == "pass" and all(t["status"] == "pass" for t in g["thresholds"])


def test_ab_names_the_slower_function_only(crux_bin, runs, tmp_path):
    d, _ = runs
    doc = diff_json(crux_bin, str(d / "base*.db"), str(d / "slow*.db"))
    assert "tokenize" in flagged_functions(doc), doc["headline"]
    # and nothing else, with false discoveries held at 1%: "nothing else" must not rest on a
    # 5% chance
    strict = diff_json(crux_bin, str(d / "base*.db"), str(d / "slow*.db"), "--fdr", "0.01")
    assert [f for f in flagged_functions(strict) if f != "tokenize"] == [], strict["headline"]
    tok = [f for f in doc["functions"] if f["name"].startswith("tokenize (")][0]
    est = tok["self_time"]
    # the truth is +20% of tokenize's work; under a loaded machine the time moves less than
    # the work (measured +14% to +22%): a 95% interval misses the truth 1 time in 20 by
    # design, so the check is on the estimate's range and the interval's side
    assert 0.08 < est["rel"] < 0.35, est
    assert est["rel_lo"] > 0, est
    assert "tokenize" in doc["headline"] and "slower" in doc["headline"]
    stage = [s for s in doc["stages"] if s["name"] == "tokenize"]
    assert stage and stage[0]["share"]["diff"] > 0

    # the text names it too, with its interval
    r = run([crux_bin, "diff", str(d / "base*.db"), str(d / "slow*.db")])
    assert r.returncode == 0
    assert re.search(r"\* .*tokenize \(", r.stdout), r.stdout

    # the gate: a regression, exit 1
    th = tmp_path / "th.txt"
    th.write_text("# the step we changed may not get more than 2% slower\n"
                  "function tokenize +2%\n")
    md = tmp_path / "gate.md"
    r = run([crux_bin, "gate", str(d / "slow*.db"), "--baseline", str(d / "base*.db"), "-t",
             str(th), "--markdown", str(md)])
    assert r.returncode == 1, r.stdout + r.stderr
    assert "REGRESSION" in r.stdout
    assert "| `function tokenize +2%` |" in md.read_text()

    # the differential flame graph: only tokenize's frame is flagged (self view)
    html = tmp_path / "d.html"
    r = run([crux_bin, "diff", str(d / "base*.db"), str(d / "slow*.db"), "-o", str(html)])
    assert r.returncode == 0, r.stderr
    m = DATA_RE.search(html.read_text())
    assert m, "no embedded data"
    data = json.loads(m.group(1))
    # per node [parent, name, kind, flags, total_rel, self_rel, total_abs, self_abs]; an
    # estimate's last field is its flag (docs/formats.md)
    flagged = [data["strings"][node[1]].split(" (")[0] for node in data["nodes"]
               if node[7] and node[7][12]]
    # the page colours tokenize, and nothing the comparison itself did not flag
    assert "tokenize" in flagged, flagged
    assert set(flagged) <= set(flagged_functions(doc)), (flagged, flagged_functions(doc))

    # 3-column folded: tokenize's own line grows, on both sides
    folded = tmp_path / "d.folded"
    assert run([crux_bin, "diff", str(d / "base*.db"), str(d / "slow*.db"), "-o",
                str(folded)]).returncode == 0
    rows = [l.rsplit(" ", 2) for l in folded.read_text().splitlines()]
    tok_rows = [(int(b), int(n)) for s, b, n in rows if s.endswith(";tokenize (%s)" % WORK)]
    assert len(tok_rows) == 1 and tok_rows[0][1] > tok_rows[0][0], tok_rows


def test_one_run_a_side_says_so(crux_bin, runs):
    d, _ = runs
    doc = diff_json(crux_bin, str(d / "base0.db"), str(d / "base1.db"))
    assert doc["time_per_unit"]["method"] == "sampling"
    assert any("one run a side" in w for w in doc["warnings"])
    # a frame going from 0 to a few samples is never flagged
    for f in doc["functions"]:
        t = f["self_time"]
        if t["base"] == 0 and t["flagged"]:
            raise AssertionError("new frame flagged from nothing: %s" % f["name"])


def test_pipeline_serialization_fell(crux_bin, runs, tmp_path):
    _, interp = runs
    a = record(crux_bin, interp.path, tmp_path / "pickle.db", script=PIPELINE,
               args=("pickle", "3"))
    b = record(crux_bin, interp.path, tmp_path / "shm.db", script=PIPELINE, args=("shm", "3"))
    doc = diff_json(crux_bin, str(a), str(b))
    assert doc["bottleneck"]["base"] == "serialization", doc["headline"]
    assert doc["bottleneck"]["new"] != "serialization", doc["headline"]
    ser = [t for t in doc["types"] if t["name"] == "serialization"][0]["share"]
    assert ser["flagged"] and ser["diff"] < 0, ser
    assert doc["headline"].startswith("Serialization fell from"), doc["headline"]
    assert ("the bottleneck is now" in doc["headline"]
            or "no clear bottleneck now (was serialization)" in doc["headline"]), doc["headline"]


def test_bad_input(crux_bin, runs, tmp_path):
    d, interp = runs
    # a corrupt recording among the base runs: skipped with one line, the rest compared
    bad = tmp_path / "broken.db"
    bad.write_bytes(b"SQLite format 3\x00" + b"\x00" * 100)
    good = tmp_path / "ok.db"
    shutil.copy(str(d / "base0.db"), str(good))
    r = run([crux_bin, "diff", "%s,%s" % (good, bad), str(d / "slow0.db"), "-f", "json"])
    assert r.returncode == 0, r.stderr
    errs = [l for l in r.stderr.splitlines() if l.strip()]
    assert len(errs) == 1 and "broken.db" in errs[0], r.stderr
    # nothing readable on a side: a one-line error, exit 1
    r = run([crux_bin, "diff", str(bad), str(d / "slow0.db")])
    assert r.returncode == 1 and "no readable run" in r.stderr
    # different commands: compared, with a warning
    other = record(crux_bin, interp.path, tmp_path / "other.db", args=("30",))
    r = run([crux_bin, "diff", str(d / "base0.db"), str(other)])
    assert r.returncode == 0
    assert "commands differ" in r.stdout, r.stdout
    # a threshold file with a typo names the line
    th = tmp_path / "th.txt"
    th.write_text("time +5%\n\nthoughput -3%\n")
    r = run([crux_bin, "gate", str(d / "slow0.db"), "--baseline", str(d / "base0.db"), "-t",
             str(th)])
    assert r.returncode == 3
    assert "th.txt:3: unknown metric 'thoughput': did you mean 'throughput'?" in r.stderr
    th.write_text("p99 5%\n")
    r = run([crux_bin, "gate", str(d / "slow0.db"), "--baseline", str(d / "base0.db"), "-t",
             str(th)])
    assert r.returncode == 3 and "th.txt:1: bad limit '5%'" in r.stderr, r.stderr
    # a missing side
    r = run([crux_bin, "diff", str(tmp_path / "nope*.db"), str(d / "slow0.db")])
    assert r.returncode == 1 and r.stderr.count("\n") == 1, r.stderr


def test_ab_flame_graph_in_chromium(crux_bin, runs, tmp_path):
    """The real page of the A/B comparison, drawn by Chromium: in the default view (seconds
    per run, self) the slower step's frame is red, and every other frame is grey unless the
    comparison itself flagged it."""
    sync_api = pytest.importorskip("playwright.sync_api",
                                   reason="playwright is not installed (tests/requirements.txt)")
    chromium = "/usr/bin/chromium"
    if not os.access(chromium, os.X_OK):
        pytest.skip("%s is not installed (tools/setup.sh installs chromium)" % chromium)
    d, _ = runs
    html = tmp_path / "d.html"
    r = run([crux_bin, "diff", str(d / "base*.db"), str(d / "slow*.db"), "-o", str(html)])
    assert r.returncode == 0, r.stderr
    doc = diff_json(crux_bin, str(d / "base*.db"), str(d / "slow*.db"))
    data = json.loads(DATA_RE.search(html.read_text()).group(1))
    with sync_api.sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=chromium, args=["--no-sandbox"])
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 700})
            errors = []
            page.on("pageerror", lambda e: errors.append(str(e)))
            page.goto(html.resolve().as_uri())
            page.wait_for_load_state("load")
            rows = page.evaluate(
                "Array.from(document.querySelectorAll('#chart .f')).map(function (e) {"
                " return [Number(e.getAttribute('data-i')), getComputedStyle(e).backgroundColor];"
                " })")
        finally:
            browser.close()
    assert not errors, errors
    coloured = {}
    for i, css in rows:
        rgb = [int(v) for v in re.findall(r"\d+", css)[:3]]
        if max(rgb) - min(rgb) >= 12:
            name = data["strings"][data["nodes"][i][1]].split(" (")[0]
            coloured[name] = "red" if rgb[0] > rgb[2] else "blue"
    assert coloured.get("tokenize") == "red", coloured
    assert set(coloured) <= set(flagged_functions(doc)), (coloured, flagged_functions(doc))


def test_prefill_share_diff_and_gate(crux_bin, tmp_path):
    """Load JSON with stats.prefill_decode (crux load --json): diff compares the prefill share
    over repeats (Welch over runs) and the gate takes a limit in points."""
    for side, vals in (("base", [0.40, 0.41, 0.39]), ("new", [0.55, 0.56, 0.54])):
        for i, v in enumerate(vals):
            (tmp_path / ("%s%d.json" % (side, i))).write_text(json.dumps({"stats": {
                "ok": 100, "errors": 0, "throughput": 10.0 + 0.1 * i,
                "prefill_decode": {"streams": 24, "prefill_share": v,
                                   "decode_share": 1 - v}}}))
    base, new = str(tmp_path / "base*.json"), str(tmp_path / "new*.json")
    r = run([crux_bin, "diff", base, new, "-f", "json", "-o", str(tmp_path / "d.json")])
    assert r.returncode == 0, r.stderr
    est = json.loads((tmp_path / "d.json").read_text())
    text = json.dumps(est)
    assert "prefill_share" in text, text[:2000]
    r = run([crux_bin, "diff", base, new])
    line = [l for l in r.stdout.splitlines() if "prefill_share" in l]
    assert line and "40.00% ->    55.00%" in line[0] and "+15.0 pt" in line[0], r.stdout
    for limit, want in (("+5pt", 1), ("+20pt", 0)):
        th = tmp_path / "th.txt"
        th.write_text("prefill_share %s\n" % limit)
        r = run([crux_bin, "gate", new, "--baseline", base, "-t", str(th)])
        assert r.returncode == want, (limit, r.stdout, r.stderr)
