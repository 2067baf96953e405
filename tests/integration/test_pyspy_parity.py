"""py-spy's command line, verbatim, on a script with ten named threads.

`crux record -o F --format speedscope -d 2 --threads --idle -- python3 script.py` must do
what the same line does with py-spy: sample for two seconds, end the script, and write a
speedscope file with one profile per thread named as py-spy names them
(`Thread TID "NAME"`; `Process PID Thread TID "NAME"` with --subprocesses), where each
thread's profile holds that thread's own function. crux keeps its combined profile first.
Where py-spy is installed, the same line runs under py-spy too and the two files are
compared: same naming form, same threads, same function in each named thread.
"""
import json
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from conftest import TARGETS, target_env

SCRIPT = "pyspy_threads.py"
# thread name -> the function only that thread runs (targets/pyspy_threads.py)
WORKERS = {
    "tokenizer": "tokenize_batches",
    "checksummer": "checksum_shards",
    "image-resizer": "resize_images",
    "log-compressor": "compress_logs",
    "queue-poller": "poll_queue",
    "heartbeat": "send_heartbeat",
    "cache-flusher": "flush_cache",
    "config-watcher": "watch_config",
    "gc-sweeper": "collect_garbage",
    "metrics-exporter": "export_metrics",
}
THREAD_RE = re.compile(r'^Thread (\d+) "(.*)"$')
PROCESS_THREAD_RE = re.compile(r'^Process (\d+) Thread (\d+) "(.*)"$')
SLACK = 30.0  # ASan on a shared machine: the bound only catches a recording that never ends


def copy_script(tmp):
    """The target as the user's `script.py` in the test's folder."""
    shutil.copy(str(TARGETS / SCRIPT), str(tmp / "script.py"))


def load(path):
    with open(str(path), encoding="utf-8") as f:
        return json.load(f)


def functions_by_profile(doc):
    """{profile name: set of frame names in its samples}, in profile order."""
    frames = doc["shared"]["frames"]
    out = {}
    for prof in doc["profiles"]:
        out[prof["name"]] = set(frames[i]["name"] for s in prof["samples"] for i in s)
    return out


def thread_key(name, with_process):
    """(pid or None, tid, thread name) from a py-spy thread profile name, or None."""
    if with_process:
        m = PROCESS_THREAD_RE.match(name)
        return (int(m.group(1)), int(m.group(2)), m.group(3)) if m else None
    m = THREAD_RE.match(name)
    return (None, int(m.group(1)), m.group(2)) if m else None


def crux_record(crux, interp, out, extra=()):
    """The py-spy line under crux, run from the script's folder; (Result, seconds)."""
    copy_script(crux.tmp)
    t0 = time.monotonic()
    result = crux.run("record", "-o", out, "--format", "speedscope", "-d", "2", "--threads",
                      "--idle", *extra, "--", interp.path, "script.py")
    return result, time.monotonic() - t0


def check_crux_profiles(doc, with_process):
    """Asserts crux's speedscope layout; returns {thread name: (pid, tid, functions)}."""
    names = [p["name"] for p in doc["profiles"]]
    assert len(names) == 12, "want the combined profile and 11 threads, got %s" % names
    by_profile = functions_by_profile(doc)
    combined = names[0]
    assert thread_key(combined, with_process) is None and "script.py" in combined, names
    for fn in WORKERS.values():
        assert fn in by_profile[combined], "combined profile lacks %s: %s" % (
            fn, sorted(by_profile[combined]))
    threads = {}
    for name in names[1:]:
        key = thread_key(name, with_process)
        assert key is not None, "profile %r is not named as py-spy names threads" % name
        pid, tid, tname = key
        assert tname not in threads, "thread name %r twice: %s" % (tname, names)
        threads[tname] = (pid, tid, by_profile[name])
    assert set(threads) == set(WORKERS) | {"MainThread"}, names
    for tname, fn in WORKERS.items():
        own = threads[tname][2]
        assert fn in own, "thread %s: profile lacks %s: %s" % (tname, fn, sorted(own))
        others = own & (set(WORKERS.values()) - {fn})
        assert not others, "thread %s: holds other threads' functions %s" % (tname, others)
    main = threads["MainThread"]
    assert "<module>" in main[2] and not main[2] & set(WORKERS.values()), main
    tids = set(t[1] for t in threads.values())
    assert len(tids) == 11, threads
    if with_process:
        assert set(t[0] for t in threads.values()) == {main[1]}, threads
    return threads


