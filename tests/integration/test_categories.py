"""Time categories: each kind of time lands in its category, out of process.

targets/categories.py runs one function per kind of time: py_loop (python),
native_hash (native: OpenSSL with the GIL released), do_sleep and do_recv
(system: off CPU), and two threads in spin taking turns on the GIL (gil). The
target measures each spin thread's CPU share itself; its GIL wait is the rest.
"""
import json

from conftest import target_env

from crux_helpers import RATE

MIN = 40  # samples a function needs before its split means anything


def record(crux, interp, env=None):
    argv, truth = crux.target_argv(interp, "categories.py", "--duration", "1.0")
    out = crux.tmp / "lines.json"
    result = crux.run("record", "--idle", "--rate", RATE, "--format", "lines", "-o", out,
                      "--", *argv, env=env)
    assert result.returncode == 0, result.describe()
    with open(str(out), encoding="utf-8") as f:
        data = json.load(f)
    with open(str(truth), encoding="utf-8") as f:
        return data, json.load(f), result


def split(data, function):
    rows = [r for r in data["functions"] if r["function"] == function]
    assert rows, "no row for %s in %s" % (function, [r["function"] for r in data["functions"]])
    row = rows[0]
    total = row["total"]
    assert total >= MIN, "%s: only %d samples" % (function, total)
    return dict((k, v / total) for k, v in row["categories"].items()), total


def test_each_kind_of_time_in_its_category(crux, interp):
    data, truth, result = record(crux, interp)
    assert data["categories_collected"]
    assert "perf" in data["categories_note"], data["categories_note"]
    py, _ = split(data, "py_loop")
    assert py["python"] >= 0.85, ("py_loop", py)
    nat, _ = split(data, "native_hash")
    assert nat["native"] >= 0.85, ("native_hash", nat)
    for f in ("do_sleep", "do_recv"):
        s, _ = split(data, f)
        assert s["system"] >= 0.9, (f, s)
    # Two CPU-bound threads take turns on the GIL. By its own measurement (thread_time /
    # wall time) each ran cpu_share of the time; the rest it waited for the GIL, or, on a
    # loaded machine, for a CPU while holding it (runnable, counted as python). So: python
    # at least the CPU share, gil at most the rest, and a large part of the rest is gil.
    spin, n = split(data, "spin")
    cpu_share = sum(truth["spin_cpu_share"].values()) / 2
    assert spin["python"] + spin["gil"] + spin["cpu"] >= 0.9, (spin, cpu_share)
    assert spin["python"] >= cpu_share - 0.1, (spin, cpu_share)
    assert spin["gil"] <= (1 - cpu_share) + 0.1, (spin, cpu_share)
    assert spin["gil"] >= 0.2, (spin, cpu_share)


def test_lines_text_names_lines_and_categories(crux, interp):
    argv, _ = crux.target_argv(interp, "categories.py", "--duration", "0.5")
    out = crux.tmp / "lines.txt"
    result = crux.run("record", "--idle", "--rate", RATE, "--format", "lines", "-o", out,
                      "--", *argv)
    assert result.returncode == 0, result.describe()
    text = out.read_text(encoding="utf-8")
    assert "time categories: python" in text, text[:500]
    header = [l for l in text.splitlines() if l.split()[:2] == ["total", "self"]][0]
    for c in ("python", "native", "system", "gil"):
        assert c in header, header
    native = [l for l in text.splitlines() if l.rstrip().endswith(")") and "native_hash (" in l]
    assert native, text


def test_without_perf_events_cpu_time_is_not_split(crux, interp):
    """Where perf events are refused, on-CPU time is `cpu` and the output says why;
    off-CPU categories still work."""
    env = dict(target_env(), CRUX_NO_PERF="1")
    data, _, result = record(crux, interp, env=env)
    assert "CRUX_NO_PERF" in data["categories_note"]
    py, _ = split(data, "py_loop")
    assert py["cpu"] >= 0.85 and py["python"] == 0, py
    s, _ = split(data, "do_sleep")
    assert s["system"] >= 0.9, s
    spin, _ = split(data, "spin")
    assert spin["gil"] >= 0.2, spin
