#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""crux's own cost, two binaries side by side: for each case (python, threads, rate, depth)
each repetition launches bench/workloads/spin.py under crux BASE and crux NEW, in an order
rotated between repetitions, and reads `--stats`: crux's CPU per thread-sample inside rounds,
the sampling thread's whole CPU per thread-sample (wake-ups included), the read's wall time,
the remote ranges per round, and the drops. Prints median [min..max] per binary and the
median of NEW/BASE within repetitions. Launching includes the target's start-up in the run;
use durations of 3 s or more.

    python3 bench/ab_cost.py BASE_CRUX NEW_CRUX [--reps 3] [--duration 3] \\
        3.12:1:1000:50 3.10:16:200:50 debian3.11:64:300:50 ...

A case is PYTHON:THREADS:RATE:DEPTH, PYTHON a pyenv version prefix (3.8 ... 3.13) or
debian3.11."""
import argparse
import os
import statistics
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import common as C

KEYS = [("cpu_us_per_thread_sample", "crux CPU/ts in rounds (µs)"),
        ("thread_cpu_us_per_thread_sample", "sampler thread CPU/ts (µs)"),
        ("read_us_per_thread_sample", "read wall/ts (µs)"),
        ("mem_ranges_per_round", "ranges/round"),
        ("syscalls_per_round", "syscalls/round")]


def python_of(tag):
    if tag == "debian3.11":
        return C.DEFAULT_PYTHON
    versions = sorted(v for v in os.listdir(C.PYENV) if v == tag or v.startswith(tag + "."))
    if not versions:
        sys.exit("ab_cost: no pyenv python %s" % tag)
    return C.pyenv_python(versions[-1])


def one(crux, python, threads, rate, depth, duration):
    argv = [crux, "record", "-q", "--stats", "--rate", str(rate), "--duration", str(duration),
            "-o", os.path.join(C.OUT, "ab-cost.txt"), "--", python,
            os.path.join(C.WORKLOADS, "spin.py"), "--depth", str(depth), "--threads",
            str(threads)]
    r = subprocess.run(argv, capture_output=True, text=True, timeout=duration + 120)
    return C.parse_crux_stats(r.stderr)


def spread(v, fmt="%.1f"):
    if not v:
        return "-"
    return (fmt + " [" + fmt + ".." + fmt + "]") % (statistics.median(v), min(v), max(v))


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("base")
    ap.add_argument("new")
    ap.add_argument("cases", nargs="+")
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--duration", type=float, default=3)
    ap.add_argument("--out", default="ab-cost.json")
    a = ap.parse_args()
    C.ensure_out()
    results = []
    for case in a.cases:
        tag, threads, rate, depth = case.split(":")
        python = python_of(tag)
        got = {"base": [], "new": []}
        for rep in range(a.reps):
            order = ["base", "new"] if rep % 2 == 0 else ["new", "base"]
            for which in order:
                got[which].append(one(getattr(a, which), python, int(threads), int(rate),
                                      int(depth), a.duration))
        row = {"case": case, "python": C.python_version(python)}
        for which in ("base", "new"):
            row[which] = {k: [s[k] for s in got[which] if k in s] for k, _ in KEYS}
            row[which]["dropped"] = [s.get("errors", 0) / max(1, s.get("errors", 0) +
                                                              s.get("thread_samples", 0))
                                     for s in got[which] if s]
        pairs = [n["cpu_us_per_thread_sample"] / b["cpu_us_per_thread_sample"]
                 for b, n in zip(got["base"], got["new"])
                 if b.get("cpu_us_per_thread_sample") and n.get("cpu_us_per_thread_sample")]
        row["new_over_base_cpu"] = pairs
        results.append(row)
        print("%s (%s)" % (case, row["python"]))
        for which in ("base", "new"):
            cells = ["%s %s" % (label, spread(row[which][k])) for k, label in KEYS]
            cells.append("dropped %s" % spread([100 * x for x in row[which]["dropped"]],
                                               "%.2f%%"))
            print("  %-4s %s" % (which, "; ".join(cells)))
        print("  NEW/BASE crux CPU per thread-sample: %s" % spread(pairs, "%.2f"), flush=True)
    print("wrote %s" % C.write_json(a.out, {"base": a.base, "new": a.new,
                                            "machine": C.machine(), "results": results}))


if __name__ == "__main__":
    main()
