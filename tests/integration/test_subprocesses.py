"""--subprocesses: children are followed as they come and go, each labelled.

targets/pool.py runs a multiprocessing.Pool (fork, spawn and forkserver start methods:
forkserver workers are grandchildren, children of the fork server process)
whose workers build and pickle large results that the parent unpickles, then
a subprocess.run of another Python. Every process must appear under its own
`NAME (PID)` root frame with the functions it ran, and children exiting must
not be errors.
"""
import collections
import json

import pytest

from crux_helpers import RATE, load_truth, names_of, parse_collapsed


def by_process(stacks):
    """{pid: Counter(function -> samples)} from collapsed stacks rooted at processes."""
    out = collections.defaultdict(collections.Counter)
    for frames, n in stacks.items():
        root = frames[0]
        assert root.endswith(")"), root
        pid = int(root.rsplit("(", 1)[1][:-1])
        # 3.8-3.10 have no qualified names: compare the last component
        for f in set(x.split(" (")[0].rsplit(".", 1)[-1] for x in frames[1:]):
            out[pid][f] += n
    return out


@pytest.mark.parametrize("method", ["fork", "spawn", "forkserver"])
def test_pool_workers_and_parent_labelled_by_process(crux, interp, method):
    result, out, truth_path = crux.record(interp, "pool.py", "--method", method,
                                          "--duration", "1.0",
                                          options=["--subprocesses", "--rate", RATE])
    assert result.returncode == 0, result.describe()
    truth = load_truth(truth_path)
    procs = by_process(parse_collapsed(out))
    parent = procs.get(truth["pid"])
    assert parent, "parent %d missing: %s" % (truth["pid"], sorted(procs))
    # the parent's result thread unpickles what the workers send
    assert parent["recv"] >= 5, parent.most_common(8)
    for w in truth["workers"]:
        assert w in procs, "worker %d missing: %s" % (w, sorted(procs))
        assert procs[w]["work"] >= 5, (w, procs[w].most_common(8))
        assert procs[w]["dumps"] >= 1, (w, procs[w].most_common(8))
    child = procs.get(truth["child"])
    assert child and child["child_spin"] >= 20, (truth["child"], sorted(procs))
    # children exiting is normal: no error line, only the closing summary
    bad = [l for l in result.stderr.splitlines()
           if l.startswith("crux:") and "wrote" not in l and "late" not in l]
    assert not bad, result.describe()


def test_processes_listed_in_lines_view(crux, interp):
    argv, truth_path = crux.target_argv(interp, "pool.py", "--duration", "0.5")
    out = crux.tmp / "lines.json"
    result = crux.run("record", "--subprocesses", "--rate", RATE, "--format", "lines",
                      "-o", out, "--", *argv)
    assert result.returncode == 0, result.describe()
    truth = load_truth(truth_path)
    with open(str(out), encoding="utf-8") as f:
        data = json.load(f)
    pids = dict((p["pid"], p) for p in data["processes"])
    for pid in [truth["pid"], truth["child"]] + truth["workers"]:
        assert pid in pids, (pid, sorted(pids))
        assert pids[pid]["samples"] > 0 and pids[pid]["peak_rss_bytes"] > 0, pids[pid]
    for w in truth["workers"]:
        assert pids[w]["ppid"] == truth["pid"], pids[w]

    def funcs(pid):
        # 3.8-3.10 have no qualified names: compare the last component
        return set(r["function"].rsplit(".", 1)[-1] for r in pids[pid]["lines"])
    # each process has its own lines, shares of its own samples
    for w in truth["workers"]:
        assert "work" in funcs(w), (w, sorted(funcs(w)))
        assert sum(r["self"] for r in pids[w]["lines"]) <= pids[w]["samples"], pids[w]
    assert "work" not in funcs(truth["pid"]), sorted(funcs(truth["pid"]))
    assert "child_spin" in funcs(truth["child"]) and "work" not in funcs(truth["child"])


def test_without_subprocesses_only_the_target(crux, interp):
    result, out, truth_path = crux.record(interp, "pool.py", "--duration", "0.3",
                                          options=["--rate", RATE])
    assert result.returncode == 0, result.describe()
    stacks = parse_collapsed(out)
    # by name, not substring: the parent's imports run class bodies such as _BaseNetwork
    worker = [s for s in stacks if "work" in names_of(s)]
    assert not worker, "worker stacks seen: %r" % worker[:3]
