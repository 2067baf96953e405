#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""What crux's modes cost crux itself: time categories, the memory timeline, --native and
--subprocesses, measured with crux attached (--pid) so that os.wait4 gives crux's own CPU
time and never the target's.

Part "modes": crux attached to bench/workloads/spin.py (T threads at Python depth D in a
CPU loop) for --duration seconds in each mode: plain (--no-categories --no-memory),
categories only (--no-memory), memory only (--no-categories), the default (both), and
--native (default + native) at its own rate. Reported per mode, median [min..max] of the
repetitions (modes interleaved, order rotated): crux's CPU per thread-sample inside rounds
(--stats cpu_us_per_thread_sample), crux's whole CPU (wait4) per second and per sample
(start-up included), and the rate achieved.

Part "subprocs": crux attached to bench/workloads/pool.py (a fork Pool of 4 workers, each
5 ms of Python work then a 15 ms sleep) at 100 Hz, for two durations (2 s and 6 s) in
each mode: the parent alone (no --subprocesses), --subprocesses (default: categories and
memory), --subprocesses --no-memory, --subprocesses --no-categories --no-memory. Crux's
whole CPU per second is (CPU_6 - CPU_2) / 4 s, which cancels start-up (finding each
child's runtime) and output writing; the part outside rounds is that minus the rounds'
CPU from --stats: the 10-per-second discovery check (/proc/loadavg, and a walk of
/proc/*/stat when a pid was created anywhere on the machine), the per-child liveness and
exec checks, and the sleep/wake-up machinery.

    python3 bench/mode_cost.py [--parts modes,subprocs] [--reps 3] [--threads 1,64]
    python3 bench/mode_cost.py --parts subprocs --churn 20 --out mode_cost-churn.json
"""
import argparse
import os
import signal
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import common as C  # noqa: E402
from overhead import prepare_crux  # noqa: E402

PLAIN = ["--no-categories", "--no-memory"]
MODES = [
    # name, extra options, rate (None: the --rate given)
    ("plain", PLAIN, None),
    ("categories", ["--no-memory"], None),
    ("memory", ["--no-categories"], None),
    ("default", [], None),
    ("plain@100", PLAIN, 100),
    ("default@100", [], 100),
    ("native@100", ["--native"], 100),
]
SUB_MODES = [
    ("parent only (default mode)", []),
    ("--subprocesses", ["--subprocesses"]),
    ("--subprocesses --no-memory", ["--subprocesses", "--no-memory"]),
    ("--subprocesses plain", ["--subprocesses"] + PLAIN),
]


def newest_pid():
    with open("/proc/loadavg") as f:
        return int(f.read().split()[-1])


def attach(crux, pid, opts, rate, duration, tag):
    """Runs crux attached to pid; returns its parsed --stats plus its wait4 CPU seconds."""
    out = os.path.join(C.OUT, "mode_cost", tag + ".txt")
    argv = [crux, "record", "-q", "--stats", "--pid", str(pid), "--rate", str(rate),
            "--duration", str(duration), "-o", out] + opts
    p = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    t0 = time.monotonic()
    rc, cpu = C.wait4_rusage(p, duration + 60)
    wall = time.monotonic() - t0
    err = p.stderr.read()
    p.stderr.close()
    st = C.parse_crux_stats(err)
    if rc != 0 or not st:
        C.log("  %s: crux failed (rc=%s): %s" % (tag, rc, err[-400:]))
        return None
    st["wait4_cpu_s"] = cpu
    st["wall_s"] = wall
    st["rounds_cpu_s"] = st.get("cpu_us_per_thread_sample", 0) * (
        st.get("thread_samples", 0) + st.get("errors", 0)) / 1e6
    return st


def start(argv):
    p = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                         stderr=subprocess.DEVNULL, text=True, start_new_session=True)
    line = p.stdout.readline()
    if "WORKLOAD_READY" not in line:
        p.kill()
        sys.exit("bench: workload did not start: %r" % line)
    return p


def stop(p):
    try:
        os.killpg(p.pid, signal.SIGKILL)  # the pool's workers too
    except ProcessLookupError:
        pass
    p.wait()
    for f in (p.stdin, p.stdout):
        f.close()


def part_modes(crux, python, threads, depth, rate, duration, reps):
    res = {}
    for t in threads:
        got = {m[0]: [] for m in MODES}
        for rep in range(reps):
            order = MODES[rep % len(MODES):] + MODES[:rep % len(MODES)]
            for name, opts, r in order:
                target = start([python, os.path.join(C.WORKLOADS, "spin.py"), "--depth",
                                str(depth), "--threads", str(t)])
                try:
                    time.sleep(0.3)
                    st = attach(crux, target.pid, opts, r or rate, duration,
                                "t%d-%s-%d" % (t, name, rep))
                finally:
                    stop(target)
                if st:
                    got[name].append(st)
                    C.log("  %d thread(s) %-12s %.1f us/thread-sample in rounds, whole crux "
                          "%.1f%% of a core, %.0f Hz" % (
                              t, name, st.get("cpu_us_per_thread_sample", 0),
                              100 * st["wait4_cpu_s"] / st["wall_s"], st.get("achieved_hz", 0)))
        res[t] = got
    return res


def part_subprocs(crux, python, durations, reps):
    res = {m[0]: {d: [] for d in durations} for m in SUB_MODES}
    pids = []
    for rep in range(reps):
        order = SUB_MODES[rep % len(SUB_MODES):] + SUB_MODES[:rep % len(SUB_MODES)]
        for name, opts in order:
            for d in durations:
                target = start([python, os.path.join(C.WORKLOADS, "pool.py")])
                try:
                    time.sleep(0.3)
                    p0 = newest_pid()
                    st = attach(crux, target.pid, opts, 100, d,
                                "pool-%s-%g-%d" % (name.replace(" ", "").replace("-", ""),
                                                   d, rep))
                    pids.append((newest_pid() - p0) / d)
                finally:
                    stop(target)
                if st:
                    res[name][d].append(st)
                    C.log("  pool %-28s %gs: crux %.3f s CPU (rounds %.3f), %d processes, "
                          "%.1f us/round" % (name, d, st["wait4_cpu_s"], st["rounds_cpu_s"],
                                             st.get("processes", 0),
                                             st["rounds_cpu_s"] * 1e6 / max(1, st["ticks"])))
    return res, pids


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--parts", default="modes,subprocs")
    ap.add_argument("--python", default=C.DEFAULT_PYTHON)
    ap.add_argument("--threads", default="1,64")
    ap.add_argument("--depth", type=int, default=50)
    ap.add_argument("--rate", type=int, default=1000)
    ap.add_argument("--duration", type=float, default=2.0)
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--crux")
    ap.add_argument("--no-build", action="store_true")
    ap.add_argument("--churn", type=float, default=0,
                    help="subprocs: also create this many short processes a second elsewhere "
                         "on the machine (each makes crux's next discovery check walk /proc)")
    ap.add_argument("--out", default="mode_cost.json")
    a = ap.parse_args()
    crux, info = prepare_crux(a.crux, not (a.crux or a.no_build), "mode_cost")
    os.makedirs(os.path.join(C.OUT, "mode_cost"), exist_ok=True)
    result = {"crux": info, "machine": C.machine(), "python": a.python,
              "python_version": C.python_version(a.python), "args": vars(a)}
    parts = a.parts.split(",")
    if "modes" in parts:
        threads = [int(t) for t in a.threads.split(",")]
        res = part_modes(crux, a.python, threads, a.depth, a.rate, a.duration, a.reps)
        result["modes"] = res
        rows = []
        for t, got in res.items():
            plain = C.summarize([s["cpu_us_per_thread_sample"] for s in got["plain"]])
            for name, opts, r in MODES:
                sts = got[name]
                us = C.summarize([s["cpu_us_per_thread_sample"] for s in sts])
                share = C.summarize([s["wait4_cpu_s"] / s["wall_s"] for s in sts])
                whole = C.summarize([s["wait4_cpu_s"] * 1e6 / max(1, s["thread_samples"])
                                     for s in sts])
                hz = C.summarize([s.get("achieved_hz") for s in sts])
                rows.append([str(t), name, str(r or a.rate),
                             C.fmt_spread(us, lambda x: "%.1f" % x),
                             "%.2fx" % (us["median"] / plain["median"]) if us and plain else "-",
                             C.fmt_spread(whole, lambda x: "%.0f" % x),
                             C.fmt_spread(share, lambda x: "%.1f%%" % (100 * x)),
                             "%.0f" % hz["median"] if hz else "-"])
        print("\ncrux's own CPU by mode, attached to spin.py (depth %d, %s), %d reps of %g s, "
              "median [min..max]" % (a.depth, a.python, a.reps, a.duration))
        print(C.table(["threads", "mode", "Hz asked", "us/thread-sample in rounds",
                       "vs plain", "whole crux us/thread-sample", "whole crux, of a core",
                       "Hz achieved"], rows))
    if "subprocs" in parts:
        durations = [2.0, 6.0]
        churn = None
        if a.churn > 0:
            churn = subprocess.Popen(["sh", "-c", "while :; do /bin/true; sleep %g; done"
                                      % (1.0 / a.churn)], start_new_session=True)
        try:
            res, pids = part_subprocs(crux, a.python, durations, a.reps)
        finally:
            if churn:
                os.killpg(churn.pid, signal.SIGKILL)
                churn.wait()
        result["subprocs"] = {k: {str(d): v for d, v in dv.items()} for k, dv in res.items()}
        result["pids_created_per_s"] = pids
        rows = []
        for name, _ in SUB_MODES:
            short, long_ = res[name][durations[0]], res[name][durations[1]]
            n = min(len(short), len(long_))
            span = durations[1] - durations[0]
            per_s = [(long_[i]["wait4_cpu_s"] - short[i]["wait4_cpu_s"]) / span
                     for i in range(n)]
            rounds = [(long_[i]["rounds_cpu_s"] - short[i]["rounds_cpu_s"]) / span
                      for i in range(n)]
            outside = [x - y for x, y in zip(per_s, rounds)]
            per_round = C.summarize([s["rounds_cpu_s"] * 1e6 / max(1, s["ticks"])
                                     for s in long_])
            start_cpu = [short[i]["wait4_cpu_s"] - per_s[i] * durations[0] for i in range(n)]
            procs = C.summarize([s.get("processes") for s in long_])
            pct = (lambda x: "%.2f%%" % (100 * x))
            rows.append([name, "%.0f" % procs["median"] if procs else "-",
                         C.fmt_spread(per_round, lambda x: "%.1f" % x),
                         C.fmt_spread(C.summarize(per_s), pct),
                         C.fmt_spread(C.summarize(rounds), pct),
                         C.fmt_spread(C.summarize(outside), pct),
                         C.fmt_spread(C.summarize(start_cpu), lambda x: "%.0f ms" % (x * 1e3))])
        print("\ncrux attached to a Pool of 4 workers at 100 Hz: CPU per second from the "
              "%g s and %g s runs (start-up cancels), %d reps, median [min..max]"
              % (durations[0], durations[1], a.reps))
        print(C.table(["mode", "processes", "rounds: us/round", "crux CPU, of a core",
                       "in rounds", "outside rounds", "start-up + output"], rows))
        s = C.summarize(pids)
        print("pids created on the machine meanwhile: %.0f/s [%.0f..%.0f] (each new pid "
              "makes the next discovery check walk /proc)" % (s["median"], s["min"], s["max"]))
    result["machine"]["loadavg_at_end"] = os.getloadavg()
    print("\nwrote %s" % C.write_json(a.out, result))


if __name__ == "__main__":
    main()
