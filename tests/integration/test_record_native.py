"""crux record --native: merged stacks over a whole recording, target never left stopped.

targets/native_zlib.py spends its time in zlib.compress (deflate in libz)
under compress_loop; targets/native_numpy.py multiplies matrices (BLAS) under
matmul_loop (Debian's python3, which has numpy). Every recorded stack that
holds a libz (BLAS) frame must have it leafward of the Python frame that
called it, with the Python callers intact.
"""
import pytest

from crux_helpers import RATE, assert_running_freely, parse_collapsed
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
