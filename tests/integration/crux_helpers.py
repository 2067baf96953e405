"""Plain helpers for crux's integration tests: parse crux's outputs, compute shares, read /proc.

No pytest here; conftest.py builds the fixtures on top of these, and test
modules import them directly (`from crux_helpers import parse_collapsed`).
"""
import collections
import json
import os
import re
import time

RATE = "250"  # samples/s: ~500 samples in a 2 s run, enough for ±7-point share checks
TRUNCATED = "[truncated]"

# `qualname (path:line)`: greedy name, so a name holding " (" still parses; paths
# in these tests never hold " (".
FRAME_RE = re.compile(r"^(?P<name>.*) \((?P<path>.*):(?P<line>\d+)\)$", re.S)
# `NAME (TID)`: the thread's Python name, else its OS name, else `thread`. Greedy name: a
# Python name may hold " (" itself ("Thread-1 (work)").
THREAD_RE = re.compile(r"^(?P<name>.*) \((?P<tid>\d+)\)$", re.S)
COLLAPSED_LINE_RE = re.compile(r"^(?P<stack>.+) (?P<count>\d+)$")
SANITIZER_MARKERS = ("ERROR: AddressSanitizer", "ERROR: LeakSanitizer", "runtime error:",
                     "AddressSanitizer:DEADLYSIGNAL", "UndefinedBehaviorSanitizer")

Frame = collections.namedtuple("Frame", "name path line raw")


def load_truth(path):
    """The JSON a target wrote with its own measurements."""
    with open(str(path), encoding="utf-8") as f:
        return json.load(f)


def parse_collapsed(path):
    """Reads a collapsed-stack file into {tuple(raw frames, root first): count}.

    Strict about the format: the file is UTF-8, every non-empty line is
    `frame;frame;... COUNT` with a positive count, and no stack repeats.
    Raises AssertionError naming the offending line otherwise.
    """
    with open(path, "rb") as f:
        data = f.read()
    text = data.decode("utf-8")  # raises on anything that is not UTF-8
    stacks = {}
    for lineno, line in enumerate(text.split("\n"), 1):
        if not line.strip():
            continue
        m = COLLAPSED_LINE_RE.match(line)
        assert m, "%s:%d: not `stack count`: %r" % (path, lineno, line[:300])
        count = int(m.group("count"))
        assert count > 0, "%s:%d: zero count: %r" % (path, lineno, line[:300])
        frames = tuple(m.group("stack").split(";"))
        assert all(frames), "%s:%d: empty frame: %r" % (path, lineno, line[:300])
        assert frames not in stacks, "%s:%d: stack repeated: %r" % (path, lineno, line[:300])
        stacks[frames] = count
    return stacks


def parse_frame(raw):
    """Splits `qualname (path:line)` into a Frame; other frames keep only a name."""
    m = FRAME_RE.match(raw)
    if not m:
        return Frame(raw, None, None, raw)
    return Frame(m.group("name"), m.group("path"), int(m.group("line")), raw)


def frames_of(stack):
    """The Frames of one stack, root first."""
    return [parse_frame(raw) for raw in stack]


def names_of(stack):
    """The frame names of one stack, root first."""
    return [parse_frame(raw).name for raw in stack]


def total(stacks):
    """Number of samples in a parsed collapsed file."""
    return sum(stacks.values())


def containing(stacks, name):
    """The sub-dict of stacks that have a frame named exactly `name`."""
    return dict((s, c) for s, c in stacks.items() if name in names_of(s))


def count_containing(stacks, name):
    """Samples whose stack has a frame named exactly `name`."""
    return total(containing(stacks, name))


def shares(stacks, names):
    """Share of each name among the samples whose stack holds any of `names`.

    A stack holding several is counted for the one nearest the leaf. Returns
    ({name: share}, samples considered).
    """
    counts = dict((n, 0) for n in names)
    for stack, count in stacks.items():
        for name in reversed(names_of(stack)):
            if name in counts:
                counts[name] += count
                break
    considered = sum(counts.values())
    if considered == 0:
        return dict((n, 0.0) for n in names), 0
    return dict((n, c / considered) for n, c in counts.items()), considered


