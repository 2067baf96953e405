"""--duration with a launched command: crux writes the output, then ends the command.

The command and its descendants get SIGINT, then SIGTERM after a grace period,
then SIGKILL after another (1 s each); crux reaps the command and exits 0.
--keep-running leaves the command running instead; a command that exits by
itself before the duration still gives crux its exit status. Wall-clock
bounds below only catch a hang: they are generous on purpose.
"""
import os
import re
import signal
import time

from crux_helpers import names_of, parse_collapsed, process_state

GRACE = 1.0  # SESSION_GRACE_MS
SLACK = 10.0  # ASan, a shared machine: only a hang may fail the bound


def start_sleeper(crux, interp, *target_args, command=("record",), options=()):
    """Starts `crux COMMAND OPTIONS -- sleeper.py ...`; returns (CruxProc, truth, out path)."""
    argv, truth_path = crux.target_argv(interp, "sleeper.py", *target_args)
    out = crux.tmp / "out.txt"
    args = list(command) + list(options)
    if command == ("record",):
        args += ["--idle", "-o", out]
    proc = crux.start(*(args + ["--"] + argv))
    return proc, truth_path, out


def run_sleeper(crux, interp, *target_args, duration=1.0, **kw):
    """Runs the sleeper under crux with --duration; returns (Result, truth, out, seconds)."""
    options = list(kw.pop("options", ())) + ["--duration", str(duration)]
    t0 = time.monotonic()
    proc, truth_path, out = start_sleeper(crux, interp, *target_args, options=options, **kw)
    truth = crux.wait_truth(truth_path, proc.popen)
    result = proc.finish()
    return result, truth, out, time.monotonic() - t0


def assert_gone(pid, result):
    """pid no longer exists, not even as a zombie: crux reaped the command, and reaped the
    descendants that outlived it (it is their subreaper while it ends them)."""
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        if process_state(pid) is None:
            return
        time.sleep(0.05)
    raise AssertionError("process %d still exists (state %s)\n%s"
                         % (pid, process_state(pid), result.describe()))


def ended_line(result):
    lines = [l for l in result.stderr.splitlines() if "ended process" in l]
    assert len(lines) == 1, result.describe()
    return lines[0]


def test_duration_ends_command_with_sigint(crux, interp):
    """SIGINT first: KeyboardInterrupt runs the program's finally block; the profile holds the
    sleeper's own function and crux exits 0, not 130."""
    marker = crux.tmp / "finally.txt"
    result, truth, out, secs = run_sleeper(crux, interp, "--marker", marker, duration=2)
    assert result.returncode == 0, result.describe()
    assert secs < 2 + GRACE + SLACK, "crux took %.1f s\n%s" % (secs, result.describe())
    names = set(n for s in parse_collapsed(out) for n in names_of(s))
    assert "sleep_long" in names, "profile lacks sleep_long: %s\n%s" % (sorted(names),
                                                                       result.describe())
    assert marker.exists(), "the finally block did not run\n" + result.describe()
    assert ended_line(result).endswith("with SIGINT"), result.describe()
    # the output is written before the command is ended
    assert result.stderr.index("crux: wrote") < result.stderr.index("ended process")
    assert_gone(truth["pid"], result)


def test_command_ignoring_sigint_gets_sigterm(crux, one_interp):
    marker = crux.tmp / "finally.txt"
    result, truth, out, secs = run_sleeper(crux, one_interp, "--ignore", "INT", "--marker",
                                           marker)
    assert result.returncode == 0, result.describe()
    assert secs < 1 + 2 * GRACE + SLACK, "crux took %.1f s\n%s" % (secs, result.describe())
    assert ended_line(result).endswith("with SIGINT, then SIGTERM 1 s later"), result.describe()
    assert not marker.exists(), "SIGTERM's default action runs no finally block"
    assert parse_collapsed(out), "empty profile\n" + result.describe()
    assert_gone(truth["pid"], result)


def test_command_ignoring_sigint_and_sigterm_gets_sigkill(crux, one_interp):
    result, truth, out, secs = run_sleeper(crux, one_interp, "--ignore", "INT", "--ignore",
                                           "TERM")
    assert result.returncode == 0, result.describe()
    assert secs < 1 + 3 * GRACE + SLACK, "crux took %.1f s\n%s" % (secs, result.describe())
    assert "then SIGKILL" in ended_line(result), result.describe()
    assert parse_collapsed(out), "empty profile\n" + result.describe()
    assert_gone(truth["pid"], result)


def test_descendants_are_ended_too(crux, one_interp):
    """A multiprocessing pool (workers ignore SIGINT, the usual idiom) and children that
    ignore SIGINT and SIGTERM: the whole tree is gone when crux returns, even the children
    whose parent died at the first signal, and none is left a zombie."""
    result, truth, out, secs = run_sleeper(crux, one_interp, "--pool", "2", "--stubborn", "2")
    assert result.returncode == 0, result.describe()
    assert secs < 1 + 3 * GRACE + SLACK, "crux took %.1f s\n%s" % (secs, result.describe())
    assert len(truth["children"]) == 4, truth
    line = ended_line(result)
    found = re.search(r"and (\d+) descendants", line)
    assert found and int(found.group(1)) >= 4, result.describe()
    assert "then SIGKILL" in line, result.describe()
    assert_gone(truth["pid"], result)
    for pid in truth["children"]:
        assert_gone(pid, result)


def test_keep_running_leaves_command_running(crux, one_interp):
    result, truth, out, secs = run_sleeper(crux, one_interp, options=["--keep-running"])
    pid = truth["pid"]
    try:
        assert result.returncode == 0, result.describe()
        assert "left process %d running" % pid in result.stderr, result.describe()
        assert parse_collapsed(out), "empty profile\n" + result.describe()
        assert process_state(pid) not in (None, "Z", "T", "t"), process_state(pid)
    finally:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass


def test_command_exiting_before_duration_keeps_its_status(crux, interp):
    result, truth, out, secs = run_sleeper(crux, interp, "--duration", "0.5", "--exit", "3",
                                           duration=30)
    assert result.returncode == 3, result.describe()
    assert secs < 30, "crux waited for the duration\n" + result.describe()
    assert "ended process" not in result.stderr, result.describe()
    assert "sleep_long" in set(n for s in parse_collapsed(out) for n in names_of(s))


def test_top_duration_ends_command(crux, one_interp):
    result, truth, out, secs = run_sleeper(crux, one_interp, command=("top",))
    assert result.returncode == 0, result.describe()
    assert secs < 1 + GRACE + SLACK, "crux took %.1f s\n%s" % (secs, result.describe())
    assert ended_line(result).endswith("with SIGINT"), result.describe()
    assert "crux top: pid %d" % truth["pid"] in result.stdout, result.describe()
    assert_gone(truth["pid"], result)


def test_stages_duration_ends_command(crux, one_interp):
    result, truth, out, secs = run_sleeper(crux, one_interp, command=("stages",))
    assert result.returncode == 0, result.describe()
    assert secs < 1 + GRACE + SLACK, "crux took %.1f s\n%s" % (secs, result.describe())
    assert ended_line(result).endswith("with SIGINT"), result.describe()
    assert_gone(truth["pid"], result)
