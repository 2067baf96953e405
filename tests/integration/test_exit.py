"""Launch mode: crux's exit status is the launched command's, and the profile is written."""
import pytest

from crux_helpers import RATE, parse_collapsed

BUSY_THEN = "import os, sys, time\nend = time.time() + 0.7\nwhile time.time() < end: pass\n"


@pytest.mark.parametrize("code", [0, 3])
def test_exit_status_propagates(crux, interp, code):
    out = crux.tmp / "out.txt"
    script = BUSY_THEN + "sys.exit(%d)\n" % code
    result = crux.run("record", "--rate", RATE, "-o", out, "--", interp.path, "-c", script)
    assert result.returncode == code, result.describe()
    assert parse_collapsed(out), "empty profile\n" + result.describe()


def test_command_killed_by_signal(crux, interp):
    out = crux.tmp / "out.txt"
    script = BUSY_THEN + "os.kill(os.getpid(), 9)\n"
    result = crux.run("record", "--rate", RATE, "-o", out, "--", interp.path, "-c", script)
    # like a shell: 128 + signal number, or crux dies of the same signal
    assert result.returncode in (128 + 9, -9), result.describe()
    assert parse_collapsed(out), "empty profile\n" + result.describe()


def test_launched_command_not_found(crux):
    out = crux.tmp / "out.txt"
    result = crux.run("record", "-o", out, "--", str(crux.tmp / "no-such-program"))
    assert result.returncode != 0, result.describe()
    assert result.stderr.startswith("crux: ") or "\ncrux: " in result.stderr, result.describe()
