"""Attaching to a running process: record, dump and top leave it running; early exit is fine.

targets/workload.py alternates workload_cpu and workload_sleep (plus napping
helper threads) and signals readiness through its truth file.
"""
import threading

import pytest

from crux_helpers import RATE, assert_running_freely, load_truth, names_of, parse_collapsed


@pytest.mark.parametrize("blocking", [False, True], ids=["nonblocking", "blocking"])
def test_record_attached_leaves_target_running(crux, interp, blocking):
    target, _, _ = crux.start_target(interp, "workload.py", "--duration", "60", "--threads", "2")
    out = crux.tmp / "out.txt"
    options = ["--rate", RATE, "--duration", "2"] + (["--blocking"] if blocking else [])
    result = crux.run("record", "--pid", target.pid, *options, "-o", out)
    assert result.returncode == 0, result.describe()
    stacks = parse_collapsed(out)
    names = set(n for s in stacks for n in names_of(s))
    assert "workload_cpu" in names, "workload_cpu missing; names: %s" % sorted(names)[:50]
    assert target.poll() is None, "target died (status %s)" % target.poll()
    assert_running_freely(target.pid)


def test_dump_leaves_target_running(crux, interp):
    target, _, _ = crux.start_target(interp, "workload.py", "--duration", "60", "--threads", "2")
    for _ in range(3):
        result = crux.run("dump", "--pid", target.pid)
        assert result.returncode == 0, result.describe()
    assert target.poll() is None, "target died (status %s)" % target.poll()
    assert_running_freely(target.pid)


def test_target_exits_before_duration(crux, interp):
    target, truth_path, _ = crux.start_target(interp, "workload.py", "--duration", "1")
    # reap it the moment it exits, as its real parent (a shell, a supervisor) would
    threading.Thread(target=target.wait, daemon=True).start()
    out = crux.tmp / "out.txt"
    result = crux.run("record", "--pid", target.pid, "--rate", RATE, "--duration", "5",
                      "-o", out)
    assert result.returncode == 0, result.describe()
    assert load_truth(truth_path)["phase"] == "done", "target did not finish normally"
    stacks = parse_collapsed(out)
    names = set(n for s in stacks for n in names_of(s))
    assert "workload_cpu" in names, "nothing collected before exit; names: %s" % sorted(names)


def test_top_plain_text_when_piped(crux, interp):
    target, _, _ = crux.start_target(interp, "workload.py", "--duration", "60")
    result = crux.run("top", "--pid", target.pid, "--duration", "1")
    assert result.returncode == 0, result.describe()
    assert "\x1b" not in result.stdout, "escape codes on a non-tty stdout: %r" % result.stdout[:300]
    assert "workload_cpu" in result.stdout, result.describe()
    assert target.poll() is None, "target died (status %s)" % target.poll()
    assert_running_freely(target.pid)
