"""Fixtures for crux's integration tests: the crux binary, every installed CPython, a runner.

Environment:
  CRUX          path of the crux binary (default: build/crux in the repository);
                when set explicitly, a missing binary fails the run instead of skipping.
  CRUX_PYTHONS  comma-separated interpreter ids to run (e.g. "py3.12,debian3.11");
                default: all of them.
  CRUX_TIMEOUT  seconds one crux command may take (default 120; ASan and valgrind are slow).
"""
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from crux_helpers import cmdline, parse_summary, sanitizer_report

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
TARGETS = HERE / "targets"
PYENV_ROOT = Path(os.environ.get("PYENV_ROOT", "/root/.pyenv"))

# (id, pyenv version or absolute path, expected (major, minor))
SUPPORTED = [
    ("py3.8", "3.8.18", (3, 8)),
    ("py3.9", "3.9.18", (3, 9)),
    ("py3.10", "3.10.13", (3, 10)),
    ("py3.11", "3.11.7", (3, 11)),
    ("py3.12", "3.12.1", (3, 12)),
    ("py3.13", "3.13.0", (3, 13)),
    ("debian3.11", "/usr/bin/python3", (3, 11)),
]
UNSUPPORTED = [
    ("py2.7", "2.7.18", (2, 7)),
    ("py3.6", "3.6.15", (3, 6)),
    ("py3.7", "3.7.16", (3, 7)),
]
CRUX_TIMEOUT = float(os.environ.get("CRUX_TIMEOUT", "120"))


class Interp(object):
    """One Python interpreter: id (py3.12), path, version tuple, version string."""

    def __init__(self, ident, path, version):
        self.id = ident
        self.path = str(path)
        self.version = version
        self.version_str = ".".join(str(v) for v in version)

    def __repr__(self):
        return "Interp(%s, %s, %s)" % (self.id, self.path, self.version_str)


def find_python(spec):
    """The interpreter binary for a pyenv version or an absolute path; None if absent."""
    if spec.startswith("/"):
        return spec if os.access(spec, os.X_OK) else None
    for name in ("python3", "python"):
        candidate = PYENV_ROOT / "versions" / spec / "bin" / name
        if os.access(str(candidate), os.X_OK):
            return str(candidate)
    pyenv = shutil.which("pyenv") or str(PYENV_ROOT / "bin" / "pyenv")
    try:
        prefix = subprocess.run([pyenv, "prefix", spec], capture_output=True, text=True,
                                timeout=20).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return None
    for name in ("python3", "python"):
        candidate = Path(prefix) / "bin" / name if prefix else None
        if candidate and os.access(str(candidate), os.X_OK):
            return str(candidate)
    return None


_interp_cache = {}


def resolve_interp(ident, spec):
    """An Interp for (ident, spec), or a skip reason string."""
    if ident in _interp_cache:
        return _interp_cache[ident]
    path = find_python(spec)
    if path is None:
        result = "interpreter %s (%s) is not installed" % (ident, spec)
    else:
        try:
            out = subprocess.run(
                [path, "-c", "import sys; print('%d %d %d' % tuple(sys.version_info[:3]))"],
                capture_output=True, text=True, timeout=30).stdout.split()
            result = Interp(ident, path, tuple(int(x) for x in out))
        except (OSError, subprocess.SubprocessError, ValueError):
            result = "interpreter %s at %s does not run" % (ident, path)
    _interp_cache[ident] = result
    return result


def selected(entries):
    wanted = os.environ.get("CRUX_PYTHONS", "").strip()
    if not wanted:
        return entries
    ids = set(x.strip() for x in wanted.split(",") if x.strip())
    return [e for e in entries if e[0] in ids]


@pytest.fixture(params=selected(SUPPORTED), ids=lambda e: e[0])
def interp(request):
    """Every supported interpreter in turn (skipped with a reason when not installed)."""
    ident, spec, _ = request.param
    got = resolve_interp(ident, spec)
    if isinstance(got, str):
        pytest.skip(got)
    return got


@pytest.fixture(params=UNSUPPORTED, ids=lambda e: e[0])
def old_interp(request):
    """Each installed interpreter crux does not support (2.7, 3.6, 3.7)."""
    ident, spec, _ = request.param
    got = resolve_interp(ident, spec)
    if isinstance(got, str):
        pytest.skip(got)
    return got


