"""--gil keeps only samples of the thread holding the GIL.

targets/gil.py runs gil_spinner (pure Python, holds the GIL) beside gil_sleeper
(sleeps, wakes every 250 ms). With --gil only gil_spinner shows; the control
run (--idle, no --gil) shows both, proving the target exercises the filter.
"""
from crux_helpers import RATE, count_containing, parse_collapsed, total


def test_gil_keeps_only_the_holder(crux, interp):
    result, out, _ = crux.record(interp, "gil.py", "--duration", "2",
                                 options=["--rate", RATE, "--gil"])
    assert result.returncode == 0, result.describe()
    stacks = parse_collapsed(out)
    n = total(stacks)
    spinner = count_containing(stacks, "gil_spinner")
    sleeper = count_containing(stacks, "gil_sleeper")
    assert n >= 100, "only %d samples\n%s" % (n, result.describe())
    assert spinner >= 0.85 * n, "gil_spinner in %d of %d samples" % (spinner, n)
    assert sleeper <= 0.03 * n, "gil_sleeper (never holds the GIL) in %d of %d" % (sleeper, n)


def test_without_gil_flag_sleeper_is_visible(crux, interp):
    result, out, _ = crux.record(interp, "gil.py", "--duration", "2",
                                 options=["--rate", RATE, "--idle"])
    assert result.returncode == 0, result.describe()
    stacks = parse_collapsed(out)
    n = total(stacks)
    assert count_containing(stacks, "gil_sleeper") >= 0.2 * n
    assert count_containing(stacks, "gil_spinner") >= 0.2 * n
