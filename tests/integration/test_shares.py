"""Time shares: crux's sample shares match the wall-time split the target measured itself.

targets/shares.py alternates 20 ms of cpu_python, 10 ms of busy_in_c (on-CPU in
one C call) and 30 ms of sleeper, timing each slice. With --idle every sample
counts, so crux's shares must match the wall shares; without --idle the
sleeping slices are dropped, so sleeper vanishes and the other two split the
samples in their renormalized proportion.
"""
from crux_helpers import RATE, load_truth, parse_collapsed, shares

FUNCS = ["cpu_python", "busy_in_c", "sleeper"]
ON_CPU = ["cpu_python", "busy_in_c"]
TOLERANCE = 0.07  # share points; a shared 2-core machine is noisy
MIN_SAMPLES = 100


def record_shares(crux, interp, idle):
    options = ["--rate", RATE] + (["--idle"] if idle else [])
    result, out, truth_path = crux.record(interp, "shares.py", "--duration", "2.5",
                                          options=options)
    assert result.returncode == 0, result.describe()
    return parse_collapsed(out), load_truth(truth_path), result


def table(got, expected):
    return ", ".join("%s crux %.3f vs target %.3f" % (f, got[f], expected[f]) for f in expected)


def test_shares_with_idle_match_wall_time(crux, interp):
    stacks, truth, result = record_shares(crux, interp, idle=True)
    got, n = shares(stacks, FUNCS)
    assert n >= MIN_SAMPLES, "only %d samples in the three functions\n%s" % (n, result.describe())
    expected = truth["shares"]
    for f in FUNCS:
        assert abs(got[f] - expected[f]) <= TOLERANCE, "%s is off: %s" % (f, table(got, expected))
    # the closing summary: `N samples`, `N errors`; a healthy target rarely fails a sample
    samples, errors = result.summary()
    assert samples is not None and errors is not None, \
        "no `N samples ... N errors` summary on stderr\n" + result.describe()
    assert samples > 0, result.describe()
    assert errors <= max(5, samples // 20), result.describe()


def test_shares_without_idle_drop_sleeper(crux, interp):
    stacks, truth, result = record_shares(crux, interp, idle=False)
    got_all, n_all = shares(stacks, FUNCS)
    assert n_all >= MIN_SAMPLES // 2, "only %d samples\n%s" % (n_all, result.describe())
    # ~0.5 of wall time; what remains is wake-up latency (runnable, state R) on a busy machine
    assert got_all["sleeper"] <= 0.10, \
        "sleeper kept without --idle: %s" % table(got_all, truth["shares"])
    on_cpu_total = sum(truth["shares"][f] for f in ON_CPU)
    expected = dict((f, truth["shares"][f] / on_cpu_total) for f in ON_CPU)
    got, _ = shares(stacks, ON_CPU)
    for f in ON_CPU:
        assert abs(got[f] - expected[f]) <= TOLERANCE, "%s is off: %s" % (f, table(got, expected))

