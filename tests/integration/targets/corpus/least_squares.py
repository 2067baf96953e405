"""Fits ridge-regression weights for many targets with numpy: Gram matrices with the @
operator, then np.linalg.solve, then predictions, batch after batch.

The time is in BLAS (matmul) and LAPACK (solve) called from numpy: model compute.
"""
import os

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import numpy as np  # noqa: E402

from _timing import Clock, parse_args  # noqa: E402


def ridge(x, y, alpha):
    gram = x.T @ x + alpha * np.eye(x.shape[1])
    weights = np.linalg.solve(gram, x.T @ y)
    return weights, x @ weights


def main():
    args = parse_args(__doc__)
    rng = np.random.default_rng(3)
    x = rng.standard_normal((2000, 300))
    y = x @ rng.standard_normal((300, 50)) + 0.1 * rng.standard_normal((2000, 50))
    clock = Clock()
    fits = 0
    error = 0.0
    while clock.elapsed() < args.duration:
        with clock("model"):
            _, predicted = ridge(x, y, alpha=0.1 * (1 + fits % 10))
            error = float(np.mean((predicted - y) ** 2))
        fits += 1
    clock.write(args.truth, expect="model", fits=fits, mse=round(error, 5))


if __name__ == "__main__":
    main()
