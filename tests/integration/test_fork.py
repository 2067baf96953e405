"""A target that forks: recording works, and the child is neither stopped nor left a zombie.

targets/forker.py forks a child that runs child_work and exits 0; the parent
runs parent_work while watching the child's /proc state, reaps it, then runs
parent_after. The parent's truth says what states it saw and how the child ended.
"""
from crux_helpers import RATE, load_truth, names_of, parse_collapsed, process_state


def test_record_forking_target(crux, interp):
    result, out, truth_path = crux.record(interp, "forker.py", "--duration", "0.5",
                                          "--child-seconds", "0.8", options=["--rate", RATE])
    assert result.returncode == 0, result.describe()
    truth = load_truth(truth_path)
    assert not truth["child_hung"], "child never exited; states seen %s" % truth["child_states"]
    assert truth["child_exited"] and truth["child_exit_code"] == 0, truth
    stopped = dict((s, n) for s, n in truth["child_states"].items() if s in ("T", "t"))
    assert not stopped, "child seen stopped: %s" % truth["child_states"]
    state = process_state(truth["child_pid"])
    assert state is None, "child %d still exists in state %s" % (truth["child_pid"], state)
    stacks = parse_collapsed(out)
    names = set(n for s in stacks for n in names_of(s))
    assert {"parent_work", "parent_after"} <= names, "parent functions missing: %s" % sorted(names)
