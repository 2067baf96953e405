"""crux dump --native: native frames merged with Python frames, target never left stopped.

targets/native_zlib.py spends its time in zlib.compress (deflate in libz) under
compress_loop, or with --callback in libc's qsort calling back into Python
(py_compare); targets/native_numpy.py multiplies matrices with numpy (BLAS).
Each test reads `crux dump --native --json` (frames leaf first) and checks the
native frames sit leafward of the Python frame that called them, with every
Python frame present and in order.
"""
import json
import os
import shutil
import signal
import subprocess
import time

import pytest

from crux_helpers import assert_running_freely, thread_states

TARGETS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "targets")
DUMP_TRIES = 15


def marker_line(script, marker):
    """The line number of the line holding `# MARKER` in targets/SCRIPT."""
    with open(os.path.join(TARGETS, script), encoding="utf-8") as f:
        for number, line in enumerate(f, 1):
            if line.rstrip().endswith("# " + marker):
                return number
    raise AssertionError("%s has no # %s line" % (script, marker))


def dump_native(crux, pid):
    """One `crux dump --native --json` of pid: (Result, {tid: frames leaf first})."""
    result = crux.run("dump", "--pid", pid, "--native", "--json")
    assert result.returncode == 0, result.describe()
    data = json.loads(result.stdout)
    return result, dict((t["tid"], t) for t in data["threads"])


def root_first(thread):
    return list(reversed(thread["frames"]))


def python_names(frames):
    return [f["name"] for f in frames if f.get("kind") == "python"]


def wait_for_stack(crux, pid, tid, accept):
    """Dumps until accept(frames root first) holds for thread tid; returns the last frames."""
    frames = []
    for _ in range(DUMP_TRIES):
        _, threads = dump_native(crux, pid)
        assert tid in threads, "thread %d not in the dump: %s" % (tid, sorted(threads))
        assert threads[tid]["native"], "no native frames: %s" % threads[tid]
        frames = root_first(threads[tid])
        if accept(frames):
            return frames
        time.sleep(0.05)
    return frames


def assert_not_traced(pid):
    """No thread of pid is stopped or traced (every thread's TracerPid is 0)."""
    for tid, state in thread_states(pid).items():
        assert state not in ("t", "T"), "thread %d left in state %s" % (tid, state)
        with open("/proc/%d/task/%d/status" % (pid, tid)) as f:
            tracer = [int(l.split()[1]) for l in f if l.startswith("TracerPid:")]
        assert tracer == [0], "thread %d still traced by %s" % (tid, tracer)


def index_of(frames, pred):
    for i, f in enumerate(frames):
        if pred(f):
            return i
    return -1


def test_native_library_under_python_frame(crux, interp):
    target, _, truth = crux.start_target(interp, "native_zlib.py")
    line = marker_line("native_zlib.py", "LINE_COMPRESS")

    def in_libz(f):
        return f.get("kind") == "native" and f["module"].startswith("libz.so")

    frames = wait_for_stack(crux, target.pid, truth["tid"],
                            lambda fr: index_of(fr, in_libz) >= 0)
    names = python_names(frames)
    assert names == ["<module>", "main", "outer_native", "compress_loop"], frames
    # Start-up code (_start, __libc_start_main, Py_RunMain) folds away: the root is Python.
    assert frames[0]["kind"] == "python", frames[:3]
    loop = index_of(frames, lambda f: f["name"] == "compress_loop")
    assert frames[loop]["line"] == line, frames[loop]
    first_z = index_of(frames, in_libz)
    assert first_z > loop, "libz frames not leafward of compress_loop: %s" % frames
    assert any(in_libz(f) and "deflate" in f["name"] for f in frames), frames
    # Only native frames leafward of the leaf Python frame, no interpreter frames.
    assert all(f["kind"] == "native" for f in frames[loop + 1:]), frames
    assert not any("_PyEval_EvalFrame" in f.get("name", "") for f in frames), frames
    assert target.poll() is None
    assert_not_traced(target.pid)
    assert_running_freely(target.pid)


def test_native_deep_stack(crux, interp):
    """400 Python frames above the native call: every one kept, in order, libz at the leaf."""
    depth = 400
    target, _, truth = crux.start_target(interp, "native_zlib.py", "--depth", depth)

    def in_libz(f):
        return f.get("kind") == "native" and f["module"].startswith("libz.so")

    frames = wait_for_stack(crux, target.pid, truth["tid"],
                            lambda fr: index_of(fr, in_libz) >= 0)
    names = python_names(frames)
    assert names == ["<module>", "main", "outer_native"] + ["nest"] * depth + [
        "compress_loop"], names[:8] + ["..."] + names[-4:]
    assert index_of(frames, in_libz) > index_of(frames, lambda f: f["name"] == "compress_loop")
    assert_not_traced(target.pid)


