"""SIGINT / SIGTERM to crux during a launch-mode recording: the output is still written.

The launched targets/workload.py runs for at most 8 s, so the test passes
whether crux ends the command or waits for it; what it checks is the profile
and that nothing is left stopped.
"""
import os
import signal
import time

import pytest

from crux_helpers import (RATE, assert_running_freely, load_truth, names_of, parse_collapsed,
                          process_state)

CASES = [
    ("sigint-crux", signal.SIGINT, False),
    ("sigterm-crux", signal.SIGTERM, False),
    ("ctrl-c-group", signal.SIGINT, True),  # what a terminal's Ctrl-C does
]


@pytest.mark.parametrize("sig,group", [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_signal_stops_recording_and_writes_output(crux, interp, sig, group):
    argv, truth_path = crux.target_argv(interp, "workload.py", "--duration", "8")
    out = crux.tmp / "out.txt"
    proc = crux.start("record", "--rate", RATE, "-o", out, "--", *argv)
    truth = crux.wait_truth(truth_path, proc.popen)
    time.sleep(1.5)  # let some samples accumulate
    if group:
        os.killpg(proc.pid, sig)
    else:
        os.kill(proc.pid, sig)
    result = proc.finish(timeout=60)
    assert out.exists(), "no output after %s\n%s" % (signal.Signals(sig).name, result.describe())
    stacks = parse_collapsed(out)
    names = set(n for s in stacks for n in names_of(s))
    assert "workload_cpu" in names, "profile lacks workload_cpu: %s\n%s" % (
        sorted(names), result.describe())
    # the launched command, if still alive, is not left stopped
    state = process_state(truth["pid"])
    if state is not None and state != "Z" and load_truth(truth_path).get("phase") != "done":
        assert_running_freely(truth["pid"])
