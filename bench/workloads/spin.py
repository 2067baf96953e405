# SPDX-License-Identifier: MIT
"""Steady target for per-sample costs: T threads (the main thread and T-1 others), each with
a Python stack exactly --depth frames deep while in its leaf function, looping forever until
killed. Prints WORKLOAD_READY once every thread is at depth.
python spin.py --depth 50 --threads 1"""
import argparse
import sys
import threading

ready = threading.Semaphore(0)
go = threading.Event()


def leaf(n):
    acc = 0
    for i in range(n):
        acc += i * i
    return acc


def descend(levels):
    if levels > 1:
        return descend(levels - 1)
    # Wait at depth until every thread is there: spinning threads would hold the GIL in
    # turns and starve the main thread collecting them (64 threads took ~20 s to start).
    ready.release()
    go.wait()
    while True:
        leaf(500)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--depth", type=int, default=50)
    ap.add_argument("--threads", type=int, default=1)
    a = ap.parse_args()
    sys.setrecursionlimit(max(1000, a.depth + 100))
    # Frames besides descend(): main thread <module>, main, leaf; other threads
    # Thread._bootstrap, _bootstrap_inner, run, leaf.
    ts = [threading.Thread(target=descend, args=(a.depth - 4,), daemon=True)
          for _ in range(a.threads - 1)]
    for t in ts:
        t.start()
    for _ in ts:
        ready.acquire()
    go.set()
    print("WORKLOAD_READY", flush=True)
    descend(a.depth - 3)


if __name__ == "__main__":
    main()
