"""crux under valgrind: no memory errors and no definite leaks (CRUX_VALGRIND=1 only).

Runs a short launch-mode record and an attached dump under
`valgrind --error-exitcode=99 --leak-check=full --errors-for-leak-kinds=definite`
against one interpreter; passes unless valgrind reports errors (exit 99).
Use the plain build (`make valgrind` sets CRUX=build/crux): valgrind cannot run
an AddressSanitizer binary.
"""
import os
import shutil

import pytest

from crux_helpers import RATE

pytestmark = pytest.mark.skipif(os.environ.get("CRUX_VALGRIND") != "1",
                                reason="set CRUX_VALGRIND=1 to run the valgrind checks")

VALGRIND = ["valgrind", "--error-exitcode=99", "--leak-check=full",
            "--errors-for-leak-kinds=definite", "--trace-children=no"]


@pytest.fixture
def valgrind(crux_bin):
    if shutil.which("valgrind") is None:
        pytest.skip("valgrind is not installed")
    with open(crux_bin, "rb") as f:
        if b"__asan_init" in f.read():
            pytest.skip("%s is an AddressSanitizer build; valgrind needs the plain one" % crux_bin)
    return VALGRIND


def test_record_under_valgrind(crux, valgrind, one_interp):
    interp = one_interp
    argv, _ = crux.target_argv(interp, "workload.py", "--duration", "1.5", "--threads", "2")
    out = crux.tmp / "out.txt"
    result = crux.run("record", "--rate", RATE, "-o", out, "--", *argv, prefix=valgrind,
                      timeout=600)
    assert result.returncode != 99, "valgrind found errors\n" + result.describe()
    assert result.returncode == 0, result.describe()
    assert out.exists()


def test_dump_under_valgrind(crux, valgrind, one_interp):
    interp = one_interp
    target, _, _ = crux.start_target(interp, "workload.py", "--duration", "60", "--threads", "2")
    result = crux.run("dump", "--pid", target.pid, "--json", prefix=valgrind, timeout=600)
    assert result.returncode != 99, "valgrind found errors\n" + result.describe()
    assert result.returncode == 0, result.describe()
