"""Line numbers: exact lines in `dump`, the executing line and call sites in `record`.

targets/blockers.py parks threads on a Lock.acquire, an Event.wait, a
time.sleep and a one-line spin loop, each at a line it recorded itself.
targets/busyline.py spins on one known line, called from a known line.
"""
import json

from crux_helpers import RATE, frames_of, load_truth, parse_collapsed


def test_dump_lines_are_exact(crux, interp):
    target, _, truth = crux.start_target(interp, "blockers.py", "--duration", "30")
    result = crux.run("dump", "--pid", target.pid, "--json")
    assert result.returncode == 0, result.describe()
    dump = json.loads(result.stdout)
    by_tid = dict((t["tid"], t) for t in dump["threads"])
    for tid, want in truth["threads"].items():
        thread = by_tid.get(int(tid))
        assert thread, "thread %s (%s) missing from dump" % (tid, want["function"])
        frames = [f for f in thread["frames"] if f["name"] == want["function"]]
        assert frames, "%s not on thread %s: %s" % (
            want["function"], tid, [f["name"] for f in thread["frames"]])
        assert frames[0]["line"] == want["line"], "%s: dump says line %s, target says %s" % (
            want["function"], frames[0]["line"], want["line"])
        assert frames[0]["file"].endswith("blockers.py"), frames[0]
        if want["function"] == "block_on_lock":
            # Lock.acquire is C: our function is the leaf
            assert thread["frames"][0]["name"] == "block_on_lock", thread["frames"][:3]
        if want["function"] != "spin_on_line":
            assert thread["state"] == "idle", "%s: %s" % (want["function"], thread["state"])
            assert not thread["gil"], "%s holds the GIL while blocked" % want["function"]
    assert target.poll() is None, "target died during dump"


def test_record_leaf_line_and_call_site(crux, interp):
    result, out, truth_path = crux.record(interp, "busyline.py", "--duration", "2",
                                          options=["--rate", RATE])
    assert result.returncode == 0, result.describe()
    truth = load_truth(truth_path)
    stacks = parse_collapsed(out)
    hot = exact = call_site_ok = 0
    lines_seen = {}
    for stack, count in stacks.items():
        frames = frames_of(stack)
        names = [f.name for f in frames]
        if "hot_loop" not in names:
            continue
        hot += count
        leaf = frames[-1]
        if leaf.name == "hot_loop":
            lines_seen[leaf.line] = lines_seen.get(leaf.line, 0) + count
            if leaf.line == truth["lines"]["hot_loop"] and leaf.path == truth["file"]:
                exact += count
        caller = frames[names.index("hot_loop") - 1]
        if caller.name == "run_hot" and caller.line == truth["lines"]["run_hot"]:
            call_site_ok += count
    assert hot >= 100, "only %d samples in hot_loop\n%s" % (hot, result.describe())
    assert exact >= 0.9 * hot, "leaf hot_loop at line %d in %d of %d samples; lines seen %s" % (
        truth["lines"]["hot_loop"], exact, hot, lines_seen)
    assert call_site_ok >= 0.98 * hot, "caller run_hot not at call site line %d in %d of %d samples" % (
        truth["lines"]["run_hot"], hot - call_site_ok, hot)


def test_record_through_init(crux, interp):
    """Time inside __init__ keeps its stack: run -> __init__ -> crunch, at the call lines
    (3.13 specializes the class call and puts a shim frame between run and __init__)."""
    result, out, truth_path = crux.record(interp, "initwork.py", "--duration", "2",
                                          options=["--rate", RATE])
    assert result.returncode == 0, result.describe()
    truth = load_truth(truth_path)
    stacks = parse_collapsed(out)
    in_run = whole = 0
    for stack, count in stacks.items():
        frames = frames_of(stack)
        names = [f.name.rsplit(".", 1)[-1] for f in frames]
        if "run" not in names:
            continue
        in_run += count
        i = names.index("run")
        rest = frames[i:]
        if (len(rest) >= 3 and [f.name.rsplit(".", 1)[-1] for f in rest[:3]] ==
                ["run", "__init__", "crunch"] and rest[0].line == truth["lines"]["run"] and
                rest[1].line == truth["lines"]["init"]):
            whole += count
    assert in_run >= 100, "only %d samples in run\n%s" % (in_run, result.describe())
    assert whole >= 0.8 * in_run, "run -> __init__ -> crunch at the call lines in %d of %d " \
        "samples: %s" % (whole, in_run, sorted(stacks.items(), key=lambda kv: -kv[1])[:4])
