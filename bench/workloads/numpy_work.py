# SPDX-License-Identifier: MIT
"""numpy workload: a fixed number of rounds of matmul, FFT and element-wise work, so most
time is in native code (BLAS, pocketfft) with short Python stretches in between.
python numpy_work.py --rounds N [--wait-go]; set OPENBLAS_NUM_THREADS to choose BLAS threads."""
import argparse
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _common import report, start, wait_for_go  # noqa: E402

import numpy as np  # noqa: E402


def step(a, b, sig):
    c = a @ b
    spec = np.fft.rfft(sig)
    sig2 = np.fft.irfft(spec * 0.5)
    c = np.tanh(c * 1e-3)
    return float(c[0, 0]) + float(sig2[0])


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--rounds", type=int, default=1500)
    ap.add_argument("--n", type=int, default=192)
    ap.add_argument("--wait-go", action="store_true")
    a = ap.parse_args()
    rng = np.random.default_rng(1)
    x = rng.random((a.n, a.n))
    y = rng.random((a.n, a.n))
    sig = rng.random(1 << 15)
    wait_for_go(a.wait_go)
    t0 = start()
    acc = 0.0
    for _ in range(a.rounds):
        acc += step(x, y, sig)
    report("numpy", t0, rounds=a.rounds, n=a.n, numpy=np.__version__,
           blas_threads=os.environ.get("OPENBLAS_NUM_THREADS", "default"))


if __name__ == "__main__":
    main()