@pytest.fixture
def one_interp():
    """One installed supported interpreter, Debian's first (for tests that need just one)."""
    for ident, spec, _ in reversed(selected(SUPPORTED) or SUPPORTED):
        got = resolve_interp(ident, spec)
        if not isinstance(got, str):
            return got
    pytest.skip("no supported Python interpreter is installed")


@pytest.fixture(scope="session")
def crux_bin():
    """Absolute path of the crux binary under test."""
    explicit = os.environ.get("CRUX")
    path = Path(explicit) if explicit else REPO / "build" / "crux"
    if not path.is_absolute():
        path = (REPO / path).resolve()
    if not os.access(str(path), os.X_OK):
        message = "crux binary %s not found: run `make build/crux` or set CRUX" % path
        if explicit:
            pytest.fail(message)
        pytest.skip(message)
    return str(path)


def target_env():
    """Environment for crux and targets: no stray Python settings, no bytecode files."""
    env = dict(os.environ)
    for var in ("PYTHONPATH", "PYTHONHOME", "PYTHONSTARTUP", "PYTHONEXECUTABLE"):
        env.pop(var, None)
    env["PYTHONDONTWRITEBYTECODE"] = "1"
    return env


class Result(object):
    """What one finished crux command did."""

    def __init__(self, args, returncode, stdout, stderr):
        self.args = args
        self.returncode = returncode
        self.stdout = stdout
        self.stderr = stderr

    def summary(self):
        """(samples, errors) from the closing summary line."""
        return parse_summary(self.stderr)

    def describe(self):
        return "command: %s\nexit status: %s\nstderr (tail):\n%s\nstdout (head):\n%s" % (
            " ".join(self.args), self.returncode, self.stderr[-3000:], self.stdout[:1500])


class CruxProc(object):
    """A crux command running in the background (for signal tests)."""

    def __init__(self, runner, args, popen, out_path, err_path):
        self.runner = runner
        self.args = args
        self.popen = popen
        self.out_path = out_path
        self.err_path = err_path

    @property
    def pid(self):
        return self.popen.pid

    def finish(self, timeout=None):
        """Waits for crux to exit and returns its Result; kills it and fails on timeout."""
        timeout = CRUX_TIMEOUT if timeout is None else timeout
        try:
            self.popen.wait(timeout)
        except subprocess.TimeoutExpired:
            self.runner.kill_group(self.popen)
            result = self.runner.collect(self.args, None, self.out_path, self.err_path)
            pytest.fail("crux did not exit within %.0f s\n%s" % (timeout, result.describe()))
        result = self.runner.collect(self.args, self.popen.returncode, self.out_path,
                                     self.err_path)
        self.runner.check_sanitizers(result)
        return result


