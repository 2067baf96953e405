"""A cached code object whose address was reused must not lend its name to the new one.

Found by the benchmarks: on 3.8/3.9, 15-45% of samples of a hot function were named
`<module> (site.py)` after the freed site code object whose address it reused.
"""
from crux_helpers import RATE, frames_of, load_truth, parse_collapsed


def test_hot_function_keeps_its_name(crux, interp):
    result, out, truth_path = crux.record(interp, "codereuse.py", "--duration", "1.5",
                                          options=["--rate", RATE])
    assert result.returncode == 0, result.describe()
    truth = load_truth(truth_path)
    stacks = parse_collapsed(out)
    total = sum(stacks.values())
    right = sum(count for stack, count in stacks.items()
                if frames_of(stack)[-1].name == "hot"
                and frames_of(stack)[-1].line == truth["lines"]["hot"])
    site = sum(count for stack, count in stacks.items()
               if any((f.path or "").endswith("site.py") for f in frames_of(stack)))
    assert total >= 100, result.describe()
    assert right >= 0.9 * total, "only %d of %d samples name hot at line %d" % (
        right, total, truth["lines"]["hot"])
    assert site <= 0.05 * total, "%d of %d samples under site.py" % (site, total)
