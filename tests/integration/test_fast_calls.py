"""Calls shorter than a read: the samples go to the callees that run, not their callers.

targets/fast_calls.py alternates two one-line callers, each calling a callee
(a property getter, a __getitem__) that loops over 50 items for a few
microseconds. A read of a stack takes about as long, so the thread often
changes calls while it is read. The true leaf shares are known by construction:
the callees hold most samples, the callers almost none. A reader that keeps
only the stacks that held still while it read them, or cuts them at a caller,
shows the callers instead (3.11 did: 40% of samples on a caller, a callee at
0%, when its getter's nested eval loop and the inlined __getitem__ alternated).
"""
import pytest

from crux_helpers import RATE, load_truth, names_of, parse_collapsed

CALLERS_MAX = 0.25  # measured 0.02-0.13 (3.11-3.13; 3.13 varies from run to run); 0.50-0.55 before (3.11)
CALLEE_MIN = 0.20   # measured 0.29-0.57 each; Box.total at 0-0.20 before (3.11)


def test_fast_calls_go_to_the_callees(crux, interp):
    if interp.version < (3, 11):
        pytest.xfail("3.8-3.10 keep only stacks whose frames held still over the read: "
                     "a known bias (docs/internals.md, 'Calls shorter than a read')")
    result, out, truth_path = crux.record(interp, "fast_calls.py", "--duration", "2.5",
                                          options=["--rate", RATE])
    assert result.returncode == 0, result.describe()
    truth = load_truth(truth_path)
    stacks = parse_collapsed(out)
    leaves = {}
    for stack, count in stacks.items():
        leaf = names_of(stack)[-1]
        leaves[leaf] = leaves.get(leaf, 0) + count
    n = sum(leaves.values())
    assert n >= 200, "only %d samples\n%s" % (n, result.describe())
    share = dict((name, leaves.get(name, 0) / n) for name in truth["callers"] + truth["callees"])
    top = sorted(leaves.items(), key=lambda kv: -kv[1])[:8]
    callers = sum(share[name] for name in truth["callers"])
    assert callers <= CALLERS_MAX, "callers hold %.2f of the leaves: %s" % (callers, top)
    for name in truth["callees"]:
        assert share[name] >= CALLEE_MIN, "%s holds %.2f of the leaves: %s" % (
            name, share[name], top)
    samples, errors = result.summary()
    assert samples and errors is not None, result.describe()
    assert errors <= max(5, samples // 20), "%d of %d samples dropped\n%s" % (
        errors, samples, result.describe())
