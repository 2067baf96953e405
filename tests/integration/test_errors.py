"""Errors: one `crux: ...` line on stderr naming the cause, and a non-zero exit status.

No such process, not a Python process, an unsupported Python version (2.7, 3.6,
3.7), permission denied (crux as user nobody against a root-owned Python), and
bad command lines (with a usage hint).
"""
import os
import shutil
import tempfile
import time

import pytest

MISSING_PID = 999999  # above this machine's pid_max (32768), so never a live process
NOBODY = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups"]


def assert_error_line(result, *needles):
    assert result.returncode is not None and result.returncode > 0, \
        "expected a failure exit status (not a signal)\n" + result.describe()
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("crux: "), \
        "expected one `crux: ` line on stderr\n" + result.describe()
    for needle in needles:
        assert needle.lower() in lines[0].lower(), \
            "error line lacks %r\n%s" % (needle, result.describe())


def commands(pid, tmp):
    return [["dump", "--pid", pid],
            ["record", "--pid", pid, "--duration", "1", "-o", tmp / "out.txt"]]


@pytest.mark.parametrize("which", [0, 1], ids=["dump", "record"])
def test_no_such_process(crux, which):
    assert not os.path.exists("/proc/%d" % MISSING_PID)
    result = crux.run(*commands(MISSING_PID, crux.tmp)[which])
    assert_error_line(result, "no such process")


@pytest.mark.parametrize("which", [0, 1], ids=["dump", "record"])
def test_not_a_python_process(crux, which):
    sleeper = crux.spawn(["sleep", "30"], log_name="sleep")
    result = crux.run(*commands(sleeper.pid, crux.tmp)[which])
    assert_error_line(result, "not a Python process")
    assert sleeper.poll() is None, "sleep died"


@pytest.mark.parametrize("which", [0, 1], ids=["dump", "record"])
def test_unsupported_python_version(crux, old_interp, which):
    ready = crux.tmp / "ready"
    code = "import time; open(%r, 'w').close(); time.sleep(60)" % str(ready)
    target = crux.spawn([old_interp.path, "-c", code], log_name="old-python")
    wait_file(ready, target)
    result = crux.run(*commands(target.pid, crux.tmp)[which])
    major_minor = "%d.%d" % old_interp.version[:2]
    assert_error_line(result, major_minor)
    assert target.poll() is None, "target died"


def wait_file(path, popen, timeout=30.0):
    deadline = time.monotonic() + timeout
    while not path.exists():
        assert popen.poll() is None, "process exited with %s" % popen.poll()
        assert time.monotonic() < deadline, "%s never appeared" % path
        time.sleep(0.02)


@pytest.fixture
def world_crux(crux_bin):
    """A copy of the crux binary in a directory user nobody can reach, plus a writable dir."""
    if os.geteuid() != 0:
        pytest.skip("the permission test needs root to switch to user nobody")
    if shutil.which("setpriv") is None:
        pytest.skip("setpriv (util-linux) is not installed")
    top = tempfile.mkdtemp(prefix="crux-nobody-")
    try:
        os.chmod(top, 0o755)
        binary = os.path.join(top, "crux")
        shutil.copy2(crux_bin, binary)
        os.chmod(binary, 0o755)
        out_dir = os.path.join(top, "out")
        os.mkdir(out_dir)
        os.chmod(out_dir, 0o777)
        yield binary, out_dir
    finally:
        shutil.rmtree(top, ignore_errors=True)


@pytest.mark.parametrize("which", [0, 1], ids=["dump", "record"])
def test_permission_denied(crux, interp, world_crux, which):
    binary, out_dir = world_crux
    target, _, _ = crux.start_target(interp, "workload.py", "--duration", "60")
    assert os.stat("/proc/%d" % target.pid).st_uid == 0
    args = [["dump", "--pid", target.pid],
            ["record", "--pid", target.pid, "--duration", "1", "-o",
             os.path.join(out_dir, "out.txt")]][which]
    saved, crux.bin = crux.bin, binary
    try:
        result = crux.run(*args, prefix=NOBODY, cwd=out_dir)
    finally:
        crux.bin = saved
    assert_error_line(result, "permission")
    assert target.poll() is None, "target died"


def test_bad_option_prints_usage(crux):
    result = crux.run("record", "--no-such-option", "-o", crux.tmp / "out.txt", "--", "true")
    assert result.returncode is not None and result.returncode > 0, result.describe()
    assert "crux" in result.stderr, result.describe()
    text = result.stderr.lower()
    assert "usage" in text or "--help" in text, "no usage hint\n" + result.describe()


@pytest.mark.parametrize("args", [
    ["record", "--rate", "fast", "--duration", "1", "-o", "out.txt", "--pid", "1"],
    ["record", "--duration", "1", "-o", "out.txt"],
    ["record", "--max-depth", "-5", "-o", "out.txt", "--", "true"],
    ["frobnicate"],
    [],
], ids=["bad-rate", "no-target", "bad-max-depth", "unknown-command", "no-command"])
def test_bad_command_line_fails(crux, args):
    result = crux.run(*args)
    assert result.returncode is not None and result.returncode > 0, result.describe()
    assert "crux" in result.stderr, "no message on stderr\n" + result.describe()