def test_native_other_mount_namespace(crux, one_interp):
    """A target in its own mount namespace (a container) loads a libz that exists only there:
    crux must open it through /proc/PID/root to unwind and name it."""
    if not shutil.which("unshare"):
        pytest.skip("unshare (util-linux) is not installed")
    private = crux.tmp / "nsonly"
    private.mkdir()
    libz = os.path.realpath(ctypes_util_find("z"))
    argv, truth_path = crux.target_argv(one_interp, "native_zlib.py")
    script = ("mount -t tmpfs none {d} && cp {z} {d}/libz.so.1 && "
              "LD_LIBRARY_PATH={d} exec \"$@\"").format(d=private, z=libz)
    crux.spawn(["unshare", "--mount", "--propagation", "private", "--fork", "sh", "-c",
                script, "sh"] + argv, "nstarget")
    truth = crux.wait_truth(truth_path)
    pid = truth["pid"]
    assert os.listdir(str(private)) == [], "the tmpfs leaked out of the namespace"

    def in_private_libz(f):
        return (f.get("kind") == "native" and f["module"] == "libz.so.1"
                and "deflate" in f["name"])

    frames = wait_for_stack(crux, pid, truth["tid"], lambda fr: index_of(fr, in_private_libz) >= 0)
    assert index_of(frames, in_private_libz) > index_of(
        frames, lambda f: f["name"] == "compress_loop"), frames
    assert python_names(frames)[-1] == "compress_loop", frames
    assert_not_traced(pid)


def ctypes_util_find(name):
    """Path of a system library (libz) as the dynamic linker would find it."""
    import ctypes.util
    found = ctypes.util.find_library(name)
    for d in ("/usr/lib/x86_64-linux-gnu", "/lib/x86_64-linux-gnu", "/usr/lib", "/lib"):
        if found and os.path.exists(os.path.join(d, found)):
            return os.path.join(d, found)
    pytest.skip("lib%s not found" % name)


def test_native_python_called_from_native(crux, interp):
    """Python -> ctypes -> qsort (libc) -> Python callback: one merged stack, in order."""
    target, _, truth = crux.start_target(interp, "native_zlib.py", "--callback")
    line = marker_line("native_zlib.py", "LINE_QSORT")

    def complete(fr):
        return "py_compare" in python_names(fr) and any(
            f.get("kind") == "native" and "qsort" in f["name"] for f in fr)

    frames = wait_for_stack(crux, target.pid, truth["tid"], complete)
    names = python_names(frames)
    assert names == ["<module>", "main", "sort_outer", "sort_loop", "py_compare"], frames
    loop = index_of(frames, lambda f: f["name"] == "sort_loop")
    assert frames[loop]["line"] == line, frames[loop]
    qsort = index_of(frames, lambda f: f.get("kind") == "native" and "qsort" in f["name"])
    cmp = index_of(frames, lambda f: f["name"] == "py_compare")
    assert loop < qsort < cmp, "qsort not between sort_loop and py_compare: %s" % frames
    assert frames[qsort]["module"].startswith("libc.so"), frames[qsort]
    assert_not_traced(target.pid)
    assert_running_freely(target.pid)


def test_native_blas_under_matmul(crux, interp):
    has_numpy = subprocess.run([interp.path, "-c", "import numpy"],
                               capture_output=True).returncode == 0
    if not has_numpy:
        pytest.skip("numpy is not installed for %s (Debian's python3 has python3-numpy)"
                    % interp.id)
    target, _, truth = crux.start_target(interp, "native_numpy.py")
    line = marker_line("native_numpy.py", "LINE_MATMUL")

    def blas(f):
        return f.get("kind") == "native" and ("gemm" in f["name"] or "dot" in f["name"])

    frames = wait_for_stack(crux, target.pid, truth["tid"], lambda fr: index_of(fr, blas) >= 0)
    assert python_names(frames) == ["<module>", "main", "matmul_outer", "matmul_loop"], frames
    loop = index_of(frames, lambda f: f["name"] == "matmul_loop")
    assert frames[loop]["line"] == line, frames[loop]
    assert index_of(frames, blas) > loop, "no BLAS frame under matmul_loop: %s" % frames
    assert_not_traced(target.pid)


