# SPDX-License-Identifier: MIT
"""Workload for bench/native.py: T threads, each at Python depth D, looping units of work
(a little pure Python and a zlib.crc32 of 16 KiB, native code). After a warm-up it counts the
units done in a fixed window and prints JSON: units per second in all, per thread, and the
longest gap between two units of one thread (a stall shows there).
python native_threads.py --threads T --depth D --duration S [--warmup W]"""
import argparse
import json
import os
import sys
import threading
import time
import zlib


def unit(buf):
    acc = 0
    for i in range(200):
        acc += i * i
    return acc + zlib.crc32(buf)


def deep(d, fn):
    if d <= 0:
        return fn()
    return deep(d - 1, fn)


def worker(idx, depth, go, stop, results):
    buf = bytes(range(256)) * 64

    def loop():
        n = 0
        gap = 0.0
        go.wait()
        last = time.perf_counter()
        while not stop.is_set():
            unit(buf)
            n += 1
            now = time.perf_counter()
            if now - last > gap:
                gap = now - last
            last = now
        results[idx] = (n, gap)

    deep(depth, loop)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--depth", type=int, default=50)
    ap.add_argument("--duration", type=float, default=3.0)
    ap.add_argument("--warmup", type=float, default=1.0)
    a = ap.parse_args()
    go, stop = threading.Event(), threading.Event()
    results = [None] * a.threads
    ts = [threading.Thread(target=worker, args=(i, a.depth, go, stop, results), daemon=True)
          for i in range(a.threads)]
    for t in ts:
        t.start()
    print("READY %d" % os.getpid(), flush=True)
    time.sleep(a.warmup)
    go.set()
    t0 = time.perf_counter()
    time.sleep(a.duration)
    stop.set()
    elapsed = time.perf_counter() - t0
    for t in ts:
        t.join()
    units = sum(r[0] for r in results)
    json.dump({"units_per_s": units / elapsed, "threads": a.threads, "depth": a.depth,
               "min_thread_units_per_s": min(r[0] for r in results) / elapsed,
               "max_gap_ms": max(r[1] for r in results) * 1e3}, sys.stdout)
    print(flush=True)


if __name__ == "__main__":
    main()
