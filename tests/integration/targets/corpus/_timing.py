"""Where a corpus program's own time goes, measured in the program itself.

A program wraps each phase of its work in `with clock(KIND):`; the clock adds the phase's
wall time (time.perf_counter) and busy time to KIND, per thread. Busy time is the time the
thread was on a CPU or waiting in a run queue for one (thread_busy(): a thread that wants
to compute but is starved by a loaded machine is not waiting on anything of its own).
With `wait=OTHER`, the busy time goes to KIND and the rest of the wall time to OTHER (an
event loop that is not busy waits on its sockets). cpu= names another function giving
seconds: time.thread_time, or `lambda: thread_busy(tid)` for another thread. A phase
opened inside another keeps its time for itself: the outer one gets only the rest (inside
a coroutine, an inner phase must not await).
`clock.write(path, expect=...)` writes the truth file: seconds and shares per kind
(shares of the summed phase wall time of all threads), the dominant kind, and how long
the process ran before the work started (imports, data generation).

KIND is a verdict type (host, gil, io, serialization, queue, model, gpu) or "sleep"
(a deliberate time.sleep: waiting that is nobody's bottleneck). Runs on CPython 3.8 and
later; the `with` body runs in the caller's frame, so the clock adds no frame to the
stacks a profiler sees.
"""
import argparse
import json
import os
import sys
import threading
import time


def parse_args(description, duration=3.0, add_arguments=None):
    """--truth PATH and --duration SEC (seconds of work), plus whatever add_arguments adds."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--truth", required=True, help="write the measured truth JSON here")
    parser.add_argument("--duration", type=float, default=duration,
                        help="seconds of work (default %(default)s)")
    if add_arguments is not None:
        add_arguments(parser)
    return parser.parse_args()


_local = threading.local()


def thread_busy(native_id=None):
    """Seconds a thread of this process (default: the calling one) has been on a CPU or
    waiting in a run queue for one (/proc/self/task/ID/schedstat); its CPU time where that
    is unreadable."""
    if native_id is not None:
        try:
            with open("/proc/self/task/%d/schedstat" % native_id) as f:
                run, delay = f.read().split()[:2]
        except (OSError, ValueError):
            return 0.0
        return (int(run) + int(delay)) / 1e9
    fd = getattr(_local, "fd", None)
    if fd is None:
        try:
            fd = os.open("/proc/thread-self/schedstat", os.O_RDONLY)
        except OSError:
            fd = -1
        _local.fd = fd
    if fd < 0:
        return time.thread_time()
    run, delay = os.pread(fd, 100, 0).split()[:2]
    return (int(run) + int(delay)) / 1e9


def process_age():
    """Seconds since this process started (from /proc; 0.0 where that is unreadable)."""
    try:
        with open("/proc/self/stat") as f:
            start_ticks = int(f.read().rsplit(")", 1)[1].split()[19])
        with open("/proc/uptime") as f:
            uptime = float(f.read().split()[0])
    except (OSError, ValueError, IndexError):
        return 0.0
    return max(uptime - start_ticks / os.sysconf("SC_CLK_TCK"), 0.0)


class _Phase(object):
    __slots__ = ("clock", "kind", "wait", "cpu", "t0", "c0", "inner_wall", "inner_cpu")

    def __init__(self, clock, kind, wait, cpu):
        self.clock, self.kind, self.wait, self.cpu = clock, kind, wait, cpu
        self.inner_wall = self.inner_cpu = 0.0

    def __enter__(self):
        self.clock._stack().append(self)
        # wall time encloses the CPU reads: one that reads a file lets go of the GIL, and
        # taking it back is part of the phase
        self.t0 = time.perf_counter()
        self.c0 = self.cpu()
        return self

    def __exit__(self, *exc):
        cpu = max(self.cpu() - self.c0, 0.0)
        wall = time.perf_counter() - self.t0
        stack = self.clock._stack()
        assert stack and stack[-1] is self, "phases must nest (no await inside an inner one)"
        stack.pop()
        if stack:
            stack[-1].inner_wall += wall
            stack[-1].inner_cpu += cpu
        self.clock._add(self.kind, self.wait, max(wall - self.inner_wall, 0.0),
                        max(cpu - self.inner_cpu, 0.0))
        return False


class Clock(object):
    """Sums wall and busy seconds per kind over all threads.

    Each thread adds to its own tallies, without a lock: a lock taken between phases could
    make a thread wait for the GIL outside any phase, and that time would be lost.
    """

    def __init__(self):
        self.tallies = []  # one (wall, cpu) pair of dicts per thread; append is atomic
        self.local = threading.local()
        self.setup = process_age()
        self.t0 = time.perf_counter()

    def elapsed(self):
        """Seconds since the clock was made (the start of the work)."""
        return time.perf_counter() - self.t0

    def __call__(self, kind, wait=None, cpu=thread_busy):
        return _Phase(self, kind, wait, cpu)

    def _stack(self):
        stack = getattr(self.local, "stack", None)
        if stack is None:
            stack = self.local.stack = []
        return stack

    def _add(self, kind, wait, wall, cpu):
        tally = getattr(self.local, "tally", None)
        if tally is None:
            tally = self.local.tally = ({}, {})
            self.tallies.append(tally)
        walls, cpus = tally
        run = min(cpu, wall)
        if wait is None:
            walls[kind] = walls.get(kind, 0.0) + wall
            cpus[kind] = cpus.get(kind, 0.0) + run
        else:
            walls[kind] = walls.get(kind, 0.0) + run
            cpus[kind] = cpus.get(kind, 0.0) + run
            walls[wait] = walls.get(wait, 0.0) + wall - run
            cpus.setdefault(wait, 0.0)

    def totals(self):
        """({kind: wall seconds}, {kind: busy seconds}) over all threads."""
        walls, cpus = {}, {}
        for thread_walls, thread_cpus in list(self.tallies):
            for k, v in list(thread_walls.items()):
                walls[k] = walls.get(k, 0.0) + v
            for k, v in list(thread_cpus.items()):
                cpus[k] = cpus.get(k, 0.0) + v
        return walls, cpus

    def write(self, path, expect, **notes):
        """Writes the truth JSON (atomically); `expect` is the type the program is built for."""
        work = time.perf_counter() - self.t0
        walls, cpus = self.totals()
        total = sum(walls.values()) or 1.0
        shares = dict((k, round(v / total, 4)) for k, v in walls.items())
        dominant = max(shares, key=shares.get) if shares else None
        out = {
            "expect": expect,
            "kinds": dict((k, {"wall": round(walls[k], 4), "cpu": round(cpus.get(k, 0.0), 4)})
                          for k in walls),
            "shares": shares,
            "dominant": dominant,
            "dominant_share": shares.get(dominant, 0.0),
            "work_s": round(work, 4),
            "setup_s": round(self.setup, 4),
            "threads": len(self.tallies),
            "pid": os.getpid(),
            "python": sys.version.split()[0],
            "notes": notes,
        }
        tmp = path + ".tmp"
        with open(tmp, "w", encoding="utf-8") as f:
            json.dump(out, f, indent=1, sort_keys=True)
        os.replace(tmp, path)
