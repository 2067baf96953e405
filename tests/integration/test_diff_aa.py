"""The error rates of crux diff and crux gate, measured on this machine's own noise.

Twenty recordings of one unchanged batch job (targets/loop/work.py) are split at random
(seeded) into 5 base and 5 new runs, 150 times: every split is an A/A comparison, so any
function diff flags and any regression the gate declares is false. Asserted: diff flags
something in at most 5% of the splits (its false-discovery control), the gate declares a
regression in at most 1% (the whole interval must lie past a threshold).
"""
import json
import random
import subprocess

import pytest

from conftest import REPO, SUPPORTED, resolve_interp, selected, target_env

WORK = str(REPO / "tests/integration/targets/loop/work.py")
RUNS = 20
SPLITS = 150


@pytest.fixture(scope="module")
def recordings(crux_bin, tmp_path_factory):
    interp = None
    for ident, spec, _ in selected(SUPPORTED) or SUPPORTED:
        got = resolve_interp(ident, spec)
        if not isinstance(got, str):
            interp = got
            break
    if interp is None:
        pytest.skip("no supported Python interpreter is installed")
    d = tmp_path_factory.mktemp("aa")
    files = []
    for i in range(RUNS):
        out = d / ("r%02d.db" % i)
        r = subprocess.run([crux_bin, "record", "-q", "--no-summary", "-r", "1000", "--save",
                            str(out), "-o", str(d / "x.txt"), "--", interp.path, WORK, "20"],
                           capture_output=True, text=True, timeout=120, env=target_env())
        assert r.returncode == 0, r.stderr
        files.append(str(out))
    return d, files


def test_aa_error_rates(crux_bin, recordings):
    d, files = recordings
    th = d / "th.txt"
    th.write_text("time +10%\nfunction tokenize +10%\nfunction embed +10%\n"
                  "function parse +10%\n")
    rng = random.Random(20261207)
    diff_false = gate_false = 0
    flagged_names = []
    for _ in range(SPLITS):
        pick = rng.sample(files, 10)
        base, new = ",".join(pick[:5]), ",".join(pick[5:])
        r = subprocess.run([crux_bin, "diff", base, new, "-f", "json"], capture_output=True,
                           text=True, timeout=60)
        assert r.returncode == 0, r.stderr
        doc = json.loads(r.stdout)
        names = [f["name"] for t in ("functions", "lines") for f in doc[t]
                 if f["self_time"]["flagged"]]
        if names:
            diff_false += 1
            flagged_names.append(names)
        g = subprocess.run([crux_bin, "gate", new, "--baseline", base, "-t", str(th)],
                           capture_output=True, text=True, timeout=60)
        assert g.returncode in (0, 1, 2), g.stderr
        gate_false += g.returncode == 1
    print("A/A over %d splits: diff flagged something in %d (%.1f%%), gate regression in %d "
          "(%.1f%%)" % (SPLITS, diff_false, 100.0 * diff_false / SPLITS, gate_false,
                        100.0 * gate_false / SPLITS))
    assert diff_false <= 0.05 * SPLITS, flagged_names[:5]
    assert gate_false <= 0.01 * SPLITS
