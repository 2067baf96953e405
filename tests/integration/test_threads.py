"""Many threads: per-thread roots in `record --threads`, and `dump` of every thread.

targets/threads.py runs 8 workers, worker i through level_a_i -> level_b_i ->
worker_i (even ones on CPU, odd ones napping), and reports each worker's native
thread id. targets/churn.py has four threads entering and leaving frames all the
time, each with its own functions.
"""
import collections
import json

from crux_helpers import RATE, load_truth, names_of, parse_collapsed, thread_root

N_WORKERS = 8


def test_record_threads_splits_stacks_by_thread(crux, interp):
    result, out, truth_path = crux.record(interp, "threads.py", "--duration", "2",
                                          options=["--rate", RATE, "--threads", "--idle"])
    assert result.returncode == 0, result.describe()
    stacks = parse_collapsed(out)
    truth = load_truth(truth_path)
    for stack in stacks:
        assert thread_root(stack) is not None, "stack without a thread root: %r" % (stack,)
    roots = {}
    for i in range(N_WORKERS):
        worker = "worker_%d" % i
        chain = ["level_a_%d" % i, "level_b_%d" % i, worker]
        seen = [s for s in stacks if worker in names_of(s)]
        assert seen, "%s never sampled; functions seen: %s" % (
            worker, sorted(set(n for s in stacks for n in names_of(s)))[:60])
        tids = set(thread_root(s) for s in seen)
        assert tids == {truth["workers"][worker]}, \
            "%s under thread roots %s, target says tid %s" % (worker, tids, truth["workers"][worker])
        roots[worker] = tids.pop()
        for stack in seen:
            names = names_of(stack)
            positions = [names.index(f) for f in chain]
            assert positions == sorted(positions), "%s: chain out of order in %r" % (worker, stack)
    assert len(set(roots.values())) == N_WORKERS, "workers share thread roots: %s" % roots


def test_dump_json_lists_every_thread(crux, interp):
    target, _, truth = crux.start_target(interp, "threads.py", "--duration", "30")
    result = crux.run("dump", "--pid", target.pid, "--json")
    assert result.returncode == 0, result.describe()
    dump = json.loads(result.stdout)
    assert dump["pid"] == target.pid
    assert dump["python_version"] == truth["python_version"]
    threads = dump["threads"]
    tids = [t["tid"] for t in threads]
    assert len(tids) == len(set(tids)), "duplicate tids in dump: %s" % tids
    assert sum(1 for t in threads if t["gil"]) <= 1, "more than one GIL holder: %s" % threads
    by_tid = dict((t["tid"], t) for t in threads)
    for t in threads:
        assert isinstance(t["name"], str)
        assert t["state"] in ("running", "idle"), t
        for frame in t["frames"]:
            assert isinstance(frame["name"], str) and isinstance(frame["file"], str)
            assert isinstance(frame["line"], int), frame
    assert truth["main_tid"] in by_tid, "main thread %s missing from %s" % (truth["main_tid"], tids)
    for i in range(N_WORKERS):
        worker = "worker_%d" % i
        tid = truth["workers"][worker]
        assert tid in by_tid, "%s (tid %s) missing from dump tids %s" % (worker, tid, tids)
        frames = by_tid[tid]["frames"]
        names = [f["name"] for f in frames]
        # leaf first: worker_i is nearer the leaf than level_b_i, level_a_i
        chain = [worker, "level_b_%d" % i, "level_a_%d" % i]
        assert all(f in names for f in chain), "%s: chain missing from %s" % (worker, names)
        positions = [names.index(f) for f in chain]
        assert positions == sorted(positions), "%s: frames not leaf first: %s" % (worker, names)
        files = [f["file"] for f in frames if f["name"] in chain]
        assert all(f.endswith("threads.py") for f in files), files
    assert target.poll() is None, "target died during dump"


def test_dump_text_names_every_worker(crux, interp):
    target, _, _ = crux.start_target(interp, "threads.py", "--duration", "30")
    result = crux.run("dump", "--pid", target.pid)
    assert result.returncode == 0, result.describe()
    for i in range(N_WORKERS):
        assert "worker_%d" % i in result.stdout, result.describe()
    assert target.poll() is None, "target died during dump"


def test_frame_churn_never_mixes_threads(crux, interp):
    """Frames freed by one thread and reused by another (3.8-3.10 share a free list) must
    not splice two threads' stacks together, nor lead a walk along the free list."""
    result, out, truth_path = crux.record(interp, "churn.py", "--duration", "1.5",
                                          options=["--rate", "500", "--threads"])
    assert result.returncode == 0, result.describe()
    truth = load_truth(truth_path)
    tid_of = dict((int(name.split("_")[1]), tid) for name, tid in truth["loops"].items())
    seen = collections.Counter()
    for stack, n in parse_collapsed(out).items():
        names = names_of(stack)
        ids = set(int(f.split("_")[1]) for f in names if f.startswith(("down_", "loop_")))
        assert len(ids) <= 1, "two threads' functions in one stack (%d samples): %r" % (n, stack)
        if not ids:
            continue
        i = ids.pop()
        seen[i] += n
        assert thread_root(stack) == tid_of[i], "loop_%d under %r, target says tid %d" % (
            i, stack[0], tid_of[i])
        assert names[1].rsplit(".", 1)[-1] == "_bootstrap" and "loop_%d" % i in names, \
            "a stack of thread %d that does not start at its entry: %r" % (i, stack)
    assert all(seen[i] >= 20 for i in range(4)), seen
