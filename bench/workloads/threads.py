# SPDX-License-Identifier: MIT
"""Many-thread workload: T threads, each doing a fixed number of rounds of Python work
followed by a short sleep (a server's worker pool: compute, then wait on I/O). With
--idle-threads N, N more threads wait on an Event for the whole run (the idle part of a pool).
python threads.py --threads 64 --rounds R [--idle-threads N] [--wait-go]"""
import argparse
import os
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _common import report, start, wait_for_go  # noqa: E402


def work(n):
    acc = 0
    d = {}
    for i in range(n):
        acc += (i * 7919) % 1009
        d[i & 63] = acc
    return acc + len(d)


def worker(rounds, n, sleep_s, barrier):
    barrier.wait()
    for _ in range(rounds):
        work(n)
        time.sleep(sleep_s)


def idle_worker(stop, ready):
    ready.release()
    stop.wait()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--threads", type=int, default=64)
    ap.add_argument("--rounds", type=int, default=60)
    ap.add_argument("--n", type=int, default=2500)
    ap.add_argument("--sleep-ms", type=float, default=2.0)
    ap.add_argument("--idle-threads", type=int, default=0)
    ap.add_argument("--wait-go", action="store_true")
    a = ap.parse_args()
    stop, ready = threading.Event(), threading.Semaphore(0)
    idle = [threading.Thread(target=idle_worker, args=(stop, ready), daemon=True)
            for _ in range(a.idle_threads)]
    for t in idle:
        t.start()
    for _ in idle:
        ready.acquire()
    barrier = threading.Barrier(a.threads + 1)
    ts = [threading.Thread(target=worker, args=(a.rounds, a.n, a.sleep_ms / 1000, barrier))
          for _ in range(a.threads)]
    for t in ts:
        t.start()
    wait_for_go(a.wait_go)
    t0 = start()
    barrier.wait()
    for t in ts:
        t.join()
    stop.set()
    report("threads", t0, threads=a.threads, rounds=a.rounds, n=a.n, sleep_ms=a.sleep_ms,
           idle_threads=a.idle_threads)


if __name__ == "__main__":
    main()
