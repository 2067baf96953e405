"""Deep stacks: a 5,000-deep recursion is cut at the depth cap, leaf end kept, no crash.

targets/recursion.py recurses through dive() 5,000 times, then spins in
spin_at_bottom. crux keeps the frames nearest the leaf and marks the cut with a
`[truncated]` root frame, so no stack is longer than cap + 1.
"""
import json

import pytest

from crux_helpers import RATE, TRUNCATED, load_truth, names_of, parse_collapsed

DEFAULT_CAP = 2048


@pytest.mark.parametrize("cap", [None, 100], ids=["default-cap", "max-depth-100"])
def test_deep_recursion_is_truncated_at_root(crux, interp, cap):
    options = ["--rate", RATE] + (["--max-depth", str(cap)] if cap else [])
    limit = cap or DEFAULT_CAP
    result, out, truth_path = crux.record(interp, "recursion.py", "--duration", "2",
                                          options=options)
    assert result.returncode == 0, result.describe()
    truth = load_truth(truth_path)
    assert truth["depth"] > limit
    stacks = parse_collapsed(out)
    for stack in stacks:
        assert len(stack) <= limit + 1, "stack of %d frames, cap %d" % (len(stack), limit)
        assert TRUNCATED not in stack[1:], "[truncated] not at the root: %r" % (stack[:3],)
    cut = dict((s, c) for s, c in stacks.items() if s[0] == TRUNCATED)
    assert cut, "no stack starts with %s; longest has %d frames" % (
        TRUNCATED, max(len(s) for s in stacks) if stacks else 0)
    at_bottom = sum(c for s, c in cut.items() if names_of(s)[-1] == "spin_at_bottom")
    assert at_bottom >= 0.5 * sum(stacks.values()), \
        "most samples should be cut stacks ending in spin_at_bottom"
    for stack in cut:
        names = names_of(stack)
        # the kept frames are the ones nearest the leaf: all dive() above the leaf
        assert limit - 1 <= len(stack) - 1 <= limit, "cut stack keeps %d frames, cap %d" % (
            len(stack) - 1, limit)
        if names[-1] == "spin_at_bottom":
            assert set(names[1:-1]) == {"dive"}, "unexpected frames: %s" % set(names[1:-1])


def test_dump_deep_recursion(crux, interp):
    target, _, truth = crux.start_target(interp, "recursion.py", "--duration", "30")
    result = crux.run("dump", "--pid", target.pid, "--json")
    assert result.returncode == 0, result.describe()
    dump = json.loads(result.stdout)
    deep = [t for t in dump["threads"]
            if t["frames"] and t["frames"][0]["name"] == "spin_at_bottom"]
    assert deep, "no thread with leaf spin_at_bottom: %s" % [
        [f["name"] for f in t["frames"][:3]] for t in dump["threads"]]
    frames = deep[0]["frames"]
    # capped or not, the dump holds at least the cap's worth and never more than exist
    assert min(truth["depth"], DEFAULT_CAP) <= len(frames) <= truth["depth"] + 1, \
        "dump has %d frames of %d" % (len(frames), truth["depth"])
    assert all(f["name"] in ("dive", TRUNCATED) for f in frames[1:50]), \
        [f["name"] for f in frames[:50]]
    assert target.poll() is None, "target died during dump"
