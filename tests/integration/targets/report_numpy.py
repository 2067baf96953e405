"""numpy linear algebra: the designed-in bottleneck is the model compute (solve, SVD, eigh
on 200x200 matrices, one BLAS thread)."""
import os

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("MKL_NUM_THREADS", "1")

import time  # noqa: E402

import numpy as np  # noqa: E402

from _harness import parse_args, write_truth  # noqa: E402


def fit(a, b):
    x = np.linalg.solve(a, b)
    u, s, vt = np.linalg.svd(a)
    w, v = np.linalg.eigh(a + a.T)
    return float(x.sum() + s[0] + w[-1])


def main():
    args = parse_args(__doc__)
    rng = np.random.default_rng(1)
    a = rng.standard_normal((200, 200)) + 200 * np.eye(200)
    b = rng.standard_normal((200, 8))
    write_truth(args.truth, {"phase": "ready"})  # tests attach now, after imports
    end = time.perf_counter() + args.duration
    n = 0
    while time.perf_counter() < end:
        fit(a, b)
        n += 1
    write_truth(args.truth, {"phase": "done", "fits": n, "expect": "model"})


if __name__ == "__main__":
    main()
