"""One thread that never blocks, entering and leaving tiny frames along fixed paths.

The hardest program for a profiler that reads the stack without stopping the target:
every few hundred nanoseconds a frame is pushed or popped, and on 3.11+ a new frame
takes the data-stack slot the last one left, often with the same size. Every stack it
can have follows from the source (tests/integration/trust_check.py derives them):

  run -> alpha -> beta -> gamma          run -> delta -> epsilon
  run -> twins -> twin_a -> mid_a -> leaf_a   and   twins -> twin_b -> mid_b -> leaf_b
      (twin_a/twin_b, mid_a/mid_b, leaf_a/leaf_b have the same code shape, so their
       frames have the same size and take turns at the same address)
  run -> chain_1 -> chain_2 -> ... -> chain_10
  run -> ping -> pong -> ping -> ... (40 deep, strictly alternating, same shape)
  run -> down -> down -> ... (30 deep)
  run -> unwind -> ... (20 deep, raises at the bottom, caught at level 0, 5 or 15)

Nothing else: an `alpha -> epsilon`, a `twin_a -> mid_b`, a `ping -> ping` or a
`delta -> epsilon -> gamma` is a stack the program never had. Calls are one per line
so that a caller's line says which callee it is in. Only run() calls outside the file
(time.perf_counter). Python 3.8 syntax.
"""
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from _harness import parse_args, write_truth  # noqa: E402


def gamma(x):
    return x + 1


def beta(x):
    return gamma(x) + 1


def alpha(x):
    return beta(x) + 1


def epsilon(x):
    return x * 2


def delta(x):
    return epsilon(x) - 1


def leaf_a(x):
    return x + 2


def leaf_b(x):
    return x + 3


def mid_a(x):
    return leaf_a(x) + 1


def mid_b(x):
    return leaf_b(x) + 1


def twin_a(x):
    return mid_a(x) + 1


def twin_b(x):
    return mid_b(x) + 1


def twins(n):
    total = 0
    for i in range(n):
        total += twin_a(i)
        total += twin_b(i)
    return total


def chain_10(x):
    return x + 10


def chain_9(x):
    return chain_10(x) + 9


def chain_8(x):
    return chain_9(x) + 8


def chain_7(x):
    return chain_8(x) + 7


def chain_6(x):
    return chain_7(x) + 6


def chain_5(x):
    return chain_6(x) + 5


def chain_4(x):
    return chain_5(x) + 4


def chain_3(x):
    return chain_4(x) + 3


def chain_2(x):
    return chain_3(x) + 2


def chain_1(x):
    return chain_2(x) + 1


def ping(n):
    if n:
        return pong(n - 1) + 1
    return 0


def pong(n):
    if n:
        return ping(n - 1) + 1
    return 0


def down(n):
    if n:
        return down(n - 1) + 1
    return 0


class Unwound(Exception):
    pass


def unwind(n, catch_at):
    if n == 0:
        raise Unwound()
    if n == catch_at:
        try:
            return unwind(n - 1, catch_at)
        except Unwound:
            return -n
    return unwind(n - 1, catch_at) + 1


def run(end):
    rounds = 0
    while time.perf_counter() < end:
        for i in range(10):
            alpha(i)
            delta(i)
        twins(10)
        chain_1(rounds)
        ping(40)
        down(30)
        for level in (0, 5, 15):
            try:
                unwind(20, level)
            except Unwound:
                pass
        rounds += 1
    return rounds


def main():
    args = parse_args(__doc__.splitlines()[0])
    write_truth(args.truth, {"phase": "running"})
    rounds = run(time.perf_counter() + args.duration)
    write_truth(args.truth, {"phase": "done", "rounds": rounds})


if __name__ == "__main__":
    main()
