"""Allocation targets for test_allocations.py: MODE is leak, fixed, lru, numpy, mix or mmap.

leak: the seed case, a list of per-batch results never cleared, each batch a long compute
then a quick 1 MiB allocation on the append line. fixed: the same, results written out.
lru: a bounded functools.lru_cache of 1 MiB values. numpy: 200 MB in big(). mix: sites of
different sizes for the sampled-vs-exact comparison. mmap: a 64 MiB anonymous mmap.mmap kept
across a compute, then closed. The truth file names the lines.
"""
import functools
import json
import mmap
import os
import sys

MIB = 1 << 20
results = []


def compute(n):
    s = 0
    for i in range(n):
        s += i % 7
    return s


def leak(batches):
    for b in range(batches):
        compute(40000)
        results.append(bytearray(MIB))  # LEAK


def fixed(batches):
    with open(os.devnull, "wb") as out:
        for b in range(batches):
            compute(40000)
            r = bytearray(MIB)  # FIXED
            out.write(r[:16])


@functools.lru_cache(maxsize=8)
def cached(key):
    return bytearray(MIB)  # LRU


def lru(batches):
    for b in range(batches):
        compute(40000)
        cached(b)


def big():
    import numpy as np
    a = np.zeros(25_000_000)  # NUMPY
    return a


def mix():
    keep = []
    for i in range(400):
        keep.append(bytes(100_000))  # MIX_A
        if len(keep) > 50:
            keep.pop(0)
    for i in range(30):
        x = bytearray(4 * MIB)  # MIX_B
    tmp = []
    for i in range(200_000):
        tmp.append([i, i + 1])  # MIX_C
    del tmp
    for i in range(100_000):
        s = str(i) * 20  # MIX_D


def mapped():
    m = mmap.mmap(-1, 64 * MIB)  # MMAP
    for off in range(0, 64 * MIB, 4096):
        m[off] = 1
    compute(300000)
    m.close()
    compute(100000)


def line_of(tag):
    with open(__file__) as f:
        for n, text in enumerate(f, 1):
            if text.rstrip().endswith("# " + tag):
                return n
    return 0


def main():
    mode = sys.argv[1]
    truth = sys.argv[sys.argv.index("--truth") + 1] if "--truth" in sys.argv else None
    if mode == "leak":
        leak(60)
    elif mode == "fixed":
        fixed(60)
    elif mode == "lru":
        lru(60)
    elif mode == "numpy":
        a = big()
        compute(200000)
        del a
    elif mode == "mix":
        mix()
    elif mode == "mmap":
        mapped()
    if truth:
        tags = ["LEAK", "FIXED", "LRU", "NUMPY", "MIX_A", "MIX_B", "MIX_C", "MIX_D",
                "MMAP"]
        with open(truth, "w") as f:
            json.dump({t: line_of(t) for t in tags}, f)


if __name__ == "__main__":
    main()
