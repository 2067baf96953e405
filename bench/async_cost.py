#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""What record --async costs on an asyncio program with 1,000 live tasks.

tests/integration/targets/async_many.py starts N tasks (each awaiting three coroutines down
to asyncio.sleep, each waking every 50-140 ms) and then counts event-loop steps
(asyncio.sleep(0)) for S seconds. Each repetition runs it alone, under `crux record --rate
100`, under `crux record --async --rate 100`, and, with --base, under another crux binary's
`record --async` (an older build: before/after in one run), interleaved. It prints, as median
[min-max] over the repetitions, the steps/s ratios to the run alone (the overhead the target
sees) and, from crux's --stats, crux's CPU per round of task reading
(async_cpu_us_per_round) with its split where the binary reports one: registry and running
task, checks of cached tasks, walks.

Usage: bench/async_cost.py [--python PATH] [--base OLD_CRUX] [--tasks 1000] [--seconds 4]
                           [--reps 3]
"""
import argparse
import os
import re
import statistics
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TARGET = os.path.join(ROOT, "tests", "integration", "targets", "async_many.py")
SPLIT = ("async_registry_cpu_us_per_round", "async_check_cpu_us_per_round",
         "async_walk_cpu_us_per_round")


def run(cmd):
    p = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    m = re.search(r"steps_per_s ([0-9.]+)", p.stdout)
    if not m:
        sys.exit("async_cost: no result from %s:\n%s\n%s" % (cmd, p.stdout, p.stderr))
    stats = {}
    for line in p.stderr.splitlines():
        if line.startswith("crux-stats:"):
            stats.update(kv.split("=", 1) for kv in line.split()[1:])
    return float(m.group(1)), stats


def spread(xs, fmt="%.3f"):
    return (fmt + " [" + fmt + "-" + fmt + "]") % (statistics.median(xs), min(xs), max(xs))


def rec(crux):
    return [crux, "record", "--stats", "--rate", "100", "--no-categories", "-f", "collapsed",
            "-o", "/dev/null"]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--python", default="/root/.pyenv/versions/3.12.1/bin/python3")
    ap.add_argument("--crux", default=os.path.join(ROOT, "build", "crux"))
    ap.add_argument("--base", help="another crux binary whose record --async runs beside")
    ap.add_argument("--tasks", type=int, default=1000)
    ap.add_argument("--seconds", type=float, default=4)
    ap.add_argument("--reps", type=int, default=3)
    a = ap.parse_args()
    target = [a.python, TARGET, "--tasks", str(a.tasks), "--seconds", str(a.seconds)]
    runs = {"record": [rec(a.crux)], "record --async": [rec(a.crux) + ["--async"]]}
    if a.base:
        runs["base record --async"] = [rec(a.base) + ["--async"]]
    alone, rate, stats = [], {k: [] for k in runs}, {k: [] for k in runs}
    for _ in range(a.reps):
        alone.append(run(target)[0])
        for k, (cmd,) in runs.items():
            s, st = run(cmd + ["--"] + target)
            rate[k].append(s)
            stats[k].append(st)
    print("python %s, %d tasks, %d reps of %.0f s, 100 Hz; median [min-max]"
          % (a.python, a.tasks, a.reps, a.seconds))
    print("loop steps/s alone: %s" % spread(alone, "%.0f"))
    b = statistics.median(alone)
    for k in runs:
        print("ratio under crux %-20s %s" % (k + ":", spread([s / b for s in rate[k]])))
    for k in runs:
        if "async" not in k:
            continue
        sts = stats[k]
        line = "%s: crux CPU per round of tasks (us): %s" % (
            k, spread([float(st["async_cpu_us_per_round"]) for st in sts], "%.0f"))
        if all(x in sts[0] for x in SPLIT):
            line += "; registry %s, checks %s, walks %s" % tuple(
                spread([float(st[x]) for st in sts], "%.0f") for x in SPLIT)
            line += "; rounds %s, tasks checked %s, re-walked %s" % tuple(
                spread([int(st[x]) for st in sts], "%d")
                for x in ("async_rounds", "async_checked", "async_rewalked"))
        print(line)


if __name__ == "__main__":
    main()
