"""Column numbers (3.11+ location tables): speedscope frames and the lines view.

targets/columns.py calls slow_a and slow_b from one line, about 1:3 of the
time; its truth holds the line, each call's 1-based column in the source text
and the time each function measured. One recording per interpreter, saved,
gives the speedscope output; the saved recording then gives the lines view
(file:line:col) and the collapsed stacks (one frame per line, as before).
"""
import json

from crux_helpers import RATE, frames_of, load_truth, parse_collapsed


def caller_frames(doc, truth):
    """speedscope's combined profile: {callee name: (caller frame, weight)} for run's line."""
    frames = doc["shared"]["frames"]
    prof = doc["profiles"][0]
    seen = {}
    for stack, weight in zip(prof["samples"], prof["weights"]):
        names = [frames[i]["name"] for i in stack]
        for callee in ("slow_a", "slow_b"):
            if callee in names:
                k = names.index(callee)
                caller = frames[stack[k - 1]]
                assert caller["name"] == "run" and caller.get("line") == truth["line"], caller
                key = (callee, caller.get("col"))
                seen[key] = seen.get(key, 0.0) + weight
    return seen


def test_columns(crux, interp):
    result, out, truth_path = crux.record(
        interp, "columns.py", "--duration", "2",
        options=["--rate", RATE, "--save", str(crux.tmp / "rec.db")], out="out.json")
    assert result.returncode == 0, result.describe()
    truth = load_truth(truth_path)
    with open(str(out), encoding="utf-8") as f:
        doc = json.load(f)
    seen = caller_frames(doc, truth)
    cols = truth["cols"]
    if interp.version < (3, 11):
        assert all(col is None for _, col in seen), seen
        assert not any("col" in fr for fr in doc["shared"]["frames"]), "3.8-3.10 have no columns"
    else:
        # every sample under slow_a has run at slow_a's column, and likewise for slow_b
        wrong = dict((k, w) for k, w in seen.items() if k[1] != cols[k[0]])
        assert not wrong, "columns %s, expected %s" % (wrong, cols)
        a = seen.get(("slow_a", cols["slow_a"]), 0.0)
        b = seen.get(("slow_b", cols["slow_b"]), 0.0)
        spent = truth["spent"]
        want = spent["slow_a"] / (spent["slow_a"] + spent["slow_b"])
        assert a + b > 0 and abs(a / (a + b) - want) < 0.1, (a, b, want)
    # the recording keeps the columns for the lines view ...
    lines = crux.run("report", str(crux.tmp / "rec.db"), "--format", "lines")
    assert lines.returncode == 0, lines.describe()
    for callee, col in cols.items():
        want = "run (%s:%d" % (truth["file"], truth["line"])
        if interp.version >= (3, 11):
            want += ":%d)" % col
        else:
            want += ")"
        assert want in lines.stdout, "%s not in\n%s" % (want, lines.stdout)
    # ... and every other format keeps one frame per line (parse_collapsed refuses repeats)
    coll = crux.run("report", str(crux.tmp / "rec.db"), "-o", str(crux.tmp / "c.txt"))
    assert coll.returncode == 0, coll.describe()
    callers = set()
    for stack in parse_collapsed(str(crux.tmp / "c.txt")):
        frames = frames_of(stack)
        names = [f.name for f in frames]
        for callee in ("slow_a", "slow_b"):
            if callee in names:
                callers.add((callee, frames[names.index(callee) - 1].raw))
    label = "run (%s:%d)" % (truth["file"], truth["line"])
    assert callers == {("slow_a", label), ("slow_b", label)}, callers