class Runner(object):
    """Runs crux and targets for one test; kills whatever is left in teardown."""

    def __init__(self, crux_bin, tmp_path):
        self.bin = crux_bin
        self.tmp = tmp_path
        self.popens = []
        self.seq = 0

    # -- crux ----------------------------------------------------------------------------

    def _files(self, stem):
        self.seq += 1
        return (self.tmp / ("%s-%d.stdout" % (stem, self.seq)),
                self.tmp / ("%s-%d.stderr" % (stem, self.seq)))

    def start(self, *args, prefix=(), env=None, cwd=None):
        """Starts `crux ARGS` in its own session; stdout and stderr go to files.

        Files, not pipes: a command crux launches inherits them, and a pipe
        would keep a reader waiting for as long as that command lives.
        """
        argv = list(prefix) + [self.bin] + [str(a) for a in args]
        out_path, err_path = self._files("crux")
        with open(str(out_path), "wb") as out, open(str(err_path), "wb") as err:
            popen = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=out, stderr=err,
                                     env=env or target_env(), cwd=str(cwd or self.tmp),
                                     start_new_session=True)
        self.popens.append(popen)
        return CruxProc(self, argv, popen, out_path, err_path)

    def run(self, *args, timeout=None, prefix=(), env=None, cwd=None):
        """Runs `crux ARGS` to the end and returns its Result (fails on timeout)."""
        return self.start(*args, prefix=prefix, env=env, cwd=cwd).finish(timeout)

    @staticmethod
    def collect(args, returncode, out_path, err_path):
        def read(p):
            with open(str(p), "rb") as f:
                return f.read().decode("utf-8", "replace")
        return Result(args, returncode, read(out_path), read(err_path))

    @staticmethod
    def check_sanitizers(result):
        marker = sanitizer_report(result.stderr)
        assert marker is None, "sanitizer report (%s) from crux\n%s" % (marker, result.describe())

    def record(self, interp, script, *target_args, options=(), out="out.txt", timeout=None):
        """`crux record OPTIONS -o OUT -- PYTHON targets/SCRIPT --truth T TARGET_ARGS`.

        Returns (Result, output path, truth path).
        """
        argv, truth = self.target_argv(interp, script, *target_args)
        out_path = self.tmp / out
        result = self.run("record", *options, "-o", out_path, "--", *argv, timeout=timeout)
        return result, out_path, truth

    # -- targets -------------------------------------------------------------------------

    def target_argv(self, interp, script, *args):
        """argv to run targets/SCRIPT under interp with a fresh truth path; (argv, truth)."""
        self.seq += 1
        truth = self.tmp / ("truth-%d.json" % self.seq)
        argv = [interp.path, str(TARGETS / script), "--truth", str(truth)]
        return argv + [str(a) for a in args], truth

    def spawn(self, argv, log_name="target"):
        """Starts any command in its own session, output to a log file; tracked for teardown."""
        log = self.tmp / ("%s-%d.log" % (log_name, self.seq))
        with open(str(log), "wb") as f:
            popen = subprocess.Popen([str(a) for a in argv], stdin=subprocess.DEVNULL,
                                     stdout=f, stderr=subprocess.STDOUT, env=target_env(),
                                     cwd=str(self.tmp), start_new_session=True)
        popen.log_path = log
        self.popens.append(popen)
        return popen

    def start_target(self, interp, script, *args, wait=True):
        """Starts a target directly (for attach tests); waits for its truth file by default.

        Returns (Popen, truth path, truth dict or None).
        """
        argv, truth = self.target_argv(interp, script, *args)
        popen = self.spawn(argv)
        data = self.wait_truth(truth, popen) if wait else None
        return popen, truth, data

    def wait_truth(self, truth, popen=None, timeout=30.0, phase=None):
        """Waits until the truth file exists (and has `phase`, if given) and returns it."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if truth.exists():
                with open(str(truth), encoding="utf-8") as f:
                    data = json.load(f)
                if phase is None or data.get("phase") == phase:
                    return data
            if popen is not None and popen.poll() is not None:
                break
            time.sleep(0.02)
        log = ""
        if popen is not None and getattr(popen, "log_path", None):
            log = popen.log_path.read_text(errors="replace")[-2000:]
        pytest.fail("target never wrote %s (exit status %s)\n%s"
                    % (truth, popen.poll() if popen else "?", log))

    # -- teardown ------------------------------------------------------------------------

    @staticmethod
    def kill_group(popen):
        try:
            os.killpg(popen.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
        try:
            popen.kill()
        except (ProcessLookupError, OSError):
            pass
        try:
            popen.wait(10)
        except subprocess.TimeoutExpired:
            pass

    def cleanup(self):
        """Kills every process this test started, and any process whose argv names tmp_path."""
        for popen in self.popens:
            if popen.poll() is None:
                self.kill_group(popen)
        marker = str(self.tmp)
        for _ in range(3):
            strays = []
            for entry in os.listdir("/proc"):
                if entry.isdigit() and int(entry) != os.getpid() and marker in cmdline(int(entry)):
                    strays.append(int(entry))
            if not strays:
                break
            for pid in strays:
                try:
                    os.kill(pid, signal.SIGKILL)
                except (ProcessLookupError, PermissionError):
                    pass
            time.sleep(0.1)


@pytest.fixture
def crux(crux_bin, tmp_path):
    """A Runner for this test; everything it started is killed afterwards."""
    runner = Runner(crux_bin, tmp_path)
    try:
        yield runner
    finally:
        runner.cleanup()


@pytest.fixture
def procs(tmp_path):
    """A Runner without crux, for starting helper processes that must die in teardown."""
    runner = Runner(None, tmp_path)
    try:
        yield runner
    finally:
        runner.cleanup()


def pytest_report_header(config):
    lines = ["crux: %s" % (os.environ.get("CRUX") or (REPO / "build" / "crux"))]
    for ident, spec, _ in selected(SUPPORTED):
        got = resolve_interp(ident, spec)
        lines.append("  %s: %s" % (ident, got if isinstance(got, str) else got.path))
    lines.append("runner python: %s" % sys.version.split()[0])
    return lines
