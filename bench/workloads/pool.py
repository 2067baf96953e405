# SPDX-License-Identifier: MIT
"""A multiprocessing.Pool of N workers (fork), each looping: Python work for --busy-ms at
stack depth ~10, then a sleep of --sleep-ms, until killed. The parent waits on the pool's
results. Prints WORKLOAD_READY once every worker has started.
python pool.py [--workers 4] [--busy-ms 5] [--sleep-ms 15]"""
import argparse
import multiprocessing as mp
import os
import sys
import time


def work(ms):
    end = time.perf_counter() + ms / 1000.0
    acc = 0
    while time.perf_counter() < end:
        for i in range(200):
            acc += i * i % 7
    return acc


STARTED = None  # a SimpleQueue the workers inherit through fork
PARENT = os.getpid()


def descend(levels, busy, sleep):
    if levels > 1:
        return descend(levels - 1, busy, sleep)
    while os.getppid() == PARENT:  # a worker ends when the parent is killed
        work(busy)
        time.sleep(sleep / 1000.0)
    os._exit(0)


def worker(args):
    busy, sleep = args
    STARTED.put(os.getpid())
    descend(10, busy, sleep)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--workers", type=int, default=4)
    ap.add_argument("--busy-ms", type=float, default=5.0)
    ap.add_argument("--sleep-ms", type=float, default=15.0)
    a = ap.parse_args()
    global STARTED
    ctx = mp.get_context("fork")
    STARTED = ctx.SimpleQueue()
    with ctx.Pool(a.workers) as pool:
        res = pool.map_async(worker, [(a.busy_ms, a.sleep_ms)] * a.workers, chunksize=1)
        pids = [STARTED.get() for _ in range(a.workers)]
        print("WORKLOAD_READY %s" % " ".join(map(str, pids)), flush=True)
        res.wait()
    sys.exit(0)


if __name__ == "__main__":
    main()
