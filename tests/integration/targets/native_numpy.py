"""Native frames of a BLAS call: a loop multiplying float32 matrices with numpy.

main -> matmul_outer -> matmul_loop, whose `a @ b` (marked "# LINE_MATMUL")
runs in numpy's C code and the BLAS library behind it (OpenBLAS or the
reference BLAS: a symbol naming gemm or dot). Needs numpy (Debian's python3
has python3-numpy); exits with status 3 when numpy is missing.
"""
import sys
import time

from _harness import native_id, parse_args, write_truth

try:
    import numpy
except ImportError:
    sys.exit(3)


def matmul_loop(a, b, end):
    n = 0
    while time.perf_counter() < end:
        c = a @ b  # LINE_MATMUL
        n += 1
    return n


def matmul_outer(a, b, end):
    return matmul_loop(a, b, end)


def main():
    args = parse_args(__doc__, duration=30.0)
    rng = numpy.random.default_rng(7)
    a = rng.random((400, 400), dtype=numpy.float32)
    b = rng.random((400, 400), dtype=numpy.float32)
    end = time.perf_counter() + args.duration
    write_truth(args.truth, {"tid": native_id(), "phase": "running"})
    matmul_outer(a, b, end)


if __name__ == "__main__":
    main()
