# SPDX-License-Identifier: MIT
"""Pure-Python CPU workload: a fixed number of work units run at a chosen stack depth.

A unit mixes what Python programs spend time on: calls, integer arithmetic, dict and list
operations, string formatting. python cpu.py --units N [--depth D] [--wait-go]"""
import argparse
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _common import report, start, wait_for_go  # noqa: E402


def small(i):
    return (i * 2654435761) % 1000003


def unit(k):
    d = {}
    acc = 0
    for i in range(400):
        v = small(i + k)
        d[v % 97] = d.get(v % 97, 0) + 1
        acc += v
    words = ["w%d" % (acc % (j + 7)) for j in range(40)]
    return acc + len(",".join(words)) + sum(sorted(d.values())[:10])


def descend(depth, units):
    if depth > 1:
        return descend(depth - 1, units)
    total = 0
    for k in range(units):
        total += unit(k)
    return total


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--units", type=int, default=12000)
    ap.add_argument("--depth", type=int, default=20)
    ap.add_argument("--wait-go", action="store_true")
    a = ap.parse_args()
    sys.setrecursionlimit(max(1000, a.depth + 100))
    wait_for_go(a.wait_go)
    t0 = start()
    descend(a.depth, a.units)
    report("cpu", t0, units=a.units, depth=a.depth)


if __name__ == "__main__":
    main()
