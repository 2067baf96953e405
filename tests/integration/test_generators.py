"""Generators and coroutines: their frames appear in caller -> callee order.

targets/generators.py: consume_pipeline pulls from gen_square, which pulls from
gen_source. targets/coroutines.py: asyncio, coro_main awaits coro_outer awaits
coro_inner, which calls crunch.
"""
import pytest

from crux_helpers import RATE, load_truth, names_of, parse_collapsed


@pytest.mark.parametrize("script", ["generators.py", "coroutines.py"])
def test_nested_frames_in_order(crux, interp, script):
    result, out, truth_path = crux.record(interp, script, "--duration", "2",
                                          options=["--rate", RATE])
    assert result.returncode == 0, result.describe()
    order = load_truth(truth_path)["order"]
    stacks = parse_collapsed(out)
    seen = set()
    full = 0
    for stack, count in stacks.items():
        names = names_of(stack)
        present = [f for f in order if f in names]
        seen.update(present)
        # wherever two of them are on one stack, the caller is nearer the root
        positions = [names.index(f) for f in present]
        assert positions == sorted(positions), "out of order: %s in %s" % (present, names)
        if len(present) == len(order):
            full += count
    assert seen == set(order), "missing %s; stacks: %s" % (
        set(order) - seen, [names_of(s) for s in list(stacks)[:10]])
    assert full >= 0.2 * sum(stacks.values()), \
        "too few samples with the whole chain %s: %d of %d" % (order, full, sum(stacks.values()))