def test_native_text_output(crux, one_interp):
    """The text dump interleaves `symbol (library)` lines with the Python lines."""
    target, _, truth = crux.start_target(one_interp, "native_zlib.py")
    for _ in range(DUMP_TRIES):
        result = crux.run("dump", "--pid", target.pid, "--native")
        assert result.returncode == 0, result.describe()
        lines = [l.strip() for l in result.stdout.splitlines()]
        if any("(libz.so" in l for l in lines):
            break
    z = [i for i, l in enumerate(lines) if "(libz.so" in l]
    loop = [i for i, l in enumerate(lines) if l.startswith("compress_loop (")]
    assert z and loop and max(z) < loop[0], result.stdout
    assert_not_traced(target.pid)


def test_native_many_threads_left_running(crux, one_interp):
    """Eight threads, each stopped alone in turn; none left stopped or traced."""
    target, _, truth = crux.start_target(one_interp, "threads.py", "--duration", "60")
    for _ in range(3):
        _, threads = dump_native(crux, target.pid)
        assert len(threads) >= 9, sorted(threads)
        for worker, tid in truth["workers"].items():
            frames = root_first(threads[tid])
            assert worker in python_names(frames), frames
            # Thread start-up (clone3, start_thread, the interpreter's) folds away too.
            assert frames[0]["kind"] == "python", frames[:3]
    assert_not_traced(target.pid)
    assert_running_freely(target.pid)


def test_native_crux_killed_leaves_target_running(crux, one_interp):
    """SIGKILL in the middle of a long native run: the kernel detaches, the target runs on."""
    target, _, _ = crux.start_target(one_interp, "threads.py", "--duration", "60")
    proc = crux.start("dump", "--pid", target.pid, "--native", "--repeat", "1000000")
    time.sleep(1.0)
    assert proc.popen.poll() is None, "crux ended early"
    os.kill(proc.pid, signal.SIGKILL)
    proc.popen.wait(10)
    time.sleep(0.2)
    assert_not_traced(target.pid)
    assert_running_freely(target.pid)


def test_native_signals_delivered(crux, one_interp):
    """Signals that arrive while crux keeps stopping the thread are all delivered."""
    target, truth_path, truth = crux.start_target(one_interp, "native_signals.py")
    proc = crux.start("dump", "--pid", target.pid, "--native", "--repeat", "1000000")
    deadline = time.monotonic() + 30
    while tracer_of(target.pid, truth["tid"]) != proc.pid:  # crux is taking samples
        assert time.monotonic() < deadline and proc.popen.poll() is None, "crux never stopped it"
        time.sleep(0.0005)
    sent = 200
    for k in range(1, sent + 1):
        os.kill(target.pid, truth["signal"])
        deadline = time.monotonic() + 5
        got = None
        while time.monotonic() < deadline:
            got = crux.wait_truth(truth_path, target)["count"]
            if got >= k:
                break
            time.sleep(0.001)
        assert got == k, "signal %d of %d never arrived (count %s)" % (k, sent, got)
    assert proc.popen.poll() is None, "crux ended early"
    os.kill(proc.pid, signal.SIGTERM)
    result = proc.finish()
    assert result.returncode == 0, result.describe()
    assert_not_traced(target.pid)


def test_native_ptrace_refused(crux, one_interp, procs):
    """A thread another tracer holds cannot be stopped: one line on stderr, Python stacks kept."""
    target, _, truth = crux.start_target(one_interp, "native_zlib.py")
    holder = procs.spawn([one_interp.path, "-c", SEIZE_HOLDER, str(truth["tid"])], "holder")
    deadline = time.monotonic() + 10
    while tracer_of(target.pid, truth["tid"]) in (0, None) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert tracer_of(target.pid, truth["tid"]) == holder.pid, holder.log_path.read_text()
    result = crux.run("dump", "--pid", target.pid, "--native")
    assert result.returncode == 0, result.describe()
    errors = [l for l in result.stderr.splitlines() if l.startswith("crux:")]
    assert len(errors) == 1 and "ptrace" in errors[0] and "root" in errors[0], result.stderr
    assert "compress_loop (" in result.stdout, result.stdout
    holder.kill()
    holder.wait(10)


SEIZE_HOLDER = """
import ctypes, sys, time
libc = ctypes.CDLL(None, use_errno=True)
libc.ptrace.argtypes = [ctypes.c_long, ctypes.c_long, ctypes.c_void_p, ctypes.c_void_p]
if libc.ptrace(0x4206, int(sys.argv[1]), None, None) != 0:  # PTRACE_SEIZE
    sys.exit("seize failed: errno %d" % ctypes.get_errno())
time.sleep(60)
"""


def tracer_of(pid, tid):
    try:
        with open("/proc/%d/task/%d/status" % (pid, tid)) as f:
            for l in f:
                if l.startswith("TracerPid:"):
                    return int(l.split()[1])
    except OSError:
        return None
    return None
