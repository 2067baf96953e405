#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""What record --async costs on an asyncio program with 1,000 live tasks.

tests/integration/targets/async_many.py starts N tasks (each awaiting three coroutines down
to asyncio.sleep) and then counts event-loop steps (asyncio.sleep(0)) for S seconds. Each
repetition runs it alone, under `crux record --rate 100` and under `crux record --async
--rate 100`, interleaved; it prints the steps/s ratios (the overhead the target sees) and,
from crux's --stats, the time of one walk of every task (asyncreader_round: registry,
tasks, coroutines, await chains) and crux's CPU per round.

Usage: bench/async_cost.py [--python PATH] [--tasks 1000] [--seconds 4] [--reps 3]
"""
import argparse
import os
import re
import statistics
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TARGET = os.path.join(ROOT, "tests", "integration", "targets", "async_many.py")


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


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--python", default="/root/.pyenv/versions/3.12.1/bin/python3")
    ap.add_argument("--crux", default=os.path.join(ROOT, "build", "crux"))
    ap.add_argument("--tasks", type=int, default=1000)
    ap.add_argument("--seconds", type=float, default=4)
    ap.add_argument("--reps", type=int, default=3)
    a = ap.parse_args()
    target = [a.python, TARGET, "--tasks", str(a.tasks), "--seconds", str(a.seconds)]
    rec = [a.crux, "record", "--stats", "--rate", "100", "--no-categories", "-f", "collapsed",
           "-o", "/dev/null"]
    base, plain, asyn, walk, cpu = [], [], [], [], []
    for _ in range(a.reps):
        base.append(run(target)[0])
        plain.append(run(rec + ["--"] + target)[0])
        s, st = run(rec + ["--async", "--"] + target)
        asyn.append(s)
        walk.append(float(st["async_cpu_us_per_round"]))
        ticks = int(st["ticks"])
        cpu.append(float(st["busy_ns"]) / 1e3 / max(ticks, 1))
    b = statistics.median(base)
    print("python %s, %d tasks, %d reps of %.0f s, 100 Hz" % (a.python, a.tasks, a.reps,
                                                              a.seconds))
    print("loop steps/s alone: %.0f" % b)
    print("ratio under crux record:          %.3f" % (statistics.median(plain) / b))
    print("ratio under crux record --async:  %.3f" % (statistics.median(asyn) / b))
    print("crux CPU per walk of all tasks (us, median): %.1f" % statistics.median(walk))
    print("crux round with --async (us wall): %.1f" % statistics.median(cpu))


if __name__ == "__main__":
    main()