def test_pyspy_command_line(crux, interp):
    out = crux.tmp / "profile.json"
    result, seconds = crux_record(crux, interp, out)
    assert result.returncode == 0, result.describe()
    assert "--duration is over" in result.stderr, result.describe()
    over = re.search(r"over ([0-9.]+) s", result.stderr)
    assert over and 1.5 <= float(over.group(1)) <= 2 + SLACK, result.describe()
    assert 1.5 <= seconds <= 2 + SLACK, "-d 2 took %.1f s" % seconds
    check_crux_profiles(load(out), with_process=False)


def test_subprocesses_names_the_process(crux, one_interp):
    """py-spy's `Process PID Thread TID "NAME"` form, which it writes with --subprocesses."""
    out = crux.tmp / "profile.json"
    result, _ = crux_record(crux, one_interp, out, extra=["--subprocesses"])
    assert result.returncode == 0, result.describe()
    check_crux_profiles(load(out), with_process=True)


def find_pyspy():
    for candidate in (os.environ.get("PYSPY"), str(Path(sys.executable).parent / "py-spy"),
                      shutil.which("py-spy")):
        if candidate and os.access(candidate, os.X_OK):
            return candidate
    return None


def pyspy_record(crux, interp, out, extra):
    """The same line under py-spy; skips the test when py-spy is absent or cannot sample."""
    pyspy = find_pyspy()
    if pyspy is None:
        pytest.skip("py-spy is not installed (pip install py-spy)")
    copy_script(crux.tmp)
    argv = [pyspy, "record", "-o", str(out), "--format", "speedscope", "-d", "2", "--threads",
            "--idle"] + list(extra) + ["--", interp.path, "script.py"]
    try:
        done = subprocess.run(argv, cwd=str(crux.tmp), env=target_env(), capture_output=True,
                              text=True, timeout=60, stdin=subprocess.DEVNULL)
    except (OSError, subprocess.SubprocessError) as e:
        pytest.skip("py-spy could not run: %s" % e)
    if done.returncode != 0 or not out.exists():
        pytest.skip("py-spy could not sample (exit %s): %s" % (done.returncode,
                                                              done.stderr[-500:]))
    return load(out)


@pytest.mark.parametrize("extra", [(), ("--subprocesses",)], ids=["plain", "subprocesses"])
def test_names_match_pyspy(crux, one_interp, extra):
    with_process = bool(extra)
    spy = pyspy_record(crux, one_interp, crux.tmp / "pyspy.json", extra)
    result, _ = crux_record(crux, one_interp, crux.tmp / "crux.json", extra)
    assert result.returncode == 0, result.describe()
    ours = check_crux_profiles(load(crux.tmp / "crux.json"), with_process)
    # py-spy has no combined profile: every one of its profiles is a thread, in the same form
    spy_names = [p["name"] for p in spy["profiles"]]
    keys = [thread_key(n, with_process) for n in spy_names]
    assert None not in keys, "py-spy's names %s are not of the form the test expects" % spy_names
    # Under load py-spy files the samples it took before it knew a thread's id under
    # 'Thread 0 ""': a py-spy artifact, not a thread.
    kept = [(n, k) for n, k in zip(spy_names, keys) if k[1] != 0]
    spy_names, keys = [n for n, _ in kept], [k for _, k in kept]
    assert len(keys) == len(ours), "py-spy saw %d threads, crux %d: %s / %s" % (
        len(keys), len(ours), spy_names, sorted(ours))
    spy_by_profile = functions_by_profile(spy)
    ours_fns = set(WORKERS.values())
    for name, (_, _, tname) in zip(spy_names, keys):
        if not tname:
            continue  # py-spy sometimes misses a name it looked up too early
        assert tname in ours, "py-spy names a thread %r that crux does not: %s" % (
            tname, sorted(ours))
        assert spy_by_profile[name] & ours_fns == ours[tname][2] & ours_fns, (
            tname, spy_by_profile[name] & ours_fns, ours[tname][2] & ours_fns)