def thread_root(stack):
    """The TID of a `NAME (TID)` root frame, or None."""
    m = THREAD_RE.match(stack[0]) if stack else None
    return int(m.group("tid")) if m else None


def thread_root_name(stack):
    """The NAME of a `NAME (TID)` root frame, or None."""
    m = THREAD_RE.match(stack[0]) if stack else None
    return m.group("name") if m else None


def parse_summary(stderr):
    """(samples, errors) from crux's closing summary line; None for a missing count."""
    samples = re.findall(r"(\d+) samples?\b", stderr)
    errors = re.findall(r"(\d+) errors?\b", stderr)
    return (int(samples[-1]) if samples else None, int(errors[-1]) if errors else None)


def sanitizer_report(text):
    """The first sanitizer marker found in `text`, or None."""
    for marker in SANITIZER_MARKERS:
        if marker in text:
            return marker
    return None


def proc_stat_fields(path):
    """Fields of a /proc/.../stat file after the `(comm)`; None if it is gone."""
    try:
        with open(path) as f:
            stat = f.read()
    except OSError:
        return None
    return stat[stat.rindex(")") + 2:].split()


def thread_states(pid):
    """{tid: state letter} for every thread of pid; {} if the process is gone."""
    states = {}
    try:
        tids = os.listdir("/proc/%d/task" % pid)
    except OSError:
        return states
    for tid in tids:
        fields = proc_stat_fields("/proc/%d/task/%s/stat" % (pid, tid))
        if fields:
            states[int(tid)] = fields[0]
    return states


def process_state(pid):
    """The state letter of pid (R, S, D, T, t, Z, ...), or None if it is gone."""
    fields = proc_stat_fields("/proc/%d/stat" % pid)
    return fields[0] if fields else None


def cpu_ticks(pid):
    """utime + stime of pid in clock ticks, or None if it is gone."""
    fields = proc_stat_fields("/proc/%d/stat" % pid)
    if not fields:
        return None
    # after "(comm)": state is field 3 of stat(5), utime 14, stime 15
    return int(fields[11]) + int(fields[12])


def tracer_pid(pid):
    """TracerPid from /proc/PID/status (0 when nobody traces it), or None if gone."""
    try:
        with open("/proc/%d/status" % pid) as f:
            for line in f:
                if line.startswith("TracerPid:"):
                    return int(line.split()[1])
    except OSError:
        return None
    return None


def cmdline(pid):
    """The NUL-joined command line of pid as text, or '' if unreadable."""
    try:
        with open("/proc/%d/cmdline" % pid, "rb") as f:
            return f.read().decode("utf-8", "replace")
    except OSError:
        return ""


def assert_running_freely(pid, timeout=5.0):
    """Asserts pid lives, no thread is stopped (T/t), nobody traces it, and it gets CPU time.

    For CPU-bound targets: the last check waits up to `timeout` for its CPU
    time to grow, which a stopped or frozen process never does.
    """
    states = thread_states(pid)
    assert states, "process %d is gone" % pid
    stopped = dict((tid, s) for tid, s in states.items() if s in ("T", "t"))
    assert not stopped, "threads of %d left stopped: %s" % (pid, stopped)
    assert tracer_pid(pid) == 0, "process %d still traced by %s" % (pid, tracer_pid(pid))
    start = cpu_ticks(pid)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        now = cpu_ticks(pid)
        assert now is not None, "process %d is gone" % pid
        if now > start:
            return
        time.sleep(0.05)
    raise AssertionError("process %d got no CPU time in %.0f s (state %s)"
                         % (pid, timeout, process_state(pid)))


def free_port():
    """A TCP port on 127.0.0.1 that nothing listens on now."""
    import socket
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port
