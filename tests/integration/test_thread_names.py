"""Python thread names where users look: `record --threads` roots, `dump` (text and JSON),
the report's thread table, speedscope and saved recordings.

targets/thread_names.py names its threads the ways programs do (Thread(name=...), a
subclass, threading's default, a non-ASCII name, a ThreadPoolExecutor prefix), starts one
with _thread.start_new_thread (no Thread object: its OS name must stay), and renames one
on request. Names are compared exactly, per native thread id, against the target's own.
"""
import html as htmlmod
import json
import sqlite3

from crux_helpers import parse_collapsed, thread_root, thread_root_name


def os_name(pid, tid):
    with open("/proc/%d/task/%d/comm" % (pid, tid), encoding="utf-8", errors="replace") as f:
        return f.read().rstrip("\n")


def expected(truth):
    return dict((int(tid), name) for tid, name in truth["names"].items())


def start(crux, interp, flag=None):
    args = ["--duration", "60"] + (["--rename-flag", str(flag)] if flag else [])
    target, truth_path, truth = crux.start_target(interp, "thread_names.py", *args)
    return target, truth_path, truth


def dump_json(crux, pid):
    result = crux.run("dump", "--pid", pid, "--json")
    assert result.returncode == 0, result.describe()
    return json.loads(result.stdout)


def test_record_threads_roots_carry_python_names(crux, interp):
    target, _, truth = start(crux, interp)
    want = expected(truth)
    raw_tid = truth["raw_tid"]
    out = crux.tmp / "names.txt"
    result = crux.run("record", "--pid", target.pid, "--threads", "--idle", "-f", "collapsed",
                      "-r", "200", "--duration", "1.5", "-o", out)
    assert result.returncode == 0, result.describe()
    stacks = parse_collapsed(str(out))
    seen = {}
    for stack, n in stacks.items():
        tid = thread_root(stack)
        assert tid is not None, "stack without a thread root: %r" % (stack,)
        seen.setdefault(tid, set()).add(thread_root_name(stack))
    for tid, name in want.items():
        assert tid in seen, "thread %s (%r) never sampled; roots: %s" % (tid, name, seen)
        assert seen[tid] == {name}, "thread %s: roots named %s, Python calls it %r" % (
            tid, seen[tid], name)
    assert raw_tid in seen, "the _thread thread was never sampled: %s" % seen
    assert seen[raw_tid] == {os_name(target.pid, raw_tid)}, \
        "_thread thread rooted as %s, its OS name is %r" % (seen[raw_tid],
                                                            os_name(target.pid, raw_tid))
    assert target.poll() is None, "target died during the recording"


def test_dump_names_and_rename(crux, interp):
    flag = crux.tmp / "rename.flag"
    target, truth_path, truth = start(crux, interp, flag)
    want = expected(truth)
    raw_tid = truth["raw_tid"]
    dump = dump_json(crux, target.pid)
    by_tid = dict((t["tid"], t) for t in dump["threads"])
    for tid, name in want.items():
        assert tid in by_tid, "thread %s (%r) missing from dump: %s" % (tid, name, sorted(by_tid))
        t = by_tid[tid]
        assert t["name"] == name and t["python_name"] == name, (tid, name, t)
        assert t["os_name"] == os_name(target.pid, tid), t
    raw = by_tid[raw_tid]
    assert raw["python_name"] is None and raw["name"] == raw["os_name"] == \
        os_name(target.pid, raw_tid), raw
    text = crux.run("dump", "--pid", target.pid)
    assert text.returncode == 0, text.describe()
    for tid, name in want.items():
        assert "Thread %d (%s):" % (tid, name) in text.stdout, text.describe()

    # A rename at runtime shows in a later dump.
    flag.write_text("go")
    renamed = crux.wait_truth(truth_path, target, phase="renamed")
    tid = renamed["renamed_tid"]
    new = dict((t["tid"], t) for t in dump_json(crux, target.pid)["threads"])
    assert new[tid]["name"] == "loader-2 (renamed)" == renamed["names"][str(tid)], new[tid]
    assert target.poll() is None, "target died during dump"


def test_report_table_speedscope_and_saved_names(crux, one_interp):
    """One interpreter: the names reach every output through the same profile table."""
    target, _, truth = start(crux, one_interp)
    want = expected(truth)
    html, db, ss = crux.tmp / "r.html", crux.tmp / "r.db", crux.tmp / "r.json"
    result = crux.run("record", "--pid", target.pid, "--threads", "-r", "200", "--duration",
                      "1.5", "-o", html, "--save", db, "--no-summary")
    assert result.returncode == 0, result.describe()
    page = html.read_text(encoding="utf-8")
    for name in want.values():
        cell = "<td>%s</td>" % htmlmod.escape(name, quote=False)  # "Thread-1 (<lambda>)"
        assert cell in page, "%r not in the report's thread table" % name
    rows = dict(((pid, tid), name) for pid, tid, name in
                sqlite3.connect(str(db)).execute("SELECT pid, tid, name FROM threads"))
    for tid, name in want.items():
        assert rows.get((target.pid, tid)) == name, (tid, name, rows)
    result = crux.run("report", db, "-o", ss)
    assert result.returncode == 0, result.describe()
    frames = [f["name"] for f in json.loads(ss.read_text(encoding="utf-8"))["shared"]["frames"]]
    for tid, name in want.items():
        assert "%s (%d)" % (name, tid) in frames, (name, tid)


def test_record_launched_never_borrows_a_name(crux, interp):
    """Threads started while crux records: a thread goes by its OS name until a read of the
    registry has seen it, then by its Python name, and never by another thread's (a new
    thread state holds its creator's pthread id until the thread runs)."""
    result, out, truth_path = crux.record(interp, "thread_names.py", "--duration", "2",
                                          options=["--threads", "--idle", "-f", "collapsed",
                                                   "-r", "300"])
    assert result.returncode == 0, result.describe()
    truth = json.loads(truth_path.read_text(encoding="utf-8"))
    want = expected(truth)
    seen = {}
    for stack in parse_collapsed(str(out)):
        seen.setdefault(thread_root(stack), set()).add(thread_root_name(stack))
    python_names = set(want.values())
    for tid, name in want.items():
        assert name in seen.get(tid, ()), "thread %s never rooted as %r: %s" % (tid, name, seen)
        borrowed = (seen[tid] - {name}) & python_names
        assert not borrowed, "thread %s (%r) also rooted as %s" % (tid, name, borrowed)
    raw = seen.get(truth["raw_tid"], set())
    assert not raw & python_names, "the _thread thread rooted as %s" % raw
