"""Trust: crux, in its default non-blocking mode, never reports a stack the program cannot have.

For every interpreter, at 100 Hz, 1 kHz and 10 kHz, crux records the two trust targets
(targets/trust/churn.py: one thread of tiny calls along fixed paths, same-shaped twin
frames, recursion, exceptions; targets/trust/mix.py: four threads and an asyncio loop
through generators, coroutines, methods, __init__, closures, calls through C) for 2.5 s,
and trust_check.py judges every sampled stack against the possible stacks it derives
from the target's source. More than RESIDUAL_MIN impossible stacks (or one per RESIDUAL_PER
samples) fail the test; so do too few samples (a recording that holds nothing proves nothing). Each case prints one TRUST line with
the impossible rate and crux's own dropped-stack rate, and leaves the same figures in
tests/artifacts/trust/ (ignored by git).

Budget: 42 recordings of ~2.7 s each, ~2-3 minutes under the ASan build.
"""
import json
import os
import re

import pytest

from conftest import REPO, TARGETS
import trust_check

DURATION = 2.5
RATES = [100, 1000, 10000]
SCRIPTS = ["churn", "mix"]
ARTIFACTS = REPO / "tests" / "artifacts" / "trust"
# The goal is 0, and most cases reach it. What is left is a race no copy order closes
# without stopping the thread: a call that returns and is made again (on 3.8-3.10 from the
# same frame object, on 3.11+ into the same data-stack slot) within the few hundred
# nanoseconds between two copies, and on 3.12 a rarer one not yet explained
# (docs/internals.md, "Consistent stacks"). Measured at 0-20 per 10^5 samples per case at
# 10 kHz (3.12 churn the worst), 0 in most 100 Hz and 1 kHz cases; a case fails past
# RESIDUAL_MIN impossible stacks or one per RESIDUAL_PER samples, whichever is more.
RESIDUAL_MIN = 2
RESIDUAL_PER = 2000
ERRORS_RE = re.compile(r"(\d+) errors? \(([\d.]+)% of (\d+) thread-samples\)")


def min_samples(rate):
    """Samples with a target frame below which a clean result means nothing: a quarter of
    the requested ticks of one thread, capped at 1000 (ASan crux reaches ~3-6 kHz)."""
    return int(min(0.25 * rate * DURATION, 1000))


def dropped(stderr):
    """(errors, percent, thread-samples) from crux's closing line, or None."""
    found = ERRORS_RE.findall(stderr)
    if not found:
        return None
    e, pct, n = found[-1]
    return int(e), float(pct), int(n)


@pytest.mark.parametrize("rate", RATES, ids=lambda r: "%dHz" % r)
@pytest.mark.parametrize("script", SCRIPTS)
def test_no_impossible_stacks(crux, interp, script, rate):
    result, out, truth_path = crux.record(
        interp, "trust/%s.py" % script, "--duration", DURATION,
        options=["-r", rate, "-f", "collapsed", "--no-summary"], out="%s.txt" % script)
    assert result.returncode == 0, result.describe()
    with open(str(truth_path), encoding="utf-8") as f:
        truth = json.load(f)
    assert truth.get("phase") == "done", "target did not finish: %s" % truth
    source = os.path.join(str(TARGETS), "trust", script + ".py")
    model = trust_check.Model(source, truth["version_info"])
    rep = trust_check.check_file(model, str(out))
    drop = dropped(result.stderr)
    line = ("TRUST %s %s %d Hz: %d samples (%d with target frames), %d impossible (%.2f%%; "
            "%d even ignoring callers' lines), crux dropped %s" % (
                interp.id, script, rate, rep.total, rep.target, rep.impossible, 100.0 * rep.rate,
                rep.impossible_calls,
                                 "%d of %d thread-samples (%.2f%%)" % (drop[0], drop[2], drop[1])
                                 if drop else "?"))
    print(line)
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    record = dict(rep.as_dict(5), interp=interp.id, version=interp.version_str, script=script,
                  rate=rate, duration=DURATION,
                  crux_errors=drop[0] if drop else None,
                  crux_thread_samples=drop[2] if drop else None,
                  crux_dropped_pct=drop[1] if drop else None)
    with open(str(ARTIFACTS / ("%s-%s-%d.json" % (interp.id, script, rate))), "w") as f:
        json.dump(record, f, indent=1)
    need = min_samples(rate)
    assert rep.target >= need, "%s\nonly %d samples with target frames (need %d)\n%s" % (
        line, rep.target, need, result.describe())
    allowed = max(RESIDUAL_MIN, rep.target // RESIDUAL_PER)
    assert rep.impossible <= allowed, "%s (at most %d allowed)\n%s" % (
        line, allowed, trust_check.summary(rep, 8))
