"""crux record --native: merged stacks over a whole recording, target never left stopped.

targets/native_zlib.py spends its time in zlib.compress (deflate in libz)
under compress_loop; targets/native_numpy.py multiplies matrices (BLAS) under
matmul_loop (Debian's python3, which has numpy). Every recorded stack that
holds a libz (BLAS) frame must have it leafward of the Python frame that
called it, with the Python callers intact. targets/native_sleepers.py keeps twelve threads
waiting and one spinning: threads that do not run are not stopped again.
"""
import collections
import re

import pytest

from crux_helpers import (RATE, assert_running_freely, load_truth, names_of, parse_collapsed,
                          thread_root)
from test_report import debian  # noqa: F401  (the Debian python3 fixture)


def native_stacks(stacks, module_part):
    """Stacks (root first) holding a native frame from a module containing module_part."""
    return dict((s, n) for s, n in stacks.items()
                if any(f.endswith(")") and module_part in f.rsplit("(", 1)[1] for f in s))


def index_of(frames, name):
    for i, f in enumerate(frames):
        if f.split(" (")[0].rsplit(".", 1)[-1] == name:
            return i
    return -1


def test_record_native_deflate_under_compress_loop(crux, interp):
    result, out, _ = crux.record(interp, "native_zlib.py", "--duration", "1.5",
                                 options=["--native", "--rate", RATE])
    assert result.returncode == 0, result.describe()
    stacks = parse_collapsed(out)
    total = sum(stacks.values())
    libz = native_stacks(stacks, "libz")
    assert sum(libz.values()) >= total * 0.5, (sum(libz.values()), total)
    for frames in libz:
        z = min(i for i, f in enumerate(frames) if "libz" in f.rsplit("(", 1)[-1])
        c = index_of(frames, "compress_loop")
        assert 0 <= c < z, "libz frame not under compress_loop: %s" % (frames,)
        assert index_of(frames, "outer_native") < c and index_of(frames, "main") < c, frames
    assert any("deflate (" in f for s in libz for f in s), list(libz)[:3]


def test_record_native_blas_under_matmul(crux, debian):
    result, out, _ = crux.record(debian, "native_numpy.py", "--duration", "1.5",
                                 options=["--native", "--rate", RATE])
    if result.returncode == 3:
        pytest.skip("numpy is not installed for %s" % debian.path)
    assert result.returncode == 0, result.describe()
    stacks = parse_collapsed(out)
    blas = dict((s, n) for s, n in stacks.items()
                if any(("gemm" in f.split(" (")[0] or "dot" in f.split(" (")[0])
                       for f in s if "(lib" in f))
    total = sum(stacks.values())
    assert sum(blas.values()) >= total * 0.3, (sum(blas.values()), total)
    for frames in blas:
        g = min(i for i, f in enumerate(frames)
                if "(lib" in f and ("gemm" in f.split(" (")[0] or "dot" in f.split(" (")[0]))
        assert 0 <= index_of(frames, "matmul_loop") < g, frames


def test_attached_native_leaves_target_running(crux, interp):
    popen, _, truth = crux.start_target(interp, "native_zlib.py", "--duration", "30")
    result = crux.run("record", "--native", "--rate", RATE, "--duration", "1.5", "--pid",
                      truth["pid"], "-o", crux.tmp / "att.txt")
    assert result.returncode == 0, result.describe()
    assert_running_freely(truth["pid"])
    assert native_stacks(parse_collapsed(crux.tmp / "att.txt"), "libz")


def stats_of(stderr):
    """The key=value numbers of crux's `crux-stats:` lines."""
    out = {}
    for line in stderr.splitlines():
        if line.startswith("crux-stats:"):
            for key, value in re.findall(r"(\w+)=([-\d.]+)", line):
                out[key] = float(value)
    return out


def test_record_native_reuses_stacks_of_threads_that_do_not_run(crux, interp):
    """Twelve pooled threads wait the whole run (an Event, a timed Event, time.sleep) and one
    spins: the waiters are not stopped again while they do not run (native_reused), and their
    stacks still name their wait with the native call under it; the spinner's name its loop."""
    result, out, truth_path = crux.record(
        interp, "native_sleepers.py", "--duration", "3",
        options=["--native", "--idle", "--threads", "--stats", "--rate", "100"])
    assert result.returncode == 0, result.describe()
    stats = stats_of(result.stderr)
    assert stats.get("native_reused", 0) > 0, result.stderr[-2000:]
    truth = load_truth(truth_path)
    by_tid = collections.defaultdict(dict)
    for stack, count in parse_collapsed(out).items():
        by_tid[thread_root(stack)][stack] = count
    waits = ("wait_for_shutdown", "wait_for_job", "poll_config")
    for name, tid in truth["threads"]:
        stacks = by_tid[tid]
        samples = sum(stacks.values())
        # 3.8-3.10 learn a thread's kernel id over the first rounds: fewer under load
        assert samples >= 5, (name, tid, samples)
        own = sum(n for s, n in stacks.items() if name in names_of(s))
        others = [s for s in stacks if any(w in names_of(s) for w in waits + ("crunch_numbers",)
                                           if w != name)]
        assert not others, "thread %d (%s) shows another thread's function: %s" % (
            tid, name, others[:2])
        if name == "crunch_numbers":
            assert own >= samples * 0.9, (own, samples, list(stacks)[:3])
            continue
        top = max(stacks, key=stacks.get)
        assert stacks[top] >= samples * 0.75, (name, stacks)
        assert name in names_of(top), (name, top)
        assert top[-1].endswith(")") and ".so" in top[-1].rsplit("(", 1)[1], (
            "the wait has no native leaf: %s" % (top,))
